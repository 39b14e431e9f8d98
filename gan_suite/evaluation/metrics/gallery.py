"""The copy gallery: the generated samples closest to the training set, each beside its nearest
training images, with their calibrated scores; and as many random samples for contrast.

One row per sample: the sample | its ``n_neighbours`` nearest training images (by the copy
test's shift-tolerant distance, nearest first) | a caption with the rank, the calibrated score
(the share of held-out real images at least as close to the training set, a p-value: small is
suspicious) and the distance. Images are upscaled by an integer factor to at least
``MIN_TILE`` pixels. Drawn with Pillow (torchvision's make_grid cannot caption).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.copy_detection import shifted_variants

#: smallest side of a shown image in pixels (small images are upscaled by an integer factor)
MIN_TILE = 84
GAP = 6
CAPTION_WIDTH = 230
HEADER = 22
SEPARATOR_RGB = (200, 30, 30)


def rank_by_suspicion(scores: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Sample indices [M], most suspicious first: by calibrated score, ties by distance."""
    return torch.from_numpy(np.lexsort((distances.double().cpu().numpy(), scores.double().cpu().numpy())).copy())


def _tile(x: torch.Tensor, scale: int) -> Image.Image:
    """[C, h, w] in [-1, 1] -> an RGB PIL image upscaled ``scale`` times (nearest)."""
    img = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    pil = Image.fromarray(img.permute(1, 2, 0).contiguous().numpy(), "RGB")
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)


@torch.no_grad()
def nearest_training_images(samples: torch.Tensor, train: torch.Tensor, k: int, max_shift: int, flips: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Exhaustive shift-tolerant k nearest training images of a few samples [S, C, h, w]:
    (distances [S, k] RMS per pixel value, indices [S, k])."""
    shifted = shifted_variants(samples.float(), max_shift, flips)  # [S, V, D]
    flat = train.float().flatten(1)  # [T, D]
    d2 = (shifted.square().sum(-1, keepdim=True) - 2 * shifted @ flat.T + flat.square().sum(-1)).clamp_(min=0)
    best = d2.min(1).values  # [S, T]
    d, idx = best.topk(min(k, flat.shape[0]), dim=1, largest=False)
    return (d / flat.shape[1]).sqrt(), idx


def copy_gallery(
    gen_pixels: torch.Tensor,
    scores: torch.Tensor,
    distances: torch.Tensor,
    train_pixels: torch.Tensor,
    path: str | Path,
    rows: int = 8,
    n_neighbours: int = 3,
    max_shift: int = 2,
    flips: bool = False,
    seed: int = 0,
    title: Optional[str] = None,
) -> Path:
    """Write the gallery PNG and return its path.

    Args:
        gen_pixels: [M, C, h, w] generated images in [-1, 1] (copy space).
        scores: [M] calibrated scores (small = suspicious), ranked ascending, ties by distance.
        distances: [M] distance of each sample to its nearest training image.
        train_pixels: [T, C, h, w] training images in [-1, 1], same size.
        rows: suspicious samples shown (and as many random ones).
    """
    if gen_pixels.dim() != 4 or gen_pixels.shape[1:] != train_pixels.shape[1:]:
        raise ConfigError(
            f"gallery: generated and training images must be [N, C, h, w] of one size, got "
            f"{tuple(gen_pixels.shape)} and {tuple(train_pixels.shape)}"
        )
    m = gen_pixels.shape[0]
    rows = min(rows, m)
    order = rank_by_suspicion(scores, distances).tolist()
    suspicious = order[:rows]
    rank_of = {i: r for r, i in enumerate(order)}
    random_rows = torch.randperm(m, generator=torch.Generator().manual_seed(seed))[:rows].tolist()
    h, w = gen_pixels.shape[-2:]
    scale = max(1, -(-MIN_TILE // max(h, w)))
    th, tw = h * scale, w * scale
    row_h = th + GAP
    width = GAP + tw + 3 * GAP + n_neighbours * (tw + GAP) + CAPTION_WIDTH
    height = 2 * (HEADER + rows * row_h) + GAP + (HEADER if title else 0)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = GAP
    if title:
        draw.text((GAP, y), title, fill="black")
        y += HEADER
    for heading, picks in (
        (f"{rows} most suspicious samples (lowest calibrated score) | nearest training images", suspicious),
        (f"{rows} random samples, for contrast | nearest training images", random_rows),
    ):
        draw.text((GAP, y + 4), heading, fill="black")
        y += HEADER
        picked = gen_pixels[picks]
        nn_d, nn_idx = nearest_training_images(picked, train_pixels, n_neighbours, max_shift, flips)
        for row, i in enumerate(picks):
            x = GAP
            canvas.paste(_tile(gen_pixels[i], scale), (x, y))
            x += tw + GAP
            draw.rectangle([x, y, x + GAP - 2, y + th - 1], fill=SEPARATOR_RGB)
            x += 2 * GAP
            for j in range(nn_idx.shape[1]):
                canvas.paste(_tile(train_pixels[nn_idx[row, j]], scale), (x, y))
                x += tw + GAP
            caption = (
                f"rank {rank_of[i] + 1} of {m}\n"
                f"score p = {float(scores[i]):.4f}\n"
                f"distance {float(distances[i]):.3f}\n"
                f"neighbours {', '.join(f'{float(v):.3f}' for v in nn_d[row])}"
            )
            draw.multiline_text((x + GAP, y + 4), caption, fill="black", spacing=3)
            y += row_h
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
