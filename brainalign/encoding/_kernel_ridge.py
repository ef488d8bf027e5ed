"""Kernel ridge regression with exact K-fold cross-validation, one or several kernels.

The solver (:func:`multiple_kernel_ridge_cv_path`) is the random search of himalaya's
``solve_multiple_kernel_ridge_random_search`` with the same semantics, in torch:

* For every kernel-weight candidate ``gamma`` (a row of ``gammas``), the weighted kernel
  ``K = Σ_k gamma_k K_k`` is split per fold; with an intercept both blocks are centred on
  the training samples (feature-space centring, himalaya's ``KernelCenterer``). Each
  training block gets one float64 eigendecomposition ``K_tr = U diag(λ) Uᵀ`` and every
  alpha's test predictions come from ``K_te U diag(1/(λ + a)) Uᵀ y_tr`` (one GEMM per fold
  and target chunk for all alphas).
* Eigenvalues are used as they are (not clipped), so kernels that are not positive
  semi-definite (``sigmoid``) behave as in himalaya: in a fold whose smallest eigenvalue
  λ₀ is negative, alphas below ``−2 λ₀`` score −1e5 (cannot be selected).
* Alphas are selected from the fold-mean criterion plus himalaya's ``1e-10·log(alpha)``
  slope (ties go to the larger alpha), per target or, with ``local_alpha=False``, by the
  target mean. A candidate replaces the current best of a target when its score is larger
  by more than the dtype's eps (by the target mean with ``local_alpha=False``).
* The refit on all samples takes one decomposition per selected candidate (eigenvalues
  again as they are: himalaya zeroes negative ones only after forming its weights).

:class:`KernelRidgeCV` is the one-kernel estimator (one candidate, weight 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg
import torch
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin

from brainalign._checks import check_option, check_type
from brainalign._device import to_numpy, warn_unresolved
from brainalign.encoding._kernels import KERNELS, check_kernel, kernel_matrix
from brainalign.encoding._ridge import (
    DEFAULT_ALPHAS,
    Criterion,
    _align_columns,
    _check_alphas,
    _check_budget,
    _data_bytes,
    _flatten,
    _labeled_r2,
    _Labels,
    _prepare,
    _resolve_memory,
    label_columns,
    make_folds,
)
from brainalign.encoding._solvers import (
    CRITERIA,
    Fold,
    FoldOperator,
    TargetSource,
    _centre_kernel_blocks,
    _eps,
    fold_statistics,
)

#: Score given to alphas a non-PSD fold kernel cannot regularise (himalaya's value).
_BANNED_SCORE = -1e5


def _largest_eigenvalue(k: torch.Tensor, n_iter: int = 30) -> float:
    """Largest eigenvalue of a symmetric PSD kernel: power iteration in float64 (a lower bound)."""
    k64 = k.to(torch.float64)
    v = torch.ones(k64.shape[0], dtype=torch.float64, device=k64.device)
    lam = 0.0
    for _ in range(n_iter):
        w = k64 @ v
        norm = float(torch.linalg.vector_norm(w))
        if not norm > 0:
            return 0.0
        lam, v = norm / float(torch.linalg.vector_norm(v)), w / norm
    return lam


@dataclass
class KernelSearchResult:
    """Outcome of :func:`multiple_kernel_ridge_cv_path` (tensors on the compute device)."""

    best_gamma: torch.Tensor  # (t,) index into the candidates
    best_alpha: torch.Tensor  # (t,) index into the alphas
    cv_scores: torch.Tensor  # (n_gammas, t) fold-mean criterion at each candidate's alpha
    best_score: torch.Tensor  # (t,) fold-mean criterion at the selected pair
    reported: torch.Tensor  # (t,) fold-mean reported score there
    path: torch.Tensor | None = None  # (n_alphas, t) fold-mean criterion (one candidate)
    dual: torch.Tensor | None = None  # (n, t) (K_gamma + a I)⁻¹ y per target
    intercept: torch.Tensor | None = None  # (t,)


def _eigh_signed(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 eigendecomposition, eigenvalues ascending and not clipped."""
    m = m.to(torch.float64)
    if m.device.type == "cpu" and m.shape[0] > 1:
        # LAPACK divide and conquer (numpy's and himalaya's driver): robust on clustered
        # spectra (smooth kernels), where MRRR can be slow.
        w, v = scipy.linalg.eigh(m.numpy(), driver="evd", check_finite=False)
        return torch.from_numpy(w), torch.from_numpy(v)
    return torch.linalg.eigh(m)


def _weighted(kernels: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``Σ_k gamma_k K_k`` in float64."""
    return torch.einsum("k,kij->ij", gamma, kernels.to(torch.float64))


def multiple_kernel_ridge_cv_path(
    kernels: torch.Tensor,
    targets: TargetSource,
    n_targets: int,
    folds: Sequence[Fold],
    alphas: torch.Tensor,
    gammas: torch.Tensor,
    *,
    fit_intercept: bool = True,
    criterion: str = "neg_mse",
    scoring: str = "r2",
    local_alpha: bool = True,
    refit: bool = True,
    max_memory: int = 512 * 2**20,
    iterate: Callable = iter,
) -> KernelSearchResult:
    """Random search over kernel weights × alpha grid with exact K-fold CV, then refit.

    Parameters
    ----------
    kernels : torch.Tensor, shape (n_kernels, n, n)
        Training kernels (the compute dtype and device).
    targets : callable
        ``targets(start, stop)`` → (n, stop - start) tensor in the compute dtype.
    n_targets : int
        Number of targets.
    folds : sequence of Fold
        Splits (indices on the device).
    alphas : torch.Tensor, shape (n_alphas,)
        Positive grid.
    gammas : torch.Tensor, shape (n_gammas, n_kernels)
        Kernel-weight candidates.
    fit_intercept : bool
        Centre kernels (in feature space) and targets on each training set.
    criterion, scoring : str
        Selection score and reported score, among :data:`CRITERIA`.
    local_alpha : bool
        One alpha (and candidate) per target, or one shared by all targets.
    refit : bool
        Refit the dual coefficients on all samples.
    max_memory : int
        Byte budget for the per-chunk temporaries.
    iterate : callable
        Wraps the candidate iterator (a progress bar).

    Returns
    -------
    result : KernelSearchResult
    """
    n = kernels.shape[1]
    dtype, device = kernels.dtype, kernels.device
    n_alphas, n_gammas = alphas.shape[0], gammas.shape[0]
    names = tuple(dict.fromkeys((criterion, scoring)))
    a64 = alphas.to(device=device, dtype=torch.float64)
    gam = gammas.to(device=device, dtype=torch.float64)
    slope = (torch.log(a64) * 1e-10)[:, None]
    eps = _eps(dtype)
    itemsize = kernels.element_size()
    n_test_max = max(int(f.test.shape[0]) for f in folds)
    n_train_max = max(int(f.train.shape[0]) for f in folds)
    # Stacked operators (n_alphas·n_test × n_train per fold) pay off once the targets
    # outnumber the stacked rows; otherwise apply the factors (same GEMMs, no build).
    op_bytes = itemsize * len(folds) * n_alphas * n_test_max * n_train_max
    stack = n_targets > n_alphas * n_test_max and op_bytes <= max_memory // 2
    per_target = itemsize * (2 * n + 3 * n_alphas * n_test_max) + 8 * 4 * n_alphas
    chunk = int(max(1, min(n_targets, (max_memory // 2) // max(per_target, 1))))

    best_score = torch.full((n_targets,), -math.inf, dtype=torch.float64, device=device)
    best_gamma = torch.zeros(n_targets, dtype=torch.long, device=device)
    best_alpha = torch.zeros(n_targets, dtype=torch.long, device=device)
    reported = torch.zeros(n_targets, dtype=torch.float64, device=device)
    cv_scores = torch.empty((n_gammas, n_targets), dtype=torch.float64, device=device)
    result = KernelSearchResult(best_gamma, best_alpha, cv_scores, best_score, reported)
    targets_all = torch.arange(n_targets, device=device)

    for g in iterate(range(n_gammas)):
        kern = _weighted(kernels, gam[g])
        ops, banned = [], []
        for fold in folds:
            k_tr = kern[fold.train][:, fold.train]
            k_te = kern[fold.test][:, fold.train]
            if fit_intercept:
                k_tr, k_te = _centre_kernel_blocks(k_tr, k_te)
            lam, u = _eigh_signed(k_tr)
            lam, u = lam.to(device), u.to(device)
            inv = 1.0 / (lam[None, :] + a64[:, None])
            lam0 = float(lam[0]) if lam.numel() else 0.0
            banned.append(a64 < -2.0 * lam0 if lam0 < 0 else None)
            op = FoldOperator((k_te @ u).to(dtype), u.T.to(dtype).contiguous(), inv.to(dtype))
            if stack:
                op.materialise()
            ops.append(op)
        del kern
        sums = {
            k: torch.zeros((n_alphas, n_targets), dtype=torch.float64, device=device)
            for k in names
        }
        for start in range(0, n_targets, chunk):
            stop = min(start + chunk, n_targets)
            y = targets(start, stop)
            for fold, op, bad in zip(folds, ops, banned, strict=True):
                y_tr = y[fold.train]
                if fit_intercept:
                    mu = y_tr.mean(0)
                    pred = op.apply(y_tr - mu)
                    pred += mu[None, None, :]
                else:
                    pred = op.apply(y_tr)
                for k, v in fold_statistics(y[fold.test], pred, names).items():
                    if bad is not None:
                        v[bad] = _BANNED_SCORE
                    sums[k][:, start:stop] += v
                del pred, y_tr
            del y
        crit = sums[criterion] / len(folds) + slope
        if local_alpha:
            a_idx = torch.argmax(crit, dim=0)
        else:
            a_idx = torch.argmax(crit.mean(1)).expand(n_targets).clone()
        score = crit[a_idx, targets_all]
        cv_scores[g] = score - slope[a_idx, 0]
        if local_alpha:
            better = score > best_score + eps
        else:
            better = (score.mean() > best_score.mean() + eps).expand(n_targets)
        best_score.copy_(torch.where(better, score, best_score))
        best_gamma.copy_(torch.where(better, g, best_gamma))
        best_alpha.copy_(torch.where(better, a_idx, best_alpha))
        rep = (sums[scoring] / len(folds))[a_idx, targets_all]
        reported.copy_(torch.where(better, rep, reported))
        if n_gammas == 1:
            result.path = sums[criterion] / len(folds)
    result.best_score = best_score - slope[best_alpha, 0]
    if refit:
        result.dual, result.intercept = _refit(
            kernels, targets, n_targets, gam, a64, best_gamma, best_alpha, fit_intercept, chunk
        )
    return result


def _refit(
    kernels: torch.Tensor,
    targets: TargetSource,
    n_targets: int,
    gam: torch.Tensor,
    a64: torch.Tensor,
    best_gamma: torch.Tensor,
    best_alpha: torch.Tensor,
    fit_intercept: bool,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Dual coefficients ``(K_gamma + a I)⁻¹ y`` on all samples, one eigh per candidate."""
    n, dtype, device = kernels.shape[1], kernels.dtype, kernels.device
    dual = torch.empty((n, n_targets), dtype=dtype, device=device)
    intercept = torch.empty(n_targets, dtype=dtype, device=device) if fit_intercept else None
    for g in torch.unique(best_gamma).tolist():
        kern = _weighted(kernels, gam[g])
        rows = kern.mean(0)
        if fit_intercept:
            kern, _ = _centre_kernel_blocks(kern, None)
        lam, u = _eigh_signed(kern)
        lam, u = lam.to(device), u.to(device)
        del kern
        for start in range(0, n_targets, chunk):
            stop = min(start + chunk, n_targets)
            cols = start + torch.nonzero(best_gamma[start:stop] == g).flatten()
            if cols.numel() == 0:
                continue
            y = targets(start, stop)[:, cols - start].to(torch.float64)
            y_mean = y.mean(0)
            yc = y - y_mean if fit_intercept else y
            inv = 1.0 / (lam[:, None] + a64[best_alpha[cols]][None, :])
            w = u @ (inv * (u.T @ yc))
            dual[:, cols] = w.to(dtype)
            if intercept is not None:
                intercept[cols] = (y_mean - rows @ w).to(dtype)
    return dual, intercept


# --------------------------------------------------------------------------- helpers


def _not_fitted(est: Any) -> None:
    if not hasattr(est, "dual_coef_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"This {type(est).__name__} is not fitted yet; call fit(X, Y) first.")


def _label_prediction(pred: np.ndarray, X: Any, labels: _Labels) -> Any:
    """Give predictions the fitted Y's target dims and X's sample coords (like RidgeCV)."""
    pred = pred.reshape(pred.shape[0], *labels.shape)
    if isinstance(X, xr.DataArray) and labels.template is not None:
        t = labels.template
        dim = X.dims[0]
        coords = dict(t.coords)
        coords.update({k: v for k, v in X.coords.items() if X[k].dims == (dim,)})
        return xr.DataArray(pred, dims=(dim, *t.dims), coords=coords)
    return pred


def _host_matrix(X: Any, name: str) -> np.ndarray:
    x, _ = _flatten(X, name)
    return to_numpy(x) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _tensor(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values)).to(device=like.device, dtype=like.dtype)


# --------------------------------------------------------------------------- estimator


class KernelRidgeCV(RegressorMixin, BaseEstimator):
    """Kernel ridge regression with the penalty chosen by exact cross-validation.

    The kernel ``K`` between samples replaces the features: ``Y ≈ K_test·dual + b``,
    ``dual = (K + alpha I)⁻¹ (Y − ȳ)`` on the (centred) training kernel. Kernels and
    their parameters are himalaya's (and scikit-learn's): ``"linear"``, ``"polynomial"``
    / ``"poly"`` (``degree=3, gamma=None, coef0=1``), ``"rbf"`` (``gamma=None``),
    ``"sigmoid"`` (``gamma=None, coef0=1``), ``"cosine"``, with ``gamma=None`` meaning
    ``1 / n_features``; or ``"precomputed"`` (X is then the kernel). With the same folds,
    alphas and ``fit_intercept``, ``best_alphas_``, ``dual_coef_`` and predictions equal
    himalaya's ``KernelRidgeCV`` (the default score is the same negative MSE).

    Parameters
    ----------
    alphas : sequence of float
        Positive penalty grid.
    kernel : str or callable
        Kernel name, ``"precomputed"``, or a callable ``f(X, Y, **kernel_params)`` on
        tensors returning the (n_X, n_Y) matrix.
    kernel_params : dict, optional
        The kernel's parameters (``gamma``, ``degree``, ``coef0``).
    cv : int or splitter or iterable
        Cross-validation splits (see :func:`brainalign.encoding.make_folds`).
    fit_intercept : bool
        Centre the kernel (in feature space) and the targets on each training set.
        himalaya's default is False.
    criterion : {"neg_mse", "r2", "pearson"}
        Selection score (himalaya's ``score_func``: ``l2_neg_loss``, ``r2_score``,
        ``correlation_score``).
    scoring : {"neg_mse", "r2", "pearson"}
        Score reported in ``cv_scores_``.
    local_alpha : bool
        One alpha per target (True) or one shared by all targets.
    max_memory : int or "auto"
        Byte budget for target chunks.
    device, dtype : optional
        Compute device and dtype.

    Attributes
    ----------
    dual_coef_ : ndarray, shape (n_samples, n_targets) or (n_samples,) for a 1-D Y
    intercept_ : ndarray, shape (n_targets,), or float for a 1-D Y
        Zeros without ``fit_intercept``.
    best_alphas_ : ndarray, shape (n_targets,)
    cv_scores_ : ndarray, shape (n_targets,)
        ``scoring`` averaged over folds at the selected alpha.
    results_ : xarray.Dataset
        ``cv_score``, ``best_alpha`` and ``cv_path`` (fold-mean criterion per alpha),
        over the target dims.
    X_fit_ : ndarray or None
        Training features (None for a precomputed kernel).
    kernel_params_ : dict
        The parameters used (defaults filled in, ``gamma`` resolved).
    n_features_in_ : int

    See Also
    --------
    MultipleKernelRidgeCV : several kernels (feature bands) with searched weights.
    RidgeCV : the linear kernel in primal form, faster when features < samples.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import KernelRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(80, 2))
    >>> Y = np.sin(X[:, :1]) * X[:, 1:] + 0.05 * rng.standard_normal((80, 1))
    >>> model = KernelRidgeCV(alphas=[1e-3, 1e-2, 0.1, 1], kernel="rbf").fit(X, Y)
    >>> bool(model.score(X[:20], Y[:20])[0] > 0.9)
    True
    """

    def __init__(
        self,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        *,
        kernel: str | Callable = "linear",
        kernel_params: dict | None = None,
        cv: Any = 5,
        fit_intercept: bool = True,
        criterion: Criterion = "neg_mse",
        scoring: Criterion = "r2",
        local_alpha: bool = True,
        max_memory: int | Literal["auto"] = "auto",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        self.alphas = alphas
        self.kernel = kernel
        self.kernel_params = kernel_params
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.criterion = criterion
        self.scoring = scoring
        self.local_alpha = local_alpha
        self.max_memory = max_memory
        self.device = device
        self.dtype = dtype

    def _check_params(self) -> tuple[str | Callable, dict]:
        check_option("criterion", self.criterion, CRITERIA)
        check_option("scoring", self.scoring, CRITERIA)
        check_type("fit_intercept", self.fit_intercept, (bool,), "a bool")
        check_type("local_alpha", self.local_alpha, (bool,), "a bool")
        if isinstance(self.kernel, str) and self.kernel == "precomputed":
            if self.kernel_params:
                raise ValueError(
                    f"kernel='precomputed' takes no kernel_params; got {self.kernel_params!r}."
                )
            return "precomputed", {}
        if isinstance(self.kernel, str):
            check_option("kernel", self.kernel, (*KERNELS, "precomputed"))
        return check_kernel(self.kernel, self.kernel_params)

    def fit(self, X: Any, Y: Any, groups: Any = None) -> KernelRidgeCV:
        """Select alphas by cross-validation, then refit the dual coefficients.

        Parameters
        ----------
        X : array_like or xarray.DataArray, shape (n_samples, n_features)
            Features; with ``kernel="precomputed"`` the (n_samples, n_samples) kernel.
        Y : array_like or xarray.DataArray, shape (n_samples, ...)
            Targets.
        groups : array_like, optional
            Labels for the splitter (runs).

        Returns
        -------
        self : KernelRidgeCV
            The fitted estimator.
        """
        kern, params = self._check_params()
        alphas = _check_alphas(self.alphas)
        prob = _prepare(X, Y, self.device, self.dtype)
        n = prob.x.shape[0]
        n_targets = int(prob.y_host.shape[1])
        itemsize = prob.x.element_size()
        # the kernel, one float64 eigendecomposition (values, vectors, work) and the dual
        # coefficients beside the data
        _check_budget(
            _data_bytes(prob) + itemsize * n * (n + n_targets) + 8 * 3 * n * n,
            f"KernelRidgeCV: the ({n}, {n}) kernel of {n} samples and its eigendecomposition",
            prob.device,
        )
        if kern == "precomputed":
            if prob.x.shape[1] != n:
                raise ValueError(
                    "With kernel='precomputed', X must be the square (n_samples, n_samples) "
                    f"training kernel; got shape {tuple(prob.x.shape)}."
                )
            K = prob.x
            self.X_fit_ = None
        else:
            if params.get("gamma", 0) is None:
                params["gamma"] = 1.0 / prob.x.shape[1]
            K = kernel_matrix(prob.x, None, kern, params)
            self.X_fit_ = to_numpy(prob.x)
        folds = make_folds(self.cv, n, groups)
        tfolds = [
            Fold(torch.as_tensor(tr, device=prob.device), torch.as_tensor(te, device=prob.device))
            for tr, te in folds
        ]
        res = multiple_kernel_ridge_cv_path(
            K[None],
            prob.targets,
            n_targets,
            tfolds,
            torch.as_tensor(alphas, device=prob.device, dtype=prob.dtype),
            torch.ones((1, 1), dtype=torch.float64),
            fit_intercept=self.fit_intercept,
            criterion=self.criterion,
            scoring=self.scoring,
            local_alpha=self.local_alpha,
            max_memory=_resolve_memory(self.max_memory, prob.device, K.nbytes),
        )
        warn_unresolved(
            "The smallest alpha",
            float(alphas.min()),
            _largest_eigenvalue(K),
            prob.dtype,
            symbol="λ_max(K)",
            consequence="dual coefficients at that penalty are dominated by rounding.",
        )
        one = prob.y_labels.shape == ()
        dual = to_numpy(res.dual)
        icpt = to_numpy(res.intercept) if res.intercept is not None else np.zeros(n_targets)
        self.dual_coef_ = dual[:, 0] if one else dual
        self.intercept_ = float(icpt[0]) if one else icpt
        self.best_alphas_ = alphas[to_numpy(res.best_alpha)]
        self.cv_scores_ = to_numpy(res.reported)
        self.kernel_params_ = params
        self.n_features_in_ = prob.x.shape[1]
        self._kernel = kern
        self._x_labels = prob.x_labels
        self._y_labels = prob.y_labels
        self._device, self._dtype = prob.device, prob.dtype
        lab = prob.y_labels
        ds = xr.Dataset(
            {
                "cv_score": label_columns(self.cv_scores_, lab),
                "best_alpha": label_columns(self.best_alphas_, lab),
                "cv_path": label_columns(to_numpy(res.path), lab, ("alpha",), {"alpha": alphas}),
            }
        )
        ds.attrs.update(
            criterion=self.criterion,
            scoring=self.scoring,
            kernel=str(self.kernel),
            n_folds=len(folds),
            description=(
                f"cv_score: {self.scoring} averaged over {len(folds)} folds at the selected "
                f"alpha (by {self.criterion}); cv_path: fold-mean {self.criterion} per alpha."
            ),
        )
        self.results_ = ds
        return self

    def _test_kernel(self, X: Any) -> torch.Tensor:
        _not_fitted(self)
        x = _host_matrix(_align_columns(X, self._x_labels.template, "X"), "X")
        n_train = self.dual_coef_.shape[0]
        like = torch.empty(0, device=self._device, dtype=self._dtype)
        if self._kernel == "precomputed":
            if x.shape[1] != n_train:
                raise ValueError(
                    f"With kernel='precomputed', X must be the (n_samples, {n_train}) kernel "
                    f"between the new and the training samples; got shape {x.shape}."
                )
            return _tensor(x, like)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but KernelRidgeCV was fitted with "
                f"{self.n_features_in_} features."
            )
        return kernel_matrix(
            _tensor(x, like), _tensor(self.X_fit_, like), self._kernel, self.kernel_params_
        )

    def predict(self, X: Any) -> Any:
        """Predict every target.

        Parameters
        ----------
        X : array_like or xarray.DataArray, shape (n_samples, n_features)
            New samples; with ``kernel="precomputed"`` the (n_samples, n_train) kernel
            between them and the training samples.

        Returns
        -------
        Y_pred : ndarray or xarray.DataArray, shape (n_samples, ...)
            Labeled like the fitted Y when X and Y are DataArrays.
        """
        k = self._test_kernel(X)
        dual = _tensor(np.asarray(self.dual_coef_).reshape(k.shape[1], -1), k)
        pred = to_numpy(k @ dual) + np.reshape(self.intercept_, -1)
        return _label_prediction(pred, X, self._y_labels)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """R² of the predictions per target (a float for a 1-D ``y``).

        Parameters
        ----------
        X : array_like or xarray.DataArray
            New samples (or their kernel with the training samples).
        y : array_like or xarray.DataArray, shape (n_samples, ...)
            True targets.
        sample_weight : None
            Not supported.

        Returns
        -------
        r2 : ndarray, shape (n_targets,), or float
            The coefficient of determination per target (a float for a 1-D ``y``).
        """
        return _labeled_r2(self, X, y, sample_weight)

    def __sklearn_tags__(self):
        """Declare multi-output support (and pairwise input for a precomputed kernel)."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.pairwise = self.kernel == "precomputed"
        return tags


__all__ = ["KernelRidgeCV", "KernelSearchResult", "multiple_kernel_ridge_cv_path"]
