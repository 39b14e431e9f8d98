"""The baseline of the training-step benchmark: a plain PyTorch GAN loop, no Lightning.

Same networks (:mod:`gan_suite.nets`), losses (:mod:`gan_suite.losses`), optimizers, batch
size, k and update order as :class:`gan_suite.training.module.GANModule`; what it leaves out is
everything the suite adds around the arithmetic: the Trainer loop and hooks, the DataLoader and
step-indexed sampler, per-step seeding, the NaN check and logging. The real data is one float
tensor in [-1, 1] held in memory; minibatches are random rows of it (``torch.randint``).

One training step (Goodfellow et al. 2014, Algorithm 1), written independently of GANModule for
the cases it covers (one seed, unconditional, no gradient penalty, EMA or clipping):
  k times: real [B] <- data;  fake = G(z) without grad;  loss_d(D(real), D(fake));  D step
  once:    D's parameters frozen;  loss_g(D(G(z)));  G step;  D unfrozen
(schedulers, when the case has them, are stepped after each update, as GANModule does).

The cases (:data:`CASES`) are the networks of the training-step benchmark; each also says
how to build the same model as a Lightning module and its data module, so both sides of
``benchmarks/perf/train_step.py`` come from one definition.

Run alone: ``python benchmarks/perf/plain_loop.py --case quickstart --steps 50``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from gan_suite.losses import get_loss
from gan_suite.nets import DCGANDiscriminator, DCGANGenerator, MaxoutDiscriminator, MLPGenerator
from gan_suite.training.schedules import GoodfellowSchedule


def _adam(lr: float, betas: tuple[float, float]) -> Callable:
    def make(params, fused: Optional[bool] = None, foreach: Optional[bool] = None) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused, foreach=foreach)

    return make


def _goodfellow_sgd(params, fused: Optional[bool] = None, foreach: Optional[bool] = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.5, fused=fused, foreach=foreach)


@dataclass
class Case:
    """One benchmark case: networks, optimizers, batch, k, loss, data.

    Attributes:
        make_nets: () -> (G, D), freshly initialised.
        make_optimizer: (params, fused=None, foreach=None) -> optimizer (same for G and D).
        scheduler: optimizer -> LR scheduler, or None (stepped once per update, as GANModule).
        batch: minibatch B of one update; k: D updates per G update.
        model: (**GANModule options) -> the same model as a gan_suite LightningModule.
        data: (**data options) -> its GANDataModule.
    """

    name: str
    description: str
    make_nets: Callable[[], tuple[nn.Module, nn.Module]]
    make_optimizer: Callable
    batch: int
    model: Callable
    data: Callable
    scheduler: Optional[Callable] = None
    k: int = 1
    loss: str = "non_saturating"
    conv: bool = False
    extra: dict = field(default_factory=dict)


def _quickstart() -> Case:
    """The first quickstart configuration: DCGAN 28 px, 1 channel, widths 32, Adam 2e-4 (0.5, 0.999),
    batch 64 (``configs/quickstart.yaml`` has since narrowed D and raised the learning rate; the
    performance tables keep this case)."""
    from gan_suite.data import MNISTBundled
    from gan_suite.models import DCGAN

    nets = dict(image_size=28, channels=1, g_width=32, d_width=32)

    def make_nets():
        return DCGANGenerator(100, 28, 1, 32), DCGANDiscriminator(28, 1, 32, "batch", 1)

    def model(**options):
        return DCGAN(**nets, loss="non_saturating", **options)

    return Case(
        "quickstart", "DCGAN 28px w32 (first quickstart), Adam, B=64", make_nets, _adam(2e-4, (0.5, 0.999)), 64,
        model, lambda **kw: MNISTBundled(image_size=28, batch_size=64, **kw), conv=True,
    )


def _current_quickstart() -> Case:
    """``configs/quickstart.yaml``'s networks, loss and batch: DCGAN 28 px, latent 32, G 32, D 16,
    least squares, batch 32; Adam (0, 0.99) at 1e-3 for both networks (the config gives G 2e-3: the
    learning rate does not change a step's cost)."""
    from gan_suite.data import MNISTBundled
    from gan_suite.models import DCGAN

    nets = dict(image_size=28, channels=1, latent_dim=32, g_width=32, d_width=16)
    adam = _adam(1e-3, (0.0, 0.99))

    def make_nets():
        return DCGANGenerator(32, 28, 1, 32), DCGANDiscriminator(28, 1, 16, "batch", 1)

    def model(**options):
        return DCGAN(**nets, loss="least_squares", g_optimizer=adam, d_optimizer=adam, **options)

    return Case(
        "current-quickstart", "DCGAN 28px latent 32, G 32, D 16 (configs/quickstart.yaml's nets), least squares, Adam 1e-3 (0, 0.99), B=32",
        make_nets, adam, 32, model, lambda **kw: MNISTBundled(image_size=28, batch_size=32, **kw), loss="least_squares", conv=True,
    )


def _dcgan64() -> Case:
    """DCGAN at 64 px (Radford et al. 2016: widths 64, batch 128, Adam 2e-4 (0.5, 0.999)) on the
    bundled MNIST digits resized to 64 x 64, 1 channel (the only 64 px data that needs no download)."""
    from gan_suite.data import MNISTBundled
    from gan_suite.models import DCGAN

    def make_nets():
        return DCGANGenerator(100, 64, 1, 64), DCGANDiscriminator(64, 1, 64, "batch", 1)

    def model(**options):
        return DCGAN(image_size=64, channels=1, g_width=64, d_width=64, loss="non_saturating", **options)

    return Case(
        "dcgan64", "DCGAN 64px w64 (bundled MNIST resized, 1 channel), Adam, B=128", make_nets, _adam(2e-4, (0.5, 0.999)), 128,
        model, lambda **kw: MNISTBundled(image_size=64, batch_size=128, **kw), conv=True,
    )


def _goodfellow() -> Case:
    """VanillaGAN defaults: MLP 100-1200-1200-784, maxout D 240x5-240x5 with dropout, SGD + schedule, batch 100."""
    from gan_suite.data import MNISTBundled
    from gan_suite.models import VanillaGAN

    def make_nets():
        return MLPGenerator(100, (1, 28, 28), (1200, 1200), False, "tanh"), MaxoutDiscriminator((1, 28, 28), (240, 240), 5, 0.2, 0.5, 1)

    return Case(
        "goodfellow", "Goodfellow MLP GAN (VanillaGAN defaults), SGD+schedule, B=100", make_nets, _goodfellow_sgd, 100,
        lambda **options: VanillaGAN(**options), lambda **kw: MNISTBundled(image_size=28, batch_size=100, **kw),
        scheduler=GoodfellowSchedule,
    )


def _ring8() -> Case:
    """configs/gan_ring8.yaml: G 2-400x4(BN)-2, maxout D 200x5 x3, Adam 1e-4 (0.8, 0.999), batch 100."""
    from functools import partial

    from gan_suite.data import Toy2D
    from gan_suite.models import VanillaGAN

    def make_nets():
        return MLPGenerator(2, (2,), (400,) * 4, True, "linear"), MaxoutDiscriminator((2,), (200,) * 3, 5, 0.0, 0.0, 1)

    def model(**options):
        opt = partial(torch.optim.Adam, lr=1e-4, betas=(0.8, 0.999))
        return VanillaGAN(
            sample_shape=[2], latent_dim=2, g_hidden=[400] * 4, g_batch_norm=True, g_output="linear", d_hidden=[200] * 3,
            d_pieces=5, d_input_dropout=0.0, d_hidden_dropout=0.0, goodfellow_schedule=False, g_optimizer=opt, d_optimizer=opt,
            **options,
        )

    return Case(
        "ring8", "toy-2D GAN (configs/gan_ring8.yaml), Adam, B=100", make_nets, _adam(1e-4, (0.8, 0.999)), 100, model,
        lambda **kw: Toy2D(mixture="ring8", num_samples=100_000, batch_size=100, **kw),
    )


def _tiny() -> Case:
    """Overhead probe: G 2-8-2, D maxout 8x2 on 2-D points, Adam, batch 100. The arithmetic costs
    almost nothing, so Lightning minus plain is the per-step overhead in absolute terms."""
    from functools import partial

    from gan_suite.data import Toy2D
    from gan_suite.models import VanillaGAN

    def make_nets():
        return MLPGenerator(2, (2,), (8,), False, "linear"), MaxoutDiscriminator((2,), (8,), 2, 0.0, 0.0, 1)

    def model(**options):
        opt = partial(torch.optim.Adam, lr=1e-4, betas=(0.8, 0.999))
        return VanillaGAN(
            sample_shape=[2], latent_dim=2, g_hidden=[8], g_output="linear", d_hidden=[8], d_pieces=2, d_input_dropout=0.0,
            d_hidden_dropout=0.0, goodfellow_schedule=False, g_optimizer=opt, d_optimizer=opt, **options,
        )

    return Case(
        "tiny", "overhead probe: G 2-8-2, D maxout 8x2, Adam, B=100", make_nets, _adam(1e-4, (0.8, 0.999)), 100, model,
        lambda **kw: Toy2D(mixture="ring8", num_samples=10_000, batch_size=100, **kw),
    )


CASES: dict[str, Callable[[], Case]] = {
    "quickstart": _quickstart, "current-quickstart": _current_quickstart, "dcgan64": _dcgan64, "goodfellow": _goodfellow, "ring8": _ring8, "tiny": _tiny,
}


def real_data(case: Case) -> torch.Tensor:
    """The case's training set as one float32 tensor in [-1, 1] (the samples the data module serves)."""
    dm = case.data()
    ds = dm.split("train")
    x, _ = ds.__getitems__(list(range(len(ds))))
    return x.contiguous()


class PlainLoop:
    """The plain training loop of ``case`` on ``device``.

    Args:
        case: a :class:`Case`.
        device: 'cpu' or 'cuda'.
        seed: initialisation and sampling seed.
        channels_last: conv nets and image batches in channels_last memory format.
        bf16: forward passes under ``torch.autocast(device, torch.bfloat16)``.
        fused: fused optimizer kernels (``fused=True``, CUDA); foreach: the foreach kernels.
        compile: ``torch.compile`` G and D.
        reuse_fakes: G's update backpropagates through the last D update's fakes (generated with
            gradients there) instead of generating a new batch, as ``GANModule(reuse_fakes=True)``.
    """

    def __init__(
        self, case: Case, device: str = "cpu", seed: int = 0, channels_last: bool = False, bf16: bool = False,
        fused: Optional[bool] = None, foreach: Optional[bool] = None, compile: bool = False, reuse_fakes: bool = False,
    ) -> None:
        torch.manual_seed(seed)
        self.reuse_fakes = reuse_fakes
        self.case, self.device = case, torch.device(device)
        self.G, self.D = (m.to(self.device) for m in case.make_nets())
        self.memory_format = torch.channels_last if channels_last and case.conv else torch.contiguous_format
        if self.memory_format is torch.channels_last:
            self.G, self.D = self.G.to(memory_format=torch.channels_last), self.D.to(memory_format=torch.channels_last)
        self._kernels = {"fused": fused, "foreach": foreach}
        self._initial = [copy.deepcopy(self.G.state_dict()), copy.deepcopy(self.D.state_dict())]
        self._make_optimizers()
        self.g_fwd = torch.compile(self.G) if compile else self.G
        self.d_fwd = torch.compile(self.D) if compile else self.D
        self.loss = get_loss(case.loss)
        self.data = real_data(case).to(self.device)
        if self.data.dim() == 4:
            self.data = self.data.contiguous(memory_format=self.memory_format)
        self.bf16 = bf16
        self.latent_dim = self.G.latent_dim

    def _make_optimizers(self) -> None:
        case = self.case
        self.opt_g = case.make_optimizer(self.G.parameters(), **self._kernels)
        self.opt_d = case.make_optimizer(self.D.parameters(), **self._kernels)
        self.sched_g = case.scheduler(self.opt_g) if case.scheduler else None
        self.sched_d = case.scheduler(self.opt_d) if case.scheduler else None

    def reset(self, seed: int = 0) -> None:
        """Back to the initial weights with fresh optimizers (what a new Trainer.fit of a reloaded
        module does): every timed segment then trains the same early steps."""
        self.G.load_state_dict(self._initial[0])
        self.D.load_state_dict(self._initial[1])
        self._make_optimizers()
        torch.manual_seed(seed)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def step(self) -> None:
        """One training step: k D updates, one G update."""
        B, n = self.case.batch, self.data.shape[0]
        for i in range(self.case.k):
            real = self.data[torch.randint(n, (B,), device=self.device)]
            if real.dim() == 4:
                real = real.contiguous(memory_format=self.memory_format)
            z = torch.randn(B, self.latent_dim, device=self.device)
            keep = self.reuse_fakes and i == self.case.k - 1
            with self._autocast():
                with torch.set_grad_enabled(keep):
                    fake = self.g_fwd(z)
                loss_d = self.loss.discriminator(self.d_fwd(real), self.d_fwd(fake.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            if self.sched_d is not None:
                self.sched_d.step()
        if not self.reuse_fakes:
            z = torch.randn(B, self.latent_dim, device=self.device)
        for p in self.D.parameters():
            p.requires_grad_(False)
        with self._autocast():
            loss_g = self.loss.generator(self.d_fwd(fake if self.reuse_fakes else self.g_fwd(z)))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in self.D.parameters():
            p.requires_grad_(True)
        if self.sched_g is not None:
            self.sched_g.step()

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` training steps (synchronised at the end on CUDA)."""
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        _sync(self.device)
        return time.perf_counter() - t0


def floor_module(case: Case):
    """Lightning's own floor: the plain loop's step as a bare manual-optimization LightningModule.

    Same arithmetic as :class:`PlainLoop` through Lightning's APIs (``self.optimizers()``,
    ``manual_backward``, the optimizer wrappers' ``step``, ``self.lr_schedulers()``) and nothing
    of gan_suite; with :func:`floor_batches` as data. Trainer.fit of this minus the plain loop is
    what Lightning itself costs a step; gan_suite's module minus this is what the suite adds.
    """
    import pytorch_lightning as pl

    class Floor(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.G, self.D = case.make_nets()
            self.loss = get_loss(case.loss)

        def configure_optimizers(self):
            opts = [case.make_optimizer(self.G.parameters()), case.make_optimizer(self.D.parameters())]
            if case.scheduler is None:
                return opts
            return opts, [{"scheduler": case.scheduler(o), "interval": "step"} for o in opts]

        def training_step(self, batch, batch_idx):
            opt_g, opt_d = self.optimizers()
            scheds = self.lr_schedulers() if case.scheduler is not None else [None, None]
            B = case.batch
            for real in batch.split(B):
                z = torch.randn(B, self.G.latent_dim, device=self.device)
                with torch.no_grad():
                    fake = self.G(z)
                loss_d = self.loss.discriminator(self.D(real), self.D(fake))
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(loss_d)
                opt_d.step()
                if scheds[1] is not None:
                    scheds[1].step()
            z = torch.randn(B, self.G.latent_dim, device=self.device)
            for p in self.D.parameters():
                p.requires_grad_(False)
            loss_g = self.loss.generator(self.D(self.G(z)))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
            for p in self.D.parameters():
                p.requires_grad_(True)
            if scheds[0] is not None:
                scheds[0].step()

    return Floor()


class floor_batches:
    """Random minibatches [k * B, ...] of the case's data held in memory, as PlainLoop draws them."""

    def __init__(self, case: Case, steps_per_epoch: int = 1000) -> None:
        self.data, self.n, self.steps = real_data(case), case.batch * case.k, steps_per_epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.data[torch.randint(self.data.shape[0], (self.n,))]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=sorted(CASES), default="quickstart")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loop = PlainLoop(CASES[args.case](), args.device)
    loop.run(5)
    print(f"{args.case}: {loop.run(args.steps) / args.steps * 1e3:.2f} ms per training step")


if __name__ == "__main__":
    main()
