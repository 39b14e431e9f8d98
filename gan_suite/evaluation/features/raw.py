"""``raw2d``: identity on 2-D toy data, so metrics run on the coordinates themselves."""

from __future__ import annotations

from typing import Dict

import torch

from gan_suite.errors import ConfigError

from .base import FeatureExtractor
from .registry import register_extractor


@register_extractor("raw2d")
class Raw2D(FeatureExtractor):
    """points [N, 2] float -> {"features": the same points as float32 [N, 2]}; no weights, no logits."""

    feature_dim = 2
    feature_layer = "input coordinates"
    float64_network = True

    def __init__(self) -> None:
        super().__init__()
        self.freeze()

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if not torch.is_tensor(images) or images.dim() != 2 or images.shape[1] != 2 or not images.is_floating_point():
            shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise ConfigError(f"raw2d expects float points [N, 2]; got {shape}")
        return {"features": images}
