"""Density/coverage (Naeem et al. 2020) by hand and on Gaussian data; P/R on the same data."""

import pytest
import torch

from gan_suite.evaluation.metrics import density_coverage, precision_recall


def _line(*xs):
    return torch.tensor(xs, dtype=torch.float32).unsqueeze(1)  # points on a line, [N, 1]


def test_points_on_a_line_by_hand():
    # real 0, 1, 3, 6 with k = 2: the 2nd-nearest-neighbour radii are 3, 2, 3, 5
    real = _line(0, 1, 3, 6)
    # fake 0.5 lies in the balls of 0, 1 and 3 (not 6: distance 5.5 > 5); -4 in none
    out = density_coverage(real, _line(0.5, -4), k=2)
    assert out["density"] == pytest.approx(3 / (2 * 2))
    assert out["coverage"] == pytest.approx(3 / 4)  # real 6 has no fake within 5
    # 11 lies exactly on the boundary of 6's ball (closed balls): now every real point is covered
    out = density_coverage(real, _line(0.5, -4, 11), k=2)
    assert out["density"] == pytest.approx(4 / (2 * 3))
    assert out["coverage"] == 1.0
    assert density_coverage(real, _line(100, -100), k=2) == {"density": 0.0, "coverage": 0.0}


def test_independent_gaussians_have_density_and_coverage_near_one():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2000, 64, generator=g), torch.randn(2000, 64, generator=g)
    out = density_coverage(real, fake)
    assert 0.85 < out["density"] < 1.15
    assert out["coverage"] > 0.93
    shifted = density_coverage(real, fake + 1.0)
    assert shifted["density"] < 0.2 and shifted["coverage"] < 0.3


def test_published_values_for_gaussians_in_1000_dimensions():
    """Naeem et al.: two independent 10k samples of N(0, I_1000) give P 0.477, R 0.471,
    density 1.056, coverage 0.974; with 2k samples the values move by a few hundredths."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2000, 1000, generator=g), torch.randn(2000, 1000, generator=g)
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr["precision"] == pytest.approx(0.477, abs=0.05)
    assert pr["recall"] == pytest.approx(0.471, abs=0.05)
    assert dc["density"] == pytest.approx(1.056, abs=0.15)
    assert dc["coverage"] == pytest.approx(0.974, abs=0.02)
