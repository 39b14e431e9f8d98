"""Per-sample copy detection, calibrated on held-out real data.

The question is "does the generator output (near-)copies of some training images?", asked of
every sample, not of the set on average (a set-level statistic such as C_T hides a small share
of copies among fresh samples).

1. Distance. ``tolerant_nn_distance`` gives each image its distance to the nearest training
   image, minimised over small translations (every shift of up to ``max_shift`` pixels in each
   direction, the vacated border filled by replicating the edge) and, where flips are natural,
   horizontal flips. Images larger than ``COPY_SPACE_MAX_SIDE`` pixels are first reduced to that
   side by area averaging (``copy_space``), so a shift of ``max_shift`` there is
   ``max_shift * side / 32`` original pixels. Distances are RMS differences per pixel value
   in [-1, 1] units (the L2 distance / sqrt(C h w)).
   Exhaustive search over shifts costs (2s+1)^2 k-NN searches; instead each query is compared
   exactly (all shifts) with a short list of candidates: its ``candidates`` nearest training
   images after a Gaussian blur (close in pixel space) and its ``candidates`` nearest by the
   magnitude of the 2-D Fourier transform, which does not change when an image is translated
   (shifted copies); with flips, the same for the flipped query. The procedure is a fixed function of (query, training set), applied alike
   to generated and held-out images, so the calibration below stays exact.
   Tolerated: additive pixel noise well below the null quantile (std 0.05 moves an MNIST digit
   by ~0.05 RMS, against ~0.12 for the 1% quantile of real held-out digits), shifts up to
   ``max_shift`` pixels, horizontal flips when ``flips=True``. Not tolerated: rotations, scaling,
   larger shifts, colour changes, crops, and copies of parts of an image (a copied face on a
   new background).
2. Calibration. The same distance for real held-out images (never trained on) is the null. The
   threshold is the r-th smallest held-out distance, r = max(1, round(q (n + 1))) for the
   quantile q (default 0.01), and the *copy rate* is the share of generated samples strictly
   below it. When generated and held-out samples come from one distribution, the threshold sits
   at level U ~ Beta(r, n - r + 1) of their common distance distribution, so the number K of
   generated samples below it is exactly Beta-Binomial(M, r, n - r + 1): the one-sided p-value
   P(K' >= K) comes from ``scipy.stats.betabinom``, with no approximation. The expected rate
   is r / (n + 1).
3. Estimate and interval. If a share c of the samples are copies closer than the threshold and
   the rest are fresh, the rate is R = c + (1 - c) U, so c = (R - U) / (1 - U). The estimate
   uses U = r / (n + 1); its 95% interval takes the 2.5 and 97.5 percentiles of
   (R* - U*) / (1 - U*) over 10,000 draws of U* ~ Beta(r, n - r + 1) and
   R* ~ Binomial(M, R) / M (seeded).
   Power: the null spread of the rate is about sqrt(q / n), so with n = 500 held-out images
   and q = 0.01 a copy share of ~2-3% is the smallest that a 1% test detects reliably, whatever
   M; with n = 5,000 it is under 1%. ``benchmarks/evaluation/power_curve.py`` measures it.
4. Groups. When the samples carry class labels (a classifier's, for labelled data), each class
   is tested against the held-out images of its own class and the counts are summed (their
   exact law is the convolution of the per-class Beta-Binomials): some classes sit much closer
   to their training images than others (MNIST ones), and without this a generator that
   favours them would read as a copier. With 50 held-out images per class the per-class
   threshold is the smallest held-out distance (expected rate 1/51).
5. No held-out data: the null is the leave-one-out distance of each training image to the
   other training images (a fresh image's distance to L training images and a training
   image's distance to the L - 1 others are exchangeable up to one reference image). Training
   sets that hold near-duplicates make this null smaller, so the test becomes conservative.

Hand-written: no metrics library has a per-sample, shift-tolerant, calibrated copy test.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import betabinom

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_finite
from gan_suite.evaluation.metrics.knn import knn

#: images with a larger side are area-reduced to this side before the pixel-space copy test
COPY_SPACE_MAX_SIDE = 32
#: blur of the candidate search in pixels (std of the Gaussian)
CANDIDATE_BLUR = 1.0
#: draws of the interval's Monte-Carlo
INTERVAL_DRAWS = 10_000


def copy_space(images: torch.Tensor, max_side: int = COPY_SPACE_MAX_SIDE) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> the float16 images the copy test compares,
    [N, C, h, w] with max(h, w) <= max_side (area-averaged when larger)."""
    if images.dim() != 4:
        raise ConfigError(f"copy detection needs images [N, C, H, W], got shape {tuple(images.shape)}")
    x = images.detach().float()
    side = max(x.shape[-2:])
    if side > max_side:
        size = (max(1, round(x.shape[-2] * max_side / side)), max(1, round(x.shape[-1] * max_side / side)))
        x = F.adaptive_avg_pool2d(x, size)
    return x.to(torch.float16).cpu()


def _blur(x: torch.Tensor, sigma: float = CANDIDATE_BLUR) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype) ** 2 / (2 * sigma**2))
    k = (k / k.sum()).to(x.device)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _fourier_magnitude(x: torch.Tensor, pad: int) -> torch.Tensor:
    """|FFT2| of the edge-padded images, flattened: unchanged by translations within the padding."""
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    padded = padded - padded.mean(dim=(-2, -1), keepdim=True)
    return torch.fft.rfft2(padded, norm="ortho").abs().flatten(1)


def shifted_variants(x: torch.Tensor, max_shift: int, flips: bool) -> torch.Tensor:
    """Every shift (and flip) of images [B, C, H, W]: [B, S, C*H*W], S = (2s+1)^2 (x2 with flips)."""
    h, w = x.shape[-2:]
    s = max_shift
    variants = [x, x.flip(-1)] if flips else [x]
    out = []
    for v in variants:
        padded = F.pad(v, (s, s, s, s), mode="replicate") if s > 0 else v
        for dy in range(2 * s + 1):
            for dx in range(2 * s + 1):
                out.append(padded[..., dy : dy + h, dx : dx + w])
    return torch.stack(out, 1).flatten(2)


def _descriptors(x: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two candidate-search descriptors of images [N, C, h, w]: blurred pixels, |FFT|."""
    return _blur(x).flatten(1), _fourier_magnitude(x, pad)


def _candidates(query_desc, ref_desc, k: int, exclude_self: bool) -> torch.Tensor:
    """Indices [Q, 2k'] of candidate references: the nearest by each descriptor."""
    kk = min(k + int(exclude_self), ref_desc[0].shape[0])
    return torch.cat([knn(q, r, kk)[1] for q, r in zip(query_desc, ref_desc)], 1)


@torch.no_grad()
def tolerant_nn_distance(
    queries: torch.Tensor,
    refs: torch.Tensor,
    max_shift: int = 2,
    flips: bool = False,
    candidates: int = 16,
    exclude_self: bool = False,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's distance to its nearest reference, minimised over shifts (and flips).

    Args:
        queries: [Q, C, h, w] images in [-1, 1] (e.g. from :func:`copy_space`).
        refs: [R, C, h, w] training images, same size.
        max_shift: largest translation tried, in pixels, in each direction.
        flips: also try the horizontally flipped query.
        candidates: references per candidate list (two lists, four with flips) compared exactly.
        exclude_self: ``queries`` is ``refs``: skip each image's own index (leave-one-out).

    Returns:
        (distance [Q] float32, RMS per pixel value; index [Q] int64 of the nearest reference).
    """
    if queries.dim() != 4 or refs.dim() != 4 or queries.shape[1:] != refs.shape[1:]:
        raise ConfigError(
            f"copy detection needs query and training images of one size, got {tuple(queries.shape)} and {tuple(refs.shape)}"
        )
    if refs.shape[0] < 1 + int(exclude_self):
        raise ConfigError("copy detection needs at least 2 training images")
    q_all, r_all = queries.float(), refs.float()
    check_finite(q_all, "images")
    dim = q_all[0].numel()
    dist = torch.empty(q_all.shape[0])
    nearest = torch.empty(q_all.shape[0], dtype=torch.long)
    r_flat = r_all.flatten(1)
    ref_desc = _descriptors(r_all, max_shift)
    for lo in range(0, q_all.shape[0], batch_size):
        q = q_all[lo : lo + batch_size]
        variants = [q, q.flip(-1)] if flips else [q]
        cand = torch.cat([_candidates(_descriptors(v, max_shift), ref_desc, candidates, exclude_self) for v in variants], 1)
        if exclude_self:
            own = torch.arange(lo, lo + q.shape[0]).unsqueeze(1)
            cand = torch.where(cand == own, -1, cand)
        shifted = shifted_variants(q, max_shift, flips)  # [B, S, D]
        refs_c = r_flat[cand.clamp(min=0)]  # [B, k2, D]
        # squared distances by expansion, clamped: exact copies land at ~0, never below
        d2 = (shifted.square().sum(-1, keepdim=True) - 2 * shifted @ refs_c.transpose(1, 2) + refs_c.square().sum(-1).unsqueeze(1)).clamp_(min=0)
        d2 = d2.min(1).values.masked_fill_(cand < 0, math.inf)  # [B, k2]
        best, which = d2.min(1)
        dist[lo : lo + q.shape[0]] = (best / dim).sqrt()
        nearest[lo : lo + q.shape[0]] = cand.gather(1, which.unsqueeze(1)).squeeze(1)
    return dist, nearest


def null_rank(n_null: int, quantile: float) -> int:
    """r = max(1, round(quantile (n + 1))): the threshold is the r-th smallest null distance."""
    if n_null < 1:
        raise ConfigError("the copy test needs at least one null distance")
    if not 0 < quantile < 1:
        raise ConfigError(f"copy_quantile must lie in (0, 1), got {quantile}")
    return min(n_null, max(1, round(quantile * (n_null + 1))))


def _groups(groups: Optional[torch.Tensor], size: int) -> np.ndarray:
    if groups is None:
        return np.zeros(size, dtype=np.int64)
    g = groups.detach().cpu().numpy().reshape(-1)
    if len(g) != size:
        raise ConfigError(f"copy test: {len(g)} group labels for {size} distances")
    return g.astype(np.int64)


def copy_test(
    generated: torch.Tensor,
    null: torch.Tensor,
    quantile: float = 0.01,
    level: float = 0.01,
    seed: int = 0,
    generated_groups: Optional[torch.Tensor] = None,
    null_groups: Optional[torch.Tensor] = None,
) -> dict:
    """Calibrated copy test of generated distances [M] against null distances [n] (see module).

    With group labels ([M] and [n] ints, e.g. a classifier's classes), each group is judged
    against the null of its own group (some classes sit closer to the training set than others,
    so a generator that favours them is not taken for a copier): per group the count below the
    group's threshold is Beta-Binomial, and the total's exact law is their convolution.
    Generated samples of a group without null samples are left out (``n_untested``).

    Returns {'copy_rate', 'copy_rate_null' (expected under no copying), 'copy_excess'
    (estimated share of copies), 'copy_excess_ci' [lo, hi] (95%), 'copy_p_value',
    'copy_threshold' (distance; per group: {group: distance}), 'copy_quantile',
    'n_generated', 'n_null', 'n_untested', 'stratified', 'copying_flagged' (p < level)}.
    """
    gen = generated.detach().double().cpu().numpy().reshape(-1)
    ref = null.detach().double().cpu().numpy().reshape(-1)
    gen_g, ref_g = _groups(generated_groups, len(gen)), _groups(null_groups, len(ref))
    if len(gen) < 1:
        raise ConfigError("the copy test needs at least one generated sample")
    null_rank(len(ref), quantile)  # checks the arguments
    pmf = np.ones(1)
    k = m = 0
    expected_count = 0.0
    shapes, thresholds = [], {}
    for group in np.unique(gen_g):
        in_null = np.sort(ref[ref_g == group])
        if len(in_null) == 0:
            continue
        g_dist = gen[gen_g == group]
        r = null_rank(len(in_null), quantile)
        a, b, m_g = r, len(in_null) - r + 1, len(g_dist)
        thresholds[int(group)] = float(in_null[r - 1])
        k += int((g_dist < in_null[r - 1]).sum())
        m += m_g
        expected_count += m_g * r / (len(in_null) + 1)
        shapes.append((a, b, m_g))
        pmf = np.convolve(pmf, betabinom.pmf(np.arange(m_g + 1), m_g, a, b))
    if m == 0:
        raise ConfigError("the copy test: no generated sample has null samples of its group")
    p_value = float(min(1.0, pmf[k:].sum()))
    expected = expected_count / m
    rate = k / m
    rng = np.random.default_rng(seed)
    u = sum(m_g * rng.beta(a, b, INTERVAL_DRAWS) for a, b, m_g in shapes) / m
    rates = rng.binomial(m, rate, INTERVAL_DRAWS) / m
    draws = (rates - u) / (1 - u)
    stratified = generated_groups is not None
    return {
        "copy_rate": rate,
        "copy_rate_null": expected,
        "copy_excess": (rate - expected) / (1 - expected),
        "copy_excess_ci": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
        "copy_p_value": p_value,
        "copy_threshold": thresholds if stratified else thresholds[0],
        "copy_quantile": quantile,
        "n_generated": m,
        "n_null": len(ref),
        "n_untested": len(gen) - m,
        "stratified": stratified,
        "copying_flagged": bool(p_value < level),
    }


def copy_scores(
    generated: torch.Tensor,
    null: torch.Tensor,
    generated_groups: Optional[torch.Tensor] = None,
    null_groups: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Calibrated suspicion of each generated distance [M]: (1 + #null distances <= d) / (n + 1),
    the one-sided p-value of 'this sample is as close as a fresh one would be', within its group
    when groups are given (the whole null for a group without null samples). [M] float64, small =
    suspicious."""
    gen = generated.detach().double().cpu()
    ref = null.detach().double().cpu()
    gen_g, ref_g = _groups(generated_groups, len(gen)), _groups(null_groups, len(ref))
    scores = torch.empty(len(gen), dtype=torch.float64)
    for group in np.unique(gen_g):
        rows = torch.from_numpy(gen_g == group)
        in_null = ref[torch.from_numpy(ref_g == group)]
        pool = torch.sort(in_null if len(in_null) else ref).values
        scores[rows] = (torch.searchsorted(pool, gen[rows], right=True) + 1).double() / (len(pool) + 1)
    return scores


def leave_one_out_null(train_pixels: torch.Tensor, max_shift: int, flips: bool, limit: Optional[int] = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Null distances without held-out data: ``limit`` training images (all when None), each
    against the other training images. Returns (distances [k], the images' indices [k]),
    k = min(limit, L)."""
    idx = torch.arange(train_pixels.shape[0])
    if limit is not None and len(idx) > limit:
        idx = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    # put the chosen images first so that exclude_self's index test lines up
    rest = torch.ones(train_pixels.shape[0], dtype=torch.bool)
    rest[idx] = False
    order = torch.cat([idx, rest.nonzero().squeeze(1)])
    reordered = train_pixels[order]
    dist, _ = tolerant_nn_distance(reordered[: len(idx)], reordered, max_shift=max_shift, flips=flips, exclude_self=True)
    return dist, idx
