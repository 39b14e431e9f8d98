"""DCGAN networks of Radford et al. 2015 for 28, 32 and 64 px, 1 or 3 channels.

Strided convolutions in D and transposed convolutions in G, no pooling and no fully connected
hidden layers, BatchNorm everywhere except G's output and D's input layer, ReLU in G with a Tanh
output, LeakyReLU(0.2) in D, weights from N(0, 0.02).

Spatial plan (``s0`` the first spatial size, ``n`` the number of stride-2 stages):
  64 px: s0 = 4, n = 4;  32 px: s0 = 4, n = 3;  28 px: s0 = 7, n = 2.
G: z [N, latent, 1, 1] -> [N, width * 2^(n-1), s0, s0] -> ... -> [N, width, size/2, size/2]
   -> [N, channels, size, size].
D mirrors it and ends with a convolution over the whole s0 x s0 map: -> logits [N / pack].
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.nets.conditional import CLASS_EMBED_DIM, NoiseWithLabel, ProjectionHead, check_conditioning
from gan_suite.nets.packing import pack_samples
from gan_suite.nets.spec import RebuildableMixin

_PLANS = {64: (4, 4), 32: (4, 3), 28: (7, 2)}


def _plan(image_size: int) -> tuple[int, int]:
    if image_size not in _PLANS:
        raise ConfigError(f"DCGAN supports image sizes {sorted(_PLANS)}, got {image_size}")
    return _PLANS[image_size]


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.'s initialisation: conv weights N(0, 0.02); norm weights N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MapProjection(nn.ConvTranspose2d):
    """G's first layer: a transposed convolution of z [N, C_in, 1, 1] to [N, C_out, s0, s0].

    On a 1 x 1 input with stride 1 and no padding it is one matrix product
    [N, C_in] @ [C_in, C_out * s0 * s0]. torch's convolution kernels take several times longer for
    it on a CPU, its weight gradient most of all, so it runs as that product with the layer's own
    weight (same parameters, state dict and hooks; the same values up to rounding). Any other
    input goes through ``nn.ConvTranspose2d``.
    """

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (1, 1) or output_size is not None or self.bias is not None:
            return super().forward(x, output_size)
        return (x.flatten(1) @ self.weight.flatten(1)).view(x.shape[0], self.out_channels, *self.kernel_size)


class WholeMapConv2d(nn.Conv2d):
    """D's last layer: a convolution whose kernel covers the whole map, [N, C, s0, s0] -> [N, 1, 1, 1].

    With one output channel, no padding and an input of the kernel's size it is the dot product of
    each flattened map with the flattened weight, run as one matrix-vector product for the
    reason :class:`MapProjection` gives. Any other input goes through ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != self.kernel_size or self.out_channels != 1 or self.bias is not None:
            return super().forward(x)
        return (x.reshape(x.shape[0], -1) @ self.weight.reshape(-1)).view(x.shape[0], 1, 1, 1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # one group: normalises over (C, H, W) per sample, as WGAN-GP advises
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be 'batch', 'layer' or 'none', got {kind!r}")


class DCGANGenerator(RebuildableMixin, nn.Module):
    """Noise [N, latent_dim] (and labels [N] when ``num_classes`` > 0) -> images
    [N, channels, image_size, image_size] in [-1, 1].

    Args:
        num_classes: 0 (unconditional) or the number of classes: the label's embedding is
            concatenated to the noise (:mod:`gan_suite.nets.conditional`).
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64, num_classes: int = 0) -> None:
        super().__init__()
        self.record_spec(latent_dim=latent_dim, image_size=image_size, channels=channels, width=width, num_classes=num_classes)
        check_conditioning(num_classes)
        s0, n = _plan(image_size)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.sample_shape = (channels, image_size, image_size)
        self.condition = NoiseWithLabel(num_classes) if num_classes else None
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            MapProjection(latent_dim + (CLASS_EMBED_DIM if num_classes else 0), c, s0, 1, 0, bias=False),  # -> [c, s0, s0]
            nn.BatchNorm2d(c),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):  # each stage doubles the size and halves the channels
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]  # -> [channels, size, size]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.condition is not None:
            z = self.condition(z.view(z.shape[0], self.latent_dim), y)
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(RebuildableMixin, nn.Module):
    """Images [N, channels, image_size, image_size] -> logits [N / pack].

    Args:
        norm: 'batch' (Radford et al.), 'layer' (for WGAN-GP, whose penalty is per sample) or 'none'.
        pack: PacGAN packing degree m (D sees m images concatenated along channels).
        num_classes: 0 (unconditional) or the number of classes: a projection head on the
            flattened last feature map [N, c * s0 * s0] adds <embed(y), phi(x)>.
    """

    def __init__(
        self, image_size: int = 64, channels: int = 3, width: int = 64, norm: str = "batch", pack: int = 1, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.record_spec(image_size=image_size, channels=channels, width=width, norm=norm, pack=pack, num_classes=num_classes)
        if pack < 1:
            raise ConfigError(f"pack must be >= 1, got {pack}")
        check_conditioning(num_classes, pack)
        s0, n = _plan(image_size)
        self.sample_shape = (channels, image_size, image_size)
        self.pack = pack
        self.num_classes = num_classes
        c = width
        layers: list[nn.Module] = [nn.Conv2d(channels * pack, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), _norm(norm, c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers.append(WholeMapConv2d(c, 1, s0, 1, 0, bias=False))  # [c, s0, s0] -> [1, 1, 1]
        self.net = nn.Sequential(*layers)
        self.projection = ProjectionHead(num_classes, c * s0 * s0) if num_classes else None
        dcgan_init_(self)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.projection is None:
            return self.net(pack_samples(x, self.pack)).view(-1)
        phi = self.net[:-1](x)  # [N, c, s0, s0]
        return self.net[-1](phi).view(-1) + self.projection(phi.flatten(1), y)
