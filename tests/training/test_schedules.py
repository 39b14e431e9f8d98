"""Goodfellow et al. 2014's MNIST schedule against the paper's formula."""

import math

import pytest
import torch

from gan_suite.data import Toy2D
from gan_suite.training.schedules import GoodfellowSchedule
from tests.training.helpers import quiet_trainer, tiny_ring_gan

# The paper: lr 0.1 divided by 1.000004 after every update, floored at 1e-6; momentum 0.5 rising
# linearly to 0.7 by epoch 250 (of 500 updates of batch 100 over MNIST train[0:50000]).
PAPER_LR, PAPER_DECAY, PAPER_FLOOR = 0.1, 1.000004, 1e-6
PAPER_MOMENTUM_STEPS = 250 * 50_000 // 100


def paper_lr(t):
    return max(PAPER_LR * math.exp(-t * math.log(PAPER_DECAY)), PAPER_FLOOR)


def paper_momentum(t):
    return 0.5 + 0.2 * min(t, PAPER_MOMENTUM_STEPS) / PAPER_MOMENTUM_STEPS


def _sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PAPER_LR, momentum=0.5)


@pytest.mark.parametrize("t", [0, 1, 2, 1000, 62_500, 125_000, 300_000, 2_000_000, 5_000_000])
def test_schedule_after_t_updates_follows_the_paper(t):
    opt = _sgd()
    opt.param_groups[0]["initial_lr"] = PAPER_LR
    GoodfellowSchedule(opt, last_epoch=t - 1)  # the constructor takes the step to t
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(paper_lr(t), rel=1e-9)
    assert group["momentum"] == pytest.approx(paper_momentum(t), rel=1e-12)


def test_stepping_walks_the_same_values():
    opt = _sgd()
    schedule = GoodfellowSchedule(opt, decay=1.5, min_lr=0.01, momentum_steps=4)
    seen = []
    for _ in range(8):
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
        opt.step()
        schedule.step()
    expected_lr = [0.1, 0.1 / 1.5, 0.1 / 2.25, 0.1 / 3.375, 0.1 / 5.0625, 0.1 / 7.59375, 0.01, 0.01]
    expected_momentum = [0.5, 0.55, 0.6, 0.65, 0.7, 0.7, 0.7, 0.7]
    assert [lr for lr, _ in seen] == pytest.approx(expected_lr, rel=1e-12)
    assert [m for _, m in seen] == pytest.approx(expected_momentum, rel=1e-12)


def test_zero_ramp_length_starts_at_the_final_momentum():
    opt = _sgd()
    GoodfellowSchedule(opt, momentum_steps=0)
    assert opt.param_groups[0]["momentum"] == 0.7
    opt = _sgd()
    schedule = GoodfellowSchedule(opt, momentum_steps=1)  # a one-update ramp still starts at 0.5
    assert opt.param_groups[0]["momentum"] == 0.5
    opt.step()
    schedule.step()
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.7)


def test_vanilla_gan_steps_each_schedule_once_per_update():
    module = tiny_ring_gan(goodfellow_schedule=True, g_optimizer=None, d_optimizer=None, d_steps=2)
    quiet_trainer(max_steps=3 * 3).fit(module, Toy2D(num_samples=300, batch_size=10))  # 3 steps of 2 D + 1 G updates
    opt_g, opt_d = module.trainer.optimizers
    assert isinstance(opt_g, torch.optim.SGD) and isinstance(opt_d, torch.optim.SGD)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(paper_lr(3), rel=1e-9)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(paper_lr(6), rel=1e-9)
    assert opt_g.param_groups[0]["momentum"] == pytest.approx(paper_momentum(3), rel=1e-12)
    assert opt_d.param_groups[0]["momentum"] == pytest.approx(paper_momentum(6), rel=1e-12)


def test_optimizers_without_momentum_get_only_the_lr_decay():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=PAPER_LR)
    schedule = GoodfellowSchedule(opt)
    for _ in range(3):
        opt.step()
        schedule.step()
    assert "momentum" not in opt.param_groups[0] and opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt.param_groups[0]["lr"] == pytest.approx(paper_lr(3), rel=1e-9)
