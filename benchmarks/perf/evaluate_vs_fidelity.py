"""Evaluation cost: gan_suite's streamed evaluation vs torch_fidelity.calculate_metrics.

Same generator (the quickstart DCGAN's G: 28 px, 1 channel, width 32; random weights, or
``--ckpt`` to take a trained one), same feature extractor (gan_suite's ``mnist_classifier``,
registered into torch-fidelity with ``FeatureExtractorBase`` + ``register_feature_extractor``),
same real reference (the 4,500 digits of the bundled MNIST training split), same batch size and
the same metrics: FID, Inception Score (10 splits), KID (100 subsets of 1000) and
precision/recall (k = 3).

Each measurement runs in a fresh subprocess (``--worker TOOL N``) so that its peak resident
memory (``ru_maxrss``) is its own; the driver runs the (tool, N) pairs in rounds, alternating the
order. What is timed, for both tools: generating N samples, extracting their features, reading
the cached real features (each tool's own disk cache, filled once before the rounds) and
computing the metrics. Memory: the peak RSS of the worker, and its growth over the worker's run
(peak minus the RSS when the timed part starts), against N; and, in one more worker per (tool, N), the
same for the image side alone (generate N samples and extract their features, no metrics), with
glibc's default allocator settings and with a fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``):
by default glibc raises the threshold after large frees and serves later large blocks from a
heap whose fragmentation lets RSS creep up with the number of batches, whatever is kept.

  python benchmarks/perf/evaluate_vs_fidelity.py                     # N = 2000, 5000, 10000
  python benchmarks/perf/evaluate_vs_fidelity.py --sizes 2000 --repeats 1
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
FIDELITY_NAME = "gan_suite_mnist_classifier"


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


def real_dataset():
    """The bundled MNIST training split as a torch Dataset of float [1, 28, 28] images in [-1, 1]."""
    import torch

    from gan_suite.data import MNISTBundled

    split = MNISTBundled(image_size=28).split("train")
    x, _ = split.__getitems__(list(range(len(split))))

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return x[i]

    return Images()


def register_fidelity_extractor() -> None:
    """gan_suite's mnist_classifier as a torch-fidelity feature extractor ('features', 'logits')."""
    from torch_fidelity import FeatureExtractorBase, register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from gan_suite.evaluation.features import build_extractor

    class GanSuiteMnist(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.extractor = build_extractor("mnist_classifier")

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

    if FIDELITY_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(FIDELITY_NAME, GanSuiteMnist)


# ----------------------------------------------------------------------------- workers
def run_gan_suite(n: int, cache_dir: str, ckpt: str | None) -> tuple[dict, float, float]:
    from gan_suite.evaluation.features import build_extractor
    from gan_suite.evaluation.protocol import compute_metrics
    from gan_suite.evaluation.real_cache import cached_features
    from gan_suite.evaluation.streaming import dataset_features, generated_features

    generator, extractor = build_generator(ckpt), build_extractor("mnist_classifier")

    def real():
        from gan_suite.data import MNISTBundled

        return dataset_features(MNISTBundled(image_size=28).split("train"), extractor, None, BATCH, "cpu", progress=False)

    key = "perf_bundled_train_mnist_classifier"
    cached_features(key, real, cache_dir)  # filled once per cache dir (the driver warms it)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    fake = generated_features(generator, 100, extractor, n, BATCH, "cpu", seed=0, progress=False)
    reference, _ = cached_features(key, real, cache_dir)
    values = compute_metrics(["fid", "is", "kid", "pr"], fake, reference, log=lambda msg: None)
    return values, time.perf_counter() - t0, rss0


def run_fidelity(n: int, cache_dir: str, ckpt: str | None) -> tuple[dict, float, float]:
    import torch_fidelity
    from torch_fidelity import GenerativeModelModuleWrapper

    register_fidelity_extractor()
    generator = GenerativeModelModuleWrapper(build_generator(ckpt), 100, "normal", 0)
    kwargs = dict(
        input2=real_dataset(), input2_cache_name="perf_bundled_train", cache_root=cache_dir, cache=True, cuda=False,
        feature_extractor=FIDELITY_NAME, batch_size=BATCH, isc=True, fid=True, kid=True, prc=True, verbose=False,
        save_cpu_ram=True,
    )
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    values = torch_fidelity.calculate_metrics(input1=generator, input1_model_num_samples=n, **kwargs)
    return values, time.perf_counter() - t0, rss0


def features_only(tool: str, n: int, ckpt: str | None) -> tuple[dict, float, float]:
    """The image side alone: generate N samples and extract their features (no metrics)."""
    generator = build_generator(ckpt)
    if tool == "gan_suite":
        from gan_suite.evaluation.features import build_extractor
        from gan_suite.evaluation.streaming import generated_features

        extractor = build_extractor("mnist_classifier")
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        feats = generated_features(generator, 100, extractor, n, BATCH, "cpu", seed=0, progress=False).features
    else:
        from torch_fidelity import GenerativeModelModuleWrapper
        from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_generative_model

        register_fidelity_extractor()
        extractor = create_feature_extractor(FIDELITY_NAME, ["features", "logits"], cuda=False, verbose=False)
        wrapped = GenerativeModelModuleWrapper(generator, 100, "normal", 0)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        feats = get_featuresdict_from_generative_model(wrapped, extractor, n, BATCH, False, 2020, False)["features"]
    return {"features_mb": feats.numel() * 4 / 2**20}, time.perf_counter() - t0, rss0


def worker(tool: str, n: int, mode: str, cache_dir: str, ckpt: str | None, threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    import warnings

    warnings.filterwarnings("ignore")
    if mode == "features":
        values, seconds, rss_before = features_only(tool, n, ckpt)
    else:
        values, seconds, rss_before = (run_gan_suite if tool == "gan_suite" else run_fidelity)(n, cache_dir, ckpt)
    print(json.dumps({
        "tool": tool, "n": n, "mode": mode, "seconds": seconds, "peak_mb": _peak_mb(), "rss_before_mb": rss_before,
        "values": {k: float(v) for k, v in values.items() if isinstance(v, (int, float))},
    }))


# ----------------------------------------------------------------------------- driver
#: glibc raises its mmap threshold each time a large block is freed, so that later large blocks
#: come from the heap, whose fragmentation makes RSS creep up batch after batch whatever is kept.
#: A fixed threshold (which also turns the dynamic adjustment off) shows what the tensors hold.
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def _spawn(tool: str, n: int, cache_dir: str, args, mode: str = "all", env: dict | None = None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, str(n), mode, "--cache-dir", cache_dir, "--threads", str(args.threads)]
    if args.ckpt:
        cmd += ["--ckpt", args.ckpt]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--sizes", nargs="+", type=int, default=[2000, 5000, 10000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt", default=None, help="a gan_suite quickstart checkpoint (default: random weights)")
    p.add_argument("--worker", nargs=3, metavar=("TOOL", "N", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2], args.cache_dir, args.ckpt, args.threads)
        return
    from common import load

    started = load()
    tools = ["gan_suite", "torch_fidelity"]
    results = {(t, n): [] for t in tools for n in args.sizes}
    with tempfile.TemporaryDirectory() as cache_dir:
        for t in tools:  # fill both real-feature caches (not timed)
            _spawn(t, min(args.sizes), cache_dir, args)
        for r in range(args.repeats):
            for n in args.sizes:
                for t in (tools if (r + args.sizes.index(n)) % 2 == 0 else tools[::-1]):
                    res = _spawn(t, n, cache_dir, args)
                    results[(t, n)].append(res)
                    print(f"  round {r + 1} {t} N={n}: {res['seconds']:.2f} s, peak {res['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        image_side, image_fixed = {}, {}
        for n in args.sizes:  # the image side alone, once: its peak memory against N
            for t in tools:
                image_side[(t, n)] = _spawn(t, n, cache_dir, args, mode="features")
                image_fixed[(t, n)] = _spawn(t, n, cache_dir, args, mode="features", env=FIXED_MMAP)
                print(f"  features only {t} N={n}: {image_side[(t, n)]['seconds']:.2f} s, peak {image_side[(t, n)]['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
    import torch

    from common import machine

    torch.set_num_threads(args.threads)
    print(f"\nmachine: {machine()}; {started} at start, {load()} at end; {args.repeats} rounds, batch {BATCH}, CPU")
    print(f"{'N':>6} {'tool':<15} {'seconds':>8} {'ratio':>6} {'peak MB':>8} {'growth MB':>9} {'img s':>6} {'img growth MB':>13} {'(fixed mmap)':>12} {'feat MB':>7}  fid / is / kid / precision / recall")
    for n in args.sizes:
        for t in tools:
            rs = results[(t, n)]
            secs = statistics.median(r["seconds"] for r in rs)
            ratio = statistics.median(a["seconds"] / b["seconds"] for a, b in zip(rs, results[("torch_fidelity", n)]))
            peak = statistics.median(r["peak_mb"] for r in rs)
            growth = statistics.median(r["peak_mb"] - r["rss_before_mb"] for r in rs)
            v = rs[0]["values"]
            if t == "gan_suite":
                shown = (v.get("fid"), v.get("is_mean"), v.get("kid_mean"), v.get("precision"), v.get("recall"))
            else:
                shown = (v.get("frechet_inception_distance"), v.get("inception_score_mean"), v.get("kernel_inception_distance_mean"), v.get("precision"), v.get("recall"))
            img, fixed = image_side[(t, n)], image_fixed[(t, n)]
            print(f"{n:>6} {t:<15} {secs:8.2f} {ratio:6.2f} {peak:8.0f} {growth:9.0f} {img['seconds']:6.2f} "
                  f"{img['peak_mb'] - img['rss_before_mb']:13.0f} {fixed['peak_mb'] - fixed['rss_before_mb']:12.0f} "
                  f"{img['values']['features_mb']:7.1f}  "
                  + " / ".join(f"{x:.4g}" if x is not None else "-" for x in shown))
    print("seconds: median over rounds of generate + features + cached real features + metrics; ratio: gan_suite / "
          "torch_fidelity in the same round; peak MB: the worker's peak RSS; growth: peak minus the RSS when the timed part starts (imports, networks, real data loaded); "
          "img s / img growth MB: the image side alone (generate + extract N, no metrics), one run; (fixed mmap): the "
          "same with MALLOC_MMAP_THRESHOLD_=65536, which stops glibc's heap from creeping up; feat MB: the N "
          "feature vectors it keeps. Metric values differ by the noise (each tool draws its own).")


if __name__ == "__main__":
    main()
