"""Memorisation checks on a 16-D Gaussian mixture standing in for features."""

import math

import pytest
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import data_copying_ct, memorisation_report, unauthentic_share

D, MODES = 16, 10


@pytest.fixture(scope="module")
def sets():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(MODES, D, generator=g) * 4

    def sample(n):
        return centres[torch.randint(0, MODES, (n,), generator=g)] + torch.randn(n, D, generator=g)

    train, heldout, fresh = sample(3000), sample(1000), sample(1000)
    copies = train[torch.randperm(3000, generator=g)[:1000]]
    noisy_copies = copies + 1e-3 * torch.randn(copies.shape, generator=g)
    return {"train": train, "heldout": heldout, "fresh": fresh, "copies": copies, "noisy": noisy_copies}


def test_fresh_samples_are_not_flagged(sets):
    """Bounds with a false-failure rate below 1e-6 for fresh samples of the training distribution."""
    out = memorisation_report(sets["train"], sets["heldout"], sets["fresh"])
    # C_T is a weighted mean of per-cell z-scores, about N(0, s^2) with s <= 1 under the null:
    # P(|C_T| > 5.5) < 4e-8.
    assert abs(out["C_T"]) < 5.5
    assert out["n_cells"] == 25 and out["cells_used"] >= 20  # 1000 // 40 cells
    # two shares of 1000 samples near 0.34: their difference has sd <= sqrt(2 * 0.25 / 1000) = 0.022,
    # and 0.12 is 5.4 sd (two-sided rate 7e-8)
    assert out["unauthentic_generated"] == pytest.approx(out["unauthentic_heldout"], abs=0.12)
    # medians of 1000 nearest-neighbour distances: sd about 0.5% of the median here; 10% is > 10 sd
    assert out["median_nn_dist_generated"] == pytest.approx(out["median_nn_dist_heldout"], rel=0.1)


@pytest.mark.parametrize("which", ["copies", "noisy"])
def test_copies_of_training_samples_are_flagged(sets, which):
    out = memorisation_report(sets["train"], sets["heldout"], sets[which])
    assert out["C_T"] < -5
    assert out["unauthentic_generated"] > 0.99 > 0.6 > out["unauthentic_heldout"]
    assert out["median_nn_dist_generated"] < 0.01 < 1 < out["median_nn_dist_heldout"]


def test_partial_copying_lowers_c_t(sets):
    half = torch.cat([sets["copies"][:500], sets["fresh"][:500]])
    ct = data_copying_ct(sets["train"], sets["heldout"], half)["C_T"]
    assert -5 < ct < -2.5  # between the null and full copying
    assert unauthentic_share(half, sets["train"]) == pytest.approx(0.5 + 0.5 * 0.34, abs=0.06)


def test_mann_whitney_against_scipy():
    from scipy.stats import mannwhitneyu

    from gan_suite.evaluation.metrics.memorisation import _mann_whitney_z

    g = torch.Generator().manual_seed(1)
    lq, lp = torch.rand(30, generator=g).numpy(), (torch.rand(40, generator=g) + 0.2).numpy()
    lq[:5] = lp[:5]  # ties
    u = mannwhitneyu(lq, lp, method="asymptotic").statistic  # U of the first sample
    assert _mann_whitney_z(lq, lp) == pytest.approx((u - 600) / math.sqrt(30 * 40 * 71 / 12))
    assert _mann_whitney_z(lq, lp) < 0


def test_unauthentic_share_by_hand():
    train = torch.tensor([[0.0], [1.0], [10.0]])  # nearest-other distances 1, 1, 9
    samples = torch.tensor([[0.4], [0.6], [5.0], [20.0]])
    # 0.4 -> 0 (0.4 < 1), 0.6 -> 1 (0.4 < 1), 5 -> 1 (4 >= 1), 20 -> 10 (10 >= 9)
    assert unauthentic_share(samples, train) == pytest.approx(0.5)


def test_too_few_generated_samples(sets):
    with pytest.raises(ConfigError):
        data_copying_ct(sets["train"], sets["heldout"], sets["fresh"][:15])
