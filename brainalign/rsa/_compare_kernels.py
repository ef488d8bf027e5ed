"""Kernels for every RDM comparison method (no labels, no validation).

Vectors are upper triangles ``(..., n_pairs)`` in ``np.triu_indices(n, 1)`` order; NaN marks
a missing pair, and each comparison uses the pairs finite in both vectors.

Backends: on the CPU, the rank methods sort with numpy and run numba-compiled passes over the
sorted order (Kendall's tau-a in O(p log p), released from the GIL and split over threads),
and Pearson/cosine are plain numpy; on other devices everything is torch (tau-a as chunked
sign products). Whitened methods and Bures are torch everywhere. numba compiles on first use
and caches the machine code on disk (``cache=True``).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from brainalign.rsa._kernels import masked_cosine, needs_scaling, pow2_exponents, rankdata

VECTOR_METHODS = ("spearman", "pearson", "cosine", "kendall_tau_a", "rho_a")
STRUCTURED_METHODS = ("whitened_pearson", "whitened_cosine", "bures", "neg_riem_dist")
_TAU_A_CHUNK_ELEMENTS = 2**24  # elements per chunk of pair differences (torch tau-a)
_TAU_A_TORCH_MAX_PRODUCTS = 2**35  # above: tau-a on the CPU kernel even for GPU tensors


# ---------------------------------------------------------------------------------------------
# Kendall's tau-a
# ---------------------------------------------------------------------------------------------
def _dense_rank_rows(v, order, out):  # pragma: no cover - compiled by numba
    """Dense 0-based ranks of each row from its argsort (NaN sorted last → rank -1)."""
    b, p = v.shape
    for r in range(b):
        t = 0
        rank = 0
        while t < p:
            val = v[r, order[r, t]]
            if val != val:
                for u in range(t, p):
                    out[r, order[r, u]] = -1
                break
            e = t + 1
            while e < p and v[r, order[r, e]] == val:
                e += 1
            for u in range(t, e):
                out[r, order[r, u]] = rank
            rank += 1
            t = e


def _average_rank_rows(v, order, out):  # pragma: no cover - compiled by numba
    """Average-tie 1-based ranks of each row from its argsort (NaN sorted last → 0)."""
    b, p = v.shape
    for r in range(b):
        t = 0
        while t < p:
            val = v[r, order[r, t]]
            if val != val:
                for u in range(t, p):
                    out[r, order[r, u]] = 0.0
                break
            e = t + 1
            while e < p and v[r, order[r, e]] == val:
                e += 1
            rank = 0.5 * (t + e - 1) + 1.0
            for u in range(t, e):
                out[r, order[r, u]] = rank
            t = e


def _nan_outside(v: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``v`` as contiguous float64 rows with NaN wherever it is not finite or not in ``mask``."""
    v = np.asarray(v, dtype=np.float64)
    keep = np.isfinite(v) if mask is None else np.isfinite(v) & mask
    if not keep.all():
        v = np.where(keep, v, np.nan)
    return np.ascontiguousarray(v.reshape(-1, v.shape[-1]))


def dense_ranks(v: np.ndarray) -> np.ndarray:
    """Dense integer ranks (0, 1, 2, ... with ties sharing one) of the finite entries per row.

    Non-finite entries get ``-1``. Ranks of a subset of entries keep their order and ties, so
    the ranks of one RDM serve every comparison whatever the other RDM's missing pairs.
    """
    shape = np.shape(v)
    rows = _nan_outside(v, None)
    out = np.empty(rows.shape, dtype=np.int64)
    _numba("_dense_rank_rows")(rows, np.argsort(rows, axis=-1), out)
    return out.reshape(shape)


def average_ranks(v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Average-tie ranks (1-based) of the finite entries in ``mask`` per row; ``0`` elsewhere.

    Equals ``scipy.stats.rankdata(method="average")`` on each row's kept entries.
    """
    shape = np.broadcast_shapes(np.shape(v), np.shape(mask)) if mask is not None else np.shape(v)
    rows = _nan_outside(np.broadcast_to(v, shape), mask)
    out = np.empty(rows.shape, dtype=np.float64)
    _numba("_average_rank_rows")(rows, np.argsort(rows, axis=-1), out)
    return out.reshape(shape)


def _tau_a_row(rx, ry):  # pragma: no cover - compiled by numba
    """Tau-a of two vectors of dense integer ranks (O(m log m), Knight's algorithm).

    Counting sorts put the entries in (x, y) order; the discordant pairs are the inversions
    of y in that order (pairs tied in x are sorted by y and add none), counted with a
    Fenwick tree. Pairs tied in x or in y count as neither concordant nor discordant.
    """
    m = rx.shape[0]
    tot = m * (m - 1) // 2
    if tot == 0:
        return np.nan
    kx = rx.max() + 1
    ky = ry.max() + 1
    # stable counting sort by y ...
    cy = np.zeros(ky + 1, dtype=np.int64)
    for t in range(m):
        cy[ry[t] + 1] += 1
    y_ties = 0
    for v in range(1, ky + 1):
        y_ties += cy[v] * (cy[v] - 1) // 2
        cy[v] += cy[v - 1]
    by_y = np.empty(m, dtype=np.int64)
    for t in range(m):
        by_y[cy[ry[t]]] = t
        cy[ry[t]] += 1
    # ... then by x: lexicographic (x, y) order
    cx = np.zeros(kx + 1, dtype=np.int64)
    for t in range(m):
        cx[rx[t] + 1] += 1
    x_ties = 0
    for v in range(1, kx + 1):
        x_ties += cx[v] * (cx[v] - 1) // 2
        cx[v] += cx[v - 1]
    order = np.empty(m, dtype=np.int64)
    for t in range(m):
        k = by_y[t]
        order[cx[rx[k]]] = k
        cx[rx[k]] += 1
    joint = 0
    run = 1
    for t in range(1, m):
        if rx[order[t]] == rx[order[t - 1]] and ry[order[t]] == ry[order[t - 1]]:
            run += 1
        else:
            joint += run * (run - 1) // 2
            run = 1
    joint += run * (run - 1) // 2
    tree = np.zeros(ky + 1, dtype=np.int64)
    discordant = 0
    for t in range(m):
        v = ry[order[t]] + 1
        below = 0  # earlier entries with y <= this one
        i = v
        while i > 0:
            below += tree[i]
            i -= i & -i
        discordant += t - below
        i = v
        while i <= ky:
            tree[i] += 1
            i += i & -i
    # total = concordant + discordant + x_ties + y_ties - joint
    con_minus_dis = tot - x_ties - y_ties + joint - 2 * discordant
    return min(1.0, max(-1.0, con_minus_dis / tot))


def _tau_a_rows(rx, ry, ia, ib, out, start, stop):  # pragma: no cover - compiled by numba
    """Tau-a of the row pairs ``(rx[ia[k]], ry[ib[k]])`` for ``k`` in ``start:stop``.

    Only entries ranked in both rows (rank >= 0) count.
    """
    for k in range(start, stop):
        x = rx[ia[k]]
        y = ry[ib[k]]
        keep = (x >= 0) & (y >= 0)
        out[k] = _tau_a_row(x[keep], y[keep])


def _rank_dot_rows(ra, vb, ob, ia, ib, dot, sq, start, stop):  # pragma: no cover - numba
    """Accumulate rank products of complete rows, pair by pair.

    ``dot[k] = Σ ra[ia[k]] · (rank(vb[ib[k]]) - mean)`` and ``sq[k]`` is the squared norm
    of the centred average-tie ranks of ``vb[ib[k]]``. Walks ``vb``'s sorted order (``ob``)
    once, so its ranks are never written out.
    """
    p = vb.shape[1]
    mean = 0.5 * (p + 1)
    for k in range(start, stop):
        a = ra[ia[k]]
        v = vb[ib[k]]
        o = ob[ib[k]]
        acc = 0.0
        ss = 0.0
        t = 0
        while t < p:
            val = v[o[t]]
            e = t + 1
            while e < p and v[o[e]] == val:
                e += 1
            r = 0.5 * (t + e - 1) + 1.0 - mean
            part = 0.0
            for u in range(t, e):
                part += a[o[u]]
            acc += r * part
            ss += (e - t) * r * r
            t = e
        dot[k] = acc
        sq[k] = ss


def _pairs(lead_a: tuple, lead_b: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Row indices into the flattened leading dims of two broadcastable stacks."""
    shape = np.broadcast_shapes(lead_a, lead_b)
    ia = np.broadcast_to(np.arange(math.prod(lead_a)).reshape(lead_a), shape).ravel()
    ib = np.broadcast_to(np.arange(math.prod(lead_b)).reshape(lead_b), shape).ravel()
    return np.ascontiguousarray(ia), np.ascontiguousarray(ib), shape


_NUMBA_FUNCS = (
    "_tau_a_row",
    "_tau_a_rows",
    "_rank_dot_rows",
    "_dense_rank_rows",
    "_average_rank_rows",
)
_compiled: dict = {}
_compile_lock = threading.Lock()


def _numba(name: str):
    """Return the compiled kernel ``name``, compiling all of them once per process.

    numba caches the machine code on disk (``cache=True``), so later processes only load
    it. numba is imported here, not at import time, so ``import brainalign`` stays light.
    """
    with _compile_lock:
        if not _compiled:
            import numba

            jit = numba.njit(cache=True, nogil=True)
            g = globals()
            for func in _NUMBA_FUNCS:
                g[func] = jit(g[func])  # jitted callees must be module globals for numba
                _compiled[func] = g[func]
    return _compiled[name]


_compiled_funcs: dict = {}


def numba_kernel(func):
    """Return ``func`` compiled by numba (``nogil``, cached on disk), once per process.

    For kernels outside this module (tRSA's, k-NN's); numba is imported on first use so
    ``import brainalign`` stays light.
    """
    key = (func.__module__, func.__qualname__)
    with _compile_lock:
        if key not in _compiled_funcs:
            import numba

            _compiled_funcs[key] = numba.njit(cache=True, nogil=True)(func)
    return _compiled_funcs[key]


_pool: dict = {}


def run_split(kernel, n: int, *args) -> None:
    """Run ``kernel(*args, start, stop)`` over ``range(n)`` in threads (numba drops the GIL)."""
    n_threads = min(n, torch.get_num_threads())
    if n_threads <= 1 or n < 8:
        kernel(*args, 0, n)
        return
    # One persistent pool (no thread start-up per call), renewed in forked children.
    if _pool.get("size", 0) < n_threads or _pool.get("pid") != os.getpid():
        _pool.update(size=n_threads, pid=os.getpid(), pool=ThreadPoolExecutor(n_threads))
    bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
    jobs = [
        _pool["pool"].submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(n_threads)
    ]
    for job in jobs:
        job.result()


def tau_a_numba(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Kendall's tau-a of the rows of ``x`` and ``y`` (broadcast) over ``mask``, with numba.

    Parameters
    ----------
    x, y : ndarray, shape (..., p)
        Vectors; non-finite entries are left out.
    mask : ndarray of bool, shape (..., p), optional
        Further entries to leave out (where False).

    Returns
    -------
    tau : ndarray, shape (...)
        ``(concordant - discordant) / (m (m - 1) / 2)`` with ``m`` entries kept; pairs tied
        in either vector count as neither, as in rsatoolbox ``tau-a``.
    """
    rx, ry = dense_ranks(x), dense_ranks(y)
    if mask is not None:
        rx = np.where(mask, rx, -1)
    p = rx.shape[-1]
    ia, ib, shape = _pairs(rx.shape[:-1], ry.shape[:-1])
    out = np.empty(len(ia))
    rx2, ry2 = (np.ascontiguousarray(r.reshape(-1, p)) for r in (rx, ry))
    run_split(_numba("_tau_a_rows"), len(ia), rx2, ry2, ia, ib, out)
    return out.reshape(shape)


def rank_correlation_complete(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and the rho-a numerator for complete vectors, broadcast over rows.

    The side with fewer rows is ranked once; the other is only sorted, and a compiled pass
    over its sorted order accumulates the products (no rank arrays for the many models).

    Returns
    -------
    rho : ndarray
        Spearman correlations, shape ``broadcast(a, b)[:-1]``.
    dot : ndarray
        ``Σ (r_a - r̄)(r_b - r̄)`` (for rho-a).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if math.prod(a.shape[:-1]) > math.prod(b.shape[:-1]):
        a, b = b, a
    p = a.shape[-1]
    ra = average_ranks(a).reshape(-1, p)
    ra -= 0.5 * (p + 1)
    sq_a = np.einsum("ij,ij->i", ra, ra)
    vb = np.ascontiguousarray(b.reshape(-1, p))
    ob = np.argsort(vb, axis=-1)
    ia, ib, shape = _pairs(a.shape[:-1], b.shape[:-1])
    dot, sq_b = np.empty(len(ia)), np.empty(len(ia))
    run_split(_numba("_rank_dot_rows"), len(ia), ra, vb, ob, ia, ib, dot, sq_b)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant RDMs: rho undefined
        rho = dot / np.sqrt(sq_a[ia] * sq_b)
    return rho.reshape(shape), dot.reshape(shape)


def tau_a_torch(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    *,
    chunk_elements: int = _TAU_A_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Kendall's tau-a as sums of sign products over all pairs, in chunks (for GPUs).

    Parameters
    ----------
    x, y : torch.Tensor, shape (b, p)
        Vectors.
    mask : torch.Tensor of bool, shape (b, p)
        The entries that count.
    chunk_elements : int
        Memory knob: pair differences held at once.

    Returns
    -------
    tau : torch.Tensor, shape (b,)
        Tau-a per row, in float64.
    """
    b, p = x.shape
    num = torch.zeros(b, dtype=torch.float64, device=x.device)
    step = max(1, chunk_elements // max(1, b * p))
    for s in range(0, p, step):
        e = min(p, s + step)
        sx = torch.sign(x[:, s:e, None] - x[:, None, :])
        sy = torch.sign(y[:, s:e, None] - y[:, None, :])
        both = mask[:, s:e, None] & mask[:, None, :]
        num += (sx * sy * both).sum(dim=(-2, -1), dtype=torch.float64)
    m = mask.sum(-1).to(torch.float64)
    tau = num / (m * (m - 1))  # ordered pairs counted twice in num and here
    return tau.clamp(-1.0, 1.0)


def tau_a(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Tau-a over the last dim (broadcast): numba on the CPU, torch sign products elsewhere.

    The sign products cost O(p²) per comparison; past :data:`_TAU_A_TORCH_MAX_PRODUCTS` in
    all, the O(p log p) CPU kernel is faster even with the transfer, and is used instead.
    """
    rows = math.prod(torch.broadcast_shapes(a.shape, b.shape)[:-1])
    if a.device.type == "cpu" or rows * a.shape[-1] ** 2 > _TAU_A_TORCH_MAX_PRODUCTS:
        out = tau_a_numba(a.numpy(force=True), b.numpy(force=True))
        return torch.from_numpy(out).to(device=a.device, dtype=a.dtype)
    a, b = torch.broadcast_tensors(a, b)
    shape = a.shape[:-1]
    mask = torch.isfinite(a) & torch.isfinite(b)
    a2, b2, m2 = (t.reshape(-1, t.shape[-1]) for t in (a, b, mask))
    a2 = torch.where(m2, a2, torch.zeros_like(a2))
    b2 = torch.where(m2, b2, torch.zeros_like(b2))
    return tau_a_torch(a2, b2, m2).to(a.dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Rank correlation without tie correction
# ---------------------------------------------------------------------------------------------
def _ranks(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average-tie ranks over ``mask``: numpy's sort on the CPU (faster there), else torch."""
    if v.device.type == "cpu":
        r = average_ranks(v.numpy(force=True), mask.numpy(force=True))
        return torch.from_numpy(r).to(v.dtype)
    return rankdata(v, mask)


def _complete(a: torch.Tensor, b: torch.Tensor, method: str) -> torch.Tensor:
    """Rank/correlation methods for complete vectors: each side transformed once, unbroadcast.

    One data RDM against many models ranks (and centres) the data RDM once, as rsatoolbox
    does, instead of once per model.
    """
    if method in ("spearman", "rho_a"):
        a = _ranks(a, torch.ones_like(a, dtype=torch.bool))
        b = _ranks(b, torch.ones_like(b, dtype=torch.bool))
    if method != "cosine":
        a = a - a.mean(-1, keepdim=True)
        b = b - b.mean(-1, keepdim=True)
    if method == "rho_a":
        m = float(a.shape[-1])
        return 12.0 * (a * b).sum(-1) / (m**3 - m)
    return (a * b).sum(-1) / torch.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def _vector_methods_numpy(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Compute the rank and correlation methods on the CPU, in numpy (float64).

    Single-threaded numpy beats torch's thread pool for these memory-bound passes on the
    CPU, and is immune to oversubscribed cores. Complete inputs stay unbroadcast.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.isfinite(a).all() and np.isfinite(b).all():
        if method in ("spearman", "rho_a"):
            rho, dot = rank_correlation_complete(a, b)
            m = float(a.shape[-1])
            return rho if method == "spearman" else 12.0 * dot / (m**3 - m)
        if method != "cosine":
            a = a - a.mean(-1, keepdims=True)
            b = b - b.mean(-1, keepdims=True)
        num = np.einsum("...i,...i->...", a, b)
        return num / np.sqrt(np.einsum("...i,...i->...", a, a) * np.einsum("...i,...i->...", b, b))
    else:
        a, b = np.broadcast_arrays(a, b)
        mask = np.isfinite(a) & np.isfinite(b)
        w = mask.astype(np.float64)
        m = w.sum(-1)
        if method in ("spearman", "rho_a"):
            a, b = average_ranks(a, mask), average_ranks(b, mask)
        else:
            a, b = np.where(mask, a, 0.0), np.where(mask, b, 0.0)
        if method != "cosine":
            a = (a - a.sum(-1, keepdims=True) / m[..., None]) * w
            b = (b - b.sum(-1, keepdims=True) / m[..., None]) * w
    num = (a * b).sum(-1)
    if method == "rho_a":
        return 12.0 * num / (m**3 - m)
    return num / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def rho_a(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Spearman's rho-a: ``12 Σ (r_a - r̄)(r_b - r̄) / (m³ - m)`` with average-tie ranks."""
    w = mask.to(a.dtype)
    m = w.sum(-1)
    ra = _ranks(a, mask)
    rb = _ranks(b, mask)
    ra = (ra - (ra.sum(-1, keepdim=True) / m[..., None])) * w
    rb = (rb - (rb.sum(-1, keepdim=True) / m[..., None])) * w
    return 12.0 * (ra * rb).sum(-1) / (m**3 - m)


# ---------------------------------------------------------------------------------------------
# Whitened comparisons (the covariance of distance estimates, Diedrichsen et al. 2021)
# ---------------------------------------------------------------------------------------------
def _centered_second_moments(
    v: torch.Tensor, mask: torch.Tensor, n: int, sigma_diag: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Double-centred second moments ``G = -D/2`` over the valid pairs, optionally scaled.

    With missing pairs the row/column effects ``c`` are fitted to the valid entries: with
    ``w`` the valid off-diagonal entries of ``-D/2`` (diagonal ``0``), ``c`` solves
    ``M c = Σ_{j valid} w_ij`` with ``M = diag(1 + deg/2) + A/2`` (``A`` the adjacency of
    valid pairs); then ``G_ij = w_ij - (c_i + c_j)/2`` and ``G_ii = -c_i``. For complete RDMs
    this is the usual double centring. ``sigma_diag`` (pattern variances) then scales
    ``G_ij / sqrt(s_i s_j)``, as rsatoolbox does for a 1-D ``sigma_k``.

    Returns
    -------
    offdiag : torch.Tensor, shape (b, p)
        ``sqrt(2) G_ij`` on valid pairs, zero elsewhere.
    diag : torch.Tensor, shape (b, n)
        ``G_ii``.
    """
    bsz = v.shape[0]
    dt, dev = v.dtype, v.device
    i, j = torch.triu_indices(n, n, offset=1, device=dev)
    w = torch.where(mask, -0.5 * v, torch.zeros_like(v))
    rhs = torch.zeros(bsz, n, dtype=dt, device=dev)
    rhs.index_add_(1, i, w).index_add_(1, j, w)
    shared = bool((mask == mask[:1]).all())  # usually one missing-pair pattern for all
    wm = (mask[:1] if shared else mask).to(dt)
    mat = torch.zeros(wm.shape[0], n, n, dtype=dt, device=dev)
    mat[:, i, j] = 0.5 * wm
    mat[:, j, i] = 0.5 * wm
    deg = torch.zeros(wm.shape[0], n, dtype=dt, device=dev)
    deg.index_add_(1, i, wm).index_add_(1, j, wm)
    mat = mat + torch.diag_embed(1.0 + 0.5 * deg)
    if shared:
        c = torch.linalg.solve(mat[0], rhs.T).T
    else:
        c = torch.linalg.solve(mat, rhs[..., None])[..., 0]
    off = (w - 0.5 * (c[:, i] + c[:, j])) * wm
    diag = -c
    if sigma_diag is not None:
        root = torch.sqrt(sigma_diag)
        off = off / (root[i] * root[j])
        diag = diag / sigma_diag
    return math.sqrt(2.0) * off, diag


def _rdm_entry_covariance(sigma_k: torch.Tensor) -> torch.Tensor:
    """Covariance of the distance estimates, up to scale: ``V = Ξ ∘ Ξ``, ``Ξ = C Σ Cᵀ``.

    ``C`` is the ``(n_pairs, n)`` contrast matrix (``+1`` at ``i``, ``-1`` at ``j`` for pair
    ``(i, j)``), so ``Ξ_(ij),(kl) = Σ_ik - Σ_il - Σ_jk + Σ_jl``.
    """
    n = sigma_k.shape[-1]
    i, j = torch.triu_indices(n, n, offset=1, device=sigma_k.device)
    si, sj = sigma_k[i], sigma_k[j]
    xi = si[:, i] - si[:, j] - sj[:, i] + sj[:, j]
    return xi * xi


def _whiten_complete(
    v: torch.Tensor, n: int, *, center: bool, sigma_k: torch.Tensor | None
) -> torch.Tensor:
    """Map complete RDM vectors to whitened coordinates ``(..., q)``.

    Cosines of these coordinates are the whitened similarities.
    """
    lead, p = v.shape[:-1], v.shape[-1]
    v2 = v.reshape(-1, p)
    if center:
        v2 = v2 - v2.mean(-1, keepdim=True)
    if sigma_k is None or sigma_k.ndim == 1:
        # Complete RDMs: the double-centred second moments, flattened; the Frobenius inner
        # product counts each off-diagonal entry twice, i.e. weighs it by sqrt(2) squared.
        i, j = torch.triu_indices(n, n, offset=1, device=v2.device)
        where = torch.full((n, n), p, dtype=torch.long, device=v2.device)  # diagonal → 0
        where[i, j] = torch.arange(p, device=v2.device)
        where[j, i] = where[i, j]
        padded = torch.cat([v2, torch.zeros_like(v2[:, :1])], dim=-1)
        g = -0.5 * padded[:, where.reshape(-1)].reshape(-1, n, n)
        rows = g.mean(-1, keepdim=True)
        g = g - rows - rows.transpose(-1, -2) + rows.mean(-2, keepdim=True)
        if sigma_k is not None:
            root = torch.sqrt(sigma_k)
            g = g / (root[:, None] * root[None, :])
        out = g.reshape(-1, n * n)
    else:
        chol = torch.linalg.cholesky(_rdm_entry_covariance(sigma_k))
        out = torch.linalg.solve_triangular(chol, v2.T, upper=False).T
    return out.reshape(*lead, out.shape[-1])


def _second_moments_numpy(v: np.ndarray, n: int, sigma_diag: np.ndarray | None) -> np.ndarray:
    """Flattened double-centred second moments ``(rows, n²)`` of complete RDM vectors (CPU).

    The same quantity as :func:`_whiten_complete` computes in torch, in single-threaded numpy
    (faster on the CPU for these memory-bound passes).
    """
    p = v.shape[-1]
    i, j = np.triu_indices(n, 1)
    where = np.full((n, n), p)
    where[i, j] = where[j, i] = np.arange(p)
    padded = np.concatenate([v, np.zeros((v.shape[0], 1))], axis=-1)
    g = -0.5 * np.take(padded, where.ravel(), axis=-1).reshape(-1, n, n)
    rows = g.mean(-1, keepdims=True)
    g = g - rows - np.swapaxes(rows, -1, -2) + rows.mean(-2, keepdims=True)
    if sigma_diag is not None:
        root = np.sqrt(sigma_diag)
        g = g / np.outer(root, root)
    return g.reshape(-1, n * n)


def _whitened_complete_numpy(
    a: np.ndarray, b: np.ndarray, n: int, *, center: bool, sigma_diag: np.ndarray | None
) -> np.ndarray:
    """Whitened cosine / correlation of complete vectors with ``Σ`` diagonal (CPU, numpy)."""
    out = []
    for v in (a, b):
        lead, p = v.shape[:-1], v.shape[-1]
        v2 = np.asarray(v, dtype=np.float64).reshape(-1, p)
        if center:
            v2 = v2 - v2.mean(-1, keepdims=True)
        out.append(_second_moments_numpy(v2, n, sigma_diag).reshape(*lead, n * n))
    wa, wb = out
    dot = np.einsum("...i,...i->...", wa, wb)
    norms = np.einsum("...i,...i->...", wa, wa) * np.einsum("...i,...i->...", wb, wb)
    return dot / np.sqrt(norms)


def whitened(
    a: torch.Tensor,
    b: torch.Tensor,
    mask: torch.Tensor | None,
    n: int,
    *,
    center: bool,
    sigma_k: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cosine (``center=False``) or correlation of RDM vectors whitened by ``V``.

    Equals ``aᵀ V⁻¹ b / sqrt(aᵀ V⁻¹ a · bᵀ V⁻¹ b)`` on the valid pairs, with ``a``, ``b``
    centred first for the correlation. Without ``sigma_k`` (``Σ = I``) this is the Frobenius
    cosine of double-centred second moments (cheap); a 1-D ``sigma_k`` scales those second
    moments by the pattern variances (rsatoolbox's 1-D ``sigma_k`` path); a 2-D ``sigma_k``
    builds ``V`` densely (``n_pairs²`` memory) and whitens by its Cholesky factor.
    ``mask=None`` means complete vectors, which stay unbroadcast (each side whitened once).
    """
    if mask is None:  # complete RDMs: whiten each side once, then broadcast the products
        wa, wb = (_whiten_complete(v, n, center=center, sigma_k=sigma_k) for v in (a, b))
        num = (wa * wb).sum(-1)
        return num / torch.sqrt((wa * wa).sum(-1) * (wb * wb).sum(-1))
    a, b = torch.broadcast_tensors(a, b)
    shape = a.shape[:-1]
    p = a.shape[-1]
    a2, b2, m2 = (t.reshape(-1, p) for t in (a, b, mask.expand(a.shape)))
    if center:
        w = m2.to(a2.dtype)
        cnt = w.sum(-1, keepdim=True)
        a2 = a2 - (a2 * w).sum(-1, keepdim=True) / cnt
        b2 = b2 - (b2 * w).sum(-1, keepdim=True) / cnt
    if sigma_k is None or sigma_k.ndim == 1:
        oa, da = _centered_second_moments(a2, m2, n, sigma_k)
        ob, db = _centered_second_moments(b2, m2, n, sigma_k)
        num = (oa * ob).sum(-1) + (da * db).sum(-1)
        den = torch.sqrt(
            ((oa * oa).sum(-1) + (da * da).sum(-1)) * ((ob * ob).sum(-1) + (db * db).sum(-1))
        )
        return (num / den).reshape(shape)
    v_full = _rdm_entry_covariance(sigma_k)
    out = torch.empty(a2.shape[0], dtype=a2.dtype, device=a2.device)
    patterns, inverse = torch.unique(m2, dim=0, return_inverse=True)
    for k in range(patterns.shape[0]):
        rows = torch.nonzero(inverse == k).flatten()
        keep = torch.nonzero(patterns[k]).flatten()
        chol = torch.linalg.cholesky(v_full[keep][:, keep])
        rhs = torch.cat([a2[rows][:, keep], b2[rows][:, keep]], dim=0).T
        white = torch.linalg.solve_triangular(chol, rhs, upper=False).T
        wa, wb = white[: len(rows)], white[len(rows) :]
        out[rows] = (wa * wb).sum(-1) / torch.sqrt((wa * wa).sum(-1) * (wb * wb).sum(-1))
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Bures similarity of the centred kernel matrices
# ---------------------------------------------------------------------------------------------
def _helmert(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Orthonormal basis ``(n, n - 1)`` of the vectors orthogonal to ``1`` (Helmert)."""
    k = torch.arange(1, n, dtype=dtype, device=device)
    rows = torch.arange(n, device=device)[:, None]
    cols = torch.arange(1, n, device=device)[None, :]
    q = (rows < cols).to(dtype) - (rows == cols).to(dtype) * k
    return q / torch.sqrt(k * (k + 1))


def _centered_kernel(v: torch.Tensor, n: int) -> torch.Tensor:
    """``Qᵀ (-D/2) Q`` from RDM vectors ``(b, p)`` → ``(b, n - 1, n - 1)``.

    ``Q`` spans the complement of ``1``, so this is the double-centred kernel ``H (-D/2) H``
    without its structural zero eigenvalue (same spectrum otherwise, same trace).
    """
    i, j = torch.triu_indices(n, n, offset=1, device=v.device)
    g = torch.zeros((*v.shape[:-1], n, n), dtype=v.dtype, device=v.device)
    g[..., i, j] = -0.5 * v
    g[..., j, i] = -0.5 * v
    q = _helmert(n, v.dtype, v.device)
    return q.T @ g @ q


def bures(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """Bures similarity ``tr((A½ B A½)½) / sqrt(tr A tr B)`` of the centred kernels.

    ``A``, ``B`` are the double-centred ``-D/2`` of complete RDM vectors (= rsatoolbox
    ``bures``); negative eigenvalues (non-Euclidean RDMs) are clipped to zero before square
    roots. The kernels are taken in the basis orthogonal to ``1``, which drops the zero
    eigenvalue that double centring always creates: its rounding noise would otherwise enter
    through a square root at the ``sqrt(eps)`` level. Computed in float64 whatever the
    inputs' dtype (small n x n eigenproblems): the square roots of float32 eigenvalues would
    leave about ``sqrt(eps32)`` (3e-4) of error; the result is cast back.
    """
    dt = a.dtype
    a, b = a.to(torch.float64), b.to(torch.float64)
    ga = _centered_kernel(a, n)  # unbroadcast: one square root per data RDM
    gb = _centered_kernel(b, n)
    evals, evecs = torch.linalg.eigh(ga)
    root = (evecs * torch.sqrt(evals.clamp_min(0.0))[..., None, :]) @ evecs.transpose(-1, -2)
    inner = root @ gb @ root
    inner = 0.5 * (inner + inner.transpose(-1, -2))
    num = torch.sqrt(torch.linalg.eigvalsh(inner).clamp_min(0.0)).sum(-1)
    tra = torch.diagonal(ga, dim1=-2, dim2=-1).sum(-1)
    trb = torch.diagonal(gb, dim1=-2, dim2=-1).sum(-1)
    return (num / torch.sqrt(tra * trb)).to(dt)


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------
def scale_rows_pow2(v: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Divide each row of ``v`` by a power of two when its magnitude leaves the safe range.

    Every comparison method is invariant to a positive scale of either RDM, so a row whose
    largest finite magnitude lies outside ``2**(+-maxexp / 4)`` of ``dtype`` (float32:
    about 2.3e-10 to 4.3e9) is brought to a largest magnitude in [0.5, 1): exactly (a power
    of two, in float64), before the cast to ``dtype`` and the sums of squares that would
    overflow or underflow. Rows in the safe range are left as they are.

    Parameters
    ----------
    v : ndarray, float64, shape (..., n_pairs)
        RDM vectors; non-finite entries (missing pairs) are ignored and kept.
    dtype : torch.dtype
        The compute dtype.

    Returns
    -------
    v : ndarray
        ``v`` itself, or a scaled copy.
    """
    if v.size == 0:
        return v
    k = pow2_exponents(v, (-1,))
    if not needs_scaling(k, dtype):
        return v
    return np.ldexp(v, -k)


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every entry is finite (numpy on the CPU: one pass, single-threaded)."""
    if t.device.type == "cpu":
        return bool(np.isfinite(t.numpy(force=True)).all())
    return bool(torch.isfinite(t).all())


def compare_vectors(
    a: torch.Tensor,
    b: torch.Tensor,
    method: str,
    *,
    n_stimuli: int | None = None,
    sigma_k: torch.Tensor | None = None,
) -> torch.Tensor:
    """Compare RDM vectors ``(..., n_pairs)`` (broadcast) over the pairs finite in both.

    Parameters
    ----------
    a, b : torch.Tensor, shape (..., n_pairs)
        Upper triangles; NaN marks a missing pair.
    method : str
        One of :data:`VECTOR_METHODS` or :data:`STRUCTURED_METHODS`.
    n_stimuli : int, optional
        Number of stimuli, needed by the whitened methods and ``"bures"``.
    sigma_k : torch.Tensor, shape (n,) or (n, n), optional
        Pattern (co)variances for the whitened methods and ``"neg_riem_dist"``.

    Returns
    -------
    similarity : torch.Tensor, shape (...)
        One value per broadcast element.
    """
    if method == "kendall_tau_a":
        return tau_a(a, b)
    if method in VECTOR_METHODS:
        if a.device.type == "cpu":
            out = _vector_methods_numpy(a.numpy(force=True), b.numpy(force=True), method)
            return torch.from_numpy(np.asarray(out)).to(a.dtype)
        return vector_methods_torch(a, b, method)
    if n_stimuli is None:
        raise AssertionError(f"{method} needs n_stimuli")  # guarded by the public function
    if method == "bures":
        return bures(a, b, n_stimuli)  # complete (checked by the public function)
    if method == "neg_riem_dist":
        return neg_riemannian(a, b, n_stimuli, sigma_k)  # complete (checked likewise)
    centered = method == "whitened_pearson"
    if _all_finite(a) and _all_finite(b):
        if a.device.type == "cpu" and (sigma_k is None or sigma_k.ndim == 1):
            sd = None if sigma_k is None else sigma_k.numpy(force=True).astype(np.float64)
            out = _whitened_complete_numpy(
                a.numpy(force=True), b.numpy(force=True), n_stimuli, center=centered, sigma_diag=sd
            )
            return torch.from_numpy(np.asarray(out)).to(a.dtype)
        return whitened(a, b, None, n_stimuli, center=centered, sigma_k=sigma_k)
    a, b = torch.broadcast_tensors(a, b)
    mask = torch.isfinite(a) & torch.isfinite(b)
    a = torch.where(mask, a, torch.zeros_like(a))
    b = torch.where(mask, b, torch.zeros_like(b))
    return whitened(a, b, mask, n_stimuli, center=centered, sigma_k=sigma_k)


def vector_methods_torch(a: torch.Tensor, b: torch.Tensor, method: str) -> torch.Tensor:
    """Spearman, Pearson, cosine and rho-a in torch (the path for GPUs).

    Complete inputs stay unbroadcast (each side ranked and centred once); with missing pairs
    the ranks are taken over the pairs valid in both, per comparison.
    """
    if _all_finite(a) and _all_finite(b):
        return _complete(a, b, method)
    a, b = torch.broadcast_tensors(a, b)
    mask = torch.isfinite(a) & torch.isfinite(b)
    a = torch.where(mask, a, torch.zeros_like(a))
    b = torch.where(mask, b, torch.zeros_like(b))
    if method == "spearman":
        return masked_cosine(_ranks(a, mask), _ranks(b, mask), mask, center=True)
    if method == "pearson":
        return masked_cosine(a, b, mask, center=True)
    if method == "cosine":
        return masked_cosine(a, b, mask, center=False)
    return rho_a(a, b, mask)


# ---------------------------------------------------------------------------------------------
# Negative Riemannian distance of second moments (rsatoolbox ``neg_riem_dist``)
# ---------------------------------------------------------------------------------------------
_RIEM_MAX_ITER = 500
_RIEM_GRID = torch.arange(-30.0, 30.5, 1.0).tolist()  # log noise-to-model weight, first pass
_RIEM_GOLDEN_ITER = 64  # golden-section steps: bracket 2 * 0.618**64 ~ 1e-13 wide


def _reference_second_moments(v: torch.Tensor, n: int) -> torch.Tensor:
    """Second moments ``(..., n - 1, n - 1)`` relative to stimulus 0 from RDM vectors.

    ``G_kl = (d_0k + d_0l - d_kl) / 2`` for ``k, l = 1 .. n - 1``: the inner products of the
    patterns minus the first pattern when ``d`` are squared distances (rsatoolbox's RDM-to-G
    transform of ``compare_neg_riemannian_distance``).
    """
    i, j = torch.triu_indices(n, n, offset=1, device=v.device)
    d = torch.zeros((*v.shape[:-1], n, n), dtype=v.dtype, device=v.device)
    d[..., i, j] = v
    d[..., j, i] = v
    d0 = d[..., 0, 1:]
    return 0.5 * (d0[..., :, None] + d0[..., None, :] - d[..., 1:, 1:])


def _riem_spread(t: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``min_c Σ_i log² λ_i(c (A + e^t S))`` = ``Σ_i (ℓ_i - mean ℓ)²``, ``ℓ = log λ(A + e^t S)``.

    ``t``: (B,); inf where a matrix is not positive definite.
    """
    lam = torch.linalg.eigvalsh(a + torch.exp(t)[:, None, None] * s)
    ok = (lam > 0).all(-1)
    ell = torch.log(torch.where(lam > 0, lam, torch.ones_like(lam)))
    h = ((ell - ell.mean(-1, keepdim=True)) ** 2).sum(-1)
    return torch.where(ok & torch.isfinite(h), h, torch.full_like(h, float("inf")))


def neg_riemannian(
    a: torch.Tensor, b: torch.Tensor, n: int, sigma_k: torch.Tensor | None = None
) -> torch.Tensor:
    """Negative Riemannian distance of RDM vectors (= rsatoolbox ``neg_riem_dist``).

    With ``G_a``, ``G_b`` the second moments of :func:`_reference_second_moments` and
    ``Σ̂ = P Σ Pᵀ`` (``P = [-1 | I]``, ``Σ`` = ``sigma_k``, default the identity), returns
    ``-min_θ sqrt(Σ_i log² λ_i(e^θ0 G_a + e^θ1 Σ̂, G_b))``: ``G_b`` (the data) is fitted by a
    scaled ``G_a`` (the model) plus scaled pattern noise, in the affine-invariant metric.

    rsatoolbox minimises over ``θ`` by Nelder-Mead from ``θ = 0`` (tolerance 1e-4). Here the
    overall scale is solved in closed form (the log-eigenvalues shift by ``log c``, so the
    optimum centres them), which leaves one parameter, the noise-to-model weight ``e^t``:
    it is searched on a grid ``t = -30 … 30`` and refined by golden-section search in the
    best grid cell to a bracket of ~1e-13, for all comparisons at once (batched
    ``eigvalsh``). The value is the minimum to rounding, and the global one over the grid
    (Nelder-Mead finds a local one). ``G_b`` is whitened by its Cholesky factor first; NaN
    where ``G_b`` is not positive definite, or ``G_a + e^t Σ̂`` is not for any ``t``.
    """
    ga = _reference_second_moments(a, n)
    gb = _reference_second_moments(b, n)
    ga, gb = torch.broadcast_tensors(ga, gb)
    shape, m = ga.shape[:-2], n - 1
    ga, gb = ga.reshape(-1, m, m), gb.reshape(-1, m, m)
    if sigma_k is None:
        sig = torch.eye(n, dtype=a.dtype, device=a.device)
    else:
        sig = sigma_k if sigma_k.ndim == 2 else torch.diag(sigma_k)
    s_hat = sig[1:, 1:] - sig[1:, :1] - sig[:1, 1:] + sig[0, 0]
    chol, info = torch.linalg.cholesky_ex(gb)
    # positive definite to rounding: a Cholesky that succeeds by rounding alone on an exactly
    # singular G_b (too few features) leaves a pivot at the eps level, not NaN
    piv = chol.diagonal(dim1=-2, dim2=-1) ** 2
    floor = 16 * m * torch.finfo(gb.dtype).eps * gb.diagonal(dim1=-2, dim2=-1).amax(-1)
    pd = (info == 0) & (piv.amin(-1) > floor)
    eye = torch.eye(m, dtype=a.dtype, device=a.device)
    chol = torch.where(pd[:, None, None], chol, eye)

    def whiten(x: torch.Tensor) -> torch.Tensor:  # L⁻¹ x L⁻ᵀ for symmetric x
        y = torch.linalg.solve_triangular(chol, x, upper=False)
        y = torch.linalg.solve_triangular(chol, y.transpose(-1, -2), upper=False)
        return 0.5 * (y + y.transpose(-1, -2))

    wa, ws = whiten(ga), whiten(s_hat.expand_as(ga))
    bsz = wa.shape[0]
    grid = torch.tensor(_RIEM_GRID, dtype=a.dtype, device=a.device)
    vals = torch.stack([_riem_spread(g.expand(bsz), wa, ws) for g in grid], dim=-1)
    best = vals.argmin(-1)
    step = float(grid[1] - grid[0])
    lo = grid[best] - step
    hi = grid[best] + step
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = _riem_spread(x1, wa, ws), _riem_spread(x2, wa, ws)
    for _ in range(_RIEM_GOLDEN_ITER):
        left = f1 <= f2  # the minimum lies in [lo, x2]
        lo, hi = torch.where(left, lo, x1), torch.where(left, x2, hi)
        x_new = torch.where(left, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
        f_new = _riem_spread(x_new, wa, ws)
        x1, x2, f1, f2 = (
            torch.where(left, x_new, x2),
            torch.where(left, x1, x_new),
            torch.where(left, f_new, f2),
            torch.where(left, f1, f_new),
        )
    h = torch.minimum(torch.minimum(f1, f2), vals.min(-1).values)
    out = -torch.sqrt(h)
    out = torch.where(pd & torch.isfinite(out), out, torch.full_like(out, float("nan")))
    return out.reshape(shape)
