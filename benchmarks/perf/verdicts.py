"""What the copying and mode-collapse verdicts add to ``gan-suite evaluate``, in seconds.

Generates N samples of a checkpoint's generator (MNIST-like data), extracts the classifier
features, labels and copy-space pixels once, then times each part of the two metrics on their
own: the copy test's distance search (generated and held-out images against the training
images), the test, the gallery, the published C_T / authenticity statistics, and the mode test.

    python benchmarks/perf/verdicts.py --ckpt runs/quickstart/quickstart/checkpoints/last.ckpt --num-samples 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from gan_suite.evaluation.checkpoint import build_datamodule, load_generator
from gan_suite.evaluation.features import build_extractor
from gan_suite.evaluation.metrics.copy_detection import copy_scores, copy_test, tolerant_nn_distance
from gan_suite.evaluation.metrics.gallery import copy_gallery
from gan_suite.evaluation.metrics.memorisation import memorisation_report
from gan_suite.evaluation.metrics.modes import mode_coverage_test
from gan_suite.evaluation.protocol import mode_labeller
from gan_suite.evaluation.streaming import dataset_features, dataset_pixels, generated_features


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--num-samples", type=int, default=10000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    trained = load_generator(args.ckpt)
    dm = build_datamodule(trained.data_spec)
    extractor = build_extractor("mnist_classifier")
    labeller = mode_labeller(dm.name)
    t0 = time.perf_counter()
    fake = generated_features(trained.generator, trained.latent_dim, extractor, args.num_samples, labeller=labeller, pixels=True, progress=False)
    t_generate = time.perf_counter() - t0
    train = dataset_features(dm.split("train"), extractor, labeller=labeller, progress=False)
    heldout = dataset_features(dm.split("heldout"), extractor, labeller=labeller, progress=False)
    t0 = time.perf_counter()
    train.pixels, heldout.pixels = dataset_pixels(dm.split("train")), dataset_pixels(dm.split("heldout"))
    t_pixels = time.perf_counter() - t0

    times = {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t
        return out

    gen_d, _ = timed("copy distances: generated vs training", lambda: tolerant_nn_distance(fake.pixels, train.pixels))
    null_d, _ = timed("copy distances: held-out vs training", lambda: tolerant_nn_distance(heldout.pixels, train.pixels))
    timed("copy test (per class)", lambda: copy_test(gen_d, null_d, generated_groups=fake.labels, null_groups=heldout.labels))
    scores = copy_scores(gen_d, null_d, fake.labels, heldout.labels)
    with tempfile.TemporaryDirectory() as folder:
        timed("copy gallery", lambda: copy_gallery(fake.pixels, scores, gen_d, train.pixels, f"{folder}/g.png"))
    counts = torch.bincount(fake.labels, minlength=10)
    timed("mode test (per mode + KL null)", lambda: mode_coverage_test(counts, reference_counts=torch.bincount(train.labels, minlength=10)))
    timed("published C_T + authenticity (before too)", lambda: memorisation_report(train.features, heldout.features, fake.features))
    new = sum(v for k, v in times.items() if not k.startswith("published"))
    print(f"N = {args.num_samples} generated, {len(train)} training, {len(heldout)} held-out; {args.threads} thread(s)")
    print(f"generate + features + labels + pixels of the generated set: {t_generate:.1f} s; pixels of the real splits: {t_pixels:.2f} s")
    print("| part | seconds |\n| --- | ---: |")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **new checks in all** | **{new:.2f}** |")


if __name__ == "__main__":
    main()
