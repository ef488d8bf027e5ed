"""Continuing a Ricci flow (``ricci_flow(previous_result, ...)``): a warm start across calls.

The reference is brainalign's own uninterrupted flow, whose weights and communities are
checked against GraphRicciCurvature in ``test_reference.py``: a flow of ``a`` iterations
continued for ``b`` more must equal, bit for bit, one flow of ``a + b`` iterations (same
floating-point operations in the same order), including the trace, surgery cuts made at
the iteration where the flow stopped, Gaussian bandwidths and batches of graphs.
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest

from brainalign.ricci import RicciFlowResult, communities, knn_graph, ricci_flow


def _karate() -> nx.Graph:
    g = nx.Graph()
    g.add_edges_from(nx.karate_club_graph().edges())  # networkx >= 3 weights dropped
    return g


def _batch() -> list:
    rng = np.random.default_rng(3)
    gs = [knn_graph(rng.normal(size=(40, 5)), k=4) for _ in range(2)]
    # a disconnected graph: two flow units of different sizes
    return [*gs, nx.disjoint_union(nx.barbell_graph(5, 1), nx.cycle_graph(7))]


def _cut(w):
    return np.where(w > 1.3, np.inf, w)


def _assert_same(full: RicciFlowResult, part: RicciFlowResult) -> None:
    np.testing.assert_array_equal(part.weights.values, full.weights.values)
    np.testing.assert_array_equal(part.weights["source"].values, full.weights["source"].values)
    np.testing.assert_array_equal(part.curvature.edges.values, full.curvature.edges.values)
    np.testing.assert_array_equal(part.original.edges.values, full.original.edges.values)
    for name in ("curvature_range", "max_weight_change", "converged", "iteration"):
        np.testing.assert_array_equal(part.trace[name].values, full.trace[name].values)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fall back to the uniform measure")
        yield


@pytest.mark.parametrize("split", [1, 3, 7])
def test_continued_flow_equals_uninterrupted_on_karate(split):
    full = ricci_flow(_karate(), iterations=8)
    part = ricci_flow(ricci_flow(_karate(), iterations=split), iterations=8 - split)
    _assert_same(full, part)
    assert int(part.trace["iteration"].values[-1]) == 8
    assert part.attrs["iterations"] == 8
    lab_full = communities(full).labels.values
    np.testing.assert_array_equal(communities(part).labels.values, lab_full)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"measure": "gaussian"},
        {"measure": "uniform", "alpha": 0.2},
        # every 2 iterations; a split after 3 ends the first call right after a cut
        {"surgery": (_cut, 2)},
    ],
    ids=["grc", "gaussian", "uniform", "surgery"],
)
def test_continued_batch_equals_uninterrupted(kw):
    full = ricci_flow(_batch(), iterations=7, **kw)
    first = ricci_flow(_batch(), iterations=3, **kw)
    part = ricci_flow(ricci_flow(first, iterations=2, **kw), iterations=2, **kw)
    assert len(part) == len(full) == 3
    for f, p in zip(full, part, strict=True):
        _assert_same(f, p)
    if "surgery" in kw:
        assert sum(r.graph.n_edges for r in full) < sum(r.original.graph.n_edges for r in full)


def test_continued_dict_keeps_keys():
    graphs = dict(zip(("a", "b"), _batch()[:2], strict=True))
    full = ricci_flow(graphs, iterations=5)
    part = ricci_flow(ricci_flow(graphs, iterations=2), iterations=3)
    assert list(part) == ["a", "b"]
    for k in graphs:
        _assert_same(full[k], part[k])


def test_continuing_a_converged_flow_changes_nothing():
    done = ricci_flow(nx.barbell_graph(5, 0), iterations=200)
    assert bool(done.trace["converged"].values[-1])
    again = ricci_flow(done, iterations=10)
    np.testing.assert_array_equal(again.weights.values, done.weights.values)
    assert again.trace.sizes["iteration"] == done.trace.sizes["iteration"]


def test_continued_flow_needs_the_same_parameters():
    flow = ricci_flow(_karate(), iterations=2)
    with pytest.raises(ValueError, match=r"got alpha=0\.3 \(the flow used 0\.5\)"):
        ricci_flow(flow, iterations=2, alpha=0.3)
    with pytest.raises(ValueError, match=r"step=0\.5 \(the flow used 1\.0\).*measure='uniform'"):
        ricci_flow(flow, iterations=2, step=0.5, measure="uniform")


def test_continued_flows_must_be_flows_of_one_length():
    a = ricci_flow(_karate(), iterations=2)
    b = ricci_flow(_karate(), iterations=3)
    with pytest.raises(ValueError, match=r"same number of iterations.*\[2, 3\]"):
        ricci_flow([a, b], iterations=1)
    with pytest.raises(ValueError, match=r"either graphs or RicciFlowResults.*not both"):
        ricci_flow([a, _karate()], iterations=1)
    stateless = RicciFlowResult(a.graph, a.weights, a.curvature, a.original, a.trace)
    with pytest.raises(ValueError, match="carries no flow state"):
        ricci_flow(stateless, iterations=1)
