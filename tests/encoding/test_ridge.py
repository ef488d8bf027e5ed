"""Cross-validated ridge against himalaya and scikit-learn (the references, test-only)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import brainalign as ba
from brainalign.encoding import RidgeCV, make_folds, ridge, ridge_cv

himalaya_ridge = pytest.importorskip("himalaya.ridge")
himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")
himalaya_scoring = pytest.importorskip("himalaya.scoring")

ALPHAS = np.logspace(-2, 4, 7)
EPS32 = float(np.finfo(np.float32).eps)


def _problem(rng, n=60, p=15, t=12, offset=0.0, noise=2.0):
    X = rng.standard_normal((n, p))
    B = rng.standard_normal((p, t)) * rng.uniform(0.0, 0.6, size=t)
    Y = X @ B + noise * rng.standard_normal((n, t)) + offset
    return X, Y


def _himalaya_cv_scores(model, alphas):
    # himalaya adds a 1e-10·log(alpha) slope to the fold-mean score before the argmax
    # (kernel_ridge/_random_search.py, _select_best_alphas) and reports the sloped value.
    return model.cv_scores_ - 1e-10 * np.log(model.best_alphas_)


@pytest.mark.float32
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize(("n", "p"), [(60, 15), (40, 70)])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_matches_himalaya_ridgecv(rng, fit_intercept, n, p, solver, tol, ridge_err32):
    X, Y = _problem(rng, n=n, p=p, offset=3.0 if fit_intercept else 0.0)
    cv = KFold(5)
    # float32: every fold's fit errs by eps32·cond (cond = (s_max² + a)/(s_min² + a) on that
    # fold), and so do the scores, coefficients and predictions formed from it; factor 10
    # for the products around the solve and the rounding of the data themselves
    err = 10 * ridge_err32(X, ALPHAS, fit_intercept=fit_intercept, cv=cv).max()
    ref = himalaya_ridge.RidgeCV(
        alphas=ALPHAS, cv=cv, fit_intercept=fit_intercept, solver_params={"warn": False}
    ).fit(X, Y)
    ours = RidgeCV(
        ALPHAS, cv=cv, fit_intercept=fit_intercept, scoring="neg_mse", solver=solver
    ).fit(X, Y)
    assert ours.solver_ == solver
    np.testing.assert_array_equal(
        ours.best_alphas_,
        ALPHAS[
            np.argmin(np.abs(np.log(ALPHAS)[:, None] - np.log(ref.best_alphas_)[None]), axis=0)
        ],
    )
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    assert_allclose(
        ours.cv_scores_, _himalaya_cv_scores(ref, ALPHAS), rtol=tol(float64=1e-9, float32=err)
    )
    scale = np.abs(ref.coef_).max()
    assert_allclose(
        ours.coef_,
        ref.coef_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-12, float32=err) * scale,
    )
    X_new = rng.standard_normal((7, p))
    if fit_intercept:
        # the intercept is mean(y) - mean(x)·coef: the coefficient error times |mean(x)|₁
        icpt = err * scale * np.abs(X.mean(0)).sum()
        assert_allclose(
            ours.intercept_,
            ref.intercept_,
            rtol=tol(float64=1e-8, float32=err),
            atol=tol(float64=0, float32=icpt),
        )
    pred_scale = np.abs(ref.predict(X_new)).max()
    assert_allclose(
        ours.predict(X_new),
        ref.predict(X_new),
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err * pred_scale),
    )


@pytest.mark.float32
@pytest.mark.parametrize("criterion", ["r2", "pearson"])
def test_selection_criteria_match_himalaya_score_funcs(rng, criterion, tol, ridge_err32):
    X, Y = _problem(rng, n=50, p=10, t=9)
    # float32: each fold's predictions err by eps32·cond relative; an R² or a correlation
    # (bounded by 1) moves by about that much in absolute terms; factor 10 as above
    err = 10 * ridge_err32(X, ALPHAS, fit_intercept=False, cv=5).max()
    score_func = {
        "r2": himalaya_scoring.r2_score,
        "pearson": himalaya_scoring.correlation_score,
    }[criterion]
    ref = himalaya_ridge.RidgeCV(
        alphas=ALPHAS, cv=KFold(5), solver_params={"score_func": score_func}
    ).fit(X, Y)
    ours = RidgeCV(ALPHAS, cv=5, fit_intercept=False, criterion=criterion, scoring=criterion)
    ours.fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    assert_allclose(
        ours.cv_scores_,
        _himalaya_cv_scores(ref, ALPHAS),
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-12, float32=err),
    )


def test_reported_score_is_separate_from_the_criterion(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=50, p=10, t=6)
    res = ridge_cv(X, Y, ALPHAS, cv=5, criterion="neg_mse", scoring="pearson")
    mse = ridge_cv(X, Y, ALPHAS, cv=5, criterion="neg_mse", scoring="neg_mse")
    np.testing.assert_array_equal(res.best_alpha.values, mse.best_alpha.values)
    # Reference: Pearson r of sklearn Ridge predictions per fold at the selected alpha.
    expected = np.zeros(Y.shape[1])
    for train, test in KFold(5).split(X):
        for j in range(Y.shape[1]):
            m = Ridge(alpha=res.best_alpha.values[j]).fit(X[train], Y[train, j])
            expected[j] += np.corrcoef(m.predict(X[test]), Y[test, j])[0, 1] / 5
    # float32: a correlation of predictions that err by eps32·cond relative moves by about
    # that much in absolute terms (factor 10 as above)
    err = 10 * ridge_err32(X, ALPHAS, cv=5).max()
    assert_allclose(
        res.cv_score.values,
        expected,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=0, float32=err),
    )


def test_dual_matches_himalaya_kernel_ridge(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=30, p=80, t=7)
    # float32: the fit's eps32·cond, relative to the largest value compared (factor 10)
    err = 10 * ridge_err32(X, ALPHAS, fit_intercept=False, cv=KFold(5)).max()
    ref = himalaya_kernel.KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=KFold(5)).fit(X, Y)
    ours = RidgeCV(ALPHAS, cv=5, fit_intercept=False, scoring="neg_mse", solver="dual")
    ours.fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    assert_allclose(
        ours.cv_scores_, _himalaya_cv_scores(ref, ALPHAS), rtol=tol(float64=1e-9, float32=err)
    )
    assert_allclose(
        ours._fit.dual_coef,
        ref.dual_coef_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(ref.dual_coef_).max()),
    )


@pytest.mark.float32
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("shape", [(40, 8), (12, 30)])
def test_fixed_alpha_matches_sklearn_ridge(rng, fit_intercept, shape, tol):
    n, p = shape
    X, Y = _problem(rng, n=n, p=p, t=5, offset=1.5)
    alphas = np.array([1e-2, 0.3, 1.0, 10.0, 1e3])
    coef, intercept = ridge(X, Y, alphas, fit_intercept=fit_intercept)
    s = np.linalg.svd(X - X.mean(0) if fit_intercept else X, compute_uv=False)
    s = s[s > s[0] * 1e-12]
    for j, a in enumerate(alphas):
        ref = Ridge(alpha=a, fit_intercept=fit_intercept, solver="svd").fit(X, Y[:, j])
        # float32: the solution's condition number (s_max^2 + a) / (s_min^2 + a) times
        # eps32, with a factor 10 for the products and the data's own rounding
        cond = (s[0] ** 2 + a) / (s[-1] ** 2 + a)
        err32 = 10 * np.finfo(np.float32).eps * cond * np.abs(ref.coef_).max()
        kw = dict(rtol=tol(float64=1e-8, float32=0), atol=tol(float64=1e-12, float32=err32))
        assert_allclose(coef[:, j], ref.coef_, **kw)
        # the intercept is mean(y) - mean(x) @ coef: the coefficients' error times |mean(x)|,
        # plus the rounding of the float32 result itself
        eps32 = np.finfo(np.float32).eps
        err32 = err32 * (1 + np.abs(X.mean(0)).sum()) + 2 * eps32 * abs(ref.intercept_)
        kw["atol"] = tol(float64=1e-12, float32=err32)
        assert_allclose(intercept[j], ref.intercept_, **kw)


@pytest.mark.float32
def test_refit_coefficients_match_sklearn_per_selected_alpha(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=45, p=9, t=6, offset=2.0)
    model = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    for j in range(Y.shape[1]):
        a = model.best_alphas_[j]
        ref = Ridge(alpha=a).fit(X, Y[:, j])
        # float32: eps32·cond at the selected alpha, relative to the largest coefficient
        # (factor 10 as above); the intercept mean(y) - mean(x)·coef adds that error
        # times |mean(x)|₁ and its own rounding
        err = 10 * ridge_err32(X, a)[0] * np.abs(ref.coef_).max()
        err_icpt = err * np.abs(X.mean(0)).sum() + 2 * EPS32 * abs(ref.intercept_)
        assert_allclose(
            model.coef_[:, j], ref.coef_, rtol=tol(float64=1e-8, float32=0), atol=tol(0, err)
        )
        assert_allclose(
            model.intercept_[j],
            ref.intercept_,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=0, float32=err_icpt),
        )


def test_float32_score_regret_is_small(rng):
    X, Y = _problem(rng, n=80, p=20, t=30)
    exact = ridge_cv(X, Y, ALPHAS, cv=5, dtype="float64")
    single = ridge_cv(X, Y, ALPHAS, cv=5, dtype="float32")
    # Regret: the float64 CV score lost by using the alpha that float32 picked.
    path = exact.cv_path.values  # (alpha, target), neg-MSE
    picked = np.searchsorted(ALPHAS, single.best_alpha.values)
    regret = path.max(0) - path[picked, np.arange(Y.shape[1])]
    assert np.all(regret <= 1e-4 * np.abs(path.max(0)))
    assert_allclose(single.cv_score.values, exact.cv_score.values, rtol=1e-4, atol=1e-5)


def test_chunking_and_solvers_agree(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=50, p=12, t=23)
    # float32: two float32 paths each err by eps32·cond (factor 10 as above); R² (near 0
    # here) moves by that much in absolute terms, coefficients relative to the largest
    err = 10 * ridge_err32(X, ALPHAS, cv=5).max()
    big = ridge_cv(X, Y, ALPHAS, cv=5, return_coef=True, solver="primal")
    tiny = ridge_cv(X, Y, ALPHAS, cv=5, return_coef=True, solver="primal", max_memory=4096)
    dual = ridge_cv(X, Y, ALPHAS, cv=5, return_coef=True, solver="dual", max_memory=4096)
    scale = np.abs(big.coef.values).max()
    for other in (tiny, dual):
        assert_allclose(
            other.cv_score.values,
            big.cv_score.values,
            rtol=tol(float64=1e-9, float32=0),
            atol=tol(float64=0, float32=err),
        )
        assert_allclose(
            other.coef.values,
            big.coef.values,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=1e-12, float32=err * scale),
        )


def test_leave_one_run_out_and_explicit_folds(rng):
    X, Y = _problem(rng, n=48, p=6, t=4)
    runs = np.repeat(np.arange(4), 12)
    a = RidgeCV(ALPHAS, cv=LeaveOneGroupOut()).fit(X, Y, groups=runs)
    folds = [(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(4)]
    b = RidgeCV(ALPHAS, cv=folds).fit(X, Y)
    c = RidgeCV(ALPHAS, cv=GroupKFold(4)).fit(X, Y, groups=runs)
    assert_allclose(a.cv_scores_, b.cv_scores_, rtol=1e-12)
    assert_allclose(np.sort(a.cv_scores_), np.sort(c.cv_scores_), rtol=1e-12)
    ref = himalaya_ridge.RidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=True).fit(X, Y)
    assert_allclose(a.best_alphas_, ref.best_alphas_, rtol=1e-12)


def test_labeled_in_labeled_out_and_alignment(rng):
    X, Y = _problem(rng, n=40, p=5, t=6)
    ids = [f"s{i:02d}" for i in range(40)]
    Xda = xr.DataArray(X, dims=("stimulus", "unit"), coords={"stimulus": ids})
    Yda = xr.DataArray(
        Y.reshape(40, 2, 3),
        dims=("stimulus", "roi", "hemi"),
        coords={"stimulus": ids, "roi": ["V1", "FFA"], "hemi": ["l", "r", "b"]},
    )
    res = ridge_cv(Xda, Yda, ALPHAS, cv=5, return_coef=True)
    assert res.cv_score.dims == ("roi", "hemi")
    assert res.cv_score.sel(roi="FFA", hemi="r").item() == pytest.approx(
        ridge_cv(X, Y, ALPHAS, cv=5).cv_score.values[4]
    )
    assert res.coef.dims == ("unit", "roi", "hemi")
    assert res.cv_path.dims == ("alpha", "roi", "hemi")
    # X given in another order is matched by label, never by position.
    shuffled = Xda.isel(stimulus=rng.permutation(40))
    res2 = ridge_cv(shuffled, Yda, ALPHAS, cv=5)
    assert_allclose(res2.cv_score.values, res.cv_score.values, rtol=1e-12)
    model = RidgeCV(ALPHAS).fit(Xda, Yda)
    pred = model.predict(Xda.isel(stimulus=slice(0, 3)))
    assert pred.dims == ("stimulus", "roi", "hemi")
    assert list(pred.stimulus.values) == ids[:3]


def test_sklearn_contract(rng):
    X, Y = _problem(rng, n=40, p=5, t=3)
    model = RidgeCV(ALPHAS, cv=4)
    twin = clone(model)
    assert twin is not model
    assert twin.get_params().keys() == model.get_params().keys()
    assert twin.get_params()["cv"] == 4
    np.testing.assert_array_equal(twin.get_params()["alphas"], ALPHAS)
    pipe = make_pipeline(StandardScaler(), RidgeCV(ALPHAS, cv=4)).fit(X, Y)
    ref = RidgeCV(ALPHAS, cv=4).fit(StandardScaler().fit_transform(X), Y)
    assert_allclose(pipe[-1].coef_, ref.coef_, rtol=1e-10)
    assert pipe.predict(X).shape == Y.shape
    r2 = RidgeCV(ALPHAS).fit(X, Y).score(X, Y)
    assert r2.shape == (3,)
    from sklearn.metrics import r2_score

    assert_allclose(
        r2, r2_score(Y, RidgeCV(ALPHAS).fit(X, Y).predict(X), multioutput="raw_values")
    )


def test_memory_estimate_is_logged(rng, caplog, monkeypatch):
    import brainalign.encoding._ridge as mod

    monkeypatch.setattr(mod, "_MEMORY_REPORT", 0)
    X, Y = _problem(rng, n=30, p=5, t=3)
    with caplog.at_level(logging.INFO, logger="brainalign"):
        model = RidgeCV(ALPHAS).fit(X, Y)
    assert "GiB of working memory" in caplog.text
    assert model.memory_estimate_ > X.nbytes


def test_small_alpha_precision_warning(rng):
    X, Y = _problem(rng, n=40, p=10, t=2)
    X = X * 1e3
    with pytest.warns(UserWarning, match=r"below 10·eps·λ_max .* for float32"):
        RidgeCV([1e-6, 1.0], dtype="float32").fit(X, Y)


def test_bad_input_errors(rng):
    X, Y = _problem(rng, n=30, p=4, t=3)
    with pytest.raises(ValueError, match="X has 30 samples but Y has 29"):
        RidgeCV().fit(X, Y[:29])
    Yn = Y.copy()
    Yn[[2, 5], 1] = np.nan
    with pytest.raises(ValueError, match=r"Y holds 2 NaN value\(s\) out of 90 in 2 of 30 rows"):
        RidgeCV().fit(X, Yn)
    Yc = Y.copy()
    Yc[:, [0, 2]] = 4.0
    with pytest.raises(ValueError, match=r"Y has 2 constant target\(s\) \(0, 2\)"):
        RidgeCV().fit(X, Yc)
    Yda = xr.DataArray(Yc, dims=("stimulus", "voxel"), coords={"voxel": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"2 constant target\(s\) \('a', 'c'\)"):
        RidgeCV().fit(X, Yda)
    with pytest.raises(ValueError, match=r"alphas must be positive .* 2 invalid value\(s\) .*0.0"):
        RidgeCV([0.0, -1.0, 1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="cv split 0 has 1 test sample"):
        RidgeCV(cv=[(np.arange(1, 30), np.array([0]))]).fit(X, Y)
    with pytest.raises(ValueError, match=r"criterion.*'neg_mse'.*got 'mse'.*Did you mean"):
        RidgeCV(criterion="mse").fit(X, Y)
    with pytest.raises(ValueError, match=r"cv must be in the range \[2, 30\], got 40"):
        RidgeCV(cv=40).fit(X, Y)
    with pytest.raises(TypeError, match=r"cv must be an int .* got str 'loro'"):
        RidgeCV(cv="loro").fit(X, Y)
    with pytest.raises(
        ValueError, match=r"X must be 2-D \(samples, features\); got shape \(30,\)"
    ):
        RidgeCV().fit(X[:, 0], Y)
    with pytest.raises(ValueError, match="X has 3 features, but RidgeCV was fitted with 4"):
        RidgeCV().fit(X, Y).predict(X[:, :3])
    with pytest.raises(ValueError, match="alpha has 2 values but Y has 3 targets"):
        ridge(X, Y, [1.0, 2.0])


def test_alignment_error_names_labels(rng):
    X, Y = _problem(rng, n=10, p=3, t=2)
    Xda = xr.DataArray(X, dims=("stimulus", "unit"), coords={"stimulus": list("abcdefghij")})
    Yda = xr.DataArray(Y, dims=("stimulus", "voxel"), coords={"stimulus": list("abcdefghiz")})
    with pytest.raises(ba.StimulusAlignmentError, match=r"X lacks 1 of Y's \('z'\)"):
        ridge_cv(Xda, Yda, cv=2)


def test_make_folds_passes_groups_to_the_splitter():
    runs = np.repeat([0, 1, 2], 4)
    folds = make_folds(LeaveOneGroupOut(), 12, runs)
    assert [te.tolist() for _, te in folds] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_torch_inputs_and_device(rng, device, tol, ridge_err32):
    X, Y = _problem(rng, n=30, p=6, t=4)
    a = RidgeCV(ALPHAS, device=device, dtype="float64").fit(torch.as_tensor(X), torch.as_tensor(Y))
    b = RidgeCV(ALPHAS, device="cpu").fit(X, Y)
    # float32 (b only): R² moves by the folds' eps32·cond in absolute terms (factor 10)
    err = 10 * ridge_err32(X, ALPHAS, cv=5).max()
    assert_allclose(
        a.cv_scores_,
        b.cv_scores_,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=0, float32=err),
    )


def test_solver_choice_follows_the_flop_count(rng):
    from brainalign.encoding._solvers import choose_solver

    assert choose_solver(3000, 1000, 20000, 9, 5) == "primal"
    assert choose_solver(1000, 20000, 10000, 9, 5) == "dual"
    tall = RidgeCV(ALPHAS).fit(*_problem(rng, n=80, p=5, t=2))
    wide = RidgeCV(ALPHAS).fit(*_problem(rng, n=20, p=300, t=2))
    assert (tall.solver_, wide.solver_) == ("primal", "dual")


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_factored_fold_operators_match_stacked(rng, solver, tol, ridge_err32):
    # A budget too small for the stacked per-alpha operators switches to the factored
    # product (Vᵀc, then one GEMM per alpha): same numbers.
    X, Y = _problem(rng, n=50, p=12 if solver == "primal" else 80, t=9)
    stacked = ridge_cv(X, Y, ALPHAS, cv=5, solver=solver, return_coef=True)
    factored = ridge_cv(X, Y, ALPHAS, cv=5, solver=solver, return_coef=True, max_memory=2000)
    from brainalign.encoding._ridge import _fit_cv, _prepare

    prob = _prepare(X, Y, None, None)
    fit = _fit_cv(
        prob, ALPHAS, make_folds(5, 50), fit_intercept=True, criterion="neg_mse",
        scoring="r2", solver=solver, refit=False, max_memory=2000,
    )  # fmt: skip
    assert fit.memory_estimate > 0  # the factored path ran: see FoldOperator.apply
    # float32: two float32 evaluation orders, each within eps32·cond of the exact fit
    # (factor 10 as above); R² in [0, 1] absolute, coefficients relative to the largest
    err = 10 * ridge_err32(X, ALPHAS, cv=5).max()
    assert_allclose(
        factored.cv_score.values,
        stacked.cv_score.values,
        rtol=tol(float64=1e-10, float32=0),
        atol=tol(float64=0, float32=err),
    )
    assert_allclose(
        factored.coef.values,
        stacked.coef.values,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(stacked.coef.values).max()),
    )


def test_one_dimensional_target_follows_scikit_learn(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=40, p=5, t=1)
    y = Y[:, 0]
    model = RidgeCV(ALPHAS).fit(X, y)
    ref = Ridge(alpha=model.best_alphas_[0]).fit(X, y)
    assert model.coef_.shape == (5,)
    # float32: eps32·cond at the selected alpha (factor 10), as in the per-target test
    err = 10 * ridge_err32(X, model.best_alphas_[0])[0] * np.abs(ref.coef_).max()
    err_icpt = err * np.abs(X.mean(0)).sum() + 2 * EPS32 * abs(ref.intercept_)
    assert_allclose(model.coef_, ref.coef_, rtol=tol(float64=1e-8, float32=0), atol=tol(0, err))
    assert_allclose(
        model.intercept_,
        ref.intercept_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=0, float32=err_icpt),
    )
    assert model.predict(X).shape == (40,)
    assert isinstance(model.score(X, y), float)
    from sklearn.model_selection import cross_val_score

    assert cross_val_score(RidgeCV(ALPHAS), X, y, cv=3).shape == (3,)
