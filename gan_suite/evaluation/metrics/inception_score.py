"""Inception Score from classifier logits, through torch-fidelity's own function.

logits [N, K] -> torch_fidelity.metric_isc.isc_features_to_metric -> {'mean', 'std'}.

torch-fidelity's arithmetic, reproduced exactly because it is called: when ``shuffle`` is on
(its default, ``samples_shuffle=True``) the rows are permuted with
``numpy.random.RandomState(seed).permutation(N)`` (seed default 2020, its ``rng_seed``); split i
is rows [i*N//splits, (i+1)*N//splits) (uneven splits allowed); softmax in float64; the score of
a split is exp(mean_x KL(p(y|x) || p(y))); 'std' is numpy.std over splits (population, ddof=0).
"""

from __future__ import annotations

import torch
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_features
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric

TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed


def inception_score(
    logits: torch.Tensor, splits: int = 10, shuffle: bool = True, seed: int = TORCH_FIDELITY_SEED
) -> dict[str, float]:
    """Inception Score of classifier logits [N, K] (unnormalised; any float dtype and device).

    Returns {'mean': float, 'std': float} over ``splits`` splits; equal to torch-fidelity's ISC
    for the same logits, splits, shuffle and seed. N >= splits is required.
    """
    check_features(logits, min_rows=1, what="logits")
    if splits < 1 or logits.shape[0] < splits:
        raise ConfigError(f"Inception Score: need 1 <= splits <= N, got splits={splits}, N={logits.shape[0]}")
    out = isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=shuffle, rng_seed=seed)
    return {"mean": out[KEY_METRIC_ISC_MEAN], "std": out[KEY_METRIC_ISC_STD]}


@register_metric(
    "is",
    outputs=[Output("is_mean", True, "IS"), Output("is_std", None, "IS std")],
    needs={"logits"},
    default_when=lambda ctx: ctx.has_logits and ctx.extractor != "raw2d",
    description="Inception Score over 10 splits (needs an extractor with logits)",
)
def _is_metric(inputs: MetricInputs) -> dict:
    if inputs.fake.logits is None:
        inputs.note("Inception Score skipped: the extractor gives no logits")
        return {}
    result = inception_score(inputs.fake.logits, splits=min(10, len(inputs.fake)))
    return {f"is_{k}": v for k, v in result.items()}
