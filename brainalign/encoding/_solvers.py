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
from collections.abc import Callable, Iterable, Iterator, Sequence
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


def select_shared_alpha(scores: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """One alpha for all targets: the best target-mean of the fold-mean criterion.

    The same rule as himalaya's ``_select_best_alphas(local_alpha=False)``: the fold mean
    (float64) gets the ``1e-10·log(alpha)`` slope, is averaged over targets, and the first
    maximum wins.

    Parameters
    ----------
    scores : torch.Tensor, shape (n_folds, n_alphas, n_targets)
        Selection criterion (larger is better).
    alphas : torch.Tensor, shape (n_alphas,)
        The grid.

    Returns
    -------
    best : torch.Tensor, shape (n_targets,)
        The same index into ``alphas`` for every target.
    """
    mean = scores.double().mean(0) + (torch.log(alphas.double()) * 1e-10)[:, None]
    idx = torch.argmax(mean.mean(1))
    return idx.expand(scores.shape[2]).clone()


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


@dataclass
class FoldOperator:
    """Test-set predictions of every alpha for one fold, from its eigendecomposition.

    ``apply(c)`` returns ``[A diag(inv[a]) Vt c]_a``: with the operator materialised, one
    GEMM with the stacked ``W = [A diag(inv[a]) Vt]_a``; otherwise (to save memory) a
    product with ``Vt`` and one GEMM per alpha with ``A``.
    """

    a: torch.Tensor  # (n_test, r)
    vt: torch.Tensor  # (r, m)
    inv: torch.Tensor  # (n_alphas, r)
    w: torch.Tensor | None = None  # (n_alphas * n_test, m)

    @property
    def nbytes_materialised(self) -> int:
        """Bytes the stacked operator takes."""
        return self.inv.shape[0] * self.a.shape[0] * self.vt.shape[1] * self.a.element_size()

    def materialise(self) -> torch.Tensor:
        """Form (once) and return the stacked operator."""
        if self.w is None:
            self.w = ((self.a[None] * self.inv[:, None, :]) @ self.vt).reshape(
                -1, self.vt.shape[1]
            )
        return self.w

    def apply(self, c: torch.Tensor) -> torch.Tensor:
        """Predictions of every alpha, shape (n_alphas, n_test, c.shape[1])."""
        n_alphas, n_test = self.inv.shape[0], self.a.shape[0]
        if self.w is not None:
            return (self.w @ c).view(n_alphas, n_test, -1)
        z = self.vt @ c
        out = torch.empty((n_alphas, n_test, c.shape[1]), dtype=c.dtype, device=c.device)
        for k in range(n_alphas):
            torch.matmul(self.a, self.inv[k][:, None] * z, out=out[k])
        return out


def _dual_fold_operators(
    kernel: torch.Tensor,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    fit_intercept: bool,
    dtype: torch.dtype,
) -> list[FoldOperator]:
    ops = []
    for fold in folds:
        k_tr = kernel[fold.train][:, fold.train]
        k_te = kernel[fold.test][:, fold.train]
        if fit_intercept:
            k_tr, k_te = _centre_kernel_blocks(k_tr, k_te)
            lam, u, tol = _deflated_eigh(k_tr, dtype)
        else:
            lam, u, tol = _eigh(k_tr, dtype)
        inv = _inverse_eigenvalues(lam, alphas.double(), tol).to(dtype)
        ops.append(FoldOperator((k_te @ u).to(dtype), u.T.to(dtype).contiguous(), inv))
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
    predictions: torch.Tensor | None = None,
    local_alpha: bool = True,
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
    predictions : torch.Tensor, shape (n, n_targets), optional
        Filled with the out-of-fold predictions at each target's selected alpha (every
        sample predicted by the fold that held it out).
    local_alpha : bool
        True: one alpha per target. False: one alpha shared by all targets, the one whose
        fold-mean criterion averaged over targets is best (see :func:`select_shared_alpha`).

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

    x_sum = x.sum(0, dtype=torch.float64)
    x_mean = x_sum / n
    if solver == "primal":
        x64 = x.to(torch.float64)
        gram = x64.T @ x64
        del x64
        bases = _primal_fold_bases(x, gram, x_sum, folds, fit_intercept)  # one fold at a time
        primal = _scaled_primal_ops(bases, alphas, dtype)
        operators = [op for op, _ in primal]
        # Per fold: X_teᵀ for the training cross-products, the training feature mean.
        fold_x = [
            (x[fold.test].T.contiguous(), None if mu is None else mu.to(dtype))
            for fold, (_, mu) in zip(folds, primal, strict=True)
        ]
        full = gram - n * torch.outer(x_mean, x_mean) if fit_intercept else gram
        lam, vec, tol = _eigh(full, dtype)
        del gram, full
        vec_c = vec.to(dtype)
        xt = x.T.contiguous()
        if refit:
            result.coef = torch.empty((p, n_targets), dtype=dtype, device=x.device)
    else:
        kernel = (x @ x.T).to(torch.float64) if dtype != torch.float64 else x @ x.T
        operators = _dual_fold_operators(kernel, folds, alphas, fit_intercept, dtype)
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
    result.x_mean = xm = x_mean.to(dtype)
    if refit and fit_intercept and solver == "dual":
        xc_mu = x @ xm - xm @ xm  # X_c μ: the intercept is ȳ − (X_c μ)ᵀ dual
    # Stack each fold's alphas into one operator (one GEMM per chunk) when that fits in half
    # the budget; otherwise keep the factors (a smaller product per alpha, less memory).
    stacked_bytes = sum(op.nbytes_materialised for op in operators)
    if stacked_bytes <= max_memory // 2:
        for op in operators:
            op.materialise()
        chunk = chunk_size(
            solver, n, p, n_targets, n_alphas, n_test_max, x.element_size(),
            max(max_memory - stacked_bytes, 1),
        )  # fmt: skip
    result.extra.update(chunk=chunk, stacked=stacked_bytes <= max_memory // 2)

    def fold_predictions(
        y: torch.Tensor, keep: dict[str, torch.Tensor]
    ) -> Iterator[tuple[int, Fold, torch.Tensor]]:
        """Every fold's test predictions of every alpha for one chunk of targets."""
        if solver == "primal":
            xty = keep["xty"] = xt @ y  # reused by the refit
            y_sum = y.sum(0)
            for f, (fold, op, (x_te_t, mu)) in enumerate(
                zip(folds, operators, fold_x, strict=True)
            ):
                y_te = y[fold.test]
                c = xty - x_te_t @ y_te
                n_tr = fold.train.shape[0]
                if fit_intercept:
                    y_mu = (y_sum - y_te.sum(0)) / n_tr
                    c -= n_tr * torch.outer(mu, y_mu)
                pred = op.apply(c)
                del c
                if fit_intercept:
                    pred += y_mu[None, None, :]
                yield f, fold, pred
        else:
            for f, (fold, op) in enumerate(zip(folds, operators, strict=True)):
                y_tr = y[fold.train]
                pred = op.apply(y_tr)
                if fit_intercept:
                    pred += y_tr.mean(0)[None, None, :]
                del y_tr
                yield f, fold, pred

    def keep_predictions(kept: list[torch.Tensor], sl: slice) -> None:
        pick = best[sl][None, None, :]
        for fold, pred in zip(folds, kept, strict=True):
            idx = pick.expand(1, pred.shape[1], -1)
            predictions[fold.test, sl] = pred.gather(0, idx)[0].to(predictions.dtype)
        kept.clear()

    def refit_chunk(y: torch.Tensor, sl: slice, xty: torch.Tensor | None = None) -> None:
        # One alpha per target: the columns of 1/(λ + a_t), null space at zero.
        inv = _inverse_eigenvalues(lam, alphas.double()[best[sl]], tol).T.to(dtype)
        y_mean = y.mean(0)
        if solver == "primal":
            xty = xt @ y if xty is None else xty
            xty_c = xty - n * torch.outer(xm, y_mean) if fit_intercept else xty
            z = vec_c.T @ xty_c
            result.coef[:, sl] = vec_c @ (z * inv)
            if fit_intercept:
                result.intercept[sl] = y_mean - xm @ result.coef[:, sl]
        else:
            z = vec_c.T @ y  # vec ⟂ ones when centred: no need to centre y
            result.dual_coef[:, sl] = vec_c @ (z * inv)
            if fit_intercept:
                result.intercept[sl] = y_mean - xc_mu @ result.dual_coef[:, sl]

    kept: list[torch.Tensor] = []
    starts = range(0, n_targets, chunk)
    for start in iterate(starts):
        stop = min(start + chunk, n_targets)
        y = targets(start, stop)
        sl = slice(start, stop)
        keep: dict[str, torch.Tensor] = {}
        for f, fold, pred in fold_predictions(y, keep):
            if predictions is not None and local_alpha:
                kept.append(pred.clone())
            for k, v in fold_statistics(y[fold.test], pred, names).items():
                scores[k][f, :, sl] = v
            del pred
        if local_alpha:
            best[sl] = select_alphas(scores[criterion][:, :, sl], alphas)
            if predictions is not None:
                keep_predictions(kept, sl)
            if refit:
                refit_chunk(y, sl, keep.get("xty"))
        del y, keep
    if not local_alpha:
        # One alpha for all targets: the best target-mean of the sloped fold-mean scores
        # (himalaya's ``_select_best_alphas(local_alpha=False)``), then a second pass over
        # the chunks for the refit and the out-of-fold predictions at that alpha.
        best[:] = select_shared_alpha(scores[criterion], alphas)
        if refit or predictions is not None:
            for start in range(0, n_targets, chunk):
                stop = min(start + chunk, n_targets)
                y = targets(start, stop)
                sl = slice(start, stop)
                keep = {}
                if predictions is not None:
                    for _, _, pred in fold_predictions(y, keep):
                        kept.append(pred)
                    keep_predictions(kept, sl)
                if refit:
                    refit_chunk(y, sl, keep.get("xty"))
                del y
    return result


@dataclass
class FixedDecomposition:
    """One float64 eigendecomposition of the centred Gram (primal) or kernel (dual)."""

    solver: str
    lam: torch.Tensor
    vec: torch.Tensor  # in the compute dtype
    tol: float
    x_mean: torch.Tensor | None
    xc: torch.Tensor  # centred features, compute dtype


def fixed_decomposition(
    x: torch.Tensor, *, fit_intercept: bool = True, solver: str = "auto"
) -> FixedDecomposition:
    """Decompose once for ridge solves with any per-target alpha (see :func:`ridge_fixed`).

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        Features.
    fit_intercept : bool
        Centre on the sample means.
    solver : {"auto", "primal", "dual"}
        ``"auto"`` takes the smaller of p and n.

    Returns
    -------
    decomposition : FixedDecomposition
    """
    n, p = x.shape
    dtype = x.dtype
    if solver == "auto":
        solver = "primal" if p <= n else "dual"
    x64 = x.to(torch.float64)
    mu = x64.mean(0) if fit_intercept else None
    xc = x64 - mu if mu is not None else x64
    if solver == "primal":
        lam, vec, tol = _eigh(xc.T @ xc, dtype)
    elif fit_intercept:
        lam, vec, tol = _deflated_eigh(xc @ xc.T, dtype)
    else:
        lam, vec, tol = _eigh(xc @ xc.T, dtype)
    return FixedDecomposition(
        solver, lam, vec.to(dtype), tol, None if mu is None else mu.to(dtype), xc.to(dtype)
    )


def fixed_solve(
    dec: FixedDecomposition, y: torch.Tensor, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Coefficients (and intercept) for targets ``y`` with one alpha each.

    Parameters
    ----------
    dec : FixedDecomposition
        From :func:`fixed_decomposition`.
    y : torch.Tensor, shape (n, t)
        Targets.
    alpha : torch.Tensor, shape (t,)
        Positive penalties.

    Returns
    -------
    coef : torch.Tensor, shape (p, t)
    intercept : torch.Tensor, shape (t,), or None
    """
    dtype = dec.vec.dtype
    a = alpha.to(device=dec.lam.device, dtype=torch.float64)
    inv = _inverse_eigenvalues(dec.lam, a, dec.tol).T.to(dtype)
    if dec.solver == "primal":
        coef = dec.vec @ ((dec.vec.T @ (dec.xc.T @ y)) * inv)
    else:  # the eigenvectors are orthogonal to ones when centred: y needs no centring
        coef = dec.xc.T @ (dec.vec @ ((dec.vec.T @ y) * inv))
    if dec.x_mean is None:
        return coef, None
    return coef, y.mean(0) - dec.x_mean @ coef


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
    dec = fixed_decomposition(x, fit_intercept=fit_intercept, solver=solver)
    return fixed_solve(dec, y, alpha)


# --------------------------------------------------------------------------- banded ridge


def dirichlet_gammas(
    n_iter: int, n_bands: int, concentration: Sequence[float], seed: int | None
) -> torch.Tensor:
    """Band weights on the simplex for the random search, the first one uniform.

    Samples cycle through ``concentration`` ([c0, c1, c0, c1, ...]), as himalaya's
    ``generate_dirichlet_samples`` does (``numpy.random.RandomState(seed).dirichlet``), so
    a seed gives both packages the same candidates.

    Parameters
    ----------
    n_iter : int
        Number of candidates.
    n_bands : int
        Number of feature bands.
    concentration : sequence of float
        Dirichlet concentrations (``inf`` means uniform weights).
    seed : int or None
        Seed of the generator.

    Returns
    -------
    gammas : torch.Tensor, shape (n_iter, n_bands), float64
    """
    import numpy as np

    rs = np.random.RandomState(seed)
    conc = np.atleast_1d(np.asarray(concentration, dtype=float))
    per = int(np.ceil(n_iter / len(conc)))
    blocks = []
    for c in conc:
        if np.isinf(c):
            blocks.append(np.full((per, n_bands), 1.0 / n_bands))
        else:
            blocks.append(rs.dirichlet([c] * n_bands, per))
    g = np.swapaxes(np.stack(blocks), 0, 1).reshape(-1, n_bands)[:n_iter]
    g[0] = 1.0 / n_bands
    return torch.from_numpy(g)


@dataclass
class BandedResult:
    """Outcome of :func:`banded_ridge_cv_path` (tensors on the compute device)."""

    best_gamma: torch.Tensor  # (t,) index into gammas
    best_alpha: torch.Tensor  # (t,) index into alphas
    cv_scores: torch.Tensor  # (n_gammas, t): best-alpha fold-mean criterion per candidate
    best_score: torch.Tensor  # (t,) criterion at the selected (gamma, alpha)
    reported: torch.Tensor  # (t,) fold-mean of the reported score there
    solver: str
    coef: torch.Tensor | None = None  # (p, t) on the unscaled features
    intercept: torch.Tensor | None = None


def _primal_fold_bases(
    x: torch.Tensor,
    gram: torch.Tensor,
    x_sum: torch.Tensor,
    folds: Sequence[Fold],
    fit_intercept: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """Per fold (lazily): the training Gram, the training mean and the centred test rows.

    The fold Gram is ``G − X_teᵀX_te`` (minus the centring term), so no product with the
    training rows is formed. All float64.
    """
    for fold in folds:
        x_te = x[fold.test].to(torch.float64)
        g_tr = gram - x_te.T @ x_te
        n_tr = fold.train.shape[0]
        mu = None
        if fit_intercept:
            mu = (x_sum - x_te.sum(0)) / n_tr
            g_tr = g_tr - n_tr * torch.outer(mu, mu)
            x_te = x_te - mu
        yield g_tr, mu, x_te


def _scaled_primal_ops(
    bases: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]],
    alphas: torch.Tensor,
    dtype: torch.dtype,
    scale: torch.Tensor | None = None,
) -> list[tuple[FoldOperator, torch.Tensor | None]]:
    """Per fold, the test operator ``[A diag(1/(λ + a)) Vᵀ]_a`` and the training mean.

    ``bases`` come from :func:`_primal_fold_bases`. With ``scale`` (the square roots of
    band weights, per column) the features are scaled column-wise first, and the operators
    act on the *unscaled* training cross-products: ``W diag(s)``.
    """
    out = []
    for g_tr, mu, x_te in bases:
        if scale is not None:
            g_tr = g_tr * torch.outer(scale, scale)
            x_te = x_te * scale
        lam, vec, tol = _eigh(g_tr, dtype)
        inv = _inverse_eigenvalues(lam, alphas.double(), tol).to(dtype)
        av = (x_te @ vec).to(dtype)
        vt = (vec.T if scale is None else vec.T * scale).to(dtype).contiguous()  # Vᵀ diag(s)
        out.append((FoldOperator(av, vt, inv), mu))
    return out


def banded_ridge_cv_path(
    x: torch.Tensor,
    targets: TargetSource,
    n_targets: int,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    gammas: torch.Tensor,
    band_of_column: torch.Tensor,
    *,
    fit_intercept: bool = True,
    criterion: str = "neg_mse",
    scoring: str = "r2",
    solver: str = "auto",
    refit: bool = True,
    max_memory: int = 512 * 2**20,
    iterate: Callable = iter,
) -> BandedResult:
    """Banded ridge: random search over band weights × alpha grid, exact K-fold CV.

    Each candidate ``gamma`` (band weights on the simplex) scales band ``b``'s columns by
    ``sqrt(gamma_b)``; the alpha grid is searched for each, so the effective per-band
    penalty is ``alpha / gamma_b`` (himalaya's ``deltas = log(gamma / alpha)``). Candidates
    are processed in batches: their fold operators are stacked so that one GEMM per fold
    and target chunk scores every (gamma, alpha) pair, and the training cross-products are
    shared by all of them.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        All bands' features side by side.
    targets : callable
        ``targets(start, stop)`` → (n, stop - start) tensor.
    n_targets : int
        Number of targets.
    folds : sequence of Fold
        Splits.
    alphas : torch.Tensor, shape (n_alphas,)
        Positive grid.
    gammas : torch.Tensor, shape (n_gammas, n_bands)
        Band-weight candidates.
    band_of_column : torch.Tensor, shape (p,)
        Band index of every column.
    fit_intercept, criterion, scoring, solver, refit, max_memory, iterate
        As in :func:`ridge_cv_path`.

    Returns
    -------
    result : BandedResult
    """
    n, p = x.shape
    dtype, device = x.dtype, x.device
    n_alphas, n_gammas = alphas.shape[0], gammas.shape[0]
    names = tuple(dict.fromkeys((criterion, scoring)))
    if solver == "auto":
        solver = choose_solver(n, p, n_targets, n_alphas, len(folds))
    n_test_max = max(int(f.test.shape[0]) for f in folds)
    itemsize = x.element_size()
    width = p if solver == "primal" else n
    per_gamma = itemsize * n_alphas * n * width + 8 * width * width
    g_batch = int(max(1, min(n_gammas, (max_memory // 2) // max(per_gamma, 1))))
    chunk = chunk_size(
        solver, n, p, n_targets, n_alphas * g_batch, n_test_max, itemsize, max_memory // 2
    )
    gam = gammas.to(device=device, dtype=torch.float64)
    scales = gam[:, band_of_column].sqrt()  # (n_gammas, p)

    best_score = torch.full((n_targets,), -math.inf, dtype=torch.float64, device=device)
    best_gamma = torch.zeros(n_targets, dtype=torch.long, device=device)
    best_alpha = torch.zeros(n_targets, dtype=torch.long, device=device)
    reported = torch.zeros(n_targets, dtype=torch.float64, device=device)
    cv_scores = torch.empty((n_gammas, n_targets), dtype=torch.float64, device=device)
    slope = (torch.log(alphas.double()) * 1e-10)[:, None]
    eps = _eps(dtype)

    if solver == "primal":
        x64 = x.to(torch.float64)
        gram = x64.T @ x64
        # The unscaled fold Grams and test rows serve every candidate: formed once.
        bases = list(_primal_fold_bases(x, gram, x64.sum(0), folds, fit_intercept))
        mus = [mu for _, mu, _ in bases]
        del x64, gram
        xt = x.T.contiguous()
        fold_xt = [x[f.test].T.contiguous() for f in folds]
    else:
        band_kernels = []
        for b in range(int(band_of_column.max()) + 1):
            cols = torch.nonzero(band_of_column == b).flatten()
            xb = x[:, cols]
            band_kernels.append((xb @ xb.T).to(torch.float64))

    for g0 in iterate(range(0, n_gammas, g_batch)):
        g1 = min(g0 + g_batch, n_gammas)
        if solver == "primal":
            op_sets = [_scaled_primal_ops(bases, alphas, dtype, scales[g]) for g in range(g0, g1)]
            stacked = [
                torch.cat([ops[f][0].materialise() for ops in op_sets]) for f in range(len(folds))
            ]
        else:
            stacked = []
            for g in range(g0, g1):
                kern = sum(gam[g, b] * k for b, k in enumerate(band_kernels))
                stacked.append(_dual_fold_operators(kern, folds, alphas, fit_intercept, dtype))
            stacked = [torch.cat([s[f].materialise() for s in stacked]) for f in range(len(folds))]
        n_g = g1 - g0
        for start in range(0, n_targets, chunk):
            stop = min(start + chunk, n_targets)
            y = targets(start, stop)
            tc = stop - start
            sums = {
                k: torch.zeros((n_g * n_alphas, tc), dtype=torch.float64, device=device)
                for k in names
            }
            if solver == "primal":
                xty = xt @ y
                y_sum = y.sum(0)
            for f, fold in enumerate(folds):
                y_te = y[fold.test]
                if solver == "primal":
                    c = xty - fold_xt[f] @ y_te
                    if fit_intercept:
                        n_tr = fold.train.shape[0]
                        y_mu = (y_sum - y_te.sum(0)) / n_tr
                        c -= n_tr * torch.outer(mus[f].to(dtype), y_mu)
                    pred = (stacked[f] @ c).view(n_g * n_alphas, y_te.shape[0], tc)
                    if fit_intercept:
                        pred += y_mu[None, None, :]
                else:
                    y_tr = y[fold.train]
                    pred = (stacked[f] @ y_tr).view(n_g * n_alphas, y_te.shape[0], tc)
                    if fit_intercept:
                        pred += y_tr.mean(0)[None, None, :]
                for k, v in fold_statistics(y_te, pred, names).items():
                    sums[k] += v
                del pred
            crit = (sums[criterion] / len(folds)).view(n_g, n_alphas, tc) + slope[None]
            rep = (sums[scoring] / len(folds)).view(n_g, n_alphas, tc)
            sl = slice(start, stop)
            for i in range(n_g):  # sequential update: ties keep the earlier candidate
                a_idx = torch.argmax(crit[i], dim=0)
                score = crit[i].gather(0, a_idx[None])[0]
                cv_scores[g0 + i, sl] = score
                better = score > best_score[sl] + eps
                best_score[sl] = torch.where(better, score, best_score[sl])
                best_gamma[sl] = torch.where(better, g0 + i, best_gamma[sl])
                best_alpha[sl] = torch.where(better, a_idx, best_alpha[sl])
                rep_i = rep[i].gather(0, a_idx[None])[0]
                reported[sl] = torch.where(better, rep_i, reported[sl])
            del y
    result = BandedResult(best_gamma, best_alpha, cv_scores, best_score, reported, solver)
    if refit:
        result.coef = torch.empty((p, n_targets), dtype=dtype, device=device)
        if fit_intercept:
            result.intercept = torch.empty(n_targets, dtype=dtype, device=device)
        for g in torch.unique(best_gamma).tolist():  # one decomposition per selected gamma
            s = scales[g].to(dtype)
            dec = fixed_decomposition(x * s, fit_intercept=fit_intercept, solver=solver)
            for start in range(0, n_targets, chunk):
                stop = min(start + chunk, n_targets)
                cols = start + torch.nonzero(best_gamma[start:stop] == g).flatten()
                if cols.numel() == 0:
                    continue
                y = targets(start, stop)[:, cols - start]
                coef, icpt = fixed_solve(dec, y, alphas[best_alpha[cols]])
                result.coef[:, cols] = coef * s[:, None]
                if fit_intercept:
                    result.intercept[cols] = icpt
            del dec
    return result


# --------------------------------------------------------------------------- refinement


def _per_target_fold_predictions(
    x64: torch.Tensor,
    y64: torch.Tensor,
    folds: Sequence[Fold],
    fold_data: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]],
    deltas: torch.Tensor,
    band_of_column: torch.Tensor,
    fit_intercept: bool,
) -> list[torch.Tensor]:
    """Test predictions of every fold with per-target band penalties (differentiable).

    Band ``b`` of target ``t`` is scaled by ``exp(deltas[t, b] / 2)`` and the ridge penalty
    is 1, which is the banded ridge of band penalties ``exp(-deltas)`` (himalaya's
    parametrisation): one batched Cholesky solve of ``S G S + I`` per target and fold.
    """
    s = torch.exp(deltas / 2)[:, band_of_column]  # (c, p)
    eye = torch.eye(s.shape[1], dtype=s.dtype, device=s.device)
    preds = []
    for fold, (g_tr, mu, x_te) in zip(folds, fold_data, strict=True):
        y_tr = y64[fold.train]
        y_mu = y_tr.mean(0) if fit_intercept else torch.zeros_like(y_tr[0])
        x_tr = x64[fold.train] - mu if mu is not None else x64[fold.train]
        cross = (x_tr.T @ (y_tr - y_mu)).T  # (c, p)
        m = g_tr[None] * (s[:, :, None] * s[:, None, :]) + eye
        w = torch.cholesky_solve((s * cross)[..., None], torch.linalg.cholesky(m))[..., 0]
        preds.append(x_te @ (s * w).T + y_mu)
    return preds


def refine_band_penalties(
    x: torch.Tensor,
    targets: TargetSource,
    n_targets: int,
    folds: Sequence[Fold],
    deltas: torch.Tensor,
    band_of_column: torch.Tensor,
    *,
    fit_intercept: bool = True,
    scoring: str = "r2",
    n_steps: int = 20,
    lr: float = 0.2,
    max_memory: int = 512 * 2**20,
    iterate: Callable = iter,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Refine per-target log band penalties by gradient descent on the K-fold CV error.

    Starting from the random search's ``deltas`` (log(gamma / alpha)), every target's
    ``deltas`` follow Adam steps on its cross-validated mean squared error, differentiated
    through the per-target ridge solves (the hypergradient). The best point met is kept, so
    the CV error never gets worse than the search's. Cost: one batched Cholesky of
    p × p per target, fold and step, so this suits problems of up to a few hundred
    features.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        All bands side by side.
    targets : callable
        ``targets(start, stop)`` → (n, stop - start).
    n_targets : int
        Number of targets.
    folds : sequence of Fold
        Splits.
    deltas : torch.Tensor, shape (n_bands, n_targets)
        Starting points.
    band_of_column : torch.Tensor, shape (p,)
        Band index of every column.
    fit_intercept : bool
        Centre on each training set.
    scoring : str
        Score reported for the final penalties (one of :data:`CRITERIA`).
    n_steps : int
        Gradient steps.
    lr : float
        Adam learning rate (in log-penalty units).
    max_memory : int
        Byte budget for a chunk of targets.
    iterate : callable
        Wraps the chunk iterator.

    Returns
    -------
    deltas : torch.Tensor, shape (n_bands, n_targets)
    neg_mse : torch.Tensor, shape (n_targets,)
        Fold-mean negative MSE at the returned deltas.
    reported : torch.Tensor, shape (n_targets,)
        Fold-mean ``scoring`` there.
    coef : torch.Tensor, shape (p, n_targets)
        Refit on all samples, on the unscaled features.
    intercept : torch.Tensor or None
    """
    p = x.shape[1]
    dev = x.device
    x64 = x.to(torch.float64)
    fold_data = []
    for fold in folds:
        x_tr = x64[fold.train]
        mu = x_tr.mean(0) if fit_intercept else None
        xc = x_tr - mu if mu is not None else x_tr
        x_te = x64[fold.test] - mu if mu is not None else x64[fold.test]
        fold_data.append((xc.T @ xc, mu, x_te))
    mu_all = x64.mean(0) if fit_intercept else None
    xc_all = x64 - mu_all if mu_all is not None else x64
    g_all = xc_all.T @ xc_all
    chunk = int(max(1, min(n_targets, max_memory // (8 * 6 * p * p + 1))))
    out_d = deltas.to(device=dev, dtype=torch.float64).clone()
    out_s = torch.empty(n_targets, dtype=torch.float64, device=dev)
    out_r = torch.empty(n_targets, dtype=torch.float64, device=dev)
    coef = torch.empty((p, n_targets), dtype=x.dtype, device=dev)
    intercept = torch.empty(n_targets, dtype=x.dtype, device=dev) if fit_intercept else None

    def cv_loss(d: torch.Tensor, y64: torch.Tensor) -> tuple[torch.Tensor, list]:
        preds = _per_target_fold_predictions(
            x64, y64, folds, fold_data, d, band_of_column, fit_intercept
        )
        loss = sum(((y64[f.test] - pr) ** 2).mean(0) for f, pr in zip(folds, preds, strict=True))
        return loss / len(folds), preds

    for start in iterate(range(0, n_targets, chunk)):
        stop = min(start + chunk, n_targets)
        y64 = targets(start, stop).to(torch.float64)
        theta = out_d[:, start:stop].T.clone().requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=lr)
        best_loss = torch.full((stop - start,), math.inf, dtype=torch.float64, device=dev)
        best_theta = theta.detach().clone()
        for _ in range(n_steps + 1):
            opt.zero_grad()
            loss, _ = cv_loss(theta, y64)
            better = loss.detach() < best_loss
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_theta[better] = theta.detach()[better]
            loss.sum().backward()
            opt.step()
        with torch.no_grad():
            loss, preds = cv_loss(best_theta, y64)
            rep = sum(
                fold_statistics(y64[f.test], pr[None].clone(), (scoring,))[scoring][0]
                for f, pr in zip(folds, preds, strict=True)
            )
            # Refit on all samples: the same solve with every sample "trained on".
            s = torch.exp(best_theta / 2)[:, band_of_column]
            y_mu = y64.mean(0) if fit_intercept else torch.zeros_like(y64[0])
            cross = (xc_all.T @ (y64 - y_mu)).T
            eye = torch.eye(p, dtype=torch.float64, device=dev)
            m = g_all[None] * (s[:, :, None] * s[:, None, :]) + eye
            w = torch.cholesky_solve((s * cross)[..., None], torch.linalg.cholesky(m))[..., 0]
            c = (s * w).T
            coef[:, start:stop] = c.to(x.dtype)
            if intercept is not None:
                intercept[start:stop] = (y_mu - mu_all @ c).to(x.dtype)
        out_d[:, start:stop] = best_theta.T
        out_s[start:stop] = -loss
        out_r[start:stop] = rep / len(folds)
    return out_d, out_s, out_r, coef, intercept
