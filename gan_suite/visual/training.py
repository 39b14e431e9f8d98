"""Pictures of training over time: the mode heatmap (modes x evaluation steps) and the frames of
the 2-D training film, drawn with matplotlib on an Agg canvas (no display, no pyplot state); GIF
through Pillow, MP4 through matplotlib's ffmpeg writer where ffmpeg exists."""

from __future__ import annotations

import os
import shutil
from typing import Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw_mode_heatmap(ax, steps: Sequence[int], names: Sequence[str], shares: np.ndarray, dropped: Optional[np.ndarray] = None, title: str = ""):
    """Draw shares [K modes, T steps] on ``ax``: colour = share of the samples, empty cells white,
    statistically dropped cells (``dropped`` bool [K, T]) marked with a red dot. Returns the image."""
    from matplotlib import colormaps

    shares = np.asarray(shares, dtype=float)
    k, t = shares.shape
    cmap = colormaps["viridis"].with_extremes(under="white")
    top = max(float(shares.max()) if shares.size else 0.0, 1e-6)
    image = ax.imshow(shares, aspect="auto", interpolation="nearest", cmap=cmap, vmin=1e-9, vmax=top, origin="lower")
    marked = dropped is not None and np.asarray(dropped).any()
    if marked:
        rows, cols = np.nonzero(np.asarray(dropped))
        ax.scatter(cols, rows, s=max(2.0, 120.0 / max(k, t)), c="red", marker="o", linewidths=0)
    ticks = np.unique(np.linspace(0, t - 1, min(t, 8)).round().astype(int)) if t else []
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(steps[i]) for i in ticks], fontsize=7)
    if k <= 30:
        ax.set_yticks(range(k))
        ax.set_yticklabels([str(n) for n in names], fontsize=6)
    ax.set_xlabel("training step" + ("  (red dot: mode dropped)" if marked else ""))
    ax.set_ylabel("mode")
    if title:
        ax.set_title(title, fontsize=8)
    return image


def save_mode_heatmap(path: str, steps: Sequence[int], names: Sequence[str], shares: np.ndarray, dropped: Optional[np.ndarray] = None, title: str = "") -> str:
    """Write :func:`draw_mode_heatmap` with a colour bar as a PNG at ``path``; returns the path."""
    k = len(names)
    fig = Figure(figsize=(max(5.0, min(12.0, 2 + 0.25 * len(steps))), max(3.0, min(10.0, 1 + 0.22 * k))), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = draw_mode_heatmap(ax, steps, names, shares, dropped, title)
    fig.colorbar(image, ax=ax, label="share of samples")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def film_frame_array(
    extent: tuple[float, float, float, float],
    density: np.ndarray,
    scores: np.ndarray,
    samples: np.ndarray,
    step: int,
    score_range: Optional[tuple[float, float]] = None,
    score_label: str = "D(x)",
) -> np.ndarray:
    """One film frame, uint8 [H, W, 3]: the real density [G, G] (grey background), D's scores
    [G, G] on the same grid as contour lines, the generated samples [N, 2] as dots, the step in the title.

    Grids are indexed [y, x] over ``extent`` = (x_min, x_max, y_min, y_max)."""
    fig = Figure(figsize=(4.2, 4.2), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(density, extent=extent, origin="lower", cmap="Greys", interpolation="bilinear")
    g = scores.shape[0]
    xs, ys = np.linspace(extent[0], extent[1], g), np.linspace(extent[2], extent[3], g)
    low, high = score_range if score_range is not None else (float(np.nanmin(scores)), float(np.nanmax(scores)))
    if high > low:
        levels = np.linspace(low, high, 11)
        contours = ax.contour(xs, ys, scores, levels=levels, cmap="coolwarm", linewidths=0.8)
        fig.colorbar(contours, ax=ax, fraction=0.046, pad=0.04, label=score_label)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.6, linewidths=0)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_title(f"step {step}", fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_gif(frames: Sequence[np.ndarray], path: str, fps: float = 8.0) -> str:
    """Write uint8 [H, W, 3] frames as a looping GIF (Pillow); returns the path."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    tmp = f"{path}.tmp.gif"
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    os.replace(tmp, path)
    return path


def ffmpeg_available() -> bool:
    """Whether an ``ffmpeg`` program is on PATH (what matplotlib's MP4 writer runs)."""
    return shutil.which("ffmpeg") is not None


def save_mp4(frames: Sequence[np.ndarray], path: str, fps: float = 8.0) -> str:
    """Write uint8 [H, W, 3] frames as an H.264 MP4 through matplotlib's ffmpeg writer; returns the path."""
    from matplotlib.animation import FFMpegWriter

    height, width = frames[0].shape[:2]
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    image = ax.imshow(frames[0])
    writer = FFMpegWriter(fps=fps, codec="libx264", extra_args=["-pix_fmt", "yuv420p"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with writer.saving(fig, path, dpi=100):
        for frame in frames:
            image.set_data(frame)
            writer.grab_frame()
    return path
