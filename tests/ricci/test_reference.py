"""brainalign.ricci against GraphRicciCurvature 0.6.1 (GRC), analytic values and properties.

Where the reference values come from: every GRC value is computed here, in this process, by
GraphRicciCurvature 0.6.1 (with POT's ``emd2`` and networkit's APSP underneath):

- curvature: ``OllivierRicci(G, alpha=a, method="OTD", proc=1, exp_power=p, base=b)
  .compute_ricci_curvature()`` -> edge attribute / node attribute ``"ricciCurvature"``;
- flow: ``OllivierRicci(G, alpha=0.5, method="OTD", proc=1).compute_ricci_flow(iterations=T)``
  -> edge attribute ``"weight"`` (and ``"ricciCurvature"``, ``"original_RC"``);
- communities: ``.ricci_community()`` on that flowed object -> ``(cutoff, {node: label})``.

GRC's measure (``_get_single_node_neighbors_distributions``): mass ``alpha`` on x, the rest
over the neighbours in proportion to ``base ** -(w ** exp_power)``, and the uniform
``(1 - alpha) / deg`` when those weights sum to at most ``EPSILON = 1e-7`` (its silent
"fallback"). κ(x, y) = 1 - W1(m_x, m_y) / d_G(x, y) with d_G the shortest-path distance.
CPU only; the whole module runs in well under 40 s.
"""

from __future__ import annotations

import functools
import math
import warnings

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from brainalign import ricci
from brainalign.ricci import as_graph, knn_graph, ollivier_ricci, ricci_flow

grc = pytest.importorskip("GraphRicciCurvature.OllivierRicci")

ATOL = 1e-6  # the tolerance against GRC (exact solver)
GRC_EPSILON = 1e-7  # GRC's EPSILON: neighbour weights summing to <= this -> uniform measure
FALLBACK = "fall"  # brainalign's fallback warning matches this (case-insensitive below)
CPU = {"device": "cpu"}


# ---------------------------------------------------------------------------------------
# graphs


def _karate(weighted: bool) -> nx.Graph:
    """Zachary's karate club without networkx>=3's weights, or with seeded ones in [0.5, 2]."""
    src = nx.karate_club_graph()
    g = nx.Graph()
    g.add_nodes_from(src.nodes())
    g.add_edges_from(src.edges())
    if weighted:
        rng = np.random.default_rng(7)
        for u, v in g.edges():
            g[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    return g


def _clusters(n: int, dim: int, n_clusters: int, seed: int) -> np.ndarray:
    """Seeded Gaussian clusters: centres ~ N(0, 0.7²), points ~ N(centre, 1) (connected k-NN)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.7, size=(n_clusters, dim))
    return centres[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, dim))


def _knn_adjacency(dist: np.ndarray, k: int, mutual: bool = False) -> np.ndarray:
    """Independent symmetric k-NN: j in kNN(i) OR (mutual: AND) i in kNN(j)."""
    d = dist.copy()
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    a = np.zeros(d.shape, dtype=bool)
    a[np.repeat(np.arange(len(d)), k), nn.ravel()] = True
    return (a & a.T) if mutual else (a | a.T)


def _nx_from_adjacency(adj: np.ndarray, dist: np.ndarray) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(len(adj)))
    i, j = np.nonzero(np.triu(adj, 1))
    g.add_weighted_edges_from(
        (int(a), int(b), float(dist[a, b])) for a, b in zip(i, j, strict=True)
    )
    return g


# (n, dim, k, seed, rescale): with raw distances GRC falls back at 1 node in 10-D, at 18 of
# 120 in 15-D, at all of them in 30-D and 50-D; "rescaled" divides by the median edge (no
# fallback). All these symmetric (OR) k-NN graphs are connected.
KNN_CASES = {
    "n80-d10-k5-raw": (80, 10, 5, 1, False),
    "n120-d15-k7-raw": (120, 15, 7, 2, False),
    "n150-d50-k10-raw": (150, 50, 10, 3, False),
    "n150-d50-k10-rescaled": (150, 50, 10, 3, True),
    "n100-d30-k8-rescaled": (100, 30, 8, 4, True),
}


@functools.cache
def _knn_case(name: str):
    n, dim, k, seed, rescale = KNN_CASES[name]
    x = _clusters(n, dim, 4, seed)
    dist = cdist(x, x)
    adj = _knn_adjacency(dist, k)
    if rescale:
        dist = dist / np.median(dist[adj])
    return x, dist, adj, _nx_from_adjacency(adj, dist)


def _n_fallback(g: nx.Graph, exp_power=2.0, base=math.e) -> int:
    """Nodes whose GRC neighbour weights sum to <= 1e-7 (GRC then spreads uniformly)."""
    out = 0
    for u in g.nodes():
        s = sum(base ** (-(d["weight"] ** exp_power)) for _, _, d in g.edges(u, data=True))
        out += s <= GRC_EPSILON
    return out


# ---------------------------------------------------------------------------------------
# GRC and brainalign results as {frozenset({source, target}): kappa}, {node: kappa}


def _grc_curvature(g: nx.Graph, alpha=0.5, exp_power=2.0, base=math.e):
    orc = grc.OllivierRicci(g, alpha=alpha, method="OTD", proc=1, exp_power=exp_power, base=base)
    orc.compute_ricci_curvature()
    edges = {
        frozenset((str(u), str(v))): float(d["ricciCurvature"])
        for u, v, d in orc.G.edges(data=True)
    }
    nodes = {str(u): float(d["ricciCurvature"]) for u, d in orc.G.nodes(data=True)}
    return edges, nodes


def _ba_edges(res) -> dict:
    e = res.edges
    return {
        frozenset((str(s), str(t))): float(v)
        for s, t, v in zip(e["source"].values, e["target"].values, e.values, strict=True)
    }


def _ba_nodes(res) -> dict:
    return {
        str(n): float(v) for n, v in zip(res.nodes["node"].values, res.nodes.values, strict=True)
    }


def _assert_close(got: dict, want: dict, atol: float, what: str) -> float:
    assert got.keys() == want.keys(), f"{what}: different keys"
    keys = sorted(want, key=lambda k: sorted(k) if isinstance(k, frozenset) else k)
    g = np.array([got[k] for k in keys])
    w = np.array([want[k] for k in keys])
    err = np.abs(g - w)
    worst = int(np.argmax(err))
    assert err[worst] <= atol, (
        f"{what}: max |diff| {err[worst]:.3e} > {atol:g} at {sorted(keys[worst])}: "
        f"got {g[worst]!r}, expected {w[worst]!r} ({int((err > atol).sum())} of {len(w)} off)"
    )
    return float(err.max())


def _curvature(g, *, expect_fallback: int = 0, **kw):
    """brainalign curvature; a fallback warning is required exactly when GRC falls back."""
    if expect_fallback:
        with pytest.warns(UserWarning, match=f"(?i){FALLBACK}"):
            return ollivier_ricci(g, **CPU, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ollivier_ricci(g, **CPU, **kw)
    fb = [str(w.message) for w in caught if FALLBACK in str(w.message).lower()]
    assert not fb, f"unexpected fallback warning: {fb}"
    return res


# ---------------------------------------------------------------------------------------
# karate club (GRC's own test graph), unweighted and weighted


@pytest.mark.parametrize("exp_power", [0.0, 2.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_karate_matches_grc(weighted, alpha, exp_power):
    g = _karate(weighted)
    want_e, want_n = _grc_curvature(g, alpha=alpha, exp_power=exp_power)
    res = _curvature(g, alpha=alpha, exp_power=exp_power, measure="grc", method="exact")
    _assert_close(_ba_edges(res), want_e, ATOL, "edge curvature")
    _assert_close(_ba_nodes(res), want_n, ATOL, "node curvature")
    assert res.edges.sizes["edge"] == g.number_of_edges()


def test_karate_base_and_exp_power_match_grc():
    g = _karate(weighted=True)
    want_e, want_n = _grc_curvature(g, alpha=0.3, exp_power=1.0, base=2.0)
    res = _curvature(g, alpha=0.3, exp_power=1.0, base=2.0, measure="grc", method="exact")
    _assert_close(_ba_edges(res), want_e, ATOL, "edge curvature")
    _assert_close(_ba_nodes(res), want_n, ATOL, "node curvature")


def test_karate_upstream_value():
    # GRC 0.6.1's docstring: OllivierRicci(karate, alpha=0.5).compute_ricci_curvature()
    # gives G[0][1]["ricciCurvature"] = 0.1111111107 (= 1/9 up to the LP solver).
    res = _curvature(_karate(False), alpha=0.5, measure="grc", method="exact")
    assert _ba_edges(res)[frozenset(("0", "1"))] == pytest.approx(1 / 9, abs=1e-8)


# ---------------------------------------------------------------------------------------
# hidden k-NN graphs (raw and rescaled Euclidean distances)


@pytest.mark.parametrize("name", list(KNN_CASES))
def test_knn_graph_matches_grc(name):
    _, _, _, g = _knn_case(name)
    n_fb = _n_fallback(g)
    want_e, want_n = _grc_curvature(g, alpha=0.5)
    res = _curvature(g, expect_fallback=n_fb, alpha=0.5, measure="grc", method="exact")
    _assert_close(_ba_edges(res), want_e, ATOL, "edge curvature")
    _assert_close(_ba_nodes(res), want_n, ATOL, "node curvature")
    assert int(res.attrs["n_fallback"]) == n_fb


@pytest.mark.parametrize("alpha", [0.0, 0.9])
def test_knn_graph_other_alpha_matches_grc(alpha):
    _, _, _, g = _knn_case("n100-d30-k8-rescaled")
    want_e, _ = _grc_curvature(g, alpha=alpha)
    res = _curvature(g, alpha=alpha, measure="grc", method="exact")
    _assert_close(_ba_edges(res), want_e, ATOL, "edge curvature")


def _upper_edges(graph) -> dict:
    src, dst, w = graph.edges()
    return {(int(a), int(b)): float(c) for a, b, c in zip(src, dst, w, strict=True)}


@pytest.mark.parametrize("mutual", [False, True], ids=["or", "and"])
@pytest.mark.parametrize("name", ["n80-d10-k5-raw", "n150-d50-k10-raw"])
def test_knn_graph_construction(name, mutual):
    x, dist, _, _ = _knn_case(name)
    k = KNN_CASES[name][2]
    adj = _knn_adjacency(dist, k, mutual=mutual)
    i, j = np.nonzero(np.triu(adj, 1))
    want = {(int(a), int(b)): float(dist[a, b]) for a, b in zip(i, j, strict=True)}
    connected = nx.is_connected(_nx_from_adjacency(adj, dist))
    with warnings.catch_warnings():
        if not connected:  # a mutual k-NN graph may be disconnected: not the point here
            warnings.simplefilter("ignore")
        kw = {} if connected else {"connected": "ignore"}
        from_rdm = knn_graph(dist, k=k, mutual=mutual, **kw)
        from_data = knn_graph(x, k=k, mutual=mutual, **kw)
    got = _upper_edges(from_rdm)
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[e] for e in want], list(want.values()), rtol=0, atol=1e-12)
    got = _upper_edges(from_data)  # distances recomputed by brainalign.rsa.rdm
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[e] for e in want], list(want.values()), rtol=1e-6)
    assert from_rdm.n_nodes == len(x)


# ---------------------------------------------------------------------------------------
# analytic values


@pytest.mark.parametrize("n", [3, 4, 5, 8, 12])
def test_complete_graph(n):
    # GRC measure at alpha = 1/2 on K_n (unit weights): m_x = 1/2 on x and 1/(2(n-1)) on each
    # other node. m_x and m_y agree on the n-2 common neighbours; m_x - m_y is
    # +(1/2 - 1/(2(n-1))) on x and the opposite on y, at distance 1, so
    # W1 = 1/2 - 1/(2(n-1)) and κ = 1 - W1 = 1/2 + 1/(2(n-1)) = n / (2(n-1)).
    g = nx.complete_graph(n)
    want = 0.5 * n / (n - 1)
    res = _curvature(g, alpha=0.5, measure="grc", method="exact")
    np.testing.assert_allclose(res.edges.values, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.nodes.values, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(list(_grc_curvature(g)[0].values()), want, atol=1e-9)


@pytest.mark.parametrize("n", [6, 7, 10, 25])
def test_cycle_graph(n):
    # On C_n (n >= 6) m_x - m_y = +1/4 on x-1 and x, -1/4 on y and y+1; the potential
    # f = position along the path x-1, x, y, y+1 is 1-Lipschitz (no shortcut round the cycle
    # when n >= 6), so W1 >= E[f] under m_y minus under m_x = 1, and moving x-1 -> y and
    # x -> y+1 costs 2 * 1/4 * 2 = 1: W1 = 1 = d(x, y), κ = 0.
    g = nx.cycle_graph(n)
    res = _curvature(g, alpha=0.5, measure="grc", method="exact")
    np.testing.assert_allclose(res.edges.values, 0.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.nodes.values, 0.0, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------
# Ricci flow and communities (karate club, unweighted)


@functools.cache
def _grc_flow(iterations: int):
    orc = grc.OllivierRicci(_karate(False), alpha=0.5, method="OTD", proc=1)
    orc.compute_ricci_flow(iterations=iterations)
    cutoff, clustering = orc.ricci_community()
    weights = {
        frozenset((str(u), str(v))): float(d["weight"]) for u, v, d in orc.G.edges(data=True)
    }
    kappa = {
        frozenset((str(u), str(v))): float(d["ricciCurvature"])
        for u, v, d in orc.G.edges(data=True)
    }
    return weights, kappa, float(cutoff), {str(k): v for k, v in clustering.items()}


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


@pytest.mark.parametrize("iterations", [10, 50])
def test_ricci_flow_and_communities_match_grc(iterations):
    # After 50 iterations edge (5, 6) has a flowed weight below GRC's EPSILON = 1e-7, and
    # GRC returns κ = 0 for an edge whose d_G(x, y) < 1e-7 (its "zero distance" rule).
    want_w, want_k, want_cut, want_labels = _grc_flow(iterations)
    g = _karate(False)
    flow = ricci.ricci_flow(g, iterations=iterations, alpha=0.5, **CPU)
    src, dst, w = flow.graph.edges()
    ids = np.asarray(flow.graph.stimulus)
    got_w = {frozenset((ids[a], ids[b])): float(c) for a, b, c in zip(src, dst, w, strict=True)}
    assert got_w.keys() == want_w.keys()
    keys = list(want_w)
    np.testing.assert_allclose(
        [got_w[e] for e in keys], [want_w[e] for e in keys], rtol=1e-6, atol=0
    )
    np.testing.assert_allclose(np.sort(flow.weights.values), np.sort(w), rtol=1e-12)
    _assert_close(_ba_edges(flow.curvature), want_k, ATOL, "curvature after the flow")

    com = ricci.communities(flow)
    labels = com.labels
    nodes = [str(n) for n in g.nodes()]
    got = [int(labels.sel(node=n)) for n in nodes]
    ari = _ari(got, [want_labels[n] for n in nodes])
    assert ari == 1.0, f"ARI vs GRC ricci_community() = {ari}"
    assert float(com.cutoff) == pytest.approx(want_cut, rel=1e-6)


# ---------------------------------------------------------------------------------------
# properties (hypothesis)


@st.composite
def _graphs(draw):
    """Connected weighted graphs: a random spanning tree plus random extra edges."""
    n = draw(st.integers(4, 14))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for v in range(1, n):
        g.add_edge(int(rng.integers(v)), v)
    for u, v in zip(rng.integers(n, size=n), rng.integers(n, size=n), strict=True):
        if u != v:
            g.add_edge(int(u), int(v))
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.1, 3.0))
    return g


MEASURES = ["grc", "uniform", "gaussian"]


def _quiet(g, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ollivier_ricci(g, method="exact", **CPU, **kw)


@settings(max_examples=15, deadline=None)
@given(_graphs(), st.sampled_from(MEASURES), st.sampled_from([0.0, 0.25, 0.5, 0.9]))
def test_property_kappa_at_most_one(g, measure, alpha):
    res = _quiet(g, alpha=alpha, measure=measure)
    assert np.all(np.isfinite(res.edges.values))
    assert res.edges.values.max() <= 1 + 1e-12
    assert res.nodes.values.max() <= 1 + 1e-12


@settings(max_examples=15, deadline=None)
@given(_graphs(), st.sampled_from(MEASURES), st.randoms(use_true_random=False))
def test_property_relabelling_permutes_results(g, measure, rnd):
    nodes = list(g.nodes())
    shuffled = nodes[:]
    rnd.shuffle(shuffled)
    names = {u: f"n{shuffled.index(u)}" for u in nodes}  # new names, new insertion order
    h = nx.Graph()
    h.add_nodes_from(names[u] for u in shuffled)
    edges = list(g.edges(data=True))
    rnd.shuffle(edges)  # new edge insertion order, endpoints swapped
    h.add_weighted_edges_from((names[v], names[u], d["weight"]) for u, v, d in edges)
    a, b = _quiet(g, measure=measure), _quiet(h, measure=measure)
    back = {frozenset(names[int(s)] for s in e): k for e, k in _ba_edges(a).items()}
    _assert_close(_ba_edges(b), back, 1e-10, "relabelled edge curvature")
    back_n = {names[int(s)]: k for s, k in _ba_nodes(a).items()}
    _assert_close(_ba_nodes(b), back_n, 1e-10, "relabelled node curvature")


@settings(max_examples=15, deadline=None)
@given(_graphs(), st.sampled_from(MEASURES))
def test_property_symmetric_in_x_and_y(g, measure):
    # the same graph with the node insertion order reversed: every edge's endpoints swap
    # roles (source < target by index), so kappa(x, y) is compared with kappa(y, x)
    h = nx.Graph()
    h.add_nodes_from(list(g.nodes())[::-1])
    h.add_weighted_edges_from((v, u, d["weight"]) for u, v, d in g.edges(data=True))
    a, b = _quiet(g, measure=measure), _quiet(h, measure=measure)
    assert a.edges["source"].values.tolist() != b.edges["source"].values.tolist()
    _assert_close(_ba_edges(b), _ba_edges(a), 1e-10, "swapped edge curvature")


# ---------------------------------------------------------------------------------------
# the entropic solver against the exact one


@pytest.fixture
def _one_torch_thread():
    # tiny batched problems: on a busy 2-core machine two torch threads spin against each
    # other (10x slower); one thread keeps this test at about a second
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("_one_torch_thread")
@pytest.mark.parametrize("graph", ["karate", "n80-d10-k5-raw"])
def test_sinkhorn_close_to_exact(graph):
    if graph.startswith("karate"):
        g = _karate(weighted=graph.endswith("weighted"))
    else:
        g = _knn_case(graph)[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallback warnings on the raw graph
        exact = ollivier_ricci(g, method="exact", **CPU)
        # max_iter: the GPU default, so that Sinkhorn (not the exact hand-off) does the work
        approx = ollivier_ricci(g, method="sinkhorn", max_iter=1000, **CPU)
        cpu_default = ollivier_ricci(g, method="sinkhorn", **CPU)
    err = _assert_close(_ba_edges(approx), _ba_edges(exact), 1e-3, "sinkhorn vs exact")
    # The reported bound is a duality gap: it must cover the true error and meet tol.
    bound = approx.attrs["max_error_bound"]
    assert err <= bound + 1e-12 <= 1e-3 + 1e-12
    assert 0 <= approx.attrs["n_exact"] < len(approx.edges) / 2
    # On the CPU the default hands open problems to the exact solver after one check block
    # (10 sweeps): more edges are solved exactly, the guarantee is the same.
    err_cpu = _assert_close(_ba_edges(cpu_default), _ba_edges(exact), 1e-3, "CPU default")
    assert err_cpu <= cpu_default.attrs["max_error_bound"] + 1e-12 <= 1e-3 + 1e-12
    assert cpu_default.attrs["n_exact"] >= approx.attrs["n_exact"]


@pytest.mark.usefixtures("_one_torch_thread")
def test_sinkhorn_chunks_by_width_give_the_same_curvature(monkeypatch):
    # Problems are padded to the widest of their chunk; splitting chunks by width (here
    # into many small ones) changes only the padding, which carries no mass.
    from brainalign.ricci import _curvature as C

    g = _knn_case("n80-d10-k5-raw")[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = ollivier_ricci(g, method="sinkhorn", tol=2e-2, **CPU)
        monkeypatch.setattr(C, "_CPU_MIN_BUCKET", 8)
        monkeypatch.setattr(C, "_WIDTH_RATIO", 1.05)
        many = ollivier_ricci(g, method="sinkhorn", tol=2e-2, **CPU)
    diff = np.abs(many.edges.values - one.edges.values).max()
    assert diff <= one.attrs["max_error_bound"] + many.attrs["max_error_bound"] + 1e-12


@pytest.mark.usefixtures("_one_torch_thread")
def test_sinkhorn_chunks_stay_within_the_memory_budget(monkeypatch):
    # A hub among narrow problems: with a GPU's large minimum chunk every problem would be
    # padded to the hub's width. Chunks must stay within the budget at their padded width.
    from brainalign.ricci import _curvature as C
    from brainalign.ricci import _device_paths as D
    from brainalign.ricci import _kernels as KK

    g = nx.random_regular_graph(4, 120, seed=1)
    g.add_edges_from((120, v) for v in range(0, 120, 2))  # a hub of degree 60
    budget = 2**20
    monkeypatch.setattr(C, "_CPU_MIN_BUCKET", 8192)  # the CUDA value
    monkeypatch.setattr(D, "_CPU_BUDGET", budget)
    chunks = []
    real = KK.transport_problems

    def spy(*args):
        chunks.append((len(args[5]), args[-2], args[-1]))  # (problems, padded widths)
        return real(*args)

    monkeypatch.setattr(KK, "transport_problems", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        approx = ollivier_ricci(g, method="sinkhorn", tol=2e-2, **CPU)
        exact = ollivier_ricci(g, method="exact", **CPU)
    assert sum(n for n, _, _ in chunks) == g.number_of_edges()
    # the hub's 60 edges are long and thin: 61 (the hub's measure) by 6 (its neighbours,
    # of degree 4 + 1)
    assert len(chunks) >= 2 and max(wa for _, wa, _ in chunks) == 61
    assert all(wb == 6 for _, wa, wb in chunks if wa == 61)
    for n, wa, wb in chunks:
        assert n == 1 or n * 8 * (6 * wa * wb + 2 * (wa + wb)) <= budget
    err = np.abs(approx.edges.values - exact.edges.values).max()
    assert err <= approx.attrs["max_error_bound"] + 1e-12


@pytest.mark.usefixtures("_one_torch_thread")
def test_sinkhorn_flow_close_to_exact_flow():
    g = _karate(weighted=True)
    exact = ricci_flow(g, iterations=3, **CPU)
    approx = ricci_flow(g, iterations=3, method="sinkhorn", **CPU)
    # every curvature is within tol = 1e-3 of the exact one on the same weights; three
    # steps of size 1 move each weight by at most about 3e-3 relative
    np.testing.assert_allclose(approx.weights.values, exact.weights.values, rtol=5e-3)
    np.testing.assert_allclose(
        approx.curvature.edges.values, exact.curvature.edges.values, atol=5e-3
    )


def test_sinkhorn_tolerance_is_honoured():
    g = _knn_case("n80-d10-k5-raw")[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = ollivier_ricci(g, method="exact", **CPU).edges.values
        loose = ollivier_ricci(g, method="sinkhorn", tol=2e-2, **CPU)
    err = np.abs(loose.edges.values - exact).max()
    assert err <= loose.attrs["max_error_bound"] + 1e-12 <= 2e-2 + 1e-12
    assert loose.attrs["n_exact"] == 0  # a loose tolerance needs no exact polishing


# ---------------------------------------------------------------------------------------
# scale: the scale-aware measures are invariant to a global rescaling, "grc" is not


def _scaled(g: nx.Graph, c: float) -> nx.Graph:
    h = nx.Graph()
    h.add_nodes_from(g.nodes())
    h.add_weighted_edges_from((u, v, c * d["weight"]) for u, v, d in g.edges(data=True))
    return h


@pytest.mark.parametrize(
    ("measure", "bandwidth"), [("uniform", None), ("gaussian", None), ("gaussian", "local")]
)
def test_scale_invariant_measures(measure, bandwidth):
    kw = {"measure": measure, "method": "exact", "bandwidth": bandwidth}
    g = _karate(weighted=True)
    a = _curvature(g, **kw)
    b = _curvature(_scaled(g, 7.3), **kw)
    _assert_close(_ba_edges(b), _ba_edges(a), 1e-9, measure)
    # the same from an RDM: k-NN graph of D and of 7.3 D
    _, dist, _, _ = _knn_case("n100-d30-k8-rescaled")
    a = _curvature(knn_graph(dist, k=8), **kw)
    b = _curvature(knn_graph(7.3 * dist, k=8), **kw)
    _assert_close(_ba_edges(b), _ba_edges(a), 1e-9, measure)


def test_grc_measure_is_not_scale_invariant_and_warns():
    g = _karate(weighted=True)
    big = _scaled(g, 7.3)
    n_fb = _n_fallback(big)
    assert _n_fallback(g) == 0 and n_fb > 0
    a = _curvature(g, measure="grc", method="exact")
    b = _curvature(big, expect_fallback=n_fb, measure="grc", method="exact")
    assert int(b.attrs["n_fallback"]) == n_fb
    diff = max(abs(_ba_edges(a)[e] - k) for e, k in _ba_edges(b).items())
    assert diff > 1e-2
    # and GRC agrees with the rescaled values (its silent fallback included)
    _assert_close(_ba_edges(b), _grc_curvature(big)[0], ATOL, "rescaled karate vs GRC")


def test_as_graph_roundtrip_keeps_weights_and_ids():
    g = _karate(weighted=True)
    graph = as_graph(g)
    assert list(graph.stimulus) == [str(n) for n in g.nodes()]
    got = _upper_edges(graph)
    want = {}
    index = {n: i for i, n in enumerate(g.nodes())}
    for u, v, d in g.edges(data=True):
        want[tuple(sorted((index[u], index[v])))] = d["weight"]
    assert got == want


# ---------------------------------------------------------------------------------------
# shortest paths on the device: dense batched Floyd–Warshall equals the bounded Dijkstra


@pytest.mark.parametrize("weighted", [False, True])
def test_device_paths_equal_cpu_paths(weighted):
    g = _karate(weighted=weighted)
    cpu = ollivier_ricci(g, paths="cpu", **CPU)
    dev = ollivier_ricci(g, paths="device", **CPU)
    _assert_close(_ba_edges(dev), _ba_edges(cpu), 1e-12, "device vs CPU shortest paths")
    np.testing.assert_allclose(dev.edges["distance"].values, cpu.edges["distance"].values)


def test_device_paths_batch_of_graphs_of_different_sizes():
    rng = np.random.default_rng(5)
    graphs = {
        f"g{n}": knn_graph(rng.normal(size=(n, 6)), k=4, connected="ignore")
        for n in (30, 30, 41, 57)
    }
    cpu = ollivier_ricci(graphs, paths="cpu", **CPU)
    dev = ollivier_ricci(graphs, paths="device", **CPU)
    for key in graphs:
        np.testing.assert_allclose(dev[key].edges.values, cpu[key].edges.values, atol=1e-12)


def test_unknown_paths_value():
    with pytest.raises(ValueError, match=r"'paths'.*got 'gpu'"):
        ollivier_ricci(_karate(weighted=False), paths="gpu", **CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sinkhorn_with_device_paths():
    g = _knn_case("n80-d10-k5-raw")[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallback warnings on the raw graph
        exact = ollivier_ricci(g, **CPU)
        approx = ollivier_ricci(g, method="sinkhorn", device="cuda")  # paths: the device
        dev_exact = ollivier_ricci(g, paths="device", device="cuda")
    err = _assert_close(_ba_edges(approx), _ba_edges(exact), 1e-3, "CUDA sinkhorn vs exact")
    assert err <= approx.attrs["max_error_bound"] + 1e-12 <= 1e-3 + 1e-12
    _assert_close(_ba_edges(dev_exact), _ba_edges(exact), 1e-12, "CUDA paths vs CPU paths")


# ---------------------------------------------------------------------------------------
# surgery: GRC's hook, edges cut during the flow, graphs of a batch kept apart

_CUT = 2.0


def _grc_cut(G, weight="weight"):
    G.remove_edges_from([(u, v) for u, v, d in G.edges(data=True) if d[weight] > _CUT])
    return G


def _ba_cut(w):
    return np.where(w > _CUT, np.inf, w)


def test_flow_with_surgery_matches_grc():
    orc = grc.OllivierRicci(_karate(weighted=False), alpha=0.5, method="OTD", proc=1)
    orc.compute_ricci_flow(iterations=12, surgery=(_grc_cut, 5))
    want = {frozenset((str(a), str(b))): d["weight"] for a, b, d in orc.G.edges(data=True)}
    flow = ricci_flow(_karate(weighted=False), iterations=12, surgery=(_ba_cut, 5))
    s = flow.weights
    got = {
        frozenset((str(a), str(b))): float(v)
        for a, b, v in zip(s["source"].values, s["target"].values, s.values, strict=True)
    }
    assert got.keys() == want.keys()  # the same edges were cut
    assert len(want) < 78
    keys = list(want)
    np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys], rtol=1e-6)


def test_surgery_in_a_batch_keeps_graphs_apart():
    alone = [
        ricci_flow(g, iterations=12, surgery=(_ba_cut, 5))
        for g in (_karate(weighted=False), nx.barbell_graph(5, 1))
    ]
    both = ricci_flow(
        [_karate(weighted=False), nx.barbell_graph(5, 1)], iterations=12, surgery=(_ba_cut, 5)
    )
    for one, batched in zip(alone, both, strict=True):
        assert batched.graph.n_edges == one.graph.n_edges
        np.testing.assert_allclose(batched.weights.values, one.weights.values, rtol=1e-12)
        np.testing.assert_allclose(
            batched.curvature.edges.values, one.curvature.edges.values, atol=1e-12
        )
