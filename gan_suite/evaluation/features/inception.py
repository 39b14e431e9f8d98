"""``inception``: the TF-compatible FID Inception-v3 of torch-fidelity (2048-d pool features, 1008 logits).

torch-fidelity's ``FeatureExtractorInceptionV3`` loads its weights in the constructor: with
``feature_extractor_weights_path=None`` it calls ``torch.hub.load_state_dict_from_url``, which uses
``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`` when present and
downloads it otherwise (offline: URLError at construction); with a path it unpickles the file
without restriction; both would run code planted in a weights file. So the
file is always read here with ``weights_only=True``, checked against the network's parameter names
and shapes, and handed to torch-fidelity's constructor in memory (its download-and-load function
is replaced for the call); a missing file is downloaded with ``torch.hub.download_url_to_file``
and then read the same way. It wants uint8 [N, 3, H, W] in [0, 255] and resizes to 299
with a TF1-compatible bilinear resize.
"""

from __future__ import annotations

import os
from typing import Dict, Optional
from unittest import mock

import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from gan_suite.errors import ConfigError
from gan_suite.safe_files import load_state_dict_file

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
            and otherwise downloads it there.
        allow_download: when False, never touch the network (missing file -> WeightsUnavailableError).

    Input: [N, 1|3, H, W] float in [-1, 1], any H, W; 1 channel is tiled to 3.
    Raises WeightsUnavailableError (one line) when the weights can be neither found nor downloaded,
    UnsafeFileError when the file needs more than tensors to load, ConfigError when it is not
    Inception-v3's state dict.
    """

    feature_dim = 2048
    num_classes = 1008
    feature_layer = FEATURE_LAYER
    logits_layer = LOGITS_LAYER

    def __init__(self, weights_path: Optional[str] = None, allow_download: bool = True) -> None:
        super().__init__()
        if weights_path is not None:
            if not os.path.isfile(weights_path):
                raise missing_weights_file("Inception", weights_path)
        else:
            weights_path = cached_checkpoint(WEIGHTS_FILE)
        if weights_path is None:
            if not allow_download:
                raise weights_unavailable("Inception", WEIGHTS_FILE)
            weights_path = os.path.join(hub_checkpoints_dir(), WEIGHTS_FILE)
            try:
                os.makedirs(hub_checkpoints_dir(), exist_ok=True)
                torch.hub.download_url_to_file(URL_INCEPTION_V3, weights_path, progress=True)
            except Exception as exc:  # noqa: BLE001 - only network failures are converted
                cause = network_cause(exc)
                if cause is None:
                    raise
                raise weights_unavailable("Inception", WEIGHTS_FILE, cause) from None
        self.net = build_inception(load_state_dict_file(weights_path, "Inception weights file"), weights_path)
        self.weights_path = os.path.abspath(weights_path)
        self.freeze()

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_images(images, "inception")
        features, logits = self.net(to_uint8_rgb(images))
        return {"features": features, "logits": logits}


class _CheckedInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's network whose constructor-time ``load_state_dict`` first checks names and shapes."""

    source = "weights"

    def load_state_dict(self, state_dict, strict=True, assign=False):
        expected = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state_dict.items()}
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
            if wrong:
                parts.append(f"{len(wrong)} of wrong shape (e.g. {wrong[0]}: {list(got[wrong[0]])} instead of {list(expected[wrong[0]])})")
            raise ConfigError(f"{self.source} do not fit torch-fidelity's Inception-v3: parameters {', '.join(parts)}")
        return super().load_state_dict(state_dict, strict=True, assign=assign)


def build_inception(state_dict: Dict[str, torch.Tensor], source: str = "state dict", layers=(FEATURE_LAYER, LOGITS_LAYER)) -> FeatureExtractorInceptionV3:
    """torch-fidelity's Inception-v3 with ``state_dict`` (checked parameter by parameter) as its weights.

    torch-fidelity's constructor loads weights itself (an unrestricted unpickling of its file, or
    its hub download); its module-level ``load_state_dict_from_url`` is replaced for the call by one
    that returns ``state_dict``, so no file is opened there. Raises ConfigError (one line) when a
    name or shape differs; ``source`` names the file in that message.
    """

    class Checked(_CheckedInceptionV3):
        pass

    Checked.source = f"Inception weights {source}"
    with mock.patch.object(fidelity_inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
        return Checked("inception-v3-compat", list(layers))


def write_random_weights(path: str, seed: int = 0) -> str:
    """Save a randomly initialised state dict of torch-fidelity's Inception to `path` (about 91 MB).

    Convolutions get He-normal weights so features stay O(1) instead of vanishing (about 1e-8 with
    PyTorch's default init), which keeps FID/KID numerically well-posed in plumbing tests.
    For offline plumbing tests only: features from it are meaningless. Returns `path`.
    """

    class Random(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
            return None

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with mock.patch.object(fidelity_inception, "load_state_dict_from_url", lambda *args, **kwargs: {}):
            net = Random("inception-v3-compat", [FEATURE_LAYER])
        for module in net.modules():  # He init keeps activations O(1) through ~90 ReLU layers
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path
