"""In-training evaluation: metrics every N steps, logged, with a best-by-metric checkpoint.

Under DDP each rank generates its contiguous share of the M evaluation samples (the noise of a
sample depends only on its index, see :func:`~gan_suite.evaluation.streaming.evaluation_noise`),
the features are all-gathered without padding artefacts (each rank's true count travels with its
padded block and the padding is cut off), and every rank computes the same metrics on the same M
samples a single process would use. The feature extractor is held by this callback, not by the
LightningModule, so its weights never enter training checkpoints.

With stacked seeds (``model.init_args.seeds``) every seed's sampling generator is evaluated
against the reference sets of its own data module (the one built with its seed) and logged as
``eval/seed_<s>/<metric>``; the history has one line per seed (``"seed"``). No best checkpoint
is kept then (a checkpoint holds every seed): ``best_metric`` must be null.
"""

from __future__ import annotations

import json
import math
import os
from typing import Optional, Sequence

import pytorch_lightning as pl
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.registry import check_metric_names, direction, get_metric, needs_of
from gan_suite.evaluation.protocol import (
    compute_metrics,
    default_extractor,
    evaluation_context,
    mode_labeller,
    reference_sets,
    scalar_metrics,
)
from gan_suite.evaluation.streaming import FeatureSet, dataset_features, generated_features
from gan_suite.run_layout import run_directory


class EvaluationListener:
    """A callback that the :class:`EvaluationCallback` tells of each of its evaluations, on every
    rank, after the history entry and the best checkpoint are written (mode history, stopping rules)."""

    def on_evaluation_end(self, trainer: pl.Trainer, pl_module, values: dict, entry: dict) -> None:
        """``values``: every metric output (tables and verdicts included); ``entry``: the history
        line (``iteration``, ``global_step`` and the scalar metrics)."""


def find_evaluation_callback(trainer: pl.Trainer, needed_by: str) -> "EvaluationCallback":
    """The trainer's EvaluationCallback; a one-line ConfigError naming ``needed_by`` if it has none."""
    for callback in trainer.callbacks:
        if isinstance(callback, EvaluationCallback):
            return callback
    raise ConfigError(f"{needed_by} needs an EvaluationCallback in trainer.callbacks (it acts on its evaluations)")


class EvaluationCallback(pl.Callback):
    """Compute ``metrics`` every ``every_n_steps`` training steps on ``num_samples`` samples.

    Args:
        every_n_steps: interval in training steps (generator updates).
        num_samples: generated samples per evaluation (M).
        features: extractor name or 'auto'.
        metrics: metric names (see :mod:`gan_suite.evaluation.protocol`); default ['fid'].
        real_split: real reference split of the training data module.
        num_real: real reference samples (default: the whole split).
        best_metric: value whose best triggers ``checkpoints/best_<metric>.ckpt`` (None: no checkpoint).
        weights_path: extractor weights file (offline Inception etc.).
        batch_size: generation / extraction batch size.
        seed: seed of the evaluation noise (the same samples' noise at every evaluation).
    """

    def __init__(
        self,
        every_n_steps: int = 1000,
        num_samples: int = 5000,
        features: str = "auto",
        metrics: Optional[Sequence[str]] = None,
        real_split: str = "heldout",
        num_real: Optional[int] = None,
        best_metric: Optional[str] = "fid",
        weights_path: Optional[str] = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.features = features
        self.metrics = check_metric_names(list(metrics) if metrics is not None else ["fid"])
        self.real_split = real_split
        self.num_real = num_real
        if best_metric is not None and direction(best_metric) is None:
            raise ConfigError(f"best_metric '{best_metric}' is not a score with a direction (e.g. fid, kid_mean, precision)")
        self.best_metric = best_metric
        self.weights_path = weights_path
        self.batch_size = batch_size
        self.seed = seed
        self.best_value: Optional[float] = None
        self.best_step: Optional[int] = None
        self.history: list[dict] = []
        self._extractor = None
        self._labeller = None
        #: per evaluated generator (one, or one per stacked seed): (seed or None, real, train, held-out)
        self._references: list = []

    def metric_outputs(self) -> list[str]:
        """The output keys (``fid``, ``kid_mean``, ``modes_covered``, ...) of this callback's metrics."""
        return [output.key for name in self.metrics for output in get_metric(name).outputs]

    # ------------------------------------------------------------------ set-up
    def on_fit_start(self, trainer: pl.Trainer, pl_module) -> None:
        from gan_suite.evaluation.features import build_extractor

        datamodule = trainer.datamodule
        data_name = getattr(datamodule, "name", "")
        name = default_extractor(pl_module.sample_shape, data_name) if self.features == "auto" else self.features
        kwargs = {"weights_path": self.weights_path} if self.weights_path else {}
        self._extractor = build_extractor(name, **kwargs).to(pl_module.device)
        self._mixture = getattr(datamodule, "mixture", None)
        self._context = evaluation_context(
            name, self._extractor.num_classes is not None, data_name, self._mixture, seed=self.seed,
            conditional=bool(getattr(pl_module, "num_classes", 0)),
        )
        needs = needs_of(self.metrics)
        self._pixels = "pixels" in needs and len(pl_module.sample_shape) == 3
        if "labels" in needs and self._mixture is None:
            self._labeller = mode_labeller(data_name, pl_module.device)

        seeds = getattr(pl_module, "seeds", None)
        if seeds and self.best_metric is not None:
            raise ConfigError("with stacked seeds the in-training evaluation keeps no best checkpoint: set best_metric: null")
        self._references = []
        for seed in seeds or [None]:
            data = datamodule if seed is None else datamodule._seed_copy(seed)

            def features_of(split, n=None, data=data):
                return dataset_features(
                    data.split(split), self._extractor, n, self.batch_size, pl_module.device,
                    labeller=self._labeller, progress=False,
                )

            real = features_of(self.real_split, self.num_real)
            train, heldout = reference_sets(needs, real, self.real_split, self.num_real is None, features_of, data, self._pixels)
            self._references.append((seed, real, train, heldout))

    # ------------------------------------------------------------------ evaluation
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps > 0 and pl_module.iteration % self.every_n_steps == 0:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: pl.Trainer, pl_module) -> dict:
        """Run one evaluation now; returns the metric values (identical on every rank; with
        stacked seeds those of the last seed, every seed's in the history and the loggers)."""
        world, rank = trainer.world_size, trainer.global_rank
        share = (rank * self.num_samples // world, (rank + 1) * self.num_samples // world)
        for index, (seed, real, train, heldout) in enumerate(self._references):
            generator = pl_module.sampling_generator
            if seed is not None:  # seed `index` of the stacked networks, as an ordinary network
                generator = generator.network(index).to(pl_module.device)
            local = generated_features(
                generator, pl_module.latent_dim, self._extractor, self.num_samples,
                self.batch_size, pl_module.device, self.seed, labeller=self._labeller, pixels=self._pixels,
                progress=False, noise_slice=share,
            )
            fake = gather_feature_sets(local, trainer.strategy) if world > 1 else local
            values = compute_metrics(self.metrics, fake, real, train, heldout, context=self._context, log=lambda msg: None)
            scalars = scalar_metrics(values)
            prefix = "eval/" if seed is None else f"eval/seed_{seed}/"
            if trainer.is_global_zero:  # straight to the loggers: allowed from every hook, e.g. on_train_end
                for logger in trainer.loggers:
                    logger.log_metrics({f"{prefix}{k}": v for k, v in scalars.items()}, step=trainer.global_step)
            entry = {"iteration": pl_module.iteration, "global_step": trainer.global_step, **({} if seed is None else {"seed": seed}), **scalars}
            self.history.append(entry)
            if trainer.is_global_zero:
                self._append_history(trainer, entry)
        self._maybe_save_best(trainer, pl_module, scalars)
        for callback in trainer.callbacks:  # after the best checkpoint: a rule that stops keeps it
            if isinstance(callback, EvaluationListener):
                callback.on_evaluation_end(trainer, pl_module, values, entry)
        return values

    def _maybe_save_best(self, trainer, pl_module, scalars: dict) -> None:
        if self.best_metric is None or self.best_metric not in scalars or math.isnan(scalars[self.best_metric]):
            return
        value = scalars[self.best_metric]
        better = self.best_value is None or (
            value > self.best_value if direction(self.best_metric) else value < self.best_value
        )
        if better:
            self.best_value, self.best_step = value, pl_module.iteration
            path = os.path.join(run_directory(trainer), "checkpoints", f"best_{self.best_metric}.ckpt")
            trainer.save_checkpoint(path)  # every rank calls it; rank 0 writes

    def _append_history(self, trainer, entry: dict) -> None:
        folder = os.path.join(run_directory(trainer), "evaluation")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "history.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "best_step": self.best_step, "history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_value = state_dict.get("best_value")
        self.best_step = state_dict.get("best_step")
        self.history = list(state_dict.get("history", []))


def gather_feature_sets(local: FeatureSet, strategy) -> FeatureSet:
    """Concatenate every rank's FeatureSet in rank order, without padding rows.

    Ranks may hold different counts: each pads to the largest count, all-gathers, and the
    receivers cut every block back to its true count.
    """
    count = torch.tensor([len(local)], device=strategy.root_device)
    counts = strategy.all_gather(count).view(-1).tolist()
    largest = max(counts)

    def gather(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if t is None:
            return None
        padded = torch.zeros((largest,) + tuple(t.shape[1:]), dtype=t.dtype, device=strategy.root_device)
        padded[: t.shape[0]] = t.to(strategy.root_device)
        blocks = strategy.all_gather(padded)  # [world, largest, ...]
        return torch.cat([blocks[r, : counts[r]] for r in range(len(counts))]).cpu()

    return FeatureSet(
        features=gather(local.features), logits=gather(local.logits), labels=gather(local.labels), pixels=gather(local.pixels),
        conditioning=gather(local.conditioning),
    )
