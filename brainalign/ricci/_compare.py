"""Brain-versus-model comparison of representational graphs through their curvature.

Two systems (a brain region and a model layer, human judgments and a network, ...) over the
same stimuli are compared by their Ollivier-Ricci curvature (Torbati et al. 2025): the
distributions of edge and node curvature, the node-wise curvature correlation across
stimuli, and the agreement of their Ricci-flow communities. Every statistic has a null
distribution: stimulus-label permutations for the node-wise statistics, degree-preserving
rewirings of ``system_b``'s graph for the distribution distances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from brainalign._checks import (
    StimulusAlignmentError,
    _fmt_list,
    check_number,
    check_option,
    check_type,
)
from brainalign._device import resolve_device
from brainalign._logging import progress, warn
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS, STIMULUS
from brainalign.ricci._curvature import MEASURES, METHODS, ollivier_ricci
from brainalign.ricci._flow import COMMUNITY_METHODS, communities, ricci_flow
from brainalign.ricci._graph import Graph, as_graph, knn_graph
from brainalign.ricci._rewire import _rewire_connected

#: The statistics of :func:`compare`, their null and the direction of "more alike".
STATISTICS = {
    "edge_wasserstein": ("rewire", "less"),
    "edge_ks": ("rewire", "less"),
    "node_wasserstein": ("rewire", "less"),
    "node_ks": ("rewire", "less"),
    "node_correlation": ("permutation", "greater"),
    "community_ari": ("permutation", "greater"),
    "community_nmi": ("permutation", "greater"),
}
_DESCRIPTIONS = {
    "edge_wasserstein": "Wasserstein-1 distance between the edge-curvature distributions",
    "edge_ks": "Kolmogorov-Smirnov statistic between the edge-curvature distributions",
    "node_wasserstein": "Wasserstein-1 distance between the node-curvature distributions",
    "node_ks": "Kolmogorov-Smirnov statistic between the node-curvature distributions",
    "node_correlation": "Spearman correlation of node curvature across stimuli",
    "community_ari": "adjusted Rand index of the Ricci-flow communities",
    "community_nmi": "normalized mutual information of the Ricci-flow communities",
    "modularity_a": "modularity of system_a's Ricci-flow communities",
    "modularity_b": "modularity of system_b's Ricci-flow communities",
    "n_communities_a": "number of Ricci-flow communities of system_a",
    "n_communities_b": "number of Ricci-flow communities of system_b",
}
_FLOW_BANDWIDTH = 0.5  # gaussian flows: bandwidth in units of the input's mean edge length
_TIE = 1e-12  # null values within this of the observed one count as "as extreme"
_BUDGET = 2**22  # entries per permutation batch


# ---------------------------------------------------------------------------------------
# statistics (pure numpy, batched over rows / permutations)


def _w1_ks(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wasserstein-1 distance and KS statistic between ``u`` and each row of ``v``.

    Equal to ``scipy.stats.wasserstein_distance(u, v[r])`` and ``ks_2samp(u, v[r])
    .statistic`` for every row ``r``, all rows at once: both come from the two empirical
    CDFs on the merged sorted sample. NaN entries are dropped (rows may hold different
    numbers of them).

    Parameters
    ----------
    u : ndarray, shape (m,)
        The first sample.
    v : ndarray, shape (r, n)
        The second samples, one per row.

    Returns
    -------
    w1, ks : ndarray, shape (r,)
        The distances (NaN where a sample is empty).
    """
    u = np.asarray(u, dtype=np.float64)
    u = u[np.isfinite(u)]
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    r, n = v.shape
    m = len(u)
    valid_v = np.isfinite(v)
    nv = valid_v.sum(axis=1)
    if m == 0:
        return np.full(r, np.nan), np.full(r, np.nan)
    x = np.concatenate([np.broadcast_to(u, (r, m)), np.where(valid_v, v, np.inf)], axis=1)
    is_u = np.zeros(m + n, dtype=bool)
    is_u[:m] = True
    is_v = np.concatenate([np.zeros((r, m), dtype=bool), valid_v], axis=1)
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    fu = np.cumsum(is_u[order], axis=1) / m
    with np.errstate(invalid="ignore", divide="ignore"):
        fv = np.cumsum(np.take_along_axis(is_v, order, axis=1), axis=1) / nv[:, None]
        delta = np.diff(xs, axis=1)
    gap = np.abs(fu - fv)
    delta[~np.isfinite(delta)] = 0.0  # steps into the dropped (inf) tail
    w1 = (gap[:, :-1] * delta).sum(axis=1)
    # The CDFs are right-continuous: read them at the last entry of each run of ties.
    last = np.ones_like(gap, dtype=bool)
    last[:, :-1] = xs[:, 1:] != xs[:, :-1]
    ks = np.where(last & np.isfinite(xs), gap, 0.0).max(axis=1)
    empty = nv == 0
    w1[empty] = ks[empty] = np.nan
    return w1, ks


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as ``scipy.stats.rankdata``."""
    from scipy.stats import rankdata

    return rankdata(x)


def _zscore_ranks(x: np.ndarray) -> np.ndarray | None:
    """Ranks centred and scaled to unit norm (``None`` when constant)."""
    r = _ranks(x)
    r = r - r.mean()
    norm = np.sqrt((r * r).sum())
    return None if norm == 0 else r / norm


def _contingency(la: np.ndarray, lb_perm: np.ndarray, ka: int, kb: int) -> np.ndarray:
    """Contingency tables ``(batch, ka, kb)`` of ``la`` against each row of ``lb_perm``."""
    b = lb_perm.shape[0]
    idx = (la[None, :] * kb + lb_perm) + (np.arange(b) * ka * kb)[:, None]
    return np.bincount(idx.ravel(), minlength=b * ka * kb).reshape(b, ka, kb)


def _entropy(counts: np.ndarray) -> float:
    """Entropy (nats) of a labelling from its cluster sizes, as scikit-learn's."""
    counts = counts[counts > 0].astype(np.float64)
    if len(counts) <= 1:
        return 0.0
    total = counts.sum()
    return float(-np.sum((counts / total) * (np.log(counts) - np.log(total))))


def _ari_nmi(la: np.ndarray, lb_perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the adjusted Rand index and NMI of ``la`` against each row of ``lb_perm``.

    Equal to scikit-learn's ``adjusted_rand_score`` and ``normalized_mutual_info_score``
    (arithmetic mean normalisation), special cases included, from batched contingency
    tables: permuting labels leaves the cluster sizes, hence the entropies and the pair
    counts of each labelling, unchanged.
    """
    la = np.unique(la, return_inverse=True)[1].ravel()
    lb_perm = np.atleast_2d(lb_perm)
    uniq_b, inv = np.unique(lb_perm, return_inverse=True)
    lb_perm = inv.reshape(lb_perm.shape)
    n = la.size
    ka, kb = int(la.max()) + 1, len(uniq_b)
    na = np.bincount(la, minlength=ka).astype(np.int64)
    nb = np.bincount(lb_perm[0], minlength=kb).astype(np.int64)
    c = _contingency(la, lb_perm, ka, kb).astype(np.int64)
    # Pair confusion matrix (ordered pairs), as sklearn.metrics.cluster.pair_confusion_matrix.
    ss = (c * c).sum(axis=(1, 2))
    tp = ss - n
    fp = int((nb * nb).sum()) - ss
    fn = int((na * na).sum()) - ss
    tn = n * n - fp - fn - ss
    tp, fp, fn, tn = (a.astype(np.float64) for a in (tp, fp, fn, tn))
    with np.errstate(invalid="ignore", divide="ignore"):
        ari = 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))
    ari = np.where((fn == 0) & (fp == 0), 1.0, ari)
    # Mutual information from the non-zero cells, as sklearn.metrics.mutual_info_score.
    if ka == kb == 1:
        return ari, np.ones(len(ari))
    if ka == 1 or kb == 1:
        return ari, np.zeros(len(ari))
    cf = c.astype(np.float64)
    outer = na[:, None].astype(np.float64) * nb[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = cf / n
        term = p * (np.log(cf) - np.log(n)) + p * (-np.log(outer) + 2 * np.log(n))
    term = np.where(cf > 0, term, 0.0)
    term = np.where(np.abs(term) < np.finfo(np.float64).eps, 0.0, term)
    mi = np.clip(term.sum(axis=(1, 2)), 0.0, None)
    h = 0.5 * (_entropy(na) + _entropy(nb))
    nmi = np.where(mi == 0, 0.0, mi / h)
    return ari, nmi


def _p_value(observed: float, null: np.ndarray, alternative: str) -> float:
    """``(1 + #null as or more extreme) / (1 + n_null)``; NaN without a null."""
    null = null[np.isfinite(null)]
    if len(null) == 0 or not np.isfinite(observed):
        return float("nan")
    tol = _TIE * max(1.0, abs(observed))
    if alternative == "greater":
        hits = int((null >= observed - tol).sum())
    else:
        hits = int((null <= observed + tol).sum())
    return (1 + hits) / (1 + len(null))


# ---------------------------------------------------------------------------------------
# inputs


def _unpack(x: Any, name: str) -> tuple[list[Any] | None, list[tuple[str, Any]]]:
    """Names and systems: ``(None, [(name, x)])`` for one, ``(keys, [...])`` for a dict."""
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{name} is an empty dict; give at least one system.")
        keys = list(x)
        return keys, [(f"{name}[{k!r}]", x[k]) for k in keys]
    if isinstance(x, (list, tuple)):
        raise TypeError(
            f"{name} must be one system or a dict {{name: system}}, got a {type(x).__name__}; "
            "name the systems with a dict (the names label the result)."
        )
    return None, [(name, x)]


def _ids(system: Any, name: str) -> tuple[np.ndarray, Any]:
    """Return the stimulus ids of a system (as str) and the system, graphs converted."""
    if isinstance(system, xr.DataArray):
        if all(d in system.dims for d in RDM_DIMS):
            ids = system[RDM_DIMS[0]].values
            other = system[RDM_DIMS[1]].values
            if not np.array_equal(np.asarray(ids).astype(str), np.asarray(other).astype(str)):
                raise StimulusAlignmentError(
                    f"{name} is an RDM whose {RDM_DIMS[0]} and {RDM_DIMS[1]} ids differ; "
                    "both axes must list the same stimuli in the same order."
                )
        elif STIMULUS in system.dims:
            ids = system[STIMULUS].values
        else:
            raise TypeError(
                f"{name} must be an RDM (dims {RDM_DIMS}) or responses with a "
                f"{STIMULUS!r} dim; got a DataArray with dims {tuple(system.dims)}. Average "
                "trials first with brainalign.average_trials()."
            )
        ids = np.asarray(ids).astype(str)
    elif isinstance(system, Graph) or type(system).__module__.startswith("networkx"):
        system = as_graph(system, name=name)
        ids = np.asarray(system.stimulus).astype(str)
    else:
        raise TypeError(
            f"{name} must be an RDM or responses DataArray (with stimulus ids), a "
            f"brainalign Graph, or a dict of them; got {type(system).__name__}. Stimuli are "
            "matched by id, never by position: wrap arrays with brainalign.responses(x, ids)."
        )
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{name} repeats stimulus id(s) {_fmt_list(uniq[counts > 1])}.")
    return ids, system


def _check_same(ids: np.ndarray, ref: np.ndarray, name: str, ref_name: str) -> np.ndarray:
    """Positions of ``ref``'s ids in ``ids``; raise naming the missing / extra ids."""
    have = set(ids.tolist())
    want = set(ref.tolist())
    missing = [s for s in ref.tolist() if s not in have]
    extra = [s for s in ids.tolist() if s not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"misses {len(missing)} id(s) of {ref_name}: {_fmt_list(missing)}")
        if extra:
            parts.append(f"has {len(extra)} extra id(s): {_fmt_list(extra)}")
        raise StimulusAlignmentError(
            f"Cannot compare {name} with {ref_name}: they hold different stimuli; {name} "
            f"{'; '.join(parts)}. Select the shared stimuli first (e.g. with "
            "brainalign.align_stimuli(..., join='inner'))."
        )
    pos = {s: i for i, s in enumerate(ids.tolist())}
    return np.array([pos[s] for s in ref.tolist()], dtype=np.int64)


def _graph_of(
    system: Any, order: np.ndarray, k: int, mutual: bool, device: Any, name: str
) -> Graph:
    """Build the system's graph, its nodes in the reference order; warn if disconnected."""
    identity = np.array_equal(order, np.arange(len(order)))
    if isinstance(system, Graph):
        graph = system if identity else system.subgraph(order)
    else:
        if not identity:
            dims = [d for d in (*RDM_DIMS, STIMULUS) if d in system.dims]
            system = system.isel({d: order for d in dims})
        graph = knn_graph(system, k=k, mutual=mutual, connected="ignore", device=device)
    n_comp, comp = graph.components()
    if n_comp > 1:
        sizes = np.bincount(comp)
        warn(
            f"the graph of {name} is disconnected: {n_comp} components of sizes "
            f"{_fmt_list(sizes.tolist())}; curvature and Ricci flow run per component "
            "(no node is dropped). A larger k connects it."
        )
    return graph


# ---------------------------------------------------------------------------------------
# the comparison


def compare(
    system_a: Any,
    system_b: Any,
    *,
    k: int = 10,
    mutual: bool = False,
    alpha: float = 0.5,
    measure: Literal["grc", "uniform", "gaussian"] = "gaussian",
    method: Literal["exact", "sinkhorn"] = "exact",
    flow_iterations: int = 20,
    community_method: Literal["cut", "louvain"] = "cut",
    n_permutations: int = 1000,
    n_rewire: int = 100,
    seed: int = 0,
    device: Any = None,
) -> xr.Dataset:
    """Compare two (or two sets of) systems over the same stimuli by their curvature.

    Each system becomes a symmetric k-NN graph over the stimuli (:func:`knn_graph`, edge
    length = dissimilarity), whose Ollivier-Ricci curvature (:func:`ollivier_ricci`) and
    Ricci-flow communities (:func:`ricci_flow`, :func:`communities`) are then compared
    (Torbati et al. 2025). Stimuli are matched by id, never by position. All curvatures
    (every system and every rewired graph) come from one batched :func:`ollivier_ricci`
    call, all flows from one :func:`ricci_flow` call.

    Statistics, each with a p-value ``<name>_p``, ``(1 + #{null as or more extreme}) /
    (1 + n_null)``:

    - ``edge_wasserstein``, ``edge_ks``, ``node_wasserstein``, ``node_ks``: Wasserstein-1
      distance and Kolmogorov-Smirnov statistic between the edge (node) curvature
      distributions of the two graphs (as :func:`scipy.stats.wasserstein_distance` and
      :func:`scipy.stats.ks_2samp`). Null: ``n_rewire`` degree-preserving rewirings of
      ``system_b``'s graph (:func:`rewire`, edge lengths travel with the edges), their
      curvature recomputed; one-sided, a small distance means more alike:
      ``p = (1 + #{null <= observed}) / (1 + n_rewire)``.
    - ``node_correlation``: Spearman correlation across stimuli of node curvature (the
      mean curvature of each stimulus's edges; stimuli isolated in either graph are left
      out). ``community_ari``, ``community_nmi``: adjusted Rand index and normalized mutual
      information (as scikit-learn's) of the two Ricci-flow partitions (``measure`` and
      ``alpha`` as for the curvature; with ``"gaussian"`` the flow runs on weights divided
      by their mean with the bandwidth held at half the mean edge, since a median
      bandwidth re-estimated on the flowed metric collapses and breaks the flow). Null:
      ``n_permutations`` shuffles of ``system_b``'s stimulus labels (the same shuffles for
      every pair of systems); one-sided, ``p = (1 + #{null >= observed}) /
      (1 + n_permutations)``.
    - ``modularity_a``, ``modularity_b``, ``n_communities_a``, ``n_communities_b``: the
      partitions themselves (no null).

    ``null_mean_<name>`` and ``null_sd_<name>`` summarise each null distribution.

    Parameters
    ----------
    system_a, system_b : xarray.DataArray or Graph or dict
        An RDM (dims ``stimulus_a``, ``stimulus_b``; NaN marks an unrated pair, as in
        incomplete human-judgment RDMs, and is never an edge), responses (dims
        ``stimulus`` x features; their Euclidean RDM is used: pass an RDM for another
        metric), a prebuilt :class:`Graph` (or networkx graph, node names as ids), or a
        dict ``{name: system}`` to compare every system of ``system_a`` with every one of
        ``system_b`` (all layers x all ROIs). All systems must hold the same stimuli.
    k : int
        Neighbours per stimulus of the k-NN graphs, ``1 <= k < n_stimuli`` (prebuilt
        graphs are used as they are).
    mutual : bool
        Mutual k-NN graphs.
    alpha : float
        Mass kept on the node by the curvature's measures, in ``[0, 1)``.
    measure : {"grc", "uniform", "gaussian"}
        The neighbour measure (see :func:`ollivier_ricci`); ``"gaussian"`` and
        ``"uniform"`` are invariant to a rescaling of the RDMs, so systems with
        different units compare fairly.
    method : {"exact", "sinkhorn"}
        The transport solver (see :func:`ollivier_ricci`); ``"sinkhorn"`` is meant for a
        GPU ``device``.
    flow_iterations : int
        Ricci flow iterations before the communities are cut.
    community_method : {"cut", "louvain"}
        How communities are read from the flowed graph (see :func:`communities`).
    n_permutations : int
        Stimulus-label permutations; 0 skips that null (p-values NaN).
    n_rewire : int
        Rewired copies of each ``system_b`` graph; 0 skips that null (p-values NaN).
    seed : int
        Seed of the permutations, the rewirings and Louvain, ``>= 0``.
    device : str or torch.device, optional
        Device for the RDMs of responses and the ``"sinkhorn"`` solver.

    Returns
    -------
    result : xarray.Dataset
        The statistics, their p-values and null summaries, with dims ``("system_a",
        "system_b")`` (coords: the dict keys) for dict inputs (a dim per dict given) and
        scalars otherwise; ``attrs`` hold every parameter, ``n_stimuli`` and
        ``brainalign_version``; each variable's ``attrs`` describe it and its null.

    Raises
    ------
    StimulusAlignmentError
        When systems hold different stimuli (the message names the missing and extra ids).
    ValueError
        For an unknown ``measure``, ``method`` or ``community_method``, a negative
        ``n_permutations`` / ``n_rewire``, ``k >= n_stimuli``, or invalid dissimilarities.
    TypeError
        For inputs without stimulus ids (plain arrays) or lists of systems.

    Warns
    -----
    UserWarning
        When a graph is disconnected (curvature and flow then run per component), when no
        community cut is found for a system (its ARI / NMI become NaN), or when rewirings
        of a connected graph stay disconnected.

    See Also
    --------
    knn_graph, ollivier_ricci, ricci_flow, communities, rewire

    References
    ----------
    Torbati, Gaebler, Hofmann & Scherf (2025), arXiv:2501.00919; Maslov & Sneppen (2002),
    Science 296(5569).

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.ricci import compare
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(rng.normal(size=(4, 8)) * 0.7, 8, axis=0) + rng.normal(size=(32, 8)) * 0.5
    >>> ids = [f"s{i}" for i in range(32)]
    >>> brain = ba.responses(x + rng.normal(size=x.shape) * 0.2, ids)
    >>> y = x + rng.normal(size=x.shape) * 0.2
    >>> model = ba.responses(y[::-1], ids[::-1])  # another stimulus order: matched by id
    >>> res = compare(brain, model, k=6, n_permutations=99, n_rewire=5)
    >>> bool(res.node_correlation > 0.3), float(res.node_correlation_p) < 0.05
    (True, True)
    >>> grid = compare({"V1": brain}, {"L1": model, "L2": brain}, k=6, n_permutations=0,
    ...                n_rewire=0)
    >>> sorted(grid.sizes.items())
    [('system_a', 1), ('system_b', 2)]
    """
    check_number("k", k, low=1, integer=True)
    check_type("mutual", mutual, (bool, np.bool_), "a bool")
    check_number("alpha", alpha, low=0, high=1, closed="left")
    check_option("measure", measure, MEASURES)
    check_option("method", method, METHODS)
    check_number("flow_iterations", flow_iterations, low=0, integer=True)
    check_option("community_method", community_method, COMMUNITY_METHODS)
    check_number("n_permutations", n_permutations, low=0, integer=True)
    check_number("n_rewire", n_rewire, low=0, integer=True)
    check_number("seed", seed, low=0, integer=True)
    dev = resolve_device(device)

    keys_a, items_a = _unpack(system_a, "system_a")
    keys_b, items_b = _unpack(system_b, "system_b")
    systems = [(*it, "a") for it in items_a] + [(*it, "b") for it in items_b]
    found = [(name, *_ids(s, name)) for name, s, _ in systems]
    ref_name, ref_ids, _ = found[0]
    n = len(ref_ids)
    orders = [_check_same(ids, ref_ids, name, ref_name) for name, ids, _ in found]
    if any(not isinstance(s, Graph) for _, _, s in found) and k >= n:
        raise ValueError(f"k must be < the number of stimuli ({n}), got k={k}.")
    graphs = [
        _graph_of(s, order, k, mutual, dev, name)
        for (name, _, s), order in zip(found, orders, strict=True)
    ]
    names = [name for name, _, _ in found]
    na, nb = len(items_a), len(items_b)
    graphs_b = graphs[na:]

    # Null 2: degree-preserving rewirings of every system_b graph.
    rewired: list[Graph] = []
    n_stuck = 0
    connected = [g.n_nodes > 0 and g.components()[0] == 1 for g in graphs_b]
    draws = [(j, c) for j in range(len(graphs_b)) for c in range(n_rewire)]
    for j, c in progress(draws, "Rewiring null"):
        g = graphs_b[j]
        out, _, _, ok = _rewire_connected(g, 10 * g.n_edges, (int(seed), j, c), connected[j])
        rewired.append(out)
        n_stuck += not ok
    if n_stuck:
        warn(
            f"{n_stuck} of {n_rewire * nb} rewirings of system_b's graph(s) stayed "
            "disconnected after 10 tries; they are kept in the null (their curvature is "
            "computed per component). A denser graph (larger k) avoids this."
        )

    # One batched curvature call (systems and rewired copies), one batched flow call.
    opts = {"alpha": alpha, "measure": measure, "method": method, "device": dev}
    curv = ollivier_ricci([*graphs, *rewired], **opts)
    labels, modularity, n_comm = _communities(
        graphs, names, flow_iterations, opts, community_method, seed
    )

    edge_k = [np.asarray(c.edges.values, dtype=np.float64) for c in curv]
    node_k = [np.asarray(c.nodes.values, dtype=np.float64) for c in curv]
    shape = (na, nb)
    obs = {s: np.full(shape, np.nan) for s in STATISTICS}
    pval = {s: np.full(shape, np.nan) for s in STATISTICS}
    nmean = {s: np.full(shape, np.nan) for s in STATISTICS}
    nsd = {s: np.full(shape, np.nan) for s in STATISTICS}

    def record(stat: str, i: int, j: int, observed: float, null: np.ndarray) -> None:
        obs[stat][i, j] = observed
        null = null[np.isfinite(null)]
        if len(null):
            pval[stat][i, j] = _p_value(observed, null, STATISTICS[stat][1])
            nmean[stat][i, j] = null.mean()
            nsd[stat][i, j] = null.std(ddof=1) if len(null) > 1 else 0.0

    # Distribution distances, against the rewiring null (rows: observed, then the copies).
    for j in range(nb):
        rows = [na + j, *range(na + nb + j * n_rewire, na + nb + (j + 1) * n_rewire)]
        ve = _stack([edge_k[r] for r in rows])
        vn = np.stack([node_k[r] for r in rows])
        for i in range(na):
            ew, eks = _w1_ks(edge_k[i], ve)
            nw, nks = _w1_ks(node_k[i], vn)
            for stat, val in (
                ("edge_wasserstein", ew),
                ("edge_ks", eks),
                ("node_wasserstein", nw),
                ("node_ks", nks),
            ):
                record(stat, i, j, float(val[0]), val[1:])

    # Node-wise statistics, against the stimulus-label permutation null.
    perm_null = _permutation_nulls(
        node_k[:na], node_k[na : na + nb], labels[:na], labels[na:], n, n_permutations, seed
    )
    for (stat, i, j), (observed, null) in perm_null.items():
        record(stat, i, j, observed, null)

    dims = [d for d, keys in (("system_a", keys_a), ("system_b", keys_b)) if keys is not None]
    coords = {d: list(keys) for d, keys in (("system_a", keys_a), ("system_b", keys_b)) if keys}

    def labeled(values: np.ndarray, attrs: dict) -> xr.DataArray:
        squeeze = tuple(ax for ax, keys in enumerate((keys_a, keys_b)) if keys is None)
        return xr.DataArray(np.squeeze(values, axis=squeeze), dims=dims, attrs=attrs)

    data: dict[str, xr.DataArray] = {}
    for stat, (null_kind, alternative) in STATISTICS.items():
        n_null = n_rewire if null_kind == "rewire" else n_permutations
        desc = _DESCRIPTIONS[stat]
        data[stat] = labeled(obs[stat], {"description": desc})
        data[f"{stat}_p"] = labeled(
            pval[stat],
            {
                "description": f"p-value of {stat}",
                "null": null_kind,
                "n_null": int(n_null),
                "alternative": alternative,
            },
        )
        data[f"null_mean_{stat}"] = labeled(nmean[stat], {"description": f"null mean of {stat}"})
        data[f"null_sd_{stat}"] = labeled(nsd[stat], {"description": f"null SD of {stat}"})
    per_a = np.broadcast_to(np.asarray(modularity[:na])[:, None], shape)
    per_b = np.broadcast_to(np.asarray(modularity[na:])[None, :], shape)
    data["modularity_a"] = labeled(per_a, {"description": _DESCRIPTIONS["modularity_a"]})
    data["modularity_b"] = labeled(per_b, {"description": _DESCRIPTIONS["modularity_b"]})
    ca = np.broadcast_to(np.asarray(n_comm[:na])[:, None], shape)
    cb = np.broadcast_to(np.asarray(n_comm[na:])[None, :], shape)
    data["n_communities_a"] = labeled(ca, {"description": _DESCRIPTIONS["n_communities_a"]})
    data["n_communities_b"] = labeled(cb, {"description": _DESCRIPTIONS["n_communities_b"]})
    order = [
        *STATISTICS,
        "modularity_a",
        "modularity_b",
        "n_communities_a",
        "n_communities_b",
        *(f"{s}_p" for s in STATISTICS),
        *(f"null_mean_{s}" for s in STATISTICS),
        *(f"null_sd_{s}" for s in STATISTICS),
    ]
    return xr.Dataset(
        {name: data[name] for name in order},
        coords=coords,
        attrs={
            "kind": "ricci_comparison",
            "k": int(k),
            "mutual": int(bool(mutual)),
            "alpha": float(alpha),
            "measure": measure,
            "method": method,
            "flow_iterations": int(flow_iterations),
            "community_method": community_method,
            "flow_bandwidth": (
                f"{_FLOW_BANDWIDTH} x mean edge length" if measure == "gaussian" else "none"
            ),
            "n_permutations": int(n_permutations),
            "n_rewire": int(n_rewire),
            "seed": int(seed),
            "device": str(dev),
            "n_stimuli": int(n),
            "brainalign_version": __version__,
        },
    )


def _communities(
    graphs: list[Graph],
    names: list[str],
    iterations: int,
    opts: dict,
    community_method: str,
    seed: int,
) -> tuple[list[np.ndarray | None], list[float], list[float]]:
    """Ricci-flow communities of every graph: labels, modularity, count (None/NaN if none).

    All graphs flow in one batched call. With the ``"gaussian"`` measure each graph's
    weights are first divided by their mean (the flow's own normalisation, so every flow is
    scale-free) and the bandwidth is held at ``_FLOW_BANDWIDTH`` times that mean edge: a
    median bandwidth re-estimated on the flowed metric shrinks with the contracted
    communities until the kernel of the long edges underflows, a curvature reaches 1 and
    the flow step zeroes a weight. A flow that still fails fails the batch: the graphs are
    then flowed one by one so that only the failing ones lose their communities, with a
    warning.
    """
    if opts["measure"] == "gaussian":
        graphs = [_unit_mean(g) for g in graphs]
        opts = {**opts, "bandwidth": _FLOW_BANDWIDTH}
    try:
        flows: list[Any] = ricci_flow(graphs, iterations=iterations, **opts)
    except ValueError:
        flows = []
        for name, g in zip(names, graphs, strict=True):  # one graph at a time, to isolate it
            try:
                flows.append(ricci_flow(g, iterations=iterations, **opts))
            except ValueError as err:
                warn(f"Ricci flow failed for {name}: {err} Its ARI and NMI are NaN.")
                flows.append(None)
    labels: list[np.ndarray | None] = []
    modularity: list[float] = []
    n_comm: list[float] = []
    for name, flow in zip(names, flows, strict=True):
        comm = None
        if flow is not None:
            try:
                comm = communities(flow, method=community_method, seed=seed)
            except ValueError as err:
                warn(f"no communities for {name}: {err} Its ARI and NMI are NaN.")
        labels.append(None if comm is None else np.asarray(comm.labels.values, dtype=np.int64))
        modularity.append(np.nan if comm is None else float(comm.modularity))
        n_comm.append(np.nan if comm is None else comm.n_communities)
    return labels, modularity, n_comm


def _unit_mean(graph: Graph) -> Graph:
    """Return the graph with its edge lengths divided by their mean."""
    w = graph.edges()[2]
    return graph.with_weights(w / w.mean()) if len(w) else graph


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of possibly different lengths as one array, padded with NaN."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):  # one row per graph
        out[i, : len(r)] = r
    return out


def _permutation_nulls(
    nodes_a: list[np.ndarray],
    nodes_b: list[np.ndarray],
    labels_a: list[np.ndarray | None],
    labels_b: list[np.ndarray | None],
    n: int,
    n_permutations: int,
    seed: int,
) -> dict[tuple[str, int, int], tuple[float, np.ndarray]]:
    """Observed values and permutation nulls of the node-wise statistics, every pair.

    The same ``n_permutations`` shuffles of the stimuli serve every pair. For the node
    curvature correlation, stimuli isolated in either graph (NaN curvature) are left out
    and the others shuffled among themselves (the same random keys, restricted).
    """
    rng = np.random.default_rng([int(seed), 1])
    out: dict[tuple[str, int, int], tuple[float, np.ndarray]] = {}
    pairs = [(i, j) for i in range(len(nodes_a)) for j in range(len(nodes_b))]
    spear: dict[tuple[int, int], Any] = {}
    for i, j in pairs:
        ok = np.isfinite(nodes_a[i]) & np.isfinite(nodes_b[j])
        za = _zscore_ranks(nodes_a[i][ok]) if ok.sum() > 1 else None
        zb = _zscore_ranks(nodes_b[j][ok]) if ok.sum() > 1 else None
        spear[i, j] = (ok, za, zb)
        rho = float(za @ zb) if za is not None and zb is not None else np.nan
        out["node_correlation", i, j] = (rho, [])
        la, lb = labels_a[i], labels_b[j]
        if la is None or lb is None:
            out["community_ari", i, j] = (np.nan, [])
            out["community_nmi", i, j] = (np.nan, [])
        else:
            ari, nmi = _ari_nmi(la, lb[None, :])
            out["community_ari", i, j] = (float(ari[0]), [])
            out["community_nmi", i, j] = (float(nmi[0]), [])
    k_max = max([int(lab.max()) + 1 for lab in [*labels_a, *labels_b] if lab is not None] or [1])
    batch = max(1, _BUDGET // (4 * n + k_max * k_max))
    for start in range(0, n_permutations, batch):  # permutation batches, vectorised within
        keys = rng.random((min(batch, n_permutations - start), n))
        perm = np.argsort(keys, axis=1)
        for i, j in pairs:
            ok, za, zb = spear[i, j]
            if za is not None and zb is not None:
                sub = np.argsort(keys[:, ok], axis=1)
                out["node_correlation", i, j][1].append(zb[sub] @ za)
            la, lb = labels_a[i], labels_b[j]
            if la is not None and lb is not None:
                ari, nmi = _ari_nmi(la, lb[perm])
                out["community_ari", i, j][1].append(ari)
                out["community_nmi", i, j][1].append(nmi)
    return {
        key: (observed, np.concatenate(parts) if parts else np.zeros(0))
        for key, (observed, parts) in out.items()
    }
