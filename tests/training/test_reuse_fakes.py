"""``reuse_fakes``: G's update backpropagates through the fakes of the step's last D update.

Each case trains one step through Lightning and repeats it by hand with the recorded noise and
batch: plain SGD on copies of the initial networks, D updated on ``G(z).detach()``, then G on
``D_updated(G(z))`` with the same ``G(z)``.
"""

import copy
from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from gan_suite.data import MNISTBundled, Toy2D
from gan_suite.losses import get_loss
from gan_suite.nets import MaxoutDiscriminator, MLPGenerator
from gan_suite.training.module import GANModule
from tests.training.helpers import quiet_trainer, tiny_ring_gan

LR = 0.05
SGD = partial(torch.optim.SGD, lr=LR)


class _Record(pl.Callback):
    """The first training step's batch, and every noise / label draw of the module."""

    def __init__(self, module):
        self.batches, self.noise, self.labels = [], [], []
        draw_noise, draw_labels = module.sample_noise, module.sample_labels
        module.sample_noise = lambda n: self._keep(self.noise, draw_noise(n))
        module.sample_labels = lambda n: self._keep(self.labels, draw_labels(n))

    @staticmethod
    def _keep(into, value):
        into.append(value.detach().clone())
        return value

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([t.detach().clone() for t in batch] if isinstance(batch, (list, tuple)) else [batch.detach().clone()])


def _one_step(model, data, d_steps):
    initial = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    record = _Record(model)
    quiet_trainer(max_steps=d_steps + 1, callbacks=[record]).fit(model, data)
    assert model.iteration == 1
    return initial, record


def _by_hand(g, d, loss_name, reals, noise, labels=None):
    """One step of k = len(reals) D updates and one G update on the last D update's fakes."""
    loss = get_loss(loss_name)
    opt_g, opt_d = torch.optim.SGD(g.parameters(), lr=LR), torch.optim.SGD(d.parameters(), lr=LR)
    labels = labels or [None] * len(reals)
    call = lambda net, x, y: net(x) if y is None else net(x, y)  # noqa: E731
    for real, z, y in zip(reals, noise, labels):
        fake = call(g, z, y)
        loss_d = loss.discriminator(call(d, real, y), call(d, fake.detach(), y))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    d.requires_grad_(False)
    loss_g = loss.generator(call(d, fake, labels[-1]))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    d.requires_grad_(True)
    return g, d


def _assert_same(net, reference):
    for (name, value), expected in zip(net.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(value, expected, atol=1e-6, rtol=0), (name, (value - expected).abs().max())


@pytest.mark.parametrize("d_steps", [1, 2])
@pytest.mark.parametrize("loss", ["least_squares", "non_saturating"])
def test_generators_update_uses_the_fakes_of_the_last_discriminator_update(d_steps, loss):
    torch.manual_seed(0)
    model = tiny_ring_gan(loss=loss, d_steps=d_steps, reuse_fakes=True, g_optimizer=SGD, d_optimizer=SGD)
    (g, d), record = _one_step(model, Toy2D(num_samples=200, batch_size=20), d_steps)
    assert len(record.noise) == d_steps  # one draw per D update, none for G's
    (real,) = record.batches[0][:1]
    before = [p.detach().clone() for p in g.parameters()]
    g, d = _by_hand(g, d, loss, real.split(20), record.noise)
    _assert_same(model.discriminator, d)
    _assert_same(model.generator, g)
    # the update moved G by far more than the tolerance
    assert max((p - b).abs().max() for p, b in zip(model.generator.parameters(), before)) > 1e-4


def test_without_reuse_the_generator_draws_its_own_noise():
    torch.manual_seed(0)
    model = tiny_ring_gan(loss="least_squares", g_optimizer=SGD, d_optimizer=SGD)
    (g, d), record = _one_step(model, Toy2D(num_samples=200, batch_size=20), 1)
    assert len(record.noise) == 2
    (real,) = record.batches[0][:1]
    g_reused, _ = _by_hand(copy.deepcopy(g), copy.deepcopy(d), "least_squares", [real], record.noise[:1])
    # the reuse reference does not describe this run's G update
    assert not torch.allclose(model.generator.net[0].weight, g_reused.net[0].weight, atol=1e-6)


def test_conditional_generator_update_keeps_the_discriminator_minibatchs_labels():
    torch.manual_seed(0)
    g = MLPGenerator(8, (1, 28, 28), (16,), num_classes=10)
    d = MaxoutDiscriminator((1, 28, 28), (16,), 3, 0.0, 0.0, num_classes=10)
    model = GANModule(g, d, loss="least_squares", reuse_fakes=True, g_optimizer=SGD, d_optimizer=SGD)
    (g0, d0), record = _one_step(model, MNISTBundled(batch_size=16), 1)
    assert record.labels == []  # no label draw: G's fakes keep the real minibatch's labels
    real, labels = record.batches[0]
    g_ref, d_ref = _by_hand(g0, d0, "least_squares", [real], record.noise, [labels])
    _assert_same(model.discriminator, d_ref)
    _assert_same(model.generator, g_ref)
