"""Banded ridge against himalaya's BandedRidgeCV and MultipleKernelRidgeCV (test-only)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.model_selection import KFold

from brainalign.encoding import BandedRidgeCV, RidgeCV
from brainalign.encoding._solvers import dirichlet_gammas

himalaya_ridge = pytest.importorskip("himalaya.ridge")
himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")
himalaya_scoring = pytest.importorskip("himalaya.scoring")

ALPHAS = np.logspace(-2, 4, 7)
SIZES = [5, 8, 3]


def _bands(rng, n=60, t=10):
    p = sum(SIZES)
    X = rng.standard_normal((n, p))
    scale = np.repeat([1.0, 0.2, 0.05], SIZES)[:, None]
    Y = X @ (rng.standard_normal((p, t)) * scale) + rng.standard_normal((n, t)) + 2.0
    return X, Y, np.repeat(["a", "b", "c"], SIZES)


def _banded_err32(ridge_err32, X, deltas, *, fit_intercept, cv):
    """Float32 relative error of banded fits at band weights ``exp(deltas)`` (n_bands, m).

    Each column is a unit-penalty ridge on the bands scaled by ``exp(delta_b / 2)``: its
    error is eps32·cond of that design (conftest.ridge_err32), worst over the columns and
    folds, factor 10 for the products and the data's rounding.
    """
    codes = np.repeat(np.arange(len(SIZES)), SIZES)
    deltas = np.asarray(deltas, float).reshape(len(SIZES), -1)
    return 10 * max(
        ridge_err32(X * np.exp(d / 2)[codes], 1.0, fit_intercept=fit_intercept, cv=cv)[0]
        for d in deltas.T
    )


def _candidate_deltas(gammas):
    """``log(gamma / alpha)`` of every candidate and alpha, shape (n_bands, n_cand·n_alphas)."""
    return np.log(gammas.T[:, :, None] / ALPHAS[None, None, :]).reshape(len(SIZES), -1)


def test_candidates_match_himalaya_sampler():
    ours = dirichlet_gammas(12, 3, [0.1, 1.0], 0).numpy()
    ref = himalaya_kernel.generate_dirichlet_samples(12, 3, [0.1, 1.0], random_state=0)
    ref[0] = 1 / 3  # himalaya's solvers overwrite the first candidate with uniform weights
    assert_allclose(ours, ref, rtol=1e-15)


@pytest.mark.float32
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_matches_himalaya_banded_ridge_on_fixed_candidates(
    rng, fit_intercept, solver, tol, ridge_err32
):
    X, Y, bands = _bands(rng)
    gammas = dirichlet_gammas(10, 3, [0.1, 1.0], 1).numpy()
    ours = BandedRidgeCV(
        ALPHAS,
        n_iter=gammas,
        cv=KFold(5),
        fit_intercept=fit_intercept,
        scoring="neg_mse",
        solver=solver,
        max_memory=20_000,  # several candidate batches and target chunks
    ).fit(X, Y, bands=bands)
    codes = np.repeat(np.arange(3), SIZES)
    ref = himalaya_ridge.BandedRidgeCV(
        groups=codes,
        solver_params={"n_iter": gammas, "alphas": ALPHAS, "progress_bar": False},
        cv=KFold(5),
        fit_intercept=fit_intercept,
    ).fit(X, Y)
    assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-12)
    # float32: every candidate's neg-MSE errs by its scaled design's eps32·cond
    # (_banded_err32, worst candidate); the refit's coefficients at the selected weights
    # relative to the largest, the intercept by that times |mean(x)|₁ plus its rounding
    kw = dict(fit_intercept=fit_intercept, cv=KFold(5))
    err_all = _banded_err32(ridge_err32, X, _candidate_deltas(gammas), **kw)
    err = _banded_err32(ridge_err32, X, ref.deltas_, **kw)
    # himalaya's cv_scores_ are per candidate, with its 1e-10·log(alpha) tie-break slope,
    # which brainalign's candidate_scores_ keep too.
    assert_allclose(
        ours.candidate_scores_, ref.cv_scores_, rtol=tol(float64=1e-9, float32=err_all)
    )
    scale = np.abs(ref.coef_).max()
    assert_allclose(
        ours.coef_,
        ref.coef_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-12, float32=err * scale),
    )
    if fit_intercept:
        icpt = err * scale * np.abs(X.mean(0)).sum() + err * np.abs(ref.intercept_).max()
        assert_allclose(
            ours.intercept_,
            ref.intercept_,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=0, float32=icpt),
        )


def test_matches_multiple_kernel_ridge_on_fixed_band_weights(rng, tol, ridge_err32):
    X, Y, bands = _bands(rng, n=40)
    Y = Y - Y.mean(0)
    gammas = np.array([[1 / 3, 1 / 3, 1 / 3], [0.7, 0.2, 0.1], [0.05, 0.9, 0.05]])
    ours = BandedRidgeCV(
        ALPHAS, n_iter=gammas, cv=KFold(5), fit_intercept=False, scoring="neg_mse"
    ).fit(X, Y, bands=bands)
    kernels = np.stack([X[:, bands == b] @ X[:, bands == b].T for b in "abc"])
    ref = himalaya_kernel.MultipleKernelRidgeCV(
        kernels="precomputed",
        solver_params={"n_iter": gammas, "alphas": ALPHAS, "progress_bar": False},
        cv=KFold(5),
    ).fit(kernels, Y)
    assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-12)
    # float32: as in the test above; predictions relative to the largest
    kw = dict(fit_intercept=False, cv=KFold(5))
    err_all = _banded_err32(ridge_err32, X, _candidate_deltas(gammas), **kw)
    err = _banded_err32(ridge_err32, X, ref.deltas_, **kw)
    assert_allclose(
        ours.candidate_scores_, ref.cv_scores_, rtol=tol(float64=1e-9, float32=err_all)
    )
    pred_ref = ref.predict(kernels)
    assert_allclose(
        ours.predict(X, bands=bands),
        pred_ref,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err * np.abs(pred_ref).max()),
    )


def test_variance_partitioning_matches_product_measure(rng):
    X, Y, bands = _bands(rng, n=80)
    train, test = np.arange(60), np.arange(60, 80)
    model = BandedRidgeCV(ALPHAS, n_iter=8, random_state=0).fit(X[train], Y[train], bands=bands)
    split = model.score_split(X[test], Y[test], bands=bands)
    assert split.dims == ("band", "target_0")
    assert list(split.band.values) == ["a", "b", "c"]
    parts = model.predict_split(X[test], bands=bands)
    parts = parts - parts.mean(1, keepdims=True)
    ref = himalaya_scoring.r2_score_split(Y[test] - Y[test].mean(0), parts)
    assert_allclose(split.values, ref, rtol=1e-10, atol=1e-12)
    # The shares add up to the R² of the joint centred prediction.
    joint = parts.sum(0)
    yc = Y[test] - Y[test].mean(0)
    r2 = 1 - ((yc - joint) ** 2).sum(0) / (yc**2).sum(0)
    assert_allclose(split.values.sum(0), r2, rtol=1e-10)


def test_dict_of_labeled_bands(rng):
    X, Y, bands = _bands(rng, n=50, t=4)
    ids = [f"s{i}" for i in range(50)]
    layers = {
        name: xr.DataArray(
            X[:, bands == name], dims=("stimulus", "unit"), coords={"stimulus": ids}
        )
        for name in "abc"
    }
    Yda = xr.DataArray(
        Y, dims=("stimulus", "voxel"), coords={"stimulus": ids, "voxel": list("wxyz")}
    )
    shuffled = {k: v.isel(stimulus=rng.permutation(50)) for k, v in layers.items()}
    a = BandedRidgeCV(ALPHAS, n_iter=6, random_state=0).fit(layers, Yda)
    b = BandedRidgeCV(ALPHAS, n_iter=6, random_state=0).fit(shuffled, Yda)
    assert_allclose(a.cv_scores_, b.cv_scores_, rtol=1e-12)
    assert a.band_names_ == ["a", "b", "c"]
    assert a.results_.band_weight.dims == ("band", "voxel")
    assert_allclose(a.results_.band_weight.sum("band").values, 1.0)
    assert a.predict(layers).shape == (50, 4)


def test_banded_errors(rng):
    X, Y, bands = _bands(rng, n=30, t=2)
    with pytest.raises(ValueError, match=r"bands must give one label per column of X \(16\)"):
        BandedRidgeCV(n_iter=3).fit(X, Y, bands=bands[:5])
    with pytest.raises(ValueError, match="BandedRidgeCV needs the bands"):
        BandedRidgeCV(n_iter=3).fit(X, Y)
    with pytest.raises(ValueError, match=r"shape \(n, 3\) .* got shape \(4, 2\)"):
        BandedRidgeCV(n_iter=np.ones((4, 2))).fit(X, Y, bands=bands)
    with pytest.raises(ValueError, match=r"different numbers of samples: \{'a': 30, 'b': 29\}"):
        BandedRidgeCV(n_iter=3).fit({"a": X[:, :3], "b": X[:29, 3:]}, Y)
    with pytest.raises(ValueError, match=r"concentration must be positive .* got -1"):
        BandedRidgeCV(n_iter=3, concentration=-1).fit(X, Y, bands=bands)
    model = BandedRidgeCV(ALPHAS, n_iter=3).fit(X, Y, bands=bands)
    with pytest.raises(ValueError, match=r"X has 16 features in bands \['x'\]"):
        model.predict(X, bands=np.repeat("x", 16))


def test_hypergradient_refinement_never_worsens_and_matches_plain_ridge(rng, tol, ridge_err32):
    X, Y, bands = _bands(rng, n=70, t=4)
    codes = np.repeat(np.arange(3), SIZES)
    searched = BandedRidgeCV([1.0, 10.0], n_iter=2, scoring="neg_mse", random_state=0)
    searched.fit(X, Y, bands=bands)
    refined = BandedRidgeCV(
        [1.0, 10.0], n_iter=2, scoring="neg_mse", refine_steps=15, random_state=0
    )
    refined.fit(X, Y, bands=bands)
    assert_allclose(refined.search_deltas_, searched.deltas_)
    assert np.all(refined.cv_scores_ >= searched.cv_scores_ - 1e-12)
    assert np.any(refined.cv_scores_ > searched.cv_scores_ + 1e-6)
    assert_allclose(refined.band_weights_.sum(0), 1.0)
    # Independent path: scale each band by exp(delta / 2) and fit a plain ridge with
    # alpha = 1 through the eigendecomposition solver (no Cholesky, no autograd).
    from brainalign.encoding import ridge_cv

    for t in range(Y.shape[1]):
        s = np.exp(refined.deltas_[:, t] / 2)[codes]
        ref = ridge_cv(X * s, Y[:, t], [1.0], cv=5, scoring="neg_mse", return_coef=True)
        # float32: both paths err by the scaled design's eps32·cond (_banded_err32)
        err = _banded_err32(ridge_err32, X, refined.deltas_[:, t], fit_intercept=True, cv=5)
        coef = ref.coef.values.ravel() * s
        assert_allclose(refined.cv_scores_[t], float(ref.cv_score), rtol=tol(1e-9, err))
        assert_allclose(
            refined.coef_[:, t],
            coef,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=1e-12, float32=err * np.abs(coef).max()),
        )
        icpt = err * np.abs(coef).max() * np.abs(X.mean(0)).sum()
        icpt += err * abs(float(ref.intercept))
        assert_allclose(
            refined.intercept_[t],
            float(ref.intercept),
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=0, float32=icpt),
        )


def test_refinement_needs_the_squared_error(rng):
    X, Y, bands = _bands(rng, n=30, t=2)
    with pytest.raises(ValueError, match="needs criterion='neg_mse'; got criterion='r2'"):
        BandedRidgeCV(n_iter=2, refine_steps=3, criterion="r2").fit(X, Y, bands=bands)
    with pytest.raises(ValueError, match=r"refine_steps must be in the range \[0, inf\), got -1"):
        BandedRidgeCV(n_iter=2, refine_steps=-1).fit(X, Y, bands=bands)


def test_band_input_errors(rng):
    X, Y, bands = _bands(rng, n=30, t=2)
    with pytest.raises(ValueError, match=r"X holds no bands \(an empty dict\)"):
        BandedRidgeCV(n_iter=2).fit({}, Y)
    bad = np.array([[0.5, 0.5, 0.0], [-1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"rows 1, 2 of 3 are not \(first: \[-1.0, 1.0, 1.0\]\)"):
        BandedRidgeCV(n_iter=bad).fit(X, Y, bands=bands)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="This BandedRidgeCV is not fitted yet"):
        BandedRidgeCV().predict(X, bands=bands)
    with pytest.raises(NotFittedError, match="This RidgeCV is not fitted yet"):
        RidgeCV().predict(X)
