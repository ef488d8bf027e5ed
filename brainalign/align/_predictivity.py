"""Linear predictivity (Brain-Score's cross-regressed correlation) between two representations.

A linear map from ``source`` features (a model layer) to every ``target`` feature (a neuron,
voxel, channel) is fitted on the training stimuli of each cross-validation fold; the Pearson
correlation between prediction and response on the held-out stimuli scores each target.
The numerics are pure torch functions on ``(n, p)`` tensors: partial least squares and
ordinary least squares are batched over the folds (zero-padded to a common size, which is
exact); cross-validated ridge reuses :class:`brainalign.encoding.RidgeCV` once per fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._config import get_config
from brainalign.align._inputs import apply_pair, result_attrs
from brainalign.data._schema import FEATURE_DIMS, STIMULUS, responses
from brainalign.encoding import DEFAULT_ALPHAS, RidgeCV, make_folds

__all__ = ["AGGREGATES", "REGRESSIONS", "predictivity"]

REGRESSIONS = ("ridge_cv", "pls", "ols")
SEMANTICS = ("exact", "brainscore")
AGGREGATES = ("median", "mean", None)
_INNER_CV = 5  # inner K-fold of ridge_cv's alpha selection, within each training set
_DEFAULT_SEED = 0
_SIMILARITY_IDS = {
    "pls": "brainscore/pls_regression-pearsonr_correlation",
    "ols": "brainscore/linear_regression-pearsonr_correlation",
    "ridge_cv": None,  # Brain-Score's ridge uses a fixed alpha=1: no equivalent entry
}
_CEILING_NOTE = (
    "none: raw Pearson r on held-out stimuli, not divided by a noise ceiling (see "
    "brainalign.encoding.normalize_score)"
)


# --------------------------------------------------------------------------- torch kernels


def _padded(index_sets: list[np.ndarray], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Stack index sets of unequal size: (F, m) indices (padding points at row 0) and mask."""
    m = max(len(s) for s in index_sets)
    idx = np.zeros((len(index_sets), m), dtype=np.int64)
    mask = np.zeros((len(index_sets), m), dtype=bool)
    for f, s in enumerate(index_sets):  # a loop over folds (a handful), not over stimuli
        idx[f, : len(s)] = s
        mask[f, : len(s)] = True
    return torch.as_tensor(idx, device=device), torch.as_tensor(mask, device=device)


def _masked_center(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre (F, m, p) rows on the mean of the unmasked ones; masked rows become zero."""
    w = mask.to(x.dtype).unsqueeze(-1)
    count = w.sum(1, keepdim=True)
    mean = ((x.double() * w.double()).sum(1, keepdim=True) / count.double()).to(x.dtype)
    return (x - mean) * w, mean


def _top_left_singular(c: torch.Tensor) -> torch.Tensor:
    """Return the first left singular vector of each (F, p, q) matrix, via the smaller Gram."""
    p, q = c.shape[-2:]
    if p <= q:
        g = c @ c.transpose(-1, -2)
        return torch.linalg.eigh(g)[1][..., -1]
    g = c.transpose(-1, -2) @ c
    v = torch.linalg.eigh(g)[1][..., -1]
    w = (c @ v.unsqueeze(-1)).squeeze(-1)
    return w / torch.linalg.vector_norm(w, dim=-1, keepdim=True).clamp_min(
        torch.finfo(w.dtype).tiny
    )


_NIPALS_MAX_ITER = 500  # scikit-learn's PLSRegression default (Brain-Score keeps it)
_NIPALS_TOL = 1e-6  # idem: the power method stops when |w - w_old|^2 < tol


def _nipals_weights(xk: torch.Tensor, yk: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """First x-weight vector of each fold by scikit-learn's NIPALS power method.

    The semantics of ``PLSRegression(algorithm="nipals")``: the y score starts at the first
    column of ``yk`` with an entry above machine epsilon, and the iteration stops (per fold)
    at the first step where the squared change of the unit-norm (up to ``+ eps``) x-weights
    falls below ``_NIPALS_TOL``, after one step for a single target, or after
    ``_NIPALS_MAX_ITER`` steps. Folds not ``alive`` (no such column) get zero weights.
    """
    eps = torch.finfo(xk.dtype).eps
    n_f, _, q = yk.shape
    nonzero = (yk.abs() > eps).any(1)  # (F, q)
    first = nonzero.to(torch.int64).argmax(-1)  # the first such column (0 when none)
    ys = yk.gather(2, first[:, None, None].expand(-1, yk.shape[1], 1)).squeeze(-1)  # (F, m)
    xt = xk.transpose(-1, -2)
    w_out = xk.new_zeros((n_f, xk.shape[-1]))
    w_old = None
    done = ~alive
    for it in range(_NIPALS_MAX_ITER):  # a fixed-point iteration: steps are sequential
        w = (xt @ ys.unsqueeze(-1)).squeeze(-1) / (ys * ys).sum(-1, keepdim=True)
        w = w / (torch.linalg.vector_norm(w, dim=-1, keepdim=True) + eps)
        xs = (xk @ w.unsqueeze(-1)).squeeze(-1)
        yw = (yk.transpose(-1, -2) @ xs.unsqueeze(-1)).squeeze(-1) / (xs * xs).sum(
            -1, keepdim=True
        )
        ys = (yk @ yw.unsqueeze(-1)).squeeze(-1) / ((yw * yw).sum(-1, keepdim=True) + eps)
        diff = w - 100.0 if w_old is None else w - w_old
        stop = ((diff * diff).sum(-1) < _NIPALS_TOL) | (q == 1) | (it == _NIPALS_MAX_ITER - 1)
        w_out = torch.where((stop & ~done)[:, None], w, w_out)
        done = done | stop
        if bool(done.all()):
            break
        w_old = w
    if it == _NIPALS_MAX_ITER - 1 and bool(alive.any()):
        warnings.warn(
            f"PLS (semantics='brainscore'): the NIPALS power method reached its "
            f"{_NIPALS_MAX_ITER} iterations in some fold without meeting tol="
            f"{_NIPALS_TOL:g}, as scikit-learn's PLSRegression would (ConvergenceWarning); "
            "its weights there are where it stopped. semantics='exact' has no such limit.",
            RuntimeWarning,
            stacklevel=5,
        )
    return w_out


def _pls_fit(
    xc: torch.Tensor, yc: torch.Tensor, n_components: int, nipals: bool = False
) -> tuple[torch.Tensor, ...]:
    """PLS2 (regression mode, no scaling) on centred, zero-padded (F, m, p) and (F, m, q).

    Each weight vector is the exact first left singular vector of the deflated cross-
    covariance ``X_kᵀ Y`` (the fixed point of NIPALS' power iteration); scores are deflated
    from X only, since ``X_{k+1}ᵀ Y_k = X_{k+1}ᵀ Y``. Components past X's rank are dropped.
    With ``nipals``, the weights are instead where scikit-learn's power method stops
    (:func:`_nipals_weights`, Brain-Score's semantics), and Y is deflated as it does.
    Returns the weights W (F, p, K), loadings P (F, p, K) and Y loadings Q (F, q, K).
    """
    n_f, _, p = xc.shape
    q = yc.shape[-1]
    k = min(n_components, p)
    dt = xc.dtype
    eps = torch.finfo(dt).eps
    xk = xc.clone()
    c = xc.transpose(-1, -2) @ yc
    tiny = eps * (xc * xc).sum((1, 2))  # (F,): a score this small is noise
    w_all = xc.new_zeros((n_f, p, k))
    p_all = xc.new_zeros((n_f, p, k))
    q_all = xc.new_zeros((n_f, q, k))
    yk = yc.clone() if nipals else yc
    fold_alive = torch.ones(n_f, dtype=torch.bool, device=xc.device)
    for j in range(k):  # components are sequential by definition (deflation)
        if nipals:
            # scikit-learn zeroes Y columns below 10 eps, and stops at a constant Y residual
            yk = torch.where((yk.abs() < 10 * eps).all(1, keepdim=True), 0.0, yk)
            fold_alive = fold_alive & (yk.abs() > eps).flatten(1).any(-1)
            w = _nipals_weights(xk, yk, fold_alive)
        else:
            w = _top_left_singular(c)
        t = (xk @ w.unsqueeze(-1)).squeeze(-1)  # (F, m)
        tt = (t * t).sum(-1)
        alive = (tt > tiny) & fold_alive
        inv = torch.where(alive, 1.0 / torch.where(alive, tt, 1.0), 0.0)
        pj = (xk.transpose(-1, -2) @ t.unsqueeze(-1)).squeeze(-1) * inv[:, None]
        qj = (yc.transpose(-1, -2) @ t.unsqueeze(-1)).squeeze(-1) * inv[:, None]
        w = w * alive[:, None]
        xk = xk - t.unsqueeze(-1) * pj.unsqueeze(-2)
        if nipals:
            yk = yk - t.unsqueeze(-1) * qj.unsqueeze(-2)
        else:
            c = c - pj.unsqueeze(-1) * (qj * tt[:, None]).unsqueeze(-2)
        w_all[..., j], p_all[..., j], q_all[..., j] = w, pj, qj
    return w_all, p_all, q_all


def _pls_predict(
    xc: torch.Tensor, yc: torch.Tensor, xte: torch.Tensor, n_components: int, nipals: bool
) -> torch.Tensor:
    """Return PLS2's centred predictions ``xte W (PᵀW)⁻¹ Qᵀ`` for centred test rows (F, t, p)."""
    w, p, q = _pls_fit(xc, yc, n_components, nipals)
    m = p.transpose(-1, -2) @ w  # (F, K, K), unit upper triangular for live components
    dead = (w == 0).all(-2)  # (F, K)
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    m = torch.where(dead.unsqueeze(-1) & eye.bool(), eye, m)
    scores = xte @ w  # (F, t, K)
    rot = torch.linalg.solve(m.transpose(-1, -2), scores.transpose(-1, -2)).transpose(-1, -2)
    return rot @ q.transpose(-1, -2)


def _ols_predict(xc: torch.Tensor, yc: torch.Tensor, xte: torch.Tensor, m: torch.Tensor) -> Any:
    """Minimum-norm least squares (scipy ``lstsq`` cut-off ``max(m, p)·eps·s_max``)."""
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    p = xc.shape[-1]
    size = torch.clamp(m.to(s.dtype), min=p)  # max(n_train, p) per fold
    cut = size[:, None] * torch.finfo(s.dtype).eps * s[:, :1]
    inv = torch.where(s > cut, 1.0 / torch.where(s > cut, s, 1.0), 0.0)
    proj = (u.transpose(-1, -2) @ yc) * inv.unsqueeze(-1)  # (F, r, q)
    return (xte @ vh.transpose(-1, -2)) @ proj


def _fold_correlations(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pearson r per (fold, target) over the unmasked test rows, accumulated in float64."""
    w = mask.double().unsqueeze(-1)
    n = w.sum(1, keepdim=True)
    pd, yd = pred.double() * w, y.double() * w
    pc = (pd - pd.sum(1, keepdim=True) / n) * w
    yc = (yd - yd.sum(1, keepdim=True) / n) * w
    num = (pc * yc).sum(1)
    den = torch.sqrt((pc * pc).sum(1) * (yc * yc).sum(1))
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.nan)


def _aggregate(r: torch.Tensor, aggregate: str | None) -> torch.Tensor:
    """(F, q) per-fold scores to the result: Brain-Score's order, targets then folds."""
    if aggregate is None:
        return torch.nanmean(r, 0)
    if aggregate == "mean":
        per_fold = torch.nanmean(r, 1)
    else:  # median over targets (the mean of the middle two for an even count)
        per_fold = torch.nanquantile(r, 0.5, dim=1)
    return torch.nanmean(per_fold, 0)


def _fold_scores(
    x: torch.Tensor,
    y: torch.Tensor,
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    regression: str,
    n_components: int,
    alphas: np.ndarray,
    nipals: bool = False,
) -> torch.Tensor:
    """Held-out Pearson r of every target in every fold: (n_folds, q)."""
    dev = x.device
    tr, tr_mask = _padded([f[0] for f in folds], dev)
    te, te_mask = _padded([f[1] for f in folds], dev)
    yte = y[te]  # (F, t, q)
    if regression == "ridge_cv":
        preds = []
        for train, test in folds:  # RidgeCV selects alphas per fold (nested CV)
            model = RidgeCV(alphas=alphas, cv=_INNER_CV, device=dev, dtype=x.dtype)
            model.fit(x[train], y[train])
            preds.append(torch.as_tensor(model.predict(x[test]), device=dev, dtype=x.dtype))
        pred = torch.zeros_like(yte)
        for f, pr in enumerate(preds):
            pred[f, : pr.shape[0]] = pr.reshape(pr.shape[0], -1)
        return _fold_correlations(pred, yte, te_mask)
    xc, xmean = _masked_center(x[tr], tr_mask)
    yc, _ = _masked_center(y[tr], tr_mask)
    xte = (x[te] - xmean) * te_mask.to(x.dtype).unsqueeze(-1)
    if regression == "pls":
        pred = _pls_predict(xc, yc, xte, n_components, nipals)
    else:
        pred = _ols_predict(xc, yc, xte, tr_mask.sum(1))
    # the training mean of y is added to every prediction: it cannot change r
    return _fold_correlations(pred, yte, te_mask)


# --------------------------------------------------------------------------- labeled edge


def _build_folds(cv: Any, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold

    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        check_number("cv", int(cv), low=2, high=max(2, n // 2), integer=True)
        cv = KFold(int(cv), shuffle=True, random_state=seed)
    return make_folds(cv, n)


def _check_cv(cv: Any) -> None:
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        check_number("cv", int(cv), low=2, integer=True)
    elif not (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        raise TypeError(
            "cv must be an int (the number of shuffled K-fold splits, >= 2) or a "
            f"scikit-learn splitter (KFold, ShuffleSplit, ...); got {type(cv).__name__} {cv!r}."
        )


def _sorted_by_id(x: Any) -> Any:
    """Sort a side's stimuli by id, so that folds do not depend on the input order."""
    if isinstance(x, xr.DataTree):
        x = {
            (k if node is x else f"{node.path.strip('/')}/{k}"): v
            for node in x.subtree
            for k, v in node.dataset.data_vars.items()
        }
    if isinstance(x, Mapping):
        return {k: _sorted_by_id(v) for k, v in x.items()}
    if isinstance(x, xr.DataArray) and STIMULUS in x.dims and STIMULUS in x.indexes:
        return x.sortby(STIMULUS)
    return x


def _all_arrays(x: Any) -> list[xr.DataArray]:
    if isinstance(x, xr.DataTree):
        return [v for node in x.subtree for v in node.dataset.data_vars.values()]
    if isinstance(x, Mapping):
        return [v if isinstance(v, xr.DataArray) else responses(np.asarray(v)) for v in x.values()]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return [x if isinstance(x, xr.DataArray) else responses(np.asarray(x))]


def _target_frame(target: Any) -> tuple[tuple[str, ...], dict[str, Any], tuple[int, ...]]:
    """Return the target's feature dims, coords and shape, for per-target results."""
    arrays = _all_arrays(target)
    first = arrays[0]
    feats = tuple(d for d in first.dims if d in FEATURE_DIMS)
    shape = tuple(first.sizes[d] for d in feats)
    for da in arrays[1:]:
        f2 = tuple(d for d in da.dims if d in FEATURE_DIMS)
        same = f2 == feats and all(
            np.array_equal(da[d].values, first[d].values) if d in first.coords else True
            for d in feats
        )
        if not same or tuple(da.sizes[d] for d in f2) != shape:
            raise ValueError(
                "aggregate=None returns one score per target feature, so every target entry "
                f"must have the same feature dims and labels; got {feats} {shape} and "
                f"{f2} {tuple(da.sizes[d] for d in f2)}. Use aggregate='median' or 'mean'."
            )
    coords = {}
    for cname, c in first.coords.items():
        if c.dims and set(c.dims) <= set(feats):
            coords[cname] = (c.dims, c.values)
    return feats, coords, shape


def predictivity(
    source: Any,
    target: Any,
    *,
    regression: str = "ridge_cv",
    cv: Any = 10,
    aggregate: str | None = "median",
    alphas: Any = None,
    n_components: int = 25,
    semantics: str = "exact",
    seed: int | None = None,
    key_dims: tuple[str, str] = ("source", "target"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Cross-validated linear predictivity of ``target`` from ``source`` (Brain-Score).

    In each cross-validation fold a linear map from the source features to every target
    feature is fitted on the training stimuli; the target's score in that fold is the Pearson
    correlation between predicted and measured responses over the held-out stimuli. As in
    Brain-Score's ``CrossRegressedCorrelation`` the score is the median over targets in each
    fold, averaged over folds (Schrimpf et al., 2018; Yamins et al., 2014).

    Parameters
    ----------
    source : xarray.DataArray or mapping of xarray.DataArray
        The predictors (model activations): dims ``stimulus`` and a feature dim; other dims
        (``layer``) broadcast, a mapping's keys become the dim ``key_dims[0]``.
    target : xarray.DataArray or mapping of xarray.DataArray
        The predicted responses (neurons, voxels); stimuli are matched to ``source`` by id.
    regression : {"ridge_cv", "pls", "ols"}
        ``"ridge_cv"``: ridge with one penalty per target chosen from ``alphas`` by 5-fold
        cross-validation within each training set (:class:`brainalign.encoding.RidgeCV`);
        ``"pls"``: PLS2 regression with ``n_components`` components on unscaled, centred
        data (Brain-Score's default, scikit-learn's ``PLSRegression(scale=False)``), each
        weight vector the exact first singular vector of the deflated cross-covariance;
        ``"ols"``: minimum-norm least squares (scikit-learn's ``LinearRegression``).
        All fit an intercept.
    cv : int or scikit-learn splitter
        An int is shuffled K-fold (each stimulus held out once) drawn with ``seed``; a
        splitter (``ShuffleSplit(10, train_size=0.9, random_state=1)`` is Brain-Score's
        unstratified default) is applied as it is. Either way the folds index the stimuli
        sorted by id, so the result does not depend on the order of the inputs.
    aggregate : {"median", "mean", None}
        Summary over targets within each fold, then the mean over folds (NaN scores, from a
        constant prediction or response in a fold, are skipped); ``None`` returns every
        target's score averaged over folds, on the target's feature dim(s).
    alphas : sequence of float, optional
        Ridge penalties for ``"ridge_cv"`` (default
        :data:`brainalign.encoding.DEFAULT_ALPHAS`, ``logspace(-2, 6, 9)``).
    n_components : int
        PLS components (Brain-Score uses 25), capped at the number of source features;
        components beyond the rank of the training data are dropped.
    semantics : {"exact", "brainscore"}
        ``"exact"``: each PLS weight vector is the exact singular vector. ``"brainscore"``:
        where scikit-learn's NIPALS power method stops with its defaults (``tol=1e-6``,
        ``max_iter=500``), which Brain-Score's ``PLSRegression(n_components=25,
        scale=False)`` keeps; the early stop moves scores in about the 4th decimal, so
        reproducing a published Brain-Score number needs it (with Brain-Score's splits, e.g.
        ``cv=ShuffleSplit(10, train_size=0.9, random_state=1)``). Only ``regression="pls"``
        and ``"ols"`` (identical under both) take ``"brainscore"``: Brain-Score has no
        cross-validated ridge.
    seed : int, optional
        Seed of the K-fold shuffle; default the configured seed, else 0 (the folds, and so
        the score, are reproducible by default).
    key_dims : tuple of str
        Dim names for the keys of mapping inputs.
    device, dtype : optional
        Where and in what precision to compute (correlations accumulate in float64).

    Returns
    -------
    score : xarray.DataArray
        Pearson r over the broadcast dims (and the target's feature dims when
        ``aggregate=None``); attrs give the measure, its parameters and ``ceiling``
        (none is applied).

    References
    ----------
    Schrimpf, M. et al. (2018). Brain-Score: Which artificial neural network for object
    recognition is most brain-like? bioRxiv 407007.
    Yamins, D. L. K. et al. (2014). Performance-optimized hierarchical models predict neural
    responses in higher visual cortex. PNAS 111(23), 8619-8624.

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._predictivity import predictivity
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 6))
    >>> y = x @ rng.normal(size=(6, 3)) + 0.1 * rng.normal(size=(40, 3))
    >>> ids = [f"s{i}" for i in range(40)]
    >>> src = ba.responses(x, ids, feature_dim="unit")
    >>> tgt = ba.responses(y, ids, feature_dim="voxel")
    >>> float(predictivity(src, tgt, regression="ols", cv=5)) > 0.95
    True
    """
    check_option("regression", regression, REGRESSIONS)
    check_option("aggregate", aggregate, AGGREGATES)
    check_option("semantics", semantics, SEMANTICS)
    if semantics == "brainscore" and regression == "ridge_cv":
        raise ValueError(
            "semantics='brainscore' applies to regression='pls' (Brain-Score's default) or "
            "'ols'; got regression='ridge_cv', which Brain-Score does not have. Use "
            "semantics='exact' with ridge_cv."
        )
    check_number("n_components", n_components, low=1, integer=True)
    _check_cv(cv)
    if seed is None:
        seed = get_config()["seed"]
    if seed is None:
        seed = _DEFAULT_SEED
    check_number("seed", seed, low=0, integer=True)
    grid = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=float).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
        raise ValueError(f"alphas must be a non-empty grid of positive numbers; got {alphas!r}.")
    extra_dims: tuple[str, ...] = ()
    extra_coords: dict[str, Any] = {}
    shape: tuple[int, ...] = ()
    if aggregate is None:
        extra_dims, extra_coords, shape = _target_frame(target)
    folds_cache: dict[int, list] = {}

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n not in folds_cache:
            folds_cache[n] = _build_folds(cv, n, int(seed))
        r = _fold_scores(
            x,
            y,
            folds_cache[n],
            regression=regression,
            n_components=n_components,
            alphas=grid,
            nipals=semantics == "brainscore",
        )
        out = _aggregate(r, aggregate)
        return out.reshape(shape) if aggregate is None else out

    params = {
        "regression": regression,
        "cv": cv if isinstance(cv, (int, np.integer)) else repr(cv),
        "aggregate": aggregate,
        "seed": int(seed),
        "correlation": "pearson",
    }
    if regression == "pls":
        params["n_components"] = int(n_components)
        params["semantics"] = semantics
    if regression == "ridge_cv":
        params["alphas"] = str(grid.tolist())
        params["inner_cv"] = _INNER_CV
    attrs = result_attrs(
        "predictivity",
        kind="similarity",
        params=params,
        similarity_id=_SIMILARITY_IDS[regression],
    )
    attrs["ceiling"] = _CEILING_NOTE
    return apply_pair(
        kernel,
        _sorted_by_id(source),
        target,
        key_dims=key_dims,
        extra_dims=extra_dims,
        extra_coords=extra_coords,
        attrs=attrs,
        name="predictivity",
        device=device,
        dtype=dtype,
        min_samples=4,
    )
