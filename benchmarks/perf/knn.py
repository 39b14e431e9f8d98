"""k-nearest-neighbour search: gan_suite's knn vs scikit-learn brute force vs the bare GEMM.

For each shape ``Q x R x D`` (queries, references, feature dimension) and k, times in rounds
(each round runs every contender once, in a rotated order, so drifts of a shared machine hit
them alike):

  gemm       ``torch.mm(a, b.T)``: the bare [Q, R] matrix product of the same shapes, the
             floor of any exact search through the ||a||^2 + ||b||^2 - 2 a.b form
  knn        ``gan_suite.evaluation.metrics.knn.knn(a, b, k)`` (distances and indices)
  radius     ``kth_nn_radius(b, k)`` (the k-NN ball radii of precision/recall, exclude_self)
  sklearn    ``NearestNeighbors(n_neighbors=k, algorithm="brute").fit(b).kneighbors(a)``
  cdist      ``torch.cdist(a, b).topk(k, largest=False)`` in row blocks of the same memory
             (what torch-fidelity's PRC does, with kthvalue)

All in float32, on ``--device``. Reports the median seconds and the ratios knn / gemm and
sklearn / knn (median over rounds of the same-round ratio); on CUDA also each contender's memory
peak above the inputs (``torch.cuda.max_memory_allocated``, the most over rounds). ``--json FILE``
also writes the rows.

  python benchmarks/perf/knn.py                            # 10k x 10k x {2048, 128}, k 3 and 5
  python benchmarks/perf/knn.py --shapes 4000x4000x512 --ks 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gan_suite.evaluation.metrics.knn import knn, kth_nn_radius  # noqa: E402
from common import load, machine  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def contenders(a: torch.Tensor, b: torch.Tensor, k: int, include: list[str]):
    device = a.device
    out = {}
    if "gemm" in include:
        out["gemm"] = lambda: torch.mm(a, b.T)
    if "knn" in include:
        out["knn"] = lambda: knn(a, b, k)
    if "radius" in include:
        out["radius"] = lambda: kth_nn_radius(b, k)
    if "sklearn" in include and device.type == "cpu":
        from sklearn.neighbors import NearestNeighbors

        a_np, b_np = a.numpy(), b.numpy()
        out["sklearn"] = lambda: NearestNeighbors(n_neighbors=k, algorithm="brute").fit(b_np).kneighbors(a_np)
    if "cdist" in include:
        rows = max(1, (64 * 2**20 // 4) // b.shape[0])  # the same 64 MB distance block as knn's default

        def cdist_topk():
            vals, idx = [], []
            for q0 in range(0, a.shape[0], rows):
                v, i = torch.cdist(a[q0 : q0 + rows], b).topk(k, dim=1, largest=False)
                vals.append(v)
                idx.append(i)
            return torch.cat(vals), torch.cat(idx)

        out["cdist"] = cdist_topk
    return out


def check_agreement(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Share of neighbour indices on which knn and sklearn agree (ties aside: ~1.0)."""
    from sklearn.neighbors import NearestNeighbors

    n = min(500, a.shape[0])
    _, ref = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(b.cpu().numpy()).kneighbors(a[:n].cpu().numpy())
    _, idx = knn(a[:n], b, k)
    return float((idx.cpu().numpy() == ref).mean())


def run_shape(q: int, r: int, d: int, k: int, args, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(q, d, generator=g).to(device)
    b = torch.randn(r, d, generator=g).to(device)
    fns = contenders(a, b, k, args.contenders)
    for fn in fns.values():  # warm-up (allocations, thread pools)
        fn()
    times = {name: [] for name in fns}
    peaks = {name: 0.0 for name in fns}
    names = list(fns)
    cuda = device.type == "cuda"
    for rnd in range(args.repeats):
        for name in names[rnd % len(names):] + names[: rnd % len(names)]:
            _sync(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
                held = torch.cuda.memory_allocated(device)
            t0 = time.perf_counter()
            fns[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
            if cuda:  # (the result is freed on return, so the peak counts what the call allocated)
                peaks[name] = max(peaks[name], (torch.cuda.max_memory_allocated(device) - held) / 2**20)
        print(f"  {q}x{r}x{d} k={k} round {rnd + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in names), file=sys.stderr, flush=True)
    row = {"shape": f"{q}x{r}x{d}", "k": k, **{n: statistics.median(t) for n, t in times.items()}}

    def ratio(x, y):
        return statistics.median([p / s for p, s in zip(times[x], times[y])]) if x in times and y in times else None

    row["knn/gemm"] = ratio("knn", "gemm")
    row["radius/gemm"] = ratio("radius", "gemm")
    row["sklearn/knn"] = ratio("sklearn", "knn")
    row["cdist/knn"] = ratio("cdist", "knn")
    row["agreement"] = check_agreement(a, b, k) if device.type == "cpu" else None
    row["peak_mb"] = peaks if cuda else None
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--shapes", nargs="+", default=["10000x10000x2048", "10000x10000x128"], help="QxRxD")
    p.add_argument("--ks", nargs="+", type=int, default=[3, 5])
    p.add_argument("--contenders", nargs="+", default=["gemm", "knn", "radius", "sklearn", "cdist"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (0: leave the defaults)")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args()
    limits = None
    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads)  # numpy / scikit-learn BLAS and OpenMP pools
    device = torch.device(args.device)
    started = load()
    rows = []
    for shape in args.shapes:
        q, r, d = (int(v) for v in shape.lower().split("x"))
        for k in args.ks:
            rows.append(run_shape(q, r, d, k, args, device))
    print(f"\nmachine: {machine()}; device {device}; {started} at start, {load()} at end; {args.repeats} rounds, float32")
    cols = [c for c in ("gemm", "knn", "radius", "sklearn", "cdist") if c in args.contenders]
    print(f"{'shape':<18} {'k':>2} " + " ".join(f"{c + ' s':>10}" for c in cols) + f" {'knn/gemm':>9} {'radius/gemm':>11} {'sklearn/knn':>11} {'cdist/knn':>9} {'agree':>6}")
    for row in rows:
        def fmt(v, spec):
            return format(v, spec) if v is not None else "-"

        print(
            f"{row['shape']:<18} {row['k']:>2} " + " ".join(f"{fmt(row.get(c), '10.3f'):>10}" for c in cols)
            + f" {fmt(row['knn/gemm'], '9.3f'):>9} {fmt(row['radius/gemm'], '11.3f'):>11} {fmt(row['sklearn/knn'], '11.2f'):>11}"
            + f" {fmt(row['cdist/knn'], '9.2f'):>9} {fmt(row['agreement'], '6.3f'):>6}"
        )
        if row["peak_mb"]:
            print(f"{'':<18} {'':>2} peak MB above the inputs: " + ", ".join(f"{n} {v:.0f}" for n, v in row["peak_mb"].items()))
    print("seconds: median over rounds; ratios: median over rounds of the same-round ratio; "
          "agree: share of knn's neighbour indices equal to scikit-learn's (first 500 queries)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "device": str(device), "repeats": args.repeats, "rows": rows}, f, indent=1)
    del limits


if __name__ == "__main__":
    main()
