"""TRF against mne.decoding.ReceptiveField / TimeDelayingRidge and closed-form references."""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from numpy.testing import assert_allclose
from sklearn.base import clone

from brainalign.encoding._delays import delay, flatten_targets, trf_lags
from brainalign.encoding._trf import TRF, _penalised_ridge, _whitening, laplacian_penalty

mne = pytest.importorskip("mne")
from mne.decoding import ReceptiveField, TimeDelayingRidge  # noqa: E402
from mne.decoding.time_delaying_ridge import _compute_reg_neighbors  # noqa: E402

SFREQ = 128.0
RTOL = 1e-6  # float64, relative to the largest coefficient


@pytest.fixture(scope="module")
def eeg():
    """spkit's 16 s of real 14-channel Emotiv EEG at 128 Hz (DATA.md), first 8 s, z-scored."""
    spec = importlib.util.find_spec("spkit")
    if spec is None:
        pytest.fail("spkit is not installed: pip install -e '.[test]'")
    path = Path(spec.submodule_search_locations[0]) / "data" / "files" / "EEG16SecData.pkl"
    with open(path, "rb") as f:
        values, _ = pickle.load(f)
    x = np.asarray(values, dtype=np.float64)[:1024]
    return (x - x.mean(0)) / x.std(0)


EPS32 = float(np.finfo(np.float32).eps)


def _close(a, b, rtol=RTOL):
    assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max())


def _err32(D, Y, coef, alpha):
    """Float32 error of the ridge ``coef`` (n_out, p, n_delays) on the lagged design ``D``.

    Least-squares perturbation theory: a float32 solve errs by eps32·(κ + κ²·‖r‖ / ‖D w‖)
    relative, with ``κ² = (s_max² + alpha) / (s_min² + alpha)`` and ``r`` the residual (it
    dominates a poor fit, as EEG channels predicting others are), factor 10 for the products
    and the data's rounding. Returns that relative error and the entrywise bound on the
    predictions ``D w`` it implies (``err · |D| |w|``).
    """
    w = coef.reshape(coef.shape[0], -1).T
    s = np.linalg.svd(D, compute_uv=False)
    kappa2 = (s[0] ** 2 + alpha) / (s[-1] ** 2 + alpha)
    fit = D @ w
    ratio = np.linalg.norm(Y - fit) / np.linalg.norm(fit)
    err = 10 * EPS32 * (np.sqrt(kappa2) + kappa2 * ratio)
    return err, err * (np.abs(D) @ np.abs(w))


@pytest.mark.float32
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_trf_matches_mne_receptive_field_on_real_eeg(eeg, fit_intercept, tol, lagged):
    X, Y = eeg[:, :2] + 0.5, eeg[:, 2:6]  # two channels "drive" four others; offset X mean
    tmin, tmax, alpha = -0.05, 0.2, 30.0
    with mne.utils.use_log_level("error"):
        rf = ReceptiveField(tmin, tmax, SFREQ, estimator=alpha, fit_intercept=fit_intercept)
        rf.fit(X, Y)
    trf = TRF(tmin, tmax, SFREQ, alpha=alpha, fit_intercept=fit_intercept).fit(X, Y)
    assert np.array_equal(trf.delays_, rf.delays_)
    assert trf.coef_.shape == rf.coef_.shape == (4, 2, 33)
    # float32: the ridge on the lagged design (MNE centres X first) errs by _err32; the
    # intercept mean(y) - mean(x)·Σ_lags coef by that times |mean(x)|₁ · n_lags; R² by
    # 2·‖Δpred‖ / ‖y - mean(y)‖ (ΔSSE <= 2‖r‖‖Δpred‖, ‖r‖ <= ‖y - mean(y)‖)
    D = lagged(X - X.mean(0) if fit_intercept else X, rf.delays_)
    yc = Y - Y.mean(0) if fit_intercept else Y
    err, d_pred = _err32(D, yc, rf.coef_, alpha)
    scale = np.abs(rf.coef_).max()
    _close(trf.coef_, rf.coef_, rtol=tol(float64=RTOL, float32=err))
    icpt = err * scale * np.abs(X.mean(0)).sum() * len(rf.delays_)
    assert_allclose(
        trf.intercept_, rf.estimator_.intercept_, rtol=0, atol=tol(float64=1e-8, float32=icpt)
    )
    valid = rf.valid_samples_
    pred = rf.predict(X)[valid]
    assert_allclose(
        trf.predict(X)[valid],
        pred,
        rtol=0,
        atol=tol(float64=RTOL * np.abs(pred).max(), float32=d_pred.max() + icpt),
    )
    r2_err = 2 * np.linalg.norm(d_pred, axis=0) / np.linalg.norm(Y - Y.mean(0), axis=0)
    assert_allclose(
        trf.score(X, Y),
        rf.score(X, Y),
        rtol=tol(float64=1e-6, float32=0),
        atol=tol(float64=0, float32=r2_err.max()),
    )


@pytest.mark.float32
def test_trf_epoched_matches_mne(eeg, tol, lagged):
    # 4 epochs of 2 s: brainalign takes (n_epochs, n_times, n_features), MNE (n_times, n_epochs, .)
    X = eeg[:, [0, 5, 9]].reshape(4, 256, 3)
    Y = eeg[:, [3, 12]].reshape(4, 256, 2)
    tmin, tmax, alpha = 0.0, 0.1, 5.0
    with mne.utils.use_log_level("error"):
        rf = ReceptiveField(tmin, tmax, SFREQ, estimator=alpha).fit(
            X.transpose(1, 0, 2), Y.transpose(1, 0, 2)
        )
        y_mne = rf.predict(X.transpose(1, 0, 2)).transpose(1, 0, 2)
        score_mne = rf.score(X.transpose(1, 0, 2), Y.transpose(1, 0, 2))
    trf = TRF(tmin, tmax, SFREQ, alpha=alpha).fit(X, Y)
    # float32: as above, on the epochs' lagged designs stacked (X centred over all samples)
    mu = X.reshape(-1, 3).mean(0)
    D = np.concatenate([lagged(x - mu, rf.delays_) for x in X])
    yc = Y.reshape(-1, 2) - Y.reshape(-1, 2).mean(0)
    err, d_pred = _err32(D, yc, rf.coef_, alpha)
    icpt = err * np.abs(rf.coef_).max() * np.abs(mu).sum() * len(rf.delays_)
    _close(trf.coef_, rf.coef_, rtol=tol(float64=RTOL, float32=err))
    pred = trf.predict(X)
    assert pred.shape == (4, 256, 2)
    ref = y_mne[:, rf.valid_samples_]
    assert_allclose(
        pred[:, rf.valid_samples_],
        ref,
        rtol=0,
        atol=tol(float64=RTOL * np.abs(ref).max(), float32=d_pred.max() + icpt),
    )
    r2_err = 2 * np.linalg.norm(d_pred, axis=0) / np.linalg.norm(yc, axis=0)
    assert_allclose(
        trf.score(X, Y),
        score_mne,
        rtol=tol(float64=1e-6, float32=0),
        atol=tol(float64=0, float32=r2_err.max()),
    )
    # the same recording given as one continuous array with runs = epochs
    cont = TRF(tmin, tmax, SFREQ, alpha=alpha).fit(
        X.reshape(-1, 3), Y.reshape(-1, 2), runs=np.repeat(np.arange(4), 256)
    )
    assert_allclose(cont.coef_, trf.coef_, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reg_type", ["laplacian", ("laplacian", "ridge"), ("ridge", "laplacian")])
def test_trf_laplacian_matches_time_delaying_ridge(eeg, reg_type):
    X, Y = eeg[:512, :3], eeg[:512, 5:8]
    tmin, tmax, alpha = -0.03, 0.1, 50.0
    with mne.utils.use_log_level("error"):
        tdr = TimeDelayingRidge(tmin, tmax, SFREQ, alpha=alpha, reg_type=reg_type).fit(X, Y)
    trf = TRF(tmin, tmax, SFREQ, alpha=alpha, reg_type=reg_type).fit(X, Y)
    _close(trf.coef_, tdr.coef_)
    assert_allclose(trf.intercept_, tdr.intercept_, rtol=0, atol=1e-8)


@pytest.mark.float32
def test_trf_laplacian_float32_is_solved_in_float64(eeg):
    """Issue 23: the whitened Laplacian path ran its ridge in float32 and erred by 3e-3
    relative here, ~100 × eps32·cond(XᵀX + alpha·P) = 3.5e-5; it now stays in float64."""
    X, Y = eeg[:512, :3], eeg[:512, 5:8]
    kw = dict(tmin=-0.03, tmax=0.1, sfreq=SFREQ, alpha=50.0, reg_type="laplacian")
    t32 = TRF(**kw, dtype="float32").fit(X, Y)
    t64 = TRF(**kw, dtype="float64").fit(X, Y)
    _close(t32.coef_, t64.coef_, rtol=1e-10)


@pytest.mark.parametrize(
    "reg_type", ["ridge", "laplacian", ("laplacian", "ridge"), ("ridge", "laplacian")]
)
@pytest.mark.parametrize(("n_features", "n_delays"), [(1, 1), (1, 5), (4, 1), (3, 6)])
def test_laplacian_penalty_matches_mne(reg_type, n_features, n_delays):
    ours = laplacian_penalty(n_features, n_delays, reg_type)
    np.testing.assert_array_equal(ours, _compute_reg_neighbors(n_features, n_delays, reg_type))


def test_penalised_ridge_closed_form(rng):
    """w = (XᵀX + αP)⁻¹ XᵀY for a singular P (pure Laplacian) and for P = I."""
    X = rng.standard_normal((80, 12))
    Y = rng.standard_normal((80, 3))
    for pen in (laplacian_penalty(3, 4, "laplacian"), np.eye(12)):
        ref = np.linalg.solve(X.T @ X + 7.0 * pen, X.T @ Y)
        white = None if np.array_equal(pen, np.eye(12)) else _whitening(pen)
        ours = _penalised_ridge(X, Y, 7.0, white, "cpu", "float64")
        assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def _simulated(rng, n_epochs=6, n_times=300, noise=0.3):
    lags = trf_lags(0.0, 0.15, 100.0)  # 16 lags
    kernel = np.exp(-0.5 * ((lags - 6) / 2.0) ** 2) - 0.5 * np.exp(-0.5 * ((lags - 11) / 2.0) ** 2)
    X = rng.standard_normal((n_epochs, n_times, 1))
    runs = np.repeat(np.arange(n_epochs), n_times)
    clean = delay(X.reshape(-1, 1), lags, runs=runs) @ kernel
    Y = clean.reshape(n_epochs, n_times, 1) + noise * rng.standard_normal((n_epochs, n_times, 1))
    return X, Y, kernel


@pytest.mark.parametrize("reg_type", ["ridge", "laplacian"])
def test_trf_cv_recovers_known_kernel(rng, reg_type):
    X, Y, kernel = _simulated(rng)
    alphas = np.logspace(-2, 4, 7)
    trf = TRF(0.0, 0.15, 100.0, alphas=alphas, cv=3, reg_type=reg_type).fit(X, Y)
    assert trf.best_alphas_.shape == trf.cv_scores_.shape == (1,)
    assert trf.best_alphas_[0] in alphas
    assert trf.cv_scores_[0] > 0.6
    assert np.corrcoef(trf.coef_[0, 0], kernel)[0, 1] > 0.98
    assert_allclose(trf.coef_[0, 0], kernel, atol=0.1)
    Xt, Yt, _ = _simulated(np.random.default_rng(7), n_epochs=2)
    assert trf.score(Xt, Yt)[0] > 0.6


def test_trf_cv_folds_keep_lags_inside_folds(rng):
    """One continuous run split in 3 contiguous folds: the fold design is delayed per fold."""
    X, Y, _ = _simulated(rng, n_epochs=1, n_times=600)
    trf = TRF(0.0, 0.15, 100.0, alphas=[1.0], cv=3).fit(X[0], Y[0])
    folds = trf._folds(np.zeros(600, int), 3)
    assert np.array_equal(np.bincount(folds), [200, 200, 200])
    assert np.all(np.diff(folds) >= 0)


def test_time_as_extra_target_axis_shares_one_fit(rng, tol, ridge_err32):
    """Trials × channel × time: one RidgeCV on flattened targets == one fit per time point."""
    from brainalign.encoding._ridge import RidgeCV

    n, p = 40, 5
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, 2, 3))
    Y = xr.DataArray(
        np.einsum("np,pct->nct", X, W) + rng.standard_normal((n, 2, 3)),
        dims=("stimulus", "channel", "time"),
        coords={"channel": ["Cz", "Pz"], "time": [0.0, 0.1, 0.2]},
    )
    Y2, unflatten = flatten_targets(Y)
    model = RidgeCV(alphas=[0.1, 10.0, 1000.0], cv=4).fit(X, Y2)
    scores = unflatten(model.cv_scores_)
    assert scores.dims == ("channel", "time")
    single = RidgeCV(alphas=[0.1, 10.0, 1000.0], cv=4).fit(X, Y.sel(time=0.1).values)
    # float32: two float32 fits (6 targets against 2) differ by the folds' eps32·cond
    # (conftest.ridge_err32, factor 10); R² by that in absolute terms
    err = 10 * ridge_err32(X, [0.1, 10.0, 1000.0], cv=4).max()
    assert_allclose(
        scores.sel(time=0.1).values,
        single.cv_scores_,
        rtol=tol(float64=1e-10, float32=0),
        atol=tol(float64=0, float32=err),
    )


def test_trf_sklearn_contract():
    trf = TRF(-0.1, 0.2, 50.0, alpha=3.0, reg_type="laplacian")
    assert clone(trf).get_params() == trf.get_params()
    assert not hasattr(trf, "coef_")
    with pytest.raises(AttributeError, match="TRF instance is not fitted yet"):
        trf.predict(np.zeros((10, 1)))


def test_trf_errors(rng):
    X, Y = rng.standard_normal((50, 2)), rng.standard_normal((50, 1))
    with pytest.raises(ValueError, match=r"tmin=0\.3 and tmax=0\.1"):
        TRF(0.3, 0.1, 100.0).fit(X, Y)
    with pytest.raises(ValueError, match=r"sfreq must be in the range \(0, inf\), got -1\.0"):
        TRF(0.0, 0.1, -1.0).fit(X, Y)
    with pytest.raises(ValueError, match=r"'reg_type' parameter.*got 'laplace'"):
        TRF(0.0, 0.1, 100.0, reg_type="laplace").fit(X, Y)
    with pytest.raises(ValueError, match=r"pair .* got .* with 3 entries"):
        TRF(0.0, 0.1, 100.0, reg_type=("ridge",) * 3).fit(X, Y)
    with pytest.raises(ValueError, match=r"alpha must be in the range \(0, inf\), got 0\.0"):
        TRF(0.0, 0.1, 100.0, alpha=0.0).fit(X, Y)
    with pytest.raises(ValueError, match=r"alphas must be .* positive values, got \[ 1. -1.\]"):
        TRF(0.0, 0.1, 100.0, alphas=[1.0, -1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="runs has 3 labels but X has 50 samples"):
        TRF(0.0, 0.1, 100.0).fit(X, Y, runs=[0, 0, 1])
    with pytest.raises(ValueError, match=r"runs must be None for epoched X.*got \[0, 1\]"):
        TRF(0.0, 0.1, 100.0).fit(X.reshape(2, 25, 2), Y.reshape(2, 25, 1), runs=[0, 1])
    with pytest.raises(ValueError, match=r"y must have shape \(50,\) .* got \(49, 1\)"):
        TRF(0.0, 0.1, 100.0).fit(X, Y[:49])
    trf = TRF(0.0, 0.1, 100.0).fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features, but TRF is expecting 2"):
        trf.predict(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="X has 3 dims but the TRF was fitted on 2-D"):
        trf.predict(np.zeros((2, 10, 2)))
    with pytest.raises(ValueError, match=r"run 0 reappears at sample 4 after ending at sample 1"):
        TRF(0.0, 0.02, 100.0).fit(X[:6], Y[:6], runs=[0, 0, 1, 1, 0, 1])


def test_trf_cv_too_few_samples_per_fold():
    X, Y = np.ones((4, 1)), np.arange(4.0)
    with pytest.raises(ValueError, match=r"with 4 samples the folds hold \[2, 1, 1\] samples"):
        TRF(0.0, 0.01, 100.0, alphas=[1.0], cv=3, reg_type="laplacian").fit(X, Y)


def test_trf_one_output_and_device(rng, device, tol, lagged):
    X, Y, _ = _simulated(rng, n_epochs=1, n_times=400)
    ref = TRF(0.0, 0.15, 100.0, alpha=1.0).fit(X[0], Y[0, :, 0])
    assert ref.coef_.shape == (1, 1, 16)
    assert ref.predict(X[0]).shape == (400, 1)
    on_device = TRF(0.0, 0.15, 100.0, alpha=1.0, device=device, dtype="float64")
    on_device.fit(X[0], Y[0, :, 0])
    # float32 (ref only): _err32 of the ridge on the centred lagged design
    D = lagged(X[0] - X[0].mean(0), ref.delays_)
    err, _ = _err32(D, Y[0] - Y[0].mean(0), on_device.coef_, 1.0)
    assert_allclose(
        on_device.coef_,
        ref.coef_,
        rtol=tol(float64=1e-9, float32=0),
        atol=tol(float64=1e-12, float32=err * np.abs(on_device.coef_).max()),
    )
    # delay keeps a tensor on its device
    xt = torch.as_tensor(X[0], device=device)
    out = delay(xt, [0, 3], runs=np.repeat([0, 1], 200))
    assert out.device == xt.device
    assert_allclose(out.cpu().numpy(), delay(X[0], [0, 3], runs=np.repeat([0, 1], 200)))
