"""Class conditioning shared by the generators and discriminators.

* Generator (Mirza & Osindero 2014): a learned embedding of the label [N, CLASS_EMBED_DIM] is
  concatenated to the noise before the first layer.
* Discriminator, projection head (Miyato & Koyama 2018): with phi(x) [N, F] the features before
  D's last linear layer, D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.

A network built with ``num_classes = 0`` is unconditional and ignores labels.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from gan_suite.errors import ConfigError

#: width of the generator's label embedding
CLASS_EMBED_DIM = 32


def check_conditioning(num_classes: int, pack: int = 1) -> None:
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0 (0: unconditional), got {num_classes}")
    if num_classes and pack > 1:
        raise ConfigError("a class-conditional discriminator cannot pack samples (pack must be 1)")


def cyclic_labels(n: int, num_classes: int, start: int = 0, device=None) -> torch.Tensor:
    """Labels [n] int64: sample i (counted from ``start``) gets class i mod num_classes."""
    return torch.arange(start, start + n, device=device) % num_classes


class NoiseWithLabel(nn.Module):
    """(z [N, latent_dim], y [N] or None) -> [N, latent_dim + CLASS_EMBED_DIM]; without labels,
    sample i gets class i mod num_classes."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, CLASS_EMBED_DIM)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        if y is None:
            y = cyclic_labels(z.shape[0], self.num_classes, device=z.device)
        return torch.cat([z, self.embed(y)], dim=1)


class ProjectionHead(nn.Module):
    """<embed(y), phi> [N] for features phi [N, F] and labels y [N] (Miyato & Koyama 2018)."""

    def __init__(self, num_classes: int, features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, phi: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        if y is None:
            raise ConfigError("a class-conditional discriminator needs the labels of its inputs")
        return (self.embed(y) * phi).sum(1)
