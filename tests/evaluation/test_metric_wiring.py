"""compute_metrics hands each metric the right sets: a generator whose samples are a known subset
of the real data gives predictable precision, recall, density, coverage and memorisation numbers,
which swapping any two sets would change."""

import math

import numpy as np
import torch

from gan_suite.evaluation.protocol import compute_metrics
from gan_suite.evaluation.streaming import FeatureSet


def _two_clusters(n_per_cluster: int, seed: int) -> torch.Tensor:
    """[2 n, 4] points: cluster A around 0, cluster B around 100 (far beyond any k-NN radius)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n_per_cluster, 4, generator=g, dtype=torch.float64)
    b = torch.randn(n_per_cluster, 4, generator=g, dtype=torch.float64) + 100.0
    return torch.cat([a, b]).float()


def _density_by_brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> float:
    """Naeem et al. 2020 written out: 1/(k M) sum_j #{i : |Y_j - X_i| <= r_i}, r_i the distance
    from X_i to its k-th nearest other real sample."""
    between_real = np.sqrt(((real[:, None, :] - real[None, :, :]) ** 2).sum(-1))
    radii = np.sort(between_real, axis=1)[:, k]  # column 0 is the point itself
    fake_to_real = np.sqrt(((fake[:, None, :] - real[None, :, :]) ** 2).sum(-1))
    margin = np.abs(fake_to_real - radii[None, :]).min()
    assert margin > 1e-4, "a generated sample lies on a ball's boundary: float32 rounding would decide"
    return float((fake_to_real <= radii[None, :]).sum() / (k * len(fake)))


def test_generated_subset_of_real_gives_known_precision_recall_density_coverage():
    n = 60
    real = _two_clusters(n, seed=0)
    jitter = 0.01 * torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    fake = real[:n] + jitter  # cluster A's points moved by ~0.01 (no ties at ball boundaries); none in B
    values = compute_metrics(["pr", "dc"], fake=FeatureSet(fake), real=FeatureSet(real))
    assert values["precision"] == 1.0  # every generated sample sits by a real one
    assert values["recall"] == 0.5  # the real half in cluster B is missed
    assert values["coverage"] == 0.5  # only cluster A's balls hold a generated sample
    expected_density = _density_by_brute_force(real.double().numpy(), fake.double().numpy(), k=5)
    assert math.isclose(values["density"], expected_density, rel_tol=1e-12)
    # with the sets swapped the numbers would be precision 0.5, recall 1, coverage 1
    swapped = compute_metrics(["pr", "dc"], fake=FeatureSet(real), real=FeatureSet(fake))
    assert (swapped["precision"], swapped["recall"], swapped["coverage"]) == (0.5, 1.0, 1.0)


def test_generated_copies_of_training_data_give_known_memorisation_numbers():
    n = 60
    train = _two_clusters(n, seed=1)  # 120 training samples
    heldout = _two_clusters(n, seed=2)  # 120 fresh samples of the same distribution
    fake = train[::2].clone()  # 60 exact copies of training samples
    values = compute_metrics(
        ["memorisation"], fake=FeatureSet(fake), real=FeatureSet(heldout), train=FeatureSet(train),
        heldout=FeatureSet(heldout),
    )
    assert values["median_nn_dist_generated"] == 0.0
    assert values["median_nn_dist_heldout"] > 0.1
    assert values["unauthentic_generated"] == 1.0  # each copy sits at distance 0 from its original
    assert values["copy_rate"] == 1.0 and values["copying_flagged"]
    # one k-means cell (min(120, 120, 60) // 40); every generated distance (0) is below every
    # held-out one, so U = 0 and C_T = -(m n / 2) / sqrt(m n (m + n + 1) / 12) with m = 60, n = 120
    m, n_held = 60, 120
    expected_ct = -(m * n_held / 2) / math.sqrt(m * n_held * (m + n_held + 1) / 12)
    assert math.isclose(values["C_T"], expected_ct, rel_tol=1e-12)
