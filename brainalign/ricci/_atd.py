"""Average transportation distance (ATD): curvature without optimal transport, in torch.

GraphRicciCurvature's ``method="ATD"`` replaces the optimal transport cost ``W1(m_x, m_y)``
by the cost of one fixed plan: the mass ``alpha`` kept on ``x`` moves along the edge to
``y`` and the neighbour masses move independently of each other,

``ATD(x, y) = alpha d(x, y) + sum_{u ~ x, v ~ y} nu_x(u) nu_y(v) d(u, v) / (1 - alpha)``

with ``nu_x`` the neighbour part of ``m_x`` (mass ``1 - alpha``). That plan is a coupling of
``m_x`` and ``m_y``, so ``ATD >= W1`` and the ATD curvature is a lower bound of the exact
one. GraphRicciCurvature spreads the neighbour mass uniformly in ATD (its kernel is not
used there), which is ``measure="uniform"`` here.

Every edge's sum is a bilinear form of the distance table. On a GPU all edges are
computed at once in torch: the (edge, u, v) triples are laid out flat, their distances
gathered from the sparse shortest-path table by one sorted search, and the products summed
per edge (chunks sized from a memory budget). On the CPU a compiled kernel does the same
sums edge by edge in threads (``_kernels.curvature_atd``: no triple arrays, each lookup a
short search in a sorted row), about 10x faster than the torch path on 2 cores.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from brainalign.ricci import _kernels as K
from brainalign.ricci._device_paths import check_chunk, memory_budget
from brainalign.ricci._graph import Graph

_BYTES_PER_PAIR = 8 * 12  # the int64 / float64 tensors of one (edge, u, v) triple


def atd_edges(
    graph: Graph,
    mass_nbr: np.ndarray,
    alpha: float,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    src: np.ndarray,
    dst: np.ndarray,
    dev: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ATD curvature of the edges: compiled on the CPU, batched torch on other devices.

    See :func:`atd_edges_torch` for the parameters and returns.
    """
    if dev.type == "cpu":
        return K.curvature_atd(graph.indptr, graph.indices, mass_nbr, alpha, table, src, dst)
    return atd_edges_torch(graph, mass_nbr, alpha, table, src, dst, dev)


def atd_edges_torch(
    graph: Graph,
    mass_nbr: np.ndarray,
    alpha: float,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    src: np.ndarray,
    dst: np.ndarray,
    dev: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ATD curvature, graph distance and transport cost of the edges ``(src, dst)``.

    Parameters
    ----------
    graph : Graph
        The graph (symmetric CSR).
    mass_nbr : ndarray, shape (nnz,)
        Mass each node puts on each neighbour (CSR order; rows sum to ``1 - alpha``).
    alpha : float
        Mass kept on the node, in ``[0, 1)``.
    table : tuple of ndarray
        Shortest-path table ``(bptr, btgt, bdist)``: sorted CSR rows holding at least every
        ``d(u, v)`` with ``u ~ x``, ``v ~ y`` for an edge ``(x, y)``, and ``d(x, y)``.
    src, dst : ndarray of int64, shape (n_edges,)
        The edges.
    dev : torch.device
        Where to compute (float64).

    Returns
    -------
    kappa, distance, transport : ndarray, shape (n_edges,)
        ``1 - ATD / d(x, y)`` (0 where ``d(x, y) < 1e-7``, as GraphRicciCurvature),
        ``d(x, y)`` and ``ATD(x, y)``.
    """
    e = len(src)
    if e == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    bptr, btgt, bdist = table
    n = graph.n_nodes
    f64 = torch.float64
    counts = torch.as_tensor(np.diff(bptr), device=dev)
    keys = torch.repeat_interleave(torch.arange(n, device=dev), counts) * n
    keys += torch.as_tensor(btgt, device=dev)
    table_d = torch.as_tensor(bdist, device=dev, dtype=f64)
    last = len(keys) - 1

    def lookup(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = u * n + v
        i = torch.searchsorted(keys, q).clamp_(max=last)
        return torch.where(keys[i] == q, table_d[i], math.inf)

    indptr = torch.as_tensor(graph.indptr, device=dev)
    indices = torch.as_tensor(graph.indices, device=dev)
    mass = torch.as_tensor(mass_nbr, device=dev, dtype=f64)
    deg = np.diff(graph.indptr)
    s_all = torch.as_tensor(src, device=dev)
    t_all = torch.as_tensor(dst, device=dev)
    d_xy = lookup(s_all, t_all)
    # chunks of edges holding at most ``cap`` (edge, u, v) triples (an edge never splits)
    cum = np.cumsum(deg[src].astype(np.int64) * deg[dst])
    cap = max(1, memory_budget(dev) // _BYTES_PER_PAIR)
    biggest = int(np.max(deg[src].astype(np.int64) * deg[dst])) if len(src) else 0
    if biggest > cap:
        check_chunk(
            biggest * _BYTES_PER_PAIR,
            f"ollivier_ricci(method='atd'): the {biggest} neighbour pairs of one edge",
            dev,
        )
    nbr_cost = torch.zeros(e, device=dev, dtype=f64)
    start = 0
    while start < e:
        before = int(cum[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, before + cap, side="right")))
        s, t = s_all[start:stop], t_all[start:stop]
        ds = indptr[s + 1] - indptr[s]
        dt = indptr[t + 1] - indptr[t]
        size = ds * dt
        edge = torch.repeat_interleave(torch.arange(stop - start, device=dev), size)
        first = torch.cumsum(size, 0) - size
        local = torch.arange(len(edge), device=dev) - first[edge]
        width = dt[edge]
        p = indptr[s][edge] + local // width  # CSR entry of u in x's row
        q = indptr[t][edge] + local % width  # CSR entry of v in y's row
        cost = mass[p] * mass[q] * lookup(indices[p], indices[q])
        nbr_cost[start:stop] = torch.zeros(stop - start, device=dev, dtype=f64).index_add_(
            0, edge, cost
        )
        start = stop
    transport = alpha * d_xy + nbr_cost / (1.0 - alpha)
    kappa = torch.where(d_xy < K.EPSILON, 0.0, 1.0 - transport / d_xy)
    transport = torch.where(d_xy < K.EPSILON, 0.0, transport)
    return kappa.cpu().numpy(), d_xy.cpu().numpy(), transport.cpu().numpy()
