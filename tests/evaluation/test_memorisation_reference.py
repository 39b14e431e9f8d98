"""Meehan et al.'s C_T and Alaa et al.'s authenticity against brute-force numpy references, on two
clusters far apart, so that the k-means partition is known (the sign of the first coordinate)."""

import math

import numpy as np
import pytest
import torch

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics import data_copying_ct, memorisation_report, unauthentic_share


def _cluster(rng, n, side):
    return rng.normal(size=(n, 3)) + np.array([side * 50.0, 0.0, 0.0])


def _sets(rng, train=(100, 100), heldout=(60, 40), generated=(70, 30)):
    make = lambda counts: np.concatenate([_cluster(rng, counts[0], -1), _cluster(rng, counts[1], +1)])
    return make(train), make(heldout), make(generated)


def _nn(queries, refs):
    return np.sqrt(((queries[:, None] - refs[None]) ** 2).sum(2)).min(1)


def _z(l_q, l_p):
    """Mann-Whitney U by counting pairs (ties 1/2), z-scored as in the paper."""
    m, n = len(l_q), len(l_p)
    u = (l_q[:, None] > l_p[None]).sum() + 0.5 * (l_q[:, None] == l_p[None]).sum()
    return (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)


def _reference_ct(train, heldout, generated, tau):
    num = den = 0.0
    used = 0
    for side in (-1, 1):
        t, p, q = (x[np.sign(x[:, 0]) == side] for x in (train, heldout, generated))
        if len(p) == 0 or len(q) / len(generated) <= tau:
            continue
        weight = len(p) / len(heldout)
        num, den, used = num + weight * _z(_nn(q, t), _nn(p, t)), den + weight, used + 1
    return num / den, used


def _ct(train, heldout, generated, **kw):
    return data_copying_ct(torch.tensor(train), torch.tensor(heldout), torch.tensor(generated), **kw)


def test_c_t_is_the_held_out_weighted_mean_of_the_cell_z_scores():
    rng = np.random.default_rng(0)
    train, heldout, generated = _sets(rng)
    generated[:20] = train[:20]  # 20 copies in the first cluster: its z-score drops, the other's does not
    out = _ct(train, heldout, generated, n_cells=2)
    expected, used = _reference_ct(train, heldout, generated, tau=20 / 100)
    assert (out["n_cells"], out["cells_used"]) == (2, used) == (2, 2)
    assert out["C_T"] == pytest.approx(expected, rel=1e-9)


def test_a_cell_at_exactly_tau_is_left_out():
    rng = np.random.default_rng(1)
    train, heldout, generated = _sets(rng, generated=(70, 30))
    at = _ct(train, heldout, generated, n_cells=2, tau=0.3)  # second cell: 30 / 100 = tau, not above
    assert at["cells_used"] == 1
    assert at["C_T"] == pytest.approx(_reference_ct(train, heldout, generated, tau=0.3)[0], rel=1e-9)
    above = _ct(train, heldout, generated, n_cells=2, tau=0.29)
    assert above["cells_used"] == 2
    assert above["C_T"] == pytest.approx(_reference_ct(train, heldout, generated, tau=0.29)[0], rel=1e-9)
    with pytest.raises(ConfigError, match="no k-means cell holds more than 70 generated samples"):
        _ct(train, heldout, generated, n_cells=2, tau=0.7)


def test_default_tau_counts_more_than_20_generated_samples():
    rng = np.random.default_rng(2)
    train, heldout, generated = _sets(rng, generated=(80, 20))  # the second cell holds exactly 20
    assert _ct(train, heldout, generated, n_cells=2)["cells_used"] == 1
    train, heldout, generated = _sets(rng, generated=(79, 21))
    assert _ct(train, heldout, generated, n_cells=2)["cells_used"] == 2


def test_a_cell_without_held_out_samples_has_no_weight():
    rng = np.random.default_rng(3)
    train, heldout, generated = _sets(rng, heldout=(100, 0))
    out = _ct(train, heldout, generated, n_cells=2)
    expected, used = _reference_ct(train, heldout, generated, tau=0.2)
    assert out["cells_used"] == used == 1 and out["C_T"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("sizes, cells", [((100, 100, 100), 2), ((100, 200, 400), 2), ((400, 400, 39), 1), ((79, 79, 79), 1), ((80, 80, 80), 2), ((4000, 4000, 4000), 50)])
def test_the_number_of_cells_shrinks_to_40_samples_per_cell(sizes, cells):
    rng = np.random.default_rng(4)
    train, heldout, generated = (rng.normal(size=(n, 2)) for n in sizes)
    assert _ct(train, heldout, generated, tau=0.0)["n_cells"] == cells


def test_unauthentic_share_against_brute_force():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(200, 4))
    samples = np.concatenate([train[:30] + 1e-4, rng.normal(size=(70, 4)) + 30.0])  # 30 near-copies, 70 far away
    d = np.sqrt(((train[:, None] - train[None]) ** 2).sum(2))
    np.fill_diagonal(d, np.inf)
    radius = d.min(1)  # each training sample's distance to its nearest other one
    to_train = np.sqrt(((samples[:, None] - train[None]) ** 2).sum(2))
    expected = (to_train.min(1) < radius[to_train.argmin(1)]).mean()
    assert expected == pytest.approx(0.3)
    assert unauthentic_share(torch.tensor(samples), torch.tensor(train)) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="authenticity needs at least 2 training samples"):
        unauthentic_share(torch.tensor(samples), torch.tensor(train[:1]))


def test_report_puts_each_set_in_its_place():
    rng = np.random.default_rng(6)
    train, heldout, generated = _sets(rng, heldout=(50, 51), generated=(60, 61))  # odd sizes: one middle value
    generated[:30] = train[:30]  # copies: distance 0
    out = memorisation_report(torch.tensor(train), torch.tensor(heldout), torch.tensor(generated), n_cells=2)
    assert out["median_nn_dist_generated"] == pytest.approx(np.median(_nn(generated, train)), rel=1e-6)
    assert out["median_nn_dist_heldout"] == pytest.approx(np.median(_nn(heldout, train)), rel=1e-6)
    assert out["unauthentic_generated"] == pytest.approx(unauthentic_share(torch.tensor(generated), torch.tensor(train)))
    assert out["unauthentic_heldout"] == pytest.approx(unauthentic_share(torch.tensor(heldout), torch.tensor(train)))
    assert out["unauthentic_generated"] >= 0.25 > out["unauthentic_heldout"] - 0.25
    assert out["C_T"] == pytest.approx(_reference_ct(train, heldout, generated, tau=20 / 121)[0], rel=1e-9)


def test_authenticity_takes_two_training_samples():
    train = torch.tensor([[0.0], [1.0]])  # each one's nearest other sample is at 1
    assert unauthentic_share(torch.tensor([[0.2], [3.0]]), train) == 0.5  # 0.2 < 1; 2.0 >= 1
    assert unauthentic_share(torch.tensor([[2.0]]), train) == 0.0  # exactly at the radius: authentic
    with pytest.raises(ConfigError, match="need at least 1 rows, got 0"):
        unauthentic_share(torch.zeros(0, 1), train)


def test_c_t_takes_two_samples_of_each_set():
    rng = np.random.default_rng(7)
    train, heldout, generated = _sets(rng)
    with pytest.raises(ConfigError, match="need at least 2 rows, got 1"):
        _ct(train, heldout[:1], generated, n_cells=1)


def test_a_cell_with_one_training_sample_counts():
    rng = np.random.default_rng(8)
    train, heldout, generated = _sets(rng, train=(100, 1))  # the second cell's only training sample
    out = _ct(train, heldout, generated, n_cells=2)
    expected, used = _reference_ct(train, heldout, generated, tau=0.2)
    assert out["cells_used"] == used == 2 and out["C_T"] == pytest.approx(expected, rel=1e-9)


def test_distances_are_taken_within_each_cell():
    """Each cell has a stray training sample by the other cell's border, so that generated
    samples there are nearer to a training sample of the other cell than to any of their own."""
    rng = np.random.default_rng(9)
    cluster = lambda n, x, y=0.0, scale=1.0: rng.normal(scale=scale, size=(n, 2)) + np.array([x, y])
    train = np.concatenate([cluster(50, -20), [[-2.0, 10.0]], cluster(50, 20), [[2.0, 0.0]]])
    # held-out samples at distances 7-9 from their cell, between the strays' 5 and the 10 within
    heldout = np.concatenate([cluster(35, -20), cluster(5, -12, -6, scale=0.3), cluster(35, 20), cluster(5, 12, -6, scale=0.3)])
    near_b_stray, near_a_stray = cluster(5, -3.0, scale=0.1), cluster(5, 3.0, 10.0, scale=0.1)
    generated = np.concatenate([cluster(40, -20), near_b_stray, cluster(40, 20), near_a_stray])
    out = _ct(train, heldout, generated, n_cells=2)
    expected, used = _reference_ct(train, heldout, generated, tau=20 / 90)
    assert out["cells_used"] == used == 2 and out["C_T"] == pytest.approx(expected, rel=1e-9)
    # across cells the strays would be the nearest: each cell's z-score would change
    for side in (-1, 1):
        q, h, t = (x[np.sign(x[:, 0]) == side] for x in (generated, heldout, train))
        assert abs(_z(_nn(q, t), _nn(h, t)) - _z(_nn(q, train), _nn(h, train))) > 0.04


class _RecordingKMeans:
    """sklearn's KMeans, recording the arguments it was built with."""

    built: list = []

    def __init__(self, **kwargs):
        from sklearn.cluster import KMeans

        self.built.append(kwargs)
        self._km = KMeans(**kwargs)

    def fit_predict(self, x):
        return self._km.fit_predict(x)

    def predict(self, x):
        return self._km.predict(x)


def test_k_means_is_seeded_and_restarted_as_documented(monkeypatch):
    import gan_suite.evaluation.metrics.memorisation as memorisation

    monkeypatch.setattr(memorisation, "KMeans", _RecordingKMeans)
    _RecordingKMeans.built = []
    rng = np.random.default_rng(10)
    train, heldout, generated = (torch.tensor(x) for x in _sets(rng))
    data_copying_ct(train, heldout, generated, n_cells=2)
    memorisation_report(train, heldout, generated, n_cells=2)
    data_copying_ct(train, heldout, generated, n_cells=2, random_state=5)
    assert _RecordingKMeans.built == [
        {"n_clusters": 2, "n_init": 3, "random_state": 0}, {"n_clusters": 2, "n_init": 3, "random_state": 0},
        {"n_clusters": 2, "n_init": 3, "random_state": 5},
    ]


def test_the_report_has_50_cells_by_default():
    rng = np.random.default_rng(11)
    train, heldout, generated = (torch.tensor(rng.normal(size=(2040, 2))) for _ in range(3))  # room for 51 cells
    assert memorisation_report(train, heldout, generated)["n_cells"] == 50
