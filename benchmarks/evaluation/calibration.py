"""Calibration of the evaluation on MNIST: known cases the metrics must separate.

For each case prints FID, the published C_T and unauthentic share, the copy test (rate, estimated
share of copies, p-value, verdict), the published mode count and KL, and the mode test (dropped
modes, KL p-value, verdict), with the mnist_classifier features:
  - held-out real digits (a folder of real MNIST digits never trained on, e.g. the MNIST test split),
  - a trained checkpoint (e.g. the quickstart model),
  - a copying generator (replays the training digits) and one with tiny pixel noise,
  - a one-class generator (replays only the digit 1),
and the FID between real splits (held-out vs training digits) with the sample counts.

    python benchmarks/evaluation/calibration.py --ckpt runs/quickstart/quickstart/checkpoints/last.ckpt \
        --real-idx ../shared/data/mnist-test --num-samples 5000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from gan_suite.data import MNISTBundled
from gan_suite.evaluation.evaluate import evaluate_checkpoint
from gan_suite.evaluation.features import build_extractor
from gan_suite.evaluation.features.idx import read_mnist_split
from gan_suite.evaluation.metrics import fid_from_features
from gan_suite.evaluation.replay import ReplayGenerator, replay_checkpoint
from gan_suite.evaluation.streaming import dataset_features

BUNDLED = {"class_path": "gan_suite.data.MNISTBundled", "init_args": {"image_size": 28}}
KEYS = (
    "fid", "C_T", "unauthentic_generated", "copy_rate", "copy_excess", "copy_p_value", "copying_flagged",
    "modes_covered", "modes_dropped", "mode_kl", "mode_kl_p_value", "mode_collapse_flagged",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="a trained gan_suite checkpoint on mnist_bundled")
    p.add_argument("--real-idx", help="MNIST IDX folder of real digits disjoint from the training digits")
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()

    work = tempfile.mkdtemp()
    cases = {}
    if args.real_idx:
        cases["held-out real digits"] = replay_checkpoint(os.path.join(work, "real.ckpt"), ReplayGenerator(idx_folder=args.real_idx), BUNDLED)
    if args.ckpt:
        cases["trained model"] = args.ckpt
    cases["copying generator"] = replay_checkpoint(os.path.join(work, "copy.ckpt"), ReplayGenerator(BUNDLED, "train"), BUNDLED)
    cases["copying + noise 0.05"] = replay_checkpoint(os.path.join(work, "noisy.ckpt"), ReplayGenerator(BUNDLED, "train", noise_std=0.05), BUNDLED)
    cases["one-class generator"] = replay_checkpoint(os.path.join(work, "ones.ckpt"), ReplayGenerator(BUNDLED, "train", classes=[1]), BUNDLED)

    results = {}
    for name, ckpt in cases.items():
        r = evaluate_checkpoint(
            ckpt, num_samples=args.num_samples, metrics=["fid", "memorisation", "modes"], out_dir=os.path.join(work, "eval"), progress=False,
        )
        results[name] = {k: r["metrics"].get(k) for k in KEYS} | {"n_generated": r["protocol"]["n_generated"], "n_real": r["protocol"]["n_real"]}

    extractor = build_extractor("mnist_classifier")
    dm = MNISTBundled()
    train = dataset_features(dm.split("train"), extractor, progress=False).features
    heldout = dataset_features(dm.split("heldout"), extractor, progress=False).features
    splits = {"FID held-out (500) vs train (4500)": fid_from_features(heldout, train)}
    if args.real_idx:
        import torch

        from gan_suite.data.base import TensorSampleDataset

        images, labels = read_mnist_split(args.real_idx)
        test = TensorSampleDataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long())
        test_feats = dataset_features(test, extractor, progress=False).features
        splits[f"FID MNIST test ({len(test)}) vs train (4500)"] = fid_from_features(test_feats, train)
        splits["FID MNIST test (first 500) vs held-out (500)"] = fid_from_features(test_feats[:500], heldout)

    width = max(len(n) for n in results)
    print(f"{'case':<{width}}  " + "  ".join(f"{k:>12}" for k in KEYS))
    for name, row in results.items():
        cells = []
        for k in KEYS:
            v = row[k]
            cells.append(f"{('YES' if v else 'no'):>12}" if isinstance(v, bool) else f"{v:>12.3g}" if isinstance(v, float) else f"{v!s:>12}")
        print(f"{name:<{width}}  " + "  ".join(cells))
    print(f"(N generated = {args.num_samples}, real reference = the 500 held-out bundled digits, mnist_classifier features)")
    for name, value in splits.items():
        print(f"{name}: {value:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cases": results, "real_splits": splits}, f, indent=2)


if __name__ == "__main__":
    main()
