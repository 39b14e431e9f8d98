"""Fully connected networks: Goodfellow et al. 2014 (MNIST) and the PacGAN toy networks.

Goodfellow's MNIST setup is ``MLPGenerator(latent_dim=100, hidden=[1200, 1200])`` and
``MaxoutDiscriminator(hidden=[240, 240], pieces=5, input_dropout=0.2, hidden_dropout=0.5)``.
PacGAN's 2-D networks are ``MLPGenerator(latent_dim=2, hidden=[400]*4, batch_norm=True,
output='linear')`` and ``MaxoutDiscriminator(hidden=[200]*3, pieces=5, input_dropout=0,
hidden_dropout=0)``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.nets.conditional import CLASS_EMBED_DIM, NoiseWithLabel, ProjectionHead, check_conditioning
from gan_suite.nets.packing import pack_samples
from gan_suite.nets.spec import RebuildableMixin


class Maxout(nn.Module):
    """Linear layer with ``pieces`` outputs per unit, reduced by max: [N, in] -> [N, units]."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max(dim).values, not amax: its backward scatters through the argmax indices, where
        # amax's splits the gradient over ties with four more kernels (~1.7x slower at S = 10 stacked)
        return self.linear(x).view(x.shape[0], self.units, self.pieces).max(dim=2).values


class MLPGenerator(RebuildableMixin, nn.Module):
    """Noise [N, latent_dim] -> samples [N, *sample_shape].

    Args:
        latent_dim: dimension of the Gaussian noise.
        sample_shape: shape of one sample, e.g. [1, 28, 28] or [2].
        hidden: widths of the ReLU hidden layers.
        batch_norm: BatchNorm1d after each hidden linear layer.
        output: 'tanh' (images in [-1, 1]), 'sigmoid' or 'linear' (points).
        num_classes: 0 (unconditional) or the number of classes: ``forward(z, y)`` concatenates
            the label's embedding to the noise (:mod:`gan_suite.nets.conditional`).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        sample_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (1200, 1200),
        batch_norm: bool = False,
        output: str = "tanh",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.record_spec(
            latent_dim=latent_dim, sample_shape=sample_shape, hidden=hidden, batch_norm=batch_norm, output=output, num_classes=num_classes
        )
        check_conditioning(num_classes)
        if output not in ("tanh", "sigmoid", "linear"):
            raise ConfigError(f"generator output must be 'tanh', 'sigmoid' or 'linear', got {output!r}")
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.sample_shape = tuple(sample_shape)
        self.condition = NoiseWithLabel(num_classes) if num_classes else None
        layers: list[nn.Module] = []
        width = latent_dim + (CLASS_EMBED_DIM if num_classes else 0)
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            width = h
        layers.append(nn.Linear(width, math.prod(self.sample_shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        elif output == "sigmoid":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = z if self.condition is None else self.condition(z, y)
        return self.net(h).view(z.shape[0], *self.sample_shape)


class MaxoutDiscriminator(RebuildableMixin, nn.Module):
    """Samples [N, *sample_shape] -> logits [N / pack] (maxout hidden layers, dropout).

    Args:
        sample_shape: shape of one sample.
        hidden: units of each maxout layer.
        pieces: linear pieces per maxout unit.
        input_dropout: dropout probability on the input (Goodfellow: keep 0.8 -> 0.2).
        hidden_dropout: dropout probability after each hidden layer (Goodfellow: 0.5).
        pack: PacGAN packing degree m (D sees m samples concatenated).
        num_classes: 0 (unconditional) or the number of classes: a projection head on the last
            hidden layer adds <embed(y), phi(x)> (``forward(x, y)``).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (240, 240),
        pieces: int = 5,
        input_dropout: float = 0.2,
        hidden_dropout: float = 0.5,
        pack: int = 1,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.record_spec(
            sample_shape=sample_shape, hidden=hidden, pieces=pieces, input_dropout=input_dropout,
            hidden_dropout=hidden_dropout, pack=pack, num_classes=num_classes,
        )
        if pack < 1:
            raise ConfigError(f"pack must be >= 1, got {pack}")
        for name, p in (("input_dropout", input_dropout), ("hidden_dropout", hidden_dropout)):
            if not 0 <= p < 1:
                raise ConfigError(f"{name} must be a probability in [0, 1), got {p}")
        check_conditioning(num_classes, pack)
        self.num_classes = num_classes
        self.sample_shape = tuple(sample_shape)
        self.pack = pack
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = math.prod(self.sample_shape) * pack
        for h in hidden:
            layers.append(Maxout(width, h, pieces))
            if hidden_dropout > 0:
                layers.append(nn.Dropout(hidden_dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.projection = ProjectionHead(num_classes, width) if num_classes else None

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.projection is None:
            return self.net(pack_samples(x, self.pack)).squeeze(1)
        phi = self.net[:-1](x)  # [N, last hidden width]
        return self.net[-1](phi).squeeze(1) + self.projection(phi, y)
