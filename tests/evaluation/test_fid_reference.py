"""FID's arithmetic against references written from the formula with numpy and scipy:
FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), S the unbiased covariances."""

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import compute_metrics
from gan_suite.evaluation.metrics.fid import FeatureMoments, FrechetToReference, fid_from_features, fid_from_moments, weighted_moments
from gan_suite.evaluation.metrics.registry import MetricInputs, get_metric
from gan_suite.evaluation.streaming import FeatureSet


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(scipy.linalg.sqrtm(s_a @ s_b).real))


def _features(seed: int, n: int, d: int, shift: float, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing * scale + shift + rng.normal(size=d)


def test_fid_matches_the_formula_on_correlated_features():
    a, b = _features(0, 700, 12, 0.0, 1.0), _features(1, 500, 12, 0.4, 1.7)
    expected = _scipy_fid(a, b)
    assert fid_from_features(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-8)
    assert fid_from_features(torch.tensor(b), torch.tensor(a)) == pytest.approx(expected, rel=1e-8)  # symmetric
    streamed = FeatureMoments()
    for chunk in np.array_split(a, 7):
        streamed.update(torch.tensor(chunk, dtype=torch.float32))
    assert fid_from_moments(streamed, FeatureMoments.from_features(torch.tensor(b), batch_size=33)) == pytest.approx(
        _scipy_fid(a.astype(np.float32).astype(np.float64), b), rel=1e-6
    )


def test_frechet_to_reference_matches_the_formula():
    a, b = _features(2, 400, 9, 0.0, 1.0), _features(3, 300, 9, -0.3, 0.6)
    mu_a, s_a, mu_b, s_b = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    distance = FrechetToReference(torch.tensor(mu_a), torch.tensor(s_a))
    assert distance(torch.tensor(mu_b), torch.tensor(s_b)) == pytest.approx(_scipy_fid(a, b), rel=1e-8)
    assert distance(torch.tensor(mu_a), torch.tensor(s_a)) == pytest.approx(0.0, abs=1e-8)
    # a rank-deficient reference (5 samples in 9 dimensions) still gives the formula's value
    few = a[:5]
    low = FrechetToReference(torch.tensor(few.mean(0)), torch.tensor(np.cov(few, rowvar=False)))
    assert low(torch.tensor(mu_b), torch.tensor(s_b)) == pytest.approx(_scipy_fid(few, b), rel=1e-6)


def test_weighted_moments_equal_numpy_frequency_weights():
    x = _features(4, 50, 5, 2.0, 3.0)
    counts = np.random.default_rng(5).multinomial(50, np.full(50, 1 / 50))
    shift = x.mean(0)
    mean, cov = weighted_moments(torch.tensor(x - shift), torch.tensor(counts), torch.tensor(shift), chunk=16)
    np.testing.assert_allclose(mean.numpy(), np.average(x, axis=0, weights=counts), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x, rowvar=False, fweights=counts), rtol=1e-10, atol=1e-12)
    explicit = np.repeat(x, counts, axis=0)
    np.testing.assert_allclose(cov.numpy(), np.cov(explicit, rowvar=False), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("storage", [torch.float32, torch.float16])
def test_bootstrap_replicate_is_the_fid_of_the_resample(storage):
    fake, real = _features(6, 300, 6, 0.2, 1.2), _features(7, 200, 6, 0.0, 1.0)
    fake = torch.tensor(fake).to(storage).double().numpy()  # what the stored features hold
    inputs = MetricInputs(fake=FeatureSet(torch.tensor(fake).to(storage)), real=FeatureSet(torch.tensor(real, dtype=torch.float32)))
    replicate = get_metric("fid").bootstrap(inputs)
    assert replicate.takes_counts
    counts = np.random.default_rng(8).multinomial(300, np.full(300, 1 / 300))
    expected = _scipy_fid(np.repeat(fake, counts, axis=0), torch.tensor(real, dtype=torch.float32).double().numpy())
    assert replicate(torch.tensor(counts))["fid"] == pytest.approx(expected, rel=1e-5)
    # and without resampling the registered metric is the plain FID
    value = compute_metrics(["fid"], inputs)["fid"]
    assert value == pytest.approx(_scipy_fid(fake, torch.tensor(real, dtype=torch.float32).double().numpy()), rel=1e-6)


def test_streamed_moments_alone_give_the_same_metric():
    fake, real = _features(9, 400, 4, 0.5, 1.0), _features(10, 300, 4, 0.0, 1.0)
    kept = compute_metrics(["fid"], MetricInputs(fake=FeatureSet(torch.tensor(fake)), real=FeatureSet(torch.tensor(real))))["fid"]
    moments_only = MetricInputs(
        fake=FeatureSet(None, moments=FeatureMoments.from_features(torch.tensor(fake))),
        real=FeatureSet(None, moments=FeatureMoments.from_features(torch.tensor(real))),
    )
    assert compute_metrics(["fid"], moments_only)["fid"] == pytest.approx(kept, rel=1e-9)
    assert kept == pytest.approx(_scipy_fid(fake, real), rel=1e-8)


def test_fewer_samples_than_dimensions_is_noted_once():
    notes = []
    small = _features(11, 6, 8, 0.0, 1.0)
    inputs = MetricInputs(fake=FeatureSet(torch.tensor(small)), real=FeatureSet(torch.tensor(_features(12, 100, 8, 0, 1))), note=notes.append)
    compute_metrics(["fid"], inputs)
    assert notes == ["FID with 6 samples for 8-d features: covariances are rank-deficient, expect a biased value"]
    enough = MetricInputs(fake=FeatureSet(torch.tensor(_features(13, 8, 8, 0, 1))), real=inputs.real, note=notes.append)
    compute_metrics(["fid"], enough)
    assert len(notes) == 1  # n = D is not rank-deficient by this count


def test_rank_deficiency_warning_starts_below_as_many_samples_as_dimensions():
    import warnings

    square = FeatureMoments.from_features(torch.tensor(_features(14, 6, 6, 0, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid_from_moments(square, square)  # n = D: no warning
    fewer = FeatureMoments.from_features(torch.tensor(_features(15, 5, 6, 0, 1)))
    with pytest.warns(UserWarning, match="5 samples < 6 feature dimensions in the second set"):
        fid_from_moments(square, fewer)


def test_bad_inputs_are_one_line_errors():
    one, two = FeatureMoments().update(torch.zeros(1, 3)), FeatureMoments().update(torch.randn(5, 3))
    with pytest.raises(ConfigError, match="FID needs at least 2 feature vectors in the first set, got 1"):
        fid_from_moments(one, two)
    with pytest.raises(ConfigError, match="FID needs at least 2 feature vectors in the second set, got 1"):
        fid_from_moments(two, one)
    with pytest.raises(ConfigError, match="feature dimensions differ: 3 vs 4"):
        fid_from_moments(two, FeatureMoments().update(torch.randn(5, 4)))
    for other in (4, 2):
        with pytest.raises(ConfigError, match=f"feature dimension {other} does not match 3"):
            FeatureMoments().update(torch.randn(2, 3)).update(torch.randn(2, other))
    with pytest.raises(ConfigError, match=r"features must be \[B, D\], got shape \(2, 3, 1\)"):
        FeatureMoments().update(torch.randn(2, 3, 1))
    with pytest.raises(ConfigError, match=r"features must be \[B, D\], got shape \(5,\)"):
        FeatureMoments().update(torch.randn(5))
    assert torch.equal(one.mean, torch.zeros(3, dtype=torch.float64))  # one vector has a mean
    with pytest.raises(ConfigError, match="need at least 2 feature vectors, got 1"):
        one.cov
    with pytest.raises(ConfigError, match="need at least 1 feature vectors, got 0"):
        FeatureMoments().mean
    assert FeatureMoments().dim is None and two.dim == 3


def test_edge_sizes_and_declarations():
    import warnings

    from gan_suite.evaluation.metrics.registry import need_kept_features

    two = FeatureMoments().update(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))  # 2 vectors: the fewest FID takes
    assert fid_from_moments(two, two) == pytest.approx(0.0, abs=1e-9)
    wide, narrow = FeatureMoments().update(torch.randn(5, 4)), FeatureMoments().update(torch.randn(5, 3))
    with pytest.raises(ConfigError, match="feature dimensions differ: 4 vs 3"):
        fid_from_moments(wide, narrow)
    many = FeatureMoments.from_features(torch.tensor(_features(16, 40, 6, 0, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid_from_moments(many, many)  # n > D: no warning
    notes = []
    inputs = MetricInputs(fake=FeatureSet(torch.tensor(_features(17, 20, 8, 0, 1))), real=FeatureSet(torch.tensor(_features(18, 30, 8, 0, 1))), note=notes.append)
    compute_metrics(["fid"], inputs)
    assert notes == []  # n > D: no note
    spec = get_metric("fid")
    assert [(o.key, o.higher_is_better) for o in spec.outputs] == [("fid", False)]  # lower is better
    assert spec.real_moments_suffice and not need_kept_features(["fid"], bootstrap=0)  # statistics files; streamed moments


def test_fid_prints_nothing(capfd):
    a = FeatureMoments.from_features(torch.tensor(_features(19, 30, 4, 0, 1)))
    fid_from_moments(a, a)
    assert capfd.readouterr() == ("", "")


def test_rank_deficiency_warning_names_the_caller():
    few = FeatureMoments.from_features(torch.tensor(_features(20, 3, 5, 0, 1)))
    with pytest.warns(UserWarning, match="rank-deficient") as record:
        fid_from_moments(few, few)
    assert record[0].filename == __file__  # points at the line that asked for the FID
