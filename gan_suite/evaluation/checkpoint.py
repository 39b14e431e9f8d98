"""Read a training checkpoint without Lightning: the sampling generator and the data it was trained on."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from gan_suite.errors import ConfigError
from gan_suite.nets.spec import build_from_spec
from gan_suite.safe_files import first_line, load_tensors


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
    ckpt = load_tensors(ckpt_path, "checkpoint")
    meta = ckpt.get("gan_suite") if isinstance(ckpt, dict) else None
    if not meta or "generator_spec" not in meta:
        raise ConfigError(f"{ckpt_path} is not a gan_suite training checkpoint (no generator spec inside)")
    if meta.get("seeds"):
        raise ConfigError(
            f"{ckpt_path} holds {len(meta['seeds'])} stacked seeds: split it first "
            "(gan_suite.training.stacked_runs.split_run, or evaluate the per-seed runs a benchmark writes)"
        )
    try:
        generator = build_from_spec(meta["generator_spec"])
    except (ConfigError, TypeError, ValueError, ImportError, AttributeError) as err:
        raise ConfigError(f"cannot rebuild the generator of {ckpt_path}: {err}") from None
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise ConfigError(f"{ckpt_path} holds no state_dict")
    prefix = "generator_ema." if use_ema and any(k.startswith("generator_ema.") for k in state) else "generator."
    try:
        generator.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    except RuntimeError as err:
        raise ConfigError(f"the generator weights in {ckpt_path} do not fit its spec: {first_line(err)}") from None
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
    """Instantiate the data module described by ``data_spec`` (as stored in checkpoints).

    Only a :class:`~gan_suite.data.base.GANDataModule` subclass is instantiated: a checkpoint must
    not be able to call any other importable callable with arguments of its choosing.
    """
    from gan_suite.data.base import GANDataModule

    module_name, _, class_name = str(data_spec.get("class_path", "")).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"data class {data_spec.get('class_path')!r} of the checkpoint cannot be imported: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, GANDataModule)):
        raise ConfigError(f"refusing data class {data_spec.get('class_path')!r} of the checkpoint: not a GANDataModule")
    init_args = {k: v for k, v in (data_spec.get("init_args") or {}).items() if not k.startswith("_")}
    return cls(**init_args)
