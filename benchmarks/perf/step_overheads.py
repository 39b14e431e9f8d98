"""Microseconds of the small per-step costs that GANModule removed or avoids, one by one.

Each line times one operation in isolation (``timeit``, best of ``--repeats``) and multiplies it
by how often a training step of the ring8 case does it, so that the per-step savings in
docs/performance.md can be traced to their parts:

* ``torch.cuda.is_available()`` with Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 vs without:
  Adam's step() asks it once per update (GANModule unsets the variable inside training_step on
  hosts without GPUs);
* ``nn.Module.__setattr__`` vs ``object.__setattr__`` for Lightning's ``_current_fx_name``
  (set twice around every hook call; counted during a real fit);
* the NaN test ``bool(torch.isfinite(loss))`` (twice a step when check_finite_every_n_steps=1;
  on a GPU each one also waits for the queue to drain);
* the data: one batch from the DataLoader + StepIndexedSampler vs the device cache.

  python benchmarks/perf/step_overheads.py
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402


def best_us(fn, number: int, repeats: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6


def count_setattr_per_step(case) -> float:
    """nn.Module.__setattr__ calls on the LightningModule per training step of a real fit."""
    import pytorch_lightning as pl

    from gan_suite.training.module import GANModule

    model = case.model()
    calls = [0]
    fast = GANModule.__setattr__

    def counting(self, name, value):
        calls[0] += 1
        fast(self, name, value)

    GANModule.__setattr__ = counting
    try:
        steps = 20
        pl.Trainer(accelerator="cpu", devices=1, max_steps=(case.k + 1) * steps, logger=False, enable_progress_bar=False,
                   enable_checkpointing=False, enable_model_summary=False).fit(model, case.data())
    finally:
        GANModule.__setattr__ = fast
    return calls[0] / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore")
    import pytorch_lightning as pl  # noqa: F401  (sets PYTORCH_NVML_BASED_CUDA_CHECK=1)

    from common import load, machine
    from plain_loop import CASES

    case = CASES["ring8"]()
    r = args.repeats
    rows = []

    # 1. the CUDA availability check of every Adam step
    with_var = best_us(torch.cuda.is_available, 200, r)
    saved = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    without = best_us(torch.cuda.is_available, 200, r)
    if saved is not None:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = saved
    rows.append(("torch.cuda.is_available() (Adam.step)", with_var, without, 2))

    # 2. Lightning's per-hook attribute
    model = case.model()
    module_set = best_us(lambda: torch.nn.Module.__setattr__(model, "_current_fx_name", "training_step"), 20000, r)
    plain_set = best_us(lambda: object.__setattr__(model, "_current_fx_name", "training_step"), 20000, r)
    rows.append(("LightningModule attribute set (per hook call)", module_set, plain_set, count_setattr_per_step(case)))

    # 3. the NaN test
    loss = torch.tensor(0.7)
    rows.append(("bool(torch.isfinite(loss)) (check_finite_every_n_steps=1)", best_us(lambda: bool(torch.isfinite(loss)), 5000, r), 0.0, 2))

    # 4. one batch: DataLoader + sampler vs device cache
    def batch_source(device_cache: bool):
        dm = case.data()
        dm.device_cache = device_cache
        dm.setup()
        loader = dm.train_dataloader()

        def forever():
            while True:
                yield from loader

        it = forever()
        return lambda: next(it)

    rows.append(("one batch: DataLoader+sampler vs device_cache", best_us(batch_source(False), 300, r), best_us(batch_source(True), 300, r), 1))

    print(f"machine: {machine()}; {load()}; best of {r} repeats; counts per training step of the ring8 case (k = 1)")
    print(f"{'operation':<58} {'before us':>10} {'after us':>9} {'per step':>9} {'saved us/step':>14}")
    for name, before, after, per_step in rows:
        print(f"{name:<58} {before:10.2f} {after:9.2f} {per_step:9.1f} {(before - after) * per_step:14.1f}")


if __name__ == "__main__":
    main()
