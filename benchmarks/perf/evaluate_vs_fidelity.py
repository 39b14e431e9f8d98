"""Evaluation cost: gan_suite's streamed evaluation vs torch_fidelity.calculate_metrics.

Same generator (the quickstart DCGAN's G: 28 px, 1 channel, width 32; random weights, or
``--ckpt`` to take a trained one) and the same N samples (torch-fidelity's generator wrapper is
fed gan_suite's evaluation noise instead of its own), same feature extractor (``--extractor``: gan_suite's
``mnist_classifier`` by default, or ``inception``, the FID Inception-v3, with a file of random
weights written once per run unless ``--weights`` names one: the speed does not depend on the
weights; registered into torch-fidelity with ``FeatureExtractorBase`` +
``register_feature_extractor``), same real reference (the 4,500 digits of the bundled MNIST
training split, or the first ``--real-count``), same batch size, the same device (``--device``;
gan_suite computes its metrics on the CPU copies of the features, torch-fidelity on the device it
is given) and the same metrics (``--metrics``, default all): FID, Inception Score (10 splits),
KID (100 subsets of 1000, or of N when N is smaller) and precision/recall (k = 3).

Each measurement runs in a fresh subprocess (``--worker TOOL N``) so that its peak resident
memory (``ru_maxrss``) is its own; the driver runs the (tool, N) pairs in rounds, alternating the
order. What is timed, for both tools: generating N samples, extracting their features, reading
the cached real features (each tool's own disk cache, filled once before the rounds by one more
worker, or, with ``--no-warm``, by each tool's first worker before its timed part) and
computing the metrics. Memory: the peak RSS of the worker, and its growth over the worker's run
(peak minus the RSS when the timed part starts), against N; on CUDA also the worker's
``torch.cuda.max_memory_allocated``; and, in one more worker per (tool, N) (unless
``--no-image-side``), the
same for the image side alone (generate N samples and extract their features, no metrics), with
glibc's default allocator settings and with a fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``):
by default glibc raises the threshold after large frees and serves later large blocks from a
heap whose fragmentation lets RSS creep up with the number of batches, whatever is kept.

  python benchmarks/perf/evaluate_vs_fidelity.py                     # N = 2000, 5000, 10000
  python benchmarks/perf/evaluate_vs_fidelity.py --sizes 2000 --repeats 1
  python benchmarks/perf/evaluate_vs_fidelity.py --extractor inception --sizes 300 --real-count 300 --repeats 1 --no-image-side
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

BATCH = 256
#: gan_suite metric name -> torch-fidelity's calculate_metrics flag
FIDELITY_FLAGS = {"fid": "fid", "is": "isc", "kid": "kid", "pr": "prc"}


def _rss_mb() -> float:
    """Current resident memory of this process, MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def build_generator(ckpt: str | None):
    import torch

    from gan_suite.nets import DCGANGenerator

    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=100, image_size=28, channels=1, width=32)
    if ckpt:
        from gan_suite.evaluation.checkpoint import load_generator

        g = load_generator(ckpt, device="cpu").generator
    return g.eval()


def fidelity_generator(ckpt: str | None):
    """The generator for torch-fidelity, fed gan_suite's evaluation noise (seed 0) in order instead
    of torch-fidelity's own draws, so that both tools score the same N samples."""
    from torch_fidelity import GenerativeModelModuleWrapper

    from gan_suite.evaluation.streaming import evaluation_noise

    class SameSamples(GenerativeModelModuleWrapper):
        def __init__(self, module):
            super().__init__(module, 100, "normal", 0)
            self.drawn = 0

        def forward(self, z, *args):
            n = z.shape[0]
            z = evaluation_noise(0, self.z_size, self.drawn, self.drawn + n).to(z.device)
            self.drawn += n
            return super().forward(z, *args)

    return SameSamples(build_generator(ckpt))


def real_dataset(count: int | None = None):
    """The first ``count`` (default all) digits of the bundled MNIST training split as a torch
    Dataset of float [1, 28, 28] images in [-1, 1]."""
    import torch

    from gan_suite.data import MNISTBundled

    split = MNISTBundled(image_size=28).split("train")
    x, _ = split.__getitems__(list(range(min(count or len(split), len(split)))))

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i]

    return Images()


def extractor_kwargs(args) -> dict:
    """build_extractor arguments: the weights file for Inception (never a download)."""
    return {"weights_path": args.weights, "allow_download": False} if args.extractor == "inception" else {}


def fidelity_name(args) -> str:
    return f"gan_suite_{args.extractor}"


def register_fidelity_extractor(args) -> None:
    """gan_suite's ``args.extractor`` as a torch-fidelity feature extractor ('features', 'logits')."""
    from torch_fidelity import FeatureExtractorBase, register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from gan_suite.evaluation.features import build_extractor

    class GanSuiteExtractor(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.extractor = build_extractor(args.extractor, **extractor_kwargs(args))

        @staticmethod
        def get_provided_features_list():
            return "features", "logits"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            raise NotImplementedError

        def forward(self, x):
            out = self.extractor(x)
            return tuple(out[name] for name in self.features_list)

    if fidelity_name(args) not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(fidelity_name(args), GanSuiteExtractor)


# ----------------------------------------------------------------------------- workers
def _gan_suite_real(args, extractor, cache_dir: str):
    """(cache key, compute function) of the real reference features in gan_suite's cache."""
    from gan_suite.evaluation.streaming import dataset_features

    def real():
        from gan_suite.data import MNISTBundled

        return dataset_features(MNISTBundled(image_size=28).split("train"), extractor, args.real_count, BATCH, args.device, progress=False)

    return f"perf_bundled_train_{args.extractor}_{args.real_count or 'all'}", real


def _fidelity_kwargs(args, n: int, cache_dir: str) -> dict:
    """calculate_metrics arguments of the real side and the metrics (KID subsets of at most N)."""
    flags = {FIDELITY_FLAGS[m]: m in args.metrics for m in FIDELITY_FLAGS}
    real_n = len(real_dataset(args.real_count))
    return dict(
        input2=real_dataset(args.real_count), input2_cache_name=f"perf_bundled_train_{args.real_count or 'all'}", cache_root=cache_dir,
        cache=True, cuda=args.device.startswith("cuda"), feature_extractor=fidelity_name(args), batch_size=BATCH,
        verbose=False, save_cpu_ram=True, kid_subset_size=min(1000, n, real_n), **flags,
    )


def _fidelity_layers(args) -> list[str]:
    return sorted({"logits" if m == "is" else "features" for m in args.metrics})


def fill_fidelity_cache(args, cache_dir: str) -> None:
    """torch-fidelity's disk cache of the real features (what calculate_metrics then reads)."""
    import torch_fidelity.utils as fidelity_utils

    register_fidelity_extractor(args)
    kwargs = _fidelity_kwargs(args, 1000, cache_dir)
    fidelity_extractor = fidelity_utils.create_feature_extractor(fidelity_name(args), _fidelity_layers(args), **kwargs)
    fidelity_utils.extract_featuresdict_from_input_id_cached(2, fidelity_extractor, **kwargs)


def warm_caches(args, cache_dir: str) -> tuple[dict, float, float]:
    """Both tools' disk caches of the real features, filled in one process (not timed by the driver)."""
    from gan_suite.evaluation.features import build_extractor
    from gan_suite.evaluation.real_cache import cached_features

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    extractor = build_extractor(args.extractor, **extractor_kwargs(args)).to(args.device)
    cached_features(*_gan_suite_real(args, extractor, cache_dir), cache_dir)
    fill_fidelity_cache(args, cache_dir)
    return {}, time.perf_counter() - t0, rss0


def run_gan_suite(args, n: int, cache_dir: str) -> tuple[dict, float, float]:
    from gan_suite.evaluation.features import build_extractor
    from gan_suite.evaluation.protocol import compute_metrics
    from gan_suite.evaluation.real_cache import cached_features
    from gan_suite.evaluation.streaming import generated_features

    generator = build_generator(args.ckpt).to(args.device)
    extractor = build_extractor(args.extractor, **extractor_kwargs(args)).to(args.device)
    key, real = _gan_suite_real(args, extractor, cache_dir)
    cached_features(key, real, cache_dir)  # filled once per cache dir (by the "warm" worker, or here with --no-warm)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    fake = generated_features(generator, 100, extractor, n, BATCH, args.device, seed=0, progress=False)
    reference, _ = cached_features(key, real, cache_dir)
    values = compute_metrics(args.metrics, fake, reference, log=lambda msg: None)
    return values, time.perf_counter() - t0, rss0


def run_fidelity(args, n: int, cache_dir: str) -> tuple[dict, float, float]:
    import torch_fidelity

    if args.no_warm:  # (else the "warm" worker filled it)
        fill_fidelity_cache(args, cache_dir)
    register_fidelity_extractor(args)
    generator = fidelity_generator(args.ckpt)
    kwargs = _fidelity_kwargs(args, n, cache_dir)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    values = torch_fidelity.calculate_metrics(input1=generator, input1_model_num_samples=n, **kwargs)
    return values, time.perf_counter() - t0, rss0


def features_only(args, tool: str, n: int) -> tuple[dict, float, float]:
    """The image side alone: generate N samples and extract their features (no metrics)."""
    if tool == "gan_suite":
        from gan_suite.evaluation.features import build_extractor
        from gan_suite.evaluation.streaming import generated_features

        generator = build_generator(args.ckpt).to(args.device)
        extractor = build_extractor(args.extractor, **extractor_kwargs(args)).to(args.device)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        feats = generated_features(generator, 100, extractor, n, BATCH, args.device, seed=0, progress=False).features
    else:
        from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_generative_model

        register_fidelity_extractor(args)
        cuda = args.device.startswith("cuda")
        extractor = create_feature_extractor(fidelity_name(args), ["features", "logits"], cuda=cuda, verbose=False)
        wrapped = fidelity_generator(args.ckpt)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        feats = get_featuresdict_from_generative_model(wrapped, extractor, n, BATCH, cuda, 2020, False)["features"]
    return {"features_mb": feats.numel() * 4 / 2**20}, time.perf_counter() - t0, rss0


def worker(args, tool: str, n: int, mode: str) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore")
    if args.random_weights:  # the driver's own temporary file, written by its first worker
        from gan_suite.evaluation.features.inception import write_random_weights

        write_random_weights(args.weights)
    if mode == "warm":
        values, seconds, rss_before = warm_caches(args, args.cache_dir)
    elif mode == "features":
        values, seconds, rss_before = features_only(args, tool, n)
    else:
        values, seconds, rss_before = (run_gan_suite if tool == "gan_suite" else run_fidelity)(args, n, args.cache_dir)
    cuda = args.device.startswith("cuda")
    print(json.dumps({
        "tool": tool, "n": n, "mode": mode, "seconds": seconds, "peak_mb": _peak_mb(), "rss_before_mb": rss_before,
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "values": {k: float(v) for k, v in values.items() if isinstance(v, (int, float))},
    }))


# ----------------------------------------------------------------------------- driver
#: glibc raises its mmap threshold each time a large block is freed, so that later large blocks
#: come from the heap, whose fragmentation makes RSS creep up batch after batch whatever is kept.
#: A fixed threshold (which also turns the dynamic adjustment off) shows what the tensors hold.
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def _spawn(tool: str, n: int, cache_dir: str, args, mode: str = "all", env: dict | None = None) -> dict:
    cmd = [
        sys.executable, os.path.abspath(__file__), "--worker", tool, str(n), mode, "--cache-dir", cache_dir, "--threads", str(args.threads),
        "--extractor", args.extractor, "--device", args.device, "--metrics", *args.metrics,
    ]
    for option, value in (("--ckpt", args.ckpt), ("--weights", args.weights), ("--real-count", args.real_count)):
        if value:
            cmd += [option, str(value)]
    for flag, on in (("--random-weights", args.random_weights), ("--no-warm", args.no_warm)):
        if on:
            cmd.append(flag)
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(f"worker {tool} N={n} {mode} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(t: str, n: int, results: dict, image_side: dict, image_fixed: dict) -> dict:
    """One (tool, N) row: medians over rounds, the same-round ratio to torch-fidelity, memory, values."""
    rs = results[(t, n)]
    v = rs[0]["values"]
    if t == "gan_suite":
        shown = {"fid": v.get("fid"), "is": v.get("is_mean"), "kid": v.get("kid_mean"), "precision": v.get("precision"), "recall": v.get("recall")}
    else:
        shown = {
            "fid": v.get("frechet_inception_distance"), "is": v.get("inception_score_mean"), "kid": v.get("kernel_inception_distance_mean"),
            "precision": v.get("precision"), "recall": v.get("recall"),
        }
    seconds = statistics.median(r["seconds"] for r in rs)
    gpu = [r["gpu_peak_mb"] for r in rs if r.get("gpu_peak_mb") is not None]
    row = {
        "n": n, "tool": t, "seconds": seconds, "samples_per_s": n / seconds,
        "ratio": statistics.median(a["seconds"] / b["seconds"] for a, b in zip(rs, results[("torch_fidelity", n)])),
        "peak_rss_mb": statistics.median(r["peak_mb"] for r in rs),
        "growth_mb": statistics.median(r["peak_mb"] - r["rss_before_mb"] for r in rs),
        "gpu_peak_mb": max(gpu) if gpu else None, "values": shown, "rounds_s": [r["seconds"] for r in rs],
    }
    if (t, n) in image_side:
        img, fixed = image_side[(t, n)], image_fixed[(t, n)]
        row.update(image_s=img["seconds"], image_growth_mb=img["peak_mb"] - img["rss_before_mb"],
                   image_growth_fixed_mmap_mb=fixed["peak_mb"] - fixed["rss_before_mb"], features_mb=img["values"]["features_mb"])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--sizes", nargs="+", type=int, default=[2000, 5000, 10000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each worker (0: torch's default)")
    p.add_argument("--ckpt", default=None, help="a gan_suite quickstart checkpoint (default: random weights)")
    p.add_argument("--extractor", choices=["mnist_classifier", "inception"], default="mnist_classifier")
    p.add_argument("--weights", default=None, help="inception: its weights file (default: random weights written once for the run)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--real-count", type=int, default=None, help="real reference: the first N training digits (default all 4,500)")
    p.add_argument("--metrics", nargs="+", choices=list(FIDELITY_FLAGS), default=list(FIDELITY_FLAGS))
    p.add_argument("--no-image-side", action="store_true", help="skip the runs of the image side alone (memory against N)")
    p.add_argument("--no-warm", action="store_true", help="no worker that fills the real-feature caches first: each "
                   "worker fills its tool's cache before its timed part (one process fewer; the first workers' memory peaks then include the real side)")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    p.add_argument("--worker", nargs=3, metavar=("TOOL", "N", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--random-weights", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args, args.worker[0], int(args.worker[1]), args.worker[2])
        return
    from common import load

    started = load()
    tools = ["gan_suite", "torch_fidelity"]
    results = {(t, n): [] for t in tools for n in args.sizes}
    image_side, image_fixed = {}, {}
    with tempfile.TemporaryDirectory() as cache_dir:
        if args.extractor == "inception" and not args.weights:
            args.weights = os.path.join(cache_dir, "inception-random.pth")
            args.random_weights = True  # the first worker writes them
        if not args.no_warm:
            warm = _spawn("both", 0, cache_dir, args, mode="warm")  # fill both real-feature caches (not timed)
            args.random_weights = False
            print(f"  real features of both tools cached in {warm['seconds']:.2f} s", file=sys.stderr, flush=True)
        for r in range(args.repeats):
            for n in args.sizes:
                for t in (tools if (r + args.sizes.index(n)) % 2 == 0 else tools[::-1]):
                    res = _spawn(t, n, cache_dir, args)
                    args.random_weights = False
                    results[(t, n)].append(res)
                    print(f"  round {r + 1} {t} N={n}: {res['seconds']:.2f} s, peak {res['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        for n in args.sizes if not args.no_image_side else []:  # the image side alone, once: its peak memory against N
            for t in tools:
                image_side[(t, n)] = _spawn(t, n, cache_dir, args, mode="features")
                image_fixed[(t, n)] = _spawn(t, n, cache_dir, args, mode="features", env=FIXED_MMAP)
                print(f"  features only {t} N={n}: {image_side[(t, n)]['seconds']:.2f} s, peak {image_side[(t, n)]['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
    import torch

    from common import machine

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [_row(t, n, results, image_side, image_fixed) for n in args.sizes for t in tools]
    print(f"\nmachine: {machine()}; {started} at start, {load()} at end; {args.repeats} rounds, batch {BATCH}, "
          f"{args.extractor} features, device {args.device}, metrics {' '.join(args.metrics)}")
    head = f"{'N':>6} {'tool':<15} {'seconds':>8} {'samples/s':>9} {'ratio':>6} {'peak MB':>8} {'growth MB':>9} {'GPU MB':>7}"
    if image_side:
        head += f" {'img s':>6} {'img growth MB':>13} {'(fixed mmap)':>12} {'feat MB':>7}"
    print(head + "  fid / is / kid / precision / recall")
    for row in rows:
        line = (f"{row['n']:>6} {row['tool']:<15} {row['seconds']:8.2f} {row['samples_per_s']:9.0f} {row['ratio']:6.2f} {row['peak_rss_mb']:8.0f} "
                f"{row['growth_mb']:9.0f} {row['gpu_peak_mb'] if row['gpu_peak_mb'] is not None else float('nan'):7.0f}")
        if image_side:
            line += (f" {row['image_s']:6.2f} {row['image_growth_mb']:13.0f} {row['image_growth_fixed_mmap_mb']:12.0f} {row['features_mb']:7.1f}")
        print(line + "  " + " / ".join(f"{x:.4g}" if x is not None else "-" for x in row["values"].values()))
    print("seconds: median over rounds of generate + features + cached real features + metrics; samples/s: N / seconds; ratio: gan_suite / "
          "torch_fidelity in the same round; peak MB: the worker's peak RSS; growth: peak minus the RSS when the timed part starts (imports, networks, real data loaded); "
          "GPU MB: the worker's torch.cuda.max_memory_allocated (nan on a CPU); "
          "img s / img growth MB: the image side alone (generate + extract N, no metrics), one run; (fixed mmap): the "
          "same with MALLOC_MMAP_THRESHOLD_=65536, which stops glibc's heap from creeping up; feat MB: the N "
          "feature vectors it keeps. Both tools score the same samples (torch-fidelity is fed gan_suite's evaluation noise).")
    if args.json:
        with open(args.json, "w") as f:
            hidden = ("worker", "cache_dir", "random_weights")
            json.dump({"machine": machine(), "args": {k: v for k, v in vars(args).items() if k not in hidden}, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
