"""Permutation nulls and out-of-fold predictions of the cross-validated ridge."""

from __future__ import annotations

import numpy as np
import pytest
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
def test_null_equals_refitting_each_permutation(rng, kind, extra):
    X, Y = _problem(rng)
    res = permutation_test(X, Y, ALPHAS, cv=5, n_permutations=6, kind=kind, seed=3, **extra)
    # Reference: the same permutations (same generator and seed), each refit from scratch.
    perms = permutation_indices(40, 6, kind=kind, seed=3, **extra)
    for k, perm in enumerate(perms):
        ref = ridge_cv(X, Y[perm], ALPHAS, cv=5)
        assert_allclose(res.null.values[k], ref.cv_score.values, rtol=1e-10, atol=1e-12)
    observed = ridge_cv(X, Y, ALPHAS, cv=5).cv_score.values
    assert_allclose(res.cv_score.values, observed, rtol=1e-12)
    assert_allclose(res.p_value.values, permutation_pvalues(observed, res.null.values))
    assert_allclose(res.p_fdr.values, fdr_bh(res.p_value.values)[0])


def test_signal_is_detected_and_noise_is_not(rng):
    X = rng.standard_normal((60, 3))
    Y = np.c_[X @ [1.0, -1.0, 0.5], rng.standard_normal((60, 20))]
    res = permutation_test(X, Y, ALPHAS, cv=5, n_permutations=199, seed=0)
    assert res.p_value.values[0] == pytest.approx(1 / 200)
    assert res.p_fwe.values[0] < 0.05
    assert not res.significant_fdr.values[1:].any()
    assert res.null.dims == ("permutation", "target_0")


def test_out_of_fold_predictions_match_sklearn(rng):
    X, Y = _problem(rng, n=45)
    res = ridge_cv(X, Y, ALPHAS, cv=KFold(5), return_predictions=True)
    expected = np.empty_like(Y)
    for train, test in KFold(5).split(X):
        for j, a in enumerate(res.best_alpha.values):
            expected[test, j] = Ridge(alpha=a).fit(X[train], Y[train, j]).predict(X[test])
    assert_allclose(res.prediction.values, expected, rtol=1e-9, atol=1e-12)
    dual = ridge_cv(X, Y, ALPHAS, cv=KFold(5), return_predictions=True, solver="dual")
    assert_allclose(dual.prediction.values, expected, rtol=1e-9, atol=1e-12)


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
    res = permutation_test(X, Y, cv=LeaveOneGroupOut(), groups=runs, n_permutations=3, seed=0)
    assert res.null.shape == (3, 5)
