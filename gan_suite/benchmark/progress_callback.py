"""A training callback that prints machine-readable progress lines for the benchmark runner.

The runner adds it to every training process (``--trainer.callbacks+=...``) and reads the lines
from the process's stdout::

    @gan-suite-progress {"iteration": 150, "max_iterations": 1500}
"""

from __future__ import annotations

import json
import sys

import pytorch_lightning as pl

from gan_suite.benchmark.launch import PROGRESS_PREFIX as PREFIX


class ProgressLines(pl.Callback):
    """Print a progress line at start, every ``percent`` % of the training steps, and at the end.

    Args:
        percent: interval in percent of ``max_steps`` (converted to training steps).
    """

    def __init__(self, percent: float = 2.0) -> None:
        self.percent = percent
        self._every = 1
        self._total = None

    def on_train_start(self, trainer, pl_module) -> None:
        d_steps = int(getattr(pl_module, "d_steps", 1))
        if trainer.max_steps and trainer.max_steps > 0:
            self._total = trainer.max_steps // (d_steps + 1)
            self._every = max(1, int(self._total * self.percent / 100))
        self._emit(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if getattr(pl_module, "iteration", 0) % self._every == 0:
            self._emit(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._emit(trainer, pl_module)

    def _emit(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            line = {"iteration": int(getattr(pl_module, "iteration", trainer.global_step)), "max_iterations": self._total}
            sys.stdout.write(PREFIX + json.dumps(line) + "\n")
            sys.stdout.flush()
