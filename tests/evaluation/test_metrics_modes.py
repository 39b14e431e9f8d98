"""Mode metrics on constructed sample sets with known answers."""

import math

import pytest
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import (
    grid25_modes,
    label_mode_metrics,
    mixture_mode_metrics,
    ring8_modes,
)


def test_mode_geometry():
    ring, ring_std = ring8_modes()
    assert ring.shape == (8, 2) and ring_std == 0.01
    torch.testing.assert_close(ring.norm(dim=1), torch.ones(8))
    torch.testing.assert_close(ring[2], torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0)
    grid, grid_std = grid25_modes()
    assert grid.shape == (25, 2) and grid_std == 0.05
    assert sorted(set(grid[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert len({tuple(p) for p in grid.tolist()}) == 25


def _around(centres, std, per_mode):
    """per_mode samples at each centre, offset by 0.5 std in rotating directions: all high quality."""
    angles = torch.arange(per_mode) * (2 * math.pi / per_mode)
    offsets = 0.5 * std * torch.stack([angles.cos(), angles.sin()], 1)
    return (centres[:, None, :] + offsets[None]).reshape(-1, 2)


def test_all_ring_modes_uniform():
    centres, std = ring8_modes()
    out = mixture_mode_metrics(_around(centres, std, 10), centres, std)
    assert out["modes_covered"] == 8 and out["high_quality"] == 1.0
    assert out["kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["histogram"].tolist() == [10] * 8


def test_one_ring_mode_only():
    centres, std = ring8_modes()
    samples = torch.cat([_around(centres[3:4], std, 50), torch.zeros(10, 2)])  # + 10 at the origin
    out = mixture_mode_metrics(samples, centres, std)
    assert out["modes_covered"] == 1
    assert out["high_quality"] == pytest.approx(50 / 60)
    assert out["kl"] == pytest.approx(math.log(8))  # empty bins contribute 0


def test_samples_far_from_every_mode():
    centres, std = ring8_modes()
    out = mixture_mode_metrics(torch.randn(100, 2, generator=torch.Generator().manual_seed(0)) * 0.1, centres, std)
    assert out["high_quality"] == 0.0 and out["modes_covered"] == 0
    assert math.isnan(out["kl"])


def test_grid_gaussian_samples():
    centres, std = grid25_modes()
    g = torch.Generator().manual_seed(1)
    samples = centres.repeat(100, 1) + std * torch.randn(2500, 2, generator=g)
    out = mixture_mode_metrics(samples, centres, std)
    assert out["modes_covered"] == 25
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # 2-D: P(r < 3 std)
    assert out["kl"] < 0.01
    # half the modes only, uniform over them: KL = log 2 (up to the high-quality sampling noise)
    half = mixture_mode_metrics(samples[: 100 * 25].reshape(100, 25, 2)[:, ::2].reshape(-1, 2), centres, std)
    assert half["modes_covered"] == 13
    assert half["kl"] == pytest.approx(math.log(25 / 13), abs=0.02)


def test_label_metrics():
    one_class = torch.full((500,), 7)
    out = label_mode_metrics(one_class, 10)
    assert out == {"modes_covered": 1, "kl": pytest.approx(math.log(10))}
    uniform = torch.arange(1000) % 10
    out = label_mode_metrics(uniform, 10, data_labels=torch.arange(50) % 10)
    assert out["modes_covered"] == 10 and out["kl"] == pytest.approx(0.0, abs=1e-12)
    # against a non-uniform data histogram, and a class the data never has
    out = label_mode_metrics(torch.tensor([0, 0, 1, 1]), 3, data_hist=torch.tensor([3.0, 1.0, 0.0]))
    assert out["kl"] == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))
    assert label_mode_metrics(torch.tensor([2]), 3, data_hist=torch.tensor([3.0, 1.0, 0.0]))["kl"] == math.inf


def test_stacked_mnist_style_1000_classes():
    gen = torch.arange(26000) % 100 * 10  # 100 of 1000 classes, uniformly
    out = label_mode_metrics(gen, 1000)
    assert out["modes_covered"] == 100
    assert out["kl"] == pytest.approx(math.log(10))


def test_label_errors():
    with pytest.raises(ConfigError):
        label_mode_metrics(torch.tensor([0, 10]), 10)
    with pytest.raises(ConfigError):
        label_mode_metrics(torch.tensor([0.5]), 10)
    with pytest.raises(ConfigError):
        label_mode_metrics(torch.tensor([0]), 2, data_labels=torch.tensor([0]), data_hist=torch.ones(2))
