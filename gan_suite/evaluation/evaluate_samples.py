"""Evaluate images that no gan_suite checkpoint produced: a folder or array file of samples
(``gan-suite evaluate --samples PATH --real PATH|DATA-MODULE[:split]``), or any callable
generator (noise -> images) from Python (:func:`evaluate_generator`).

The real reference is a folder, an array file, a shipped data module's split or a ``mu``/``sigma``
statistics file (then only the metrics that need no more than the real moments run: FID and
FD-infinity). ``export_real_stats`` writes the real features' statistics in that format, with the
extractor's name and weights hash inside. Metrics that need the training set (the copying and
mode-collapse checks) run only when ``train`` is given; otherwise the result says so.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional, Sequence

import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.bootstrap import DEFAULT_RESAMPLES
from gan_suite.evaluation.metrics.fid import FeatureMoments
from gan_suite.evaluation.metrics.registry import check_metric_names, get_metric, need_kept_features, needs_of
from gan_suite.evaluation.protocol import compute_metrics, default_extractor, default_metrics, evaluation_context, metric_intervals, mode_labeller
from gan_suite.evaluation.sample_sources import (
    ImageSource,
    check_statistics_match,
    is_statistics_file,
    open_images,
    read_statistics,
    write_statistics,
)
from gan_suite.evaluation.streaming import FeatureSet, _collect, evaluation_noise

#: sample count recorded for statistics files that do not say theirs (only mean and covariance are used)
UNKNOWN_COUNT = 10**9


def _moments_of_statistics(stats) -> FeatureMoments:
    moments = FeatureMoments()
    moments.n = stats.n or UNKNOWN_COUNT
    moments.sum = stats.mu * moments.n
    moments.sum_outer = stats.sigma * (moments.n - 1) + moments.n * torch.outer(stats.mu, stats.mu)
    return moments


def _features(source: ImageSource, extractor, batch_size, device, labeller, pixels, progress, desc, limit=None, keep=True, storage=None) -> FeatureSet:
    n = len(source) if limit is None else min(limit, len(source))
    return _collect(source.batches(batch_size, device, limit), extractor, labeller, n, pixels, progress, desc, keep, storage)


def evaluate_features(
    fake_batches,
    num_fake: int,
    sample_shape: Sequence[int],
    real: str,
    *,
    train: Optional[str] = None,
    description: dict,
    features: str = "auto",
    metrics: Optional[Sequence[str]] = None,
    num_real: Optional[int] = None,
    batch_size: int = 256,
    device: str = "cpu",
    weights_path: Optional[str] = None,
    kid_subset_size: int = 1000,
    seed: int = 0,
    bootstrap: Optional[int] = DEFAULT_RESAMPLES,
    dtype: str = "float32",
    feature_storage: Optional[str] = None,
    export_real_stats: Optional[str] = None,
    significance: float = 0.01,
    copy_quantile: float = 0.01,
    progress: bool = True,
    out_dir: Optional[str] = None,
) -> dict:
    """Metrics of generated images given as batches (x float [B, C, H, W] in [-1, 1], None).

    Returns ``{"metrics", "intervals", "not_bootstrapped", "protocol", "warnings", "files"}``.
    """
    from gan_suite.evaluation.evaluate import _build_extractor, feature_dtype

    started = time.time()
    bootstrap = DEFAULT_RESAMPLES if bootstrap is None else bootstrap
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        print(f"warning: {message}", file=sys.stderr)

    statistics = read_statistics(real) if is_statistics_file(real) else None
    real_source = None if statistics is not None else open_images(real)
    data_name = real_source.description.get("name", "") if real_source is not None else ""
    extractor_name = default_extractor(sample_shape, data_name) if features == "auto" else features
    extractor = _build_extractor(extractor_name, weights_path, torch.device(device)).use_dtype(feature_dtype(dtype))
    described = extractor.describe()
    context = evaluation_context(
        extractor_name, extractor.num_classes is not None, data_name, None,
        significance=significance, copy_quantile=copy_quantile, kid_subset_size=kid_subset_size, seed=seed,
    )
    names = check_metric_names(metrics if metrics is not None else default_metrics(context))
    if statistics is not None:
        check_statistics_match(statistics, described)
        unusable = [n for n in names if not get_metric(n).real_moments_suffice]
        if metrics is not None and unusable:
            raise ConfigError(f"{real} holds statistics only: {', '.join(unusable)} need real features (use a folder, array file or data module)")
        names = [n for n in names if n not in unusable]
    if train is None:
        needing_train = [n for n in names if "train" in get_metric(n).needs]
        if needing_train:
            note(f"{', '.join(needing_train)} not run: the copying and mode-collapse checks need the training set (give --train PATH|DATA-MODULE:train, or train= in Python)")
            names = [n for n in names if n not in needing_train]
    needs = needs_of(names)
    labeller = mode_labeller(data_name, device) if "labels" in needs else None
    pixels = "pixels" in needs and len(sample_shape) == 3
    storage = feature_dtype(feature_storage or dtype)
    fake = _collect(fake_batches, extractor, labeller, num_fake, pixels, progress, "generated", need_kept_features(names, bootstrap), storage)
    if statistics is not None:
        real_set = FeatureSet(features=None, moments=_moments_of_statistics(statistics))
    else:
        real_set = _features(real_source, extractor, batch_size, device, labeller, pixels, progress, "real", num_real)
    if export_real_stats:
        write_statistics(export_real_stats, real_set.feature_moments(), described)
    train_set = heldout = None
    if train is not None:
        train_set = _features(open_images(train), extractor, batch_size, device, labeller, pixels, progress, "train")
        heldout = real_set
    values = compute_metrics(names, fake, real_set, train_set, heldout, context=context, out_dir=out_dir, log=note)
    files = values.pop("files", {})
    uncertainty = metric_intervals(names, fake, real_set, train_set, heldout, context, values, bootstrap, seed, progress)
    return {
        "metrics": values,
        "intervals": uncertainty["intervals"],
        "not_bootstrapped": uncertainty["not_bootstrapped"],
        "protocol": {
            "samples": description,
            "real": statistics.path if statistics is not None else real_source.description,
            "train": train,
            "extractor": described,
            "n_real": len(real_set),
            "n_generated": len(fake),
            "n_train": len(train_set) if train_set is not None else None,
            "metrics": names,
            "seed": seed,
            "bootstrap": uncertainty["bootstrap"],
            "dtype": dtype,
            "real_statistics_written": export_real_stats,
            "seconds": round(time.time() - started, 2),
        },
        "warnings": notes,
        "files": files,
    }


def evaluate_samples(samples: str, real: str, **options) -> dict:
    """Metrics of the images in ``samples`` (folder or array file) against ``real``; options as
    :func:`evaluate_features` (``out_dir``: where ``metrics.json`` goes, None: not written)."""
    source = open_images(samples)
    if source.images is None:
        raise ConfigError(f"--samples {samples}: give a folder of images or an .npy/.npz array file")
    batch_size, device = options.get("batch_size", 256), options.get("device", "cpu")
    result = evaluate_features(source.batches(batch_size, device), len(source), source.sample_shape, real, description=source.description, **options)
    _write(result, options.get("out_dir"))
    return result


@torch.no_grad()
def evaluate_generator(generator: Callable[[torch.Tensor], torch.Tensor], latent_dim: int, num_samples: int, real: str, **options) -> dict:
    """Metrics of any callable generator: noise [B, latent_dim] (the evaluation noise of
    ``seed``, as for checkpoints) -> images float [B, C, H, W] in [-1, 1]."""
    batch_size, device, seed = options.get("batch_size", 256), options.get("device", "cpu"), options.get("seed", 0)
    probe = generator(evaluation_noise(seed, latent_dim, 0, 1).to(device))

    def batches():
        for lo in range(0, num_samples, batch_size):
            hi = min(lo + batch_size, num_samples)
            yield generator(evaluation_noise(seed, latent_dim, lo, hi).to(device)), None

    description = {"kind": "callable", "name": getattr(generator, "__name__", type(generator).__name__), "latent_dim": latent_dim}
    result = evaluate_features(batches(), num_samples, tuple(probe.shape[1:]), real, description=description, **options)
    _write(result, options.get("out_dir"))
    return result


def export_statistics(real: str, path: str, *, features: str = "auto", weights_path: Optional[str] = None, num_real: Optional[int] = None,
                      batch_size: int = 256, device: str = "cpu", dtype: str = "float32", progress: bool = True) -> str:
    """Write the ``mu``/``sigma`` statistics of ``real``'s features (with the extractor's name and
    weights hash) to ``path``; returns ``path``."""
    from gan_suite.evaluation.evaluate import _build_extractor, feature_dtype

    source = open_images(real)
    name = default_extractor(source.sample_shape, source.description.get("name", "")) if features == "auto" else features
    extractor = _build_extractor(name, weights_path, torch.device(device)).use_dtype(feature_dtype(dtype))
    real_set = _features(source, extractor, batch_size, device, None, False, progress, "real", num_real, keep=False)
    return write_statistics(path, real_set.feature_moments(), extractor.describe())


def _write(result: dict, out_dir: Optional[str]) -> None:
    if out_dir:
        from gan_suite.evaluation.evaluate import _write_json

        _write_json(result, os.path.join(out_dir, "metrics.json"))


def main_without_checkpoint(args) -> int:
    """``gan-suite evaluate --samples PATH --real REF`` (or ``--real REF --export-real-stats NPZ``)."""
    from gan_suite.errors import UsageError
    from gan_suite.evaluation.protocol import format_table

    if args.samples is None and not (args.real and args.export_real_stats):
        raise UsageError("give --ckpt, or --samples with --real, or --real with --export-real-stats")
    if args.samples is not None and args.real is None:
        raise UsageError("--samples needs --real (a folder, an array file, DATA-MODULE[:split] or a statistics .npz)")
    common = dict(features=args.features, weights_path=args.weights_path, num_real=args.num_real, batch_size=args.batch_size,
                  device=args.device, dtype=args.dtype, progress=not args.no_progress)
    if args.samples is None:
        print(f"written: {export_statistics(args.real, args.export_real_stats, **common)}")
        return 0
    out_dir = args.out or os.path.splitext(os.path.abspath(args.samples.rstrip(os.sep)))[0] + "_evaluation"
    result = evaluate_samples(
        args.samples, args.real, train=args.train, metrics=args.metrics.split(",") if args.metrics else None, out_dir=out_dir,
        seed=args.seed, kid_subset_size=args.kid_subset_size, bootstrap=args.bootstrap, feature_storage=args.feature_storage,
        export_real_stats=args.export_real_stats, significance=args.significance, copy_quantile=args.copy_quantile, **common,
    )
    proto = result["protocol"]
    print(f"{proto['extractor']['name']} features, {proto['n_generated']} samples from {args.samples} vs {proto['n_real']} real ({args.real})")
    print(format_table(result["metrics"], result["intervals"]))
    print(f"written: {os.path.join(out_dir, 'metrics.json')}")
    if args.export_real_stats:
        print(f"written: {args.export_real_stats}")
    return 0
