"""Read a training checkpoint without Lightning: the sampling generator and the data it was trained on."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.nets.spec import build_from_spec


@dataclass
class TrainedGenerator:
    """A generator ready for sampling.

    Attributes:
        generator: the network (eval mode, no gradients) mapping [N, latent_dim] -> [N, *sample_shape].
        latent_dim: noise dimension.
        sample_shape: shape of one sample.
        weights: 'generator_ema' or 'generator': which weights were loaded.
        iteration: training steps done when the checkpoint was written.
        data_spec: ``{"class_path", "init_args"}`` of the data module it was trained on, or None.
        meta: everything gan_suite stored in the checkpoint.
    """

    generator: nn.Module
    latent_dim: int
    sample_shape: tuple
    weights: str
    iteration: int
    data_spec: dict | None
    meta: dict = field(default_factory=dict)


def load_generator(ckpt_path: str, use_ema: bool = True, device: str | torch.device = "cpu") -> TrainedGenerator:
    """Rebuild the sampling generator of a gan_suite checkpoint (EMA weights when present and wanted)."""
    if not os.path.isfile(ckpt_path):
        raise ConfigError(f"checkpoint not found: {ckpt_path}")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise ConfigError(f"cannot read checkpoint {ckpt_path}: {err}") from None
    meta = ckpt.get("gan_suite") if isinstance(ckpt, dict) else None
    if not meta or "generator_spec" not in meta:
        raise ConfigError(f"{ckpt_path} is not a gan_suite training checkpoint (no generator spec inside)")
    generator = build_from_spec(meta["generator_spec"])
    state = ckpt["state_dict"]
    prefix = "generator_ema." if use_ema and any(k.startswith("generator_ema.") for k in state) else "generator."
    generator.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    generator.eval().requires_grad_(False).to(device)
    return TrainedGenerator(
        generator=generator,
        latent_dim=int(generator.latent_dim),
        sample_shape=tuple(generator.sample_shape),
        weights=prefix[:-1],
        iteration=int(meta.get("iteration", 0)),
        data_spec=meta.get("data_spec"),
        meta=meta,
    )


def build_datamodule(data_spec: dict):
    """Instantiate the data module described by ``data_spec`` (as stored in checkpoints)."""
    module_name, _, class_name = data_spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    init_args = {k: v for k, v in (data_spec.get("init_args") or {}).items() if not k.startswith("_")}
    return cls(**init_args)
