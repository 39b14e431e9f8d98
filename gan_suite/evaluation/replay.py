"""Replay generators: "generators" that return real images, to calibrate the metrics.

A metric is only trustworthy if it separates known cases: a generator that copies the training
set (exactly or with tiny noise) must be flagged by the memorisation checks, one that produces a
single class by the mode checks, and real held-out images by neither. These networks provide
those cases with the interface of a trained generator (noise [N, latent_dim] -> images in [-1, 1]).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.nets.spec import RebuildableMixin


def _load_images(data_spec: Optional[dict], split: str, idx_folder: Optional[str]) -> tuple[torch.Tensor, torch.Tensor]:
    if idx_folder is not None:
        from gan_suite.evaluation.features.idx import read_mnist_split

        images, labels = read_mnist_split(idx_folder)
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()
    if data_spec is None:
        raise ConfigError("a replay generator needs data_spec or idx_folder")
    from gan_suite.evaluation.checkpoint import build_datamodule

    dataset = build_datamodule(data_spec).split(split)
    x, y = dataset.__getitems__(list(range(len(dataset))))
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8), y


class ReplayGenerator(RebuildableMixin, nn.Module):
    """Returns real images chosen by the noise, optionally with Gaussian pixel noise.

    Args:
        data_spec: ``{"class_path", "init_args"}`` of a data module whose ``split`` is replayed, or
        idx_folder: an MNIST IDX folder (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz).
        split: which split of the data module.
        classes: keep only images of these labels (e.g. [1] for a one-class generator).
        noise_std: std of the Gaussian noise added in [-1, 1] units (0: exact copies).
        latent_dim: noise dimension of the interface.
    """

    def __init__(
        self,
        data_spec: Optional[dict] = None,
        split: str = "train",
        idx_folder: Optional[str] = None,
        classes: Optional[Sequence[int]] = None,
        noise_std: float = 0.0,
        latent_dim: int = 100,
    ) -> None:
        super().__init__()
        self.record_spec(data_spec=data_spec, split=split, idx_folder=idx_folder, classes=classes, noise_std=noise_std, latent_dim=latent_dim)
        images, labels = _load_images(data_spec, split, idx_folder)
        if classes is not None:
            keep = torch.isin(labels, torch.as_tensor(list(classes)))
            images, labels = images[keep], labels[keep]
        if len(images) == 0:
            raise ConfigError("the replay generator has no images to replay")
        self.register_buffer("images", images, persistent=False)
        self.latent_dim = latent_dim
        self.sample_shape = tuple(images.shape[1:])
        self.noise_std = noise_std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # the first noise coordinate, mapped through the normal CDF, picks a uniform index
        u = 0.5 * (1 + torch.erf(z[:, 0].double() / math.sqrt(2)))
        idx = (u * len(self.images)).long().clamp(0, len(self.images) - 1)
        x = self.images[idx].float().div(127.5).sub(1)
        if self.noise_std > 0:
            gen = torch.Generator(device="cpu").manual_seed(int(idx.sum()))
            x = x + self.noise_std * torch.randn(x.shape, generator=gen).to(x.device)
        return x.clamp(-1, 1)


def replay_checkpoint(path: str, generator: ReplayGenerator, data_spec: dict) -> str:
    """Write a checkpoint that ``gan-suite evaluate`` reads like a trained one."""
    torch.save(
        {
            "state_dict": {f"generator.{k}": v for k, v in generator.state_dict().items()},
            "gan_suite": {"iteration": 0, "generator_spec": generator.spec(), "data_spec": data_spec},
        },
        path,
    )
    return path
