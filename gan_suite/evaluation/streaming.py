"""Streamed feature extraction: generate (or read) a batch, extract features, drop the images.

Every batch's features are added to a :class:`FeatureMoments` (float64 sums: O(D^2) memory,
whatever N) as they arrive. The features themselves are kept only when ``keep_features`` (the
metrics that need more than the moments: k-NN metrics, KID, IS, FD-infinity, the bootstrap):
50,000 x 2048 Inception features take 410 MB in float32, 205 MB in float16 storage
(``storage_dtype``; k-NN searches promote to float32 while they run) and 819 MB in float64; the
moments take 34 MB. The N full images are never kept. When the copy test is asked for, each image
is also kept in its reduced copy space (float16, at most 32 x 32:
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
from gan_suite.evaluation.metrics.fid import FeatureMoments
from gan_suite.nets.conditional import cyclic_labels
from gan_suite.seeding import EVALUATION_NOISE, derive_seed


@dataclass
class FeatureSet:
    """Features of N samples, with optional logits, labels and copy-space images.

    Attributes:
        features: [N, D] on the CPU (float32; float16 or float64 storage when asked), or None
            when only the moments were kept.
        logits: [N, K] or None.
        labels: [N] int64 from a classifier (or the data's labels), or None.
        pixels: [N, C, h, w] float16 images in [-1, 1] reduced for the copy test, or None.
        moments: the features' streamed float64 moments (None: compute from ``features``).
        conditioning: [N] int64 classes a class-conditional generator was asked for, or None.
    """

    features: Optional[torch.Tensor]
    logits: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    pixels: Optional[torch.Tensor] = None
    moments: Optional[FeatureMoments] = None
    conditioning: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.features.shape[0] if self.features is not None else self.moments.n

    def feature_moments(self) -> FeatureMoments:
        """The streamed moments, or those of ``features``."""
        if self.moments is None:
            self.moments = FeatureMoments.from_features(self.features)
        return self.moments


def _collect(batches, extractor, labeller, total, pixels, progress, desc, keep_features=True, storage_dtype=None) -> FeatureSet:
    feats, logits, labels, kept = [], [], [], []
    moments = FeatureMoments()
    with tqdm(total=total, desc=desc, unit="sample", disable=not progress, leave=False) as bar:
        for x, y in batches:
            out = extractor(x)
            moments.update(out["features"])
            if keep_features:
                feats.append(out["features"].cpu().to(storage_dtype or out["features"].dtype))
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
        features=torch.cat(feats) if keep_features else None,
        logits=torch.cat(logits) if logits else None,
        labels=torch.cat(labels) if labels else None,
        pixels=torch.cat(kept) if kept else None,
        moments=moments,
    )


#: samples per noise block: the noise of sample i depends on (seed, i // NOISE_BLOCK, i % NOISE_BLOCK)
NOISE_BLOCK = 1000


def evaluation_noise(seed: int, latent_dim: int, start: int, stop: int) -> torch.Tensor:
    """The evaluation noise of sample indices [start, stop): [stop - start, latent_dim].

    It does not depend on the batch size or on how the range is split (e.g. over ranks).
    """
    parts = []
    for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
        z = torch.randn(NOISE_BLOCK, latent_dim, generator=torch.Generator().manual_seed(derive_seed(seed, EVALUATION_NOISE, block)))
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
    keep_features: bool = True,
    storage_dtype: Optional[torch.dtype] = None,
) -> FeatureSet:
    """Features of ``num_samples`` generated samples (G in eval mode, noise from ``seed``).

    ``noise_slice=(start, stop)`` restricts to those sample indices (a rank's share under DDP):
    the samples are exactly those a single process produces at the same indices (see
    :func:`evaluation_noise`). NaN or inf samples raise :class:`NonFiniteSamplesError`.
    A class-conditional generator (``num_classes`` > 0) makes sample i of class i mod num_classes
    (``FeatureSet.conditioning``).
    ``pixels``: also keep every sample in copy space (``FeatureSet.pixels``).
    ``keep_features=False``: keep only the streamed moments; ``storage_dtype``: dtype of the kept
    features (default: the extractor's output dtype).
    """
    start, stop = noise_slice if noise_slice is not None else (0, num_samples)
    num_classes = int(getattr(generator, "num_classes", 0))
    was_training = generator.training
    generator.eval()
    # the noise in G's own precision (e.g. a float64 run); samples are scored in float32
    dtype = next((p.dtype for p in generator.parameters() if p.is_floating_point()), torch.float32)

    def batches():
        for lo in range(start, stop, batch_size):
            hi = min(lo + batch_size, stop)
            z = evaluation_noise(seed, latent_dim, lo, hi).to(device, dtype)
            x = generator(z, cyclic_labels(hi - lo, num_classes, lo, device)) if num_classes else generator(z)
            x = x.float()
            if not torch.isfinite(x).all():
                raise NonFiniteSamplesError(f"the generator produced NaN or inf values (samples {lo}..{hi - 1})")
            yield x, None

    try:
        if stop <= start:
            return FeatureSet(features=torch.zeros(0, getattr(extractor, "feature_dim", 0)))
        out = _collect(batches(), extractor, labeller, stop - start, pixels, progress, "generated", keep_features, storage_dtype)
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
