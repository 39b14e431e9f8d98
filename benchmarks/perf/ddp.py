"""DDP throughput: the gan_ddp strategy with 2 ranks vs 1 process, samples per second.

Each configuration is a real ``Trainer.fit`` of the suite's model in a fresh process tree
(``--worker``; the gan_ddp launcher re-runs the same command for rank 1), with the per-rank batch
of the case (weak scaling: 2 ranks train on twice the samples per step). A callback on every
rank takes the clock at the start of batch ``warmup`` and ``warmup + steps``; a rank's
throughput is the real samples it consumed (``d_steps x batch`` a step) per second, the total is
their sum. The driver alternates the configurations over ``--repeats`` rounds and reports
medians. On CPU the ranks use gloo and ``--threads`` intra-op threads each; ``--device cuda``
uses one GPU per rank (NCCL) and needs as many GPUs as ranks.

  python benchmarks/perf/ddp.py                                   # ring8 and quickstart, CPU
  python benchmarks/perf/ddp.py --device cuda --ranks 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def worker(args) -> None:
    import warnings

    import pytorch_lightning as pl
    import torch

    import gan_suite.training  # noqa: F401  (registers gan_ddp)
    from plain_loop import CASES

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    case = CASES[args.case]()
    torch.manual_seed(0)
    model = case.model(check_finite_every_n_steps=0 if args.nocheck else 1)
    data = case.data()
    data.device_cache = args.device_cache
    first, last = args.warmup, args.warmup + args.steps
    cuda = args.device.startswith("cuda")

    class Timer(pl.Callback):
        seen, t0, t1 = 0, None, None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.seen in (first, last):
                if cuda:
                    torch.cuda.synchronize()
                if self.seen == first:
                    Timer.t0 = time.perf_counter()
                else:
                    Timer.t1 = time.perf_counter()
            self.seen += 1

    ranks = args.world
    trainer = pl.Trainer(
        accelerator="cuda" if cuda else "cpu", devices=ranks, strategy="gan_ddp" if ranks > 1 else "auto",
        max_steps=(case.k + 1) * (last + 1), logger=False, enable_progress_bar=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[Timer()], default_root_dir=args.out,
    )
    trainer.fit(model, data)
    seconds = Timer.t1 - Timer.t0
    result = {
        "rank": trainer.global_rank, "world": ranks, "seconds": seconds, "steps": args.steps,
        "samples_per_s": case.k * case.batch * args.steps / seconds, "step_ms": seconds / args.steps * 1e3,
    }
    with open(os.path.join(args.out, f"rank{trainer.global_rank}.json"), "w") as f:
        json.dump(result, f)


def _spawn(case: str, world: int, args) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable, os.path.abspath(__file__), "--worker", "--case", case, "--world", str(world), "--out", out,
            "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device,
        ]
        cmd += ["--device-cache"] if args.device_cache else []
        cmd += ["--nocheck"] if args.nocheck else []
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=out)
        return [json.load(open(os.path.join(out, f"rank{r}.json"))) for r in range(world)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cases", nargs="+", default=["ring8", "quickstart"])
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    p.add_argument("--device-cache", action="store_true", help="GANDataModule.device_cache")
    p.add_argument("--nocheck", action="store_true", help="check_finite_every_n_steps=0")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--world", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    from common import load, machine

    started = load()
    rows = []
    for case in args.cases:
        runs = {w: [] for w in args.ranks}
        for r in range(args.repeats):
            for w in (args.ranks if r % 2 == 0 else args.ranks[::-1]):
                res = _spawn(case, w, args)
                runs[w].append(res)
                print(f"  [{case}] round {r + 1}, {w} rank(s): " + ", ".join(f"rank {x['rank']} {x['samples_per_s']:.0f}/s" for x in res), file=sys.stderr, flush=True)
        base = statistics.median(sum(x["samples_per_s"] for x in res) for res in runs[args.ranks[0]])
        for w in args.ranks:
            per_rank = statistics.median(statistics.mean(x["samples_per_s"] for x in res) for res in runs[w])
            total = statistics.median(sum(x["samples_per_s"] for x in res) for res in runs[w])
            step = statistics.median(max(x["step_ms"] for x in res) for res in runs[w])
            rows.append((case, w, step, per_rank, total, total / base))
    import torch

    torch.set_num_threads(args.threads)
    print(f"\nmachine: {machine()}; device {args.device}; {started} at start, {load()} at end; "
          f"{args.repeats} rounds x {args.steps} steps (+{args.warmup}); {args.threads} thread(s) per rank"
          f"{'; device_cache' if args.device_cache else ''}{'; no NaN check' if args.nocheck else ''}")
    print(f"{'case':<11} {'ranks':>5} {'ms/step':>8} {'samples/s/rank':>15} {'samples/s total':>16} {'speed-up':>9}")
    for case, w, step, per_rank, total, speedup in rows:
        print(f"{case:<11} {w:>5} {step:8.1f} {per_rank:15.0f} {total:16.0f} {speedup:9.2f}")
    print("samples: real samples consumed (d_steps x per-rank batch per step); medians over rounds; "
          "speed-up: total throughput / that of the first rank count")


if __name__ == "__main__":
    main()
