"""Milliseconds per training step: the DCGAN nets with their GEMM end layers vs torch's convolutions.

G's first layer (:class:`~gan_suite.nets.dcgan.MapProjection`, a transposed convolution of a 1 x 1
map) and D's last (:class:`~gan_suite.nets.dcgan.WholeMapConv2d`, a convolution over the whole
map) run as matrix products. The baseline is the same networks with those two layers replaced by
``nn.ConvTranspose2d`` and ``nn.Conv2d`` holding the same weights. Both sides run the plain
training loop of ``plain_loop.py`` (k D steps, one G step, Adam), in alternating segments of
``--steps`` steps over ``--rounds`` rounds so that both see the same load; the ratio is the median
over rounds of GEMM / torch of the same round.

Cases: ``quickstart`` (``configs/quickstart.yaml``: latent 32, G 32, D 16, batch 32, least squares, Adam 1e-3
(0, 0.99)), ``first-quickstart`` (G 32, D 32, batch 64) and ``dcgan64`` (widths 64, batch 128).

    python benchmarks/perf/dcgan_layers.py                      # the two quickstarts, ~1 min on 2 idle cores
    python benchmarks/perf/dcgan_layers.py --cases dcgan64 --steps 5 --warmup 1 --rounds 3   # slow on a CPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from common import load, machine  # noqa: E402
from plain_loop import CASES, Case, PlainLoop  # noqa: E402

from gan_suite.nets.dcgan import MapProjection, WholeMapConv2d  # noqa: E402


BENCH_CASES = {"quickstart": CASES["current-quickstart"], "first-quickstart": CASES["quickstart"], "dcgan64": CASES["dcgan64"]}


def with_torch_layers(net: nn.Module) -> nn.Module:
    """``net`` with every MapProjection / WholeMapConv2d replaced by torch's class (same weights)."""
    for name, child in list(net.named_children()):
        if isinstance(child, (MapProjection, WholeMapConv2d)):
            cls = nn.ConvTranspose2d if isinstance(child, MapProjection) else nn.Conv2d
            twin = cls(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding, bias=False)
            twin.load_state_dict(child.state_dict())
            setattr(net, name, twin)
        else:
            with_torch_layers(child)
    return net


def time_case(case: Case, steps: int, warmup: int, rounds: int) -> dict:
    gemm = PlainLoop(case)
    baseline = PlainLoop(case)
    baseline.G, baseline.D = with_torch_layers(baseline.G), with_torch_layers(baseline.D)
    baseline.g_fwd, baseline.d_fwd = baseline.G, baseline.D
    baseline._make_optimizers()
    ms = {"gemm": [], "torch": []}
    for _ in range(rounds):
        for name, loop in (("torch", baseline), ("gemm", gemm)):
            for _ in range(warmup):
                loop.step()
            start = time.perf_counter()
            for _ in range(steps):
                loop.step()
            ms[name].append((time.perf_counter() - start) / steps * 1e3)
    return {
        "torch_ms": statistics.median(ms["torch"]),
        "gemm_ms": statistics.median(ms["gemm"]),
        "ratio": statistics.median(g / t for g, t in zip(ms["gemm"], ms["torch"])),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=["quickstart", "first-quickstart"], choices=list(BENCH_CASES))
    p.add_argument("--steps", type=int, default=40, help="timed training steps per segment")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before each segment")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {machine()}; {load()}")
    print("| case | torch layers ms/step | GEMM layers ms/step | GEMM / torch |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.cases:
        row = time_case(BENCH_CASES[name](), args.steps, args.warmup, args.rounds)
        print(f"| {name} | {row['torch_ms']:.2f} | {row['gemm_ms']:.2f} | {row['ratio']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
