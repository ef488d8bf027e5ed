"""Shape metrics between representations, pairwise distance matrices and their embedding.

Generalized shape metrics (Williams et al. 2021) and stochastic shape metrics (Duong et al.
2023), pairwise distance matrices between many networks and their classical MDS embedding.

A shape metric is a distance between two representations ``X`` (n stimuli x p units) and
``Y`` (n x q) after the best alignment of ``Y`` to ``X`` by a group of transformations:

1. both are centred (column means removed);
2. each is partially whitened, ``X̃ = X Z_x`` with
   ``Z_x = V diag(alpha + (1 - alpha) lambda^(-1/2)) V^T`` from the eigendecomposition
   ``X^T X = V diag(lambda) V^T`` (eigenvalues clipped to 1e-7), rescaled so that the total
   variance ``trace(X^T X)`` is kept: ``alpha = 1`` leaves ``X`` as is (Procrustes),
   ``alpha = 0`` whitens it fully (a CCA-like metric);
3. the narrower representation is zero-padded to the width of the wider one;
4. the alignment ``Q`` maximises ``<X̃, Ỹ Q>``: over orthogonal matrices the maximum is the
   nuclear norm of the ``p x q`` cross product ``X̃^T Ỹ`` (the sum of its singular values,
   computed without forming the padded matrices), over permutations it is a linear assignment,
   and with ``group="identity"`` there is no alignment;
5. the score is the angle ``arccos(<X̃, ỸQ> / (|X̃| |Ỹ|))`` (``score="angular"``) or the
   Frobenius distance ``|X̃ - ỸQ|`` (``score="euclidean"``, no ``1/sqrt(n)`` factor).

This is netrep's ``LinearMetric`` (``group="orthogonal"``) and ``PermutationMetric``
(``group="permutation"``, ``alpha=1``), including its clipping of eigenvalues and the
contribution of padded dimensions to the variance-preserving rescaling, so values agree with
netrep to rounding.

:func:`pairwise` computes all pairs of many networks at once: the centring and whitening of
each network is done once, the cross products ``X̃_i^T X̃_j`` are the upper blocks of the
Gram matrix of the concatenated whitened networks (one matrix product per network), and
their singular values come from batched :func:`torch.linalg.svdvals` calls, one per block
shape (each block oriented narrow side first and zero-padded to a multiple of 8, which leaves
singular values unchanged).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from scipy.optimize import linear_sum_assignment

from brainalign._checks import SchemaError, check_finite, check_number, check_option
from brainalign._device import as_tensor, resolve_device, resolve_dtype
from brainalign._memory import check_fits, resolve_budget
from brainalign.align._inputs import (
    Entries,
    align_sides,
    apply_pair,
    entries,
    entry_label,
    result_attrs,
)
from brainalign.data._schema import STIMULUS, TRIAL

__all__ = ["embed", "pairwise", "shape_metric", "stochastic_shape"]

_SCORES = ("angular", "euclidean")
_GROUPS = ("orthogonal", "permutation", "identity")
_METHODS = ("gaussian", "energy")
_MEASURES = ("shape_metric", "stochastic_shape")
# netrep.utils.whiten: eigenvalues of X^T X are clipped to this value, and alpha above
# 1 - _EIG_TOL means no whitening.
_EIG_TOL = 1e-7
# netrep's defaults: GaussianStochasticMetric(niter=1000, tol=1e-8),
# EnergyStochasticMetric(niter=100, tol=1e-6).
_ITER_DEFAULTS = {"gaussian": (1000, 1e-8), "energy": (100, 1e-6)}


def _similarity_id(group: str, score: str) -> str | None:
    if group == "orthogonal":
        return f"netrep/LinearMetric_{score}"
    if group == "permutation":
        return f"netrep/PermutationMetric_{score}"
    return None


def _check_shape_args(alpha: Any, score: Any, group: Any, cv: Any) -> None:
    check_number("alpha", alpha, low=0.0, high=1.0)
    check_option("score", score, _SCORES)
    check_option("group", group, _GROUPS)
    if cv is not None:
        check_number("cv", cv, low=2, integer=True)


# --------------------------------------------------------------------------------------------
# Kernels (pure torch on (n, p) tensors)
# --------------------------------------------------------------------------------------------


def _acc(t: torch.Tensor) -> torch.Tensor:
    """Return ``t`` in float64 (used for sums of products)."""
    return t if t.dtype == torch.float64 else t.to(torch.float64)


class _Whitened:
    """One network fitted on some stimuli: its mean, (unscaled) whitening and variances."""

    def __init__(self, x: torch.Tensor, alpha: float) -> None:
        self.p = x.shape[1]
        self.mean = _acc(x).mean(0).to(x.dtype)
        xc = x - self.mean
        self.alpha = alpha
        if alpha > 1 - _EIG_TOL:
            self.z = None
            self.lam_sum = self.new_var = 1.0
        else:
            cov = _acc(xc).T @ _acc(xc)
            # in float64 (p x p): float32 eigenvalues err by eps * lam_max, which the
            # whitening amplifies for the small ones
            lam, v = torch.linalg.eigh(cov)
            lam = lam.clamp_min(_EIG_TOL)
            d = alpha + (1 - alpha) * lam.rsqrt()
            self.z = ((v * d) @ v.T).to(x.dtype)
            self.lam_sum = lam.sum()
            self.new_var = (
                alpha**2 * lam + 2 * alpha * (1 - alpha) * lam.sqrt() + (1 - alpha) ** 2
            ).sum()

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Centre ``x`` with the fitted mean and whiten it (without the rescaling)."""
        xc = x - self.mean
        return xc if self.z is None else xc @ self.z

    def scale(self, width: torch.Tensor) -> torch.Tensor:
        """Return netrep's variance-preserving factor after zero-padding to ``width`` columns."""
        width = _acc(width)
        if self.z is None:
            return torch.ones_like(width)
        k = width - self.p
        a = self.alpha
        pad_var = a**2 * _EIG_TOL + 2 * a * (1 - a) * math.sqrt(_EIG_TOL) + (1 - a) ** 2
        return torch.sqrt((self.lam_sum + k * _EIG_TOL) / (self.new_var + k * pad_var))


def _ceil8(width: Any) -> Any:
    """Round widths up to a multiple of 8: the block shapes of the batched calls."""
    return -(-width // 8) * 8


def _buckets(
    widths: np.ndarray, ii: np.ndarray, jj: np.ndarray
) -> list[tuple[np.ndarray, int, int]]:
    """Pairs grouped by block shape: (pair indices, rows, cols), rows the narrower width.

    Widths are rounded up to a multiple of 8 so that few batched calls are needed; the
    extra zero rows and columns do not change singular values (and :func:`_nuclear_norms`
    accounts for the zero rows).
    """
    lo = np.minimum(widths[ii], widths[jj])
    hi = np.maximum(widths[ii], widths[jj])
    lo8, hi8 = _ceil8(lo), _ceil8(hi)
    keys = lo8 * 1_000_000 + hi8
    out = []
    for key in np.unique(keys):
        sel = np.flatnonzero(keys == key)
        out.append((sel, int(key // 1_000_000), int(key % 1_000_000)))
    return out


#: Worst-case error allowed on a distance computed through :func:`_nuclear_norms`'
#: eigenvalues (radians; for Euclidean scores relative to |X| + |Y|); pairs whose bound
#: exceeds it get their singular values from an SVD.
_EIG_ROUTE_ATOL = 1e-10


def _nuclear_norms(b: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of singular values of each (R, c) block, with a bound on its error.

    Block ``k`` holds ``rows[k] <= R`` rows of data and zero rows below. The singular values
    are the square roots of the eigenvalues of the R x R matrix ``B B^T`` (a symmetric
    eigenproblem: 2-3x faster than an SVD of B on the CPU). Its zero rows and columns are
    exact (zero rows of B), so ``mu`` on their diagonal (``mu`` the largest diagonal entry)
    makes a block-diagonal matrix whose eigenvalues are those of the data block and
    ``R - rows`` copies of ``mu``, whose square roots are subtracted: no eigenvalue of the
    padding sits at zero, where a square root is least accurate. Each eigenvalue is within
    ``delta = (R + c) eps lambda_max`` of the exact one (the rounding of forming ``B B^T``
    and of the eigensolver, normwise), so each square root is within ``delta / sqrt(lambda)``,
    or ``sqrt(2 delta)`` for an eigenvalue below ``delta``; their sum bounds the error of the
    norm. Small singular values are where this route loses accuracy, and the bound says
    when (the caller falls back to an SVD).
    """
    r, c = b.shape[-2:]
    g = b @ b.transpose(-1, -2)
    diag = g.diagonal(dim1=-2, dim2=-1)
    mu = diag.amax(-1, keepdim=True).clamp_min(torch.finfo(b.dtype).tiny)
    pad = torch.arange(r, device=b.device) >= rows.unsqueeze(-1)  # (k, R)
    diag.add_(mu * pad)  # in place on g's diagonal
    lam = torch.linalg.eigvalsh(g)  # ascending
    delta = (r + c) * torch.finfo(b.dtype).eps * lam[..., -1:].clamp_min(0.0)
    root = lam.clamp_min(0.0).sqrt()
    big = lam >= delta
    err = torch.where(big, delta / torch.where(big, root, 1.0), torch.sqrt(2.0 * delta))
    n_pad = pad.sum(-1).to(b.dtype)
    return root.sum(-1) - n_pad * mu.squeeze(-1).sqrt(), err.sum(-1)


class _Cross:
    """All cross products ``W_i^T W_j`` of some networks, in float64.

    The Gram matrix of the concatenated networks is computed once (on the CPU by BLAS
    ``dsyrk``, half the work of a full product) into a matrix padded with zero rows and
    columns, so that every block ``W_r^T W_c`` zero-padded to a common shape is a window of it:
    a batch of blocks is one gather from a strided view of all windows, masked to each pair's
    widths. When that matrix would be large (``S`` the total width), blocks are instead
    computed per batch of pairs with :func:`torch.bmm` from a zero-padded stack of the networks.
    """

    _MAX_ELEMENTS = 2**26  # 512 MiB of float64

    def __init__(self, ws: Sequence[torch.Tensor]) -> None:
        self.widths = np.array([w.shape[1] for w in ws])
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)])
        total = int(self.offsets[-1])
        pad = _ceil8(int(self.widths.max()))  # the widest block of _buckets
        dev = ws[0].device
        self.dev = dev
        n = ws[0].shape[0]
        budget = resolve_budget(None, dev)
        if (total + pad) ** 2 <= min(self._MAX_ELEMENTS, budget // 16):
            self.gram, self.stack = _padded_gram(_acc(torch.cat(list(ws), dim=1)), pad), None
        else:
            check_fits(
                8 * len(ws) * n * pad * 2,
                f"shape metrics: {len(ws)} networks of {n} stimuli zero-padded to {pad} "
                "features in float64, and their products",
                budget,
            )
            stack = _acc(ws[0]).new_zeros((len(ws), ws[0].shape[0], pad))
            for k, w in enumerate(ws):
                stack[k, :, : w.shape[1]] = w
            self.gram, self.stack = None, stack

    def blocks(self, ii: np.ndarray, jj: np.ndarray, n_rows: int, n_cols: int) -> torch.Tensor:
        """``W_r^T W_c`` zero-padded to ``(n_rows, n_cols)``, ``r`` the narrower of each pair."""
        swap = self.widths[ii] > self.widths[jj]
        rows, cols = np.where(swap, jj, ii), np.where(swap, ii, jj)
        if self.stack is not None:
            left = self.stack[torch.as_tensor(rows, device=self.dev), :, :n_rows]
            right = self.stack[torch.as_tensor(cols, device=self.dev), :, :n_cols]
            return torch.bmm(left.transpose(1, 2), right)
        windows = self.gram.unfold(0, n_rows, 1).unfold(1, n_cols, 1)  # a view, no copy
        start = torch.as_tensor(self.offsets[rows], device=self.dev)
        stop = torch.as_tensor(self.offsets[cols], device=self.dev)
        out = windows[start, stop]  # (pairs, n_rows, n_cols); the next network beyond widths
        keep_r = torch.arange(n_rows, device=self.dev) < torch.as_tensor(
            self.widths[rows], device=self.dev
        ).unsqueeze(1)
        keep_c = torch.arange(n_cols, device=self.dev) < torch.as_tensor(
            self.widths[cols], device=self.dev
        ).unsqueeze(1)
        return out * (keep_r.unsqueeze(2) & keep_c.unsqueeze(1))


def _padded_gram(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``x^T x`` (float64) with ``pad`` zero rows and columns appended.

    On the CPU through NumPy: its BLAS computes a product with its own transpose as a
    symmetric rank-k update, and its zeros are pages the kernel provides already zeroed.
    """
    s = x.shape[1]
    if x.device.type == "cpu":
        a = x.numpy()
        g = np.zeros((s + pad, s + pad))
        g[:s, :s] = a.T @ a
        return torch.from_numpy(g)
    g = x.new_zeros((s + pad, s + pad))
    g[:s, :s] = x.T @ x
    return g


def _folds(n: int, cv: int | None, seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test stimulus indices: all/all, or ``cv`` seeded folds (permute, then split)."""
    if cv is None:
        idx = np.arange(n)
        return [(idx, idx)]
    if cv > n:
        raise ValueError(f"cv must be at most the number of stimuli ({n}), got {cv}.")
    perm = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(perm, cv)
    return [
        (np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(t))
        for i, t in enumerate(parts)
    ]


def _shape_pairs(
    xs: Sequence[torch.Tensor],
    ii: np.ndarray,
    jj: np.ndarray,
    *,
    alpha: float,
    score: str,
    group: str,
    cv: int | None,
    seed: int | None,
) -> torch.Tensor:
    """Shape distances between networks ``xs[ii[k]]`` and ``xs[jj[k]]`` (float64, (pairs,))."""
    n = xs[0].shape[0]
    dev = xs[0].device
    ii, jj = np.minimum(ii, jj), np.maximum(ii, jj)  # distances are symmetric; i < j
    widths = np.array([x.shape[1] for x in xs])
    w64 = torch.as_tensor(widths, dtype=torch.float64, device=dev)
    ti, tj = torch.as_tensor(ii, device=dev), torch.as_tensor(jj, device=dev)
    pair_width = torch.maximum(w64[ti], w64[tj])
    narrow_first = widths[ii] <= widths[jj]
    rows_net = np.where(narrow_first, ii, jj)
    cols_net = np.where(narrow_first, jj, ii)
    buckets = _buckets(widths, ii, jj)
    total = torch.zeros(len(ii), dtype=torch.float64, device=dev)
    folds = _folds(n, cv, seed)
    for train, test in folds:
        tr = torch.as_tensor(train, device=dev)
        te = torch.as_tensor(test, device=dev)
        fits = [_Whitened(x[tr], alpha) for x in xs]
        w_tr = [f.apply(x[tr]) for f, x in zip(fits, xs, strict=True)]
        w_te = w_tr if cv is None else [f.apply(x[te]) for f, x in zip(fits, xs, strict=True)]
        c_tr = _Cross(w_tr)
        c_te = c_tr if cv is None else _Cross(w_te)
        inner = torch.zeros(len(ii), dtype=torch.float64, device=dev)
        inner_err = torch.zeros(len(ii), dtype=torch.float64, device=dev)
        for sel, n_rows, n_cols in buckets:
            args = (ii[sel], jj[sel], n_rows, n_cols)
            b_tr = c_tr.blocks(*args)
            b_te = b_tr if cv is None else c_te.blocks(*args)
            if group == "orthogonal":
                # float64 blocks, float64 decompositions: the distance is the square root
                # of a difference of sums (|X|^2 + |Y|^2 - 2 |X^T Y|_*), so float32 singular
                # values (error eps * s_max each) would leave sqrt(eps) of the norms
                if cv is None:
                    n_narrow = np.minimum(widths[ii[sel]], widths[jj[sel]])
                    val, err = _nuclear_norms(b_tr, torch.as_tensor(n_narrow, device=dev))
                    inner_err[torch.as_tensor(sel, device=dev)] = err
                else:
                    u, _, vh = torch.linalg.svd(b_tr, full_matrices=False)
                    val = (b_te * (u @ vh)).sum((-2, -1))
            elif group == "permutation":
                tr_np = b_tr.detach().cpu().numpy()
                mask = np.zeros(tr_np.shape, dtype=bool)
                for k, (r_net, c_net) in enumerate(zip(rows_net[sel], cols_net[sel], strict=True)):
                    blk = tr_np[k, : widths[r_net], : widths[c_net]]
                    r, c = linear_sum_assignment(blk, maximize=True)
                    mask[k, r, c] = True
                val = (b_te * torch.as_tensor(mask, device=dev)).sum((-2, -1))
            else:
                val = b_te.diagonal(dim1=-2, dim2=-1).sum(-1)
            inner[torch.as_tensor(sel, device=dev)] = val
        sq = torch.stack([(_acc(w) ** 2).sum() for w in w_te])
        scales = torch.stack([f.scale(pair_width) for f in fits])  # (networks, pairs)
        arange = torch.arange(len(ii), device=dev)
        sx, sy = scales[ti, arange], scales[tj, arange]
        nx2, ny2 = sq[ti] * sx**2, sq[tj] * sy**2
        dist, dist_err = _distance(inner * sx * sy, inner_err * sx * sy, nx2, ny2, score)
        redo = np.flatnonzero((dist_err > _EIG_ROUTE_ATOL).detach().cpu().numpy())
        if len(redo):  # the eigenvalue route cannot vouch for these pairs: SVD them
            rows = _ceil8(int(np.minimum(widths[ii[redo]], widths[jj[redo]]).max()))
            cols = _ceil8(int(np.maximum(widths[ii[redo]], widths[jj[redo]]).max()))
            blk = c_tr.blocks(ii[redo], jj[redo], rows, cols)
            t_redo = torch.as_tensor(redo, device=dev)
            nuc = torch.linalg.svdvals(blk).sum(-1) * sx[t_redo] * sy[t_redo]
            dist[t_redo] = _distance(nuc, None, nx2[t_redo], ny2[t_redo], score)[0]
        total = total + dist
    return total / len(folds)


def _distance(
    inner: torch.Tensor,
    err: torch.Tensor | None,
    nx2: torch.Tensor,
    ny2: torch.Tensor,
    score: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the distance from ``<X, Y Q>`` and the squared norms, and a bound on its error.

    ``err`` bounds the error of the inner product (None: exact, a zero bound). The bound is
    relative to the scale of the score: radians for ``"angular"``, ``|X| + |Y|`` for
    ``"euclidean"``.
    """
    if score == "angular":
        norm = torch.sqrt(nx2 * ny2)
        rho = (inner / norm).clamp(-1.0, 1.0)
        dist = torch.arccos(rho)
        if err is None:
            return dist, torch.zeros_like(dist)
        d_rho = err / norm
        far = rho.abs() + d_rho  # d arccos / d rho = 1 / sqrt(1 - rho^2), largest at far
        ok = far < 1.0
        bound = torch.where(
            ok, d_rho / torch.sqrt(1.0 - torch.where(ok, far, 0.0) ** 2), torch.inf
        )
        return dist, torch.where(err > 0, bound, 0.0)
    sq = (nx2 + ny2 - 2 * inner).clamp_min(0.0)
    dist = torch.sqrt(sq)
    if err is None:
        return dist, torch.zeros_like(dist)
    d_sq = 2.0 * err
    big = sq >= 2.0 * d_sq
    bound = torch.where(big, d_sq / torch.where(big, dist, 1.0), torch.sqrt(3.0 * d_sq))
    return dist, torch.where(err > 0, bound / (torch.sqrt(nx2) + torch.sqrt(ny2)), 0.0)


# --------------------------------------------------------------------------------------------
# Public: shape_metric
# --------------------------------------------------------------------------------------------


def shape_metric(
    a: Any,
    b: Any,
    *,
    alpha: float = 1.0,
    score: str = "angular",
    group: str = "orthogonal",
    cv: int | None = None,
    seed: int | None = None,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Generalized shape metric between two representations (a distance).

    Both representations are centred, partially whitened (``alpha``), the narrower one is
    zero-padded, and the angle (or Euclidean distance) between them after the best
    orthogonal transformation or permutation of one of them is returned; see the module
    notes. It is a metric: symmetric, zero for a rotated and translated copy (for
    ``score="angular"`` also a rescaled copy) and it satisfies the triangle inequality.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim and a feature dim (``unit``, ``voxel`` ...);
        other dims broadcast. Stimuli are matched by id. Widths may differ.
    alpha : float
        Partial whitening in ``[0, 1]``: ``1`` keeps the data (Procrustes shape distance),
        ``0`` whitens fully (a CCA-like distance). As netrep's ``LinearMetric(alpha)``.
    score : {"angular", "euclidean"}
        ``arccos`` of the normalised inner product after alignment, in ``[0, pi/2]`` for
        centred data, or the Frobenius norm of the difference (not divided by ``sqrt(n)``).
    group : {"orthogonal", "permutation", "identity"}
        The alignments allowed: any rotation/reflection, a permutation of units (netrep's
        ``PermutationMetric`` when ``alpha=1``), or none.
    cv : int, optional
        ``None`` fits the alignment and scores on all stimuli (netrep's ``fit_score``). An
        int ``k >= 2`` splits the stimuli into ``k`` folds (a random permutation from
        ``seed``, then contiguous nearly equal parts); for each fold the centring, whitening
        and alignment are fitted on the other folds and the distance is scored on it
        (netrep's ``fit(X_train, Y_train).score(X_test, Y_test)``); the folds' distances are
        averaged.
    seed : int, optional
        Seed of the fold assignment (``None``: not reproducible). Unused without ``cv``.
    key_dims : tuple of str
        Dim names for the keys of mappings ``a`` and ``b``.
    device, dtype : optional
        Where and in what precision to compute (see :func:`brainalign.set_config`).

    Returns
    -------
    distance : xarray.DataArray
        The distances over the broadcast dims (a scalar array for two plain
        representations); attrs record the measure and its parameters.

    Raises
    ------
    ValueError
        For an unknown ``score`` or ``group``, ``alpha`` outside ``[0, 1]``, ``cv < 2`` or
        more folds than stimuli.

    References
    ----------
    Williams, A. H., Kunz, E., Kornblith, S. & Linderman, S. W. (2021). Generalized shape
    metrics on neural representations. NeurIPS 34. https://arxiv.org/abs/2110.14739

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> from brainalign.align._shape import shape_metric
    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    >>> a, b = ba.responses(x), ba.responses(2 * x @ q + 1)
    >>> round(float(shape_metric(a, b)), 6)
    0.0
    """
    _check_shape_args(alpha, score, group, cv)
    if seed is not None:
        check_number("seed", seed, low=0, integer=True)

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _shape_pairs(
            [x, y],
            np.array([0]),
            np.array([1]),
            alpha=float(alpha),
            score=score,
            group=group,
            cv=cv,
            seed=seed,
        )[0]

    params = {"alpha": float(alpha), "score": score, "group": group, "cv": cv, "seed": seed}
    return apply_pair(
        kernel,
        a,
        b,
        key_dims=key_dims,
        attrs=result_attrs(
            "shape_metric",
            kind="distance",
            params=params,
            similarity_id=_similarity_id(group, score),
        ),
        name="shape_metric",
        device=device,
        dtype=dtype,
        min_samples=max(3, cv or 0),
    )


# --------------------------------------------------------------------------------------------
# Stochastic shape metrics
# --------------------------------------------------------------------------------------------


def _align(m: torch.Tensor, group: str) -> torch.Tensor:
    """Return the ``T`` in ``group`` maximising ``trace(T^T M)``.

    With ``M = A^T B`` it is the alignment of ``A T`` to ``B`` (netrep's ``align(A, B)``).
    """
    if group == "orthogonal":
        u, _, vh = torch.linalg.svd(m)
        return u @ vh
    if group == "permutation":
        r, c = linear_sum_assignment(m.detach().cpu().numpy(), maximize=True)
        t = torch.zeros_like(m)
        t[torch.as_tensor(r, device=m.device), torch.as_tensor(c, device=m.device)] = 1.0
        return t
    return torch.eye(m.shape[0], dtype=m.dtype, device=m.device)


def _by_stimulus(x: torch.Tensor, codes: np.ndarray, n_stim: int) -> tuple[torch.Tensor, ...]:
    """Trials ``(t, p)`` as a zero-padded ``(stimuli, max_trials, p)`` tensor, mask and counts."""
    counts = np.bincount(codes, minlength=n_stim)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts[codes[order]]
    r = int(counts.max())
    out = x.new_zeros((n_stim, r, x.shape[1]))
    ci = torch.as_tensor(codes, device=x.device)
    ri = torch.as_tensor(rank, device=x.device)
    out[ci, ri] = x
    mask = x.new_zeros((n_stim, r))
    mask[ci, ri] = 1.0
    return out, mask, torch.as_tensor(counts, dtype=torch.float64, device=x.device)


def _pad_width(x: torch.Tensor, width: int) -> torch.Tensor:
    if x.shape[-1] == width:
        return x
    return torch.nn.functional.pad(x, (0, width - x.shape[-1]))


def _psd_sqrt(c: torch.Tensor) -> torch.Tensor:
    v, u = torch.linalg.eigh(c)
    return (u * v.clamp_min(0.0).sqrt()[..., None, :]) @ u.transpose(-2, -1)


def _gaussian_kernel(
    xp: torch.Tensor,
    mx: torch.Tensor,
    cx: torch.Tensor,
    yp: torch.Tensor,
    my: torch.Tensor,
    cy: torch.Tensor,
    *,
    alpha: float,
    group: str,
    eps: float,
    niter: int,
    tol: float,
) -> torch.Tensor:
    """Duong et al.'s interpolated 2-Wasserstein metric, fitted as netrep does.

    Computed in float64 whatever the data's dtype: the Bures term ``tr Cx + tr Cy -
    2 |Sx Sy|_*`` cancels to the distance squared, so float32 square roots and singular
    values would leave about ``sqrt(eps)`` of the covariances' scale.
    """
    xp, mx, cx, yp, my, cy = (_acc(t) for t in (xp, mx, cx, yp, my, cy))
    dt = torch.float64
    width = max(xp.shape[-1], yp.shape[-1])
    eye = torch.eye(width, dtype=dt, device=xp.device)
    means_x, means_y = _pad_width(mx, width), _pad_width(my, width)
    covs_x = _pad_width(_pad_width(cx, width).transpose(-2, -1), width) + eps * eye
    covs_y = _pad_width(_pad_width(cy, width).transpose(-2, -1), width) + eps * eye
    sx, sy = _psd_sqrt(covs_x), _psd_sqrt(covs_y)
    t = _align((_acc(means_y).T @ _acc(means_x)).to(dt), group)
    a_mat = torch.cat([alpha * means_x, (2 - alpha) * sx.reshape(-1, width)])
    prev = math.inf
    for it in range(niter):
        # per-stimulus rotations Q_i = argmin |T^T sy_i Q - sx_i|: M_i = sy_i T sx_i
        u, _, vh = torch.linalg.svd(sy @ t @ sx)
        qs = u @ vh
        b_mat = torch.cat(
            [alpha * means_y, ((2 - alpha) * (qs.transpose(-2, -1) @ sy)).reshape(-1, width)]
        )
        t = _align((_acc(b_mat).T @ _acc(a_mat)).to(dt), group)
        loss = float(torch.linalg.norm(_acc(a_mat) - _acc(b_mat @ t)))
        if it >= 2 and prev - loss < tol:
            break
        prev = loss
    mean_term = (_acc(means_x - means_y @ t) ** 2).sum(-1)
    sy_t = t.T @ sy @ t
    nuc = _acc(torch.linalg.svdvals(sx @ sy_t)).sum(-1)
    tr_x = _acc(covs_x).diagonal(dim1=-2, dim2=-1).sum(-1)
    tr_y = _acc(covs_y).diagonal(dim1=-2, dim2=-1).sum(-1)
    bures = tr_x + tr_y - 2 * nuc
    mn = (alpha * mean_term + (2 - alpha) * bures).mean()
    return torch.sign(mn) * torch.sqrt(mn.abs())


def _cdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def _energy_kernel(
    xp: torch.Tensor,
    mask_x: torch.Tensor,
    nx: torch.Tensor,
    yp: torch.Tensor,
    mask_y: torch.Tensor,
    ny: torch.Tensor,
    *,
    group: str,
    niter: int,
    tol: float,
) -> torch.Tensor:
    """Energy-distance stochastic shape metric, fitted by netrep's reweighted Procrustes."""
    width = max(xp.shape[-1], yp.shape[-1])
    xp, yp = _pad_width(xp, width), _pad_width(yp, width)
    n_stim = xp.shape[0]
    pair = _acc(mask_x)[:, :, None] * _acc(mask_y)[:, None, :]
    # weight of each same-stimulus trial pair: each stimulus counts equally
    c = pair / (nx * ny)[:, None, None] / n_stim
    prev = float((c * _acc(_cdist(xp, yp))).sum())
    w2 = c
    flat_y = yp.reshape(-1, width)
    q = torch.eye(width, dtype=xp.dtype, device=xp.device)
    for _ in range(niter):
        z = torch.bmm(w2.transpose(1, 2), _acc(xp))  # (S, ry, p)
        q = _align((_acc(flat_y).T @ z.reshape(-1, width)).to(xp.dtype), group)
        resid = _acc(_cdist(xp, yp @ q))
        loss = float((c * resid).sum())
        w2 = c / resid.clamp_min(1e-12)
        if prev - loss < tol:
            break
        prev = loss
    yq = yp @ q
    d_xy = (pair * _acc(_cdist(xp, yq))).sum((-2, -1)) / (nx * ny)

    def within(z: torch.Tensor, mask: torch.Tensor, cnt: torch.Tensor) -> torch.Tensor:
        upper = torch.triu(_acc(mask)[:, :, None] * _acc(mask)[:, None, :], diagonal=1)
        return (upper * _acc(_cdist(z, z))).sum((-2, -1)) / (cnt * (cnt - 1) / 2)

    d_xx, d_yy = within(xp, mask_x, nx), within(yq, mask_y, ny)
    val = d_xy.mean() - 0.5 * (d_xx.mean() + d_yy.mean())
    return torch.sqrt(val.clamp_min(0.0))


def stochastic_shape(
    a: Any,
    b: Any,
    *,
    method: str = "gaussian",
    alpha: float = 1.0,
    group: str = "orthogonal",
    eps: float = 0.0,
    max_iter: int | None = None,
    tol: float | None = None,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Stochastic shape metric between two trial-level representations (a distance).

    Each stimulus evokes a distribution of responses, sampled by its trials. The metric
    aligns the two networks by one transformation (``group``) and compares, stimulus by
    stimulus, the two response distributions:

    * ``method="gaussian"``: each distribution is summarised by its mean and covariance
      (``numpy.cov``, ``ddof=1``, plus ``eps`` times the identity) and compared by
      ``alpha |m_x - m_y T|^2 + (2 - alpha) B(S_x, T^T S_y T)^2`` averaged over stimuli, with
      ``B`` the Bures distance; the square root is returned. ``alpha=1`` is the
      2-Wasserstein distance between Gaussians, ``0`` uses covariances only, ``2`` means only
      (then it is the Procrustes size-and-shape distance of the means, divided by
      ``sqrt(n)``, without centring). The alignment is fitted as in netrep's
      ``GaussianStochasticMetric`` (initialised by aligning the means, then alternating
      per-stimulus rotations and a global alignment until the loss decreases by less than
      ``tol``).
    * ``method="energy"``: the energy distance between the trial distributions, averaged over
      stimuli, ``sqrt(E|x - yT| - (E|x - x'| + E|y - y'|) / 2)``; the alignment is fitted
      by netrep's ``EnergyStochasticMetric`` iteratively reweighted Procrustes on all pairs
      of same-stimulus trials. With unequal trial counts each stimulus weighs equally.

    Means are not centred (as in netrep). Widths may differ: the narrower network is
    zero-padded.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Trial-level responses: a ``trial`` dim with a ``stimulus`` coordinate giving each
        trial's stimulus id, and a feature dim; other dims broadcast. Every stimulus needs at
        least 2 trials in each network. Stimuli are matched by id.
    method : {"gaussian", "energy"}
        The ground metric between response distributions.
    alpha : float
        Gaussian only: the weight of means versus covariances, in ``[0, 2]``.
    group : {"orthogonal", "permutation", "identity"}
        The alignments allowed.
    eps : float
        Gaussian only: ridge added to every covariance (netrep's ``pairwise_distances``
        uses ``1e-6``).
    max_iter : int, optional
        Iterations of the fit (default 1000 for ``"gaussian"``, 100 for ``"energy"``).
    tol : float, optional
        Stop when the loss decreases by less (default 1e-8 / 1e-6).
    key_dims : tuple of str
        Dim names for the keys of mappings ``a`` and ``b``.
    device, dtype : optional
        Where and in what precision to compute.

    Returns
    -------
    distance : xarray.DataArray
        The distances over the broadcast dims.

    Raises
    ------
    ValueError
        For an unknown ``method`` or ``group``, ``alpha`` outside ``[0, 2]`` (or not 1 with
        ``"energy"``), a negative ``eps``, or a stimulus with fewer than 2 trials.

    References
    ----------
    Duong, L. R., Zhou, J., Nassar, J., Berman, J., Olieslagers, J. & Williams, A. H. (2023).
    Representational dissimilarity metric spaces for stochastic neural networks. ICLR.
    https://arxiv.org/abs/2211.11665

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> from brainalign.align._shape import stochastic_shape
    >>> x = np.random.default_rng(0).normal(size=(12, 2))
    >>> ids = ["s0", "s1", "s2"] * 4
    >>> a = ba.responses(x, ids, sample_dim="trial")
    >>> b = ba.responses(-x, ids, sample_dim="trial")  # a reflected copy
    >>> round(float(stochastic_shape(a, b)), 6)
    0.0
    """
    check_option("method", method, _METHODS)
    check_option("group", group, _GROUPS)
    check_number("alpha", alpha, low=0.0, high=2.0)
    if method == "energy" and alpha != 1.0:
        raise ValueError(
            f"alpha applies to method='gaussian' only; method='energy' needs alpha=1.0, "
            f"got {alpha}."
        )
    check_number("eps", eps, low=0.0)
    niter, tol_default = _ITER_DEFAULTS[method]
    if max_iter is not None:
        niter = check_number("max_iter", max_iter, low=1, integer=True)
    tol = tol_default if tol is None else check_number("tol", tol, low=0.0)

    ea = entries(a, name="a", key_dim=key_dims[0], samples=TRIAL)
    eb = entries(b, name="b", key_dim=key_dims[1], samples=TRIAL)
    align_sides(ea, eb, TRIAL)
    stim_ids = np.unique(np.asarray(ea.arrays[0][STIMULUS].values))
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    cache: dict[tuple[str, int], tuple[torch.Tensor, ...]] = {}

    def prepared(side: str, e: Entries, i: int) -> tuple[torch.Tensor, ...]:
        if (side, i) in cache:
            return cache[(side, i)]
        da = e.arrays[i]
        label = entry_label(side, e, i)
        check_finite(da.values, label)
        codes = np.searchsorted(stim_ids, np.asarray(da[STIMULUS].values))
        counts = np.bincount(codes, minlength=len(stim_ids))
        if counts.min() < 2:
            few = stim_ids[counts < 2].tolist()
            raise ValueError(
                f"{label}: stochastic_shape needs at least 2 trials of every stimulus; "
                f"{len(few)} stimuli have fewer: {few[:10]}."
            )
        x = as_tensor(da.values, dev, dt)
        xp, mask, cnt = _by_stimulus(x, codes, len(stim_ids))
        if method == "gaussian":
            means = (_acc(xp).sum(1) / cnt[:, None]).to(dt)
            xc = (xp - means[:, None, :]) * mask[:, :, None]
            covs = (_acc(xc).transpose(1, 2) @ _acc(xc) / (cnt - 1)[:, None, None]).to(dt)
            cache[(side, i)] = (xp, means, covs)
        else:
            cache[(side, i)] = (xp, mask, cnt)
        return cache[(side, i)]

    def kernel(pa: tuple[torch.Tensor, ...], pb: tuple[torch.Tensor, ...]) -> float:
        if method == "gaussian":
            val = _gaussian_kernel(
                *pa,
                *pb,
                alpha=float(alpha),
                group=group,
                eps=float(eps),
                niter=niter,
                tol=tol,
            )
        else:
            val = _energy_kernel(*pa, *pb, group=group, niter=niter, tol=tol)
        return float(val)

    out_dims, out_shape, coords = _broadcast(ea, eb)
    values = []
    for pos in itertools.product(*(range(s) for s in out_shape)):
        lab = dict(zip(out_dims, pos, strict=True))
        ia = int(np.ravel_multi_index([lab[d] for d in ea.dims], ea.shape)) if ea.dims else 0
        ib = int(np.ravel_multi_index([lab[d] for d in eb.dims], eb.shape)) if eb.dims else 0
        values.append(kernel(prepared("a", ea, ia), prepared("b", eb, ib)))
    params = {
        "method": method,
        "alpha": float(alpha),
        "group": group,
        "eps": float(eps),
        "max_iter": niter,
        "tol": tol,
    }
    out = xr.DataArray(
        np.asarray(values, dtype=np.float64).reshape(out_shape),
        dims=out_dims,
        coords=coords,
        attrs=result_attrs("stochastic_shape", kind="distance", params=params),
        name="stochastic_shape",
    )
    out.attrs["n_stimuli"] = len(stim_ids)
    return out


def _broadcast(ea: Entries, eb: Entries) -> tuple[list[str], list[int], dict[str, Any]]:
    for d in (d for d in eb.dims if d in ea.dims):
        if not np.array_equal(ea.coords[d], eb.coords[d]):
            raise ValueError(
                f"dim {d!r} is in both a and b with different labels; it pairs label by "
                f"label, so rename it in one of them for an outer product."
            )
    out_dims = list(ea.dims) + [d for d in eb.dims if d not in ea.dims]
    both = ea.coords | eb.coords
    return out_dims, [len(both[d]) for d in out_dims], {d: both[d] for d in out_dims}


# --------------------------------------------------------------------------------------------
# Pairwise distance matrices and their embedding
# --------------------------------------------------------------------------------------------


def _networks(reps: Any, dim: str, samples: str) -> tuple[list[str], list[xr.DataArray]]:
    if isinstance(reps, xr.DataArray) and dim not in reps.dims:
        raise SchemaError(
            f"reps is a DataArray without the {dim!r} dim (dims {tuple(reps.dims)}); give a "
            f"mapping {{name: representation}} or an array with a {dim!r} dim."
        )
    e = entries(reps, name="reps", key_dim=dim, samples=samples)
    if tuple(e.dims) != (dim,):
        raise SchemaError(
            f"reps must have exactly one dim besides samples and features, {dim!r}; got "
            f"{tuple(e.dims)}. Select or stack the others first."
        )
    if len(e.arrays) < 2:
        raise ValueError(f"pairwise needs at least 2 networks, got {len(e.arrays)}.")
    first = e.arrays[0][STIMULUS].values
    if not all(np.array_equal(da[STIMULUS].values, first) for da in e.arrays[1:]):
        align_sides(e, Entries([], ()), samples)
    return [str(k) for k in e.coords[dim]], e.arrays


def pairwise(
    reps: Any,
    *,
    measure: str | Callable[..., Any] = "shape_metric",
    dim: str = "network",
    **kw: Any,
) -> xr.DataArray:
    """Distances between every pair of many networks, as a labeled matrix.

    With ``measure="shape_metric"`` all pairs are computed at once: each network is centred
    and whitened once, every cross product comes from one Gram matrix, and the nuclear norms
    of the orthogonal group from batched symmetric eigenproblems of ``B B^T`` with an error
    bound per pair; a pair whose distance that bound cannot vouch for to 1e-10 (rank-deficient
    blocks, near-identical networks) gets a batched SVD instead (netrep's
    ``pairwise_distances`` refits both networks of every pair and takes a full SVD).

    Parameters
    ----------
    reps : mapping of xarray.DataArray or xarray.DataArray
        ``{name: representation}`` (widths may differ), or an array with a ``dim`` dim.
        Stimuli are matched by id across networks.
    measure : {"shape_metric", "stochastic_shape"} or callable
        The distance. A callable ``measure(a, b, **kw)`` returning a scalar DataArray (or
        float) is applied to every pair in turn.
    dim : str
        The name of the network dim; the result's dims are ``dim + "_a"`` and ``dim + "_b"``.
    **kw
        Parameters of the measure (e.g. ``alpha``, ``score``, ``group``, ``cv``, ``seed``,
        ``device``, ``dtype``).

    Returns
    -------
    distances : xarray.DataArray
        A symmetric matrix with a zero diagonal, dims ``(dim_a, dim_b)`` labeled with the
        network names.

    Raises
    ------
    ValueError
        For an unknown measure, fewer than 2 networks, or invalid measure parameters.

    References
    ----------
    Williams, A. H., Kunz, E., Kornblith, S. & Linderman, S. W. (2021). Generalized shape
    metrics on neural representations. NeurIPS 34. https://arxiv.org/abs/2110.14739

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> from brainalign.align._shape import pairwise
    >>> rng = np.random.default_rng(0)
    >>> reps = {k: ba.responses(rng.normal(size=(10, 3))) for k in "xyz"}
    >>> d = pairwise(reps)
    >>> d.dims, bool((d == d.T).all()), float(d.sel(network_a="x", network_b="x"))
    (('network_a', 'network_b'), True, 0.0)
    """
    if not callable(measure):
        check_option("measure", measure, _MEASURES)
    samples = TRIAL if measure == "stochastic_shape" else STIMULUS
    names, arrays = _networks(reps, dim, samples)
    m = len(arrays)
    ii, jj = np.triu_indices(m, k=1)
    dims = (f"{dim}_a", f"{dim}_b")
    values = np.zeros((m, m))
    if measure == "shape_metric":
        alpha = kw.pop("alpha", 1.0)
        score = kw.pop("score", "angular")
        group = kw.pop("group", "orthogonal")
        cv = kw.pop("cv", None)
        seed = kw.pop("seed", None)
        device, dtype = kw.pop("device", None), kw.pop("dtype", None)
        if kw:
            raise TypeError(f"pairwise(measure='shape_metric') got unexpected {sorted(kw)}.")
        _check_shape_args(alpha, score, group, cv)
        n = arrays[0].sizes[STIMULUS]
        if n < max(3, cv or 0):
            raise ValueError(f"shape_metric needs at least {max(3, cv or 0)} stimuli, got {n}.")
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        xs = []
        for name, da in zip(names, arrays, strict=True):
            check_finite(da.values, f"reps[{name!r}]")
            xs.append(as_tensor(da.values, dev, dt))
        d = _shape_pairs(
            xs, ii, jj, alpha=float(alpha), score=score, group=group, cv=cv, seed=seed
        )
        values[ii, jj] = d.detach().cpu().numpy()
        params = {"alpha": float(alpha), "score": score, "group": group, "cv": cv, "seed": seed}
        attrs = result_attrs(
            "shape_metric",
            kind="distance",
            params=params,
            similarity_id=_similarity_id(group, score),
        )
    else:
        fn = stochastic_shape if measure == "stochastic_shape" else measure
        attrs = {}
        for i, j in zip(ii, jj, strict=True):
            val = fn(arrays[i], arrays[j], **kw)
            if isinstance(val, xr.DataArray):
                attrs = dict(val.attrs)
                val = val.values
            values[i, j] = float(np.asarray(val))
    values = values + values.T
    out = xr.DataArray(
        values, dims=dims, coords={dims[0]: names, dims[1]: names}, attrs=attrs, name="distance"
    )
    out.attrs["n_stimuli"] = int(
        arrays[0].sizes[samples]
        if samples == STIMULUS
        else len(np.unique(arrays[0][STIMULUS].values))
    )
    return out


def embed(
    distances: xr.DataArray,
    *,
    n_components: int = 2,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Classical (Torgerson) multidimensional scaling of a distance matrix.

    The squared distances are double-centred, ``B = -1/2 J D^2 J`` (by subtracting row and
    column means), and the points are the top eigenvectors of ``B`` scaled by the square
    roots of their eigenvalues (negative eigenvalues are set to zero). Each component's sign
    is fixed so that its largest-magnitude coordinate is positive. For Euclidean distances
    the embedding reproduces them exactly when ``n_components`` reaches their dimension.

    Parameters
    ----------
    distances : xarray.DataArray
        A square, symmetric matrix of distances with two dims labeled alike, such as the
        output of :func:`pairwise`.
    n_components : int
        The number of dimensions of the embedding, between 1 and the number of points.
    device, dtype : optional
        Where and in what precision to compute.

    Returns
    -------
    coordinates : xarray.DataArray
        Dims ``(network, component)`` (the first dim named after the input's first dim with
        its ``_a`` suffix removed), labeled with the input's labels; attrs hold the
        eigenvalues of the kept components.

    Raises
    ------
    ValueError
        When the matrix is not 2-D, not square, not symmetric, holds NaN, or
        ``n_components`` is out of range.

    References
    ----------
    Torgerson, W. S. (1952). Multidimensional scaling: I. Theory and method. Psychometrika
    17, 401-419.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign.align._shape import embed
    >>> d = xr.DataArray([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]],
    ...                  dims=("network_a", "network_b"))
    >>> xy = embed(d)
    >>> xy.dims, float(np.hypot(*(xy[1] - xy[2]).values).round(6))
    (('network', 'component'), 5.0)
    """
    if not isinstance(distances, xr.DataArray) or distances.ndim != 2:
        raise ValueError(
            "distances must be a 2-D DataArray (a square distance matrix), got "
            f"{type(distances).__name__} with shape {np.shape(distances)}."
        )
    n0, n1 = distances.shape
    if n0 != n1:
        raise ValueError(f"distances must be square, got shape {distances.shape}.")
    vals = np.asarray(distances.values, dtype=np.float64)
    check_finite(vals, "distances")
    if not np.allclose(vals, vals.T, rtol=1e-8, atol=1e-10):
        worst = float(np.abs(vals - vals.T).max())
        raise ValueError(f"distances must be symmetric; the largest |D - D^T| is {worst:.3g}.")
    check_number("n_components", n_components, low=1, high=n0, integer=True)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    d2 = as_tensor(vals, dev, torch.float64) ** 2
    b = d2 - d2.mean(0, keepdim=True)
    b = -0.5 * (b - b.mean(1, keepdim=True))
    b = 0.5 * (b + b.T)
    lam, vec = torch.linalg.eigh(b.to(dt))
    lam, vec = lam.flip(0)[:n_components], vec.flip(1)[:, :n_components]
    big = vec.abs().argmax(0)
    signs = torch.sign(vec[big, torch.arange(n_components, device=dev)])
    signs[signs == 0] = 1.0
    coords_t = vec * signs * lam.clamp_min(0.0).sqrt()
    first = str(distances.dims[0])
    name = first[:-2] if first.endswith("_a") else first
    labels = distances[first].values if first in distances.coords else np.arange(n0)
    return xr.DataArray(
        coords_t.detach().to("cpu", torch.float64).numpy(),
        dims=(name, "component"),
        coords={name: labels, "component": np.arange(n_components)},
        attrs={
            "measure": "classical_mds",
            "eigenvalues": lam.detach().to("cpu", torch.float64).numpy(),
        },
        name="embedding",
    )
