"""MNIST, Fashion-MNIST and CIFAR-10 from torchvision's files, held in memory as uint8.

Train split: the datasets' training sets (60,000 / 60,000 / 50,000 images); held-out split: their
test sets (10,000 each). Files are looked for under the dataset root (see
:mod:`gan_suite.data.storage`) in torchvision's layout and downloaded by torchvision when absent
and ``download=True``:

- MNIST: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (or ``.gz``),
- Fashion-MNIST: the same names under ``<root>/FashionMNIST/raw/``,
- CIFAR-10: ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (or
  ``<root>/cifar-10-python.tar.gz``, extracted on first use).
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

from gan_suite.data.base import TensorSampleDataset, resize_uint8
from gan_suite.data.storage import DownloadableDataModule, download_or_raise, unavailable
from gan_suite.errors import ConfigError, GanSuiteError, UnsafeFileError
from gan_suite.safe_files import load_pickle_allowing

_SPLITS = ("train", "heldout")


def _check_split(split: str, name: str) -> None:
    if split not in _SPLITS:
        raise ConfigError(f"unknown split {split!r} for {name} (use 'train' or 'heldout')")


# -- MNIST and Fashion-MNIST ----------------------------------------------------------------------
def load_mnist_family(variant: str, root: str, train: bool, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of MNIST-format data from torchvision's raw folder.

    Args:
        variant: 'MNIST' or 'FashionMNIST' (torchvision's class name, also the folder name).
        root: dataset root (already resolved); the files are in ``<root>/<variant>/raw/``.
        train: the training split if True, else the test split.
        download: let torchvision download the files when they are absent.

    Returns:
        images uint8 [N, 1, 28, 28] in 0..255 and labels int64 [N].
    """
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import extract_archive

    cls = {"MNIST": tvd.MNIST, "FashionMNIST": tvd.FashionMNIST}[variant]
    raw = os.path.join(root, variant, "raw")
    stems = [os.path.splitext(os.path.basename(name))[0] for name, _ in cls.resources]

    def present() -> bool:
        return all(os.path.isfile(os.path.join(raw, stem)) for stem in stems)

    # torchvision reads only the uncompressed files: unpack the .gz ones a user copied in
    for stem in stems:
        if not os.path.isfile(os.path.join(raw, stem)) and os.path.isfile(os.path.join(raw, stem + ".gz")):
            extract_archive(os.path.join(raw, stem + ".gz"))
    if not present():
        expected = [os.path.join(raw, stem) + "(.gz)" for stem in stems]
        download_or_raise(lambda: cls(root, train=train, download=True), download, variant, root, expected)
    try:
        dataset = cls(root, train=train, download=False)
    except (RuntimeError, AssertionError, ValueError, OSError) as err:
        raise unavailable(variant, root, [raw + os.sep], f"corrupt files: {type(err).__name__}: {err}") from None
    return dataset.data.unsqueeze(1).contiguous(), dataset.targets.long()


class _InMemoryImages(DownloadableDataModule):
    """Shared part of the torchvision data modules: load uint8 once, resize once, keep in memory."""

    variant = ""
    native_size = 28
    channels = 1
    num_classes = 10

    def __init__(self, image_size: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size or self.native_size
        self.sample_shape = (self.channels, self.image_size, self.image_size)

    def describe(self) -> dict:
        return {**super().describe(), "image_size": self.image_size}

    def load_uint8(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Native-size images uint8 [N, C, H, W] and labels int64 [N] of one split."""
        raise NotImplementedError

    def load_split(self, split: str) -> TensorSampleDataset:
        _check_split(split, self.name)
        images, labels = self.load_uint8(train=split == "train")
        return TensorSampleDataset(resize_uint8(images, self.image_size), labels)


class MNIST(_InMemoryImages):
    """MNIST: 60,000 training and 10,000 held-out (test) digits, 1 x 28 x 28.

    Args:
        image_size: side of the square images (28 native; 32 or 64 resize once at load).
        **kwargs: root, download (:class:`~gan_suite.data.storage.DownloadableDataModule`) and
            batch_size, num_workers, seed, device_cache (:class:`GANDataModule`).
    """

    name = "mnist"
    variant = "MNIST"

    def load_uint8(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return load_mnist_family(self.variant, self.data_root(), train, self.download)


class FashionMNIST(MNIST):
    """Fashion-MNIST: 60,000 training and 10,000 held-out (test) images, 1 x 28 x 28. Args as :class:`MNIST`."""

    name = "fashion_mnist"
    variant = "FashionMNIST"


# -- CIFAR-10 --------------------------------------------------------------------------------------
#: the globals a published CIFAR-10 batch pickle names (numpy arrays); nothing else is unpickled
_CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def load_cifar10(root: str, train: bool, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of CIFAR-10 from ``<root>/cifar-10-batches-py`` (python pickles, as published).

    The batches are read directly (without torchvision's MD5 check of 180 MB on every load);
    torchvision only downloads and extracts. Returns images uint8 [N, 3, 32, 32] and labels int64 [N].
    """
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import extract_archive

    folder = os.path.join(root, tvd.CIFAR10.base_folder)
    archive = os.path.join(root, tvd.CIFAR10.filename)
    names = [name for name, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list]

    def present() -> bool:
        return all(os.path.isfile(os.path.join(folder, name)) for name in names)

    if not present() and os.path.isfile(archive):
        extract_archive(archive, root)
    if not present():
        expected = [folder + os.sep + "{" + ",".join(names) + "}", f"or {archive}"]
        download_or_raise(lambda: tvd.CIFAR10(root, train=train, download=True), download, "CIFAR-10", root, expected)

    batches = [name for name, _ in (tvd.CIFAR10.train_list if train else tvd.CIFAR10.test_list)]
    images, labels = [], []
    for name in batches:
        path = os.path.join(folder, name)
        try:  # only numpy arrays and plain containers: a planted batch file cannot run code
            entry = load_pickle_allowing(path, _CIFAR_PICKLE_GLOBALS, "CIFAR-10 batch", encoding="latin1")
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry["labels"])
        except UnsafeFileError:
            raise
        except (GanSuiteError, KeyError, ValueError, TypeError) as err:
            raise unavailable("CIFAR-10", root, [path], f"corrupt file: {type(err).__name__}: {err}") from None
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


class CIFAR10(_InMemoryImages):
    """CIFAR-10: 50,000 training and 10,000 held-out (test) images, 3 x 32 x 32. Args as :class:`MNIST`."""

    name = "cifar10"
    native_size = 32
    channels = 3

    def load_uint8(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return load_cifar10(self.data_root(), train, self.download)
