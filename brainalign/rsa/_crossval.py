"""Flexible (weighted) RDM models: fitting and cross-validated evaluation.

A weighted model predicts an RDM as a weighted sum ``sum_c w_c D_c`` of component RDMs. The
weights are fitted on training subjects and stimuli and the prediction is evaluated on held-out
subjects and stimuli, as rsatoolbox 0.3.2 does (``ModelWeighted``, ``fit_regress``,
``fit_regress_nn``, ``fit_optimize``, ``fit_optimize_positive``, ``sets_k_fold``,
``crossval`` and ``cv_noise_ceiling``), reimplemented from the maths.

Fitters (weights are scaled to unit norm, as rsatoolbox does by default):

- ``"regress"``: least squares of the pooled training RDM on the components (centred for
  Pearson), ``w = (X Xᵀ)⁻¹ X y``; Pearson and cosine only.
- ``"regress_nn"``: the same with ``w >= 0`` (non-negative least squares).
- ``"optimize"``: maximise the mean comparison over the training subjects with BFGS
  (analytic gradients for Pearson and cosine), any method but Bures.
- ``"optimize_nn"``: the same with ``w = v²`` (non-negative weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize as opt
import torch
import xarray as xr
from scipy.stats import rankdata

from brainalign._checks import check_number, check_option
from brainalign._config import get_config
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._compare import METHODS
from brainalign.rsa._compare_kernels import compare_vectors
from brainalign.rsa._evaluate import _stack, _triu

FITTERS = ("regress", "regress_nn", "optimize", "optimize_nn")
CROSSVAL_METHODS = tuple(m for m in METHODS if m != "bures")
_REGRESS_METHODS = ("pearson", "cosine")
_CENTRED_POOL = ("pearson", "whitened_pearson")
_SCALED_POOL = ("cosine", "whitened_cosine")


# --------------------------------------------------------------------------------------------
# Maths on upper-triangle vectors (numpy, float64)
# --------------------------------------------------------------------------------------------


def _pool(v: np.ndarray, method: str) -> np.ndarray:
    """Pool the rows ``v`` (S, P) into one RDM vector as rsatoolbox's ``pool_rdm`` does."""
    if method in _CENTRED_POOL:
        c = v - v.mean(-1, keepdims=True)
        return (c / c.std(-1, keepdims=True)).mean(0)
    if method in _SCALED_POOL:
        return (v / np.sqrt((v * v).mean(-1, keepdims=True))).mean(0)
    return rankdata(v, axis=-1).mean(0)  # rank methods: mean of average-tie ranks


def _compare(a: np.ndarray, b: np.ndarray, method: str, n: int) -> np.ndarray:
    """Comparisons of broadcast vectors ``a`` and ``b`` (float64 on the CPU)."""
    out = compare_vectors(
        torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)),
        torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64)),
        method,
        n_stimuli=n,
    )
    return out.numpy(force=True).astype(np.float64)


def _unit(w: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.sum(w * w))
    return w / norm if norm > 0 else w


def _design(x: np.ndarray, dv: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Regressors (C, P) and target (P,) of the least-squares fit for ``method``."""
    y = _pool(dv, method)
    if method == "pearson":
        return x - x.mean(-1, keepdims=True), y - y.mean()
    return x, y


def _linear_loss(x: np.ndarray, dv: np.ndarray, method: str):
    """Loss ``-mean_s cos(Xᵀw, d_s)`` (centred for Pearson) and its gradient."""
    if method == "pearson":
        x = x - x.mean(-1, keepdims=True)
        dv = dv - dv.mean(-1, keepdims=True)
    u = (dv / np.linalg.norm(dv, axis=-1, keepdims=True)).mean(0)
    xu = x @ u
    g = x @ x.T

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        gw = g @ w
        pp = float(w @ gw)
        if pp <= 0:
            return 0.0, np.zeros_like(w)
        norm = np.sqrt(pp)
        pu = float(w @ xu)
        return -pu / norm, -(xu / norm - pu * gw / norm**3)

    return loss


def _fit(
    x: np.ndarray, dv: np.ndarray, method: str, fitter: str, rng: np.random.Generator
) -> np.ndarray:
    """Unit-norm weights (C,) of components ``x`` (C, P) fitted to data vectors ``dv``."""
    n_comp = x.shape[0]
    if fitter == "regress":
        a, y = _design(x, dv, method)
        return _unit(np.linalg.solve(a @ a.T, a @ y))
    if fitter == "regress_nn":
        a, y = _design(x, dv, method)
        return _unit(opt.nnls(a.T, y)[0])
    positive = fitter == "optimize_nn"
    if method in _REGRESS_METHODS:
        base = _linear_loss(x, dv, method)
        if positive:

            def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
                f, gr = base(v * v)
                return f, 2 * v * gr

        else:
            fun = base
        jac = True
    else:
        n = round((1 + np.sqrt(1 + 8 * x.shape[1])) / 2)

        def fun(v: np.ndarray) -> float:
            w = v * v if positive else v
            pred = w @ x
            if not np.all(np.isfinite(pred)) or np.ptp(pred) == 0:
                return 0.0
            return -float(_compare(pred[None], dv, method, n).mean())

        jac = False
    starts = [rng.random(n_comp) for _ in range(2 * n_comp)]
    if positive:
        starts += [np.where(np.arange(n_comp) == i, 1.0, 1e-3) for i in range(n_comp)]
    elif method in _REGRESS_METHODS:
        a, y = _design(x, dv, method)
        starts.insert(0, np.linalg.lstsq(a.T, y, rcond=None)[0])
    best, best_f = None, np.inf
    for v0 in starts:
        res = opt.minimize(fun, v0, jac=jac, method="BFGS", options={"gtol": 1e-10})
        f = res.fun if np.isscalar(res.fun) else float(res.fun)
        if f < best_f:
            best, best_f = res.x, f
    w = best * best if positive else best
    return _unit(w)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _check_method_fitter(method: str, fitter: str) -> None:
    check_option("method", method, CROSSVAL_METHODS)
    check_option("fitter", fitter, FITTERS)
    if fitter in ("regress", "regress_nn") and method not in _REGRESS_METHODS:
        raise ValueError(
            f"fitter={fitter!r} fits the 'pearson' and 'cosine' comparisons only (a closed "
            f"form); got method={method!r}. Use fitter='optimize' or 'optimize_nn'."
        )


def _is_model_dict(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(np.ndim(v) == 3 for v in x.values())


def _inputs(data_rdms: Any, model_components: Any) -> tuple[xr.DataArray, dict]:
    """Return data (subject, a, b) and {model: components (component, a, b)}, aligned."""
    data = _stack(data_rdms, "data_rdms", "subject")
    raw = model_components if _is_model_dict(model_components) else {"weighted": model_components}
    models = {}
    for name, comp in raw.items():
        label = "model_components" if len(raw) == 1 else f"model_components[{name!r}]"
        c = _stack(comp, label, "component")
        ids = data[RDM_DIMS[0]].values
        if not all(np.array_equal(ids, c[d].values) for d in RDM_DIMS):
            _, c = align_stimuli(data, c, join="exact")  # names missing / extra stimulus ids
        models[str(name)] = c
    d = np.asarray(data.values, dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError(
            f"data_rdms must be complete: weighted-model fits need finite RDMs; they hold "
            f"{int((~np.isfinite(d)).sum())} non-finite entries out of {d.size}."
        )
    for name, c in models.items():
        if not np.isfinite(np.asarray(c.values, dtype=np.float64)).all():
            raise ValueError(f"The components of model {name!r} must be finite RDMs.")
    return data, models


def _vectors(sq: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Upper triangles (..., P) of ``sq`` restricted to the (sorted) stimuli ``idx``."""
    i, j = _triu(len(idx))
    return sq[..., idx[i], idx[j]]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def fit_weighted(
    data_rdms: Any,
    components: Any,
    method: str = "pearson",
    *,
    fitter: str = "regress",
    seed: int | None = None,
) -> xr.DataArray:
    """Fit the weights of a weighted model ``sum_c w_c D_c`` to subject RDMs.

    Equals rsatoolbox 0.3.2 ``ModelWeighted`` fitted with ``fit_regress`` (``"regress"``),
    ``fit_regress_nn`` (``"regress_nn"``), ``fit_optimize`` (``"optimize"``) or
    ``fit_optimize_positive`` (``"optimize_nn"``) on all stimuli and subjects.

    Parameters
    ----------
    data_rdms : xarray.DataArray or array_like, shape (n_subjects, n, n)
        Subject RDMs (complete).
    components : xarray.DataArray, dict or array_like, shape (n_components, n, n)
        Component RDMs on the same stimuli (aligned by id).
    method : str
        Comparison to optimise (a :func:`brainalign.rsa.compare` method but ``"bures"``).
    fitter : {"regress", "regress_nn", "optimize", "optimize_nn"}
        How to fit (see the module notes); the closed forms need ``"pearson"`` or ``"cosine"``.
    seed : int, optional
        Seed of the optimiser's random starts (default: the configured one).

    Returns
    -------
    weights : xarray.DataArray, dims ("component",)
        Unit-norm weights.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.rsa._crossval import fit_weighted
    >>> rng = np.random.default_rng(0)
    >>> comp = rng.random((2, 6, 6)); comp = comp + comp.transpose(0, 2, 1)
    >>> comp[:, range(6), range(6)] = 0
    >>> data = np.stack([comp[0] + 2 * comp[1]] * 3)
    >>> np.round(fit_weighted(data, comp, "cosine").values * np.sqrt(5), 6)
    array([1., 2.])
    """
    _check_method_fitter(method, fitter)
    if seed is None:
        seed = get_config()["seed"]
    data, models = _inputs(data_rdms, components)
    comp = next(iter(models.values()))
    n = data.sizes[RDM_DIMS[0]]
    idx = np.arange(n)
    w = _fit(
        _vectors(np.asarray(comp.values, dtype=np.float64), idx),
        _vectors(np.asarray(data.values, dtype=np.float64), idx),
        method,
        fitter,
        np.random.default_rng(seed),
    )
    return xr.DataArray(
        w,
        dims=("component",),
        coords={"component": comp["component"].values},
        name="weights",
        attrs={"kind": "rsa_model_weights", "method": method, "fitter": fitter},
    )


def default_k_subject(n_subjects: int) -> int:
    """Return rsatoolbox's default number of subject folds (``default_k_rdm``)."""
    return 2 if n_subjects < 6 else 3 if n_subjects < 12 else 4 if n_subjects < 20 else 5


def default_k_stimulus(n_stimuli: int) -> int:
    """Return rsatoolbox's default number of stimulus folds (``default_k_pattern``)."""
    return 2 if n_stimuli < 12 else 3 if n_stimuli < 24 else 4 if n_stimuli < 40 else 5


def _groups(order: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positions of ``k`` groups of ``order`` as rsatoolbox's ``sets_k_fold``."""
    n = len(order)
    size = n // k
    out = []
    for g in range(k):
        test = list(range(g * size, (g + 1) * size))
        if g < n % k:
            test.append(n - (g + 1))
        train = test if k <= 1 else sorted(set(range(n)) - set(test))
        out.append((np.sort(order[train]), np.sort(order[test])))
    return out


def crossval(
    data_rdms: Any,
    model_components: Any,
    method: str = "pearson",
    *,
    k_stimulus: int | None = None,
    k_subject: int | None = None,
    fitter: str = "regress",
    seed: int | None = None,
) -> xr.Dataset:
    """Cross-validated evaluation of weighted models over subject and stimulus folds.

    The subjects are split into ``k_subject`` folds and, within each, the stimuli into
    ``k_stimulus`` folds (``k_subject * k_stimulus`` folds in all). Each model's weights are
    fitted to the training subjects on the training stimuli; the prediction, restricted to the
    held-out stimuli, is compared with each held-out subject's RDM on those stimuli. A fold's
    noise ceiling is as rsatoolbox's ``cv_noise_ceiling``: the lower bound compares the
    pooled RDM of the training subjects (on the test stimuli), the upper bound the pooled RDM
    of all subjects (over all stimuli, then restricted), with the test subjects' RDMs. With
    ``k = 1`` a dimension is not split (training = test set).

    The folds are drawn as rsatoolbox's ``sets_k_fold(..., random=True)`` draws them with the
    legacy global generator after ``np.random.seed(seed)``, so with the same seed both give
    the same folds and (to rounding) the same evaluations as rsatoolbox ``crossval(models,
    rdms, train_set, test_set, ceil_set, method=...)``.

    Parameters
    ----------
    data_rdms : xarray.DataArray or array_like, shape (n_subjects, n, n)
        Subject RDMs (complete).
    model_components : components or dict
        Component RDMs of one weighted model (as :func:`fit_weighted`), or a dict
        ``{model name: components}`` of several (each of shape ``(n_components, n, n)``).
    method : str
        Comparison used for fitting and evaluation (any but ``"bures"``).
    k_stimulus, k_subject : int, optional
        Numbers of folds (default: rsatoolbox's ``default_k_pattern`` / ``default_k_rdm``).
        Every test fold needs at least 3 stimuli.
    fitter : {"regress", "regress_nn", "optimize", "optimize_nn"}
        Weight fitter (see :func:`fit_weighted`).
    seed : int, optional
        Seed of the folds (and the optimiser's starts); default: the configured one.

    Returns
    -------
    result : xarray.Dataset
        ``evaluations`` (model, fold), ``mean_score`` (model, over folds), ``weights``
        (model, fold, component; NaN past a model's components), ``noise_ceiling_lower`` /
        ``noise_ceiling_upper`` (fold) and their means ``mean_noise_ceiling_lower`` /
        ``mean_noise_ceiling_upper``, the fold memberships ``train_subject``, ``test_subject``
        (fold, subject) and ``train_stimulus``, ``test_stimulus`` (fold, stimulus), and coords
        ``subject_fold``, ``stimulus_fold`` on ``fold``.
    """
    _check_method_fitter(method, fitter)
    if seed is None:
        seed = get_config()["seed"]
    data, models = _inputs(data_rdms, model_components)
    n_subj, n = data.sizes["subject"], data.sizes[RDM_DIMS[0]]
    k_subject = default_k_subject(n_subj) if k_subject is None else k_subject
    k_stimulus = default_k_stimulus(n) if k_stimulus is None else k_stimulus
    check_number("k_subject", k_subject, low=1, integer=True)
    check_number("k_stimulus", k_stimulus, low=1, integer=True)
    if k_subject > n_subj:
        raise ValueError(
            f"k_subject={k_subject} is larger than the number of subjects ({n_subj}); each "
            "fold needs at least one subject."
        )
    if k_stimulus > n:
        raise ValueError(
            f"k_stimulus={k_stimulus} is larger than the number of stimuli ({n}); each fold "
            "needs at least one stimulus."
        )
    largest = n // k_stimulus + (1 if n % k_stimulus else 0)
    if n // k_stimulus < 3 or (k_stimulus > 1 and n - largest < 3):
        raise ValueError(
            f"k_stimulus={k_stimulus} leaves fewer than 3 stimuli in a fold (of {n} stimuli); "
            "comparing RDMs needs at least 3. Use fewer stimulus folds."
        )
    d = np.asarray(data.values, dtype=np.float64)
    comps = {m: np.asarray(c.values, dtype=np.float64) for m, c in models.items()}
    state = np.random.RandomState(seed)  # the legacy stream rsatoolbox draws its folds from
    subj_order = np.arange(n_subj)
    state.shuffle(subj_order)
    folds = []
    for s_train, s_test in _groups(subj_order, k_subject):
        stim_order = np.arange(n)
        state.shuffle(stim_order)
        for c_train, c_test in _groups(stim_order, k_stimulus):
            folds.append((s_train, s_test, c_train, c_test))
    rng = np.random.default_rng(seed)
    n_fold, n_mod = len(folds), len(models)
    n_comp = max(c.shape[0] for c in comps.values())
    ev = np.empty((n_mod, n_fold))
    weights = np.full((n_mod, n_fold, n_comp), np.nan)
    lower, upper = np.empty(n_fold), np.empty(n_fold)
    pooled_all = _pool(_vectors(d, np.arange(n)), method)
    full_pair = np.zeros((n, n), dtype=np.int64)
    full_pair[_triu(n)] = np.arange(len(pooled_all))
    members = np.zeros((4, n_fold, max(n_subj, n)), dtype=bool)
    for f, (s_train, s_test, c_train, c_test) in enumerate(folds):
        for r, idx in enumerate((s_train, s_test, c_train, c_test)):
            members[r, f, idx] = True
        train_v = _vectors(d[s_train], c_train)
        test_v = _vectors(d[s_test], c_test)
        preds = []
        for m, c in enumerate(comps.values()):
            w = _fit(_vectors(c, c_train), train_v, method, fitter, rng)
            weights[m, f, : len(w)] = w
            preds.append(w @ _vectors(c, c_test))
        k = len(c_test)
        ev[:, f] = _compare(np.stack(preds)[:, None], test_v[None], method, k).mean(-1)
        ceil_train = _pool(_vectors(d[s_train], c_test), method)
        ceil_all = pooled_all[_vectors(full_pair, c_test)]
        both = np.stack([ceil_train, ceil_all])[:, None]
        lower[f], upper[f] = _compare(both, test_v[None], method, k).mean(-1)
    subj_fold = np.repeat(np.arange(k_subject), k_stimulus)
    stim_fold = np.tile(np.arange(k_stimulus), k_subject)
    ds = xr.Dataset(
        coords={
            "model": list(models),
            "fold": np.arange(n_fold),
            "subject_fold": ("fold", subj_fold),
            "stimulus_fold": ("fold", stim_fold),
            "subject": data["subject"].values,
            "stimulus": data[RDM_DIMS[0]].values,
            "component": np.arange(n_comp),
        }
    )
    ds["evaluations"] = (("model", "fold"), ev)
    ds["mean_score"] = (("model",), ev.mean(-1))
    ds["weights"] = (("model", "fold", "component"), weights)
    ds["noise_ceiling_lower"] = (("fold",), lower)
    ds["noise_ceiling_upper"] = (("fold",), upper)
    ds["mean_noise_ceiling_lower"] = float(lower.mean())
    ds["mean_noise_ceiling_upper"] = float(upper.mean())
    for r, name in enumerate(("train_subject", "test_subject")):
        ds[name] = (("fold", "subject"), members[r, :, :n_subj])
    for r, name in ((2, "train_stimulus"), (3, "test_stimulus")):
        ds[name] = (("fold", "stimulus"), members[r, :, :n])
    ds.attrs.update(
        {
            "kind": "rsa_crossval",
            "method": method,
            "fitter": fitter,
            "k_subject": int(k_subject),
            "k_stimulus": int(k_stimulus),
            "seed": -1 if seed is None else int(seed),
            "n_subjects": int(n_subj),
            "n_stimuli": int(n),
            "brainalign_version": __version__,
        }
    )
    return ds
