"""Report figures (matplotlib, Agg canvas: no display, no global pyplot state).

* ``curves.png``: the main metric over training steps, per variant the mean over seeds as a line
  and the min-max range over seeds as a band.
* ``samples_<variant>.png``: the last sample picture of each finished seed of a variant, side by side.
* ``mode_history_<variant>.png``: the in-training mode heatmap (modes x steps) of each seed of a
  variant that kept one (:class:`~gan_suite.evaluation.mode_history.ModeHistory`).
"""

from __future__ import annotations

import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gan_suite.benchmark import results as R
from gan_suite.benchmark.definition import BenchmarkDefinition


def curve_statistics(curves: list) -> tuple[list, list, list, list]:
    """(steps, mean, min, max) over several curves [[step, value], ...]; a step's statistics use
    the curves that have it."""
    by_step: dict = {}
    for curve in curves:
        for step, value in curve:
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                by_step.setdefault(int(step), []).append(float(value))
    steps = sorted(by_step)
    return (
        steps,
        [sum(by_step[s]) / len(by_step[s]) for s in steps],
        [min(by_step[s]) for s in steps],
        [max(by_step[s]) for s in steps],
    )


def _variant_results(definition: BenchmarkDefinition, results: dict) -> dict:
    grouped: dict = {variant: [] for variant in definition.variants}
    for run in definition.runs():
        result = results.get(run.run_id)
        if result is not None:
            grouped[run.variant].append(result)
    return grouped


def plot_curves(definition: BenchmarkDefinition, results: dict, path: str) -> str:
    """Write ``curves.png``: mean line and min-max band over seeds of the main metric per variant."""
    fig = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = _colours(len(definition.variants))
    drawn = 0
    for i, (variant, runs) in enumerate(_variant_results(definition, results).items()):
        curves = [r.get("curve") or [] for r in runs if r.get("status") == R.FINISHED]
        steps, mean, low, high = curve_statistics(curves)
        if not steps:
            continue
        colour = cmap[i]
        ax.plot(steps, mean, color=colour, label=f"{variant} (n={len(curves)})", linewidth=1.6, marker="o" if len(steps) < 3 else None)
        if len(curves) > 1:
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        drawn += 1
    ax.set_xlabel("training step")
    ax.set_ylabel(definition.main_metric)
    direction = definition.direction(definition.main_metric)
    note = "" if direction is None else (" (higher is better)" if direction else " (lower is better)")
    ax.set_title(f"{definition.name}: {definition.main_metric}{note}; line: mean, band: min-max over seeds", fontsize=9)
    if drawn:
        ax.legend(fontsize=7, ncol=2 if drawn > 8 else 1)
    else:
        ax.text(0.5, 0.5, "no finished run with a curve yet", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def plot_samples(definition: BenchmarkDefinition, results: dict, out_dir: str, folder: str, max_seeds: int = 10) -> dict:
    """Write ``samples_<variant>.png`` for each variant with a sample picture; returns variant -> path."""
    from PIL import Image

    written = {}
    for variant, runs in _variant_results(definition, results).items():
        pictures = []
        for result in sorted(runs, key=lambda r: (r.get("status") != R.FINISHED, r.get("seed", 0))):
            sample = result.get("samples")
            if sample and os.path.isfile(os.path.join(out_dir, sample)):
                pictures.append((result, os.path.join(out_dir, sample)))
        pictures = pictures[:max_seeds]
        if not pictures:
            continue
        fig, axes = _panels(len(pictures), 5, (2.6, 2.8), 120)
        for ax, (result, png) in zip(axes, pictures):
            with Image.open(png) as image:
                ax.imshow(image.convert("RGB"))
            status = "" if result.get("status") == R.FINISHED else f" ({result.get('status')})"
            ax.set_title(f"seed {result.get('seed')}{status}", fontsize=8)
            ax.axis("off")
        fig.suptitle(f"{definition.name}: {variant}, last samples", fontsize=9)
        path = os.path.join(folder, f"samples_{variant}.png")
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path)
        written[variant] = path
    return written


def plot_mode_histories(definition: BenchmarkDefinition, results: dict, out_dir: str, folder: str, max_seeds: int = 6) -> dict:
    """Write ``mode_history_<variant>.png`` (one heatmap per seed, with its hop count) for each
    variant whose runs kept a mode history; returns variant -> path."""
    import json

    import numpy as np

    from gan_suite.visual.training import draw_mode_heatmap

    written = {}
    for variant, runs in _variant_results(definition, results).items():
        histories = []
        for result in sorted(runs, key=lambda r: r.get("seed", 0)):
            file = (result.get("mode_history") or {}).get("file")
            try:
                with open(os.path.join(out_dir, file)) as f:
                    histories.append((result, json.load(f)))
            except (TypeError, OSError, ValueError):
                continue
        histories = histories[:max_seeds]
        if not histories:
            continue
        fig, axes = _panels(len(histories), 3, (4.2, 3.2), 110)
        for ax, (result, history) in zip(axes, histories):
            stop = result.get("stop_reason")
            title = f"seed {result.get('seed')}: {history.get('hops')} hops" + (f", stopped: {stop}" if stop and stop != "finished" else "")
            draw_mode_heatmap(ax, history["steps"], history["modes"], np.array(history["shares"]), np.array(history["dropped"], dtype=bool), title)
        fig.suptitle(f"{definition.name}: {variant}, share of samples per mode over training", fontsize=9)
        fig.tight_layout()
        path = os.path.join(folder, f"mode_history_{variant}.png")
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path)
        written[variant] = path
    return written


def _panels(n: int, max_cols: int, panel_size: tuple, dpi: int) -> tuple:
    """A figure of ``n`` panels in rows of at most ``max_cols``, each ``panel_size`` inches: (figure, axes)."""
    cols = min(max_cols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(rows, cols, k + 1) for k in range(n)]


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]
