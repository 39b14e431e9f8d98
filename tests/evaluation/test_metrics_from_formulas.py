"""Inception Score and KID against numpy versions written from the papers' formulas."""

import math

import numpy as np
import pytest
import torch

from gan_suite.evaluation.metrics import inception_score, kernel_inception_distance


def _inception_score_numpy(logits: np.ndarray, splits: int, order: np.ndarray) -> tuple[float, float]:
    """Salimans et al. 2016: IS = exp(E_x KL(p(y|x) || p(y))), p(y) the split's mean of p(y|x);
    mean and population std over ``splits`` consecutive splits of the rows taken in ``order``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    probs = probs[order]
    n = len(probs)
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        kl = (part * (np.log(part) - np.log(marginal))).sum(axis=1)
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _mmd2_unbiased_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al. 2018, KID: unbiased MMD^2 with the kernel k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def _logits(n=1003, k=10, seed=2):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3.0


@pytest.mark.parametrize("splits", [1, 4, 10])
def test_inception_score_follows_its_formula(splits):
    logits = _logits()  # N = 1003: the splits are uneven
    out = inception_score(logits, splits=splits, shuffle=False)
    mean, std = _inception_score_numpy(logits.numpy(), splits, np.arange(len(logits)))
    assert out["mean"] == pytest.approx(mean, rel=1e-9) and out["std"] == pytest.approx(std, rel=1e-6, abs=1e-12)
    # shuffled: the documented permutation numpy.random.RandomState(seed).permutation(N)
    out = inception_score(logits, splits=splits, seed=7)
    mean, std = _inception_score_numpy(logits.numpy(), splits, np.random.RandomState(7).permutation(len(logits)))
    assert out["mean"] == pytest.approx(mean, rel=1e-9) and out["std"] == pytest.approx(std, rel=1e-6, abs=1e-12)


def test_inception_score_known_answers():
    k = 8
    confident = torch.full((8 * 50, k), -30.0, dtype=torch.float64)
    confident[torch.arange(len(confident)), torch.arange(len(confident)) % k] = 30.0  # each class equally often
    assert inception_score(confident, splits=1)["mean"] == pytest.approx(k, rel=1e-9)
    uniform = torch.zeros(100, k, dtype=torch.float64)
    assert inception_score(uniform, splits=5)["mean"] == pytest.approx(1.0, abs=1e-12)


def test_kid_on_whole_sets_is_the_unbiased_mmd():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 16, generator=g, dtype=torch.float64)
    b = torch.randn(300, 16, generator=g, dtype=torch.float64) * 1.2 + 0.3
    # one subset of all rows: every draw is a permutation, and MMD^2 does not depend on the order
    out = kernel_inception_distance(a, b, subsets=1, subset_size=300)
    assert out["mean"] == pytest.approx(_mmd2_unbiased_numpy(a.numpy(), b.numpy()), rel=1e-9)
    assert out["std"] == 0.0
    # the order of the arguments does not matter for the whole-set estimate either
    swapped = kernel_inception_distance(b, a, subsets=1, subset_size=300)
    assert swapped["mean"] == pytest.approx(out["mean"], rel=1e-9)


def test_kid_averages_subsets_drawn_as_documented():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(200, 8, generator=g, dtype=torch.float64)
    b = torch.randn(250, 8, generator=g, dtype=torch.float64) + 0.2
    out = kernel_inception_distance(a, b, subsets=6, subset_size=50, seed=11)
    rng = np.random.RandomState(11)
    values = []
    for _ in range(6):  # for each subset: rows of the first set, then rows of the second
        rows_a = rng.choice(len(a), 50, replace=False)
        rows_b = rng.choice(len(b), 50, replace=False)
        values.append(_mmd2_unbiased_numpy(a.numpy()[rows_a], b.numpy()[rows_b]))
    assert out["mean"] == pytest.approx(np.mean(values), rel=1e-9)
    assert out["std"] == pytest.approx(np.std(values), rel=1e-9)


def _kid_numpy(a: np.ndarray, b: np.ndarray, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
    """Mean and population std of the unbiased MMD^2 over subsets drawn as kid.py documents."""
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        rows_a = rng.choice(len(a), subset_size, replace=False)
        rows_b = rng.choice(len(b), subset_size, replace=False)
        values.append(_mmd2_unbiased_numpy(a[rows_a], b[rows_b]))
    return float(np.mean(values)), float(np.std(values))


def _kid_sets(n_a, n_b, d=4, seed=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_a, d, generator=g, dtype=torch.float64), torch.randn(n_b, d, generator=g, dtype=torch.float64) + 0.1


def test_kid_defaults_are_the_published_protocol():
    import inspect

    # Binkowski et al. 2018 as torch-fidelity runs it: 100 subsets of 1000, cubic kernel
    # (x.y / d + 1)^3, torch-fidelity's seed 2020. (Computing them costs 100 kernels of 1000 x 1000.)
    defaults = {k: p.default for k, p in inspect.signature(kernel_inception_distance).parameters.items()}
    assert defaults == {
        "feats_a": inspect.Parameter.empty, "feats_b": inspect.Parameter.empty, "subsets": 100, "subset_size": 1000,
        "degree": 3, "gamma": None, "coef0": 1.0, "seed": 2020,
    }


def test_kid_argument_checks_and_small_sets(capsys):
    import warnings

    from gan_suite.errors import ConfigError

    a, b = _kid_sets(2, 2)
    assert kernel_inception_distance(a, b, subsets=1, subset_size=2)["mean"] == pytest.approx(
        _mmd2_unbiased_numpy(a.numpy(), b.numpy()), rel=1e-9
    )  # two rows and one subset are enough
    for subsets, size in ((0, 2), (0, 10), (1, 1)):
        with pytest.raises(ConfigError, match="subsets >= 1 and subset_size >= 2"):
            kernel_inception_distance(a, b, subsets=subsets, subset_size=size)
    a, b = _kid_sets(50, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as many rows as the subset size: no warning
        kernel_inception_distance(a, b, subsets=2, subset_size=50)
    with pytest.warns(UserWarning, match="only 50 samples") as record:
        kernel_inception_distance(a, b, subsets=2, subset_size=51)
    assert record[0].filename == __file__  # the warning points at the caller
    assert capsys.readouterr().err == ""  # torch-fidelity's own progress output stays quiet


def test_registered_kid_reduces_the_subset_size_to_the_samples_and_says_so(monkeypatch):
    from gan_suite.evaluation.metrics import kid
    from gan_suite.evaluation.metrics.registry import EvaluationContext, default_metrics, direction
    from gan_suite.evaluation.protocol import compute_metrics
    from gan_suite.evaluation.streaming import FeatureSet

    assert direction("kid_mean") is False  # lower is better
    assert "kid" in default_metrics(EvaluationContext(extractor="inception"))
    assert "kid" in default_metrics(EvaluationContext(extractor="vit"))
    assert "kid" not in default_metrics(EvaluationContext(extractor="raw2d"))
    calls = []

    def record(feats_a, feats_b, **kwargs):
        calls.append((feats_a, feats_b, kwargs))
        return {"mean": 0.25, "std": 0.5}

    monkeypatch.setattr(kid, "kernel_inception_distance", record)
    fake, real = _kid_sets(600, 1000)
    notes = []
    values = compute_metrics(["kid"], fake=FeatureSet(fake), real=FeatureSet(real), log=notes.append)
    assert values == {"kid_mean": 0.25, "kid_std": 0.5}
    (feats_a, feats_b, kwargs), = calls
    assert feats_a is fake and feats_b is real  # torch-fidelity's input1 is the generated set
    assert kwargs == {"subsets": 100, "subset_size": 600}
    assert notes == ["KID subset size reduced from 1000 to 600: fewer samples than the subset size"]
    fake, real = _kid_sets(1000, 1000)
    notes.clear()
    compute_metrics(["kid"], fake=FeatureSet(fake), real=FeatureSet(real), log=notes.append)
    assert notes == [] and calls[-1][2] == {"subsets": 100, "subset_size": 1000}


def test_inception_score_argument_checks_and_the_registered_metric(monkeypatch):
    from gan_suite.errors import ConfigError
    import importlib

    from gan_suite.evaluation.metrics.registry import EvaluationContext, default_metrics, direction
    from gan_suite.evaluation.protocol import compute_metrics
    from gan_suite.evaluation.streaming import FeatureSet

    logits = _logits(n=6)
    assert inception_score(logits, splits=6, shuffle=False)["mean"] == pytest.approx(1.0)  # one row per split
    for splits in (0, 7):
        with pytest.raises(ConfigError, match=f"need 1 <= splits <= N, got splits={splits}, N=6$"):
            inception_score(logits, splits=splits)
    assert inception_score(logits[:1], splits=1)["mean"] == pytest.approx(1.0)  # one sample is enough
    with pytest.raises(ConfigError, match="logits: need at least 1 rows, got 0"):
        inception_score(logits[:0], splits=1)
    assert direction("is_mean") is True
    assert "is" in default_metrics(EvaluationContext(extractor="inception", has_logits=True))
    assert "is" in default_metrics(EvaluationContext(extractor="vit", has_logits=True))
    assert "is" not in default_metrics(EvaluationContext(extractor="inception", has_logits=False))
    assert "is" not in default_metrics(EvaluationContext(extractor="raw2d", has_logits=True))
    calls = []
    is_module = importlib.import_module("gan_suite.evaluation.metrics.inception_score")  # the package exports the function
    monkeypatch.setattr(is_module, "inception_score", lambda x, **kw: calls.append((x, kw)) or {"mean": 2.0, "std": 0.5})
    features = torch.zeros(30, 3)
    many, few = _logits(n=30), _logits(n=4)
    assert compute_metrics(["is"], fake=FeatureSet(features, logits=many), real=None) == {"is_mean": 2.0, "is_std": 0.5}
    compute_metrics(["is"], fake=FeatureSet(features[:4], logits=few), real=None)
    assert [(x is many or x is few, kw) for x, kw in calls] == [(True, {"splits": 10}), (True, {"splits": 4})]
    notes = []
    assert compute_metrics(["is"], fake=FeatureSet(features), real=None, log=notes.append) == {}
    assert notes == ["Inception Score skipped: the extractor gives no logits"] and len(calls) == 2
