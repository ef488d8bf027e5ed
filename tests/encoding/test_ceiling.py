"""Noise ceilings against hand arithmetic, numpy reference loops and simulations.

References: NSD's ncsnr / noise ceiling (Allen et al. 2022, Methods "Noise ceiling"), the
explainable variance of ``voxelwise_tutorials.utils.explainable_variance`` (re-derived below
in numpy + scipy), Spearman–Brown ``2r / (1 + r)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from brainalign._checks import SchemaError
from brainalign.encoding._ceiling import (
    explainable_variance,
    ncsnr,
    normalize_score,
    nsd_noise_ceiling,
    spearman_brown,
    split_half_reliability,
)

EPS32 = float(np.finfo(np.float32).eps)


def _simulate(rng, noise_sd, n_repeats=4, n_stimuli=3000):
    """Signal variance 1 per target; noise variance noise_sd**2, independent per repeat."""
    noise_sd = np.asarray(noise_sd, dtype=float)
    signal = rng.standard_normal((n_stimuli, noise_sd.size))
    return signal[None] + noise_sd * rng.standard_normal((n_repeats, n_stimuli, noise_sd.size))


# ------------------------------------------------------------------------------------------
# split-half reliability
# ------------------------------------------------------------------------------------------


def test_split_half_hand_checked():
    # Two repeats: the only split is {0} vs {1}. Centered repeats over the 4 stimuli:
    # a = [-1.5, -0.5, 0.5, 1.5], b = [-1.5, 0.5, -0.5, 1.5]; sum(a*b) = 2.25 - 0.25 - 0.25
    # + 2.25 = 4, sum(a*a) = sum(b*b) = 5, so r = 0.8 and Spearman–Brown 1.6 / 1.8 = 8 / 9.
    Y = np.array([[1.0, 2, 3, 4], [1.0, 3, 2, 4]])[:, :, None]
    got = split_half_reliability(Y, n_splits=3, seed=0)
    np.testing.assert_allclose(got, [8 / 9], rtol=1e-12)
    raw = split_half_reliability(Y, n_splits=3, seed=0, spearman_brown=False)
    np.testing.assert_allclose(raw, [0.8], rtol=1e-12)
    np.testing.assert_allclose(spearman_brown(0.8), 8 / 9, rtol=1e-12)


@pytest.mark.float32
@pytest.mark.parametrize("average", ["mean", "fisher"])
def test_split_half_matches_numpy_loop(average, rng, device, tol):
    Y = _simulate(rng, [0.5, 1.0, 2.0], n_repeats=5, n_stimuli=40)
    splits = np.array([rng.permutation(5) for _ in range(7)])
    rs = []
    for perm in splits:  # reference: a plain loop over splits and targets
        a = Y[perm[:2]].mean(0)
        b = Y[perm[2:4]].mean(0)  # odd count: perm[4] sits out
        rs.append([np.corrcoef(a[:, t], b[:, t])[0, 1] for t in range(3)])
    rs = np.array(rs)
    rbar = rs.mean(0) if average == "mean" else np.tanh(np.arctanh(rs).mean(0))
    want = 2 * rbar / (1 + rbar)
    got = split_half_reliability(Y, splits=splits, average=average, device=device)
    # float32 (cpu): inputs rounded and centred in float32, sums in float64: each r errs by
    # a few eps32 (the data are centred, |mean|/std ≈ 0), Spearman–Brown's slope
    # 2/(1+r)² <= 2 and Fisher's averaging keep that order: 8·eps32
    rtol = tol(float64=1e-10, float32=8 * EPS32) if device == "cpu" else 1e-4
    np.testing.assert_allclose(got, want, rtol=rtol)


def test_split_half_simulation_close_to_theory(rng):
    # Half means average 2 repeats: r_half = 1 / (1 + s2 / 2); Spearman–Brown gives the
    # reliability of the 4-repeat mean, 1 / (1 + s2 / 4).
    s2 = np.array([0.25, 1.0, 4.0])
    Y = _simulate(rng, np.sqrt(s2), n_repeats=4)
    got = split_half_reliability(Y, n_splits=50, seed=1)
    np.testing.assert_allclose(got, 1 / (1 + s2 / 4), atol=0.03)


def test_split_half_dataarray_and_trials_agree(rng):
    Y = _simulate(rng, [1.0, 2.0], n_repeats=2, n_stimuli=20)
    da = xr.DataArray(
        Y, dims=("repeat", "stimulus", "voxel"), coords={"voxel": ["v1", "v2"]}
    ).transpose("voxel", "stimulus", "repeat")
    out = split_half_reliability(da, seed=0)
    assert out.dims == ("voxel",)
    assert out["voxel"].values.tolist() == ["v1", "v2"]
    ids = np.tile(np.arange(20).astype(str), 2)  # trials: repeat-major order
    trials = xr.DataArray(
        Y.reshape(40, 2), dims=("trial", "voxel"), coords={"stimulus": ("trial", ids)}
    )
    np.testing.assert_allclose(split_half_reliability(trials, seed=0), out.values, rtol=1e-12)


def test_split_half_warns_for_a_constant_half():
    # repeat 1 is constant over stimuli but the target is not: r is 0 / 0 in the only split
    Y = np.array([[1.0, 2, 3], [2.0, 2, 2]])[:, :, None]
    with pytest.warns(UserWarning, match=r"NaN for 1 of 1 target\(s\)"):
        out = split_half_reliability(Y, n_splits=2, seed=0)
    assert np.isnan(out[0])


def test_split_half_errors(rng):
    Y = _simulate(rng, [1.0, 1.0, 1.0], n_repeats=3, n_stimuli=5)
    bad = Y.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"Y holds 1 NaN value\(s\) out of 45"):
        split_half_reliability(bad)
    const = Y.copy()
    const[:, :, 1] = 2.0
    with pytest.raises(ValueError, match=r"1 of 3 target\(s\) constant .* \(at \(1,\)\)"):
        split_half_reliability(const)
    with pytest.raises(ValueError, match=r"at least 2 repeats .* got 1"):
        split_half_reliability(Y[:1])
    with pytest.raises(ValueError, match="got 'median'"):
        split_half_reliability(Y, average="median")
    with pytest.raises(ValueError, match=r"n_splits must be in the range \[1, inf\), got 0"):
        split_half_reliability(Y, n_splits=0)
    with pytest.raises(ValueError, match=r"permutations of range\(3\).* got shape \(2, 2\)"):
        split_half_reliability(Y, splits=[[0, 1], [1, 0]])
    trials = xr.DataArray(
        np.arange(10.0).reshape(5, 2) ** 2,
        dims=("trial", "voxel"),
        coords={"stimulus": ("trial", ["a", "a", "b", "b", "b"])},
    )
    with pytest.raises(ValueError, match=r"repeat counts 2, 3 for 1, 1 sample"):
        split_half_reliability(trials)
    with pytest.raises(SchemaError, match=r"'repeat' dim, or a 'trial' dim .* \('x', 'y'\)"):
        split_half_reliability(xr.DataArray(np.ones((2, 2)), dims=("x", "y")))
    with pytest.raises(SchemaError, match=r"'stimulus' \(or 'stimulus_id'\) coord"):
        split_half_reliability(xr.DataArray(np.ones((2, 2)), dims=("trial", "voxel")))


# ------------------------------------------------------------------------------------------
# NSD ncsnr and noise ceiling
# ------------------------------------------------------------------------------------------


def test_ncsnr_hand_checked_unequal_repeats(tol):
    # Trials: stimulus a = [0, 2, 4] (variance 4, ddof=1, 2 dof), b = [10, 12] (variance 2,
    # 1 dof), c = [7] (no dof). Pooled noise = (2 * 4 + 1 * 2) / 3 = 10 / 3.
    # Total variance (ddof=0) of the 6 trials: (sum x² - (sum x)² / 6) / 6 with sum x² = 313
    # and sum x = 35. Signal = total - noise; ncsnr = sqrt(signal / noise).
    trials = xr.DataArray(
        np.array([0.0, 2, 4, 10, 12, 7])[:, None],
        dims=("trial", "voxel"),
        coords={"stimulus_id": ("trial", ["a", "a", "a", "b", "b", "c"])},
    )
    noise = 10 / 3
    total = (313 - 35**2 / 6) / 6
    want = np.sqrt((total - noise) / noise)
    # float32: the trials are exact, the grand mean 35/6 is rounded: centring on it errs by
    # eps32·35/6 per trial, the total variance by 2·eps32·(35/6)/sqrt(total) relative, the
    # signal (total - noise) by total/signal times that, ncsnr by half of it; factor 4
    err = 4 * EPS32 * (35 / 6) / np.sqrt(total) * total / (total - noise)
    np.testing.assert_allclose(ncsnr(trials), [want], rtol=tol(float64=1e-12, float32=err))
    # NSD's ceiling with test stimuli seen 3, 2 and 1 times: 1/n term = (1/3 + 1/2 + 1) / 3
    nc = nsd_noise_ceiling(trials, n_average=[3, 2, 1])
    snr2 = want**2
    # float32: 100·s/(s + k) of s = ncsnr² errs by at most 2·err relative
    np.testing.assert_allclose(
        nc,
        [100 * snr2 / (snr2 + (1 / 3 + 1 / 2 + 1) / 3)],
        rtol=tol(float64=1e-12, float32=2 * err),
    )


def test_ncsnr_zscored_total_variance_is_nsd_formula():
    # Repeats (2 x 2): stimulus 0 -> [0, 2] (var 2), stimulus 1 -> [4, 6] (var 2): noise 2.
    # NSD with z-scored betas: signal = max(0, 1 - noise) = 0, so ncsnr 0 and NC 0.
    Y = np.array([[[0.0], [4.0]], [[2.0], [6.0]]])
    np.testing.assert_allclose(ncsnr(Y, total_variance=1.0), [0.0])
    # total variance 10: signal 8, ncsnr² = 4, NC(n=1) = 100 * 4 / 5 = 80
    np.testing.assert_allclose(ncsnr(Y, total_variance=10.0), [2.0])
    np.testing.assert_allclose(nsd_noise_ceiling(Y, total_variance=10.0), [80.0])
    # from the data: total variance (ddof=0) of [0, 4, 2, 6] = 5, signal 3, ncsnr² 1.5
    np.testing.assert_allclose(nsd_noise_ceiling(Y, n_average=3), [100 * 1.5 / (1.5 + 1 / 3)])


@pytest.mark.float32
def test_ncsnr_zscored_data_reduces_to_one_minus_noise(rng, tol):
    # Betas z-scored (ddof=0) over all trials: the data's total variance is exactly 1.
    Y = _simulate(rng, [1.0, 2.0], n_repeats=3, n_stimuli=50)
    Yz = (Y - Y.mean((0, 1))) / Y.std((0, 1))
    noise = Yz.var(0, ddof=1).mean(0)
    want = np.sqrt(np.maximum(0, 1 - noise)) / np.sqrt(noise)
    # float32: centred unit-variance inputs rounded once, float64 sums: the variances err
    # by a few eps32, the signal 1 - noise by 1/signal times that, ncsnr by half; factor 4
    # (a target whose noise exceeds 1 is clipped to 0 in both)
    signal = 1 - noise
    err = tol(float64=1e-10, float32=4 * EPS32 / signal[signal > 0].min())
    np.testing.assert_allclose(ncsnr(Yz), want, rtol=err)
    np.testing.assert_allclose(ncsnr(Yz, total_variance=1.0), want, rtol=err)


def test_ncsnr_simulation_close_to_theory(rng):
    # signal variance 1, noise variance s2: ncsnr = 1 / sqrt(s2); NC(n) = 100 / (1 + s2 / n)
    s2 = np.array([0.25, 1.0, 4.0])
    Y = _simulate(rng, np.sqrt(s2), n_repeats=3)
    np.testing.assert_allclose(ncsnr(Y), 1 / np.sqrt(s2), rtol=0.06)
    np.testing.assert_allclose(nsd_noise_ceiling(Y, n_average=3), 100 / (1 + s2 / 3), atol=3)


def test_ncsnr_noise_free_and_errors(rng):
    Y = np.array([[[1.0], [2.0], [4.0]]] * 2)  # identical repeats: no noise
    assert np.isinf(ncsnr(Y)[0])
    np.testing.assert_allclose(nsd_noise_ceiling(Y), [100.0])
    with pytest.raises(ValueError, match=r"n_average must hold counts >= 1, got 0"):
        nsd_noise_ceiling(Y, n_average=[2, 0])
    with pytest.raises(ValueError, match=r"n_average must be a positive int .* got 1.5"):
        nsd_noise_ceiling(Y, n_average=1.5)
    with pytest.raises(ValueError, match=r"total_variance must be in the range \(0, inf\)"):
        ncsnr(Y, total_variance=0.0)
    single = xr.DataArray(
        np.arange(3.0)[:, None],
        dims=("trial", "voxel"),
        coords={"stimulus": ("trial", list("abc"))},
    )
    with pytest.raises(ValueError, match="repeat counts are 1"):
        ncsnr(single)


# ------------------------------------------------------------------------------------------
# explainable variance
# ------------------------------------------------------------------------------------------


def _ev_reference(data, bias_correction=True, do_zscore=True):
    """voxelwise_tutorials' definition: var of the repeat mean / mean of the variances."""
    if do_zscore:
        data = scipy.stats.zscore(data, axis=1)
    mean_var = data.var(axis=1, ddof=1).mean(axis=0)
    var_mean = data.mean(axis=0).var(axis=0, ddof=1)
    ev = var_mean / mean_var
    if bias_correction:
        ev = ev - (1 - ev) / (data.shape[0] - 1)
    return ev


def test_explainable_variance_hand_checked():
    # Repeats [0, 2, 4] and [2, 2, 2.5] (no z-scoring): mean = [1, 2, 3.25];
    # var(mean, ddof=1) = ((1 - 25/12)² + (2 - 25/12)² + (3.25 - 25/12)²) / 2,
    # mean of variances = (4 + 1/12) / 2; ev = ratio; corrected ev - (1 - ev) / 1.
    Y = np.array([[0.0, 2, 4], [2.0, 2, 2.5]])[:, :, None]
    m = 25 / 12
    var_mean = ((1 - m) ** 2 + (2 - m) ** 2 + (3.25 - m) ** 2) / 2
    ev = var_mean / ((4 + 1 / 12) / 2)
    got = explainable_variance(Y, bias_correction=False, do_zscore=False)
    np.testing.assert_allclose(got, [ev], rtol=1e-12)
    got = explainable_variance(Y, do_zscore=False)
    np.testing.assert_allclose(got, [ev - (1 - ev)], rtol=1e-12)


@pytest.mark.float32
@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("do_zscore", [True, False])
def test_explainable_variance_matches_reference(bias_correction, do_zscore, rng, device, tol):
    Y = _simulate(rng, [0.5, 1.0, 3.0], n_repeats=3, n_stimuli=60) * [1.0, 5.0, 0.2] + 3
    got = explainable_variance(
        Y, bias_correction=bias_correction, do_zscore=do_zscore, device=device
    )
    ref = _ev_reference(Y, bias_correction, do_zscore)
    # float32 (cpu): inputs rounded by eps32·|y|, i.e. eps32·(1 + |mean|/std) relative to
    # their spread; float64 sums: each variance errs by twice that, their ratio ev by 4x;
    # the bias correction (R·ev - 1)/(R - 1) amplifies by R·ev/|R·ev - 1|; factor 4
    ev = _ev_reference(Y, False, do_zscore)
    R = Y.shape[0]
    amp = R * ev / np.abs(R * ev - 1) if bias_correction else 1.0
    spread = 1 + np.abs(Y.mean((0, 1))) / Y.std((0, 1))
    err32 = np.max(16 * EPS32 * spread * amp)
    rtol = tol(float64=1e-10, float32=err32) if device == "cpu" else 1e-4
    np.testing.assert_allclose(got, ref, rtol=rtol)


def test_explainable_variance_simulation_and_labels(rng):
    # Per-repeat explainable variance of signal 1 + noise s2 is 1 / (1 + s2).
    s2 = np.array([0.25, 1.0, 4.0])
    Y = _simulate(rng, np.sqrt(s2), n_repeats=3)
    da = xr.DataArray(Y, dims=("repeat", "time", "voxel"), coords={"voxel": [7, 8, 9]})
    out = explainable_variance(da)
    assert out.dims == ("voxel",) and out["voxel"].values.tolist() == [7, 8, 9]
    np.testing.assert_allclose(out.values, 1 / (1 + s2), atol=0.03)


def test_explainable_variance_errors(rng):
    Y = _simulate(rng, [1.0, 1.0], n_repeats=2, n_stimuli=5)
    Y[1, :, 0] = 3.0  # constant within repeat 1 only
    with pytest.raises(ValueError, match=r"1 target\(s\) constant over samples within a repeat"):
        explainable_variance(Y)
    with pytest.raises(ValueError, match=r"at least 2 repeats .* got 1"):
        explainable_variance(Y[:1])


# ------------------------------------------------------------------------------------------
# normalised scores
# ------------------------------------------------------------------------------------------


def test_normalize_score_hand_checked():
    # r2/ceiling: 0.1 / 0.5 = 0.2; (r/ceiling)^2 with a reliability 0.36 (best r 0.6):
    # (0.3 / sqrt(0.36))² = 0.25; the same with the r-ceiling 0.6 or 36 percent
    np.testing.assert_allclose(normalize_score([0.1], [0.5]), [0.2])
    np.testing.assert_allclose(
        normalize_score([0.3], [0.36], normalization="(r/ceiling)^2", ceiling_kind="variance"),
        [0.25],
    )
    # a plain ceiling under "(r/ceiling)^2" is ambiguous (a reliability or a ceiling on r?)
    with pytest.raises(ValueError, match=r"needs to know what the ceiling holds.*'variance'"):
        normalize_score([0.3], [0.36], normalization="(r/ceiling)^2")
    np.testing.assert_allclose(
        normalize_score([0.3], [0.6], normalization="(r/ceiling)^2", ceiling_kind="correlation"),
        [0.25],
    )
    np.testing.assert_allclose(normalize_score([0.09], [36.0], ceiling_kind="percent"), [0.25])


def test_normalize_score_guards_ceiling():
    with pytest.warns(UserWarning, match=r"for 2 of 3 target\(s\)"):
        out = normalize_score(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.0, np.nan]))
    np.testing.assert_allclose(out, [0.2, np.nan, np.nan])
    with pytest.raises(ValueError, match=r"got 'r/ceiling'"):
        normalize_score([0.1], [0.5], normalization="r/ceiling")


def test_normalize_score_dataarray_broadcasts_by_dim():
    score = xr.DataArray([[0.1, 0.2], [0.3, 0.4]], dims=("fold", "voxel"))
    ceiling = xr.DataArray([0.5, -1.0], dims=("voxel",))
    with pytest.warns(UserWarning, match=r"for 1 of 2 target\(s\)"):
        out = normalize_score(score, ceiling)
    assert out.dims == ("fold", "voxel") and out.attrs["normalization"] == "r2/ceiling"
    np.testing.assert_allclose(out.values, [[0.2, np.nan], [0.6, np.nan]])


def test_normalize_score_mixed_inputs():
    score = xr.DataArray([0.1, 0.2], dims=("voxel",), coords={"voxel": ["a", "b"]})
    out = normalize_score(score, np.array([0.5, 0.4]))
    assert out["voxel"].values.tolist() == ["a", "b"]
    np.testing.assert_allclose(out.values, [0.2, 0.5])
    with pytest.warns(UserWarning, match=r"for 1 of 2 target\(s\)"):
        out = normalize_score(np.array([0.1, 0.2]), xr.DataArray([0.0, 0.4], dims=("voxel",)))
    np.testing.assert_allclose(out.values, [np.nan, 0.5])


def _perfect_model_data(rng, n_stim=200, n_rep=4, n_vox=300, noise_var=6.0):
    """Signal (variance 1) + noise per repeat; the perfect model predicts the signal."""
    signal = rng.standard_normal((n_stim, n_vox))
    repeats = signal[None] + np.sqrt(noise_var) * rng.standard_normal((n_rep, n_stim, n_vox))
    return signal, repeats


def _r2_and_r(y, pred):
    r2 = 1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    yc, pc = y - y.mean(0), pred - pred.mean(0)
    r = (yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0))
    return r2, r


def test_perfect_model_scores_one_under_every_normalization_and_ceiling_kind(rng):
    """Issue 17 item 4: a model predicting the true signal normalises to 1 in expectation.

    Known truth: signal variance 1, noise variance 6 per repeat, 4 repeats, so the test
    responses (the mean of the repeats) have the variance ceiling 1 / (1 + 6/4) = 0.4 and a
    single repeat 1 / 7. Before the fix "(r/ceiling)^2" with the reliability gave 1/0.4.
    """
    n_rep, noise_var = 4, 6.0
    signal, reps = _perfect_model_data(rng, n_rep=n_rep, noise_var=noise_var)
    avg, single = reps.mean(0), reps[0]
    c_avg = 1 / (1 + noise_var / n_rep)
    labeled = xr.DataArray(reps, dims=("repeat", "stimulus", "voxel"))
    ev = explainable_variance(reps)
    rel = split_half_reliability(labeled, seed=0, n_splits=20)
    assert rel.attrs["ceiling_kind"] == "variance"
    cases = {  # name: (test responses, ceiling, ceiling_kind)
        "true, variance": (avg, c_avg, "variance"),
        "true, percent": (avg, 100 * c_avg, "percent"),
        "true, correlation": (avg, np.sqrt(c_avg), "correlation"),
        "split-half (Spearman-Brown)": (avg, rel.values, None),
        "split-half DataArray": (avg, rel, None),
        "nsd DataArray (percent attr)": (avg, nsd_noise_ceiling(labeled, n_average=n_rep), None),
        "nsd / 100": (avg, nsd_noise_ceiling(reps, n_average=n_rep) / 100, "variance"),
        "explainable variance, single repeat": (single, ev, "variance"),
        "explainable variance, Spearman-Brown to n": (avg, spearman_brown(ev, n_rep), None),
        "sqrt(split-half) as correlation": (avg, np.sqrt(rel.values), "correlation"),
    }
    for name, (y, ceiling, kind) in cases.items():
        r2, r = _r2_and_r(y, signal)
        for normalization, score in (("r2/ceiling", r2), ("(r/ceiling)^2", r)):
            if isinstance(ceiling, xr.DataArray):
                score = xr.DataArray(score, dims=("voxel",))
            labeled = isinstance(ceiling, xr.DataArray) and "ceiling_kind" in ceiling.attrs
            if kind is None and not labeled and normalization == "(r/ceiling)^2":
                kind = "variance"  # a plain reliability must be named under this option
            out = np.asarray(
                normalize_score(score, ceiling, normalization=normalization, ceiling_kind=kind)
            )
            # 300 voxels × 200 stimuli: the mean is within a few % of 1 (ceiling estimates
            # are noisy per voxel, so the mean of ratios carries a small Jensen bias)
            assert abs(np.mean(out) - 1) < 0.06, (name, normalization, np.mean(out))
            assert abs(np.median(out) - 1) < 0.06, (name, normalization, np.median(out))


def test_normalize_score_refuses_a_ceiling_outside_its_kind():
    with pytest.raises(
        ValueError,
        match=r"\[0, 1\] for ceiling_kind='variance'.*up to 75.*"
        r"ceiling_kind='percent'",
    ):
        normalize_score([0.1], [75.0])
    with pytest.raises(ValueError, match=r"\[0, 100\] for ceiling_kind='percent'.*up to 150"):
        normalize_score([0.1], [150.0], ceiling_kind="percent")
    with pytest.raises(ValueError, match=r"ceiling_kind.*'variance'.*got 'r'"):
        normalize_score([0.1], [0.5], ceiling_kind="r")
    da = xr.DataArray([80.0], dims=("voxel",), attrs={"ceiling_kind": "percent"})
    np.testing.assert_allclose(normalize_score(xr.DataArray([0.4], dims="voxel"), da), [0.5])
    # an explicit kind wins over the attribute
    with pytest.raises(ValueError, match=r"up to 80"):
        normalize_score([0.4], da, ceiling_kind="variance")


def test_normalize_score_aligns_targets_by_label():
    score = xr.DataArray([0.1, 0.2], dims=("voxel",), coords={"voxel": ["a", "b"]})
    ceiling = xr.DataArray([0.4, 0.5], dims=("voxel",), coords={"voxel": ["b", "a"]})
    out = normalize_score(score, ceiling)
    assert out["voxel"].values.tolist() == ["a", "b"]
    np.testing.assert_allclose(out.values, [0.2, 0.5])
    other = xr.DataArray([0.4, 0.5], dims=("voxel",), coords={"voxel": ["b", "c"]})
    with pytest.raises(ValueError, match=r"lacks 1 \('a'\) and has 1 extra \('c'\)"):
        normalize_score(score, other)
