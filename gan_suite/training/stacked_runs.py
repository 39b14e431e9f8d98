"""A stacked-seeds run split into the single-seed runs it holds.

A ``gan-suite fit`` run with ``model.init_args.seeds=[s_1, ..., s_S]`` trains S GANs at once
(:mod:`gan_suite.training.module`); its checkpoints hold every tensor of G, D, the EMA and the
optimizers with a leading seed axis. :func:`split_checkpoint` takes seed i's slice of one such
checkpoint and gives back the checkpoint the run with ``seed=s_i`` would have written (same keys,
same metadata, resumable); :func:`split_run` does it for a whole run directory and writes, per
seed, the ``config.yaml`` that reproduces that seed alone with ``gan-suite fit --config``.
"""

from __future__ import annotations

import copy
import os
from typing import Optional, Sequence

import torch
import yaml

from gan_suite.errors import ConfigError
from gan_suite.safe_files import load_tensors

#: the state-dict entries that carry a seed axis (prefixes) and the one that only stacked runs have
_STACKED_PREFIXES = ("generator.", "discriminator.", "generator_ema.", "fixed_noise")
_STACKED_ONLY = "diverged_at"


def stacked_seeds(checkpoint: dict) -> Optional[list]:
    """The seeds of a stacked checkpoint (None for a single-seed one)."""
    seeds = (checkpoint.get("gan_suite") or {}).get("seeds")
    return [int(s) for s in seeds] if seeds else None


def split_checkpoint(checkpoint: dict, index: int) -> dict:
    """Seed ``seeds[index]``'s checkpoint from a stacked one (tensors cloned; the input is untouched)."""
    seeds = stacked_seeds(checkpoint)
    if seeds is None:
        raise ConfigError("not a stacked-seeds checkpoint (its metadata lists no seeds)")
    if not 0 <= index < len(seeds):
        raise ConfigError(f"seed index {index} out of range for {len(seeds)} stacked seeds")
    seed, count = seeds[index], len(seeds)

    def take(value):
        return value[index].clone() if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == count else value

    out = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "optimizer_states", "gan_suite", "hyper_parameters")}
    out["state_dict"] = {
        k: (take(v) if k.startswith(_STACKED_PREFIXES) else v) for k, v in checkpoint["state_dict"].items() if k != _STACKED_ONLY
    }
    out["optimizer_states"] = [
        {**opt, "state": {p: {name: take(v) for name, v in state.items()} for p, state in opt.get("state", {}).items()}}
        for opt in checkpoint.get("optimizer_states", [])
    ]
    meta = copy.deepcopy(checkpoint["gan_suite"])
    meta.pop("seeds", None)
    divergences = meta.pop("divergences", {}) or {}
    meta["seed"] = seed
    if isinstance(meta.get("data_spec"), dict):
        meta["data_spec"].setdefault("init_args", {})["seed"] = seed
    if str(seed) in divergences:
        meta["diverged"] = divergences[str(seed)]
    out["gan_suite"] = meta
    if "hyper_parameters" in checkpoint:
        hparams = dict(checkpoint["hyper_parameters"])
        hparams.update(seeds=None, seed=seed)
        out["hyper_parameters"] = hparams
    for key in ("datamodule_hyper_parameters",):
        if isinstance(out.get(key), dict) and "seed" in out[key]:
            out[key] = {**out[key], "seed": seed}
    return out


def single_seed_config(config: dict, seed: int) -> dict:
    """The resolved config (as config.yaml holds it) of seed ``seed`` of a stacked run's config."""
    config = copy.deepcopy(config)
    config["seed_everything"] = int(seed)
    init = config.setdefault("model", {}).setdefault("init_args", {})
    init.pop("seeds", None)
    init["seed"] = int(seed)
    config.setdefault("data", {}).setdefault("init_args", {})["seed"] = int(seed)
    return config


def split_run(stacked_dir: str, seed_dirs: Sequence[str], samples_nrow: int = 8) -> list[dict]:
    """Write each seed's run into ``seed_dirs[i]`` (config.yaml, checkpoints/, the sample grid of
    its last checkpoint in samples/) from the stacked run in ``stacked_dir`` (its config.yaml and
    checkpoints/).

    A seed that diverged keeps only the checkpoints written before the step its loss turned
    non-finite (as a single-seed run stops there); its ``last.ckpt`` is the latest of them.

    Returns:
        Per seed ``{"seed", "status": "trained" | "diverged", "reason", "iteration"}``.
    """
    with open(os.path.join(stacked_dir, "config.yaml")) as f:
        config = yaml.safe_load(f)
    seeds = [int(s) for s in ((config.get("model") or {}).get("init_args") or {}).get("seeds") or []]
    if len(seeds) != len(seed_dirs):
        raise ConfigError(f"{stacked_dir} holds {len(seeds)} stacked seeds, got {len(seed_dirs)} folders")
    ckpt_dir = os.path.join(stacked_dir, "checkpoints")
    names = sorted(n for n in os.listdir(ckpt_dir) if n.endswith(".ckpt")) if os.path.isdir(ckpt_dir) else []
    loaded = {name: load_tensors(os.path.join(ckpt_dir, name), "checkpoint") for name in names}
    statuses = []
    for i, (seed, folder) in enumerate(zip(seeds, seed_dirs)):
        os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
        with open(os.path.join(folder, "config.yaml"), "w") as f:
            yaml.safe_dump(single_seed_config(config, seed), f, sort_keys=False)
        status = {"seed": seed, "status": "trained", "reason": None, "iteration": 0}
        kept = []
        for name, ckpt in loaded.items():
            diverged_at = int(ckpt["state_dict"][_STACKED_ONLY][i]) if _STACKED_ONLY in ckpt["state_dict"] else -1
            reason = ((ckpt.get("gan_suite") or {}).get("divergences") or {}).get(str(seed))
            if diverged_at >= 0:
                status.update(status="diverged", reason=reason)
            iteration = int(ckpt["gan_suite"]["iteration"])
            if diverged_at >= 0 and iteration > diverged_at or name == "last.ckpt":
                continue
            kept.append((iteration, name, ckpt))
        for iteration, name, ckpt in kept:
            torch.save(split_checkpoint(ckpt, i), os.path.join(folder, "checkpoints", name))
        last = loaded.get("last.ckpt") if status["status"] == "trained" else None
        if last is None and kept:
            last = max(kept, key=lambda item: item[0])[2]
        if last is not None:
            single = split_checkpoint(last, i)
            torch.save(single, os.path.join(folder, "checkpoints", "last.ckpt"))
            status["iteration"] = int(single["gan_suite"]["iteration"])
            if "generator_spec" in single["gan_suite"]:
                _write_sample_grid(single, os.path.join(folder, "samples", f"step_{status['iteration']:07d}.png"), samples_nrow)
        statuses.append(status)
    return statuses


@torch.no_grad()
def _write_sample_grid(checkpoint: dict, path: str, nrow: int) -> None:
    """The sample grid :class:`~gan_suite.training.callbacks.SampleGrid` draws, from a single-seed
    checkpoint: its sampling generator on its fixed noise."""
    from gan_suite.data.toy2d import mixture_geometry
    from gan_suite.nets.spec import build_from_spec
    from gan_suite.visual import sample_picture_array, save_png

    meta, state = checkpoint["gan_suite"], checkpoint["state_dict"]
    prefix = f"{meta.get('sampling_weights', 'generator')}."
    generator = build_from_spec(meta["generator_spec"])
    generator.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    samples = generator.eval()(state["fixed_noise"].to(next(generator.parameters()).dtype))
    mixture = ((meta.get("data_spec") or {}).get("init_args") or {}).get("mixture")
    reference = mixture_geometry(mixture)[0] if samples.dim() == 2 and mixture else None
    save_png(sample_picture_array(samples.float(), nrow, reference), path)
