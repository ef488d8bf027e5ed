"""Predictions and scores on NEW samples against an independent reference (issue 17, item 1).

The reference is scikit-learn's ``Ridge`` at the penalty our estimator selected: for
``RidgeCV`` and ``ridge_cv`` directly; for ``BandedRidgeCV`` on the bands scaled by
``sqrt(gamma_b / alpha)`` (so one unit penalty gives each band ``alpha / gamma_b``); for
``TRF`` on a lagged design built here by hand (centred, zero outside the recording).
A result must not depend on which fitted attribute is read first, so every ``RidgeCV`` case
runs in both orders (``predict`` before ``coef_`` and after).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from brainalign.encoding import TRF, BandedRidgeCV, RidgeCV, ridge_cv

ALPHAS = [0.1, 1.0, 10.0, 100.0]


def _tol(dtype):
    return {"rtol": 2e-4, "atol": 2e-4} if dtype == "float32" else {"rtol": 1e-7, "atol": 1e-9}


def _data(rng, n, p, t, dtype, offset=5.0):
    X = rng.standard_normal((n + 20, p))
    W = rng.standard_normal((p, t)) / np.sqrt(p)
    Y = X @ W + offset + 0.5 * rng.standard_normal((n + 20, t))
    Y[:, 0] += 2.0 * offset  # targets with different intercepts
    X, Y = X.astype(dtype), Y.astype(dtype)
    return X[:n], Y[:n], X[n:], Y[n:]


def _sklearn_ridge(X, Y, alphas, fit_intercept):
    """One scikit-learn Ridge per target at that target's selected alpha (float64)."""
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    Y2 = Y.reshape(Y.shape[0], -1)
    return [
        Ridge(alpha=float(a), fit_intercept=fit_intercept).fit(X, Y2[:, j])
        for j, a in enumerate(np.atleast_1d(alphas))
    ]


def _ref_predict(models, X_new):
    return np.stack([m.predict(np.asarray(X_new, float)) for m in models], axis=1)


@pytest.mark.parametrize("order", ["predict_first", "coef_first"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("one_d", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", ["primal", "dual"])
@pytest.mark.parametrize(("n", "p"), [(30, 100), (60, 8)])
def test_ridgecv_predict_and_score_match_sklearn(
    rng, n, p, solver, fit_intercept, one_d, dtype, order
):
    X, Y, X_new, Y_new = _data(rng, n, p, 3, dtype)
    if one_d:
        Y, Y_new = Y[:, 1], Y_new[:, 1]
    model = RidgeCV(ALPHAS, cv=3, fit_intercept=fit_intercept, solver=solver, dtype=dtype)
    model.fit(X, Y)
    if order == "coef_first":
        _ = model.coef_
    pred = model.predict(X_new)
    r2 = model.score(X_new, Y_new)
    if order == "predict_first":
        _ = model.coef_
    refs = _sklearn_ridge(X, Y, model.best_alphas_, fit_intercept)
    ref_pred = _ref_predict(refs, X_new)
    if one_d:
        ref_pred = ref_pred[:, 0]
        assert pred.shape == (X_new.shape[0],)
        assert isinstance(r2, float)
    tol = _tol(dtype)
    scale = np.abs(ref_pred).max()
    assert_allclose(pred, ref_pred, rtol=tol["rtol"], atol=tol["atol"] * scale)
    ref_r2 = r2_score(
        np.asarray(Y_new, float), np.asarray(ref_pred, float), multioutput="raw_values"
    )
    assert_allclose(np.atleast_1d(r2), ref_r2, rtol=tol["rtol"], atol=tol["atol"])
    # the same answer again after coef_ has been formed, and coef_/intercept_ agree too
    assert_allclose(model.predict(X_new), pred, rtol=tol["rtol"], atol=tol["atol"] * scale)
    coef = np.stack([m.coef_ for m in refs], axis=1)
    assert_allclose(
        np.asarray(model.coef_).reshape(p, -1), coef, rtol=tol["rtol"], atol=tol["atol"]
    )
    icpt = np.array([m.intercept_ for m in refs])
    assert_allclose(np.atleast_1d(model.intercept_), icpt, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.float32
def test_issue_17_dual_intercept_reproduction(rng, tol, ridge_err32):
    """The issue's numbers: X 30×100, Y = X w + 5 + noise, alpha 1 (the dual solver)."""
    X = rng.standard_normal((50, 100))
    w = rng.standard_normal(100) / 10
    Y = X @ w + 5 + 0.1 * rng.standard_normal(50)
    X, X_new, Y, Y_new = X[:30], X[30:], Y[:30], Y[30:]
    model = RidgeCV(alphas=[1.0]).fit(X, Y)
    assert model.solver_ == "dual"
    ref = Ridge(alpha=1.0).fit(X, Y)
    # float32: the fit errs by eps32·(s_max² + 1)/(s_min² + 1) (factor 10 for the products
    # and the data's rounding), predictions relative to the largest; R² moves by about
    # 2·err·rms(pred)·rms(residual)/var(y) <= err in absolute terms
    err = 10 * ridge_err32(X, 1.0)[0]
    pred = ref.predict(X_new)
    assert_allclose(
        model.predict(X_new),
        pred,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-9, float32=err * np.abs(pred).max()),
    )
    assert model.score(X_new, Y_new) == pytest.approx(
        ref.score(X_new, Y_new), abs=tol(float64=1e-9, float32=err)
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_ridge_cv_refit_predicts_like_sklearn(rng, solver, fit_intercept, tol, ridge_err32):
    X, Y, X_new, _ = _data(rng, 30, 50, 3, "float64")
    res = ridge_cv(
        X, Y, ALPHAS, cv=3, fit_intercept=fit_intercept, solver=solver, return_coef=True
    )
    pred = X_new @ res.coef.values + res.intercept.values
    refs = _sklearn_ridge(X, Y, res.best_alpha.values, fit_intercept)
    ref_pred = _ref_predict(refs, X_new)
    # float32: the refit errs by eps32·cond at the selected alphas (factor 10 for the
    # products and the data's rounding), relative to the largest prediction
    err = 10 * ridge_err32(X, res.best_alpha.values, fit_intercept=fit_intercept).max()
    assert_allclose(
        pred,
        ref_pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-9, float32=err * np.abs(ref_pred).max()),
    )


@pytest.mark.parametrize("refine_steps", [0, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_banded_predict_and_score_match_sklearn_on_scaled_bands(
    rng, solver, fit_intercept, refine_steps, tol, ridge_err32
):
    n, t = 40, 3
    bands = {"a": rng.standard_normal((n + 15, 6)), "b": rng.standard_normal((n + 15, 30))}
    Y = bands["a"] @ rng.standard_normal((6, t)) + 0.3 * bands["b"] @ rng.standard_normal((30, t))
    Y = Y + 4.0 + rng.standard_normal((n + 15, t))
    train = {k: v[:n] for k, v in bands.items()}
    test = {k: v[n:] for k, v in bands.items()}
    model = BandedRidgeCV(
        ALPHAS,
        n_iter=6,
        cv=3,
        fit_intercept=fit_intercept,
        solver=solver,
        random_state=0,
        refine_steps=refine_steps,  # > 0: penalties refined by hypergradient steps
    ).fit(train, Y[:n])
    pred = model.predict(test)
    r2 = model.score(test, Y[n:])
    ref_pred = np.empty_like(pred)
    err = 0.0
    for j in range(t):
        scale = np.sqrt(np.exp(model.deltas_[:, j]))  # sqrt(gamma_b / alpha) per band
        Xs = np.hstack([train["a"] * scale[0], train["b"] * scale[1]])
        Xs_new = np.hstack([test["a"] * scale[0], test["b"] * scale[1]])
        ref = Ridge(alpha=1.0, fit_intercept=fit_intercept).fit(Xs, Y[:n, j])
        ref_pred[:, j] = ref.predict(Xs_new)
        # float32: the refit on the scaled bands at unit penalty errs by eps32·cond of Xs
        # (factor 10 for the products and the data's rounding)
        err = max(err, 10 * ridge_err32(Xs, 1.0, fit_intercept=fit_intercept)[0])
    # predictions relative to the largest; R² (bounded by 1) by the same in absolute terms
    assert_allclose(
        pred,
        ref_pred,
        rtol=tol(float64=1e-7, float32=0),
        atol=tol(float64=1e-8, float32=err * np.abs(ref_pred).max()),
    )
    assert_allclose(
        r2,
        r2_score(Y[n:], ref_pred, multioutput="raw_values"),
        atol=tol(float64=1e-8, float32=err),
    )


@pytest.mark.float32
@pytest.mark.parametrize("use_cv", [False, True])
def test_trf_predict_and_score_match_ridge_on_explicit_lags(rng, use_cv, tol, ridge_err32, lagged):
    n, p, q = 300, 2, 2
    x = rng.standard_normal((n + 120, p))
    kernel = rng.standard_normal((p, 4, q))
    y = sum(np.roll(x, d, axis=0) @ kernel[:, d] for d in range(4)) + 3.0
    y = y + 0.5 * rng.standard_normal(y.shape)
    x_tr, y_tr, x_new, y_new = x[:n], y[:n], x[n:], y[n:]
    kw = {"alphas": ALPHAS, "cv": 3} if use_cv else {"alpha": 5.0}
    trf = TRF(-0.1, 0.4, 10.0, **kw).fit(x_tr, y_tr)
    delays = trf.delays_
    # Reference: ridge without intercept on the lags of the centred input (MNE's convention:
    # centre before delaying), the output mean added back.
    x_mu, y_mu = x_tr.mean(0), y_tr.mean(0)
    D, D_new = lagged(x_tr - x_mu, delays), lagged(x_new - x_mu, delays)
    ref_pred = np.stack(
        [
            Ridge(alpha=float(a), fit_intercept=False).fit(D, y_tr[:, j] - y_mu[j]).predict(D_new)
            + y_mu[j]
            for j, a in enumerate(trf.alpha_)
        ],
        axis=1,
    )
    # float32: the lagged ridge errs by eps32·cond of the lagged design at the selected
    # alphas (factor 10 for the products and the data's rounding); predictions relative to
    # the largest, R² (bounded by 1) by the same in absolute terms
    err = 10 * ridge_err32(D, trf.alpha_, fit_intercept=False).max()
    assert_allclose(
        trf.predict(x_new),
        ref_pred,
        rtol=tol(float64=1e-7, float32=0),
        atol=tol(float64=1e-8, float32=err * np.abs(ref_pred).max()),
    )
    valid = (np.arange(len(x_new)) - delays.max() >= 0) & (
        np.arange(len(x_new)) - delays.min() < len(x_new)
    )
    ref_r2 = r2_score(y_new[valid], ref_pred[valid], multioutput="raw_values")
    assert_allclose(
        trf.score(x_new, y_new),
        ref_r2,
        rtol=tol(float64=1e-7, float32=0),
        atol=tol(float64=1e-8, float32=err),
    )
