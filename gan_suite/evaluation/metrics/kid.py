"""Kernel Inception Distance, through torch-fidelity's own function.

features -> torch_fidelity.metric_kid.kid_features_to_metric -> {'mean', 'std'}: the unbiased
MMD^2 with the polynomial kernel (gamma x.y + coef0)^degree, gamma = 1/D by default, averaged
over ``subsets`` random subsets of ``subset_size`` rows of each set.

torch-fidelity's sampling, reproduced exactly because it is called: one
``numpy.random.RandomState(seed)`` (seed default 2020, its ``rng_seed``) draws, for each subset
in turn, ``choice(N_a, subset_size, replace=False)`` for the first set and then the same for the
second, so the order of the arguments matters (torch-fidelity's input1 is the generated set);
kernels are computed in numpy in the features' own dtype (float32 features: float32 kernel
sums; pass float64 for more accuracy); 'std' is numpy.std over subsets (ddof=0).

Small sets: torch-fidelity refuses N < subset_size. Here a warning is issued and subset_size
becomes min(N_a, N_b) (the subsets then overlap less than the default would intend, but the
estimate stays unbiased); fewer than 2 rows in a set raises ConfigError, since the unbiased
estimator divides by m (m - 1).
"""

from __future__ import annotations

import warnings

import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_features
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric

TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed


def kernel_inception_distance(
    feats_a: torch.Tensor,
    feats_b: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = TORCH_FIDELITY_SEED,
) -> dict[str, float]:
    """KID between features [N_a, D] (torch-fidelity's input1, e.g. generated) and [N_b, D].

    Returns {'mean': float, 'std': float}; equal to torch-fidelity's KID for the same features
    (same dtype), settings and seed. Warns and shrinks ``subset_size`` to min(N_a, N_b) when a
    set is smaller; raises ConfigError when a set has fewer than 2 rows.
    """
    check_features(feats_a, feats_b, min_rows=2)
    if subsets < 1 or subset_size < 2:
        raise ConfigError(f"KID: need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    n_min = min(feats_a.shape[0], feats_b.shape[0])
    if n_min < subset_size:
        warnings.warn(
            f"KID: only {n_min} samples in a set, fewer than subset_size={subset_size}; "
            f"using subsets of {n_min}",
            stacklevel=2,
        )
        subset_size = n_min
    a, b = (x.detach().cpu() for x in (feats_a, feats_b))
    a, b = (x if x.dtype in (torch.float32, torch.float64) else x.float() for x in (a, b))
    out = kid_features_to_metric(
        a,
        b,
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        kid_kernel="poly",
        kid_kernel_poly_degree=degree,
        kid_kernel_poly_gamma=gamma,
        kid_kernel_poly_coef0=coef0,
        rng_seed=seed,
        verbose=False,
    )
    return {"mean": out[KEY_METRIC_KID_MEAN], "std": out[KEY_METRIC_KID_STD]}


@register_metric(
    "kid",
    outputs=[Output("kid_mean", False, "KID"), Output("kid_std", None, "KID std")],
    needs={"real"},
    default_when=lambda ctx: ctx.extractor != "raw2d",
    description="Kernel Inception Distance (cubic polynomial kernel, 100 subsets)",
    bootstrap="not bootstrapped: KID already averages 100 random subsets of the generated set, and kid_std is their spread; "
    "each resample would cost as much as the KID itself",
)
def _kid_metric(inputs: MetricInputs) -> dict:
    wanted = inputs.option("kid_subset_size", 1000)
    subset = min(wanted, len(inputs.fake), len(inputs.real))
    if subset < wanted:
        inputs.note(f"KID subset size reduced from {wanted} to {subset}: fewer samples than the subset size")
    result = kernel_inception_distance(
        inputs.fake.features, inputs.real.features, subsets=inputs.option("kid_subsets", 100), subset_size=subset
    )
    return {f"kid_{k}": v for k, v in result.items()}
