"""Train the seeds of one benchmark variant in one process, as one vectorised model.

    python -m gan_suite.benchmark.vectorised_launch --seeds 0 1 2 --run-dirs DIR/runs/gan__seed0 ... \\
        [--steps N] [--checkpoint-every K] -- --config configs/gan_ring8.yaml --model.init_args.pack=2 ...

The arguments after ``--`` are those of ``gan-suite fit`` (base config and dotted overrides),
resolved with the same LightningCLI parser. The variant's VanillaGAN (MLP generator, maxout
discriminator), its Adam learning rates and betas, loss, ``d_steps``, ``gp_weight``, packing,
batch size and data module become one :class:`~gan_suite.training.vectorised.VectorisedGAN` over
the given seeds (see that module for what each seed's training is). Seed ``s`` gets what the
ordinary run with seed ``s`` gets: its initial weights (``torch.manual_seed(s)``, then G, then
D), its own data module (``data.init_args.seed = s``), whose training split it samples in
epochs (a fresh permutation, drawn from the seed's data stream, per pass).

Written for every seed into ``<run dir>/train/`` (the layout of a ``gan-suite fit`` run without
logger, so the benchmark runner evaluates it like one):

* ``config.yaml``: the resolved config of that seed (its seeds in place, no logger);
* ``checkpoints/epoch=0-step=<optimizer steps>.ckpt`` every ``--checkpoint-every`` training steps
  and ``checkpoints/last.ckpt``, in the format :func:`gan_suite.evaluation.checkpoint.load_generator`
  reads (``state_dict`` with ``generator.`` / ``discriminator.`` keys, ``gan_suite`` metadata
  with ``generator_spec``, ``data_spec``, ``iteration``);
* ``samples/step_<iteration>.png`` from GANModule's fixed noise batch, every
  ``samples.every_n_steps`` and at the end;
* ``losses.csv`` (iteration, loss_d, loss_g every ``trainer.log_every_n_steps``);
* ``vectorised.json``: ``{"status": "trained" | "diverged", "reason", "iteration", ...}``.
  A seed whose loss turns NaN / inf is ``diverged`` (its later checkpoints are not written);
  the other seeds train on.

Exit codes: 0 (see each seed's ``vectorised.json``), :data:`UNSUPPORTED_EXIT` when the config
asks for something the vectorised trainer does not do (EMA, schedulers, gradient clipping,
non-Adam optimisers, networks other than VanillaGAN's, ...; one line on stderr), else a failure.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence

#: exit code of a config the vectorised trainer cannot train (the runner then trains per seed)
UNSUPPORTED_EXIT = 3
#: the first words of the one-line refusal on stderr
UNSUPPORTED_PREFIX = "vectorised training does not support"
#: per-seed status file in the training directory
STATUS_FILE = "vectorised.json"
#: the training directory inside a run folder (the runner's no-logger layout)
TRAIN_DIR = "train"

_PROGRESS_LINES = 50
#: the model class the vectorised trainer rebuilds
VANILLA_GAN = "gan_suite.models.VanillaGAN"
#: Adam arguments that must keep their default (others, such as fused / foreach, only change speed)
_ADAM_DEFAULTS = {"eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "maximize": False}
_FULL_PRECISION = (None, 32, "32", "32-true")


class Unsupported(Exception):
    """The config asks for something the vectorised trainer does not do (message: what)."""


@dataclass
class VectorisedPlan:
    """Everything the vectorised trainer needs from a resolved config (a dict like config.yaml)."""

    config: dict
    generator_args: tuple
    discriminator_args: tuple
    g_lr: float
    d_lr: float
    betas: tuple
    loss: str
    d_steps: int
    gp_weight: float
    steps: int
    device: str
    data_spec: dict
    log_every: int
    samples_every: int
    samples_nrow: int
    num_fixed_samples: int

    def generator_factory(self):
        from gan_suite.nets.mlp import MLPGenerator

        return partial(MLPGenerator, *self.generator_args)

    def discriminator_factory(self):
        from gan_suite.nets.mlp import MaxoutDiscriminator

        return partial(MaxoutDiscriminator, *self.discriminator_args)


# ---------------------------------------------------------------------------- config
def parse_config(fit_args: Sequence[str]) -> dict:
    """The resolved config (a plain dict, as ``config.yaml`` holds it) of ``gan-suite fit`` arguments."""
    from gan_suite.training.lightning_cli import parse_fit_config

    return parse_fit_config(fit_args)


def _value(mapping: Optional[dict], key: str, default=None):
    return (mapping or {}).get(key, default) if isinstance(mapping, dict) else default


def _adam(spec, which: str) -> tuple[float, tuple]:
    if not isinstance(spec, dict):
        raise Unsupported(f"the default optimizer of VanillaGAN (SGD) for {which}: give model.init_args.{which} as torch.optim.Adam")
    if spec.get("class_path") not in ("torch.optim.Adam", "torch.optim.adam.Adam"):
        raise Unsupported(f"the optimizer {spec.get('class_path')} ({which}): only torch.optim.Adam")
    args = spec.get("init_args") or {}
    for key, default in _ADAM_DEFAULTS.items():
        if key in args and args[key] is not None and args[key] != default:
            raise Unsupported(f"Adam's {key}={args[key]} ({which}): only lr and betas")
    return float(args.get("lr", 1e-3)), tuple(float(b) for b in args.get("betas", (0.9, 0.999)))


def plan_from_config(config: dict, steps: Optional[int] = None) -> VectorisedPlan:
    """Check that ``config`` can train vectorised and collect what it needs.

    Args:
        steps: training steps (default: ``trainer.max_steps // (d_steps + 1)`` of the config).
    Raises:
        Unsupported: naming the first option the vectorised trainer does not have.
    """
    model = config.get("model") or {}
    if model.get("class_path") != VANILLA_GAN:
        raise Unsupported(f"the model {model.get('class_path')}: only {VANILLA_GAN} (MLP generator, maxout discriminator)")
    m = model.get("init_args") or {}
    refused = [
        (m.get("ema_decay") is not None, f"EMA (model.init_args.ema_decay={m.get('ema_decay')})"),
        (bool(m.get("goodfellow_schedule", True)), "learning-rate schedules (model.init_args.goodfellow_schedule=true)"),
        (m.get("g_scheduler") is not None or m.get("d_scheduler") is not None, "learning-rate schedules (model.init_args.g_scheduler / d_scheduler)"),
        (m.get("grad_clip_norm") is not None, f"gradient clipping (model.init_args.grad_clip_norm={m.get('grad_clip_norm')})"),
    ]
    for bad, what in refused:
        if bad:
            raise Unsupported(what)
    g_lr, g_betas = _adam(m.get("g_optimizer"), "g_optimizer")
    d_lr, d_betas = _adam(m.get("d_optimizer"), "d_optimizer")
    if g_betas != d_betas:
        raise Unsupported(f"different Adam betas for G {list(g_betas)} and D {list(d_betas)}")

    trainer = config.get("trainer") or {}
    if trainer.get("precision") not in _FULL_PRECISION:
        raise Unsupported(f"trainer.precision={trainer.get('precision')}: only 32-bit")
    if trainer.get("strategy") not in (None, "auto", "single_device") or int(trainer.get("num_nodes") or 1) > 1:
        raise Unsupported(f"trainer.strategy={trainer.get('strategy')}: one device only")
    if trainer.get("max_epochs") not in (None, -1):
        raise Unsupported(f"trainer.max_epochs={trainer.get('max_epochs')}: the length must be train.steps / trainer.max_steps")
    for callback in trainer.get("callbacks") or []:
        path = str(callback.get("class_path", "")) if isinstance(callback, dict) else ""
        if path.rsplit(".", 1)[-1] in _TRAINING_VIEW_CALLBACKS:
            raise Unsupported(f"trainer.callbacks has {path}: the vectorised trainer runs no callbacks")
    accelerator = str(trainer.get("accelerator") or "auto")
    if accelerator not in ("cpu", "gpu", "cuda", "auto"):
        raise Unsupported(f"trainer.accelerator={accelerator}: only cpu or cuda")
    d_steps = int(m.get("d_steps", 1))
    if steps is None:
        max_steps = trainer.get("max_steps")
        if max_steps is None or int(max_steps) < 0:
            raise Unsupported("an open-ended run: set train.steps (or trainer.max_steps)")
        steps = int(max_steps) // (d_steps + 1)

    data = config.get("data") or {}
    if not data.get("class_path"):
        raise Unsupported("a config without data module")
    sample_shape = list(m.get("sample_shape", [1, 28, 28]))
    samples = config.get("samples") or {}
    return VectorisedPlan(
        config=config,
        generator_args=(int(m.get("latent_dim", 100)), sample_shape, list(m.get("g_hidden", [1200, 1200])),
                        bool(m.get("g_batch_norm", False)), str(m.get("g_output", "tanh"))),
        discriminator_args=(sample_shape, list(m.get("d_hidden", [240, 240])), int(m.get("d_pieces", 5)),
                            float(m.get("d_input_dropout", 0.2)), float(m.get("d_hidden_dropout", 0.5)), int(m.get("pack", 1))),
        g_lr=g_lr, d_lr=d_lr, betas=g_betas, loss=str(m.get("loss", "non_saturating")), d_steps=d_steps,
        gp_weight=float(m.get("gp_weight", 10.0)), steps=int(steps), device=_device(accelerator),
        data_spec={"class_path": data["class_path"], "init_args": dict(data.get("init_args") or {})},
        log_every=max(1, int(trainer.get("log_every_n_steps") or 50)),
        samples_every=int(samples.get("every_n_steps") or 0), samples_nrow=int(samples.get("nrow") or 8),
        num_fixed_samples=int(m.get("num_fixed_samples", 64)),
    )


def _device(accelerator: str) -> str:
    if accelerator == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: callbacks whose work (stopping a run, its mode history, its film) the vectorised trainer cannot do
_TRAINING_VIEW_CALLBACKS = ("PlateauStopping", "DivergenceStopping", "ModeHistory", "TrainingFilm")


def vectorise_refusal(base_config: str, overrides: dict, steps: Optional[int] = None) -> Optional[str]:
    """Why the runs of ``base_config`` + ``overrides`` cannot train vectorised, or None if they can
    (the runner asks before launching; the launcher checks again)."""
    from gan_suite.benchmark.launch import cli_value
    from gan_suite.errors import ConfigError

    argv = ["--config", base_config] + [f"--{key}={cli_value(value)}" for key, value in overrides.items()]
    try:
        plan_from_config(parse_config(argv), steps)
    except Unsupported as err:
        return f"{UNSUPPORTED_PREFIX} {err}"
    except ConfigError as err:
        return f"the config does not parse here ({err})"
    return None


# ---------------------------------------------------------------------------- data
class EpochSampler:
    """Rows of a dataset in epochs: a permutation drawn from the caller's generator per pass
    (as a DataLoader over shuffled data serves them; a minibatch may span two passes)."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self._order = None
        self._next = 0

    def __call__(self, n: int, generator):
        import torch

        parts, size = [], len(self.dataset)
        while n > 0:
            if self._order is None or self._next >= size:
                self._order, self._next = torch.randperm(size, generator=generator), 0
            take = min(n, size - self._next)
            parts.append(self._order[self._next : self._next + take])
            self._next += take
            n -= take
        idx = torch.cat(parts)
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(idx)[0]
        return torch.stack([self.dataset[int(i)][0] for i in idx])


def seed_data(data_spec: dict, seeds: Sequence[int]) -> tuple[list, list, list]:
    """Per seed: the data module (``seed`` set), its checkpoint ``data_spec`` and an
    :class:`EpochSampler` over its training split (splits equal across seeds are shared)."""
    import torch

    from gan_suite.evaluation.checkpoint import build_datamodule

    modules, specs, samplers, loaded = [], [], [], []
    for seed in seeds:
        spec = {"class_path": data_spec["class_path"], "init_args": {**data_spec.get("init_args", {}), "seed": int(seed)}}
        module = build_datamodule(spec)
        train = module.split("train")
        samples = getattr(train, "samples", None)
        for other in loaded:  # e.g. MNIST: one copy of the images for every seed
            if isinstance(samples, torch.Tensor) and other.samples.shape == samples.shape and torch.equal(other.samples, samples):
                train = other
                break
        else:
            if isinstance(samples, torch.Tensor):
                loaded.append(train)
        cls = type(module)
        modules.append(module)
        # as in a `gan-suite fit` checkpoint: the class and the config's init_args (LightningCLI's hparams)
        specs.append({"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": spec["init_args"]})
        samplers.append(EpochSampler(train))
    return modules, specs, samplers


# ---------------------------------------------------------------------------- files
def checkpoint_name(iteration: int, d_steps: int) -> str:
    """ModelCheckpoint's name for the optimizer step of training step ``iteration``."""
    return f"epoch=0-step={iteration * (d_steps + 1)}.ckpt"


def save_checkpoint(path: str, generator_state: dict, discriminator_state: dict, meta: dict) -> str:
    """A checkpoint that :func:`gan_suite.evaluation.checkpoint.load_generator` reads (atomic replace)."""
    import torch

    state = {f"generator.{k}": v for k, v in generator_state.items()}
    state.update({f"discriminator.{k}": v for k, v in discriminator_state.items()})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save({"state_dict": state, "global_step": meta["iteration"] * (meta["d_steps"] + 1), "epoch": 0, "gan_suite": meta}, tmp)
    os.replace(tmp, path)
    return path


def seed_config(plan: VectorisedPlan, seed: int, data_spec: dict) -> dict:
    """The resolved config of seed ``seed``'s run (what ``gan-suite fit`` would have saved)."""
    import copy

    config = copy.deepcopy(plan.config)
    config["seed_everything"] = int(seed)
    config.setdefault("model", {}).setdefault("init_args", {})["seed"] = int(seed)
    config["data"] = {"class_path": plan.config["data"]["class_path"], "init_args": dict(data_spec["init_args"])}
    trainer = config.setdefault("trainer", {})
    trainer["max_steps"] = plan.steps * (plan.d_steps + 1)
    trainer["logger"] = False
    trainer["callbacks"] = None
    return config


def _write_text(path: str, text: str) -> None:
    from gan_suite.benchmark.results import atomic_write_text

    atomic_write_text(path, text)


# ---------------------------------------------------------------------------- training
def train(plan: VectorisedPlan, seeds: Sequence[int], run_dirs: Sequence[str], checkpoint_every: Optional[int] = None,
          progress=None) -> list[dict]:
    """Train ``seeds`` as one vectorised model; write every seed's files into ``<run dir>/train``.

    Args:
        checkpoint_every: also write a checkpoint every this many training steps (the curve).
        progress: ``(iteration, total) -> None`` called now and then.
    Returns:
        Per seed the status written to ``vectorised.json``.
    """
    import torch
    import yaml

    from gan_suite.training.seeding import derive_seed
    from gan_suite.training.vectorised import VectorisedGAN
    from gan_suite.visual import sample_picture_array, save_png

    if len(seeds) != len(run_dirs):
        raise ValueError("give one run directory per seed")
    started = time.time()
    modules, data_specs, samplers = seed_data(plan.data_spec, seeds)
    g_factory, d_factory = plan.generator_factory(), plan.discriminator_factory()
    batch_size = int(getattr(modules[0], "batch_size"))
    model = VectorisedGAN(
        g_factory, d_factory, seeds, samplers, g_lr=plan.g_lr, d_lr=plan.d_lr, betas=plan.betas, loss=plan.loss,
        d_steps=plan.d_steps, batch_size=batch_size, gp_weight=plan.gp_weight, device=plan.device,
    )
    train_dirs = [os.path.join(d, TRAIN_DIR) for d in run_dirs]
    g_spec, d_spec = g_factory().spec(), d_factory().spec()
    reference = None
    if hasattr(modules[0], "mixture"):
        from gan_suite.data.toy2d import mixture_geometry

        reference = mixture_geometry(modules[0].mixture)[0]
    fixed_noise = [
        torch.randn(plan.num_fixed_samples, model.latent_dim, generator=torch.Generator().manual_seed(derive_seed(s, 0xF1ED)))
        for s in seeds
    ]
    for seed, folder, spec in zip(seeds, train_dirs, data_specs):
        os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
        _write_text(os.path.join(folder, "config.yaml"), yaml.safe_dump(seed_config(plan, seed, spec), sort_keys=False))

    def meta(i: int) -> dict:
        return {
            "iteration": model.iteration, "seed": int(seeds[i]), "loss": plan.loss, "d_steps": plan.d_steps,
            "generator_spec": g_spec, "discriminator_spec": d_spec, "sampling_weights": "generator",
            "data_spec": data_specs[i], "trainer": "vectorised",
        }

    def checkpoint(alive: list, name: str) -> None:
        for i, folder in enumerate(train_dirs):
            if alive[i]:
                save_checkpoint(os.path.join(folder, "checkpoints", name), model.generator.state_dict(i),
                                model.discriminator.state_dict(i), meta(i))

    @torch.no_grad()
    def draw_samples(alive: list) -> None:
        for i, folder in enumerate(train_dirs):
            if not alive[i]:
                continue
            g = g_factory()
            g.load_state_dict(model.generator.state_dict(i))
            picture = sample_picture_array(g.eval()(fixed_noise[i]), plan.samples_nrow, reference)
            save_png(picture, os.path.join(folder, "samples", f"step_{model.iteration:07d}.png"))

    finite = torch.ones(len(seeds), dtype=torch.bool, device=model.device)  # no sync per step
    every_progress = max(1, plan.steps // _PROGRESS_LINES)
    if progress:
        progress(0, plan.steps)
    for _ in range(plan.steps):
        loss_d, loss_g = model.step()
        finite &= torch.isfinite(loss_d) & torch.isfinite(loss_g)
        it = model.iteration
        due_ckpt = bool(checkpoint_every) and it % checkpoint_every == 0
        due_samples = plan.samples_every > 0 and it % plan.samples_every == 0
        if due_ckpt or due_samples or it % every_progress == 0:
            alive = finite.tolist()
            if due_ckpt:
                checkpoint(alive, checkpoint_name(it, plan.d_steps))
            if due_samples:
                draw_samples(alive)
            if progress:
                progress(it, plan.steps)
            if not any(alive):
                break  # every seed diverged
    alive = finite.tolist()
    checkpoint(alive, "last.ckpt")
    if not (plan.samples_every > 0 and model.iteration % plan.samples_every == 0):
        draw_samples(alive)
    if progress:
        progress(model.iteration, plan.steps)

    seconds = round(time.time() - started, 2)
    statuses = []
    for i, (run, folder) in enumerate(zip(model.runs(), train_dirs)):
        _write_losses(os.path.join(folder, "losses.csv"), run.loss_d, run.loss_g, plan.log_every)
        status = {"status": "trained", "reason": None, "iteration": model.iteration, "seeds": [int(s) for s in seeds],
                  "device": str(model.device), "seconds": seconds}
        if not alive[i]:
            status.update(status="diverged", reason=_divergence(run.loss_d, run.loss_g, plan.d_steps))
        _write_text(os.path.join(folder, STATUS_FILE), json.dumps(status, indent=2) + "\n")
        statuses.append(status)
    return statuses


def _divergence(loss_d, loss_g, d_steps: int) -> str:
    """The message GANModule stops with, for the first non-finite loss of a seed."""
    import torch

    bad_d, bad_g = ~torch.isfinite(loss_d), ~torch.isfinite(loss_g)
    step = int(torch.nonzero(bad_d | bad_g)[0, 0])
    what, value = ("discriminator loss", loss_d[step]) if bad_d[step] else ("generator loss", loss_g[step])
    return (f"{what} is {float(value)} at training step {step} (optimizer step {step * (d_steps + 1)}); "
            "vectorised training: this seed's checkpoints stop at the last one before it")


def _write_losses(path: str, loss_d, loss_g, every: int) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["iteration", "loss_d", "loss_g"])
    for step in range(0, len(loss_d), every):
        writer.writerow([step, float(loss_d[step]), float(loss_g[step])])
    _write_text(path, out.getvalue())


# ---------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    from gan_suite.arguments import ArgumentParser, int_at_least

    p = ArgumentParser(
        prog="python -m gan_suite.benchmark.vectorised_launch",
        description="Train the seeds of one benchmark variant as one vectorised model; "
        "the arguments after '--' are those of `gan-suite fit`.",
    )
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--run-dirs", nargs="+", required=True, help="one run folder per seed (files go to <dir>/train)")
    p.add_argument("--steps", type=int_at_least(1), default=None, help="training steps (default: trainer.max_steps // (d_steps + 1))")
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=None, help="also checkpoint every this many training steps")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from gan_suite.benchmark.launch import PROGRESS_PREFIX
    from gan_suite.errors import GanSuiteError

    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    try:
        args = build_parser().parse_args(argv[:split])
    except GanSuiteError as err:
        print(f"gan-suite: error: {err}", file=sys.stderr)
        return 2
    fit_args = argv[split + 1 :]
    if len(args.seeds) != len(args.run_dirs):
        print("gan-suite: error: give one --run-dirs entry per seed", file=sys.stderr)
        return 2

    def progress(iteration: int, total: int) -> None:
        sys.stdout.write(PROGRESS_PREFIX + json.dumps({"iteration": iteration, "max_iterations": total}) + "\n")
        sys.stdout.flush()

    try:
        plan = plan_from_config(parse_config(fit_args), args.steps)
    except Unsupported as err:
        print(f"gan-suite: {UNSUPPORTED_PREFIX} {err}", file=sys.stderr)
        return UNSUPPORTED_EXIT
    except GanSuiteError as err:
        print(f"gan-suite: error: {err}", file=sys.stderr)
        return 2
    try:
        statuses = train(plan, args.seeds, args.run_dirs, args.checkpoint_every, progress)
    except GanSuiteError as err:
        print(f"gan-suite: error: {err}", file=sys.stderr)
        return 2
    print(f"vectorised: {len(statuses)} seeds, " + ", ".join(f"{s}: {st['status']}" for s, st in zip(args.seeds, statuses)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
