"""CelebA from a fake folder in torchvision's layout: partition file, 178 x 178 centre crop, lazy decode."""

import numpy as np
import pytest
import torch

from data_helpers import assert_image_batch, first_batch
from gan_suite.data import CelebA
from gan_suite.errors import DataUnavailableError


@pytest.fixture
def celeba_root(tmp_path):
    """24 aligned-size (178 x 218) images: 16 train, 4 valid, 4 test; the 20-pixel bands top and bottom are red.

    Saved losslessly (PNG) so that the crop boundary can be checked exactly; the real files are JPEGs.
    """
    from PIL import Image

    base = tmp_path / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    rows = []
    for i in range(24):
        array = np.full((218, 178, 3), 40 + 8 * i, dtype=np.uint8)
        array[:20] = array[-20:] = (255, 0, 0)
        name = f"{i + 1:06d}.png"
        Image.fromarray(array).save(base / "img_align_celeba" / name)
        rows.append(f"{name} {0 if i < 16 else (1 if i < 20 else 2)}")
    (base / "list_eval_partition.txt").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_batches_and_splits(celeba_root):
    dm = CelebA(batch_size=8, root=str(celeba_root), download=False)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 8, (3, 64, 64), labels=[-1])
    assert dm.sample_shape == (3, 64, 64)
    assert len(dm.split("train")) == 16 and len(dm.split("heldout")) == 4
    # the centre crop drops the red bands: every pixel is gray
    x, _ = first_batch(dm, "heldout")
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_missing_files_offline(tmp_path, offline):
    with pytest.raises(DataUnavailableError) as info:
        CelebA(root=str(tmp_path), download=True).split("train")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "img_align_celeba" in message and "list_eval_partition.txt" in message
