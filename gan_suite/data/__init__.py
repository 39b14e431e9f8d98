"""Data modules. Every one yields batches (x in [-1, 1], labels) for the GAN module."""

from gan_suite.data.base import GANDataModule, TensorSampleDataset
from gan_suite.data.celeba import CelebA
from gan_suite.data.image_files import ImageFileDataset
from gan_suite.data.image_folder import ImageFolder
from gan_suite.data.mnist_bundled import MNISTBundled
from gan_suite.data.stacked_mnist import StackedMNIST
from gan_suite.data.toy2d import Toy2D
from gan_suite.data.torchvision_sets import CIFAR10, MNIST, FashionMNIST

#: short names of the data modules: ``gan-suite evaluate --samples`` takes a data module split as its
#: ``--real`` or ``--train`` set by this name (``NAME[:SPLIT]``, :mod:`gan_suite.evaluation.sample_sources`).
DATA_MODULES = {
    "mnist_bundled": MNISTBundled,
    "toy2d": Toy2D,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
    "celeba": CelebA,
    "image_folder": ImageFolder,
    "stacked_mnist": StackedMNIST,
}

__all__ = [
    "GANDataModule",
    "TensorSampleDataset",
    "ImageFileDataset",
    "MNISTBundled",
    "Toy2D",
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CelebA",
    "ImageFolder",
    "StackedMNIST",
    "DATA_MODULES",
]
