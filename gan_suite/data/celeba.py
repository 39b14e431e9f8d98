"""CelebA faces (aligned and cropped), 178 x 178 centre crop resized to 64 x 64, decoded lazily.

Files, in torchvision's layout under the dataset root (see :mod:`gan_suite.data.storage`):
``<root>/celeba/img_align_celeba/*.jpg`` (or ``img_align_celeba.zip``, extracted on first use) and
``<root>/celeba/list_eval_partition.txt`` (the official partition: 0 train, 1 valid, 2 test).
Train split: partition 0 (162,770 images); held-out split: partition 2 (19,962 images).
torchvision downloads the files from Google Drive when ``download=True`` (needs ``gdown``).
"""

from __future__ import annotations

import os
from gan_suite.data.image_files import ImageFileDataset
from gan_suite.data.storage import DownloadableDataModule, download_or_raise
from gan_suite.errors import ConfigError, DataUnavailableError

#: CelebA list files torchvision downloads (only the partition file is read here).
LIST_FILES = (
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "identity_CelebA.txt",
    "list_bbox_celeba.txt",
    "list_landmarks_align_celeba.txt",
)
#: partition code of each split in list_eval_partition.txt.
PARTITIONS = {"train": 0, "heldout": 2}


def read_partition(path: str) -> dict[int, list[str]]:
    """``list_eval_partition.txt`` -> {partition code: [file names in file order]}."""
    parts: dict[int, list[str]] = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2 and fields[1].lstrip("-").isdigit():
                parts.setdefault(int(fields[1]), []).append(fields[0])
    return parts


class CelebA(DownloadableDataModule):
    """CelebA at 64 x 64: 3 x S x S images in [-1, 1], labels -1 (unlabelled).

    Args:
        image_size: side S after the centre crop (64 is the usual one).
        crop: side of the centred square cut from the 178 x 218 images first (178).
        **kwargs: root, download (:class:`~gan_suite.data.storage.DownloadableDataModule`;
            CelebA downloads from Google Drive and needs ``gdown``) and batch_size, num_workers
            (workers decode JPEGs in parallel), seed, device_cache (:class:`GANDataModule`).
    """

    name = "celeba"
    num_classes = None

    def __init__(self, image_size: int = 64, crop: int = 178, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.crop = crop
        self.sample_shape = (3, image_size, image_size)

    def describe(self) -> dict:
        return {**super().describe(), "image_size": self.image_size, "crop": self.crop}

    def _ensure_files(self) -> tuple[str, str]:
        """(image folder, partition file), downloaded or extracted if needed."""
        import torchvision.datasets as tvd
        from torchvision.datasets.utils import extract_archive

        root = self.data_root()
        base = os.path.join(root, tvd.CelebA.base_folder)
        images = os.path.join(base, "img_align_celeba")
        partition = os.path.join(base, LIST_FILES[0])
        archive = images + ".zip"
        if not os.path.isdir(images) and os.path.isfile(archive):
            extract_archive(archive, base)
        if not (os.path.isdir(images) and os.path.isfile(partition)):
            expected = [images + os.sep + " (or img_align_celeba.zip)"] + [os.path.join(base, n) for n in LIST_FILES]
            download_or_raise(
                lambda: tvd.CelebA(root, split="all", target_type=[], download=True),
                self.download,
                "CelebA",
                root,
                expected,
            )
        return images, partition

    def load_split(self, split: str) -> ImageFileDataset:
        if split not in PARTITIONS:
            raise ConfigError(f"unknown split {split!r} for celeba (use 'train' or 'heldout')")
        images, partition = self._ensure_files()
        names = read_partition(partition).get(PARTITIONS[split], [])
        if not names:
            raise DataUnavailableError(f"{partition} lists no image of partition {PARTITIONS[split]} ({split!r} split)")
        return ImageFileDataset([os.path.join(images, n) for n in names], self.image_size, 3, crop=self.crop)
