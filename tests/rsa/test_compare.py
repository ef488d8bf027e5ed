"""RDM comparisons against scipy.stats and rsatoolbox 0.3.2 ``compare``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import squareform
from scipy.stats import pearsonr, spearmanr

import brainalign as ba
from brainalign import rsa


@pytest.fixture
def pair(rng):
    x = rng.normal(size=(9, 30))
    return rsa.rdm(x), rsa.rdm(x + rng.normal(size=x.shape))


def _vec(r):
    return squareform(np.asarray(r), checks=False)


def test_spearman_pearson_match_scipy(pair, device, tol):
    a, b = pair
    # float32 (the pass, or dtype "auto" on a GPU): a correlation (|r| <= 1) of 36-entry RDM
    # vectors rounded in float32: a few eps32 (1.2e-7); 1e-5 on a GPU (other reduction order)
    close = tol(float64=1e-12, float32=1e-6) if device == "cpu" else 1e-5
    assert rsa.compare(a, b, "spearman", device=device) == pytest.approx(
        spearmanr(_vec(a), _vec(b))[0], abs=close
    )
    assert rsa.compare(a, b, "pearson", device=device) == pytest.approx(
        pearsonr(_vec(a), _vec(b))[0], abs=close
    )


@pytest.mark.parametrize(
    ("method", "rsatoolbox_method"),
    [("spearman", "spearman"), ("pearson", "corr"), ("cosine", "cosine")],
)
@pytest.mark.float32
def test_matches_rsatoolbox(pair, method, rsatoolbox_method, tol):
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as rt_compare

    a, b = pair
    ref = rt_compare(RDMs(_vec(a)[None]), RDMs(_vec(b)[None]), method=rsatoolbox_method)[0, 0]
    # float32: a correlation of RDM vectors (|r| <= 1) from dot products accumulated in
    # float64 of float32 values: a few eps32 (1.2e-7)
    assert rsa.compare(a, b, method) == pytest.approx(ref, abs=tol(float64=1e-10, float32=1e-6))


def test_ties_match_scipy(tol):
    a = np.array([[0, 1, 1, 2], [1, 0, 2, 2], [1, 2, 0, 3], [2, 2, 3, 0.0]])
    b = np.array([[0, 3, 1, 1], [3, 0, 1, 2], [1, 1, 0, 2], [1, 2, 2, 0.0]])
    # float32: integer dissimilarities keep their ties exactly; the rank correlation of 6
    # entries is then rounded in float32: a few eps32 (1.2e-7)
    ref = spearmanr(_vec(a), _vec(b))[0]
    assert rsa.compare(a, b) == pytest.approx(ref, abs=tol(float64=1e-12, float32=1e-6))


@pytest.mark.float32
def test_nan_pairs_are_masked(pair, tol):
    a, b = pair
    a = a.copy()
    a[0, 1] = a[1, 0] = np.nan
    a[2, 5] = a[5, 2] = np.nan
    va, vb = _vec(a), _vec(b)
    ok = np.isfinite(va)
    assert ok.sum() == len(va) - 2
    # float32: a correlation (|r| <= 1) of 34 entries rounded in float32: a few eps32
    close = tol(float64=1e-12, float32=1e-6)
    assert rsa.compare(a, b) == pytest.approx(spearmanr(va[ok], vb[ok])[0], abs=close)
    assert rsa.compare(b, a, "pearson") == pytest.approx(pearsonr(va[ok], vb[ok])[0], abs=close)


def test_alignment_by_label_not_position(rng):
    da = ba.responses(rng.normal(size=(6, 8)), list("abcdef"))
    other = ba.responses(rng.normal(size=(6, 8)), list("abcdef"))
    a, b = rsa.rdm(da), rsa.rdm(other)
    shuffled = rsa.rdm(other.isel(stimulus=[5, 3, 1, 0, 2, 4]))
    assert rsa.compare(a, shuffled) == pytest.approx(rsa.compare(a, b), abs=1e-12)


def test_broadcast_data_over_time_models_over_layer(rng):
    values = rng.normal(size=(6, 4, 3))
    data = rsa.rdm(
        ba.responses(values, dims=("stimulus", "channel", "time"), time=[0.0, 0.1, 0.2])
    )
    models = xr_stack = rsa.rdm(
        ba.responses(
            rng.normal(size=(6, 5, 2)), dims=("stimulus", "unit", "layer"), layer=["l1", "l2"]
        )
    )
    res = rsa.compare(data, models)
    assert set(res.dims) == {"time", "layer"} and res.attrs["method"] == "spearman"
    assert float(res.sel(time=0.1, layer="l2")) == pytest.approx(
        rsa.compare(data.sel(time=0.1), xr_stack.sel(layer="l2")), abs=1e-12
    )


def test_errors(pair):
    a, b = pair
    with pytest.raises(ValueError, match=r"'method' parameter.*got 'kendall'"):
        rsa.compare(a, b, "kendall")
    nan = a.copy(data=np.full(a.shape, np.nan))
    with pytest.raises(ValueError, match=r"only 0 stimulus pair\(s\) are finite in both"):
        rsa.compare(nan, b)
    const = a.copy(data=1.0 - np.eye(a.shape[0]))
    with pytest.raises(ValueError, match=r"rdm_b is constant over the valid stimulus pairs"):
        rsa.compare(a, const)
    other = rsa.rdm(
        ba.responses(np.random.default_rng(0).normal(size=(9, 3)), [f"s{i}" for i in range(9)])
    )
    with pytest.raises(ba.StimulusAlignmentError, match=r"missing 9 id\(s\)"):
        rsa.compare(a, other)
    with pytest.raises(ba.SchemaError, match=r"rdm_a must be a square \(n, n\) matrix"):
        rsa.compare(np.ones((2, 3)), b)
    with pytest.raises(ValueError, match=r"rdm_a must be symmetric"):
        rsa.compare(np.array([[0, 1, 2], [3, 0, 1], [2, 1, 0.0]]), np.ones((3, 3)))
    with pytest.raises(ba.SchemaError, match=r"must be an RDM with dims"):
        rsa.compare(ba.responses(np.eye(3)), b)


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 9), st.integers(0, 2**32 - 1))
def test_property_rank_methods_invariant_to_monotone_transforms(n, seed):
    rng = np.random.default_rng(seed)
    a = rsa.rdm(rng.normal(size=(n, 6)))
    b = rsa.rdm(rng.normal(size=(n, 6)))
    transformed = b.copy(data=np.exp(3 * b.values) - 1)  # strictly increasing, keeps 0 diag
    assert rsa.compare(a, b) == pytest.approx(rsa.compare(a, transformed), abs=1e-9)
