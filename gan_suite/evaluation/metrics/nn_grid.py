"""Nearest-training-neighbour grid (Goodfellow et al. 2014, Figure 2): each generated sample
beside its nearest training images, so that copying is visible by eye.

Layout, one row per sample: the sample | a red separator column | its ``n_neighbours`` nearest
training images by feature distance (nearest first). Built with torchvision's make_grid and
save_image. With padding p (2) and separator width s (4), the PNG is
    width  = (W + 2p) + s + (n_neighbours (W + p) + p),   height = S (H + p) + p.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.knn import knn

PADDING = 2
SEPARATOR_WIDTH = 4
SEPARATOR_RGB = (1.0, 0.0, 0.0)


def nearest_neighbour_grid(
    samples: torch.Tensor,
    train_images: torch.Tensor,
    sample_feats: torch.Tensor,
    train_feats: torch.Tensor,
    path: str | Path,
    n_neighbours: int = 3,
) -> Path:
    """Save the nearest-neighbour grid as a PNG and return its path.

    Args:
        samples: [S, C, H, W] generated images in [-1, 1] (C = 1 or 3).
        train_images: [T, C, H, W] training images in [-1, 1], row-aligned with train_feats.
        sample_feats: [S, D] features of the samples.
        train_feats: [T, D] features of the training images (neighbours are searched here).
        path: PNG file to write (parent folders are created).
        n_neighbours: training neighbours shown per sample.
    """
    if samples.dim() != 4 or train_images.dim() != 4 or samples.shape[1:] != train_images.shape[1:]:
        raise ConfigError(
            f"samples and train_images must be [N, C, H, W] of one size, got "
            f"{tuple(samples.shape)} and {tuple(train_images.shape)}"
        )
    if sample_feats.shape[0] != samples.shape[0] or train_feats.shape[0] != train_images.shape[0]:
        raise ConfigError("features must have one row per image")
    _, idx = knn(sample_feats, train_feats.to(sample_feats.device), n_neighbours)  # [S, n]
    neighbours = train_images[idx.cpu().reshape(-1)]  # [S * n, C, H, W], row-major by sample

    def to_unit(x: torch.Tensor) -> torch.Tensor:
        return ((x.detach().float().cpu() + 1) / 2).clamp(0, 1)

    left = make_grid(to_unit(samples), nrow=1, padding=PADDING)  # [3, S(H+p)+p, W+2p]
    right = make_grid(to_unit(neighbours), nrow=n_neighbours, padding=PADDING)
    sep = torch.tensor(SEPARATOR_RGB).view(3, 1, 1).expand(3, left.shape[1], SEPARATOR_WIDTH)
    grid = torch.cat([left, sep, right], dim=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path
