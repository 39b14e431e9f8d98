"""Small models and trainers for the training tests."""

from functools import partial

import pytorch_lightning as pl
import torch

from gan_suite.models import DCGAN, VanillaGAN


def adam(lr=1e-3, beta1=0.5):
    return partial(torch.optim.Adam, lr=lr, betas=(beta1, 0.999))


def tiny_ring_gan(**overrides):
    """A small MLP GAN on 2-D points, without BatchNorm or dropout."""
    args = dict(
        sample_shape=[2], latent_dim=2, g_hidden=[64, 64], g_output="linear", d_hidden=[64, 64], d_pieces=3,
        d_input_dropout=0.0, d_hidden_dropout=0.0, goodfellow_schedule=False, g_optimizer=adam(), d_optimizer=adam(),
    )
    args.update(overrides)
    return VanillaGAN(**args)


def tiny_dcgan(**overrides):
    args = dict(image_size=28, channels=1, g_width=8, d_width=8)
    args.update(overrides)
    return DCGAN(**args)


def quiet_trainer(**overrides):
    args = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, log_every_n_steps=1,
    )
    args.update(overrides)
    return pl.Trainer(**args)
