"""Streamed feature extraction: generate (or read) a batch, extract features, drop the images.

Memory holds the features ([N, D]) and never the N full images, so 50,000 Inception samples need
about 400 MB of features whatever the image size. When the copy test is asked for, each image is
also kept in its reduced copy space (float16, at most 32 x 32:
:func:`~gan_suite.evaluation.metrics.copy_detection.copy_space`), 6 KB per RGB sample: 300 MB for
50,000 samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from gan_suite.errors import NonFiniteSamplesError
from gan_suite.evaluation.metrics.copy_detection import copy_space
from gan_suite.nets.conditional import cyclic_labels


@dataclass
class FeatureSet:
    """Features of N samples, with optional logits, labels and copy-space images.

    Attributes:
        features: [N, D] float32 on the CPU.
        logits: [N, K] float32 or None.
        labels: [N] int64 from a classifier (or the data's labels), or None.
        pixels: [N, C, h, w] float16 images in [-1, 1] reduced for the copy test, or None.
        conditioning: [N] int64 classes a class-conditional generator was asked for, or None.
    """

    features: torch.Tensor
    logits: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    pixels: Optional[torch.Tensor] = None
    conditioning: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.features.shape[0]


def _collect(batches, extractor, labeller, total, pixels, progress, desc) -> FeatureSet:
    feats, logits, labels, kept = [], [], [], []
    with tqdm(total=total, desc=desc, unit="sample", disable=not progress, leave=False) as bar:
        for x, y in batches:
            out = extractor(x)
            feats.append(out["features"].cpu())
            if "logits" in out:
                logits.append(out["logits"].cpu())
            if labeller is not None:
                labels.append(labeller(x).cpu())
            elif y is not None:
                labels.append(y.cpu())
            if pixels and x.dim() == 4:
                kept.append(copy_space(x))
            bar.update(x.shape[0])
    return FeatureSet(
        features=torch.cat(feats),
        logits=torch.cat(logits) if logits else None,
        labels=torch.cat(labels) if labels else None,
        pixels=torch.cat(kept) if kept else None,
    )


#: samples per noise block: the noise of sample i depends on (seed, i // NOISE_BLOCK, i % NOISE_BLOCK)
NOISE_BLOCK = 1000


def evaluation_noise(seed: int, latent_dim: int, start: int, stop: int) -> torch.Tensor:
    """The evaluation noise of sample indices [start, stop): [stop - start, latent_dim].

    It does not depend on the batch size or on how the range is split (e.g. over ranks).
    """
    parts = []
    for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
        z = torch.randn(NOISE_BLOCK, latent_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + block))
        lo, hi = max(start - block * NOISE_BLOCK, 0), min(stop - block * NOISE_BLOCK, NOISE_BLOCK)
        parts.append(z[lo:hi])
    return torch.cat(parts)


@torch.no_grad()
def generated_features(
    generator: nn.Module,
    latent_dim: int,
    extractor: nn.Module,
    num_samples: int,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    labeller: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    pixels: bool = False,
    progress: bool = True,
    noise_slice: tuple[int, int] | None = None,
) -> FeatureSet:
    """Features of ``num_samples`` generated samples (G in eval mode, noise from ``seed``).

    ``noise_slice=(start, stop)`` restricts to those sample indices (a rank's share under DDP):
    the samples are exactly those a single process produces at the same indices (see
    :func:`evaluation_noise`). NaN or inf samples raise :class:`NonFiniteSamplesError`.
    A class-conditional generator (``num_classes`` > 0) makes sample i of class i mod num_classes
    (``FeatureSet.conditioning``).
    ``pixels``: also keep every sample in copy space (``FeatureSet.pixels``).
    """
    start, stop = noise_slice if noise_slice is not None else (0, num_samples)
    num_classes = int(getattr(generator, "num_classes", 0))
    was_training = generator.training
    generator.eval()

    def batches():
        for lo in range(start, stop, batch_size):
            hi = min(lo + batch_size, stop)
            z = evaluation_noise(seed, latent_dim, lo, hi).to(device)
            x = generator(z, cyclic_labels(hi - lo, num_classes, lo, device)) if num_classes else generator(z)
            if not torch.isfinite(x).all():
                raise NonFiniteSamplesError(f"the generator produced NaN or inf values (samples {lo}..{hi - 1})")
            yield x, None

    try:
        if stop <= start:
            return FeatureSet(features=torch.zeros(0, getattr(extractor, "feature_dim", 0)))
        out = _collect(batches(), extractor, labeller, stop - start, pixels, progress, "generated")
        if num_classes:
            out.conditioning = cyclic_labels(stop - start, num_classes, start)
        return out
    finally:
        generator.train(was_training)


@torch.no_grad()
def dataset_features(
    dataset,
    extractor: nn.Module,
    num_samples: Optional[int] = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    labeller: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    pixels: bool = False,
    progress: bool = True,
) -> FeatureSet:
    """Features of the first ``num_samples`` items (all when None) of a data module split.

    ``dataset`` returns ``(x [B, ...] in [-1, 1], labels [B])`` from ``__getitems__`` (the suite's
    datasets do). The dataset's own labels are kept unless a ``labeller`` is given.
    """
    n = len(dataset) if num_samples is None else min(num_samples, len(dataset))

    def batches():
        for lo in range(0, n, batch_size):
            idx = list(range(lo, min(lo + batch_size, n)))
            x, y = dataset.__getitems__(idx) if hasattr(dataset, "__getitems__") else _stack([dataset[i] for i in idx])
            yield x.to(device), y

    return _collect(batches(), extractor, labeller, n, pixels, progress, "real")


def _stack(items):
    xs, ys = zip(*items)
    return torch.stack(xs), torch.as_tensor(ys)


def dataset_pixels(dataset, batch_size: int = 1024) -> Optional[torch.Tensor]:
    """Every image of a data module split in copy space: [N, C, h, w] float16, or None for
    data that are not images (e.g. 2-D points)."""
    parts = []
    for lo in range(0, len(dataset), batch_size):
        idx = list(range(lo, min(lo + batch_size, len(dataset))))
        x, _ = dataset.__getitems__(idx) if hasattr(dataset, "__getitems__") else _stack([dataset[i] for i in idx])
        if x.dim() != 4:
            return None
        parts.append(copy_space(x))
    return torch.cat(parts) if parts else None
