"""Every metric of a trained generator, with its protocol (``gan-suite evaluate``; options in
:mod:`gan_suite.evaluation.evaluate_cli`).

Streams: samples are generated, passed through the feature extractor and dropped batch by batch.
Real-data features are cached on disk (see :mod:`gan_suite.evaluation.real_cache`). Writes
``metrics.json`` (values plus the protocol that produced them), the nearest-neighbour picture,
and prints a table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional, Sequence

import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.bootstrap import DEFAULT_RESAMPLES
from gan_suite.evaluation.checkpoint import build_datamodule, load_generator
from gan_suite.evaluation.metrics.registry import check_metric_names, need_kept_features, needs_of
from gan_suite.evaluation.output_folder import add_to_index, claim_folder, evaluation_root, protocol_folder_name
from gan_suite.evaluation.protocol import (
    compute_metrics,
    default_extractor,
    default_metrics,
    default_num_samples,
    evaluation_context,
    metric_intervals,
    mode_labeller,
    reference_sets,
)
from gan_suite.evaluation.real_cache import cache_key, cached_features
from gan_suite.evaluation.streaming import FeatureSet, dataset_features, generated_features


def _build_extractor(name: str, weights_path: Optional[str], device):
    from gan_suite.evaluation.features import build_extractor

    kwargs = {"weights_path": weights_path} if weights_path else {}
    return build_extractor(name, **kwargs).to(device)


FEATURE_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def feature_dtype(name: str) -> torch.dtype:
    """'float16' | 'float32' | 'float64' -> the torch dtype (one-line ConfigError otherwise)."""
    if name not in FEATURE_DTYPES:
        raise ConfigError(f"unknown feature dtype {name!r}; choose from: {', '.join(FEATURE_DTYPES)}")
    return FEATURE_DTYPES[name]


def evaluate_checkpoint(
    ckpt_path: str,
    *,
    features: str = "auto",
    metrics: Optional[Sequence[str]] = None,
    num_samples: Optional[int] = None,
    real_split: str = "heldout",
    num_real: Optional[int] = None,
    batch_size: int = 256,
    device: str = "cpu",
    out_dir: Optional[str] = None,
    seed: int = 0,
    weights_path: Optional[str] = None,
    kid_subset_size: int = 1000,
    use_ema: bool = True,
    cache_dir: Optional[str] = None,
    progress: bool = True,
    significance: float = 0.01,
    copy_quantile: float = 0.01,
    copy_per_class: bool = True,
    bootstrap: Optional[int] = DEFAULT_RESAMPLES,
    dtype: str = "float32",
    feature_storage: Optional[str] = None,
    overwrite: bool = False,
) -> dict:
    """Evaluate the generator of ``ckpt_path``.

    Args:
        features: extractor name ('inception', 'dinov2', 'clip', 'mnist_classifier', 'raw2d') or
            'auto' (raw2d for points, mnist_classifier for MNIST-like data, inception otherwise).
        metrics: registered metric names (default: all that apply to the data and extractor).
        num_samples: generated samples (default 50k Inception / 10k MNIST / 2,500 2-D).
        real_split: the real reference split ('heldout' or 'train').
        num_real: real samples of the reference (default: the whole split).
        out_dir: where ``metrics.json`` and pictures go (default: a folder of its own for this
            checkpoint step and protocol, see :mod:`gan_suite.evaluation.output_folder`).
        overwrite: replace an earlier result of the same protocol in the default folder.
        seed: seed of the evaluation noise.
        weights_path: weights file of the extractor (e.g. the Inception ``.pth``) for offline use.
        bootstrap: resamples of the generated set behind each metric's interval (0: none); see
            :mod:`gan_suite.evaluation.bootstrap`.
        dtype: 'float32' or 'float64': the extractor's outputs (and its network, where it
            supports float64) and the kept features; moments are always accumulated in float64.
        feature_storage: dtype of the kept generated features ('float16' halves their memory;
            default: ``dtype``). Only FID without bootstrap keeps no features at all.

    Returns:
        ``{"metrics": {...}, "intervals": {key: [low, high]}, "not_bootstrapped": {key: reason},
        "protocol": {...}, "warnings": [...], "files": {...}}`` (also written
        to ``<out_dir>/metrics.json``).
    """
    started = time.time()
    bootstrap = DEFAULT_RESAMPLES if bootstrap is None else bootstrap
    device = torch.device(device)
    trained = load_generator(ckpt_path, use_ema=use_ema, device=device)
    if trained.data_spec is None:
        raise ConfigError(f"{ckpt_path} does not record its training data; cannot pick a real reference")
    datamodule = build_datamodule(trained.data_spec)
    data_name = getattr(datamodule, "name", "")
    mixture = getattr(datamodule, "mixture", None)
    extractor_name = default_extractor(trained.sample_shape, data_name) if features == "auto" else features
    extractor = _build_extractor(extractor_name, weights_path, device).use_dtype(feature_dtype(dtype))
    context = evaluation_context(
        extractor_name, extractor.num_classes is not None, data_name, mixture,
        significance=significance, copy_quantile=copy_quantile, copy_stratify=copy_per_class,
        kid_subset_size=kid_subset_size, seed=seed, conditional=bool(getattr(trained.generator, "num_classes", 0)),
    )
    names = check_metric_names(metrics if metrics is not None else default_metrics(context))
    needs = needs_of(names)
    n_fake = num_samples or default_num_samples(extractor_name)
    description = extractor.describe()
    index_root = None
    if out_dir is None:
        settings = {
            "metrics": names, "real_split": real_split, "num_real": num_real, "weights": trained.weights,
            "extractor": description, "kid_subset_size": kid_subset_size, "significance": significance,
            "copy_quantile": copy_quantile, "copy_per_class": copy_per_class, "bootstrap": bootstrap, "dtype": dtype,
        }
        index_root = evaluation_root(ckpt_path)
        out_dir = claim_folder(
            os.path.join(index_root, protocol_folder_name(ckpt_path, trained.iteration, extractor_name, n_fake, seed, settings)),
            overwrite,
        )
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        print(f"warning: {msg}", file=sys.stderr)

    labeller = mode_labeller(data_name, device) if "labels" in needs and mixture is None else None
    pixels = "pixels" in needs and len(trained.sample_shape) == 3

    def real_set(split: str, n: Optional[int]) -> FeatureSet:
        key = cache_key(trained.data_spec, split, description, n, "mnist_classifier" if labeller else None)
        dataset = datamodule.split(split)
        fs, hit = cached_features(
            key,
            lambda: dataset_features(dataset, extractor, n, batch_size, device, labeller=labeller, progress=progress),
            cache_dir,
        )
        if hit and progress:
            print(f"real features of '{split}' read from the cache", file=sys.stderr)
        return fs

    fake = generated_features(
        trained.generator, trained.latent_dim, extractor, n_fake, batch_size, device, seed,
        labeller=labeller, pixels=pixels, progress=progress,
        keep_features=need_kept_features(names, bootstrap), storage_dtype=feature_dtype(feature_storage or dtype),
    )
    real = real_set(real_split, num_real)
    train, heldout = reference_sets(needs, real, real_split, num_real is None, lambda split: real_set(split, None), datamodule, pixels)

    values = compute_metrics(names, fake, real, train, heldout, context=context, out_dir=out_dir, log=note)
    files = values.pop("files", {})
    uncertainty = metric_intervals(names, fake, real, train, heldout, context, values, bootstrap, seed, progress)
    result = {
        "metrics": values,
        "intervals": uncertainty["intervals"],
        "not_bootstrapped": uncertainty["not_bootstrapped"],
        "protocol": {
            "checkpoint": os.path.abspath(ckpt_path),
            "iteration": trained.iteration,
            "weights": trained.weights,
            "extractor": description,
            "data": {**datamodule.describe(), "class_path": trained.data_spec["class_path"]},
            "real_split": real_split,
            "n_real": len(real),
            "n_generated": len(fake),
            "n_train": len(train) if train is not None else None,
            "seed": seed,
            "metrics": names,
            "kid_subset_size": min(kid_subset_size, len(fake), len(real)) if "kid" in names else None,
            "significance": significance,
            "copy_quantile": copy_quantile if "memorisation" in names else None,
            "copy_per_class": copy_per_class if "memorisation" in names else None,
            "bootstrap": uncertainty["bootstrap"],
            "dtype": dtype,
            "feature_storage": (feature_storage or dtype) if fake.features is not None else "moments only",
            "device": str(device),
            "seconds": round(time.time() - started, 2),
        },
        "warnings": notes,
        "files": files,
    }
    result["files"]["metrics"] = os.path.join(out_dir, "metrics.json")
    _write_json(result, result["files"]["metrics"])
    if index_root is not None:
        add_to_index(index_root, {
            "folder": os.path.relpath(out_dir, index_root), "checkpoint": os.path.abspath(ckpt_path),
            "iteration": trained.iteration, "extractor": extractor_name, "n_generated": len(fake), "seed": seed,
            "metrics": names,
        })
    return result


def _write_json(obj: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)
