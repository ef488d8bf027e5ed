"""Soft matching distance (Khosla & Williams 2024) against POT's exact ``ot.emd2``.

Reference: POT 0.9 ``ot.emd2`` (network simplex) with uniform weights ``1/p``, ``1/q`` on
the cost ``ot.dist`` between tuning curves (columns); the distance is its square root for
the squared Euclidean cost.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest
import xarray as xr

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.align import _soft
from brainalign.align._soft import soft_matching

EPS32 = float(np.finfo(np.float32).eps)
# float32: the cost matrix and the distance are computed in float64 from the float32
# inputs, which round each response by eps32 / 2 relative: each cost, and the distance,
# move by at most ~eps32 relative (x 2 margin)
REL32 = 2 * EPS32


def _reps(rng, n, p, *, ids=None, values=None):
    values = rng.normal(size=(n, p)) if values is None else values
    ids = [f"s{i:03d}" for i in range(n)] if ids is None else ids
    return ba.responses(values, ids, feature_dim="unit")


def _emd(x, y, cost="sqeuclidean", center=False):
    if center:
        x = x - x.mean(axis=0)
        y = y - y.mean(axis=0)
    p, q = x.shape[1], y.shape[1]
    m = ot.dist(x.T, y.T, metric=cost)
    val = ot.emd2(np.full(p, 1.0 / p), np.full(q, 1.0 / q), m, numItermax=10**7)
    return np.sqrt(val) if cost == "sqeuclidean" else val


# (p, q): equal widths (permutation), unequal widths (network simplex), one neuron a side
SHAPES = [(7, 7), (6, 4), (12, 18), (53, 47), (1, 5), (5, 1)]


@pytest.mark.parametrize(("p", "q"), SHAPES)
@pytest.mark.parametrize("cost", ["sqeuclidean", "euclidean"])
def test_matches_pot_emd2(rng, p, q, cost, tol):
    x = rng.normal(size=(20, p))
    y = 0.5 * rng.normal(size=(20, q)) + 0.3
    ours = float(
        soft_matching(_reps(rng, 20, p, values=x), _reps(rng, 20, q, values=y), cost=cost)
    )
    rel = tol(float64=1e-10, float32=REL32)
    assert ours == pytest.approx(_emd(x, y, cost), abs=tol(float64=1e-8, float32=0), rel=rel)


def test_centering_matches_pot(rng, tol):
    x = rng.normal(size=(15, 8)) + rng.normal(size=8) * 5
    y = rng.normal(size=(15, 5))
    a, b = _reps(rng, 15, 8, values=x), _reps(rng, 15, 5, values=y)
    # float32: x rounds by eps32 / 2 of its offsets (up to max|x|), which centring leaves in
    # values of unit spread: REL32 times max|x| / std
    rel = REL32 * np.abs(x).max() / x.std(axis=0).min()
    centred = float(soft_matching(a, b, center=True))
    expected = _emd(x, y, center=True)
    assert centred == pytest.approx(expected, abs=tol(float64=1e-8, float32=rel * expected))
    expected = _emd(x, y)
    assert float(soft_matching(a, b)) == pytest.approx(
        expected, abs=tol(float64=1e-8, float32=REL32 * expected)
    )
    shifted = a.copy(data=x + rng.normal(size=8))  # per-neuron offsets vanish when centred
    assert float(soft_matching(shifted, b, center=True)) == pytest.approx(
        centred, abs=tol(float64=1e-12, float32=2 * rel * centred)
    )


def test_lp_path_agrees_with_simplex_path(rng, monkeypatch, tol):
    x, y = rng.normal(size=(12, 6)), rng.normal(size=(12, 9))
    a, b = _reps(rng, 12, 6, values=x), _reps(rng, 12, 9, values=y)
    via_simplex = float(soft_matching(a, b))
    monkeypatch.setattr(_soft, "_SOLVER", "lp")
    assert float(soft_matching(a, b)) == pytest.approx(via_simplex, abs=1e-12)
    expected = _emd(x, y)
    assert via_simplex == pytest.approx(expected, abs=tol(float64=1e-8, float32=REL32 * expected))


def _check_plan(rows, cols, mass, cost):
    p, q = cost.shape
    plan = np.zeros((p, q))
    np.add.at(plan, (rows, cols), mass)
    assert (mass > 0).all() and len(rows) <= p + q - 1  # a basic (vertex) solution
    np.testing.assert_allclose(plan.sum(axis=1), 1 / p, atol=1e-15)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / q, atol=1e-15)
    return (plan * cost).sum()


def test_plan_is_a_transport_plan(rng, monkeypatch):
    cost = rng.uniform(size=(10, 15))
    ref = ot.emd2(np.full(10, 0.1), np.full(15, 1 / 15), cost)
    for solver in ("simplex", "lp"):
        monkeypatch.setattr(_soft, "_SOLVER", solver)
        assert _check_plan(*_soft._plan(cost), cost) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize(("p", "q"), [(200, 150), (31, 47), (120, 300), (2, 3), (64, 1)])
def test_network_simplex_matches_pot_on_larger_and_tied_costs(rng, p, q):
    # Reference: POT's exact network simplex (ot.emd2) on the same costs, including costs
    # with many exact ties (integers in 0..3), where the basis is highly degenerate.
    for cost in (rng.uniform(size=(p, q)), rng.integers(0, 4, size=(p, q)).astype(float)):
        ref = ot.emd2(np.full(p, 1 / p), np.full(q, 1 / q), cost, numItermax=10**7)
        got = _check_plan(*_soft._plan(cost), cost)
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_simplex_falls_back_to_the_lp_at_its_pivot_cap(rng, monkeypatch):
    cost = rng.uniform(size=(9, 13))
    assert _soft._simplex_plan(cost) is not None
    monkeypatch.setattr(_soft, "_MAX_PIVOTS_PER_NODE", 0)  # no pivot allowed
    assert _soft._simplex_plan(cost) is None
    ref = ot.emd2(np.full(9, 1 / 9), np.full(13, 1 / 13), cost)
    assert _check_plan(*_soft._plan(cost), cost) == pytest.approx(ref, abs=1e-12)


def test_zero_for_permuted_or_duplicated_neurons(rng):
    x = rng.normal(size=(25, 6))
    a = _reps(rng, 25, 6, values=x)
    assert float(soft_matching(a, a.isel(unit=rng.permutation(6)))) == 0.0
    # every neuron twice: the same tuning curves in the same proportions
    doubled = _reps(rng, 25, 12, values=np.repeat(x, 2, axis=1)[:, rng.permutation(12)])
    assert float(soft_matching(a, doubled)) == pytest.approx(0.0, abs=1e-12)
    assert float(soft_matching(a, a.copy(data=x + 1.0))) > 0.5


def test_permutation_distance_for_equal_widths(rng, tol):
    # brute force over all 4! permutations: min ||X - Y Pi||_F / sqrt(p)
    from itertools import permutations

    x, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    best = min(np.linalg.norm(x - y[:, list(pi)]) for pi in permutations(range(4)))
    ours = float(soft_matching(_reps(rng, 9, 4, values=x), _reps(rng, 9, 4, values=y)))
    atol = tol(float64=1e-12, float32=REL32 * best / 2.0)
    assert ours == pytest.approx(best / 2.0, abs=atol)


def test_symmetry_and_triangle_inequality(rng):
    for _ in range(5):
        widths = rng.integers(2, 12, size=3)
        reps = [_reps(rng, 10, int(w), values=rng.normal(size=(10, int(w)))) for w in widths]
        d = {
            (i, j): float(soft_matching(reps[i], reps[j]))
            for i in range(3)
            for j in range(3)
            if i != j
        }
        for i, j in d:
            assert d[i, j] == pytest.approx(d[j, i], abs=1e-12)
        assert d[0, 2] <= d[0, 1] + d[1, 2] + 1e-12
        assert d[0, 1] <= d[0, 2] + d[2, 1] + 1e-12
        assert d[1, 2] <= d[1, 0] + d[0, 2] + 1e-12


def test_stimulus_order_invariance(rng):
    a, b = _reps(rng, 20, 5), _reps(rng, 20, 7)
    shuffled = b.isel(stimulus=rng.permutation(20))
    assert float(soft_matching(a, shuffled)) == pytest.approx(
        float(soft_matching(a, b)), abs=1e-12
    )


def test_labels_and_broadcast(rng):
    a1, a2, b = _reps(rng, 12, 3), _reps(rng, 12, 5), _reps(rng, 12, 4)
    out = soft_matching({"x": a1, "y": a2}, b, key_dims=("layer", "b"))
    assert out.dims == ("layer",)
    assert float(out.sel(layer="y")) == float(soft_matching(a2, b))
    assert out.attrs["measure"] == "soft_matching"
    assert out.attrs["kind"] == "distance"
    assert out.attrs["cost"] == "sqeuclidean"
    assert out.attrs["center"] == 0
    stacked = xr.concat([a1, a1 * 2], dim="time")
    assert soft_matching(stacked, b).dims == ("time",)


def test_errors(rng):
    a, b = _reps(rng, 8, 3), _reps(rng, 8, 4)
    with pytest.raises(ValueError, match=r"'cost' parameter.*'sqeuclidean', 'euclidean'"):
        soft_matching(a, b, cost="cosine")
    with pytest.raises(TypeError, match="center must be a bool, got str 'yes'"):
        soft_matching(a, b, center="yes")
    other = _reps(rng, 8, 4, ids=[f"s{i:03d}" for i in range(1, 9)])
    with pytest.raises(StimulusAlignmentError, match="missing 1 id"):
        soft_matching(a, other)
    bad = b.copy(data=np.where(np.arange(8)[:, None] == 3, np.inf, b.values))
    with pytest.raises(ValueError, match="infinite"):
        soft_matching(a, bad)


def test_float32_matches_float64(rng, device):
    a, b = _reps(rng, 30, 8), _reps(rng, 30, 6)
    f64 = float(soft_matching(a, b, dtype="float64"))
    f32 = float(soft_matching(a, b, device=device, dtype="float32"))
    assert f32 == pytest.approx(f64, rel=1e-5)
