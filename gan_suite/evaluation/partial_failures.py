"""Partial failures made of real images, to measure how often the verdicts catch them.

Real GANs fail partially: they copy a few training images, drop a few modes. This module builds
such "generators" from real data and resamples them many times, so that the copy test and the
mode test can be checked on cases with a known answer (a test suite, or
``benchmarks/evaluation/power_curve.py`` on any labelled image data):

  * fresh: real images never trained on, drawn with the training set's class proportions
    (a real sample of the training distribution: a generator that learnt it perfectly);
  * copies: training images, exact, with Gaussian pixel noise, or shifted by up to two pixels
    (edge-replicated), mixed into fresh images at a chosen share;
  * dropped classes: fresh images of every class but the dropped ones.

Each image's copy-test distance and classifier label are computed once (``build_pools``); a
resampled generator is then a draw of indices, so hundreds of resamplings cost seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.copy_detection import copy_space, copy_test, tolerant_nn_distance
from gan_suite.evaluation.metrics.modes import mode_coverage_test

COPY_KINDS = ("exact", "noise", "shift")


@dataclass
class Pools:
    """Per-image statistics of the calibration pools.

    Attributes:
        null: [n] copy-test distances of the held-out images (the null).
        null_pred: [n] classifier labels of the held-out images.
        reference_counts: [K] classifier labels of the training images, counted.
        train_class_share: [K] the training set's true class proportions.
        fresh_dist, fresh_pred, fresh_true: [F] distance, classifier label, true label of the
            fresh images.
        copy_dist, copy_pred: kind -> [C] distance and classifier label of each copy.
    """

    null: torch.Tensor
    null_pred: torch.Tensor
    reference_counts: torch.Tensor
    train_class_share: torch.Tensor
    fresh_dist: torch.Tensor
    fresh_pred: torch.Tensor
    fresh_true: torch.Tensor
    copy_dist: dict
    copy_pred: dict

    @property
    def num_classes(self) -> int:
        return len(self.reference_counts)


def shift_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate images [N, C, H, W] by integer (dy, dx) shifts [N, 2] (|d| <= 2), replicating
    the edge into the vacated border."""
    pad = int(shifts.abs().max()) if len(shifts) else 0
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate") if pad else images
    h, w = images.shape[-2:]
    out = torch.empty_like(images)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i] = padded[i, :, pad - dy : pad - dy + h, pad - dx : pad - dx + w]
    return out


@torch.no_grad()
def build_pools(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    heldout: torch.Tensor,
    fresh: torch.Tensor,
    fresh_labels: torch.Tensor,
    classify: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    n_copies: int = 2000,
    noise_std: float = 0.05,
    max_shift: int = 2,
    seed: int = 0,
) -> Pools:
    """Compute the pools from real images in [-1, 1].

    Args:
        train: [L, C, H, W] training images; train_labels: [L] their true classes.
        heldout: [n, C, H, W] held-out real images (the copy test's null).
        fresh: [F, C, H, W] other real images never trained on; fresh_labels: [F] true classes.
        classify: images [B, C, H, W] -> predicted classes [B] (the mode test's labeller).
        n_copies: copies of each kind (sources drawn from the training images with ``seed``).
        noise_std: std of the pixel noise of the noisy copies, in [-1, 1] units.
        max_shift: largest shift of the shifted copies (each copy gets a random non-zero shift).
    """
    gen = torch.Generator().manual_seed(seed)
    train_cs = copy_space(train)

    def distance(images: torch.Tensor) -> torch.Tensor:
        return tolerant_nn_distance(copy_space(images), train_cs, max_shift=max_shift)[0]

    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([classify(images[i : i + 512]).cpu() for i in range(0, len(images), 512)])

    sources = torch.randint(0, len(train), (n_copies,), generator=gen)
    originals = train[sources]
    noisy = (originals + noise_std * torch.randn(originals.shape, generator=gen)).clamp(-1, 1)
    shifts = torch.randint(-max_shift, max_shift + 1, (n_copies, 2), generator=gen)
    zero = (shifts == 0).all(1)
    shifts[zero, 1] = 1  # every shifted copy moves
    shifted = shift_images(originals, shifts)
    copies = {"exact": originals, "noise": noisy, "shift": shifted}
    return Pools(
        null=distance(heldout),
        null_pred=predict(heldout),
        reference_counts=torch.bincount(predict(train), minlength=num_classes),
        train_class_share=torch.bincount(train_labels.long(), minlength=num_classes).double() / len(train_labels),
        fresh_dist=distance(fresh),
        fresh_pred=predict(fresh),
        fresh_true=fresh_labels.long().cpu(),
        copy_dist={k: distance(v) for k, v in copies.items()},
        copy_pred={k: predict(v) for k, v in copies.items()},
    )


def resample(
    pools: Pools,
    n: int,
    copy_share: float = 0.0,
    copy_kind: str = "exact",
    dropped: Sequence[int] = (),
    rng: Optional[np.random.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One generated set of ``n`` samples: round(copy_share n) copies of ``copy_kind``, the rest
    fresh images whose classes follow the training proportions without the ``dropped`` classes.

    Returns (copy-test distances [n], classifier labels [n], number of copies).
    """
    if copy_kind not in COPY_KINDS:
        raise ConfigError(f"copy_kind must be one of {', '.join(COPY_KINDS)}, got {copy_kind!r}")
    rng = rng or np.random.default_rng(0)
    n_copy = int(round(copy_share * n))
    share = pools.train_class_share.clone()
    share[list(dropped)] = 0
    if share.sum() <= 0:
        raise ConfigError("every class is dropped")
    classes = rng.choice(len(share), size=n - n_copy, p=(share / share.sum()).numpy())
    picks = []
    for c in np.unique(classes):
        members = (pools.fresh_true == int(c)).nonzero().squeeze(1).numpy()
        count = int((classes == c).sum())
        picks.append(rng.choice(members, size=count, replace=count > len(members)))
    fresh_idx = torch.from_numpy(np.concatenate(picks)) if picks else torch.zeros(0, dtype=torch.long)
    copy_idx = torch.from_numpy(rng.choice(len(pools.copy_dist[copy_kind]), size=n_copy, replace=n_copy > len(pools.copy_dist[copy_kind])))
    dist = torch.cat([pools.fresh_dist[fresh_idx], pools.copy_dist[copy_kind][copy_idx]])
    labels = torch.cat([pools.fresh_pred[fresh_idx], pools.copy_pred[copy_kind][copy_idx]])
    return dist, labels, n_copy


def verdicts(
    pools: Pools, dist: torch.Tensor, labels: torch.Tensor, level: float = 0.01, quantile: float = 0.01, seed: int = 0, stratify: bool = True
) -> tuple[dict, dict]:
    """(copy test, mode test) of one resampled generator, as ``gan-suite evaluate`` runs them
    (the copy test per classifier class unless ``stratify`` is False)."""
    groups = {"generated_groups": labels, "null_groups": pools.null_pred} if stratify else {}
    copies = copy_test(dist, pools.null, quantile=quantile, level=level, seed=seed, **groups)
    modes = mode_coverage_test(
        torch.bincount(labels, minlength=pools.num_classes), reference_counts=pools.reference_counts, level=level, seed=seed
    )
    return copies, modes
