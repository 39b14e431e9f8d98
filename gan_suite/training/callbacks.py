"""Callbacks of the training side: sample grids from the fixed noise batch, checkpoints that keep the
final step, the training-step progress bar."""

from __future__ import annotations

import os
from typing import Optional

import pytorch_lightning as pl
import torch

from gan_suite.run_layout import run_directory
from gan_suite.visual import sample_picture_array, save_png


#: rows of a class-conditional sample grid (one class per row)
MAX_CLASS_ROWS = 10


class SampleGrid(pl.Callback):
    """Every ``every_n_steps`` training steps (and at the end), draw the fixed noise batch.

    For a class-conditional model the grid has one row per class (the first
    ``MAX_CLASS_ROWS`` classes), each row the same first ``nrow`` fixed noise vectors.

    Writes ``<run dir>/samples/step_<iteration>.png`` and hands the picture to every logger that
    can take images (``log_image`` of WandbLogger, ``add_image`` of TensorBoard).

    Args:
        every_n_steps: interval in training steps (generator updates).
        nrow: images per grid row.
    """

    def __init__(self, every_n_steps: int = 500, nrow: int = 8) -> None:
        self.every_n_steps = every_n_steps
        self.nrow = nrow
        self.last_path: Optional[str] = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps > 0 and pl_module.iteration % self.every_n_steps == 0:
            self._draw(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._draw(trainer, pl_module)

    def _samples(self, pl_module) -> torch.Tensor:
        noise = pl_module.fixed_noise
        if getattr(pl_module, "seeds", None):  # stacked seeds: row i is seed i's first nrow samples
            return pl_module.sample(noise[:, : self.nrow]).flatten(0, 1)
        if not getattr(pl_module, "num_classes", 0):
            return pl_module.sample(noise)
        rows, cols = min(pl_module.num_classes, MAX_CLASS_ROWS), min(self.nrow, len(noise))
        labels = torch.arange(rows, device=noise.device).repeat_interleave(cols)  # row r: class r
        return pl_module.sample(noise[:cols].repeat(rows, 1), labels)

    def _draw(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        samples = self._samples(pl_module)
        reference = None
        datamodule = getattr(trainer, "datamodule", None)
        if samples.dim() == 2 and hasattr(datamodule, "mixture"):
            from gan_suite.data.toy2d import mixture_geometry

            reference = mixture_geometry(datamodule.mixture)[0]
        path = os.path.join(run_directory(trainer), "samples", f"step_{pl_module.iteration:07d}.png")
        picture = sample_picture_array(samples, self.nrow, reference)
        self.last_path = save_png(picture, path)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[picture], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):
                logger.experiment.add_image("samples", torch.from_numpy(picture).permute(2, 0, 1), pl_module.iteration)


class FinalStepCheckpoint(pl.callbacks.ModelCheckpoint):
    """ModelCheckpoint that also writes ``last.ckpt`` at the step where training ends.

    Lightning's ModelCheckpoint (2.6 checked) writes ``last.ckpt`` only beside a periodic
    checkpoint, and at the end of training only when no ``last.ckpt`` exists yet: with
    ``every_n_train_steps`` that does not divide ``max_steps``, the steps after the last multiple
    were lost and ``last.ckpt`` (what ``gan-suite evaluate`` and resumption read) held an older
    model. ``_last_global_step_saved`` and ``_save_last_checkpoint`` are its internals.
    """

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = trainer.global_step
        super().on_train_end(trainer, pl_module)


class TrainingStepProgressBar(pl.callbacks.TQDMProgressBar):
    """Lightning's progress bar, with its total in training steps.

    One batch is one training step (``d_steps`` D updates and one G update), while
    ``trainer.max_steps`` counts optimizer updates, ``d_steps + 1`` per training step: Lightning's
    own bar would stop at 1 / (d_steps + 1) of its total.
    """

    @property
    def total_train_batches(self):
        total = super().total_train_batches
        trainer = self.trainer
        if trainer.max_steps is not None and trainer.max_steps > 0:
            per_step = int(getattr(trainer.lightning_module, "d_steps", 0)) + 1
            steps = -(-trainer.max_steps // per_step)
            return steps if total is None or total == float("inf") else min(total, steps)
        return total
