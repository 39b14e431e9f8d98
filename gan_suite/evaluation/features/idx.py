"""Reader for the IDX format of the original MNIST files (gzip-compressed or raw)."""

from __future__ import annotations

import gzip
import os
from typing import Tuple

import numpy as np

from gan_suite.errors import DataUnavailableError

# IDX type code -> big-endian numpy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (e.g. ``t10k-images-idx3-ubyte.gz``).

    Takes a path to a gzip-compressed or raw IDX file. Returns an array with the file's
    shape and its element type in native byte order (uint8 images: [N, 28, 28], labels: [N]).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataUnavailableError(f"IDX file not found: {path}")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataUnavailableError(f"not an IDX file (bad magic number): {path}")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataUnavailableError(
            f"truncated or corrupt IDX file: {path} (shape {shape} needs {expected} bytes, has {len(data) - header})"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_mnist_split(folder: str | os.PathLike, prefix: str = "t10k") -> Tuple[np.ndarray, np.ndarray]:
    """Read an MNIST split from a folder of IDX files.

    Looks for ``{prefix}-images-idx3-ubyte[.gz]`` and ``{prefix}-labels-idx1-ubyte[.gz]``.
    Returns (images uint8 [N, 28, 28] in 0..255, labels int64 [N]).
    """
    folder = os.fspath(folder)

    def find(stem: str) -> str:
        for candidate in (stem + ".gz", stem):
            full = os.path.join(folder, candidate)
            if os.path.isfile(full):
                return full
        raise DataUnavailableError(f"MNIST file {stem}[.gz] not found in {folder}")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataUnavailableError(
            f"MNIST files in {folder} disagree: images {images.shape}, labels {labels.shape}"
        )
    return images, labels
