"""2-D Gaussian mixtures of the mode-collapse benchmark (VEEGAN protocol, as run by PacGAN).

Ring: 8 Gaussians with means (cos 2 pi i / 8, sin 2 pi i / 8) and std 0.01.
Grid: 25 Gaussians with means {-4, -2, 0, 2, 4}^2 and std 0.05.
"""

from __future__ import annotations

import math

import torch

from gan_suite.data.base import GANDataModule, TensorSampleDataset
from gan_suite.errors import ConfigError
from gan_suite.seeding import SYNTHETIC_DATA, derive_seed


def mixture_geometry(mixture: str) -> tuple[torch.Tensor, float]:
    """Mode centres [M, 2] and the per-mode standard deviation of ``mixture``."""
    if mixture == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], dim=1).float(), 0.01
    if mixture == "grid25":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        gx, gy = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), 0.05
    raise ConfigError(f"unknown mixture {mixture!r} (use 'ring8' or 'grid25')")


def sample_mixture(mixture: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points [n, 2] from the uniform mixture, and their mode index [n]."""
    centres, std = mixture_geometry(mixture)
    modes = torch.randint(len(centres), (n,), generator=generator)
    points = centres[modes] + std * torch.randn(n, 2, generator=generator)
    return points, modes


class Toy2D(GANDataModule):
    """Points of a 2-D Gaussian mixture, with the mode index as label.

    Args:
        mixture: 'ring8' or 'grid25'.
        num_samples: size of the (fixed, seeded) training set; the held-out set has the same size.
        batch_size: as in :class:`GANDataModule` (default 100 here).
        **kwargs: num_workers, seed, device_cache: see :class:`GANDataModule`.
    """

    sample_shape = (2,)

    def __init__(self, mixture: str = "ring8", num_samples: int = 100_000, batch_size: int = 100, **kwargs) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        mixture_geometry(mixture)  # validates the name
        self.mixture = mixture
        self.num_samples = num_samples
        self.name = f"toy2d_{mixture}"
        self.num_classes = len(mixture_geometry(mixture)[0])

    def describe(self) -> dict:
        return {**super().describe(), "mixture": self.mixture, "num_samples": self.num_samples}

    def load_split(self, split: str) -> TensorSampleDataset:
        offsets = {"train": 0, "heldout": 1}
        if split not in offsets:
            raise ConfigError(f"unknown split {split!r} for toy2d (use 'train' or 'heldout')")
        gen = torch.Generator().manual_seed(derive_seed(self.seed, SYNTHETIC_DATA, offsets[split]))
        points, modes = sample_mixture(self.mixture, self.num_samples, gen)
        return TensorSampleDataset(points, modes)
