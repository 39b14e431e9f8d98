"""The GAN LightningModule: alternating D/G updates with manual optimization.

One training step (Goodfellow et al. 2014, Algorithm 1) performs ``d_steps`` discriminator
updates, each on its own fresh real minibatch and fresh noise, then one generator update on fresh
noise. The data module therefore yields ``d_steps * batch_size`` real samples per step.

Step counting: ``self.iteration`` counts training steps (= generator updates). Lightning's
``trainer.global_step`` and ``trainer.max_steps`` count optimizer updates, ``d_steps + 1`` per
training step.

Stacked seeds (``seeds=[s_1, ..., s_S]``): the same step trains S independent GANs at once. G and
D become :class:`~gan_suite.nets.stacked.StackedNetwork` s (each tensor with a leading seed axis;
seed ``s``'s networks are built as a run seeded with ``s`` builds them: ``torch.manual_seed(s)``,
then G, then D), the data module yields [S, k * B, ...] batches (seed ``s``'s own data module and
order, see :class:`~gan_suite.data.base.GANDataModule`), every noise draw is stacked from each
seed's own stream, and the minimised loss is the sum over seeds of each seed's loss. Seeds share
no computation and the optimizers' updates are elementwise, so seed ``s``'s slice follows exactly
the training of a separate run with ``seed=s`` (``tests/training/test_stacked_seeds.py`` checks
it against separate GANModule runs); gradient clipping is per seed. Logged losses are means over
the seeds. A seed whose loss turns non-finite is recorded as diverged (``diverged_at``) and the
others train on; the run stops when every seed has diverged. The in-training evaluation
(:class:`~gan_suite.evaluation.callback.EvaluationCallback`, without best checkpoint) evaluates
every seed. Not with class-conditional models, channels_last, compile, several processes or the
callbacks that watch one seed (``supports_stacked_seeds = False``); dropout masks are drawn for the whole stack (a
seed's dropout is distributed as, not identical to, a separate run's).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
from typing import Callable, Optional, Union

import pytorch_lightning as pl
import torch
from torch import nn

from gan_suite.errors import ConfigError, NonFiniteLossError
from gan_suite.losses import GANLoss, gradient_penalty, get_loss
from gan_suite.nets.spec import build_from_spec
from gan_suite.nets.stacked import StackedNetwork
from gan_suite.training.ema import update_ema
from gan_suite.seeding import derive_seed

from pytorch_lightning.cli import LRSchedulerCallable as SchedulerFactory
from pytorch_lightning.cli import OptimizerCallable as OptimizerFactory

#: Radford et al.'s optimizer (Adam, lr 2e-4, beta1 0.5), the default of both networks
ADAM_DCGAN = {"class_path": "torch.optim.Adam", "init_args": {"lr": 2e-4, "betas": [0.5, 0.999]}}


def conditioned(net: nn.Module, x: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
    """``net(x, labels)`` for a class-conditional network, ``net(x)`` otherwise."""
    return net(x) if labels is None else net(x, labels)


class DiscriminatorPass(nn.Module):
    """D on real, fake and (optionally) interpolated samples in one forward.

    One forward per backward is what DDP needs (see :mod:`gan_suite.training.ddp`).

    Args of ``forward``:
        real, fake: [B, *sample_shape]; ``fake`` carries no graph to G.
        gp_mix: [B, 1, ...] interpolation weights in [0, 1] for the gradient penalty, or None.
        labels: [B] class labels of ``real`` (and of ``fake``, generated for the same labels) for a
            class-conditional D, or None.
    Returns:
        (real_out [B/m], fake_out [B/m], penalty scalar or None); for a
        :class:`~gan_suite.nets.stacked.StackedNetwork` D every tensor has a leading seed axis S
        (inputs [S, B, ...], outputs [S, B/m], penalty [S]).
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator
        pack = getattr(discriminator, "pack", 1)
        self._penalty = functools.partial(gradient_penalty, pack=pack)
        if isinstance(discriminator, StackedNetwork):
            self._penalty = torch.vmap(self._penalty)

    def forward(self, real: torch.Tensor, fake: torch.Tensor, gp_mix: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None):
        d = self.discriminator
        real_out, fake_out = conditioned(d, real, labels), conditioned(d, fake, labels)
        penalty = None
        if gp_mix is not None:
            mixed = (gp_mix * real + (1 - gp_mix) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(conditioned(d, mixed, labels).sum(), mixed, create_graph=True)
            penalty = self._penalty(grad)
        return real_out, fake_out, penalty


class GANModule(pl.LightningModule):
    """A GAN with any generator and discriminator.

    Args:
        generator: maps noise [N, latent_dim] to samples [N, *sample_shape]; must expose
            ``latent_dim`` and ``sample_shape``.
        discriminator: maps samples [N, *sample_shape] to raw outputs [N / pack]; exposes
            ``sample_shape`` and (optionally) ``pack``.
        Class-conditional networks (``num_classes`` > 0 on both, see
        :mod:`gan_suite.nets.conditional`) take labels as a second argument: D's update
        conditions the fakes on the labels of the real minibatch, G's update on labels drawn
        uniformly from the step's noise stream.
        loss: 'minimax', 'non_saturating', 'least_squares', 'hinge' or 'wgan_gp'.
        d_steps: discriminator updates per generator update (k).
        reuse_fakes: G's update backpropagates through the fakes of the step's last D update
            (generated with gradients there, then detached for D) instead of generating a new
            batch: one forward pass of G fewer per step. G's update then sees fakes that D has
            just been trained on, conditioned on that D minibatch's labels.
        gp_weight: weight lambda of the gradient penalty (wgan_gp).
        g_optimizer, d_optimizer: callables ``params -> Optimizer`` (default Adam 2e-4, (0.5, 0.999)).
        g_scheduler, d_scheduler: callables ``optimizer -> LRScheduler``, stepped once per
            training step (G's) and once per discriminator update (D's).
        grad_clip_norm: clip each network's gradient norm to this value before its update.
        ema_decay: keep an exponential moving average of G with this decay and sample from it.
        ema_start: training step from which the EMA averages (before it, it copies G).
        seed: seed of the noise streams (and of the fixed noise batch).
        rank_invariant_noise: every rank draws the global noise batch and keeps its slice, so a
            run's result does not depend on the number of ranks (costs world_size x the noise).
        num_fixed_samples: size of the fixed noise batch used for sample grids.
        check_finite_every_n_steps: test the losses for NaN/inf every n steps (1 = every step;
            every test is a host synchronisation on GPU; 0 disables). A NaN loss makes NaN
            weights, so with n > 1 it is caught at the next tested step.
        channels_last: keep convolutional G and D (their 4-D weights) and the image batches in
            the channels_last memory format (faster convolutions on recent GPUs).
        compile: ``torch.compile`` G and D in place (``nn.Module.compile``: the state dict keeps
            its keys) when fitting starts; True for torch's default backend (inductor), or the
            name of a backend ('aot_eager', 'cudagraphs', ...). Not with 'wgan_gp' (compiled
            graphs have no double backward).
        optimizer_kernels: None (torch's default: foreach on CUDA, a per-tensor loop on CPU),
            'fused', 'foreach' or 'for_loop': the optimizers are built with these kernels
            (``fused=True`` needs an optimizer that has it: Adam, AdamW, SGD, ...).
        seeds: train these S seeds at once as stacked networks (see the module docstring);
            ``seed`` is then unused. The networks must record their spec
            (:class:`~gan_suite.nets.spec.RebuildableMixin`): each seed's pair is rebuilt from it.

    Performance notes (see docs/performance.md): nothing in a training step synchronises with
    the device except the finiteness test and, on logging steps, the logged values; bf16
    autocast is the Trainer's ``precision="bf16-mixed"``.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: str = "non_saturating",
        d_steps: int = 1,
        reuse_fakes: bool = False,
        gp_weight: float = 10.0,
        g_optimizer: Optional[OptimizerFactory] = ADAM_DCGAN,
        d_optimizer: Optional[OptimizerFactory] = ADAM_DCGAN,
        g_scheduler: Optional[SchedulerFactory] = None,
        d_scheduler: Optional[SchedulerFactory] = None,
        grad_clip_norm: Optional[float] = None,
        ema_decay: Optional[float] = None,
        ema_start: int = 0,
        seed: int = 0,
        rank_invariant_noise: bool = False,
        num_fixed_samples: int = 64,
        check_finite_every_n_steps: int = 1,
        channels_last: bool = False,
        compile: Union[bool, str] = False,
        optimizer_kernels: Optional[str] = None,
        seeds: Optional[list[int]] = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if d_steps < 1:
            raise ConfigError(f"d_steps must be >= 1, got {d_steps}")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {ema_decay}")
        for name, net, attrs in (("generator", generator, ("latent_dim", "sample_shape")), ("discriminator", discriminator, ("sample_shape",))):
            for attr in attrs:
                if not hasattr(net, attr):
                    raise ConfigError(f"the {name} {type(net).__name__} must define the attribute {attr!r}")
        if optimizer_kernels not in _OPTIMIZER_KERNELS:
            raise ConfigError(f"optimizer_kernels must be one of {sorted(k for k in _OPTIMIZER_KERNELS if k)} or None, got {optimizer_kernels!r}")
        if compile and get_loss(loss).gradient_penalty:
            raise ConfigError(f"compile=True does not work with the {loss!r} loss: compiled graphs have no double backward")
        if getattr(generator, "num_classes", 0) != getattr(discriminator, "num_classes", 0):
            raise ConfigError(
                f"the generator has num_classes={getattr(generator, 'num_classes', 0)} but the discriminator "
                f"num_classes={getattr(discriminator, 'num_classes', 0)}"
            )
        if tuple(generator.sample_shape) != tuple(discriminator.sample_shape):
            raise ConfigError(
                f"generator makes samples of shape {tuple(generator.sample_shape)} but the discriminator "
                f"expects {tuple(discriminator.sample_shape)}"
            )
        self.seeds = _check_seeds(seeds, generator, discriminator, channels_last, compile) if seeds is not None else None
        if self.seeds is not None:
            generator, discriminator = _stacked_networks(generator, discriminator, self.seeds)
        self.channels_last = channels_last
        if channels_last:
            generator, discriminator = _to_channels_last(generator), _to_channels_last(discriminator)
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = None
        if ema_decay is not None:
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        self.loss_fn: GANLoss = get_loss(loss)
        self.loss_name = loss
        self.d_steps = d_steps
        self.reuse_fakes = reuse_fakes
        self.gp_weight = gp_weight
        self._g_optimizer_factory = optimizer_factory(g_optimizer if g_optimizer is not None else ADAM_DCGAN)
        self._d_optimizer_factory = optimizer_factory(d_optimizer if d_optimizer is not None else ADAM_DCGAN)
        self._g_scheduler_factory = g_scheduler
        self._d_scheduler_factory = d_scheduler
        self.grad_clip_norm = grad_clip_norm
        self.ema_decay = ema_decay
        self.ema_start = ema_start
        self.seed = seed if self.seeds is None else self.seeds[0]
        self.rank_invariant_noise = rank_invariant_noise
        self.check_finite_every_n_steps = check_finite_every_n_steps
        self.compile_networks = compile
        self.optimizer_kernels = optimizer_kernels
        self.latent_dim = generator.latent_dim
        #: classes G and D are conditioned on (0: unconditional)
        self.num_classes = int(getattr(generator, "num_classes", 0))
        self.sample_shape = tuple(generator.sample_shape)
        self.pack = int(getattr(discriminator, "pack", 1))
        #: training steps (generator updates) done; saved in checkpoints.
        self.iteration = 0
        self.register_buffer("fixed_noise", _fixed_noise(seed if self.seeds is None else self.seeds, num_fixed_samples, self.latent_dim))
        if self.seeds is not None:
            #: per seed: the training step at which its loss turned non-finite (-1: still training)
            self.register_buffer("diverged_at", torch.full((len(self.seeds),), -1, dtype=torch.long))
        self._loss_d, self._loss_g = self.loss_fn.discriminator, self.loss_fn.generator
        if self.seeds is not None:  # [S, N'] -> [S]: each seed's own loss
            self._loss_d, self._loss_g = torch.vmap(self._loss_d), torch.vmap(self._loss_g)
        # DDP wrappers live outside the module tree so that state dicts keep their plain keys.
        self._ddp: dict[str, nn.Module] = {}
        self._noise_gen: Optional[torch.Generator] = None
        self._draw = 0
        self._skip_nvml_check = False
        self._compiled = False
        #: stacked seeds: seed -> why its training stopped (saved in checkpoints)
        self.divergences: dict[str, str] = {}

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets ``_current_fx_name`` twice around every hook it calls (about 40 times a
        # training step); nn.Module.__setattr__ spends microseconds on each looking for
        # parameters, buffers and sub-modules of that name. These attributes are never any of
        # those, so they are stored directly.
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------------ set-up
    def configure_optimizers(self):
        opt_g = _with_kernels(self._g_optimizer_factory(self.generator.parameters()), self.optimizer_kernels)
        opt_d = _with_kernels(self._d_optimizer_factory(self.discriminator.parameters()), self.optimizer_kernels)
        schedulers = []
        if self._g_scheduler_factory is not None:
            schedulers.append({"scheduler": self._g_scheduler_factory(opt_g), "interval": "step", "name": "lr_g"})
        if self._d_scheduler_factory is not None:
            schedulers.append({"scheduler": self._d_scheduler_factory(opt_d), "interval": "step", "name": "lr_d"})
        return [opt_g, opt_d], schedulers

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        data_shape = tuple(getattr(datamodule, "sample_shape", ()))
        if data_shape and data_shape != self.sample_shape:
            raise ConfigError(
                f"the data gives samples of shape {data_shape} but the model is built for {self.sample_shape}: "
                "make the model's image size / channels match the data"
            )
        data_classes = getattr(datamodule, "num_classes", None)
        if self.num_classes and data_classes != self.num_classes:
            raise ConfigError(
                f"the model is conditioned on {self.num_classes} classes but the data has "
                f"{data_classes or 'no'} label classes: set model num_classes to match"
            )
        batch = getattr(datamodule, "batch_size", None)
        if batch is not None and batch % self.pack:
            raise ConfigError(f"data.batch_size {batch} is not divisible by the packing degree {self.pack}")
        if hasattr(datamodule, "minibatches_per_step"):
            datamodule.minibatches_per_step = self.d_steps
        if self.seeds is not None:
            if not hasattr(datamodule, "stacked_seeds"):
                raise ConfigError(f"stacked seeds need a GANDataModule (one data stream per seed), got {type(datamodule).__name__}")
            if self.trainer.world_size > 1:
                raise ConfigError("stacked seeds train in one process: use one device, or train the seeds as separate runs")
            datamodule.stacked_seeds = list(self.seeds)
            for callback in self.trainer.callbacks:
                if not getattr(callback, "supports_stacked_seeds", True):
                    raise ConfigError(f"the callback {type(callback).__name__} watches one seed: train the seeds as separate runs to use it")
        strategy = self.trainer.strategy
        from pytorch_lightning.strategies import DDPStrategy

        from gan_suite.training.ddp import SeparateNetworksDDPStrategy

        if isinstance(strategy, DDPStrategy) and not isinstance(strategy, SeparateNetworksDDPStrategy):
            raise ConfigError(
                "Lightning's 'ddp' strategy wraps G and D in one DDP module, which breaks the GAN step: "
                "use --trainer.strategy gan_ddp"
            )

    def on_fit_start(self) -> None:
        if self.compile_networks and not self._compiled:
            options = {} if self.compile_networks is True else {"backend": self.compile_networks}
            self.generator.compile(**options)
            self.discriminator.compile(**options)
            self._compiled = True
        self._skip_nvml_check = self.device.type == "cpu" and _nvml_check_is_futile()

    def wrap_networks_for_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Called by :class:`SeparateNetworksDDPStrategy`: wrap G and the D pass separately."""
        self._ddp = {"generator": wrap(self.generator), "discriminator_pass": wrap(DiscriminatorPass(self.discriminator))}

    def unwrap_networks(self) -> None:
        self._ddp = {}

    def _generator_for_update(self) -> nn.Module:
        return self._ddp.get("generator", self.generator)

    def _discriminator_pass(self) -> nn.Module:
        if "discriminator_pass" not in self._ddp:
            self._ddp["discriminator_pass"] = DiscriminatorPass(self.discriminator)
        return self._ddp["discriminator_pass"]

    # ------------------------------------------------------------------ randomness
    def _start_step_randomness(self) -> None:
        """Seed this step's streams from (seed, rank, iteration): exact resume, distinct ranks."""
        rank = self.global_rank
        # The default generator of the device drives dropout; the noise generator drives z and the
        # penalty mixes. (torch.manual_seed would also queue a lazy CUDA seeding with a formatted
        # stack trace on every call when CUDA is not initialised: slow, and it grows a queue.)
        dropout_seed = derive_seed(self.seed, rank, self.iteration, 0x0D40)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or 0].manual_seed(dropout_seed)
        else:
            torch.default_generator.manual_seed(dropout_seed)
        if self._noise_gen is None or self._noise_gen.device != self.device:
            self._noise_gen = torch.Generator(device=self.device)
        self._draw = 0

    def _draw_random(self, sampler: Callable, n: int, *shape: int) -> torch.Tensor:
        """A fresh draw [n, *shape] of ``sampler`` (torch.randn / torch.rand) from this step's stream.

        With ``rank_invariant_noise`` every rank draws the global [n * world_size, *shape] tensor
        and keeps its own slice, so the union over ranks equals a single process's draw.
        """
        self._draw += 1
        if self.seeds is not None:  # [S, n, *shape], seed s's slice from its own stream
            return torch.stack([self._draw_from_stream(sampler, seed, n, shape) for seed in self.seeds])
        return self._draw_from_stream(sampler, self.seed, n, shape)

    def _draw_from_stream(self, sampler: Callable, seed: int, n: int, shape: tuple) -> torch.Tensor:
        world = self.trainer.world_size if self._trainer is not None else 1
        if self.rank_invariant_noise:
            self._noise_gen.manual_seed(derive_seed(seed, self.iteration, self._draw))
            full = sampler(n * world, *shape, device=self.device, generator=self._noise_gen)
            return full[self.global_rank * n : (self.global_rank + 1) * n]
        self._noise_gen.manual_seed(derive_seed(seed, self.global_rank, self.iteration, self._draw))
        return sampler(n, *shape, device=self.device, generator=self._noise_gen)

    def sample_noise(self, n: int) -> torch.Tensor:
        """Fresh noise [n, latent_dim] ([S, n, latent_dim] for stacked seeds) from this step's stream."""
        return self._draw_random(torch.randn, n, self.latent_dim)

    def sample_labels(self, n: int) -> torch.Tensor:
        """Fresh uniform class labels [n] int64 from this step's stream (conditional models)."""

        def uniform(n, device, generator):
            return torch.randint(self.num_classes, (n,), device=device, generator=generator)

        return self._draw_random(uniform, n)

    def _sample_mix(self, real: torch.Tensor) -> torch.Tensor:
        """Interpolation weights [B, 1, ...] ([S, B, 1, ...]) in [0, 1) for the gradient penalty."""
        axis = self._batch_axis
        return self._draw_random(torch.rand, real.shape[axis], *([1] * (real.dim() - 1 - axis)))

    @property
    def _batch_axis(self) -> int:
        """The sample axis of batches: 1 for stacked seeds ([S, B, ...]), else 0."""
        return 0 if self.seeds is None else 1

    # ------------------------------------------------------------------ the step
    def training_step(self, batch, batch_idx: int):
        if not self._skip_nvml_check:
            return self._training_step(batch)
        os.environ.pop(_NVML_VARIABLE, None)  # see _nvml_check_is_futile
        try:
            return self._training_step(batch)
        finally:
            os.environ[_NVML_VARIABLE] = "1"

    def _training_step(self, batch):
        real_all = batch[0] if isinstance(batch, (list, tuple)) else batch
        labels_all = batch[1] if self.num_classes else None
        if self.channels_last and real_all.dim() == 4:
            real_all = real_all.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self._schedulers()
        self._start_step_randomness()
        check = self.check_finite_every_n_steps > 0 and self.iteration % self.check_finite_every_n_steps == 0
        log_now = self._should_log()
        minibatch = real_all.shape[self._batch_axis] // self.d_steps

        labels_split = labels_all.split(minibatch) if labels_all is not None else [None] * self.d_steps
        kept = None
        for i, (real, labels) in enumerate(zip(real_all.split(minibatch, dim=self._batch_axis), labels_split)):
            keep = self.reuse_fakes and i == self.d_steps - 1
            d_stats, kept = self._discriminator_update(real, labels, opt_d, check, log_now, keep)
            if sched_d is not None:
                sched_d.step()
        g_stats = self._generator_update(minibatch, opt_g, check, log_now, kept)
        if sched_g is not None:
            sched_g.step()
        if self.generator_ema is not None:
            update_ema(self.generator_ema, self.generator, self.ema_decay if self.iteration >= self.ema_start else 0.0)
        self.iteration += 1
        if log_now:
            losses = {"loss_d": d_stats.pop("loss_d"), "loss_g": g_stats.pop("loss_g")}
            self.log_dict(losses, on_step=True, prog_bar=True)
            self.log_dict({**d_stats, **g_stats, "iteration": float(self.iteration)}, on_step=True)

    def _discriminator_update(self, real: torch.Tensor, labels: Optional[torch.Tensor], opt_d, check: bool, log_now: bool, keep_fakes: bool = False):
        """One D update on ``real`` and fresh fakes; returns (stats, (fakes, labels) with G's graph when ``keep_fakes``, else None)."""
        noise = self.sample_noise(real.shape[self._batch_axis])
        kept = None
        if keep_fakes:
            kept = (conditioned(self._generator_for_update(), noise, labels), labels)
            fake = kept[0].detach()
        else:
            with torch.no_grad():
                fake = conditioned(self.generator, noise, labels)
        mix = self._sample_mix(real) if self.loss_fn.gradient_penalty else None
        real_out, fake_out, penalty = self._discriminator_pass()(real, fake, mix, labels)
        loss_d = self._loss_d(real_out, fake_out)  # scalar, or [S] for stacked seeds
        if penalty is not None:
            loss_d = loss_d + self.gp_weight * penalty
        if check:
            self._raise_if_nonfinite(loss_d, "discriminator loss")
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d if self.seeds is None else loss_d.sum())
        stats = {}
        if log_now:
            stats["grad_norm_d"] = _grad_norm(self.discriminator)
        if self.grad_clip_norm is not None:
            self._clip_gradients(opt_d, self.discriminator)
        opt_d.step()
        if log_now:
            with torch.no_grad():
                stats.update(loss_d=loss_d.detach().mean(), d_real=self.to_score(real_out).mean(), d_fake=self.to_score(fake_out).mean())
                if penalty is not None:
                    stats["gradient_penalty"] = penalty.detach().mean()
        return stats, kept

    def _generator_update(self, n: int, opt_g, check: bool, log_now: bool, kept=None) -> dict:
        """One G update on n fresh fakes, or on ``kept`` = (fakes with G's graph, their labels)."""
        if kept is None:
            z = self.sample_noise(n)
            labels = self.sample_labels(n) if self.num_classes else None
            kept = (conditioned(self._generator_for_update(), z, labels), labels)
        fake, labels = kept
        self.toggle_optimizer(opt_g)  # freezes D's parameters: no D gradients are computed
        try:
            fake_out = conditioned(self.discriminator, fake, labels)
            loss_g = self._loss_g(fake_out)  # scalar, or [S] for stacked seeds
            if check:
                self._raise_if_nonfinite(loss_g, "generator loss")
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g if self.seeds is None else loss_g.sum())
            grad_norm = _grad_norm(self.generator) if log_now else None
            if self.grad_clip_norm is not None:
                self._clip_gradients(opt_g, self.generator)
            opt_g.step()
        finally:
            self.untoggle_optimizer(opt_g)
        if not log_now:
            return {}
        return {"loss_g": loss_g.detach().mean(), "grad_norm_g": grad_norm}

    def _clip_gradients(self, optimizer, net: nn.Module) -> None:
        """Clip ``net``'s gradient norm to ``grad_clip_norm`` (per seed for stacked seeds)."""
        if self.seeds is None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip_norm, gradient_clip_algorithm="norm")
            return
        # torch.nn.utils.clip_grad_norm_'s rule (coefficient max / (norm + 1e-6), at most 1) with
        # one norm per seed; no library function clips slices of a tensor separately
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if not grads:
            return
        norms = torch.linalg.vector_norm(torch.stack([g.flatten(1).norm(dim=1) for g in grads]), dim=0)  # [S]
        coef = (self.grad_clip_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))

    def _raise_if_nonfinite(self, loss: torch.Tensor, what: str) -> None:
        if self.seeds is not None:
            self._record_divergence(loss, what)
            return
        bad = not bool(torch.isfinite(loss.detach()))
        if self._trainer is not None and self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise NonFiniteLossError(
                f"{what} is {loss.item()} at training step {self.iteration} (optimizer step "
                f"{self.trainer.global_step}); training stopped, the last saved checkpoint is untouched"
            )

    def _record_divergence(self, loss: torch.Tensor, what: str) -> None:
        """Stacked seeds: mark the seeds whose ``loss`` [S] is non-finite; stop when none is left."""
        loss = loss.detach()
        new = (~torch.isfinite(loss)) & (self.diverged_at < 0)
        if not bool(new.any()):
            return
        self.diverged_at[new] = self.iteration
        step = self.trainer.global_step if self._trainer is not None else 0
        for i in new.nonzero().flatten().tolist():
            self.divergences[str(self.seeds[i])] = (
                f"{what} is {loss[i].item()} at training step {self.iteration} (optimizer step {step}); training of this seed stopped"
            )
        if bool((self.diverged_at >= 0).all()):
            first = new.nonzero()[0, 0]
            raise NonFiniteLossError(
                f"{what} is {loss[first].item()} at training step {self.iteration} (optimizer step {step}) and every stacked "
                "seed has diverged; training stopped, the last saved checkpoint is untouched"
            )

    def _should_log(self) -> bool:
        if self._trainer is None:
            return True
        every = max(int(self.trainer.log_every_n_steps), 1)
        return self.iteration % every == 0

    def _schedulers(self):
        scheds = self.lr_schedulers()
        if scheds is None:
            return None, None
        scheds = scheds if isinstance(scheds, list) else [scheds]
        by_name = {}
        configs = self.trainer.strategy.lr_scheduler_configs if self._trainer is not None else []
        for cfg, s in zip(configs, scheds):
            by_name[cfg.name] = s
        return by_name.get("lr_g"), by_name.get("lr_d")

    # ------------------------------------------------------------------ sampling
    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA generator when enabled, otherwise the trained generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, labels: Optional[torch.Tensor] = None, trained: bool = False) -> torch.Tensor:
        """Samples [N, *sample_shape] from noise [N, latent_dim] (stacked seeds: [S, N, ...] from
        [S, N, latent_dim], seed i's G on noise[i]; and, for a conditional model,
        labels [N]; default: sample i gets class i mod num_classes), with G in eval mode: from the
        sampling generator (the EMA one when enabled), or with ``trained`` from the trained G."""
        g = self.generator if trained else self.sampling_generator
        with _eval_mode(g):
            return conditioned(g, noise.to(self.device), None if labels is None else labels.to(self.device))

    def to_score(self, raw: torch.Tensor) -> torch.Tensor:
        """D's raw outputs as scores: the probability of "real" (sigmoid) for probabilistic losses
        (minimax, non-saturating), the raw output otherwise. Same shape as ``raw``."""
        return torch.sigmoid(raw) if self.loss_fn.probabilistic else raw

    @torch.no_grad()
    def discriminator_score(self, samples: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scores (:meth:`to_score`) [N / pack] of samples [N, *sample_shape] (with their labels [N]
        for a conditional D), with D in eval mode."""
        with _eval_mode(self.discriminator):
            return self.to_score(conditioned(self.discriminator, samples.to(self.device), None if labels is None else labels.to(self.device)))

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        meta = {"iteration": self.iteration, "seed": self.seed, "loss": self.loss_name, "d_steps": self.d_steps}
        if self.seeds is not None:
            meta.update(seeds=list(self.seeds), divergences=dict(self.divergences))
        for name in ("generator", "discriminator"):
            net = getattr(self, name)
            if hasattr(net, "spec"):
                meta[f"{name}_spec"] = net.spec()
        meta["sampling_weights"] = "generator_ema" if self.generator_ema is not None else "generator"
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None:
            cls = type(datamodule)
            meta["data_spec"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": {k: v for k, v in datamodule.hparams.items() if not k.startswith("_")}}
        checkpoint["gan_suite"] = meta

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("gan_suite", {})
        self.iteration = int(meta.get("iteration", 0))
        if self.seeds is not None:
            if list(meta.get("seeds") or []) != list(self.seeds):
                raise ConfigError(f"the checkpoint holds the stacked seeds {meta.get('seeds')}, the model {self.seeds}")
            self.divergences = dict(meta.get("divergences") or {})


@contextlib.contextmanager
def _eval_mode(net: nn.Module):
    """``net`` in eval mode inside the block, back in its previous mode after it."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def optimizer_factory(spec: Union[OptimizerFactory, dict]) -> OptimizerFactory:
    """``params -> Optimizer`` from a callable, or from a config value ``{class_path, init_args}``
    naming a ``torch.optim.Optimizer`` subclass (the form the defaults take, so that
    ``--print_config`` shows the optimizer that runs)."""
    if callable(spec):
        return spec
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ConfigError(f"an optimizer is a callable or {{class_path: ..., init_args: {{...}}}}, got {spec!r}")
    import functools
    import importlib

    module_name, _, class_name = str(spec["class_path"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"optimizer class not found: {spec['class_path']}") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"{spec['class_path']} is not a torch.optim.Optimizer")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (spec.get("init_args") or {}).items()}
    return functools.partial(cls, **kwargs)


def _grad_norm(module: nn.Module) -> torch.Tensor:
    """The gradient norm of ``module`` (stacked networks: the mean over seeds of each seed's)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if isinstance(module, StackedNetwork):
        return torch.linalg.vector_norm(torch.stack([g.flatten(1).norm(dim=1) for g in grads]), dim=0).mean()
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _check_seeds(seeds, generator: nn.Module, discriminator: nn.Module, channels_last: bool, compile) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("seeds must list at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    if getattr(generator, "num_classes", 0):
        raise ConfigError("stacked seeds do not train class-conditional models: train each seed as its own run")
    if channels_last or compile:
        raise ConfigError("stacked seeds do not take channels_last or compile")
    for name, net in (("generator", generator), ("discriminator", discriminator)):
        if not hasattr(net, "spec"):
            raise ConfigError(f"stacked seeds rebuild each seed's networks from their spec: the {name} {type(net).__name__} records none")
    return seeds


def _stacked_networks(generator: nn.Module, discriminator: nn.Module, seeds: list[int]) -> tuple[StackedNetwork, StackedNetwork]:
    """Per seed s: ``torch.manual_seed(s)``, then G and D rebuilt from their specs (the order and
    the RNG a run seeded with s builds them in), stacked; the global RNG is left as it was."""
    pairs = []
    for s in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            g = build_from_spec(generator.spec()).to(next(generator.parameters()).dtype)
            d = build_from_spec(discriminator.spec()).to(next(discriminator.parameters()).dtype)
        pairs.append((g, d))
    return StackedNetwork([g for g, _ in pairs]), StackedNetwork([d for _, d in pairs])


def _fixed_noise(seeds: Union[int, list], n: int, latent_dim: int) -> torch.Tensor:
    """The fixed noise batch of sample grids: [n, latent_dim] of one seed, or [S, n, latent_dim]
    for a list of seeds."""
    if isinstance(seeds, list):
        return torch.stack([_fixed_noise(s, n, latent_dim) for s in seeds])
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(derive_seed(seeds, 0xF1ED)))


#: attributes set on every step (by Lightning around each hook call, or by the step itself) that
#: are never parameters, buffers or sub-modules: GANModule.__setattr__ stores them directly.
_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "_draw", "iteration", "_param_requires_grad_state"})

_OPTIMIZER_KERNELS = {None: {}, "fused": {"fused": True, "foreach": False}, "foreach": {"foreach": True, "fused": False}, "for_loop": {"foreach": False, "fused": False}}


def _with_kernels(optimizer: torch.optim.Optimizer, kernels: Optional[str]) -> torch.optim.Optimizer:
    """``optimizer`` rebuilt (before any step, so nothing is lost) with fused / foreach / for-loop kernels."""
    flags = _OPTIMIZER_KERNELS[kernels]
    if not flags:
        return optimizer
    missing = [k for k in flags if k not in optimizer.defaults]
    if missing:
        raise ConfigError(f"optimizer_kernels={kernels!r}: {type(optimizer).__name__} has no option {missing[0]!r}")
    groups = [{**group, **flags} for group in optimizer.param_groups]
    return type(optimizer)(groups, **{**optimizer.defaults, **flags})


def _to_channels_last(net: nn.Module) -> nn.Module:
    """``net`` with its 4-D parameters and buffers in channels_last (other tensors untouched)."""
    if any(p.dim() == 4 for p in net.parameters()):
        net.to(memory_format=torch.channels_last)
    return net


_NVML_VARIABLE = "PYTORCH_NVML_BASED_CUDA_CHECK"


def _nvml_check_is_futile() -> bool:
    """Whether PYTORCH_NVML_BASED_CUDA_CHECK=1 buys nothing but time in this process.

    Lightning sets the variable when imported, so that torch.cuda.is_available() asks NVML
    instead of initialising CUDA (which would leave forked processes unable to use CUDA).
    Adam's step() calls is_available() every time; without a GPU driver each call tries to load
    libnvidia-ml, fails, and asks the CUDA runtime anyway: about 0.2 ms per optimizer step on
    CPU. Where the variable is set and no GPU is visible there is nothing to protect, so
    :meth:`GANModule.training_step` removes it while it runs.
    """
    return os.environ.get(_NVML_VARIABLE) == "1" and torch.backends.cuda.is_built() and torch.cuda.device_count() == 0
