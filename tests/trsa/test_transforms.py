"""RGTM: against rsatoolbox 0.3.2, a direct port of the authors' formula, and properties."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from brainalign import trsa
from brainalign.data._schema import RDM_DIMS


def _authors_gt(v, lower, upper):
    """doerlbh/TopologicalRSA utils_transform.gt_transform (gt_type="lu"), ported."""
    r = rankdata(v)
    x = (r - r.min()) / (r.max() - r.min())
    a, b = np.quantile(x, lower), np.quantile(x, upper)
    out = x.copy()
    out[x < a] = 0
    mid = (x >= a) & (x <= b)
    out[mid] = (x[mid] - a) / (b - a)
    out[x > b] = 1
    return out


EPS32 = float(np.finfo(np.float32).eps)


def _ramp_tol(tol, v, lower, upper, float64=1e-12):
    """``tol`` of an RGTM ramp ``(x - a) / (b - a)`` of the values ``v``.

    float32: x and the quantiles a, b round by eps32 |x| (x <= max|v|), which the ramp
    divides by b - a; the thresholds move by as little, and the ramp is continuous there.
    x 4 margin.
    """
    a, b = np.quantile(v, [lower, upper])
    return tol(float64=float64, float32=4 * EPS32 * np.abs(v).max() / (b - a))


def _vec(m):
    return squareform(np.asarray(m), checks=False)


def _rdms(rng, n_rdm=4, n=12, scale=10.0, offset=1.0):
    return np.stack([squareform(pdist(rng.normal(size=(n, 6)))) * scale for _ in range(n_rdm)])


def _labeled(mats, dim="layer"):
    n = mats.shape[-1]
    ids = [f"s{i}" for i in range(n)]
    return xr.DataArray(
        mats,
        dims=(dim, *RDM_DIMS),
        coords={dim: [f"L{i}" for i in range(len(mats))], RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
    )


@pytest.mark.parametrize(("lower", "upper"), [(0.2, 0.8), (0.0, 0.5), (0.4, 0.6), (0.05, 1.0)])
def test_rank_false_equals_rsatoolbox_on_single_rdms(rng, lower, upper, tol):
    from rsatoolbox.rdm import RDMs, geotopological_transform

    # Euclidean distances >= 1: rsatoolbox's in-place defect does not strike (see rgtm Notes)
    for m in _rdms(rng, 3) + 1.0:
        ref = geotopological_transform(RDMs(_vec(m)[None]), lower, upper).get_vectors()[0]
        got = _vec(trsa.rgtm(m, lower, upper, rank=False).values)
        atol = _ramp_tol(tol, _vec(m), lower, upper)
        np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


def test_rsatoolbox_semantics_equals_rsatoolbox_on_a_batch_and_differs_from_per_rdm(rng, tol):
    from rsatoolbox.rdm import RDMs, geotopological_transform

    mats = _rdms(rng, 5) + 1.0
    mats *= np.arange(1, 6)[:, None, None]  # different scales: pooled quantiles matter
    vecs = np.stack([_vec(m) for m in mats])
    ref = geotopological_transform(RDMs(vecs), 0.2, 0.8).get_vectors()
    got = trsa.rgtm(_labeled(mats), 0.2, 0.8, semantics="rsatoolbox")
    got_v = np.stack([_vec(m) for m in got.values])
    # float32: the pooled quantiles of all the values
    atol = _ramp_tol(tol, vecs.ravel(), 0.2, 0.8)
    np.testing.assert_allclose(got_v, ref, rtol=0, atol=atol)
    per_rdm = trsa.rgtm(_labeled(mats), 0.2, 0.8, rank=False)
    diff = np.abs(np.stack([_vec(m) for m in per_rdm.values]) - got_v)
    assert diff.max() > 0.5  # pooled and per-RDM thresholds give different RGTMs


def test_rsatoolbox_semantics_reproduces_its_in_place_defect(rng, tol):
    from rsatoolbox.rdm import RDMs, geotopological_transform

    m = squareform(pdist(rng.normal(size=(15, 30)), "correlation")) / 2  # in (0, 1)
    ref = geotopological_transform(RDMs(_vec(m)[None]), 0.2, 0.8).get_vectors()[0]
    got = _vec(trsa.rgtm(m, 0.2, 0.8, semantics="rsatoolbox").values)
    # float32: the ramp's bound; the defect's step at b (rescaled values above b set to 1)
    # is not crossed here: no rescaled value lies within that bound of b (checked below)
    atol = _ramp_tol(tol, _vec(m), 0.2, 0.8)
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    formula = _vec(trsa.rgtm(m, 0.2, 0.8, rank=False).values)
    # the formula keeps the ramp; rsatoolbox sets rescaled values above b (< 1) to 1
    b = np.quantile(_vec(m), 0.8)
    hit = (formula > b) & (formula < 1)
    assert hit.any()
    assert np.all(np.abs(formula - b) > atol)
    np.testing.assert_array_equal(ref[hit], 1.0)


@pytest.mark.parametrize(("lower", "upper"), [(0.2, 0.8), (0.0, 1.0), (0.45, 0.55), (0.3, 0.3)])
def test_default_equals_authors_formula(rng, lower, upper, tol):
    mats = _rdms(rng, 3, n=10)
    mats[1] = np.round(mats[1])  # ties
    got = trsa.rgtm(_labeled(mats), lower, upper)
    for m, g in zip(mats, got.values, strict=True):
        if lower == upper:  # the authors divide by zero; the step is documented instead
            r = rankdata(_vec(m))
            x = (r - r.min()) / (r.max() - r.min())
            ref = (x > np.quantile(x, lower)).astype(float)
        else:
            ref = _authors_gt(_vec(m), lower, upper)
        # float32: the ranks scaled to [0, 1] round by eps32 (the step at lower == upper
        # compares the same float32 values with their quantile: exact)
        atol = _ramp_tol(tol, np.linspace(0, 1, 5), lower, upper) if lower < upper else 1e-12
        np.testing.assert_allclose(_vec(g), ref, rtol=0, atol=atol)
        np.testing.assert_array_equal(np.diag(g), 0)


def test_sigmoid_equals_authors_formula(rng, tol):
    m = _rdms(rng, 1)[0]
    r = rankdata(_vec(m))
    x = (r - r.min()) / (r.max() - r.min())
    ref = 1 / (1 + np.exp(-(x - 0.3) * 7))
    got = _vec(trsa.rgtm_sigmoid(m, 7.0, 0.3).values)
    # float32: x in [0, 1] rounds by eps32, the sigmoid's slope (at most 7 / 4) carries it,
    # and the float32 exp and division add ~2 eps32 of the result (<= 1): x 4 margin
    rtol = tol(float64=1e-12, float32=0)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=tol(1e-14, 4 * (7 / 4 + 2) * EPS32))
    raw = (_vec(m) - _vec(m).min()) / np.ptp(_vec(m))
    got = _vec(trsa.rgtm_sigmoid(m, rank=False).values)
    # float32: the raw values min-max scaled round by eps32 |v| / ptp(v) (<= 2 eps32 here)
    atol = tol(0, 4 * (10 / 4 * np.abs(_vec(m)).max() / np.ptp(_vec(m)) + 2) * EPS32)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(raw - 0.5) * 10)), rtol=rtol, atol=atol)


def test_labels_and_dim_order_are_kept(rng):
    da = _labeled(_rdms(rng, 3)).transpose(RDM_DIMS[0], "layer", RDM_DIMS[1])
    da.attrs["modality"] = "model"
    out = trsa.rgtm(da)
    assert out.dims == da.dims
    assert out["layer"].values.tolist() == ["L0", "L1", "L2"]
    assert out.attrs["kind"] == "rgtm" and out.attrs["modality"] == "model"
    one = trsa.rgtm(da.sel(layer="L1"))
    np.testing.assert_allclose(out.sel(layer="L1").values, one.values, atol=1e-15)


_finite = st.integers(0, 300).map(float)  # distinct values stay distinct under f below


@settings(max_examples=40, deadline=None)
@given(
    st.integers(4, 9).flatmap(
        lambda n: st.lists(_finite, min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2)
    ),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_properties_range_monotone_invariant(vals, q1, q2):
    v = np.asarray(vals)
    if np.ptp(v) == 0:
        return
    lower, upper = min(q1, q2), max(q1, q2)
    m = squareform(v)
    out = _vec(trsa.rgtm(m, lower, upper).values)
    assert out.min() >= 0 and out.max() <= 1
    order = np.argsort(v, kind="stable")
    assert np.all(np.diff(out[order]) >= 0)  # monotone in the input
    for f in (np.sqrt, lambda z: np.exp(z / 100), lambda z: 3 * z**3 + 2):
        np.testing.assert_array_equal(_vec(trsa.rgtm(f(m), lower, upper).values), out)
    raw = _vec(trsa.rgtm(m, lower, upper, rank=False).values)
    assert raw.min() >= 0 and raw.max() <= 1
    assert np.all(np.diff(raw[order]) >= 0)
    # without ranks the ramp is not invariant, but which pairs are 0 and 1 is
    raw_f = _vec(trsa.rgtm(np.sqrt(m), lower, upper, rank=False).values)
    lin = (np.quantile(v, lower) < v) & (v < np.quantile(v, upper))
    np.testing.assert_array_equal(raw_f[~lin] == 1, raw[~lin] == 1)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"lower": 0.9, "upper": 0.1}, ValueError, r"lower=0\.9, upper=0\.1"),
        ({"lower": -0.1}, ValueError, r"lower must be in the range \[0, 1\], got -0\.1"),
        ({"upper": 1.5}, ValueError, r"upper must be in the range \[0, 1\], got 1\.5"),
        ({"semantics": "rsatolbox"}, ValueError, r"got 'rsatolbox'.*Did you mean 'rsatoolbox'"),
        ({"semantics": "rsatoolbox", "rank": True}, ValueError, r"got rank=True"),
        ({"rank": "yes"}, TypeError, r"rank must be a bool or None, got str 'yes'"),
        (
            {"semantics": "rsatoolbox", "lower": 0.3, "upper": 0.3},
            ValueError,
            r"lower=0\.3, upper=0\.3",
        ),
    ],
)
def test_argument_errors(rng, kwargs, err, match):
    with pytest.raises(err, match=match):
        trsa.rgtm(_rdms(rng, 1)[0], **kwargs)


def test_data_errors(rng):
    m = _rdms(rng, 2)
    m[1] = 1 - np.eye(m.shape[-1])
    with pytest.raises(ValueError, match=r"1 constant RDM\(s\) \(layer='L1'\)"):
        trsa.rgtm(_labeled(m))
    bad = _rdms(rng, 1)[0]
    bad[0, 1] = bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"rdm holds 1 NaN"):
        trsa.rgtm(bad)
    with pytest.raises(ValueError, match=r"at least 3 stimuli.*it has 2"):
        trsa.rgtm(np.array([[0, 1], [1, 0.0]]))
    with pytest.raises(ValueError, match=r"alpha must be in the range \(0, inf\), got 0"):
        trsa.rgtm_sigmoid(bad * 0 + 1, 0.0)
    with pytest.raises(ValueError, match=r"beta must be in the range \[0, 1\], got 2"):
        trsa.rgtm_sigmoid(_rdms(rng, 1)[0], 1.0, 2)
