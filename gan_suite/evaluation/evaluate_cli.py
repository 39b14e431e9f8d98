"""``gan-suite evaluate --ckpt PATH``: every metric of a trained generator, with its protocol.

The options are parsed and checked before torch or any metric is imported, so ``--help`` and
bad options answer at once; :func:`gan_suite.evaluation.evaluate.evaluate_checkpoint` does the work.
"""

from __future__ import annotations

import argparse
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    from gan_suite.arguments import ArgumentParser, existing_file, int_at_least, probability, writable_dir

    p = ArgumentParser(prog="gan-suite evaluate", description=__doc__.splitlines()[0].strip("`").split("``: ")[-1])
    p.add_argument("--ckpt", required=True, help="training checkpoint (e.g. runs/quickstart/quickstart/checkpoints/last.ckpt)")
    p.add_argument("--features", default="auto", help="inception | dinov2 | clip | mnist_classifier | mnist_classifier_stacked | raw2d | auto")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: all that apply; --list-metrics shows them)")
    p.add_argument("--list-metrics", action=_ListMetrics, help="list the registered metrics with what each needs, and exit")
    p.add_argument("--num-samples", type=int_at_least(1), default=None, help="generated samples (default 50000 inception, 10000 mnist, 2500 2-D)")
    p.add_argument("--real-split", default="heldout", choices=["heldout", "train"], help="real reference split")
    p.add_argument("--num-real", type=int_at_least(1), default=None, help="real reference samples (default: whole split)")
    p.add_argument("--batch-size", type=int_at_least(1), default=256)
    p.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--out", type=writable_dir, default=None,
                   help="output folder (default: <run dir>/evaluation/<checkpoint-step-protocol>/, indexed in index.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier result of the same checkpoint step and protocol")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation noise")
    p.add_argument("--weights-path", type=existing_file, default=None, help="weights file of the feature extractor (offline use)")
    p.add_argument("--kid-subset-size", type=int_at_least(2), default=1000)
    p.add_argument("--significance", type=probability, default=0.01, help="level of the copying and mode-collapse tests (0.01)")
    p.add_argument("--copy-quantile", type=probability, default=0.01, help="held-out quantile below which a sample counts as a copy (0.01)")
    p.add_argument("--copy-pooled", action="store_true", help="copy test against the whole held-out null, not per classifier class")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw generator even when an EMA copy exists")
    p.add_argument("--no-progress", action="store_true")
    return p


class _ListMetrics(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(metrics_listing())
        parser.exit()


def metrics_listing() -> str:
    """One line per registered metric: name, what it needs, its outputs."""
    from gan_suite.evaluation.metrics.registry import get_metric, metric_names

    lines = []
    for name in metric_names():
        metric = get_metric(name)
        needs = ", ".join(sorted(metric.needs)) or "generated samples only"
        lines.append(f"{name:14s} {metric.description} (needs: {needs}; outputs: {', '.join(o.key for o in metric.outputs)})")
    return "\n".join(lines)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    from gan_suite.evaluation.evaluate import evaluate_checkpoint
    from gan_suite.evaluation.metrics.registry import check_metric_names
    from gan_suite.evaluation.protocol import format_table

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
        device=_device(args.device),
        out_dir=args.out,
        seed=args.seed,
        weights_path=args.weights_path,
        kid_subset_size=args.kid_subset_size,
        use_ema=not args.no_ema,
        progress=not args.no_progress,
        significance=args.significance,
        copy_quantile=args.copy_quantile,
        copy_per_class=not args.copy_pooled,
        overwrite=args.overwrite,
    )
    proto = result["protocol"]
    print(
        f"{proto['extractor']['name']} features, {proto['n_generated']} generated vs {proto['n_real']} real "
        f"({proto['real_split']} split of {proto['data']['name']}), step {proto['iteration']}, seed {proto['seed']}"
    )
    print(format_table(result["metrics"]))
    for path in result["files"].values():
        print(f"written: {path}")
    return 0
