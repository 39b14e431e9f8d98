"""Where ``gan-suite evaluate`` writes: one folder per (checkpoint step, protocol), with an index.

* A checkpoint inside a run directory (``<run>/checkpoints/X.ckpt`` beside ``<run>/config.yaml``)
  is evaluated into ``<run>/evaluation/``; any other checkpoint into ``<folder of X>/X_evaluation/``.
* Inside that root, each evaluation gets ``<ckpt stem>-step<iteration>-<extractor>-n<N>-seed<s>-<hash>``,
  the hash covering every other protocol setting, so two protocols never share a folder and the
  same protocol on the same checkpoint step finds its earlier result.
* ``index.jsonl`` in the root gets one line per evaluation (folder, checkpoint, step, protocol, when).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Mapping

from gan_suite.errors import UsageError

INDEX_FILE = "index.jsonl"


def evaluation_root(ckpt_path: str) -> str:
    """The folder that holds a checkpoint's evaluations (see the module docstring)."""
    ckpt_dir = os.path.dirname(os.path.abspath(ckpt_path))
    run_dir = os.path.dirname(ckpt_dir)
    if os.path.basename(ckpt_dir) == "checkpoints" and os.path.isfile(os.path.join(run_dir, "config.yaml")):
        return os.path.join(run_dir, "evaluation")
    stem = os.path.splitext(os.path.basename(ckpt_path))[0]
    return os.path.join(ckpt_dir, f"{stem}_evaluation")


def protocol_folder_name(ckpt_path: str, iteration: Any, extractor: str, n_generated: int, seed: int, settings: Mapping[str, Any]) -> str:
    """``<stem>-step<iteration>-<extractor>-n<N>-seed<seed>-<8 hex digits of the other settings>``."""
    stem = os.path.splitext(os.path.basename(ckpt_path))[0]
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{stem}-step{iteration}-{extractor}-n{n_generated}-seed{seed}-{digest}"


def claim_folder(folder: str, overwrite: bool) -> str:
    """Check that ``folder`` holds no earlier result (unless ``overwrite``); returns it.

    Raises:
        UsageError: ``folder/metrics.json`` exists and ``overwrite`` is False.
    """
    existing = os.path.join(folder, "metrics.json")
    if os.path.isfile(existing) and not overwrite:
        raise UsageError(f"already evaluated with this protocol: {existing} (pass --overwrite to replace it)")
    return folder


def add_to_index(root: str, entry: Mapping[str, Any]) -> str:
    """Append one evaluation's line to ``<root>/index.jsonl``; returns the index path."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, INDEX_FILE)
    with open(path, "a") as f:
        f.write(json.dumps({**entry, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, default=str) + "\n")
    return path
