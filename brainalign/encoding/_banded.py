"""Banded ridge: one penalty per feature band (model layer, feature space) and per target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin

from brainalign._checks import _fmt_list, check_number, check_option, check_type
from brainalign._device import to_numpy
from brainalign._logging import progress
from brainalign.encoding._ridge import (
    DEFAULT_ALPHAS,
    Criterion,
    _align_samples,
    _check_alphas,
    _data_bytes,
    _flatten,
    _prepare,
    _r2_per_target,
    _resolve_memory,
    label_columns,
    make_folds,
)
from brainalign.encoding._scoring import r2_score_split
from brainalign.encoding._solvers import (
    CRITERIA,
    SOLVERS,
    Fold,
    banded_ridge_cv_path,
    dirichlet_gammas,
    refine_band_penalties,
)


def _stack_bands(X: Any, bands: Any, Y: Any = None) -> tuple[Any, np.ndarray, list[str]]:
    """Side-by-side features, the band index of every column, and the band names."""
    if isinstance(X, Mapping) or (isinstance(X, (list, tuple)) and not np.isscalar(X[0])):
        items = (
            list(X.items())
            if isinstance(X, Mapping)
            else [(f"band{i}", x) for i, x in enumerate(X)]
        )
        if bands is not None:
            raise ValueError(
                "bands= labels columns of a single 2-D X; with X given as a "
                f"{type(X).__name__} of bands it must be None, got {bands!r}."
            )
        if not items:
            raise ValueError(
                f"X holds no bands (an empty {type(X).__name__}); give at least one feature array."
            )
        names = [str(k) for k, _ in items]
        # Bands are matched by sample label: to Y when it is labeled, else to the first
        # labeled band (a band's error names it).
        ref = Y if isinstance(Y, xr.DataArray) else None
        if ref is None:
            ref = next((x for _, x in items if isinstance(x, xr.DataArray)), None)
        ref_name = "Y" if isinstance(Y, xr.DataArray) else "the first labeled band"
        mats = []
        for name, x in items:
            if isinstance(x, xr.DataArray) and ref is not None:
                x = _align_samples(x, ref, (f"X[{name!r}]", ref_name))
            m, _ = _flatten(x, f"X[{name!r}]")
            mats.append(to_numpy(m) if isinstance(m, torch.Tensor) else np.asarray(m, float))
        n_rows = {m.shape[0] for m in mats}
        if len(n_rows) != 1:
            sizes = {name: m.shape[0] for name, m in zip(names, mats, strict=True)}
            raise ValueError(f"The bands of X have different numbers of samples: {sizes}.")
        band_of_column = np.concatenate([np.full(m.shape[1], i) for i, m in enumerate(mats)])
        return np.concatenate(mats, axis=1), band_of_column, names
    x, _ = _flatten(X, "X")
    if bands is None:
        raise ValueError(
            "BandedRidgeCV needs the bands: give X as a dict {band name: features} (or a "
            "list), or a 2-D X with bands= one label per column."
        )
    labels = np.asarray(bands)
    if labels.shape != (x.shape[1],):
        raise ValueError(
            f"bands must give one label per column of X ({x.shape[1]}); got shape {labels.shape}."
        )
    names_arr, codes = np.unique(labels, return_inverse=True)
    order = np.argsort([np.flatnonzero(labels == nm)[0] for nm in names_arr])
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return X, remap[codes], [str(names_arr[i]) for i in order]


def candidate_weights(
    n_iter: Any, concentration: Any, random_state: Any, n_bands: int, what: str = "band"
) -> torch.Tensor:
    """Weight candidates of a random search: Dirichlet draws, or the rows given.

    Parameters
    ----------
    n_iter : int or array_like of shape (n_candidates, n_bands)
        Number of random candidates (the first one uniform), or the candidates.
    concentration : float or sequence of float
        Dirichlet concentrations, cycled.
    random_state : int or None
        Seed.
    n_bands : int
        Number of bands (or kernels).
    what : str
        "band" or "kernel", for messages.

    Returns
    -------
    gammas : torch.Tensor, shape (n_candidates, n_bands), float64
    """
    if isinstance(n_iter, (int, np.integer)) and not isinstance(n_iter, bool):
        check_number("n_iter", int(n_iter), low=1, integer=True)
        conc = np.atleast_1d(np.asarray(concentration, dtype=float))
        if conc.size == 0 or np.any(conc <= 0):
            raise ValueError(
                f"concentration must be positive (inf for uniform); got {concentration}."
            )
        return dirichlet_gammas(int(n_iter), n_bands, conc, random_state)
    g = np.asarray(n_iter, dtype=float)
    if g.ndim != 2 or g.shape[1] != n_bands:
        raise ValueError(
            f"n_iter must be an int or an array of candidates of shape (n, {n_bands}) "
            f"(one column per {what}); got shape {g.shape}."
        )
    bad = ~np.isfinite(g).all(1) | (g < 0).any(1) | (np.nan_to_num(g).sum(1) <= 0)
    if bad.any():
        raise ValueError(
            f"n_iter candidates ({what} weights) must be finite, non-negative and not all "
            f"zero; rows {_fmt_list(np.flatnonzero(bad).tolist())} of {len(g)} are not "
            f"(first: {g[bad][0].tolist()})."
        )
    return torch.from_numpy(g)


class BandedRidgeCV(RegressorMixin, BaseEstimator):
    """Banded ridge regression: per-target band weights and penalty by exact CV.

    The features come in bands (one per model layer, or per feature space); each band
    ``b`` gets its own effective penalty ``alpha / gamma_b`` per target. The band weights
    ``gamma`` (on the simplex) are searched at random (Dirichlet samples, the first one
    uniform) and the alpha grid exhaustively for each; every (gamma, alpha) pair is scored
    by exact K-fold cross-validation, candidates batched on the device. Same semantics as
    himalaya's ``BandedRidgeCV(solver="random_search")``: ``deltas_ = log(gamma/alpha)``.

    Parameters
    ----------
    alphas : sequence of float
        Positive penalty grid searched for every band-weight candidate.
    n_iter : int or array_like of shape (n_candidates, n_bands)
        Number of random band-weight candidates, or the candidates themselves.
    concentration : float or sequence of float
        Dirichlet concentrations, cycled (small values favour one dominant band).
    cv : int or splitter or iterable
        Cross-validation splits (see :func:`brainalign.encoding.make_folds`).
    fit_intercept : bool
        Centre on each training set.
    criterion, scoring : {"neg_mse", "r2", "pearson"}
        Selection score and reported score.
    solver : {"auto", "primal", "dual"}
        Formulation.
    random_state : int or None
        Seed of the candidate sampler.
    refine_steps : int
        After the random search, this many gradient (Adam) steps per target on the log band
        penalties, differentiating the K-fold CV error through the ridge solves (the
        hypergradient); the best point met is kept, so the CV error never worsens. Needs
        ``criterion="neg_mse"``; costs a p × p Cholesky per target, fold and step, so it
        suits up to a few hundred features. 0 (default) skips it.
    refine_lr : float
        Adam learning rate of the refinement, in log-penalty units.
    max_memory : int or "auto"
        Byte budget for batched candidates and target chunks.
    device, dtype : optional
        Compute device and dtype.

    Attributes
    ----------
    band_names_ : list of str
    band_weights_ : ndarray, shape (n_bands, n_targets)
        Selected ``gamma`` per target (columns sum to 1).
    best_alphas_ : ndarray, shape (n_targets,)
    deltas_ : ndarray, shape (n_bands, n_targets)
        ``log(gamma / alpha)``, himalaya's parametrisation.
    coef_ : ndarray, shape (n_features, n_targets)
        On the unscaled features, all bands side by side.
    intercept_ : ndarray, shape (n_targets,)
    cv_scores_ : ndarray, shape (n_targets,)
        ``scoring`` averaged over folds at the selected candidate.
    candidate_scores_ : ndarray, shape (n_candidates, n_targets)
        Best-alpha fold-mean criterion of every candidate (a convergence trace).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import BandedRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> layers = {"early": rng.standard_normal((60, 4)), "late": rng.standard_normal((60, 6))}
    >>> Y = layers["late"] @ rng.standard_normal((6, 2)) + 0.1 * rng.standard_normal((60, 2))
    >>> model = BandedRidgeCV(alphas=[0.1, 1, 10], n_iter=20, random_state=0).fit(layers, Y)
    >>> bool((model.band_weights_[1] > 0.5).all())  # the informative band dominates
    True
    """

    def __init__(
        self,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        *,
        n_iter: Any = 100,
        concentration: Any = (0.1, 1.0),
        cv: Any = 5,
        fit_intercept: bool = True,
        criterion: Criterion = "neg_mse",
        scoring: Criterion = "r2",
        solver: Literal["auto", "primal", "dual"] = "auto",
        random_state: int | None = None,
        refine_steps: int = 0,
        refine_lr: float = 0.2,
        max_memory: int | Literal["auto"] = "auto",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        self.alphas = alphas
        self.n_iter = n_iter
        self.concentration = concentration
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.criterion = criterion
        self.scoring = scoring
        self.solver = solver
        self.random_state = random_state
        self.refine_steps = refine_steps
        self.refine_lr = refine_lr
        self.max_memory = max_memory
        self.device = device
        self.dtype = dtype

    def _gammas(self, n_bands: int) -> torch.Tensor:
        return candidate_weights(self.n_iter, self.concentration, self.random_state, n_bands)

    def fit(self, X: Any, Y: Any, groups: Any = None, bands: Any = None) -> BandedRidgeCV:
        """Search band weights and penalties per target, then refit on all samples.

        Parameters
        ----------
        X : dict of array_like, list of array_like, or array_like
            The bands (``{"layer1": acts1, "layer2": acts2}``), each (n_samples, n_b); or
            one 2-D array with ``bands=`` naming the band of every column.
        Y : array_like or xarray.DataArray, shape (n_samples, ...)
            Targets.
        groups : array_like, optional
            Labels for the splitter (runs).
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        self : BandedRidgeCV
            The fitted estimator.
        """
        check_option("criterion", self.criterion, CRITERIA)
        check_option("scoring", self.scoring, CRITERIA)
        check_option("solver", self.solver, SOLVERS)
        check_type("fit_intercept", self.fit_intercept, (bool,), "a bool")
        check_number("refine_steps", self.refine_steps, low=0, integer=True)
        check_number("refine_lr", self.refine_lr, low=0, closed="neither")
        if self.refine_steps and self.criterion != "neg_mse":
            raise ValueError(
                "refine_steps > 0 descends the cross-validated squared error, so it needs "
                f"criterion='neg_mse'; got criterion={self.criterion!r}."
            )
        alphas = _check_alphas(self.alphas)
        x, band_of_column, names = _stack_bands(X, bands, Y)
        prob = _prepare(x, Y, self.device, self.dtype)
        gammas = self._gammas(len(names))
        folds = make_folds(self.cv, prob.x.shape[0], groups)
        tfolds = [
            Fold(torch.as_tensor(tr, device=prob.device), torch.as_tensor(te, device=prob.device))
            for tr, te in folds
        ]
        n_targets = int(prob.y_host.shape[1])
        res = banded_ridge_cv_path(
            prob.x,
            prob.targets,
            n_targets,
            tfolds,
            torch.as_tensor(alphas, device=prob.device, dtype=prob.dtype),
            gammas,
            torch.as_tensor(band_of_column, device=prob.device),
            fit_intercept=self.fit_intercept,
            criterion=self.criterion,
            scoring=self.scoring,
            solver=self.solver,
            max_memory=_resolve_memory(self.max_memory, prob.device, _data_bytes(prob)),
            iterate=lambda it: progress(it, "banded ridge: band-weight candidates"),
            refit=not self.refine_steps,
        )
        g = gammas.numpy()
        self.band_names_ = names
        self.n_features_in_ = prob.x.shape[1]
        self._band_of_column = band_of_column
        self.gammas_ = g
        self.band_weights_ = g[to_numpy(res.best_gamma)].T
        self.best_alphas_ = alphas[to_numpy(res.best_alpha)]
        self.deltas_ = np.log(self.band_weights_ / self.best_alphas_[None, :])
        self.cv_scores_ = to_numpy(res.reported)
        if self.refine_steps:
            deltas, neg_mse, reported, coef, icpt = refine_band_penalties(
                prob.x,
                prob.targets,
                n_targets,
                tfolds,
                torch.as_tensor(self.deltas_),
                torch.as_tensor(band_of_column, device=prob.device),
                fit_intercept=self.fit_intercept,
                scoring=self.scoring,
                n_steps=int(self.refine_steps),
                lr=float(self.refine_lr),
                max_memory=_resolve_memory(self.max_memory, prob.device, _data_bytes(prob)),
                iterate=lambda it: progress(it, "banded ridge: hypergradient refinement"),
            )
            self.search_deltas_ = self.deltas_
            self.deltas_ = to_numpy(deltas)
            weights = np.exp(self.deltas_)
            self.best_alphas_ = 1.0 / weights.sum(0)
            self.band_weights_ = weights * self.best_alphas_[None, :]
            self.cv_scores_ = to_numpy(reported)
            self.refined_neg_mse_ = to_numpy(neg_mse)
            res.coef, res.intercept = coef, icpt
        self.coef_ = to_numpy(res.coef)
        self.intercept_ = (
            to_numpy(res.intercept) if res.intercept is not None else np.zeros(n_targets)
        )
        self.candidate_scores_ = to_numpy(res.cv_scores)
        self.solver_ = res.solver
        self._y_labels = prob.y_labels
        self.results_ = self._results()
        return self

    def _results(self) -> xr.Dataset:
        def lab(v: np.ndarray, lead: tuple[str, ...] = ()) -> xr.DataArray:
            return label_columns(v, self._y_labels, lead)

        ds = xr.Dataset(
            {
                "cv_score": lab(self.cv_scores_),
                "best_alpha": lab(self.best_alphas_),
                "band_weight": lab(self.band_weights_, ("band",)),
            }
        ).assign_coords(band=self.band_names_)
        ds.attrs.update(criterion=self.criterion, scoring=self.scoring, solver=self.solver_)
        return ds

    def _matrix(self, X: Any, bands: Any = None) -> np.ndarray:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, Y) first."
            )
        x, _, names = _stack_bands(X, bands)
        x, _ = _flatten(x, "X")
        x = to_numpy(x) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_features_in_ or names != self.band_names_:
            raise ValueError(
                f"X has {x.shape[1]} features in bands {names}, but BandedRidgeCV was fitted "
                f"with {self.n_features_in_} features in bands {self.band_names_}."
            )
        return x

    def predict(self, X: Any, bands: Any = None) -> np.ndarray:
        """Predict every target from all bands.

        Parameters
        ----------
        X : dict, list or array_like
            The bands, as given to :meth:`fit`.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        Y_pred : ndarray, shape (n_samples, n_targets)
            The joint prediction of all bands, intercept included.
        """
        return self._matrix(X, bands) @ self.coef_ + self.intercept_

    def predict_split(self, X: Any, bands: Any = None) -> np.ndarray:
        """Each band's share of the prediction (without the intercept).

        Parameters
        ----------
        X : dict, list or array_like
            The bands.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        Y_pred : ndarray, shape (n_bands, n_samples, n_targets)
            They sum to ``predict(X) - intercept_``.
        """
        x = self._matrix(X, bands)
        return np.stack(
            [
                x[:, self._band_of_column == b] @ self.coef_[self._band_of_column == b]
                for b in range(len(self.band_names_))
            ]
        )

    def score_split(self, X: Any, Y: Any, bands: Any = None) -> xr.DataArray:
        """Variance partitioning: each band's share of the R² (product measure).

        Targets and each band's prediction are centred on the samples given; the shares
        ``(2 y·ŷ_b − ŷ_b·Σ_k ŷ_k) / y·y`` sum to the R² of the joint (centred) prediction
        (St-Yves & Naselaris 2018; himalaya's ``r2_score_split``).

        Parameters
        ----------
        X : dict, list or array_like
            The bands (held-out data).
        Y : array_like, shape (n_samples, n_targets)
            Held-out targets.
        bands : array_like, optional
            Band label per column of a 2-D ``X``.

        Returns
        -------
        r2_split : xarray.DataArray, dims ("band", <target dims>)
            Each band's share of the R² per target, labeled by ``band`` and by the targets'
            dims; the shares sum over ``band`` to the joint R².
        """
        parts = self.predict_split(X, bands)
        parts = parts - parts.mean(1, keepdims=True)
        y, _ = _flatten(self._aligned_y(X, Y), "Y")
        y = np.asarray(to_numpy(y) if isinstance(y, torch.Tensor) else y, dtype=float)
        y = y - y.mean(0)
        split = to_numpy(r2_score_split(torch.as_tensor(y), torch.as_tensor(parts)))
        return label_columns(split, self._y_labels, ("band",), {"band": self.band_names_})

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> np.ndarray:
        """R² per target.

        Parameters
        ----------
        X : dict, list or array_like
            The bands.
        y : array_like, shape (n_samples, n_targets)
            True targets.
        sample_weight : None
            Not supported.

        Returns
        -------
        r2 : ndarray, shape (n_targets,)
            The coefficient of determination of the joint prediction, per target.
        """
        if sample_weight is not None:
            raise ValueError(f"sample_weight is not supported; got {type(sample_weight)}.")
        return _r2_per_target(self._aligned_y(X, y), self.predict(X))

    @staticmethod
    def _aligned_y(X: Any, y: Any) -> Any:
        """``y`` reordered to the sample labels of the (first labeled) band of ``X``."""
        if isinstance(X, Mapping):
            bands = list(X.values())
        elif isinstance(X, (list, tuple)) and not np.isscalar(X[0]):
            bands = list(X)
        else:
            bands = [X]
        ref = next((x for x in bands if isinstance(x, xr.DataArray)), None)
        return y if ref is None else _align_samples(y, ref, ("y", "X"))
