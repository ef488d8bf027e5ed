"""Tests of brainalign.align._shape: shape metrics, stochastic shape metrics, pairwise, embed.

References: netrep (github.com/ahwillia/netrep @ 0186b8a7, MIT, vendored in
tests/align/_refs/netrep_ref.py) for the metrics and multiset.pairwise_distances;
scikit-learn's ClassicalMDS for embed.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import xarray as xr

import brainalign as ba
from brainalign.align._shape import embed, pairwise, shape_metric, stochastic_shape

_spec = importlib.util.spec_from_file_location(
    "netrep_ref", Path(__file__).parent / "_refs" / "netrep_ref.py"
)
nr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nr)

TOL = 1e-8
EPS32 = float(np.finfo(np.float32).eps)
# float32: the inputs round by eps32 / 2 relative and the shape terms (norms, nuclear norms,
# the small SVDs and eigendecompositions) accumulate in float64, so a distance that is not
# small against the norms of the data moves by a few eps32 relative (observed <= 4e-8)
REL32 = 4 * EPS32


def _ids(n):
    return [f"s{i:03d}" for i in range(n)]


def _reps(x, ids=None):
    return ba.responses(x, _ids(len(x)) if ids is None else ids, feature_dim="unit")


def _net(rng, n, p, mix=True):
    x = rng.normal(size=(n, p))
    return x @ rng.normal(size=(p, p)) if mix else x


def _trials(z, ids=None):
    """(stimuli, repeats, units) -> a trial DataArray with a stimulus coord."""
    m, r, p = z.shape
    ids = _ids(m) if ids is None else ids
    return ba.responses(z.reshape(m * r, p), np.repeat(ids, r), sample_dim="trial")


def _rot(rng, p):
    q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return q


@pytest.fixture
def dense_align(monkeypatch):
    """netrep's stochastic metrics with group 'perm'/'identity' fail on their own sparse
    alignment matrices (np.einsum on scipy.sparse); the reference then uses the same
    matrices made dense (values unchanged)."""
    orig = nr.align

    def align(x, y, group="orth"):
        t = orig(x, y, group=group)
        return t.toarray() if scipy.sparse.issparse(t) else t

    monkeypatch.setattr(nr, "align", align)


# ------------------------------------------------------------------------------------------
# shape_metric vs netrep
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("score", ["angular", "euclidean"])
@pytest.mark.parametrize("widths", [(6, 6), (5, 9)])
def test_linear_matches_netrep(rng, alpha, score, widths, tol):
    x, y = _net(rng, 30, widths[0]), _net(rng, 30, widths[1]) + 3.0
    ref = nr.LinearMetric(alpha=alpha, score_method=score).fit_score(x, y)
    got = shape_metric(_reps(x), _reps(y), alpha=alpha, score=score)
    assert got.shape == ()
    rtol = tol(float64=TOL, float32=REL32)
    np.testing.assert_allclose(float(got), ref, rtol=rtol, atol=tol(float64=TOL, float32=0))


@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_rank_deficient_matches_netrep(rng, score):
    # fewer stimuli than units: cross products are singular
    x, y = _net(rng, 8, 12), _net(rng, 8, 20)
    ref = nr.LinearMetric(score_method=score).fit_score(x, y)
    got = float(shape_metric(_reps(x), _reps(y), score=score))
    np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_permutation_matches_netrep(rng, score):
    x, y = _net(rng, 25, 7), _net(rng, 25, 10)
    ref = nr.PermutationMetric(score_method=score).fit_score(x, y)
    got = float(shape_metric(_reps(x), _reps(y), score=score, group="permutation"))
    np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL)


def test_identity_matches_netrep_utils(rng):
    # no alignment: netrep's angular_distance of the centred, zero-padded matrices
    x, y = _net(rng, 20, 4), _net(rng, 20, 6)
    xp, yp = nr.check_equal_shapes(x - x.mean(0), y - y.mean(0), zero_pad=True)
    ref = nr.angular_distance(xp, yp)
    got = float(shape_metric(_reps(x), _reps(y), group="identity"))
    np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL)
    ref_e = np.linalg.norm(xp - yp)
    got_e = float(shape_metric(_reps(x), _reps(y), group="identity", score="euclidean"))
    np.testing.assert_allclose(got_e, ref_e, rtol=TOL, atol=TOL)


def _folds(n, k, seed):
    # the documented rule: a permutation from default_rng(seed), then np.array_split
    parts = np.array_split(np.random.default_rng(seed).permutation(n), k)
    return [(np.concatenate(parts[:i] + parts[i + 1 :]), parts[i]) for i in range(k)]


@pytest.mark.parametrize(
    ("alpha", "group", "score"),
    [
        (1.0, "orthogonal", "angular"),
        (0.3, "orthogonal", "euclidean"),
        (1.0, "permutation", "euclidean"),
    ],
)
def test_cv_matches_netrep_fit_score(rng, alpha, group, score):
    x, y = _net(rng, 40, 5), _net(rng, 40, 7)
    vals = []
    for train, test in _folds(40, 4, seed=3):
        if group == "orthogonal":
            m = nr.LinearMetric(alpha=alpha, score_method=score)
        else:
            m = nr.PermutationMetric(score_method=score)
        vals.append(m.fit(x[train], y[train]).score(x[test], y[test]))
    got = shape_metric(_reps(x), _reps(y), alpha=alpha, group=group, score=score, cv=4, seed=3)
    np.testing.assert_allclose(float(got), np.mean(vals), rtol=TOL, atol=TOL)
    assert got.attrs["cv"] == 4 and got.attrs["seed"] == 3


def test_attrs_and_broadcast(rng):
    x, y, z = _net(rng, 15, 4), _net(rng, 15, 5), _net(rng, 15, 3)
    out = shape_metric({"l1": _reps(x), "l2": _reps(y)}, _reps(z), key_dims=("layer", "b"))
    assert out.dims == ("layer",)
    assert list(out.layer.values) == ["l1", "l2"]
    ref = [nr.LinearMetric().fit_score(v, z) for v in (x, y)]
    np.testing.assert_allclose(out.values, ref, rtol=TOL, atol=TOL)
    assert out.attrs["measure"] == "shape_metric"
    assert out.attrs["kind"] == "distance"
    assert out.attrs["similarity_id"] == "netrep/LinearMetric_angular"
    assert out.attrs["n_stimuli"] == 15
    perm = shape_metric(_reps(x), _reps(y), group="permutation", score="euclidean")
    assert perm.attrs["similarity_id"] == "netrep/PermutationMetric_euclidean"


# ------------------------------------------------------------------------------------------
# shape_metric properties
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", ["angular", "euclidean"])
@pytest.mark.parametrize("alpha", [1.0, 0.0])
def test_zero_for_rotated_translated_copy(rng, score, alpha, tol):
    x = _net(rng, 25, 6)
    scale = 3.0 if score == "angular" else 1.0
    y = scale * x @ _rot(rng, 6) + rng.normal(size=6)
    # float32: x and y round independently by eps32 |x| (euclidean, in the data's units:
    # |Xc|_F; alpha=0 whitens, in units of sqrt(p), the rounding amplified by cond(Xc)),
    # x 10; angular: arccos near 1 of a cosine right to a few eps32 (angular needs 1e-3:
    # a relative error e of the cosine gives an angle sqrt(2 e), see test_float32.py)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    units = np.sqrt(np.sum(s**2)) if alpha == 1.0 else np.sqrt(6) * s[0] / s[-1]
    limit = 10 * EPS32 * units if score == "euclidean" else 1e-3
    got = float(shape_metric(_reps(x), _reps(y), score=score, alpha=alpha))
    assert abs(got) < tol(float64=1e-6, float32=limit)


def test_permutation_zero_for_permuted_copy(rng):
    x = _net(rng, 20, 6)
    y = x[:, rng.permutation(6)] + 1.0
    assert float(shape_metric(_reps(x), _reps(y), group="permutation")) < 1e-6
    # but a rotation is not a permutation
    assert float(shape_metric(_reps(x), _reps(x @ _rot(rng, 6)), group="permutation")) > 0.1


@pytest.mark.parametrize("score", ["angular", "euclidean"])
@pytest.mark.parametrize("group", ["orthogonal", "permutation"])
def test_symmetry_and_triangle_inequality(rng, score, group):
    reps = {k: _reps(_net(rng, 20, p)) for k, p in zip("abcde", (4, 6, 5, 6, 3), strict=True)}
    d = pairwise(reps, score=score, group=group).values
    np.testing.assert_allclose(d, d.T, atol=0)
    assert np.all(np.diag(d) == 0)
    for i, j, k in itertools.permutations(range(5), 3):
        assert d[i, k] <= d[i, j] + d[j, k] + 1e-10
    ab = float(shape_metric(reps["a"], reps["b"], score=score, group=group))
    ba_ = float(shape_metric(reps["b"], reps["a"], score=score, group=group))
    np.testing.assert_allclose(ab, ba_, rtol=1e-12)


def test_stimulus_order_invariance(rng):
    x, y = _net(rng, 30, 5), _net(rng, 30, 8)
    ref = float(shape_metric(_reps(x), _reps(y), cv=3, seed=0))
    perm = rng.permutation(30)
    shuffled = _reps(y[perm], list(np.asarray(_ids(30))[perm]))
    np.testing.assert_allclose(
        float(shape_metric(_reps(x), shuffled, cv=3, seed=0)), ref, rtol=1e-12
    )
    d = pairwise({"x": _reps(x), "y": shuffled})
    np.testing.assert_allclose(float(d[0, 1]), float(shape_metric(_reps(x), _reps(y))), rtol=1e-12)


def test_float32_close_to_float64(rng, device):
    x, y = _net(rng, 40, 6), _net(rng, 40, 9)
    for kw in ({}, {"alpha": 0.5, "score": "euclidean"}, {"cv": 3, "seed": 1}):
        d64 = float(shape_metric(_reps(x), _reps(y), device=device, dtype="float64", **kw))
        d32 = float(shape_metric(_reps(x), _reps(y), device=device, dtype="float32", **kw))
        np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-5)
    reps = {k: _reps(_net(rng, 40, p)) for k, p in zip("abc", (3, 5, 4), strict=True)}
    p64 = pairwise(reps, device=device, dtype="float64").values
    p32 = pairwise(reps, device=device, dtype="float32").values
    np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------
# pairwise
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", ["angular", "euclidean"])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_pairwise_matches_netrep(rng, score, alpha, tol):
    widths = (5, 9, 7, 9, 4, 12)
    data = [_net(rng, 30, p) for p in widths]
    ref = nr.pairwise_distances(
        nr.LinearMetric(alpha=alpha, score_method=score), data, verbose=False
    )
    got = pairwise({f"n{i}": _reps(x) for i, x in enumerate(data)}, score=score, alpha=alpha)
    assert got.dims == ("network_a", "network_b")
    assert list(got.network_a.values) == [f"n{i}" for i in range(6)]
    # float32: each distance within REL32 (the zero diagonal is exact in both)
    rtol = tol(float64=TOL, float32=REL32)
    np.testing.assert_allclose(got.values, ref, rtol=rtol, atol=tol(float64=TOL, float32=0))
    assert got.attrs["measure"] == "shape_metric"


@pytest.mark.float64_only(reason="checks float64 bounds of the eigenvalue route at 1e-10")
def test_nuclear_norms_within_their_bound_and_padding_is_exact(rng):
    # reference: numpy's SVD (LAPACK gesdd) of each block without its zero padding
    import torch

    from brainalign.align._shape import _nuclear_norms

    rows = np.array([5, 8, 3, 8])
    blocks = np.zeros((4, 8, 12))
    for k, r in enumerate(rows):
        blocks[k, :r] = rng.normal(size=(r, 12)) * 10.0 ** rng.uniform(-3, 3)
    blocks[3, 7] = blocks[3, 6]  # a rank-deficient block: one singular value is 0
    got, err = _nuclear_norms(torch.from_numpy(blocks), torch.from_numpy(rows))
    ref = np.array(
        [np.linalg.svd(b[:r], compute_uv=False).sum() for b, r in zip(blocks, rows, strict=True)]
    )
    assert np.all(np.abs(got.numpy() - ref) <= err.numpy() + 1e-15 * ref)
    # full-rank blocks certify themselves tightly; the singular one cannot (sqrt(eps) bound)
    assert np.all(err.numpy()[:3] < 1e-12 * ref[:3])
    assert err.numpy()[3] > 1e-10 * ref[3]


@pytest.mark.float64_only(reason="compares float64 parity at 1e-8 on both routes")
@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_pairwise_falls_back_to_the_svd_where_eigenvalues_cannot_vouch(rng, score, monkeypatch):
    import torch

    svd_pairs = []
    svdvals = torch.linalg.svdvals

    def spy(b):
        svd_pairs.append(b.shape[0])
        return svdvals(b)

    monkeypatch.setattr(torch.linalg, "svdvals", spy)
    # 20 stimuli, widths up to 30: blocks of rank <= 19 have zero singular values, and a
    # rotated copy sits at distance 0: those pairs take the SVD, the others the eigenvalues
    base = _net(rng, 20, 30)
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    data = [_net(rng, 20, 6), _net(rng, 20, 9), base, base @ q, _net(rng, 20, 25)]
    ref = nr.pairwise_distances(
        nr.LinearMetric(alpha=1.0, score_method=score), data, verbose=False
    )
    got = pairwise({f"n{i}": _reps(x) for i, x in enumerate(data)}, score=score)
    np.testing.assert_allclose(got.values, ref, rtol=TOL, atol=TOL)
    assert 0 < sum(svd_pairs) < 10  # some of the 10 pairs take the SVD, not all
    assert float(got[2, 3]) < 1e-6


def test_pairwise_dataarray_and_cv(rng):
    data = rng.normal(size=(4, 24, 5))
    da = xr.DataArray(
        data,
        dims=("network", "stimulus", "unit"),
        coords={"network": ["a", "b", "c", "d"], "stimulus": _ids(24)},
    )
    got = pairwise(da, cv=3, seed=2, group="permutation")
    for i, j in itertools.combinations(range(4), 2):
        one = shape_metric(_reps(data[i]), _reps(data[j]), cv=3, seed=2, group="permutation")
        np.testing.assert_allclose(float(got[i, j]), float(one), rtol=1e-12)
    assert list(got.network_b.values) == ["a", "b", "c", "d"]


def test_pairwise_other_measures(rng):
    z = rng.normal(size=(3, 4, 5, 2))  # networks, stimuli, repeats, units
    reps = {k: _trials(z[i]) for i, k in enumerate("xyz")}
    got = pairwise(reps, measure="stochastic_shape", method="energy", max_iter=5)
    np.testing.assert_allclose(
        float(got.sel(network_a="x", network_b="z")),
        float(stochastic_shape(reps["x"], reps["z"], method="energy", max_iter=5)),
        rtol=1e-12,
    )
    assert got.attrs["measure"] == "stochastic_shape"
    plain = {k: _reps(_net(rng, 10, 3)) for k in "pq"}

    def corr(a, b):
        return float(np.corrcoef(a.values[:, 0], b.values[:, 0])[0, 1])

    out = pairwise(plain, measure=corr, dim="model")
    assert out.dims == ("model_a", "model_b")
    np.testing.assert_allclose(float(out[0, 1]), corr(plain["p"], plain["q"]))


# ------------------------------------------------------------------------------------------
# stochastic_shape vs netrep
# ------------------------------------------------------------------------------------------


def _means_covs(z):
    return z.mean(1), np.stack([np.cov(s.T) for s in z])


@pytest.mark.parametrize(
    ("alpha", "group", "ngroup"),
    [
        (1.0, "orthogonal", "orth"),
        (0.0, "orthogonal", "orth"),
        (2.0, "orthogonal", "orth"),
        (0.5, "identity", "identity"),
        (1.0, "permutation", "perm"),
    ],
)
def test_gaussian_matches_netrep(rng, dense_align, alpha, group, ngroup, tol):
    z1 = rng.normal(size=(5, 6, 3))
    z2 = rng.normal(size=(5, 6, 3)) @ rng.normal(size=(3, 3)) + rng.normal(size=(5, 1, 3))
    ref = nr.GaussianStochasticMetric(alpha=alpha, group=ngroup).fit_score(
        _means_covs(z1), _means_covs(z2)
    )
    got = stochastic_shape(_trials(z1), _trials(z2), alpha=alpha, group=group)
    rtol = tol(float64=TOL, float32=REL32)
    np.testing.assert_allclose(float(got), ref, rtol=rtol, atol=tol(float64=TOL, float32=0))
    assert got.attrs["method"] == "gaussian"


def test_gaussian_eps_matches_netrep(rng):
    # fewer trials than units: singular covariances, regularised as in netrep's pairwise
    z1, z2 = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 5))
    eps = 1e-6
    x, y = _means_covs(z1), _means_covs(z2)
    x = (x[0], x[1] + eps * np.eye(5))
    y = (y[0], y[1] + eps * np.eye(5))
    ref = nr.GaussianStochasticMetric().fit_score(x, y)
    got = stochastic_shape(_trials(z1), _trials(z2), eps=eps)
    np.testing.assert_allclose(float(got), ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    ("group", "ngroup"),
    [("orthogonal", "orth"), ("identity", "identity"), ("permutation", "perm")],
)
def test_energy_matches_netrep(rng, dense_align, group, ngroup, tol):
    z1 = rng.normal(size=(4, 5, 3))
    z2 = rng.normal(size=(4, 5, 3)) @ rng.normal(size=(3, 3))
    ref = nr.EnergyStochasticMetric(group=ngroup).fit_score(z1, z2)
    got = stochastic_shape(_trials(z1), _trials(z2), method="energy", group=group)
    # float32: d^2 = E|x - y| - (E|x - x'| + E|y - y'|) / 2, mean distances of float32
    # inputs right to ~eps32 |z| each (x 4: delta); d = sqrt(d^2) errs by delta / (2 d),
    # or sqrt(delta) when d is near 0 (netrep's aligned groups give d^2 <= 0 here)
    delta = 4 * EPS32 * np.linalg.norm(np.concatenate([z1, z2]), axis=-1).mean()
    atol = tol(float64=TOL, float32=min(np.sqrt(delta), delta / (2 * max(ref, 1e-300))))
    np.testing.assert_allclose(float(got), ref, rtol=tol(float64=TOL, float32=0), atol=atol)


@pytest.mark.parametrize("method", ["gaussian", "energy"])
def test_stochastic_properties(rng, method):
    z = rng.normal(size=(4, 5, 3)) + rng.normal(size=(4, 1, 3))
    rotated = z @ _rot(rng, 3)
    a, b = _trials(z), _trials(rotated)
    assert abs(float(stochastic_shape(a, b, method=method))) < 1e-5
    other = _trials(rng.normal(size=(4, 5, 3)))
    d = float(stochastic_shape(a, other, method=method))
    assert d > 0.1
    # trial and stimulus order do not matter: alignment is by stimulus id
    order = rng.permutation(20)
    shuffled = other.isel(trial=order)
    np.testing.assert_allclose(float(stochastic_shape(a, shuffled, method=method)), d, rtol=1e-8)
    # float32
    d32 = float(stochastic_shape(a, other, method=method, dtype="float32"))
    np.testing.assert_allclose(d32, d, rtol=1e-4, atol=1e-5)


def test_stochastic_unequal_trials_and_widths(rng):
    x = rng.normal(size=(13, 3))
    ids = np.array(["a"] * 4 + ["b"] * 5 + ["c"] * 4)
    y = rng.normal(size=(9, 5)) + 2.0
    ids_y = np.array(["c", "a", "b"] * 3)
    a = ba.responses(x, ids, sample_dim="trial")
    b = ba.responses(y, ids_y, sample_dim="trial")
    d = stochastic_shape(a, b)
    assert np.isfinite(float(d)) and float(d) > 0
    assert d.attrs["n_stimuli"] == 3
    # energy without alignment, from its definition (each stimulus weighs equally; the
    # narrower network zero-padded)
    xp = np.pad(x, ((0, 0), (0, 2)))
    dxy, dxx, dyy = [], [], []
    for s in "abc":
        u, v = xp[ids == s], y[ids_y == s]
        dxy.append(np.linalg.norm(u[:, None] - v[None], axis=-1).mean())
        iu, iv = np.triu_indices(len(u), 1), np.triu_indices(len(v), 1)
        dxx.append(np.linalg.norm(u[iu[0]] - u[iu[1]], axis=-1).mean())
        dyy.append(np.linalg.norm(v[iv[0]] - v[iv[1]], axis=-1).mean())
    ref = np.sqrt(max(0.0, np.mean(dxy) - 0.5 * (np.mean(dxx) + np.mean(dyy))))
    got = stochastic_shape(a, b, method="energy", group="identity")
    np.testing.assert_allclose(float(got), ref, rtol=TOL, atol=TOL)
    assert ref > 0.5


# ------------------------------------------------------------------------------------------
# embed
# ------------------------------------------------------------------------------------------


def _centred(m):
    """Double centring ``H M H``."""
    return m - m.mean(0) - m.mean(1)[:, None] + m.mean()


def test_embed_matches_sklearn_classical_mds(rng, tol):
    manifold = pytest.importorskip("sklearn.manifold")
    if not hasattr(manifold, "ClassicalMDS"):
        pytest.skip("sklearn.manifold.ClassicalMDS needs scikit-learn >= 1.8")
    pts = rng.normal(size=(7, 4))
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    names = [f"m{i}" for i in range(7)]
    da = xr.DataArray(
        dist, dims=("network_a", "network_b"), coords={"network_a": names, "network_b": names}
    )
    got = embed(da, n_components=3)
    ref = manifold.ClassicalMDS(n_components=3, metric="precomputed").fit_transform(dist)
    assert got.dims == ("network", "component")
    assert list(got.network.values) == names
    # float32: the eigenvectors of B = -H D^2 H / 2 turn by ~eps32 |B| / gap (the smallest
    # gap between the kept eigenvalues and the rest), the coordinates sqrt(lam) v with them
    lam = np.linalg.eigvalsh(-0.5 * _centred(dist**2))[::-1]
    gap = np.min(np.abs(np.diff(lam[:4])))
    atol = tol(float64=TOL, float32=4 * EPS32 * lam[0] / gap * np.sqrt(lam[0]))
    np.testing.assert_allclose(got.values, ref, rtol=tol(float64=TOL, float32=0), atol=atol)
    # with all dimensions, the embedding reproduces the Euclidean distances
    full = embed(da, n_components=4).values
    np.testing.assert_allclose(
        np.linalg.norm(full[:, None] - full[None], axis=-1), dist, atol=tol(1e-8, atol)
    )


def test_embed_of_pairwise(rng):
    reps = {k: _reps(_net(rng, 15, 4)) for k in "abcd"}
    xy = embed(pairwise(reps))
    assert xy.shape == (4, 2)
    assert list(xy.network.values) == list("abcd")


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


def test_errors(rng):
    a, b = _reps(_net(rng, 10, 3)), _reps(_net(rng, 10, 4))
    with pytest.raises(ValueError, match=r"'score' parameter.*'angular', 'euclidean'.*'cosine'"):
        shape_metric(a, b, score="cosine")
    with pytest.raises(ValueError, match=r"'group' parameter.*Did you mean 'orthogonal'"):
        shape_metric(a, b, group="orthogonl")
    with pytest.raises(ValueError, match=r"alpha must be in the range \[0.0, 1.0\], got 1.5"):
        shape_metric(a, b, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha must be in the range \[0.0, 1.0\], got -0.1"):
        pairwise({"a": a, "b": b}, alpha=-0.1)
    with pytest.raises(ValueError, match=r"cv must be in the range \[2, inf\), got 1"):
        shape_metric(a, b, cv=1)
    with pytest.raises(ValueError, match="needs at least 11 stimuli"):
        shape_metric(a, b, cv=11)
    with pytest.raises(ValueError, match=r"'measure' parameter.*'shape_metric'"):
        pairwise({"a": a, "b": b}, measure="cka_nope")
    with pytest.raises(ValueError, match="at least 2 networks"):
        pairwise({"a": a})
    with pytest.raises(TypeError, match="unexpected"):
        pairwise({"a": a, "b": b}, method="energy")
    with pytest.raises(ba.SchemaError, match="without the 'network' dim"):
        pairwise(a)
    extra = xr.DataArray(
        rng.normal(size=(2, 2, 10, 3)),
        dims=("network", "layer", "stimulus", "unit"),
        coords={"stimulus": _ids(10)},
    )
    with pytest.raises(ba.SchemaError, match=r"exactly one dim.*\('network', 'layer'\)"):
        pairwise(extra)


def test_stochastic_errors(rng):
    a = _trials(rng.normal(size=(3, 4, 2)))
    with pytest.raises(ValueError, match=r"'method' parameter.*'gaussian', 'energy'"):
        stochastic_shape(a, a, method="kl")
    with pytest.raises(ValueError, match="'group' parameter"):
        stochastic_shape(a, a, group="rotation")
    with pytest.raises(ValueError, match=r"alpha must be in the range \[0.0, 2.0\], got 2.5"):
        stochastic_shape(a, a, alpha=2.5)
    with pytest.raises(ValueError, match=r"method='energy' needs alpha=1\.0, got 0\.5"):
        stochastic_shape(a, a, method="energy", alpha=0.5)
    one = ba.responses(rng.normal(size=(5, 2)), ["x", "x", "y", "y", "z"], sample_dim="trial")
    with pytest.raises(ValueError, match=r"at least 2 trials.*\['z'\]"):
        stochastic_shape(one, one)
    with pytest.raises(ba.StimulusAlignmentError):
        stochastic_shape(a, _trials(rng.normal(size=(3, 4, 2)), ids=["u", "v", "w"]))


def test_embed_errors(rng):
    with pytest.raises(ValueError, match="must be square"):
        embed(xr.DataArray(np.zeros((3, 4)), dims=("network_a", "network_b")))
    asym = np.array([[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match=r"must be symmetric.*\|D - D\^T\| is 1"):
        embed(xr.DataArray(asym, dims=("network_a", "network_b")))
    sym = xr.DataArray(np.array([[0.0, 1.0], [1.0, 0.0]]), dims=("network_a", "network_b"))
    with pytest.raises(ValueError, match=r"n_components must be in the range \[1, 2\], got 3"):
        embed(sym, n_components=3)
    with pytest.raises(ValueError, match="2-D DataArray"):
        embed(np.zeros((2, 2)))
