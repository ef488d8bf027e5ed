"""Permutation nulls and out-of-fold predictions of the cross-validated ridge."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, LeaveOneGroupOut

from brainalign.encoding import (
    fdr_bh,
    permutation_indices,
    permutation_pvalues,
    permutation_test,
    ridge_cv,
)

ALPHAS = np.logspace(-1, 3, 5)


def _problem(rng, n=40, p=4, t=5):
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, t)) * np.linspace(0, 1, t) + rng.standard_normal((n, t))
    return X, Y


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("stimulus", {}), ("circular", {"runs": np.repeat([0, 1, 2, 3], 10)})],
)
def test_null_equals_refitting_each_permutation(rng, kind, extra, tol, ridge_err32):
    X, Y = _problem(rng)
    with pytest.warns(UserWarning, match=r"n_permutations >= 99 "):
        res = permutation_test(X, Y, ALPHAS, cv=5, n_permutations=6, kind=kind, seed=3, **extra)
    # Reference: the same permutations (same generator and seed), each refit from scratch.
    perms = permutation_indices(40, 6, kind=kind, seed=3, **extra)
    # float32: two float32 evaluations (all permutations batched against one) of the same
    # fits, each within the folds' eps32·cond (conftest.ridge_err32, factor 10); R² moves by
    # that in absolute terms
    err = 10 * ridge_err32(X, ALPHAS, cv=5).max()
    for k, perm in enumerate(perms):
        ref = ridge_cv(X, Y[perm], ALPHAS, cv=5)
        assert_allclose(
            res.null.values[k],
            ref.cv_score.values,
            rtol=tol(float64=1e-10, float32=0),
            atol=tol(float64=1e-12, float32=err),
        )
    observed = ridge_cv(X, Y, ALPHAS, cv=5).cv_score.values
    assert_allclose(
        res.cv_score.values,
        observed,
        rtol=tol(float64=1e-12, float32=0),
        atol=tol(float64=0, float32=err),
    )
    assert_allclose(res.p_value.values, permutation_pvalues(observed, res.null.values))
    assert_allclose(res.p_fdr.values, fdr_bh(res.p_value.values)[0])


def test_signal_is_detected_and_noise_is_not(rng):
    X = rng.standard_normal((60, 3))
    Y = np.c_[X @ [1.0, -1.0, 0.5], rng.standard_normal((60, 20))]
    # 21 targets at fdr_alpha 0.05 need 419 permutations for BH to reject one target alone
    with pytest.warns(UserWarning, match=r"m=21 targets.*n_permutations >= 419"):
        res = permutation_test(X, Y, ALPHAS, cv=5, n_permutations=199, kind="stimulus", seed=0)
    assert res.p_value.values[0] == pytest.approx(1 / 200)
    assert res.p_fwe.values[0] < 0.05
    assert not res.significant_fdr.values[1:].any()
    assert res.null.dims == ("permutation", "target_0")


@pytest.mark.float32
def test_out_of_fold_predictions_match_sklearn(rng, tol, ridge_err32):
    X, Y = _problem(rng, n=45)
    res = ridge_cv(X, Y, ALPHAS, cv=KFold(5), return_predictions=True)
    expected = np.empty_like(Y)
    for train, test in KFold(5).split(X):
        for j, a in enumerate(res.best_alpha.values):
            expected[test, j] = Ridge(alpha=a).fit(X[train], Y[train, j]).predict(X[test])
    # float32: each fold's fit at the selected alphas errs by eps32·cond (conftest.
    # ridge_err32, factor 10), relative to the largest prediction
    err = 10 * ridge_err32(X, res.best_alpha.values, cv=KFold(5)).max()
    kw = dict(
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(expected).max()),
    )
    assert_allclose(res.prediction.values, expected, **kw)
    dual = ridge_cv(X, Y, ALPHAS, cv=KFold(5), return_predictions=True, solver="dual")
    assert_allclose(dual.prediction.values, expected, **kw)


def test_inference_errors(rng):
    X, Y = _problem(rng)
    with pytest.raises(ValueError, match=r"kind.*'stimulus'.*got 'blocks'.*Did you mean"):
        permutation_test(X, Y, kind="blocks")
    with pytest.raises(ValueError, match=r"n_permutations must be in the range \[1, inf\), got 0"):
        permutation_test(X, Y, n_permutations=0)
    overlapping = [(np.arange(20, 40), np.arange(0, 25)), (np.arange(0, 20), np.arange(20, 40))]
    with pytest.raises(ValueError, match=r"tests 0 sample\(s\) never and 5 more than once"):
        ridge_cv(X, Y, cv=overlapping, return_predictions=True)
    runs = np.repeat([0, 1], 20)
    with pytest.warns(UserWarning, match=r"smallest p-value is 0.25"):
        res = permutation_test(
            X, Y, cv=LeaveOneGroupOut(), groups=runs, n_permutations=3, kind="stimulus", seed=0
        )
    assert res.null.shape == (3, 5)


# ------------------------------------------------------------------------------------------
# the default kind (issue 17 item 5): valid for the data given, or refused
# ------------------------------------------------------------------------------------------


def test_default_kind_refuses_unlabeled_samples_without_runs(rng):
    X, Y = _problem(rng, t=1)
    with pytest.raises(
        ValueError,
        match=r"kind must be given \(got kind=None for 40 samples.*kind='stimulus'.*"
        r"runs=.*kind='circular'.*kind='block'",
    ):
        permutation_test(X, Y, ALPHAS, cv=4, n_permutations=19)


def test_default_kind_is_circular_for_time_series(rng):
    X, Y = _problem(rng, t=1)
    runs = np.repeat([0, 1], 20)
    kw = {"cv": LeaveOneGroupOut(), "groups": runs, "n_permutations": 19, "seed": 1}
    res = permutation_test(X, Y, ALPHAS, runs=runs, **kw)
    ref = permutation_test(X, Y, ALPHAS, runs=runs, kind="circular", **kw)
    assert res.attrs["kind"] == "circular"
    assert_allclose(res.null.values, ref.null.values)
    # a 'time' sample dim marks a time series too (groups are then the runs)
    Xt = xr.DataArray(X, dims=("time", "feature"))
    Yt = xr.DataArray(Y, dims=("time", "voxel"))
    res_t = permutation_test(Xt, Yt, ALPHAS, **kw)
    assert res_t.attrs["kind"] == "circular"
    assert_allclose(res_t.null.values, ref.null.values)
    with pytest.warns(UserWarning, match=r"kind='stimulus' shuffles the samples of a time"):
        permutation_test(Xt, Yt, ALPHAS, kind="stimulus", **kw)


def test_default_kind_is_stimulus_for_stimulus_labeled_samples(rng):
    X, Y = _problem(rng, t=1)
    ids = [f"s{i}" for i in range(40)]
    Xs = xr.DataArray(X, dims=("stimulus", "feature"), coords={"stimulus": ids})
    Ys = xr.DataArray(Y, dims=("stimulus", "voxel"), coords={"stimulus": ids})
    res = permutation_test(Xs, Ys, ALPHAS, cv=4, n_permutations=19, seed=2)
    ref = permutation_test(X, Y, ALPHAS, cv=4, n_permutations=19, seed=2, kind="stimulus")
    assert res.attrs["kind"] == "stimulus"
    assert_allclose(res.null.values, ref.null.values)


@pytest.mark.parametrize(("m", "n_perm", "warns"), [(10, 198, True), (10, 199, False)])
def test_bh_resolution_warning_gives_the_minimum_n_permutations(rng, m, n_perm, warns):
    # BH rejects one target alone iff 1 / (P + 1) <= alpha / m, i.e. P >= m / alpha - 1 = 199
    X, Y = _problem(rng, n=20, t=m)
    kw = {"cv": 4, "n_permutations": n_perm, "kind": "stimulus", "seed": 0}
    if warns:
        with pytest.warns(
            UserWarning,
            match=r"n_permutations=198 .*m=10 targets.*at least 2 of the m=10 "
            r"targets.*n_permutations >= 199",
        ):
            permutation_test(X, Y, [1.0], **kw)
    else:
        permutation_test(X, Y, [1.0], **kw)


def test_bh_warning_says_never_when_no_count_of_targets_suffices(rng):
    # With P = 9 the smallest p is 0.1 > alpha: no number of targets makes BH reject.
    X, Y = _problem(rng, n=20, t=4)
    with pytest.warns(UserWarning, match=r"can never reject any of the m=4 targets"):
        permutation_test(X, Y, [1.0], cv=4, n_permutations=9, kind="stimulus", seed=0)


def test_fdr_alpha_none_skips_benjamini_hochberg_and_its_warning(rng):
    X, Y = _problem(rng, n=20, t=10)
    res = permutation_test(X, Y, [1.0], cv=4, n_permutations=19, kind="stimulus", fdr_alpha=None)
    assert "p_fdr" not in res and "significant_fdr" not in res
    assert res.p_fwe.shape == (10,)
    with pytest.raises(ValueError, match=r"fdr_alpha must be in the range \(0, 1\), got 1.5"):
        permutation_test(X, Y, [1.0], cv=4, kind="stimulus", fdr_alpha=1.5)
