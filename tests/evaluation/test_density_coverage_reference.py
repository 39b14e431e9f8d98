"""Density and coverage against a brute-force numpy reference of Naeem et al. 2020 (closed balls of
radius NND_k around each real sample), the default and registered k = 5, the set sizes and the
metric's directions."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.density_coverage import density_coverage
from gan_suite.evaluation.metrics.registry import MetricInputs, compute_metrics, get_metric
from gan_suite.evaluation.streaming import FeatureSet


def reference_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    radii = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    inside = cdist(fake, real) <= radii[None, :]  # [M, N]
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=0).mean())


def _sets(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(90, 3)), rng.normal(loc=0.5, scale=1.2, size=(60, 3))


def test_default_and_registered_k_is_five():
    real, fake = _sets()
    by_k = {k: reference_density_coverage(real, fake, k) for k in (4, 5, 6)}
    assert by_k[4] != by_k[5] != by_k[6]  # the data tell k apart
    default = density_coverage(torch.from_numpy(real), torch.from_numpy(fake))
    assert (default["density"], default["coverage"]) == pytest.approx(by_k[5], abs=1e-12)
    out = compute_metrics(["dc"], MetricInputs(fake=FeatureSet(torch.from_numpy(fake)), real=FeatureSet(torch.from_numpy(real))))
    assert (out["density"], out["coverage"]) == pytest.approx(by_k[5], abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_any_k_matches_the_reference(k):
    real, fake = _sets(k)
    got = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=k)
    assert (got["density"], got["coverage"]) == pytest.approx(reference_density_coverage(real, fake, k), abs=1e-12)


def test_set_sizes():
    rng = np.random.default_rng(5)
    six, five = torch.from_numpy(rng.normal(size=(6, 2))), torch.from_numpy(rng.normal(size=(5, 2)))
    one = torch.from_numpy(rng.normal(size=(1, 2)))
    got = density_coverage(six, one, k=5)  # k + 1 real rows and a single fake sample: accepted
    assert (got["density"], got["coverage"]) == pytest.approx(reference_density_coverage(six.numpy(), one.numpy(), 5))
    with pytest.raises(ConfigError, match="need at least 6 rows, got 5"):
        density_coverage(five, six, k=5)
    with pytest.raises(ConfigError, match="need at least 1 rows, got 0"):
        density_coverage(six, one[:0], k=5)


def test_density_and_coverage_rank_higher_as_better():
    assert [(o.key, o.higher_is_better) for o in get_metric("dc").outputs] == [("density", True), ("coverage", True)]
