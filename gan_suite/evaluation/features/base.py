"""Base class of the feature extractors: images in, a dict of float32 (or float64) features (and logits) out."""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from gan_suite.errors import ConfigError


def sha256_of_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (streamed, so a 100 MB checkpoint needs no 100 MB buffer)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_images(images: torch.Tensor, who: str, channels: Tuple[int, ...] = (1, 3)) -> None:
    """Raise ConfigError (one line) unless `images` is a float tensor [N, C, H, W] with C in `channels`."""
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ConfigError(f"{who} expects float images [N, C, H, W] in [-1, 1]; got {shape}")
    if images.shape[1] not in channels:
        raise ConfigError(
            f"{who} expects images with {' or '.join(map(str, channels))} channel(s); got {tuple(images.shape)}"
        )


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """[N, 1|3, H, W] float in [-1, 1] -> [N, 3, H, W] uint8 in [0, 255] (1 channel tiled to 3).

    Rounds to the nearest level, so uint8 data mapped to [-1, 1] by u / 127.5 - 1 comes back exactly.
    """
    x = ((images.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


class FeatureExtractor(nn.Module):
    """A frozen network that maps a batch of samples to features (and, for classifiers, logits).

    Attributes:
        name: registry name (set by ``register_extractor``).
        feature_dim: D, the width of ``forward(...)["features"]``.
        num_classes: K, the width of ``forward(...)["logits"]``; None when there are no logits.
        feature_layer / logits_layer: which layer the features / logits are taken from.
        weights_path: the weights file that was loaded, or None (see ``weights_label``).

    Extractors are always in eval mode (``.train()`` is a no-op) with ``requires_grad=False``;
    ``forward`` runs under ``torch.no_grad()``. Subclasses implement ``extract``.
    """

    name: str = ""
    feature_dim: int = 0
    num_classes: Optional[int] = None
    feature_layer: str = ""
    logits_layer: Optional[str] = None
    #: True when the network can run in float64 (``use_dtype(torch.float64)`` then converts it);
    #: otherwise float64 mode runs the network in float32 and returns float64 outputs
    float64_network: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.output_dtype = torch.float32
        self.training = False  # subclasses call freeze() once their networks exist
        self.weights_path: Optional[str] = None
        self.weights_label: str = "none"  # used by describe() when weights_path is None
        self._weights_sha256: Optional[str] = None

    def use_dtype(self, dtype: torch.dtype) -> "FeatureExtractor":
        """Outputs in ``dtype`` (float32 or float64); the network too when it supports float64."""
        self.output_dtype = dtype
        if self.float64_network:
            self.to(dtype)
        return self

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the network runs in (the parameters' dtype; float32 without parameters)."""
        return next((p.dtype for p in self.parameters()), self.output_dtype if self.float64_network else torch.float32)

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Subclass hook: same contract as ``forward``."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """images [N, C, H, W] float in [-1, 1] (or [N, 2] points for ``raw2d``) ->
        {"features": [N, D], "logits": [N, K] (only when num_classes is not None)}, in
        ``output_dtype`` (float32 unless ``use_dtype`` says otherwise)."""
        with torch.no_grad():
            out = self.extract(images)
        return {key: value.to(self.output_dtype) for key, value in out.items()}

    def train(self, mode: bool = True) -> "FeatureExtractor":
        # Frozen: a parent module's .train() must not switch BatchNorm/Dropout to training mode.
        return super().train(False)

    def freeze(self) -> "FeatureExtractor":
        """Put the extractor in eval mode without gradients; returns self."""
        self.requires_grad_(False)
        return self.eval()

    def describe(self) -> dict:
        """The measurement protocol as a JSON-ready dict (for metrics.json)."""
        if self.weights_path is not None and self._weights_sha256 is None:
            self._weights_sha256 = sha256_of_file(self.weights_path)
        described = {
            "name": self.name,
            "weights": os.path.basename(self.weights_path) if self.weights_path else self.weights_label,
            "weights_path": self.weights_path,
            "weights_sha256": self._weights_sha256,
            "feature_layer": self.feature_layer,
            "feature_dim": self.feature_dim,
            "logits_layer": self.logits_layer,
            "num_classes": self.num_classes,
        }
        if self.output_dtype != torch.float32:  # float32 descriptions (and cache keys) stay as they were
            described["dtype"] = str(self.output_dtype).removeprefix("torch.")
            described["network_dtype"] = str(self.compute_dtype).removeprefix("torch.")
        return described
