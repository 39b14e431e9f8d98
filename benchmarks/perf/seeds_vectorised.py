"""Seconds per training step: S seeds one after another vs S seeds as one vectorised model.

Networks and optimiser of PacGAN's ring benchmark: G 2 -> 4 x 400 ReLU + BatchNorm -> 2, D maxout
3 x 200 x 5 pieces, non-saturating loss, Adam lr 1e-4 beta1 0.8, batch 100, one D step per G step.

Measured, per thread count:
  * plain: one seed in an ordinary loop (nn.Modules, torch.optim.Adam) -- GANModule's step without
    Lightning -- with Adam's default implementation (what GANModule uses) and with fused=True;
  * vectorised S=1 and S=N: :func:`gan_suite.training.vectorised.train_seeds_vectorised`, with
    its 'stacked' backend (batched kernels) and, for S=N, its 'vmap' backend (torch.func).
"S seeds sequential" is S x the plain per-step time (seeds are independent runs); the speed-up
is that over the vectorised per-step time. Per-step times are medians over the timed steps
(after warm-up), taken in interleaved blocks so that all variants see the same load on a shared
machine (medians are robust to other jobs' bursts); the load average is printed.

    python benchmarks/perf/seeds_vectorised.py                        # ~1-2 min on 2 idle cores
    python benchmarks/perf/seeds_vectorised.py --steps 200 --warmup 10 --threads 1 2 4
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from functools import partial

import torch

from gan_suite.data.toy2d import sample_mixture
from gan_suite.losses import get_loss
from gan_suite.nets.mlp import MaxoutDiscriminator, MLPGenerator
from gan_suite.training.vectorised import VectorisedGAN, build_seeded, seed_generators

LR, BETAS, BATCH = 1e-4, (0.8, 0.999), 100


def factories(g_width: int = 400, d_width: int = 200):
    """PacGAN's ring networks (G 4 x g_width + BatchNorm, D maxout 3 x d_width x 5)."""
    return (
        partial(MLPGenerator, 2, (2,), [g_width] * 4, True, "linear"),
        partial(MaxoutDiscriminator, (2,), [d_width] * 3, 5, 0.0, 0.0, 1),
    )


def ring(n: int, generator: torch.Generator) -> torch.Tensor:
    return sample_mixture("ring8", n, generator)[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainSeed:
    """One seed trained in an ordinary loop: nn.Modules and torch.optim.Adam, GANModule's step."""

    def __init__(self, nets, device: torch.device, fused: bool, seed: int = 0) -> None:
        g, d = build_seeded(nets[0], seed, nets[1])
        self.g, self.d, self.device = g.to(device), d.to(device), device
        self.noise, self.data = seed_generators(seed, device)
        self.loss = get_loss("non_saturating")
        adam = partial(torch.optim.Adam, lr=LR, betas=BETAS, **({"fused": True} if fused else {}))
        self.opt_g, self.opt_d = adam(self.g.parameters()), adam(self.d.parameters())

    def step(self) -> None:
        g, d, device = self.g, self.d, self.device
        real = ring(BATCH, self.data).to(device)
        with torch.no_grad():
            fake = g(torch.randn(BATCH, 2, generator=self.noise, device=device))
        loss_d = self.loss.discriminator(d(real), d(fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        d.requires_grad_(False)
        loss_g = self.loss.generator(d(g(torch.randn(BATCH, 2, generator=self.noise, device=device))))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        d.requires_grad_(True)


def vectorised(nets, num_seeds: int, device: torch.device, backend: str) -> VectorisedGAN:
    return VectorisedGAN(
        nets[0], nets[1], list(range(num_seeds)), ring, g_lr=LR, d_lr=LR, betas=BETAS, batch_size=BATCH,
        device=device, backend=backend,
    )


def step_times(runners: dict, steps: int, warmup: int, block: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds of each timed step of each runner, timed in interleaved blocks of ``block`` steps
    so that every runner sees the same load on a shared machine."""
    times = {name: [] for name in runners}
    for runner in runners.values():
        for _ in range(warmup):
            runner.step()
    for _ in range(max(1, -(-steps // block))):
        for name, runner in runners.items():
            for _ in range(block):
                _sync(device)
                start = time.perf_counter()
                runner.step()
                _sync(device)
                times[name].append(time.perf_counter() - start)
    return times


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cpu}; {os.cpu_count()} logical CPUs; load average {load}; torch {torch.__version__}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="S, seeds trained together (default 10)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--block", type=int, default=1, help="steps per interleaved timing block (default 1)")
    parser.add_argument("--g-width", type=int, default=400, help="G's hidden width (PacGAN: 400)")
    parser.add_argument("--d-width", type=int, default=200, help="D's maxout units per layer (PacGAN: 200)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch.set_num_threads values")
    parser.add_argument("--backends", nargs="+", default=["stacked", "vmap"], choices=["stacked", "vmap"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    S = args.seeds
    print(f"machine: {machine()}; device {device}")
    print(f"ring nets G 4x{args.g_width} BN, D maxout 3x{args.d_width}x5 (PacGAN: 400, 200), batch {BATCH}, "
          f"Adam; {args.warmup} warm-up + {args.steps} timed steps each, interleaved in blocks of {args.block}")
    nets = factories(args.g_width, args.d_width)
    runners = {
        "plain": PlainSeed(nets, device, fused=False),
        "plain_fused": PlainSeed(nets, device, fused=True),
        "stacked_1": vectorised(nets, 1, device, "stacked"),
        **{f"{b}_{S}": vectorised(nets, S, device, b) for b in args.backends},
    }
    summary = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        times = step_times(runners, args.steps, args.warmup, args.block, device)
        print(f"\n threads={threads} (load average now {os.getloadavg()[0]:.1f}); ms per step, median [min]")
        for stat_name, stat in (("median", statistics.median), ("min", min)):
            t = {name: stat(v) for name, v in times.items()}
            if stat_name == "median":
                print(f"  plain loop, 1 seed (default Adam)      {t['plain'] * 1e3:8.1f} [{min(times['plain']) * 1e3:.1f}]")
                print(f"  plain loop, 1 seed (fused Adam)        {t['plain_fused'] * 1e3:8.1f} [{min(times['plain_fused']) * 1e3:.1f}]")
                print(f"  vectorised stacked, S=1                {t['stacked_1'] * 1e3:8.1f} [{min(times['stacked_1']) * 1e3:.1f}]")
                print(f"  {S} seeds sequential (= {S} x plain)     {S * t['plain'] * 1e3:8.1f} [{S * min(times['plain']) * 1e3:.1f}]")
            for b in args.backends:
                tv = t[f"{b}_{S}"]
                ratio, ratio_fused = S * t["plain"] / tv, S * t["plain_fused"] / tv
                if stat_name == "median":
                    print(f"  vectorised {b:7s}, S={S:<3d}             {tv * 1e3:8.1f} [{min(times[f'{b}_{S}']) * 1e3:.1f}]"
                          f"  = {tv / t['plain']:.2f} x one plain seed")
                print(f"  speed-up ({stat_name}s), {b:7s}: {ratio:5.2f}x vs {S} sequential plain loops, "
                      f"{ratio_fused:5.2f}x vs fused-Adam loops")
                summary.append(f"{threads}t {b} {stat_name}: {ratio:.2f}x ({ratio_fused:.2f}x)")
    print(f"\nspeed-up of {S} seeds vectorised over {S} sequential plain loops (over fused-Adam loops): " + "; ".join(summary))

if __name__ == "__main__":
    main()
