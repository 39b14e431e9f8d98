"""Improved precision/recall against a brute-force numpy reference of Kynkaanniemi et al. 2019
(eqs. 1-2: closed k-NN balls, the k-th neighbour not counting the point itself), the F-score
formula, the minimum set size and the registered metric's k and directions."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.precision_recall import precision_recall
from gan_suite.evaluation.metrics.registry import MetricInputs, compute_metrics, get_metric
from gan_suite.evaluation.streaming import FeatureSet


def reference_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    fake_to_real = cdist(fake, real)  # [M, N]
    precision = (fake_to_real <= real_radii[None, :]).any(axis=1).mean()
    recall = (fake_to_real.T <= fake_radii[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def _sets(seed: int = 0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(80, 3))
    fake = rng.normal(loc=0.6, scale=1.3, size=(70, 3))
    return real, fake


def test_registered_metric_is_the_papers_k3():
    real, fake = _sets()
    by_k = {k: reference_precision_recall(real, fake, k) for k in (2, 3, 4)}
    assert by_k[2] != by_k[3] != by_k[4]  # the data tell k apart
    out = compute_metrics(["pr"], MetricInputs(fake=FeatureSet(torch.from_numpy(fake)), real=FeatureSet(torch.from_numpy(real))))
    assert (out["precision"], out["recall"]) == pytest.approx(by_k[3], abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_any_k_matches_the_reference(k):
    real, fake = _sets(k)
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k)
    assert (got["precision"], got["recall"]) == pytest.approx(reference_precision_recall(real, fake, k), abs=1e-12)


def test_f_score_is_the_harmonic_mean_also_below_one():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 2))
    # copies of the 6 real points nearest to one of them, and 30 points in a tight far cluster
    near = real[np.argsort(cdist(real[:1], real)[0])[:6]]
    fake = np.concatenate([near, 50 + 0.01 * rng.normal(size=(30, 2))])
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    p, r = reference_precision_recall(real, fake, 3)
    assert got["precision"] == pytest.approx(p) and got["recall"] == pytest.approx(r)
    assert 0 < p + r < 1
    assert got["f_score"] == pytest.approx(2 * p * r / (p + r), rel=1e-12)


def test_f_score_is_zero_when_the_sets_are_apart():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(20, 2)), 100 + rng.normal(size=(20, 2))
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    assert got == {"precision": 0.0, "recall": 0.0, "f_score": 0.0}


def test_each_set_needs_more_than_k_rows():
    rng = np.random.default_rng(5)
    four, three = torch.from_numpy(rng.normal(size=(4, 2))), torch.from_numpy(rng.normal(size=(3, 2)))
    precision_recall(four, four.flip(0) + 0.1, k=3)  # k + 1 rows: accepted
    for real, fake in ((three, four), (four, three)):
        with pytest.raises(ConfigError, match="need at least 4 rows, got 3"):
            precision_recall(real, fake, k=3)


def test_precision_and_recall_rank_higher_as_better():
    assert [(o.key, o.higher_is_better) for o in get_metric("pr").outputs] == [("precision", True), ("recall", True)]
