"""Lightning's CSVLogger, made to continue a run's ``metrics.csv`` when the run is resumed.

Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts in a non-empty folder,
so a run resumed into its own folder would lose the history logged before the checkpoint. This
logger keeps the rows logged before ``resume_step`` (the resumed checkpoint's optimizer-update
count, set by ``gan-suite fit --ckpt_path``) and appends after them; rows from after the
checkpoint (logged by the interrupted process) are dropped, since the resumed run logs those
steps again.
"""

from __future__ import annotations

import csv
import os
import warnings
from typing import Optional

from pytorch_lightning.loggers import CSVLogger as _LightningCSVLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment


class CSVLogger(_LightningCSVLogger):
    """:class:`pytorch_lightning.loggers.CSVLogger` whose ``metrics.csv`` survives a resume.

    Args:
        resume_step: keep the existing rows with ``step`` below this (None: a new run, Lightning's
            behaviour). Other arguments: those of Lightning's CSVLogger.
    """

    def __init__(self, *args, resume_step: Optional[int] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = os.path.join(self.log_dir, "metrics.csv")
        header, kept = [], []
        if self.resume_step is not None and os.path.isfile(path):
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or [])
                kept = [row for row in reader if _step(row) < self.resume_step]
        with warnings.catch_warnings():  # "previous log files ... will be deleted": not so here
            warnings.filterwarnings("ignore", ".*Previous log files in this directory will be deleted.*")
            experiment = super().experiment  # Lightning's writer removes the old file here
        if header:
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=header)
                writer.writeheader()
                writer.writerows(kept)
            experiment.metrics_keys = sorted(header)
            if header != experiment.metrics_keys:  # Lightning writes sorted headers; keep the file consistent
                experiment._rewrite_with_new_header(experiment.metrics_keys)
        return experiment


def _step(row: dict) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0
