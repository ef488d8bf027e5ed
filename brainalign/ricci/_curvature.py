"""Ollivier-Ricci curvature of representational graphs (exact, entropic and ATD solvers).

For an edge ``(x, y)`` with graph distance ``d(x, y)`` (shortest path),
``kappa(x, y) = 1 - W1(m_x, m_y) / d(x, y)`` where ``m_x`` keeps mass ``alpha`` on ``x``
and spreads ``1 - alpha`` over the neighbours of ``x`` (Ollivier 2009; Ni et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._device import resolve_device
from brainalign._logging import warn
from brainalign._version import __version__
from brainalign.ricci import _kernels as K
from brainalign.ricci._atd import atd_edges
from brainalign.ricci._device_paths import check_chunk, memory_budget, sparse_ball_table
from brainalign.ricci._graph import Graph, disjoint_union, graphs_of

MEASURES = ("grc", "uniform", "gaussian")
#: The curvature solvers: how :func:`ollivier_ricci`, :func:`ricci_flow` and
#: :func:`brainalign.ricci.compare` obtain each edge's transport cost ``W1(m_x, m_y)``
#: (their ``method=``, GraphRicciCurvature's name for it): ``"exact"`` (optimal transport,
#: = GraphRicciCurvature ``"OTD"``), ``"sinkhorn"`` (entropic, error-bounded) and ``"atd"``
#: (average transportation distance, = GraphRicciCurvature ``"ATD"``). Not the same idea as
#: ``brainalign.rsa.METHODS`` or ``brainalign.align.METHODS``, which list comparison
#: measures (what ``rsa.compare`` / ``align.compare`` return); ``ricci.compare`` always
#: returns the same statistics, and its ``method=`` only says how their curvature is solved.
METHODS = ("exact", "sinkhorn", "atd")
# GraphRicciCurvature's method names -> brainalign's (a hint in the error message).
_GRC_METHODS = {"OTD": "exact", "ATD": "atd", "Sinkhorn": "sinkhorn", "OTDSinkhornMix": "exact"}
BANDWIDTHS = ("median", "local")
_GRC_EPSILON = 1e-7  # GraphRicciCurvature: neighbour weights summing below it -> uniform
_WIDTH_RATIO = 1.5  # Sinkhorn chunks: widest problem at most this times the narrowest
_CPU_MIN_BUCKET = 64  # ... unless the chunk would be smaller (CPU: throughput-bound)
_CUDA_MIN_BUCKET = 8192  # (a GPU sweep over few problems costs its launch latency)
# Final-stage Sinkhorn sweeps before an open problem goes to the exact solver, by default.
# On a CPU one exact solve (about 12-14 us per edge on 2 cores) costs about as much as a few
# log-domain sweeps of one problem (about 2-10 us at widths 16-34), so sweeping on is never
# cheaper than solving: one check block, then the exact solver. On a GPU sweeps run over
# all problems at once and the exact solver would be the CPU.
_CPU_MAX_ITER = 10
_CUDA_MAX_ITER = 1000
_DEVICE_APSP_MAX = 4096  # dense all-pairs shortest paths on the device up to this many nodes
PATHS = ("auto", "cpu", "device")


@dataclass(eq=False)
class CurvatureResult:
    """Ollivier-Ricci curvature of one graph.

    Parameters
    ----------
    edges : xarray.DataArray, dim ``edge``
        Edge curvature, with coords ``source``/``target`` (stimulus ids),
        ``source_index``/``target_index``, ``weight`` (edge length) and ``distance`` (graph
        distance ``d(x, y)``, the denominator), in :meth:`Graph.edges` order.
    nodes : xarray.DataArray, dim ``node``
        Node curvature: the mean over incident edges (GraphRicciCurvature's definition).
    nodes_weighted : xarray.DataArray, dim ``node``
        Node curvature weighted by the node's measure (the mass ``m_x`` puts on each
        neighbour): curvature as the random walk sees it.
    graph : Graph
        The graph.
    attrs : dict
        Provenance: the curvature's parameters (``alpha``, ``measure``, ``method``,
        ``exp_power``, ``base``; ``bandwidth``, ``epsilon``, ``tol``, ``max_error_bound``
        and ``n_exact`` where they apply), ``n_fallback`` and the brainalign version.
    """

    edges: xr.DataArray
    nodes: xr.DataArray
    nodes_weighted: xr.DataArray
    graph: Graph
    attrs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        k = self.edges.values
        return (
            f"<CurvatureResult: {len(k)} edges, kappa in [{k.min():.3f}, {k.max():.3f}], "
            f"mean {k.mean():.3f}; {self.attrs.get('measure')}, {self.attrs.get('method')}>"
        )

    def to_dataset(self) -> xr.Dataset:
        """Edge and node curvature in one Dataset (for NetCDF).

        Returns
        -------
        ds : xarray.Dataset
            ``edge_curvature`` (dim ``edge``), ``node_curvature`` and
            ``node_curvature_weighted`` (dim ``node``), with the scalar entries of
            ``attrs`` as attributes.
        """
        ds = xr.Dataset(
            {
                "edge_curvature": self.edges,
                "node_curvature": self.nodes,
                "node_curvature_weighted": self.nodes_weighted,
            }
        )
        ds.attrs.update({k: v for k, v in self.attrs.items() if np.isscalar(v)})
        return ds


def node_measures(
    graph: Graph,
    alpha: float,
    measure: str,
    exp_power: float,
    base: float,
    bandwidth: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's probability measure: mass per CSR entry, on the node, and fallbacks.

    Returns
    -------
    mass_nbr : ndarray, shape (nnz,)
        Mass node ``u`` puts on its neighbour (entry ``p`` of row ``u``).
    mass_self : ndarray, shape (n,)
        Mass kept on the node (``alpha``; 1 for isolated nodes).
    fallback : ndarray of bool, shape (n,)
        Nodes whose kernel weights underflowed and fell back to the uniform measure.
    """
    n = graph.n_nodes
    deg = graph.degree
    rows = graph.rows()
    w = graph.weights
    if measure == "uniform":
        kern = np.ones_like(w)
    elif measure == "grc":
        with np.errstate(over="ignore", under="ignore"):
            kern = np.power(float(base), -np.power(w, exp_power))
    else:  # gaussian
        if isinstance(bandwidth, np.ndarray):  # already per node
            sigma = bandwidth
        else:
            sigma = gaussian_sigma(graph, bandwidth)
        with np.errstate(under="ignore"):
            kern = np.exp(-0.5 * (w / sigma[rows]) ** 2)
    total = np.bincount(rows, weights=kern, minlength=n)
    fallback = (total <= _GRC_EPSILON) & (deg > 0)
    if fallback.any():
        kern = np.where(fallback[rows], 1.0, kern)
        total = np.bincount(rows, weights=kern, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mass_nbr = (1.0 - alpha) * kern / total[rows]
    mass_self = np.where(deg > 0, alpha, 1.0).astype(np.float64)
    return np.ascontiguousarray(mass_nbr, dtype=np.float64), mass_self, fallback


def gaussian_sigma(
    graph: Graph, bandwidth: Any, graph_of_node: np.ndarray | None = None
) -> np.ndarray:
    """Per-node Gaussian bandwidth: a number, the local median, or each graph's median edge.

    ``graph_of_node`` splits a disjoint union into its graphs, so ``"median"`` (the default)
    takes the median edge of each graph, not of the union.
    """
    if bandwidth is not None and not isinstance(bandwidth, str):
        return np.full(graph.n_nodes, float(bandwidth))
    if bandwidth == "local":
        return local_bandwidth(graph)
    rows = graph.rows()
    up = graph.indices > rows
    if graph_of_node is None:
        graph_of_node = np.zeros(graph.n_nodes, dtype=np.int64)
    gid = graph_of_node[rows[up]]
    med = np.ones(int(graph_of_node.max()) + 1 if len(graph_of_node) else 1)
    for g in np.unique(gid):  # one median per graph (a handful)
        med[g] = np.median(graph.weights[up][gid == g])
    return med[graph_of_node]


def local_bandwidth(graph: Graph) -> np.ndarray:
    """Median length of the edges at each node (1 for isolated nodes)."""
    deg = graph.degree
    rows = graph.rows()
    sigma = np.ones(graph.n_nodes)
    has = deg > 0
    ws = graph.weights[np.lexsort((graph.weights, rows))]
    mid_lo = graph.indptr[:-1] + (deg - 1) // 2
    mid_hi = graph.indptr[:-1] + deg // 2
    sigma[has] = 0.5 * (ws[mid_lo[has]] + ws[mid_hi[has]])
    return sigma


def _sinkhorn_edges(
    graph: Graph,
    mass_nbr: np.ndarray,
    mass_self: np.ndarray,
    table: tuple,
    src: np.ndarray,
    dst: np.ndarray,
    dev: torch.device,
    epsilon: float,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Entropic curvature: log-domain Sinkhorn over all edges at once, ε annealed.

    Costs are divided by each edge's ``d(x, y)``, so ``epsilon`` and ``tol`` are in
    curvature units. Each problem's error is bounded by a duality gap: the cost of the
    Sinkhorn plan rounded onto the transport polytope (Altschuler, Weed & Rigollet 2017)
    is an upper bound of ``W1``, the c-transformed potentials give a lower bound. A
    problem leaves the iteration once its gap is below ``tol``; the few that never get
    there are solved exactly (on the CPU), so every returned curvature is within ``tol``
    of the exact one.
    """
    # W1 is symmetric: orient every edge from its higher-degree end, so a problem is
    # (deg x + 1) x (deg y + 1) with the long side first, and pad the two sides apart (an
    # edge at a hub of a k-NN graph is long and thin, not square).
    deg = graph.degree
    flip = deg[src] < deg[dst]
    s_or = np.where(flip, dst, src)
    d_or = np.where(flip, src, dst)
    size_a = deg[s_or] + 1
    size_b = deg[d_or] + 1
    # chunks: widths within a factor _WIDTH_RATIO on each side (geometric buckets of the
    # long side, then runs of the short side), unless a chunk would hold fewer than
    # min_bucket problems, and never past the memory budget at the padded widths
    bucket = np.floor(np.log(size_a) / math.log(_WIDTH_RATIO)).astype(np.int64)
    order = np.lexsort((size_b, bucket))
    sa, sb, bk = size_a[order], size_b[order], bucket[order]
    e = len(src)
    kappa = np.empty(e)
    dgx = np.empty(e)
    wdist = np.empty(e)
    gap = np.zeros(e)
    dtype = torch.float64
    budget = memory_budget(dev)
    min_bucket = _CPU_MIN_BUCKET if dev.type == "cpu" else _CUDA_MIN_BUCKET
    start = 0
    while start < e:
        end_bucket = int(np.searchsorted(bk, bk[start], side="right"))
        cap_b = math.ceil(_WIDTH_RATIO * int(sb[start]))
        stop = start + int(np.searchsorted(sb[start:end_bucket], cap_b, side="right"))
        if stop - start < min_bucket:
            stop = min(e, start + min_bucket)
        wa_run = np.maximum.accumulate(sa[start:stop].astype(np.int64))
        wb_run = np.maximum.accumulate(sb[start:stop].astype(np.int64))
        need = np.arange(1, stop - start + 1) * 8 * (6 * wa_run * wb_run + 2 * (wa_run + wb_run))
        if need[0] > budget:
            check_chunk(
                need[0],
                f"ollivier_ricci(method='sinkhorn'): one {wa_run[0]} x {wb_run[0]} transport "
                "problem",
                dev,
            )
        stop = start + max(1, int(np.searchsorted(need, budget, side="right")))
        idx = order[start:stop]
        A, B, C, d = K.transport_problems(
            graph.indptr,
            graph.indices,
            mass_nbr,
            mass_self,
            table,
            s_or[idx],
            d_or[idx],
            0,
            len(idx),
            int(sa[start:stop].max()),
            int(sb[start:stop].max()),
        )
        w_val, g_val = _sinkhorn_batch(A, B, C, d, dev, dtype, epsilon, max_iter, tol)
        dgx[idx] = d
        wdist[idx] = w_val
        gap[idx] = g_val
        start = stop
    polish = np.flatnonzero(gap > tol)
    if len(polish):
        _, _, w_ex = K.curvature_exact(
            graph.indptr, graph.indices, mass_nbr, mass_self, table, src[polish], dst[polish]
        )
        wdist[polish] = w_ex
        gap[polish] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(dgx < K.EPSILON, 0.0, 1.0 - wdist / dgx)
    info = {"max_gap": float(gap.max()) if e else 0.0, "n_exact": len(polish)}
    return kappa, dgx, wdist, info


def _sinkhorn_batch(
    A: np.ndarray,
    B: np.ndarray,
    C: np.ndarray,
    d: np.ndarray,
    dev: torch.device,
    dtype: torch.dtype,
    epsilon: float,
    max_iter: int,
    tol: float,
    check_every: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Transport costs of a batch of padded problems and their duality gaps.

    Returns ``W1`` upper bounds (cost of a feasible plan) and the gap to a dual lower
    bound, in curvature units (``inf`` where the gap never fell below ``tol``).
    """
    out = np.zeros(len(A))
    gaps = np.zeros(len(A))
    mass = A.sum(1)
    active = (mass > 0) & (B.sum(1) > 0) & (d >= K.EPSILON)
    if not active.any():
        return out, gaps
    a = torch.as_tensor(A[active], device=dev, dtype=dtype)
    b = torch.as_tensor(B[active], device=dev, dtype=dtype)
    dd = torch.as_tensor(d[active], device=dev, dtype=dtype)
    r = a.sum(1)
    a = a / r[:, None]
    b = b / b.sum(1)[:, None]
    c = torch.as_tensor(C[active], device=dev, dtype=dtype) / dd[:, None, None]
    la = torch.where(a > 0, a.log(), torch.full_like(a, -math.inf))
    lb = torch.where(b > 0, b.log(), torch.full_like(b, -math.inf))
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    eps0 = float(c.amax())
    n_stages = max(1, math.ceil(math.log2(max(eps0, epsilon) / epsilon)) + 1)
    schedule = [max(epsilon, eps0 * 0.5**k) for k in range(n_stages)]

    def sweep(f, g, la, lb, c, eps):
        # eps: a float, or one value per problem, shape (n, 1, 1).
        e2 = eps[:, 0] if isinstance(eps, torch.Tensor) else eps
        f = -e2 * torch.logsumexp(lb[:, None, :] + (g[:, None, :] - c) / eps, dim=2)
        g = -e2 * torch.logsumexp(la[:, :, None] + (f[:, :, None] - c) / eps, dim=1)
        return f, g

    def bounds(f, g, la, lb, a, b, c, eps):
        """Rounded-plan cost (upper bound) and c-transform dual value (lower bound)."""
        p = (la[:, :, None] + lb[:, None, :] + (f[:, :, None] + g[:, None, :] - c) / eps).exp()
        row = p.sum(2)
        # Rounding onto the transport polytope (Altschuler, Weed & Rigollet 2017, Alg. 2).
        x = torch.clamp(a / row.clamp_min(1e-300), max=1.0)
        p = p * x[:, :, None]
        y = torch.clamp(b / p.sum(1).clamp_min(1e-300), max=1.0)
        p = p * y[:, None, :]
        ea = a - p.sum(2)
        eb = b - p.sum(1)
        p = p + ea[:, :, None] * eb[:, None, :] / ea.sum(1).clamp_min(1e-300)[:, None, None]
        upper = (p * c).sum((1, 2))
        # c-transform of f over the supply rows: a feasible dual pair (f, g_c).
        slack = torch.where(a[:, :, None] > 0, c - f[:, :, None], math.inf)
        gc = slack.amin(1)
        lower = (a * torch.where(a > 0, f, 0.0)).sum(1) + (b * torch.where(b > 0, gc, 0.0)).sum(1)
        return upper, lower, (row - a).abs().sum(1)

    for eps in schedule[:-1]:  # annealing: a few sweeps per stage, warm-started
        for _ in range(10):
            f, g = sweep(f, g, la, lb, c, eps)
    # Final stage: every problem iterates at its own ε. Once its marginals are met, a
    # problem whose duality gap is still above tol (entropic bias, not convergence) has its
    # ε divided by 4, down to epsilon / 256; a problem leaves once its gap is below tol,
    # so late sweeps touch only the slow ones.
    n = len(a)
    eps_p = torch.full((n, 1, 1), schedule[-1], device=dev, dtype=dtype)
    floor = schedule[-1] / 256
    upper = torch.zeros(n, device=dev, dtype=dtype)
    gap = torch.full((n,), math.inf, device=dev, dtype=dtype)
    todo = torch.arange(n, device=dev)
    it = 0
    while len(todo) and it < max_iter:
        la_t, lb_t, c_t, a_t, b_t = la[todo], lb[todo], c[todo], a[todo], b[todo]
        fa, ga, ep = f[todo], g[todo], eps_p[todo]
        for _ in range(check_every):
            fa, ga = sweep(fa, ga, la_t, lb_t, c_t, ep)
        it += check_every
        up, lo, marg = bounds(fa, ga, la_t, lb_t, a_t, b_t, c_t, ep)
        gp = (up - lo).clamp_min(0.0) * r[todo]
        f[todo], g[todo] = fa, ga
        upper[todo] = up
        gap[todo] = gp
        open_ = gp > tol
        refine = open_ & (marg < 0.1 * tol)
        stuck = refine & (ep[:, 0, 0] <= floor)
        eps_p[todo[refine]] = (ep[refine] / 4).clamp_min(floor)
        todo = todo[open_ & ~stuck]
    out[active] = (upper * r * dd).cpu().numpy()
    gaps[active] = gap.cpu().numpy()
    return out, gaps


def _validate(alpha, measure, method, exp_power, base, bandwidth, epsilon):
    check_number("alpha", alpha, low=0, high=1, closed="left")
    check_option("measure", measure, MEASURES)
    if isinstance(method, str) and method in _GRC_METHODS:
        raise ValueError(
            f"Invalid value for the 'method' parameter. Allowed values are "
            f"{', '.join(repr(m) for m in METHODS)}; got {method!r}, GraphRicciCurvature's "
            f"name: use method={_GRC_METHODS[method]!r}."
        )
    check_option("method", method, METHODS)
    check_number("exp_power", exp_power, low=0)
    check_number("base", base, low=0, closed="neither")
    check_number("epsilon", epsilon, low=0, closed="neither")
    if bandwidth is not None and measure != "gaussian":
        raise ValueError(
            f"bandwidth= applies to measure='gaussian' only; got bandwidth={bandwidth!r} "
            f"with measure={measure!r}."
        )
    if isinstance(bandwidth, str):
        check_option("bandwidth", bandwidth, BANDWIDTHS)
    elif bandwidth is not None:
        check_number("bandwidth", bandwidth, low=0, closed="neither")


def curvature_arrays(
    union: Graph,
    *,
    alpha: float,
    measure: str,
    method: str,
    exp_power: float,
    base: float,
    bandwidth: Any,
    epsilon: float,
    max_iter: int | None,
    device: Any,
    tol: float = 1e-3,
    graph_of_node: np.ndarray | None = None,
    paths: str = "auto",
) -> dict[str, Any]:
    """Curvature of every edge of ``union`` (a graph or a disjoint union of graphs)."""
    if measure == "gaussian" and not isinstance(bandwidth, np.ndarray):
        bandwidth = gaussian_sigma(union, bandwidth, graph_of_node)
    mass_nbr, mass_self, fallback = node_measures(
        union, alpha, measure, exp_power, base, bandwidth
    )
    dev = resolve_device(device)
    if dev.type == "mps" and (method in ("sinkhorn", "atd") or paths == "device"):
        raise ValueError(
            f"method={method!r} with paths={paths!r} computes in float64 on the device, which "
            "MPS does not support; use device='cpu' (method='exact' is the faster solver "
            "there) or a CUDA device."
        )
    if max_iter is None:
        max_iter = _CPU_MAX_ITER if dev.type == "cpu" else _CUDA_MAX_ITER
    blocks = _graph_blocks(union.n_nodes, graph_of_node)
    dense_fits = int(np.diff(blocks).max(initial=0)) <= _DEVICE_APSP_MAX
    on_device = paths == "device" or (
        paths == "auto" and method != "exact" and dev.type != "cpu" and dense_fits
    )
    if on_device and dense_fits:
        table = device_distance_table(union, blocks, dev)
    elif on_device:  # too large for dense n x n tables: sparse, bounded, on the device
        table = sparse_ball_table(union.indptr, union.indices, union.weights, dev)
    else:
        table = K.ball_table(union.indptr, union.indices, union.weights)
    src, dst, w = union.edges()
    info = {"max_gap": 0.0, "n_exact": 0}
    if method == "exact":
        kappa, dgx, wdist = K.curvature_exact(
            union.indptr, union.indices, mass_nbr, mass_self, table, src, dst
        )
    elif method == "atd":
        kappa, dgx, wdist = atd_edges(union, mass_nbr, alpha, table, src, dst, dev)
    else:
        kappa, dgx, wdist, info = _sinkhorn_edges(
            union, mass_nbr, mass_self, table, src, dst, dev, epsilon, max_iter, tol
        )
    return {
        "kappa": kappa,
        "distance": dgx,
        "transport": wdist,
        "src": src,
        "dst": dst,
        "weight": w,
        "mass_nbr": mass_nbr,
        "fallback": fallback,
        "max_gap": info["max_gap"],
        "n_exact": info["n_exact"],
    }


def _graph_blocks(n: int, graph_of_node: np.ndarray | None) -> np.ndarray:
    """Boundaries of the graphs of a disjoint union (their nodes are contiguous)."""
    if graph_of_node is None or n == 0:
        return np.array([0, n], dtype=np.int64)
    counts = np.bincount(graph_of_node)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def device_distance_table(
    union: Graph, blocks: np.ndarray, dev: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-pairs shortest paths of every graph of a union, batched on ``dev``.

    Floyd–Warshall on dense ``(graphs, n, n)`` distance tensors, graphs of one size
    stacked (``n`` relaxation steps, each a batched min-plus update), chunked by memory.
    Returns the full rows in the sparse table layout of :func:`ball_table` (each node's
    row holds every node of its graph, unreachable ones at ``inf``).
    """
    sizes = np.diff(blocks)
    n = union.n_nodes
    bptr = np.zeros(n + 1, dtype=np.int64)
    bptr[1:] = np.cumsum(np.repeat(sizes, sizes))
    btgt = np.empty(int(bptr[-1]), dtype=np.int64)
    bdist = np.empty(int(bptr[-1]))
    rows = union.rows()
    budget = memory_budget(dev)
    for size in np.unique(sizes[sizes > 0]):
        which = np.flatnonzero(sizes == size)
        check_chunk(
            3 * 8 * int(size) ** 2,
            f"ollivier_ricci(paths='device'): the dense shortest paths of a {size}-node graph",
            dev,
        )
        per_graph = max(1, budget // (3 * 8 * int(size) ** 2))
        for c0 in range(0, len(which), per_graph):
            chunk = which[c0 : c0 + per_graph]
            dense = np.full((len(chunk), size, size), np.inf)
            for i, g in enumerate(chunk):  # one scatter per graph of the chunk
                lo = int(blocks[g])
                sl = slice(int(union.indptr[lo]), int(union.indptr[lo + size]))
                dense[i, rows[sl] - lo, union.indices[sl] - lo] = union.weights[sl]
                np.fill_diagonal(dense[i], 0.0)
            d = torch.as_tensor(dense, device=dev, dtype=torch.float64)
            for k in range(int(size)):
                torch.minimum(d, d[:, :, k : k + 1] + d[:, k : k + 1, :], out=d)
            out = d.cpu().numpy()
            for i, g in enumerate(chunk):
                lo = int(blocks[g])
                start = int(bptr[lo])
                stop = int(bptr[lo + size])
                btgt[start:stop] = np.tile(np.arange(lo, lo + size), size)
                bdist[start:stop] = out[i].ravel()
    return bptr, btgt, bdist


def node_curvature(n: int, src: np.ndarray, dst: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Mean curvature of the edges at each node (NaN for isolated nodes)."""
    s = np.bincount(src, weights=kappa, minlength=n) + np.bincount(dst, weights=kappa, minlength=n)
    c = np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c


def _weighted_nodes(graph: Graph, mass_nbr: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """Measure-weighted node curvature: sum over neighbours of m_x(y) kappa(x, y) / (1 - alpha)."""
    upper, reverse = graph.edge_slots()
    k_entry = np.empty(len(graph.indices))
    k_entry[upper] = kappa
    k_entry[reverse] = kappa
    rows = graph.rows()
    n = graph.n_nodes
    num = np.bincount(rows, weights=mass_nbr * k_entry, minlength=n)
    den = np.bincount(rows, weights=mass_nbr, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def build_result(graph: Graph, arrays: dict[str, Any], sl: slice, nsl: slice, attrs: dict):
    """Build the labeled :class:`CurvatureResult` of one graph from the batched arrays."""
    off = nsl.start
    src = arrays["src"][sl] - off
    dst = arrays["dst"][sl] - off
    kappa = arrays["kappa"][sl]
    ids = graph.stimulus
    n = graph.n_nodes
    edges = xr.DataArray(
        kappa,
        dims=("edge",),
        coords={
            "source": ("edge", ids[src]),
            "target": ("edge", ids[dst]),
            "source_index": ("edge", src),
            "target_index": ("edge", dst),
            "weight": ("edge", arrays["weight"][sl]),
            "distance": ("edge", arrays["distance"][sl]),
        },
        name="edge_curvature",
        attrs=dict(attrs),
    )
    nodes = xr.DataArray(
        node_curvature(n, src, dst, kappa),
        dims=("node",),
        coords={"node": ids, "degree": ("node", graph.degree)},
        name="node_curvature",
        attrs=dict(attrs),
    )
    nnz_lo, nnz_hi = 2 * sl.start, 2 * sl.stop
    weighted = xr.DataArray(
        _weighted_nodes(graph, arrays["mass_nbr"][nnz_lo:nnz_hi], kappa),
        dims=("node",),
        coords={"node": ids},
        name="node_curvature_weighted",
        attrs=dict(attrs),
    )
    res_attrs = dict(attrs)
    res_attrs["n_fallback"] = int(arrays["fallback"][nsl].sum())
    edges.attrs["n_fallback"] = nodes.attrs["n_fallback"] = res_attrs["n_fallback"]
    return CurvatureResult(edges, nodes, weighted, graph, res_attrs)


def ollivier_ricci(
    graph: Any,
    *,
    alpha: float = 0.5,
    exp_power: float = 2,
    base: float = math.e,
    measure: Literal["grc", "uniform", "gaussian"] = "grc",
    method: Literal["exact", "sinkhorn", "atd"] = "exact",
    bandwidth: float | Literal["median", "local"] | None = None,
    epsilon: float = 1e-2,
    tol: float = 1e-3,
    max_iter: int | None = None,
    paths: Literal["auto", "cpu", "device"] = "auto",
    device: Any = None,
) -> Any:
    """Ollivier-Ricci curvature of every edge and node of one or many graphs.

    ``kappa(x, y) = 1 - W1(m_x, m_y) / d(x, y)``, with ``d`` the shortest-path distance
    (which may be shorter than the edge itself) and ``W1`` the optimal transport cost under
    ``d``. The measure ``m_x`` keeps ``alpha`` on ``x`` and spreads ``1 - alpha`` over the
    neighbours ``y`` of ``x`` in proportion to a kernel of the edge length ``w``:

    - ``"grc"``: ``base ** -(w ** exp_power)``, as GraphRicciCurvature; with ``method="exact"``
      the values equal its ``OllivierRicci(G, alpha, method="OTD")``. This kernel has no
      length scale: where every ``base ** -(w ** exp_power)`` of a node underflows (their
      sum below 1e-7, e.g. raw distances in a high-dimensional space) the node falls back
      to the uniform measure, and a rescaled RDM gives other curvatures. A warning counts
      the fallbacks.
    - ``"uniform"``: ``1 / degree`` (the lazy random walk): invariant to rescaling.
    - ``"gaussian"``: ``exp(-(w / sigma) ** 2 / 2)`` with ``sigma`` the median edge length of
      the graph (``bandwidth="median"``, default), the median length at each node
      (``"local"``) or a given number: invariant to rescaling unless a number is given.

    Parameters
    ----------
    graph : Graph or networkx.Graph or array_like or list or dict
        One graph (see :func:`as_graph`), or a list / dict of them: all are computed in one
        batched call (as one disjoint union) and a list / dict of results comes back.
    alpha : float
        Mass kept on the node, in ``[0, 1)``.
    exp_power, base : float
        The ``"grc"`` kernel's parameters.
    measure : {"grc", "uniform", "gaussian"}
        The neighbour measure.
    method : {"exact", "sinkhorn", "atd"}
        How ``W1(m_x, m_y)`` is obtained (see :data:`METHODS`).
        ``"exact"``: every edge's transport problem solved exactly on the CPU (a compiled
        network simplex, edges in parallel threads). ``"atd"``: the average transportation
        distance of GraphRicciCurvature (no optimisation): the cost of the plan that moves
        the mass ``alpha`` of ``x`` along the edge and the neighbour masses independently,
        ``alpha d(x, y) + sum_{u ~ x, v ~ y} nu_x(u) nu_y(v) d(u, v) / (1 - alpha)`` with
        ``nu_x`` the neighbour part of ``m_x``; on a GPU computed for all edges at once
        (a batched bilinear form of the shortest-path table). That plan is a
        coupling, so ATD curvature is a lower bound of the exact one. On the CPU the sums
        run in a compiled kernel, edges in parallel threads. It uses the chosen
        ``measure``; GraphRicciCurvature's ATD spreads the neighbour mass uniformly
        whatever its ``exp_power`` and ``base``, so ``measure="uniform"`` gives its
        ``OllivierRicci(G, method="ATD")`` values (and ``"grc"`` does too on unweighted
        graphs, where its kernel is constant). ``"sinkhorn"``: log-domain entropic
        transport over all edges at once on ``device``, ``epsilon`` annealed. Each edge's
        error is bounded by a duality gap (rounded-plan cost minus the c-transform dual
        value); an edge whose gap stays above ``tol`` after ``max_iter`` sweeps is solved
        exactly. ``attrs["max_error_bound"]`` holds the largest remaining gap (a certified
        bound on ``|kappa - kappa_exact|``) and ``attrs["n_exact"]`` the number of edges
        solved exactly.
    bandwidth : float or {"median", "local"}, optional
        The ``"gaussian"`` length scale.
    epsilon : float
        Final entropic regularisation of ``"sinkhorn"``, relative to ``d(x, y)`` (curvature
        units).
    tol : float
        ``"sinkhorn"``: the largest error allowed on an edge's curvature.
    max_iter : int, optional
        Sinkhorn sweeps at the final ``epsilon`` before an edge is handed to the exact
        solver. Default: 1000 on a GPU; 10 on the CPU, where one exact solve costs about
        as much as a few sweeps, so sweeping longer is never cheaper than solving.
    paths : {"auto", "cpu", "device"}
        Where shortest paths are computed. ``"cpu"``: bounded Dijkstra per node (compiled,
        sparse; any size). ``"device"``: on ``device``, all-pairs shortest paths of every
        graph at once (batched dense Floyd–Warshall, memory ``n**2`` per graph) when no
        graph has more than 4096 nodes, else the same sparse bounded table as ``"cpu"``
        from a radius-bounded Bellman–Ford over sparse (source, target, distance) tuples,
        sources in chunks. ``"auto"``: the device for ``"sinkhorn"`` and ``"atd"`` on a
        GPU with graphs of at most 4096 nodes, else the CPU.
    device : str or torch.device, optional
        Device of the ``"sinkhorn"`` and ``"atd"`` solvers (default: the configured one).

    Returns
    -------
    result : CurvatureResult or list or dict of CurvatureResult
        Edge and node curvature as labeled DataArrays.

    Raises
    ------
    ValueError
        For ``alpha`` outside ``[0, 1)``, an unknown ``measure`` / ``method`` (a
        GraphRicciCurvature name such as ``"OTD"`` is pointed to its brainalign name), an
        asymmetric adjacency matrix, or bad edge weights.
    TypeError
        For a directed graph (``networkx.DiGraph``): see Notes.

    See Also
    --------
    knn_graph, ricci_flow, compare

    Notes
    -----
    Shortest paths are exact and local: one Dijkstra per node, bounded by the largest
    ``w(u, x) + w(x, y) + w(y, v)`` any incident transport problem needs, stored sparsely.
    For a metric cost an optimal plan keeps ``min(m_x, m_y)`` in place, so each edge only
    moves the positive part of ``m_x - m_y`` onto its negative part: a smaller problem with
    the same optimum. GraphRicciCurvature's ``nbr_topk`` (3000) truncation of neighbour
    lists is not applied (it changes nothing below 3000 neighbours).

    Directed graphs are refused, not computed. GraphRicciCurvature accepts a
    ``networkx.DiGraph`` and then spreads the source's mass over its in-neighbours and the
    target's over its out-neighbours, with directed shortest paths. A representational graph
    has no direction: it is built from an RDM, which is symmetric (``d(i, j) = d(j, i)``),
    and the one asymmetry of a k-NN relation ("j is among i's k nearest, not the reverse")
    is an artefact of ``k``, which :func:`knn_graph` removes by joining ``i`` and ``j`` when
    either is among the other's nearest (as Torbati et al. 2025 do). The Ricci flow,
    communities and comparisons of this package act on undirected graphs too. Symmetrise a
    directed graph first (``G.to_undirected()``, or ``(A + A.T) / 2`` for a matrix).

    References
    ----------
    Ollivier (2009), J. Funct. Anal. 256(3); Ni, Lin, Luo & Gao (2019), Sci. Rep. 9;
    Torbati, Gaebler, Hofmann & Scherf (2025), arXiv:2501.00919.

    Examples
    --------
    >>> import networkx as nx
    >>> from brainalign.ricci import ollivier_ricci
    >>> res = ollivier_ricci(nx.complete_graph(5), alpha=0.5)
    >>> round(float(res.edges[0]), 6)  # 0.5 * n / (n - 1)
    0.625
    """
    _validate(alpha, measure, method, exp_power, base, bandwidth, epsilon)
    if max_iter is not None:
        check_number("max_iter", max_iter, low=1, integer=True)
    check_number("tol", tol, low=0, closed="neither")
    check_option("paths", paths, PATHS)
    graphs, keys = graphs_of(graph)
    union, node_off, edge_off = disjoint_union(graphs)
    gon = np.repeat(np.arange(len(graphs)), np.diff(node_off)) if len(graphs) > 1 else None
    arrays = curvature_arrays(
        union,
        alpha=alpha,
        measure=measure,
        method=method,
        exp_power=exp_power,
        base=base,
        bandwidth=bandwidth,
        epsilon=epsilon,
        max_iter=max_iter,
        device=device,
        tol=tol,
        graph_of_node=gon,
        paths=paths,
    )
    attrs = {
        "alpha": float(alpha),
        "measure": measure,
        "method": method,
        "exp_power": float(exp_power),
        "base": float(base),
        "brainalign_version": __version__,
    }
    if measure == "gaussian":
        attrs["bandwidth"] = str(bandwidth or "median")
    if method == "sinkhorn":
        attrs["epsilon"] = float(epsilon)
        attrs["tol"] = float(tol)
        attrs["max_error_bound"] = float(arrays["max_gap"])
        attrs["n_exact"] = int(arrays["n_exact"])
    n_fb = int(arrays["fallback"].sum())
    if n_fb:
        warn(
            f"{n_fb} of {union.n_nodes} node(s) fall back to the uniform measure: every "
            f"neighbour weight {base:.4g}**-(w**{exp_power:g}) underflows (sum < 1e-7), as in "
            "GraphRicciCurvature. The 'grc' kernel has no length scale, so the curvature "
            "depends on the RDM's units; rescale the weights or use measure='gaussian' "
            "(scale-free)."
        )
    results = [
        build_result(
            g,
            arrays,
            slice(int(edge_off[i]), int(edge_off[i + 1])),
            slice(int(node_off[i]), int(node_off[i + 1])),
            attrs,
        )
        for i, g in enumerate(graphs)
    ]
    if keys is None:
        return results[0]
    if isinstance(keys, int):
        return results
    return dict(zip(keys, results, strict=True))
