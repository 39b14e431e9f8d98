"""The training step's arithmetic and random streams against independent references.

The stacked-seeds tests compare two paths of the same step; these pin the step itself: the
gradient penalty against a hand-written interpolation and norm, the logged WGAN-GP loss against
its formula, the noise streams against the documented seed formula, and the finiteness switch.
"""

import pytest
import pytorch_lightning as pl
import torch

from gan_suite.data import Toy2D
from gan_suite.errors import NonFiniteLossError
from gan_suite.nets import MaxoutDiscriminator
from gan_suite.training.module import DiscriminatorPass
from gan_suite.seeding import derive_seed
from tests.training.helpers import quiet_trainer, tiny_ring_gan


class _Capture(pl.Callback):
    """The logged values after each training step."""

    def __init__(self):
        self.logged = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})


@pytest.mark.parametrize("pack", [1, 2])
def test_gradient_penalty_of_the_discriminator_pass_against_a_hand_computation(pack):
    torch.manual_seed(0)
    d = MaxoutDiscriminator([2], [8], 3, 0.0, 0.0, pack).double()
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    mix = torch.rand(6, 1, dtype=torch.float64)
    real_out, fake_out, penalty = DiscriminatorPass(d)(real, fake, mix)
    assert torch.allclose(real_out, d(real)) and torch.allclose(fake_out, d(fake))
    # by hand: interpolate, differentiate D's summed output, norm per packed group of pack samples
    points = [(m * r + (1 - m) * f) for m, r, f in zip(mix[:, 0], real, fake)]
    mixed = torch.stack(points).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed)
    norms = [grad[i : i + pack].flatten().norm() for i in range(0, 6, pack)]
    expected = sum((n - 1) ** 2 for n in norms) / len(norms)
    assert torch.allclose(penalty, expected, atol=1e-12, rtol=0)


def test_logged_wgan_gp_loss_is_critic_gap_plus_weighted_penalty():
    capture = _Capture()
    model = tiny_ring_gan(loss="wgan_gp", gp_weight=7.0)
    quiet_trainer(max_steps=6, callbacks=[capture]).fit(model, Toy2D(num_samples=200, batch_size=20))
    for logged in capture.logged:
        expected = logged["d_fake"] - logged["d_real"] + 7.0 * logged["gradient_penalty"]
        assert logged["loss_d"] == pytest.approx(expected, abs=1e-5), logged
        assert logged["gradient_penalty"] > 0


@pytest.mark.parametrize("rank_invariant", [False, True])
def test_noise_follows_the_documented_stream(rank_invariant):
    """Draw d of training step t: seed derive_seed(seed, rank, t, d), or derive_seed(seed, t, d)
    for rank-invariant noise (every rank draws the global batch)."""
    model = tiny_ring_gan(seed=11, rank_invariant_noise=rank_invariant)
    model.iteration = 4
    model._start_step_randomness()
    first, second = model.sample_noise(5), model.sample_noise(3)
    parts = (11, 4) if rank_invariant else (11, 0, 4)
    for draw, got in ((1, first), (2, second)):
        gen = torch.Generator().manual_seed(derive_seed(*parts, draw))
        assert torch.equal(got, torch.randn(len(got), model.latent_dim, generator=gen))


def test_stacked_noise_is_each_seeds_own_stream():
    from gan_suite.nets import MLPGenerator
    from gan_suite.training.module import GANModule

    model = GANModule(MLPGenerator(2, [2], [4], False, "linear"), MaxoutDiscriminator([2], [4], 2, 0.0, 0.0, 1), seeds=[3, 8])
    model.iteration = 2
    model._start_step_randomness()
    noise = model.sample_noise(4)
    assert noise.shape == (2, 4, 2)
    for i, seed in enumerate((3, 8)):
        gen = torch.Generator().manual_seed(derive_seed(seed, 0, 2, 1))
        assert torch.equal(noise[i], torch.randn(4, 2, generator=gen))
    fixed = torch.randn(64, 2, generator=torch.Generator().manual_seed(derive_seed(8, 0xF1ED)))
    assert torch.equal(model.fixed_noise[1], fixed)


def test_finiteness_checks_can_be_switched_off():
    model = tiny_ring_gan(loss="wgan_gp", gp_weight=float("nan"), check_finite_every_n_steps=0)
    quiet_trainer(max_steps=4).fit(model, Toy2D(num_samples=200, batch_size=20))  # trains on, NaN and all
    assert model.iteration == 2 and not torch.isfinite(model.discriminator.net[1].linear.weight).all()
    with pytest.raises(NonFiniteLossError):
        quiet_trainer(max_steps=4).fit(tiny_ring_gan(loss="wgan_gp", gp_weight=float("nan")), Toy2D(num_samples=200, batch_size=20))


def test_a_stacked_seed_diverging_later_names_its_training_and_optimizer_step():
    from gan_suite.nets import MLPGenerator
    from gan_suite.training.module import GANModule

    class PlantAtStep(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if pl_module.iteration == 2:
                with torch.no_grad():
                    pl_module.discriminator.net[1].linear.weight[1].fill_(float("inf"))

    adam = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}
    model = GANModule(MLPGenerator(2, [2], [8], False, "linear"), MaxoutDiscriminator([2], [8], 2, 0.0, 0.0, 1),
                      seeds=[0, 1], g_optimizer=adam, d_optimizer=adam, d_steps=2)
    quiet_trainer(max_steps=5 * 3, callbacks=[PlantAtStep()]).fit(model, Toy2D(num_samples=200, batch_size=20))
    assert model.diverged_at.tolist() == [-1, 2] and model.iteration == 5
    assert model.divergences["1"] == (
        "discriminator loss is nan at training step 2 (optimizer step 6); training of this seed stopped"
    )


class _StubStrategy:
    def __init__(self):
        self.decisions = []

    def reduce_boolean_decision(self, decision, all=True):
        self.decisions.append((decision, all))
        return True  # another rank saw a non-finite loss


class _StubTrainer:
    """What the step reads of a Trainer of ``world_size`` ranks, seen from rank ``global_rank``."""

    def __init__(self, world_size, global_rank):
        self.world_size, self.global_rank, self.global_step = world_size, global_rank, 0
        self.strategy = _StubStrategy()
        self.log_every_n_steps = 1


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_rank_invariant_noise_is_this_ranks_slice_of_the_global_draw(rank):
    model = tiny_ring_gan(seed=5, rank_invariant_noise=True)
    model._trainer = _StubTrainer(world_size=3, global_rank=rank)
    model.iteration = 2
    model._start_step_randomness()
    got = model.sample_noise(4)
    full = torch.randn(12, model.latent_dim, generator=torch.Generator().manual_seed(derive_seed(5, 2, 1)))
    assert torch.equal(got, full[rank * 4 : (rank + 1) * 4])


def test_per_rank_noise_differs_between_ranks():
    draws = []
    for rank in (0, 1):
        model = tiny_ring_gan(seed=5)
        model._trainer = _StubTrainer(world_size=2, global_rank=rank)
        model._start_step_randomness()
        draws.append(model.sample_noise(4))
        gen = torch.Generator().manual_seed(derive_seed(5, rank, 0, 1))
        assert torch.equal(draws[-1], torch.randn(4, model.latent_dim, generator=gen))
    assert not torch.equal(*draws)


def test_a_non_finite_loss_on_any_rank_stops_every_rank():
    model = tiny_ring_gan()
    model._trainer = _StubTrainer(world_size=2, global_rank=0)
    with pytest.raises(NonFiniteLossError, match="generator loss is 0.5 at training step 0"):
        model._raise_if_nonfinite(torch.tensor(0.5), "generator loss")  # finite here, not on the other rank
    assert model._trainer.strategy.decisions == [(False, False)]  # any rank (all=False) decides
    single = tiny_ring_gan()
    single._trainer = _StubTrainer(world_size=1, global_rank=0)
    single._raise_if_nonfinite(torch.tensor(0.5), "generator loss")  # one process: no reduction, no stop
    assert single._trainer.strategy.decisions == []


def test_a_non_finite_generator_loss_stops_training():
    model = tiny_ring_gan()
    model._loss_g = lambda out: out.sum() * float("nan")
    with pytest.raises(NonFiniteLossError, match="generator loss is nan at training step 0"):
        quiet_trainer(max_steps=4).fit(model, Toy2D(num_samples=200, batch_size=20))


def test_every_stacked_seed_diverging_later_stops_the_run():
    from gan_suite.nets import MLPGenerator
    from gan_suite.training.module import GANModule

    class PlantAtStep(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if pl_module.iteration == 2:
                with torch.no_grad():
                    pl_module.discriminator.net[1].linear.weight.fill_(float("inf"))

    model = GANModule(MLPGenerator(2, [2], [8], False, "linear"), MaxoutDiscriminator([2], [8], 2, 0.0, 0.0, 1), seeds=[0, 1])
    with pytest.raises(NonFiniteLossError, match="at training step 2 .* every stacked seed has diverged"):
        quiet_trainer(max_steps=10, callbacks=[PlantAtStep()]).fit(model, Toy2D(num_samples=200, batch_size=20))
    assert model.diverged_at.tolist() == [2, 2]


def test_channels_last_batches_reach_the_discriminator_in_that_layout():
    from gan_suite.data.base import TensorSampleDataset
    from tests.training.helpers import tiny_dcgan

    class Colour(Toy2D):
        sample_shape = (3, 28, 28)

        def load_split(self, split):
            return TensorSampleDataset(torch.randint(0, 256, (40, 3, 28, 28), dtype=torch.uint8))

    for channels_last in (True, False):
        model = tiny_dcgan(channels=3, channels_last=channels_last)
        seen = []
        forward = model.discriminator.forward

        def recording(x, *args, _forward=forward):
            seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return _forward(x, *args)

        model.discriminator.forward = recording
        quiet_trainer(max_steps=2).fit(model, Colour(batch_size=8))
        assert seen[0] is channels_last  # the first input of the first D update: the real batch
