"""Bootstrap confidence intervals of metric values, resampling the generated set's features.

Each resample draws N generated samples with replacement from the N that were evaluated (their
features, logits and labels: no image is generated or extracted again) and recomputes the
metric against the same real reference; ``scipy.stats.bootstrap`` (``method="basic"``, the
reverse-percentile interval) turns the replicates into the interval. The basic interval
corrects the bias that resampling adds to first order, so it covers the value the metric takes
for the generator's distribution (infinitely many generated samples) against the fixed real
reference set; the uncertainty of the real set is not included.

How each metric is resampled is declared with it in the registry (``bootstrap=``): recomputed
(the default), through a cheaper function of the resample counts (FID: weighted moments), or not
at all, with the reason (k-NN metrics, whose every resample is a full k-NN search, and verdicts,
which carry their own calibrated tests).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from gan_suite.evaluation.metrics.registry import MetricInputs, get_metric

#: resamples of the generated set per interval (``gan-suite evaluate --bootstrap N``)
DEFAULT_RESAMPLES = 100
LEVEL = 0.95
METHOD = "basic"
COVERS = (
    "the metric for the generator's distribution (generated set resampled, real reference fixed; "
    "the real set's own uncertainty is not included)"
)


NOT_A_SCORE = "not a score (a spread, count, p-value or setting): no interval"


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def take(features, index: torch.Tensor):
    """The rows ``index`` [M] of a FeatureSet (features, logits, labels, pixels alike)."""
    pick = lambda t: None if t is None else t[index]  # noqa: E731
    return replace(features, features=features.features[index], logits=pick(features.logits), labels=pick(features.labels), pixels=pick(features.pixels), conditioning=pick(getattr(features, "conditioning", None)))


def bootstrap_intervals(names, inputs: MetricInputs, values: dict, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = LEVEL) -> dict:
    """Intervals of the scores (outputs with a direction) in ``values`` of the metrics ``names``.

    Returns ``{"intervals": {key: [low, high]}, "not_bootstrapped": {key: reason},
    "bootstrap": {resamples, seed, level, method, covers, seconds}}``.
    """
    from scipy import stats

    started = time.time()
    n = len(inputs.fake)
    quiet = replace(inputs, out_dir=None, note=lambda message: None)
    plans, skipped = [], {}
    for name in names:
        spec = get_metric(name)
        keys = [out.key for out in spec.outputs if _numeric(values.get(out.key)) and out.higher_is_better is not None]
        skipped.update({out.key: NOT_A_SCORE for out in spec.outputs if _numeric(values.get(out.key)) and out.higher_is_better is None})
        if not keys:
            continue
        if isinstance(spec.bootstrap, str):
            skipped.update({key: spec.bootstrap for key in keys})
        elif resamples > 0 and n > 1:
            plans.append((spec.bootstrap(quiet) if callable(spec.bootstrap) else spec.compute, keys))
    keys = [key for _, plan_keys in plans for key in plan_keys]
    intervals: dict = {}
    if keys and resamples > 0 and n > 1:
        def statistic(index: np.ndarray) -> np.ndarray:
            return _evaluate(plans, quiet, torch.as_tensor(index, dtype=torch.long), n)

        result = stats.bootstrap(
            (np.arange(n),), statistic, n_resamples=resamples, vectorized=False, confidence_level=level,
            method=METHOD, random_state=np.random.default_rng(seed),
        )
        low, high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
        intervals = {key: [float(lo), float(hi)] for key, lo, hi in zip(keys, low, high)}
    return {
        "intervals": intervals,
        "not_bootstrapped": skipped,
        "bootstrap": {
            "resamples": resamples, "seed": seed, "level": level, "method": METHOD, "covers": COVERS,
            "seconds": round(time.time() - started, 3),
        },
    }


def _evaluate(plans, inputs: MetricInputs, index: torch.Tensor, n: int) -> np.ndarray:
    """Every planned key's value on the generated set resampled at ``index`` [N]; a plan is a
    prepared function of the resample counts, or a metric's compute run on the resampled set."""
    out = []
    counts = resampled = None
    for run, keys in plans:
        if getattr(run, "takes_counts", False):
            counts = torch.bincount(index, minlength=n) if counts is None else counts
            got = run(counts)
        else:
            resampled = replace(inputs, fake=take(inputs.fake, index)) if resampled is None else resampled
            got = run(resampled)
        out += [float(got.get(key, float("nan"))) for key in keys]
    return np.array(out)
