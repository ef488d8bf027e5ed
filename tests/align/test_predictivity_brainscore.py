"""``predictivity(semantics="brainscore")``: PLS where scikit-learn's NIPALS stops.

Reference: scikit-learn's ``PLSRegression(n_components, scale=False)`` with its defaults
(``tol=1e-6``, ``max_iter=500``), which is Brain-Score's ``pls_regression``, fitted in the test
on the same folds; the score is Pearson r per target on the held-out stimuli (scipy), median
over targets, mean over folds (Brain-Score's ``CrossRegressedCorrelation``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import KFold, ShuffleSplit

import brainalign as ba
from brainalign.align._predictivity import predictivity


def _brainscore_pls(x, y, folds, n_components):
    from sklearn.cross_decomposition import PLSRegression

    scores = []
    for train, test in folds:
        model = PLSRegression(n_components, scale=False).fit(x[train], y[train])
        pred = model.predict(x[test]).reshape(len(test), -1)
        scores.append([stats.pearsonr(pred[:, j], y[test, j])[0] for j in range(y.shape[1])])
    return np.array(scores)


def _data(rng, n, p, q):
    # weak, spread-out signal: NIPALS converges slowly, so its early stop shows
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=(p, q)) * 0.15 + rng.normal(size=(n, q))
    return x, y


def _reps(x, feature_dim):
    return ba.responses(x, [f"s{i:03d}" for i in range(len(x))], feature_dim=feature_dim)


@pytest.mark.parametrize(
    ("n", "n_components", "splitter"),
    [
        (60, 6, ShuffleSplit(10, train_size=0.9, random_state=1)),  # Brain-Score's splits
        (62, 12, KFold(5, shuffle=True, random_state=0)),  # unequal folds (padded)
    ],
)
def test_matches_sklearn_pls_with_its_default_tolerance(rng, tol, n, n_components, splitter):
    x, y = _data(rng, n, max(15, n_components + 5), 12)
    folds = list(splitter.split(x))
    ref = _brainscore_pls(x, y, folds, n_components)
    src, tgt = _reps(x, "unit"), _reps(y, "voxel")
    kw = {"regression": "pls", "n_components": n_components, "cv": splitter}
    got = predictivity(src, tgt, semantics="brainscore", aggregate=None, **kw)
    # float32: the power method's stopping test (|dw|^2 < 1e-6) is itself far above float32
    # rounding, but a step can stop one iteration apart: weights move by about sqrt(1e-6)
    atol = tol(float64=1e-8, float32=2e-3)
    np.testing.assert_allclose(got.values, ref.mean(0), atol=atol)
    med = predictivity(src, tgt, semantics="brainscore", **kw)
    np.testing.assert_allclose(float(med), np.median(ref, 1).mean(), atol=atol)
    assert med.attrs["semantics"] == "brainscore"


@pytest.mark.float64_only(reason="compares a 1e-6 early-stop effect with float64 parity")
def test_early_stop_is_what_separates_it_from_the_exact_fit(rng):
    # the two semantics differ here by more than the parity tolerance, so the test above
    # does check the early stop and not only PLS
    x, y = _data(rng, 60, 15, 12)
    split = ShuffleSplit(10, train_size=0.9, random_state=1)
    src, tgt = _reps(x, "unit"), _reps(y, "voxel")
    kw = {"regression": "pls", "n_components": 6, "cv": split, "aggregate": None}
    exact = predictivity(src, tgt, **kw)
    brainscore = predictivity(src, tgt, semantics="brainscore", **kw)
    assert np.abs(exact.values - brainscore.values).max() > 1e-6
    assert exact.attrs["semantics"] == "exact"


def test_single_target_stops_after_one_step(rng, tol):
    x, y = _data(rng, 40, 8, 1)
    split = KFold(4, shuffle=True, random_state=2)
    ref = _brainscore_pls(x, y, list(split.split(x)), 3)
    got = predictivity(
        _reps(x, "unit"),
        _reps(y, "voxel"),
        regression="pls",
        n_components=3,
        cv=split,
        semantics="brainscore",
    )
    np.testing.assert_allclose(float(got), ref.mean(), atol=tol(float64=1e-8, float32=1e-4))


def test_ols_is_unchanged_and_ridge_is_refused(rng):
    x, y = _data(rng, 40, 6, 3)
    src, tgt = _reps(x, "unit"), _reps(y, "voxel")
    a = predictivity(src, tgt, regression="ols", cv=4)
    b = predictivity(src, tgt, regression="ols", cv=4, semantics="brainscore")
    assert float(a) == float(b)
    with pytest.raises(ValueError, match="semantics='brainscore' applies to regression='pls'"):
        predictivity(src, tgt, regression="ridge_cv", semantics="brainscore")
    with pytest.raises(ValueError, match="semantics"):
        predictivity(src, tgt, regression="pls", semantics="sklearn")
