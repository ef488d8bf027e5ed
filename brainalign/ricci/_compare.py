"""Brain-versus-model comparison of representational graphs through their curvature.

Two systems (a brain region and a model layer, human judgments and a network, ...) over the
same stimuli are compared by their Ollivier-Ricci curvature (Torbati et al. 2025): the
node-wise curvature correlation across stimuli and the agreement of their Ricci-flow
communities, tested against stimulus-label permutations (a null of brain-model
independence), and the distances between their edge and node curvature distributions,
reported as descriptive statistics with stimulus-bootstrap intervals (no null of
independence exists for them).
"""

from __future__ import annotations

import math
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
from brainalign._logging import warn
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS, STIMULUS
from brainalign.ricci._curvature import (
    MEASURES,
    METHODS,
    curvature_arrays,
    node_curvature,
    ollivier_ricci,
)
from brainalign.ricci._flow import COMMUNITY_METHODS, communities, ricci_flow
from brainalign.ricci._graph import Graph, _from_coo, as_graph, knn_graph

#: The statistics of :func:`compare`: how each is inferred, and the direction of "more alike".
STATISTICS = {
    "edge_wasserstein": ("descriptive", "less"),
    "edge_ks": ("descriptive", "less"),
    "node_wasserstein": ("descriptive", "less"),
    "node_ks": ("descriptive", "less"),
    "node_correlation": ("permutation", "greater"),
    "community_ari": ("permutation", "greater"),
    "community_nmi": ("permutation", "greater"),
}
#: Statistics with a stimulus-permutation p-value (valid when the systems are independent).
TESTED = tuple(s for s, (how, _) in STATISTICS.items() if how == "permutation")
#: Statistics reported with a stimulus-bootstrap interval and no p-value.
DESCRIPTIVE = tuple(s for s, (how, _) in STATISTICS.items() if how == "descriptive")
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
    """Wasserstein-1 distance and KS statistic between samples, row by row.

    Equal to ``scipy.stats.wasserstein_distance(u[r], v[r])`` and ``ks_2samp(u[r], v[r])
    .statistic`` for every row ``r``, all rows at once: both come from the two empirical
    CDFs on the merged sorted sample. A 1-D ``u`` is compared with every row of ``v``. NaN
    entries are dropped (rows may hold different numbers of them: NaN pads samples of
    different sizes).

    Parameters
    ----------
    u : ndarray, shape (m,) or (r, m)
        The first sample(s).
    v : ndarray, shape (r, n)
        The second samples, one per row.

    Returns
    -------
    w1, ks : ndarray, shape (r,)
        The distances (NaN where a sample is empty).
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    r, n = v.shape
    u = np.asarray(u, dtype=np.float64)
    if u.ndim == 1:
        u = np.broadcast_to(u[np.isfinite(u)], (r, int(np.isfinite(u).sum())))
    m = u.shape[1]
    valid_u, valid_v = np.isfinite(u), np.isfinite(v)
    nu, nv = valid_u.sum(axis=1), valid_v.sum(axis=1)
    x = np.concatenate([np.where(valid_u, u, np.inf), np.where(valid_v, v, np.inf)], axis=1)
    is_u = np.concatenate([valid_u, np.zeros((r, n), dtype=bool)], axis=1)
    is_v = np.concatenate([np.zeros((r, m), dtype=bool), valid_v], axis=1)
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fu = np.cumsum(np.take_along_axis(is_u, order, axis=1), axis=1) / nu[:, None]
        fv = np.cumsum(np.take_along_axis(is_v, order, axis=1), axis=1) / nv[:, None]
        delta = np.diff(xs, axis=1)
    gap = np.abs(fu - fv)
    delta[~np.isfinite(delta)] = 0.0  # steps into the dropped (inf) tail
    w1 = (gap[:, :-1] * delta).sum(axis=1)
    # The CDFs are right-continuous: read them at the last entry of each run of ties.
    last = np.ones_like(gap, dtype=bool)
    last[:, :-1] = xs[:, 1:] != xs[:, :-1]
    ks = np.where(last & np.isfinite(xs), gap, 0.0).max(axis=1, initial=0.0)
    empty = (nu == 0) | (nv == 0)
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
# the stimulus bootstrap (intervals of the distribution statistics)


def _bootstrap_draws(n: int, n_draws: int, seed: int) -> np.ndarray:
    """``n_draws`` stimulus resamples: ``n`` positions drawn with replacement, sorted."""
    rng = np.random.default_rng([int(seed), 2])
    return np.sort(rng.integers(0, n, size=(n_draws, n)), axis=1)


def _knn_batch(dist: np.ndarray, k: int, mutual: bool) -> tuple[np.ndarray, ...]:
    """Edges of the k-NN graphs of a stack of RDMs, as :func:`knn_graph` builds them.

    ``dist`` has shape ``(g, m, m)`` (NaN: a missing pair, never an edge). Returns the
    undirected edges ``(src, dst, w)`` of all ``g`` graphs in one node numbering (graph
    ``i`` holds nodes ``i * m`` to ``(i + 1) * m - 1``), ties at the k-th distance going
    to the lower index, as in :func:`knn_graph`.
    """
    g, m, _ = dist.shape
    dd = np.where(np.isnan(dist), np.inf, dist)
    dd[:, np.arange(m), np.arange(m)] = np.inf
    nbr = np.argsort(dd, axis=2, kind="stable")[:, :, :k]
    gi = np.repeat(np.arange(g), m * k)
    ri = np.tile(np.repeat(np.arange(m), k), g)
    ci = nbr.ravel()
    ok = np.isfinite(dd[gi, ri, ci])
    gi, ri, ci = gi[ok], ri[ok], ci[ok]
    if mutual:
        adj = np.zeros((g, m, m), dtype=bool)
        adj[gi, ri, ci] = True
        upper = np.triu(np.ones((m, m), dtype=bool), 1)
        gi, ri, ci = np.nonzero(adj & adj.transpose(0, 2, 1) & upper)
    else:  # the symmetric union: each pair once, as (low, high)
        lo, hi = np.minimum(ri, ci), np.maximum(ri, ci)
        key = np.unique((gi * m + lo) * m + hi)
        gi, rest = np.divmod(key, m * m)
        ri, ci = np.divmod(rest, m)
    return gi * m + ri, gi * m + ci, dd[gi, ri, ci]


def _median_per_graph(src: np.ndarray, w: np.ndarray, m: int, n_graphs: int) -> np.ndarray:
    """Median edge length of each graph of a stacked union, repeated per node (1: no edge).

    The ``"gaussian"`` measure's default bandwidth, as :func:`ollivier_ricci` takes it per
    graph, for all graphs at once.
    """
    gid = src // m
    counts = np.bincount(gid, minlength=n_graphs)
    med = np.ones(n_graphs)
    if len(w):
        ws = w[np.lexsort((w, gid))]
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        lo = np.minimum(start + np.maximum(counts - 1, 0) // 2, len(ws) - 1)
        hi = np.minimum(start + counts // 2, len(ws) - 1)
        med = np.where(counts > 0, 0.5 * (ws[lo] + ws[hi]), 1.0)
    return np.repeat(med, m)


def _nearest(d: np.ndarray) -> np.ndarray:
    """Each stimulus's nearest-neighbour dissimilarity (``inf`` when it has no rated pair)."""
    off = np.isfinite(d) & ~np.eye(len(d), dtype=bool)
    return np.where(off, d, np.inf).min(axis=1)


def _resampled_rdms(d: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Return the RDMs of resampled stimulus sets ``(n_draws, m, m)``, copies kept apart.

    Entry ``[b, i, j]`` is ``d[draws[b, i], draws[b, j]]``; two copies of one stimulus
    (``draws[b, i] == draws[b, j]``, ``i != j``) are put at that stimulus's nearest-neighbour
    dissimilarity instead of 0 (a zero length cannot be an edge): each copy stands for a new
    stimulus drawn close to it, as in a smoothed bootstrap.
    """
    rows, cols = draws[:, :, None], draws[:, None, :]
    sub = d[rows, cols]
    copy = (rows == cols) & ~np.eye(draws.shape[1], dtype=bool)
    return np.where(copy, _nearest(d)[rows], sub)


def _resampled_curvatures(
    dense: list[np.ndarray], draws: np.ndarray, k: int, mutual: bool, opts: dict
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Edge and node curvature of every system's k-NN graph rebuilt on every resample.

    All graphs (systems x draws) go through one batched curvature computation, their RDMs
    built in chunks of draws that bound the memory. Returns, per system, the edge
    curvatures ``(n_draws, max_edges)`` (NaN-padded) and the node curvatures
    ``(n_draws, m)``.
    """
    n_draws, m = draws.shape
    per_chunk = max(1, _BUDGET // (m * m))
    parts = []
    for s, d in enumerate(dense):  # a handful of systems; vectorised over the draws
        for c0 in range(0, n_draws, per_chunk):
            sub = _resampled_rdms(d, draws[c0 : c0 + per_chunk])
            src, dst, w = _knn_batch(sub, k, mutual)
            off = (s * n_draws + c0) * m
            parts.append((src + off, dst + off, w))
    n_graphs = len(dense) * n_draws
    total = n_graphs * m
    src, dst, w = (np.concatenate([p[i] for p in parts]) for i in range(3))
    union = _from_coo(total, src, dst, w, np.arange(total).astype(str), {})
    s_u, d_u, w_u = union.edges()  # lexicographic: graph by graph
    gaussian = opts["measure"] == "gaussian"
    arrays = curvature_arrays(
        union,
        alpha=opts["alpha"],
        measure=opts["measure"],
        method=opts["method"],
        exp_power=2.0,  # ollivier_ricci's defaults
        base=math.e,
        bandwidth=_median_per_graph(s_u, w_u, m, n_graphs) if gaussian else None,
        epsilon=1e-2,
        max_iter=None,
        device=opts["device"],
        graph_of_node=np.repeat(np.arange(n_graphs), m),
    )
    kappa = arrays["kappa"]
    nodes = node_curvature(total, s_u, d_u, kappa).reshape(len(dense), n_draws, m)
    graph_of_edge = s_u // m
    counts = np.bincount(graph_of_edge, minlength=n_graphs)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    edges = np.full((n_graphs, int(counts.max(initial=0))), np.nan)
    edges[graph_of_edge, np.arange(len(kappa)) - start[graph_of_edge]] = kappa
    return list(edges.reshape(len(dense), n_draws, -1)), list(nodes)


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
) -> tuple[Graph, np.ndarray | None]:
    """Build the system's graph, its nodes in the reference order; warn if disconnected.

    Also returns the system's dense RDM in that order (NaN: an unrated pair), from which
    the bootstrap rebuilds the graph; ``None`` for a prebuilt graph.
    """
    from brainalign.rsa._rdm import rdm

    identity = np.array_equal(order, np.arange(len(order)))
    dense = None
    if isinstance(system, Graph):
        graph = system if identity else system.subgraph(order)
    else:
        if not all(d in system.dims for d in RDM_DIMS):  # responses: their Euclidean RDM
            system = rdm(system, metric="euclidean", device=device)
        if not identity:
            system = system.isel({d: order for d in RDM_DIMS})
        graph = knn_graph(system, k=k, mutual=mutual, connected="ignore", device=device)
        dense = np.asarray(system.transpose(*RDM_DIMS).values, dtype=np.float64)
    n_comp, comp = graph.components()
    if n_comp > 1:
        sizes = np.bincount(comp)
        warn(
            f"the graph of {name} is disconnected: {n_comp} components of sizes "
            f"{_fmt_list(sizes.tolist())}; curvature and Ricci flow run per component "
            "(no node is dropped). A larger k connects it."
        )
    return graph, dense


def _distribution_distances(
    edges_a: np.ndarray, edges_b: np.ndarray, nodes_a: np.ndarray, nodes_b: np.ndarray
) -> dict[str, np.ndarray]:
    """Compute the four descriptive statistics row by row (shapes as in :func:`_w1_ks`)."""
    ew, eks = _w1_ks(edges_a, edges_b)
    nw, nks = _w1_ks(nodes_a, nodes_b)
    return {"edge_wasserstein": ew, "edge_ks": eks, "node_wasserstein": nw, "node_ks": nks}


def _interval(
    observed: float, samples: np.ndarray, ci: float, high: float = np.inf
) -> tuple[float, float]:
    """Interval centred on ``observed`` with the bootstrap's spread (NaN: under 2 values).

    ``observed +- h``, where ``h`` is the larger distance from the bootstrap median to its
    ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles, clipped to the statistic's range
    ``[0, high]``. Only the spread of the resamples is used, not their location: drawing
    stimuli with replacement shifts these statistics (duplicated stimuli change the graphs,
    sparse graphs of incomplete RDMs most), so a percentile interval can miss the observed
    value; it covered the expected value only 42-73 % of the time for some designs.
    """
    samples = samples[np.isfinite(samples)]
    if len(samples) < 2 or not np.isfinite(observed):
        return float("nan"), float("nan")
    lo, med, hi = np.quantile(samples, [(1 - ci) / 2, 0.5, (1 + ci) / 2])
    half = max(med - lo, hi - med)
    return float(max(observed - half, 0.0)), float(min(observed + half, high))


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
    method: Literal["exact", "sinkhorn", "atd"] = "exact",
    flow_iterations: int = 20,
    community_method: Literal["cut", "louvain"] = "cut",
    n_permutations: int = 1000,
    n_bootstrap: int = 100,
    ci: float = 0.95,
    seed: int = 0,
    device: Any = None,
    n_rewire: None = None,
) -> xr.Dataset:
    """Compare two (or two sets of) systems over the same stimuli by their curvature.

    Each system becomes a symmetric k-NN graph over the stimuli (:func:`knn_graph`, edge
    length = dissimilarity), whose Ollivier-Ricci curvature (:func:`ollivier_ricci`) and
    Ricci-flow communities (:func:`ricci_flow`, :func:`communities`) are then compared
    (Torbati et al. 2025). Stimuli are matched by id, never by position: systems that list
    the same ids in different orders give the same result as aligned ones. The systems'
    curvatures come from one batched :func:`ollivier_ricci` call, their flows from one
    :func:`ricci_flow` call, and every bootstrap graph's curvature from one more batched
    computation.

    **Tested statistics**, each with a p-value ``<name>_p`` from a stimulus-permutation
    null, which holds its size when the two systems are independent: shuffling one
    system's stimulus labels gives data distributed as the observed ones under that null.

    - ``node_correlation``: Spearman correlation across stimuli of node curvature (the mean
      curvature of each stimulus's edges; stimuli isolated in either graph are left out).
    - ``community_ari``, ``community_nmi``: adjusted Rand index and normalized mutual
      information (as scikit-learn's) of the two Ricci-flow partitions (``measure`` and
      ``alpha`` as for the curvature; with ``"gaussian"`` the flow runs on weights divided
      by their mean with the bandwidth held at half the mean edge, since a median
      bandwidth re-estimated on the flowed metric collapses and breaks the flow).

    Null: ``n_permutations`` shuffles of ``system_b``'s stimulus labels (the same shuffles
    for every pair of systems); one-sided, ``p = (1 + #{null >= observed}) /
    (1 + n_permutations)``. ``null_mean_<name>`` and ``null_sd_<name>`` summarise it.

    **Descriptive statistics**, with a stimulus-bootstrap confidence interval
    ``<name>_ci_lower``, ``<name>_ci_upper`` and no p-value:

    - ``edge_wasserstein``, ``edge_ks``, ``node_wasserstein``, ``node_ks``: Wasserstein-1
      distance and Kolmogorov-Smirnov statistic between the edge (node) curvature
      distributions of the two graphs (as :func:`scipy.stats.wasserstein_distance` and
      :func:`scipy.stats.ks_2samp`); lower = more alike in shape.

    These compare the *shapes* of two curvature distributions, not which stimulus sits
    where, so no stimulus-label permutation null exists for them (relabelling stimuli
    leaves a distribution of curvatures unchanged), and they say nothing about brain-model
    correspondence: two unrelated clustered systems have alike distributions. A
    degree-preserving rewiring null (the former ``n_rewire``) is no test of
    correspondence either (a rewiring destroys clustering, so any clustered system
    "beats" it; with independent systems it rejected 16-100 % of the time) and was
    removed.

    The interval comes from ``n_bootstrap`` resamples of the stimuli: ``n`` stimuli drawn
    with replacement (the same draws for every system, so pairs stay paired), both k-NN
    graphs rebuilt on the resampled set and their curvature recomputed. A stimulus drawn
    twice enters the graph twice, the two copies at that stimulus's nearest-neighbour
    dissimilarity from each other (in each system's own RDM) and at its dissimilarities
    from the others: a zero length cannot be an edge, and dropping copies would shrink the
    graph, whose curvature depends on its size. Duplicated stimuli still change the graphs
    (sparse graphs of incomplete RDMs most), which shifts the resampled statistics, so
    only their spread is used: the interval is ``observed +- h``, with ``h`` the larger
    distance from the resamples' median to their ``(1 - ci) / 2`` and ``(1 + ci) / 2``
    quantiles, clipped to ``[0, 1]`` for KS and at 0 for Wasserstein. It targets the
    statistic's expected value over stimulus sets of the same size from the same
    population (the value depends on ``n`` and ``k``). Its coverage is approximate: 95 %
    intervals covered that value in 92-99 % of simulated data sets (24 stimuli, related
    and independent systems, ``tests/stats/cases_ricci.py``; 92-100 % at 48 stimuli),
    where a plain percentile interval covered it in as few as 42 %. Read it as the
    statistic's stimulus-sampling uncertainty, not as a test.

    ``modularity_a``, ``modularity_b``, ``n_communities_a``, ``n_communities_b`` describe
    the partitions themselves.

    Parameters
    ----------
    system_a, system_b : xarray.DataArray or Graph or dict
        An RDM (dims ``stimulus_a``, ``stimulus_b``; NaN marks an unrated pair, as in
        incomplete human-judgment RDMs, and is never an edge), responses (dims
        ``stimulus`` x features; their Euclidean RDM is used: pass an RDM for another
        metric), a prebuilt :class:`Graph` (or networkx graph, node names as ids; no
        bootstrap interval: the graph cannot be rebuilt on resampled stimuli), or a dict
        ``{name: system}`` to compare every system of ``system_a`` with every one of
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
    method : {"exact", "sinkhorn", "atd"}
        The curvature's transport solver (:data:`METHODS`, see :func:`ollivier_ricci`), not
        a comparison measure: every statistic above is returned whatever the solver.
        ``"sinkhorn"`` is meant for a GPU ``device``; ``"atd"`` (GraphRicciCurvature's
        average transportation distance) is a fast lower bound of the exact curvature.
    flow_iterations : int
        Ricci flow iterations before the communities are cut.
    community_method : {"cut", "louvain"}
        How communities are read from the flowed graph (see :func:`communities`).
    n_permutations : int
        Stimulus-label permutations; 0 skips that null (p-values NaN).
    n_bootstrap : int
        Stimulus resamples for the intervals of the descriptive statistics; 0 skips them
        (intervals NaN). Each costs the curvature of every system's graph once.
    ci : float
        Confidence level of the intervals, in ``(0, 1)``.
    seed : int
        Seed of the permutations, the bootstrap and Louvain, ``>= 0``.
    device : str or torch.device, optional
        Device for the RDMs of responses and the ``"sinkhorn"`` solver.
    n_rewire : None
        Removed: passing it raises a ``TypeError`` that says what replaced it.

    Returns
    -------
    result : xarray.Dataset
        The statistics, p-values, null summaries and intervals, with dims ``("system_a",
        "system_b")`` (coords: the dict keys) for dict inputs (a dim per dict given) and
        scalars otherwise; ``attrs`` hold every parameter, ``n_stimuli``,
        ``brainalign_version`` and the names of the ``tested_statistics`` and
        ``descriptive_statistics``; each variable's ``attrs`` say how it is inferred
        (``inference``: ``"permutation test"`` or ``"descriptive"``).

    Raises
    ------
    StimulusAlignmentError
        When systems hold different stimuli (the message names the missing and extra ids).
    ValueError
        For an unknown ``measure``, ``method`` or ``community_method``, a negative
        ``n_permutations`` / ``n_bootstrap``, ``ci`` outside ``(0, 1)``,
        ``k >= n_stimuli``, or invalid dissimilarities.
    TypeError
        For inputs without stimulus ids (plain arrays), lists of systems, or ``n_rewire``.

    Warns
    -----
    UserWarning
        When a graph is disconnected (curvature and flow then run per component), when no
        community cut is found for a system (its ARI / NMI become NaN), or when a prebuilt
        graph leaves its intervals NaN.

    See Also
    --------
    knn_graph, ollivier_ricci, ricci_flow, communities, rewire
    brainalign.rsa.compare : Compares RDMs themselves (one number per pair of RDMs, its
        ``method`` the comparison measure, from ``brainalign.rsa.METHODS``).
    brainalign.align.compare : Alignment measures (CKA, CCA, ...) between responses.

    Notes
    -----
    ``brainalign.ricci.compare`` and ``brainalign.rsa.compare`` both compare two systems over
    the same stimuli, matched by id, and are otherwise different: ``rsa.compare`` correlates
    (or otherwise compares) the dissimilarities of two RDMs, pair by pair, and its
    ``method=`` picks that measure from ``rsa.METHODS``; ``ricci.compare`` compares the
    curvature of the two systems' k-NN graphs (node curvature, Ricci-flow communities and
    curvature distributions: a Dataset of statistics), and its ``method=`` picks the
    curvature solver from ``ricci.METHODS``. Only the k nearest dissimilarities of each
    stimulus enter the graphs here; ``rsa.compare`` uses every pair.

    References
    ----------
    Torbati, Gaebler, Hofmann & Scherf (2025), arXiv:2501.00919.

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
    >>> res = compare(brain, model, k=6, n_permutations=99, n_bootstrap=20)
    >>> bool(res.node_correlation > 0.3), float(res.node_correlation_p) < 0.05
    (True, True)
    >>> lo, hi = float(res.edge_wasserstein_ci_lower), float(res.edge_wasserstein_ci_upper)
    >>> bool(0 <= lo <= hi)
    True
    >>> grid = compare({"V1": brain}, {"L1": model, "L2": brain}, k=6, n_permutations=0,
    ...                n_bootstrap=0)
    >>> sorted(grid.sizes.items())
    [('system_a', 1), ('system_b', 2)]
    """
    if n_rewire is not None:
        raise TypeError(
            f"compare() no longer takes n_rewire (got n_rewire={n_rewire!r}): a "
            "degree-preserving rewiring null does not test brain-model correspondence "
            "(rewiring destroys clustering, so any clustered system beats it, related or "
            "not). The distribution statistics (edge/node Wasserstein and KS) are now "
            "descriptive, with stimulus-bootstrap intervals: pass n_bootstrap= (and ci=) "
            "instead. To compare one graph with random graphs of the same degrees, use "
            "brainalign.ricci.rewire()."
        )
    check_number("k", k, low=1, integer=True)
    check_type("mutual", mutual, (bool, np.bool_), "a bool")
    check_number("alpha", alpha, low=0, high=1, closed="left")
    check_option("measure", measure, MEASURES)
    check_option("method", method, METHODS)
    check_number("flow_iterations", flow_iterations, low=0, integer=True)
    check_option("community_method", community_method, COMMUNITY_METHODS)
    check_number("n_permutations", n_permutations, low=0, integer=True)
    check_number("n_bootstrap", n_bootstrap, low=0, integer=True)
    check_number("ci", ci, low=0, high=1, closed="neither")
    check_number("seed", seed, low=0, integer=True)
    dev = resolve_device(device)

    keys_a, items_a = _unpack(system_a, "system_a")
    keys_b, items_b = _unpack(system_b, "system_b")
    systems = [*items_a, *items_b]
    found = [(name, *_ids(s, name)) for name, s in systems]
    # One canonical node order (sorted ids): ties between neighbours, the permutations and
    # the bootstrap draws then never depend on the order the systems list their stimuli.
    ref_name, ref_ids = found[0][0], np.sort(found[0][1])
    n = len(ref_ids)
    orders = [_check_same(ids, ref_ids, name, ref_name) for name, ids, _ in found]
    if any(not isinstance(s, Graph) for _, _, s in found) and k >= n:
        raise ValueError(f"k must be < the number of stimuli ({n}), got k={k}.")
    built = [
        _graph_of(s, order, k, mutual, dev, name)
        for (name, _, s), order in zip(found, orders, strict=True)
    ]
    graphs = [g for g, _ in built]
    dense = [d for _, d in built]
    names = [name for name, _, _ in found]
    na, nb = len(items_a), len(items_b)
    prebuilt = [name for name, d in zip(names, dense, strict=True) if d is None]
    if n_bootstrap and prebuilt:
        warn(
            f"prebuilt graph(s) {_fmt_list(prebuilt)}: a graph cannot be rebuilt on "
            "resampled stimuli, so the bootstrap intervals of their comparisons are NaN. "
            "Pass RDMs or responses for intervals (or n_bootstrap=0)."
        )

    # One batched curvature call for the systems, one batched flow call.
    opts = {"alpha": alpha, "measure": measure, "method": method, "device": dev}
    curv = ollivier_ricci(graphs, **opts)
    labels, modularity, n_comm = _communities(
        graphs, names, flow_iterations, opts, community_method, seed
    )
    edge_k = [np.asarray(c.edges.values, dtype=np.float64) for c in curv]
    node_k = [np.asarray(c.nodes.values, dtype=np.float64) for c in curv]

    # The stimulus bootstrap: every system with an RDM, rebuilt on the same draws.
    boot = [i for i, d in enumerate(dense) if d is not None]
    boot_edges: dict[int, np.ndarray] = {}
    boot_nodes: dict[int, np.ndarray] = {}
    if n_bootstrap and boot:
        draws = _bootstrap_draws(n, n_bootstrap, seed)
        e_b, n_b = _resampled_curvatures([dense[i] for i in boot], draws, k, mutual, opts)
        boot_edges = dict(zip(boot, e_b, strict=True))
        boot_nodes = dict(zip(boot, n_b, strict=True))

    shape = (na, nb)
    obs = {s: np.full(shape, np.nan) for s in STATISTICS}
    pval, nmean, nsd = ({s: np.full(shape, np.nan) for s in TESTED} for _ in range(3))
    lower, upper = ({s: np.full(shape, np.nan) for s in DESCRIPTIVE} for _ in range(2))

    # Distribution distances: observed, then the bootstrap interval.
    for i in range(na):
        for j in range(nb):
            observed = _distribution_distances(edge_k[i], edge_k[na + j][None],
                                               node_k[i], node_k[na + j][None])  # fmt: skip
            for stat, val in observed.items():
                obs[stat][i, j] = float(val[0])
            if i in boot_edges and na + j in boot_edges:
                resampled = _distribution_distances(
                    boot_edges[i], boot_edges[na + j], boot_nodes[i], boot_nodes[na + j]
                )
                for stat, val in resampled.items():
                    high = 1.0 if stat.endswith("_ks") else np.inf
                    lower[stat][i, j], upper[stat][i, j] = _interval(
                        obs[stat][i, j], val, ci, high
                    )

    # Node-wise statistics, against the stimulus-label permutation null.
    perm_null = _permutation_nulls(
        node_k[:na], node_k[na : na + nb], labels[:na], labels[na:], n, n_permutations, seed
    )
    for (stat, i, j), (observed, null) in perm_null.items():
        obs[stat][i, j] = observed
        null = null[np.isfinite(null)]
        if len(null):
            pval[stat][i, j] = _p_value(observed, null, STATISTICS[stat][1])
            nmean[stat][i, j] = null.mean()
            nsd[stat][i, j] = null.std(ddof=1) if len(null) > 1 else 0.0

    dims = [d for d, keys in (("system_a", keys_a), ("system_b", keys_b)) if keys is not None]
    coords = {d: list(keys) for d, keys in (("system_a", keys_a), ("system_b", keys_b)) if keys}

    def labeled(values: np.ndarray, attrs: dict) -> xr.DataArray:
        squeeze = tuple(ax for ax, keys in enumerate((keys_a, keys_b)) if keys is None)
        return xr.DataArray(np.squeeze(values, axis=squeeze), dims=dims, attrs=attrs)

    data: dict[str, xr.DataArray] = {}
    for stat in TESTED:
        alternative = STATISTICS[stat][1]
        data[stat] = labeled(
            obs[stat],
            {"description": _DESCRIPTIONS[stat], "inference": "permutation test",
             "more_alike": "higher"},
        )  # fmt: skip
        data[f"{stat}_p"] = labeled(
            pval[stat],
            {
                "description": f"p-value of {stat}",
                "null": "permutation",
                "n_null": int(n_permutations),
                "alternative": alternative,
            },
        )
        data[f"null_mean_{stat}"] = labeled(nmean[stat], {"description": f"null mean of {stat}"})
        data[f"null_sd_{stat}"] = labeled(nsd[stat], {"description": f"null SD of {stat}"})
    level = f"{100 * ci:g} %"
    for stat in DESCRIPTIVE:
        data[stat] = labeled(
            obs[stat],
            {
                "description": _DESCRIPTIONS[stat],
                "inference": "descriptive",
                "more_alike": "lower",
                "note": "no p-value: no null of brain-model independence exists for a "
                "distance between curvature distributions; see the stimulus-bootstrap "
                "interval",
            },
        )
        for bound, values in (("lower", lower), ("upper", upper)):
            data[f"{stat}_ci_{bound}"] = labeled(
                values[stat],
                {
                    "description": f"{bound} bound of the {level} stimulus-bootstrap "
                    f"interval of {stat} (centred on the observed value)",
                    "ci": float(ci),
                    "n_bootstrap": int(n_bootstrap),
                },
            )
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
        *(f"{s}_p" for s in TESTED),
        *(f"null_mean_{s}" for s in TESTED),
        *(f"null_sd_{s}" for s in TESTED),
        *(f"{s}_ci_{b}" for s in DESCRIPTIVE for b in ("lower", "upper")),
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
            "n_bootstrap": int(n_bootstrap),
            "ci": float(ci),
            "bootstrap": "stimuli drawn with replacement, the same draws for every system; "
            "graphs rebuilt on each resample, copies of a stimulus at its nearest-neighbour "
            "dissimilarity; interval: observed +- the larger half-width of the resamples' "
            "central ci range around their median",
            "tested_statistics": ", ".join(TESTED),
            "descriptive_statistics": ", ".join(DESCRIPTIVE),
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
