"""The 2-D training film: frames read back from the GIF, and the video in an offline W&B run."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gan_suite.cli import main
from gan_suite.errors import ConfigError
from gan_suite.training.film import TrainingFilm, mixture_density
from tests.conftest import REPO_ROOT
from tests.training.helpers import quiet_trainer, tiny_dcgan

RING8 = os.path.join(REPO_ROOT, "configs", "gan_ring8.yaml")
WANDB = os.path.join(os.path.dirname(sys.executable), "wandb")

FILM_CONFIG = """
trainer:
  callbacks:
    - class_path: gan_suite.evaluation.callback.EvaluationCallback
      init_args: {every_n_steps: 10, num_samples: 500, metrics: [modes], best_metric: modes_covered}
    - class_path: gan_suite.evaluation.mode_history.ModeHistory
    - class_path: gan_suite.training.film.TrainingFilm
      init_args: {num_frames: 6, grid_size: 30, num_samples: 200}
"""


def test_the_film_of_a_short_ring_run_has_the_stated_frames_and_is_logged_to_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    extra = tmp_path / "film.yaml"
    extra.write_text(FILM_CONFIG)
    code = main([
        "fit", "--config", RING8, "--config", str(extra), "--trainer.max_steps=60",  # 30 training steps
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", "--trainer.logger.init_args.silent=true",
        "--model.init_args.g_hidden=[32,32]", "--model.init_args.d_hidden=[32,32]", "--data.init_args.num_samples=2000",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    ])
    assert code == 0
    (run_dir,) = glob.glob(str(tmp_path / "runs" / "gan_ring8" / "*"))
    with Image.open(os.path.join(run_dir, "film", "training.gif")) as gif:
        assert gif.n_frames == 6
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")).astype(int))
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:]))  # at least the step in the title changes
    assert os.path.isfile(os.path.join(run_dir, "evaluation", "mode_history.png"))

    (wandb_run,) = glob.glob(os.path.join(run_dir, "wandb", "offline-run-*"))
    out = subprocess.run([WANDB, "leet", "inspect", "--json", wandb_run], capture_output=True, text=True, timeout=120, check=True).stdout
    history = [r["history"]["item"] for r in map(json.loads, filter(str.strip, out.splitlines())) if r["type"] == "history"]
    (film,) = [item for item in history if item.get("film._type") == "videos"]
    (video,) = film["film.videos"]
    assert video["_type"] == "video-file" and video["path"].endswith(".gif")
    with Image.open(os.path.join(wandb_run, "files", video["path"])) as logged:
        assert logged.n_frames == 6
    assert any(item.get("modes/heatmap._type") == "images/separated" for item in history)
    assert any("modes/hops" in item for item in history)


def test_the_real_density_is_the_mixture_density():
    xs = torch.linspace(-2, 2, 201)
    density = mixture_density("ring8", xs, xs, min_std=0.05)
    cell = float(xs[1] - xs[0])
    assert abs(float(density.sum()) * cell**2 - 1.0) < 1e-3  # a density: integrates to one
    # at a mode centre: 1/8 of an isotropic Gaussian's peak 1 / (2 pi s^2) (the other modes are far)
    peak = mixture_density("ring8", torch.tensor([1.0]), torch.tensor([0.0]), min_std=0.05)
    assert float(peak) == pytest.approx(1 / (8 * 2 * np.pi * 0.05**2), rel=1e-4)


def test_the_film_refuses_data_that_is_not_a_2d_mixture():
    from gan_suite.data import MNISTBundled

    trainer = quiet_trainer(max_steps=2, callbacks=[TrainingFilm(num_frames=2)])
    with pytest.raises(ConfigError, match="2-D data"):
        trainer.fit(tiny_dcgan(), MNISTBundled(batch_size=8))
