"""The mode statistics against references written here: KL by scipy.stats.entropy, Krichevsky-Trofimov
smoothing by hand, expected counts from chi-square mass, and the registered metric's wiring."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import compute_metrics
from gan_suite.evaluation.metrics.modes import (
    _mode_names,
    label_mode_metrics,
    mixture_mode_metrics,
    mode_coverage_test,
    ring8_modes,
)
from gan_suite.evaluation.metrics.registry import EvaluationContext, MetricInputs, default_metrics
from gan_suite.evaluation.streaming import FeatureSet


def test_mixture_metrics_take_one_sample_and_one_mode_and_refuse_none():
    centres, std = ring8_modes()
    one = mixture_mode_metrics(torch.tensor([[1.0, 0.0]]), centres, std)
    assert (one["modes_covered"], one["high_quality"], one["kl"]) == (1, 1.0, pytest.approx(math.log(8)))
    single_mode = mixture_mode_metrics(torch.tensor([[0.0, 0.0], [5.0, 5.0]]), torch.zeros(1, 2), 0.1)
    assert (single_mode["modes_covered"], single_mode["high_quality"], single_mode["kl"]) == (1, 0.5, 0.0)
    with pytest.raises(ConfigError):
        mixture_mode_metrics(torch.zeros(0, 2), centres, std)
    with pytest.raises(ConfigError):
        mixture_mode_metrics(torch.zeros(3, 2), torch.zeros(0, 2), std)


def test_coverage_test_kl_is_scipy_entropy_against_the_known_distribution():
    g = np.array([30, 0, 10, 60])  # an empty mode contributes 0 log 0 = 0
    p = np.array([0.2, 0.2, 0.2, 0.3])  # 0.1 of the mass outside every mode
    out = mode_coverage_test(torch.tensor(g), reference_probs=torch.tensor(p), n_total=120)
    assert out["kl"] == pytest.approx(stats.entropy(g / g.sum(), p / p.sum()), rel=1e-12)
    assert out["expected"] == pytest.approx((120 * p).tolist())
    assert out["n_generated"] == 120 and out["n_reference"] is None


def test_coverage_test_kl_against_a_sample_uses_half_a_count_per_mode():
    g, r = np.array([5, 0, 40, 55]), np.array([20, 30, 0, 50])
    out = mode_coverage_test(torch.tensor(g), reference_counts=torch.tensor(r))
    smoothed = (r + 0.5) / (r.sum() + 0.5 * len(r))  # Krichevsky-Trofimov
    assert out["kl"] == pytest.approx(stats.entropy(g / g.sum(), smoothed), rel=1e-12)
    assert out["expected"] == pytest.approx(((g + r) * g.sum() / (g.sum() + r.sum())).tolist())
    assert out["n_reference"] == 100
    tiny = mode_coverage_test(torch.tensor([1, 0]), reference_counts=torch.tensor([1, 0]))  # a reference of one sample is enough
    assert tiny["n_reference"] == 1


@pytest.mark.parametrize(
    "counts, match",
    [([1, 1, 1], r"reference_counts must be \[2\]"), ([4], r"reference_counts must be \[2\]"), ([-1, 3], "non-negative"),
     ([0, 0], "positive sum")],
)
def test_bad_reference_counts(counts, match):
    with pytest.raises(ConfigError, match=match):
        mode_coverage_test(torch.tensor([3, 4]), reference_counts=torch.tensor(counts))


def test_label_metrics_with_a_data_histogram():
    gen = torch.tensor([0, 0, 1, 2, 2, 2])
    for hist in (torch.tensor([0.5, 0.25, 0.25]), torch.tensor([2.0, 1.0, 1.0])):  # probabilities or counts
        out = label_mode_metrics(gen, 3, data_hist=hist)
        assert out["kl"] == pytest.approx(stats.entropy([2, 1, 3], [0.5, 0.25, 0.25]), rel=1e-12)
    for bad in (torch.tensor([0.5, 0.5]), torch.full((4,), 0.25), torch.tensor([1.0, -0.5, 0.5]), torch.zeros(3)):
        with pytest.raises(ConfigError, match=r"data_hist must be \[3\] non-negative with a positive sum"):
            label_mode_metrics(gen, 3, data_hist=bad)
    with pytest.raises(ConfigError, match="generated labels must be a non-empty integer tensor"):
        label_mode_metrics(torch.tensor([], dtype=torch.long), 3)
    assert label_mode_metrics(torch.tensor([0, 0, 1]), 3)["modes_covered"] == 2  # one sample covers a class


def test_mode_names():
    assert _mode_names(3) == ["0", "1", "2"]
    assert _mode_names(1000)[:2] == ["000", "001"] and _mode_names(1000)[-1] == "999"
    assert _mode_names(1001)[0] == "0"


def test_modes_apply_by_default_for_mixtures_and_labelled_data_only():
    assert "modes" in default_metrics(EvaluationContext(extractor="raw2d", mixture="ring8"))
    assert "modes" in default_metrics(EvaluationContext(extractor="mnist_classifier", num_classes=10))
    assert "modes" not in default_metrics(EvaluationContext(extractor="inception"))


def _ring_inputs(n_per_mode):
    centres, std = ring8_modes()
    g = torch.Generator().manual_seed(0)
    points = torch.cat([centres[i] + std * torch.randn(n, 2, generator=g) for i, n in enumerate(n_per_mode)])
    return MetricInputs(fake=FeatureSet(points), real=None, context=EvaluationContext(extractor="raw2d", mixture="ring8"))


def test_ring_metric_expects_the_chi_square_mass_of_each_mode_and_names_modes_by_centre():
    out = compute_metrics(["modes"], _ring_inputs([100] * 8))
    inside = stats.chi2.cdf(9.0, 2)  # a 2-D Gaussian's mass within 3 std
    assert [row["expected"] for row in out["mode_table"]] == [round(800 * inside / 8, 2)] * 8
    names = [row["mode"] for row in out["mode_table"]]
    assert names[:3] == ["0 (1.00, 0.00)", "1 (0.71, 0.71)", "2 (0.00, 1.00)"] and names[4] == "4 (-1.00, 0.00)"
    assert names[6] == "6 (0.00, -1.00)"  # no "-0.00"
    assert "Holm-corrected over 16" in out["verdicts"]["mode_collapse"]["test"]


def _label_inputs(fake_labels, train_labels=None, real_labels=None, k=10):
    feats = lambda labels: FeatureSet(torch.zeros(len(labels), 2), labels=torch.tensor(labels))
    return MetricInputs(
        fake=feats(fake_labels), real=None if real_labels is None else feats(real_labels),
        train=None if train_labels is None else feats(train_labels),
        context=EvaluationContext(extractor="mnist_classifier", num_classes=k),
    )


def test_labelled_metric_takes_the_training_labels_as_reference_and_for_the_published_kl():
    rng = np.random.default_rng(0)
    train = rng.choice(10, size=2000, p=np.r_[[0.2], np.full(9, 0.8 / 9)]).tolist()  # class 0 twice as common
    real = rng.choice(10, size=500).tolist()
    fake = rng.choice(10, size=1000).tolist()
    out = compute_metrics(["modes"], _label_inputs(fake, train, real))
    assert out["verdicts"]["mode_collapse"]["n_reference"] == 2000  # the training labels, not the held-out ones
    counts = lambda labels: np.bincount(labels, minlength=10)
    assert out["mode_kl"] == pytest.approx(stats.entropy(counts(fake), counts(train)), rel=1e-9)  # KL against the data's classes
    only_real = compute_metrics(["modes"], _label_inputs(fake, None, real))
    assert only_real["verdicts"]["mode_collapse"]["n_reference"] == 500
    # k != 10 (e.g. Stacked MNIST): the published KL is against the uniform distribution
    out12 = compute_metrics(["modes"], _label_inputs(fake, train, real, k=12))
    assert out12["mode_kl"] == pytest.approx(stats.entropy(counts(fake).tolist() + [0, 0], np.full(12, 1 / 12)), rel=1e-9)


def test_labelled_metric_without_reference_labels_tests_against_uniform_classes():
    fake = [0] * 100 + list(range(1, 10)) * 50  # class 0 over-represented, 550 samples
    out = compute_metrics(["modes"], _label_inputs(fake))
    verdict = out["verdicts"]["mode_collapse"]
    assert verdict["null"] == "a uniform real distribution over 10 classes (exact binomial per mode)"
    assert out["over_represented_modes"] == ["0"] and out["mode_collapse_flagged"]
    assert [row["expected"] for row in out["mode_table"]] == [55.0] * 10
    assert [row["status"] for row in out["mode_table"]] == ["over-represented"] + ["ok"] * 9
    dropped = compute_metrics(["modes"], _label_inputs(list(range(9)) * 60))  # class 9 never generated
    assert dropped["dropped_modes"] == ["9"] and dropped["mode_table"][9]["status"] == "dropped"
    assert [row["status"] for row in dropped["mode_table"][:9]] == ["ok"] * 9


@pytest.mark.parametrize("probs", [[0.2, 0.2, 0.2], [0.5], [-0.1, 0.5], [0.6, 0.6]])
def test_bad_reference_probabilities(probs):
    with pytest.raises(ConfigError, match=r"reference_probs must be \[2\] non-negative with a sum <= 1"):
        mode_coverage_test(torch.tensor([3, 4]), reference_probs=torch.tensor(probs))


def _holm_by_sorting(p):
    order = np.argsort(p)
    scaled = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(scaled)
    out[order] = scaled
    return out


def test_reference_sample_p_values_are_holm_adjusted_conditional_binomial_tails():
    g, r = np.array([12, 30, 3]), np.array([20, 25, 15])
    out = mode_coverage_test(torch.tensor(g), reference_counts=torch.tensor(r))
    share, t = g.sum() / (g.sum() + r.sum()), g + r
    raw = np.concatenate([stats.binom.cdf(g, t, share), stats.binom.sf(g - 1, t, share)])  # P(X <= g), P(X >= g)
    adjusted = _holm_by_sorting(raw)
    np.testing.assert_allclose(out["p_low"], adjusted[:3], rtol=1e-12)
    np.testing.assert_allclose(out["p_high"], adjusted[3:], rtol=1e-12)


def test_unlabelled_reference_data_falls_back_to_uniform_classes():
    fake = list(range(10)) * 40
    out = compute_metrics(["modes"], _label_inputs(fake, train_labels=[-1] * 300))  # -1: no label
    assert out["verdicts"]["mode_collapse"]["null"] == "a uniform real distribution over 10 classes (exact binomial per mode)"
    assert not out["mode_collapse_flagged"]


def test_kl_null_mean_is_the_chi_square_approximation():
    """For a multinomial sample of n from K modes, E[KL(p_hat || p)] ~ (K - 1) / (2 n)."""
    probs = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    out = mode_coverage_test(torch.tensor([250, 250, 250, 250]), reference_probs=probs, seed=0)
    assert out["kl_null_mean"] == pytest.approx(3 / 2000, rel=0.15)
    assert out["kl"] == 0.0 and out["kl_p_value"] == 1.0


def test_published_kl_is_against_the_data_for_ten_classes_only():
    rng = np.random.default_rng(1)
    train = rng.choice(5, size=1000, p=[0.4, 0.15, 0.15, 0.15, 0.15]).tolist()
    fake = rng.choice(5, size=500).tolist()
    out = compute_metrics(["modes"], _label_inputs(fake, train, k=5))
    assert out["mode_kl"] == pytest.approx(stats.entropy(np.bincount(fake, minlength=5), np.full(5, 0.2)), rel=1e-9)
    # the null's draws use seed 0 by default: a sample of the reference distribution, whose KL
    # p-value depends on the draws
    like_train = rng.choice(5, size=500, p=[0.4, 0.15, 0.15, 0.15, 0.15]).tolist()
    out = compute_metrics(["modes"], _label_inputs(like_train, train, k=5))
    counts = lambda labels: torch.tensor(np.bincount(labels, minlength=5))
    by_seed = [mode_coverage_test(counts(like_train), reference_counts=counts(train), seed=s)["kl_p_value"] for s in (0, 1)]
    assert by_seed[0] != by_seed[1] and out["mode_kl_p_value"] == by_seed[0]


def test_one_generated_sample_and_rounded_probabilities():
    one = mode_coverage_test(torch.tensor([1, 0]), reference_probs=torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert one["kl"] == pytest.approx(math.log(2)) and np.isfinite(one["kl_p_value"])
    assert one["kl_null_q99"] == pytest.approx(math.log(2))  # every one-sample draw has KL log 2
    rounded = torch.tensor([0.5, 0.5 + 1e-12], dtype=torch.float64)  # a sum a rounding error above 1
    assert rounded.numpy().sum() > 1
    mode_coverage_test(torch.tensor([50, 50]), reference_probs=rounded)


def test_no_sample_in_any_mode_has_no_kl_null():
    out = mode_coverage_test(torch.tensor([0, 0, 0]), reference_probs=torch.full((3,), 0.3, dtype=torch.float64), n_total=50)
    assert math.isnan(out["kl"]) and math.isnan(out["kl_null_mean"]) and math.isnan(out["kl_null_q99"])
    assert out["dropped"] == ["0", "1", "2"] and out["flagged"]


def test_kl_null_q99_is_the_chi_square_quantile():
    """2 n KL(p_hat || p) is asymptotically chi-square with K - 1 degrees of freedom."""
    probs = torch.full((4,), 0.25, dtype=torch.float64)
    out = mode_coverage_test(torch.tensor([250, 250, 250, 250]), reference_probs=probs, seed=0)
    assert out["kl_null_q99"] == pytest.approx(stats.chi2.ppf(0.99, 3) / 2000, rel=0.08)  # 1.04x with seed 0


def test_modes_outputs_as_declared():
    from gan_suite.evaluation.metrics.registry import get_metric

    outputs = {o.key: (o.higher_is_better, o.scale) for o in get_metric("modes").outputs}
    assert outputs["high_quality"] == (True, 100) and outputs["modes_covered"] == (True, 1)
    assert outputs["mode_kl"][0] is False and outputs["modes_dropped"][0] is False


def test_a_sample_at_exactly_n_std_is_not_high_quality():
    # distances 3.0 and 2.5 are exact in float32: the rule is strictly within n_std * std
    out = mixture_mode_metrics(torch.tensor([[3.0, 0.0], [0.0, 2.5]]), torch.zeros(1, 2), 1.0)
    assert out["high_quality"] == 0.5 and out["histogram"].tolist() == [1]
    with pytest.raises(ConfigError, match="mode centres: need at least 1 rows, got 0"):
        mixture_mode_metrics(torch.zeros(2, 2), torch.zeros(0, 2), 1.0)


def test_labels_beyond_the_last_class_are_refused():
    with pytest.raises(ConfigError, match=r"must lie in \[0, 10\), got \[0, 15\]"):
        label_mode_metrics(torch.tensor([0, 15]), 10)


def test_a_mode_of_zero_probability_is_allowed():
    out = mode_coverage_test(torch.tensor([5, 5, 0]), reference_probs=torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    assert out["expected"] == [5.0, 5.0, 0.0] and out["dropped"] == [] and out["p_low"][2] == 1.0
    exact_bound = mode_coverage_test(torch.tensor([4]), reference_probs=torch.tensor([1 + 1e-9], dtype=torch.float64))
    assert exact_bound["observed"] == [4]  # a sum of exactly 1 + 1e-9 is within the tolerance


def test_kl_p_value_counts_null_draws_tied_with_the_statistic():
    # two samples in two equally likely modes: the draws are (1, 1) with KL 0 or (2, 0) / (0, 2)
    # with KL log 2; the observed (1, 1) is tied with half of them, so p = (1 + 2000) / 2001
    out = mode_coverage_test(torch.tensor([1, 1]), reference_probs=torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert out["kl"] == 0.0 and out["kl_p_value"] == 1.0


def test_the_kl_null_is_drawn_with_seed_0_by_default():
    gen, ref = torch.tensor([30, 18, 12]), torch.tensor([20, 20, 20])
    default = mode_coverage_test(gen, reference_counts=ref)
    assert default["kl_p_value"] == mode_coverage_test(gen, reference_counts=ref, seed=0)["kl_p_value"]
    assert default["kl_p_value"] != mode_coverage_test(gen, reference_counts=ref, seed=1)["kl_p_value"]


def test_negative_labels_are_refused():
    with pytest.raises(ConfigError, match=r"must lie in \[0, 10\), got \[-1, 3\]"):
        label_mode_metrics(torch.tensor([-1, 3]), 10)


@pytest.mark.parametrize("missing", ["labels", "classes"])
def test_labelled_metric_is_skipped_without_labels_or_classes(missing):
    inputs = _label_inputs([0, 1, 2] * 10)
    if missing == "labels":
        inputs.fake = FeatureSet(inputs.fake.features)
    else:
        inputs.context = EvaluationContext(extractor="mnist_classifier", num_classes=None)
    notes = []
    inputs.note = notes.append
    assert compute_metrics(["modes"], inputs) == {}
    assert notes == ["modes skipped: no classifier labels for this data"]
