"""Kernels and KernelRidgeCV against himalaya (and scikit-learn), the references (test-only)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.metrics.pairwise import pairwise_kernels as sk_pairwise_kernels
from sklearn.model_selection import KFold

from brainalign.encoding import KERNELS, KernelRidgeCV, RidgeCV, pairwise_kernels

himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")
himalaya_scoring = pytest.importorskip("himalaya.scoring")
himalaya_kernels = pytest.importorskip("himalaya.kernel_ridge._kernels")

# himalaya's own KernelRidgeCV cases (kernel_ridge/tests/test_sklearn_api_kernel.py,
# _create_dataset): 30 samples, 100 features, 3 targets, float64.
N, P, T = 30, 100, 3
ALPHAS = np.logspace(-3, 3, 13)
EPS32 = float(np.finfo(np.float32).eps)
PARAMS = {
    "linear": [{}],
    "polynomial": [{}, {"degree": 2, "gamma": 0.02, "coef0": 0.5}],
    "poly": [{"degree": 4}],
    "rbf": [{}, {"gamma": 0.003}],
    "sigmoid": [{}, {"gamma": 0.05, "coef0": -0.3}],
    "cosine": [{}],
}
CASES = [(k, p) for k, ps in PARAMS.items() for p in ps]
SCORE_FUNCS = {
    "neg_mse": "l2_neg_loss",
    "r2": "r2_score",
    "pearson": "correlation_score",
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, P))
    Y = rng.standard_normal((N, T))
    X_new = rng.standard_normal((7, P))
    return X, Y, X_new


def _himalaya_cv(X, Y, kernel, params, fit_intercept, alphas=ALPHAS, **solver_params):
    with warnings.catch_warnings():  # its linear-kernel "use RidgeCV" advice
        warnings.simplefilter("ignore", UserWarning)
        return himalaya_kernel.KernelRidgeCV(
            alphas=alphas,
            kernel=kernel,
            kernel_params=params or None,
            fit_intercept=fit_intercept,
            cv=KFold(5),
            solver_params=solver_params or None,
        ).fit(X, Y)


def _assert_close(actual, desired, rtol, atol):
    """``assert_allclose`` taking an entrywise ``atol`` array (numpy's formats it as a scalar)."""
    actual, desired = np.asarray(actual, float), np.asarray(desired, float)
    excess = np.abs(actual - desired) - (atol + rtol * np.abs(desired))
    assert (excess <= 0).all(), (
        f"{(excess > 0).sum()} of {excess.size} entries beyond the tolerance, "
        f"worst by {excess.max():.3g}"
    )


def _fit_err32(kernel_err32, kernel_entry_err32, X, X_new, kernel, params, alphas, centre):
    """Float32 error bounds of a 5-fold kernel ridge fit on ``X`` at ``alphas``.

    Returns ``err``, the fit's relative error ``10 · (eps32·cond + ||dK|| / min|lambda + a|)``
    (``dK`` the kernel's own float32 error, conftest.kernel_err32; factor 10 for the products
    and the data's rounding), the float64 kernel, and the entrywise error of the prediction
    kernel ``K(X_new, X)`` (factor 4, as in the kernel tests).
    """
    K = sk_pairwise_kernels(X, metric=kernel, **params)
    d_entries = kernel_entry_err32(X, None, kernel, **params)
    cond = kernel_err32(K, alphas, centre=centre, cv=KFold(5), d_entries=d_entries)
    return 10 * cond.max(), K, 4 * kernel_entry_err32(X_new, X, kernel, **params)


def _unsloped(model):
    # himalaya reports the fold mean plus its 1e-10·log(alpha) tie-breaking slope.
    return model.cv_scores_ - 1e-10 * np.log(model.best_alphas_)


# --------------------------------------------------------------------------- kernels


@pytest.mark.float32
@pytest.mark.parametrize(("kernel", "params"), CASES)
@pytest.mark.parametrize("same", [True, False])
def test_kernels_match_himalaya_and_sklearn(data, kernel, params, same, tol, kernel_entry_err32):
    X, _, X_new = data
    A, B = (X, None) if same else (X_new, X)
    ours = pairwise_kernels(A, B, kernel, **params)
    # float32: the entrywise first-order error of the kernel from float32 inputs and a
    # 100-term float32 inner product (conftest.kernel_entry_err32), factor 4
    err = tol(float64=1e-12, float32=4 * kernel_entry_err32(A, B, kernel, **params))
    ref = himalaya_kernels.pairwise_kernels(A, B, metric=kernel, **params)
    _assert_close(ours, ref, rtol=tol(float64=1e-12, float32=0), atol=err)
    sk = sk_pairwise_kernels(A, B, metric=kernel, **params)
    _assert_close(ours, sk, rtol=tol(float64=1e-12, float32=0), atol=err)


def test_kernel_of_zero_rows_and_labels(rng, tol, kernel_entry_err32):
    X = rng.standard_normal((5, 3))
    X[2] = 0.0
    # cosine: a zero row has norm 1 (scikit-learn's normalize), so its kernel row is 0.
    # float32: a 3-term normalised inner product, entrywise error from kernel_entry_err32
    # (factor 4); rbf likewise
    atol = {
        k: tol(float64=0, float32=4 * kernel_entry_err32(X, None, k, **kw))
        for k, kw in (("cosine", {}), ("rbf", {"gamma": 0.5}))
    }
    _assert_close(
        pairwise_kernels(X, kernel="cosine"),
        sk_pairwise_kernels(X, metric="cosine"),
        rtol=1e-7,
        atol=atol["cosine"],
    )
    da = xr.DataArray(X, dims=("stimulus", "unit"), coords={"stimulus": list("abcde")})
    K = pairwise_kernels(da, kernel="rbf", gamma=0.5)
    assert K.dims == ("stimulus_a", "stimulus_b")
    assert list(K.stimulus_b.values) == list("abcde")
    _assert_close(
        K.values,
        sk_pairwise_kernels(X, metric="rbf", gamma=0.5),
        rtol=tol(float64=1e-12, float32=0),
        atol=atol["rbf"],
    )


def test_kernel_float32_matches_float64(data):
    X, _, _ = data
    k32 = pairwise_kernels(X, kernel="rbf", dtype="float32")
    assert k32.dtype == np.float32
    assert_allclose(k32, pairwise_kernels(X, kernel="rbf"), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- KernelRidgeCV


@pytest.mark.float32
@pytest.mark.parametrize(("kernel", "params"), CASES)
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_kernel_ridge_cv_matches_himalaya(
    data, kernel, params, fit_intercept, tol, kernel_err32, kernel_entry_err32
):
    X, Y, X_new = data
    if fit_intercept:
        X, Y, X_new = X + 1.0, Y + 10.0, X_new + 1.0
    # float32 resolves a penalty only above 10·eps32·λ_max(K) (KernelRidgeCV warns below):
    # the float32 pass keeps the grid's alphas above that (the linear kernel of X + 1 has
    # λ_max ≈ 3000, so 1e-3 goes)
    lam_max = np.linalg.eigvalsh(sk_pairwise_kernels(X, metric=kernel, **params))[-1]
    alphas = ALPHAS[ALPHAS >= tol(float64=0, float32=10 * EPS32 * lam_max)]
    ref = _himalaya_cv(X, Y, kernel, params, fit_intercept, alphas)
    ours = KernelRidgeCV(
        alphas,
        kernel=kernel,
        kernel_params=params,
        cv=KFold(5),
        fit_intercept=fit_intercept,
        scoring="neg_mse",
    ).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    # float32: the fit at the selected alphas errs by err (eps32·cond of the fold kernels
    # plus the kernel's own float32 error, see _fit_err32); dual coefficients relative to
    # the largest, the intercept mean(y) - mean(K)·dual by err·|mean(K)|·|dual|, predictions
    # by err·|pred| plus the prediction kernel's error times |dual|, neg-MSE scores
    # relative, R² (new data) by the predictions' relative error in absolute terms
    err, K, dk_new = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, kernel, params, ref.best_alphas_,
        fit_intercept,
    )  # fmt: skip
    dual = np.abs(ref.dual_coef_)
    scale = dual.max()
    assert_allclose(
        ours.dual_coef_,
        ref.dual_coef_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err) * scale,
    )
    if fit_intercept:
        icpt = err * (np.abs(K.mean(0)) @ dual).max() + err * np.abs(ref.intercept_).max()
        assert_allclose(
            ours.intercept_,
            ref.intercept_,
            rtol=tol(float64=1e-8, float32=0),
            atol=tol(float64=1e-10, float32=icpt),
        )
    pred = ref.predict(X_new)
    pred_err = err * np.abs(pred).max() + (dk_new @ dual).max()
    assert_allclose(
        ours.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=pred_err),
    )
    assert_allclose(
        ours.cv_scores_,
        _unsloped(ref),
        rtol=tol(float64=1e-10, float32=err),
        atol=tol(float64=1e-12, float32=0),
    )
    assert_allclose(
        ours.score(X_new, Y[:7]),
        ref.score(X_new, Y[:7]),
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=pred_err / np.abs(pred).max()),
    )


@pytest.mark.parametrize("criterion", ["neg_mse", "r2", "pearson"])
@pytest.mark.parametrize("local_alpha", [True, False])
def test_kernel_ridge_cv_criteria_and_shared_alpha(
    data, criterion, local_alpha, tol, kernel_err32, kernel_entry_err32
):
    X, Y, X_new = data
    rng = np.random.default_rng(1)
    Y = np.concatenate([Y, X[:, :5] @ rng.standard_normal((5, 5))], axis=1)  # varied targets
    score_func = getattr(himalaya_scoring, SCORE_FUNCS[criterion])
    ref = _himalaya_cv(X, Y, "rbf", {}, True, score_func=score_func, local_alpha=local_alpha)
    ours = KernelRidgeCV(
        ALPHAS,
        kernel="rbf",
        cv=KFold(5),
        criterion=criterion,
        scoring=criterion,
        local_alpha=local_alpha,
    ).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    if not local_alpha:
        assert np.unique(ours.best_alphas_).size == 1
    # float32: the fit's err at the selected alphas (_fit_err32); neg-MSE scores relative,
    # R² and correlations (bounded by 1) absolute; predictions as in the test above
    err, _, dk_new = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, "rbf", {}, ref.best_alphas_, True
    )
    assert_allclose(
        ours.cv_scores_,
        _unsloped(ref),
        rtol=tol(float64=1e-9, float32=err if criterion == "neg_mse" else 0),
        atol=tol(float64=1e-11, float32=0 if criterion == "neg_mse" else err),
    )
    pred = ref.predict(X_new)
    pred_err = err * np.abs(pred).max() + (dk_new @ np.abs(ref.dual_coef_)).max()
    assert_allclose(
        ours.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=pred_err),
    )


@pytest.mark.float32
def test_sigmoid_negative_eigenvalues_ban_small_alphas(
    data, test_dtype, tol, kernel_err32, kernel_entry_err32
):
    # The sigmoid kernel is not PSD: alphas below twice the most negative fold eigenvalue
    # score -1e5 in himalaya (kernel_ridge/_random_search.py, _decompose_kernel_ridge).
    X, Y, X_new = data
    params = {"gamma": 0.2, "coef0": 0.0}
    K = pairwise_kernels(X, kernel="sigmoid", **params)
    assert np.linalg.eigvalsh(K)[0] < -1e-3
    alphas = np.logspace(-6, 1, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = himalaya_kernel.KernelRidgeCV(
            alphas=alphas, kernel="sigmoid", kernel_params=params, cv=KFold(5)
        ).fit(X, Y)
    # float32 resolves penalties down to 10·eps32·λ_max(K) ≈ 1e-5 only: it warns about 1e-6
    # (banned here anyway, by the negative eigenvalues)
    unresolved = (
        pytest.warns(UserWarning, match=r"The smallest alpha \(1e-06\) is below")
        if test_dtype == "float32"
        else warnings.catch_warnings()
    )
    with unresolved:
        ours = KernelRidgeCV(
            alphas, kernel="sigmoid", kernel_params=params, cv=KFold(5), fit_intercept=False
        ).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    # float32: the fit's err at the selected alphas (_fit_err32), predictions as above
    err, _, dk_new = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, "sigmoid", params, ref.best_alphas_, False
    )
    pred = ref.predict(X_new)
    pred_err = err * np.abs(pred).max() + (dk_new @ np.abs(ref.dual_coef_)).max()
    assert_allclose(
        ours.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=pred_err),
    )
    path = ours.results_["cv_path"].values
    assert (path[0] < -1e4).all()  # the smallest alpha is banned in every fold


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_linear_kernel_equals_ridge_cv(data, fit_intercept, tol, kernel_err32, kernel_entry_err32):
    # himalaya's test_kernel_ridge_cv_vs_ridge_cv, with brainalign's RidgeCV as reference.
    X, Y, X_new = data
    if fit_intercept:
        X, Y, X_new = X + 1.0, Y + 10.0, X_new + 1.0
    alphas = np.logspace(-2, 3, 21)
    ours = KernelRidgeCV(alphas, fit_intercept=fit_intercept).fit(X, Y)
    ref = RidgeCV(alphas, fit_intercept=fit_intercept).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_)
    # float32: both fits err by at most the kernel fit's err (_fit_err32: its float32
    # kernel adds to the solve's eps32·cond); predictions as above, R² absolute
    err, _, dk_new = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, "linear", {}, ref.best_alphas_,
        fit_intercept,
    )  # fmt: skip
    pred = ref.predict(X_new)
    pred_err = err * np.abs(pred).max() + (dk_new @ np.abs(ours.dual_coef_)).max()
    assert_allclose(
        ours.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=pred_err),
    )
    assert_allclose(
        ours.cv_scores_,
        ref.cv_scores_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-10, float32=err),
    )


def test_precomputed_equals_linear_and_callable_equals_rbf(
    data, tol, kernel_err32, kernel_entry_err32
):
    X, Y, X_new = data
    lin = KernelRidgeCV(ALPHAS).fit(X, Y)
    pre = KernelRidgeCV(ALPHAS, kernel="precomputed").fit(X @ X.T, Y)
    # float32: the precomputed kernel is rounded from float64, the linear one is a float32
    # product; the fits differ by the linear kernel fit's err (_fit_err32)
    err, _, dk_new = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, "linear", {}, lin.best_alphas_, False
    )
    dual = np.abs(lin.dual_coef_)
    assert_allclose(
        pre.dual_coef_,
        lin.dual_coef_,
        rtol=tol(float64=1e-10, float32=0),
        atol=tol(float64=1e-14, float32=err * dual.max()),
    )
    pred = lin.predict(X_new)
    assert_allclose(
        pre.predict(X_new @ X.T),
        pred,
        rtol=tol(float64=1e-10, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(pred).max() + (dk_new @ dual).max()),
    )

    def rbf(a, b, gamma):
        return torch.exp(-gamma * torch.cdist(a, b) ** 2)

    call = KernelRidgeCV(ALPHAS, kernel=rbf, kernel_params={"gamma": 0.01}).fit(X, Y)
    named = KernelRidgeCV(ALPHAS, kernel="rbf", kernel_params={"gamma": 0.01}).fit(X, Y)
    # float32: torch.cdist accumulates in float32, its squared distances err by about
    # (2 + sqrt(p))·eps32·(||a||² + ||b||²), times gamma·K in the kernel; the fits then
    # differ by the rbf fit's err with that kernel error (_fit_err32's formula)
    err, K, _ = _fit_err32(
        kernel_err32, kernel_entry_err32, X, X_new, "rbf", {"gamma": 0.01},
        named.best_alphas_, False,
    )  # fmt: skip
    sq = np.square(X).sum(1)
    d_call = (2 + np.sqrt(P)) * EPS32 * 0.01 * K * (sq[:, None] + sq[None, :])
    err += 10 * kernel_err32(K, named.best_alphas_, cv=KFold(5), d_entries=d_call).max()
    sq_new = np.square(X_new).sum(1)
    K_new = sk_pairwise_kernels(X_new, X, metric="rbf", gamma=0.01)
    dk_call = 4 * (2 + np.sqrt(P)) * EPS32 * 0.01 * K_new * (sq_new[:, None] + sq[None, :])
    pred = named.predict(X_new)
    assert_allclose(
        call.predict(X_new),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(
            float64=1e-10,
            float32=err * np.abs(pred).max() + (dk_call @ np.abs(named.dual_coef_)).max(),
        ),
    )


def test_one_target_labels_and_clone(data):
    X, Y, X_new = data
    model = KernelRidgeCV(ALPHAS, kernel="poly").fit(X, Y[:, 0])
    assert model.dual_coef_.shape == (N,)
    assert isinstance(model.intercept_, float)
    assert model.predict(X_new).shape == (7,)
    assert isinstance(model.score(X_new, Y[:7, 0]), float)
    stim = [f"s{i}" for i in range(N)]
    Xd = xr.DataArray(X, dims=("stimulus", "unit"), coords={"stimulus": stim})
    Yd = xr.DataArray(
        Y, dims=("stimulus", "voxel"), coords={"stimulus": stim, "voxel": list("abc")}
    )
    order = np.random.default_rng(0).permutation(N)
    labeled = KernelRidgeCV(ALPHAS, kernel="rbf").fit(Xd[order], Yd)  # X reordered to Y
    plain = KernelRidgeCV(ALPHAS, kernel="rbf").fit(X, Y)
    pred = labeled.predict(Xd[:5])
    assert pred.dims == ("stimulus", "voxel")
    assert list(pred.voxel.values) == list("abc")
    assert_allclose(pred.values, plain.predict(X[:5]), rtol=1e-10, atol=1e-12)
    assert labeled.results_["cv_path"].dims == ("alpha", "voxel")
    fresh = clone(labeled)
    assert fresh.get_params()["kernel"] == "rbf"
    assert not hasattr(fresh, "dual_coef_")


# --------------------------------------------------------------------------- errors


def test_bad_kernels_and_params_raise(data):
    X, Y, _ = data
    with pytest.raises(
        ValueError, match=r"'kernel' parameter.*'precomputed'; got 'rbff'\. Did you mean 'rbf'\?"
    ):
        KernelRidgeCV(kernel="rbff").fit(X, Y)
    with pytest.raises(ValueError, match=r"'kernel' parameter.*'cosine'; got 'gaussian'\.$"):
        pairwise_kernels(X, kernel="gaussian")
    with pytest.raises(
        ValueError,
        match=r"Unknown parameter 'gama' for kernel='rbf'; its parameters are 'gamma'\. "
        r"Did you mean 'gamma'\?",
    ):
        KernelRidgeCV(kernel="rbf", kernel_params={"gama": 1.0}).fit(X, Y)
    with pytest.raises(ValueError, match=r"Unknown parameter 'degree' for kernel='linear'.*none"):
        pairwise_kernels(X, kernel="linear", degree=2)
    with pytest.raises(
        ValueError, match=r"kernel parameter 'gamma' must be in the range .*got -1"
    ):
        pairwise_kernels(X, kernel="rbf", gamma=-1.0)
    with pytest.raises(
        TypeError, match=r"kernel parameter 'coef0' must be a real number, got str"
    ):
        KernelRidgeCV(kernel="sigmoid", kernel_params={"coef0": "1"}).fit(X, Y)
    with pytest.raises(TypeError, match=r"parameters of kernel must be a dict.*got list"):
        KernelRidgeCV(kernel="rbf", kernel_params=[1.0]).fit(X, Y)
    with pytest.raises(TypeError, match=r"kernel must be a kernel name .*got int 3"):
        pairwise_kernels(X, kernel=3)
    with pytest.raises(
        ValueError, match=r"precomputed', X must be the square .*got shape \(30, 100\)"
    ):
        KernelRidgeCV(kernel="precomputed").fit(X, Y)
    with pytest.raises(
        ValueError, match=r"'precomputed' takes no kernel_params; got \{'gamma': 1\}"
    ):
        KernelRidgeCV(kernel="precomputed", kernel_params={"gamma": 1}).fit(X @ X.T, Y)
    with pytest.raises(
        ValueError, match="X and Y must have the same number of features; got 100 and 3"
    ):
        pairwise_kernels(X, X[:, :3])


def test_predict_errors(data):
    X, Y, _ = data
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="KernelRidgeCV is not fitted yet"):
        KernelRidgeCV().predict(X)
    model = KernelRidgeCV(ALPHAS, kernel="rbf").fit(X, Y)
    with pytest.raises(
        ValueError, match="X has 4 features, but KernelRidgeCV was fitted with 100"
    ):
        model.predict(X[:, :4])
    pre = KernelRidgeCV(ALPHAS, kernel="precomputed").fit(X @ X.T, Y)
    with pytest.raises(ValueError, match=r"\(n_samples, 30\) kernel .*got shape \(5, 29\)"):
        pre.predict(np.zeros((5, 29)))


def test_kernel_names_exported():
    assert KERNELS == ("linear", "polynomial", "poly", "rbf", "sigmoid", "cosine")
    assert set(KERNELS) == set(himalaya_kernels.PAIRWISE_KERNEL_FUNCTIONS)
