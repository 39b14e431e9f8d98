"""GAN modules whose "training" follows a script: the generator's output and D's scores are set
from the training step, so that a metric, a mode histogram or D's saturation takes known values
at known steps."""

import math
from typing import Callable, Sequence

import torch
from torch import nn

from gan_suite.data.toy2d import mixture_geometry
from gan_suite.nets.spec import RebuildableMixin
from gan_suite.training.module import GANModule


class ScaledRing(RebuildableMixin, nn.Module):
    """Ring points scaled by ``scale``: noise [N, 3] -> points [N, 2]; z0 picks the mode, z1, z2 the
    std-0.01 jitter (the ring8 mixture at scale 1)."""

    def __init__(self, latent_dim: int = 3) -> None:
        super().__init__()
        self.record_spec(latent_dim=latent_dim)
        self.latent_dim, self.sample_shape = latent_dim, (2,)
        self.centres = mixture_geometry("ring8")[0]
        self.register_buffer("scale", torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2)))
        mode = (u * 8).long().clamp(0, 7)
        return self.scale * (self.centres.to(z.device)[mode] + 0.01 * z[:, 1:3])


class RadialDiscriminator(RebuildableMixin, nn.Module):
    """D(x) = gain * (|x| - 0.5): positive outside the circle of radius 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.record_spec()
        self.sample_shape = (2,)
        self.register_buffer("gain", torch.zeros(()))
        self.unused = nn.Parameter(torch.zeros(1))  # for the (idle) optimizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * (x.norm(dim=1) - 0.5)


class _NoUpdates(GANModule):
    """One idle optimizer step per training step, so that trainer.global_step == iteration."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.discriminator.parameters(), lr=0.0)

    def _idle_step(self) -> None:
        self.optimizers().step()


class ScriptedGAN(_NoUpdates):
    """No updates: after each training step, ``generator.scale = scale_at(iteration)`` and
    ``discriminator.gain = gain_at(iteration)``."""

    def __init__(self, scale_at: Callable[[int], float], gain_at: Callable[[int], float] = lambda t: 0.0) -> None:
        super().__init__(ScaledRing(), RadialDiscriminator(), loss="non_saturating")
        self.scale_at, self.gain_at = scale_at, gain_at

    def _training_step(self, batch):
        self._idle_step()
        self.iteration += 1
        self.generator.scale.fill_(self.scale_at(self.iteration))
        self.discriminator.gain.fill_(self.gain_at(self.iteration))


class SwitchingReplay(_NoUpdates):
    """Samples from ``generators[(iteration // switch_every) % len(generators)]``; no updates."""

    def __init__(self, generators: Sequence[nn.Module], switch_every: int) -> None:
        first = generators[0]
        super().__init__(first, _ImageCritic(first.sample_shape))
        self.replays = nn.ModuleList(generators)
        self.switch_every = switch_every

    @property
    def sampling_generator(self) -> nn.Module:
        return self.replays[(self.iteration // self.switch_every) % len(self.replays)]

    def _training_step(self, batch):
        self._idle_step()
        self.iteration += 1


class _ImageCritic(nn.Module):
    def __init__(self, sample_shape) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unused * x.flatten(1).mean(1)
