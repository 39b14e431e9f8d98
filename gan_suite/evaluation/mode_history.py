"""Mode histogram over training: the share of samples per mode at each in-training evaluation.

The histograms are those of the ``modes`` metric (:mod:`gan_suite.evaluation.metrics.modes`: the
high-quality samples per mode of a 2-D mixture, or the classifier's labels of MNIST / Stacked
MNIST digits), taken from the :class:`~gan_suite.evaluation.callback.EvaluationCallback`'s
results. :class:`ModeHistory` keeps them as a matrix [modes, evaluations] and writes

    <run dir>/evaluation/mode_history.json   steps, mode names, shares, dropped, hopping statistics
    <run dir>/evaluation/mode_history.png    the heatmap (modes x steps; dropped modes marked)

and logs ``modes/hops`` and ``modes/total_variation`` at every evaluation and the heatmap at the
end to the run's loggers. The mode-hopping statistics (:func:`mode_hopping`) are hand-written:
no library computes them.
"""

from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np
import pytorch_lightning as pl

from gan_suite.errors import ConfigError
from gan_suite.run_layout import MODE_HEATMAP_FILE, MODE_HISTORY_FILE, run_directory
from gan_suite.evaluation.callback import EvaluationListener, find_evaluation_callback

def mode_shares(values: dict, num_samples: int) -> tuple[list, np.ndarray, np.ndarray]:
    """(mode names [K], share of the ``num_samples`` generated samples per mode [K], dropped [K] bool)
    from the outputs of the ``modes`` metric (its ``mode_table``)."""
    table = values.get("mode_table")
    if not table:
        raise ConfigError("the mode history needs the 'modes' metric's table (add 'modes' to the EvaluationCallback's metrics)")
    names = [row["mode"] for row in table]
    shares = np.array([row["observed"] for row in table], dtype=float) / max(int(num_samples), 1)
    dropped = np.array([row["status"] == "dropped" for row in table])
    return names, shares, dropped


def mode_hopping(shares: np.ndarray) -> dict:
    """Mode-hopping statistics of shares [K modes, T steps].

    Returns {'most_frequent': [T] index of the largest share (None for a step with no sample in
    any mode), 'hops': number of steps whose most frequent mode differs from the one at the
    previous step that had one, 'total_variation': [T - 1] TV distance 0.5 * sum |p_t - p_{t-1}|
    between consecutive histograms normalised over the modes (NaN where either is empty),
    'mean_total_variation': mean of the finite ones (NaN if none)}.
    """
    shares = np.asarray(shares, dtype=float)
    totals = shares.sum(0)
    most = [int(np.argmax(shares[:, t])) if totals[t] > 0 else None for t in range(shares.shape[1])]
    seen = [m for m in most if m is not None]
    hops = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    tv = []
    for t in range(1, shares.shape[1]):
        if totals[t] > 0 and totals[t - 1] > 0:
            tv.append(0.5 * float(np.abs(shares[:, t] / totals[t] - shares[:, t - 1] / totals[t - 1]).sum()))
        else:
            tv.append(math.nan)
    finite = [v for v in tv if math.isfinite(v)]
    return {"most_frequent": most, "hops": hops, "total_variation": tv, "mean_total_variation": float(np.mean(finite)) if finite else math.nan}


class ModeHistory(EvaluationListener, pl.Callback):
    """Keep the ``modes`` histogram of every in-training evaluation; heatmap and hopping statistics.

    Needs an :class:`~gan_suite.evaluation.callback.EvaluationCallback` whose metrics include
    ``modes`` (2-D mixtures, MNIST, Stacked MNIST). Matrices: ``shares`` [modes, evaluations],
    ``dropped`` (bool, same shape), ``steps`` (training steps of the evaluations).

    Args:
        draw_every_evaluation: also redraw the PNG after every evaluation (default: at the end only;
            the JSON is rewritten every time).
    """

    #: it samples one seed's networks: a run with stacked seeds refuses it
    supports_stacked_seeds = False

    def __init__(self, draw_every_evaluation: bool = False) -> None:
        self.draw_every_evaluation = draw_every_evaluation
        self.steps: list[int] = []
        self.names: list[str] = []
        self.columns: list[np.ndarray] = []
        self.dropped_columns: list[np.ndarray] = []
        self.png_path: Optional[str] = None
        self._num_samples = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        evaluation = find_evaluation_callback(trainer, "ModeHistory")
        if "modes" not in evaluation.metrics:
            raise ConfigError("ModeHistory needs the 'modes' metric: add it to the EvaluationCallback's metrics")
        self._num_samples = evaluation.num_samples

    @property
    def shares(self) -> np.ndarray:
        """[modes, evaluations] share of the generated samples in each mode."""
        return np.stack(self.columns, 1) if self.columns else np.zeros((len(self.names), 0))

    @property
    def dropped(self) -> np.ndarray:
        return np.stack(self.dropped_columns, 1) if self.dropped_columns else np.zeros((len(self.names), 0), dtype=bool)

    def statistics(self) -> dict:
        return mode_hopping(self.shares)

    def on_evaluation_end(self, trainer, pl_module, values: dict, entry: dict) -> None:
        names, shares, dropped = mode_shares(values, self._num_samples)
        if self.names and names != self.names:
            raise ConfigError("the modes changed between evaluations")
        self.names = names
        self.steps.append(int(entry["iteration"]))
        self.columns.append(shares)
        self.dropped_columns.append(dropped)
        if not trainer.is_global_zero:
            return
        stats = self.statistics()
        logged = {"modes/hops": float(stats["hops"])}
        if stats["total_variation"] and math.isfinite(stats["total_variation"][-1]):
            logged["modes/total_variation"] = stats["total_variation"][-1]
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)
        self._write_json(trainer, stats)
        if self.draw_every_evaluation:
            self._draw(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not self.columns:
            return
        path = self._draw(trainer)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="modes/heatmap", images=[path], step=trainer.global_step)

    def _write_json(self, trainer, stats: dict) -> None:
        path = os.path.join(run_directory(trainer), MODE_HISTORY_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        record = {
            "steps": self.steps, "modes": self.names, "shares": self.shares.tolist(), "dropped": self.dropped.tolist(),
            "hops": stats["hops"], "mean_total_variation": _finite_or_none(stats["mean_total_variation"]),
            "total_variation": [_finite_or_none(v) for v in stats["total_variation"]], "most_frequent": stats["most_frequent"],
        }
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)

    def _draw(self, trainer) -> str:
        from gan_suite.visual.training import save_mode_heatmap

        stats = self.statistics()
        title = f"share of samples per mode; {stats['hops']} hops of the most frequent mode, mean TV {stats['mean_total_variation']:.3f}"
        self.png_path = save_mode_heatmap(
            os.path.join(run_directory(trainer), MODE_HEATMAP_FILE), self.steps, self.names, self.shares, self.dropped, title,
        )
        return self.png_path

    def state_dict(self) -> dict:
        return {"steps": self.steps, "names": self.names, "shares": self.shares.tolist(), "dropped": self.dropped.tolist()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps = list(state_dict.get("steps", []))
        self.names = list(state_dict.get("names", []))
        shares, dropped = np.array(state_dict.get("shares", []), dtype=float), np.array(state_dict.get("dropped", []), dtype=bool)
        self.columns = [shares[:, t] for t in range(shares.shape[1])] if shares.ndim == 2 else []
        self.dropped_columns = [dropped[:, t] for t in range(dropped.shape[1])] if dropped.ndim == 2 else []


def _finite_or_none(value: float) -> Optional[float]:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None
