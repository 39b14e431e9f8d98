"""``inception``: the TF-compatible FID Inception-v3 of torch-fidelity (2048-d pool features, 1008 logits).

torch-fidelity's ``FeatureExtractorInceptionV3`` loads its weights in the constructor: with
``feature_extractor_weights_path=None`` it calls ``torch.hub.load_state_dict_from_url``, which uses
``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`` when present and
downloads it otherwise (offline: URLError at construction); with a path it calls
``torch.load(path, weights_only=False)``. It wants uint8 [N, 3, H, W] in [0, 255] and resizes to 299
with a TF1-compatible bilinear resize.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, Optional

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from ._hub import cached_checkpoint, hub_checkpoints_dir, missing_weights_file, network_cause, weights_unavailable
from .base import FeatureExtractor, check_images, to_uint8_rgb
from .registry import register_extractor

WEIGHTS_FILE = os.path.basename(URL_INCEPTION_V3)  # weights-inception-2015-12-05-6726825d.pth
FEATURE_LAYER = "2048"
LOGITS_LAYER = "logits_unbiased"


@register_extractor("inception")
class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3: features = 2048-d pool3 ('2048'), logits = 1008 'logits_unbiased' (for IS).

    Args:
        weights_path: the weights file; None looks for WEIGHTS_FILE in the torch.hub checkpoints dir
            and otherwise tries torch-fidelity's download.
        allow_download: when False, never touch the network (missing file -> WeightsUnavailableError).

    Input: [N, 1|3, H, W] float in [-1, 1], any H, W; 1 channel is tiled to 3.
    Raises WeightsUnavailableError (one line) when the weights can be neither found nor downloaded.
    """

    feature_dim = 2048
    num_classes = 1008
    feature_layer = FEATURE_LAYER
    logits_layer = LOGITS_LAYER

    def __init__(self, weights_path: Optional[str] = None, allow_download: bool = True) -> None:
        super().__init__()
        layers = [FEATURE_LAYER, LOGITS_LAYER]
        if weights_path is not None:
            if not os.path.isfile(weights_path):
                raise missing_weights_file("Inception", weights_path)
        else:
            weights_path = cached_checkpoint(WEIGHTS_FILE)
        if weights_path is None:
            if not allow_download:
                raise weights_unavailable("Inception", WEIGHTS_FILE)
            try:
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", layers, verbose=True)
            except Exception as exc:  # noqa: BLE001 - only network failures are converted
                cause = network_cause(exc)
                if cause is None:
                    raise
                raise weights_unavailable("Inception", WEIGHTS_FILE, cause) from None
            weights_path = os.path.join(hub_checkpoints_dir(), WEIGHTS_FILE)
        else:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", layers, feature_extractor_weights_path=weights_path
            )
        self.weights_path = os.path.abspath(weights_path)
        self.freeze()

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_images(images, "inception")
        features, logits = self.net(to_uint8_rgb(images))
        return {"features": features, "logits": logits}


class _RandomInceptionV3(FeatureExtractorInceptionV3):
    def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
        return None


def write_random_weights(path: str, seed: int = 0) -> str:
    """Save a randomly initialised state dict of torch-fidelity's Inception to `path` (about 91 MB).

    Convolutions get He-normal weights so features stay O(1) instead of vanishing (about 1e-8 with
    PyTorch's default init), which keeps FID/KID numerically well-posed in plumbing tests.
    For offline plumbing tests only: features from it are meaningless. Returns `path`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.pth")
        torch.save({}, empty)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _RandomInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
            for module in net.modules():  # He init keeps activations O(1) through ~90 ReLU layers
                if isinstance(module, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path
