"""Which extractor, metrics and sample counts an evaluation uses, and the metric computation itself.

Metric names: ``fid``, ``is`` (needs logits), ``kid``, ``pr`` (precision/recall, k = 3), ``dc``
(density/coverage, k = 5), ``memorisation`` (C_T and authenticity against train and held-out
real data), ``modes`` (labelled data: classes covered and KL; 2-D mixtures: the VEEGAN protocol),
``nn_picture`` (samples beside their nearest training images).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation import metrics as M
from gan_suite.evaluation.streaming import FeatureSet

ALL_METRICS = ("fid", "is", "kid", "pr", "dc", "memorisation", "modes", "nn_picture")

#: data modules whose samples the shipped MNIST classifier can label, and their class counts
_CLASSIFIER_LABELLED = {"mnist_bundled": 10, "mnist": 10, "stacked_mnist": 1000}


def default_extractor(sample_shape: Sequence[int], data_name: str = "") -> str:
    """raw2d for points, the MNIST classifier for MNIST-like digits (per channel for Stacked
    MNIST), inception otherwise."""
    if len(sample_shape) == 1:
        return "raw2d"
    if data_name == "stacked_mnist":
        return "mnist_classifier_stacked"
    if data_name in _CLASSIFIER_LABELLED:
        return "mnist_classifier"
    return "inception"


def default_num_samples(extractor: str) -> int:
    """The field's sample counts: 50k for Inception-type features, 10k for MNIST, 26k for Stacked
    MNIST (VEEGAN/PacGAN), 2,500 for 2-D."""
    return {"raw2d": 2500, "mnist_classifier": 10_000, "mnist_classifier_stacked": 26_000}.get(extractor, 50_000)


def default_metrics(extractor: str, has_logits: bool, data_name: str) -> list[str]:
    if extractor == "raw2d":
        return ["modes", "fid", "pr", "dc"]
    chosen = ["fid", "kid", "pr", "dc", "memorisation", "nn_picture"]
    if has_logits:
        chosen.insert(1, "is")
    if data_name in _CLASSIFIER_LABELLED:
        chosen.append("modes")
    return chosen


def check_metric_names(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from: {', '.join(ALL_METRICS)}")
    return list(names)


def mode_labeller(data_name: str, device: str | torch.device = "cpu"):
    """A function images -> class labels for mode counting, or None when the data has none."""
    if data_name not in _CLASSIFIER_LABELLED:
        return None
    from gan_suite.evaluation.features import build_extractor

    classifier = build_extractor("mnist_classifier").to(device)
    if data_name == "stacked_mnist":

        def label(x):
            digits = classifier.classify_channels(x)  # [N, 3]
            return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

        return label
    return classifier.classify


def compute_metrics(
    names: Sequence[str],
    fake: FeatureSet,
    real: FeatureSet,
    train: Optional[FeatureSet] = None,
    heldout: Optional[FeatureSet] = None,
    *,
    data_name: str = "",
    mixture: Optional[str] = None,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    log=None,
) -> dict:
    """Metric values from feature sets (``real`` is the reference split).

    Returns a flat dict: ``fid``, ``is_mean``/``is_std``, ``kid_mean``/``kid_std``, ``precision``,
    ``recall``, ``density``, ``coverage``, memorisation keys (``C_T``, ``unauthentic_generated``,
    ``copying_flagged``...), mode keys (``modes_covered``, ``modes_total``, ``mode_kl``,
    ``high_quality`` for 2-D, ``mode_collapse_flagged``).
    """
    note = log or (lambda msg: warnings.warn(msg, stacklevel=2))
    out: dict = {}
    n_fake, n_real, dim = len(fake), len(real), fake.features.shape[1]
    if "fid" in names:
        if min(n_fake, n_real) < dim:
            note(f"FID with {min(n_fake, n_real)} samples for {dim}-d features: covariances are rank-deficient, expect a biased value")
        out["fid"] = M.fid_from_features(real.features, fake.features)
    if "is" in names:
        if fake.logits is None:
            note("Inception Score skipped: the extractor gives no logits")
        else:
            splits = min(10, n_fake)
            out.update({f"is_{k}": v for k, v in M.inception_score(fake.logits, splits=splits).items()})
    if "kid" in names:
        subset = min(kid_subset_size, n_fake, n_real)
        if subset < kid_subset_size:
            note(f"KID subset size reduced from {kid_subset_size} to {subset}: fewer samples than the subset size")
        out.update({f"kid_{k}": v for k, v in M.kernel_inception_distance(fake.features, real.features, subsets=kid_subsets, subset_size=subset).items()})
    if "pr" in names:
        pr = M.precision_recall(real.features, fake.features, k=3)
        out.update({"precision": pr["precision"], "recall": pr["recall"]})
    if "dc" in names:
        out.update(M.density_coverage(real.features, fake.features, k=5))
    if "memorisation" in names:
        if train is None or heldout is None:
            note("memorisation skipped: needs training and held-out features")
        else:
            report = M.memorisation_report(train.features, heldout.features, fake.features)
            out.update(report)
    if "modes" in names:
        out.update(_mode_metrics(fake, train if train is not None else real, data_name, mixture, note))
    return out


def _mode_metrics(fake: FeatureSet, reference: FeatureSet, data_name: str, mixture: Optional[str], note) -> dict:
    if mixture is not None:
        from gan_suite.data.toy2d import mixture_geometry

        centres, std = mixture_geometry(mixture)
        result = M.mixture_mode_metrics(fake.features, centres, std)
        kl = result["kl"]
        return {
            "modes_covered": result["modes_covered"],
            "modes_total": int(centres.shape[0]),
            "high_quality": result["high_quality"],
            "mode_kl": kl,
            "mode_collapse_flagged": M.mode_collapse_flagged(result["modes_covered"], centres.shape[0], kl),
        }
    if fake.labels is None:
        note("modes skipped: no classifier labels for this data")
        return {}
    num_classes = _CLASSIFIER_LABELLED.get(data_name)
    data_labels = None
    if num_classes == 10 and reference.labels is not None and bool((reference.labels >= 0).all()):
        data_labels = reference.labels  # KL against the data's own class histogram
    result = M.label_mode_metrics(fake.labels, num_classes, data_labels=data_labels)
    return {
        "modes_covered": result["modes_covered"],
        "modes_total": num_classes,
        "mode_kl": result["kl"],
        "mode_collapse_flagged": M.mode_collapse_flagged(result["modes_covered"], num_classes, result["kl"]),
    }


def format_table(values: dict) -> str:
    """A two-column text table of metric values for the terminal."""
    rows = []
    for key, value in values.items():
        if isinstance(value, bool):
            shown = "YES" if value else "no"
        elif isinstance(value, float):
            shown = "nan" if math.isnan(value) else f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
        else:
            shown = str(value)
        rows.append((key, shown))
    width = max((len(k) for k, _ in rows), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
