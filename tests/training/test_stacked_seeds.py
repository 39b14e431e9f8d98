"""Stacked seeds: each seed of one GANModule run with ``seeds=[...]`` equals a separate GANModule
run with that seed, under the ordinary Lightning Trainer.

The reference is GANModule itself (one run per seed, its own data module with ``seed=s``), so any
difference between the stacked step and the ordinary one fails here. Float64 (``precision
"64-true"``), tolerance 1e-8 on every weight, buffer (BatchNorm running statistics, EMA) and
optimizer state; the runs measured reach about 1e-10.
"""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from gan_suite.data.toy2d import Toy2D
from gan_suite.errors import ConfigError
from gan_suite.losses import LOSSES
from gan_suite.nets import DCGANDiscriminator, DCGANGenerator, MaxoutDiscriminator, MLPGenerator
from gan_suite.nets.stacked import StackedNetwork
from gan_suite.training.module import GANModule
from gan_suite.training.schedules import GoodfellowSchedule

TOLERANCE = 1e-8
SEEDS = [3, 5]
ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-2, "betas": [0.5, 0.9]}}  # large steps: differences show
SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05, "momentum": 0.5}}


def _ring_model(seed=0, seeds=None, batch_norm=False, pack=1, dropout=0.0, **options):
    g = MLPGenerator(2, [2], [16, 16], batch_norm, "linear")
    d = MaxoutDiscriminator([2], [16, 16], 3, dropout, dropout, pack)
    options = {"g_optimizer": ADAM, "d_optimizer": ADAM, **options}
    return GANModule(g, d, seed=seed, seeds=seeds, **options)


def _dcgan_model(seed=0, seeds=None, **options):
    g = DCGANGenerator(4, 28, 1, 4)
    d = DCGANDiscriminator(28, 1, 4, "batch", 1)
    return GANModule(g, d, seed=seed, seeds=seeds, **options)


class _Digits(Toy2D):
    """Random 28 px 'images' (a seeded tensor) with Toy2D's machinery, for the DCGAN case."""

    sample_shape = (1, 28, 28)

    def load_split(self, split):
        from gan_suite.data.base import TensorSampleDataset

        gen = torch.Generator().manual_seed(self.seed * 2 + (split == "heldout"))
        return TensorSampleDataset(torch.randint(0, 256, (self.num_samples, 1, 28, 28), generator=gen, dtype=torch.uint8))


def _fit(model, data, steps):
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_steps=steps * (model.d_steps + 1), precision="64-true", log_every_n_steps=1,
    )
    trainer.fit(model, data)
    return trainer


def _separate_and_stacked(build, data, steps=6):
    """Per seed s: ``torch.manual_seed(s)`` (as seed_everything does), then a GANModule with
    ``seed=s`` on ``data(seed=s)``; and one stacked run of all SEEDS."""
    separate = []
    for s in SEEDS:
        torch.manual_seed(s)
        model = build(seed=s)
        separate.append((model, _fit(model, data(seed=s), steps)))
    torch.manual_seed(1234)  # the stacked run builds each seed's networks itself
    stacked = build(seeds=SEEDS)
    trainer = _fit(stacked, data(seed=0), steps)
    return separate, (stacked, trainer)


def _assert_seed_equals(stacked, stacked_trainer, i, model, trainer):
    ours, theirs = stacked.state_dict(), model.state_dict()
    assert set(theirs) <= set(ours)
    for key, value in theirs.items():
        mine = ours[key][i]
        assert mine.shape == value.shape, key
        assert torch.allclose(mine.to(value.dtype), value, atol=TOLERANCE, rtol=0), (key, (mine - value).abs().max())
    # the optimizers' moments too (a seed's slice follows its own trajectory)
    for opt_s, opt_1 in zip(stacked_trainer.optimizers, trainer.optimizers):
        for p_s, p_1 in zip(opt_s.param_groups[0]["params"], opt_1.param_groups[0]["params"]):
            for name, v in opt_1.state[p_1].items():
                if v.dim() > 0:
                    assert torch.allclose(opt_s.state[p_s][name][i], v, atol=TOLERANCE, rtol=0), name
    assert stacked.iteration == model.iteration


CASES = {
    "minimax": dict(loss="minimax"),
    "non_saturating k=2": dict(loss="non_saturating", d_steps=2),
    "least_squares pack2": dict(loss="least_squares", pack=2),
    "least_squares k=2 reusing the fakes": dict(loss="least_squares", d_steps=2, reuse_fakes=True),
    "hinge BatchNorm": dict(loss="hinge", batch_norm=True),
    "wgan_gp pack2 k=2": dict(loss="wgan_gp", pack=2, d_steps=2),
    "EMA from step 2, BatchNorm": dict(loss="non_saturating", batch_norm=True, ema_decay=0.9, ema_start=2),
    "clipping per seed": dict(loss="non_saturating", grad_clip_norm=0.05),
    "SGD with Goodfellow's schedule": dict(
        loss="minimax", g_optimizer=SGD, d_optimizer=SGD,
        g_scheduler=partial(GoodfellowSchedule, decay=1.5, momentum_steps=4), d_scheduler=partial(GoodfellowSchedule, decay=1.5, momentum_steps=4),
    ),
}


def test_cases_cover_every_loss():
    assert {c["loss"] for c in CASES.values()} == set(LOSSES)


@pytest.mark.parametrize("case", list(CASES))
def test_each_stacked_seed_equals_a_separate_ganmodule_run(case):
    options = CASES[case]
    separate, (stacked, trainer) = _separate_and_stacked(
        partial(_ring_model, **options), lambda seed: Toy2D(num_samples=400, batch_size=20, seed=seed)
    )
    for i, (model, single_trainer) in enumerate(separate):
        _assert_seed_equals(stacked, trainer, i, model, single_trainer)
    # the seeds differ, and training moved them
    w = stacked.generator.net[0].weight
    assert not torch.allclose(w[0], w[1])
    assert (stacked.diverged_at == -1).all()


def test_clipping_is_per_seed():
    """The clipping case clips: without it the weights differ (the norm bound is active)."""
    unclipped, _ = _separate_and_stacked(partial(_ring_model, loss="non_saturating"), lambda seed: Toy2D(num_samples=400, batch_size=20, seed=seed))
    clipped, _ = _separate_and_stacked(partial(_ring_model, **CASES["clipping per seed"]), lambda seed: Toy2D(num_samples=400, batch_size=20, seed=seed))
    a, b = unclipped[0][0].generator.net[0].weight, clipped[0][0].generator.net[0].weight
    assert (a - b).abs().max() > 1e-3


def test_dcgan_through_vmap_with_batchnorm():
    separate, (stacked, trainer) = _separate_and_stacked(
        partial(_dcgan_model, d_steps=2), lambda seed: _Digits(num_samples=64, batch_size=8, seed=seed), steps=3
    )
    assert stacked.generator.backend == "vmap"
    for i, (model, single_trainer) in enumerate(separate):
        _assert_seed_equals(stacked, trainer, i, model, single_trainer)


def test_a_diverged_seed_is_recorded_and_the_others_train_on():
    def planted(seed=0, seeds=None):
        model = _ring_model(seed=seed, seeds=seeds)
        if seeds is not None:
            with torch.no_grad():
                model.discriminator.net[1].linear.weight[1].fill_(float("inf"))  # seed 5's D only
        return model

    separate, (stacked, trainer) = _separate_and_stacked(planted, lambda seed: Toy2D(num_samples=400, batch_size=20, seed=seed))
    assert stacked.diverged_at.tolist() == [-1, 0]
    assert "discriminator loss is nan at training step 0" in stacked.divergences["5"]
    _assert_seed_equals(stacked, trainer, 0, *separate[0])


def test_every_seed_diverged_stops_the_run():
    from gan_suite.errors import NonFiniteLossError

    model = _ring_model(seeds=SEEDS)
    with torch.no_grad():
        model.discriminator.net[1].linear.weight.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match="every stacked seed has diverged"):
        _fit(model, Toy2D(num_samples=400, batch_size=20), 3)


def test_the_sample_grid_has_one_row_per_seed(tmp_path):
    from gan_suite.training.callbacks import SampleGrid

    model = _ring_model(seeds=[0, 1, 2], num_fixed_samples=16)
    assert model.fixed_noise.shape == (3, 16, 2)
    samples = SampleGrid(nrow=4)._samples(model)
    assert samples.shape == (12, 2)
    expected = torch.stack([model.generator.network(i).eval()(model.fixed_noise[i, :4]) for i in range(3)]).flatten(0, 1)
    assert torch.allclose(samples, expected, atol=1e-6)


def test_stacked_network_splits_into_ordinary_networks():
    torch.manual_seed(0)
    nets = [MLPGenerator(2, [2], [8], True, "linear") for _ in range(3)]
    stacked = StackedNetwork(nets)
    z = torch.randn(3, 5, 2)
    assert torch.allclose(stacked(z), torch.stack([n(z[i]) for i, n in enumerate(nets)]), atol=1e-6)
    for i, net in enumerate(nets):
        copy = stacked.network(i)
        assert type(copy) is MLPGenerator
        for key, value in net.state_dict().items():
            assert torch.equal(copy.state_dict()[key], value), key


@pytest.mark.parametrize("bad, message", [
    (dict(seeds=[]), "at least one seed"),
    (dict(seeds=[1, 1]), "distinct"),
    (dict(seeds=[0, 1], compile=True), "compile"),
])
def test_bad_seed_lists_are_refused_in_one_line(bad, message):
    with pytest.raises(ConfigError, match=message):
        _ring_model(**bad)


def test_a_resumed_stacked_run_equals_an_uninterrupted_one(tmp_path):
    def trainer(steps, **extra):
        return pl.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
            max_steps=steps * 2, precision="64-true", default_root_dir=str(tmp_path), **extra,
        )

    whole = _ring_model(seeds=SEEDS, batch_norm=True, ema_decay=0.5)
    trainer(6, enable_checkpointing=False).fit(whole, Toy2D(num_samples=400, batch_size=20))
    first = _ring_model(seeds=SEEDS, batch_norm=True, ema_decay=0.5)
    trainer(3).fit(first, Toy2D(num_samples=400, batch_size=20))
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    resumed = _ring_model(seeds=SEEDS, batch_norm=True, ema_decay=0.5)
    trainer(6, enable_checkpointing=False).fit(resumed, Toy2D(num_samples=400, batch_size=20), ckpt_path=str(ckpt))
    assert resumed.iteration == whole.iteration == 6
    # a single-seed GANModule run resumed the same way differs from its uninterrupted run by ~6e-8
    # here (float64): the bound is that of resuming, not of stacking
    for key, value in whole.state_dict().items():
        assert torch.allclose(resumed.state_dict()[key].to(value.dtype), value, atol=1e-6, rtol=0), key
    with pytest.raises(ConfigError, match="stacked seeds"):
        other = _ring_model(seeds=[7, 8])
        trainer(6, enable_checkpointing=False).fit(other, Toy2D(num_samples=400, batch_size=20), ckpt_path=str(ckpt))


def test_in_training_evaluation_of_each_stacked_seed_equals_its_separate_run(tmp_path):
    from gan_suite.evaluation.callback import EvaluationCallback

    def evaluation():
        return EvaluationCallback(every_n_steps=3, num_samples=400, features="raw2d", metrics=["fid", "modes"], best_metric=None, batch_size=200)

    def fit(model, data, callback):
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, max_steps=12, precision="64-true", callbacks=[callback], default_root_dir=str(tmp_path),
        )
        trainer.fit(model, data)

    separate = {}
    for s in SEEDS:
        torch.manual_seed(s)
        callback = evaluation()
        fit(_ring_model(seed=s, batch_norm=True), Toy2D(num_samples=400, batch_size=20, seed=s), callback)
        separate[s] = callback.history
    stacked = evaluation()
    fit(_ring_model(seeds=SEEDS, batch_norm=True), Toy2D(num_samples=400, batch_size=20), stacked)
    assert [(h["iteration"], h["seed"]) for h in stacked.history] == [(i, s) for i in (3, 6) for s in SEEDS]
    for entry in stacked.history:
        alone = next(h for h in separate[entry["seed"]] if h["iteration"] == entry["iteration"])
        assert entry["fid"] == pytest.approx(alone["fid"], rel=1e-5), (entry, alone)
        for key in ("modes_covered", "high_quality"):
            assert entry[key] == alone[key], (entry, alone)
    fids = [h["fid"] for h in stacked.history]
    assert len(set(fids)) == len(fids)  # each seed is evaluated on its own generator
    with pytest.raises(ConfigError, match="best_metric: null"):
        fit(_ring_model(seeds=SEEDS), Toy2D(num_samples=400, batch_size=20),
            EvaluationCallback(every_n_steps=3, num_samples=400, features="raw2d", metrics=["modes"], best_metric="modes_covered"))
