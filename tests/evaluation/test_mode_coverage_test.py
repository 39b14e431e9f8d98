"""The per-mode test and the KL null: exact p-values against scipy, Holm by hand, known cases."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom, binomtest

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.modes import _holm, mode_coverage_test
from gan_suite.evaluation.metrics.registry import EvaluationContext, MetricInputs, compute_metrics
from gan_suite.evaluation.metrics import ring8_modes
from gan_suite.evaluation.streaming import FeatureSet


def test_holm_by_hand():
    # sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5)
    adjusted = _holm(np.array([0.03, 0.5, 0.01, 0.02]))
    np.testing.assert_allclose(adjusted, [0.06, 0.5, 0.04, 0.06])


def test_known_distribution_p_values_match_scipy_binomial_tests():
    probs = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    counts = torch.tensor([40, 60, 50, 50])
    out = mode_coverage_test(counts, reference_probs=probs)
    raw_low = [binomtest(int(c), 200, 0.25, alternative="less").pvalue for c in counts]
    raw_high = [binomtest(int(c), 200, 0.25, alternative="greater").pvalue for c in counts]
    np.testing.assert_allclose(np.concatenate([out["p_low"], out["p_high"]]), _holm(np.array(raw_low + raw_high)), rtol=1e-9)
    assert out["expected"] == [50.0] * 4 and out["dropped"] == [] and not out["flagged"]


def test_reference_sample_uses_the_conditional_binomial():
    gen, ref = torch.tensor([5, 95]), torch.tensor([50, 50])
    out = mode_coverage_test(gen, reference_counts=ref)
    # mode 0: 55 samples in all, each generated with probability 100 / 200
    raw = binom.cdf(5, 55, 0.5)
    assert out["p_low"][0] == pytest.approx(min(1.0, 4 * raw), rel=1e-9)  # smallest of 4: x4
    assert out["dropped"] == ["0"] and out["over_represented"] == ["1"] and out["flagged"]
    assert out["expected"][0] == pytest.approx(27.5)


def test_under_the_null_the_flag_rate_is_at_most_the_level():
    rng = np.random.default_rng(0)
    p = np.full(10, 0.1)
    flags = kl_small = 0
    for i in range(300):
        gen = torch.from_numpy(rng.multinomial(2000, p))
        ref = torch.from_numpy(rng.multinomial(3000, p))
        out = mode_coverage_test(gen, reference_counts=ref, level=0.05, seed=i)
        flags += out["flagged"]
        kl_small += out["kl_p_value"] < 0.05
    # two tests at 5% each: at most ~10%; binomial(300, 0.1) exceeds 45 with probability < 1e-3
    assert flags <= 45 and kl_small <= 27, (flags, kl_small)


def test_a_dropped_mode_is_named_and_the_kl_is_far_in_the_null_tail():
    rng = np.random.default_rng(1)
    p = np.full(8, 1 / 8)
    gen = rng.multinomial(2000, p)
    gen[3] = 4
    out = mode_coverage_test(torch.from_numpy(gen), reference_probs=torch.from_numpy(p), mode_names=list("abcdefgh"))
    assert out["dropped"] == ["d"] and out["flagged"]
    assert out["kl"] > out["kl_null_q99"] and out["kl_p_value"] == pytest.approx(1 / 2001)


def test_bad_references_are_one_line_errors():
    with pytest.raises(ConfigError, match="not both"):
        mode_coverage_test(torch.tensor([1, 2]), reference_counts=torch.tensor([1, 1]), reference_probs=torch.tensor([0.5, 0.5]))
    with pytest.raises(ConfigError, match="sum <= 1"):
        mode_coverage_test(torch.tensor([1, 2]), reference_probs=torch.tensor([0.9, 0.9]))
    with pytest.raises(ConfigError, match="no generated samples"):
        mode_coverage_test(torch.tensor([0, 0]), reference_probs=torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("counts", [torch.tensor([5, -1, 3]), torch.tensor([5.0, 1.5, 3.0]), torch.tensor([[5, 1, 3]])])
@pytest.mark.parametrize("reference", ["counts", "probs"])
def test_bad_generated_counts_are_one_line_errors(counts, reference):
    # a negative, fractional or two-dimensional histogram is a caller's bug, not a mode verdict
    kwargs = {"reference_counts": torch.tensor([4, 4, 4])} if reference == "counts" else {"reference_probs": torch.full((3,), 0.3)}
    with pytest.raises(ConfigError, match="gen_counts must be one count per mode"):
        mode_coverage_test(counts, **kwargs)


def test_samples_outside_every_mode_drop_every_mode():
    # 200 samples, none within reach of a mode: total collapse, not an error
    out = mode_coverage_test(torch.tensor([0, 0, 0, 0]), reference_probs=torch.full((4,), 0.24, dtype=torch.float64), n_total=200)
    assert out["dropped"] == ["0", "1", "2", "3"] and out["flagged"]
    np.testing.assert_allclose(out["p_low"], _holm(np.array([0.76**200] * 4 + [1.0] * 4))[:4], rtol=1e-9)
    assert math.isnan(out["kl"]) and math.isnan(out["kl_p_value"]) and out["expected"] == [48.0] * 4
    far = torch.full((300, 2), 50.0)
    verdict = _ring_verdict(far)
    assert verdict["mode_collapse_flagged"] and verdict["modes_dropped"] == 8 and verdict["modes_covered"] == 0


def _ring_samples(n, rng, dropped=()):
    centres, std = ring8_modes()
    keep = [i for i in range(8) if i not in dropped]
    which = torch.from_numpy(rng.choice(keep, n))
    return centres[which] + std * torch.from_numpy(rng.standard_normal((n, 2))).float()


def _ring_verdict(samples):
    inputs = MetricInputs(fake=FeatureSet(samples), real=FeatureSet(samples), context=EvaluationContext(extractor="raw2d", mixture="ring8"))
    inputs.note = lambda msg: None
    return compute_metrics(["modes"], inputs)


def test_ring_real_samples_are_not_flagged_and_a_dropped_mode_is_named():
    rng = np.random.default_rng(5)
    false_alarms = sum(_ring_verdict(_ring_samples(2500, rng))["mode_collapse_flagged"] for _ in range(100))
    assert false_alarms <= 5
    hits = named = 0
    for i in range(100):
        mode = i % 8
        out = _ring_verdict(_ring_samples(2500, rng, dropped=(mode,)))
        hits += out["mode_collapse_flagged"]
        named += len(out["dropped_modes"]) == 1 and out["dropped_modes"][0].startswith(f"{mode} (")
        assert out["modes_covered"] == 7 and out["verdicts"]["mode_collapse"]["flagged"] == out["mode_collapse_flagged"]
    assert hits == 100 and named == 100
    # the published high-quality share is kept: 2-D Gaussians put 1 - exp(-4.5) within 3 std
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
