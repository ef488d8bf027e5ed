"""Pure torch kernels for RDMs and RDM comparisons (no labels, no validation).

All functions take batched tensors: patterns ``(..., n, p)``, RDM vectors ``(..., n_pairs)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def pow2_exponents(v: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Return ``k`` with each slice's largest finite magnitude in ``[2**(k - 1), 2**k)``.

    One exponent per slice over ``axes`` (those dims kept, size 1); NaN and infinite entries
    are skipped, and a slice without a finite nonzero entry gets ``k = 0``. Dividing a slice
    by ``2**k`` (exact) brings its largest magnitude into ``[0.5, 1)``.
    """
    with np.errstate(invalid="ignore"):  # fmax / fmin skip NaN; no full-size temporaries
        hi = np.fmax.reduce(v, axis=axes, keepdims=True)
        lo = np.fmin.reduce(v, axis=axes, keepdims=True)
        m = np.nan_to_num(np.fmax(np.abs(hi), np.abs(lo)).astype(np.float64), nan=0.0)
        if not np.isfinite(m).all():  # an infinite entry: the largest finite magnitude
            m = np.where(np.isfinite(v), np.abs(v), 0.0).max(axis=axes, keepdims=True)
    return np.frexp(m)[1].astype(np.int64)


def needs_scaling(k: np.ndarray, dt: torch.dtype) -> bool:
    """Whether a largest magnitude ``2**k`` leaves the range where ``dt`` computes safely.

    Safe: within ``2**(+-maxexp / 4)`` (float32: about 2.3e-10 to 4.3e9; float64: 1e-77 to
    1e77), so that sums of squares over many features neither overflow nor lose precision
    to underflow. All-zero slices (``k == 0`` from a zero maximum) count as safe. Callers
    outside that range divide their data by ``2**k`` (exact) before casting to ``dt``.
    """
    lim = np.finfo(np.float64 if dt == torch.float64 else np.float32).maxexp // 4
    return bool(((k > lim) | (k < -lim)).any())


def _symmetrize_zero_diag(d: torch.Tensor) -> torch.Tensor:
    d = 0.5 * (d + d.transpose(-1, -2))
    n = d.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=d.device)
    return d.masked_fill(eye, 0.0)


def rdm_sqeuclidean(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between rows: ``(..., n, p)`` → ``(..., n, n)``."""
    x = x - x.mean(dim=-2, keepdim=True)  # translation-invariant; improves conditioning
    sq = (x * x).sum(-1)
    d = sq[..., :, None] + sq[..., None, :] - 2.0 * (x @ x.transpose(-1, -2))
    return _symmetrize_zero_diag(d.clamp_min(0.0))


def rdm_euclidean(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of ``x``."""
    return rdm_sqeuclidean(x).sqrt()


def rdm_cosine(x: torch.Tensor) -> torch.Tensor:
    """One minus the cosine similarity between the rows of ``x``."""
    xn = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return _symmetrize_zero_diag(1.0 - xn @ xn.transpose(-1, -2))


def rdm_correlation(x: torch.Tensor) -> torch.Tensor:
    """One minus the Pearson correlation between the rows of ``x``."""
    return rdm_cosine(x - x.mean(dim=-1, keepdim=True))


def _pair_rdm(k: torch.Tensor) -> torch.Tensor:
    """``k_ii + k_jj - (k_ij + k_ji)``, exactly symmetric, zero diagonal."""
    diag = k.diagonal(dim1=-2, dim2=-1)
    d = (diag[..., :, None] + diag[..., None, :]) - (k + k.transpose(-1, -2))
    n = d.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=d.device)
    return d.masked_fill(eye, 0.0)


def gram(x: torch.Tensor) -> torch.Tensor:
    """``x @ x.T`` over the last two dims, computing about 5/8 of a full product's flops.

    torch has no symmetric rank-k update, so the upper triangle is assembled from three
    batched products of row quarters (the off-diagonal half, the off-diagonal quarters of
    both halves, the four diagonal quarters) and mirrored, which keeps few, large calls
    (each one a thread-pool synchronisation) and an exactly symmetric result.
    """
    n, p = x.shape[-2], x.shape[-1]
    lower = _lower_mask(n, x.device)
    if n < 128:
        g = x @ x.transpose(-1, -2)
        return torch.where(lower, g.transpose(-1, -2), g)
    batch = x.shape[:-2]
    q = n // 4
    h, m = 2 * q, 4 * q
    g = x.new_empty((*batch, n, n))
    xm = x[..., :m, :]
    g[..., :h, h:m] = xm[..., :h, :] @ xm[..., h:, :].transpose(-1, -2)
    x22 = xm.reshape(*batch, 2, 2, q, p)
    off = x22[..., 0, :, :] @ x22[..., 1, :, :].transpose(-1, -2)  # (..., 2, q, q)
    g[..., :q, q:h] = off[..., 0, :, :]
    g[..., h : h + q, h + q : m] = off[..., 1, :, :]
    x4 = xm.reshape(*batch, 4, q, p)
    diag = x4 @ x4.transpose(-1, -2)  # (..., 4, q, q)
    for i in range(4):
        g[..., i * q : (i + 1) * q, i * q : (i + 1) * q] = diag[..., i, :, :]
    if m < n:  # the last n % 4 columns
        g[..., :, m:] = x @ x[..., m:, :].transpose(-1, -2)
    return torch.where(lower, g.transpose(-1, -2), g)


def _lower_mask(n: int, device: torch.device) -> torch.Tensor:
    idx = torch.arange(n, device=device)
    return idx[:, None] > idx[None, :]


def gram_rdm(
    x: torch.Tensor, metric: str, *, max_ratio: float | None = None
) -> tuple[torch.Tensor, ...]:
    """Correlation or cosine RDMs from one Gram matrix ``x @ x.T``, without copying ``x``.

    The Pearson correlation is derived from the uncentred Gram matrix and the row sums
    (``G - s s^T / p``), which loses accuracy when a pattern's mean is large compared with
    its spread. Rows where ``sum(x**2) / sum((x - mean)**2)`` exceeds ``max_ratio`` (and
    rows whose norms are zero or not finite) are flagged; the caller recomputes those
    batches with the explicit kernels (:func:`rdm_correlation`, :func:`rdm_cosine`).
    Few elementwise passes over the ``(n, n)`` results: each is a synchronisation point of
    the thread pool, which is costly on a busy machine.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n, p)
        Patterns.
    metric : {"correlation", "cosine"}
        Which dissimilarity.
    max_ratio : float, optional
        Largest accepted ratio of uncentred to centred sum of squares (the factor by
        which the Gram formula's rounding error may exceed explicit centring's); default
        8 in float64, 2 in float32.

    Returns
    -------
    rdm : torch.Tensor, shape (..., n, n)
        The RDMs, exactly symmetric with a zero diagonal (unreliable where ``flag`` holds).
    flag : torch.Tensor of bool, shape (..., n)
        Rows that need the explicit kernel (or validation).
    """
    if max_ratio is None:
        max_ratio = 8.0 if x.dtype == torch.float64 else 2.0
    g = gram(x)
    q = g.diagonal(dim1=-2, dim2=-1).clone()
    if metric == "correlation":
        s = x.sum(-1)
        p = x.shape[-1]
        if g.ndim == 2:
            g = torch.addr(g, s, s, alpha=-1.0 / p)
        else:
            g = g - (s[..., :, None] * s[..., None, :]) * (1.0 / p)
        c = g.diagonal(dim1=-2, dim2=-1)
        flag = ~(torch.isfinite(q) & torch.isfinite(s) & (c * max_ratio > q) & (c > 0))
    else:
        c = q
        flag = ~(torch.isfinite(q) & (q > 0))
    inv = torch.where(flag, torch.ones_like(c), c).rsqrt()
    w = inv[..., :, None] * inv[..., None, :]  # exactly symmetric, as is g
    d = torch.addcmul(torch.ones((), dtype=g.dtype, device=g.device), g, w, value=-1.0)
    d.diagonal(dim1=-2, dim2=-1).zero_()
    return d, flag


class LowRankPrecision(NamedTuple):
    """A precision matrix ``diag(diag) - factor.T @ factor`` kept in factored form.

    Shrinkage precisions estimated from fewer observations than features have this form
    (Woodbury), with ``factor`` of shape ``(r, p)``, ``r <= n_observations``. The RDM
    kernels then need products with ``factor`` only (``r * p`` per pattern instead of
    ``p**2``), and the ``(p, p)`` matrix is never formed.
    """

    diag: torch.Tensor  # (p,)
    factor: torch.Tensor  # (r, p)

    def to(self, device: torch.device, dtype: torch.dtype) -> LowRankPrecision:
        """Both parts on ``device`` in ``dtype``."""
        return LowRankPrecision(
            self.diag.to(device=device, dtype=dtype), self.factor.to(device=device, dtype=dtype)
        )

    def dense(self) -> torch.Tensor:
        """Return the ``(p, p)`` matrix (for tests and small problems)."""
        return torch.diag(self.diag) - self.factor.transpose(0, 1) @ self.factor


Precision = torch.Tensor | LowRankPrecision


def _cross_kernel(a: torch.Tensor, b: torch.Tensor, precision: Precision | None) -> torch.Tensor:
    """Compute ``a M b^T`` (last two dims) for a dense, factored or identity (None) ``M``."""
    if precision is None:
        return a @ b.transpose(-1, -2)
    if isinstance(precision, LowRankPrecision):
        fa = a @ precision.factor.transpose(0, 1)
        fb = fa if b is a else b @ precision.factor.transpose(0, 1)
        return (a * precision.diag) @ b.transpose(-1, -2) - fa @ fb.transpose(-1, -2)
    return (a @ precision) @ b.transpose(-1, -2)


def _centre_scale(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(x - mean over rows) * scale`` in one pass over ``x`` (``(..., n, p)``)."""
    return torch.addcmul(x.mean(dim=-2, keepdim=True) * -scale, x, scale)


def rdm_mahalanobis(x: torch.Tensor, precision: Precision) -> torch.Tensor:
    """Squared Mahalanobis distances between rows divided by ``p`` (= rsatoolbox).

    ``x``: ``(..., n, p)``; ``precision``: ``(p, p)`` symmetric positive definite, or a
    :class:`LowRankPrecision`.
    """
    x = x - x.mean(dim=-2, keepdim=True)  # translation-invariant; improves conditioning
    k = _cross_kernel(x, x, precision)
    return (_pair_rdm(k) / x.shape[-1]).clamp_min(0.0)


def rdm_crossnobis(
    d: torch.Tensor, precision: Precision | None = None, train: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-validated Mahalanobis distances over leave-one-run-out folds, divided by ``p``.

    ``d``: run patterns ``(..., R, n, p)`` (R >= 2). Fold ``k`` pairs the training patterns
    ``a_k`` with run ``k``: ``(a_ki - a_kj) M (d_ki - d_kj)^T / p``, averaged over folds
    (rsatoolbox's crossnobis). By default ``a_k`` is the mean of the other runs, so the
    result is the mean over ordered run pairs ``k != l``, computed with sums over runs:
    ``sum_{k != l} d_k M d_l^T = (sum d) M (sum d)^T - sum_k d_k M d_k^T``. ``train``
    (``(..., R, n, p)``) gives other training patterns, e.g. trial-weighted means.
    ``precision``: ``(p, p)``, a :class:`LowRankPrecision` ``diag(v) - F^T F`` (then the
    products are ``d * v`` and ``d F^T``, ``O(R n p r)`` instead of ``O(R n p**2)``), or
    None for the identity.
    """
    r, p = d.shape[-3], d.shape[-1]
    if isinstance(precision, LowRankPrecision):
        # M = S (I - G^T G) S with S = diag(sqrt(v)), G = F S^-1: one scaled, centred copy
        # of the patterns (a single elementwise pass), then products with G only.
        sv = precision.diag.sqrt()
        gt = (precision.factor / sv).transpose(0, 1)  # (p, rank)
        ds = _centre_scale(d, sv)
        fd = ds @ gt  # (..., R, n, rank): the only O(p * rank) product
        if train is not None:
            ts = _centre_scale(train, sv)
            k = (ts @ ds.transpose(-1, -2) - (ts @ gt) @ fd.transpose(-1, -2)).mean(-3)
        else:
            total, f_total = ds.sum(-3), fd.sum(-3)
            within = (gram(ds) - fd @ fd.transpose(-1, -2)).sum(-3)
            k = (gram(total) - f_total @ f_total.transpose(-1, -2) - within) / (r * (r - 1))
        return _pair_rdm(k) / p
    d = d - d.mean(dim=-2, keepdim=True)  # per-run translation does not change distances
    y = d if precision is None else d @ precision
    if train is not None:
        train = train - train.mean(dim=-2, keepdim=True)
        k = (train @ y.transpose(-1, -2)).mean(-3)
    else:
        total = d.sum(-3)
        y_total = total if precision is None else y.sum(-3)
        within = (y @ d.transpose(-1, -2)).sum(-3)
        k = (y_total @ total.transpose(-1, -2) - within) / (r * (r - 1))
    return _pair_rdm(k) / p


class FoldPairs(NamedTuple):
    """Run-pair noise factors of crossnobis with one precision per run (float64).

    Pair ``(k, l) = (run_k[q], run_l[q])`` uses the precision of the average of the two runs'
    noise covariances, ``M_kl = ((M_k⁻¹ + M_l⁻¹) / 2)⁻¹ = 2 M_l (M_k + M_l)⁻¹ M_k``, kept
    factored: ``precisions`` ``(R, p, p)`` and ``chol`` ``(Q, p, p)``, the lower Cholesky
    factors of ``M_k + M_l``. No matrix is inverted.
    """

    precisions: torch.Tensor
    chol: torch.Tensor
    run_k: torch.Tensor
    run_l: torch.Tensor


def fold_pair_factors(precisions: torch.Tensor) -> FoldPairs:
    """Factor the run pairs ``k < l`` from one precision per run (float64).

    ``precisions``: ``(R, p, p)`` symmetric positive definite, the noise precision of each
    run's mean patterns. One Cholesky factorisation of ``M_k + M_l`` per pair replaces
    rsatoolbox's ``R + Q`` inversions (``calc_rdm_crossnobis`` with a list of noises), and
    the factors are applied to the ``n`` patterns only (:func:`fold_pair_terms`).
    """
    r = precisions.shape[0]
    run_k, run_l = torch.triu_indices(r, r, offset=1, device=precisions.device)
    chol = torch.linalg.cholesky(precisions[run_k] + precisions[run_l])
    return FoldPairs(precisions, chol, run_k, run_l)


def fold_pair_terms(d: torch.Tensor, pairs: FoldPairs) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(left, right)`` with ``left[q] @ right[q]ᵀ = d_k M_kl d_lᵀ`` for every pair.

    ``d``: centred run patterns ``(..., R, n, p)`` in float64. ``left = 2 d_k M_l`` and
    ``right = d_l M_k (M_k + M_l)⁻¹`` (a Cholesky solve with ``n`` right-hand sides), both
    ``(..., Q, n, p)``: ``2 d_k M_l (M_k + M_l)⁻¹ M_k d_lᵀ = d_k M_kl d_lᵀ``.
    """
    left = 2.0 * (d[..., pairs.run_k, :, :] @ pairs.precisions[pairs.run_l])
    rhs = pairs.precisions[pairs.run_k] @ d[..., pairs.run_l, :, :].transpose(-1, -2)
    right = torch.cholesky_solve(rhs, pairs.chol).transpose(-1, -2)
    return left, right


def rdm_crossnobis_fold_pairs(d: torch.Tensor, pairs: FoldPairs) -> torch.Tensor:
    """Crossnobis distances with one precision per pair of runs, divided by ``p`` (float64).

    ``d``: run patterns ``(..., R, n, p)`` (any float dtype; the pairs' factors are applied
    in float64); ``pairs``: :func:`fold_pair_factors`. The distance is the mean over the
    pairs of ``(d_ki - d_kj) M_kl (d_li - d_lj)ᵀ / p`` (= rsatoolbox's crossnobis with a
    list of noise precisions, which also averages the unordered run pairs).
    """
    p = d.shape[-1]
    d = d.to(torch.float64)
    d = d - d.mean(dim=-2, keepdim=True)  # per-run translation does not change distances
    left, right = fold_pair_terms(d, pairs)
    kern = (left @ right.transpose(-1, -2)).mean(-3)
    return _pair_rdm(kern) / p


def _poisson_shift(x: torch.Tensor, prior_lambda: float, prior_weight: float) -> torch.Tensor:
    return (x + prior_lambda * prior_weight) / (1.0 + prior_weight)


def rdm_poisson(
    x: torch.Tensor, prior_lambda: float = 1.0, prior_weight: float = 0.1
) -> torch.Tensor:
    """Symmetrised Poisson KL divergence between rows divided by ``p`` (= rsatoolbox).

    Rates are shrunk towards ``prior_lambda``: ``(x + lambda w) / (1 + w)``.
    """
    m = _poisson_shift(x, prior_lambda, prior_weight)
    k = m @ torch.log(m).transpose(-1, -2)
    return _pair_rdm(k) / x.shape[-1]


def rdm_poisson_cv(
    d: torch.Tensor,
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
    *,
    all_folds: bool = True,
    train: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-validated Poisson KL divergence over leave-one-run-out folds, divided by ``p``.

    ``d``: run patterns ``(..., R, n, p)``. Fold ``k`` uses the mean of the other runs (or
    ``train[..., k, :, :]``) as training rates and run ``k``'s log rates.
    ``all_folds=False`` keeps only the last fold, as rsatoolbox 0.3.2 does (a defect: its
    loop overwrites the RDM of every earlier fold).
    """
    r, p = d.shape[-3], d.shape[-1]
    if train is None:
        train = (d.sum(-3, keepdim=True) - d) / (r - 1)
    if not all_folds:
        d, train = d[..., -1:, :, :], train[..., -1:, :, :]
    k = _poisson_shift(train, prior_lambda, prior_weight) @ torch.log(
        _poisson_shift(d, prior_lambda, prior_weight)
    ).transpose(-1, -2)
    return _pair_rdm(k).mean(-3) / p


def upper_tri(d: torch.Tensor) -> torch.Tensor:
    """Vectorise the strict upper triangle, row-major (as scipy's ``squareform``)."""
    n = d.shape[-1]
    i, j = torch.triu_indices(n, n, offset=1, device=d.device)
    return d[..., i, j]


def rankdata(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Average-tie ranks (1-based) along the last dim, over the entries where ``mask`` holds.

    Entries outside the mask get rank 0. Equals ``scipy.stats.rankdata(method="average")``
    applied to each row's valid entries.
    """
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    m2 = mask.reshape(-1, shape[-1])
    b, p = x2.shape
    big = torch.finfo(x2.dtype).max
    xs, order = torch.sort(torch.where(m2, x2, torch.full_like(x2, big)), dim=-1, stable=True)
    ms = torch.gather(m2, -1, order)
    new = torch.ones_like(ms)
    new[:, 1:] = (xs[:, 1:] != xs[:, :-1]) | (ms[:, 1:] != ms[:, :-1])
    gid = (
        torch.cumsum(new.to(torch.int64), dim=-1)
        - 1
        + (torch.arange(b, device=x.device) * p)[:, None]
    )
    pos = torch.arange(1, p + 1, dtype=x2.dtype, device=x.device).expand(b, p)
    sums = torch.zeros(b * p, dtype=x2.dtype, device=x.device).index_add_(
        0, gid.reshape(-1), pos.reshape(-1)
    )
    cnt = torch.zeros(b * p, dtype=x2.dtype, device=x.device).index_add_(
        0, gid.reshape(-1), torch.ones(b * p, dtype=x2.dtype, device=x.device)
    )
    avg = (sums / cnt.clamp_min(1))[gid]
    avg = torch.where(ms, avg, torch.zeros_like(avg))
    ranks = torch.empty_like(avg).scatter_(-1, order, avg)
    return ranks.reshape(shape)


def masked_cosine(
    a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, *, center: bool
) -> torch.Tensor:
    """Cosine (or, with ``center``, Pearson) similarity of ``a`` and ``b`` over ``mask``."""
    w = mask.to(a.dtype)
    a = a * w
    b = b * w
    if center:
        n = w.sum(-1, keepdim=True)
        a = (a - a.sum(-1, keepdim=True) / n) * w
        b = (b - b.sum(-1, keepdim=True) / n) * w
    num = (a * b).sum(-1)
    den = torch.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return num / den


RDM_KERNELS = {
    "correlation": rdm_correlation,
    "cosine": rdm_cosine,
    "euclidean": rdm_euclidean,
    "sqeuclidean": rdm_sqeuclidean,
    "mahalanobis": rdm_mahalanobis,
    "crossnobis": rdm_crossnobis,
    "poisson": rdm_poisson,
    "poisson_cv": rdm_poisson_cv,
}
