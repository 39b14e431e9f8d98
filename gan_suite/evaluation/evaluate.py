"""``gan-suite evaluate --ckpt PATH``: every metric of a trained generator, with its protocol.

Streams: samples are generated, passed through the feature extractor and dropped batch by batch.
Real-data features are cached on disk (see :mod:`gan_suite.evaluation.real_cache`). Writes
``metrics.json`` (values plus the protocol that produced them), the nearest-neighbour picture,
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.checkpoint import build_datamodule, load_generator
from gan_suite.evaluation.metrics.registry import check_metric_names, metric_names, needs_of
from gan_suite.evaluation.protocol import (
    compute_metrics,
    default_extractor,
    default_metrics,
    default_num_samples,
    evaluation_context,
    format_table,
    mode_labeller,
    reference_sets,
)
from gan_suite.evaluation.real_cache import cache_key, cached_features
from gan_suite.evaluation.streaming import FeatureSet, dataset_features, generated_features


def _build_extractor(name: str, weights_path: Optional[str], device):
    from gan_suite.evaluation.features import build_extractor

    kwargs = {"weights_path": weights_path} if weights_path else {}
    return build_extractor(name, **kwargs).to(device)


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
) -> dict:
    """Evaluate the generator of ``ckpt_path``.

    Args:
        features: extractor name ('inception', 'dinov2', 'clip', 'mnist_classifier', 'raw2d') or
            'auto' (raw2d for points, mnist_classifier for MNIST-like data, inception otherwise).
        metrics: registered metric names (default: all that apply to the data and extractor).
        num_samples: generated samples (default 50k Inception / 10k MNIST / 2,500 2-D).
        real_split: the real reference split ('heldout' or 'train').
        num_real: real samples of the reference (default: the whole split).
        out_dir: where ``metrics.json`` and pictures go (default ``<run dir>/evaluation``).
        seed: seed of the evaluation noise.
        weights_path: weights file of the extractor (e.g. the Inception ``.pth``) for offline use.

    Returns:
        ``{"metrics": {...}, "protocol": {...}, "warnings": [...], "files": {...}}`` (also written
        to ``<out_dir>/metrics.json``).
    """
    started = time.time()
    device = torch.device(device)
    trained = load_generator(ckpt_path, use_ema=use_ema, device=device)
    if trained.data_spec is None:
        raise ConfigError(f"{ckpt_path} does not record its training data; cannot pick a real reference")
    datamodule = build_datamodule(trained.data_spec)
    data_name = getattr(datamodule, "name", "")
    mixture = getattr(datamodule, "mixture", None)
    extractor_name = default_extractor(trained.sample_shape, data_name) if features == "auto" else features
    extractor = _build_extractor(extractor_name, weights_path, device)
    context = evaluation_context(
        extractor_name, extractor.num_classes is not None, data_name, mixture,
        significance=significance, copy_quantile=copy_quantile, copy_stratify=copy_per_class,
        kid_subset_size=kid_subset_size, seed=seed, conditional=bool(getattr(trained.generator, "num_classes", 0)),
    )
    names = check_metric_names(metrics if metrics is not None else default_metrics(context))
    needs = needs_of(names)
    n_fake = num_samples or default_num_samples(extractor_name)
    out_dir = out_dir or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(ckpt_path))), "evaluation")
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        print(f"warning: {msg}", file=sys.stderr)

    labeller = mode_labeller(data_name, device) if "labels" in needs and mixture is None else None
    pixels = "pixels" in needs and len(trained.sample_shape) == 3
    description = extractor.describe()

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
    )
    real = real_set(real_split, num_real)
    train, heldout = reference_sets(needs, real, real_split, num_real is None, lambda split: real_set(split, None), datamodule, pixels)

    values = compute_metrics(names, fake, real, train, heldout, context=context, out_dir=out_dir, log=note)
    files = values.pop("files", {})
    result = {
        "metrics": values,
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
            "device": str(device),
            "seconds": round(time.time() - started, 2),
        },
        "warnings": notes,
        "files": files,
    }
    _write_json(result, os.path.join(out_dir, "metrics.json"))
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


def build_parser() -> argparse.ArgumentParser:
    from gan_suite.arguments import ArgumentParser, existing_file, int_at_least, probability, writable_dir

    p = ArgumentParser(prog="gan-suite evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="training checkpoint (e.g. runs/NAME/version_0/checkpoints/last.ckpt)")
    p.add_argument("--features", default="auto", help="inception | dinov2 | clip | mnist_classifier | raw2d | auto")
    p.add_argument("--metrics", default=None, help=f"comma-separated: {','.join(metric_names())} (default: all that apply)")
    p.add_argument("--num-samples", type=int_at_least(1), default=None, help="generated samples (default 50000 inception, 10000 mnist, 2500 2-D)")
    p.add_argument("--real-split", default="heldout", choices=["heldout", "train"], help="real reference split")
    p.add_argument("--num-real", type=int_at_least(1), default=None, help="real reference samples (default: whole split)")
    p.add_argument("--batch-size", type=int_at_least(1), default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=writable_dir, default=None, help="output folder (default: <run dir>/evaluation)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation noise")
    p.add_argument("--weights-path", type=existing_file, default=None, help="weights file of the feature extractor (offline use)")
    p.add_argument("--kid-subset-size", type=int_at_least(2), default=1000)
    p.add_argument("--significance", type=probability, default=0.01, help="level of the copying and mode-collapse tests (0.01)")
    p.add_argument("--copy-quantile", type=probability, default=0.01, help="held-out quantile below which a sample counts as a copy (0.01)")
    p.add_argument("--copy-pooled", action="store_true", help="copy test against the whole held-out null, not per classifier class")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw generator even when an EMA copy exists")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.metrics:
        check_metric_names(args.metrics.split(","))  # before any work starts
    result = evaluate_checkpoint(
        args.ckpt,
        features=args.features,
        metrics=args.metrics.split(",") if args.metrics else None,
        num_samples=args.num_samples,
        real_split=args.real_split,
        num_real=args.num_real,
        batch_size=args.batch_size,
        device=args.device,
        out_dir=args.out,
        seed=args.seed,
        weights_path=args.weights_path,
        kid_subset_size=args.kid_subset_size,
        use_ema=not args.no_ema,
        progress=not args.no_progress,
        significance=args.significance,
        copy_quantile=args.copy_quantile,
        copy_per_class=not args.copy_pooled,
    )
    proto = result["protocol"]
    print(
        f"{proto['extractor']['name']} features, {proto['n_generated']} generated vs {proto['n_real']} real "
        f"({proto['real_split']} split of {proto['data']['name']}), step {proto['iteration']}, seed {proto['seed']}"
    )
    print(format_table(result["metrics"]))
    out = os.path.dirname(result["protocol"]["checkpoint"])
    print(f"written: {os.path.join(args.out or os.path.join(os.path.dirname(out), 'evaluation'), 'metrics.json')}")
    for name, path in result["files"].items():
        print(f"written: {path}")
    return 0
