"""The files of a benchmark directory, and atomic writes so that a kill never corrupts them.

    DIR/benchmark.yaml                the definition (copied at start; the report reads it)
    DIR/runs/<run_id>/result.json     one per finished / diverged / failed run (written last, atomically)
    DIR/runs/<run_id>/owner.json      pid of the training process while it runs
    DIR/runs/<run_id>/stdout.log, stderr.log, evaluation/, <training run dir>/
    DIR/report/                       written by ``gan-suite report DIR``

A run directory without ``result.json`` is unfinished: the next ``gan-suite benchmark`` wipes
and reruns it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Optional

import yaml

FINISHED, DIVERGED, FAILED = "finished", "diverged", "failed"
STATUSES = (FINISHED, DIVERGED, FAILED)
RESULT_FILE = "result.json"
DEFINITION_FILE = "benchmark.yaml"


def runs_dir(out_dir: str) -> str:
    return os.path.join(out_dir, "runs")


def run_dir(out_dir: str, run_id: str) -> str:
    return os.path.join(out_dir, "runs", run_id)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    readers see the old file or the whole new one, never a part."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_safe(value: Any) -> Any:
    """NaN / inf as strings (JSON has none), tuples as lists, unknown objects as str."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return str(value)


def write_result(out_dir: str, run_id: str, result: dict) -> str:
    """Write ``DIR/runs/<run_id>/result.json`` atomically; returns its path."""
    if result.get("status") not in STATUSES:
        raise ValueError(f"result status must be one of {STATUSES}, got {result.get('status')!r}")
    path = os.path.join(run_dir(out_dir, run_id), RESULT_FILE)
    atomic_write_text(path, json.dumps(_json_safe(result), indent=2, sort_keys=False) + "\n")
    return path


def read_result(out_dir: str, run_id: str) -> Optional[dict]:
    """The run's result, or None when it has none (unfinished) or it cannot be parsed."""
    path = os.path.join(run_dir(out_dir, run_id), RESULT_FILE)
    try:
        with open(path) as f:
            result = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None
    return result if isinstance(result, dict) and result.get("status") in STATUSES else None


def read_all_results(out_dir: str) -> dict:
    """run_id -> result for every run directory of ``out_dir`` that has a result."""
    folder = runs_dir(out_dir)
    if not os.path.isdir(folder):
        return {}
    out = {}
    for run_id in sorted(os.listdir(folder)):
        result = read_result(out_dir, run_id)
        if result is not None:
            out[run_id] = result
    return out


def write_definition_copy(out_dir: str, raw: dict) -> None:
    """Copy the definition into ``DIR/benchmark.yaml`` (every shard writes the same text)."""
    atomic_write_text(os.path.join(out_dir, DEFINITION_FILE), yaml.safe_dump(raw, sort_keys=False))


def read_definition_copy(out_dir: str) -> dict:
    path = os.path.join(out_dir, DEFINITION_FILE)
    if not os.path.isfile(path):
        from gan_suite.errors import ConfigError

        raise ConfigError(f"{out_dir} holds no {DEFINITION_FILE}: not a benchmark output directory")
    with open(path) as f:
        return yaml.safe_load(f)
