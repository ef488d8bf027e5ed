"""Run-aware delays, HRF bases and TRF lags, against numpy loops, MNE and nilearn."""

from contextlib import nullcontext

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from brainalign.encoding._delays import (
    _double_gamma,
    convolve_hrf,
    delay,
    flatten_targets,
    hrf_basis,
    lag_matrix,
    spm_hrf,
    trf_lags,
    undelay_coef,
)


def _delay_loop(X, delays, runs):
    """Reference: one sample at a time, feature-major columns."""
    n, p = X.shape
    out = np.zeros((n, p * len(delays)))
    for t in range(n):
        for f in range(p):
            for k, d in enumerate(delays):
                s = t - d
                if 0 <= s < n and runs[s] == runs[t]:
                    out[t, f * len(delays) + k] = X[s, f]
    return out


def test_delay_hand_example():
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    out = delay(X, [0, 1, -1], runs=["a", "a", "b", "b"])
    expected = np.array(
        [
            # f0: d0 d1 d-1   f1: d0 d1 d-1
            [1, 0, 2, 10, 0, 20],
            [2, 1, 0, 20, 10, 0],
            [3, 0, 4, 30, 0, 40],
            [4, 3, 0, 40, 30, 0],
        ],
        dtype=float,
    )
    assert_array_equal(out, expected)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=4),
    p=st.integers(1, 3),
    delays=st.lists(st.integers(-4, 4), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**16),
)
def test_delay_matches_loop(lengths, p, delays, seed):
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.arange(len(lengths)) * 7 + 3, lengths)
    X = rng.standard_normal((len(runs), p))
    too_long = max(abs(d) for d in delays) >= min(lengths)
    with pytest.warns(UserWarning) if too_long else nullcontext():
        out = delay(X, delays, runs=runs)
    assert_array_equal(out, _delay_loop(X, delays, runs))


def test_delay_one_run_default_and_runs_false():
    X = np.arange(12.0).reshape(6, 2)
    ref = _delay_loop(X, [-2, 0, 3], np.zeros(6))
    assert_array_equal(delay(X, [-2, 0, 3]), ref)
    assert_array_equal(delay(X, [-2, 0, 3], runs=False), ref)
    assert_array_equal(delay(X[:, 0], [1]), delay(X[:, :1], [1]))  # 1-D: one feature


def test_delay_torch_stays_torch():
    X = np.random.default_rng(0).standard_normal((9, 2))
    runs = [0] * 4 + [1] * 5
    out = delay(torch.as_tensor(X), [0, 2], runs=runs)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert_array_equal(out.numpy(), _delay_loop(X, [0, 2], runs))


def _da(n=8, runs=None, **coords):
    X = xr.DataArray(
        np.arange(n * 2, dtype=float).reshape(n, 2),
        dims=("time", "feature"),
        coords={"time": np.arange(n) * 0.5, "feature": ["f0", "f1"]},
    )
    if runs is not None:
        X = X.assign_coords(run=("time", runs))
    for k, v in coords.items():
        X = X.assign_coords({k: ("time", v)})
    return X


def test_delay_dataarray_uses_run_coord_and_labels():
    runs = np.repeat([1, 2], 4)
    X = _da(runs=runs)
    out = delay(X, [0, 1, 2])
    assert out.dims == ("time", "feature_delay")
    assert_array_equal(out.values, _delay_loop(X.values, [0, 1, 2], runs))
    assert out["feature"].values.tolist() == ["f0"] * 3 + ["f1"] * 3
    assert out["delay"].values.tolist() == [0, 1, 2] * 2
    assert_array_equal(out["run"].values, runs)
    assert out.attrs["delays"] == [0, 1, 2]
    back = out.unstack("feature_delay")
    assert_array_equal(back.sel(feature="f1", delay=2).values, out.values[:, 5])
    # labeled coefficients: (feature_delay, target) -> (feature, delay, target)
    coef = xr.DataArray(np.arange(12.0).reshape(6, 2), dims=("feature_delay", "voxel"))
    coef = coef.assign_coords(
        xr.Coordinates.from_pandas_multiindex(out.indexes["feature_delay"], "feature_delay")
    )
    c3 = undelay_coef(coef)
    assert c3.dims == ("feature", "delay", "voxel")
    assert_array_equal(c3.values, np.arange(12.0).reshape(2, 3, 2))


def test_undelay_coef_numpy_and_errors():
    coef = np.arange(24.0).reshape(6, 4)
    assert_array_equal(undelay_coef(coef, 3), coef.reshape(2, 3, 4))
    assert_array_equal(undelay_coef(coef, [-1, 0, 1])[1, 2], coef[5])
    with pytest.raises(ValueError, match="6 rows, which is not a multiple of n_delays=4"):
        undelay_coef(coef, 4)
    with pytest.raises(ValueError, match=r"n_delays is required.*got None"):
        undelay_coef(coef)
    with pytest.raises(ValueError, match=r"dims \('a', 'b'\) and no stacked"):
        undelay_coef(xr.DataArray(coef, dims=("a", "b")))


def test_delay_run_like_coord_without_runs_raises():
    session = np.repeat(["s1", "s2"], 4)
    X = _da(session=session)
    with pytest.raises(ValueError, match=r"'session' coordinate along 'time' with 2 distinct"):
        delay(X, [0, 1])
    with pytest.raises(ValueError, match=r"runs=X\['session'\]"):
        delay(X, [0, 1])
    expected = _delay_loop(X.values, [0, 1], session)
    assert_array_equal(delay(X, [0, 1], runs=X["session"]).values, expected)
    assert_array_equal(
        delay(X, [0, 1], runs=False).values, _delay_loop(X.values, [0, 1], np.zeros(8))
    )
    # delay 0 crosses nothing; one session value is no boundary
    assert_array_equal(delay(X, [0]).values, X.values)
    assert_array_equal(delay(_da(session=["s1"] * 8), [1]).values[1:, 0], X.values[:-1, 0])


def test_delay_errors():
    X = np.zeros((5, 2))
    with pytest.raises(TypeError, match=r"non-integer values 1\.5"):
        delay(X, [0, 1.5])
    with pytest.raises(TypeError, match="got dtype <U1"):
        delay(X, ["a"])
    with pytest.raises(ValueError, match=r"delays is empty \(got \[\]\)"):
        delay(X, [])
    with pytest.raises(ValueError, match="duplicates 1"):
        delay(X, [1, 0, 1])
    with pytest.raises(ValueError, match="runs has 4 labels but X has 5 samples"):
        delay(X, [1], runs=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="run 'a' reappears at sample 4 after ending at sample 1"):
        delay(X, [1], runs=["a", "a", "b", "b", "a"])
    with pytest.raises(TypeError, match="got bool True"):
        delay(X, [1], runs=True)
    with pytest.raises(ValueError, match=r"1-D or 2-D .* got shape \(5, 2, 1\)"):
        delay(np.zeros((5, 2, 1)), [1])


def test_delay_longer_than_run_warns():
    X = np.ones((6, 1))
    with pytest.warns(UserWarning, match=r"longest delay \(3 samples\).*\(1; lengths 2\)"):
        out = delay(X, [0, 3], runs=[0, 0, 0, 0, 1, 1])
    assert_array_equal(out[4:, 1], 0.0)


# ------------------------------------------------------------------ TRF lags vs MNE


@pytest.mark.parametrize(
    ("tmin", "tmax", "sfreq"),
    [(-0.1, 0.2, 10.0), (0.0, 0.4, 128.0), (-0.25, -0.05, 100.0), (0.013, 0.017, 1000.0)],
)
def test_trf_lags_and_lag_matrix_match_mne(tmin, tmax, sfreq):
    from mne.decoding.receptive_field import _delay_time_series, _times_to_delays

    lags = trf_lags(tmin, tmax, sfreq)
    assert_array_equal(lags, _times_to_delays(tmin, tmax, sfreq))
    X = np.random.default_rng(1).standard_normal((60, 3))
    ref = _delay_time_series(X, tmin, tmax, sfreq).reshape(60, -1)  # (t, f, d) feature-major
    assert_array_equal(lag_matrix(X, tmin, tmax, sfreq), ref)
    # epoched: MNE's (n_times, n_epochs, n_features), each epoch its own run here
    Xe = np.random.default_rng(2).standard_normal((60, 2, 3))
    ref_e = _delay_time_series(Xe, tmin, tmax, sfreq)  # (t, e, f, d)
    flat = Xe.transpose(1, 0, 2).reshape(120, 3)
    out = lag_matrix(flat, tmin, tmax, sfreq, runs=np.repeat([0, 1], 60))
    assert_array_equal(out, ref_e.transpose(1, 0, 2, 3).reshape(120, -1))


def test_trf_lags_errors():
    with pytest.raises(ValueError, match=r"tmin=0\.3 and tmax=0\.1"):
        trf_lags(0.3, 0.1, 100.0)
    with pytest.raises(ValueError, match=r"sfreq must be in the range \(0, inf\), got 0"):
        trf_lags(0.0, 0.1, 0)
    with pytest.raises(ValueError, match=r"sfreq must be in the range.*got -5\.0"):
        trf_lags(0.0, 0.1, -5.0)


# ------------------------------------------------------------------ HRF vs nilearn / scipy


def test_double_gamma_formula_matches_nilearn_exactly():
    from nilearn.glm.first_level.hemodynamic_models import _gamma_difference_hrf

    tr, over, length = 2.0, 16, 32.0
    dt = tr / over
    t = np.linspace(0, length, int(np.rint(length / dt))) - dt  # nilearn's grid, loc=dt
    h = _double_gamma(t, ratio=0.167)
    assert_allclose(h / h.sum(), _gamma_difference_hrf(tr, over, length), rtol=1e-12, atol=1e-15)


def test_spm_hrf_formula_and_nilearn():
    from nilearn.glm.first_level import spm_hrf as nilearn_spm_hrf

    # the SPM formula on the TR grid, with scipy's gamma as the reference density
    t = np.arange(17) * 2.0
    ref = stats.gamma.pdf(t, 6) - stats.gamma.pdf(t, 16) / 6
    assert_allclose(spm_hrf(2.0), ref / ref.sum(), rtol=1e-12, atol=1e-15)
    # nilearn's grid differs by one microtime step (and ratio 0.167): within 2 % of the peak
    ours = spm_hrf(2.0, oversampling=50)
    theirs = nilearn_spm_hrf(2.0, oversampling=50)
    assert len(ours) == len(theirs) + 1
    assert_allclose(ours[:-1], theirs, atol=0.02 * theirs.max())
    assert abs(int(np.argmax(ours)) - int(np.argmax(theirs))) <= 2


def test_hrf_basis_kinds():
    from nilearn.glm.first_level.hemodynamic_models import spm_time_derivative

    b, names = hrf_basis(2.0, "spm_derivative", oversampling=50)
    assert names == ["spm", "spm_derivative"]
    ref = spm_time_derivative(2.0, oversampling=50)
    assert_allclose(b[:-1, 1], ref, atol=0.03 * np.abs(ref).max())
    fir, fnames = hrf_basis(2.5, "fir", time_length=10.0)
    assert_array_equal(fir, np.eye(5))
    assert fnames == ["fir_0", "fir_1", "fir_2", "fir_3", "fir_4"]
    with pytest.raises(ValueError, match=r"'kind' parameter.*got 'spm_deriv'"):
        hrf_basis(2.0, "spm_deriv")
    with pytest.raises(ValueError, match=r"tr must be in the range \(0, inf\), got -2.0"):
        spm_hrf(-2.0)


def test_convolve_hrf_per_run_matches_np_convolve():
    rng = np.random.default_rng(3)
    lengths = [30, 25]
    runs = np.repeat(["r1", "r2"], lengths)
    X = rng.standard_normal((55, 2))
    basis, _ = hrf_basis(2.0, "spm_derivative")
    out = convolve_hrf(X, 2.0, runs=runs, basis="spm_derivative")
    ref = np.zeros((55, 2, 2))
    start = 0
    for n in lengths:
        for f in range(2):
            for b in range(2):
                seg = X[start : start + n, f]
                ref[start : start + n, f, b] = np.convolve(seg, basis[:, b])[:n]
        start += n
    assert_allclose(out, ref.reshape(55, 4), rtol=1e-12, atol=1e-12)
    # FIR basis == delays 0 .. n_taps - 1
    fir = convolve_hrf(X, 2.0, runs=runs, basis="fir", time_length=8.0)
    assert_array_equal(fir, delay(X, range(5), runs=runs))
    # torch in, torch out
    out_t = convolve_hrf(torch.as_tensor(X), 2.0, runs=runs, basis="spm_derivative")
    assert_allclose(out_t.numpy(), out, rtol=1e-12, atol=1e-12)


def test_convolve_hrf_dataarray_labels():
    X = _da(n=20, runs=np.repeat([0, 1], 10))
    out = convolve_hrf(X, 2.0, basis="spm_derivative")
    assert out.dims == ("time", "feature_basis")
    assert out["basis"].values.tolist() == ["spm", "spm_derivative"] * 2
    assert out.attrs["tr"] == 2.0
    assert_allclose(out.values[10, 0], X.values[10, 0] * spm_hrf(2.0)[0])
    with pytest.raises(ValueError, match=r"basis must be \(n_taps, n_basis\), got shape \(0, 1\)"):
        convolve_hrf(X.values, 2.0, basis=np.zeros((0, 1)))


def test_flatten_targets_channel_time_roundtrip():
    rng = np.random.default_rng(0)
    Y = xr.DataArray(
        rng.standard_normal((5, 3, 4)),
        dims=("stimulus", "channel", "time"),
        coords={"stimulus": list("abcde"), "channel": ["a", "b", "c"], "time": np.arange(4.0)},
    )
    Y2, unflatten = flatten_targets(Y)
    assert Y2.shape == (5, 12)
    # a per-target statistic computed on the flat targets comes back as (channel, time)
    back = unflatten(Y2.mean(0))
    assert back.dims == ("channel", "time")
    assert_allclose(back.values, Y.mean("stimulus").values)
    assert_allclose(unflatten(Y2).values, Y.values)  # leading dims kept
    with pytest.raises(ValueError, match=r"12 targets on their last axis, got shape \(5,\)"):
        unflatten(np.zeros(5))
