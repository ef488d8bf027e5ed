"""The torch sparse ball table against the compiled-CPU one (``_kernels.ball_table``).

``sparse_ball_table`` must return the same table: the same rows, the same targets in the
same order, the same distances (bit for bit in practice; asserted to 1e-12 relative), and
therefore the same exact curvature. CPU only; the module runs in a few seconds.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from brainalign.ricci import _kernels as K
from brainalign.ricci import as_graph, ollivier_ricci
from brainalign.ricci._curvature import node_measures
from brainalign.ricci._device_paths import sparse_ball_table

CPU = torch.device("cpu")
RTOL = 1e-12


# ---------------------------------------------------------------------------------------
# graphs (symmetric CSR arrays)


def _csr(n: int, a, b, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric CSR arrays (rows sorted, both directions) of undirected edges ``a - b``."""
    a, b, w = np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(w, np.float64)
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    ws = np.concatenate([w, w])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols[order], ws[order]


def _knn_edges(n: int, seed: int, k: int = 7, dim: int = 20, clusters: int = 6):
    """Symmetric (OR) k-NN edges over seeded Gaussian clusters (as benchmarks/ricci.py)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.7, size=(clusters, dim))
    x = centres[rng.integers(clusters, size=n)] + rng.normal(size=(n, dim))
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    i = np.repeat(np.arange(n), k)
    j = nn.ravel()
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    return a, b, d[a, b]


def _knn(n: int, seed: int, weights: str):
    a, b, w = _knn_edges(n, seed)
    if weights == "unit":
        w = np.ones_like(w)
    elif weights == "ties":  # a few short decimals: many equal-length paths, rounded sums
        w = np.random.default_rng(seed).choice([0.1, 0.2, 0.3], size=len(w))
    return _csr(n, a, b, w)


def _nx_csr(g: nx.Graph):
    graph = as_graph(g)
    return graph.indptr, graph.indices, graph.weights


def _karate(weighted: bool):
    g = nx.karate_club_graph()  # networkx >= 3: integer "weight" attributes
    if not weighted:
        for u, v in g.edges():
            g[u][v]["weight"] = 1.0
    return _nx_csr(g)


def _assert_same(table, ref):
    bptr, btgt, bdist = table
    assert bptr.dtype == np.int64 and btgt.dtype == np.int64 and bdist.dtype == np.float64
    np.testing.assert_array_equal(bptr, ref[0])
    np.testing.assert_array_equal(btgt, ref[1])
    np.testing.assert_allclose(bdist, ref[2], rtol=RTOL, atol=0)


def _check(indptr, indices, weights, **kw):
    table = sparse_ball_table(indptr, indices, weights, CPU, **kw)
    ref = K.ball_table(indptr, indices, weights)
    _assert_same(table, ref)
    return table, ref


# ---------------------------------------------------------------------------------------
# equality with ball_table


@pytest.mark.parametrize("weights", ["distance", "unit", "ties"])
def test_knn_graph(weights):
    _check(*_knn(300, 0, weights))


@pytest.mark.parametrize("weighted", [True, False])
def test_karate(weighted):
    _check(*_karate(weighted))


def test_disconnected():
    """Two components and an isolated node: rows stay within their component."""
    a1, b1, w1 = _knn_edges(60, 1)
    a2, b2, w2 = _knn_edges(40, 2)
    n = 60 + 40 + 1
    a = np.concatenate([a1, a2 + 60])
    b = np.concatenate([b1, b2 + 60])
    w = np.concatenate([w1, w2])
    (bptr, btgt, _), _ = _check(*_csr(n, a, b, w))
    rows = np.repeat(np.arange(n), np.diff(bptr))
    assert np.all((rows < 60) == (btgt < 60))
    assert bptr[-1] - bptr[-2] == 1 and btgt[-1] == n - 1  # the isolated node: itself only


def test_no_edges():
    _check(*_csr(3, [], [], []))
    bptr, btgt, bdist = sparse_ball_table(np.zeros(1, np.int64), [], [], CPU)
    assert bptr.tolist() == [0] and len(btgt) == len(bdist) == 0


def test_zero_weight_edges():
    """Zero-length edges: distance 0 between distinct nodes, ties everywhere."""
    a, b, w = _knn_edges(150, 3)
    w = np.where(np.random.default_rng(3).random(len(w)) < 0.3, 0.0, w)
    (_, _, bdist), _ = _check(*_csr(150, a, b, w))
    assert np.count_nonzero(bdist == 0.0) > 150  # more zeros than the diagonal


def test_small_budget_many_chunks():
    """A budget of a few kilobytes: many source chunks and frontier pieces, same table."""
    graph = _knn(120, 4, "distance")
    ref = K.ball_table(*graph)
    budget = 30_000
    stats = {}
    table = sparse_ball_table(*graph, CPU, budget=budget, stats=stats)
    _assert_same(table, ref)
    assert stats["chunks"] > 5
    assert stats["peak_candidates"] <= budget // 256
    assert stats["tuples"] == ref[0][-1]


def test_radius_argument():
    graph = _knn(200, 5, "distance")
    r = K.radius(*graph) * (1 + 1e-12)
    _assert_same(sparse_ball_table(*graph, CPU, radius=r), K.ball_table(*graph))
    # a smaller scalar radius: every row is the nodes within it, as scipy's Dijkstra finds
    limit = float(np.median(r)) / 2
    bptr, btgt, bdist = sparse_ball_table(*graph, CPU, radius=limit)
    indptr, indices, weights = graph
    d = dijkstra(csr_matrix((weights, indices, indptr), shape=(200, 200)), limit=limit)
    rows, cols = np.nonzero(np.isfinite(d))
    np.testing.assert_array_equal(bptr, np.searchsorted(rows, np.arange(201)))
    np.testing.assert_array_equal(btgt, cols)
    np.testing.assert_allclose(bdist, d[rows, cols], rtol=RTOL, atol=0)
    assert bptr[-1] < K.ball_table(*graph)[0][-1]


def test_rows_against_scipy_dijkstra():
    """An independent check: a few rows against scipy's Dijkstra with the same limit."""
    indptr, indices, weights = _knn(300, 6, "distance")
    n = len(indptr) - 1
    r = K.radius(indptr, indices, weights) * (1 + 1e-12)
    bptr, btgt, bdist = sparse_ball_table(indptr, indices, weights, CPU)
    m = csr_matrix((weights, indices, indptr), shape=(n, n))
    for u in [0, 17, 123, 299]:
        d = dijkstra(m, directed=True, indices=u, limit=r[u])
        expect = np.flatnonzero(np.isfinite(d))
        sl = slice(bptr[u], bptr[u + 1])
        np.testing.assert_array_equal(btgt[sl], expect)
        np.testing.assert_allclose(bdist[sl], d[expect], rtol=RTOL, atol=0)


# ---------------------------------------------------------------------------------------
# the curvature the table feeds


@pytest.mark.parametrize("which", ["knn", "karate"])
def test_exact_curvature(which):
    if which == "knn":
        a, b, w = _knn_edges(300, 7)
        g = nx.Graph()
        g.add_nodes_from(range(300))
        g.add_weighted_edges_from(zip(a.tolist(), b.tolist(), w.tolist(), strict=True))
        graph = as_graph(g)
    else:
        graph = as_graph(nx.karate_club_graph())
    mass_nbr, mass_self, _ = node_measures(graph, 0.5, "uniform", 2.0, math.e, None)
    src, dst, _ = graph.edges()
    args = (graph.indptr, graph.indices, mass_nbr, mass_self)
    table = sparse_ball_table(graph.indptr, graph.indices, graph.weights, CPU)
    ref = K.ball_table(graph.indptr, graph.indices, graph.weights)
    k1, d1, w1 = K.curvature_exact(*args, table, src, dst)
    k0, d0, w0 = K.curvature_exact(*args, ref, src, dst)
    np.testing.assert_allclose(d1, d0, rtol=RTOL, atol=0)
    np.testing.assert_allclose(w1, w0, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(k1, k0, rtol=0, atol=1e-12)


def test_ollivier_ricci_uses_the_sparse_device_table_for_large_graphs(monkeypatch):
    # paths="device" on graphs above the dense all-pairs limit goes through
    # sparse_ball_table; lower the limit so that a small graph takes that route.
    from brainalign.ricci import _curvature as C
    from brainalign.ricci import _device_paths as D

    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return D.sparse_ball_table(*args, **kwargs)

    monkeypatch.setattr(C, "_DEVICE_APSP_MAX", 20)  # karate: 34 nodes
    monkeypatch.setattr(C, "sparse_ball_table", spy)
    g = nx.karate_club_graph()  # with networkx >= 3's integer weights
    on_device = ollivier_ricci(g, paths="device", device="cpu")
    on_cpu = ollivier_ricci(g, paths="cpu", device="cpu")
    assert len(calls) == 1
    np.testing.assert_allclose(on_device.edges.values, on_cpu.edges.values, rtol=0, atol=1e-12)
