"""Train many seeds of one GAN variant in one process, as one vectorised model.

The S seeds' parameters and buffers are stacked along a new leading dimension
(:func:`torch.func.stack_module_state`) and one call runs all S networks on x [S, N, ...]:

* backend 'stacked' (default where registered: MLPGenerator, MaxoutDiscriminator): batched
  kernels -- ``baddbmm`` with stacked weights, one ``batch_norm`` over S x C channels;
* backend 'vmap' (any network torch.func supports, e.g. the DCGAN nets):
  ``vmap(functional_call(net, (params, buffers), x), randomness="different")``.

Per seed ``s`` this is exactly the training a separate run with seed ``s`` does
(``tests/training/test_vectorised.py`` checks every loss, k > 1, packing and BatchNorm against a
plain per-seed loop, in float64 to 1e-5):

* initialisation: ``torch.manual_seed(s); G = generator_factory(); D = discriminator_factory()``
  (the order in which :class:`~gan_suite.models.VanillaGAN` builds them), under
  :func:`torch.random.fork_rng` so that the caller's RNG is untouched;
* randomness: seed ``s`` owns a noise stream and a data stream (:func:`seed_generators`), drawn
  in the order of :meth:`GANModule.training_step <gan_suite.training.module.GANModule.training_step>`:
  per D update the real minibatch (data stream), then G's noise and, for wgan_gp, the
  interpolation weights (noise stream); then G's noise for the G update. A seed's streams do not
  depend on which other seeds train beside it (the streams themselves are not GANModule's);
* optimisers: one :class:`torch.optim.Adam` per network over the stacked leaf tensors. Adam is
  elementwise and every seed takes the same number of steps, so each seed's slice follows its own
  Adam trajectory (its own moments);
* gradients: the loss minimised is the sum over seeds of each seed's loss; seeds share no
  computation, so the gradient w.r.t. seed ``s``'s slice is seed ``s``'s own gradient (and a seed
  that diverges to NaN does not contaminate the others); likewise the input-gradient of the
  summed critic output is each seed's own, for the gradient penalty;
* BatchNorm: in train mode each seed normalises with its own batch statistics and updates its
  own slice of the stacked running statistics in place (as in GANModule; sampling uses eval
  mode and the running statistics);
* dropout: drawn independently per seed from one global stream seeded from all seeds, so with
  dropout a seed's result is distributed as, but not bit-identical to, a separate run's.

Speed (``benchmarks/perf/seeds_vectorised.py``): the gain is the per-op overhead saved, so it
depends on how small the networks are. On a CPU PacGAN's ring networks are already
compute-bound (about 1 GFLOP per step and seed, ~20-25 ms on one core), so S seeds cost about
S times one seed either way; narrow networks gain 2-3x at S = 10 on one core; on a GPU, where
one step of one seed leaves the device mostly idle, the gain should be larger (not measured).

Not supported (use :class:`~gan_suite.training.module.GANModule`): EMA, learning-rate
schedules, gradient clipping, other optimisers; BatchNorm with ``momentum=None`` only with the
stacked backend.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan_suite.errors import ConfigError
from gan_suite.losses import get_loss, gradient_penalty
from gan_suite.nets.mlp import Maxout, MaxoutDiscriminator, MLPGenerator
from gan_suite.training.seeding import derive_seed

#: (n, generator) -> n real samples [n, *sample_shape], drawn with the (CPU) generator.
DataSampler = Callable[[int, torch.Generator], torch.Tensor]
Device = Union[str, torch.device]

_NOISE_STREAM, _DATA_STREAM, _DROPOUT_STREAM, _SAMPLE_STREAM = 0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004


@dataclass
class SeedRun:
    """The result of one seed.

    Attributes:
        seed: the seed.
        generator_state, discriminator_state: ordinary ``state_dict``s (CPU tensors) that
            ``generator_factory().load_state_dict`` / ``discriminator_factory()...`` accept.
        loss_d: [steps] D's loss at the last D update of each step (gradient penalty included).
        loss_g: [steps] G's loss of each step.
    """

    seed: int
    generator_state: dict
    discriminator_state: dict
    loss_d: torch.Tensor
    loss_g: torch.Tensor


def seed_generators(seed: int, device: Device = "cpu") -> tuple[torch.Generator, torch.Generator]:
    """Seed ``seed``'s two streams: (noise generator on ``device``, data generator on the CPU)."""
    noise = torch.Generator(device=torch.device(device)).manual_seed(derive_seed(seed, _NOISE_STREAM))
    data = torch.Generator().manual_seed(derive_seed(seed, _DATA_STREAM))
    return noise, data


def build_seeded(factory: Callable[[], nn.Module], seed: int, *more: Callable[[], nn.Module]) -> list[nn.Module]:
    """``torch.manual_seed(seed)`` then build ``factory()`` and each of ``more`` in turn, leaving
    the global RNG as it was: the initialisation a run seeded with ``seed`` gets."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [f() for f in (factory, *more)]


# ---------------------------------------------------------------------------- stacked forwards
# A "stacked forward" runs S copies of a network on x [S, N, ...] with batched kernels (bmm,
# one batch_norm over S x C channels) instead of vmap: the same arithmetic with less
# dispatch (on one CPU core at S = 10: as fast as vmap on PacGAN's ring networks, ~1.4x
# faster on narrow ones; benchmarks/perf/seeds_vectorised.py).
# Networks are registered by class; their layers by class too. Anything else uses vmap.

#: layer class -> fn(layer, prefix, params, buffers, x [S, N, ...]) -> y [S, N, ...]
_STACKED_LAYERS: dict[type, Callable] = {}
#: network class -> fn(net, run_layer, params, buffers, x [S, N, ...]) -> [S, *per-seed output]
_STACKED_NETWORKS: dict[type, Callable] = {}
#: stateless layers that act elementwise, so they apply to [S, N, ...] as they are
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout)


def register_stacked_layer(cls: type):
    """Decorator: ``fn(layer, prefix, params, buffers, x)`` runs S stacked copies of a ``cls`` layer."""
    def wrap(fn):
        _STACKED_LAYERS[cls] = fn
        return fn
    return wrap


def register_stacked_network(cls: type):
    """Decorator: ``fn(net, run_layer, params, buffers, x)`` runs S stacked copies of a ``cls``
    network, calling ``run_layer(module, prefix, params, buffers, x)`` for its registered layers."""
    def wrap(fn):
        _STACKED_NETWORKS[cls] = fn
        return fn
    return wrap


def _run_layer(layer: nn.Module, prefix: str, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.Sequential):
        for name, child in layer.named_children():
            x = _run_layer(child, f"{prefix}{name}.", params, buffers, x)
        return x
    if type(layer) in _STACKED_LAYERS:
        return _STACKED_LAYERS[type(layer)](layer, prefix, params, buffers, x)
    return layer(x)  # elementwise (checked by _supports_stacked)


def _supports_stacked(net: nn.Module) -> bool:
    """Whether ``net``'s class is registered and every module under it can run stacked."""

    def ok(module: nn.Module) -> bool:
        if type(module) in _STACKED_LAYERS:
            return True
        if isinstance(module, nn.Sequential):
            return all(ok(child) for child in module.children())
        return isinstance(module, _ELEMENTWISE) and next(module.parameters(), None) is None

    return type(net) in _STACKED_NETWORKS and all(ok(child) for child in net.children())


@register_stacked_layer(nn.Linear)
def _stacked_linear(layer, prefix, params, buffers, x):
    """[S, N, in] -> [S, N, out]."""
    weight, bias = params[prefix + "weight"], params.get(prefix + "bias")
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


@register_stacked_layer(nn.BatchNorm1d)
def _stacked_batch_norm(layer, prefix, params, buffers, x):
    """[S, N, C] -> [S, N, C] as one batch_norm over S x C channels: per-seed batch statistics in
    training, per-seed running statistics (updated in place in the stacked buffers)."""
    if x.dim() != 3:
        raise ConfigError("the stacked BatchNorm1d supports [N, C] inputs per seed")
    S, N, C = x.shape
    flat = lambda t: None if t is None else t.reshape(S * C)  # noqa: E731  (views of contiguous stacks)
    running_mean, running_var = buffers.get(prefix + "running_mean"), buffers.get(prefix + "running_var")
    use_batch_stats = layer.training or running_mean is None
    momentum = 0.0 if layer.momentum is None else layer.momentum
    if layer.training and layer.track_running_stats and running_mean is not None:
        tracked = buffers[prefix + "num_batches_tracked"]
        tracked.add_(1)
        if layer.momentum is None:  # cumulative average; every seed has seen as many batches
            momentum = 1.0 / float(tracked[0])
    y = F.batch_norm(
        x.transpose(0, 1).reshape(N, S * C), flat(running_mean), flat(running_var),
        flat(params.get(prefix + "weight")), flat(params.get(prefix + "bias")), use_batch_stats, momentum, layer.eps,
    )
    return y.view(N, S, C).transpose(0, 1)


@register_stacked_layer(nn.Flatten)
def _stacked_flatten(layer, prefix, params, buffers, x):
    start = layer.start_dim if layer.start_dim < 0 else layer.start_dim + 1
    end = layer.end_dim if layer.end_dim < 0 else layer.end_dim + 1
    return x.flatten(start, end)


@register_stacked_layer(Maxout)
def _stacked_maxout(layer, prefix, params, buffers, x):
    """[S, N, in] -> [S, N, units]."""
    h = _stacked_linear(layer.linear, prefix + "linear.", params, buffers, x)
    return h.view(x.shape[0], x.shape[1], layer.units, layer.pieces).amax(dim=3)


@register_stacked_network(MLPGenerator)
def _stacked_mlp_generator(net, run_layer, params, buffers, z):
    """z [S, N, latent_dim] -> [S, N, *sample_shape]."""
    return run_layer(net.net, "net.", params, buffers, z).reshape(z.shape[0], z.shape[1], *net.sample_shape)


@register_stacked_network(MaxoutDiscriminator)
def _stacked_maxout_discriminator(net, run_layer, params, buffers, x):
    """x [S, N, *sample_shape] -> [S, N / pack] (pack_samples per seed)."""
    S, N = x.shape[:2]
    if N % net.pack:
        raise ConfigError(f"batch of {N} samples is not divisible by the packing degree {net.pack}")
    packed = x.reshape(S, N // net.pack, net.pack * x.shape[2], *x.shape[3:])
    return run_layer(net.net, "net.", params, buffers, packed).squeeze(2)


class StackedNetwork:
    """S copies of one network as stacked parameters and buffers.

    ``self.params[name]`` / ``self.buffers[name]`` are [S, *shape] leaf tensors; calling the
    object with x [S, N, *in_shape] returns [S, *out_shape] (seed i's network on x[i]).

    Args:
        nets: S networks of one class and configuration (their values are copied).
        backend: 'stacked' (batched kernels; networks registered with
            :func:`register_stacked_network`), 'vmap' (``vmap(functional_call)``, any network
            that torch.func supports) or 'auto' (stacked where registered).
    """

    def __init__(self, nets: Sequence[nn.Module], backend: str = "auto") -> None:
        if backend not in ("auto", "stacked", "vmap"):
            raise ConfigError(f"backend must be 'auto', 'stacked' or 'vmap', got {backend!r}")
        if getattr(nets[0], "num_classes", 0):
            raise ConfigError("the vectorised trainer has no class-conditional step: train conditional models with gan-suite fit")
        if backend == "stacked" and not _supports_stacked(nets[0]):
            raise ConfigError(f"no stacked forward for {type(nets[0]).__name__} (or one of its layers): use backend='vmap'")
        self.backend = "stacked" if backend == "stacked" or (backend == "auto" and _supports_stacked(nets[0])) else "vmap"
        self.params, self.buffers = stack_module_state(list(nets))
        self.template = copy.deepcopy(nets[0]).to("meta")
        self.state_keys = list(nets[0].state_dict().keys())

        def call(params, buffers, x):
            return functional_call(self.template, (params, buffers), (x,))

        self._vmapped = vmap(call, randomness="different")

    def __call__(self, x: torch.Tensor, *, frozen: bool = False) -> torch.Tensor:
        """Forward x [S, N, ...]; ``frozen`` passes detached parameters (no gradient to them)."""
        params = {k: v.detach() for k, v in self.params.items()} if frozen else self.params
        if self.backend == "stacked":
            return _STACKED_NETWORKS[type(self.template)](self.template, _run_layer, params, self.buffers, x)
        return self._vmapped(params, self.buffers, x)

    def state_dict(self, i: int) -> dict:
        """Seed i's ordinary state dict (CPU copies)."""
        stacked = {**self.params, **self.buffers}
        return {k: stacked[k][i].detach().cpu().clone() for k in self.state_keys}


class _SeedStreams:
    """The per-seed noise and data streams, each draw stacked to [S, ...]."""

    def __init__(self, seeds: Sequence[int], device: torch.device, dtype: torch.dtype) -> None:
        pairs = [seed_generators(s, device) for s in seeds]
        self.noise = [p[0] for p in pairs]
        self.data = [p[1] for p in pairs]
        self.device, self.dtype = device, dtype

    def draw(self, sampler: Callable, *shape: int) -> torch.Tensor:
        """[S, *shape] from ``sampler`` (torch.randn / torch.rand), seed i's slice from its stream."""
        return torch.stack([sampler(*shape, generator=g, device=self.device, dtype=self.dtype) for g in self.noise])

    def real(self, data_samplers: Sequence[DataSampler], n: int) -> torch.Tensor:
        """[S, n, *sample_shape] real samples, seed i's from ``data_samplers[i]`` and its data stream."""
        return torch.stack([sampler(n, g) for sampler, g in zip(data_samplers, self.data)]).to(self.device, self.dtype)


class VectorisedGAN:
    """S seeds of one GAN as one vectorised model, trained step by step.

    Args:
        generator_factory: ``() -> nn.Module`` mapping noise [N, latent_dim] to samples
            [N, *sample_shape]; exposes ``latent_dim``.
        discriminator_factory: ``() -> nn.Module`` mapping samples [N, *sample_shape] to raw
            outputs [N / pack]; may expose ``pack``.
        seeds: distinct integer seeds, one GAN each (S = len(seeds)).
        data_sampler: ``(n, generator) -> [n, *sample_shape]`` real samples drawn with the given
            CPU generator (e.g. fresh points of a 2-D mixture, or rows of a dataset picked with
            ``torch.randint(len(data), (n,), generator=generator)``), or a sequence of S such
            samplers, one per seed (e.g. when each seed's data module holds its own training set,
            or a sampler keeps per-seed state such as an epoch's permutation).
        g_lr, d_lr, betas: Adam's learning rates and betas.
        loss: a name in :data:`gan_suite.losses.LOSSES`.
        d_steps: D updates per G update (k), each on a fresh real minibatch and fresh noise.
        batch_size: samples per minibatch (divisible by D's ``pack``).
        gp_weight: lambda of the gradient penalty (wgan_gp).
        device: where to train; dtype: cast the networks (None keeps the factories' dtype).
        fused_adam: Adam's fused kernel (``fused=True``: the same update in one pass over the
            stacked tensors; on the CPU several times faster than the default per-tensor loop
            on S x larger tensors). False: ``torch.optim.Adam``'s default implementation.
        backend: how S networks run at once: 'stacked' (batched kernels; registered networks,
            e.g. MLPGenerator and MaxoutDiscriminator), 'vmap' (torch.func; any network) or
            'auto' (stacked where registered, else vmap); see :class:`StackedNetwork`.

    Attributes:
        generator, discriminator: the :class:`StackedNetwork` s.
        iteration: training steps done.
    """

    def __init__(
        self,
        generator_factory: Callable[[], nn.Module],
        discriminator_factory: Callable[[], nn.Module],
        seeds: Sequence[int],
        data_sampler: Union[DataSampler, Sequence[DataSampler]],
        *,
        g_lr: float,
        d_lr: float,
        betas: tuple[float, float],
        loss: str = "non_saturating",
        d_steps: int = 1,
        batch_size: int = 100,
        gp_weight: float = 10.0,
        device: Device = "cpu",
        dtype: Optional[torch.dtype] = None,
        fused_adam: bool = True,
        backend: str = "auto",
    ) -> None:
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ConfigError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        if d_steps < 1 or batch_size < 1:
            raise ConfigError(f"need d_steps >= 1 and batch_size >= 1 (got {d_steps}, {batch_size})")
        self.loss_fn = get_loss(loss)
        self.device = torch.device(device)
        self.data_sampler, self.d_steps, self.batch_size, self.gp_weight = data_sampler, d_steps, batch_size, gp_weight
        self.data_samplers = [data_sampler] * len(self.seeds) if callable(data_sampler) else list(data_sampler)
        if len(self.data_samplers) != len(self.seeds):
            raise ConfigError(f"give one data sampler, or one per seed ({len(self.seeds)}), not {len(self.data_samplers)}")

        nets = [build_seeded(generator_factory, s, discriminator_factory) for s in self.seeds]
        gens = [g.to(device=self.device, dtype=dtype).train() for g, _ in nets]
        discs = [d.to(device=self.device, dtype=dtype).train() for _, d in nets]
        self.pack = int(getattr(discs[0], "pack", 1))
        if batch_size % self.pack:
            raise ConfigError(f"batch_size {batch_size} is not divisible by the packing degree {self.pack}")
        self.latent_dim = int(gens[0].latent_dim)
        self.generator, self.discriminator = StackedNetwork(gens, backend), StackedNetwork(discs, backend)
        del nets, gens, discs
        adam = partial(torch.optim.Adam, betas=betas, **({"fused": True} if fused_adam else {}))
        self.opt_g = adam(list(self.generator.params.values()), lr=g_lr)
        self.opt_d = adam(list(self.discriminator.params.values()), lr=d_lr)
        self._streams = _SeedStreams(self.seeds, self.device, next(iter(self.generator.params.values())).dtype)
        self._d_loss = vmap(self.loss_fn.discriminator)  # ([S, N'], [S, N']) -> [S]
        self._g_loss = vmap(self.loss_fn.generator)  # [S, N'] -> [S]
        self._penalty = vmap(partial(gradient_penalty, pack=self.pack))  # [S, N, ...] -> [S]
        # dropout draws from the global RNG (vmap randomness="different"); keep a stream of our own
        self._rng_devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=self._rng_devices):
            torch.manual_seed(derive_seed(*self.seeds, _DROPOUT_STREAM))
            self._rng_state = _get_rng_state(self.device)
        self.iteration = 0
        self._losses_d: list[torch.Tensor] = []
        self._losses_g: list[torch.Tensor] = []

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step for every seed: ``d_steps`` D updates, then one G update.

        Returns (loss_d [S] of the last D update, loss_g [S]), detached, on ``device``.
        """
        G, D, streams, n = self.generator, self.discriminator, self._streams, self.batch_size
        with torch.random.fork_rng(devices=self._rng_devices):
            _set_rng_state(self.device, self._rng_state)
            for _ in range(self.d_steps):
                real = streams.real(self.data_samplers, n)  # [S, B, *sample_shape]
                with torch.no_grad():
                    fake = G(streams.draw(torch.randn, n, self.latent_dim))  # [S, B, *sample_shape]
                loss_d = self._d_loss(D(real), D(fake))  # [S]
                if self.loss_fn.gradient_penalty:
                    mix = streams.draw(torch.rand, n, *([1] * (real.dim() - 2)))  # [S, B, 1, ...]
                    mixed = (mix * real + (1 - mix) * fake).requires_grad_(True)
                    # Seeds are independent, so the input-gradient of the sum is each seed's own.
                    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
                    loss_d = loss_d + self.gp_weight * self._penalty(grad)
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.sum().backward()
                self.opt_d.step()
            loss_g = self._g_loss(D(G(streams.draw(torch.randn, n, self.latent_dim)), frozen=True))  # [S]
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.sum().backward()
            self.opt_g.step()
            self._rng_state = _get_rng_state(self.device)
        self.iteration += 1
        self._losses_d.append(loss_d.detach())
        self._losses_g.append(loss_g.detach())
        return self._losses_d[-1], self._losses_g[-1]

    def runs(self) -> list[SeedRun]:
        """One :class:`SeedRun` per seed (in the order of ``seeds``): states and loss curves so far."""
        S = len(self.seeds)
        curve_d = torch.stack(self._losses_d, 1).cpu() if self._losses_d else torch.zeros(S, 0)  # [S, steps]
        curve_g = torch.stack(self._losses_g, 1).cpu() if self._losses_g else torch.zeros(S, 0)
        return [
            SeedRun(s, self.generator.state_dict(i), self.discriminator.state_dict(i), curve_d[i].clone(), curve_g[i].clone())
            for i, s in enumerate(self.seeds)
        ]


def _get_rng_state(device: torch.device):
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device: torch.device, state) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def train_seeds_vectorised(
    generator_factory: Callable[[], nn.Module],
    discriminator_factory: Callable[[], nn.Module],
    seeds: Sequence[int],
    data_sampler: Union[DataSampler, Sequence[DataSampler]],
    steps: int,
    *,
    g_lr: float,
    d_lr: float,
    betas: tuple[float, float],
    loss: str = "non_saturating",
    d_steps: int = 1,
    batch_size: int = 100,
    gp_weight: float = 10.0,
    device: Device = "cpu",
    dtype: Optional[torch.dtype] = None,
    fused_adam: bool = True,
    backend: str = "auto",
    progress: bool = True,
    on_step: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None,
) -> list[SeedRun]:
    """Train one GAN per seed, all seeds at once, for ``steps`` steps (= G updates).

    See the module docstring for what is guaranteed per seed and :class:`VectorisedGAN` for the
    arguments. ``progress`` shows a tqdm bar; ``on_step(step, loss_d [S], loss_g [S])`` is
    called after every step (e.g. for logging or timing).

    Returns:
        One :class:`SeedRun` per seed, in the order of ``seeds``.
    """
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}")
    model = VectorisedGAN(
        generator_factory, discriminator_factory, seeds, data_sampler, g_lr=g_lr, d_lr=d_lr, betas=betas, loss=loss,
        d_steps=d_steps, batch_size=batch_size, gp_weight=gp_weight, device=device, dtype=dtype,
        fused_adam=fused_adam, backend=backend,
    )
    bar = _progress(steps, len(model.seeds), progress)
    for step in range(steps):
        loss_d, loss_g = model.step()
        if on_step is not None:
            on_step(step, loss_d, loss_g)
        if bar is not None:
            bar.update(1)
            if step % 100 == 0 or step == steps - 1:
                bar.set_postfix(loss_d=f"{loss_d.mean().item():.3f}", loss_g=f"{loss_g.mean().item():.3f}")
    if bar is not None:
        bar.close()
    return model.runs()


def _progress(steps: int, num_seeds: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc=f"{num_seeds} seeds", unit="step")


@torch.no_grad()
def sample_seeds(
    generator_factory: Callable[[], nn.Module], runs: Sequence[SeedRun], n: int, *, device: Device = "cpu"
) -> torch.Tensor:
    """``n`` samples of each run's generator, in eval mode (BatchNorm uses running statistics).

    Each run's generator is an ordinary ``generator_factory()`` loaded with its state dict; its
    noise comes from a stream of its own seed, so the samples do not depend on the other runs.

    Returns:
        [S, n, *sample_shape] on ``device``.
    """
    out = []
    for run in runs:
        (g,) = build_seeded(generator_factory, run.seed)
        g.load_state_dict(run.generator_state)
        g.to(device).eval()
        dtype = next(g.parameters()).dtype
        gen = torch.Generator(device=torch.device(device)).manual_seed(derive_seed(run.seed, _SAMPLE_STREAM))
        out.append(g(torch.randn(n, g.latent_dim, generator=gen, device=device, dtype=dtype)))
    return torch.stack(out)


def run_toy2d_seeds(
    mixture: str,
    seeds: Sequence[int],
    steps: int,
    pack: int = 1,
    loss: str = "non_saturating",
    *,
    d_steps: int = 1,
    batch_size: int = 100,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.8, 0.999),
    g_hidden: Sequence[int] = (400, 400, 400, 400),
    g_batch_norm: bool = True,
    d_hidden: Sequence[int] = (200, 200, 200),
    d_pieces: int = 5,
    num_samples: int = 2500,
    device: Device = "cpu",
    progress: bool = True,
) -> list[dict]:
    """The mode-collapse benchmark on a 2-D mixture (PacGAN's protocol), one GAN per seed.

    Defaults are PacGAN's networks and optimiser (G 4 x 400 ReLU + BatchNorm, linear output,
    2-d noise; D maxout 3 x 200 x 5 pieces, no dropout; Adam lr 1e-4, beta1 0.8; batch 100).
    Real minibatches are fresh draws from the mixture (:func:`gan_suite.data.toy2d.sample_mixture`).

    Args:
        mixture: 'ring8' or 'grid25'.
        seeds, steps, pack, loss, d_steps, batch_size: see :func:`train_seeds_vectorised`.
        lr, betas: Adam's for both networks.
        g_hidden, g_batch_norm, d_hidden, d_pieces: network sizes.
        num_samples: samples per trained G scored by :func:`mixture_mode_metrics`.

    Returns:
        Per seed {'seed', 'modes_covered', 'high_quality' (share in [0, 1]), 'kl' (reverse KL,
        NaN without high-quality samples), 'histogram' (int64 [M]), 'final_loss_d', 'final_loss_g',
        'samples' ([num_samples, 2] float32, CPU), 'run' (the :class:`SeedRun`)}.
    """
    from gan_suite.data.toy2d import mixture_geometry, sample_mixture
    from gan_suite.evaluation.metrics.modes import mixture_mode_metrics

    centres, std = mixture_geometry(mixture)
    g_factory = partial(MLPGenerator, 2, (2,), list(g_hidden), g_batch_norm, "linear")
    d_factory = partial(MaxoutDiscriminator, (2,), list(d_hidden), d_pieces, 0.0, 0.0, pack)
    runs = train_seeds_vectorised(
        g_factory, d_factory, seeds, lambda n, gen: sample_mixture(mixture, n, gen)[0], steps,
        g_lr=lr, d_lr=lr, betas=betas, loss=loss, d_steps=d_steps, batch_size=batch_size, device=device,
        progress=progress,
    )
    samples = sample_seeds(g_factory, runs, num_samples, device=device)  # [S, num_samples, 2]
    results = []
    for run, points in zip(runs, samples):
        metrics = mixture_mode_metrics(points.float(), centres, std)
        results.append({
            "seed": run.seed, **metrics, "final_loss_d": _last(run.loss_d), "final_loss_g": _last(run.loss_g),
            "samples": points.float().cpu(), "run": run,
        })
    return results


def _last(curve: torch.Tensor) -> float:
    return float(curve[-1]) if len(curve) else math.nan
