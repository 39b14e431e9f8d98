"""Gaussian Parzen-window log-likelihood (Goodfellow et al. 2014, Table 1).

A Gaussian kernel density with an isotropic bandwidth sigma is fit on N generated samples
mu_i [D] (pixels in [0, 1]); the log-density of a point x is
    log p(x) = logsumexp_i( -||x - mu_i||^2 / (2 sigma^2) ) - log N - D/2 log(2 pi sigma^2).
sigma is the value of a grid that maximises the mean log-density of a validation set; the
estimate is the mean log-density of the test points with its standard error over them
(std / sqrt(M)).

Hand-written because no library in the stack evaluates a kernel density on 10,000 x 10,000 points
of 784 dimensions within memory (scipy.stats.gaussian_kde estimates a full covariance and holds
the whole N x M matrix; sklearn's KernelDensity walks a tree, slow in high dimension). Here the
squared distances of one block of query points to all samples are one GEMM (float64, via
:func:`~gan_suite.evaluation.metrics.knn.pairwise_sq_dists`), and every sigma of the grid reuses
that block: a whole grid costs one pass over the distances.

Caveat (Theis et al. 2016, "A note on the evaluation of generative models"): Parzen estimates in
high dimension are high-variance, need far more samples than anyone draws to converge, and can
rank a model that memorises or blurs above a good one; they are reported here only to place a
run beside the published numbers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from tqdm.auto import tqdm

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_features
from gan_suite.evaluation.metrics.knn import pairwise_sq_dists
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric

#: Goodfellow et al.'s bandwidth grid: 10 values log-spaced over [0.1, 1]
DEFAULT_SIGMAS = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))
DEFAULT_CHUNK_BYTES = 64 * 2**20  # one block of the [queries, samples] distance matrix


def parzen_log_density(
    samples: torch.Tensor,
    points: torch.Tensor,
    sigmas: Sequence[float],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: bool = False,
) -> torch.Tensor:
    """Log-density of each point under the Parzen window on ``samples``, for every bandwidth.

    Args:
        samples: [N, D] kernel centres (generated samples, pixels in [0, 1]).
        points: [M, D] points to evaluate.
        sigmas: S bandwidths > 0.
        chunk_bytes: memory of one block of float64 exponents (S x rows of points x all N samples).

    Returns:
        [S, M] float64 log-densities in nats.
    """
    check_features(samples, points, min_rows=1, what="Parzen inputs")
    sig = torch.as_tensor(list(sigmas), dtype=torch.float64)
    if sig.numel() == 0 or not bool((sig > 0).all()):
        raise ConfigError(f"Parzen bandwidths must be > 0, got {list(sigmas)}")
    samples = samples.to(torch.float64)
    points = points.to(device=samples.device, dtype=torch.float64)
    n, dim = samples.shape
    rows = max(1, chunk_bytes // (8 * n * sig.numel()))  # the exponent block is [S, rows, N]
    inv_two_var = (0.5 / sig**2).to(samples.device)[:, None, None]  # [S, 1, 1]
    const = (-math.log(n) - 0.5 * dim * torch.log(2 * math.pi * sig**2)).to(samples.device)[:, None]  # [S, 1]
    out = []
    for block in tqdm(points.split(rows), desc="Parzen", unit="block", disable=not progress, leave=False):
        d2 = pairwise_sq_dists(block, samples)  # [b, N]
        out.append(torch.logsumexp(-d2.unsqueeze(0) * inv_two_var, dim=2) + const)  # [S, b]
    return torch.cat(out, dim=1).cpu()


def parzen_log_likelihood(
    samples: torch.Tensor,
    validation: torch.Tensor,
    test: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: bool = False,
) -> dict:
    """Goodfellow et al.'s protocol: sigma chosen on ``validation``, estimate on ``test``.

    Args:
        samples: [N, D] generated samples (pixels in [0, 1]).
        validation: [V, D] real points that choose sigma (mean log-density over the grid).
        test: [M, D] real points the estimate is reported on.
        sigmas: the bandwidth grid (default: 10 values log-spaced over [0.1, 1]).

    Returns:
        {'parzen_ll': mean log-density of the test points (nats), 'parzen_ll_se': its standard
        error (std / sqrt(M)), 'parzen_sigma': the chosen sigma, 'parzen_sigma_on_edge': True when
        it is the smallest or largest of the grid, 'parzen_n_samples': N, 'parzen_n_validation':
        V, 'parzen_n_test': M, 'parzen_validation_ll': {sigma: mean validation log-density}}.
    """
    sigmas = [float(s) for s in sigmas]
    val = parzen_log_density(samples, validation, sigmas, chunk_bytes, progress).mean(dim=1)  # [S]
    best = int(torch.argmax(val))
    sigma = sigmas[best]
    ll = parzen_log_density(samples, test, [sigma], chunk_bytes, progress)[0]  # [M]
    se = float(ll.std(unbiased=True) / math.sqrt(len(ll))) if len(ll) > 1 else float("nan")
    return {
        "parzen_ll": float(ll.mean()),
        "parzen_ll_se": se,
        "parzen_sigma": sigma,
        "parzen_sigma_on_edge": best in (0, len(sigmas) - 1) and len(sigmas) > 1,
        "parzen_n_samples": int(samples.shape[0]),
        "parzen_n_validation": int(validation.shape[0]),
        "parzen_n_test": int(ll.shape[0]),
        "parzen_validation_ll": {f"{s:.4g}": float(v) for s, v in zip(sigmas, val)},
    }


def unit_range_pixels(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> flattened pixels [N, C*H*W] float64 in [0, 1]."""
    return images.to(torch.float64).add(1.0).mul(0.5).clamp(0.0, 1.0).flatten(1)


def validation_test_split(n: int) -> tuple[slice, slice]:
    """The held-out split's first half chooses sigma, the second half is the test set."""
    if n < 2:
        raise ConfigError(f"Parzen needs at least 2 held-out images (validation and test), got {n}")
    return slice(0, n // 2), slice(n // 2, n)


@register_metric(
    "parzen",
    outputs=[
        Output("parzen_ll", True, "Parzen LL (nats)"),
        Output("parzen_ll_se", None, "Parzen LL s.e."),
        Output("parzen_sigma", None, "Parzen sigma"),
        Output("parzen_sigma_on_edge", None, "Parzen sigma on grid edge"),
        Output("parzen_n_samples", None, "Parzen N generated"),
        Output("parzen_n_validation", None, "Parzen N validation"),
        Output("parzen_n_test", None, "Parzen N test"),
        Output("parzen_validation_ll", None, "Parzen LL by sigma (validation)"),
    ],
    needs={"heldout", "pixels"},
    default_when=lambda ctx: False,  # opt-in: --metrics parzen
    description="Gaussian Parzen-window log-likelihood in pixel space (Goodfellow et al. 2014; "
    "unreliable in high dimension: Theis et al. 2016)",
    bootstrap="its standard error over the test half of the held-out split is parzen_ll_se; each resample would repeat the whole sigma search",
)
def _parzen_metric(inputs: MetricInputs) -> dict:
    fake, real = getattr(inputs.fake, "pixels", None), getattr(inputs.heldout, "pixels", None)
    if fake is None or real is None:
        inputs.note("parzen skipped: needs images (pixels) of the generated samples and of the held-out split")
        return {}
    real_px = unit_range_pixels(real)
    val, test = validation_test_split(len(real_px))
    return parzen_log_likelihood(
        unit_range_pixels(fake), real_px[val], real_px[test],
        sigmas=inputs.option("parzen_sigmas", DEFAULT_SIGMAS), progress=inputs.option("progress", False),
    )
