"""Pictures of samples: an image grid (torchvision's make_grid) or a 2-D scatter plot."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch


def sample_picture_array(samples: torch.Tensor, nrow: int = 8, reference: Optional[torch.Tensor] = None) -> np.ndarray:
    """uint8 [H, W, 3] picture of ``samples``.

    Args:
        samples: images [N, C, H, W] in [-1, 1] (C = 1 or 3; other C show the first 3 channels),
            or points [N, 2].
        nrow: images per grid row.
        reference: for points, the mode centres [M, 2] drawn as crosses.
    """
    samples = samples.detach().float().cpu()
    if samples.dim() == 2:
        return _scatter_array(samples, reference)
    from torchvision.utils import make_grid

    if samples.shape[1] not in (1, 3):
        samples = samples[:, :3]
    grid = make_grid(samples.clamp(-1, 1), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return (grid.mul(255).round().byte().permute(1, 2, 0)).numpy()


def _scatter_array(points: torch.Tensor, reference: Optional[torch.Tensor]) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="samples")
    if reference is not None:
        ax.scatter(reference[:, 0], reference[:, 1], marker="x", c="red", s=30, label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array


def save_png(picture: np.ndarray, path: str) -> str:
    """Write a uint8 [H, W, 3] array as a PNG at ``path`` (atomically) and return the path."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    Image.fromarray(picture).save(tmp)
    os.replace(tmp, path)
    return path


def save_sample_picture(samples: torch.Tensor, path: str, nrow: int = 8, reference: Optional[torch.Tensor] = None) -> str:
    """Write :func:`sample_picture_array` as a PNG at ``path`` and return the path."""
    return save_png(sample_picture_array(samples, nrow, reference), path)
