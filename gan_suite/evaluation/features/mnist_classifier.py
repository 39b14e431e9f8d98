"""``mnist_classifier``: a small CNN trained on real MNIST digits; features for FID-like metrics on
MNIST, logits for a classifier Inception Score, labels for mode counting (Stacked MNIST).

The weights ship inside the package (``weights/mnist_classifier.pt``, a state dict of MnistCNN);
``train_mnist_classifier.py`` reproduces them and MNIST_CLASSIFIER.md gives their accuracy.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.safe_files import first_line, load_state_dict_file

from ._hub import missing_weights_file
from .base import FeatureExtractor, check_images
from .registry import register_extractor

SHIPPED_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "mnist_classifier.pt")
IMAGE_SIZE = 28


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MnistCNN(nn.Module):
    """[N, 1, 28, 28] in [-1, 1] -> (features [N, 128], logits [N, 10]). About 280k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(1, 32),  # 32 x 28 x 28
            nn.MaxPool2d(2),  # 32 x 14 x 14
            _conv(32, 64),  # 64 x 14 x 14
            _conv(64, 64),  # 64 x 14 x 14
            nn.MaxPool2d(2),  # 64 x 7 x 7
            _conv(64, 128),  # 128 x 7 x 7
            nn.MaxPool2d(2),  # 128 x 3 x 3
            nn.Flatten(),  # 1152
        )
        self.penultimate = nn.Sequential(nn.Linear(128 * 3 * 3, 128), nn.ReLU(inplace=True))  # 128
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(128, 10)  # 10

    def forward(self, x: torch.Tensor):
        features = self.penultimate(self.body(x))
        return features, self.head(self.dropout(features))


def _to_28(images: torch.Tensor) -> torch.Tensor:
    if images.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE):
        return images
    return F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=True)


@register_extractor("mnist_classifier")
class MnistClassifier(FeatureExtractor):
    """MNIST digit classifier: features = 128-d penultimate activations (after ReLU), logits = 10.

    Args:
        weights_path: a state dict of MnistCNN; None loads the weights shipped in the package.
        pretrained: False leaves the network randomly initialised (for tests; describe() says "random").

    Input: [N, 1, H, W] float in [-1, 1], white digit on black (-1); other sizes are resized to 28x28.
    Three-channel (Stacked MNIST) images go through ``classify_channels``.
    """

    feature_dim = 128
    num_classes = 10
    float64_network = True
    feature_layer = "penultimate (128, after ReLU)"
    logits_layer = "head (10)"

    def __init__(self, weights_path: Optional[str] = None, pretrained: bool = True) -> None:
        super().__init__()
        self.net = MnistCNN()
        if pretrained:
            path = weights_path if weights_path is not None else SHIPPED_WEIGHTS
            if not os.path.isfile(path):
                raise missing_weights_file("MNIST classifier", path)
            state = load_state_dict_file(path, "MNIST classifier weights file")
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(f"MNIST classifier weights file {path} does not fit the classifier: {first_line(exc)}") from None
            self.weights_path = os.path.abspath(path)
        else:
            self.weights_label = "random"
        self.freeze()

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if torch.is_tensor(images) and images.dim() == 4 and images.shape[1] != 1:
            raise ConfigError(
                f"mnist_classifier expects 1-channel images [N, 1, H, W]; got {tuple(images.shape)} "
                "(for Stacked MNIST use classify_channels)"
            )
        check_images(images, "mnist_classifier", channels=(1,))
        features, logits = self.net(_to_28(images.to(self.compute_dtype)))
        return {"features": features, "logits": logits}

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 1, H, W] in [-1, 1] -> predicted digits, int64 [N]."""
        return self(images)["logits"].argmax(dim=1)

    def classify_channels(self, images: torch.Tensor) -> torch.Tensor:
        """Stacked MNIST: [N, 3, H, W] in [-1, 1] -> the digit in each channel, int64 [N, 3].

        The 1000-class label is ``100 * out[:, 0] + 10 * out[:, 1] + out[:, 2]``.
        """
        check_images(images, "mnist_classifier.classify_channels", channels=(3,))
        n, c, h, w = images.shape
        return self.classify(images.reshape(n * c, 1, h, w)).view(n, c)


@register_extractor("mnist_classifier_stacked")
class StackedMnistClassifier(MnistClassifier):
    """Stacked MNIST: the MNIST classifier applied to each of the three channels.

    features: the three channels' 128-d features concatenated, [N, 384];
    logits: log-probabilities of the 1000 digit triples, [N, 1000], with the channels treated as
    independent: log p(a, b, c) = log p_R(a) + log p_G(b) + log p_B(c), class = 100a + 10b + c
    (so the Inception Score is over the 1000 modes).
    Input: [N, 3, H, W] float in [-1, 1].
    """

    feature_dim = 3 * 128
    num_classes = 1000
    feature_layer = "penultimate (128, after ReLU) of each channel, concatenated (384)"
    logits_layer = "sum of the channels' log-softmax over digit triples (1000)"

    def extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_images(images, "mnist_classifier_stacked", channels=(3,))
        n, c, h, w = images.shape
        features, logits = self.net(_to_28(images.to(self.compute_dtype).reshape(n * c, 1, h, w)))
        logp = F.log_softmax(logits, dim=1).view(n, 3, 10)
        joint = logp[:, 0, :, None, None] + logp[:, 1, None, :, None] + logp[:, 2, None, None, :]
        return {"features": features.reshape(n, 3 * 128), "logits": joint.reshape(n, 1000)}
