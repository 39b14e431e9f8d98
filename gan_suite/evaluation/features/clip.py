"""``clip``: CLIP image embeddings through torch-fidelity's ``FeatureExtractorCLIP`` (no logits).

torch-fidelity loads OpenAI's TorchScript release file in the constructor: with
``feature_extractor_weights_path=None`` via ``torch.hub.load_state_dict_from_url`` into
``<hub>/checkpoints/<model>-<sha256>.pt`` (download when absent; offline: URLError), with a path
via ``torch.jit.load(path)``. The architecture is rebuilt from the state dict's shapes, so the
file decides the network; ``model`` only names the download. Input goes in as uint8, is resized
to the model's resolution (TF1-compatible bilinear) and CLIP-normalised.

``torch.jit.load`` reads a TorchScript zip archive with TorchScript's own unpickler, which calls no
Python functions; TorchScript code in the archive runs only through methods, and a ``__setstate__``
method would run on load. A file is therefore handed over only when it is a TorchScript archive
whose code defines no ``__setstate__`` (:func:`check_torchscript_archive`); only the module's
state dict is used afterwards.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from typing import Dict, Optional

import torch
from torch_fidelity.feature_extractor_clip import MODEL_METADATA, FeatureExtractorCLIP

from gan_suite.errors import ConfigError, UnsafeFileError, WeightsUnavailableError

from ._hub import cached_checkpoint, missing_weights_file, network_cause, weights_unavailable
from .base import FeatureExtractor, check_images, to_uint8_rgb
from .registry import register_extractor

DEFAULT_MODEL = "clip-vit-l-14"  # the FD_CLIP protocol of Stein et al. 2023


def weights_file(model: str) -> str:
    """Name torch-fidelity gives the downloaded file, e.g. clip-vit-l-14-b8cca3fd...a03836.pt."""
    return f"{model}-{MODEL_METADATA[model]['hash']}.pt"


def check_torchscript_archive(path: str, what: str = "CLIP weights file") -> None:
    """Raise a one-line error unless ``path`` is a TorchScript archive whose code has no ``__setstate__``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            code = [n for n in names if "/code/" in n and n.endswith(".py")]
            if not code or not any(n.endswith("/data.pkl") for n in names):
                raise WeightsUnavailableError(f"{what} {path} is not a TorchScript archive (expects an OpenAI CLIP .pt release file)")
            for name in code:
                if b"__setstate__" in archive.read(name):
                    raise UnsafeFileError(f"refusing {what} {path}: its code defines __setstate__, which would run on load")
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsUnavailableError(f"{what} {path} is not a TorchScript archive (expects an OpenAI CLIP .pt release file): {exc}") from None


@register_extractor("clip")
class ClipExtractor(FeatureExtractor):
    """CLIP image embedding (the visual tower's projection output); D = 768 for ViT-L/14, 512 for ViT-B/32.

    Args:
        model: one of torch-fidelity's CLIP names (clip-vit-b-32, clip-vit-l-14, clip-rn50, ...).
        weights_path: an OpenAI CLIP TorchScript file (e.g. ViT-L-14.pt); None: the hub checkpoints dir / download.
        allow_download: when False, never touch the network.

    Input: [N, 1|3, H, W] float in [-1, 1]; 1 channel is tiled to 3.
    """

    feature_layer = "visual projection (image embedding)"

    def __init__(
        self, model: str = DEFAULT_MODEL, weights_path: Optional[str] = None, allow_download: bool = True
    ) -> None:
        super().__init__()
        if model not in MODEL_METADATA:
            raise ConfigError(f"unknown CLIP model {model!r}; known: {', '.join(MODEL_METADATA)}")
        self.model_name = model
        filename = weights_file(model)
        if weights_path is not None:
            if not os.path.isfile(weights_path):
                raise missing_weights_file("CLIP", weights_path)
        else:
            weights_path = cached_checkpoint(filename)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            if weights_path is not None:
                check_torchscript_archive(weights_path)
                try:
                    self.net = FeatureExtractorCLIP(model, ["clip"], feature_extractor_weights_path=weights_path)
                except RuntimeError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise WeightsUnavailableError(
                        f"cannot read CLIP weights {weights_path} (expects an OpenAI CLIP TorchScript file): {first}"
                    ) from None
            elif not allow_download:
                raise weights_unavailable("CLIP", filename)
            else:
                try:
                    self.net = FeatureExtractorCLIP(model, ["clip"], verbose=True)
                except Exception as exc:  # noqa: BLE001 - only network failures are converted
                    cause = network_cause(exc)
                    if cause is None:
                        raise
                    raise weights_unavailable("CLIP", filename, cause) from None
                weights_path = cached_checkpoint(filename)
        self.weights_path = os.path.abspath(weights_path) if weights_path else None
        self.feature_dim = int(self.net.model.visual.output_dim)
        self.freeze()

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_images(images, "clip")
        (features,) = self.net(to_uint8_rgb(images))
        return {"features": features}

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model_name}
