"""brainalign.align predictivity: against scikit-learn / himalaya pipelines on the same folds.

References: every fold is fitted with the anchor's own package (scikit-learn's
``PLSRegression(scale=False)`` and ``LinearRegression``, himalaya's ``RidgeCV`` with
``fit_intercept=True`` and the same inner ``KFold(5)``), predictions are correlated with
``scipy.stats.pearsonr`` per target, and the scores are aggregated as Brain-Score does
(median over targets per fold, then the mean over folds).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from sklearn.model_selection import KFold, ShuffleSplit

import brainalign as ba
from brainalign.align._predictivity import predictivity

EPS32 = float(np.finfo(np.float32).eps)


def _r_tol(tol, x, folds, float64=1e-8):
    """``tol`` of correlations of float32 least-squares (or PLS) predictions with targets.

    float32: the centred training features round by eps32 times their RMS / std (an offset
    rounds coarser), and a backward-stable SVD / solve then moves the predictions by that
    times cond(Xc_train) relative; a correlation moves by at most as much. x 10 margin.
    """
    conds = []
    for train, _ in folds:
        xc = x[train] - x[train].mean(0)
        s = np.linalg.svd(xc, compute_uv=False)
        s = s[s > max(xc.shape) * EPS32 * s[0]]  # the float32 lstsq cut-off
        conds.append(s[0] / s[-1])
    rms_over_std = np.max(np.sqrt((x * x).mean(0)) / x.std(0))
    return tol(float64=float64, float32=10 * EPS32 * rms_over_std * max(conds))


def _reps(values, ids=None, feature_dim="unit"):
    n = values.shape[0]
    ids = [f"s{i:03d}" for i in range(n)] if ids is None else ids
    return ba.responses(values, ids, feature_dim=feature_dim)


def _data(rng, n=40, p=12, q=5, noise=1.0):
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=(p, q)) * 0.4 + noise * rng.normal(size=(n, q))
    return x, y


def _reference(x, y, folds, regression, alphas=None, n_components=25):
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LinearRegression

    scores = []
    for train, test in folds:
        if regression == "pls":
            # run NIPALS to convergence: its default tol=1e-6 stops the power iteration early
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = PLSRegression(n_components, scale=False, tol=1e-24, max_iter=100_000)
                model.fit(x[train], y[train])
        elif regression == "ols":
            model = LinearRegression().fit(x[train], y[train])
        else:
            model = HimalayaRidgeCV(alphas=alphas, cv=KFold(5), fit_intercept=True)
            model.fit(x[train], y[train])
        pred = np.asarray(model.predict(x[test]))
        scores.append([stats.pearsonr(pred[:, j], y[test, j])[0] for j in range(y.shape[1])])
    return np.array(scores)  # (folds, targets)


@pytest.mark.parametrize(
    ("regression", "kw"),
    [("ols", {}), ("pls", {"n_components": 4}), ("pls", {"n_components": 12})],
)
def test_matches_sklearn_on_the_same_folds(rng, regression, kw, tol):
    x, y = _data(rng)
    folds = list(KFold(5, shuffle=True, random_state=3).split(x))
    ref = _reference(x, y, folds, regression, **kw)
    src, tgt = _reps(x), _reps(y, feature_dim="voxel")
    per = predictivity(src, tgt, regression=regression, cv=5, seed=3, aggregate=None, **kw)
    atol = _r_tol(tol, x, folds)
    np.testing.assert_allclose(per.values, ref.mean(0), atol=atol)
    assert per.dims == ("voxel",)
    med = predictivity(src, tgt, regression=regression, cv=5, seed=3, **kw)
    np.testing.assert_allclose(float(med), np.median(ref, 1).mean(), atol=atol)
    mean = predictivity(src, tgt, regression=regression, cv=5, seed=3, aggregate="mean", **kw)
    np.testing.assert_allclose(float(mean), ref.mean(), atol=atol)


def test_ridge_cv_matches_himalaya(rng):
    x, y = _data(rng, n=40, p=15, q=4)
    alphas = [0.1, 1.0, 10.0, 100.0]
    folds = list(KFold(4, shuffle=True, random_state=0).split(x))
    ref = _reference(x, y, folds, "ridge_cv", alphas=alphas)
    per = predictivity(
        _reps(x), _reps(y, feature_dim="voxel"), cv=4, seed=0, alphas=alphas, aggregate=None
    )
    # per-target alphas equal himalaya's; predictions agree to rounding (reached: ~1e-15)
    np.testing.assert_allclose(per.values, ref.mean(0), atol=1e-8)


def test_ols_with_more_features_than_stimuli_is_min_norm(rng, tol):
    x, y = _data(rng, n=24, p=40, q=3)
    folds = list(KFold(3, shuffle=True, random_state=0).split(x))
    ref = _reference(x, y, folds, "ols")
    per = predictivity(_reps(x), _reps(y), regression="ols", cv=3, seed=0, aggregate=None)
    # float32: cond over the 15 nonzero singular values of each centred training fold
    np.testing.assert_allclose(per.values, ref.mean(0), atol=_r_tol(tol, x, folds))


def test_splitter_like_brainscore(rng):
    x, y = _data(rng, n=30)
    split = ShuffleSplit(4, train_size=0.9, random_state=1)
    ref = _reference(x, y, list(split.split(x)), "ols")
    got = predictivity(_reps(x), _reps(y), regression="ols", cv=split)
    np.testing.assert_allclose(float(got), np.median(ref, 1).mean(), atol=1e-8)


def test_stimulus_order_invariance(rng):
    x, y = _data(rng, n=30)
    src, tgt = _reps(x), _reps(y, feature_dim="voxel")
    base = predictivity(src, tgt, regression="pls", n_components=3, cv=3, aggregate=None)
    perm = rng.permutation(30)
    for s, t in ((src, tgt.isel(stimulus=perm)), (src.isel(stimulus=perm), tgt)):
        got = predictivity(s, t, regression="pls", n_components=3, cv=3, aggregate=None)
        np.testing.assert_allclose(got.values, base.values, atol=1e-12)


def _seed0_folds(n, k):
    """The (train, test) folds of predictivity's ``cv=k`` with the default seed 0."""
    from brainalign.align._predictivity import _build_folds

    return _build_folds(k, n, 0)


def test_properties_scale_shift_and_perfect_prediction(rng, tol):
    x, y = _data(rng, n=30, q=3)
    src, tgt = _reps(x), _reps(y)
    base = predictivity(src, tgt, regression="ols", cv=3, aggregate=None)
    # invariant to an affine transform of each target and to an invertible map of the source
    xm = x @ rng.normal(size=(12, 12)) + 5
    moved = predictivity(_reps(xm), _reps(3 * y - 2), regression="ols", cv=3, aggregate=None)
    # float32: both results carry their own rounding: the bounds of both added (the folds
    # are those of seed 0, the default)
    folds = _seed0_folds(30, 3)
    atol = _r_tol(tol, x, folds) + _r_tol(tol, xm, folds)
    np.testing.assert_allclose(moved.values, base.values, atol=atol)
    exact = predictivity(src, _reps(x[:, :3] @ [[1, 0], [2, 1], [0, -1]] + 1.0), regression="ols")
    assert float(exact) == pytest.approx(1.0, abs=1e-10)


def test_broadcast_layers_and_per_target_labels(rng):
    x, y = _data(rng, n=24, q=4)
    layers = {"l1": _reps(x), "l2": _reps(x[:, :5])}
    tgt = _reps(y, feature_dim="voxel").assign_coords(voxel=["v0", "v1", "v2", "v3"])
    tgt = tgt.assign_coords(roi=("voxel", ["V1", "V1", "IT", "IT"]))
    res = predictivity(layers, tgt, regression="ols", cv=3, aggregate=None)
    assert res.dims == ("source", "voxel")
    assert list(res.source.values) == ["l1", "l2"]
    assert list(res.voxel.values) == ["v0", "v1", "v2", "v3"]
    assert list(res.roi.values) == ["V1", "V1", "IT", "IT"]
    one = predictivity(_reps(x[:, :5]), tgt, regression="ols", cv=3, aggregate=None)
    np.testing.assert_allclose(res.sel(source="l2").values, one.values, atol=1e-12)
    assert res.attrs["measure"] == "predictivity" and res.attrs["kind"] == "similarity"
    assert "ceiling" in res.attrs and res.attrs["regression"] == "ols"
    subj = xr.concat([tgt, tgt * 2], dim="subject")
    both = predictivity(_reps(x), subj, regression="ols", cv=3)
    assert both.dims == ("subject",)
    np.testing.assert_allclose(both.values[0], both.values[1], atol=1e-10)


def test_pls_caps_components_at_features_and_rank(rng, tol):
    x, y = _data(rng, n=20, p=4, q=3)
    folds = list(KFold(4, shuffle=True, random_state=0).split(x))
    ref = _reference(x, y, folds, "pls", n_components=4)  # 4 = p
    got = predictivity(_reps(x), _reps(y), regression="pls", cv=4, aggregate=None)
    # float32: full-rank PLS is least squares: bounded as OLS by cond of the folds (the
    # default folds of seed 0 here)
    own = _seed0_folds(20, 4)
    np.testing.assert_allclose(got.values, ref.mean(0), atol=_r_tol(tol, x, own))
    # past the rank PLS stops adding components: the full rank fit equals least squares
    ols = predictivity(_reps(x), _reps(y), regression="ols", cv=4, aggregate=None)
    np.testing.assert_allclose(got.values, ols.values, atol=2 * _r_tol(tol, x, own))


def test_seed_changes_folds_and_default_is_reproducible(rng):
    x, y = _data(rng, n=30)
    src, tgt = _reps(x), _reps(y)
    a = predictivity(src, tgt, regression="ols", cv=3)
    b = predictivity(src, tgt, regression="ols", cv=3)
    c = predictivity(src, tgt, regression="ols", cv=3, seed=5)
    assert float(a) == float(b)
    assert float(a) != float(c)
    assert a.attrs["seed"] == 0


def test_float32_close_to_float64(rng, device):
    x, y = _data(rng, n=40, p=8, q=4)
    src, tgt = _reps(x), _reps(y)
    for reg, kw in (("ols", {}), ("pls", {"n_components": 3}), ("ridge_cv", {"alphas": [1e2]})):
        r64 = predictivity(
            src, tgt, regression=reg, cv=4, aggregate=None, device=device, dtype="float64", **kw
        )
        r32 = predictivity(
            src, tgt, regression=reg, cv=4, aggregate=None, device=device, dtype="float32", **kw
        )
        np.testing.assert_allclose(r32.values, r64.values, atol=2e-5)


def test_errors(rng):
    x, y = _data(rng, n=20)
    src, tgt = _reps(x), _reps(y)
    with pytest.raises(ValueError, match=r"'regression'.*Did you mean 'pls'"):
        predictivity(src, tgt, regression="plss")
    with pytest.raises(ValueError, match=r"'aggregate'.*got 'max'"):
        predictivity(src, tgt, aggregate="max")
    with pytest.raises(ValueError, match=r"cv must be in the range \[2"):
        predictivity(src, tgt, cv=1)
    with pytest.raises(ValueError, match=r"cv must be in the range \[2, 10\], got 11"):
        predictivity(src, tgt, cv=11)
    with pytest.raises(TypeError, match="cv must be an int"):
        predictivity(src, tgt, cv="kfold")
    with pytest.raises(ValueError, match="n_components must be in the range"):
        predictivity(src, tgt, regression="pls", n_components=0)
    with pytest.raises(ValueError, match="alphas must be a non-empty grid of positive"):
        predictivity(src, tgt, alphas=[-1.0])
    with pytest.raises(ba.StimulusAlignmentError):
        predictivity(src, _reps(y[:18]))
    bad = {"a": _reps(y), "b": _reps(y[:, :2])}
    with pytest.raises(ValueError, match="aggregate=None returns one score per target"):
        predictivity(src, bad, aggregate=None)
    with pytest.raises(ValueError, match="NaN"):
        predictivity(src, _reps(np.where(y > 1.5, np.nan, y)))


def test_constant_prediction_fold_is_skipped():
    # a target that is constant within a test fold has no correlation there: NaN, skipped
    x = np.arange(24.0).reshape(12, 2) ** 0.5
    y = np.column_stack([x[:, 0] * 2 + np.sin(np.arange(12)), np.r_[np.zeros(6), np.ones(6)]])
    folds_r = predictivity(_reps(x), _reps(y), regression="ols", cv=KFold(2), aggregate=None)
    assert np.isnan(folds_r.values[1])  # both test folds of target 1 are constant
    assert np.isfinite(folds_r.values[0])
