"""Milliseconds the training views and stopping rules add per in-training evaluation, beside the
evaluation itself, on the ring8 case (PacGAN's networks, ``modes`` metric on 2,500 samples).

Trains a short ring run with EvaluationCallback + ModeHistory + TrainingFilm + PlateauStopping +
DivergenceStopping, times every call of each callback's per-evaluation work (the film's per-frame
capture, taken on the evaluation schedule here) and its one-off work at the end (the heatmap, the
film's drawing and GIF), and prints the means. The evaluation's own time excludes the listeners
it calls.

  python benchmarks/perf/training_views.py [--steps 400] [--every 50] [--out runs/perf_training_views]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from pytorch_lightning.loggers import CSVLogger  # noqa: E402

from common import load, machine  # noqa: E402
from gan_suite.data import Toy2D  # noqa: E402
from gan_suite.evaluation.callback import EvaluationCallback  # noqa: E402
from gan_suite.evaluation.mode_history import ModeHistory  # noqa: E402
from gan_suite.evaluation.stopping import DivergenceStopping, PlateauStopping  # noqa: E402
from gan_suite.models import VanillaGAN  # noqa: E402
from gan_suite.training.film import TrainingFilm  # noqa: E402

TIMES: dict = defaultdict(list)


def timed(name: str, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name].append(time.perf_counter() - started)

    return wrapper


def ring_gan() -> VanillaGAN:
    """configs/gan_ring8.yaml's model."""
    from functools import partial

    adam = partial(torch.optim.Adam, lr=1e-4, betas=(0.8, 0.999))
    return VanillaGAN(
        sample_shape=[2], latent_dim=2, g_hidden=[400] * 4, g_batch_norm=True, g_output="linear", d_hidden=[200] * 3, d_pieces=5,
        d_input_dropout=0.0, d_hidden_dropout=0.0, goodfellow_schedule=False, g_optimizer=adam, d_optimizer=adam,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    parser.add_argument("--every", type=int, default=50, help="evaluation (and film frame) interval in training steps")
    parser.add_argument("--num-samples", type=int, default=2500)
    parser.add_argument("--out", default=os.path.join("runs", "perf_training_views"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    evaluation = EvaluationCallback(every_n_steps=args.every, num_samples=args.num_samples, metrics=["modes"], best_metric="mode_kl", batch_size=2500)
    history = ModeHistory()
    film = TrainingFilm(num_frames=args.steps // args.every, every_n_steps=args.every)
    plateau = PlateauStopping(metric="mode_kl", patience=1000)
    divergence = DivergenceStopping(metric="mode_kl", worse_for=1000, saturation_for=1000)
    evaluate = evaluation.evaluate
    evaluation.evaluate = timed("evaluation (with listeners)", evaluate)
    for name, callback in (("ModeHistory", history), ("PlateauStopping", plateau), ("DivergenceStopping (with D saturation check)", divergence)):
        callback.on_evaluation_end = timed(name, callback.on_evaluation_end)
        callback.on_train_end = timed(f"{name} at the end", callback.on_train_end)
    film.capture = timed("TrainingFilm frame capture", film.capture)
    film.on_train_end = timed("TrainingFilm at the end (draw frames, GIF)", film.on_train_end)

    trainer = pl.Trainer(
        accelerator="cpu", max_steps=2 * args.steps, logger=CSVLogger(args.out, name="ring8"), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=50,
        callbacks=[evaluation, history, film, plateau, divergence],
    )
    trainer.fit(ring_gan(), Toy2D(mixture="ring8", num_samples=20_000, batch_size=100))

    per_evaluation = ("ModeHistory", "PlateauStopping", "DivergenceStopping (with D saturation check)", "TrainingFilm frame capture")
    listeners = [sum(ts) for name, ts in TIMES.items() if name in per_evaluation[:3]]
    own = (sum(TIMES["evaluation (with listeners)"]) - sum(listeners)) / len(TIMES["evaluation (with listeners)"])
    print(f"# {machine()}; {load()}")
    print(f"ring8, PacGAN networks, {args.steps} steps, evaluation every {args.every} ({len(TIMES['evaluation (with listeners)'])} evaluations, modes on {args.num_samples} samples)")
    print(f"{'per evaluation':<48} {'ms':>9} {'% of evaluation':>16}")
    print(f"{'the evaluation itself':<48} {own * 1e3:9.2f} {100.0:15.1f}%")
    for name in per_evaluation:
        ms = 1e3 * sum(TIMES[name]) / max(len(TIMES[name]), 1)
        print(f"{name:<48} {ms:9.2f} {100 * ms / (own * 1e3):15.1f}%")
    print(f"{'once, at the end':<48} {'ms':>9}")
    for name, ts in TIMES.items():
        if name.endswith("at the end") or "at the end (" in name:
            print(f"{name:<48} {1e3 * sum(ts):9.1f}")
    print(f"heatmap: {history.png_path}\nfilm: {film.paths.get('gif')}\nmode hops: {history.statistics()['hops']}, "
          f"mean TV {history.statistics()['mean_total_variation']:.3f}")


if __name__ == "__main__":
    main()
