"""ImageFolder: recursive listing, centre crop + resize, lazy batched decoding, fixed held-out part."""

import numpy as np
import pytest
import torch

from data_helpers import assert_image_batch, first_batch, write_png
from gan_suite.data import ImageFolder
from gan_suite.data.image_files import decode_square
from gan_suite.errors import DataUnavailableError


@pytest.fixture
def folder(tmp_path):
    """40 images of differing sizes and formats in nested folders (plus files that are not images)."""
    sizes = [(50, 30), (30, 50), (64, 64), (17, 23), (100, 80)]
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i in range(40):
        sub = tmp_path / ("a" if i % 2 else "a/b")
        ext = ["png", "jpg", "bmp", "webp", "PNG"][i % 5]
        write_png(str(sub / f"img{i}.{ext}"), sizes[i % 5], seed=i)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    return tmp_path


def test_batches_and_split(folder):
    dm = ImageFolder(str(folder), image_size=16, batch_size=8)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 8, (3, 16, 16))
    assert (y == -1).all() and dm.num_classes is None
    train, held = dm.split("train"), dm.split("heldout")
    assert len(train) == 38 and len(held) == 2  # 5 % of 40
    assert not set(train.paths.tolist()) & set(held.paths.tolist())
    again = ImageFolder(str(folder), image_size=16, seed=9).split("heldout")
    assert again.paths.tolist() == held.paths.tolist()  # fixed across training seeds
    other = ImageFolder(str(folder), image_size=16, split_seed=1).split("heldout")
    assert other.paths.tolist() != held.paths.tolist()


def test_grayscale_and_worker_process(folder):
    dm = ImageFolder(str(folder), image_size=8, channels=1, batch_size=4, num_workers=1)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 4, (1, 8, 8))


def test_centre_crop_then_resize(tmp_path):
    from PIL import Image

    # 60 x 20 image: left third black, middle third white, right third black -> the square crop is white
    array = np.zeros((20, 60, 3), dtype=np.uint8)
    array[:, 20:40] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    out = decode_square(str(tmp_path / "wide.png"), 10)
    assert out.shape == (3, 10, 10) and out.dtype == np.uint8
    assert out.min() >= 250
    write_png(str(tmp_path / "tall.png"), (12, 40), color=(0, 128, 255))
    out = decode_square(str(tmp_path / "tall.png"), 6)
    assert torch.equal(torch.from_numpy(out[:, 0, 0]), torch.tensor([0, 128, 255], dtype=torch.uint8))


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(DataUnavailableError, match="not found") as info:
        ImageFolder(str(tmp_path / "nowhere")).split("train")
    assert str(tmp_path / "nowhere") in str(info.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataUnavailableError, match="no images") as info:
        ImageFolder(str(tmp_path / "empty")).split("train")
    assert str(tmp_path / "empty") in str(info.value)


def test_unreadable_files_are_skipped_with_a_warning_and_a_count(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    for i in range(4):
        write_png(str(tmp_path / f"ok{i}.png"), (8, 8), seed=i)
    whole = (tmp_path / "ok3.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(whole[: len(whole) // 2])
    dataset = ImageFolder(str(tmp_path), image_size=4, heldout_fraction=0.0).split("train")
    assert sorted(dataset.paths.tolist()) == [str(tmp_path / f"ok{i}.png") for i in range(4)]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert err[0].startswith(f"warning: skipping unreadable image {tmp_path / 'broken.png'} (")
    assert err[1].startswith(f"warning: skipping unreadable image {tmp_path / 'truncated.png'} (")
    assert err[2] == f"warning: skipped 2 of 6 image files in {tmp_path}"
    x, _ = dataset.__getitems__(list(range(4)))  # every kept file decodes
    assert x.shape == (4, 3, 4, 4)
    with pytest.raises(DataUnavailableError, match="truncated.png"):  # decoding it would have failed mid-run
        decode_square(str(tmp_path / "truncated.png"), 4)


def test_a_folder_of_unreadable_files_is_one_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataUnavailableError, match="none of the 1 image files") as info:
        ImageFolder(str(tmp_path)).split("train")
    assert "broken.png" in str(info.value) and "\n" not in str(info.value)