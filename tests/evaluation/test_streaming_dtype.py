"""float64 features: FID independent of the batch size; streaming keeps only moments for FID."""

import pytest
import torch
from torch import nn

from gan_suite.evaluation.features import build_extractor
from gan_suite.evaluation.metrics import compute_metrics
from gan_suite.evaluation.metrics.fid import FeatureMoments, fid_from_moments
from gan_suite.evaluation.metrics.registry import MetricInputs, need_kept_features
from gan_suite.evaluation.streaming import FeatureSet, generated_features


class _Digits(nn.Module):
    """noise [B, 16] -> images [B, 1, 28, 28] in [-1, 1], batch-independent in eval mode."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(16, 28 * 28), nn.Tanh())

    def forward(self, z):
        return self.net(z.to(self.net[0].weight.dtype)).view(-1, 1, 28, 28)


def test_float64_fid_does_not_depend_on_the_batch_size():
    extractor = build_extractor("mnist_classifier").use_dtype(torch.float64)
    generator = _Digits().double()
    real = generated_features(generator, 16, extractor, 300, 300, seed=1, progress=False)
    assert real.features.dtype == torch.float64 and extractor.describe()["network_dtype"] == "float64"
    fids = {}
    for batch in (1, 7, 64, 256):
        fake = generated_features(generator, 16, extractor, 300, batch, seed=2, progress=False, keep_features=False)
        assert fake.features is None and fake.moments.n == 300
        fids[batch] = compute_metrics(["fid"], MetricInputs(fake=fake, real=real))["fid"]
    for batch in (7, 64, 256):
        assert fids[batch] == pytest.approx(fids[1], rel=1e-6)
    assert fids[1] > 0


def test_streamed_moments_equal_the_moments_of_the_kept_features():
    extractor = build_extractor("mnist_classifier")
    generator = _Digits()
    kept = generated_features(generator, 16, extractor, 200, 64, seed=3, progress=False, storage_dtype=torch.float16)
    assert kept.features.dtype == torch.float16
    whole = FeatureMoments.from_features(generated_features(generator, 16, extractor, 200, 200, seed=3, progress=False).features)
    assert torch.allclose(kept.moments.mean, whole.mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(kept.moments.cov, whole.cov, rtol=1e-4, atol=1e-6)
    other = FeatureSet(features=None, moments=whole)
    assert len(other) == 200 and fid_from_moments(kept.moments, whole) == pytest.approx(0.0, abs=1e-6)


def test_only_fid_without_bootstrap_streams():
    assert not need_kept_features(["fid"]) and need_kept_features(["fid"], bootstrap=10)
    assert need_kept_features(["fid", "kid"]) and need_kept_features(["fd_inf"])
