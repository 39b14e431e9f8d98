"""Performance options: each trains and stays correct (device cache, channels_last, bf16,
optimizer kernels, compile, the NaN check interval, no host syncs in a quiet step)."""

import os
from functools import partial
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from gan_suite.data import Toy2D
from gan_suite.data.base import DeviceCachedBatches, GANDataModule, TensorSampleDataset
from gan_suite.errors import ConfigError, NonFiniteLossError
from tests.training.helpers import quiet_trainer, tiny_dcgan, tiny_ring_gan


class TinyImages(GANDataModule):
    """200 random uint8 8x8 one-channel images (converted to [-1, 1] per batch), labels 0..9."""

    sample_shape = (1, 8, 8)

    def load_split(self, split):
        gen = torch.Generator().manual_seed(5)
        return TensorSampleDataset(torch.randint(0, 256, (200, 1, 8, 8), generator=gen, dtype=torch.uint8), torch.arange(200) % 10)


class TinyImages28(GANDataModule):
    """64 random uint8 28x28 one-channel images, for the DCGAN tests."""

    sample_shape = (1, 28, 28)

    def load_split(self, split):
        gen = torch.Generator().manual_seed(5)
        return TensorSampleDataset(torch.randint(0, 256, (64, 1, 28, 28), generator=gen, dtype=torch.uint8))


def _fake_trainer(world_size, rank, iteration):
    return SimpleNamespace(
        world_size=world_size, global_rank=rank, lightning_module=SimpleNamespace(iteration=iteration),
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )


def _batches(datamodule, n):
    out, it = [], iter(datamodule.train_dataloader())
    for _ in range(n):
        out.append(next(it))
    return out


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("start", [0, 11])  # 11: a resumed run, in the second data epoch
def test_device_cache_gives_the_dataloader_batches(world_size, start):
    for rank in range(world_size):
        loaded, cached = TinyImages(batch_size=4, seed=3), TinyImages(batch_size=4, seed=3, device_cache=True)
        for dm in (loaded, cached):
            dm.minibatches_per_step = 2
            dm.trainer = _fake_trainer(world_size, rank, start)
            dm.setup()
        assert isinstance(cached.train_dataloader(), DeviceCachedBatches)
        assert len(cached.train_dataloader()) == len(loaded.train_dataloader()) == 200 // (8 * world_size)
        steps = len(loaded.train_dataloader())  # one data epoch: crosses into the next permutation
        for (x0, y0), (x1, y1) in zip(_batches(loaded, steps), _batches(cached, steps)):
            assert x1.dtype == torch.float32 and x1.shape == (8, 1, 8, 8)
            assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_device_cache_can_also_be_set_as_an_attribute():
    dm = Toy2D(num_samples=300, batch_size=10)
    dm.device_cache = True
    dm.setup()
    assert isinstance(dm.train_dataloader(), DeviceCachedBatches)


def test_device_cache_trains_exactly_like_the_dataloader_and_resumes(tmp_path):
    def run(device_cache, steps, ckpt=None, save=None):
        torch.manual_seed(0)
        module = tiny_ring_gan(d_steps=2)
        dm = Toy2D(num_samples=300, batch_size=10)
        dm.device_cache = device_cache
        trainer = quiet_trainer(max_steps=3 * steps, default_root_dir=str(tmp_path))
        trainer.fit(module, dm, ckpt_path=ckpt)
        if save:
            trainer.save_checkpoint(save)
        return module

    straight = run(False, 20)  # 20 samples a step, 15 steps a data epoch: crosses into the second
    cached = run(True, 20)
    half = os.path.join(tmp_path, "half.ckpt")
    run(True, 5, save=half)
    resumed = run(True, 20, ckpt=half)
    for other in (cached, resumed):
        for a, b in zip(straight.state_dict().values(), other.state_dict().values()):
            assert torch.equal(a, b)


def _changed(before, module):
    return all(not torch.equal(b, p) for b, p in zip(before, module.parameters()) if p.dim() > 0)


def test_channels_last_trains_like_the_default_layout():
    runs = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        module = tiny_dcgan(image_size=28, channels_last=channels_last)
        before = [p.detach().clone() for p in module.parameters()]
        seen = []  # is the input of D's second convolution (8 channels) channels_last?
        module.discriminator.net[2].register_forward_hook(lambda net, inputs, output: seen.append(inputs[0].stride()[1] == 1))
        quiet_trainer(max_steps=4).fit(module, TinyImages28(batch_size=8))
        assert _changed(before, module)
        runs[channels_last] = module
        conv = module.discriminator.net[2].weight  # [16, 8, 4, 4]
        assert (conv.stride()[1] == 1) == channels_last
        assert len(seen) == 2 * 3 and all(s == channels_last for s in seen)
    for a, b in zip(runs[False].parameters(), runs[True].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_bf16_mixed_precision_trains_with_manual_optimization_like_fp32():
    sgd = partial(torch.optim.SGD, lr=0.01)  # updates proportional to the gradients
    updates, dtypes = {}, {}
    for precision in ("32-true", "bf16-mixed"):
        torch.manual_seed(0)
        module = tiny_dcgan(image_size=28, g_optimizer=sgd, d_optimizer=sgd)
        before = [p.detach().clone() for p in module.parameters()]
        seen = dtypes[precision] = []
        module.discriminator.register_forward_hook(lambda net, inputs, output, seen=seen: seen.append(output.dtype))
        quiet_trainer(max_steps=4, precision=precision).fit(module, TinyImages28(batch_size=8))
        assert _changed(before, module)
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in module.parameters())
        updates[precision] = torch.cat([(p.detach() - b).flatten() for p, b in zip(module.parameters(), before)])
    assert dtypes["bf16-mixed"] and all(d == torch.bfloat16 for d in dtypes["bf16-mixed"])
    assert all(d == torch.float32 for d in dtypes["32-true"])
    # two steps' updates under bf16 autocast differ from fp32 by 6% (relative L2, measured; bf16
    # keeps 8 significant bits); a wrong sign or a missing step would differ by 100% or more
    full, mixed = updates["32-true"], updates["bf16-mixed"]
    assert (mixed - full).norm() / full.norm() < 0.25


@pytest.mark.parametrize("kernels", ["fused", "foreach", "for_loop"])
def test_optimizer_kernels_give_the_default_result(kernels):
    results = {}
    for k in (None, kernels):
        torch.manual_seed(0)
        module = tiny_ring_gan(optimizer_kernels=k)
        quiet_trainer(max_steps=6).fit(module, Toy2D(num_samples=300, batch_size=10))
        results[k] = module
        if k is not None:
            for opt in module.trainer.optimizers:
                assert opt.defaults["fused"] == (k == "fused") and opt.defaults["foreach"] == (k == "foreach")
                assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["betas"] == (0.5, 0.999)
    for a, b in zip(results[None].parameters(), results[kernels].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_optimizer_kernels_keep_the_goodfellow_schedule():
    module = tiny_ring_gan(optimizer_kernels="foreach", goodfellow_schedule=True, g_optimizer=None, d_optimizer=None)
    quiet_trainer(max_steps=4).fit(module, Toy2D(num_samples=300, batch_size=10))
    opt_g = module.trainer.optimizers[0]
    assert isinstance(opt_g, torch.optim.SGD) and opt_g.defaults["foreach"] is True
    assert opt_g.param_groups[0]["lr"] < 0.1  # decayed by the schedule attached to the rebuilt optimizer


def test_unknown_optimizer_kernels_are_a_config_error():
    with pytest.raises(ConfigError, match="optimizer_kernels"):
        tiny_ring_gan(optimizer_kernels="turbo")


def test_compile_compiles_both_networks_in_place_and_trains_like_eager():
    runs = {}
    for compile_option in (False, "aot_eager"):  # inductor would take ~1 min on CPU here
        torch.manual_seed(0)
        module = tiny_ring_gan(compile=compile_option, g_hidden=[8], d_hidden=[8])
        keys = set(module.state_dict())
        before = [p.detach().clone() for p in module.parameters()]
        quiet_trainer(max_steps=8).fit(module, Toy2D(num_samples=300, batch_size=10))
        assert set(module.state_dict()) == keys
        assert _changed(before, module)
        runs[compile_option] = module
    compiled = runs["aot_eager"]
    assert compiled.generator._compiled_call_impl is not None and compiled.discriminator._compiled_call_impl is not None
    # the same arithmetic traced: after 4 steps equal to eager fp32 up to reassociation (measured: 0.0)
    for a, b in zip(runs[False].parameters(), compiled.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_compile_with_gradient_penalty_is_a_config_error():
    with pytest.raises(ConfigError, match="double backward"):
        tiny_ring_gan(compile=True, loss="wgan_gp")


def test_nan_is_caught_at_the_next_check_with_a_check_interval():
    class Poison(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if module.iteration == 7:
                with torch.no_grad():
                    next(module.discriminator.parameters()).fill_(float("nan"))

    module = tiny_ring_gan(check_finite_every_n_steps=5)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at training step 10"):
        quiet_trainer(max_steps=100, callbacks=[Poison()]).fit(module, Toy2D(num_samples=500, batch_size=10))


def test_a_quiet_step_never_reads_a_tensor_on_the_host(monkeypatch):
    """check_finite_every_n_steps=0 and no logging step: nothing in the step asks a tensor for a
    Python value (on a GPU each such read is a host synchronisation). Reads by torch.optim are
    left out: they are of the optimizers' step counters, which live on the CPU unless the
    optimizer is fused or capturable (then nothing is read)."""
    import sys

    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if not caller.startswith("torch.optim"):
                reads.append(f"{_name} in {caller}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    counts = {}

    class Count(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            reads.clear()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            counts[module.iteration] = list(reads)

    module = tiny_dcgan(image_size=28, check_finite_every_n_steps=0, ema_decay=0.9, grad_clip_norm=1.0)
    dm = TinyImages28(batch_size=8, device_cache=True)
    quiet_trainer(max_steps=2 * 6, log_every_n_steps=4, callbacks=[Count()]).fit(module, dm)
    assert set(counts) == set(range(1, 7))
    assert all(not counts[i] for i in (2, 3, 4, 6)), counts  # iterations 0 and 4 log (1 and 5 once done)

    module = tiny_dcgan(image_size=28, check_finite_every_n_steps=1)
    quiet_trainer(max_steps=2 * 2, log_every_n_steps=50, callbacks=[Count()]).fit(module, TinyImages28(batch_size=8, device_cache=True))
    assert counts[2] == ["__bool__ in gan_suite.training.module"] * 2  # the two NaN tests (the spy works), nothing else


def test_no_nvml_query_per_optimizer_step_on_a_host_without_gpus():
    if torch.cuda.device_count() > 0:
        pytest.skip("a GPU is visible: the NVML check is left as Lightning sets it")
    assert os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1"  # set by Lightning's import
    module = tiny_ring_gan()
    inside = []  # the variable as the discriminator (inside training_step) sees it
    module.discriminator.register_forward_hook(lambda *_: inside.append(os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")))
    quiet_trainer(max_steps=4).fit(module, Toy2D(num_samples=300, batch_size=10))
    assert inside and all(v is None for v in inside)
    assert os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1"

    class Poison(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            with torch.no_grad():
                next(module.discriminator.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError):
        quiet_trainer(max_steps=4, callbacks=[Poison()]).fit(tiny_ring_gan(), Toy2D(num_samples=300, batch_size=10))
    assert os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1"  # restored when the step raises
