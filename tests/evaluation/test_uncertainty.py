"""Bootstrap intervals of metric values and FD-infinity, on Gaussian features of known moments."""

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_suite.evaluation.bootstrap import bootstrap_intervals
from gan_suite.evaluation.metrics import compute_metrics
from gan_suite.evaluation.metrics.fd_infinity import fd_infinity, fd_infinity_sizes
from gan_suite.evaluation.metrics.fid import FeatureMoments, FrechetToReference, fid_from_features, fid_from_moments
from gan_suite.evaluation.metrics.registry import MetricInputs
from gan_suite.evaluation.protocol import format_table
from gan_suite.evaluation.streaming import FeatureSet


def _closed_form_fid(mu_a, cov_a, mu_b, cov_b):
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real))


def test_frechet_to_reference_equals_torch_fidelity_fid():
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.normal(size=(400, 16))), torch.tensor(rng.normal(0.3, 1.2, size=(300, 16)))
    ma, mb = FeatureMoments.from_features(a), FeatureMoments.from_features(b)
    assert FrechetToReference(ma.mean, ma.cov)(mb.mean, mb.cov) == pytest.approx(fid_from_moments(ma, mb), rel=1e-9)


def test_bootstrap_interval_covers_the_fid_of_the_generator_distribution():
    """Quantity covered: FID between the fixed real set's moments and the generator's population
    (closed form), i.e. infinitely many generated samples against the given reference."""
    d, n_fake, repetitions = 3, 500, 200
    rng = np.random.default_rng(0)
    a = rng.normal(size=(d, d))
    cov_g, mu_g = a @ a.T / d + 0.5 * np.eye(d), np.full(d, 0.5)
    real = torch.tensor(rng.normal(size=(2000, d)))
    target = _closed_form_fid(real.mean(0).numpy(), np.cov(real.numpy().T), mu_g, cov_g)
    chol = np.linalg.cholesky(cov_g)
    covered = 0
    for repetition in range(repetitions):
        fake = torch.tensor(rng.normal(size=(n_fake, d)) @ chol.T + mu_g)
        values = {"fid": fid_from_features(real, fake)}
        out = bootstrap_intervals(["fid"], MetricInputs(fake=FeatureSet(fake), real=FeatureSet(real)), values, resamples=100, seed=repetition)
        low, high = out["intervals"]["fid"]
        covered += low <= target <= high
    assert 0.90 <= covered / repetitions <= 0.99  # measured: 0.925


def test_bootstrap_recomputes_other_metrics_and_states_what_it_skips():
    rng = np.random.default_rng(1)
    fake = FeatureSet(torch.tensor(rng.normal(size=(300, 4)), dtype=torch.float32), logits=torch.tensor(rng.normal(size=(300, 5)), dtype=torch.float32))
    real = FeatureSet(torch.tensor(rng.normal(size=(300, 4)), dtype=torch.float32))
    inputs = MetricInputs(fake=fake, real=real)
    names = ["fid", "is", "pr"]
    values = compute_metrics(names, inputs)
    first = bootstrap_intervals(names, inputs, values, resamples=30, seed=3)
    assert first == {**bootstrap_intervals(names, inputs, values, resamples=30, seed=3), "bootstrap": first["bootstrap"]}  # seeded
    assert set(first["intervals"]) == {"fid", "is_mean"}
    assert set(first["not_bootstrapped"]) == {"is_std", "precision", "recall"} and "k-NN" in first["not_bootstrapped"]["precision"]
    low, high = first["intervals"]["is_mean"]
    assert low < values["is_mean"] < high
    table = format_table(values, first["intervals"])
    assert "95% bootstrap interval" in table and f"[{low:.4f}, {high:.4f}]" in table


def test_fd_infinity_is_closer_to_the_closed_form_than_fid_at_the_largest_n():
    d, n = 64, 10_000
    sizes = fd_infinity_sizes(n, smallest_share=0.05)
    assert sizes[0] == 500 and sizes[-1] == n and len(sizes) == 15
    errors_fd_inf, errors_fid = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        b = rng.normal(size=(d, d))
        cov_r = b @ b.T / d + 0.2 * np.eye(d)
        cov_g, mu_g = 1.3 * cov_r, np.full(d, 0.02)
        true = _closed_form_fid(np.zeros(d), cov_r, mu_g, cov_g)
        reference = FrechetToReference(torch.zeros(d, dtype=torch.float64), torch.tensor(cov_r))
        fake = torch.tensor(rng.multivariate_normal(mu_g, cov_g, size=n))
        out = fd_infinity(reference, fake, sizes, seed=seed)
        whole = FeatureMoments.from_features(fake)
        fid_largest = reference(whole.mean, whole.cov)
        errors_fd_inf.append(out["fd_inf"] - true)
        errors_fid.append(fid_largest - true)
        fit = out["fd_inf_fit"]
        assert fit["n"] == sizes and fit["intercept"] == out["fd_inf"] and fit["slope"] > 0 and 0 < fit["r2"] <= 1
    # over 10 draws: smaller bias and smaller mean absolute error than FID of all 10,000
    assert abs(np.mean(errors_fd_inf)) < abs(np.mean(errors_fid)) / 3
    assert np.mean(np.abs(errors_fd_inf)) < np.mean(np.abs(errors_fid))


def test_fd_infinity_is_a_registered_metric():
    rng = np.random.default_rng(2)
    fake, real = (FeatureSet(torch.tensor(rng.normal(size=(1000, 3)), dtype=torch.float32)) for _ in range(2))
    values = compute_metrics(["fid", "fd_inf"], MetricInputs(fake=fake, real=real))
    assert values["fd_inf_fit"]["n"][-1] == 1000 and values["fd_inf_fit"]["n"][0] == 100
    assert values["fd_inf"] < values["fid"]  # the same distribution: FID's bias is extrapolated away
