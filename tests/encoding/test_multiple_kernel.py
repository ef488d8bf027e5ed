"""MultipleKernelRidgeCV (random search) against himalaya's, the reference (test-only)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.base import clone
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
def test_precomputed_matches_himalaya(data, fit_intercept, local_alpha):
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
    scale = np.abs(ref.dual_coef_).max()
    assert_allclose(ours.dual_coef_, ref.dual_coef_, rtol=1e-7, atol=1e-9 * scale)
    K_new = np.stack([a @ b.T for a, b in zip(new, Xs, strict=True)])
    ref_pred = ref.predict(K_new)
    assert_allclose(ours.predict(K_new), ref_pred, atol=1e-8 * np.abs(ref_pred).max())
    # himalaya's cv_scores_ add 1e-10·log(alpha) (at most 1.2e-9 here) to the fold means.
    assert_allclose(ours.candidate_scores_, ref.cv_scores_, rtol=1e-9, atol=2e-9)
    if not local_alpha:
        assert np.unique(ours.best_alphas_).size == 1
        assert np.allclose(ours.kernel_weights_, ours.kernel_weights_[:, :1])


@pytest.mark.parametrize("criterion", ["r2", "pearson"])
def test_score_functions_match_himalaya(data, criterion):
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
    assert_allclose(ours.predict(K_new), ref_pred, atol=1e-8 * np.abs(ref_pred).max())


def test_labeled_bands_match_column_kernelizer_pipeline(data):
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
    assert_allclose(pred, ref_pred, atol=1e-8 * np.abs(ref_pred).max())
    # The same bands as a 2-D X with bands= labels.
    same = clone(ours).fit(X, Y, bands=["low"] * 20 + ["high"] * 30)
    assert_allclose(same.predict(X_new, bands=["low"] * 20 + ["high"] * 30), pred, rtol=1e-10)
    assert ours.results_["kernel_weight"].dims == ("kernel", "voxel")


def test_kernels_of_all_features_match_himalaya(data):
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
    ref_pred = ref.predict(new[0][:, :40])
    assert_allclose(ours.predict(new[0][:, :40]), ref_pred, atol=1e-8 * np.abs(ref_pred).max())


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


def test_split_predictions_and_precomputed_equals_linear(data):
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
    assert_allclose(lin.dual_coef_, pre.dual_coef_, rtol=1e-9, atol=1e-12)
    assert_allclose(lin.predict(new[0]), pre.predict(K_new[:1]), rtol=1e-9)


def test_linear_bands_equal_banded_ridge(data):
    # Linear kernels per band = banded ridge (same candidates, same selection rule).
    Xs, Y, gammas, new = data
    bands = {"a": Xs[0][:, :30], "b": Xs[1][:, :20]}
    kern = MultipleKernelRidgeCV("linear", alphas=ALPHAS, n_iter=gammas, cv=5).fit(bands, Y)
    prim = BandedRidgeCV(ALPHAS, n_iter=gammas, cv=5, solver="primal").fit(bands, Y)
    assert_allclose(kern.kernel_weights_, prim.band_weights_)
    assert_allclose(kern.best_alphas_, prim.best_alphas_)
    new_bands = {"a": new[0][:, :30], "b": new[1][:, :20]}
    assert_allclose(kern.predict(new_bands), prim.predict(new_bands), rtol=1e-8, atol=1e-8)
    assert_allclose(kern.cv_scores_, prim.cv_scores_, rtol=1e-8)
    r2 = kern.score_split(new_bands, Y[:9])
    assert_allclose(r2.values, prim.score_split(new_bands, Y[:9]).values, rtol=1e-7, atol=1e-9)


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
