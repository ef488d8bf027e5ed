"""MultipleKernelRidgeCV (random search) against himalaya's, the reference (test-only)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.metrics.pairwise import pairwise_kernels as sk_pairwise_kernels
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline

from brainalign.encoding import BandedRidgeCV, MultipleKernelRidgeCV

himalaya_kernel = pytest.importorskip("himalaya.kernel_ridge")
himalaya_scoring = pytest.importorskip("himalaya.scoring")

# himalaya's own random-search cases (kernel_ridge/tests/test_random_search_kernel.py,
# _create_dataset): 80 samples, bands of 100 and 200 features, linear kernels, 4 targets
# (noise-free sums of the bands), 3 random candidates, alphas logspace(-3, 5, 9), cv=10.
N = 80
ALPHAS = np.logspace(-3, 5, 9)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((N, p)) for p in (100, 200)]
    Y = sum(x @ rng.standard_normal((x.shape[1], 4)) for x in Xs)
    Y = Y + rng.standard_normal(Y.shape) * np.array([0.0, 5.0, 20.0, 60.0])  # varied targets
    gammas = rng.random((3, 2))
    gammas /= gammas.sum(1)[:, None]
    new = [rng.standard_normal((9, x.shape[1])) for x in Xs]
    return Xs, Y, gammas, new


def _err32(kernel_err32, Ks, deltas, *, centre, cv, d_kernels=None):
    """Float32 relative error of the fit: the worst target's unit-penalty kernel ridge.

    Each target solves ``(K_w + I) dual = y`` with ``K_w = Σ_k exp(deltas_k) K_k``: its
    error is ``eps32·cond(K_w + I)`` plus the kernels' own float32 error (``d_kernels``, the
    entrywise errors per kernel, weighted alike) over ``min(λ + 1)`` (conftest.kernel_err32),
    factor 10 for the products and the data's rounding.
    """
    Ks, w = np.asarray(Ks, float), np.exp(np.asarray(deltas, float))
    dk = np.zeros_like(Ks) if d_kernels is None else np.asarray(d_kernels, float)
    return 10 * max(
        kernel_err32(
            np.tensordot(w[:, j], Ks, 1),
            1.0,
            centre=centre,
            cv=cv,
            d_entries=np.tensordot(w[:, j], dk, 1),
        )[0]
        for j in range(w.shape[1])
    )


def _pred_err(err, K_new, deltas, dual, dk_new=0.0):
    """Bound on a prediction's error: ``Σ_k exp(deltas_k) (err·|K_new_k| + dK_new_k) |dual|``."""
    w = np.exp(np.asarray(deltas, float))
    K_abs = err * np.abs(K_new) + dk_new
    return np.einsum("kt,knm,mt->nt", w, K_abs, np.abs(dual)).max()


def _himalaya(kernels, gammas_or_n, fit_intercept, local_alpha=True, cv=10, **kw):
    return himalaya_kernel.MultipleKernelRidgeCV(
        kernels=kernels,
        solver="random_search",
        solver_params=dict(
            n_iter=gammas_or_n,
            alphas=ALPHAS,
            progress_bar=False,
            local_alpha=local_alpha,
            **kw.pop("solver_params", {}),
        ),
        fit_intercept=fit_intercept,
        cv=KFold(cv),
        **kw,
    )


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("local_alpha", [True, False])
def test_precomputed_matches_himalaya(data, fit_intercept, local_alpha, tol, kernel_err32):
    Xs, Y, gammas, new = data
    if fit_intercept:
        Y = Y + 10.0
    Ks = np.stack([x @ x.T for x in Xs])
    ref = _himalaya("precomputed", gammas, fit_intercept, local_alpha).fit(Ks, Y)
    ours = MultipleKernelRidgeCV(
        "precomputed",
        alphas=ALPHAS,
        n_iter=gammas,
        cv=KFold(10),
        fit_intercept=fit_intercept,
        local_alpha=local_alpha,
        scoring="neg_mse",
    ).fit(Ks, Y)
    assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-12)
    assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-12)
    # float32: the kernels are rounded once; the fit at the selected weights errs by
    # _err32 (dual coefficients relative to the largest, predictions by _pred_err)
    err = _err32(kernel_err32, Ks, ref.deltas_, centre=fit_intercept, cv=KFold(10))
    scale = np.abs(ref.dual_coef_).max()
    assert_allclose(
        ours.dual_coef_,
        ref.dual_coef_,
        rtol=tol(float64=1e-7, float32=0),
        atol=tol(float64=1e-9, float32=err) * scale,
    )
    K_new = np.stack([a @ b.T for a, b in zip(new, Xs, strict=True)])
    ref_pred = ref.predict(K_new)
    assert_allclose(
        ours.predict(K_new),
        ref_pred,
        atol=tol(
            float64=1e-8 * np.abs(ref_pred).max(),
            float32=_pred_err(err, K_new, ref.deltas_, ref.dual_coef_),
        ),
    )
    # himalaya's cv_scores_ add 1e-10·log(alpha) (at most 1.2e-9 here) to the fold means.
    # float32: neg-MSE of every candidate, including ill-conditioned ones (the worst
    # candidate and alpha: eps32·cond over all of them, factor 10)
    w_all = np.log(gammas[:, :, None] / ALPHAS[None, None, :]).transpose(1, 0, 2)
    err_all = _err32(kernel_err32, Ks, w_all.reshape(2, -1), centre=fit_intercept, cv=KFold(10))
    assert_allclose(
        ours.candidate_scores_,
        ref.cv_scores_,
        rtol=tol(float64=1e-9, float32=err_all),
        atol=tol(float64=2e-9, float32=0),
    )
    if not local_alpha:
        assert np.unique(ours.best_alphas_).size == 1
        assert np.allclose(ours.kernel_weights_, ours.kernel_weights_[:, :1])


@pytest.mark.parametrize("criterion", ["r2", "pearson"])
def test_score_functions_match_himalaya(data, criterion, tol, kernel_err32):
    Xs, Y, gammas, new = data
    Ks = np.stack([x @ x.T for x in Xs])
    func = {"r2": himalaya_scoring.r2_score, "pearson": himalaya_scoring.correlation_score}
    ref = _himalaya(
        "precomputed", gammas, True, solver_params={"score_func": func[criterion]}
    ).fit(Ks, Y)
    ours = MultipleKernelRidgeCV(
        "precomputed", alphas=ALPHAS, n_iter=gammas, cv=KFold(10), criterion=criterion
    ).fit(Ks, Y)
    assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-12)
    K_new = np.stack([a @ b.T for a, b in zip(new, Xs, strict=True)])
    ref_pred = ref.predict(K_new)
    # float32: the fit's error at the selected weights (_err32, _pred_err)
    err = _err32(kernel_err32, Ks, ref.deltas_, centre=True, cv=KFold(10))
    assert_allclose(
        ours.predict(K_new),
        ref_pred,
        atol=tol(
            float64=1e-8 * np.abs(ref_pred).max(),
            float32=_pred_err(err, K_new, ref.deltas_, ref.dual_coef_),
        ),
    )


def test_labeled_bands_match_column_kernelizer_pipeline(
    data, tol, kernel_err32, kernel_entry_err32
):
    # Banded model in kernel form from labeled features: one kernel per band, the
    # candidates drawn from the same seed (himalaya's generate_dirichlet_samples).
    Xs, Y, _, new = data
    Xa, Xb = Xs[0][:, :20], Xs[1][:, :30]
    X = np.concatenate([Xa, Xb], axis=1)
    ck = himalaya_kernel.ColumnKernelizer(
        [
            ("low", himalaya_kernel.Kernelizer(kernel="rbf"), slice(0, 20)),
            (
                "high",
                himalaya_kernel.Kernelizer(kernel="poly", kernel_params={"degree": 2}),
                slice(20, 50),
            ),
        ]
    )
    ref = make_pipeline(ck, _himalaya("precomputed", 12, True, cv=5, random_state=0))
    ref.fit(X, Y)
    stim = np.array([f"s{i:02d}" for i in range(N)])
    order = np.random.default_rng(1).permutation(N)
    bands = {
        "low": xr.DataArray(
            Xa[order], dims=("stimulus", "unit"), coords={"stimulus": stim[order]}
        ),
        "high": xr.DataArray(Xb, dims=("stimulus", "unit"), coords={"stimulus": stim}),
    }
    Yd = xr.DataArray(Y, dims=("stimulus", "voxel"), coords={"stimulus": stim})
    ours = MultipleKernelRidgeCV(
        ["rbf", "poly"],
        [None, {"degree": 2}],
        alphas=ALPHAS,
        n_iter=12,
        random_state=0,
        cv=5,
        scoring="neg_mse",
    ).fit(bands, Yd)
    assert ours.kernel_names_ == ["low", "high"]
    assert_allclose(ours.deltas_, ref[-1].deltas_, rtol=1e-12)
    X_new = np.concatenate([new[0][:, :20], new[1][:, :30]], axis=1)
    ref_pred = ref.predict(X_new)
    pred = ours.predict({"low": X_new[:, :20], "high": X_new[:, 20:]})
    # float32: the fit at the selected weights (_err32 with each kernel's float32 error,
    # conftest.kernel_entry_err32) and the prediction kernels' error (factor 4)
    specs = [(Xa, X_new[:, :20], "rbf", {}), (Xb, X_new[:, 20:], "poly", {"degree": 2})]
    Ks = [sk_pairwise_kernels(a, metric=k, **kw) for a, _, k, kw in specs]
    d_kernels = [(kernel_entry_err32(a, None, k, **kw)) for a, _, k, kw in specs]
    K_new = np.stack([sk_pairwise_kernels(b, a, metric=k, **kw) for a, b, k, kw in specs])
    dk_new = np.stack([4 * kernel_entry_err32(b, a, k, **kw) for a, b, k, kw in specs])
    deltas, dual = ref[-1].deltas_, ref[-1].dual_coef_
    err = _err32(kernel_err32, Ks, deltas, centre=True, cv=5, d_kernels=d_kernels)
    assert_allclose(
        pred,
        ref_pred,
        atol=tol(
            float64=1e-8 * np.abs(ref_pred).max(),
            float32=_pred_err(err, K_new, deltas, dual, dk_new),
        ),
    )
    # The same bands as a 2-D X with bands= labels.
    same = clone(ours).fit(X, Y, bands=["low"] * 20 + ["high"] * 30)
    assert_allclose(same.predict(X_new, bands=["low"] * 20 + ["high"] * 30), pred, rtol=1e-10)
    assert ours.results_["kernel_weight"].dims == ("kernel", "voxel")


def test_kernels_of_all_features_match_himalaya(data, tol, kernel_err32, kernel_entry_err32):
    # himalaya's own form: a list of kernels, each on all the features.
    Xs, Y, _, new = data
    X = Xs[0][:, :40]
    kernels = ["linear", "polynomial", "rbf"]
    ref = himalaya_kernel.MultipleKernelRidgeCV(
        kernels=kernels,
        solver_params=dict(n_iter=10, alphas=ALPHAS, progress_bar=False),
        random_state=3,
    ).fit(X, Y)
    ours = MultipleKernelRidgeCV(
        kernels, alphas=ALPHAS, n_iter=10, random_state=3, cv=5, fit_intercept=False
    ).fit(X, Y)
    assert ours.kernel_names_ == kernels
    assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-12)
    X_new = new[0][:, :40]
    ref_pred = ref.predict(X_new)
    # float32: as in the test above, three kernels on the same features
    Ks = [sk_pairwise_kernels(X, metric=k) for k in kernels]
    d_kernels = [(kernel_entry_err32(X, None, k)) for k in kernels]
    K_new = np.stack([sk_pairwise_kernels(X_new, X, metric=k) for k in kernels])
    dk_new = np.stack([4 * kernel_entry_err32(X_new, X, k) for k in kernels])
    err = _err32(kernel_err32, Ks, ref.deltas_, centre=False, cv=5, d_kernels=d_kernels)
    assert_allclose(
        ours.predict(X_new),
        ref_pred,
        atol=tol(
            float64=1e-8 * np.abs(ref_pred).max(),
            float32=_pred_err(err, K_new, ref.deltas_, ref.dual_coef_, dk_new),
        ),
    )


def test_float32_close_to_float64(data):
    Xs, Y, gammas, new = data
    bands = {"a": Xs[0][:, :30], "b": Xs[1][:, :20]}
    kw = dict(alphas=ALPHAS, n_iter=gammas, cv=5)
    m64 = MultipleKernelRidgeCV(["rbf", "poly"], **kw).fit(bands, Y)
    m32 = MultipleKernelRidgeCV(["rbf", "poly"], dtype="float32", **kw).fit(bands, Y)
    assert_allclose(m32.deltas_, m64.deltas_)
    new_bands = {"a": new[0][:, :30], "b": new[1][:, :20]}
    p64 = m64.predict(new_bands)
    assert_allclose(m32.predict(new_bands), p64, atol=1e-4 * np.abs(p64).max())


def test_split_predictions_and_precomputed_equals_linear(
    data, tol, kernel_err32, kernel_entry_err32
):
    Xs, Y, gammas, new = data
    Ks = np.stack([x @ x.T for x in Xs])
    model = MultipleKernelRidgeCV("precomputed", alphas=ALPHAS, n_iter=gammas).fit(Ks, Y)
    K_new = np.stack([a @ b.T for a, b in zip(new, Xs, strict=True)])
    split = model.predict_split(K_new)
    assert split.shape == (2, 9, 4)
    assert_allclose(split.sum(0) + model.intercept_, model.predict(K_new), rtol=1e-12)
    # himalaya's test_multiple_kernel_ridge_cv_precomputed: linear on X = precomputed X Xᵀ.
    lin = MultipleKernelRidgeCV(["linear"], alphas=ALPHAS, n_iter=2, random_state=0)
    lin.fit(Xs[0], Y)
    pre = MultipleKernelRidgeCV("precomputed", alphas=ALPHAS, n_iter=2, random_state=0)
    pre.fit(Ks[:1], Y)
    # float32: the float32 linear kernel against the rounded float64 one: the fit's error
    # with the linear kernel's float32 error (_err32, _pred_err)
    d_kernels = [(kernel_entry_err32(Xs[0], None, "linear"))]
    err = _err32(kernel_err32, Ks[:1], pre.deltas_, centre=True, cv=5, d_kernels=d_kernels)
    dual = pre.dual_coef_
    assert_allclose(
        lin.dual_coef_,
        dual,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(dual).max()),
    )
    dk_new = 4 * kernel_entry_err32(new[0], Xs[0], "linear")[None]
    assert_allclose(
        lin.predict(new[0]),
        pre.predict(K_new[:1]),
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=0, float32=_pred_err(err, K_new[:1], pre.deltas_, dual, dk_new)),
    )


@pytest.mark.float32
def test_linear_bands_equal_banded_ridge(data, tol, kernel_err32, kernel_entry_err32):
    # Linear kernels per band = banded ridge (same candidates, same selection rule).
    Xs, Y, gammas, new = data
    bands = {"a": Xs[0][:, :30], "b": Xs[1][:, :20]}
    kern = MultipleKernelRidgeCV("linear", alphas=ALPHAS, n_iter=gammas, cv=5).fit(bands, Y)
    prim = BandedRidgeCV(ALPHAS, n_iter=gammas, cv=5, solver="primal").fit(bands, Y)
    assert_allclose(kern.kernel_weights_, prim.band_weights_)
    assert_allclose(kern.best_alphas_, prim.best_alphas_)
    new_bands = {"a": new[0][:, :30], "b": new[1][:, :20]}
    # float32: both at most the kernel form's error (_err32 with the linear kernels'
    # float32 error), predictions by _pred_err; R² (cv and split) by the predictions'
    # relative error in absolute terms
    pairs = [(bands[b], new_bands[b]) for b in ("a", "b")]
    Ks = [a @ a.T for a, _ in pairs]
    d_kernels = [(kernel_entry_err32(a, None, "linear")) for a, _ in pairs]
    K_new = np.stack([b @ a.T for a, b in pairs])
    dk_new = np.stack([4 * kernel_entry_err32(b, a, "linear") for a, b in pairs])
    err = _err32(kernel_err32, Ks, kern.deltas_, centre=True, cv=5, d_kernels=d_kernels)
    pred = prim.predict(new_bands)
    pred_err = _pred_err(err, K_new, kern.deltas_, kern.dual_coef_, dk_new)
    assert_allclose(
        kern.predict(new_bands),
        pred,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=1e-8, float32=pred_err),
    )
    r2_err = pred_err / np.abs(pred).max()
    assert_allclose(
        kern.cv_scores_,
        prim.cv_scores_,
        rtol=tol(float64=1e-8, float32=0),
        atol=tol(float64=0, float32=r2_err),
    )
    r2 = kern.score_split(new_bands, Y[:9])
    assert_allclose(
        r2.values,
        prim.score_split(new_bands, Y[:9]).values,
        rtol=tol(float64=1e-7, float32=0),
        atol=tol(float64=1e-9, float32=r2_err),
    )


def test_errors(data):
    Xs, Y, gammas, _ = data
    Ks = np.stack([x @ x.T for x in Xs])
    bands = {"a": Xs[0], "b": Xs[1]}
    with pytest.raises(ValueError, match=r"'solver' parameter.*got 'hyper_gradient'"):
        MultipleKernelRidgeCV(solver="hyper_gradient").fit(bands, Y)
    with pytest.raises(ValueError, match=r"one per band \(2 bands\); got 3 kernels"):
        MultipleKernelRidgeCV(["rbf", "rbf", "linear"]).fit(bands, Y)
    with pytest.raises(
        ValueError, match=r"kernels\[1\]' parameter.*got 'rfb'. Did you mean 'rbf'"
    ):
        MultipleKernelRidgeCV(["linear", "rfb"]).fit(bands, Y)
    with pytest.raises(ValueError, match=r"Unknown parameter 'degre' for kernels\[0\]='poly'"):
        MultipleKernelRidgeCV("poly", {"degre": 2}).fit(bands, Y)
    with pytest.raises(ValueError, match=r"kernels_params must be None, one dict .* \(2\); got"):
        MultipleKernelRidgeCV("rbf", [{}]).fit(bands, Y)
    with pytest.raises(TypeError, match=r"kernels must be a kernel name.*got int 5"):
        MultipleKernelRidgeCV(5).fit(Xs[0], Y)
    with pytest.raises(
        ValueError, match=r"\(n_kernels, n_samples, n_samples\).*got shape \(80, 100\)"
    ):
        MultipleKernelRidgeCV("precomputed").fit(Xs[0], Y)
    with pytest.raises(
        ValueError, match=r"shape \(n, 2\) \(one column per kernel\); got shape \(3, 3\)"
    ):
        MultipleKernelRidgeCV("precomputed", n_iter=np.ones((3, 3))).fit(Ks, Y)
    model = MultipleKernelRidgeCV("linear", alphas=ALPHAS, n_iter=gammas).fit(bands, Y)
    with pytest.raises(ValueError, match="fitted on feature bands; give X as the same bands"):
        model.predict(np.concatenate(Xs, axis=1))
    with pytest.raises(ValueError, match=r"in bands \['a'\], but .* in bands \['a', 'b'\]"):
        model.predict({"a": Xs[0]})
    pre = MultipleKernelRidgeCV("precomputed", alphas=ALPHAS, n_iter=gammas).fit(Ks, Y)
    with pytest.raises(ValueError, match=r"\(2, n_samples, 80\) stack .*got shape \(1, 80, 80\)"):
        pre.predict(Ks[:1])
