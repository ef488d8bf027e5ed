"""Kernels of topological RSA on RDM vectors (no labels, no validation).

Vectors are upper triangles ``(B, n_pairs)`` in ``np.triu_indices(n, 1)`` order. Quantiles
follow numpy's default (``method="linear"``) operation by operation, so thresholds equal
``np.quantile`` to the last bit. All-pairs shortest paths run as a numba-compiled
Floyd–Warshall on the CPU (split over threads, one RDM at a time in cache) and as a batched
torch Floyd–Warshall with preallocated buffers on other devices.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch

from brainalign.rsa._compare_kernels import numba_kernel, run_split

_TORCH_ON_CPU = False  # set by the tests to run the device (torch) code paths on the CPU


def cpu_path(t: torch.Tensor) -> bool:
    """Whether ``t`` takes the CPU (numpy / numba) path rather than the torch one."""
    return t.device.type == "cpu" and not _TORCH_ON_CPU


def upper_indices(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the strict upper triangle (``np.triu_indices(n, 1)``)."""
    i, j = np.triu_indices(n, k=1)
    return torch.as_tensor(i, device=device), torch.as_tensor(j, device=device)


def to_square(v: torch.Tensor, n: int, diagonal: float = 0.0) -> torch.Tensor:
    """Symmetric ``(B, n, n)`` matrices from upper-triangle vectors ``(B, m)``."""
    if cpu_path(v):  # numpy fancy assignment: no intra-op thread overhead
        return torch.from_numpy(square_numpy(v.numpy(force=True), n, diagonal))
    i, j = upper_indices(n, v.device)
    out = torch.full((v.shape[0], n, n), diagonal, dtype=v.dtype, device=v.device)
    out[:, i, j] = v
    out[:, j, i] = v
    return out


def square_numpy(v: np.ndarray, n: int, diagonal: float = 0.0) -> np.ndarray:
    """:func:`to_square` for numpy ``(B, m)`` vectors."""
    i, j = np.triu_indices(n, k=1)
    out = np.empty((v.shape[0], n * n), dtype=v.dtype)
    out[:, i * n + j] = v
    out[:, j * n + i] = v
    out[:, np.arange(n) * (n + 1)] = diagonal
    return out.reshape(-1, n, n)


def average_ranks_sorted(s: torch.Tensor, tol: torch.Tensor | None = None) -> torch.Tensor:
    """Average-tie 0-based ranks of rows sorted ascending (neighbours within ``tol`` tie)."""
    b, m = s.shape
    pos = torch.arange(m, device=s.device).expand(b, m)
    starts = torch.ones_like(s, dtype=torch.bool)
    if tol is None:
        starts[:, 1:] = s[:, 1:] != s[:, :-1]
    else:
        starts[:, 1:] = (s[:, 1:] - s[:, :-1]) > tol
    ends = torch.ones_like(s, dtype=torch.bool)
    ends[:, :-1] = starts[:, 1:]
    first = torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), dim=1).values
    last_rev = torch.where(ends, pos, torch.full_like(pos, m - 1)).flip(1)
    last = torch.cummin(last_rev, dim=1).values.flip(1)
    return (first + last).to(s.dtype) / 2


def sort_rows(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the sorted rows and the sorting order.

    On the CPU numpy's introsort, several times faster than torch's sort; the order among
    ties does not matter to average ranks.
    """
    if cpu_path(v):
        a = v.numpy(force=True)
        order = np.argsort(a, axis=1)
        return torch.from_numpy(np.take_along_axis(a, order, axis=1)), torch.from_numpy(order)
    s, order = torch.sort(v, dim=1)
    return s, order


def sorted_rows(v: torch.Tensor) -> torch.Tensor:
    """Rows sorted ascending."""
    if cpu_path(v):
        return torch.from_numpy(np.sort(v.numpy(force=True), axis=1))
    return torch.sort(v, dim=1).values


def rank_minmax(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``minmax(rank(v))`` per row (average-tie ranks scaled to [0, 1]), and it sorted."""
    if cpu_path(v):
        r = _ranks_cpu(v, 0.0)
        lo = r.amin(dim=1, keepdim=True)
        x = (r - lo) / (r.amax(dim=1, keepdim=True) - lo)
        return x, sorted_rows(x)
    s, order = sort_rows(v)
    r = average_ranks_sorted(s)
    lo, hi = r[:, :1], r[:, -1:]
    x = (r - lo) / (hi - lo)
    return torch.empty_like(v).scatter_(1, order, x), x


def pooled_quantiles(v: torch.Tensor, q: np.ndarray) -> list[float]:
    """``np.quantile(v.ravel(), q)`` from the few order statistics needed (no full sort)."""
    flat = v.reshape(-1)
    m = flat.numel()
    q = np.asarray(q, dtype=np.float64)
    if np.all((q == 0) | (q == 1)):  # the extreme order statistics: min and max
        lo, hi = float(flat.amin()), float(flat.amax())
        return [lo if qi == 0 else hi for qi in q]
    virtual = (m - 1) * q
    prev = np.floor(virtual)
    need = sorted({int(i) for i in np.clip(np.concatenate([prev, prev + 1]), 0, m - 1)})
    if cpu_path(flat):
        part = np.partition(flat.numpy(force=True), need)
        stats = torch.as_tensor(part[need], dtype=flat.dtype)[None]
    else:
        stats = torch.stack([torch.kthvalue(flat, i + 1).values for i in need])[None]
    pos = {i: k for k, i in enumerate(need)}
    out = []
    for vi, pi in zip(virtual, prev, strict=True):
        a = stats[0, pos[int(min(max(pi, 0), m - 1))]]
        b = stats[0, pos[int(min(max(pi + 1, 0), m - 1))]]
        t = vi - pi
        diff = b - a
        out.append(float(b - diff * (1 - t) if t >= 0.5 else a + diff * t))
    return out


_saved_threads: list[int] = []


@contextlib.contextmanager
def small_op_threads(n_elements: int) -> Iterator[None]:
    """Run torch's CPU ops single-threaded for small tensors (restored on exit).

    Below about a million elements, torch's intra-op threads cost more than they save, and
    on a loaded machine their synchronisation costs milliseconds per operation. The numba
    kernels still use the saved thread count.
    """
    before = torch.get_num_threads()
    if n_elements >= 2**20 or before == 1:
        yield
        return
    torch.set_num_threads(1)
    _saved_threads.append(before)
    try:
        yield
    finally:
        _saved_threads.pop()
        torch.set_num_threads(before)


def _rank_rows(v, order, tol, out, start, stop):  # pragma: no cover - compiled by numba
    """Compute average-tie 1-based ranks of rows from their argsort.

    Sorted neighbours within ``tol[r]`` of each other tie (chained).
    """
    p = v.shape[1]
    for r in range(start, stop):
        t = 0
        while t < p:
            e = t + 1
            while e < p and v[r, order[r, e]] - v[r, order[r, e - 1]] <= tol[r]:
                e += 1
            rank = 0.5 * (t + e - 1) + 1.0
            for u in range(t, e):
                out[r, order[r, u]] = rank
            t = e


def _ranks_cpu(v: torch.Tensor, rtol: float) -> torch.Tensor:
    a = np.ascontiguousarray(v.numpy(force=True))
    order = np.argsort(a, axis=1)
    tol = rtol * np.abs(a).max(axis=1) if rtol else np.zeros(len(a))
    out = np.empty_like(a)
    kernel = numba_kernel(_rank_rows)
    if a.size < 2**20:
        kernel(a, order, tol, out, 0, len(a))
    else:
        run_split(kernel, len(a), a, order, tol, out)
    return torch.from_numpy(out)


def average_ranks(v: torch.Tensor, rtol: float = 0.0) -> torch.Tensor:
    """Average-tie 1-based ranks per row (``scipy.stats.rankdata`` on each row).

    With ``rtol > 0``, sorted neighbours closer than ``rtol * max|row|`` tie (sums of the
    same edge lengths in different orders differ in their last bits).
    """
    if cpu_path(v):
        return _ranks_cpu(v, rtol)
    s, order = sort_rows(v)
    tol = None if rtol == 0 else rtol * s.abs().amax(dim=1, keepdim=True)
    return torch.empty_like(v).scatter_(1, order, average_ranks_sorted(s, tol) + 1)


def minmax(v: torch.Tensor) -> torch.Tensor:
    """``(v - min) / (max - min)`` per row."""
    lo = v.amin(dim=1, keepdim=True)
    hi = v.amax(dim=1, keepdim=True)
    return (v - lo) / (hi - lo)


def quantiles_sorted(s: torch.Tensor, q: np.ndarray) -> torch.Tensor:
    """``np.quantile(row, q)`` (linear method) of each sorted row: shape ``(len(q), B)``.

    The virtual index, its floor, the weight and the interpolation are the operations numpy
    2.x performs (``(n - 1) q``; ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` where
    ``t >= 0.5``).
    """
    m = s.shape[1]
    q = np.asarray(q, dtype=np.float64)
    virtual = (m - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    gamma = virtual - prev
    prev_i = np.clip(prev, 0, m - 1).astype(np.int64)
    next_i = np.clip(nxt, 0, m - 1).astype(np.int64)
    a = s[:, torch.as_tensor(prev_i, device=s.device)].T  # (G, B)
    b = s[:, torch.as_tensor(next_i, device=s.device)].T
    t = torch.as_tensor(gamma, dtype=s.dtype, device=s.device)[:, None]
    diff = b - a
    low = a + diff * t
    high = b - diff * (1 - t)
    return torch.where(t >= 0.5, high, low)


def rgtm_lu(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear geo-topological transform with thresholds ``a <= b`` (broadcast).

    0 below ``a``, ``(x - a) / (b - a)`` in ``[a, b]``, 1 above ``b``; where ``a == b`` a
    step (``x <= a`` → 0, ``x > a`` → 1).
    """
    width = b - a
    ramp = ((x - a) / torch.where(width > 0, width, torch.ones_like(width))).clamp_(0, 1)
    return torch.where(width > 0, ramp, (x > a).to(x.dtype))


def rgtm_rsatoolbox(v: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Apply rsatoolbox 0.3.2's three in-place assignments in order (``rgtm``'s Notes)."""
    out = torch.where(v < a, torch.zeros_like(v), v)
    mid = (out >= a) & (out <= b)
    out = torch.where(mid, (out - a) / (b - a), out)
    return torch.where(out > b, torch.ones_like(out), out)


# ---------------------------------------------------------------------------------------------
# All-pairs shortest paths
# ---------------------------------------------------------------------------------------------
def _floyd_warshall_rows(d, start, stop):  # pragma: no cover - compiled by numba
    """In-place Floyd–Warshall on ``d[start:stop]`` (``inf`` = no edge).

    Row ``k`` is copied into its own buffer at step ``k`` (it does not change during that
    step), so the inner loop reads and writes distinct memory and compiles to a vectorised
    select (about 3x faster than ``min`` on an aliasing row view).
    """
    n = d.shape[1]
    rk = np.empty(n)
    for r in range(start, stop):
        w = d[r]
        for k in range(n):
            for j in range(n):
                rk[j] = w[k, j]
            for i in range(n):
                dik = w[i, k]
                if dik == np.inf:
                    continue
                ri = w[i]
                for j in range(n):
                    y = dik + rk[j]
                    x = ri[j]
                    ri[j] = y if y < x else x


def _geodesic_rows(w, keep, fill, out, n_bad, n, start, stop):  # pragma: no cover - numba
    """Fused CPU path: for each row, the graph of kept pairs, Floyd–Warshall, vector out.

    The full symmetric matrix is relaxed: at step ``k`` row ``k`` is copied into a buffer,
    and every row is relaxed through it with a select over the whole row, which compiles to
    SIMD code (2.3x faster, measured, than relaxing only the upper triangle, whose
    row-dependent loop start keeps the loop scalar).
    Unreachable pairs get ``fill`` or, when ``fill`` is NaN, the row's largest finite
    length plus 1; ``n_bad[r]`` counts them.
    """
    m = w.shape[1]
    d = np.empty((n, n))
    rk = np.empty(n)
    for r in range(start, stop):
        p = 0
        for i in range(n):
            d[i, i] = 0.0
            for j in range(i + 1, n):
                v = w[r, p] if keep[r, p] else np.inf
                d[i, j] = v
                d[j, i] = v
                p += 1
        for k in range(n):
            for j in range(n):
                rk[j] = d[k, j]
            for i in range(n):
                dik = rk[i]
                if dik == np.inf:
                    continue
                ri = d[i]
                for j in range(n):
                    y = dik + rk[j]
                    x = ri[j]
                    ri[j] = y if y < x else x
        p = 0
        top = 0.0
        bad = 0
        for i in range(n):
            for j in range(i + 1, n):
                v = d[i, j]
                if v == np.inf:
                    bad += 1
                elif v > top:
                    top = v
                out[r, p] = v
                p += 1
        n_bad[r] = bad
        if bad:
            value = top + 1.0 if fill != fill else fill
            for q in range(m):
                if out[r, q] == np.inf:
                    out[r, q] = value


def _rsatoolbox_rows(v, a, b, w, keep, const):  # pragma: no cover - compiled by numba
    """Apply rsatoolbox's geo-topological steps, then minmax, then the kept edges, per row.

    Elementwise in the order of rsatoolbox 0.3.2's in-place assignments (``x < a`` → 0;
    then ``a <= x <= b`` → ``(x - a) / (b - a)``; then ``x > b`` → 1), the row scaled to
    [0, 1], and an edge kept where ``0 < w < 1``. ``const[r]`` flags a constant row.
    """
    for r in range(v.shape[0]):
        lo = np.inf
        hi = -np.inf
        for p in range(v.shape[1]):
            x = v[r, p]
            if x < a:
                x = 0.0
            if x >= a and x <= b:
                x = (x - a) / (b - a)
            if x > b:
                x = 1.0
            w[r, p] = x
            lo = min(lo, x)
            hi = max(hi, x)
        if hi == lo:
            const[r] = True
            continue
        for p in range(v.shape[1]):
            y = (w[r, p] - lo) / (hi - lo)
            w[r, p] = y
            keep[r, p] = y < 1.0 and y != 0.0


def rsatoolbox_edges(
    v: torch.Tensor, a: float, b: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Weights and kept edges of rsatoolbox's two-step input on CPU in one compiled pass.

    Returns None when a row is constant (the caller's general path raises the error).
    """
    vn = np.ascontiguousarray(v.numpy(force=True), dtype=np.float64)
    w = np.empty_like(vn)
    keep = np.zeros(vn.shape, dtype=np.bool_)
    const = np.zeros(len(vn), dtype=np.bool_)
    numba_kernel(_rsatoolbox_rows)(vn, float(a), float(b), w, keep, const)
    if const.any():
        return None
    return torch.from_numpy(w).to(v.dtype), torch.from_numpy(keep)


def n_stimuli(m: int) -> int:
    """Return the number of stimuli of an RDM with ``m`` pairs."""
    return round((1 + math.sqrt(1 + 8 * m)) / 2)


def geodesic_cpu(
    w: torch.Tensor, keep: torch.Tensor, fill: float | None
) -> tuple[torch.Tensor, int]:
    """Shortest-path vectors of ``(B, m)`` edge weights kept where ``keep`` (CPU, numba)."""
    wn = np.ascontiguousarray(w.numpy(force=True), dtype=np.float64)
    kn = np.ascontiguousarray(keep.numpy(force=True))
    out = np.empty_like(wn)
    n_bad = np.zeros(len(wn), dtype=np.int64)
    kernel = numba_kernel(_geodesic_rows)
    fill_value = np.nan if fill is None else float(fill)
    n = n_stimuli(wn.shape[1])
    if len(wn) * n**3 < 10**7:  # small: the thread hand-off costs more than it saves
        kernel(wn, kn, fill_value, out, n_bad, n, 0, len(wn))
    else:
        if _saved_threads:
            torch.set_num_threads(_saved_threads[-1])
        try:
            run_split(kernel, len(wn), wn, kn, fill_value, out, n_bad, n)
        finally:
            if _saved_threads:
                torch.set_num_threads(1)
    return torch.from_numpy(out).to(w.dtype), int(n_bad.sum())


def _fw_numba():
    return numba_kernel(_floyd_warshall_rows)


def shortest_paths(w: torch.Tensor) -> torch.Tensor:
    """All-pairs shortest path lengths of ``(B, n, n)`` weight matrices (``inf``: no edge).

    Edges of weight 0 are edges (of length 0). Unreachable pairs stay ``inf``.
    """
    if cpu_path(w):
        d = np.ascontiguousarray(w.numpy(force=True)).copy()
        kernel = _fw_numba()
        if _saved_threads:
            torch.set_num_threads(_saved_threads[-1])
        try:
            run_split(kernel, d.shape[0], d)
        finally:
            if _saved_threads:
                torch.set_num_threads(1)
        return torch.from_numpy(d)
    return floyd_warshall_torch(w)


def floyd_warshall_torch(w: torch.Tensor) -> torch.Tensor:
    """Batched Floyd–Warshall in torch (symmetric ``w``), one preallocated buffer."""
    d = w.clone()
    buf = torch.empty_like(d)
    for k in range(d.shape[1]):
        row = d[:, k, :]  # symmetric: column k equals row k
        torch.add(row.unsqueeze(2), row.unsqueeze(1), out=buf)
        torch.minimum(d, buf, out=d)
    return d


def fill_disconnected(d: torch.Tensor, value: float | None) -> tuple[torch.Tensor, int]:
    """Replace ``inf`` (unreachable pairs) by ``value`` or, per matrix, max finite + 1."""
    bad = torch.isinf(d)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return d, 0
    if value is None:
        finite = torch.where(bad, torch.zeros_like(d), d)
        fill = finite.flatten(1).amax(dim=1) + 1
        return torch.where(bad, fill[:, None, None], d), n_bad
    return torch.where(bad, torch.full_like(d, value), d), n_bad


def knn_mask(x: torch.Tensor, k: int, allowed: torch.Tensor) -> torch.Tensor:
    """Symmetric k-nearest-neighbour edge mask of ``(B, n, n)`` distances.

    An edge is kept when either end is among the other's ``k`` nearest (ties broken by the
    lower index, as a stable sort does) among the ``allowed`` edges.
    """
    n = x.shape[1]
    k = min(k, n - 1)
    if k <= 0:
        return torch.zeros_like(allowed)
    cand = torch.where(allowed, x, torch.full_like(x, math.inf))
    order = torch.sort(cand, dim=2, stable=True).indices[:, :, :k]
    near = torch.zeros_like(allowed)
    near.scatter_(2, order, True)
    near &= allowed
    return near | near.transpose(1, 2)
