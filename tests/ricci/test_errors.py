"""Bad input to graph construction, curvature, flow and communities: clear errors, named."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import brainalign as ba
from brainalign import rsa
from brainalign.data._schema import SchemaError
from brainalign.ricci import communities, epsilon_graph, knn_graph, ollivier_ricci, ricci_flow


@pytest.fixture(scope="module")
def rdm():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(12)]
    return rsa.rdm(ba.responses(rng.normal(size=(12, 5)), ids, feature_dim="unit"), "euclidean")


def _karate():
    g = nx.karate_club_graph()
    for _, _, data in g.edges(data=True):
        del data["weight"]
    return g


def _edited(rdm, values):
    return rdm.copy(data=np.asarray(values, dtype=float))


def test_k_out_of_range(rdm):
    with pytest.raises(ValueError, match=r"k must be < the number of stimuli \(12\), got k=12"):
        knn_graph(rdm, k=12)
    with pytest.raises(ValueError, match=r"k must be in the range \[1, inf\), got 0"):
        knn_graph(rdm, k=0)


def test_negative_dissimilarities(rdm):
    v = rdm.values.copy()
    v[0, 1] = v[1, 0] = -0.5
    with pytest.raises(ValueError, match=r"2 negative dissimilarit.*\(-0\.5, -0\.5\)"):
        knn_graph(_edited(rdm, v), k=3)


def test_nan_only_rdm(rdm):
    v = np.full(rdm.shape, np.nan)
    np.fill_diagonal(v, 0.0)
    with pytest.raises(ValueError, match="no finite dissimilarity between distinct stimuli"):
        knn_graph(_edited(rdm, v), k=3)


def test_disconnected_graph_raises_with_components():
    rng = np.random.default_rng(1)
    ids = [f"t{i}" for i in range(6)]
    base = rsa.rdm(ba.responses(rng.normal(size=(6, 3)), ids, feature_dim="unit"))
    two = np.full((6, 6), 10.0)
    two[:3, :3] = two[3:, 3:] = 1.0
    np.fill_diagonal(two, 0.0)
    with pytest.raises(
        ValueError,
        match=r"disconnected: 2 components of sizes 3, 3; nodes outside the largest: "
        r"'t3', 't4', 't5'.*connected='warn'",
    ):
        knn_graph(_edited(base, two), k=2)


@pytest.mark.parametrize("alpha", [-0.1, 1, 1.5])
def test_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match=rf"alpha must be in the range \[0, 1\), got {alpha}"):
        ollivier_ricci(_karate(), alpha=alpha)


def test_unknown_measure_suggests_the_closest():
    with pytest.raises(ValueError, match=r"'measure'.*got 'gausian'\. Did you mean 'gaussian'"):
        ollivier_ricci(_karate(), measure="gausian")


def test_rdm_is_not_a_graph(rdm):
    with pytest.raises(TypeError, match=r"graph is an RDM, not a graph; build one with knn_graph"):
        ollivier_ricci(rdm)


def test_bad_edge_weights():
    g = _karate()
    g.add_edge(0, 1, weight=-1.0)
    with pytest.raises(ValueError, match=r"1 edge weight\(s\) <= 0 \(-1\.0\)"):
        ollivier_ricci(g)
    g.add_edge(0, 1, weight=float("nan"))
    with pytest.raises(ValueError, match=r"1 NaN or infinite edge weight\(s\)"):
        ollivier_ricci(g)


def test_parameter_ranges(rdm):
    with pytest.raises(ValueError, match=r"step must be in the range \(0, inf\), got 0"):
        ricci_flow(_karate(), step=0)
    with pytest.raises(ValueError, match=r"exactly one of eps= and quantile=; got eps=1\.0"):
        epsilon_graph(rdm, eps=1.0, quantile=0.2)
    with pytest.raises(ValueError, match=r"bandwidth= applies to measure='gaussian' only"):
        ollivier_ricci(_karate(), bandwidth=1.0)
    with pytest.raises(ValueError, match=r"tol must be in the range \(0, inf\), got 0"):
        ollivier_ricci(_karate(), method="sinkhorn", tol=0)
    flow = ricci_flow(_karate(), iterations=1)
    with pytest.raises(ValueError, match=r"cutoff_step must be in the range \(0, inf\), got 0"):
        communities(flow, cutoff_step=0)


def test_wrong_dims(rdm):
    with pytest.raises(SchemaError, match=r"it has dims \('x', 'stimulus_b'\)"):
        knn_graph(rdm.rename(stimulus_a="x"), k=3)


def test_flat_components_do_not_move():
    """A single edge (kappa = 1 at alpha = 0.5) and a triangle keep their weights."""
    g = nx.Graph()
    g.add_edge("a", "b", weight=2.0)
    g.add_edges_from([("c", "d"), ("d", "e"), ("e", "c")], weight=3.0)
    flow = ricci_flow(g, iterations=3)
    w = flow.weights.to_series()
    assert np.all(np.isfinite(w.values))
    np.testing.assert_allclose(np.sort(w.values), [2.0, 3.0, 3.0, 3.0])
    assert bool(flow.trace["converged"].values[0])


def test_communities_of_an_edgeless_graph():
    flow = ricci_flow(nx.empty_graph(3), iterations=2)
    with pytest.raises(ValueError, match=r"flow has no edges \(3 isolated node\(s\)\)"):
        communities(flow)


def test_float64_device_paths_refuse_mps(monkeypatch):
    # MPS has no float64: the Sinkhorn solver and device shortest paths say so up front.
    import torch

    from brainalign.ricci import _curvature as C

    monkeypatch.setattr(C, "resolve_device", lambda device: torch.device("mps"))
    with pytest.raises(ValueError, match=r"method='sinkhorn'.*MPS does not support"):
        ollivier_ricci(_karate(), method="sinkhorn", device="mps")
    with pytest.raises(ValueError, match=r"paths='device'.*float64"):
        ollivier_ricci(_karate(), paths="device", device="mps")


def test_graph_from_a_torch_tensor():
    import torch

    adj = nx.to_numpy_array(_karate())
    want = ollivier_ricci(adj).edges.values
    got = ollivier_ricci(torch.tensor(adj, requires_grad=True)).edges.values
    np.testing.assert_array_equal(got, want)
