"""RDMs against independent references: scipy.spatial.distance and rsatoolbox 0.3.2."""

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import pdist, squareform

import brainalign as ba
from brainalign import rsa

SCIPY = {
    "correlation": "correlation",
    "cosine": "cosine",
    "euclidean": "euclidean",
    "sqeuclidean": "sqeuclidean",
}


@pytest.mark.parametrize("metric", list(SCIPY))
def test_matches_scipy_float64(metric, rng, device):
    x = rng.normal(size=(12, 40)) * 3 + 1
    got = rsa.rdm(x, metric, device=device, dtype="float64")
    np.testing.assert_allclose(
        np.asarray(got), squareform(pdist(x, SCIPY[metric])), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("metric", list(SCIPY))
def test_matches_scipy_float32(metric, rng, device):
    x = rng.normal(size=(12, 40))
    got = rsa.rdm(x, metric, device=device, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_allclose(
        np.asarray(got), squareform(pdist(x, SCIPY[metric])), rtol=1e-5, atol=1e-5
    )


@pytest.mark.float32
@pytest.mark.parametrize(
    ("metric", "rsatoolbox_method", "scale"),
    [
        ("correlation", "correlation", 1.0),
        ("sqeuclidean", "euclidean", None),  # rsatoolbox 'euclidean' = mean squared difference
    ],
)
def test_matches_rsatoolbox(metric, rsatoolbox_method, scale, rng, tol):
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    x = rng.normal(size=(10, 25))
    ref = calc_rdm(Dataset(x), method=rsatoolbox_method).get_matrices()[0]
    got = np.asarray(rsa.rdm(x, metric))
    if scale is None:
        got = got / x.shape[1]
    # float32: a 25-term dot product of unit-scale values rounded once, float32 sums:
    # ~eps32 * sqrt(25) = 6e-7 relative; dissimilarities of order 1
    np.testing.assert_allclose(
        got, ref, rtol=tol(float64=1e-10, float32=2e-6), atol=tol(float64=1e-12, float32=2e-6)
    )


def test_labels_and_broadcast_over_time(rng, tol):
    values = rng.normal(size=(5, 4, 3))  # stimulus, channel, time
    da = ba.responses(
        values,
        list("abcde"),
        dims=("stimulus", "channel", "time"),
        time=[0.0, 0.1, 0.2],
        category=("stimulus", list("xxyyy")),
        modality="eeg",
    )
    r = rsa.rdm(da)
    assert r.dims == ("time", "stimulus_a", "stimulus_b")
    assert list(r.stimulus_a.values) == list("abcde")
    assert list(r.category_a.values) == list("xxyyy")
    assert r.attrs["metric"] == "correlation" and r.attrs["modality"] == "eeg"
    # float32: 4-term dot products of centred unit-scale values, rounded once: a few eps32
    # (2.4e-7) on dissimilarities of order 1
    for k, t in enumerate([0.0, 0.1, 0.2]):
        np.testing.assert_allclose(
            r.sel(time=t).values,
            squareform(pdist(values[:, :, k], "correlation")),
            atol=tol(float64=1e-12, float32=1e-6),
        )


def test_unit_order_does_not_matter(rng):
    da = ba.responses(rng.normal(size=(6, 9)))
    perm = rng.permutation(9)
    xr.testing.assert_allclose(rsa.rdm(da), rsa.rdm(da.isel(unit=perm)))


@pytest.mark.parametrize(
    ("data", "kwargs", "exc", "match"),
    [
        (
            np.ones((3, 4)),
            {"metric": "corelation"},
            ValueError,
            r"'metric' parameter.*got 'corelation'\. Did you mean 'correlation'\?",
        ),
        (
            np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 1.0]]),
            {},
            ValueError,
            r"data holds 1 NaN value\(s\) out of 6 in 1 of 3 rows \('1'\)",
        ),
        (
            np.array([[1.0, 2.0], [3.0, 3.0], [0.0, 1.0]]),
            {},
            ValueError,
            r"data has 1 constant pattern\(s\) \('1'\)",
        ),
        (
            np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 1.0]]),
            {"metric": "cosine"},
            ValueError,
            r"data has 1 all-zero pattern\(s\) \('1'\): cosine distance is undefined",
        ),
        (
            np.zeros((3, 0)),
            {"metric": "euclidean"},
            ValueError,
            r"data is empty \(shape \(3, 0\)\)",
        ),
        (np.ones((1, 3)), {"metric": "euclidean"}, ValueError, r"at least 2 stimuli; data has 1"),
        (
            np.ones(3),
            {},
            ba.SchemaError,
            r"must be 2-D \(n_stimuli, n_features\), got shape \(3,\)",
        ),
    ],
)
def test_bad_input(data, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rsa.rdm(data, **kwargs)


def test_trials_and_unclear_feature_dim():
    trials = ba.responses(np.ones((4, 2)), list("aabb"), sample_dim="trial")
    with pytest.raises(ba.SchemaError, match=r"average the trials first"):
        rsa.rdm(trials)
    odd = ba.responses(np.ones((3, 2, 2)), dims=("stimulus", "unit", "voxel"))
    with pytest.raises(ba.SchemaError, match=r"Cannot tell which dim of data holds the features"):
        rsa.rdm(odd)
    with pytest.raises(
        ValueError, match=r"'feature_dim' parameter.*got 'units'.*Did you mean 'unit'"
    ):
        rsa.rdm(odd, feature_dim="units")


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(2, 6)), elements=finite),
    st.sampled_from(["euclidean", "sqeuclidean"]),
)
def test_property_symmetric_zero_diagonal_nonnegative(test_dtype, x, metric):
    try:
        d = np.asarray(rsa.rdm(x, metric))
    except ValueError as err:  # documented: tiny (e.g. subnormal) data whose distances
        assert f"does not fit in {test_dtype}" in str(err)  # underflow are refused, not zeroed
        return
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)
    assert np.all(d >= 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 9), st.integers(0, 2**32 - 1))
def test_property_stimulus_permutation_invariance(tol, n, seed):
    rng = np.random.default_rng(seed)
    da = ba.responses(rng.normal(size=(n, 5)))
    perm = rng.permutation(n)
    r1 = rsa.rdm(da)
    r2 = rsa.rdm(da.isel(stimulus=perm))
    a, b = ba.align_stimuli(r1, r2)
    # float32: reordering the stimuli changes which terms share a block of the 5-feature
    # correlation sums: a few eps32 (2.4e-7) on dissimilarities of order 1
    np.testing.assert_allclose(a.values, b.values, atol=tol(float64=1e-12, float32=1e-6))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rng):
    x = rng.normal(size=(50, 300))
    cpu = np.asarray(rsa.rdm(x, device="cpu", dtype="float64"))
    gpu = np.asarray(rsa.rdm(x, device="cuda", dtype="float32"))
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5)
