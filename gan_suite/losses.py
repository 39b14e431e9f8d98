"""GAN losses as plain functions of the discriminator's raw outputs (logits / critic scores).

Each loss has a discriminator part ``d(real [N], fake [N]) -> scalar`` and a generator part
``g(fake [N]) -> scalar``, both minimised. With D(x) = sigmoid(logit):

- minimax (Goodfellow 2014, eq. 1):   D: -log D(x) - log(1 - D(G(z)));  G:  log(1 - D(G(z)))
- non_saturating (Goodfellow 2014):   D: as minimax;                    G: -log D(G(z))
- least_squares (Mao et al. 2017, a=0, b=c=1): D: 1/2 (D(x)-1)^2 + 1/2 D(G(z))^2;  G: 1/2 (D(G(z))-1)^2
- hinge (Lim & Ye 2017):              D: relu(1 - D(x)) + relu(1 + D(G(z)));  G: -D(G(z))
- wgan_gp (Gulrajani et al. 2017):    D: D(G(z)) - D(x) + lambda * GP;         G: -D(G(z))

``log sigmoid`` is computed with ``softplus`` for numerical stability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from gan_suite.errors import ConfigError


def _bce_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_generator(fake: torch.Tensor) -> torch.Tensor:
    """mean log(1 - sigmoid(fake)) = -mean softplus(fake)."""
    return -F.softplus(fake).mean()


def non_saturating_generator(fake: torch.Tensor) -> torch.Tensor:
    """mean -log sigmoid(fake) = mean softplus(-fake)."""
    return F.softplus(-fake).mean()


def least_squares_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def least_squares_generator(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()


def hinge_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def wasserstein_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def critic_generator(fake: torch.Tensor) -> torch.Tensor:
    """-mean D(G(z)): the generator loss of hinge and Wasserstein GANs."""
    return -fake.mean()


def gradient_penalty(grad: torch.Tensor, pack: int = 1) -> torch.Tensor:
    """Gulrajani et al.'s penalty mean((||grad||_2 - 1)^2).

    Args:
        grad: gradient of D's output w.r.t. the interpolated samples, [N, *sample_shape].
        pack: packing degree; the norm is taken per packed group of ``pack`` samples, since D's
            output depends on the group jointly.
    """
    norms = grad.reshape(grad.shape[0] // pack, -1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


@dataclass(frozen=True)
class GANLoss:
    """A named pair of loss functions, and whether D's loss adds the gradient penalty."""

    name: str
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False
    #: D's output is a logit of a probability (report sigmoid(D) as "D(x)").
    probabilistic: bool = False


LOSSES = {
    "minimax": GANLoss("minimax", _bce_discriminator, minimax_generator, probabilistic=True),
    "non_saturating": GANLoss("non_saturating", _bce_discriminator, non_saturating_generator, probabilistic=True),
    "least_squares": GANLoss("least_squares", least_squares_discriminator, least_squares_generator),
    "hinge": GANLoss("hinge", hinge_discriminator, critic_generator),
    "wgan_gp": GANLoss("wgan_gp", wasserstein_discriminator, critic_generator, gradient_penalty=True),
}


def get_loss(name: str) -> GANLoss:
    """The loss called ``name``; a one-line ConfigError lists the known names otherwise."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
