"""Training: the GAN LightningModule, its DDP strategy, EMA, schedules and callbacks."""

from gan_suite.training.ddp import SeparateNetworksDDPStrategy, register as _register_strategies
from gan_suite.training.module import DiscriminatorPass, GANModule

_register_strategies()

__all__ = ["GANModule", "DiscriminatorPass", "SeparateNetworksDDPStrategy"]
