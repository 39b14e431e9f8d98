"""Input checks shared by the metrics: one-line GanSuiteErrors instead of asserts."""

from __future__ import annotations

import torch

from gan_suite.errors import ConfigError, NonFiniteSamplesError


def check_finite(x: torch.Tensor, what: str = "features") -> None:
    """Raise NonFiniteSamplesError (a GanSuiteError) if ``x`` holds NaN or inf."""
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteSamplesError(f"{what} contain NaN or inf values; cannot compute the metric")


def check_features(*feats: torch.Tensor, min_rows: int = 1, what: str = "features") -> None:
    """Each tensor is a finite float [N, D] with N >= min_rows, all with the same D."""
    dims = set()
    for x in feats:
        if x.dim() != 2 or not x.is_floating_point():
            raise ConfigError(f"{what} must be a float [N, D] tensor, got {x.dtype} {tuple(x.shape)}")
        if x.shape[0] < min_rows:
            raise ConfigError(f"{what}: need at least {min_rows} rows, got {x.shape[0]}")
        dims.add(x.shape[1])
        check_finite(x, what)
    if len(dims) > 1:
        raise ConfigError(f"{what}: feature dimensions differ: {sorted(dims)}")
