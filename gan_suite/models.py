"""The two model families of the suite as ready-made LightningModules.

Both are :class:`~gan_suite.training.module.GANModule` with their networks built from a few
arguments, so a config names sizes rather than network classes. Every other keyword argument
(loss, d_steps, optimizers, EMA, seeds, performance options, ...) is GANModule's own, declared
and documented only there and passed through ``**kwargs``: the CLI (jsonargparse follows
``super().__init__(..., **kwargs)``) lists them under ``model.init_args`` with GANModule's
defaults, so ``--model.init_args.ema_decay=0.999`` works for both families.
"""

from __future__ import annotations

from typing import Optional, Sequence

from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable

from gan_suite.nets import DCGANDiscriminator, DCGANGenerator, MaxoutDiscriminator, MLPGenerator
from gan_suite.training.module import GANModule
from gan_suite.training.schedules import GoodfellowSchedule


#: Goodfellow et al. 2014: SGD, lr 0.1, momentum 0.5 (decayed and ramped by :class:`GoodfellowSchedule`)
GOODFELLOW_SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.5}}

#: constructor arguments kept out of the hyper-parameters (callables; the CLI's config.yaml records them)
_NOT_HYPERPARAMETERS = ["g_optimizer", "d_optimizer", "g_scheduler", "d_scheduler"]


class VanillaGAN(GANModule):
    """Goodfellow et al. 2014: MLP generator, maxout discriminator with dropout.

    Defaults are the paper's MNIST setup (optimizers default to SGD 0.1 with momentum 0.5 and
    the paper's lr decay / momentum ramp). Other widths and depths give e.g. PacGAN's toy nets.

    Args:
        sample_shape: shape of one sample ([1, 28, 28] for MNIST, [2] for toy data).
        latent_dim, g_hidden, g_batch_norm, g_output: see :class:`MLPGenerator`.
        d_hidden, d_pieces, d_input_dropout, d_hidden_dropout, pack: see :class:`MaxoutDiscriminator`.
        num_classes: 0 (unconditional) or the data's number of classes: G takes a label (its
            embedding concatenated to the noise), D a projection head (Miyato & Koyama 2018).
        g_optimizer, d_optimizer: as in :class:`GANModule`, but defaulting to the paper's SGD
            (:data:`GOODFELLOW_SGD`; None means that default too).
        g_scheduler, d_scheduler: as in :class:`GANModule`; with ``goodfellow_schedule`` an unset
            one becomes :class:`GoodfellowSchedule`.
        goodfellow_schedule: apply the paper's lr decay and momentum ramp to SGD optimizers.
        **kwargs: every other option of :class:`GANModule` (documented there).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 100,
        g_hidden: Sequence[int] = (1200, 1200),
        g_batch_norm: bool = False,
        g_output: str = "tanh",
        d_hidden: Sequence[int] = (240, 240),
        d_pieces: int = 5,
        d_input_dropout: float = 0.2,
        d_hidden_dropout: float = 0.5,
        pack: int = 1,
        num_classes: int = 0,
        goodfellow_schedule: bool = True,
        g_optimizer: Optional[OptimizerCallable] = GOODFELLOW_SGD,
        d_optimizer: Optional[OptimizerCallable] = GOODFELLOW_SGD,
        g_scheduler: Optional[LRSchedulerCallable] = None,
        d_scheduler: Optional[LRSchedulerCallable] = None,
        **kwargs,
    ) -> None:
        generator = MLPGenerator(latent_dim, sample_shape, g_hidden, g_batch_norm, g_output, num_classes)
        discriminator = MaxoutDiscriminator(sample_shape, d_hidden, d_pieces, d_input_dropout, d_hidden_dropout, pack, num_classes)
        if goodfellow_schedule:
            g_scheduler = g_scheduler or GoodfellowSchedule
            d_scheduler = d_scheduler or GoodfellowSchedule
        super().__init__(
            generator,
            discriminator,
            g_optimizer=GOODFELLOW_SGD if g_optimizer is None else g_optimizer,
            d_optimizer=GOODFELLOW_SGD if d_optimizer is None else d_optimizer,
            g_scheduler=g_scheduler,
            d_scheduler=d_scheduler,
            **kwargs,
        )
        self.save_hyperparameters(ignore=_NOT_HYPERPARAMETERS)


class DCGAN(GANModule):
    """Radford et al. 2015 for 28, 32 or 64 px images with 1 or 3 channels.

    Args:
        image_size, channels: the images' size and channels (must match the data).
        latent_dim: noise dimension (100 in the paper).
        g_width, d_width: channels of G's last / D's first hidden layer (64 in the paper).
        d_norm: 'batch' (paper), 'layer' (for WGAN-GP) or 'none'.
        pack: PacGAN packing degree of D.
        num_classes: 0 (unconditional) or the data's number of classes (see :class:`VanillaGAN`).
        **kwargs: every other option of :class:`GANModule` (documented there; its optimizer
            default, Adam 2e-4 with beta1 0.5, is the paper's).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        g_width: int = 64,
        d_width: int = 64,
        d_norm: str = "batch",
        pack: int = 1,
        num_classes: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(
            DCGANGenerator(latent_dim, image_size, channels, g_width, num_classes),
            DCGANDiscriminator(image_size, channels, d_width, d_norm, pack, num_classes),
            **kwargs,
        )
        self.save_hyperparameters(ignore=_NOT_HYPERPARAMETERS)
