"""``dinov2``: DINOv2 ViT features through torch-fidelity's ``FeatureExtractorDinoV2`` (no logits).

torch-fidelity builds DINOv2 with ``torch.hub.load("facebookresearch/dinov2", "dinov2_vitX14")``:
that needs the model *code* (a GitHub repo, cached as ``<hub>/facebookresearch_dinov2_main``) and
the weights (``<hub>/checkpoints/dinov2_vitX14_pretrain.pth``); either missing means a download,
and offline that fails (URLError, or torch.hub's RuntimeError "no internet connection"). Its own
``feature_extractor_weights_path`` raises NotImplementedError, so for ``weights_path`` we build the
network from the cached repo with ``pretrained=False`` and load the file ourselves with
``weights_only=True``. DINOv2's hub code loads its weights with ``torch.hub.load_state_dict_from_url``,
whose ``weights_only`` defaults to False: on the download path that function is wrapped to force
``weights_only=True``. The hub repository's Python code itself runs (it defines the network).
Input goes in as uint8 and is resized to 224 (TF1-compatible bilinear), ImageNet-normalised.
"""

from __future__ import annotations

import os
from typing import Dict, Optional
from unittest import mock

import torch
from torch_fidelity.feature_extractor_dinov2 import MODEL_METADATA, FeatureExtractorDinoV2

from gan_suite.errors import ConfigError, WeightsUnavailableError
from gan_suite.safe_files import load_state_dict_file

from ._hub import cached_checkpoint, hub_checkpoints_dir, missing_weights_file, network_cause, reason
from .base import FeatureExtractor, check_images, to_uint8_rgb
from .registry import register_extractor

HUB_REPO = "facebookresearch/dinov2"
FEATURE_DIMS = {"dinov2-vit-s-14": 384, "dinov2-vit-b-14": 768, "dinov2-vit-l-14": 1024, "dinov2-vit-g-14": 1536}
DEFAULT_MODEL = "dinov2-vit-l-14"  # the FD_DINOv2 protocol of Stein et al. 2023


def weights_file(model: str) -> str:
    """Name torch.hub gives the checkpoint, e.g. dinov2_vitl14_pretrain.pth."""
    return f"{MODEL_METADATA[model]}_pretrain.pth"


def hub_repo_dir() -> Optional[str]:
    """The cached facebookresearch/dinov2 code in the torch.hub dir, or None."""
    for ref in ("main", "master"):
        path = os.path.join(torch.hub.get_dir(), f"facebookresearch_dinov2_{ref}")
        if os.path.isdir(path):
            return path
    return None


def _unavailable(filename: str, cause: Optional[BaseException] = None) -> WeightsUnavailableError:
    code_dir = os.path.join(torch.hub.get_dir(), "facebookresearch_dinov2_main")
    why = f" ({reason(cause)})" if cause is not None else ""
    return WeightsUnavailableError(
        f"DINOv2 needs weights file {filename} and the {HUB_REPO} code, which are not on disk and could not be "
        f"downloaded{why}; place the code in {code_dir}/ and either pass --weights-path FILE or place the file "
        f"in {hub_checkpoints_dir()}/"
    )


@register_extractor("dinov2")
class DinoV2Extractor(FeatureExtractor):
    """DINOv2 backbone output (CLS token after the final norm); D = 384/768/1024/1536 for s/b/l/g.

    Args:
        model: one of FEATURE_DIMS (torch-fidelity's names); default ViT-L/14.
        weights_path: a DINOv2 state dict file; needs the hub repo code cached. None: torch.hub's cache / download.
        allow_download: when False, never touch the network.

    Input: [N, 1|3, H, W] float in [-1, 1]; 1 channel is tiled to 3.
    """

    feature_layer = "cls token (x_norm_clstoken)"

    def __init__(
        self, model: str = DEFAULT_MODEL, weights_path: Optional[str] = None, allow_download: bool = True
    ) -> None:
        super().__init__()
        if model not in MODEL_METADATA:
            raise ConfigError(f"unknown DINOv2 model {model!r}; known: {', '.join(MODEL_METADATA)}")
        self.model_name = model
        filename = weights_file(model)
        repo = hub_repo_dir()
        if weights_path is not None:
            if not os.path.isfile(weights_path):
                raise missing_weights_file("DINOv2", weights_path)
            if repo is None:
                raise _unavailable(filename)
            self.net = self._build_local(model, repo, weights_path)
        elif repo is not None and cached_checkpoint(filename) is not None:
            # Both cached: build from them directly (torch.hub.load would still ask GitHub for the branch).
            weights_path = cached_checkpoint(filename)
            self.net = self._build_local(model, repo, weights_path)
        else:
            if not allow_download:
                raise _unavailable(filename)
            real_from_url = torch.hub.load_state_dict_from_url

            def weights_only_from_url(*args, **kwargs):
                return real_from_url(*args, **{**kwargs, "weights_only": True})

            try:
                with mock.patch.object(torch.hub, "load_state_dict_from_url", weights_only_from_url):
                    self.net = FeatureExtractorDinoV2(model, ["dinov2"])
            except Exception as exc:  # noqa: BLE001 - only network failures are converted
                cause = network_cause(exc)
                if cause is None:
                    raise
                raise _unavailable(filename, cause) from None
            weights_path = cached_checkpoint(filename)
            if weights_path is None:
                self.weights_label = f"torch.hub {HUB_REPO} {MODEL_METADATA[model]}"
        self.weights_path = os.path.abspath(weights_path) if weights_path else None
        self.feature_dim = int(getattr(self.net.model, "embed_dim", FEATURE_DIMS[model]))
        self.freeze()

    @staticmethod
    def _build_local(model: str, repo: str, weights_path: str) -> FeatureExtractorDinoV2:
        real_load = torch.hub.load

        def load_local(_repo_or_dir, hub_name, *args, **kwargs):
            net = real_load(repo, hub_name, source="local", pretrained=False)
            state_dict = load_state_dict_file(weights_path, "DINOv2 weights file")
            try:  # strict=False like DINOv2's own hub loader, but refuse a file that matches nothing
                result = net.load_state_dict(state_dict, strict=False)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise WeightsUnavailableError(
                    f"cannot load DINOv2 weights {weights_path} into {hub_name}: {first}"
                ) from None
            if len(result.missing_keys) == len(net.state_dict()):
                raise WeightsUnavailableError(f"DINOv2 weights {weights_path} contain none of {hub_name}'s parameters")
            return net

        with mock.patch.object(torch.hub, "load", load_local):
            return FeatureExtractorDinoV2(model, ["dinov2"])

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_images(images, "dinov2")
        (features,) = self.net(to_uint8_rgb(images))
        return {"features": features}

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model_name}
