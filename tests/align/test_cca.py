"""Tests of the CCA family (brainalign.align._cca): cca, svcca, pwcca.

References: google/svcca's cca_core.py and pwcca.py, vendored in ``_refs/google_cca.py``
(commit 1f3fbf19), in its (neurons, datapoints) layout; and scipy (a generalised symmetric
eigenproblem, and principal angles between subspaces) as formulas independent of both.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import xarray as xr

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.align._cca import _variance_cut, cca, pwcca, svcca

_spec = importlib.util.spec_from_file_location(
    "google_cca", Path(__file__).parent / "_refs" / "google_cca.py"
)
google = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(google)

ATOL = 1e-8
EPS32 = float(np.finfo(np.float32).eps)


def _cond(x, epsilon=0.0):
    """Condition number of the centred ``x`` on its column space, ridge-shifted.

    With ``epsilon`` the ridge ``lam = epsilon * max column sum of squares`` (the CCA's
    ``epsilon * max variance`` times n - 1) is added to every squared singular value.
    """
    xc = x - x.mean(0)
    s = np.linalg.svd(xc, compute_uv=False)
    s = s[s > 1e-10 * s[0]]  # the column space (rank-deficient sides)
    lam = epsilon * (xc * xc).sum(0).max()
    return float(np.sqrt((s[0] ** 2 + lam) / (s[-1] ** 2 + lam)))


def _atol(tol, x, y, epsilon=0.0):
    """The float64 ATOL, or the float32 bound of canonical correlations of ``x`` and ``y``.

    float32: rounding ``x`` (and the float32 QR / SVD, backward stable) perturbs it by
    ~eps32 |x|, which turns its column space by ~eps32 cond(x) radians, and a canonical
    correlation (the cosine of a principal angle) by at most that: eps32 (cond(x) +
    cond(y)), x 10 for the n-term products of the factorisations.
    """
    return tol(float64=ATOL, float32=10 * EPS32 * (_cond(x, epsilon) + _cond(y, epsilon)))


def _reps(values, ids=None):
    values = np.asarray(values, dtype=float)
    if ids is None:
        ids = [f"s{i}" for i in range(values.shape[0])]
    return ba.responses(values, list(ids), feature_dim="unit")


def _pair(rng, n, p, q, shared=3, center=True):
    """Two related representations (n, p) and (n, q) with a decaying spectrum."""
    z = rng.standard_normal((n, shared))
    x = z @ rng.standard_normal((shared, p)) + rng.standard_normal((n, p)) * np.linspace(
        1.0, 0.2, p
    )
    y = z @ rng.standard_normal((shared, q)) + 0.7 * rng.standard_normal((n, q))
    if center:
        x, y = x - x.mean(0), y - y.mean(0)
    return x, y


def _scipy_rhos(x, y):
    """Canonical correlations from Sxy Syy^-1 Syx w = rho² Sxx w (scipy.linalg.eigh)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    lhs = sxy @ np.linalg.solve(syy, sxy.T)
    w = scipy.linalg.eigh(lhs, sxx, eigvals_only=True)[::-1]
    k = min(x.shape[1], y.shape[1])
    return np.sqrt(np.clip(w[:k], 0, 1))


def _google_svcca_rhos(x, y, variance):
    """google/svcca's tutorial SVCCA, with cca_core.sum_threshold as the cut."""
    kept = []
    for acts in (x.T, y.T):
        cacts = acts - acts.mean(axis=1, keepdims=True)
        _, s, v = np.linalg.svd(cacts, full_matrices=False)
        k = google.sum_threshold(s, variance) or len(s)
        kept.append(np.dot(s[:k] * np.eye(k), v[:k]))
    res = google.get_cca_similarity(kept[0], kept[1], epsilon=0.0, verbose=False)
    return res["cca_coef1"], [k.shape[0] for k in kept]


# ---------------------------------------------------------------- reference values


@pytest.mark.parametrize(("n", "p", "q"), [(80, 4, 6), (80, 6, 4), (120, 7, 7)])
def test_cca_matches_google_and_scipy(rng, n, p, q, tol):
    x, y = _pair(rng, n, p, q, center=False)
    a, b = _reps(x), _reps(y)
    atol = _atol(tol, x, y)
    rhos = cca(a, b, summary="rhos")
    ref = google.get_cca_similarity(x.T, y.T, verbose=False)["cca_coef1"]
    assert rhos.dims == ("component",)
    assert rhos.sizes["component"] == min(p, q)
    np.testing.assert_allclose(rhos.values, ref, rtol=0, atol=atol)
    np.testing.assert_allclose(rhos.values, _scipy_rhos(x, y), rtol=0, atol=atol)
    angles = scipy.linalg.subspace_angles(x - x.mean(0), y - y.mean(0))
    np.testing.assert_allclose(rhos.values, np.sort(np.cos(angles))[::-1], rtol=0, atol=atol)
    # summaries: np.mean(cca_coef1) (the similarity repository's "svcca/cca") and R²_CCA
    assert float(cca(a, b)) == pytest.approx(np.mean(ref), abs=atol)
    assert float(cca(a, b, summary="mean_rho2")) == pytest.approx(np.mean(ref**2), abs=2 * atol)
    assert float(cca(a, b, n_components=2)) == pytest.approx(np.mean(ref[:2]), abs=atol)


def test_cca_epsilon_matches_google_regularisation(rng, tol):
    x, y = _pair(rng, 60, 5, 6, center=False)
    x[:, 2] *= 0.05  # variance 0.0025 x the others: pruned by epsilon=0.05, kept by 1e-3
    for epsilon in (1e-3, 0.05):
        ours = cca(_reps(x), _reps(y), summary="rhos", epsilon=epsilon)
        ref = google.get_cca_similarity(x.T, y.T, epsilon=epsilon, verbose=False)
        assert ours.sizes["component"] == len(ref["cca_coef1"])
        atol = _atol(tol, x, y, epsilon)
        np.testing.assert_allclose(ours.values, ref["cca_coef1"], rtol=0, atol=atol)
        assert ours.attrs["epsilon"] == epsilon
    assert len(ref["cca_coef1"]) == 4  # the low-variance unit was pruned at 0.05
    # regularisation shrinks every canonical correlation
    plain = cca(_reps(x), _reps(y), summary="rhos").values
    assert np.all(ours.values[:4] <= plain[:4] + 1e-12)


@pytest.mark.parametrize("variance", [0.5, 0.8, 0.99, 1.0])
def test_svcca_matches_google_cut(rng, variance, tol):
    x, y = _pair(rng, 100, 8, 10, center=False)
    atol = _atol(tol, x, y)  # the kept directions are better conditioned than all of x
    ref, (kx, ky) = _google_svcca_rhos(x, y, variance)
    ours = svcca(_reps(x), _reps(y), variance=variance, summary="rhos")
    assert ours.sizes["component"] == min(kx, ky)
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=atol)
    value = svcca(_reps(x), _reps(y), variance=variance)
    assert float(value) == pytest.approx(np.mean(ref), abs=atol)


def test_svcca_cut_sums_singular_values_not_their_squares():
    # singular values 4, 2, 1, 1 (sum 8): 0.75 of the sum needs 2 directions, and 0.76
    # needs 3, although 2 directions hold (16 + 4) / 22 = 0.91 of the squared sum.
    s = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    assert _variance_cut(s, 0.75) == 2
    assert _variance_cut(s, 0.76) == 3
    assert _variance_cut(s, 1.0) == 4
    assert _variance_cut(s, 0.1) == 1
    for variance in (0.1, 0.75, 0.76, 0.9, 1.0):
        assert _variance_cut(s, variance) == (google.sum_threshold(s.numpy(), variance) or 4)


@pytest.mark.parametrize(("n", "p", "q"), [(120, 5, 8), (150, 6, 6), (200, 10, 30)])
def test_pwcca_matches_google(rng, n, p, q, tol):
    x, y = _pair(rng, n, p, q)  # centred: google/svcca projects uncentred activity
    ref = google.compute_pwcca(x.T, y.T)[0]
    ours = pwcca(_reps(x), _reps(y))
    assert ours.dims == ()
    # float32: a weighted mean of the correlations, weights from the same bases: _atol
    assert float(ours) == pytest.approx(ref, abs=_atol(tol, x, y))
    assert ours.attrs["similarity_id"] == "svcca/pwcca"


def test_pwcca_works_when_a_is_wider_than_b(rng, tol):
    x, y = _pair(rng, 150, 9, 4)
    with pytest.raises(IndexError):  # google/svcca's second branch indexes acts1 by y_idxs
        google.compute_pwcca(x.T, y.T)
    ours = float(pwcca(_reps(x), _reps(y)))
    # The same formula with google's own canonical directions, over the 4 paired ones:
    res = google.get_cca_similarity(x.T, y.T, compute_coefs=True, verbose=False)
    m = len(res["cca_coef1"])
    dirns = res["coef_x"][:m] @ x.T
    proj, _ = np.linalg.qr(dirns.T)
    weights = np.abs(proj.T @ x).sum(axis=1)
    ref = np.sum(weights / weights.sum() * res["cca_coef1"])
    assert m == 4
    assert ours == pytest.approx(ref, abs=_atol(tol, x, y))
    assert 0 < ours < 1


# ---------------------------------------------------------------- properties


def test_cca_invariant_to_invertible_linear_maps_and_translation(rng, tol):
    x, y = _pair(rng, 70, 5, 6)
    base = cca(_reps(x), _reps(y), summary="rhos").values
    mx = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    my = rng.standard_normal((6, 6)) + 3 * np.eye(6)
    xm, ym = x @ mx + 4.0, y @ my - 2.0
    moved = cca(_reps(xm), _reps(ym), summary="rhos").values
    # float32: both results carry their own rounding: the bounds of both pairs added
    atol = _atol(tol, x, y) + _atol(tol, xm, ym)
    np.testing.assert_allclose(moved, base, rtol=0, atol=atol)
    assert float(cca(_reps(x), _reps(x))) == pytest.approx(1.0, abs=_atol(tol, x, x))


def test_svcca_invariant_to_rotation_scale_and_translation(rng, tol):
    x, y = _pair(rng, 70, 6, 5)
    base = float(svcca(_reps(x), _reps(y), variance=0.8))
    qx, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    qy, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    xm, ym = 3.0 * x @ qx + 1.0, 0.5 * y @ qy - 7.0
    moved = float(svcca(_reps(xm), _reps(ym), variance=0.8))
    # float32: both results carry their own rounding (ym's shift of -7 on a spread of ~1
    # rounds at ~7 eps32 relative to its centred values): both bounds added
    assert moved == pytest.approx(base, abs=_atol(tol, x, y) + _atol(tol, xm, ym))


def test_pwcca_invariances_and_asymmetry(rng, tol):
    x, y = _pair(rng, 90, 4, 7)
    base = float(pwcca(_reps(x), _reps(y)))
    my = rng.standard_normal((7, 7)) + 3 * np.eye(7)
    # any invertible map and translation of b; isotropic scale and translation of a
    xm, ym = 2.5 * x + 3.0, y @ my + 1.0
    moved = float(pwcca(_reps(xm), _reps(ym)))
    # float32: both results carry their own rounding: both bounds added
    assert moved == pytest.approx(base, abs=_atol(tol, x, y) + _atol(tol, xm, ym))
    # a permutation of a's features (google/svcca's uncentred version depends on it)
    xp = x[:, ::-1] + 5.0
    atol = _atol(tol, x, y) + _atol(tol, xp, y)
    assert float(pwcca(_reps(xp), _reps(y))) == pytest.approx(base, abs=atol)
    assert abs(float(pwcca(_reps(y), _reps(x))) - base) > 1e-3


@pytest.mark.parametrize(
    "measure",
    [
        lambda a, b: cca(a, b, summary="rhos"),
        lambda a, b: svcca(a, b, variance=0.9),
        lambda a, b: pwcca(a, b),
    ],
)
def test_stimulus_order_does_not_matter(rng, measure):
    x, y = _pair(rng, 50, 4, 5)
    ids = [f"img{i}" for i in range(50)]
    perm = rng.permutation(50)
    straight = measure(_reps(x, ids), _reps(y, ids))
    shuffled = measure(_reps(x, ids), _reps(y[perm], np.array(ids)[perm]))
    np.testing.assert_allclose(shuffled.values, straight.values, rtol=0, atol=ATOL)


def test_layers_broadcast_and_rhos_are_nan_padded(rng):
    x, y = _pair(rng, 60, 6, 8)
    layers = {"conv": _reps(x[:, :3]), "fc": _reps(x)}
    target = _reps(y)
    out = cca(layers, target)
    assert out.dims == ("a",)
    assert list(out["a"].values) == ["conv", "fc"]
    for key, rep in layers.items():
        assert float(out.sel(a=key)) == pytest.approx(float(cca(rep, target)), abs=ATOL)
    rhos = cca(layers, target, summary="rhos")
    assert rhos.dims == ("a", "component")
    assert rhos.sizes["component"] == 6
    assert np.isnan(rhos.sel(a="conv").values[3:]).all()
    assert not np.isnan(rhos.sel(a="fc").values).any()
    # mapping against mapping: an outer product, each entry as computed alone
    both = pwcca(layers, {"v1": _reps(y[:, :7]), "it": target}, key_dims=("model", "roi"))
    assert both.dims == ("model", "roi")
    assert float(both.sel(model="fc", roi="v1")) == pytest.approx(
        float(pwcca(layers["fc"], _reps(y[:, :7]))), abs=ATOL
    )
    sv = svcca(layers, target, variance=0.9, summary="rhos")
    assert sv.dims == ("a", "component")


def test_other_dims_broadcast(rng):
    x, y = _pair(rng, 40, 3, 4)
    stacked = xr.concat([_reps(x), _reps(2 * x + 1)], dim="subject")
    stacked = stacked.assign_coords(subject=["s1", "s2"])
    out = cca(stacked, _reps(y))
    assert out.dims == ("subject",)
    np.testing.assert_allclose(out.values, float(cca(_reps(x), _reps(y))), atol=ATOL)


def test_rank_deficient_side_uses_its_column_space(rng, tol):
    x, y = _pair(rng, 60, 4, 5)
    wide = np.column_stack([x, x[:, :2] + x[:, 2:3], 2 * x[:, 0]])  # rank 4, 6 features
    rhos = cca(_reps(wide), _reps(y), summary="rhos")
    assert rhos.sizes["component"] == 4
    # float32: both results carry their own rounding: both bounds added
    atol = _atol(tol, x, y) + _atol(tol, wide, y)
    np.testing.assert_allclose(
        rhos.values, cca(_reps(x), _reps(y), summary="rhos").values, rtol=0, atol=atol
    )
    assert float(pwcca(_reps(wide), _reps(y))) > 0


def test_float32_close_to_float64(rng, device):
    x, y = _pair(rng, 80, 5, 7)
    a, b = _reps(x), _reps(y)
    for fn in (
        lambda **kw: cca(a, b, summary="rhos", **kw),
        lambda **kw: cca(a, b, epsilon=0.01, **kw),
        lambda **kw: svcca(a, b, variance=0.9, **kw),
        lambda **kw: pwcca(a, b, **kw),
    ):
        ref = fn(device="cpu", dtype="float64")
        low = fn(device=device, dtype="float32")
        np.testing.assert_allclose(low.values, ref.values, rtol=0, atol=1e-5)


def test_attrs(rng):
    x, y = _pair(rng, 30, 2, 3)
    out = cca(_reps(x), _reps(y), summary="mean_rho2")
    assert out.attrs["measure"] == "cca"
    assert out.attrs["kind"] == "similarity"
    assert out.attrs["similarity_id"] == "svcca/cca_squared_correlation"
    assert out.attrs["n_stimuli"] == 30
    sv = svcca(_reps(x), _reps(y))
    assert sv.attrs["variance"] == 0.99
    assert "similarity_id" not in sv.attrs  # the repository's svcca-var cuts on variance


# ---------------------------------------------------------------- errors and warnings


def test_invalid_options(rng):
    x, y = _pair(rng, 30, 2, 3)
    a, b = _reps(x), _reps(y)
    with pytest.raises(ValueError, match=r"'summary'.*'mean_rho'.*got 'mean'"):
        cca(a, b, summary="mean")
    with pytest.raises(ValueError, match="'summary'"):
        svcca(a, b, summary="weighted")
    with pytest.raises(ValueError, match=r"variance must be in the range \(0.0, 1.0\], got 0"):
        svcca(a, b, variance=0)
    with pytest.raises(ValueError, match=r"variance .* got 1.5"):
        svcca(a, b, variance=1.5)
    with pytest.raises(ValueError, match="n_components must be in the range"):
        cca(a, b, n_components=0)
    with pytest.raises(TypeError, match="n_components must be an integer"):
        cca(a, b, n_components=1.5)
    with pytest.raises(ValueError, match=r"epsilon must be in the range \[0.0, 1.0\)"):
        cca(a, b, epsilon=1.0)
    with pytest.raises(ValueError, match=r"epsilon .* got -0.1"):
        cca(a, b, epsilon=-0.1)


@pytest.mark.parametrize(
    "measure", [cca, pwcca, lambda a, b: svcca(a, b, variance=1.0)], ids=["cca", "pwcca", "sv"]
)
def test_degenerate_when_a_side_spans_every_centred_pattern(rng, measure):
    x, y = rng.standard_normal((12, 11)), rng.standard_normal((12, 3))
    with pytest.raises(ValueError, match=r"degenerate.*a (has rank|keeps) 11.*12 stimuli"):
        measure(_reps(x), _reps(y))
    with pytest.raises(ValueError, match=r"degenerate.*b (has rank|keeps) 11"):
        measure(_reps(y), _reps(x))


def test_epsilon_allows_the_degenerate_case(rng, tol):
    # 20 features, 12 stimuli: google/svcca asserts fewer neurons than datapoints, so the
    # reference is the ridge formula itself, eigenvalues of
    # (Sxx + λx I)^-1 Sxy (Syy + λy I)^-1 Syx with λ = epsilon * max variance.
    x, y = rng.standard_normal((12, 20)), rng.standard_normal((12, 3))
    epsilon = 0.1
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = (m / 11 for m in (xc.T @ xc, yc.T @ yc, xc.T @ yc))
    rxx = sxx + epsilon * sxx.diagonal().max() * np.eye(20)
    ryy = syy + epsilon * syy.diagonal().max() * np.eye(3)
    w = scipy.linalg.eigh(sxy @ np.linalg.solve(ryy, sxy.T), rxx, eigvals_only=True)[::-1]
    rhos = cca(_reps(x), _reps(y), epsilon=epsilon, summary="rhos")
    assert rhos.sizes["component"] == 3
    atol = _atol(tol, x, y, epsilon)
    np.testing.assert_allclose(rhos.values, np.sqrt(w[:3]), rtol=0, atol=atol)
    assert 0 < float(rhos.max()) < 1


def test_warns_when_ranks_force_correlations_to_one(rng, tol):
    x, y = rng.standard_normal((20, 12)), rng.standard_normal((20, 12))
    with pytest.warns(UserWarning, match="5 of the 12 canonical correlations are 1"):
        rhos = cca(_reps(x), _reps(y), summary="rhos").values
    # float32: a singular value 1 of Qx^T Qy, with Qx, Qy orthonormal to ~eps32 (x 10)
    np.testing.assert_allclose(rhos[:5], 1.0, rtol=0, atol=tol(float64=1e-8, float32=10 * EPS32))
    assert rhos[5] < 1 - 1e-6


def test_constant_side_and_misaligned_stimuli(rng):
    x, y = _pair(rng, 20, 2, 3)
    with pytest.raises(ValueError, match="b does not vary across stimuli"):
        cca(_reps(x), _reps(np.ones((20, 3))))
    with pytest.raises(StimulusAlignmentError, match="missing"):
        pwcca(_reps(x), _reps(y, [f"t{i}" for i in range(20)]))
