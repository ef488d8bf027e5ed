"""Soft matching distance: optimal transport between the neurons of two representations.

Each neuron (feature column) is a point in stimulus space, its tuning curve. The soft
matching distance of Khosla & Williams is the 2-Wasserstein distance between the two
clouds of tuning curves, each neuron carrying mass ``1/p`` (or ``1/q``):

    d(X, Y)^2 = min_{P in T(p, q)} sum_ij P_ij ||x_i - y_j||^2,

where ``T(p, q)`` is the set of non-negative ``p x q`` matrices with row sums ``1/p`` and
column sums ``1/q`` ("soft permutations"). For ``p == q`` the optimum is a permutation
(Birkhoff), so ``d = min_perm ||X - Y Pi||_F / sqrt(p)``.

The transport problem is solved exactly on the CPU: by :func:`scipy.optimize.
linear_sum_assignment` when ``p == q``, or when ``lcm(p, q)`` is small, on the assignment
problem in which each neuron of ``a`` is repeated ``lcm/p`` times and each of ``b``
``lcm/q`` times (an integral optimal plan of the transport problem with integer masses
``lcm/p`` and ``lcm/q`` exists, and it is an assignment of the copies); otherwise by the
HiGHS dual simplex (:func:`scipy.optimize.linprog`) on the transport polytope, with
integer masses ``q/g`` and ``p/g`` (``g = gcd(p, q)``) so that its vertex solution is
integral and is rounded exactly. The distance is then evaluated in float64 on the support
of the plan from the tuning curves themselves (not from the cost matrix), so a copy of a
representation with permuted neurons is at distance exactly 0.
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

__all__ = ["soft_matching"]


_COSTS = ("sqeuclidean", "euclidean")
# Largest replicated assignment problem (lcm(p, q) copies a side) solved by the Hungarian
# algorithm; above it the transport LP goes to HiGHS.
_MAX_ASSIGNMENT = 2048


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
    lcm = p * q // math.gcd(p, q)
    if lcm <= _MAX_ASSIGNMENT:
        rep_a, rep_b = lcm // p, lcm // q
        big = np.repeat(np.repeat(cost, rep_a, axis=0), rep_b, axis=1)
        r, c = linear_sum_assignment(big)
        pairs = (r // rep_a) * q + c // rep_b
        counts = np.bincount(pairs, minlength=p * q)
        support = np.flatnonzero(counts)
        return support // q, support % q, counts[support] / lcm
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
    return support // q, support % q, flow[support] / (p * q // g)


def _soft_matching(x: torch.Tensor, y: torch.Tensor, cost: str, center: bool) -> torch.Tensor:
    """Soft matching distance between the columns of ``x`` (n, p) and ``y`` (n, q)."""
    p, q = x.shape[1], y.shape[1]
    lcm = p * q // math.gcd(p, q)
    # the (p, q) costs (a few float64 copies), or the assignment problem they are repeated into
    need = 8 * max(4 * p * q, lcm * lcm if p != q and lcm <= _MAX_ASSIGNMENT else 0)
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
    (:func:`scipy.optimize.linear_sum_assignment`) when ``p == q`` or ``lcm(p, q) <= 2048``
    (neurons replicated ``lcm/p`` and ``lcm/q`` times), otherwise by the HiGHS simplex
    (:func:`scipy.optimize.linprog`) on the ``p * q`` variables of the transport
    polytope, which grows quickly with the widths (thousands of neurons on both sides
    take seconds to minutes). The distance is not normalised by the number of stimuli.

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
