"""Where evaluated images come from, besides a checkpoint: image folders, array files, shipped
data module splits and real-feature statistics files.

* An image folder: every image file under it (sorted paths), decoded with PIL as grayscale when
  every file is grayscale, else RGB; all must have the same size.
* An array file: ``.npy`` or ``.npz`` (read with ``numpy.load(allow_pickle=False)``), uint8
  [N, H, W, C] or [N, C, H, W] with C in 1 or 3 (the layout the field exchanges), or [N, H, W]
  grayscale; an ``.npz`` holds one array, or names it ``images``, ``samples`` or ``arr_0``.
* A data module split: ``NAME[:SPLIT]`` with a name of ``gan_suite.data.DATA_MODULES`` (default
  arguments) and split ``heldout`` (default) or ``train``.
* A statistics file: an ``.npz`` with ``mu`` [D] and ``sigma`` [D, D] (the format pytorch-fid
  and clean-fid exchange); the suite writes ``n``, ``extractor`` and ``weights_sha256`` beside
  them and, when a file has them, checks them against the extractor in use.

Images become float [N, C, H, W] in [-1, 1] as ``u / 127.5 - 1`` (the data modules' mapping), so
uint8 images round-trip exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch

from gan_suite.errors import ConfigError

ARRAY_NAMES = ("images", "samples", "arr_0")
STATISTICS_KEYS = ("mu", "sigma")


@dataclass
class ImageSource:
    """Images to evaluate: uint8 [N, C, H, W] in memory, or a data module split."""

    description: dict
    images: Optional[torch.Tensor] = None  # uint8 [N, C, H, W]
    dataset: object = None  # a data module split (returns (x in [-1, 1], labels) batches)
    datamodule: object = None

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.dataset)

    @property
    def sample_shape(self) -> tuple:
        if self.images is not None:
            return tuple(self.images.shape[1:])
        x, _ = self.dataset.__getitems__([0])
        return tuple(x.shape[1:])

    def batches(self, batch_size: int, device, limit: Optional[int] = None) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        """(x float [B, C, H, W] in [-1, 1] on ``device``, labels or None) batches."""
        n = len(self) if limit is None else min(limit, len(self))
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            if self.images is not None:
                batch = self.images[lo:hi].to(device).to(torch.float32, memory_format=torch.contiguous_format)
                yield batch.div_(127.5).sub_(1.0), None
            else:
                x, y = self.dataset.__getitems__(list(range(lo, hi)))
                yield x.to(device), y


@dataclass
class FeatureStatistics:
    """Real-feature statistics read from a ``mu``/``sigma`` file."""

    path: str
    mu: torch.Tensor  # [D] float64
    sigma: torch.Tensor  # [D, D] float64
    n: Optional[int]
    extractor: Optional[str]
    weights_sha256: Optional[str]


def is_statistics_file(path: str) -> bool:
    """Whether ``path`` is an ``.npz`` holding ``mu`` and ``sigma``."""
    if not (path.endswith(".npz") and os.path.isfile(path)):
        return False
    with _open_npz(path) as data:
        return all(key in data.files for key in STATISTICS_KEYS)


def _open_npz(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {' '.join(str(err).split())}") from None


def read_statistics(path: str) -> FeatureStatistics:
    """A ``mu``/``sigma`` statistics file (pytorch-fid / clean-fid format, optional metadata)."""
    with _open_npz(path) as data:
        mu, sigma = np.asarray(data["mu"], dtype=np.float64), np.asarray(data["sigma"], dtype=np.float64)
        text = lambda key: str(data[key]) if key in data.files else None  # noqa: E731
        n = int(data["n"]) if "n" in data.files else None
        extractor, weights = text("extractor"), text("weights_sha256")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ConfigError(f"{path}: mu must be [D] and sigma [D, D], got {mu.shape} and {sigma.shape}")
    return FeatureStatistics(path, torch.from_numpy(mu), torch.from_numpy(sigma), n, extractor, weights or None)


def write_statistics(path: str, moments, description: dict) -> str:
    """Write ``mu``, ``sigma`` (unbiased), ``n``, ``extractor`` and ``weights_sha256`` to an ``.npz``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    np.savez(
        path, mu=moments.mean.cpu().numpy(), sigma=moments.cov.cpu().numpy(), n=np.int64(moments.n),
        extractor=np.str_(description.get("name", "")), weights_sha256=np.str_(description.get("weights_sha256") or ""),
    )
    return path


def check_statistics_match(stats: FeatureStatistics, description: dict) -> None:
    """One-line ConfigError when the file names another extractor or weights than ``description``."""
    if stats.extractor and stats.extractor != description.get("name"):
        raise ConfigError(f"{stats.path} holds {stats.extractor} statistics; this evaluation uses {description.get('name')} features")
    mine = description.get("weights_sha256")
    if stats.weights_sha256 and mine and stats.weights_sha256 != mine:
        raise ConfigError(f"{stats.path} was computed with other {stats.extractor} weights (sha256 {stats.weights_sha256[:12]}..., here {mine[:12]}...)")
    if stats.mu.shape[0] != description.get("feature_dim", stats.mu.shape[0]):
        raise ConfigError(f"{stats.path} holds {stats.mu.shape[0]}-d statistics; {description.get('name')} features are {description.get('feature_dim')}-d")


def _to_nchw(array: np.ndarray, path: str) -> torch.Tensor:
    if array.dtype != np.uint8:
        raise ConfigError(f"{path}: images must be uint8 (0..255), got {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise ConfigError(f"{path}: expected uint8 images [N, H, W, C] or [N, C, H, W], got shape {array.shape}")
    if array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
        chw = array
    elif array.shape[-1] in (1, 3):
        chw = array.transpose(0, 3, 1, 2)
    else:
        raise ConfigError(f"{path}: cannot tell the channel axis of shape {array.shape} (1 or 3 channels, first or last)")
    if len(chw) == 0:
        raise ConfigError(f"{path} holds no image")
    # a fresh tensor with standard strides: a transposed view with a 1-channel axis counts as
    # contiguous in numpy but keeps channels-last strides, which send convolutions down another kernel
    return torch.tensor(chw)


def read_array_file(path: str) -> torch.Tensor:
    """uint8 [N, C, H, W] from an ``.npy`` or ``.npz`` file (no pickles)."""
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read {path}: {' '.join(str(err).split())}") from None
        return _to_nchw(array, path)
    with _open_npz(path) as data:
        names = data.files
        name = names[0] if len(names) == 1 else next((n for n in ARRAY_NAMES if n in names), None)
        if name is None:
            raise ConfigError(f"{path} holds arrays {', '.join(names)}; name the images one of: {', '.join(ARRAY_NAMES)}")
        return _to_nchw(data[name], path)


def read_image_folder(path: str) -> torch.Tensor:
    """uint8 [N, C, H, W] from every image file under ``path`` (sorted; same size required)."""
    from PIL import Image

    from gan_suite.data.image_files import list_image_files

    files = list_image_files(path)
    if not files:
        raise ConfigError(f"{path} holds no image file (.png, .jpg, .jpeg, .webp, .bmp)")
    images = []
    for file in files:
        try:
            with Image.open(file) as img:
                images.append((img.mode, np.array(img.convert("RGB" if img.mode not in ("L", "1", "I;16") else "L"))))
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot decode image {file}: {' '.join(str(err).split())}") from None
    gray = all(a.ndim == 2 for _, a in images)
    arrays = [a if gray else (np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a) for _, a in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ConfigError(f"images under {path} differ in size: {sorted(shapes)[:3]}")
    return _to_nchw(np.stack(arrays), path)


def open_images(spec: str) -> ImageSource:
    """An image folder, an array file or ``DATA-MODULE[:SPLIT]`` as an :class:`ImageSource`."""
    if os.path.isdir(spec):
        return ImageSource({"kind": "image folder", "path": os.path.abspath(spec)}, images=read_image_folder(spec))
    if os.path.isfile(spec):
        if not spec.endswith((".npy", ".npz")):
            raise ConfigError(f"{spec}: give a folder of images, an .npy/.npz array file or DATA-MODULE[:split]")
        return ImageSource({"kind": "array file", "path": os.path.abspath(spec)}, images=read_array_file(spec))
    return open_data_split(spec)


def open_data_split(spec: str) -> ImageSource:
    """``NAME[:SPLIT]`` (a shipped data module with default arguments; split heldout or train)."""
    from gan_suite.data import DATA_MODULES

    name, _, split = spec.partition(":")
    split = split or "heldout"
    if name not in DATA_MODULES:
        raise ConfigError(f"{spec} is neither a file, a folder nor a data module; data modules: {', '.join(DATA_MODULES)}")
    if split not in ("heldout", "train"):
        raise ConfigError(f"{spec}: split must be heldout or train, got {split!r}")
    datamodule = DATA_MODULES[name]()
    datamodule.setup()
    return ImageSource({"kind": "data module", "name": name, "split": split, **datamodule.describe()}, dataset=datamodule.split(split), datamodule=datamodule)
