"""FD-infinity (Chong & Forsyth, CVPR 2020): the Frechet distance extrapolated to infinitely many
generated samples.

FID of N generated samples is biased upward by about c / N. FD-infinity computes the FID of
random subsets of the generated features at ``points`` sizes spaced evenly in 1/N between
``N / 10`` and N (the paper: 15 sizes from 5,000 to 50,000), fits FID = FD_inf + slope / N by
least squares (``scipy.stats.linregress``) and reports the intercept. The real reference stays
whole; its own finite-sample bias is not extrapolated away.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from gan_suite.evaluation.metrics.fid import FeatureMoments, FrechetToReference, _moments
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric

#: sizes of the fit, and the smallest as a share of the generated set
POINTS = 15
SMALLEST_SHARE = 0.1


def fd_infinity_sizes(n: int, points: int = POINTS, smallest_share: float = SMALLEST_SHARE) -> list[int]:
    """``points`` subset sizes from ``n * smallest_share`` to ``n``, evenly spaced in 1/N."""
    smallest = max(2, int(n * smallest_share))
    inverse = np.linspace(1.0 / smallest, 1.0 / n, points)
    return sorted({int(round(1.0 / v)) for v in inverse})


def fd_infinity(reference: FrechetToReference, features: torch.Tensor, sizes: Optional[Sequence[int]] = None, seed: int = 0) -> dict:
    """FD-infinity of generated features [N, D] against a reference.

    Returns ``{"fd_inf": intercept, "fd_inf_fit": {"n": [...], "fid": [...], "slope",
    "intercept", "intercept_stderr", "r2"}}``; each size's subset is drawn without replacement
    (seeded).
    """
    from scipy import stats

    n = features.shape[0]
    sizes = list(sizes) if sizes is not None else fd_infinity_sizes(n)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for size in sizes:
        subset = features[torch.randperm(n, generator=generator)[:size]]
        moments = FeatureMoments.from_features(subset)
        values.append(reference(moments.mean, moments.cov))
    fit = stats.linregress(1.0 / np.asarray(sizes, dtype=np.float64), np.asarray(values))
    return {
        "fd_inf": float(fit.intercept),
        "fd_inf_fit": {
            "n": [int(s) for s in sizes],
            "fid": [float(v) for v in values],
            "slope": float(fit.slope),
            "intercept": float(fit.intercept),
            "intercept_stderr": float(fit.intercept_stderr),
            "r2": float(fit.rvalue**2),
        },
    }


@register_metric(
    "fd_inf",
    outputs=[Output("fd_inf", False, "FD-inf"), Output("fd_inf_fit", None, "FD-inf fit")],
    needs={"real"},
    description="FD-infinity: FID at 15 generated-set sizes, extrapolated linearly in 1/N to N -> infinity",
    bootstrap="an extrapolation over subsets of the generated set: the standard error of its intercept is in fd_inf_fit",
    real_moments_suffice=True,
)
def _fd_inf_metric(inputs: MetricInputs) -> dict:
    real = _moments(inputs.real)
    sizes = fd_infinity_sizes(len(inputs.fake))
    if sizes[0] < inputs.fake.features.shape[1]:
        inputs.note(f"FD-infinity: its smallest subset ({sizes[0]}) has fewer samples than feature dimensions")
    return fd_infinity(FrechetToReference(real.mean, real.cov), inputs.fake.features, sizes, seed=inputs.option("seed", 0))
