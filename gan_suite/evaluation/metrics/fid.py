"""Frechet Inception Distance from feature moments.

features [B, D] -> FeatureMoments (n, sum, sum of outer products; float64) -> mean, covariance
-> torch-fidelity's ``fid_statistics_to_metric`` (the matrix square root part).

The moment accumulator is hand-written because torch-fidelity's ``fid_features_to_statistics``
needs every feature in memory at once (it calls numpy.mean / numpy.cov on the whole array).
The evaluation pipeline (:mod:`gan_suite.evaluation.streaming`) adds every batch of generated
features to a FeatureMoments as it arrives, and keeps the features themselves too whenever
another metric or the bootstrap needs them: by default (100 bootstrap resamples) and in the
in-training evaluation it keeps them all, and FID is then computed from the kept features (see
:func:`_moments`). Only FID alone without resamples (``--metrics fid --bootstrap 0``) holds the
O(D^2) moments instead of N x D features. A real-set statistics file (mu, sigma, n) is read into
a FeatureMoments.
"""

from __future__ import annotations

import warnings

import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics._validate import check_finite
from gan_suite.evaluation.metrics.registry import MetricInputs, Output, register_metric


class FeatureMoments:
    """Streaming first and second moments of D-dimensional features, in float64.

    Holds n (int), sum [D] and the sum of outer products [D, D] on the device of the first
    batch: memory independent of the number of samples.
    """

    def __init__(self) -> None:
        self.n = 0
        self.sum: torch.Tensor | None = None
        self.sum_outer: torch.Tensor | None = None

    @property
    def dim(self) -> int | None:
        return None if self.sum is None else self.sum.shape[0]

    def update(self, feats: torch.Tensor) -> FeatureMoments:
        """Add a batch of features [B, D] (any float dtype and device). Returns self."""
        if feats.dim() != 2:
            raise ConfigError(f"features must be [B, D], got shape {tuple(feats.shape)}")
        check_finite(feats)
        x = feats.detach().to(torch.float64)
        if self.sum is None:
            self.sum = x.new_zeros(x.shape[1])
            self.sum_outer = x.new_zeros(x.shape[1], x.shape[1])
        if x.shape[1] != self.dim:
            raise ConfigError(f"feature dimension {x.shape[1]} does not match {self.dim}")
        x = x.to(self.sum.device)
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.sum_outer.addmm_(x.T, x)
        return self

    @property
    def mean(self) -> torch.Tensor:
        """[D] float64 sample mean."""
        self._need(1)
        return self.sum / self.n

    @property
    def cov(self) -> torch.Tensor:
        """[D, D] float64 unbiased covariance (divides by n - 1, like numpy.cov / torch-fidelity)."""
        self._need(2)
        mean = self.mean
        return (self.sum_outer - self.n * torch.outer(mean, mean)) / (self.n - 1)

    def _need(self, n: int) -> None:
        if self.n < n:
            raise ConfigError(f"need at least {n} feature vectors, got {self.n}")

    @classmethod
    def from_features(cls, feats: torch.Tensor, batch_size: int = 65536) -> FeatureMoments:
        """Moments of all rows of ``feats`` [N, D], accumulated in batches."""
        m = cls()
        for batch in feats.split(batch_size):
            m.update(batch)
        return m


def fid_from_moments(a: FeatureMoments, b: FeatureMoments) -> float:
    """FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two moment sets.

    The square-root trace is torch-fidelity's (sum of sqrt of the eigenvalues of S_a S_b, real
    part): rank-deficient covariances give a finite value, not NaN. Warns when n < D.
    """
    if a.dim != b.dim:
        raise ConfigError(f"feature dimensions differ: {a.dim} vs {b.dim}")
    for name, m in (("first", a), ("second", b)):
        if m.n < 2:
            raise ConfigError(f"FID needs at least 2 feature vectors in the {name} set, got {m.n}")
        if m.n < m.dim:
            warnings.warn(
                f"FID: {m.n} samples < {m.dim} feature dimensions in the {name} set: the "
                "covariance is rank-deficient and FID unreliable",
                stacklevel=2,
            )
    stat_a = {"mu": a.mean.cpu().numpy(), "sigma": a.cov.cpu().numpy()}
    stat_b = {"mu": b.mean.cpu().numpy(), "sigma": b.cov.cpu().numpy()}
    value = fid_statistics_to_metric(stat_a, stat_b, verbose=False)[KEY_METRIC_FID]
    return float(value)


class FrechetToReference:
    """Frechet distance of many (mean, covariance) pairs to one fixed reference, for bootstrap
    replicates and FD-infinity fits.

    The reference's square root R = S_r^(1/2) is computed once (symmetric eigendecomposition);
    each distance then needs one symmetric eigenvalue problem, since
    Tr (S_r S_g)^(1/2) = Tr (R S_g R)^(1/2): about three times cheaper than the general
    eigenvalues torch-fidelity's point estimate uses, and the same value up to rounding.
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        self.mean = mean.to(torch.float64)
        self.cov = cov.to(torch.float64)
        eigenvalues, vectors = torch.linalg.eigh(self.cov)
        self.root = (vectors * eigenvalues.clamp_min(0).sqrt()) @ vectors.T
        self.trace = torch.trace(self.cov)

    def __call__(self, mean: torch.Tensor, cov: torch.Tensor) -> float:
        """FID between the reference and mean [D], covariance [D, D]."""
        cov = cov.to(torch.float64)
        middle = self.root @ cov @ self.root
        root_trace = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
        gap = mean.to(torch.float64) - self.mean
        return float(gap @ gap + self.trace + torch.trace(cov) - 2 * root_trace)


def weighted_moments(centred: torch.Tensor, weights: torch.Tensor, shift: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [D], unbiased covariance [D, D]) of a weighted sample, e.g. a bootstrap resample
    given by its counts.

    Args:
        centred: [N, D] features minus ``shift`` (float32 is enough: centring removes the
            cancellation that raw second moments suffer).
        weights: [N] how often each row occurs (sum = sample size).
        shift: [D] float64 added back to the mean.
    """
    total = float(weights.sum())
    first = torch.zeros(centred.shape[1], dtype=torch.float64)
    second = torch.zeros(centred.shape[1], centred.shape[1], dtype=torch.float64)
    for lo in range(0, centred.shape[0], chunk):
        x, w = centred[lo : lo + chunk], weights[lo : lo + chunk].to(centred.dtype)
        first += (w @ x).double()
        second += ((x * w[:, None]).T @ x).double()
    mean = first / total
    cov = (second - total * torch.outer(mean, mean)) / (total - 1)
    return mean + shift, cov


def fid_from_features(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """FID between features [N_a, D] and [N_b, D] (any float dtype, any device)."""
    return fid_from_moments(FeatureMoments.from_features(feats_a), FeatureMoments.from_features(feats_b))


def _prepare_fid_bootstrap(inputs: MetricInputs):
    """FID of bootstrap resamples from their counts: the real reference's square root once, then
    weighted moments of the centred generated features per resample (no copy of the resample)."""
    real = _moments(inputs.real)
    reference = FrechetToReference(real.mean, real.cov)
    features = inputs.fake.features
    shift = _moments(inputs.fake).mean
    centred = (features.to(torch.float64) - shift).to(torch.float32 if features.dtype == torch.float16 else features.dtype)

    def replicate(counts: torch.Tensor) -> dict:
        return {"fid": reference(*weighted_moments(centred, counts, shift))}

    replicate.takes_counts = True
    return replicate


@register_metric(
    "fid",
    outputs=[Output("fid", False, "FID")],
    needs={"real"},
    description="Frechet distance between real and generated feature distributions",
    bootstrap=_prepare_fid_bootstrap,
    streams=True,
    real_moments_suffice=True,
)
def _fid_metric(inputs: MetricInputs) -> dict:
    real, fake = _moments(inputs.real), _moments(inputs.fake)
    n, dim = min(real.n, fake.n), fake.dim
    if n < dim:
        inputs.note(f"FID with {n} samples for {dim}-d features: covariances are rank-deficient, expect a biased value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noted above, once
        return {"fid": fid_from_moments(real, fake)}


def _moments(feature_set) -> FeatureMoments:
    """The moments of a feature set's kept features, or its streamed moments when it kept none.

    Kept features come first so that a set gives the same value whether its features were
    streamed here or read from the cache (the summation order changes the last digits)."""
    if getattr(feature_set, "features", None) is None:
        return feature_set.moments
    return FeatureMoments.from_features(feature_set.features)
