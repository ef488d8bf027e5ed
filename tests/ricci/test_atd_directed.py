"""ATD curvature against GraphRicciCurvature 0.6.1 (GRC), and the refusal of directed graphs.

Where the reference values come from: GRC 0.6.1 is run here, in this process:
``OllivierRicci(G, alpha=a, method="ATD", proc=1, exp_power=p).compute_ricci_curvature()``
(edge and node attribute ``"ricciCurvature"``) and ``.compute_ricci_flow(iterations=T)``
(edge attribute ``"weight"``). GRC's ATD (``_average_transportation_distance``) is
``alpha d(x, y) + (1 - alpha) mean_{u ~ x, v ~ y} d(u, v)`` with all-pairs shortest paths:
the uniform neighbour measure whatever ``exp_power``, i.e. brainalign's
``measure="uniform"``. For the other measures the reference is the same formula with the
measure's neighbour weights, written out below with scipy's shortest paths.

GRC's own test graph is ``nx.karate_club_graph()`` (networkx >= 2.8 gives it weights 1-7).
Tolerance 1e-8 (the sums differ only in order: observed differences are ~1e-15).
"""

from __future__ import annotations

import functools
import math
import warnings

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path
from scipy.spatial.distance import cdist

from brainalign import ricci, rsa
from brainalign.ricci import as_graph, knn_graph, ollivier_ricci, ricci_flow

grc = pytest.importorskip("GraphRicciCurvature.OllivierRicci")

ATOL = 1e-8
CPU = {"device": "cpu"}


# ---------------------------------------------------------------------------------------
# graphs and helpers


def _karate(kind: str) -> nx.Graph:
    """Karate club: as networkx ships it (weights 1-7), unweighted, or seeded weights."""
    src = nx.karate_club_graph()
    if kind == "networkx":
        return src
    g = nx.Graph()
    g.add_nodes_from(src.nodes())
    g.add_edges_from(src.edges())
    if kind == "seeded":
        rng = np.random.default_rng(7)
        for u, v in g.edges():
            g[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    return g


@functools.cache
def _knn_nx() -> nx.Graph:
    """A symmetric (OR) 6-NN graph of 60 clustered points in 10-D, Euclidean lengths."""
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=0.7, size=(4, 10))
    x = centres[rng.integers(4, size=60)] + rng.normal(size=(60, 10))
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :6]
    g = nx.Graph()
    g.add_nodes_from(range(60))
    g.add_weighted_edges_from(
        (int(i), int(j), float(d[i, j])) for i in range(60) for j in nn[i] if i != j
    )
    assert nx.is_connected(g)
    return g


@functools.cache
def _grc_atd(kind: str, alpha: float, exp_power: float = 2.0):
    g = _knn_nx() if kind == "knn" else _karate(kind)
    orc = grc.OllivierRicci(g, alpha=alpha, method="ATD", proc=1, exp_power=exp_power)
    orc.compute_ricci_curvature()
    edges = {
        frozenset((str(u), str(v))): float(d["ricciCurvature"])
        for u, v, d in orc.G.edges(data=True)
    }
    nodes = {str(u): float(d["ricciCurvature"]) for u, d in orc.G.nodes(data=True)}
    return edges, nodes


def _edges(res) -> dict:
    e = res.edges
    return {
        frozenset((str(s), str(t))): float(v)
        for s, t, v in zip(e["source"].values, e["target"].values, e.values, strict=True)
    }


def _nodes(res) -> dict:
    n = res.nodes
    return {str(k): float(v) for k, v in zip(n["node"].values, n.values, strict=True)}


def _max_diff(got: dict, want: dict) -> float:
    assert got.keys() == want.keys()
    return max(abs(got[k] - want[k]) for k in want)


def _atd_formula(g: nx.Graph, alpha: float, kernel) -> dict:
    """Independent ATD curvature: dense shortest paths, the measure's weights written out."""
    nodes = list(g.nodes())
    idx = {v: i for i, v in enumerate(nodes)}
    a = nx.to_numpy_array(g, nodelist=nodes, weight="weight", nonedge=0.0)
    d = shortest_path(a, directed=False)  # dense input: 0 marks no edge
    out = {}
    for x, y in g.edges():
        nx_, ny_ = list(g[x]), list(g[y])
        wx = np.array([kernel(g[x][u].get("weight", 1.0)) for u in nx_])
        wy = np.array([kernel(g[y][v].get("weight", 1.0)) for v in ny_])
        wx, wy = wx / wx.sum(), wy / wy.sum()
        sub = d[np.ix_([idx[u] for u in nx_], [idx[v] for v in ny_])]
        dxy = d[idx[x], idx[y]]
        atd = alpha * dxy + (1 - alpha) * wx @ sub @ wy
        out[frozenset((str(x), str(y)))] = 1 - atd / dxy
    return out


# ---------------------------------------------------------------------------------------
# ATD against GRC


@pytest.mark.parametrize(
    ("kind", "alpha", "exp_power"),
    [
        ("networkx", 0.5, 2.0),
        ("networkx", 0.0, 0.0),
        ("networkx", 0.9, 1.0),
        ("unweighted", 0.5, 2.0),
        ("unweighted", 0.9, 0.0),
        ("seeded", 0.5, 2.0),
        ("seeded", 0.0, 1.0),
        ("knn", 0.5, 2.0),
        ("knn", 0.9, 0.0),
    ],
)
def test_atd_matches_grc(kind, alpha, exp_power):
    # GRC's ATD ignores exp_power (uniform neighbour split): measure="uniform" for both.
    want_e, want_n = _grc_atd(kind, alpha, exp_power)
    g = _knn_nx() if kind == "knn" else _karate(kind)
    res = ollivier_ricci(g, alpha=alpha, measure="uniform", method="atd", **CPU)
    assert _max_diff(_edges(res), want_e) <= ATOL
    assert _max_diff(_nodes(res), want_n) <= ATOL
    assert res.attrs["method"] == "atd"


@pytest.mark.parametrize("exp_power", [1.0, 2.0])
def test_atd_grc_measure_on_an_unweighted_graph_matches_grc(exp_power):
    # Unit weights: the "grc" kernel base ** -(1 ** p) is constant, the measure uniform.
    want_e, want_n = _grc_atd("unweighted", 0.5, exp_power)
    res = ollivier_ricci(
        _karate("unweighted"), alpha=0.5, exp_power=exp_power, method="atd", **CPU
    )
    assert _max_diff(_edges(res), want_e) <= ATOL
    assert _max_diff(_nodes(res), want_n) <= ATOL


def test_atd_ricci_flow_matches_grc():
    g = _karate("unweighted")
    orc = grc.OllivierRicci(g, alpha=0.5, method="ATD", proc=1)
    orc.compute_ricci_flow(iterations=5)
    flow = ricci_flow(g, iterations=5, alpha=0.5, measure="uniform", method="atd", **CPU)
    src, dst, w = flow.graph.edges()
    ids = np.asarray(flow.graph.stimulus)
    got = {frozenset((ids[a], ids[b])): float(c) for a, b, c in zip(src, dst, w, strict=True)}
    want = {frozenset((str(u), str(v))): float(d["weight"]) for u, v, d in orc.G.edges(data=True)}
    keys = list(want)
    np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys], rtol=1e-8)
    want_k = {
        frozenset((str(u), str(v))): float(d["ricciCurvature"])
        for u, v, d in orc.G.edges(data=True)
    }
    assert _max_diff(_edges(flow.curvature), want_k) <= ATOL


# ---------------------------------------------------------------------------------------
# ATD with the other measures: the written-out formula


@pytest.mark.parametrize(
    ("measure", "kw", "kernel"),
    [
        ("grc", {"exp_power": 1.0, "base": 2.0}, lambda w: 2.0 ** -(w**1.0)),
        ("gaussian", {"bandwidth": 0.8}, lambda w: math.exp(-0.5 * (w / 0.8) ** 2)),
    ],
    ids=["grc", "gaussian"],
)
def test_atd_with_weighted_measures_matches_the_formula(measure, kw, kernel):
    g = _karate("seeded")
    want = _atd_formula(g, 0.3, kernel)
    res = ollivier_ricci(g, alpha=0.3, measure=measure, method="atd", **kw, **CPU)
    assert _max_diff(_edges(res), want) <= 1e-12


@st.composite
def _graphs(draw):
    """Connected weighted graphs: a random spanning tree plus random extra edges."""
    n = draw(st.integers(3, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for v in range(1, n):
        g.add_edge(int(rng.integers(v)), v, weight=float(rng.uniform(0.1, 3.0)))
    for u, v in zip(rng.integers(n, size=n), rng.integers(n, size=n), strict=True):
        if u != v and not g.has_edge(int(u), int(v)):
            g.add_edge(int(u), int(v), weight=float(rng.uniform(0.1, 3.0)))
    return g


@settings(max_examples=20, deadline=None)
@given(
    g=_graphs(),
    measure=st.sampled_from(["grc", "uniform", "gaussian"]),
    alpha=st.sampled_from([0.0, 0.5]),
)
def test_property_atd_is_a_lower_bound_of_the_exact_curvature(g, measure, alpha):
    # ATD is the cost of one coupling of m_x and m_y, so ATD >= W1 and kappa_atd <= kappa.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "grc" fallback warning on long edges
        exact = ollivier_ricci(g, alpha=alpha, measure=measure, **CPU)
        atd = ollivier_ricci(g, alpha=alpha, measure=measure, method="atd", **CPU)
    assert np.all(atd.edges.values <= exact.edges.values + 1e-12)
    np.testing.assert_array_equal(atd.edges["distance"], exact.edges["distance"])


# ---------------------------------------------------------------------------------------
# ATD paths, chunks and batches give the same numbers


@pytest.fixture(scope="module")
def atd_knn():
    g = as_graph(_knn_nx())
    return g, ollivier_ricci(g, measure="uniform", method="atd", **CPU)


def _torch_atd(g, **kw):
    """The batched torch path (used on GPUs), run here on the CPU."""
    import torch

    from brainalign.ricci._atd import atd_edges_torch
    from brainalign.ricci._curvature import node_measures
    from brainalign.ricci._kernels import ball_table

    mass_nbr, _, _ = node_measures(g, 0.5, "uniform", 2.0, math.e, None)
    table = ball_table(g.indptr, g.indices, g.weights)
    src, dst, _ = g.edges()
    return atd_edges_torch(g, mass_nbr, 0.5, table, src, dst, torch.device("cpu"), **kw)


def test_atd_torch_path_equals_the_compiled_path(atd_knn, monkeypatch):
    g, whole = atd_knn
    kappa, dist, _ = _torch_atd(g)
    np.testing.assert_allclose(kappa, whole.edges.values, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(dist, whole.edges["distance"].values)
    # chunks of a few edges each (the memory budget) give the same numbers
    monkeypatch.setattr("brainalign.ricci._atd.memory_budget", lambda dev: 96 * 2000)
    chunked, _, _ = _torch_atd(g)
    np.testing.assert_allclose(chunked, whole.edges.values, rtol=0, atol=1e-14)


def test_atd_device_paths_and_batches_give_the_same_curvature(atd_knn):
    g, whole = atd_knn
    dense = ollivier_ricci(g, measure="uniform", method="atd", paths="device", **CPU)
    np.testing.assert_allclose(dense.edges.values, whole.edges.values, rtol=0, atol=1e-14)
    small = as_graph(_karate("seeded"))
    batch = ollivier_ricci([small, g], measure="uniform", method="atd", **CPU)
    alone = ollivier_ricci(small, measure="uniform", method="atd", **CPU)
    np.testing.assert_allclose(batch[1].edges.values, whole.edges.values, rtol=0, atol=1e-14)
    np.testing.assert_allclose(batch[0].edges.values, alone.edges.values, rtol=0, atol=1e-14)


def test_compare_with_the_atd_solver(atd_knn):
    import brainalign as ba

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    ids = [f"s{i}" for i in range(20)]
    a = ba.responses(x, ids)
    b = ba.responses(x + 0.1 * rng.normal(size=x.shape), ids)
    ds = ricci.compare(a, b, k=4, method="atd", n_permutations=0, n_bootstrap=0, **CPU)
    assert ds.attrs["method"] == "atd"
    # node_correlation is the Spearman correlation of the two ATD node curvatures
    from scipy.stats import spearmanr

    kw = {"measure": "gaussian", "method": "atd", **CPU}
    na = ollivier_ricci(knn_graph(rsa.rdm(a, "euclidean"), k=4), **kw).nodes
    nb = ollivier_ricci(knn_graph(rsa.rdm(b, "euclidean"), k=4), **kw).nodes
    want = spearmanr(na.sel(node=ids).values, nb.sel(node=ids).values).statistic
    assert float(ds.node_correlation) == pytest.approx(want, abs=1e-12)


# ---------------------------------------------------------------------------------------
# method names


@pytest.mark.parametrize(("grc_name", "ours"), [("ATD", "atd"), ("OTD", "exact")])
def test_grc_method_names_point_to_ours(grc_name, ours):
    with pytest.raises(
        ValueError, match=rf"got '{grc_name}', GraphRicciCurvature's name: use method='{ours}'"
    ):
        ollivier_ricci(_karate("unweighted"), method=grc_name)


def test_unknown_method_lists_atd():
    with pytest.raises(ValueError, match=r"'method'.*'exact', 'sinkhorn', 'atd'.*got 'average'"):
        ollivier_ricci(_karate("unweighted"), method="average")


def test_ricci_and_rsa_method_names_never_clash():
    # ricci.METHODS are curvature solvers, rsa.METHODS RDM comparisons: no shared name.
    assert "atd" in ricci.METHODS
    assert not set(ricci.METHODS) & set(rsa.METHODS)


# ---------------------------------------------------------------------------------------
# directed graphs: refused, with the reason


def _digraph() -> nx.DiGraph:
    d = nx.DiGraph()
    d.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 1.0), (2, 0, 2.0), (1, 0, 1.0)])
    return d


@pytest.mark.parametrize("func", [ollivier_ricci, ricci_flow, as_graph])
def test_directed_networkx_graph_is_refused(func):
    with pytest.raises(
        TypeError,
        match=r"graph must be an undirected graph \(networkx.Graph\), got a directed "
        r"DiGraph\. Representational graphs have no direction.*G\.to_undirected\(\)",
    ):
        func(_digraph())


def test_directed_graph_after_symmetrising_is_accepted():
    res = ollivier_ricci(_digraph().to_undirected(), **CPU)
    assert res.edges.sizes["edge"] == 3


def test_asymmetric_dense_adjacency_is_refused():
    a = np.array([[0, 1.0, 0], [0, 0, 2.0], [0, 2.0, 0]])
    with pytest.raises(
        ValueError,
        match=r"graph must be a symmetric adjacency matrix \(an undirected graph\); got an "
        r"asymmetric one: graph\[0, 1\] = 1 but graph\[1, 0\] = 0\..*\(A \+ A\.T\) / 2",
    ):
        ollivier_ricci(a)


def test_asymmetric_sparse_adjacency_is_refused():
    from scipy.sparse import csr_matrix

    a = csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 3.0], [0, 2.0, 0]]))
    with pytest.raises(ValueError, match=r"graph\[1, 2\] = 3 but graph\[2, 1\] = 2"):
        ollivier_ricci(a)
