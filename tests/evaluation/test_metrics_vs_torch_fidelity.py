"""FID, IS, KID and precision/recall equal torch-fidelity's own feature-level functions."""

import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from gan_suite.errors import GanSuiteError, NonFiniteSamplesError
from gan_suite.evaluation.metrics import (
    fid_from_features,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)

REL = 1e-6


def _feats(n, d=64, shift=0.0, scale=1.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fid_equals_torch_fidelity(dtype):
    a, b = _feats(1500, dtype=dtype), _feats(1200, shift=0.2, scale=1.1, seed=1, dtype=dtype)
    ref = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), verbose=False)
    assert fid_from_features(a, b) == pytest.approx(ref["frechet_inception_distance"], rel=REL)


@pytest.mark.parametrize("kwargs", [{}, {"splits": 4}, {"shuffle": False}, {"seed": 7, "splits": 3}])
def test_inception_score_equals_torch_fidelity(kwargs):
    logits = _feats(1003, d=10, scale=3.0, seed=2)  # N not a multiple of splits
    tf_kwargs = {"rng_seed" if k == "seed" else k: v for k, v in kwargs.items()}
    ref = isc_features_to_metric(logits, **tf_kwargs)
    out = inception_score(logits, **kwargs)
    assert out["mean"] == pytest.approx(ref["inception_score_mean"], rel=REL)
    assert out["std"] == pytest.approx(ref["inception_score_std"], rel=REL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kid_equals_torch_fidelity(dtype):
    a, b = _feats(800, dtype=dtype, seed=3), _feats(900, shift=0.1, seed=4, dtype=dtype)
    ref = kid_features_to_metric(a, b, kid_subsets=10, kid_subset_size=500, rng_seed=11, verbose=False)
    out = kernel_inception_distance(a, b, subsets=10, subset_size=500, seed=11)
    assert out["mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=REL)
    assert out["std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=REL)
    assert out["mean"] > 0


def test_kid_small_sets_warn_and_shrink_subsets():
    a, b = _feats(300, seed=5), _feats(400, shift=0.1, seed=6)
    with pytest.warns(UserWarning, match="subset_size"):
        out = kernel_inception_distance(a, b, subsets=5)
    ref = kid_features_to_metric(a, b, kid_subsets=5, kid_subset_size=300, verbose=False)
    assert out["mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=REL)
    with pytest.raises(GanSuiteError):
        kernel_inception_distance(a[:1], b)


@pytest.mark.parametrize("chunk_bytes", [None, 50_000])
def test_precision_recall_equals_torch_fidelity(chunk_bytes):
    real = _feats(1200, seed=7)
    fake = _feats(1000, shift=0.1, scale=1.1, seed=8)
    ref = prc_features_to_metric(fake, real, verbose=False)  # torch-fidelity: input1 = fake
    out = precision_recall(real, fake, chunk_bytes=chunk_bytes)
    for key in ("precision", "recall", "f_score"):
        assert out[key] == pytest.approx(ref[key], rel=REL), key
    assert 0.05 < out["precision"] < 0.95 and 0.05 < out["recall"] < 0.95


def test_non_finite_features_raise():
    a, b = _feats(100), _feats(100, seed=1)
    a[3, 5] = float("nan")
    for fn in (fid_from_features, kernel_inception_distance, lambda x, y: precision_recall(y, x)):
        with pytest.raises(NonFiniteSamplesError):
            fn(a, b)
    with pytest.raises(NonFiniteSamplesError):
        inception_score(torch.full((20, 10), float("inf")))
