"""Statistics over seeds for the report: confidence interval of a mean, and which variants the
seeds cannot tell apart from the best.

* :func:`mean_interval`: the two-sided t interval of the mean over seeds (scipy.stats.t).
* :func:`tied_with_best`: Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) of the best
  variant (by mean, in the metric's direction) against every other one, with Holm's step-down
  correction over those comparisons; a variant whose adjusted p-value is not below ``alpha`` is
  not significantly different from the best.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

#: family-wise error rate of the comparisons with the best variant
ALPHA = 0.05
#: level of the confidence interval of a mean over seeds
CONFIDENCE = 0.95
TEST_NOTE = (
    "two-sided Welch's t-test against the best mean, Holm-corrected over the comparisons of a column, "
    f"family-wise alpha = {ALPHA:g}"
)


def mean_interval(values: Sequence[float], level: float = CONFIDENCE) -> Optional[tuple[float, float]]:
    """The ``level`` t interval of the mean of ``values``; None with fewer than two values."""
    if len(values) < 2:
        return None
    from scipy import stats

    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    if sem == 0:
        return mean, mean
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Written here because scipy offers only the Benjamini-Hochberg/-Yekutieli adjustments
    (``scipy.stats.false_discovery_control``), which control the false discovery rate, not the
    family-wise error rate a "tied with the best" mark promises.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Comparison:
    """Outcome of the comparisons of one column: the best variant and the adjusted p-values."""

    best: Optional[str]
    tied: set  # variants not significantly different from the best (the best included)
    p_adjusted: dict  # variant -> Holm-adjusted p-value of its comparison with the best


def _welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch p-value; when both sets are constant, 1 for equal means and 0 otherwise."""
    from scipy import stats

    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def tied_with_best(groups: dict, higher_is_better: bool, alpha: float = ALPHA) -> Comparison:
    """Which variants of ``groups`` (variant -> per-seed values) the seeds cannot tell from the best.

    The best is the variant with the best mean. Variants with equal means are all best. A
    comparison needs at least two values on both sides; a variant that cannot be tested (one
    seed) counts as not significantly different: nothing shows that it is.
    """
    means = {v: statistics.fmean(x) for v, x in groups.items() if x}
    if not means:
        return Comparison(None, set(), {})
    best_mean = (max if higher_is_better else min)(means.values())
    leaders = [v for v, m in means.items() if m == best_mean]
    best = max(leaders, key=lambda v: len(groups[v]))
    others = [v for v in means if v not in leaders]
    testable = [v for v in others if len(groups[v]) > 1 and len(groups[best]) > 1]
    raw = [_welch_p(groups[best], groups[v]) for v in testable]
    adjusted = dict(zip(testable, holm_adjust(raw)))
    tied = set(leaders) | {v for v in others if v not in adjusted or not adjusted[v] < alpha}
    return Comparison(best, tied, adjusted)
