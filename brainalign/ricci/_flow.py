"""Discrete Ricci flow and community detection on representational graphs.

Ricci flow (Ni, Lin, Luo & Gao 2019): ``w <- w - step * kappa * w``, then weights are
rescaled so they sum to the number of edges, and curvature is recomputed on the new metric.
Negatively curved edges (bridges between communities) lengthen, positively curved ones
(inside communities) shrink; cutting the flowed graph at a threshold reveals communities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._imports import soft_import
from brainalign._logging import progress
from brainalign._version import __version__
from brainalign.ricci._curvature import (
    CurvatureResult,
    _validate,
    build_result,
    curvature_arrays,
    gaussian_sigma,
)
from brainalign.ricci._graph import Graph, as_graph, disjoint_union, graphs_of

COMMUNITY_METHODS = ("cut", "louvain")


@dataclass(eq=False)
class RicciFlowResult:
    """The outcome of a Ricci flow on one graph.

    Parameters
    ----------
    graph : Graph
        The graph with the flowed edge weights (the Ricci flow metric).
    weights : xarray.DataArray, dim ``edge``
        The flowed weights, coords as in :attr:`CurvatureResult.edges`.
    curvature : CurvatureResult
        Curvature on the flowed metric (after the last iteration).
    original : CurvatureResult
        Curvature of the input graph.
    trace : xarray.Dataset, dim ``iteration``
        Per iteration (0 is the input graph): ``curvature_range`` (max - min edge
        curvature, the stopping criterion, per component: the largest),
        ``max_weight_change`` (relative), and ``converged`` (all components below
        ``delta``).
    attrs : dict
        Provenance: the flow's parameters (``alpha``, ``measure``, ``method``, ``step``,
        ``delta``, ``iterations``) and the brainalign version.
    _state : dict, optional
        Private: what :func:`ricci_flow` needs to continue the flow (the last curvature,
        the components still flowing, the iteration count and the flow's parameters). Set
        by :func:`ricci_flow` only; a result without it cannot be continued.
    """

    graph: Graph
    weights: xr.DataArray
    curvature: CurvatureResult
    original: CurvatureResult
    trace: xr.Dataset
    attrs: dict = field(default_factory=dict)
    _state: dict | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        n_it = int(self.trace.sizes["iteration"]) - 1
        return (
            f"<RicciFlowResult: {self.graph.n_nodes} nodes, {self.graph.n_edges} edges, "
            f"{n_it} iteration(s), converged={bool(self.trace['converged'].values[-1])}>"
        )


@dataclass(eq=False)
class CommunityResult:
    """Communities of one graph.

    Parameters
    ----------
    labels : xarray.DataArray of int, dim ``node``
        Community of each stimulus (0 is the largest).
    cutoff : float
        The flow-metric threshold used (``method="cut"``; NaN for Louvain).
    modularity : float
        Weighted modularity of the partition on the cut graph (``"cut"``) or on the graph
        with similarity ``1 / w`` (``"louvain"``).
    sweep : xarray.Dataset, dim ``cutoff``, optional
        ``"cut"``: modularity and number of communities at every threshold of the sweep
        (None for Louvain).
    candidates : list of (float, xarray.DataArray)
        Every detected cut and its partition, from large to small cutoff (the last is
        ``labels``): GraphRicciCurvature's ``ricci_community_all_possible_clusterings``.
    """

    labels: xr.DataArray
    cutoff: float
    modularity: float
    sweep: xr.Dataset | None = None
    candidates: list = field(default_factory=list)

    @property
    def n_communities(self) -> int:
        """Number of communities."""
        return int(np.unique(self.labels.values).size)

    def __repr__(self) -> str:
        return (
            f"<CommunityResult: {self.n_communities} communities, modularity "
            f"{self.modularity:.3f}, cutoff {self.cutoff:.4g}>"
        )


def ricci_flow(
    graph: Any,
    *,
    iterations: int = 20,
    step: float = 1.0,
    delta: float = 1e-4,
    alpha: float = 0.5,
    exp_power: float = 2,
    base: float = math.e,
    measure: Literal["grc", "uniform", "gaussian"] = "grc",
    method: Literal["exact", "sinkhorn", "atd"] = "exact",
    bandwidth: Any = None,
    surgery: tuple[Callable[[np.ndarray], np.ndarray], int] | None = None,
    epsilon: float = 1e-2,
    device: Any = None,
) -> Any:
    """Discrete Ricci flow of one or many graphs, every connected component on its own.

    Each iteration sets ``w <- w - step * kappa * w``, rescales the weights of each
    connected component to sum to its number of edges, and recomputes the curvature on
    the new shortest-path metric. A component stops when its edge curvature spans less
    than ``delta`` (``max - min``). On a connected graph this is GraphRicciCurvature's
    ``compute_ricci_flow(iterations, step, delta)``; unlike it, a disconnected graph keeps
    all its nodes (GraphRicciCurvature silently keeps only the largest component).

    Passing the result of an earlier call as ``graph`` continues that flow (a warm start):
    ``ricci_flow(ricci_flow(g, iterations=10), iterations=10)`` gives the same weights,
    curvature and trace as ``ricci_flow(g, iterations=20)`` and costs only the ten new
    iterations, so a flow can be extended after looking at its convergence trace.

    Parameters
    ----------
    graph : Graph or networkx.Graph or array_like or RicciFlowResult or list or dict
        One graph or many (all flowed in one batched computation), or the result(s) of an
        earlier call to continue. A continued flow keeps the earlier call's components,
        stopped components and bandwidths; the parameters that define the flow (``step``,
        ``delta``, ``alpha``, ``exp_power``, ``base``, ``measure``, ``method``,
        ``bandwidth``, ``epsilon``) must be those of the earlier call, and ``surgery``
        the same hook for the result to equal an uninterrupted flow.
    iterations : int
        Maximum number of iterations (of this call, when continuing).
    step : float
        Step size.
    delta : float
        Convergence threshold on the curvature range of a component.
    alpha : float
        Mass kept on the node, in ``[0, 1)`` (as in :func:`ollivier_ricci`).
    exp_power, base : float
        The ``"grc"`` kernel's parameters (as in :func:`ollivier_ricci`).
    measure : {"grc", "uniform", "gaussian"}
        The neighbour measure.
    method : {"exact", "sinkhorn", "atd"}
        How each edge's transport distance is obtained (see :func:`ollivier_ricci`).
    bandwidth : float or {"median", "local"}, optional
        The ``"gaussian"`` length scale.
    surgery : (callable, int), optional
        ``(func, every)``: every ``every`` iterations (not at the first), the weights of
        each graph (in :meth:`Graph.edges` order) become ``func(weights)``; an edge set to
        ``inf`` or NaN is cut. GraphRicciCurvature's surgery hook. Iterations are counted
        from the start of the flow, also across continued calls.
    epsilon : float
        Final entropic regularisation of ``"sinkhorn"``, relative to ``d(x, y)`` (as in
        :func:`ollivier_ricci`).
    device : str or torch.device, optional
        Device of the ``"sinkhorn"`` and ``"atd"`` solvers (default: the configured one).

    Returns
    -------
    result : RicciFlowResult or list or dict of RicciFlowResult
        Flowed weights, curvature before and after, and the convergence trace (of the
        whole flow, when continuing).

    Raises
    ------
    ValueError
        For invalid parameters (see :func:`ollivier_ricci`), a surgery that returns
        weights of the wrong shape, or a continued flow whose parameters differ from the
        earlier call's.

    See Also
    --------
    communities

    Examples
    --------
    >>> import networkx as nx
    >>> from brainalign.ricci import ricci_flow
    >>> flow = ricci_flow(nx.barbell_graph(5, 0), iterations=5)
    >>> w = flow.weights.to_series()  # the bridge between the bells lengthens
    >>> bool(w.max() > 1.0 > w.min())
    True
    >>> longer = ricci_flow(flow, iterations=5)  # five more iterations, from where it stopped
    >>> int(longer.trace.sizes["iteration"]) - 1
    10
    """
    _validate(alpha, measure, method, exp_power, base, bandwidth, epsilon)
    check_number("iterations", iterations, low=0, integer=True)
    check_number("step", step, low=0, closed="neither")
    check_number("delta", delta, low=0)
    if surgery is not None:
        if not (
            isinstance(surgery, tuple)
            and len(surgery) == 2
            and callable(surgery[0])
            and isinstance(surgery[1], int)
            and surgery[1] >= 1
        ):
            raise ValueError(
                f"surgery must be a (callable, every) pair with every >= 1, got {surgery!r}."
            )
    flow_params = {
        "step": float(step),
        "delta": float(delta),
        "alpha": float(alpha),
        "exp_power": float(exp_power),
        "base": float(base),
        "measure": measure,
        "method": method,
        "bandwidth": bandwidth,
        "epsilon": float(epsilon),
    }
    attrs = {k: flow_params[k] for k in ("alpha", "measure", "method", "step", "delta")}
    attrs.update(iterations=int(iterations), brainalign_version=__version__)
    previous, keys = _previous_flows(graph, flow_params)
    if previous:
        graphs = [r.graph for r in previous]
    else:
        graphs, keys = graphs_of(graph)
    union, node_off, edge_off = disjoint_union(graphs)
    n_graphs = len(graphs)
    gon = np.repeat(np.arange(n_graphs), np.diff(node_off))
    opts = dict(
        alpha=alpha,
        measure=measure,
        method=method,
        exp_power=exp_power,
        base=base,
        bandwidth=bandwidth,
        epsilon=epsilon,
        max_iter=None,
        device=device,
        graph_of_node=gon if n_graphs > 1 else None,
    )
    src, _, w0 = union.edges()
    trace_range: list[np.ndarray] = []
    trace_change: list[np.ndarray] = []
    trace_conv: list[np.ndarray] = []
    if previous:
        # Continue: the state the earlier call left (components as flow units, which of
        # them still move, the curvature of the next step, the flow's bandwidths).
        states = [r._state for r in previous]
        n_units_g = np.array([len(st["active"]) for st in states], dtype=np.int64)
        unit_off = np.concatenate([[0], np.cumsum(n_units_g)])
        unit = np.concatenate([st["unit"] + unit_off[i] for i, st in enumerate(states)])
        n_units = int(unit_off[-1])
        g_of_unit = np.repeat(np.arange(n_graphs), n_units_g)
        active = np.concatenate([st["active"] for st in states]).astype(bool)
        kappa = np.concatenate([st["kappa"] for st in states])
        sigma_flow = (
            np.concatenate([st["sigma"] for st in states]) if measure == "gaussian" else None
        )
        it0 = int(states[0]["n_iter"])
        arrays0 = None
        attrs["iterations"] += int(previous[0].attrs.get("iterations", it0))
    else:
        # Flow units: connected components of every graph (normalised and stopped
        # separately).
        _, comp = union.components()
        unit = comp[src]
        n_units = int(comp.max()) + 1 if len(comp) else 0
        g_of_unit = np.zeros(n_units, dtype=np.int64)
        g_of_unit[unit] = gon[src]
        sigma_flow = None
        if measure == "gaussian":
            # The bandwidth is fixed once, from the input graph, in units of each
            # component's mean edge length (the flow renormalises to mean 1):
            # re-estimating it on the flowed metric would chase the flow, and a fixed
            # absolute value would break scale invariance.
            sigma0 = gaussian_sigma(union, bandwidth, gon)
            mean_w = np.bincount(unit, weights=w0, minlength=n_units) / np.maximum(
                np.bincount(unit, minlength=n_units), 1
            )
            node_mean = np.ones(union.n_nodes)
            node_mean[src] = mean_w[unit]
            opts["bandwidth"] = sigma0
            sigma_flow = sigma0 / node_mean
        arrays0 = curvature_arrays(union, **opts)
        kappa = arrays0["kappa"]
        it0 = 0
    if sigma_flow is not None:
        opts["bandwidth"] = sigma_flow
    unit_edges = np.bincount(unit, minlength=n_units).astype(np.float64)
    w = w0.copy()

    def ranges(kappa: np.ndarray) -> np.ndarray:
        kmax = np.full(n_units, -np.inf)
        kmin = np.full(n_units, np.inf)
        np.maximum.at(kmax, unit, kappa)
        np.minimum.at(kmin, unit, kappa)
        return np.where(unit_edges > 0, kmax - kmin, 0.0)

    def per_graph(values: np.ndarray, by: np.ndarray, mask: np.ndarray | None = None):
        out = np.zeros(n_graphs)
        if mask is None:
            np.maximum.at(out, by, values)
        else:
            np.maximum.at(out, by[mask], values[mask])
        return out

    if not previous:
        # A component whose curvature is already flat (a single edge, a complete graph)
        # does not move: its weights are a fixed point of the normalised flow.
        rng0 = ranges(kappa)
        active = rng0 >= delta
        trace_range.append(per_graph(rng0, g_of_unit, unit_edges > 0))
        trace_change.append(np.zeros(n_graphs))
        trace_conv.append(_graph_done(active, g_of_unit, n_graphs))
    current = union
    arrays = arrays0
    stale = False
    for it in progress(range(it0, it0 + iterations), "Ricci flow", total=iterations):
        if not active.any():
            break  # every component was flat from the start
        move = active[unit]
        w_new = np.where(move, w - step * kappa * w, w)
        if not np.all(w_new[move] >= 0):
            raise ValueError(
                f"Ricci flow step {it + 1} made {int((~(w_new[move] >= 0)).sum())} edge "
                f"weight(s) negative (step={step} times a curvature above 1/step); "
                "use a smaller step."
            )
        sums = np.bincount(unit, weights=w_new, minlength=n_units)
        # A component whose every edge collapsed (all curvatures 1) stays where it was.
        active &= sums > 0
        move = active[unit]
        w_new = np.where(move, w_new, w)
        scale = np.ones(n_units)
        scale[active] = unit_edges[active] / sums[active]
        w_new = np.where(move, w_new * scale[unit], w_new)
        # Edges that collapse to length 0 get curvature 0 (as in GraphRicciCurvature).
        with np.errstate(invalid="ignore", divide="ignore"):
            change = np.where(w > 0, np.abs(w_new - w) / w, 0.0)
        w = w_new
        current = union.with_weights(w)
        arrays = curvature_arrays(current, **opts)
        stale = False
        kappa = np.where(move, arrays["kappa"], kappa)
        arrays["kappa"] = kappa
        rng_ = ranges(kappa)
        active &= ~(rng_ < delta)
        trace_range.append(per_graph(rng_, g_of_unit, unit_edges > 0))
        trace_change.append(per_graph(change, gon[src]))
        trace_conv.append(_graph_done(active, g_of_unit, n_graphs))
        if not active.any():
            break  # converged: no surgery after the last step (as GraphRicciCurvature)
        if surgery is not None and it != 0 and it % surgery[1] == 0:
            w = _apply_surgery(surgery[0], w, edge_off)
            keep = np.isfinite(w)
            if not keep.all():
                union, src, w, kappa, unit = _cut(union, w, kappa, unit, keep)
                gon_e = gon[src]
                edge_off = np.concatenate([[0], np.cumsum(np.bincount(gon_e, minlength=n_graphs))])
                unit_edges = np.bincount(unit, minlength=n_units).astype(np.float64)
                stale = True  # the next step uses the kept edges' curvature (as GRC does)
            current = union.with_weights(w)
    n_new = len(trace_range) - (0 if previous else 1)
    if previous and n_new == 0:
        # Nothing moved (already converged, or iterations=0): the earlier results stand.
        return _restructure(list(previous), keys)
    if stale:  # the flow ended right after a cut: curvature of the graph as it is now
        arrays = curvature_arrays(current, **opts)
        arrays["kappa"] = np.where(active[unit], arrays["kappa"], kappa)
    n_iter = it0 + n_new
    results = []
    for i, g in enumerate(graphs):
        esl = slice(int(edge_off[i]), int(edge_off[i + 1]))
        nsl = slice(int(node_off[i]), int(node_off[i + 1]))
        flowed_graph = _piece(current, nsl, esl)
        flowed = build_result(flowed_graph, arrays, esl, nsl, attrs)
        if previous:
            orig = previous[i].original
        else:
            orig = build_result(g, arrays0, slice(*_orig_slice(graphs, i)), nsl, attrs)
        weights = flowed.edges.copy(data=w[esl])
        weights.name = "flow_weight"
        weights.coords["weight"] = ("edge", w[esl])
        trace = xr.Dataset(
            {
                "curvature_range": ("iteration", np.array([t[i] for t in trace_range])),
                "max_weight_change": ("iteration", np.array([t[i] for t in trace_change])),
                "converged": ("iteration", np.array([t[i] for t in trace_conv], dtype=bool)),
            },
            coords={"iteration": np.arange(n_iter + 1 - len(trace_range), n_iter + 1)},
        )
        if previous:
            trace = xr.concat([previous[i].trace, trace], dim="iteration")
        units_i = np.flatnonzero(g_of_unit == i)
        state = {
            "kappa": kappa[esl].copy(),
            "unit": np.searchsorted(units_i, unit[esl]),
            "active": active[units_i].copy(),
            "sigma": None if sigma_flow is None else sigma_flow[nsl].copy(),
            "n_iter": n_iter,
            "params": dict(flow_params),
        }
        results.append(
            RicciFlowResult(flowed_graph, weights, flowed, orig, trace, dict(attrs), state)
        )
    return _restructure(results, keys)


def _restructure(results: list, keys: Any) -> Any:
    if keys is None:
        return results[0]
    if isinstance(keys, int):
        return results
    return dict(zip(keys, results, strict=True))


def _previous_flows(graph: Any, params: dict) -> tuple[list, Any]:
    """Return the earlier flows ``graph`` continues (empty when it holds graphs), and keys."""
    if isinstance(graph, Mapping):
        keys: Any = list(graph)
        items = [graph[k] for k in keys]
    elif isinstance(graph, (list, tuple)):
        keys, items = len(graph), list(graph)
    else:
        keys, items = None, [graph]
    is_flow = [isinstance(x, RicciFlowResult) for x in items]
    if not any(is_flow):
        return [], keys
    if not all(is_flow):
        raise ValueError(
            "graph must hold either graphs or RicciFlowResults (to continue those flows), "
            f"not both: got {sum(is_flow)} RicciFlowResult(s) among {len(items)} item(s)."
        )
    if any(r._state is None for r in items):
        raise ValueError(
            "graph holds a RicciFlowResult that carries no flow state (it was not returned "
            "by ricci_flow), so its flow cannot be continued; pass its .graph to start a new "
            "flow from its weights."
        )
    done = {int(r._state["n_iter"]) for r in items}
    if len(done) > 1:
        raise ValueError(
            "flows continued together must have run the same number of iterations (the "
            f"surgery schedule counts from the start of the flow); got {sorted(done)}."
        )
    for j, r in enumerate(items):
        before = r._state["params"]
        diff = [
            f"{k}={params[k]!r} (the flow used {before[k]!r})"
            for k in params
            if not _same(params[k], before[k])
        ]
        if diff:
            where = "" if keys is None else f" (item {j if isinstance(keys, int) else keys[j]!r})"
            raise ValueError(
                f"a continued flow must use the parameters of the flow it continues{where}; "
                f"got {', '.join(diff)}."
            )
    return items, keys


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _graph_done(active: np.ndarray, g_of_unit: np.ndarray, n_graphs: int) -> np.ndarray:
    """Whether every flow unit of each graph has stopped."""
    any_active = np.zeros(n_graphs, dtype=bool)
    np.logical_or.at(any_active, g_of_unit, active)
    return ~any_active


def _orig_slice(graphs: list[Graph], i: int) -> tuple[int, int]:
    start = sum(g.n_edges for g in graphs[:i])
    return start, start + graphs[i].n_edges


def _piece(union: Graph, nsl: slice, esl: slice) -> Graph:
    """Graph ``i`` of a disjoint union (its nodes ``nsl`` and undirected edges ``esl``)."""
    lo, hi = int(union.indptr[nsl.start]), int(union.indptr[nsl.stop])
    indptr = union.indptr[nsl.start : nsl.stop + 1] - lo
    return Graph(
        indptr,
        union.indices[lo:hi] - nsl.start,
        union.weights[lo:hi].copy(),
        union.stimulus[nsl],
        dict(union.attrs),
    )


def _apply_surgery(func, w: np.ndarray, edge_off: np.ndarray) -> np.ndarray:
    out = np.empty_like(w)
    for i in range(len(edge_off) - 1):  # one call per graph (user code)
        sl = slice(int(edge_off[i]), int(edge_off[i + 1]))
        new = np.asarray(func(w[sl].copy()), dtype=np.float64)
        if new.shape != w[sl].shape:
            raise ValueError(
                f"surgery must return one weight per edge, shape {w[sl].shape}, got {new.shape}."
            )
        out[sl] = np.where(np.isnan(new), np.inf, new)
    return out


def _cut(union: Graph, w, kappa, unit, keep):
    """Drop the edges surgery cut (weights inf) from the union."""
    from brainalign.ricci._graph import _from_coo

    src, dst, _ = union.edges()
    g = _from_coo(union.n_nodes, src[keep], dst[keep], w[keep], union.stimulus, union.attrs)
    return g, src[keep], w[keep], kappa[keep], unit[keep]


def _modularity_sweep(
    n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, cutoffs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Modularity and component count of the graph keeping edges with ``w <= c``, per c.

    Every kept edge lies inside a component, so the modularity of the component partition
    is ``1 - sum_c (W_c / W)^2`` with ``W_c`` the weight inside component ``c``: one
    union-find pass over the edges sorted by weight serves every cutoff.
    """
    order = np.argsort(w, kind="stable")
    ws = w[order]
    pos = np.searchsorted(ws, cutoffs, side="right")  # edges kept at each cutoff
    from brainalign.ricci import _kernels as K

    sq, tot, ncomp = K._numba("_sweep")(n, src[order], dst[order], ws, pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(tot > 0, 1.0 - sq / (tot * tot), np.nan)
    return q, ncomp


def _components_at(n: int, src, dst, w, cutoff: float) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = w <= cutoff
    a = coo_matrix((np.ones(int(keep.sum())), (src[keep], dst[keep])), shape=(n, n))
    _, lab = connected_components(a, directed=False)
    return _relabel(lab)


def _relabel(lab: np.ndarray) -> np.ndarray:
    """Labels ordered by community size (0 the largest), ties by first node."""
    uniq, first, inv, counts = np.unique(
        lab, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.lexsort((first, -counts))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inv.ravel()]


def communities(
    flow: Any,
    *,
    method: Literal["cut", "louvain"] = "cut",
    cutoff_step: float = 0.025,
    drop_threshold: float = 0.01,
    resolution: float = 1.0,
    seed: int = 0,
) -> Any:
    """Communities of a Ricci-flowed graph.

    ``method="cut"`` is GraphRicciCurvature's ``ricci_community``: edges longer than a
    cutoff are removed, for cutoffs from the largest flowed weight down to 1 in steps of
    ``cutoff_step``; the modularity of the connected components is recorded at each; the
    cutoffs where the modularity drops by more than ``drop_threshold`` (relative) are the
    candidate cuts, and the smallest is chosen. Here one union-find pass over the sorted
    edges gives every cutoff's modularity at once. ``method="louvain"`` runs Louvain
    (networkx) on the graph with similarities ``1 / w``.

    Parameters
    ----------
    flow : RicciFlowResult or Graph or networkx.Graph or list or dict
        A flow result (its flowed graph is used), a graph whose weights are a flow metric,
        or many of them.
    method : {"cut", "louvain"}
        The community method.
    cutoff_step, drop_threshold : float
        The ``"cut"`` sweep (GraphRicciCurvature's defaults).
    resolution : float
        Louvain resolution.
    seed : int
        Louvain seed.

    Returns
    -------
    result : CommunityResult or list or dict of CommunityResult
        The partition (labels per stimulus), its cutoff and modularity.

    Raises
    ------
    ValueError
        For an unknown ``method``, a non-positive ``cutoff_step``, or a graph with no
        candidate cut (the flowed weights never exceed 1).

    Examples
    --------
    >>> import networkx as nx
    >>> from brainalign.ricci import communities, ricci_flow
    >>> karate = nx.karate_club_graph()
    >>> for _, _, data in karate.edges(data=True):
    ...     del data["weight"]  # the unweighted club, as in GraphRicciCurvature's tutorial
    >>> comm = communities(ricci_flow(karate, iterations=50))
    >>> comm.n_communities, round(comm.modularity, 2)
    (4, 0.44)
    """
    check_option("method", method, COMMUNITY_METHODS)
    check_number("cutoff_step", cutoff_step, low=0, closed="neither")
    check_number("drop_threshold", drop_threshold, low=0)
    if isinstance(flow, dict):
        return {
            k: communities(
                v,
                method=method,
                cutoff_step=cutoff_step,
                drop_threshold=drop_threshold,
                resolution=resolution,
                seed=seed,
            )
            for k, v in flow.items()
        }
    if isinstance(flow, (list, tuple)):
        return [
            communities(
                v,
                method=method,
                cutoff_step=cutoff_step,
                drop_threshold=drop_threshold,
                resolution=resolution,
                seed=seed,
            )
            for v in flow
        ]
    g = flow.graph if isinstance(flow, RicciFlowResult) else as_graph(flow, name="flow")
    src, dst, w = g.edges()
    ids = g.stimulus
    n = g.n_nodes

    def labeled(lab: np.ndarray) -> xr.DataArray:
        return xr.DataArray(lab, dims=("node",), coords={"node": ids}, name="community")

    if method == "louvain":
        nx = soft_import("networkx", "ricci", "Louvain communities")
        h = nx.Graph()
        h.add_nodes_from(range(n))
        h.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), (1.0 / w).tolist(), strict=True))
        parts = nx.community.louvain_communities(
            h, weight="weight", resolution=resolution, seed=seed
        )
        lab = np.empty(n, dtype=np.int64)
        for c, members in enumerate(parts):
            lab[list(members)] = c
        lab = _relabel(lab)
        q = float(
            nx.community.modularity(
                h, [set(np.flatnonzero(lab == c)) for c in np.unique(lab)], weight="weight"
            )
        )
        return CommunityResult(labeled(lab), float("nan"), q)
    if g.n_edges == 0:
        raise ValueError(
            f"flow has no edges ({g.n_nodes} isolated node(s)): there is nothing to cut into "
            "communities with method='cut'; every node is its own community."
        )
    maxw = float(w.max())
    cutoffs = np.arange(maxw, 1, -cutoff_step)  # GraphRicciCurvature's sweep, verbatim
    if len(cutoffs) < 2:
        raise ValueError(
            f"no candidate cut: the largest flow weight ({maxw:.4g}) is within one "
            f"cutoff_step ({cutoff_step}) of 1. Run more Ricci flow iterations or use "
            "method='louvain'."
        )
    q, ncomp = _modularity_sweep(n, src, dst, w, cutoffs)
    good = []
    mod_last = q[-1]
    for i in range(len(q) - 1, 0, -1):  # the sweep's drop detection (a scalar scan)
        mod_now = q[i]
        if mod_last > mod_now > 1e-4 and abs(mod_last - mod_now) / mod_last > drop_threshold:
            good.append(cutoffs[i + 1])
        mod_last = mod_now
    sweep = xr.Dataset(
        {"modularity": ("cutoff", q), "n_communities": ("cutoff", ncomp)},
        coords={"cutoff": cutoffs},
    )
    if not good:
        raise ValueError(
            "no candidate cut: the modularity never drops by more than drop_threshold="
            f"{drop_threshold} along the sweep. Run more Ricci flow iterations, lower "
            "drop_threshold or use method='louvain'."
        )
    candidates = []
    for cut in good[::-1]:
        candidates.append((float(cut), labeled(_components_at(n, src, dst, w, cut))))
    cut, lab = candidates[-1]
    idx = int(np.argmin(np.abs(cutoffs - cut)))
    return CommunityResult(lab, cut, float(q[idx]), sweep, candidates)
