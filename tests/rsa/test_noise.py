"""Noise precision matrices against rsatoolbox 0.3.2's ``prec_from_*`` estimators."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import brainalign as ba
from brainalign.rsa._noise import NOISE_METHODS, noise_precision
from brainalign.rsa._rdm import rdm

pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset
from rsatoolbox.data.noise import prec_from_measurements, prec_from_residuals


def _close(got, ref, dtype):
    # ``dtype``: the precision the call computed in. The Gram matrix, shrinkage and inverse
    # run in float64 whatever dtype (so rsatoolbox agrees to 1e-10 up to the condition
    # number); float32 then rounds the result once: eps32 / 2 = 6e-8 relative per entry, with
    # 4x headroom (the largest entry sets atol for entries near zero).
    tol = 1e-10 if dtype == "float64" else 4 * float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


def _measurements(rng, n_runs=5, n_stim=6, p=8, reps=1):
    mix = rng.normal(size=(p, p))
    n = n_runs * n_stim * reps
    x = np.tile(rng.normal(size=(n_stim, p)), (n_runs * reps, 1)) + rng.normal(size=(n, p)) @ mix
    stim = np.tile([f"s{i}" for i in range(n_stim)], n_runs * reps)
    run = np.repeat(np.arange(n_runs), n_stim * reps)
    da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    return da, x, stim, run


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", NOISE_METHODS)
def test_residuals_match_rsatoolbox(method, dtype, rng, test_dtype):
    res = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8)) + 3.0
    ref = prec_from_residuals(res.copy(), method=method)
    got = noise_precision(res, method, dtype=dtype)
    assert got.dims == ("feature", "feature_b")
    assert got.attrs["dof"] == 39 and got.attrs["kind"] == "precision"
    _close(np.asarray(got, dtype=float), ref, dtype)
    got_dof = noise_precision(res, method, dof=30)
    ref_dof = prec_from_residuals(res.copy(), method=method, dof=30)
    _close(np.asarray(got_dof, dtype=float), ref_dof, test_dtype)


@pytest.mark.parametrize("method", NOISE_METHODS)
def test_measurements_rsatoolbox_semantics(method, rng, test_dtype):
    da, x, stim, run = _measurements(rng)
    ds = Dataset(x, obs_descriptors={"stimulus": stim, "run": run})
    ref = prec_from_measurements(ds, "stimulus", method=method)
    got = noise_precision(da, method, from_="measurements", semantics="rsatoolbox")
    assert got.attrs["dof"] == (6 - 1) * 5
    _close(np.asarray(got, dtype=float), ref, test_dtype)
    # without runs each trial is one measurement: the same here (one trial per run)
    plain = noise_precision(
        da.drop_vars("run"), method, from_="measurements", semantics="rsatoolbox"
    )
    _close(np.asarray(plain, dtype=float), ref, test_dtype)


def test_measurements_correct_dof_differs_from_rsatoolbox(rng, tol, test_dtype):
    """rsatoolbox 0.3.2 uses (conditions - 1) x runs dof; the correct value is
    conditions x (runs - 1), which rescales the unshrunk covariance."""
    n_runs, n_stim = 4, 6
    da, x, stim, run = _measurements(rng, n_runs=n_runs, n_stim=n_stim)
    ds = Dataset(x, obs_descriptors={"stimulus": stim, "run": run})
    correct = noise_precision(da, "full", from_="measurements")
    wrong = noise_precision(da, "full", from_="measurements", semantics="rsatoolbox")
    assert correct.attrs["dof"] == n_stim * (n_runs - 1) == 18
    assert wrong.attrs["dof"] == (n_stim - 1) * n_runs == 20
    ratio = n_stim * (n_runs - 1) / ((n_stim - 1) * n_runs)
    # float32: both results are the float64 precision rounded once (eps32 / 2 each), the
    # product one more rounding: about 1.5 eps32, 4 eps32 with headroom
    np.testing.assert_allclose(
        np.asarray(correct, dtype=float),
        np.asarray(wrong, dtype=float) * ratio,
        rtol=tol(float64=1e-12, float32=5e-7),
    )
    np.testing.assert_allclose(
        np.asarray(wrong, dtype=float),
        prec_from_measurements(ds, "stimulus", method="full"),
        rtol=tol(float64=1e-10, float32=5e-7),  # float32: one rounding of a float64 result
    )
    # rsatoolbox with the correct dof passed by hand agrees with the default
    for method in NOISE_METHODS:
        ref = prec_from_measurements(ds, "stimulus", method=method, dof=18)
        got = noise_precision(da, method, from_="measurements")
        _close(np.asarray(got, dtype=float), ref, test_dtype)


def test_measurements_average_within_run_first(rng, test_dtype):
    da, x, stim, run = _measurements(rng, n_runs=3, n_stim=4, reps=2)
    keys = [f"{r}|{s}" for r, s in zip(run, stim, strict=True)]
    uniq = sorted(set(keys))
    avg = np.stack([x[np.array(keys) == k].mean(0) for k in uniq])
    ds = Dataset(
        avg,
        obs_descriptors={"stimulus": [k.split("|")[1] for k in uniq]},
    )
    ref = prec_from_measurements(ds, "stimulus", method="shrinkage_eye")
    got = noise_precision(da, "shrinkage_eye", from_="measurements", semantics="rsatoolbox")
    _close(np.asarray(got, dtype=float), ref, test_dtype)


def test_labeled_residuals_keep_feature_labels(rng):
    res = ba.responses(rng.normal(size=(20, 3)), feature_dim="voxel", sample_dim="trial")
    res = res.assign_coords(voxel=["v1", "v2", "v3"])
    prec = noise_precision(res)
    assert prec.dims == ("voxel", "voxel_b")
    assert list(prec.voxel_b.values) == ["v1", "v2", "v3"]
    assert 0.0 <= prec.attrs["shrinkage"] <= 1.0


@pytest.mark.parametrize(
    ("data", "kwargs", "exc", "match"),
    [
        (
            np.ones((5, 3)),
            {"method": "shrinkage"},
            ValueError,
            r"'method' parameter.*got 'shrinkage'\. Did you mean 'shrinkage_eye'\?",
        ),
        (
            np.ones((5, 3)),
            {"from_": "measurement"},
            ValueError,
            r"'from_' parameter.*got 'measurement'\. Did you mean 'measurements'\?",
        ),
        (
            np.random.default_rng(0).normal(size=(3, 5)),
            {"method": "full"},
            ValueError,
            r"'full' noise covariance is singular.*needs more observations \(3\) than "
            r"features \(5\)",
        ),
        (
            np.c_[np.random.default_rng(0).normal(size=(6, 2)), np.ones(6)],
            {},
            ValueError,
            r"1 feature\(s\) along 'feature' have zero variance in the noise \(2\)",
        ),
        (np.ones((1, 3)), {}, ValueError, r"at least 2 observations; data has 1"),
        (np.ones((4, 3, 2)), {}, ba.SchemaError, r"must be 2-D.*got shape \(4, 3, 2\)"),
        (
            np.ones((4, 3)),
            {"from_": "measurements"},
            ba.SchemaError,
            r"from_='measurements' needs trial data.*got ndarray with shape \(4, 3\)",
        ),
        (np.ones((4, 3)), {"dof": 0}, ValueError, r"dof must be in the range \[1, inf\), got 0"),
        (
            np.ones((4, 3)),
            {"runs": [0, 1, 0, 1]},
            ValueError,
            r"runs= is used only with from_='measurements'",
        ),
    ],
)
def test_bad_input(data, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        noise_precision(data, **kwargs)


def test_bad_measurements(rng):
    da = ba.responses(
        rng.normal(size=(5, 2)), list("aabbb"), sample_dim="trial", feature_dim="channel"
    )
    with pytest.raises(
        ValueError, match=r"semantics='rsatoolbox' needs the same number.*\(2 to 3; a: 2, b: 3\)"
    ):
        noise_precision(da, from_="measurements", semantics="rsatoolbox")
    noise_precision(da, from_="measurements")  # unbalanced counts are fine by default
    with pytest.raises(ValueError, match=r"run 1 lacks stimuli 'a'"):
        noise_precision(da, from_="measurements", runs=[0, 0, 0, 0, 1])


@settings(max_examples=25, deadline=None)
@given(
    st.integers(3, 12),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["shrinkage_diag", "shrinkage_eye", "diag"]),
)
def test_property_precision_is_symmetric_positive_definite(n_obs, p, seed, method):
    res = np.random.default_rng(seed).normal(size=(n_obs, p))
    prec = np.asarray(noise_precision(res, method))
    np.testing.assert_array_equal(prec, prec.T)
    assert np.linalg.eigvalsh(prec).min() > 0
    d = np.asarray(rdm(res[:3], "mahalanobis", noise=prec, feature_dim="unit"))
    assert np.all(d >= 0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye"])
def test_fewer_observations_than_features_match_rsatoolbox(method, dtype, rng):
    """The low-rank (Woodbury) route taken when n_observations < n_features."""
    p = 50
    res = rng.normal(size=(20, p)) @ rng.normal(size=(p, p)) * 0.3 + rng.normal(size=(20, p))
    got = noise_precision(res, method, dtype=dtype)
    _close(np.asarray(got, dtype=float), prec_from_residuals(res.copy(), method=method), dtype)
    assert 0.0 < got.attrs["shrinkage"] < 1.0
    da, x, stim, run = _measurements(rng, n_runs=3, n_stim=5, p=40)
    ds = Dataset(x, obs_descriptors={"stimulus": stim, "run": run})
    ref = prec_from_measurements(ds, "stimulus", method=method)
    got = noise_precision(da, method, from_="measurements", semantics="rsatoolbox", dtype=dtype)
    _close(np.asarray(got, dtype=float), ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye"])
@pytest.mark.parametrize("independent", [False, True])
def test_low_rank_form_equals_the_matrix(method, dtype, independent, rng, tmp_path):
    """Fewer observations than features: a private factored form diag(v) - F^T F."""
    from brainalign.rsa._rdm import _LOW_RANK

    if independent:  # shrinkage_diag's intensity is then 1: a diagonal precision
        signal = rng.normal(size=(10, 100))
        x = np.tile(signal, (3, 1)) + rng.normal(size=(30, 100))
        stim = np.tile([f"s{i}" for i in range(10)], 3)
        run = np.repeat(np.arange(3), 10)
        da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    else:
        da, *_ = _measurements(rng, n_runs=3, n_stim=5, p=40)
    prec = noise_precision(da, method, from_="measurements", dtype=dtype)
    if independent and method == "shrinkage_diag":
        assert prec.attrs["shrinkage"] == 1.0
    low = _LOW_RANK[id(prec)][2]
    n_obs, p = prec.attrs["n_observations"], prec.shape[0]
    assert low.factor.shape in ((n_obs, p), (0, p)) and low.factor.dtype == torch.float64
    dense = np.asarray(prec, dtype=float)
    _close(low.dense().numpy(), dense, dtype)
    assert not np.asarray(prec).flags.writeable  # the factored form must stay valid
    assert all(isinstance(v, (str, int, float)) for v in prec.attrs.values())
    path = ba.save(prec, tmp_path / "prec.nc")
    back = ba.load(path)
    np.testing.assert_array_equal(np.asarray(back), np.asarray(prec))
    assert id(back) not in _LOW_RANK  # loaded: a plain dense precision
    # no factored form with more observations than features
    tall = noise_precision(rng.normal(size=(50, 8)), method)
    assert id(tall) not in _LOW_RANK and np.asarray(tall).flags.writeable


# ------------------------------------------------------- extreme magnitudes (issue 17 item 9)
@pytest.mark.parametrize(
    ("scale", "dtype"), [(2.0**-62, "float32"), (2.0**500, "float64"), (2.0**-500, "float64")]
)
@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
def test_precision_of_data_far_from_unit_scale(method, scale, dtype, rng):
    # The precision scales as scale**-2. float32 data x 2**-62 has squares near float32's
    # smallest normal number (they underflowed: "zero variance"); float64 data x 2**+-500
    # has squares beyond float64. Reference: the float64 precision of the unscaled data.
    r = rng.normal(size=(1000, 4))
    ref = np.asarray(noise_precision(r, method, dtype="float64"))
    got = np.asarray(noise_precision(r * scale, method, dtype=dtype, device="cpu"), dtype=float)
    tol = 5e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got * scale * scale, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize(("scale", "dtype"), [(1e20, "float32"), (1e200, "float64")])
def test_precision_beyond_the_dtype_is_refused_with_the_magnitudes(scale, dtype, rng):
    r = rng.normal(size=(30, 6))
    hint = "Pass dtype='float64'" if dtype == "float32" else "Rescale the data"
    for s in (scale, 1 / scale):
        with pytest.raises(
            ValueError,
            match=rf"The noise precision of data with magnitudes up to \d\.\d+e[+-]\d+ does "
            rf"not fit in {dtype}: its entries would range from about 1e[+-]\d+ to "
            rf"1e[+-]\d+, outside {dtype}'s range .*{hint}",
        ):
            noise_precision(r * s, "shrinkage_diag", dtype=dtype, device="cpu")


def test_low_rank_precision_of_large_data_matches_its_dense_matrix(rng):
    # fewer observations than features: the factored form is rescaled with the matrix
    r = rng.normal(size=(3, 8)) * 2.0**40
    prec = noise_precision(r, "shrinkage_diag", dtype="float32", device="cpu")
    x = rng.normal(size=(5, 8)) * 2.0**40
    low = np.asarray(rdm(x, "mahalanobis", noise=prec, dtype="float64"))
    dense = np.asarray(rdm(x, "mahalanobis", noise=prec.copy(), dtype="float64"))
    np.testing.assert_allclose(low, dense, rtol=1e-6)
    ref = np.asarray(
        rdm(x / 2.0**40, "mahalanobis", noise=noise_precision(r / 2.0**40, "shrinkage_diag"))
    )
    np.testing.assert_allclose(low, ref, rtol=1e-5)


def test_full_eye_shrinkage_is_inverted_directly(test_dtype):
    # Found by hypothesis (n_obs=7, p=8, seed=55): an intensity of exactly 1 divided by zero in
    # the low-rank update. The result equals rsatoolbox's precision.
    res = np.random.default_rng(55).normal(size=(7, 8))
    got = noise_precision(res, "shrinkage_eye")
    _close(
        np.asarray(got, dtype=float),
        prec_from_residuals(res.copy(), method="shrinkage_eye"),
        test_dtype,
    )


@pytest.mark.float32
@pytest.mark.parametrize("method", NOISE_METHODS)
def test_float32_precision_is_the_float64_one_rounded_once(method):
    """Issue 23: the Gram matrix and inverse stay in float64, whatever the result's dtype.

    With the Gram matrix in float32, a 'full' precision of condition 1e4 was off by eps32 *
    cond (1.2e-3 relative on its entries, 1.7e-4 of the largest). Now float32 only rounds
    the float64 result: eps32 / 2 per entry, whatever the condition number.
    """
    rng = np.random.default_rng(0)
    p = 8
    u, _ = np.linalg.qr(rng.normal(size=(p, p)))
    res = rng.normal(size=(200, p)) * np.logspace(0, -2, p) @ u.T + 5.0  # variances 1 .. 1e-4
    ref = np.asarray(noise_precision(res, method, dtype="float64"))
    got = noise_precision(res, method, dtype="float32")
    assert got.dtype == np.float32
    if method == "full":
        assert np.linalg.cond(ref) > 5e3  # ill-conditioned: the old error was eps32 * cond
    _close(np.asarray(got, dtype=float), ref, "float32")
