"""gan_suite: train and compare GAN variants honestly."""

__version__ = "0.1.0"
