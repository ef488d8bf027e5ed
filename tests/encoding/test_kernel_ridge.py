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


def _himalaya_cv(X, Y, kernel, params, fit_intercept, **solver_params):
    with warnings.catch_warnings():  # its linear-kernel "use RidgeCV" advice
        warnings.simplefilter("ignore", UserWarning)
        return himalaya_kernel.KernelRidgeCV(
            alphas=ALPHAS,
            kernel=kernel,
            kernel_params=params or None,
            fit_intercept=fit_intercept,
            cv=KFold(5),
            solver_params=solver_params or None,
        ).fit(X, Y)


def _unsloped(model):
    # himalaya reports the fold mean plus its 1e-10·log(alpha) tie-breaking slope.
    return model.cv_scores_ - 1e-10 * np.log(model.best_alphas_)


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize(("kernel", "params"), CASES)
@pytest.mark.parametrize("same", [True, False])
def test_kernels_match_himalaya_and_sklearn(data, kernel, params, same):
    X, _, X_new = data
    A, B = (X, None) if same else (X_new, X)
    ours = pairwise_kernels(A, B, kernel, **params)
    ref = himalaya_kernels.pairwise_kernels(A, B, metric=kernel, **params)
    assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    sk = sk_pairwise_kernels(A, B, metric=kernel, **params)
    assert_allclose(ours, sk, rtol=1e-12, atol=1e-12)


def test_kernel_of_zero_rows_and_labels(rng):
    X = rng.standard_normal((5, 3))
    X[2] = 0.0
    # cosine: a zero row has norm 1 (scikit-learn's normalize), so its kernel row is 0.
    assert_allclose(pairwise_kernels(X, kernel="cosine"), sk_pairwise_kernels(X, metric="cosine"))
    da = xr.DataArray(X, dims=("stimulus", "unit"), coords={"stimulus": list("abcde")})
    K = pairwise_kernels(da, kernel="rbf", gamma=0.5)
    assert K.dims == ("stimulus_a", "stimulus_b")
    assert list(K.stimulus_b.values) == list("abcde")
    assert_allclose(K.values, sk_pairwise_kernels(X, metric="rbf", gamma=0.5), rtol=1e-12)


def test_kernel_float32_matches_float64(data):
    X, _, _ = data
    k32 = pairwise_kernels(X, kernel="rbf", dtype="float32")
    assert k32.dtype == np.float32
    assert_allclose(k32, pairwise_kernels(X, kernel="rbf"), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- KernelRidgeCV


@pytest.mark.parametrize(("kernel", "params"), CASES)
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_kernel_ridge_cv_matches_himalaya(data, kernel, params, fit_intercept):
    X, Y, X_new = data
    if fit_intercept:
        X, Y, X_new = X + 1.0, Y + 10.0, X_new + 1.0
    ref = _himalaya_cv(X, Y, kernel, params, fit_intercept)
    ours = KernelRidgeCV(
        ALPHAS,
        kernel=kernel,
        kernel_params=params,
        cv=KFold(5),
        fit_intercept=fit_intercept,
        scoring="neg_mse",
    ).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    scale = np.abs(ref.dual_coef_).max()
    assert_allclose(ours.dual_coef_, ref.dual_coef_, rtol=1e-8, atol=1e-10 * scale)
    if fit_intercept:
        assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-8, atol=1e-10)
    assert_allclose(ours.cv_scores_, _unsloped(ref), rtol=1e-10, atol=1e-12)
    assert_allclose(ours.score(X_new, Y[:7]), ref.score(X_new, Y[:7]), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("criterion", ["neg_mse", "r2", "pearson"])
@pytest.mark.parametrize("local_alpha", [True, False])
def test_kernel_ridge_cv_criteria_and_shared_alpha(data, criterion, local_alpha):
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
    assert_allclose(ours.cv_scores_, _unsloped(ref), rtol=1e-9, atol=1e-11)
    assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-8, atol=1e-10)


def test_sigmoid_negative_eigenvalues_ban_small_alphas(data):
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
    ours = KernelRidgeCV(
        alphas, kernel="sigmoid", kernel_params=params, cv=KFold(5), fit_intercept=False
    ).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-8, atol=1e-10)
    path = ours.results_["cv_path"].values
    assert (path[0] < -1e4).all()  # the smallest alpha is banned in every fold


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_linear_kernel_equals_ridge_cv(data, fit_intercept):
    # himalaya's test_kernel_ridge_cv_vs_ridge_cv, with brainalign's RidgeCV as reference.
    X, Y, X_new = data
    if fit_intercept:
        X, Y, X_new = X + 1.0, Y + 10.0, X_new + 1.0
    alphas = np.logspace(-2, 3, 21)
    ours = KernelRidgeCV(alphas, fit_intercept=fit_intercept).fit(X, Y)
    ref = RidgeCV(alphas, fit_intercept=fit_intercept).fit(X, Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_)
    assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-8, atol=1e-10)
    assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-8, atol=1e-10)


def test_precomputed_equals_linear_and_callable_equals_rbf(data):
    X, Y, X_new = data
    lin = KernelRidgeCV(ALPHAS).fit(X, Y)
    pre = KernelRidgeCV(ALPHAS, kernel="precomputed").fit(X @ X.T, Y)
    assert_allclose(pre.dual_coef_, lin.dual_coef_, rtol=1e-10, atol=1e-14)
    assert_allclose(pre.predict(X_new @ X.T), lin.predict(X_new), rtol=1e-10, atol=1e-12)

    def rbf(a, b, gamma):
        return torch.exp(-gamma * torch.cdist(a, b) ** 2)

    call = KernelRidgeCV(ALPHAS, kernel=rbf, kernel_params={"gamma": 0.01}).fit(X, Y)
    named = KernelRidgeCV(ALPHAS, kernel="rbf", kernel_params={"gamma": 0.01}).fit(X, Y)
    assert_allclose(call.predict(X_new), named.predict(X_new), rtol=1e-8, atol=1e-10)


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
