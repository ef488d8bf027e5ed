"""brainalign.align CKA against Kornblith et al.'s and Lange et al.'s reference code.

References (vendored under tests/align/_refs, sources and commits in their headers):

* ``kornblith_cka.py``: the Colab code of Kornblith et al. (2019), google-research
  ``representation_similarity/Demo.ipynb`` — ``feature_space_linear_cka``, ``cka`` on
  ``gram_linear`` / ``gram_rbf`` Gram matrices, with ``debiased`` for the Song estimator.
* ``repsim_cka.py``: Lange et al.'s ``repsim`` ``AngularCKA`` (``arccos`` of the cosine of
  centred Gram matrices; ``use_unbiased_hsic=True`` zeroes their diagonals), for
  ``estimator="lange"`` and ``output="angular"``.

Minibatch CKA (Nguyen et al., 2021) has no maintained reference implementation; it is
checked against Kornblith's ``center_gram(..., unbiased=True)`` applied batch by batch and
aggregated as in Nguyen et al.'s equations 2-3.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.spatial.distance import cdist

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.align import _cka as cka_module
from brainalign.align._cka import cka

_REFS = Path(__file__).parent / "_refs"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_ref_{name}", _REFS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kornblith = _load("kornblith_cka")
repsim = _load("repsim_cka")

TOL = dict(rtol=0, atol=1e-8)
EPS32 = float(np.finfo(np.float32).eps)
# float32: CKA (in [0, 1]) of float32 kernel entries, each within a few eps32 relative, with
# every HSIC sum accumulated in float64: the result moves by a few eps32 (observed <= 1e-7)
CKA32 = 1e-6


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The test problems are tiny: one torch thread is faster and shares the cores (with
    several threads, each tiny GEMM can wait tens of ms on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ids(n):
    return [f"s{i:03d}" for i in range(n)]


def _reps(rng, n, p, ids=None, feature_dim="unit"):
    values = rng.normal(size=(n, p))
    return ba.responses(values, _ids(n) if ids is None else ids, feature_dim=feature_dim)


def _pair(rng, n, p, q, noise=1.0):
    """Two related representations (numpy) of n stimuli."""
    x = rng.normal(size=(n, p))
    y = np.tanh(x @ rng.normal(size=(p, q)) / np.sqrt(p)) + noise * rng.normal(size=(n, q))
    return x, y


def _da(values, ids=None):
    return ba.responses(values, _ids(len(values)) if ids is None else ids)


def _value(res):
    assert res.dims == ()
    return float(res)


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize("n, p, q", [(60, 8, 5), (20, 50, 30), (40, 30, 12), (7, 3, 9)])
@pytest.mark.parametrize("estimator, debiased", [("gretton", False), ("song", True)])
@pytest.mark.float32
def test_linear_matches_kornblith(rng, n, p, q, estimator, debiased, tol):
    x, y = _pair(rng, n, p, q)
    got = _value(cka(_da(x), _da(y), estimator=estimator))
    ref_features = kornblith.feature_space_linear_cka(x, y, debiased=debiased)
    ref_gram = kornblith.cka(kornblith.gram_linear(x), kornblith.gram_linear(y), debiased)
    # float32: CKA (in [0, 1]) from HSIC terms accumulated in float64 of float32 products;
    # the debiased U-statistic subtracts terms of similar size (n up to 60): ~n * eps32 / 4
    atol = tol(float64=TOL["atol"], float32=2e-6)
    np.testing.assert_allclose(got, ref_features, rtol=0, atol=atol)
    np.testing.assert_allclose(got, ref_gram, rtol=0, atol=atol)


@pytest.mark.parametrize("n, p, q", [(50, 6, 4), (15, 40, 25)])
@pytest.mark.parametrize("threshold", [1.0, 0.5, 0.2])
@pytest.mark.parametrize("estimator, debiased", [("gretton", False), ("song", True)])
@pytest.mark.float32  # the song estimator at threshold 0.2 lost 2e-2 in float32 (issue 23)
def test_rbf_kornblith_bandwidth_matches_kornblith(
    rng, n, p, q, threshold, estimator, debiased, tol
):
    x, y = _pair(rng, n, p, q)
    got = _value(cka(_da(x), _da(y), "rbf", estimator=estimator, threshold=threshold))
    ref = kornblith.cka(
        kornblith.gram_rbf(x, threshold), kornblith.gram_rbf(y, threshold), debiased
    )
    # float32: a squared distance |xi|^2 + |xj|^2 - 2 xi.xj errs by ~eps32 * 2 median(d),
    # so the exponent d / (2 threshold^2 median(d)) by ~eps32 / threshold^2 (x 4 margin);
    # the song estimator centres the kernel without its diagonal, so a narrow bandwidth
    # (threshold 0.2: off-diagonal entries ~1e-6) keeps that relative precision
    atol = tol(float64=TOL["atol"], float32=4 * EPS32 / threshold**2)
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


def _rbf_gram(x, sigma):
    return np.exp(-cdist(x, x, "sqeuclidean") / (2 * sigma**2))


@pytest.mark.parametrize("n", [30, 31])  # even and odd numbers of pairs
@pytest.mark.parametrize("estimator, debiased", [("gretton", False), ("song", True)])
def test_rbf_median_nonzero_and_float_bandwidth(rng, n, estimator, debiased, tol):
    # reference: Kornblith's cka() on RBF Gram matrices whose sigma comes from scipy's
    # distances (median over the pairs i < j, or the given float)
    x, y = _pair(rng, n, 7, 5)
    iu = np.triu_indices(n, 1)
    sx = 0.7 * np.sqrt(np.median(cdist(x, x, "sqeuclidean")[iu]))
    sy = 0.7 * np.sqrt(np.median(cdist(y, y, "sqeuclidean")[iu]))
    got = cka(
        _da(x), _da(y), "rbf", bandwidth="median_nonzero", threshold=0.7, estimator=estimator
    )
    ref = kornblith.cka(_rbf_gram(x, sx), _rbf_gram(y, sy), debiased)
    # float32: as for the kornblith bandwidth, ~eps32 / threshold^2 (threshold 0.7), x 4
    atol = tol(float64=TOL["atol"], float32=4 * EPS32 / 0.7**2)
    np.testing.assert_allclose(_value(got), ref, rtol=0, atol=atol)
    got = cka(_da(x), _da(y), "rbf", bandwidth=2.5, threshold=2.0, estimator=estimator)
    ref = kornblith.cka(_rbf_gram(x, 5.0), _rbf_gram(y, 5.0), debiased)
    np.testing.assert_allclose(_value(got), ref, rtol=0, atol=atol)


@pytest.mark.parametrize("n, p, q", [(40, 6, 9), (12, 30, 20)])
@pytest.mark.parametrize("estimator, unbiased", [("lange", True), ("gretton", False)])
def test_angular_matches_repsim(rng, n, p, q, estimator, unbiased, tol):
    x, y = _pair(rng, n, p, q)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    ref = float(repsim.angular_cka(tx, ty, use_unbiased_hsic=unbiased))
    got = cka(_da(x), _da(y), estimator=estimator, output="angular")
    # float32: CKA within CKA32; arccos turns an error e in CKA into e / sin(angle)
    np.testing.assert_allclose(
        _value(got), ref, rtol=0, atol=tol(float64=TOL["atol"], float32=CKA32 / np.sin(ref))
    )
    np.testing.assert_allclose(
        _value(cka(_da(x), _da(y), estimator=estimator)),
        np.cos(ref),
        rtol=0,
        atol=tol(float64=TOL["atol"], float32=CKA32),
    )
    # RBF with sigma = 1.5: repsim's SquaredExponential takes the length scale sigma * sqrt(2)
    ref = float(repsim.angular_cka(tx, ty, "rbf", 1.5 * np.sqrt(2), use_unbiased_hsic=unbiased))
    got = cka(_da(x), _da(y), "rbf", bandwidth=1.5, estimator=estimator, output="angular")
    # float32: (n=12, p=30) the kernels are near the identity, CKA near 1 and the angle
    # ~0.005, where 1 / sin(angle) amplifies the CKA error ~200 times
    np.testing.assert_allclose(
        _value(got), ref, rtol=0, atol=tol(float64=TOL["atol"], float32=CKA32 / np.sin(ref))
    )


def _minibatch_reference(x, y, batches, gram, debiased, norm):
    """Nguyen et al. eq. 2-3 from Kornblith's center_gram, batch by batch."""
    hxy = hxx = hyy = 0.0
    for idx in batches:
        m = len(idx)
        kx = kornblith.center_gram(gram(x[idx]), unbiased=debiased)
        ky = kornblith.center_gram(gram(y[idx]), unbiased=debiased)
        hxy += np.sum(kx * ky) / norm(m)
        hxx += np.sum(kx * kx) / norm(m)
        hyy += np.sum(ky * ky) / norm(m)
    return hxy / np.sqrt(hxx * hyy)


@pytest.mark.parametrize("n, batch_size", [(60, 10), (47, 8), (30, 4)])
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_minibatch_matches_batchwise_kornblith(rng, n, batch_size, kernel, tol):
    x, y = _pair(rng, n, 6, 40)
    # the batches brainalign draws (the permutation is over stimuli sorted by id)
    batches = [
        row
        for group in cka_module._batch_indices(np.array(_ids(n)), batch_size, 3)
        for row in group
    ]
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert min(len(b) for b in batches) >= batch_size
    gram = kornblith.gram_linear if kernel == "linear" else kornblith.gram_rbf
    got = _value(cka(_da(x), _da(y), kernel, batch_size=batch_size, seed=3))  # song default
    ref = _minibatch_reference(x, y, batches, gram, True, lambda m: m * (m - 3))
    atol = tol(float64=TOL["atol"], float32=CKA32)
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    got = _value(cka(_da(x), _da(y), kernel, estimator="gretton", batch_size=batch_size, seed=3))
    ref = _minibatch_reference(x, y, batches, gram, False, lambda m: (m - 1) ** 2)
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


def test_minibatch_seed_and_single_batch(rng, tol):
    x, y = _pair(rng, 40, 5, 6)
    a, b = _da(x), _da(y)
    first = _value(cka(a, b, batch_size=8, seed=1))
    assert _value(cka(a, b, batch_size=8, seed=1)) == first
    assert _value(cka(a, b, batch_size=8, seed=2)) != first
    # batch_size >= n: one batch of all stimuli, the unbiased (song) estimate
    full = kornblith.feature_space_linear_cka(x, y, debiased=True)
    atol = tol(float64=TOL["atol"], float32=CKA32)
    np.testing.assert_allclose(_value(cka(a, b, batch_size=100, seed=0)), full, rtol=0, atol=atol)
    with ba.config_context(seed=1):
        assert _value(cka(a, b, batch_size=8)) == first


def test_symmetric_blocks_match_full_product(rng, monkeypatch, tol):
    # the feature path computes ||Xc^T Xc||^2 from the upper block triangle; small blocks
    # (one ragged) exercise it on small data
    monkeypatch.setattr(cka_module, "_BLOCK", 4)
    x, y = _pair(rng, 80, 19, 11)
    for estimator, debiased in (("gretton", False), ("song", True)):
        got = _value(cka(_da(x), _da(y), estimator=estimator))
        ref = kornblith.feature_space_linear_cka(x, y, debiased=debiased)
        atol = tol(float64=TOL["atol"], float32=CKA32)
        np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("offset_x, offset_y", [(0.0, 0.0), (30.0, 5.0), (1e3, 30.0), (3e3, 1e3)])
def test_uncentred_host_products_match_kornblith(rng, offset_x, offset_y, monkeypatch):
    # float64 on the CPU skips the centred copy (X^T X - n mu mu^T) unless a column's mean^2
    # exceeds 1e4 times its variance (offset 1e3 on unit-variance data: the centred path);
    # (1e3, 30) mixes one centred and one uncentred side in the cross product
    x, y = _pair(rng, 90, 12, 7)
    x = x + offset_x * rng.uniform(0.5, 1.0, size=12)
    y = y + offset_y * rng.uniform(0.5, 1.0, size=7)
    for estimator, debiased in (("gretton", False), ("song", True)):
        got = _value(cka(_da(x), _da(y), estimator=estimator, dtype="float64"))
        ref = kornblith.feature_space_linear_cka(x, y, debiased=debiased)
        np.testing.assert_allclose(got, ref, **TOL)
    lange = _value(cka(_da(x), _da(y), estimator="lange", dtype="float64"))
    monkeypatch.setattr(cka_module, "_host_side", lambda xb, need_diag: None)
    centred = _value(cka(_da(x), _da(y), estimator="lange", dtype="float64"))
    np.testing.assert_allclose(lange, centred, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("estimator", ["gretton", "song", "lange"])
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_invariances_and_identity(rng, estimator, kernel, tol):
    x, y = _pair(rng, 25, 6, 9)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = _value(cka(_da(x), _da(y), kernel, estimator=estimator))
    # orthogonal transform and isotropic scaling of either side (the RBF's median heuristic
    # scales with the data); translation too
    moved = _value(cka(_da(4.0 * x @ q + 3.0), _da(0.1 * y), kernel, estimator=estimator))
    # float32: the moved data round differently (the +3 shift costs ~3 eps32 on unit-scale
    # centred values): CKA moves within CKA32
    np.testing.assert_allclose(moved, base, rtol=0, atol=tol(float64=1e-10, float32=CKA32))
    self_sim = cka(_da(x), _da(x), kernel, estimator=estimator)
    np.testing.assert_allclose(_value(self_sim), 1.0, rtol=0, atol=1e-12)
    angle = cka(_da(x), _da(x), kernel, estimator=estimator, output="angular")
    assert 0.0 <= _value(angle) < 1e-6


@pytest.mark.parametrize("kwargs", [{}, {"estimator": "song"}, {"batch_size": 6}])
def test_stimulus_order_invariance(rng, kwargs, tol):
    x, y = _pair(rng, 30, 5, 7)
    ids = _ids(30)
    perm = rng.permutation(30)
    base = _value(cka(_da(x, ids), _da(y, ids), seed=0, **kwargs))
    # float32: another row order sums the float32 products in another order (CKA32)
    atol = tol(float64=1e-7 * abs(base), float32=CKA32)
    shuffled_b = _da(y[perm], [ids[i] for i in perm])
    got = _value(cka(_da(x, ids), shuffled_b, seed=0, **kwargs))
    np.testing.assert_allclose(got, base, rtol=0, atol=atol)
    shuffled_a = _da(x[perm], [ids[i] for i in perm])
    got = _value(cka(shuffled_a, _da(y, ids), seed=0, **kwargs))
    np.testing.assert_allclose(got, base, rtol=0, atol=atol)


def test_broadcasts_layers_and_dicts(rng, tol):
    n = 20
    ids = _ids(n)
    x = rng.normal(size=(3, n, 6))
    layers = xr.DataArray(
        x,
        dims=("layer", "stimulus", "unit"),
        coords={"layer": ["l1", "l2", "l3"], "stimulus": ids},
    )
    brain = _reps(rng, n, 4, ids, feature_dim="voxel")
    res = cka(layers, brain)
    assert res.dims == ("layer",)
    assert res.layer.values.tolist() == ["l1", "l2", "l3"]
    for i in range(3):  # brainalign against itself: the same float32 arithmetic
        np.testing.assert_allclose(float(res[i]), _value(cka(_da(x[i], ids), brain)), **TOL)
    # a dict of layers of different widths against a dict of regions
    model = {"conv": _reps(rng, n, 12, ids), "fc": _reps(rng, n, 3, ids)}
    regions = {"V1": _reps(rng, n, 5, ids, "voxel"), "IT": _reps(rng, n, 8, ids, "voxel")}
    res = cka(model, regions, key_dims=("layer", "roi"), estimator="song")
    assert res.dims == ("layer", "roi")
    assert res.shape == (2, 2)
    ref = kornblith.feature_space_linear_cka(
        model["fc"].values, regions["IT"].values, debiased=True
    )
    atol = tol(float64=TOL["atol"], float32=CKA32)
    np.testing.assert_allclose(float(res.sel(layer="fc", roi="IT")), ref, rtol=0, atol=atol)
    assert res.attrs["estimator"] == "song"


def test_attrs_and_similarity_ids(rng):
    a, b = _reps(rng, 15, 4), _reps(rng, 15, 5)
    res = cka(a, b)
    assert res.name == "cka"
    assert res.attrs["kind"] == "similarity"
    assert res.attrs["similarity_id"] == (
        "measure/representation_similarity/cka-kernel=linear-hsic=gretton-score"
    )
    assert res.attrs["n_stimuli"] == 15
    res = cka(a, b, estimator="lange", output="angular")
    assert res.attrs["kind"] == "distance"
    assert res.attrs["similarity_id"].endswith("cka-kernel=linear-hsic=lange-distance=angular")
    res = cka(a, b, "rbf", bandwidth=1.0, estimator="song")
    assert res.attrs["similarity_id"].endswith("cka-kernel=(rbf-sigma=1.0)-hsic=song-score")
    # data-dependent bandwidths and minibatches have no exact counterpart there
    assert "similarity_id" not in cka(a, b, "rbf").attrs
    assert "similarity_id" not in cka(a, b, batch_size=5).attrs


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"estimator": "song"},
        {"estimator": "lange", "output": "angular"},
        {"kernel": "rbf"},
        {"kernel": "rbf", "estimator": "song", "bandwidth": "median_nonzero"},
        {"batch_size": 10},
    ],
)
def test_float32_close_to_float64(rng, device, kwargs):
    x, y = _pair(rng, 60, 12, 70)  # both the feature path (x vs x) and the Gram path
    a, b = _da(x), _da(y)
    for other in (b, a):
        ref = _value(cka(a, other, seed=0, device="cpu", dtype="float64", **kwargs))
        got = _value(cka(a, other, seed=0, device=device, dtype="float32", **kwargs))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel": "gaussian"}, r"'kernel' parameter.*'linear', 'rbf'.*got 'gaussian'"),
        ({"estimator": "unbiased"}, r"'estimator' parameter.*'gretton', 'song'.*'unbiased'"),
        ({"output": "distance"}, r"'output' parameter.*'similarity', 'angular'.*'distance'"),
        ({"kernel": "rbf", "bandwidth": "median"}, r"'bandwidth' parameter.*'kornblith'"),
        ({"kernel": "rbf", "bandwidth": 0.0}, r"bandwidth must be in the range \(0, inf\)"),
        ({"kernel": "rbf", "bandwidth": -1.0}, r"bandwidth must be in the range"),
        ({"threshold": 0}, r"threshold must be in the range \(0, inf\)"),
        ({"batch_size": 3}, r"batch_size must be at least 4, got 3: .* m\(m - 3\)"),
        ({"batch_size": 0}, r"batch_size must be at least 4, got 0"),
    ],
)
def test_option_errors(rng, kwargs, match):
    a, b = _reps(rng, 12, 3), _reps(rng, 12, 4)
    with pytest.raises(ValueError, match=match):
        cka(a, b, **kwargs)


def test_type_errors(rng):
    a, b = _reps(rng, 12, 3), _reps(rng, 12, 4)
    with pytest.raises(TypeError, match=r"batch_size must be an integer, got float 8\.0"):
        cka(a, b, batch_size=8.0)
    with pytest.raises(TypeError, match=r"bandwidth must be one of .* got list"):
        cka(a, b, "rbf", bandwidth=[1.0])


def test_constant_representation_names_the_side(rng):
    a = _reps(rng, 10, 3)
    const = _da(np.ones((10, 4)))
    with pytest.raises(ValueError, match=r"b is constant: every stimulus .* CKA is 0/0"):
        cka(a, const)
    with pytest.raises(ValueError, match=r"a is constant"):
        cka(const, a, "rbf")
    with pytest.raises(ValueError, match=r"b\[b='flat'\] is constant"):
        cka(a, {"ok": _reps(rng, 10, 2), "flat": const})
    # the first, middle and last stimuli alike, another one not: not constant
    almost = np.ones((10, 4))
    almost[3, 1] = 2.0
    assert np.isfinite(float(cka(a, _da(almost))))


def test_degenerate_bandwidth_and_sample_errors(rng):
    x = np.zeros((12, 3))
    x[0] = 1.0  # 11 identical stimuli: the median squared distance is zero
    a, b = _da(x), _reps(rng, 12, 4)
    with pytest.raises(ValueError, match=r"bandwidth='kornblith' gave sigma = 0"):
        cka(a, b, "rbf")
    with pytest.raises(ValueError, match=r"needs at least 4 stimul"):
        cka(_reps(rng, 3, 2), _reps(rng, 3, 2), estimator="song")
    with pytest.raises(StimulusAlignmentError, match="s011"):
        cka(_reps(rng, 12, 2), _reps(rng, 11, 2))


@pytest.mark.parametrize("m", [3, 4, 7, 10])
def test_median_of_squared_distances_matches_numpy(rng, m):
    # the RBF bandwidth reads order statistics of the upper triangle only; rounded data
    # makes ties
    for x in (rng.normal(size=(m, 3)), np.round(rng.normal(size=(m, 3)))):
        d = cdist(x, x, "sqeuclidean")
        t = torch.from_numpy(d).unsqueeze(0)
        assert float(cka_module._median_sq_distance(t, "kornblith")) == np.median(d)
        off = d[np.triu_indices(m, 1)]
        assert float(cka_module._median_sq_distance(t, "median_nonzero")) == np.median(off)
