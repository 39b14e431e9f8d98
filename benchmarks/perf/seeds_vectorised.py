"""Milliseconds per training step: S seeds as S separate GANModule runs vs one stacked-seeds run.

Both sides are GANModule under the ordinary Lightning Trainer (the code `gan-suite fit` runs), on
PacGAN's ring benchmark: G 2 -> 4 x 400 ReLU + BatchNorm -> 2, D maxout 3 x 200 x 5 pieces,
non-saturating loss, Adam lr 1e-4 beta1 0.8, batch 100, one D step per G step, Toy2D data.

  * separate: one seed (``seed=0``), with Adam's default kernels (what ``gan-suite fit`` runs)
    and with ``optimizer_kernels="fused"``; "S seeds sequential" is S x its per-step time (seeds
    are independent runs);
  * stacked: ``seeds=[0, ..., S-1]`` (:class:`~gan_suite.nets.stacked.StackedNetwork`, its batched
    kernels), with ``--optimizer-kernels`` (default fused: one pass over each stacked tensor).

A callback times every step (``on_train_batch_start`` to ``on_train_batch_end``, device
synchronised); medians over the timed steps after warm-up. The two fits alternate over
``--rounds`` rounds per thread count so that both see the same load on a shared machine; the
load average is printed.

    python benchmarks/perf/seeds_vectorised.py                        # ~1-2 min on 2 idle cores
    python benchmarks/perf/seeds_vectorised.py --g-width 64 --d-width 32   # narrow networks
    python benchmarks/perf/seeds_vectorised.py --device cuda --steps 200 --warmup 20 --threads 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch

from gan_suite.data.toy2d import Toy2D
from gan_suite.nets.mlp import MaxoutDiscriminator, MLPGenerator
from gan_suite.training.module import GANModule

ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-4, "betas": [0.8, 0.999]}}
BATCH = 100


def ring_model(g_width: int, d_width: int, seeds=None, optimizer_kernels=None) -> GANModule:
    """PacGAN's ring networks (G 4 x g_width + BatchNorm, D maxout 3 x d_width x 5) in a GANModule."""
    g = MLPGenerator(2, (2,), [g_width] * 4, True, "linear")
    d = MaxoutDiscriminator((2,), [d_width] * 3, 5, 0.0, 0.0, 1)
    return GANModule(g, d, g_optimizer=ADAM, d_optimizer=ADAM, seeds=seeds, check_finite_every_n_steps=0,
                     optimizer_kernels=optimizer_kernels)


class StepTimes(pl.Callback):
    """Seconds of every training step (the device synchronised at both ends)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def _sync(self, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync(pl_module)
        self.seconds.append(time.perf_counter() - self._start)


def timed_fit(model: GANModule, steps: int, warmup: int, device: str) -> list[float]:
    """Per-step seconds of the timed steps of a fit of ``warmup + steps`` training steps."""
    timer = StepTimes()
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, max_steps=(warmup + steps) * 2, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        log_every_n_steps=max(warmup + steps, 1),
    )
    trainer.fit(model, Toy2D(num_samples=20_000, batch_size=BATCH))
    return timer.seconds[warmup:]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cpu}; {os.cpu_count()} logical CPUs; load average {load}; torch {torch.__version__}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="S, seeds trained together (default 10)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per fit (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both fits per thread count (default 2)")
    parser.add_argument("--g-width", type=int, default=400, help="G's hidden width (PacGAN: 400)")
    parser.add_argument("--d-width", type=int, default=200, help="D's maxout units per layer (PacGAN: 200)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch.set_num_threads values")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--optimizer-kernels", default="fused", choices=["default", "fused", "foreach", "for_loop"],
                        help="GANModule optimizer_kernels of both fits (default fused: one pass over each stacked tensor)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    S = args.seeds
    kernels = None if args.optimizer_kernels == "default" else args.optimizer_kernels
    print(f"machine: {machine()}; device {args.device}")
    print(f"ring nets G 4x{args.g_width} BN, D maxout 3x{args.d_width}x5 (PacGAN: 400, 200), batch {BATCH}, Adam ({args.optimizer_kernels} kernels); "
          f"GANModule under the Trainer; {args.warmup} warm-up + {args.steps} timed steps per fit, {args.rounds} rounds")
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        times: dict[str, list[float]] = {"separate": [], "separate_fused": [], "stacked": []}
        for _ in range(args.rounds):
            times["separate"] += timed_fit(ring_model(args.g_width, args.d_width), args.steps, args.warmup, args.device)
            times["separate_fused"] += timed_fit(ring_model(args.g_width, args.d_width, None, "fused"), args.steps, args.warmup, args.device)
            times["stacked"] += timed_fit(ring_model(args.g_width, args.d_width, list(range(S)), kernels), args.steps, args.warmup, args.device)
        one, one_fused, stacked = (statistics.median(times[k]) for k in ("separate", "separate_fused", "stacked"))
        row = {
            "threads": threads, "seeds": S, "device": args.device, "g_width": args.g_width, "d_width": args.d_width,
            "optimizer_kernels": args.optimizer_kernels, "ms_per_step_one_seed": one * 1e3,
            "ms_per_step_one_seed_fused": one_fused * 1e3, "ms_per_step_stacked": stacked * 1e3,
            "speedup": S * one / stacked, "speedup_vs_fused": S * one_fused / stacked,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
        rows.append(row)
        print(f"\n threads={threads} (load average now {row['load_average']:.1f}); ms per training step, median")
        print(f"  one seed (GANModule, default Adam)   {row['ms_per_step_one_seed']:8.2f}")
        print(f"  one seed (GANModule, fused Adam)     {row['ms_per_step_one_seed_fused']:8.2f}")
        print(f"  {S} seeds stacked (one GANModule)     {row['ms_per_step_stacked']:8.2f}")
        print(f"  speed-up over {S} sequential runs: {row['speedup']:.2f}x (default Adam), {row['speedup_vs_fused']:.2f}x (fused Adam)")
    print(f"\nspeed-up of {S} stacked seeds over {S} sequential runs: " + "; ".join(
        f"{r['threads']} thread(s) {r['speedup']:.2f}x ({r['speedup_vs_fused']:.2f}x vs fused)" for r in rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=2)
    return {"rows": rows}


if __name__ == "__main__":
    main()
