"""Which extractor, metrics and sample counts an evaluation uses; the metrics themselves are
declared in :mod:`gan_suite.evaluation.metrics.registry` (``gan-suite evaluate --metrics`` lists
them: ``fid``, ``is``, ``kid``, ``pr``, ``dc``, ``memorisation``, ``modes``, ``intra_fid``, ``parzen``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from gan_suite.evaluation import metrics as M
from gan_suite.evaluation.metrics.registry import EvaluationContext, MetricInputs, format_value, get_metric
from gan_suite.evaluation.streaming import FeatureSet

#: data modules whose samples the shipped MNIST classifier can label, and their class counts
CLASSIFIER_LABELLED = {"mnist_bundled": 10, "mnist": 10, "stacked_mnist": 1000}


def default_extractor(sample_shape: Sequence[int], data_name: str = "") -> str:
    """raw2d for points, the MNIST classifier for MNIST-like digits (per channel for Stacked
    MNIST), inception otherwise."""
    if len(sample_shape) == 1:
        return "raw2d"
    if data_name == "stacked_mnist":
        return "mnist_classifier_stacked"
    if data_name in CLASSIFIER_LABELLED:
        return "mnist_classifier"
    return "inception"


def default_num_samples(extractor: str) -> int:
    """The field's sample counts: 50k for Inception-type features, 10k for MNIST, 26k for Stacked
    MNIST (VEEGAN/PacGAN), 2,500 for 2-D."""
    return {"raw2d": 2500, "mnist_classifier": 10_000, "mnist_classifier_stacked": 26_000}.get(extractor, 50_000)


def evaluation_context(extractor: str, has_logits: bool, data_name: str, mixture: Optional[str] = None, **options) -> EvaluationContext:
    """The context the registry's defaults and metrics read (``options``: e.g. ``significance``,
    ``copy_quantile``, ``kid_subset_size``, ``seed``)."""
    return EvaluationContext(
        extractor=extractor, has_logits=has_logits, data_name=data_name, mixture=mixture,
        num_classes=CLASSIFIER_LABELLED.get(data_name), options=dict(options),
    )


def default_metrics(ctx: EvaluationContext) -> list[str]:
    """The registered metrics that apply in this context."""
    return M.default_metrics(ctx)


def mode_labeller(data_name: str, device: str | torch.device = "cpu"):
    """A function images -> class labels for mode counting, or None when the data has none."""
    if data_name not in CLASSIFIER_LABELLED:
        return None
    from gan_suite.evaluation.features import build_extractor

    classifier = build_extractor("mnist_classifier").to(device)
    if data_name == "stacked_mnist":

        def label(x):
            digits = classifier.classify_channels(x)  # [N, 3]
            return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

        return label
    return classifier.classify


def reference_sets(needs, real: FeatureSet, real_split: str, whole: bool, features_of, datamodule, pixels: bool):
    """The training and held-out feature sets the metrics need (``needs`` from the registry):
    the reference set itself when it is that whole split, else ``features_of(split)``; with
    ``pixels``, each gets its split's copy-space images. Returns (train or None, heldout or None)."""
    from gan_suite.evaluation.streaming import dataset_pixels

    chosen = {}
    for split in ("train", "heldout"):
        if split not in needs:
            chosen[split] = None
            continue
        chosen[split] = real if real_split == split and whole else features_of(split)
        if pixels and chosen[split].pixels is None:
            chosen[split].pixels = dataset_pixels(datamodule.split(split))
    return chosen["train"], chosen["heldout"]


def compute_metrics(
    names: Sequence[str],
    fake: FeatureSet,
    real: FeatureSet,
    train: Optional[FeatureSet] = None,
    heldout: Optional[FeatureSet] = None,
    *,
    context: Optional[EvaluationContext] = None,
    out_dir: Optional[str] = None,
    log=None,
) -> dict:
    """Metric values from feature sets (``real`` is the reference split), through the registry.

    Returns a flat dict of every metric's outputs (see each metric's declaration), with
    ``verdicts`` (each flag with its evidence) and ``files`` (pictures, when ``out_dir`` is set)
    when a metric produces them.
    """
    inputs = MetricInputs(fake=fake, real=real, train=train, heldout=heldout, context=context or EvaluationContext(), out_dir=out_dir)
    if log is not None:
        inputs.note = log
    return M.compute_metrics(names, inputs)


def metric_intervals(names, fake, real, train, heldout, context, values: dict, resamples: int, seed: int, progress: bool = False) -> dict:
    """Bootstrap intervals of ``values`` (see :func:`gan_suite.evaluation.bootstrap.bootstrap_intervals`)."""
    import sys

    from gan_suite.evaluation.bootstrap import bootstrap_intervals

    inputs = MetricInputs(fake=fake, real=real, train=train, heldout=heldout, context=context or EvaluationContext())
    out = bootstrap_intervals(names, inputs, values, resamples=resamples, seed=seed)
    if progress and out["intervals"]:
        print(f"bootstrap: {resamples} resamples in {out['bootstrap']['seconds']:.1f} s", file=sys.stderr)
    return out


def scalar_metrics(values: dict) -> dict:
    """The plain numbers of a metric dict (no flags, lists, tables or verdicts), for loggers."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def format_table(values: dict, intervals: Optional[dict] = None, level: float = 0.95) -> str:
    """A text table of metric values for the terminal (with their bootstrap intervals when
    ``intervals`` maps keys to [low, high]), then each verdict with its evidence."""
    intervals = intervals or {}
    hidden = ("verdicts", "files", "mode_table", "fd_inf_fit")
    rows = [(key, format_value(value)) for key, value in values.items() if key not in hidden]
    width = max((len(k) for k, _ in rows), default=6)
    value_width = max((len(v) for _, v in rows), default=10) if intervals else 0
    heading = f"{'metric':<{width}}  {'value':<{value_width}}" + (f"  {level:.0%} bootstrap interval" if intervals else "")
    lines = [heading.rstrip(), f"{'-' * width}  {'-' * max(value_width, 10)}" + ("  " + "-" * 24 if intervals else "")]
    for k, v in rows:
        interval = intervals.get(k)
        shown = f"  [{format_value(float(interval[0]))}, {format_value(float(interval[1]))}]" if interval else ""
        lines.append(f"{k:<{width}}  {v:<{value_width}}{shown}".rstrip())
    for name, verdict in (values.get("verdicts") or {}).items():
        lines.append("")
        lines.append(f"{name}: {'FLAGGED' if verdict['flagged'] else 'not flagged'}")
        for key, value in verdict.items():
            if key != "flagged":
                lines.append(f"  {key}: {format_value(value)}")
    return "\n".join(lines)
