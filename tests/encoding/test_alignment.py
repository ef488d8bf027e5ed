"""Labeled inputs are matched by label, never by position (issue 17, item 2).

Each test gives the same data twice: once in matching order, once with one input's labels
in another order; the results must be equal. Different label sets are refused with an error
that names the labels.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.model_selection import KFold

from brainalign._checks import StimulusAlignmentError
from brainalign.encoding import (
    TRF,
    BandedRidgeCV,
    RidgeCV,
    bootstrap_ci,
    ncsnr,
    permutation_test,
    ridge_cv,
)

ALPHAS = [0.1, 10.0, 1000.0]


def _labeled(rng, n=36, p=5, t=4):
    ids = np.array([f"s{i:02d}" for i in range(n)])
    X = xr.DataArray(
        rng.standard_normal((n, p)),
        dims=("stimulus", "feature"),
        coords={"stimulus": ids, "feature": [f"f{j}" for j in range(p)]},
    )
    Y = xr.DataArray(
        X.values @ rng.standard_normal((p, t)) + 2.0 + rng.standard_normal((n, t)),
        dims=("stimulus", "voxel"),
        coords={"stimulus": ids, "voxel": [f"v{j}" for j in range(t)]},
    )
    return X, Y


def _shuffled(da, rng, dim="stimulus"):
    return da.isel({dim: rng.permutation(da.sizes[dim])})


def test_ridgecv_fit_matches_by_stimulus_id(rng):
    X, Y = _labeled(rng)
    ref = RidgeCV(ALPHAS, cv=KFold(4)).fit(X, Y)
    ours = RidgeCV(ALPHAS, cv=KFold(4)).fit(_shuffled(X, rng), Y)
    assert_allclose(ours.best_alphas_, ref.best_alphas_)
    assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-12)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)
    res = ridge_cv(_shuffled(X, rng), Y, ALPHAS, cv=KFold(4), return_predictions=True)
    ref_res = ridge_cv(X, Y, ALPHAS, cv=KFold(4), return_predictions=True)
    assert_allclose(res.cv_score.values, ref_res.cv_score.values, rtol=1e-12)
    assert res.prediction["stimulus"].values.tolist() == Y["stimulus"].values.tolist()


def test_permutation_test_matches_by_stimulus_id(rng):
    X, Y = _labeled(rng, t=2)
    kw = {"cv": KFold(4), "n_permutations": 39, "seed": 0}
    ref = permutation_test(X, Y, ALPHAS, **kw)
    ours = permutation_test(_shuffled(X, rng), Y, ALPHAS, **kw)
    assert ours.attrs["kind"] == "stimulus"  # the default for stimulus-labeled samples
    assert_allclose(ours.null.values, ref.null.values, rtol=1e-12)
    assert_allclose(ours.p_value.values, ref.p_value.values)


def test_mismatched_stimulus_ids_are_named(rng):
    X, Y = _labeled(rng, n=12)
    X = X.assign_coords(stimulus=[*X.stimulus.values[:-1], "extra"])
    with pytest.raises(
        StimulusAlignmentError, match=r"X lacks 1 of Y's \('s11'\) and has 1 Y lacks \('extra'\)"
    ):
        RidgeCV(ALPHAS, cv=3).fit(X, Y)
    with pytest.raises(StimulusAlignmentError, match=r"'s11'.*'extra'"):
        permutation_test(X, Y, ALPHAS, cv=3, n_permutations=99, kind="stimulus")


def test_predict_and_score_match_by_label(rng):
    X, Y = _labeled(rng, n=50)
    train, test = slice(0, 36), slice(36, 50)
    model = RidgeCV(ALPHAS, cv=4).fit(X[train], Y[train])
    X_new, Y_new = X[test], Y[test]
    ref_pred = model.predict(X_new)
    ref_r2 = model.score(X_new, Y_new)
    # rows of X in another order: predictions follow X's labels, the score matches y by label
    Xs = _shuffled(X_new, rng)
    pred = model.predict(Xs)
    assert_allclose(pred.sel(stimulus=ref_pred.stimulus).values, ref_pred.values, rtol=1e-12)
    assert_allclose(model.score(Xs, Y_new), ref_r2, rtol=1e-12)
    # features in another order (matched to the fitted feature labels), targets too
    Xf = _shuffled(X_new, rng, "feature")
    assert_allclose(model.predict(Xf).values, ref_pred.values, rtol=1e-12)
    Yv = _shuffled(Y_new, rng, "voxel")
    assert_allclose(model.score(X_new, Yv), ref_r2, rtol=1e-12)
    with pytest.raises(StimulusAlignmentError, match=r"'voxel' labels seen at fit.*'v0'.*'w'"):
        model.score(X_new, Y_new.assign_coords(voxel=["w", "v1", "v2", "v3"]))
    with pytest.raises(StimulusAlignmentError, match=r"y lacks 1 of X's \('s36'\)"):
        model.score(X_new, Y_new.assign_coords(stimulus=["z", *Y_new.stimulus.values[1:]]))


def test_stimulus_features_expand_to_labeled_trials(rng):
    X, _ = _labeled(rng, n=10, p=3)
    trial_stim = rng.permutation(np.repeat(X.stimulus.values, 4))
    Y = xr.DataArray(
        rng.standard_normal((40, 2)),
        dims=("trial", "voxel"),
        coords={"stimulus": ("trial", trial_stim)},
    )
    ours = ridge_cv(X, Y, ALPHAS, cv=4)
    ref = ridge_cv(X.sel(stimulus=trial_stim).values, Y.values, ALPHAS, cv=4)
    assert_allclose(ours.cv_score.values, ref.cv_score.values, rtol=1e-12)
    with pytest.raises(StimulusAlignmentError, match=r"1 stimulus id\(s\) that X lacks.*'s09'"):
        ridge_cv(X.isel(stimulus=slice(0, 9)), Y, ALPHAS, cv=4)


def test_banded_bands_and_scores_match_by_label(rng):
    X, Y = _labeled(rng, n=40, p=6)
    a, b = X.isel(feature=slice(0, 3)), X.isel(feature=slice(3, 6))
    est = BandedRidgeCV(ALPHAS, n_iter=4, cv=KFold(4), random_state=0)
    ref = est.fit({"a": a, "b": b}, Y.values)
    ref_coef, ref_scores = ref.coef_.copy(), ref.cv_scores_.copy()
    ours = BandedRidgeCV(ALPHAS, n_iter=4, cv=KFold(4), random_state=0)
    ours.fit({"a": a, "b": _shuffled(b, rng)}, Y.values)  # Y unlabeled: bands follow band a
    assert_allclose(ours.coef_, ref_coef, rtol=1e-10)
    assert_allclose(ours.cv_scores_, ref_scores, rtol=1e-12)
    r2 = ours.score({"a": a, "b": b}, Y)
    assert_allclose(ours.score({"a": a, "b": _shuffled(b, rng)}, _shuffled(Y, rng)), r2)
    split = ours.score_split({"a": a, "b": b}, Y)
    assert_allclose(ours.score_split({"a": a, "b": b}, _shuffled(Y, rng)), split)
    with pytest.raises(StimulusAlignmentError, match=r"X\['b'\] and the first labeled band"):
        ours.fit({"a": a, "b": b.assign_coords(stimulus=[f"x{i}" for i in range(40)])}, Y.values)


def test_trf_matches_y_to_x_by_label(rng):
    n = 200
    times = np.arange(n) / 10.0
    x = xr.DataArray(rng.standard_normal((n, 1)), dims=("time", "feature"), coords={"time": times})
    y = xr.DataArray(
        2 * np.roll(x.values, 1, axis=0) + 0.1 * rng.standard_normal((n, 1)),
        dims=("time", "channel"),
        coords={"time": times},
    )
    ref = TRF(0.0, 0.2, 10.0, alpha=1.0).fit(x, y)
    ours = TRF(0.0, 0.2, 10.0, alpha=1.0).fit(x, _shuffled(y, rng, "time"))
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)
    assert_allclose(ours.score(x, _shuffled(y, rng, "time")), ref.score(x, y), rtol=1e-12)
    with pytest.raises(StimulusAlignmentError, match=r"'time' labels"):
        ours.fit(x, y.assign_coords(time=times + 0.05))


def test_bootstrap_ci_matches_predictions_by_label(rng):
    _, Y = _labeled(rng, n=30)
    pred = Y + rng.standard_normal(Y.shape)
    ref = bootstrap_ci(Y, pred, n_bootstraps=200, seed=0)
    ours = bootstrap_ci(Y, _shuffled(_shuffled(pred, rng), rng, "voxel"), n_bootstraps=200, seed=0)
    for r, o in zip(ref, ours, strict=True):
        assert_allclose(o.values, r.values, rtol=1e-12)
    # a transposed prediction (voxel first) is matched by dim name
    ours_t = bootstrap_ci(Y, pred.T, n_bootstraps=200, seed=0)
    assert_allclose(ours_t[0].values, ref[0].values, rtol=1e-12)
    with pytest.raises(StimulusAlignmentError, match=r"y_pred lacks 1 of y_true's \('s00'\)"):
        bootstrap_ci(Y, pred.assign_coords(stimulus=["q", *pred.stimulus.values[1:]]))


def test_ncsnr_of_trials_does_not_depend_on_trial_order(rng):
    stim = np.repeat([f"s{i}" for i in range(8)], 3)
    trials = xr.DataArray(
        rng.standard_normal((24, 5)), dims=("trial", "voxel"), coords={"stimulus": ("trial", stim)}
    )
    ref = ncsnr(trials)
    assert_allclose(ncsnr(_shuffled(trials, rng, "trial")).values, ref.values, rtol=1e-12)
