"""S copies of one network as one module: every parameter and buffer gets a leading seed axis.

:class:`StackedNetwork` holds the S networks' tensors stacked along dim 0 under the names one
network has (``net.0.weight`` of shape [S, out, in]), so that a stacked state dict splits into
the S ordinary state dicts with ``tensor[i]``. Its forward maps x [S, N, *in_shape] to
[S, *out_shape]: seed i's network applied to x[i].

Two ways to run the S copies at once:

* 'stacked' (networks registered with :func:`register_stacked_network`, e.g. MLPGenerator and
  MaxoutDiscriminator): batched kernels -- ``baddbmm`` with stacked weights, one ``batch_norm``
  over S x C channels (each seed its own batch and running statistics). Less dispatch than vmap:
  on one CPU core at S = 10 as fast as vmap on PacGAN's ring networks, ~1.4x faster on narrow ones
  (``benchmarks/perf/seeds_vectorised.py``).
* 'vmap' (any network torch.func supports, e.g. the DCGAN nets):
  ``vmap(functional_call(net, (params, buffers), x), randomness="different")``.

Seeds share no computation, so the gradient of a sum of per-seed losses with respect to seed i's
slice is seed i's own gradient, and an elementwise optimizer (Adam, SGD, ...) over the stacked
tensors follows each seed's own trajectory. Dropout masks are drawn for the whole stack from the
global stream (a seed's dropout is distributed as, not identical to, a separate run's).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan_suite.errors import ConfigError
from gan_suite.nets.mlp import Maxout, MaxoutDiscriminator, MLPGenerator

#: layer class -> fn(layer, prefix, params, buffers, x [S, N, ...]) -> y [S, N, ...]
_STACKED_LAYERS: dict[type, Callable] = {}
#: network class -> fn(net, run_layer, params, buffers, x [S, N, ...]) -> [S, *per-seed output]
_STACKED_NETWORKS: dict[type, Callable] = {}
#: stateless layers that act elementwise, so they apply to [S, N, ...] as they are
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout)
BACKENDS = ("auto", "stacked", "vmap")


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
    return layer(x)  # elementwise (checked by supports_stacked)


def supports_stacked(net: nn.Module) -> bool:
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
    return h.view(x.shape[0], x.shape[1], layer.units, layer.pieces).max(dim=3).values  # as Maxout.forward


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


class StackedNetwork(nn.Module):
    """S networks of one class and configuration as one module with stacked tensors.

    The module tree is that of one network (same sub-module and tensor names), each tensor
    [S, *shape]; attributes the networks define (``latent_dim``, ``sample_shape``, ``pack``,
    ``spec()``, ...) are read from the first one.

    Args:
        nets: S networks of one class and configuration (their values are copied).
        backend: 'stacked' (batched kernels; registered networks), 'vmap' or 'auto' (stacked where
            registered).
    """

    def __init__(self, nets: Sequence[nn.Module], backend: str = "auto") -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        first = nets[0]
        if any(type(n) is not type(first) for n in nets):
            raise ConfigError("stacked networks must all be of one class")
        if backend == "stacked" and not supports_stacked(first):
            raise ConfigError(f"no stacked forward for {type(first).__name__} (or one of its layers): use backend='vmap'")
        self.backend = "stacked" if backend == "stacked" or (backend == "auto" and supports_stacked(first)) else "vmap"
        self.num_seeds = len(nets)
        params, buffers = stack_module_state(list(nets))
        # a network of the same configuration without storage: its forward for vmap, its
        # attributes for the registered stacked forwards (kept out of the module tree)
        object.__setattr__(self, "_template", copy.deepcopy(first).to("meta"))
        # the tree of one network, its tensors replaced by the stacked ones
        tree = copy.deepcopy(first)
        for name, value in {**params, **buffers}.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = tree.get_submodule(owner_name) if owner_name else tree
            if leaf in owner._parameters:
                owner._parameters[leaf] = nn.Parameter(value.detach().clone(), requires_grad=value.requires_grad)
            else:
                owner._buffers[leaf] = value.clone()
        for name, child in tree.named_children():
            self.add_module(name, child)
        for leaf, value in tree._parameters.items():
            self.register_parameter(leaf, value)
        for leaf, value in tree._buffers.items():
            self.register_buffer(leaf, value)

        def call(p, b, x):
            return functional_call(self._template, (p, b), (x,))

        object.__setattr__(self, "_vmapped", vmap(call, randomness="different"))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            template = self.__dict__.get("_template")
            value = getattr(template, name, None) if template is not None and not name.startswith("_") else None
            if value is None or isinstance(value, (nn.Module, torch.Tensor)):
                raise
            return value

    def train(self, mode: bool = True):
        super().train(mode)
        self._template.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [S, N, *in_shape] -> [S, *out_shape]."""
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        if self.backend == "stacked":
            return _STACKED_NETWORKS[type(self._template)](self._template, _run_layer, params, buffers, x)
        return self._vmapped(params, buffers, x)

    def network(self, i: int) -> nn.Module:
        """Seed i's network as an ordinary module (a copy, on the CPU)."""
        dtype = next(iter(self.state_dict().values())).dtype
        net = copy.deepcopy(self._template).to_empty(device="cpu").to(dtype)
        net.load_state_dict(unstack_state(self.state_dict(), i, self.num_seeds))
        return net.train(self.training)

    def __deepcopy__(self, memo):
        # the vmapped closure refers to the template: rebuild it for the copy
        clone = copy.copy(self)
        memo[id(self)] = clone
        clone.__dict__ = {k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k != "_vmapped"}

        def call(p, b, x):
            return functional_call(clone._template, (p, b), (x,))

        object.__setattr__(clone, "_vmapped", vmap(call, randomness="different"))
        return clone


def unstack_state(state: dict, i: int, num_seeds: int) -> dict:
    """Seed i's entries of a stacked state dict: every tensor with a leading axis of
    ``num_seeds`` is indexed (cloned, on the CPU); anything else is kept as it is."""
    return {
        k: v[i].detach().cpu().clone() if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == num_seeds else v
        for k, v in state.items()
    }
