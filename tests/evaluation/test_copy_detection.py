"""The copy test: its distance against brute force, its null distribution against the
Beta-Binomial law, its estimate on planted copies, and the gallery's choice of rows."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import betabinom

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.copy_detection import (
    copy_scores,
    copy_space,
    copy_test,
    leave_one_out_null,
    null_rank,
    tolerant_nn_distance,
)
from gan_suite.evaluation.metrics.gallery import copy_gallery, rank_by_suspicion
from gan_suite.evaluation.partial_failures import shift_images


def _images(n, seed, c=1, side=12):
    g = torch.Generator().manual_seed(seed)
    # blobs on a -1 background, like digits: smooth, away from the border
    x = -torch.ones(n, c, side, side)
    x[:, :, 3:-3, 3:-3] = torch.rand(n, c, side - 6, side - 6, generator=g) * 2 - 1
    return x


def _brute_force(queries, refs, max_shift, flips, exclude_self=False):
    """Every shift of every query against every reference, with explicit loops."""
    out = []
    for i, q in enumerate(queries):
        variants = [q, q.flip(-1)] if flips else [q]
        best = math.inf
        for v in variants:
            padded = F.pad(v[None], (max_shift,) * 4, mode="replicate")[0]
            h, w = q.shape[-2:]
            for dy in range(2 * max_shift + 1):
                for dx in range(2 * max_shift + 1):
                    s = padded[:, dy : dy + h, dx : dx + w]
                    for j, r in enumerate(refs):
                        if exclude_self and i == j:
                            continue
                        best = min(best, float((s - r).pow(2).mean().sqrt()))
        out.append(best)
    return torch.tensor(out)


@pytest.mark.parametrize("flips", [False, True])
def test_distance_equals_brute_force_when_every_reference_is_a_candidate(flips):
    refs, queries = _images(20, 0), _images(6, 1)
    dist, idx = tolerant_nn_distance(queries, refs, max_shift=1, flips=flips, candidates=20)
    torch.testing.assert_close(dist, _brute_force(queries, refs, 1, flips), rtol=1e-4, atol=1e-4)
    loo, _ = tolerant_nn_distance(refs, refs, max_shift=1, flips=flips, candidates=20, exclude_self=True)
    torch.testing.assert_close(loo, _brute_force(refs, refs, 1, flips, exclude_self=True), rtol=1e-4, atol=1e-4)


def test_copies_within_the_tolerance_are_at_zero_and_others_are_not():
    train = _images(300, 2, side=16)
    src = torch.arange(0, 300, 3)
    shifts = torch.tensor([[2, -1], [0, 2], [-2, -2], [1, 0]]).repeat(25, 1)
    shifted = shift_images(train[src], shifts)
    dist, idx = tolerant_nn_distance(shifted, train, max_shift=2)
    assert float(dist.max()) < 1e-3 and bool((idx == src).all())
    far, _ = tolerant_nn_distance(shift_images(train[src], torch.tensor([[3, 0]]).repeat(100, 1)), train, max_shift=2)
    assert float(far.min()) > 0.1  # three pixels is outside the tolerance
    mirrored = train[src].flip(-1)
    assert float(tolerant_nn_distance(mirrored, train, flips=False)[0].min()) > 0.1
    assert float(tolerant_nn_distance(mirrored, train, flips=True)[0].max()) < 1e-3


def test_copy_space_averages_larger_images_and_keeps_small_ones():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    reduced = copy_space(x)
    assert reduced.shape == (2, 3, 32, 32) and reduced.dtype == torch.float16
    torch.testing.assert_close(reduced.float(), x.reshape(2, 3, 32, 2, 32, 2).mean((3, 5)), atol=1e-3, rtol=0)
    assert copy_space(x[:, :, :28, :28]).shape == (2, 3, 28, 28)
    with pytest.raises(ConfigError):
        copy_space(torch.zeros(3, 28))


def test_count_below_the_threshold_follows_the_beta_binomial_law_under_the_null():
    rng = np.random.default_rng(0)
    n, m, q = 60, 40, 0.05
    r = 3  # the threshold is the round(0.05 * 61) = 3rd smallest null distance
    assert null_rank(n, q) == r
    counts = np.zeros(m + 1)
    p_values = []
    for i in range(4000):
        null, gen = torch.from_numpy(rng.random(n)), torch.from_numpy(rng.random(m))
        out = copy_test(gen, null, quantile=q, seed=i)
        counts[round(out["copy_rate"] * m)] += 1
        p_values.append(out["copy_p_value"])
    expected = betabinom.pmf(np.arange(m + 1), m, r, n - r + 1) * 4000
    assert np.abs(counts - expected).max() < 4 * np.sqrt(expected.max())  # each cell within 4 sd
    assert np.mean(np.array(p_values) < 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 4000)


def test_planted_copies_are_estimated_and_the_interval_covers_them():
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(200):
        null = torch.from_numpy(rng.random(500))
        fresh = torch.from_numpy(rng.random(1800))
        gen = torch.cat([torch.zeros(200), fresh])  # 10% copies at distance 0
        out = copy_test(gen, null, quantile=0.01, seed=i)
        assert out["copying_flagged"] and abs(out["copy_excess"] - 0.1) < 0.03
        lo, hi = out["copy_excess_ci"]
        covered += lo <= 0.1 <= hi
    assert 180 <= covered <= 200  # a 95% interval: 190 expected


def test_groups_are_judged_against_their_own_null():
    rng = np.random.default_rng(2)
    # class 0 sits close to the training set, class 1 far; the generator favours class 0
    null = torch.from_numpy(np.concatenate([rng.random(500), 1 + rng.random(500)]))
    null_groups = torch.tensor([0] * 500 + [1] * 500)
    gen = torch.from_numpy(np.concatenate([rng.random(2700), 1 + rng.random(300)]))
    gen_groups = torch.tensor([0] * 2700 + [1] * 300)
    pooled = copy_test(gen, null, quantile=0.05)
    grouped = copy_test(gen, null, quantile=0.05, generated_groups=gen_groups, null_groups=null_groups)
    assert pooled["copying_flagged"] and pooled["copy_excess"] > 0.02
    assert not grouped["copying_flagged"] and abs(grouped["copy_excess"]) < 0.03 and grouped["stratified"]
    r = 25  # round(0.05 * 501)
    assert grouped["copy_rate_null"] == pytest.approx(r / 501)
    # the total's law is the convolution of the two Beta-Binomials: check the p-value by hand
    k = round(grouped["copy_rate"] * 3000)
    law = np.convolve(betabinom.pmf(np.arange(2701), 2700, r, 501 - r), betabinom.pmf(np.arange(301), 300, r, 501 - r))
    assert grouped["copy_p_value"] == pytest.approx(law[k:].sum(), rel=1e-9)
    # a group without null samples is left out, and said so
    odd = copy_test(gen, null, generated_groups=torch.where(gen_groups == 1, 7, 0), null_groups=null_groups)
    assert odd["n_untested"] == 300 and odd["n_generated"] == 2700


def test_scores_are_the_share_of_null_distances_at_or_below():
    null = torch.tensor([0.1, 0.2, 0.3, 0.4])
    torch.testing.assert_close(copy_scores(torch.tensor([0.0, 0.2, 1.0]), null), torch.tensor([1 / 5, 3 / 5, 1.0], dtype=torch.float64))


def test_leave_one_out_null_skips_each_image_itself():
    train = _images(30, 3)
    train[7] = train[3]  # a duplicate in the training set
    loo, chosen = leave_one_out_null(train, max_shift=0, flips=False, limit=None)
    assert chosen.tolist() == list(range(30))
    assert loo[3] == 0 and loo[7] == 0 and bool((loo[[0, 1, 2]] > 0).all())


def test_gallery_shows_the_planted_copies_first(tmp_path):
    train = _images(50, 4, c=3)
    gen = torch.cat([_images(30, 5, c=3), train[:4]])
    null, _ = tolerant_nn_distance(_images(40, 6, c=3), train)
    dist, _ = tolerant_nn_distance(gen, train)
    scores = copy_scores(dist, null)
    assert set(rank_by_suspicion(scores, dist)[:4].tolist()) == {30, 31, 32, 33}
    path = copy_gallery(gen, scores, dist, train, tmp_path / "g.png", rows=4)
    from PIL import Image

    img = Image.open(path)
    assert img.width > 4 * 84 and img.height > 8 * 84  # 12 px images shown at >= 84 px
