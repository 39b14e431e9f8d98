"""PacGAN packing: the discriminator judges ``m`` samples at once, concatenated."""

from __future__ import annotations

import torch

from gan_suite.errors import ConfigError


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """Concatenate groups of ``pack`` consecutive samples.

    Images [N,C,H,W] -> [N/m, m*C, H, W] (channel concatenation); vectors [N,D] -> [N/m, m*D].
    """
    if pack == 1:
        return x
    if x.shape[0] % pack:
        raise ConfigError(f"batch of {x.shape[0]} samples is not divisible by the packing degree {pack}")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])
