"""On-disk cache of real-data features, keyed by dataset, split, extractor and sample count."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

import torch

from gan_suite.errors import GanSuiteError
from gan_suite.evaluation.streaming import FeatureSet
from gan_suite.safe_files import load_tensors

#: what a cache file holds
_STORED = {"features", "logits", "labels"}

#: arguments of a data module that do not change its samples
_IRRELEVANT = {"batch_size", "num_workers"}


def default_cache_dir() -> str:
    """``$GAN_SUITE_CACHE/real_features`` or ``~/.cache/gan_suite/real_features``."""
    root = os.environ.get("GAN_SUITE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gan_suite")
    return os.path.join(root, "real_features")


def cache_key(data_spec: dict, split: str, extractor_description: dict, num_samples: int | None, labelled_by: str | None) -> str:
    """A stable hash of everything that determines the cached features."""
    init_args = {k: v for k, v in (data_spec.get("init_args") or {}).items() if k not in _IRRELEVANT}
    blob = json.dumps(
        {
            "data": data_spec.get("class_path"),
            "init_args": init_args,
            "split": split,
            "extractor": {k: v for k, v in extractor_description.items() if k != "weights_path"},
            "num_samples": num_samples,
            "labelled_by": labelled_by,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def cached_features(key: str, compute: Callable[[], FeatureSet], cache_dir: str | None = None) -> tuple[FeatureSet, bool]:
    """Load the features stored under ``key`` or compute and store them; returns (features, was_cached)."""
    folder = cache_dir or default_cache_dir()
    path = os.path.join(folder, f"{key}.pt")
    if os.path.isfile(path):
        try:  # tensors only (weights_only=True): a cache file cannot run code
            stored = load_tensors(path, "cached features")
            if isinstance(stored, dict) and set(stored) == _STORED and all(
                v is None or isinstance(v, torch.Tensor) for v in stored.values()
            ):
                return FeatureSet(**stored), True
        except GanSuiteError:  # a damaged or foreign cache file is recomputed, never trusted
            pass
    features = compute()
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save({"features": features.features, "logits": features.logits, "labels": features.labels}, tmp)
    os.replace(tmp, path)
    return FeatureSet(features.features, features.logits, features.labels, features.pixels), False
