"""A run directory: where it is (:func:`run_directory`) and the names of the files the
in-training callbacks write into it, relative to it; :func:`write_run_status` writes its status file.

Importing it imports neither torch nor Lightning (a call of :func:`run_directory` imports
Lightning's loggers): shared by the training and evaluation callbacks that write the files and
the benchmark runner and report that read them.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import pytorch_lightning as pl

#: why the run ended: {"status": "finished" | "plateau" | "diverged", "reason", "iteration", ...}
RUN_STATUS_FILE = "status.json"
#: the mode history (steps, modes, shares, dropped, hopping statistics) and its heatmap
MODE_HISTORY_FILE = "evaluation/mode_history.json"
MODE_HEATMAP_FILE = "evaluation/mode_history.png"
#: the 2-D training film
FILM_GIF_FILE = "film/training.gif"
FILM_MP4_FILE = "film/training.mp4"


def run_directory(trainer: pl.Trainer) -> str:
    """The run's own directory (config.yaml, checkpoints/, samples/), the folder ModelCheckpoint uses.

    CSV / TensorBoard loggers: their ``log_dir`` (``<save_dir>/<name>/version_<n>``). Other loggers
    (W&B, ...): ``<save_dir>/<name>/<version>``, where ``trainer.log_dir`` would be the shared
    ``save_dir``. No logger: ``default_root_dir``. Computed locally (no broadcast), so it can be
    called on rank 0 alone.
    """
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    if not trainer.loggers:
        return trainer.default_root_dir
    logger = trainer.loggers[0]
    if isinstance(logger, (CSVLogger, TensorBoardLogger)):
        return logger.log_dir
    save_dir = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return os.path.join(save_dir, str(logger.name), version)


def write_run_status(trainer: pl.Trainer, status: str, reason: Optional[str], iteration: int, **extra) -> Optional[str]:
    """Write ``{"status", "reason", "iteration", ...extra}`` to ``<run dir>/status.json`` (rank 0,
    atomically); returns the path (None on other ranks). ``status``: 'finished', 'plateau',
    'diverged', ..."""
    if not trainer.is_global_zero:
        return None
    path = os.path.join(run_directory(trainer), RUN_STATUS_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"status": status, "reason": reason, "iteration": int(iteration), **extra}, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
