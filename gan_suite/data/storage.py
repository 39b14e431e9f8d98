"""Where downloadable datasets live on disk, and the one-line error when one is missing.

The root folder is, in order: the data module's ``root`` argument, the ``GAN_SUITE_DATA``
environment variable, ``~/.cache/gan_suite/datasets``. :class:`DownloadableDataModule` is the
base of the data modules whose files torchvision downloads (MNIST, Fashion-MNIST, CIFAR-10,
CelebA, Stacked MNIST from MNIST).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

from gan_suite.data.base import GANDataModule
from gan_suite.errors import DataUnavailableError

#: environment variable that overrides the default dataset root.
DATA_ROOT_ENV = "GAN_SUITE_DATA"
DEFAULT_DATA_ROOT = os.path.join("~", ".cache", "gan_suite", "datasets")


def resolve_data_root(root: Optional[str] = None) -> str:
    """Absolute dataset root: ``root`` if given, else ``$GAN_SUITE_DATA``, else the default."""
    chosen = root or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return os.path.abspath(os.path.expanduser(os.fspath(chosen)))


def one_line(text: object, limit: int = 200) -> str:
    """``text`` as one line of at most ``limit`` characters (for messages quoting other errors)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def unavailable(dataset: str, root: str, expected: Sequence[str], reason: str) -> DataUnavailableError:
    """The error for a dataset that is neither on disk nor downloadable (message on one line).

    Args:
        dataset: display name, e.g. 'MNIST'.
        root: the dataset root folder that was searched.
        expected: paths (under ``root``) of the files or folders that were looked for.
        reason: why it was not loaded, e.g. 'download=False' or the download error.
    """
    return DataUnavailableError(
        f"{dataset} is not in {root} ({one_line(reason)}): expected {', '.join(expected)}; "
        f"put the files there or point data.root / ${DATA_ROOT_ENV} to a folder that has them"
    )


def download_or_raise(
    download: Callable[[], object], enabled: bool, dataset: str, root: str, expected: Sequence[str]
) -> None:
    """Run ``download()`` if ``enabled``; turn its failure (or ``enabled=False``) into :func:`unavailable`.

    Any exception of the download is converted: without network torchvision raises URLError,
    RuntimeError or OSError; CelebA's Google Drive download raises RuntimeError without ``gdown``.
    """
    if not enabled:
        raise unavailable(dataset, root, expected, "download=False")
    try:
        download()
    except Exception as err:  # noqa: BLE001 - every download failure means "not available"
        raise unavailable(dataset, root, expected, f"download failed: {type(err).__name__}: {err}") from None


class DownloadableDataModule(GANDataModule):
    """A data module whose files live under a dataset root and can be downloaded.

    Args:
        root: dataset root (default ``$GAN_SUITE_DATA`` or ``~/.cache/gan_suite/datasets``,
            see :func:`resolve_data_root`).
        download: download with torchvision when the files are absent (else a one-line
            :class:`~gan_suite.errors.DataUnavailableError` says what is missing).
        **kwargs: the options of :class:`~gan_suite.data.base.GANDataModule` (batch_size,
            num_workers, seed, device_cache).
    """

    def __init__(self, root: Optional[str] = None, download: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.download = download

    def data_root(self) -> str:
        """The resolved dataset root (absolute)."""
        return resolve_data_root(self.root)
