"""Class-conditional networks, the conditional training step, sample grids and evaluation."""

import os

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_suite.cli import main
from gan_suite.data import MNISTBundled
from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.intra_fid import intra_class_fid
from gan_suite.evaluation.streaming import generated_features
from gan_suite.nets import DCGANDiscriminator, DCGANGenerator, MaxoutDiscriminator, MLPGenerator
from gan_suite.training.callbacks import SampleGrid
from tests.conftest import REPO_ROOT
from tests.training.helpers import adam, quiet_trainer, tiny_dcgan

NETS = [
    (lambda: DCGANGenerator(16, 28, 1, 8, num_classes=10), lambda: DCGANDiscriminator(28, 1, 8, num_classes=10)),
    (lambda: MLPGenerator(16, (1, 28, 28), (32,), num_classes=10), lambda: MaxoutDiscriminator((1, 28, 28), (32,), 3, 0.0, 0.0, num_classes=10)),
]


@pytest.mark.parametrize("make_g,make_d", NETS, ids=["dcgan", "mlp"])
def test_the_label_changes_the_sample_and_d_adds_the_projection_of_its_features(make_g, make_d):
    torch.manual_seed(0)
    g, d = make_g().eval(), make_d().eval()
    z = torch.randn(6, 16)
    x3, x7 = g(z, torch.full((6,), 3)), g(z, torch.full((6,), 7))
    assert x3.shape == (6, 1, 28, 28) and (x3 - x7).abs().max() > 1e-3
    assert torch.equal(g(z), g(z, torch.arange(6) % 10))  # no labels: sample i is of class i mod 10
    # D(x, a) - D(x, b) = <embed(a) - embed(b), phi(x)>, phi from a hook on the last linear layer's input
    phi = {}
    last = d.net[-1].register_forward_hook(lambda m, inp, out: phi.update(x=inp[0].flatten(1)))
    a, b = torch.full((6,), 2), torch.full((6,), 5)
    diff = d(x3, a) - d(x3, b)
    last.remove()
    emb = d.projection.embed.weight
    want = ((emb[a] - emb[b]) * phi["x"]).sum(1)
    torch.testing.assert_close(diff, want, rtol=1e-5, atol=1e-6)
    assert diff.abs().max() > 0


def test_conditioning_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="cannot pack"):
        DCGANDiscriminator(28, 1, 8, pack=2, num_classes=10)
    with pytest.raises(ConfigError, match="num_classes must be >= 0"):
        MLPGenerator(num_classes=-1)
    model = tiny_dcgan(num_classes=5)
    with pytest.raises(ConfigError, match="conditioned on 5 classes but the data has 10"):
        quiet_trainer(max_steps=2).fit(model, MNISTBundled(batch_size=8))


def test_d_sees_the_real_labels_and_g_uniform_labels(monkeypatch):
    model = tiny_dcgan(num_classes=10)
    seen, generated = [], []
    d_forward, g_forward = model.discriminator.forward, model.generator.forward
    monkeypatch.setattr(model.discriminator, "forward", lambda x, y=None: seen.append(y) or d_forward(x, y))
    monkeypatch.setattr(model.generator, "forward", lambda z, y=None: generated.append(y) or g_forward(z, y))
    quiet_trainer(max_steps=2).fit(model, MNISTBundled(batch_size=16))
    real_labels = seen[0]
    assert len(seen) == 3 and all(y is not None and y.shape == (16,) for y in seen + generated)
    # D's update: the fakes are generated for, and judged with, the real minibatch's labels
    assert torch.equal(generated[0], real_labels) and torch.equal(seen[1], real_labels)
    # G's update draws its own labels, and D judges G's samples with them
    assert torch.equal(seen[2], generated[1]) and not torch.equal(generated[1], real_labels)


def test_sample_grid_has_one_row_per_class_with_the_same_noise_in_each_column():
    model = tiny_dcgan(num_classes=10)
    samples = SampleGrid(nrow=8)._samples(model)
    assert samples.shape == (80, 1, 28, 28)
    want = model.sample(model.fixed_noise[:8].repeat(10, 1), torch.arange(10).repeat_interleave(8))
    assert torch.equal(samples, want)
    assert not torch.equal(samples[:8], samples[8:16])


class _Flatten(torch.nn.Module):
    num_classes = None

    def forward(self, x):
        return {"features": x.flatten(1)}


def test_generated_sample_i_is_of_class_i_mod_k_whatever_the_batch_size():
    g = DCGANGenerator(16, 28, 1, 8, num_classes=10).eval()
    a = generated_features(g, 16, _Flatten(), 25, batch_size=7, progress=False)
    b = generated_features(g, 16, _Flatten(), 25, batch_size=25, progress=False)
    assert torch.equal(a.conditioning, torch.arange(25) % 10) and torch.equal(a.conditioning, b.conditioning)
    torch.testing.assert_close(a.features, b.features)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb, ca, cb = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real))


def test_intra_class_fid_is_the_mean_of_per_class_fids_computed_independently():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 4)), rng.normal(size=(240, 4)) + 0.3
    real_y, fake_y = rng.integers(0, 3, 300), np.arange(240) % 3
    fake[fake_y == 2] += 2.0  # one class far off
    out = intra_class_fid(torch.from_numpy(real), torch.from_numpy(real_y), torch.from_numpy(fake), torch.from_numpy(fake_y))
    per_class = {c: _scipy_fid(real[real_y == c], fake[fake_y == c]) for c in range(3)}
    assert out["intra_fid_classes"] == 3 and out["intra_fid_min_count"] == min(min((real_y == c).sum(), 80) for c in range(3))
    for c in range(3):
        assert out["intra_fid_per_class"][c] == pytest.approx(per_class[c], rel=1e-6)
    assert out["intra_fid"] == pytest.approx(np.mean(list(per_class.values())), rel=1e-6)
    assert per_class[2] > 5 * per_class[0]


def test_conditional_config_trains_and_evaluate_reports_intra_class_fid(tmp_path):
    args = [
        "fit", "--config", os.path.join(REPO_ROOT, "configs", "cdcgan_mnist.yaml"), "--trainer.max_steps=4",
        f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false",
        "--model.init_args.g_width=8", "--model.init_args.d_width=8",
    ]
    assert main(args) == 0
    run = tmp_path / "cdcgan_mnist" / "version_0"
    assert sorted(os.listdir(run / "samples"))
    from gan_suite.evaluation.evaluate import evaluate_checkpoint

    m = evaluate_checkpoint(str(run / "checkpoints" / "last.ckpt"), num_samples=300, metrics=None, out_dir=str(tmp_path), progress=False)["metrics"]
    assert m["intra_fid_classes"] == 10 and np.isfinite(m["intra_fid"]) and 0 <= m["class_agreement"] <= 1


def _label_agreement_after_short_training(seed: int, steps: int, width: int, batch: int) -> float:
    """Share of 1,000 samples (100 per class) the shipped classifier assigns to their label."""
    import pytorch_lightning as pl

    from gan_suite.evaluation.features import build_extractor
    from gan_suite.models import DCGAN

    pl.seed_everything(seed, verbose=False)
    model = DCGAN(
        image_size=28, channels=1, latent_dim=32, g_width=width, d_width=width, num_classes=10, seed=seed,
        g_optimizer=adam(1e-3), d_optimizer=adam(1e-3),
    )
    quiet_trainer(max_steps=2 * steps, log_every_n_steps=50).fit(model, MNISTBundled(batch_size=batch, seed=seed))
    labels = torch.arange(1000) % 10
    samples = model.sample(torch.randn(1000, 32, generator=torch.Generator().manual_seed(99)), labels)
    return float((build_extractor("mnist_classifier").classify(samples) == labels).double().mean())


@pytest.mark.slow
def test_short_conditional_runs_make_digits_of_their_label_well_above_chance():
    """Mean over 4 seeds of 400 steps (DCGAN widths 8, batch 32, Adam 1e-3) of the share of
    samples classified as their conditioning label; chance is 0.10.

    Measured (AMD EPYC, AVX2, torch 2.14.1), seeds 1-4: 0.433, 0.100, 0.768, 0.542 (mean 0.461)
    with the default kernels; 0.439, 0.100, 0.702, 0.333 (mean 0.394) with
    ATEN_CPU_CAPABILITY=default. Seed 2 collapses onto one digit on both paths. The bound 0.19
    leaves a factor of two below the lower mean, and is still about twice chance.
    """
    agreement = [_label_agreement_after_short_training(seed, 400, 8, 32) for seed in (1, 2, 3, 4)]
    assert np.mean(agreement) > 0.19, agreement
