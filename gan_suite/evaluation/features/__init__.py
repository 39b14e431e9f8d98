"""Pluggable feature extractors for the evaluation metrics (no Lightning here).

    from gan_suite.evaluation.features import build_extractor
    extractor = build_extractor("inception", weights_path=None)
    out = extractor(images)  # images [N, C, H, W] in [-1, 1] -> {"features": [N, D], "logits": [N, K]}

Registered names: inception, dinov2, clip, mnist_classifier, raw2d. Add one with ``@register_extractor``.
"""

from .base import FeatureExtractor
from .registry import available_extractors, build_extractor, register_extractor

# Importing the modules registers their extractors.
from .clip import ClipExtractor
from .dinov2 import DinoV2Extractor
from .inception import InceptionExtractor
from .mnist_classifier import MnistClassifier
from .raw import Raw2D

__all__ = [
    "FeatureExtractor",
    "available_extractors",
    "build_extractor",
    "register_extractor",
    "ClipExtractor",
    "DinoV2Extractor",
    "InceptionExtractor",
    "MnistClassifier",
    "Raw2D",
]
