"""Pure torch ridge solvers: exact K-fold cross-validation with one decomposition per fold.

The minimal algorithm (compare himalaya ``ridge/_random_search.py``, which builds one
n_test × n_train resolution matrix per alpha, one SVD per fold, and a refit that forms a
p × t weight matrix for every distinct selected alpha):

* **Primal** (p ≤ n, by FLOP count). The full Gram ``G = XᵀX`` is formed once in float64; a
  fold's training Gram is ``G − X_teᵀX_te`` (rank-one centring correction when fitting an
  intercept), eigendecomposed in float64. Per fold and alpha the test-side operator
  ``W_a = A diag(1/(λ + a)) Vᵀ`` (``A = X_te V``) is n_test × p, stacked over alphas; the
  training cross-products ``X_trᵀY_tr = XᵀY − X_teᵀY_te`` reuse one ``XᵀY`` for all folds,
  so the test predictions of every alpha come from one GEMM ``[W_a]_a @ X_trᵀY_tr``.
* **Dual** (n < p). The kernel ``K = XXᵀ`` is formed once; a fold's training kernel is a
  sub-block, centred, with the centring null space (the ones vector) deflated exactly by a
  Householder reflection before its float64 eigendecomposition.
* **Refit** once on all samples with a per-target rescale of the projected targets:
  ``coef = V (diag-per-target(1/(λ + a_t)) ∘ VᵀXᵀY)``; no p × t matrix per alpha.

Targets stream in chunks sized from a memory budget; only the requested outputs are kept.
Everything here is device-agnostic torch; labels live in :mod:`brainalign.encoding._ridge`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import scipy.linalg
import torch

CRITERIA = ("neg_mse", "r2", "pearson")
SOLVERS = ("auto", "primal", "dual")

#: Relative eigenvalue threshold below which a direction is treated as null space (its
#: ridge weight is exactly zero: the training cross-products have no component there).
_NULL_RTOL = 10.0

TargetSource = Callable[[int, int], torch.Tensor]


@dataclass
class Fold:
    """One cross-validation split as index tensors on the compute device."""

    train: torch.Tensor
    test: torch.Tensor


@dataclass
class CVResult:
    """What :func:`ridge_cv_path` returns (all tensors on the compute device)."""

    scores: dict[str, torch.Tensor]  # name -> (n_folds, n_alphas, n_targets), float64
    best: torch.Tensor  # (n_targets,) index into the alphas
    solver: str
    coef: torch.Tensor | None = None  # (p, t), primal refit
    dual_coef: torch.Tensor | None = None  # (n, t), dual refit
    intercept: torch.Tensor | None = None  # (t,)
    x_mean: torch.Tensor | None = None  # (p,)
    lambda_max: float = 0.0
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _eps(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


def _inverse_eigenvalues(lam: torch.Tensor, alphas: torch.Tensor, tol: float) -> torch.Tensor:
    """``1/(λ + a)`` for every alpha (rows) and eigenvalue (columns), zero on the null space."""
    inv = 1.0 / (lam[None, :] + alphas[:, None])
    return inv * (lam > tol)[None, :]


def _eigh(gram: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Float64 eigendecomposition; negative round-off eigenvalues clipped to zero."""
    gram = gram.to(torch.float64)
    if gram.device.type == "cpu" and gram.shape[0] > 1:
        # LAPACK's MRRR driver (dsyevr) is several times faster on CPU than the
        # divide-and-conquer driver behind torch.linalg.eigh, at the same accuracy.
        w, v = scipy.linalg.eigh(gram.numpy(), driver="evr", overwrite_a=False, check_finite=False)
        lam, vec = torch.from_numpy(w), torch.from_numpy(v)
    else:
        lam, vec = torch.linalg.eigh(gram)
    lam = lam.clamp_min(0.0)
    lam_max = float(lam[-1]) if lam.numel() else 0.0
    tol = _NULL_RTOL * _eps(dtype) * lam_max
    return lam, vec, tol


def _householder_ones(n: int, device: torch.device) -> torch.Tensor:
    """Return the unit vector ``v`` such that ``I − 2vvᵀ`` swaps ``e_0`` and ``1/√n``."""
    w = torch.full((n,), 1.0 / math.sqrt(n), dtype=torch.float64, device=device)
    v = -w
    v[0] += 1.0
    norm = torch.linalg.vector_norm(v)
    if float(norm) < 1e-300:  # n == 1: e_0 already is the ones direction
        return torch.zeros(n, dtype=torch.float64, device=device)
    return v / norm


def _deflated_eigh(
    k_centred: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Eigendecomposition of a centred kernel restricted exactly to the complement of ones.

    With ``Q = I − 2vvᵀ`` (first column ``1/√n``), ``QKQ`` has the ones direction in its
    first row and column; dropping them and mapping the eigenvectors back through
    ``Q[:, 1:]`` gives eigenvectors orthogonal to ones to machine precision, so the
    centring null space never meets a ``1/alpha`` amplification.
    """
    n = k_centred.shape[0]
    v = _householder_ones(n, k_centred.device)
    kv = k_centred @ v
    vkv = v @ kv
    qkq = (
        k_centred
        - 2.0 * torch.outer(v, kv)
        - 2.0 * torch.outer(kv, v)
        + 4.0 * vkv * torch.outer(v, v)
    )
    lam, u_small, tol = _eigh(qkq[1:, 1:], dtype)
    # Q[:, 1:] @ u_small, without forming Q.
    u = torch.zeros((n, u_small.shape[1]), dtype=torch.float64, device=k_centred.device)
    u[1:] = u_small
    u -= 2.0 * torch.outer(v, v[1:] @ u_small)
    return lam, u, tol


def _centre_kernel_blocks(
    k_train: torch.Tensor, k_test: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Centre kernel blocks on the training means (feature-space centring)."""
    col = k_train.mean(0)
    tot = col.mean()
    kc = k_train - col[None, :] - col[:, None] + tot
    if k_test is None:
        return kc, None
    kt = k_test - k_test.mean(1, keepdim=True) - col[None, :] + tot
    return kc, kt


# --------------------------------------------------------------------------- scoring


def fold_statistics(
    y_test: torch.Tensor, pred: torch.Tensor, names: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Scores of stacked predictions against one test block.

    Parameters
    ----------
    y_test : torch.Tensor, shape (n_test, n_targets)
        Held-out targets.
    pred : torch.Tensor, shape (n_alphas, n_test, n_targets)
        Predictions of every alpha; overwritten (used as scratch space).
    names : sequence of str
        Scores wanted, among :data:`CRITERIA`. ``neg_mse`` is minus the mean squared error,
        ``r2`` is 1 − SSE/SST about the test mean (0 for constant test targets),
        ``pearson`` the correlation (0 when either side is constant), as in
        ``himalaya.scoring``.

    Returns
    -------
    scores : dict of str to torch.Tensor, shape (n_alphas, n_targets), float64
    """
    n_test = y_test.shape[0]
    out: dict[str, torch.Tensor] = {}
    if "pearson" in names:
        yc = y_test - y_test.mean(0, keepdim=True)
        sy = yc.double().square().sum(0).div(n_test).sqrt()
        sy = torch.where(sy == 0, torch.ones_like(sy), sy)
        pm = pred.mean(1, keepdim=True)
        cross = torch.einsum("ant,nt->at", pred, yc).double()
        pc = pred - pm
        sp = pc.square().sum(1).double().div(n_test).sqrt()
        sp = torch.where(sp == 0, torch.ones_like(sp), sp)
        out["pearson"] = cross / (n_test * sy[None, :] * sp)
        del pc
    if "neg_mse" in names or "r2" in names:
        pred.sub_(y_test[None])
        sse = pred.square_().sum(1).double()
        if "neg_mse" in names:
            out["neg_mse"] = -sse / n_test
        if "r2" in names:
            sst = (y_test - y_test.mean(0, keepdim=True)).double().square().sum(0)
            r2 = 1.0 - sse / torch.where(sst == 0, torch.ones_like(sst), sst)[None, :]
            out["r2"] = torch.where(sst[None, :] == 0, torch.zeros_like(r2), r2)
    return out


def select_alphas(scores: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Index of the best alpha per target: fold-mean score, ties broken towards larger alphas.

    Parameters
    ----------
    scores : torch.Tensor, shape (n_folds, n_alphas, n_targets)
        Selection criterion (larger is better).
    alphas : torch.Tensor, shape (n_alphas,)
        The grid.

    Returns
    -------
    best : torch.Tensor, shape (n_targets,)
        Indices into ``alphas``.
    """
    mean = scores.double().mean(0)
    # The same 1e-10 slope as himalaya's ``_select_best_alphas``: equal scores pick the
    # larger alpha, so both packages agree on targets whose score is flat in alpha.
    mean = mean + (torch.log(alphas.double()) * 1e-10)[:, None]
    return torch.argmax(mean, dim=0)


# --------------------------------------------------------------------------- planning


def choose_solver(n: int, p: int, n_targets: int, n_alphas: int, n_folds: int) -> str:
    """Pick the primal or dual formulation by a FLOP count of the whole CV fit.

    Parameters
    ----------
    n, p, n_targets, n_alphas, n_folds : int
        Problem sizes.

    Returns
    -------
    solver : {"primal", "dual"}
    """
    n_test = n / max(n_folds, 1)
    n_train = n - n_test
    eig = 6.0  # eigh with vectors costs several times a GEMM of the same size
    primal = (
        n * p * p
        + (n_folds + 1) * eig * p**3
        + n_folds * n_alphas * n_test * p * p
        + n_targets * (n * p + n_folds * (n_test * p + n_alphas * n_test * p) + 2 * p * p)
    )
    dual = (
        n * n * p
        + (n_folds + 1) * eig * n_train**3
        + n_folds * n_alphas * n_test * n_train * n_train
        + n_targets * (n_folds * n_alphas * n_test * n_train + 2 * n * n)
    )
    return "primal" if primal <= dual else "dual"


def chunk_size(
    solver: str,
    n: int,
    p: int,
    n_targets: int,
    n_alphas: int,
    n_test_max: int,
    itemsize: int,
    max_memory: int,
) -> int:
    """How many targets one chunk holds so its temporaries stay within ``max_memory`` bytes."""
    width = n if solver == "dual" else p
    per_target = itemsize * (3 * width + 2 * n_alphas * n_test_max + 2 * n) + 8 * 4 * n_alphas
    return int(max(1, min(n_targets, max_memory // max(per_target, 1))))


def memory_estimate(
    solver: str,
    n: int,
    p: int,
    n_targets: int,
    n_alphas: int,
    n_folds: int,
    itemsize: int,
    chunk: int,
    refit: bool,
) -> int:
    """Peak extra bytes of a CV fit (decompositions, fold operators, one chunk, outputs)."""
    n_test = math.ceil(n / max(n_folds, 1))
    if solver == "primal":
        fixed = 8 * (2 * p * p) + itemsize * (n_folds * n_alphas * n_test * p + n * p)
        out = itemsize * p * n_targets if refit else 0
    else:
        fixed = 8 * (2 * n * n) + itemsize * (n_folds * n_alphas * n_test * n)
        out = itemsize * n * n_targets if refit else 0
    per_chunk = itemsize * chunk * (3 * (n if solver == "dual" else p) + 2 * n_alphas * n_test)
    return int(fixed + out + per_chunk + 8 * 4 * n_folds * n_alphas * n_targets)


# --------------------------------------------------------------------------- CV solver


def _primal_fold_operators(
    x: torch.Tensor,
    gram: torch.Tensor,
    x_sum: torch.Tensor,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    fit_intercept: bool,
    dtype: torch.dtype,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    ops = []
    n_alphas = alphas.shape[0]
    for fold in folds:
        x_te = x[fold.test].to(torch.float64)
        g_tr = gram - x_te.T @ x_te
        n_tr = fold.train.shape[0]
        mu = None
        if fit_intercept:
            mu = (x_sum - x_te.sum(0)) / n_tr
            g_tr = g_tr - n_tr * torch.outer(mu, mu)
            x_te = x_te - mu
        lam, vec, tol = _eigh(g_tr, dtype)
        inv = _inverse_eigenvalues(lam, alphas.double(), tol).to(dtype)
        av = (x_te @ vec).to(dtype)
        vt = vec.T.to(dtype)
        w = (av[None] * inv[:, None, :]) @ vt  # (n_alphas, n_test, p)
        n_test = fold.test.shape[0]
        ops.append(
            (
                w.reshape(n_alphas * n_test, -1),
                x[fold.test].T.contiguous(),
                None if mu is None else mu.to(dtype),
            )
        )
    return ops


def _dual_fold_operators(
    kernel: torch.Tensor,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    fit_intercept: bool,
    dtype: torch.dtype,
) -> list[torch.Tensor]:
    ops = []
    n_alphas = alphas.shape[0]
    for fold in folds:
        k_tr = kernel[fold.train][:, fold.train]
        k_te = kernel[fold.test][:, fold.train]
        if fit_intercept:
            k_tr, k_te = _centre_kernel_blocks(k_tr, k_te)
            lam, u, tol = _deflated_eigh(k_tr, dtype)
        else:
            lam, u, tol = _eigh(k_tr, dtype)
        inv = _inverse_eigenvalues(lam, alphas.double(), tol).to(dtype)
        au = (k_te @ u).to(dtype)
        w = (au[None] * inv[:, None, :]) @ u.T.to(dtype)  # (n_alphas, n_test, n_train)
        ops.append(w.reshape(n_alphas * fold.test.shape[0], -1))
    return ops


def ridge_cv_path(
    x: torch.Tensor,
    targets: TargetSource,
    n_targets: int,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    *,
    fit_intercept: bool = True,
    criterion: str = "neg_mse",
    scorings: Sequence[str] = ("r2",),
    solver: str = "auto",
    refit: bool = True,
    max_memory: int = 512 * 2**20,
    iterate: Callable = iter,
) -> CVResult:
    """Cross-validate ridge over an alpha grid for many targets, then refit once.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        Features, in the compute dtype, on the compute device.
    targets : callable
        ``targets(start, stop)`` returns the target columns ``start:stop`` as a tensor of
        shape (n, stop - start) in the compute dtype on the device (lets callers stream
        targets, or build permuted copies on the fly).
    n_targets : int
        Number of target columns.
    folds : sequence of Fold
        The splits (indices on the device).
    alphas : torch.Tensor, shape (n_alphas,)
        Positive regularisation grid.
    fit_intercept : bool
        Centre features and targets on each training set.
    criterion : str
        Selection score, one of :data:`CRITERIA`.
    scorings : sequence of str
        Further scores to record for every fold and alpha.
    solver : {"auto", "primal", "dual"}
        Formulation; ``"auto"`` picks the smaller FLOP count.
    refit : bool
        Refit on all samples with each target's selected alpha.
    max_memory : int
        Byte budget for the per-chunk temporaries.
    iterate : callable
        Wraps the chunk iterator (a progress bar).

    Returns
    -------
    result : CVResult
    """
    n, p = x.shape
    dtype = x.dtype
    n_alphas = alphas.shape[0]
    names = tuple(dict.fromkeys((criterion, *scorings)))
    if solver == "auto":
        solver = choose_solver(n, p, n_targets, n_alphas, len(folds))
    n_test_max = max(int(f.test.shape[0]) for f in folds)
    chunk = chunk_size(solver, n, p, n_targets, n_alphas, n_test_max, x.element_size(), max_memory)

    scores = {
        k: torch.empty((len(folds), n_alphas, n_targets), dtype=torch.float64, device=x.device)
        for k in names
    }
    best = torch.empty(n_targets, dtype=torch.long, device=x.device)
    result = CVResult(scores=scores, best=best, solver=solver, extra={"chunk": chunk})

    x64 = x.to(torch.float64)
    x_sum = x64.sum(0)
    x_mean = x_sum / n
    if solver == "primal":
        gram = x64.T @ x64
        ops = _primal_fold_operators(x, gram, x_sum, folds, alphas, fit_intercept, dtype)
        full = gram - n * torch.outer(x_mean, x_mean) if fit_intercept else gram
        lam, vec, tol = _eigh(full, dtype)
        del gram, full
        vec_c = vec.to(dtype)
        xt = x.T.contiguous()
        if refit:
            result.coef = torch.empty((p, n_targets), dtype=dtype, device=x.device)
    else:
        kernel = (x @ x.T).to(torch.float64) if dtype != torch.float64 else x @ x.T
        ops = _dual_fold_operators(kernel, folds, alphas, fit_intercept, dtype)
        if fit_intercept:
            kc, _ = _centre_kernel_blocks(kernel, None)
            lam, vec, tol = _deflated_eigh(kc, dtype)
            del kc
        else:
            lam, vec, tol = _eigh(kernel, dtype)
        del kernel
        vec_c = vec.to(dtype)
        if refit:
            result.dual_coef = torch.empty((n, n_targets), dtype=dtype, device=x.device)
    result.lambda_max = float(lam[-1]) if lam.numel() else 0.0
    if refit and fit_intercept:
        result.intercept = torch.empty(n_targets, dtype=dtype, device=x.device)
    result.x_mean = x_mean.to(dtype)

    starts = range(0, n_targets, chunk)
    for start in iterate(starts):
        stop = min(start + chunk, n_targets)
        y = targets(start, stop)
        sl = slice(start, stop)
        if solver == "primal":
            xty = xt @ y
            y_sum = y.sum(0)
            for f, (fold, (w, x_te_t, mu)) in enumerate(zip(folds, ops, strict=True)):
                y_te = y[fold.test]
                c = xty - x_te_t @ y_te
                n_tr = fold.train.shape[0]
                if fit_intercept:
                    y_mu = (y_sum - y_te.sum(0)) / n_tr
                    c -= n_tr * torch.outer(mu, y_mu)
                pred = (w @ c).view(n_alphas, y_te.shape[0], -1)
                if fit_intercept:
                    pred += y_mu[None, None, :]
                for k, v in fold_statistics(y_te, pred, names).items():
                    scores[k][f, :, sl] = v
                del c, pred
        else:
            for f, (fold, w) in enumerate(zip(folds, ops, strict=True)):
                y_te = y[fold.test]
                y_tr = y[fold.train]
                pred = (w @ y_tr).view(n_alphas, y_te.shape[0], -1)
                if fit_intercept:
                    pred += y_tr.mean(0)[None, None, :]
                for k, v in fold_statistics(y_te, pred, names).items():
                    scores[k][f, :, sl] = v
                del pred, y_tr
        best[sl] = select_alphas(scores[criterion][:, :, sl], alphas)
        if refit:
            a = alphas.to(torch.float64)[best[sl]]
            inv = (1.0 / (lam[:, None] + a[None, :])) * (lam > tol)[:, None]
            y_mean = y.mean(0)
            if solver == "primal":
                xty_c = xty - n * torch.outer(x_mean.to(dtype), y_mean) if fit_intercept else xty
                z = vec_c.T @ xty_c
                result.coef[:, sl] = vec_c @ (z * inv.to(dtype))
                if fit_intercept:
                    result.intercept[sl] = y_mean - x_mean.to(dtype) @ result.coef[:, sl]
                del xty, xty_c, z
            else:
                z = vec_c.T @ y  # vec ⟂ ones when centred: no need to centre y
                result.dual_coef[:, sl] = vec_c @ (z * inv.to(dtype))
                if fit_intercept:
                    # intercept = ȳ − μᵀ X_cᵀ dual = ȳ − (X_c μ)ᵀ dual
                    xc_mu = ((x64 - x_mean) @ x_mean).to(dtype)
                    result.intercept[sl] = y_mean - xc_mu @ result.dual_coef[:, sl]
        del y
    return result


def ridge_fixed(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: torch.Tensor,
    *,
    fit_intercept: bool = True,
    solver: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Ridge coefficients for one alpha per target, from one float64 eigendecomposition.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        Features.
    y : torch.Tensor, shape (n, t)
        Targets.
    alpha : torch.Tensor, shape (t,)
        One positive alpha per target.
    fit_intercept : bool
        Centre on the sample means.
    solver : {"auto", "primal", "dual"}
        ``"auto"`` takes the smaller of p and n.

    Returns
    -------
    coef : torch.Tensor, shape (p, t)
    intercept : torch.Tensor, shape (t,), or None
    """
    n, p = x.shape
    dtype = x.dtype
    if solver == "auto":
        solver = "primal" if p <= n else "dual"
    x64 = x.to(torch.float64)
    mu = x64.mean(0)
    xc = x64 - mu if fit_intercept else x64
    y_mean = y.mean(0)
    a = alpha.to(torch.float64)
    if solver == "primal":
        lam, vec, tol = _eigh(xc.T @ xc, dtype)
        vec_c = vec.to(dtype)
        xty = xc.to(dtype).T @ y
        inv = (1.0 / (lam[:, None] + a[None, :])) * (lam > tol)[:, None]
        coef = vec_c @ ((vec_c.T @ xty) * inv.to(dtype))
    else:
        k = xc @ xc.T
        if fit_intercept:
            lam, vec, tol = _deflated_eigh(k, dtype)
        else:
            lam, vec, tol = _eigh(k, dtype)
        vec_c = vec.to(dtype)
        inv = (1.0 / (lam[:, None] + a[None, :])) * (lam > tol)[:, None]
        dual = vec_c @ ((vec_c.T @ y) * inv.to(dtype))
        coef = xc.to(dtype).T @ dual
    intercept = y_mean - mu.to(dtype) @ coef if fit_intercept else None
    return coef, intercept
