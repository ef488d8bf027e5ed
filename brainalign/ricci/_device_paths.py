"""Sparse bounded shortest-path tables computed with torch on any device.

:func:`sparse_ball_table` returns the table of :func:`brainalign.ricci._kernels.ball_table`
(every node ``v`` with ``d(u, v) <= radius(u)`` in row ``u``, sorted by target) for graphs
whose dense ``n x n`` distance matrix does not fit on the device, by a frontier-based,
radius-bounded Bellman–Ford over sparse ``(source, target, distance)`` tuples.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from brainalign._memory import check_fits, resolve_budget
from brainalign.ricci import _kernels as K

# Largest chunk of the batched kernels (also the Sinkhorn chunks): bigger chunks gain
# nothing in speed. The memory budget of the configuration caps it.
_CPU_BUDGET = 256 * 2**20
_CUDA_BUDGET = 2 * 2**30


def memory_limit(dev: torch.device) -> int:
    """Return the memory budget on ``dev``: ``max_memory`` of :func:`brainalign.set_config`."""
    return resolve_budget(None, dev)


def memory_budget(dev: torch.device) -> int:
    """Bytes the batched kernels may use at once on ``dev``: a chunk's size.

    At most 256 MiB on the CPU and 2 GiB on a GPU, and never more than the configured
    memory budget (:func:`memory_limit`); a request whose smallest chunk exceeds that
    budget is refused (:func:`check_chunk`).
    """
    return min(_CPU_BUDGET if dev.type == "cpu" else _CUDA_BUDGET, memory_limit(dev))


def check_chunk(n_bytes: float, what: str, dev: torch.device) -> None:
    """Refuse, before allocating, a smallest chunk of ``n_bytes`` beyond the memory budget.

    Raises
    ------
    brainalign._memory.MemoryBudgetError
        Naming ``what``, its size and the budget.
    """
    check_fits(n_bytes, what, memory_limit(dev))


# Approximate peak bytes of one stored tuple (key and distance, the merged copy, masks and
# search positions) and of one relaxation candidate (expansion indices, key, distance,
# sort and reduction temporaries). Half the budget goes to each.
_TABLE_BYTES = 48
_CANDIDATE_BYTES = 128


def sparse_ball_table(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    dev: torch.device,
    *,
    radius: np.ndarray | float | None = None,
    budget: int | None = None,
    stats: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounded shortest-path distances of every node, as a sorted sparse table, on ``dev``.

    The same table as :func:`brainalign.ricci._kernels.ball_table` (which runs one bounded
    Dijkstra per node in compiled CPU code), computed with torch tensor operations, so it
    runs on a GPU, for single graphs too large for the dense all-pairs table of
    ``device_distance_table``.

    Parameters
    ----------
    indptr, indices, weights : ndarray
        The graph in symmetric CSR form (int64 row pointers and columns, float64
        non-negative edge lengths), as in :class:`brainalign.ricci.Graph`.
    dev : torch.device
        Where to compute.
    radius : ndarray of float64, shape (n,), or float, optional
        Search radius of each source: row ``u`` holds every node within ``radius[u]``.
        Default: ``_kernels.radius(indptr, indices, weights) * (1 + 1e-12)``, exactly as
        ``ball_table``, so the two tables hold the same targets.
    budget : int, optional
        Approximate bytes of device memory to use at once; sources are processed in chunks
        sized from it. Default: 256 MiB on the CPU, 2 GiB on a GPU.
    stats : dict, optional
        If given, filled with counters: ``chunks``, ``rounds`` (relaxation rounds over all
        chunks), ``max_rounds`` (of one chunk), ``peak_tuples`` (largest table of a chunk),
        ``peak_candidates`` (largest expansion of one step) and ``tuples`` (final total).

    Returns
    -------
    bptr : ndarray of int64, shape (n + 1,)
        Row pointers.
    btgt : ndarray of int64
        Target nodes, sorted within each row.
    bdist : ndarray of float64
        Their shortest-path distances.

    Notes
    -----
    Each chunk of sources ``S`` keeps its tuples as device tensors sorted by the int64 key
    ``source * n + target``: the best distance found so far per key, and a flag marking
    the tuples whose distance decreased in the current round (the next frontier). It
    starts from ``(s, s, 0)`` for ``s`` in ``S``, the first frontier. A round expands every
    frontier tuple ``(s, x, d)`` along the arcs of ``x`` (``repeat_interleave`` of the
    degrees, a gather from the CSR arrays) into candidates ``(s, y, d + w(x, y))`` and
    keeps those within ``radius[s]``. Each candidate is looked up in the table
    (``searchsorted``) and dropped unless it improves the stored distance; improvements of
    stored tuples are applied in place (``scatter_reduce`` minimum) and flagged, and the
    candidates of keys not yet stored are pooled. At the end of the round the pool is
    reduced per key (``torch.unique`` and a ``scatter_reduce`` minimum) and merged into
    the sorted table (a linear merge of two sorted arrays), flagged. A chunk ends when a
    round flags nothing. An expansion that would exceed the budget runs in pieces of the
    frontier, one after another within the round (the pool is also merged early when it
    grows past the budget); any order of relaxations reaches the same fixed point.

    The result is exactly Dijkstra's, bit for bit: both compute the largest fixed point of
    ``D(v) = min over arcs (u, v) of fl(D(u) + w(u, v))`` with ``D(s) = 0`` and candidates
    above the radius dropped (floating-point addition is monotone, so every fixed point is
    at most the sums along Dijkstra's tree and at least the Bellman–Ford limit). Ties
    between equal-length paths therefore give the same float in both.

    Cost: a chunk takes as many rounds as the largest number of arcs on a shortest path
    within its balls, plus one (5 on the k-NN graphs of ``benchmarks/ricci.py``), and
    each tuple is expanded once per decrease of its distance: about ``(decreases per
    tuple) x degree`` candidates per table entry, each a binary search in the chunk's
    table (``O(log T)``), of which the new keys are sorted once; plus a linear merge of
    the table per round. Memory: about ``48`` bytes per table entry and ``128`` per
    candidate, half the budget each; chunks are sized from the mean row size seen so far
    (the first from the worst case, ``n`` targets per source), so peak memory is about
    ``budget``, give or take the spread of the row sizes. Python loops only over chunks,
    rounds and frontier pieces. The table itself is returned in host memory (16 bytes per
    entry), as ``ball_table``'s.
    """
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    n = len(indptr) - 1
    if radius is None:
        r = K.radius(indptr, indices, weights) * (1 + 1e-12)
    else:
        r = np.array(np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,)))
    if budget is None:
        budget = memory_budget(dev)
    table_cap = max(1, int(budget) // (2 * _TABLE_BYTES))
    cand_cap = max(1, int(budget) // (2 * _CANDIDATE_BYTES))
    info = {
        "chunks": 0,
        "rounds": 0,
        "max_rounds": 0,
        "peak_tuples": 0,
        "peak_candidates": 0,
        "tuples": 0,
    }
    bptr = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        if stats is not None:
            stats.update(info)
        return bptr, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)

    g = _DeviceGraph(indptr, indices, weights, r, dev)
    counts = np.empty(n, dtype=np.int64)
    parts: list = []  # per chunk: (targets, distances)
    chunk = max(1, min(n, table_cap // n))  # safe whatever the balls: rows hold <= n
    start = 0
    while start < n:
        stop = min(n, start + chunk)
        keys, dist, rounds = _chunk_balls(g, start, stop, table_cap, cand_cap, info)
        rows = torch.div(keys, n, rounding_mode="floor") - start
        counts[start:stop] = torch.bincount(rows, minlength=stop - start).cpu().numpy()
        parts.append(((keys - (rows + start) * n).cpu().numpy(), dist.cpu().numpy()))
        del keys, dist, rows
        info["chunks"] += 1
        info["rounds"] += rounds
        info["max_rounds"] = max(info["max_rounds"], rounds)
        # rows of the sources seen so far, or of the last chunk if they grew
        mean_row = max(counts[:stop].mean(), counts[start:stop].mean())
        chunk = max(1, min(n, int(table_cap / (1.25 * mean_row))))
        start = stop
    np.cumsum(counts, out=bptr[1:])
    btgt, bdist = K.join_rows(parts, int(bptr[-1]))
    info["tuples"] = int(bptr[-1])
    if stats is not None:
        stats.update(info)
    return bptr, btgt, bdist


class _DeviceGraph:
    """The CSR arrays and radii on the device (int64 / float64)."""

    def __init__(self, indptr, indices, weights, radius, dev):
        self.n = len(indptr) - 1
        self.dev = dev
        self.indptr = torch.as_tensor(indptr, device=dev)
        self.deg = self.indptr[1:] - self.indptr[:-1]
        self.max_deg = int(np.diff(indptr).max(initial=0))
        self.indices = torch.as_tensor(indices, device=dev)
        self.weights = torch.as_tensor(weights, device=dev)
        self.radius = torch.as_tensor(radius, device=dev)


def _chunk_balls(
    g: _DeviceGraph, start: int, stop: int, table_cap: int, cand_cap: int, info: dict
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Bounded Bellman–Ford from the sources ``[start, stop)``: sorted keys, distances."""
    n, dev = g.n, g.dev
    src = torch.arange(start, stop, device=dev)
    keys = src * n + src  # sorted: one tuple per source
    dist = torch.zeros(stop - start, dtype=torch.float64, device=dev)
    dirty = torch.ones(stop - start, dtype=torch.bool, device=dev)  # the next frontier
    rounds = 0
    while True:
        front = dirty.nonzero().squeeze(1)
        if len(front) == 0:
            break
        rounds += 1
        f_keys = keys[front]
        f_dist = dist[front]
        dirty.zero_()
        del front
        f_src = torch.div(f_keys, n, rounding_mode="floor")
        f_tgt = f_keys - f_src * n
        del f_keys
        f_deg = g.deg[f_tgt]
        ends = torch.cumsum(f_deg, 0)
        total = int(ends[-1])
        if total <= cand_cap:
            bounds = [0, len(f_src)]
        else:
            # pieces of at most cand_cap candidates: a piece starts less than max_deg
            # below a mark, so marks every cand_cap - max_deg candidates keep it within
            step = max(1, cand_cap - g.max_deg)
            marks = torch.arange(step, total, step, device=dev)
            cuts = torch.searchsorted(ends, marks, right=True)
            bounds = sorted({0, len(f_src), *cuts.tolist()})
        del ends
        pool_k: list[torch.Tensor] = []
        pool_d: list[torch.Tensor] = []
        pooled = 0
        for a, b in itertools.pairwise(bounds):
            if a == b:
                continue
            nk, nd = _relax(
                g, keys, dist, dirty, f_src[a:b], f_tgt[a:b], f_deg[a:b], f_dist[a:b], info
            )
            pool_k.append(nk)
            pool_d.append(nd)
            pooled += len(nk)
            if pooled > table_cap // 2:  # keep the pool of new tuples within the budget
                keys, dist, dirty = _insert(keys, dist, dirty, pool_k, pool_d)
                pool_k, pool_d, pooled = [], [], 0
        if pooled:
            keys, dist, dirty = _insert(keys, dist, dirty, pool_k, pool_d)
        info["peak_tuples"] = max(info["peak_tuples"], len(keys))
    return keys, dist, rounds


def _relax(g: _DeviceGraph, keys, dist, dirty, f_src, f_tgt, f_deg, f_dist, info: dict):
    """Relax the arcs of frontier tuples into the sorted table ``(keys, dist)``.

    Lowers ``dist`` in place where a candidate improves a stored tuple and flags it in
    ``dirty``; returns the candidates whose key is not stored (with repeats).
    """
    dev = g.dev
    ends = torch.cumsum(f_deg, 0)
    total = int(ends[-1])
    info["peak_candidates"] = max(info["peak_candidates"], total)
    if total == 0:
        return keys[:0], dist[:0]
    # expansion: candidate i comes from frontier tuple rep[i]; its CSR position is the row
    # start of that tuple's target plus its rank within the tuple's candidates
    rep = torch.repeat_interleave(torch.arange(len(f_deg), device=dev), f_deg, output_size=total)
    pos = (g.indptr[f_tgt] - (ends - f_deg))[rep] + torch.arange(total, device=dev)
    cd = f_dist[rep] + g.weights[pos]
    ok = (cd <= g.radius[f_src][rep]).nonzero().squeeze(1)
    ck = (f_src * g.n)[rep[ok]] + g.indices[pos[ok]]
    cd = cd[ok]
    del rep, pos, ok
    # look every candidate up in the table; only the improving ones go on
    at = torch.searchsorted(keys, ck).clamp_(max=len(keys) - 1)
    found = keys[at] == ck
    better = (cd < torch.where(found, dist[at], torch.inf)).nonzero().squeeze(1)
    ck, cd, at, found = ck[better], cd[better], at[better], found[better]
    del better
    upd = found.nonzero().squeeze(1)
    at_upd = at[upd]
    dist.scatter_reduce_(0, at_upd, cd[upd], reduce="amin", include_self=True)
    dirty[at_upd] = True
    new = (~found).nonzero().squeeze(1)
    return ck[new], cd[new]


def _insert(keys, dist, dirty, pool_k, pool_d):
    """Insert new tuples (repeated keys allowed, none stored yet) into the sorted table.

    Each new key enters once, at its smallest distance, flagged dirty.
    """
    dev = keys.device
    nk, inv = torch.unique(torch.cat(pool_k), sorted=True, return_inverse=True)
    nd = torch.full((len(nk),), torch.inf, dtype=torch.float64, device=dev)
    nd.scatter_reduce_(0, inv, torch.cat(pool_d), reduce="amin", include_self=True)
    del inv
    m, k = len(keys), len(nk)
    # each new key lands after the stored keys below it and the new keys before it
    slot = torch.searchsorted(keys, nk) + torch.arange(k, device=dev)
    is_new = torch.zeros(m + k, dtype=torch.bool, device=dev)
    is_new[slot] = True
    old = (~is_new).nonzero().squeeze(1)
    mk = torch.empty(m + k, dtype=keys.dtype, device=dev)
    md = torch.empty(m + k, dtype=dist.dtype, device=dev)
    mk[slot] = nk
    md[slot] = nd
    mk[old] = keys
    md[old] = dist
    is_new[old] = dirty  # merged flags: new tuples are dirty, stored ones keep theirs
    return mk, md, is_new
