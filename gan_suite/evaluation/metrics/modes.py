"""Mode-collapse metrics: Gaussian mixtures in 2-D (VEEGAN protocol as run by PacGAN) and
labelled data (classes as modes, e.g. 1000-class Stacked MNIST).

Mixtures (PacGAN's MetricLogger, isotropic modes with one std):
  * each sample is assigned to its nearest mode centre;
  * it is high quality if that distance is < n_std * std (strictly; n_std = 3);
  * a mode is covered if at least one high-quality sample is assigned to it;
  * the reverse KL is KL(p_gen || p_data) = sum_i p_i log(p_i / (1/M)), where p is the histogram
    of the high-quality samples over the M modes (normalised over high-quality samples only) and
    p_data the uniform mixture. Empty bins contribute 0 (0 log 0 = 0), so KL is finite, between
    0 (uniform over all modes) and log M (every high-quality sample at one mode). With no
    high-quality sample the histogram is undefined and the KL is NaN.
Labels: the same KL(p_gen || p_data) over class histograms (0 log 0 = 0; a class generated but
absent from the data gives +inf); modes covered = classes with at least one generated sample.
Hand-written: neither torch-fidelity nor torchmetrics has these.
"""

from __future__ import annotations

import math

import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_features, check_finite
from gan_suite.evaluation.metrics.knn import knn


def ring8_modes(radius: float = 1.0, std: float = 0.01) -> tuple[torch.Tensor, float]:
    """The ring: 8 modes at (r cos 2 pi i/8, r sin 2 pi i/8), std 0.01. Returns (centres [8, 2], std)."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([radius * angles.cos(), radius * angles.sin()], 1).float(), std


def grid25_modes(spacing: float = 2.0, std: float = 0.05) -> tuple[torch.Tensor, float]:
    """The grid: 25 modes at {-4, -2, 0, 2, 4}^2, std 0.05. Returns (centres [25, 2], std)."""
    ticks = (torch.arange(5, dtype=torch.float32) - 2) * spacing
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1), std


def _kl(p_counts: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) for counts p [K] (normalised here) and probabilities q [K]; 0 log 0 = 0."""
    p = p_counts.double() / p_counts.sum()
    q = q.double().to(p.device)
    nz = p > 0
    if bool((q[nz] <= 0).any()):
        return math.inf
    return float((p[nz] * (p[nz] / q[nz]).log()).sum())


def mixture_mode_metrics(
    samples: torch.Tensor, centres: torch.Tensor, std: float, n_std: float = 3.0
) -> dict[str, float | int | torch.Tensor]:
    """Mode coverage of samples [N, D] from a mixture of isotropic Gaussians at centres [M, D].

    Returns {'modes_covered': int, 'high_quality': share of high-quality samples in [0, 1],
    'kl': reverse KL against the uniform mixture (NaN without high-quality samples),
    'histogram': int64 [M] high-quality samples per mode}.
    """
    check_features(samples, min_rows=1, what="samples")
    check_features(centres, samples, min_rows=1, what="mode centres")
    dist, idx = knn(samples, centres.to(samples.device), 1)
    good = dist[:, 0] < n_std * std
    hist = torch.bincount(idx[good, 0], minlength=centres.shape[0]).cpu()
    n_good = int(hist.sum())
    kl = _kl(hist, torch.full((centres.shape[0],), 1.0 / centres.shape[0])) if n_good else math.nan
    return {
        "modes_covered": int((hist > 0).sum()),
        "high_quality": n_good / samples.shape[0],
        "kl": kl,
        "histogram": hist,
    }


def label_mode_metrics(
    gen_labels: torch.Tensor,
    num_classes: int,
    data_labels: torch.Tensor | None = None,
    data_hist: torch.Tensor | None = None,
) -> dict[str, float | int]:
    """Modes covered and KL(generated label histogram || data label histogram).

    Args:
        gen_labels: [N] int class of each generated sample (e.g. from a pretrained classifier).
        num_classes: number of classes (1000 for Stacked MNIST).
        data_labels: [L] int labels of real data, or
        data_hist: [num_classes] counts or probabilities of the real classes;
            neither: uniform over num_classes (the Stacked MNIST protocol).

    Returns {'modes_covered': classes with >= 1 generated sample, 'kl': float}.
    """
    if data_labels is not None and data_hist is not None:
        raise ConfigError("give data_labels or data_hist, not both")
    hist = _histogram(gen_labels, num_classes, "generated labels")
    if data_labels is not None:
        q = _histogram(data_labels, num_classes, "data labels").double()
    elif data_hist is not None:
        q = data_hist.detach().double().cpu()
        check_finite(q, "data histogram")
        if q.shape != (num_classes,) or bool((q < 0).any()) or float(q.sum()) <= 0:
            raise ConfigError(f"data_hist must be [{num_classes}] non-negative with a positive sum")
    else:
        q = torch.ones(num_classes, dtype=torch.float64)
    return {"modes_covered": int((hist > 0).sum()), "kl": _kl(hist, q / q.sum())}


def _histogram(labels: torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    labels = labels.detach().cpu().reshape(-1)
    if labels.numel() == 0 or labels.is_floating_point() or labels.is_complex():
        raise ConfigError(f"{what} must be a non-empty integer tensor")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ConfigError(f"{what} must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    return torch.bincount(labels.long(), minlength=num_classes)


def mode_collapse_flagged(
    modes_covered: int, num_modes: int, kl: float, min_coverage: float = 0.8, max_kl: float = 0.5
) -> bool:
    """Rule: collapse if fewer than ``min_coverage`` * num_modes modes are covered (default 80%:
    6.4 of 8 ring modes, 20 of 25 grid modes, 800 of 1000 Stacked MNIST classes), or the KL
    exceeds ``max_kl`` (default 0.5 nats, above PacGAN's GAN rows on the ring, 0.45, and far
    below DCGAN on Stacked MNIST, 3.4), or the KL is NaN (no high-quality sample)."""
    return bool(modes_covered < min_coverage * num_modes or not kl <= max_kl)
