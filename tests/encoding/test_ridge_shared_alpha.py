"""One penalty shared by all targets (``local_alpha=False``) against himalaya's RidgeCV."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.model_selection import KFold

from brainalign.encoding import RidgeCV, ridge_cv

himalaya_ridge = pytest.importorskip("himalaya.ridge")

# himalaya's own RidgeCV cases (ridge/tests/test_sklearn_api_ridge.py): 30 samples,
# 10 features, alphas logspace(-2, 3, 21); more targets here so that the shared alpha
# differs from the per-target ones.
ALPHAS = np.logspace(-2, 3, 21)


def _dataset(rng, n=30, p=10, t=8):
    X = rng.standard_normal((n, p))
    w = rng.standard_normal((p, t)) * rng.uniform(0.0, 0.5, size=t)
    Y = X @ w + rng.standard_normal((n, t))
    return X, Y


def _himalaya(X, Y, fit_intercept, cv):
    return himalaya_ridge.RidgeCV(
        alphas=ALPHAS,
        cv=cv,
        fit_intercept=fit_intercept,
        solver_params={"local_alpha": False, "warn": False},
    ).fit(X, Y)


@pytest.mark.float32
@pytest.mark.parametrize("solver", ["primal", "dual"])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize(("n", "p"), [(30, 10), (30, 50)])
def test_shared_alpha_matches_himalaya(rng, solver, fit_intercept, n, p, tol, ridge_err32):
    X, Y = _dataset(rng, n=n, p=p)
    if fit_intercept:
        X += 1.0
        Y += 10.0
    cv = KFold(5)
    ref = _himalaya(X, Y, fit_intercept, cv)
    ours = RidgeCV(
        ALPHAS,
        cv=cv,
        fit_intercept=fit_intercept,
        scoring="neg_mse",
        solver=solver,
        local_alpha=False,
    ).fit(X, Y)
    # One alpha, himalaya's (its best_alphas_ are float64 copies of the grid values).
    assert np.unique(ours.best_alphas_).size == 1
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    # float32: every fold's fit errs by eps32·cond (cond = (s_max² + a)/(s_min² + a) of the
    # fold's centred design), factor 10 for the products and the data's rounding; the
    # coefficients relative to the largest, the intercept mean(y) - mean(x)·coef adds that
    # error times |mean(x)|₁, predictions relative to the largest, neg-MSE scores relative
    err = 10 * ridge_err32(X, ALPHAS, fit_intercept=fit_intercept, cv=cv).max()
    scale = np.abs(ref.coef_).max()
    assert_allclose(
        ours.coef_,
        ref.coef_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err * scale),
    )
    if fit_intercept:
        icpt = err * scale * np.abs(X.mean(0)).sum() + err * np.abs(ref.intercept_).max()
        assert_allclose(
            ours.intercept_,
            ref.intercept_,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=1e-10, float32=icpt),
        )
    X_new = rng.standard_normal((7, p)) + (1.0 if fit_intercept else 0.0)
    pred = ref.predict(X_new)
    assert_allclose(
        ours.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err * np.abs(pred).max()),
    )
    # himalaya reports the fold-mean score plus its 1e-10·log(alpha) tie-breaking slope.
    assert_allclose(
        ours.cv_scores_,
        ref.cv_scores_ - 1e-10 * np.log(ref.best_alphas_),
        rtol=tol(float64=1e-7, float32=err),
        atol=tol(float64=1e-10, float32=0),
    )


def test_shared_alpha_differs_from_local_and_is_the_mean_argmax(rng):
    # Targets with very different noise levels prefer different alphas; the shared one
    # is the argmax of the target-mean of the fold-mean criterion (recomputed here).
    X = rng.standard_normal((40, 6))
    w = rng.standard_normal((6, 4))
    Y = X @ w + rng.standard_normal((40, 4)) * np.array([0.05, 0.5, 5.0, 50.0])
    local = RidgeCV(ALPHAS, cv=4).fit(X, Y)
    shared = RidgeCV(ALPHAS, cv=4, local_alpha=False).fit(X, Y)
    assert np.unique(local.best_alphas_).size > 1
    path = local.results_["cv_path"].values  # (alpha, target) fold-mean neg_mse
    expected = ALPHAS[np.argmax(path.mean(1))]
    assert_allclose(shared.best_alphas_, expected)
    # The refit equals a fixed-alpha ridge at that alpha for every target.
    fixed = RidgeCV([expected], cv=4).fit(X, Y)
    assert_allclose(shared.coef_, fixed.coef_, rtol=1e-10, atol=1e-12)


def test_ridge_cv_shared_alpha_predictions(rng):
    X, Y = _dataset(rng, n=40, p=8)
    res = ridge_cv(
        X, Y, ALPHAS, cv=4, local_alpha=False, return_predictions=True, return_coef=True
    )
    a = float(res.best_alpha.values[0])
    assert np.all(res.best_alpha.values == a)
    # Out-of-fold predictions at the shared alpha = a one-alpha CV's predictions.
    one = ridge_cv(X, Y, [a], cv=4, return_predictions=True)
    assert_allclose(res.prediction.values, one.prediction.values, rtol=1e-10, atol=1e-12)


def test_local_alpha_must_be_bool(rng):
    X, Y = _dataset(rng)
    with pytest.raises(TypeError, match="local_alpha must be a bool, got str 'no'"):
        RidgeCV(ALPHAS, local_alpha="no").fit(X, Y)
    with pytest.raises(TypeError, match="local_alpha must be a bool, got int 0"):
        ridge_cv(X, Y, ALPHAS, local_alpha=0)
