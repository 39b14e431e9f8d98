"""Stop a run at the right time, on the in-training metric of the
:class:`~gan_suite.evaluation.callback.EvaluationCallback`.

* :class:`PlateauStopping` is Lightning's ``EarlyStopping`` (patience, ``min_delta``, non-finite
  values) checked after each evaluation instead of at epoch or validation ends (GAN runs here are
  step-based, without validation loops); it stops with status ``plateau`` (``diverged`` for a
  non-finite metric).
* :class:`DivergenceStopping` stops with status ``diverged`` when the metric got worse than at the
  previous evaluation for ``worse_for`` evaluations in a row, or when the discriminator saturates
  (mean D(x) >= ``saturation_level`` and mean D(G(z)) <= 1 - ``saturation_level`` on a fixed real
  batch and fixed noise) at ``saturation_for`` checks in a row. Lightning has no rule of either
  kind (its ``divergence_threshold`` is a fixed bound), so they are written here.

Both write ``<run dir>/status.json`` (:func:`~gan_suite.run_layout.write_run_status`): the
status, the reason, the step, and the best checkpoint the EvaluationCallback kept (a stopping rule
runs after it, so the best checkpoint is always the one of an evaluation before the stop). A run
that ends at ``max_steps`` gets status ``finished``.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason

from gan_suite.errors import ConfigError
from gan_suite.evaluation.callback import EvaluationListener, find_evaluation_callback
from gan_suite.evaluation.metrics.registry import direction
from gan_suite.run_layout import write_run_status

PLATEAU, DIVERGED, FINISHED = "plateau", "diverged", "finished"


def _direction_of(metric: str, owner: str) -> bool:
    higher = direction(metric)
    if higher is None:
        raise ConfigError(f"{owner}: metric '{metric}' is not a score with a direction (e.g. fid, kid_mean, precision)")
    return higher


class _StoppingRule(EvaluationListener, pl.Callback):
    """What both rules share: the status file, written when a rule stops and at the end of a run
    that no rule stopped."""

    #: it samples one seed's networks: a run with stacked seeds refuses it
    supports_stacked_seeds = False

    def _stop(self, trainer, pl_module, status: str, reason: str) -> None:
        trainer.should_stop = True
        self.stopped_status, self.stopped_reason, self.stopped_iteration = status, reason, int(pl_module.iteration)
        evaluation = find_evaluation_callback(trainer, type(self).__name__)
        best = None
        if evaluation.best_metric is not None and evaluation.best_step is not None:
            best = {
                "metric": evaluation.best_metric, "value": evaluation.best_value, "iteration": evaluation.best_step,
                "checkpoint": os.path.join("checkpoints", f"best_{evaluation.best_metric}.ckpt"),
            }
        write_run_status(trainer, status, reason, pl_module.iteration, stopped_by=type(self).__name__, best=best)

    def on_train_end(self, trainer, pl_module) -> None:
        if any(isinstance(c, _StoppingRule) and c.stopped_status for c in trainer.callbacks):
            return  # the rule that stopped the run wrote the status
        reason = "stopped by another callback" if trainer.should_stop else "reached max_steps"
        write_run_status(trainer, FINISHED, reason, pl_module.iteration)


class PlateauStopping(_StoppingRule, EarlyStopping):
    """Stop when the in-training ``metric`` has not improved by more than ``min_delta`` for
    ``patience`` evaluations (Lightning's EarlyStopping rule, checked after each evaluation).

    With evaluations every E steps, a metric whose best value is reached at step S stops the run
    at step S + patience * E.

    Args:
        metric: a metric of the EvaluationCallback with a direction (``fid``, ``kid_mean``,
            ``modes_covered``, ...); the direction comes from the metric registry.
        patience: evaluations without improvement before stopping.
        min_delta: an improvement must exceed this (absolute) amount.
        verbose: print Lightning's improvement messages.
    """

    def __init__(self, metric: str = "fid", patience: int = 5, min_delta: float = 0.0, verbose: bool = False) -> None:
        if patience < 1:
            raise ConfigError(f"PlateauStopping: patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ConfigError(f"PlateauStopping: min_delta must be >= 0, got {min_delta}")
        higher = _direction_of(metric, "PlateauStopping")
        EarlyStopping.__init__(self, monitor=f"eval/{metric}", min_delta=min_delta, patience=patience, mode="max" if higher else "min",
                               verbose=verbose, strict=True, check_finite=True)
        self.metric = metric
        self.stopped_status: Optional[str] = None

    # the epoch / validation hooks of EarlyStopping never decide here: evaluations do
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        return None

    def on_validation_end(self, trainer, pl_module) -> None:
        return None

    def on_fit_start(self, trainer, pl_module) -> None:
        evaluation = find_evaluation_callback(trainer, "PlateauStopping")
        if self.metric not in evaluation.metric_outputs():
            raise ConfigError(f"PlateauStopping: the EvaluationCallback computes no '{self.metric}' (its metrics: {evaluation.metrics})")

    def on_evaluation_end(self, trainer, pl_module, values: dict, entry: dict) -> None:
        if self.metric not in entry:
            return
        trainer.callback_metrics[self.monitor] = torch.tensor(float(entry[self.metric]))
        was_stopping = trainer.should_stop
        self._run_early_stopping_check(trainer)
        if trainer.should_stop and not was_stopping:
            status = DIVERGED if self.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC else PLATEAU
            best = float(self.best_score)
            reason = (
                f"{self.metric} not better than {best:.6g} by more than {abs(self.min_delta):g} for {self.wait_count} evaluations"
                if status == PLATEAU else f"{self.metric} is {entry[self.metric]}"
            )
            self._stop(trainer, pl_module, status, reason)

    def state_dict(self) -> dict:
        return {**EarlyStopping.state_dict(self), "stopped_status": self.stopped_status}

    def load_state_dict(self, state_dict: dict) -> None:
        EarlyStopping.load_state_dict(self, state_dict)
        self.stopped_status = state_dict.get("stopped_status")


class DivergenceStopping(_StoppingRule):
    """Stop with status ``diverged`` when the metric worsens or the discriminator saturates.

    Args:
        metric: in-training metric with a direction (None: only the saturation rule).
        worse_for: stop when ``metric`` was worse than at the previous evaluation (by more than
            ``min_delta``) at this many evaluations in a row (0 disables the rule).
        min_delta: a change must exceed this amount to count as worse.
        saturation_for: stop when D saturates at this many checks (evaluations) in a row (0
            disables; only for probabilistic losses: minimax, non_saturating).
        saturation_level: saturated means mean D(x) >= level and mean D(G(z)) <= 1 - level.
        saturation_samples: real samples (the first of the training split) and noise draws per check.
        seed: seed of the fixed noise of the saturation check.
    """

    def __init__(
        self,
        metric: Optional[str] = "fid",
        worse_for: int = 3,
        min_delta: float = 0.0,
        saturation_for: int = 3,
        saturation_level: float = 0.99,
        saturation_samples: int = 256,
        seed: int = 0,
    ) -> None:
        if worse_for < 0 or saturation_for < 0:
            raise ConfigError("DivergenceStopping: worse_for and saturation_for must be >= 0")
        if not 0.5 < saturation_level < 1:
            raise ConfigError(f"DivergenceStopping: saturation_level must be in (0.5, 1), got {saturation_level}")
        self.metric = metric
        self.higher = _direction_of(metric, "DivergenceStopping") if metric is not None else None
        self.worse_for = worse_for if metric is not None else 0
        self.min_delta = min_delta
        self.saturation_for = saturation_for
        self.saturation_level = saturation_level
        self.saturation_samples = saturation_samples
        self.seed = seed
        self.previous: Optional[float] = None
        self.worse_count = 0
        self.saturated_count = 0
        self.last_saturation: Optional[tuple[float, float]] = None
        self.stopped_status: Optional[str] = None
        self._real: Optional[torch.Tensor] = None
        self._labels: Optional[torch.Tensor] = None
        self._noise: Optional[torch.Tensor] = None

    def on_fit_start(self, trainer, pl_module) -> None:
        evaluation = find_evaluation_callback(trainer, "DivergenceStopping")
        if self.worse_for and self.metric not in evaluation.metric_outputs():
            raise ConfigError(f"DivergenceStopping: the EvaluationCallback computes no '{self.metric}' (its metrics: {evaluation.metrics})")
        if self.saturation_for:
            if not pl_module.loss_fn.probabilistic:
                raise ConfigError(f"DivergenceStopping: the saturation rule needs a probabilistic loss (minimax, non_saturating), not '{pl_module.loss_name}'; set saturation_for: 0")
            n = self.saturation_samples - self.saturation_samples % max(pl_module.pack, 1)
            dataset = trainer.datamodule.split("train")
            x = dataset.__getitems__(list(range(min(n, len(dataset)))))
            self._real = (x[0] if isinstance(x, (list, tuple)) else x).to(pl_module.device)
            # a class-conditional D judges both sides with the real images' labels
            self._labels = x[1].to(pl_module.device) if getattr(pl_module, "num_classes", 0) else None
            gen = torch.Generator().manual_seed(self.seed)
            self._noise = torch.randn(len(self._real), pl_module.latent_dim, generator=gen).to(pl_module.device)

    def saturation(self, pl_module) -> tuple[float, float]:
        """(mean D(x), mean D(G(z))) on the fixed real batch and the fixed noise."""
        labels = self._labels
        d_real = float(pl_module.discriminator_score(self._real, labels).mean())
        fake = pl_module.sample(self._noise, labels, trained=True)  # D is trained against G, not its EMA
        return d_real, float(pl_module.discriminator_score(fake, labels).mean())

    def on_evaluation_end(self, trainer, pl_module, values: dict, entry: dict) -> None:
        if trainer.should_stop:
            return
        reason = None
        if self.worse_for and self.metric in entry:
            value = float(entry[self.metric])
            if not math.isfinite(value):
                reason = f"{self.metric} is {value}"
            else:
                if self.previous is not None:
                    change = value - self.previous if self.higher else self.previous - value  # > 0: better
                    self.worse_count = self.worse_count + 1 if change < -self.min_delta else 0
                self.previous = value
                if self.worse_count >= self.worse_for:
                    reason = f"{self.metric} got worse at {self.worse_count} evaluations in a row (now {value:.6g})"
        if reason is None and self.saturation_for:
            d_real, d_fake = self.last_saturation = self.saturation(pl_module)
            level = self.saturation_level
            self.saturated_count = self.saturated_count + 1 if d_real >= level and d_fake <= 1 - level else 0
            if self.saturated_count >= self.saturation_for:
                reason = f"discriminator saturated at {self.saturated_count} checks in a row (D(x) = {d_real:.4f}, D(G(z)) = {d_fake:.4f})"
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(reason is not None, all=False)
            reason = reason or ("another rank's divergence rule fired" if stop else None)
        if reason is not None:
            self._stop(trainer, pl_module, DIVERGED, reason)

    def state_dict(self) -> dict:
        return {"previous": self.previous, "worse_count": self.worse_count, "saturated_count": self.saturated_count, "stopped_status": self.stopped_status}

    def load_state_dict(self, state_dict: dict) -> None:
        self.previous = state_dict.get("previous")
        self.worse_count = int(state_dict.get("worse_count", 0))
        self.saturated_count = int(state_dict.get("saturated_count", 0))
        self.stopped_status = state_dict.get("stopped_status")

