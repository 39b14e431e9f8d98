"""Any folder of images (LSUN or FFHQ exports, own data): centre square crop, resize, decoded lazily.

All files with the endings in :data:`gan_suite.data.image_files.IMAGE_EXTENSIONS` under ``path``
(recursive) are used. The folder is checked once up front (:func:`~gan_suite.data.image_files.unreadable_images`):
a file that cannot be read (e.g. a truncated PNG) is skipped with a warning naming it, and a last
warning gives the count; a folder where nothing is readable is an error. A fixed fraction is held
out for evaluation, chosen by ``split_seed`` over the sorted list of readable files, so it stays the same across training seeds and machines.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import torch

from gan_suite.data.base import GANDataModule
from gan_suite.data.image_files import IMAGE_EXTENSIONS, ImageFileDataset, list_image_files, unreadable_images
from gan_suite.errors import ConfigError, DataUnavailableError


def heldout_indices(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Boolean [n]: the held-out files, ``round(fraction * n)`` of them (at least 1 if n > 1 and fraction > 0)."""
    count = int(round(fraction * n))
    if fraction > 0 and n > 1:
        count = min(max(count, 1), n - 1)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count]] = True
    return mask


class ImageFolder(GANDataModule):
    """Images of a folder as C x S x S in [-1, 1], labels -1 (unlabelled).

    Args:
        path: folder searched recursively for png/jpg/jpeg/webp/bmp files.
        image_size: side S of the square images.
        channels: 3 (RGB) or 1 (grayscale).
        heldout_fraction: share of the files kept out of training (0.05).
        split_seed: seed of the held-out choice (independent of ``seed``, the data order).
        **kwargs: batch_size, num_workers (workers decode files in parallel), seed,
            device_cache: see :class:`GANDataModule`.
    """

    name = "image_folder"
    num_classes = None

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        heldout_fraction: float = 0.05,
        split_seed: int = 12345,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {channels}")
        if not 0.0 <= heldout_fraction < 1.0:
            raise ConfigError(f"data.heldout_fraction must be in [0, 1), got {heldout_fraction}")
        self.path = path
        self.image_size = image_size
        self.channels = channels
        self.heldout_fraction = heldout_fraction
        self.split_seed = split_seed
        self.sample_shape = (channels, image_size, image_size)
        self._files: Optional[list[str]] = None

    def describe(self) -> dict:
        return {
            **super().describe(),
            "path": os.path.abspath(os.path.expanduser(self.path)),
            "image_size": self.image_size,
            "heldout_fraction": self.heldout_fraction,
            "split_seed": self.split_seed,
        }

    def files(self) -> list[str]:
        """Sorted paths of the folder's readable images (listed and checked once; unreadable ones skipped with a warning)."""
        if self._files is None:
            folder = os.path.abspath(os.path.expanduser(self.path))
            if not os.path.isdir(folder):
                raise DataUnavailableError(f"image folder not found: {folder}")
            files = list_image_files(folder)
            if not files:
                raise DataUnavailableError(f"no images ({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}) in {folder}")
            bad = unreadable_images(files)
            for path, reason in bad:
                print(f"warning: skipping unreadable image {path} ({reason})", file=sys.stderr)
            if bad:
                print(f"warning: skipped {len(bad)} of {len(files)} image files in {folder}", file=sys.stderr)
            skipped = {path for path, _ in bad}
            self._files = [path for path in files if path not in skipped]
            if not self._files:
                raise DataUnavailableError(f"none of the {len(files)} image files in {folder} can be read (first: {bad[0][0]}: {bad[0][1]})")
        return self._files

    def load_split(self, split: str) -> ImageFileDataset:
        if split not in ("train", "heldout"):
            raise ConfigError(f"unknown split {split!r} for image_folder (use 'train' or 'heldout')")
        files = self.files()
        mask = heldout_indices(len(files), self.heldout_fraction, self.split_seed)
        keep = mask if split == "heldout" else ~mask
        chosen = [files[i] for i in keep.nonzero().squeeze(1).tolist()]
        return ImageFileDataset(chosen, self.image_size, self.channels)
