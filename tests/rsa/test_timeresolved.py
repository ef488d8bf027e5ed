"""Time-resolved RSA and temporal generalization against per-time-point loops of rsa.compare."""

import numpy as np
import pytest
import torch
import xarray as xr

from brainalign import rsa
from brainalign._checks import SchemaError, StimulusAlignmentError
from brainalign._ties import tie_margin
from brainalign.rsa._timeresolved import _permutations, temporal_generalization, time_resolved

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _tol(tol):
    """Tolerance of a batched result against the per-time-point loop of rsa.compare.

    float32: both sides compute RDMs of 4-6 channels (float32 sums: ~sqrt(6) eps32 = 3e-7
    relative per entry) and correlate 36 pairs; a correlation scales relative entry errors
    by |mean|/std of the RDM vector (<= 4.1 on these draws): ~1.2e-6 worst on values in
    [-1, 1], 2e-6 allowed (observed <= 2.4e-7). Spearman needs no near-tied distances (none
    here: a swapped pair would move it by ~6 / 36**2 = 5e-3).
    """
    return {"rtol": tol(float64=1e-10, float32=0.0), "atol": tol(float64=1e-12, float32=2e-6)}


def _ids(n):
    return [f"s{i}" for i in range(n)]


def _meeg(rng, n=9, n_channels=6, n_times=7):
    return xr.DataArray(
        rng.normal(size=(n, n_channels, n_times)),
        dims=("stimulus", "channel", "time"),
        coords={
            "stimulus": _ids(n),
            "channel": [f"MEG{i}" for i in range(n_channels)],
            "time": np.arange(n_times) / 200.0,
        },
        attrs={"sfreq": 200.0, "modality": "meg"},
    )


def _models(rng, n, *, with_nan=True):
    out = {}
    for name in ("a", "b"):
        out[name] = rsa.rdm(rng.normal(size=(n, 3))).assign_coords(
            stimulus_a=_ids(n), stimulus_b=_ids(n)
        )
    if with_nan:  # an incomplete model: its NaN pairs are left out, as in rsa.compare
        c = out["b"].copy()
        c[0, 3] = c[3, 0] = np.nan
        out["c"] = c
    return out


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_equals_loop_over_time(method, metric, rng, tol):
    data = _meeg(rng)
    models = _models(rng, 9)
    res = time_resolved(data, models, metric=metric, method=method)
    ref = np.array(
        [
            [rsa.compare(rsa.rdm(data.isel(time=t), metric), m, method) for m in models.values()]
            for t in range(data.sizes["time"])
        ]
    )
    assert res.similarity.dims == ("time", "model")
    np.testing.assert_allclose(res.similarity.values, ref, **_tol(tol))
    np.testing.assert_allclose(res.time.values, data.time.values)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_permutation_null_p_values_and_bands(method, rng, tol):
    data = _meeg(rng)
    models = _models(rng, 9)
    res = time_resolved(data, models, method=method, n_permutations=30, alpha=0.1, seed=3)
    perms = _permutations(9, 30, 3)
    for k in (0, 17):  # a permuted time course equals compare() with a relabelled model
        p = perms[k]
        ref = [
            [
                rsa.compare(np.asarray(rsa.rdm(data.isel(time=t))), m.values[np.ix_(p, p)], method)
                for m in models.values()
            ]
            for t in range(data.sizes["time"])
        ]
        np.testing.assert_allclose(res.null.values[k], ref, **_tol(tol))
    obs, null = res.similarity.values, res.null.values
    # ties: within rounding of a 36-pair product, 8 sqrt(36) ulps (float32: 5.7e-6)
    tie = tol(float64=1e-12, float32=8 * 6 * float(np.finfo(np.float32).eps))
    np.testing.assert_allclose(res.p_value, (1 + (null >= obs - tie).sum(0)) / 31)
    peak = null.max(axis=1)[:, None, :]
    np.testing.assert_allclose(res.p_value_corrected, (1 + (peak >= obs - tie).sum(0)) / 31)
    np.testing.assert_allclose(res.band_low, np.quantile(null, 0.05, axis=0))
    np.testing.assert_allclose(res.band_high, np.quantile(null, 0.95, axis=0))
    assert (res.p_value_corrected >= res.p_value).all()
    assert res.attrs["n_permutations"] == 30 and res.attrs["sfreq"] == 200.0


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a"])
def test_permutations_that_keep_a_categorical_model_tie_in_float32(method, rng):
    # Swapping stimuli within a category leaves a categorical model unchanged: those null
    # values equal the observed one up to rounding and count as >= (with a 1e-12 margin,
    # float32 rounding dropped some of these ties and changed p). Reference: float64.
    ids = _ids(9)
    data = _meeg(rng, n_times=5)
    model = rsa.categorical_rdm({"a": ids[:3], "b": ids[3:6], "c": ids[6:]})
    kw = {"method": method, "n_permutations": 200, "seed": 1, "device": "cpu"}
    ref = time_resolved(data, model, dtype="float64", **kw)
    got = time_resolved(data, model, dtype="float32", **kw)
    np.testing.assert_array_equal(got.p_value.values, ref.p_value.values)
    np.testing.assert_array_equal(got.p_value_corrected.values, ref.p_value_corrected.values)
    assert tie_margin(36, torch.float64) == 1e-12
    assert tie_margin(36, torch.float32) == pytest.approx(48 * 2.0**-23)


def test_signal_is_detected(rng):
    data = _meeg(rng, n=12, n_times=10)
    truth = rng.normal(size=(12, 6))
    data[:, :, 6] = truth + 0.1 * rng.normal(size=(12, 6))  # the geometry appears at t = 6
    model = rsa.rdm(truth).assign_coords(stimulus_a=_ids(12), stimulus_b=_ids(12))
    res = time_resolved(data, model, n_permutations=200, seed=0)
    assert res.similarity.dims == ("time",)
    assert int(np.argmax(res.similarity.values)) == 6
    assert float(res.p_value_corrected[6]) < 0.01
    assert float(res.similarity[6]) > float(res.band_high[6])


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_temporal_generalization_equals_loop(method, rng, tol):
    data = _meeg(rng)
    other = _meeg(rng, n_channels=4, n_times=5).isel(stimulus=rng.permutation(9))
    tg = temporal_generalization(data, other, method=method)
    ref = np.array(
        [
            [
                rsa.compare(rsa.rdm(data.isel(time=t1)), rsa.rdm(other.isel(time=t2)), method)
                for t2 in range(5)
            ]
            for t1 in range(7)
        ]
    )
    assert tg.dims == ("time_a", "time_b") and tg.shape == (7, 5)
    np.testing.assert_allclose(tg.values, ref, **_tol(tol))
    own = temporal_generalization(data, method=method)
    np.testing.assert_allclose(own.values, own.values.T, **_tol(tol))
    np.testing.assert_allclose(np.diag(own.values), 1.0, **_tol(tol))
    np.testing.assert_allclose(own.time_b.values, data.time.values)


def test_bad_input(rng):
    data = _meeg(rng, n=6)
    model = _models(rng, 6, with_nan=False)["a"]
    with pytest.raises(SchemaError, match=r"needs a 'time' dim"):
        time_resolved(data.isel(time=0), model)
    with pytest.raises(StimulusAlignmentError, match=r"'s5'.*'q'"):
        time_resolved(
            data, model.assign_coords(stimulus_a=[*_ids(5), "q"], stimulus_b=[*_ids(5), "q"])
        )
    with pytest.raises(ValueError, match=r"'method'.*got 'kendall'"):
        time_resolved(data, model, method="kendall")
    with pytest.raises(ValueError, match=r"'metric'.*got 'mahalanobis'"):
        temporal_generalization(data, metric="mahalanobis")
    with pytest.raises(
        ValueError, match=r"n_permutations must be in the range \[0, inf\), got -1"
    ):
        time_resolved(data, model, n_permutations=-1)
    with pytest.raises(ValueError, match=r"alpha must be in the range \(0, 1\), got 1.5"):
        time_resolved(data, model, alpha=1.5)
    with pytest.raises(TypeError, match=r"data must be an xarray.DataArray"):
        temporal_generalization(data.values)
    with pytest.raises(SchemaError, match=r"extra dims \['subject'\]"):
        time_resolved(data.expand_dims(subject=["01", "02"]), model)


@pytest.mark.parametrize(
    ("scale", "dtype"), [(1e20, "float32"), (1e-25, "float32"), (1e200, "float64")]
)
@pytest.mark.parametrize("metric", ["correlation", "euclidean", "sqeuclidean"])
def test_time_resolved_at_extreme_magnitudes(metric, scale, dtype, rng):
    # Issue 17 item 9: float32 data x 1e20 (or x 1e-25) overflowed (underflowed) in the
    # RDMs; the results are scale-free, so they must equal those of the unscaled data
    # (reference: the same functions in float64 on data of unit scale). Models x 1e30 too.
    data = _meeg(rng, n_times=4)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else TOL
    ref = time_resolved(
        data, _models(np.random.default_rng(0), 9, with_nan=False), metric=metric, dtype="float64"
    )
    models = {k: v * 1e30 for k, v in _models(np.random.default_rng(0), 9, with_nan=False).items()}
    got = time_resolved(data * scale, models, metric=metric, dtype=dtype, device="cpu")
    np.testing.assert_allclose(got.similarity.values, ref.similarity.values, **tol)
    ref = temporal_generalization(data, metric=metric, dtype="float64")
    got = temporal_generalization(data * scale, metric=metric, dtype=dtype, device="cpu")
    np.testing.assert_allclose(got.values, ref.values, **tol)
