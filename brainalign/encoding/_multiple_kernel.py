"""Multiple-kernel ridge: banded models in kernel form, kernel weights by random search."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin

from brainalign._checks import _fmt, check_option, check_type
from brainalign._device import to_numpy
from brainalign._logging import progress
from brainalign.encoding._banded import _stack_bands, candidate_weights
from brainalign.encoding._kernel_ridge import (
    _host_matrix,
    _label_prediction,
    _not_fitted,
    _tensor,
    multiple_kernel_ridge_cv_path,
)
from brainalign.encoding._kernels import check_kernel, kernel_matrix
from brainalign.encoding._ridge import (
    DEFAULT_ALPHAS,
    Criterion,
    _align_samples,
    _check_alphas,
    _prepare,
    _r2_per_target,
    _resolve_memory,
    label_columns,
    make_folds,
)
from brainalign.encoding._scoring import r2_score_split
from brainalign.encoding._solvers import CRITERIA, Fold

MKR_SOLVERS = ("random_search",)


def _is_banded(X: Any, bands: Any) -> bool:
    """X given as bands: a mapping, a list of 2-D arrays, or a 2-D X with ``bands=``."""
    if bands is not None or isinstance(X, Mapping):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and np.ndim(X[0]) >= 2


class MultipleKernelRidgeCV(RegressorMixin, BaseEstimator):
    """Kernel ridge on a weighted sum of kernels, weights and penalty chosen by CV.

    The model is ``Y ≈ Σ_k exp(deltas_k) K_k·dual + b``: kernel ``k``'s weight ``gamma_k``
    (on the simplex) and the penalty ``alpha`` are searched per target, the weights at
    random (Dirichlet draws, the first one uniform, or the candidates given as
    ``n_iter``) and the alphas exhaustively for each, every pair scored by exact K-fold
    cross-validation; ``deltas_ = log(gamma / alpha)``. These are the semantics of
    himalaya's ``MultipleKernelRidgeCV(solver="random_search")``, with its solver
    parameters (``n_iter``, ``concentration``, ``alphas``, ``score_func`` → ``criterion``,
    ``local_alpha``) as keywords here.

    The kernels come in three forms:

    * **feature bands** (banded ridge in kernel form): ``fit(X, Y)`` with ``X`` a dict
      ``{band name: features}`` (DataArrays are aligned to Y's sample labels) or a list
      of arrays, or a 2-D ``X`` with ``bands=`` one label per column; ``kernels`` is one
      kernel for every band or a list with one per band (himalaya's
      ``ColumnKernelizer`` + ``Kernelizer`` pipeline);
    * **several kernels of the same features**: a 2-D ``X`` and a list of ``kernels``
      (each computed on all features, as himalaya does);
    * ``kernels="precomputed"``: ``X`` is the (n_kernels, n_samples, n_samples) stack
      at fit, (n_kernels, n_new, n_samples) at predict.

    Parameters
    ----------
    kernels : str, callable, list or "precomputed"
        Kernel names (see :func:`brainalign.encoding.pairwise_kernels`) or callables.
    kernels_params : dict or list of dict, optional
        One dict for all kernels, or one per kernel (``gamma``, ``degree``, ``coef0``).
    alphas : sequence of float
        Positive penalty grid searched for every weight candidate.
    solver : {"random_search"}
        Search method.
    n_iter : int or array_like of shape (n_candidates, n_kernels)
        Number of random weight candidates, or the candidates (rows need not sum to 1;
        ``np.eye(n_kernels)`` is a winner-take-all search).
    concentration : float or sequence of float
        Dirichlet concentrations, cycled (draws as himalaya's
        ``generate_dirichlet_samples``, so a seed gives the same candidates).
    cv : int or splitter or iterable
        Cross-validation splits (see :func:`brainalign.encoding.make_folds`).
    fit_intercept : bool
        Centre the kernels (in feature space) and targets on each training set.
        himalaya's default is False.
    criterion, scoring : {"neg_mse", "r2", "pearson"}
        Selection score and reported score.
    local_alpha : bool
        Weights and alpha per target (True) or shared by all targets.
    random_state : int or None
        Seed of the candidate sampler.
    max_memory : int or "auto"
        Byte budget for target chunks.
    device, dtype : optional
        Compute device and dtype.

    Attributes
    ----------
    kernel_names_ : list of str
        Band names, or the kernel names.
    kernel_weights_ : ndarray, shape (n_kernels, n_targets)
        Selected ``gamma`` per target.
    best_alphas_ : ndarray, shape (n_targets,)
    deltas_ : ndarray, shape (n_kernels, n_targets)
        ``log(gamma / alpha)`` (``-inf`` for a zero weight).
    dual_coef_ : ndarray, shape (n_samples, n_targets)
        himalaya's dual weights (scaled so that ``exp(deltas_)`` weighs the kernels).
    intercept_ : ndarray, shape (n_targets,)
    cv_scores_ : ndarray, shape (n_targets,)
        ``scoring`` averaged over folds at the selected candidate.
    candidate_scores_ : ndarray, shape (n_candidates, n_targets)
        Best-alpha fold-mean criterion of every candidate (himalaya's ``cv_scores_``).
    gammas_ : ndarray, shape (n_candidates, n_kernels)
        The candidates searched.
    results_ : xarray.Dataset
        ``cv_score``, ``best_alpha``, ``kernel_weight`` over the target dims.

    See Also
    --------
    BandedRidgeCV : the same search with linear kernels, in primal form.
    KernelRidgeCV : one kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import MultipleKernelRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> bands = {"early": rng.standard_normal((60, 4)), "late": rng.standard_normal((60, 6))}
    >>> Y = bands["late"] @ rng.standard_normal((6, 2)) + 0.1 * rng.standard_normal((60, 2))
    >>> model = MultipleKernelRidgeCV("linear", alphas=[0.1, 1, 10], n_iter=20,
    ...                               random_state=0).fit(bands, Y)
    >>> bool((model.kernel_weights_[1] > 0.5).all())  # the informative band dominates
    True
    """

    def __init__(
        self,
        kernels: Any = "linear",
        kernels_params: Any = None,
        *,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        solver: Literal["random_search"] = "random_search",
        n_iter: Any = 100,
        concentration: Any = (0.1, 1.0),
        cv: Any = 5,
        fit_intercept: bool = True,
        criterion: Criterion = "neg_mse",
        scoring: Criterion = "r2",
        local_alpha: bool = True,
        random_state: int | None = None,
        max_memory: int | Literal["auto"] = "auto",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        self.kernels = kernels
        self.kernels_params = kernels_params
        self.alphas = alphas
        self.solver = solver
        self.n_iter = n_iter
        self.concentration = concentration
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.criterion = criterion
        self.scoring = scoring
        self.local_alpha = local_alpha
        self.random_state = random_state
        self.max_memory = max_memory
        self.device = device
        self.dtype = dtype

    # ----------------------------------------------------------------- kernel specs

    def _precomputed(self) -> bool:
        return isinstance(self.kernels, str) and self.kernels == "precomputed"

    def _specs(self, n_bands: int | None) -> list[tuple[str | Callable, dict]]:
        """(kernel, params) per kernel; ``n_bands`` set in band mode."""
        kernels = self.kernels
        single = isinstance(kernels, str) or callable(kernels)
        if not single and not isinstance(kernels, (list, tuple)):
            raise TypeError(
                "kernels must be a kernel name, a callable, a list of them, or "
                f"'precomputed'; got {type(kernels).__name__} {_fmt(kernels)}."
            )
        if single:
            kernels = [kernels] * (n_bands or 1)
        if not kernels:
            raise ValueError("kernels is an empty list; give at least one kernel.")
        if n_bands is not None and len(kernels) != n_bands:
            raise ValueError(
                f"kernels must be one kernel for all bands or a list of one per band "
                f"({n_bands} bands); got {len(kernels)} kernels."
            )
        params = self.kernels_params
        if params is None or isinstance(params, Mapping):
            params = [params] * len(kernels)
        elif not isinstance(params, (list, tuple)) or len(params) != len(kernels):
            raise ValueError(
                "kernels_params must be None, one dict for all kernels, or a list of one "
                f"dict per kernel ({len(kernels)}); got {_fmt(params)}."
            )
        return [
            check_kernel(k, p, f"kernels[{i}]")
            for i, (k, p) in enumerate(zip(kernels, params, strict=True))
        ]

    def _kernel_stack(self, x: torch.Tensor, x_fit: torch.Tensor | None) -> torch.Tensor:
        """Stack the (n_kernels, n_x, n_fit) kernels between ``x`` and ``x_fit`` (None: x)."""
        out = []
        for (kern, params), cols in zip(self._spec_list, self._columns, strict=True):
            if cols is not None:
                cols = torch.as_tensor(cols, device=x.device)
            xa = x if cols is None else x[:, cols]
            xb = None if x_fit is None else (x_fit if cols is None else x_fit[:, cols])
            out.append(kernel_matrix(xa, xb, kern, params))
        return torch.stack(out)

    # ----------------------------------------------------------------- fit

    def fit(self, X: Any, Y: Any, groups: Any = None, bands: Any = None) -> MultipleKernelRidgeCV:
        """Search kernel weights and penalties per target, then refit on all samples.

        Parameters
        ----------
        X : dict, list, array_like or xarray.DataArray
            Feature bands (dict or list of (n_samples, n_b) arrays, or a 2-D array with
            ``bands=``), a 2-D feature matrix for a list of ``kernels``, or the
            (n_kernels, n_samples, n_samples) stack with ``kernels="precomputed"``.
        Y : array_like or xarray.DataArray, shape (n_samples, ...)
            Targets.
        groups : array_like, optional
            Labels for the splitter (runs).
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        self : MultipleKernelRidgeCV
            The fitted estimator.
        """
        check_option("solver", self.solver, MKR_SOLVERS)
        check_option("criterion", self.criterion, CRITERIA)
        check_option("scoring", self.scoring, CRITERIA)
        check_type("fit_intercept", self.fit_intercept, (bool,), "a bool")
        check_type("local_alpha", self.local_alpha, (bool,), "a bool")
        alphas = _check_alphas(self.alphas)
        self._banded = False
        if self._precomputed():
            if self.kernels_params:
                raise ValueError(
                    f"kernels='precomputed' takes no kernels_params; got {self.kernels_params!r}."
                )
            ks = np.asarray(X.values if isinstance(X, xr.DataArray) else X, dtype=float)
            if ks.ndim != 3 or ks.shape[1] != ks.shape[2]:
                raise ValueError(
                    "With kernels='precomputed', X must be the (n_kernels, n_samples, "
                    f"n_samples) stack of training kernels; got shape {ks.shape}."
                )
            k, n = ks.shape[0], ks.shape[1]
            prob = _prepare(np.moveaxis(ks, 0, 1).reshape(n, k * n), Y, self.device, self.dtype)
            kernels = prob.x.reshape(n, k, n).permute(1, 0, 2).contiguous()
            self._spec_list, self._columns, self.X_fit_ = [], [], None
            self.kernel_names_ = [f"kernel{i}" for i in range(k)]
            self.n_features_in_ = n
        else:
            if _is_banded(X, bands):
                x, band_of_column, names = _stack_bands(X, bands, Y)
                self._banded = True
                self._band_of_column = band_of_column
                self._spec_list = self._specs(len(names))
                self._columns = [np.flatnonzero(band_of_column == b) for b in range(len(names))]
                self.kernel_names_ = names
            else:
                x = X
                self._spec_list = self._specs(None)
                self._columns = [None] * len(self._spec_list)
                raw = [str(k) if isinstance(k, str) else "callable" for k, _ in self._spec_list]
                self.kernel_names_ = [
                    nm if raw.count(nm) == 1 else f"{nm}{i}" for i, nm in enumerate(raw)
                ]
            prob = _prepare(x, Y, self.device, self.dtype)
            for (_, params), cols in zip(self._spec_list, self._columns, strict=True):
                if "gamma" in params and params["gamma"] is None:  # 1 / n_features
                    params["gamma"] = 1.0 / (prob.x.shape[1] if cols is None else len(cols))
            kernels = self._kernel_stack(prob.x, None)
            self.X_fit_ = to_numpy(prob.x)
            self.n_features_in_ = prob.x.shape[1]
            self._x_labels = prob.x_labels
        gammas = candidate_weights(
            self.n_iter, self.concentration, self.random_state, kernels.shape[0], "kernel"
        )
        folds = make_folds(self.cv, prob.x.shape[0], groups)
        tfolds = [
            Fold(torch.as_tensor(tr, device=prob.device), torch.as_tensor(te, device=prob.device))
            for tr, te in folds
        ]
        n_targets = int(prob.y_host.shape[1])
        res = multiple_kernel_ridge_cv_path(
            kernels,
            prob.targets,
            n_targets,
            tfolds,
            torch.as_tensor(alphas, device=prob.device, dtype=prob.dtype),
            gammas,
            fit_intercept=self.fit_intercept,
            criterion=self.criterion,
            scoring=self.scoring,
            local_alpha=self.local_alpha,
            max_memory=_resolve_memory(self.max_memory, prob.device, kernels.nbytes),
            iterate=lambda it: progress(it, "multiple kernel ridge: weight candidates"),
        )
        g = gammas.numpy()
        self.gammas_ = g
        self.kernel_weights_ = g[to_numpy(res.best_gamma)].T
        self.best_alphas_ = alphas[to_numpy(res.best_alpha)]
        with np.errstate(divide="ignore"):
            self.deltas_ = np.log(self.kernel_weights_ / self.best_alphas_[None, :])
        self.dual_coef_ = to_numpy(res.dual) * self.best_alphas_[None, :]
        self.intercept_ = (
            to_numpy(res.intercept) if res.intercept is not None else np.zeros(n_targets)
        )
        self.cv_scores_ = to_numpy(res.reported)
        self.candidate_scores_ = to_numpy(res.cv_scores)
        self._y_labels = prob.y_labels
        self._device, self._dtype = prob.device, prob.dtype
        lab = prob.y_labels
        ds = xr.Dataset(
            {
                "cv_score": label_columns(self.cv_scores_, lab),
                "best_alpha": label_columns(self.best_alphas_, lab),
                "kernel_weight": label_columns(self.kernel_weights_, lab, ("kernel",)),
            }
        ).assign_coords(kernel=self.kernel_names_)
        ds.attrs.update(
            criterion=self.criterion, scoring=self.scoring, solver=self.solver, n_folds=len(folds)
        )
        self.results_ = ds
        return self

    # ----------------------------------------------------------------- predict

    def _test_kernels(self, X: Any, bands: Any) -> torch.Tensor:
        _not_fitted(self)
        like = torch.empty(0, device=self._device, dtype=self._dtype)
        n_train = self.dual_coef_.shape[0]
        n_k = len(self.kernel_names_)
        if self._precomputed():
            ks = np.asarray(X.values if isinstance(X, xr.DataArray) else X, dtype=float)
            if ks.ndim != 3 or ks.shape[0] != n_k or ks.shape[2] != n_train:
                raise ValueError(
                    f"With kernels='precomputed', X must be the ({n_k}, n_samples, {n_train}) "
                    "stack of kernels between the new and the training samples; got shape "
                    f"{ks.shape}."
                )
            return _tensor(ks, like)
        if self._banded:
            if not _is_banded(X, bands):
                raise ValueError(
                    "This model was fitted on feature bands; give X as the same bands (a "
                    "dict or list of arrays, or a 2-D X with bands=)."
                )
            x, _, names = _stack_bands(X, bands)
            x = _host_matrix(x, "X")
            if names != self.kernel_names_ or x.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {x.shape[1]} features in bands {names}, but "
                    f"MultipleKernelRidgeCV was fitted with {self.n_features_in_} features "
                    f"in bands {self.kernel_names_}."
                )
        else:
            x = _host_matrix(X, "X")
            if x.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {x.shape[1]} features, but MultipleKernelRidgeCV was fitted with "
                    f"{self.n_features_in_} features."
                )
        return self._kernel_stack(_tensor(x, like), _tensor(self.X_fit_, like))

    def predict_split(self, X: Any, bands: Any = None) -> np.ndarray:
        """Each kernel's share of the prediction (without the intercept).

        Parameters
        ----------
        X : dict, list, array_like
            New samples, in the form given to :meth:`fit`.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        Y_pred : ndarray, shape (n_kernels, n_samples, n_targets)
            They sum to ``predict(X) - intercept_``.
        """
        ks = self._test_kernels(X, bands)
        dual = _tensor(self.dual_coef_, ks)
        weights = _tensor(np.exp(self.deltas_), ks)
        return to_numpy(weights[:, None, :] * torch.matmul(ks, dual))

    def predict(self, X: Any, bands: Any = None) -> Any:
        """Predict every target from all kernels.

        Parameters
        ----------
        X : dict, list, array_like
            New samples, in the form given to :meth:`fit`.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        Y_pred : ndarray or xarray.DataArray, shape (n_samples, ...)
            Labeled like the fitted Y when a 2-D X and Y are DataArrays.
        """
        pred = self.predict_split(X, bands).sum(0) + self.intercept_
        return _label_prediction(pred, X, self._y_labels)

    def score_split(self, X: Any, Y: Any, bands: Any = None) -> xr.DataArray:
        """Each kernel's share of the R² (product measure, himalaya's ``r2_score_split``).

        Parameters
        ----------
        X : dict, list, array_like
            Held-out samples.
        Y : array_like, shape (n_samples, n_targets)
            Held-out targets.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        r2_split : xarray.DataArray, dims ("kernel", <target dims>)
            Sums to the R² of the (centred) joint prediction.
        """
        parts = self.predict_split(X, bands)
        parts = parts - parts.mean(1, keepdims=True)
        y = _host_matrix(self._aligned_y(X, Y), "Y")
        y = y - y.mean(0)
        split = to_numpy(r2_score_split(torch.as_tensor(y), torch.as_tensor(parts)))
        return label_columns(split, self._y_labels, ("kernel",), {"kernel": self.kernel_names_})

    def score(self, X: Any, y: Any, sample_weight: Any = None, bands: Any = None) -> Any:
        """R² per target.

        Parameters
        ----------
        X : dict, list, array_like
            New samples, in the form given to :meth:`fit`.
        y : array_like, shape (n_samples, ...)
            True targets.
        sample_weight : None
            Not supported.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        r2 : ndarray, shape (n_targets,), or float for a 1-D ``y``
            The coefficient of determination of the prediction, per target.
        """
        if sample_weight is not None:
            raise ValueError(f"sample_weight is not supported; got {type(sample_weight)}.")
        r2 = _r2_per_target(self._aligned_y(X, y), self.predict(X, bands))
        return float(r2[0]) if self._y_labels.shape == () else r2

    @staticmethod
    def _aligned_y(X: Any, y: Any) -> Any:
        """``y`` reordered to the sample labels of the (first labeled) band of ``X``."""
        if isinstance(X, Mapping):
            parts = list(X.values())
        elif isinstance(X, (list, tuple)) and len(X) and np.ndim(X[0]) >= 2:
            parts = list(X)
        else:
            parts = [X]
        ref = next((x for x in parts if isinstance(x, xr.DataArray) and x.ndim == 2), None)
        return y if ref is None else _align_samples(y, ref, ("y", "X"))

    def __sklearn_tags__(self):
        """Declare multi-output support to scikit-learn."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["MKR_SOLVERS", "MultipleKernelRidgeCV"]
