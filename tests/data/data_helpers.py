"""Helpers of the data tests: batch checks and fake dataset files in torchvision's layout."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import torch


def first_batch(dm, split: str = "train"):
    """The first training batch of ``dm`` (single process), or the first batch of ``split``."""
    if split == "train":
        return next(iter(dm.train_dataloader()))
    dataset = dm.split(split)
    return dataset.__getitems__(list(range(min(dm.batch_size, len(dataset)))))


def assert_image_batch(x, y, batch: int, shape: tuple, labels=None):
    """x float32 [batch, *shape] in [-1, 1] (not constant), y int64 [batch] within ``labels``."""
    assert x.dtype == torch.float32 and tuple(x.shape) == (batch, *shape)
    assert y.dtype == torch.int64 and tuple(y.shape) == (batch,)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.max() > x.min()
    if labels is not None:
        assert set(y.tolist()) <= set(labels)


def write_idx(path: str, array: np.ndarray, compress: bool = False) -> None:
    """Write uint8 ``array`` as an IDX file (magic 0x08 = ubyte), gzipped if ``compress``."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    with (gzip.open if compress else open)(path + (".gz" if compress else ""), "wb") as f:
        f.write(data)


def write_fake_mnist(root: str, variant: str = "MNIST", n_train: int = 40, n_test: int = 20, compress=False):
    """Tiny random MNIST-format files in ``<root>/<variant>/raw``; returns the arrays written."""
    raw = os.path.join(root, variant, "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), images, compress)
        write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), labels, compress)
        out[prefix] = (images, labels)
    return out


def write_fake_cifar10(root: str, per_batch: int = 12):
    """Pickled batches like the real ``cifar-10-batches-py`` (dict with 'data' [n, 3072] and 'labels')."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, per_batch).tolist())
        names = [f"{i}.png" for i in range(per_batch)]
        entry = {"batch_label": name, "labels": labels, "data": data, "filenames": names}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(entry, f)
        written[name] = (data, labels)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    return written


def write_png(path: str, size: tuple, color=None, seed: int = 0, mode: str = "RGB") -> None:
    """A random (or constant ``color``) image of ``size`` = (width, height)."""
    from PIL import Image

    w, h = size
    if color is None:
        array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        array = np.broadcast_to(np.asarray(color, dtype=np.uint8), (h, w, 3)).copy()
    Image.fromarray(array).convert(mode).save(path)
