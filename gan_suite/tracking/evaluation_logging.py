"""Evaluation results into a run's logger: metrics over training steps, final summary, pictures."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Optional

import yaml

from gan_suite.tracking.wandb_logger import WandbLogger


def numeric_metrics(values: Mapping[str, Any]) -> dict:
    """The finite int / float / bool entries of ``values`` as floats (what loggers can plot)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


def log_evaluation(logger, result: Mapping[str, Any], step: Optional[int] = None, prefix: str = "eval/", summary: bool = False) -> None:
    """Log one ``evaluate_checkpoint`` result to a Lightning logger.

    Args:
        logger: any Lightning logger; pictures go only to loggers with ``log_image``, the summary
            only to loggers with ``log_summary``.
        result: ``{"metrics": {name: value}, "files": {name: png path}, ...}``.
        step: the x value (``trainer/global_step`` for W&B, to line up with the training curves).
        prefix: prepended to metric names.
        summary: also write the metrics into the run summary (for the final checkpoint).
    """
    values = {f"{prefix}{key}": value for key, value in numeric_metrics(result.get("metrics", {})).items()}
    if values:
        logger.log_metrics(values, step=step)
    if summary and hasattr(logger, "log_summary"):
        logger.log_summary(values)
    if hasattr(logger, "log_image"):
        for name, path in (result.get("files") or {}).items():
            if isinstance(path, str) and path.endswith(".png") and os.path.isfile(path):
                logger.log_image(key=f"{prefix}{name}", images=[path], step=step)


def reopen_run_logger(run_dir: str, **overrides: Any) -> Optional[WandbLogger]:
    """The W&B logger of the finished training run in ``run_dir``, to append to it afterwards.

    Reads ``<run_dir>/config.yaml``; returns None unless the run was logged with
    :class:`~gan_suite.tracking.WandbLogger`. The returned logger resumes the same run id (offline,
    a new ``offline-run-*`` segment that ``wandb sync`` uploads after the first); call
    ``finalize("success")`` when done. ``overrides``: further WandbLogger arguments (e.g. silent=True).
    """
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    spec = (config.get("trainer") or {}).get("logger")
    spec = spec[0] if isinstance(spec, list) and spec else spec
    if not isinstance(spec, dict) or spec.get("class_path") not in ("gan_suite.tracking.WandbLogger", "gan_suite.tracking.wandb_logger.WandbLogger"):
        return None
    init_args = dict(spec.get("init_args") or {})
    init_args.pop("id", None)
    init_args["version"] = os.path.basename(os.path.normpath(run_dir))
    init_args["save_dir"] = os.path.dirname(os.path.dirname(os.path.normpath(run_dir)))
    init_args["dir"] = init_args.get("dir") or run_dir
    init_args.update(overrides)
    return WandbLogger(**init_args)
