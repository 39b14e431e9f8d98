"""Loss functions against hand-computed values."""

import dataclasses
import math

import pytest
import torch

from gan_suite.errors import ConfigError
from gan_suite.losses import LOSSES, get_loss, gradient_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_minimax_and_non_saturating_discriminator_is_binary_cross_entropy():
    expected = -(math.log(sig(2.0)) + math.log(sig(-1.0))) / 2 - (math.log(1 - sig(0.5)) + math.log(1 - sig(-3.0))) / 2
    for name in ("minimax", "non_saturating"):
        assert get_loss(name).discriminator(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_minimax_generator_is_log_one_minus_d():
    expected = (math.log(1 - sig(0.5)) + math.log(1 - sig(-3.0))) / 2
    assert get_loss("minimax").generator(FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_non_saturating_generator_is_minus_log_d():
    expected = -(math.log(sig(0.5)) + math.log(sig(-3.0))) / 2
    assert get_loss("non_saturating").generator(FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_least_squares():
    d = 0.5 * ((1.0**2 + 2.0**2) / 2) + 0.5 * ((0.25 + 9.0) / 2)
    g = 0.5 * ((0.25 + 16.0) / 2)
    assert get_loss("least_squares").discriminator(REAL, FAKE).item() == pytest.approx(d)
    assert get_loss("least_squares").generator(FAKE).item() == pytest.approx(g)


def test_hinge():
    d = (max(0, 1 - 2.0) + max(0, 1 + 1.0)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3.0)) / 2
    assert get_loss("hinge").discriminator(REAL, FAKE).item() == pytest.approx(d)
    assert get_loss("hinge").generator(FAKE).item() == pytest.approx(1.25)


def test_wasserstein():
    assert get_loss("wgan_gp").discriminator(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert get_loss("wgan_gp").generator(FAKE).item() == pytest.approx(1.25)
    assert get_loss("wgan_gp").gradient_penalty and not get_loss("hinge").gradient_penalty


def test_gradient_penalty_per_sample_and_per_pack():
    grad = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    # norms 5, 1, 0, 1 -> (4^2 + 0 + 1 + 0) / 4
    assert gradient_penalty(grad).item() == pytest.approx(17 / 4)
    # packed in pairs: norms sqrt(26), 1 -> ((sqrt(26) - 1)^2 + 0) / 2
    assert gradient_penalty(grad, pack=2).item() == pytest.approx((math.sqrt(26) - 1) ** 2 / 2)


def test_saturating_regime_of_the_minimax_generator():
    # D confidently rejects the fakes: minimax gives G a vanishing gradient, non-saturating does not
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(get_loss("minimax").generator(fake), fake)
    (g_ns,) = torch.autograd.grad(get_loss("non_saturating").generator(fake), fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())


def test_losses_are_stable_for_large_logits():
    big = torch.tensor([80.0, -80.0])
    for loss in LOSSES.values():
        assert torch.isfinite(loss.discriminator(big, -big)) and torch.isfinite(loss.generator(big))


def test_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match="non_saturating"):
        get_loss("nonsaturating")


def test_least_squares_and_hinge_on_asymmetric_logits():
    real, fake = [3.0, 0.25, -0.5], [0.75, -2.0, 1.5]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    ls_d = 0.5 * mean([(r - 1) ** 2 for r in real]) + 0.5 * mean([f**2 for f in fake])
    ls_g = 0.5 * mean([(f - 1) ** 2 for f in fake])
    hinge_d = mean([max(0.0, 1 - r) for r in real]) + mean([max(0.0, 1 + f) for f in fake])
    real_t, fake_t = torch.tensor(real), torch.tensor(fake)
    assert get_loss("least_squares").discriminator(real_t, fake_t).item() == pytest.approx(ls_d, rel=1e-6)
    assert get_loss("least_squares").generator(fake_t).item() == pytest.approx(ls_g, rel=1e-6)
    assert get_loss("hinge").discriminator(real_t, fake_t).item() == pytest.approx(hinge_d, rel=1e-6)


def test_only_the_cross_entropy_losses_have_probabilistic_outputs():
    assert {name for name, loss in LOSSES.items() if loss.probabilistic} == {"minimax", "non_saturating"}
    assert {name for name, loss in LOSSES.items() if loss.gradient_penalty} == {"wgan_gp"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        LOSSES["hinge"].gradient_penalty = True
