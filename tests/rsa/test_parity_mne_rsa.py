"""Every ``rsa.compare`` method in the searchlight and the time-resolved RSA.

Kendall's tau-a is checked against mne-rsa 1.0 (``rsa_array(..., rsa_metric="kendall-tau-a")``,
the only one of these comparisons that mne-rsa has besides Spearman and Pearson, which
``test_searchlight.py`` covers); every method is checked against :func:`brainalign.rsa.compare`
on the RDM of each patch / time point, which is itself checked against rsatoolbox.
"""

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist

from brainalign import rsa
from brainalign.rsa._searchlight import searchlight

mne_rsa = pytest.importorskip("mne_rsa")

OTHER_METHODS = [m for m in rsa.METHODS if m not in ("spearman", "pearson")]


def _atol(method, tol, *, full_rank):
    """Absolute tolerance of a batched method against ``rsa.compare`` (both in one dtype).

    ``full_rank``: the data kernels have full rank (time points of 9 channels, 7 stimuli),
    not the searchlight's patches of 4 to 7 voxels (6 stimuli).
    """
    if method == "bures":
        # Square roots of the eigenvalues of rank-deficient kernels: rounding noise of
        # ~1e-16 in a zero eigenvalue becomes ~1e-8 after sqrt, so 1e-8 there.
        # float32: the same noise is eps32 * lambda_max, sqrt(eps32) = 3.5e-4 after the root
        # (/ (n - 1) = 5 through the trace normalisation: ~7e-5 per zero eigenvalue, 1 or 2
        # per patch); with full-rank kernels eps32 * cond (<= 335 here) = 4e-5 instead.
        return tol(float64=1e-8, float32=1e-4 if full_rank else 5e-4)
    if method == "neg_riem_dist":
        # float32: the eigenvalues of G_a whitened by G_b's Cholesky factor err by
        # eps32 * cond(G_b) relative (cond <= 831 on the checked patches, <= 335 on the
        # epochs): the log-eigenvalue distance by sqrt(n - 1) * eps32 * cond = 2.2e-4
        return tol(float64=1e-10, float32=5e-4)
    # float32: squared Euclidean RDMs of <= 9 features (float32 sums, ~3 eps32 relative)
    # and a 15- or 21-pair (whitened) correlation or cosine: ~1e-6 on values in [-1, 1]
    # (observed <= 2.4e-7); tau-a counts concordant pairs exactly (no near-tied distances)
    return tol(float64=1e-10, float32=2e-6)


def _ids(n):
    return [f"s{i}" for i in range(n)]


def _compare(data_rdm, model, method):
    """``rsa.compare`` in the order the searchlight uses (the model first for neg_riem_dist)."""
    if method == "neg_riem_dist":
        return rsa.compare(model, data_rdm, method)
    return rsa.compare(data_rdm, model, method)


@pytest.fixture(scope="module")
def volume():
    """6 stimuli on a 4 x 3 x 3 grid, and a model RDM with ties (tau-a differs from tau-b)."""
    rng = np.random.default_rng(11)
    shape, zooms = (4, 3, 3), np.array([3.0, 3.0, 3.0])
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk * zooms
    n = 6
    data = xr.DataArray(
        rng.normal(size=(n, len(ijk))),
        dims=("stimulus", "voxel"),
        coords={"stimulus": _ids(n), **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")}},
    )
    model = rsa.rdm(rng.normal(size=(n, 8)), "sqeuclidean").round(0)
    model = model.assign_coords(stimulus_a=_ids(n), stimulus_b=_ids(n))
    return data, xyz, model


@pytest.fixture(scope="module")
def epochs():
    """7 stimuli x 9 channels x 5 time points, and a model with ties."""
    rng = np.random.default_rng(12)
    n, c, t = 7, 9, 5
    data = xr.DataArray(
        rng.normal(size=(n, c, t)),
        dims=("stimulus", "channel", "time"),
        coords={"stimulus": _ids(n), "time": np.arange(t) / 100},
    )
    model = rsa.rdm(rng.normal(size=(n, 9)), "sqeuclidean").round(0)
    return data, model.assign_coords(stimulus_a=_ids(n), stimulus_b=_ids(n))


@pytest.mark.parametrize("metric", ["correlation", "sqeuclidean"])
def test_searchlight_tau_a_matches_mne_rsa(volume, metric, tol):
    data, xyz, model = volume
    got = searchlight(data, model, radius=4.0, metric=metric, method="kendall_tau_a")
    patches = mne_rsa.searchlight(data.shape, dist=cdist(xyz, xyz), spatial_radius=4.0)
    ref = mne_rsa.rsa_array(data.values, np.asarray(model), patches, data_rdm_metric=metric,
                            rsa_metric="kendall-tau-a")  # fmt: skip
    # float32: tau-a is an exact ratio of pair counts (the data RDMs have no near-ties that
    # float32 rounding could swap), rounded once to float32: <= eps32 / 2 * |tau| = 6e-8
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=tol(float64=1e-12, float32=1.2e-7))


def test_time_resolved_tau_a_matches_mne_rsa(epochs, tol):
    data, model = epochs
    got = rsa.time_resolved(data, model, method="kendall_tau_a", n_permutations=0)
    patches = mne_rsa.searchlight(data.shape, temporal_radius=0)  # all channels, one sample
    ref = mne_rsa.rsa_array(data.values, np.asarray(model), patches,
                            data_rdm_metric="correlation", rsa_metric="kendall-tau-a")  # fmt: skip
    # float32: an exact ratio of pair counts rounded once to float32 (as above)
    atol = tol(float64=1e-12, float32=1.2e-7)
    np.testing.assert_allclose(got.similarity.values, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_searchlight_every_method_equals_compare_per_patch(volume, method, tol):
    data, xyz, model = volume
    metric = "sqeuclidean"  # a second moment of full rank for neg_riem_dist (patches >= 6)
    got = searchlight(data, model, radius=4.0, metric=metric, method=method)
    assert got.attrs["method"] == method
    patches = mne_rsa.searchlight(data.shape, dist=cdist(xyz, xyz), spatial_radius=4.0)
    values = data.values
    n = data.sizes["stimulus"]
    if method == "neg_riem_dist":
        # a patch of fewer than n - 1 voxels has a singular second moment: NaN in every
        # patch and dtype (rounding used to let Cholesky pass on some, e.g. patch 6: -33.0)
        small = got.patch_size.values < n - 1
        assert small.sum() == 8 and np.isnan(got.values[small]).all()
        assert np.isfinite(got.values[~small]).all()
    for v, patch in enumerate(patches):
        if v % 5:  # every fifth patch: the reference loops in Python
            continue
        if method == "neg_riem_dist" and got.patch_size.values[v] < n - 1:
            assert np.isnan(got.values[v])  # a singular second moment: undefined, not raised
            continue
        sub = data.copy(data=values).isel(voxel=np.asarray(patch[-1]))
        want = _compare(rsa.rdm(sub, metric), model, method)
        atol = _atol(method, tol, full_rank=False)
        np.testing.assert_allclose(got.values[v], want, rtol=0, atol=atol)


@pytest.mark.parametrize(("metric", "rank_drop"), [("cosine", 0), ("correlation", 1)])
def test_searchlight_neg_riem_dist_is_nan_for_short_patches(volume, metric, rank_drop):
    # The second moment of a cosine (correlation) RDM of F features has rank <= F (F - 1:
    # the patterns are centred), so below n - 1 it is singular, whatever the rounding
    data, _, model = volume
    n = data.sizes["stimulus"]
    got = searchlight(data, model, radius=4.0, metric=metric, method="neg_riem_dist")
    short = got.patch_size.values - rank_drop < n - 1
    assert short.any() and (~short).any()
    assert np.isnan(got.values[short]).all()
    assert np.isfinite(got.values[~short]).all()


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_time_resolved_every_method_equals_compare(epochs, method, tol):
    data, model = epochs
    metric = "sqeuclidean"
    got = rsa.time_resolved(data, model, metric=metric, method=method, n_permutations=8, seed=0)
    want = [
        _compare(rsa.rdm(data.isel(time=t), metric), model, method)
        for t in range(data.sizes["time"])
    ]
    atol = _atol(method, tol, full_rank=True)
    np.testing.assert_allclose(got.similarity.values, want, rtol=0, atol=atol)
    assert got.null.shape == (8, data.sizes["time"])
    # a permuted model is compared the same way: the null's first sample by hand
    perm = np.argsort(np.random.default_rng(0).random((8, model.sizes["stimulus_a"])), axis=1)[0]
    ids = model.stimulus_a.values
    permuted = model.copy(data=np.asarray(model)[perm][:, perm]).assign_coords(
        stimulus_a=ids, stimulus_b=ids
    )
    first = _compare(rsa.rdm(data.isel(time=0), metric), permuted, method)
    np.testing.assert_allclose(got.null.values[0, 0], first, rtol=0, atol=atol)


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_temporal_generalization_every_method_equals_compare(epochs, method, tol):
    data, _ = epochs
    metric = "sqeuclidean"
    got = rsa.temporal_generalization(data, metric=metric, method=method)
    r = [rsa.rdm(data.isel(time=t), metric) for t in range(data.sizes["time"])]
    want = [[rsa.compare(a, b, method) for b in r] for a in r]
    atol = _atol(method, tol, full_rank=True)
    np.testing.assert_allclose(got.values, want, rtol=0, atol=atol)


def test_searchlight_method_errors(volume):
    data, _, model = volume
    with pytest.raises(ValueError, match=r"'method' parameter.*'kendall_tau_a'.*got 'tau_a'"):
        searchlight(data, model, radius=4.0, method="tau_a")
    holed = model.copy()
    holed[0, 1] = holed[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"method='bures' needs complete RDMs, but model_rdms"):
        searchlight(data, holed, radius=4.0, method="bures")
    with pytest.raises(ValueError, match=r"all zero over their finite pairs.*whitened_cosine"):
        rsa.time_resolved(data.rename(voxel="channel").expand_dims(time=[0.0]).transpose(
            "stimulus", "channel", "time"), model * 0, method="whitened_cosine")  # fmt: skip
