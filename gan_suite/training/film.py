"""The 2-D training film: real density, generated samples and the discriminator over the plane.

During training :class:`TrainingFilm` keeps, every N training steps, the generator's samples of a
fixed noise batch [num_samples, 2] and D's scores on a fixed grid [grid_size, grid_size]; at the
end it draws the frames (:mod:`gan_suite.visual.training`) and writes

    <run dir>/film/training.gif    (Pillow)
    <run dir>/film/training.mp4    (only where ffmpeg is on PATH)

and logs the GIF as a video to every W&B logger. The cost is bounded: a fixed grid, a fixed number
of frames, and drawing happens once, at the end.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Optional

import numpy as np
import pytorch_lightning as pl
import torch

from gan_suite.errors import ConfigError
from gan_suite.run_layout import FILM_GIF_FILE, FILM_MP4_FILE, run_directory


def mixture_density(mixture: str, xs: torch.Tensor, ys: torch.Tensor, min_std: float = 0.0) -> torch.Tensor:
    """Density [len(ys), len(xs)] of the uniform mixture of isotropic Gaussians ``mixture`` at the
    grid points (x, y), each mode's std raised to at least ``min_std`` (so that modes narrower
    than a grid cell stay visible)."""
    from gan_suite.data.toy2d import mixture_geometry

    centres, std = mixture_geometry(mixture)
    std = max(std, min_std)
    gy, gx = torch.meshgrid(ys.double(), xs.double(), indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    sq = torch.cdist(points, centres.double()).square()
    density = torch.exp(-sq / (2 * std**2)).mean(1) / (2 * math.pi * std**2)
    return density.reshape(len(ys), len(xs)).float()


class TrainingFilm(pl.Callback):
    """Film of a 2-D run (data modules with a ``mixture``: ``Toy2D``).

    Args:
        num_frames: frames of the film.
        every_n_steps: training steps between frames; None: ``max_steps`` spread over
            ``num_frames`` (a frame every ``max_iterations // num_frames`` steps). With an explicit
            interval, frames after the ``num_frames``-th are not taken.
        grid_size: D is evaluated on a grid_size x grid_size grid over the plane.
        num_samples: generated samples drawn in each frame (fixed noise).
        margin: the plane shown is the mixture's bounding box widened by this much on every side.
        fps: frames per second of the GIF / MP4.
        mp4: also write an MP4 when ffmpeg exists.
        seed: seed of the fixed noise.
    """

    #: it samples one seed's networks: a run with stacked seeds refuses it
    supports_stacked_seeds = False

    def __init__(
        self, num_frames: int = 40, every_n_steps: Optional[int] = None, grid_size: int = 64, num_samples: int = 1000,
        margin: float = 0.5, fps: float = 8.0, mp4: bool = True, seed: int = 0,
    ) -> None:
        if num_frames < 1 or grid_size < 2 or num_samples < 1:
            raise ConfigError("TrainingFilm: num_frames and num_samples must be >= 1, grid_size >= 2")
        if every_n_steps is not None and every_n_steps < 1:
            raise ConfigError(f"TrainingFilm: every_n_steps must be >= 1, got {every_n_steps}")
        self.num_frames, self.every_n_steps, self.grid_size, self.num_samples = num_frames, every_n_steps, grid_size, num_samples
        self.margin, self.fps, self.mp4, self.seed = margin, fps, mp4, seed
        #: (training step, samples [num_samples, 2], scores [grid_size, grid_size]) per frame
        self.frames: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.paths: dict[str, str] = {}
        self._interval = 1

    def on_fit_start(self, trainer, pl_module) -> None:
        mixture = getattr(trainer.datamodule, "mixture", None)
        if mixture is None or tuple(pl_module.sample_shape) != (2,):
            raise ConfigError("TrainingFilm needs 2-D data with a mixture (gan_suite.data.Toy2D)")
        if getattr(pl_module, "num_classes", 0):
            raise ConfigError("TrainingFilm shows an unconditional D over the plane; the model is class-conditional")
        from gan_suite.data.toy2d import mixture_geometry

        centres, std = mixture_geometry(mixture)
        low, high = centres.min(0).values - self.margin, centres.max(0).values + self.margin
        self.extent = (float(low[0]), float(high[0]), float(low[1]), float(high[1]))
        xs = torch.linspace(self.extent[0], self.extent[1], self.grid_size)
        ys = torch.linspace(self.extent[2], self.extent[3], self.grid_size)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        # each grid point goes to D as a pack of copies of itself (PacGAN discriminators take packs)
        self._grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).repeat_interleave(pl_module.pack, 0).to(pl_module.device)
        cell = (self.extent[1] - self.extent[0]) / (self.grid_size - 1)
        self._density = mixture_density(mixture, xs, ys, min_std=cell).numpy()
        gen = torch.Generator().manual_seed(self.seed)
        self._noise = torch.randn(self.num_samples, pl_module.latent_dim, generator=gen)
        self._probabilistic = bool(pl_module.loss_fn.probabilistic)
        if self.every_n_steps is not None:
            self._interval = self.every_n_steps
        else:
            if not trainer.max_steps or trainer.max_steps < 0:
                raise ConfigError("TrainingFilm: without trainer.max_steps, give every_n_steps")
            total = trainer.max_steps // (int(getattr(pl_module, "d_steps", 1)) + 1)
            self._interval = max(1, total // self.num_frames)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration % self._interval == 0 and len(self.frames) < self.num_frames and trainer.is_global_zero:
            self.capture(pl_module)

    def capture(self, pl_module) -> None:
        """Keep one frame: the samples of the fixed noise and D's scores on the grid."""
        samples = pl_module.sample(self._noise).float().cpu().numpy()
        scores = pl_module.discriminator_score(self._grid).float().cpu().numpy().reshape(self.grid_size, self.grid_size)
        self.frames.append((int(pl_module.iteration), samples, scores))

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not self.frames:
            return
        from gan_suite.visual.training import ffmpeg_available, film_frame_array, save_gif, save_mp4

        label = "D(x) = P(real)" if self._probabilistic else "D(x) (raw)"
        if self._probabilistic:
            score_range = (0.0, 1.0)
        else:
            every = np.concatenate([s.reshape(-1) for _, _, s in self.frames])
            score_range = (float(np.nanmin(every)), float(np.nanmax(every)))
        pictures = [film_frame_array(self.extent, self._density, scores, samples, step, score_range, label) for step, samples, scores in self.frames]
        folder = run_directory(trainer)
        self.paths = {"gif": save_gif(pictures, os.path.join(folder, FILM_GIF_FILE), self.fps)}
        if self.mp4 and ffmpeg_available():
            try:
                self.paths["mp4"] = save_mp4(pictures, os.path.join(folder, FILM_MP4_FILE), self.fps)
            except Exception as err:  # the GIF is the product; an ffmpeg without libx264 must not fail the run
                warnings.warn(f"TrainingFilm: could not write the MP4 ({type(err).__name__}: {err})", stacklevel=2)
        from pytorch_lightning.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_video("film", [self.paths["gif"]], step=trainer.global_step, format=["gif"])
