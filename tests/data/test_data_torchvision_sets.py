"""MNIST / Fashion-MNIST / CIFAR-10 from fake files in torchvision's layout, and the offline error."""

import os

import numpy as np
import pytest
import torch

from data_helpers import assert_image_batch, first_batch, write_fake_cifar10, write_fake_mnist
from gan_suite.data import CIFAR10, MNIST, FashionMNIST
from gan_suite.data.storage import DATA_ROOT_ENV, resolve_data_root
from gan_suite.errors import DataUnavailableError


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_raw_idx_files(tmp_path, compress):
    written = write_fake_mnist(str(tmp_path), compress=compress)
    dm = MNIST(batch_size=8, root=str(tmp_path), download=False)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 8, (1, 28, 28), labels=range(10))
    train, held = dm.split("train"), dm.split("heldout")
    assert len(train) == 40 and len(held) == 20
    images, labels = written["t10k"]
    assert torch.equal(held.samples[:, 0], torch.from_numpy(images))
    assert held.labels.tolist() == labels.tolist()
    # values: uint8 0..255 mapped linearly onto [-1, 1]
    x0, _ = held[0]
    assert torch.allclose(x0[0], torch.from_numpy(images[0]).float() / 127.5 - 1)


def test_mnist_resized_and_fashion_mnist_folder(tmp_path):
    write_fake_mnist(str(tmp_path), variant="FashionMNIST")
    dm = FashionMNIST(image_size=32, batch_size=4, root=str(tmp_path), download=False)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 4, (1, 32, 32), labels=range(10))
    assert dm.describe()["name"] == "fashion_mnist" and dm.sample_shape == (1, 32, 32)
    with pytest.raises(DataUnavailableError):  # FashionMNIST files do not serve MNIST
        MNIST(root=str(tmp_path), download=False).split("train")


def test_cifar10_from_fake_pickled_batches(tmp_path):
    written = write_fake_cifar10(str(tmp_path))
    dm = CIFAR10(batch_size=10, root=str(tmp_path), download=False)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 10, (3, 32, 32), labels=range(10))
    train, held = dm.split("train"), dm.split("heldout")
    assert len(train) == 60 and len(held) == 12
    data, labels = written["test_batch"]
    # row layout of the real files: 1024 R, then 1024 G, then 1024 B values, each row-major
    assert torch.equal(held.samples, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert held.labels.tolist() == labels
    assert CIFAR10(image_size=16, root=str(tmp_path), download=False).split("heldout").samples.shape == (12, 3, 16, 16)


@pytest.mark.parametrize("cls,files", [(MNIST, "train-images-idx3-ubyte"), (CIFAR10, "cifar-10-batches-py")])
def test_offline_download_gives_one_line_error(tmp_path, offline, cls, files):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DataUnavailableError) as info:
        cls(root=str(root), download=True).split("train")
    message = str(info.value)
    assert str(root) in message and files in message
    assert "\n" not in message and "download failed" in message


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DataUnavailableError, match="download=False"):
        FashionMNIST(root=str(tmp_path), download=False).split("heldout")


def test_corrupt_cifar_batch(tmp_path):
    write_fake_cifar10(str(tmp_path))
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataUnavailableError, match="test_batch"):
        CIFAR10(root=str(tmp_path), download=False).split("heldout")


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert resolve_data_root(None) == os.path.expanduser(os.path.join("~", ".cache", "gan_suite", "datasets"))
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert resolve_data_root(None) == str(tmp_path / "env")
    assert resolve_data_root(str(tmp_path / "arg")) == str(tmp_path / "arg")
    write_fake_mnist(str(tmp_path / "env"))
    assert len(MNIST(download=False).split("heldout")) == 20
