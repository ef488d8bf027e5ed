"""Cross-validated ridge regression: the functional API and the scikit-learn estimator.

Labels live here; the numerical work is in :mod:`brainalign.encoding._solvers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin

from brainalign._checks import (
    StimulusAlignmentError,
    _fmt_list,
    check_finite,
    check_not_constant,
    check_number,
    check_option,
    check_type,
)
from brainalign._device import resolve_device, resolve_dtype, to_numpy, warn_unresolved
from brainalign._logging import logger, progress
from brainalign._memory import check_fits, resolve_budget
from brainalign.encoding._solvers import (
    CRITERIA,
    SOLVERS,
    Fold,
    choose_solver,
    chunk_size,
    memory_estimate,
    ridge_cv_path,
    ridge_fixed,
)

Criterion = Literal["neg_mse", "r2", "pearson"]
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 9))
_AUTO_MEMORY = {"cpu": 512 * 2**20, "cuda": 2 * 2**30}
_MEMORY_REPORT = 2**30  # log an estimate before fits that need more than this


# --------------------------------------------------------------------------- inputs


@dataclass
class _Labels:
    """What is needed to put labels back on a flattened (samples, columns) matrix."""

    sample_dim: str
    samples: xr.DataArray | None  # coords along the sample dim
    template: xr.DataArray | None  # one sample's slice: the column dims and coords
    shape: tuple[int, ...]  # the column shape (() for a 1-D target)


def _flatten(values: Any, name: str) -> tuple[np.ndarray | torch.Tensor, _Labels]:
    """Turn a DataArray / array / tensor into a (n_samples, n_columns) matrix and its labels."""
    if isinstance(values, xr.DataArray):
        if values.ndim == 0:
            raise ValueError(f"{name} must have a sample dimension first; got a 0-d array.")
        dim = values.dims[0]
        template = values.isel({dim: 0}, drop=True)
        samples = values[dim] if dim in values.coords else None
        arr = values.values
        shape = arr.shape[1:]
        return arr.reshape(arr.shape[0], -1), _Labels(dim, samples, template, shape)
    if isinstance(values, torch.Tensor):
        arr_t = values.detach()
        if arr_t.ndim == 0:
            raise ValueError(f"{name} must be at least 1-D (samples first); got a scalar.")
        return arr_t.reshape(arr_t.shape[0], -1), _Labels("sample", None, None, arr_t.shape[1:])
    arr = np.asarray(values)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be numeric; got an array of dtype {arr.dtype}.")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be at least 1-D (samples first); got a scalar.")
    return arr.reshape(arr.shape[0], -1), _Labels("sample", None, None, arr.shape[1:])


def _align_samples(X: Any, Y: Any, names: tuple[str, str] = ("X", "Y")) -> Any:
    """Reorder ``X`` to ``Y``'s sample labels when both are labeled DataArrays.

    - Same indexed sample dim: ``X`` is reordered to ``Y``'s labels (the same set, unique),
      else a :class:`~brainalign._checks.StimulusAlignmentError` names the missing and
      extra labels.
    - ``X`` indexed by ``"stimulus"`` and ``Y``'s samples (trials, say) carrying a
      ``"stimulus"`` coordinate: ``X`` gets one row per sample of ``Y``, that sample's
      stimulus (ids absent from ``X`` are named in the error).
    - Otherwise (unlabeled, or unrelated sample dims) ``X`` is returned as it is: rows are
      matched by position.
    """
    if not (isinstance(X, xr.DataArray) and isinstance(Y, xr.DataArray)):
        return X
    if X.ndim == 0 or Y.ndim == 0:
        return X
    nx, ny = names
    dx, dy = X.dims[0], Y.dims[0]
    if dx != dy and dx == "stimulus" and dx in X.indexes and "stimulus" in Y.coords:
        ids = Y["stimulus"]
        if ids.dims == (dy,):
            ix = X.indexes[dx]
            if not ix.is_unique:
                raise StimulusAlignmentError(
                    f"{nx} repeats stimulus ids along 'stimulus' "
                    f"({_fmt_list(list(ix[ix.duplicated()].unique()))}), so {ny}'s "
                    f"'{dy}'s cannot be matched to its rows; give each stimulus once."
                )
            missing = sorted(set(ids.values.tolist()) - set(ix.tolist()), key=str)
            if missing:
                raise StimulusAlignmentError(
                    f"{ny}'s '{dy}' samples show {len(missing)} stimulus id(s) that {nx} "
                    f"lacks along 'stimulus': {_fmt_list(missing)}."
                )
            return X.sel({dx: ids.values})
        return X
    if dx != dy or dx not in X.indexes or dy not in Y.indexes:
        return X
    ix, iy = X.indexes[dx], Y.indexes[dy]
    if ix.equals(iy):
        return X
    if not (ix.is_unique and iy.is_unique):
        raise StimulusAlignmentError(
            f"{nx} and {ny} label their '{dx}' dimension differently and the labels repeat, "
            "so they cannot be matched by label; give both the same order."
        )
    missing = iy.difference(ix)
    extra = ix.difference(iy)
    if len(missing) or len(extra):
        raise StimulusAlignmentError(
            f"{nx} and {ny} do not hold the same '{dx}' labels: {nx} lacks {len(missing)} of "
            f"{ny}'s ({_fmt_list(list(missing))}) and has {len(extra)} {ny} lacks "
            f"({_fmt_list(list(extra))}). Select the common labels first, for example with "
            "brainalign.align_stimuli(..., join='inner')."
        )
    return X.sel({dx: iy})


def _align_columns(values: Any, template: xr.DataArray | None, name: str) -> Any:
    """Reorder the non-sample dims of ``values`` to the labels seen at fit (``template``).

    Only indexed dims present in both are matched; different label sets raise a
    :class:`~brainalign._checks.StimulusAlignmentError` naming the labels.
    """
    if not isinstance(values, xr.DataArray) or template is None or values.ndim < 2:
        return values
    for dim in values.dims[1:]:
        if dim not in template.indexes or dim not in values.indexes:
            continue
        seen, given = template.indexes[dim], values.indexes[dim]
        if seen.equals(given):
            continue
        missing, extra = seen.difference(given), given.difference(seen)
        if len(missing) or len(extra) or not given.is_unique:
            raise StimulusAlignmentError(
                f"{name} must hold the '{dim}' labels seen at fit: it lacks {len(missing)} "
                f"({_fmt_list(list(missing))}) and has {len(extra)} unseen "
                f"({_fmt_list(list(extra))})."
            )
        values = values.sel({dim: seen})
    return values


def _check_alphas(alphas: Any, name: str = "alphas") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(alphas, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D grid of positive values; got {alphas!r}."
        )
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(
            f"{name} must be positive and finite (ridge penalties); got {int(bad.sum())} "
            f"invalid value(s) out of {arr.size}: {_fmt_list(arr[bad].tolist())}."
        )
    return arr


def _resolve_memory(max_memory: Any, device: torch.device, data_bytes: int | None = None) -> int:
    """Byte budget of the temporaries: ``"auto"`` is about the data's own size, capped.

    The cap is 512 MiB on CPU and 2 GiB on CUDA, the floor 64 MiB; with a budget about the
    size of X + Y, the whole fit stays within a few times the data. ``"auto"`` never
    exceeds the memory budget of the configuration (``max_memory`` of
    :func:`brainalign.set_config`) less the data; an int (bytes) sets the chunks' size.
    """
    if isinstance(max_memory, str):
        check_option("max_memory", max_memory, ("auto",))
        cap = _AUTO_MEMORY.get(device.type, _AUTO_MEMORY["cpu"])
        if data_bytes is not None:
            cap = min(cap, max(64 * 2**20, data_bytes))
        room = resolve_budget(None, device) - (data_bytes or 0)
        return int(max(1, min(cap, room)))
    check_number("max_memory", max_memory, low=1, integer=True)
    return int(max_memory)


def _check_budget(n_bytes: float, what: str, device: torch.device) -> None:
    """Refuse, before allocating, a fit whose smallest working set exceeds the memory budget.

    The budget is ``max_memory`` of :func:`brainalign.set_config` (the estimators'
    ``max_memory=`` only sizes their chunks).
    """
    check_fits(n_bytes, what, resolve_budget(None, device))


def make_folds(cv: Any, n_samples: int, groups: Any = None, y: Any = None) -> list[tuple]:
    """Resolve a splitter into a list of (train, test) index arrays, checked.

    Parameters
    ----------
    cv : int or splitter or iterable of (train, test)
        An int is K-fold without shuffling (scikit-learn's ``KFold``); a scikit-learn
        splitter is called as ``cv.split(X, y, groups)``; an iterable gives the splits.
    n_samples : int
        Number of samples.
    groups : array_like, optional
        Group labels (runs for ``LeaveOneGroupOut``, classes for ``StratifiedKFold``),
        passed to the splitter as both ``y`` and ``groups``.
    y : array_like, optional
        Passed to the splitter as ``y`` when ``groups`` is not given.

    Returns
    -------
    folds : list of tuple of ndarray
        The splits.

    Raises
    ------
    ValueError
        When a fold has fewer than 2 test or 2 training samples, or indices out of range.
    """
    from sklearn.model_selection import KFold

    dummy = np.zeros((n_samples, 1))
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        check_number("cv", int(cv), low=2, high=n_samples, integer=True)
        splits = list(KFold(int(cv)).split(dummy))
    elif hasattr(cv, "split") and not isinstance(cv, str):
        label = groups if groups is not None else y
        try:
            splits = list(cv.split(dummy, label, groups))
        except ValueError as err:
            raise ValueError(f"cv={cv!r} could not split {n_samples} samples: {err}") from err
    elif isinstance(cv, Iterable) and not isinstance(cv, str):
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    else:
        raise TypeError(
            "cv must be an int (number of K-fold splits), a scikit-learn splitter or an "
            f"iterable of (train, test) index arrays; got {type(cv).__name__} {cv!r}."
        )
    if not splits:
        raise ValueError(f"cv={cv!r} produced no splits for {n_samples} samples.")
    out = []
    for i, (train, test) in enumerate(splits):
        train = np.asarray(train, dtype=np.int64)
        test = np.asarray(test, dtype=np.int64)
        for part, idx in (("test", test), ("training", train)):
            if idx.size < 2:
                raise ValueError(
                    f"cv split {i} has {idx.size} {part} sample(s); every split needs at least "
                    f"2 test and 2 training samples (got {train.size} training, {test.size} "
                    "test). Use fewer splits or more samples."
                )
            if idx.min() < 0 or idx.max() >= n_samples:
                raise ValueError(
                    f"cv split {i} has {part} indices outside [0, {n_samples - 1}] "
                    f"(min {idx.min()}, max {idx.max()})."
                )
        out.append((train, test))
    return out


@dataclass
class _Problem:
    x: torch.Tensor
    y_host: Any  # (n, t) array or tensor the chunks are read from
    x_labels: _Labels
    y_labels: _Labels
    device: torch.device
    dtype: torch.dtype

    def targets(self, start: int, stop: int) -> torch.Tensor:
        chunk = self.y_host[:, start:stop]
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(np.ascontiguousarray(chunk))
        return chunk.to(device=self.device, dtype=self.dtype)


def _prepare(X: Any, Y: Any, device: Any, dtype: Any, *, check_y: bool = True) -> _Problem:
    X = _align_samples(X, Y)
    x, x_labels = _flatten(X, "X")
    y, y_labels = _flatten(Y, "Y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has {x.shape[0]} samples but Y has {y.shape[0]}; they need one row per "
            "sample (stimulus, trial or time point) each."
        )
    if isinstance(X, xr.DataArray) and X.ndim == 1:
        raise ValueError(f"X must be 2-D (samples, features); got dims {X.dims}.")
    if not isinstance(X, xr.DataArray) and np.ndim(X) != 2:
        raise ValueError(f"X must be 2-D (samples, features); got shape {tuple(np.shape(X))}.")
    if x.shape[0] < 4:
        raise ValueError(f"ridge cross-validation needs at least 4 samples; got {x.shape[0]}.")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    sample_labels = None if x_labels.samples is None else list(x_labels.samples.values)
    x_np = to_numpy(x) if isinstance(x, torch.Tensor) else x
    check_finite(x_np, "X", labels=sample_labels)
    if check_y:
        y_np = to_numpy(y) if isinstance(y, torch.Tensor) else y
        check_finite(y_np, "Y", labels=sample_labels)
        target_names = _column_names(y_labels, y.shape[1])
        check_not_constant(y_np.T, "Y", axis=-1, labels=target_names, what="target")
    xt = torch.as_tensor(np.ascontiguousarray(x_np)).to(device=dev, dtype=dt)
    if isinstance(y, np.ndarray) and dev.type == "cpu" and y.dtype == np.dtype(str(dt)[6:]):
        y_host: Any = torch.from_numpy(y if y.flags.writeable else y.copy())
    else:
        y_host = y
    return _Problem(xt, y_host, x_labels, y_labels, dev, dt)


def _column_names(labels: _Labels, n: int) -> list[Any]:
    """Readable names for flattened columns (coordinate values where there is one dim)."""
    t = labels.template
    if t is not None and t.ndim == 1 and t.dims[0] in t.coords:
        return list(t[t.dims[0]].values)
    if t is not None and t.ndim >= 1:
        idx = np.unravel_index(np.arange(n), t.shape)
        return [dict(zip(t.dims, map(int, ii), strict=True)) for ii in zip(*idx, strict=True)]
    return list(range(n))


# --------------------------------------------------------------------------- functional


def ridge(
    X: Any,
    Y: Any,
    alpha: float | Sequence[float] = 1.0,
    *,
    fit_intercept: bool = True,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with a fixed penalty (one per target if given).

    Minimises ``‖Y − XB − 1b‖² + alpha ‖B‖²`` per target, from one float64 eigen-
    decomposition of the smaller Gram matrix.

    Parameters
    ----------
    X : array_like or xarray.DataArray, shape (n_samples, n_features)
        Features.
    Y : array_like or xarray.DataArray, shape (n_samples, n_targets)
        Targets.
    alpha : float or array_like of shape (n_targets,)
        Positive penalty.
    fit_intercept : bool
        Centre features and targets (the intercept is not penalised).
    device, dtype : optional
        Compute device and dtype (see :func:`brainalign.set_config`).

    Returns
    -------
    coef : ndarray, shape (n_features, n_targets)
        Coefficients (himalaya's orientation: features first).
    intercept : ndarray, shape (n_targets,)
        Zeros when ``fit_intercept`` is False.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import ridge
    >>> X = np.arange(12.0).reshape(6, 2) ** 0.5
    >>> coef, b = ridge(X, X @ [1.0, -1.0], alpha=1e-8)
    >>> np.round(coef.ravel(), 4).tolist()
    [1.0, -1.0]
    """
    prob = _prepare(X, Y, device, dtype, check_y=False)
    n_targets = _n_columns(prob)
    a = _check_alphas(alpha, "alpha")
    if np.ndim(alpha) == 0:
        a = np.full(n_targets, a[0])
    if a.shape[0] != n_targets:
        raise ValueError(f"alpha has {a.shape[0]} values but Y has {n_targets} targets.")
    y = prob.targets(0, n_targets)
    coef, intercept = ridge_fixed(
        prob.x, y, torch.as_tensor(a, device=prob.device), fit_intercept=fit_intercept
    )
    b = to_numpy(intercept) if intercept is not None else np.zeros(n_targets)
    return to_numpy(coef), b


def _data_bytes(prob: _Problem) -> int:
    n, t = prob.y_host.shape
    return int(prob.x.nbytes + n * t * prob.x.element_size())


def _n_columns(prob: _Problem) -> int:
    return int(prob.y_host.shape[1])


@dataclass
class CVFit:
    """Everything a cross-validated ridge fit produces (arrays on the host)."""

    alphas: np.ndarray
    best_index: np.ndarray  # (t,) index of each target's alpha in ``alphas``
    best_alphas: np.ndarray  # (t,)
    scores: dict[str, np.ndarray]  # name -> (n_folds, n_alphas, t)
    criterion: str
    scoring: str
    solver: str
    coef: np.ndarray | None
    dual_coef: np.ndarray | None
    intercept: np.ndarray
    x_mean: np.ndarray
    x_train: np.ndarray | None
    lambda_max: float
    memory_estimate: int
    predictions: np.ndarray | None = None


def _fit_cv(
    prob: _Problem,
    alphas: np.ndarray,
    folds: list[tuple],
    *,
    fit_intercept: bool,
    criterion: str,
    scoring: str,
    solver: str,
    refit: bool,
    max_memory: Any,
    description: str = "ridge CV",
    predictions: bool = False,
    local_alpha: bool = True,
) -> CVFit:
    n, p = prob.x.shape
    n_targets = _n_columns(prob)
    budget = _resolve_memory(max_memory, prob.device, _data_bytes(prob))
    chosen = (
        choose_solver(n, p, n_targets, len(alphas), len(folds)) if solver == "auto" else solver
    )
    n_test = max(len(te) for _, te in folds)
    smallest = memory_estimate(
        chosen, n, p, n_targets, len(alphas), len(folds), prob.x.element_size(), 1, refit
    )
    need = _data_bytes(prob) + smallest
    if isinstance(max_memory, str):  # "auto": the chunks take what the budget leaves
        budget = int(max(1, min(budget, resolve_budget(None, prob.device) - need)))
    _check_budget(
        need,
        f"{description}: {n_targets} targets of {n} samples x {p} features, "
        f"{len(alphas)} alphas, {len(folds)} folds ({chosen} solver, the data and one target "
        "at a time)",
        prob.device,
    )
    chunk = chunk_size(chosen, n, p, n_targets, len(alphas), n_test, prob.x.element_size(), budget)
    estimate = memory_estimate(
        chosen, n, p, n_targets, len(alphas), len(folds), prob.x.element_size(), chunk, refit
    )
    if estimate > _MEMORY_REPORT:
        logger.info(
            "%s: about %.1f GiB of working memory (%s solver, %d targets in chunks of %d); "
            "lower max_memory= to stream smaller chunks.",
            description,
            estimate / 2**30,
            chosen,
            n_targets,
            chunk,
        )
    tensor_folds = [
        Fold(torch.as_tensor(tr, device=prob.device), torch.as_tensor(te, device=prob.device))
        for tr, te in folds
    ]
    a = torch.as_tensor(alphas, device=prob.device, dtype=prob.dtype)
    oof = None
    if predictions:
        covered = np.bincount(np.concatenate([te for _, te in folds]), minlength=n)
        if np.any(covered != 1):
            raise ValueError(
                "Out-of-fold predictions need every sample in exactly one test set; this cv "
                f"tests {int((covered == 0).sum())} sample(s) never and "
                f"{int((covered > 1).sum())} more than once."
            )
        oof = torch.empty((n, n_targets), dtype=prob.dtype, device=prob.device)
    result = ridge_cv_path(
        prob.x,
        prob.targets,
        n_targets,
        tensor_folds,
        a,
        fit_intercept=fit_intercept,
        criterion=criterion,
        scorings=(scoring,),
        solver=chosen,
        refit=refit,
        max_memory=budget,
        iterate=lambda it: progress(it, description) if len(it) > 1 else it,
        predictions=oof,
        local_alpha=local_alpha,
    )
    warn_unresolved(
        "The smallest alpha",
        float(alphas.min()),
        result.lambda_max,
        prob.dtype,
        consequence="predictions and coefficients at that penalty are dominated by rounding.",
    )
    best = to_numpy(result.best)
    x_train = None
    if result.dual_coef is not None:
        x_train = to_numpy(prob.x)
    intercept = to_numpy(result.intercept) if result.intercept is not None else np.zeros(n_targets)
    return CVFit(
        alphas=alphas,
        best_index=best,
        best_alphas=alphas[best],
        scores={k: to_numpy(v) for k, v in result.scores.items()},
        criterion=criterion,
        scoring=scoring,
        solver=chosen,
        coef=None if result.coef is None else to_numpy(result.coef),
        dual_coef=None if result.dual_coef is None else to_numpy(result.dual_coef),
        intercept=intercept,
        x_mean=to_numpy(result.x_mean) if fit_intercept else np.zeros(p),
        x_train=x_train,
        lambda_max=result.lambda_max,
        memory_estimate=estimate,
        predictions=None if oof is None else to_numpy(oof),
    )


def _frame(labels: _Labels, default: str = "target") -> tuple[tuple, dict, tuple]:
    """Return the dims, coords and shape of flattened columns (targets or features)."""
    t = labels.template
    if t is not None:
        return t.dims, dict(t.coords), t.shape
    if default == "feature":
        return ("feature",), {}, (int(np.prod(labels.shape)),)
    return tuple(f"{default}_{i}" for i in range(len(labels.shape))), {}, labels.shape


def label_columns(
    values: Any, labels: _Labels, lead: tuple[str, ...] = (), lead_coords: dict | None = None
) -> xr.DataArray:
    """Give a (..., columns) array the column dims back, after leading dims ``lead``."""
    dims, coords, shape = _frame(labels)
    v = np.asarray(values)
    out = xr.DataArray(v.reshape(v.shape[:-1] + tuple(shape)), dims=(*lead, *dims), coords=coords)
    return out.assign_coords(lead_coords or {})


def _results_dataset(fit: CVFit, y_labels: _Labels, folds: list[tuple]) -> xr.Dataset:
    """Label a CV fit's scores over the target dims."""
    fold_scores = _at_best(fit.scores[fit.scoring], fit.best_index)
    crit_path = fit.scores[fit.criterion].mean(0)

    def lab(values: np.ndarray, lead: tuple[str, ...] = (), coords: dict | None = None) -> Any:
        return label_columns(values, y_labels, lead, coords)

    ds = xr.Dataset(
        {
            "cv_score": lab(fold_scores.mean(0)),
            "best_alpha": lab(fit.best_alphas),
            "fold_score": lab(fold_scores, ("fold",), {"fold": np.arange(len(folds))}),
            "cv_path": lab(crit_path, ("alpha",), {"alpha": fit.alphas}),
        }
    )
    ds.attrs.update(
        criterion=fit.criterion,
        scoring=fit.scoring,
        solver=fit.solver,
        n_folds=len(folds),
        description=(
            f"cv_score: {fit.scoring} averaged over {len(folds)} folds at each target's alpha, "
            f"selected by {fit.criterion}; cv_path: fold-mean {fit.criterion} per alpha."
        ),
    )
    return ds


def _at_best(scores: np.ndarray, best_index: np.ndarray) -> np.ndarray:
    """Per-fold scores (n_folds, n_alphas, t) at each target's selected alpha: (n_folds, t)."""
    return scores[:, best_index, np.arange(best_index.size)]


def ridge_cv(
    X: Any,
    Y: Any,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    cv: Any = 5,
    groups: Any = None,
    fit_intercept: bool = True,
    criterion: Criterion = "neg_mse",
    scoring: Criterion = "r2",
    solver: Literal["auto", "primal", "dual"] = "auto",
    return_coef: bool = False,
    return_predictions: bool = False,
    max_memory: int | Literal["auto"] = "auto",
    local_alpha: bool = True,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.Dataset:
    """Cross-validated ridge with one alpha per target; labeled scores out.

    For every fold the smaller Gram matrix is eigendecomposed once (float64) and every
    alpha is evaluated from the projected targets; the alphas are selected per target by
    ``criterion`` averaged over folds (ties go to the larger alpha, as in himalaya), and
    ``scoring`` is reported at the selected alpha.

    Parameters
    ----------
    X : array_like or xarray.DataArray, shape (n_samples, n_features)
        Features (model activations, delayed stimulus features, ...). A DataArray's first
        dim is the sample dim; with Y also labeled on it, X is reordered to Y's labels.
    Y : array_like or xarray.DataArray, shape (n_samples, ...)
        Targets; every non-sample dim (voxel, channel × time, ...) is a target axis.
    alphas : sequence of float
        Positive penalty grid (default ``logspace(-2, 6, 9)``).
    cv : int or splitter or iterable
        K-fold (int), any scikit-learn splitter, or explicit (train, test) pairs; see
        :func:`make_folds`.
    groups : array_like, optional
        Labels passed to the splitter (runs for ``LeaveOneGroupOut``).
    fit_intercept : bool
        Centre on each training set.
    criterion : {"neg_mse", "r2", "pearson"}
        Selection score.
    scoring : {"neg_mse", "r2", "pearson"}
        Reported score.
    solver : {"auto", "primal", "dual"}
        Formulation; ``"auto"`` picks the smaller FLOP count.
    return_coef : bool
        Refit on all samples and add ``coef`` (features × targets) and ``intercept``.
    return_predictions : bool
        Add ``prediction`` (samples × targets): each sample predicted by the fold that
        held it out, at the target's selected alpha (for bootstrap CIs over stimuli with
        :func:`brainalign.encoding.bootstrap_ci`). The test sets must partition the samples.
    max_memory : int or "auto"
        Byte budget for per-chunk temporaries; ``"auto"``: about the size of X + Y, at
        least 64 MiB and at most 512 MiB on CPU (2 GiB on CUDA).
    local_alpha : bool
        True (default): one alpha per target. False: one alpha shared by all targets, the
        one with the best ``criterion`` averaged over folds and then over targets
        (himalaya's ``local_alpha=False``).
    device, dtype : optional
        Compute device and dtype.

    Returns
    -------
    results : xarray.Dataset
        ``cv_score``, ``best_alpha`` (target dims), ``fold_score`` (fold, target dims),
        ``cv_path`` (alpha, target dims), and with ``return_coef`` ``coef`` and
        ``intercept``, with ``return_predictions`` ``prediction``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import ridge_cv
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 5))
    >>> Y = X @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((40, 3))
    >>> res = ridge_cv(X, Y, alphas=[0.1, 1, 10], cv=4)
    >>> bool((res.cv_score > 0.9).all())
    True
    """
    check_option("criterion", criterion, CRITERIA)
    check_option("scoring", scoring, CRITERIA)
    check_option("solver", solver, SOLVERS)
    check_type("fit_intercept", fit_intercept, (bool,), "a bool")
    check_type("local_alpha", local_alpha, (bool,), "a bool")
    a = _check_alphas(alphas)
    prob = _prepare(X, Y, device, dtype)
    folds = make_folds(cv, prob.x.shape[0], groups)
    fit = _fit_cv(
        prob,
        a,
        folds,
        fit_intercept=fit_intercept,
        criterion=criterion,
        scoring=scoring,
        solver=solver,
        refit=return_coef,
        max_memory=max_memory,
        predictions=return_predictions,
        local_alpha=local_alpha,
    )
    ds = _results_dataset(fit, prob.y_labels, folds)
    if return_predictions:
        ds["prediction"] = _samples_dataarray(fit.predictions, prob.x_labels, prob.y_labels)
    if return_coef:
        coef = _coef_of(fit)
        ds["coef"] = _coef_dataarray(coef, prob.x_labels, prob.y_labels)
        ds["intercept"] = ds["best_alpha"].copy(data=fit.intercept.reshape(ds.best_alpha.shape))
    return ds


def _samples_dataarray(values: np.ndarray, x_labels: _Labels, y_labels: _Labels) -> Any:
    """Label a (samples, columns) matrix with the sample coords and the target dims."""
    n = values.shape[0]
    dims, coords, shape = _frame(y_labels)
    sample_dim = y_labels.sample_dim if y_labels.template is not None else x_labels.sample_dim
    out = xr.DataArray(values.reshape(n, *shape), dims=(sample_dim, *dims), coords=coords)
    for lab in (x_labels, y_labels):
        if lab.samples is not None and lab.sample_dim == sample_dim:
            out = out.assign_coords({sample_dim: lab.samples.values})
    return out


def _coef_of(fit: CVFit) -> np.ndarray:
    if fit.coef is not None:
        return fit.coef
    assert fit.dual_coef is not None and fit.x_train is not None
    return (fit.x_train - fit.x_mean).T @ fit.dual_coef


def _coef_dataarray(coef: np.ndarray, x_labels: _Labels, y_labels: _Labels) -> xr.DataArray:
    fdims, fcoords, fshape = _frame(x_labels, "feature")
    tdims, tcoords, tshape = _frame(y_labels)
    return xr.DataArray(
        coef.reshape(*fshape, *tshape), dims=(*fdims, *tdims), coords={**fcoords, **tcoords}
    )


def _labeled_r2(est: Any, X: Any, y: Any, sample_weight: Any) -> np.ndarray | float:
    """Compute R² per target of ``y`` for a fitted estimator (its ``score``).

    ``est`` has ``_y_labels`` and ``predict``; ``y`` is aligned to ``X``'s samples and the
    fitted targets' labels. A float for a 1-D ``y``.
    """
    if sample_weight is not None:
        raise ValueError(f"sample_weight is not supported; got {type(sample_weight)}.")
    y = _align_columns(_align_samples(y, X, ("y", "X")), est._y_labels.template, "y")
    r2 = _r2_per_target(y, est.predict(X))
    return float(r2[0]) if est._y_labels.shape == () else r2


def _r2_per_target(y: Any, pred: Any) -> np.ndarray:
    """R² of predictions per target (0 for a constant target), with the shared scorer."""
    from brainalign.encoding._scoring import r2_score

    yt, _ = _flatten(y, "y")
    yt = torch.as_tensor(np.asarray(yt, dtype=float))
    pt = torch.as_tensor(np.asarray(pred, dtype=float).reshape(yt.shape))
    return to_numpy(r2_score(yt, pt))


# --------------------------------------------------------------------------- estimator


class RidgeCV(RegressorMixin, BaseEstimator):
    """Ridge regression with a per-target penalty chosen by exact cross-validation.

    A scikit-learn estimator (``fit`` / ``predict`` / ``score``, works in a
    :class:`~sklearn.pipeline.Pipeline` and with :func:`~sklearn.base.clone`) over the
    solver of :func:`ridge_cv`. With the same folds and alphas, ``best_alphas_`` equal
    himalaya's ``RidgeCV``.

    Parameters
    ----------
    alphas : sequence of float
        Positive penalty grid.
    cv : int or splitter or iterable
        Cross-validation splits (see :func:`make_folds`); ``fit(..., groups=runs)`` with
        ``LeaveOneGroupOut()`` gives leave-one-run-out.
    fit_intercept : bool
        Centre features and targets on each training set.
    criterion : {"neg_mse", "r2", "pearson"}
        Selection score.
    scoring : {"neg_mse", "r2", "pearson"}
        Score reported in ``cv_scores_``.
    solver : {"auto", "primal", "dual"}
        ``"auto"`` picks the formulation with fewer FLOPs.
    max_memory : int or "auto"
        Byte budget for streamed target chunks.
    local_alpha : bool
        True (default): one alpha per target. False: one alpha shared by all targets, the
        one with the best ``criterion`` averaged over folds, then over targets (ties go to
        the larger alpha), as himalaya's ``RidgeCV(solver_params={"local_alpha": False})``.
    device, dtype : optional
        Compute device and dtype.

    Attributes
    ----------
    best_alphas_ : ndarray, shape (n_targets,)
        Selected penalty per target (all equal with ``local_alpha=False``).
    coef_ : ndarray, shape (n_features, n_targets) or (n_features,) for a 1-D Y
        Refit coefficients (formed from the dual coefficients on first access when the
        dual solver ran).
    intercept_ : ndarray, shape (n_targets,), or float for a 1-D Y
    cv_scores_ : ndarray, shape (n_targets,)
        ``scoring`` averaged over folds at the selected alpha.
    results_ : xarray.Dataset
        The labeled scores (see :func:`ridge_cv`).
    solver_ : str
        The formulation used.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import RidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 4))
    >>> Y = X @ rng.standard_normal((4, 2))
    >>> model = RidgeCV(alphas=[1e-3, 1.0, 1e3], cv=5).fit(X, Y)
    >>> model.best_alphas_.tolist()
    [0.001, 0.001]
    """

    def __init__(
        self,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        *,
        cv: Any = 5,
        fit_intercept: bool = True,
        criterion: Criterion = "neg_mse",
        scoring: Criterion = "r2",
        solver: Literal["auto", "primal", "dual"] = "auto",
        max_memory: int | Literal["auto"] = "auto",
        local_alpha: bool = True,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.criterion = criterion
        self.scoring = scoring
        self.solver = solver
        self.max_memory = max_memory
        self.local_alpha = local_alpha
        self.device = device
        self.dtype = dtype

    def fit(self, X: Any, Y: Any, groups: Any = None) -> RidgeCV:
        """Select one alpha per target by cross-validation, then refit on all samples.

        Parameters
        ----------
        X : array_like or xarray.DataArray, shape (n_samples, n_features)
            Features.
        Y : array_like or xarray.DataArray, shape (n_samples, ...)
            Targets.
        groups : array_like, optional
            Labels for the splitter (runs, classes).

        Returns
        -------
        self : RidgeCV
            The fitted estimator.
        """
        check_option("criterion", self.criterion, CRITERIA)
        check_option("scoring", self.scoring, CRITERIA)
        check_option("solver", self.solver, SOLVERS)
        check_type("local_alpha", self.local_alpha, (bool,), "a bool")
        alphas = _check_alphas(self.alphas)
        prob = _prepare(X, Y, self.device, self.dtype)
        folds = make_folds(self.cv, prob.x.shape[0], groups)
        fit = _fit_cv(
            prob,
            alphas,
            folds,
            fit_intercept=self.fit_intercept,
            criterion=self.criterion,
            scoring=self.scoring,
            solver=self.solver,
            refit=True,
            max_memory=self.max_memory,
            local_alpha=self.local_alpha,
        )
        self._fit = fit
        self._x_labels = prob.x_labels
        self._y_labels = prob.y_labels
        self.n_features_in_ = prob.x.shape[1]
        self.best_alphas_ = fit.best_alphas
        one = prob.y_labels.shape == ()  # a 1-D y: 1-D coefficients, scalar intercept
        self.intercept_ = fit.intercept[0] if one else fit.intercept
        self.solver_ = fit.solver
        self.results_ = _results_dataset(fit, prob.y_labels, folds)
        self.cv_scores_ = self.results_["cv_score"].values.reshape(-1)
        self.memory_estimate_ = fit.memory_estimate
        self._coef = fit.coef
        return self

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients, shape (n_features, n_targets)."""
        if not hasattr(self, "_fit"):
            raise AttributeError(
                f"coef_ is set by fit(); this {type(self).__name__} is not fitted yet."
            )
        if self._coef is None:
            self._coef = _coef_of(self._fit)
        return self._coef[:, 0] if self._y_labels.shape == () else self._coef

    def _check_x(self, X: Any) -> np.ndarray:
        if not hasattr(self, "_fit"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, Y) first."
            )
        x, _ = _flatten(_align_columns(X, self._x_labels.template, "X"), "X")
        x = to_numpy(x) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but RidgeCV was fitted with "
                f"{self.n_features_in_} features."
            )
        check_finite(x, "X")
        return x

    def predict(self, X: Any) -> Any:
        """Predict every target.

        Parameters
        ----------
        X : array_like or xarray.DataArray, shape (n_samples, n_features)
            Features.

        Returns
        -------
        Y_pred : ndarray or xarray.DataArray, shape (n_samples, ...)
            Labeled like the fitted Y (target dims) and X (sample coords) when X is a
            DataArray and Y was one.
        """
        x = self._check_x(X)
        fit = self._fit
        if fit.dual_coef is not None and self._coef is None:
            # x @ coef + intercept with coef = X_cᵀ·dual never formed: (m, n) @ (n, t).
            # The intercept is ȳ − μᵀcoef, so x (not x − μ) goes with it.
            pred = (x @ (fit.x_train - fit.x_mean).T) @ fit.dual_coef
            pred += fit.intercept
        else:
            pred = x @ self.coef_.reshape(x.shape[1], -1) + fit.intercept
        labels = self._y_labels
        pred = pred.reshape(x.shape[0], *labels.shape)
        if isinstance(X, xr.DataArray) and labels.template is not None:
            t = labels.template
            dim = X.dims[0]
            coords = dict(t.coords)
            coords.update({k: v for k, v in X.coords.items() if X[k].dims == (dim,)})
            return xr.DataArray(pred, dims=(dim, *t.dims), coords=coords)
        return pred

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> np.ndarray:
        """R² of the predictions, per target (not averaged, unlike scikit-learn's default).

        Parameters
        ----------
        X : array_like or xarray.DataArray, shape (n_samples, n_features)
            Features.
        y : array_like or xarray.DataArray, shape (n_samples, ...)
            True targets; with X also labeled on the same sample dim, y is reordered to
            X's labels (a mismatch raises ``StimulusAlignmentError``).
        sample_weight : None
            Not supported (must be None).

        Returns
        -------
        r2 : ndarray, shape (n_targets,), or float
            ``1 − SSE/SST`` per target (0 for a constant target); a float for a 1-D ``y``.
        """
        return _labeled_r2(self, X, y, sample_weight)

    def __sklearn_tags__(self):
        """Declare multi-output support to scikit-learn."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


__all__ = ["DEFAULT_ALPHAS", "RidgeCV", "make_folds", "ridge", "ridge_cv"]
