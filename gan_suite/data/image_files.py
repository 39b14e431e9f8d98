"""Image files decoded on demand, a whole batch per call (for datasets too large to hold in memory).

Each file is decoded with PIL, centre-cropped to a square and resized (antialiased bilinear) to
``image_size``; a batch comes back as float32 [B, C, S, S] in [-1, 1] with int64 labels [B].
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from gan_suite.data.base import uint8_to_unit_range
from gan_suite.errors import ConfigError, DataUnavailableError

#: file endings recognised as images (compared in lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_image_files(folder: str) -> list[str]:
    """Sorted paths of all image files under ``folder`` (recursive; hidden files and folders skipped)."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(current, name))
    return sorted(found)


def unreadable_images(paths: Sequence[str]) -> list[tuple[str, str]]:
    """(path, reason) of the files PIL cannot open or whose structure is broken (e.g. a truncated PNG).

    Uses ``Image.verify`` (structure and checksums, no decoding: about 0.1 ms for a 64 px PNG);
    it catches truncated or damaged PNGs, while a damaged JPEG body may pass and fail later at decoding.
    """
    from PIL import Image

    bad = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception as err:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ...
            bad.append((path, f"{type(err).__name__}: {' '.join(str(err).split())}"))
    return bad


def decode_square(path: str, image_size: int, channels: int = 3, crop: Optional[int] = None) -> np.ndarray:
    """One image file as uint8 [C, S, S].

    Args:
        path: image file.
        image_size: side S of the output.
        channels: 1 (grayscale) or 3 (RGB).
        crop: side of the centred square cut out before resizing; None (or larger than the image)
            takes the largest centred square.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            side = min(w, h) if crop is None else min(crop, w, h)
            # same rounding as torchvision's CenterCrop
            left, top = int(round((w - side) / 2.0)), int(round((h - side) / 2.0))
            # crop, then resize: resize(box=...) would let the filter reach pixels outside the crop
            img = img.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BILINEAR)
            array = np.array(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataUnavailableError(f"cannot decode image {path}: {' '.join(str(err).split())}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


class ImageFileDataset(Dataset):
    """Image files decoded lazily; ``__getitems__`` decodes one batch (so DataLoader workers help).

    Args:
        paths: image files, one per sample.
        image_size: side S of the square output images.
        channels: 1 or 3.
        crop: side of the centred square cut before resizing (None: the largest one).
        labels: int64 [N] or None (then -1 is returned).
    """

    def __init__(
        self,
        paths: Sequence[str],
        image_size: int,
        channels: int = 3,
        crop: Optional[int] = None,
        labels: Optional[torch.Tensor] = None,
    ) -> None:
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        # a numpy string array, not a list: no per-item refcounts touched in forked workers
        self.paths = np.asarray(list(paths), dtype=str)
        self.image_size = image_size
        self.channels = channels
        self.crop = crop
        self.labels = labels if labels is not None else torch.full((len(self.paths),), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.paths)

    def load_uint8(self, indices: Sequence[int]) -> torch.Tensor:
        """The images at ``indices`` as uint8 [B, C, S, S]."""
        out = np.empty((len(indices), self.channels, self.image_size, self.image_size), dtype=np.uint8)
        for row, i in enumerate(indices):
            out[row] = decode_square(str(self.paths[int(i)]), self.image_size, self.channels, self.crop)
        return torch.from_numpy(out)

    def __getitem__(self, index: int):
        return uint8_to_unit_range(self.load_uint8([index])[0]), self.labels[index]

    def __getitems__(self, indices: Sequence[int]):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return uint8_to_unit_range(self.load_uint8(idx.tolist())), self.labels[idx]
