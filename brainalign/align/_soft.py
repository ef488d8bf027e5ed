"""Soft matching distance: optimal transport between the neurons of two representations.

Each neuron (feature column) is a point in stimulus space, its tuning curve. The soft
matching distance of Khosla & Williams is the 2-Wasserstein distance between the two
clouds of tuning curves, each neuron carrying mass ``1/p`` (or ``1/q``):

    d(X, Y)^2 = min_{P in T(p, q)} sum_ij P_ij ||x_i - y_j||^2,

where ``T(p, q)`` is the set of non-negative ``p x q`` matrices with row sums ``1/p`` and
column sums ``1/q`` ("soft permutations"). For ``p == q`` the optimum is a permutation
(Birkhoff), so ``d = min_perm ||X - Y Pi||_F / sqrt(p)``.

The transport problem is solved exactly on the CPU: by :func:`scipy.optimize.
linear_sum_assignment` when ``p == q``; otherwise by a network (transportation) simplex
compiled with numba on the integer masses ``q/g`` and ``p/g`` (``g = gcd(p, q)``), so that
its optimal basis is an integral plan: a north-west-corner start, block pricing of the
reduced costs, and at each pivot the subtree cut off by the leaving arc re-hung under the
entering arc (its potentials recomputed by a walk over that subtree only). Should the
simplex exceed its pivot cap (degenerate cycling; not seen in practice), the HiGHS dual
simplex (:func:`scipy.optimize.linprog`) solves the same integral problem. The distance is
then evaluated in float64 on the support of the plan from the tuning curves themselves
(not from the cost matrix), so a copy of a representation with permuted neurons is at
distance exactly 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog

from brainalign._checks import check_option, check_type
from brainalign._memory import check_fits, resolve_budget
from brainalign.align._inputs import apply_pair, result_attrs
from brainalign.rsa._compare_kernels import numba_kernel

__all__ = ["soft_matching"]


_COSTS = ("sqeuclidean", "euclidean")
_SOLVER = "simplex"  # set to "lp" by the tests to run the HiGHS path
# Pivot cap of the network simplex per node (p + q); about 10-20 pivots per node are used
# on random costs (2,968 at 200 x 150, 28,429 at 1000 x 700).
_MAX_PIVOTS_PER_NODE = 1000


def _transport_simplex(cost, supply, demand, tol, max_pivots, bi, bj, fl):  # pragma: no cover
    """Solve the integral transport problem; return the pivots (negative: cap reached).

    ``min <cost, F>`` over non-negative integral plans ``F`` whose rows each sum to
    ``supply`` and whose columns each sum to ``demand``. The basis, ``p + q - 1`` arcs
    ``(bi[k], bj[k])`` with flows ``fl[k]``, is a spanning tree over the ``p`` row nodes
    and ``q`` column nodes (``p + j``), rooted at row 0, with its incident arcs in doubly
    linked lists (slot ``2k`` at the row end, ``2k + 1`` at the column end). Potentials
    satisfy ``u_i + v_j = cost[i, j]`` on the tree; an arc enters when its reduced cost is
    below ``-tol`` (the most negative in a block of the arcs, scanned cyclically); the
    cycle is the tree path between its ends; the leaving arc is the first of the cycle's
    decreasing arcs with the least flow. Compiled by numba.
    """
    p, q = cost.shape
    nb = p + q - 1
    nn = p + q
    s = np.full(p, supply)
    d = np.full(q, demand)
    i = 0
    j = 0
    for k in range(nb):  # north-west corner: a staircase spanning tree
        f = min(s[i], d[j])
        bi[k] = i
        bj[k] = j
        fl[k] = f
        s[i] -= f
        d[j] -= f
        if s[i] == 0 and i < p - 1:
            i += 1
        else:
            j += 1
    head = np.full(nn, -1, np.int64)
    nxt = np.full(2 * nb, -1, np.int64)
    prv = np.full(2 * nb, -1, np.int64)
    parent = np.full(nn, -1, np.int64)
    parc = np.full(nn, -1, np.int64)
    depth = np.zeros(nn, np.int64)
    pot = np.zeros(nn)
    queue = np.empty(nn, np.int64)
    path_a = np.empty(nn, np.int64)
    path_b = np.empty(nn, np.int64)
    n_arcs = p * q
    block = max(32, int(np.sqrt(n_arcs)))
    ci = 0
    cj = 0
    pivots = 0
    # Each round links the arcs link_lo..link_hi - 1 into the incidence lists, then walks the
    # subtree under ``top`` (whose parent, arc, depth and potential are set) to give its
    # nodes their parents, depths and potentials: first every arc and the whole tree from
    # the root, after a pivot the entering arc and the subtree it re-hangs.
    link_lo = 0
    link_hi = nb
    top = 0
    while True:
        for k in range(link_lo, link_hi):
            for side in range(2):
                v = bi[k] if side == 0 else p + bj[k]
                slot = 2 * k + side
                nxt[slot] = head[v]
                prv[slot] = -1
                if head[v] >= 0:
                    prv[head[v]] = slot
                head[v] = slot
        hd = 0
        tl = 1
        queue[0] = top
        while hd < tl:
            v = queue[hd]
            hd += 1
            slot = head[v]
            while slot >= 0:
                k = slot >> 1
                if k != parc[v]:  # every arc but the one to the parent leads to a child
                    w = p + bj[k] if (slot & 1) == 0 else bi[k]
                    parent[w] = v
                    parc[w] = k
                    depth[w] = depth[v] + 1
                    pot[w] = cost[bi[k], bj[k]] - pot[v]
                    queue[tl] = w
                    tl += 1
                slot = nxt[slot]
        if pivots == max_pivots:
            return -1 - pivots  # the cap was reached before optimality was shown
        best = -tol
        ei = -1
        ej = -1
        scanned = 0
        while scanned < n_arcs and ei < 0:  # block pricing, from where the last one stopped
            stop = min(scanned + block, n_arcs)
            for _ in range(scanned, stop):
                r = cost[ci, cj] - pot[ci] - pot[p + cj]
                if r < best:
                    best = r
                    ei = ci
                    ej = cj
                cj += 1
                if cj == q:
                    cj = 0
                    ci = ci + 1 if ci + 1 < p else 0
            scanned = stop
        if ei < 0:
            return pivots  # no arc improves: optimal
        pivots += 1
        a = p + ej  # the tree path between the entering arc's ends, to their common ancestor
        b = ei
        na = 0
        nbp = 0
        while depth[a] > depth[b]:
            path_a[na] = a
            na += 1
            a = parent[a]
        while depth[b] > depth[a]:
            path_b[nbp] = b
            nbp += 1
            b = parent[b]
        while a != b:
            path_a[na] = a
            na += 1
            a = parent[a]
            path_b[nbp] = b
            nbp += 1
            b = parent[b]
        # around the cycle from the entering arc (+): path_a upwards, then path_b downwards;
        # the arcs at even positions t decrease
        theta = 1 << 62  # above any flow (the masses are far smaller)
        leave = -1
        for t in range(na + nbp):
            v = path_a[t] if t < na else path_b[nbp - 1 - (t - na)]
            if t % 2 == 0 and fl[parc[v]] < theta:
                theta = fl[parc[v]]
                leave = v
        for t in range(na + nbp):
            v = path_a[t] if t < na else path_b[nbp - 1 - (t - na)]
            fl[parc[v]] += -theta if t % 2 == 0 else theta
        in_a = False  # which end of the entering arc the leaving arc cuts off
        for t in range(na):
            if path_a[t] == leave:
                in_a = True
                break
        top = p + ej if in_a else ei
        kl = parc[leave]
        for side in range(2):  # unlink the leaving arc; its slots take the entering one
            slot = 2 * kl + side
            v = bi[kl] if side == 0 else p + bj[kl]
            if prv[slot] >= 0:
                nxt[prv[slot]] = nxt[slot]
            else:
                head[v] = nxt[slot]
            if nxt[slot] >= 0:
                prv[nxt[slot]] = prv[slot]
        bi[kl] = ei
        bj[kl] = ej
        fl[kl] = theta
        link_lo = kl
        link_hi = kl + 1
        parent[top] = ei if in_a else p + ej  # re-hang the cut-off subtree under the arc
        parc[top] = kl
        depth[top] = depth[parent[top]] + 1
        pot[top] = cost[ei, ej] - pot[parent[top]]


def _simplex_plan(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return the network simplex's optimal integral plan (support, flows), or None at the cap."""
    p, q = cost.shape
    g = math.gcd(p, q)
    nb = p + q - 1
    bi = np.empty(nb, np.int64)
    bj = np.empty(nb, np.int64)
    fl = np.empty(nb, np.int64)
    tol = 1e-12 * max(1.0, float(np.abs(cost).max()))
    cap = _MAX_PIVOTS_PER_NODE * (p + q)
    kernel = numba_kernel(_transport_simplex)
    if kernel(np.ascontiguousarray(cost), q // g, p // g, tol, cap, bi, bj, fl) < 0:
        return None
    keep = fl > 0
    return bi[keep], bj[keep], fl[keep]


def _lp_plan(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return HiGHS's optimal integral plan (support, flows) of the same problem."""
    p, q = cost.shape
    g = math.gcd(p, q)
    supply, demand = q // g, p // g  # integer masses: the simplex vertex is integral
    ones_q = np.ones((1, q))
    ones_p = np.ones((1, p))
    a_eq = sparse.vstack(
        [
            sparse.kron(sparse.eye(p), ones_q),  # row sums
            sparse.kron(ones_p, sparse.eye(q)),  # column sums
        ],
        format="csr",
    )
    b_eq = np.concatenate([np.full(p, float(supply)), np.full(q, float(demand))])
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs-ds")
    if res.status != 0:  # pragma: no cover - a feasible bounded LP; defensive
        raise RuntimeError(f"the transport LP failed: {res.message}")
    flow = np.rint(res.x).astype(np.int64)
    support = np.flatnonzero(flow)
    return support // q, support % q, flow[support]


def _plan(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an optimal plan of the uniform transport problem, as its support.

    Parameters
    ----------
    cost : ndarray, shape (p, q)
        The ground cost between the neurons of both sides.

    Returns
    -------
    rows, cols : ndarray of int
        The support of an optimal plan.
    mass : ndarray of float64
        The mass moved along each pair of the support (summing to 1).
    """
    p, q = cost.shape
    if p == q:  # uniform masses: an optimal plan is a permutation (Birkhoff)
        r, c = linear_sum_assignment(cost)
        return r, c, np.full(p, 1.0 / p)
    found = _simplex_plan(cost) if _SOLVER == "simplex" else None
    rows, cols, flow = _lp_plan(cost) if found is None else found
    return rows, cols, flow / (p * q // math.gcd(p, q))


def _soft_matching(x: torch.Tensor, y: torch.Tensor, cost: str, center: bool) -> torch.Tensor:
    """Soft matching distance between the columns of ``x`` (n, p) and ``y`` (n, q)."""
    p, q = x.shape[1], y.shape[1]
    need = 8 * 4 * p * q  # the (p, q) costs: a few float64 copies
    check_fits(need, f"soft_matching: the ({p}, {q}) transport costs", resolve_budget(None, "cpu"))
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    if center:
        x = x - x.mean(dim=0, keepdim=True)
        y = y - y.mean(dim=0, keepdim=True)
    # squared distances between tuning curves (columns); the mm form is only used to pick
    # the plan, whose cost is then evaluated exactly below
    sq = (x * x).sum(dim=0)[:, None] + (y * y).sum(dim=0)[None, :] - 2.0 * (x.T @ y)
    sq = sq.clamp_min(0.0)
    ground = sq if cost == "sqeuclidean" else sq.sqrt()
    rows, cols, mass = _plan(ground.cpu().numpy())
    rows_t = torch.as_tensor(rows, device=x.device)
    cols_t = torch.as_tensor(cols, device=x.device)
    # exact ground cost on the support (at most p + q - 1 pairs), from the tuning curves
    diff = x[:, rows_t] - y[:, cols_t]
    pair = (diff * diff).sum(dim=0)
    if cost == "euclidean":
        pair = pair.sqrt()
    total = (torch.as_tensor(mass, device=x.device, dtype=torch.float64) * pair).sum()
    return total.sqrt() if cost == "sqeuclidean" else total


def soft_matching(
    a: Any,
    b: Any,
    *,
    cost: str = "sqeuclidean",
    center: bool = False,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Soft matching distance between the neurons of two representations.

    Each neuron (feature) is described by its tuning curve, its responses to the stimuli
    in common. The distance is the optimal-transport (Wasserstein) distance between the
    tuning curves of ``a`` (each of mass ``1/p``) and those of ``b`` (mass ``1/q``):
    ``sqrt(min_P sum_ij P_ij ||x_i - y_j||^2)`` over the plans ``P`` with row sums ``1/p``
    and column sums ``1/q``. When ``p == q`` it is the permutation (one-to-one neuron
    matching) distance ``min_perm ||X - Y Pi||_F / sqrt(p)``; for different widths the
    plan matches neurons "softly". Unlike rotation-invariant measures it is sensitive to
    single-neuron tuning; it is symmetric, satisfies the triangle inequality, and is 0
    exactly when the two sides hold the same tuning curves in the same proportions.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim and a feature dim; other dims broadcast,
        a mapping's keys become the dims ``key_dims``. Widths may differ.
    cost : {"sqeuclidean", "euclidean"}
        ``"sqeuclidean"``: squared Euclidean ground cost and the square root of the optimal
        cost, the 2-Wasserstein distance of Khosla & Williams; ``"euclidean"``: Euclidean
        ground cost, the optimal cost itself (the 1-Wasserstein distance, also a metric).
    center : bool
        Subtract each neuron's mean response over the stimuli first.
    key_dims : tuple of str
        Dim names for the keys of mapping inputs.
    device, dtype : optional
        Where and in what precision the inputs are held; the cost matrix and the distance
        are computed in float64, the transport problem on the CPU with SciPy.

    Returns
    -------
    distance : xarray.DataArray
        The soft matching distance (in the units of the responses), over the broadcast
        dims; attrs name the measure, ``cost`` and ``center``.

    Raises
    ------
    ValueError
        For an unknown ``cost``, or NaN or infinite responses.
    TypeError
        When ``center`` is not a bool.
    brainalign.StimulusAlignmentError
        When ``a`` and ``b`` do not hold the same stimuli.

    Notes
    -----
    The transport problem is solved exactly: by the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`) when ``p == q``, otherwise by a
    network simplex compiled with numba on integer masses, whose optimal basis is an
    integral plan (about 6 ms for 200 x 150 neurons, 0.3 s for 1000 x 700; the HiGHS
    simplex of :func:`scipy.optimize.linprog` is its fallback). The distance is not
    normalised by the number of stimuli.

    The similarity repository's ``neuroaimetrics/SoftMatching`` is a different quantity
    (one minus the optimal transport cost of centred cosine distances), so the result
    carries no ``similarity_id``.

    References
    ----------
    .. [1] Khosla, M., & Williams, A. H. (2024). Soft Matching Distance: A metric on neural
       representations that captures single-neuron tuning. Proceedings of the 1st UniReps
       Workshop, PMLR 243, 133-143. https://arxiv.org/abs/2311.09466

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._soft import soft_matching
    >>> x = np.random.default_rng(0).normal(size=(10, 4))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> b = ba.responses(x[:, [2, 0, 3, 1]], feature_dim="unit")  # neurons permuted
    >>> float(soft_matching(a, b))
    0.0
    """
    check_option("cost", cost, _COSTS)
    check_type("center", center, (bool, np.bool_), "a bool")
    center = bool(center)
    attrs = result_attrs("soft_matching", kind="distance", params={"cost": cost, "center": center})
    return apply_pair(
        lambda x, y: _soft_matching(x, y, cost, center),
        a,
        b,
        key_dims=key_dims,
        attrs=attrs,
        name="soft_matching",
        device=device,
        dtype=dtype,
        min_samples=1,
    )
