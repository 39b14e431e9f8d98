"""gan_suite.evaluation.metrics.knn against scikit-learn's brute-force search."""

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from gan_suite.errors import ConfigError
from gan_suite.evaluation.metrics.knn import (
    any_within_radii,
    count_within_radii,
    knn,
    kth_nn_radius,
    pairwise_sq_dists,
)

CHUNKS = [None, 16_384, 100_000, 1 << 20]  # bytes per distance block: from many tiny blocks to one


def _data(q, r, d, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(q, d, generator=g, dtype=dtype), torch.randn(r, d, generator=g, dtype=dtype)


def test_pairwise_sq_dists_matches_cdist():
    a, b = _data(50, 70, 16)
    np.testing.assert_allclose(pairwise_sq_dists(a, b).numpy(), torch.cdist(a, b).square().numpy(), rtol=1e-10)
    assert pairwise_sq_dists(a, a).diagonal().abs().max() < 1e-10
    assert (pairwise_sq_dists(a.float(), a.float()) >= 0).all()


@pytest.mark.parametrize("shape", [(500, 1500, 64, 5), (1000, 700, 32, 3), (40, 37, 8, 2), (300, 2000, 16, 1)])
@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_knn_equals_sklearn_brute_force(shape, chunk_bytes):
    n_q, n_r, d, k = shape
    a, b = _data(n_q, n_r, d)
    ref_d, ref_i = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(b.numpy()).kneighbors(a.numpy())
    dist, idx = knn(a, b, k, chunk_bytes=chunk_bytes)
    assert dist.shape == idx.shape == (n_q, k) and idx.dtype == torch.long
    np.testing.assert_array_equal(idx.numpy(), ref_i)
    np.testing.assert_allclose(dist.numpy(), ref_d, rtol=1e-10, atol=1e-10)
    assert (dist[:, 1:] >= dist[:, :-1]).all()
    # float32: same neighbours (no near-ties in this data), distances to float32 accuracy
    dist32, idx32 = knn(a.float(), b.float(), k, chunk_bytes=chunk_bytes)
    assert dist32.dtype == torch.float32
    assert (idx32.numpy() == ref_i).mean() > 0.999
    np.testing.assert_allclose(np.sort(dist32.numpy(), 1), ref_d, rtol=1e-4)


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_knn_exclude_self_and_kth_radius(chunk_bytes):
    _, x = _data(1, 1200, 24, seed=1)
    k = 5
    ref_d, ref_i = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x.numpy()).kneighbors(x.numpy())
    assert (ref_i[:, 0] == np.arange(len(x))).all()
    dist, idx = knn(x, x, k, exclude_self=True, chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx.numpy(), ref_i[:, 1:])
    np.testing.assert_allclose(dist.numpy(), ref_d[:, 1:], rtol=1e-10)
    np.testing.assert_allclose(kth_nn_radius(x, k, chunk_bytes).numpy(), ref_d[:, k], rtol=1e-10)


def test_result_independent_of_chunk_size_float32():
    a, b = _data(1500, 2500, 48, dtype=torch.float32, seed=2)
    d0, i0 = knn(a, b, 4)
    rad = torch.rand(2500, generator=torch.Generator().manual_seed(3)) * 12
    c0, h0 = count_within_radii(a, b, rad), any_within_radii(a, b, rad)
    for chunk_bytes in CHUNKS[1:]:
        d1, i1 = knn(a, b, 4, chunk_bytes=chunk_bytes)
        assert torch.equal(i0, i1)
        torch.testing.assert_close(d0, d1, rtol=1e-6, atol=1e-6)
        assert torch.equal(count_within_radii(a, b, rad, chunk_bytes), c0)
        assert torch.equal(any_within_radii(a, b, rad, chunk_bytes), h0)


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_count_and_any_within_radii(chunk_bytes):
    a, b = _data(700, 900, 16, seed=4)
    radii = torch.rand(900, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 6
    inside = torch.cdist(a, b) <= radii  # [Q, R]
    counts = count_within_radii(a, b, radii, chunk_bytes)
    assert counts.dtype == torch.long and torch.equal(counts, inside.sum(1))
    assert 0 < counts.sum() < inside.numel()
    assert torch.equal(any_within_radii(a, b, radii, chunk_bytes), inside.any(1))


def test_duplicates_have_zero_distance():
    _, b = _data(1, 800, 64, dtype=torch.float32, seed=6)
    b = b * 10 + 100  # large norms: the matmul form alone would give ~sqrt(eps)*|x| > 0
    dist, idx = knn(b[:50], b, 2)
    assert torch.equal(idx[:, 0], torch.arange(50)) and (dist[:, 0] == 0).all()
    assert (dist[:, 1] > 1).all()


def test_closed_balls_on_integer_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    radii = torch.tensor([1.0, 0.0, 2.0, 3.0])
    q = torch.tensor([[1.0], [3.0], [9.0], [10.0]])
    assert count_within_radii(q, x, radii).tolist() == [3, 2, 1, 0]
    assert any_within_radii(q, x, radii).tolist() == [True, True, True, False]


def test_errors():
    a, b = _data(10, 5, 3)
    with pytest.raises(ConfigError):
        knn(a, b, 6)
    with pytest.raises(ConfigError):
        knn(b, b, 5, exclude_self=True)
    with pytest.raises(ConfigError):
        knn(a, b, 2, exclude_self=True)
    with pytest.raises(ConfigError):
        knn(a, b[:, :2], 1)
    with pytest.raises(ConfigError):
        count_within_radii(a, b, torch.ones(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    a, b = _data(3000, 4000, 64, dtype=torch.float32)
    d_cpu, i_cpu = knn(a, b, 3)
    d_gpu, i_gpu = knn(a.cuda(), b.cuda(), 3, chunk_bytes=1 << 20)
    assert d_gpu.device.type == "cuda"
    assert (i_gpu.cpu() == i_cpu).float().mean() > 0.999
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=1e-4, atol=1e-4)


def test_no_queries_give_empty_results():
    dists, idx = knn(torch.zeros(0, 3), torch.randn(5, 3), 2)
    assert dists.shape == (0, 2) and idx.shape == (0, 2) and idx.dtype == torch.long


def test_default_block_holds_about_64_mb_whatever_the_sizes():
    from gan_suite.evaluation.metrics.knn import _block_shape

    for n_q, n_r in [(10**6, 10**6), (10**7, 50), (3, 10**8), (50_000, 50_000)]:
        rows, cols = _block_shape(n_q, n_r, 4, None)
        assert 1 <= rows <= n_q and 1 <= cols <= n_r and rows * cols * 4 <= 64 * 2**20
        assert rows * cols * 4 > 32 * 2**20 or rows == n_q and (cols == n_r or cols == 2**24)


def test_close_pairs_are_exact_to_float32_rounding():
    # unit-norm references and queries at d^2 / (|q|^2 + |r|^2) from 1e-6 to 9.5e-3: the matmul
    # form loses ~1e-7 of d^2 ~ 2 to cancellation (a relative error of 1e-5 at d^2 = 0.02 and far
    # more below); recomputed as ||q - r||^2 they are exact to float32 rounding
    g = torch.Generator().manual_seed(11)
    refs = torch.nn.functional.normalize(torch.randn(300, 16, generator=g, dtype=torch.float64), dim=1)
    direction = torch.randn(300, 16, generator=g, dtype=torch.float64)
    direction = torch.nn.functional.normalize(direction - (direction * refs).sum(1, keepdim=True) * refs, dim=1)
    ratio = torch.cat([torch.logspace(-6, -2.3, 100, dtype=torch.float64), torch.linspace(5.2e-3, 9.5e-3, 200, dtype=torch.float64)])
    d_sq = 2 * ratio / (1 - ratio)  # so that d^2 / (2 + d^2) = ratio
    queries = (refs + direction * d_sq.sqrt().unsqueeze(1)).float()
    dist, idx = knn(queries, refs.float(), 1)
    assert torch.equal(idx[:, 0], torch.arange(300))
    exact = (queries.double() - refs.float().double()).norm(dim=1)
    assert ((dist[:, 0].double() - exact).abs() / exact).max() < 1e-6


def test_more_neighbours_than_query_rows_across_column_blocks():
    a, b = _data(2, 5000, 3, seed=12)
    dists, idx = knn(a, b, 5, chunk_bytes=16_384)  # blocks of 2 rows x 1024 columns
    expected = torch.cdist(a, b).topk(5, dim=1, largest=False)
    assert torch.equal(idx, expected.indices) and torch.allclose(dists, expected.values, rtol=1e-12)


def test_zero_neighbours_are_refused():
    a, b = _data(3, 5, 2)
    with pytest.raises(ConfigError, match="k=0 nearest neighbours need more than 5 reference points"):
        knn(a, b, 0)


def test_every_reference_may_be_a_neighbour():
    a, b = _data(4, 6, 3, seed=13)
    dists, idx = knn(a, b, 6)
    assert torch.equal(idx, torch.cdist(a, b).argsort(1))
    _, own = knn(b, b, 5, exclude_self=True)
    assert all(i not in row for i, row in enumerate(own.tolist())) and all(len(set(row)) == 5 for row in own.tolist())


def test_balls_are_closed_and_no_wider():
    x = torch.tensor([[0.0], [6.0]])
    radii = torch.tensor([1.0, 3.0])
    q = torch.tensor([[9.0], [9.1], [-1.05]])  # on ball 1's boundary; 0.1 beyond it; 0.05 beyond ball 0's
    assert any_within_radii(q, x, radii).tolist() == [True, False, False]
    assert count_within_radii(q, x, radii).tolist() == [1, 0, 0]


def test_bad_shapes_are_one_line_errors():
    a, b = _data(10, 5, 3)
    with pytest.raises(ConfigError, match=r"radii must have shape \[5\], got \(6,\)"):
        count_within_radii(a, b, torch.ones(6))
    with pytest.raises(ConfigError, match=r"expected a 2-D \[N, D\] feature tensor, got shape \(10,\)"):
        knn(a[:, 0], b, 1)


def test_self_pairs_are_excluded_in_every_block():
    # float32, 2 MB blocks: 512 query rows by 1024 columns, so the query block at row 512 meets
    # its own points in the column block at 0, which it does not start
    x = torch.randn(1500, 3, generator=torch.Generator().manual_seed(14))
    radius = kth_nn_radius(x, 3, chunk_bytes=2**21)
    d = torch.cdist(x.double(), x.double())
    d.fill_diagonal_(float("inf"))
    assert torch.allclose(radius.double(), d.sort(1).values[:, 2], rtol=1e-5, atol=1e-6)


def test_more_bad_inputs_are_one_line_errors():
    a, b = _data(3, 5, 2)
    with pytest.raises(ConfigError, match="exclude_self needs queries == refs, got 3 and 5 rows"):
        knn(a, b, 1, exclude_self=True)
    with pytest.raises(ConfigError, match=r"expected a 2-D \[N, D\] feature tensor, got shape \(3, 2, 1\)"):
        knn(a[..., None], b, 1)
