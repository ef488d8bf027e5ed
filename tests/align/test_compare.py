"""brainalign.align: the METHODS registry, compare() and stimulus-level inference."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign.align._compare import METHODS, compare, resolve_method
from brainalign.align._inference import _copy_ids, _resample, bootstrap_ci, permutation_test
from brainalign.align._predictivity import predictivity

NAMES = (
    "cka",
    "cca",
    "svcca",
    "pwcca",
    "shape_metric",
    "stochastic_shape",
    "mutual_knn",
    "knn_overlap",
    "soft_matching",
    "predictivity",
)


def _reps(values, ids=None, feature_dim="unit"):
    ids = [f"s{i:02d}" for i in range(values.shape[0])] if ids is None else ids
    return ba.responses(values, ids, feature_dim=feature_dim)


def pattern_r(a, b):
    """A user's own measure: Pearson r of the two patterns (same width), stimuli by id."""
    x = a.transpose("stimulus", ...).values
    y = b.sel(stimulus=a.stimulus).transpose("stimulus", ...).values
    return xr.DataArray(np.corrcoef(x.ravel(), y.ravel())[0, 1])


def pattern_distance(a, b):
    """The same measure as a distance: 1 - r, declared through attrs."""
    return xr.DataArray(1.0 - float(pattern_r(a, b)), attrs={"kind": "distance"})


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_measure_read_only():
    assert tuple(METHODS) == NAMES
    assert len(METHODS) == 10 and "cka" in METHODS
    for name, spec in METHODS.items():
        assert spec.name == name
        assert spec.kind in ("similarity", "distance")
        assert spec.description and spec.module.startswith("brainalign.align._")
    with pytest.raises(TypeError):
        METHODS["mine"] = METHODS["cka"]  # type: ignore[index]
    with pytest.raises(ValueError, match=r"'method'.*Did you mean 'cka'"):
        METHODS["ckaa"]
    assert "predictivity" in repr(METHODS)


@pytest.mark.parametrize("name", NAMES)
def test_registered_functions_import_lazily(name):
    spec = METHODS[name]
    if importlib.util.find_spec(spec.module) is None:
        pytest.skip(f"{spec.module} is not written yet")
    mod = importlib.import_module(spec.module)
    if not hasattr(mod, spec.attr):
        pytest.skip(f"{spec.module}.{spec.attr} is not written yet")
    assert callable(spec.function)
    assert resolve_method(spec.function) == (spec.function, spec)


def test_cross_validated_flags():
    assert METHODS["predictivity"].is_cross_validated({})
    assert METHODS["shape_metric"].is_cross_validated({"cv": 5})
    assert not METHODS["shape_metric"].is_cross_validated({"cv": None})
    assert not METHODS["cka"].is_cross_validated({})


# --------------------------------------------------------------------------- compare


def test_compare_dispatches_by_name(rng):
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    got = compare(_reps(x), _reps(y), "predictivity", regression="ols", cv=4)
    ref = predictivity(_reps(x), _reps(y), regression="ols", cv=4)
    xr.testing.assert_identical(got, ref)


def test_compare_unknown_method_and_bad_types(rng):
    x = _reps(rng.normal(size=(6, 3)))
    with pytest.raises(
        ValueError, match=r"'method'.*got 'predictivty'.*Did you mean 'predictivity'"
    ):
        compare(x, x, "predictivty")
    with pytest.raises(TypeError, match=r"method must be a name in brainalign\.align\.METHODS"):
        compare(x, x, 3)
    with pytest.raises(TypeError, match=r"must return an xarray\.DataArray"):
        compare(x, x, lambda a, b: "high")


def test_compare_accepts_a_callable(rng):
    x = rng.normal(size=(8, 3))
    res = compare(_reps(x), _reps(2 * x + 1), pattern_r)
    assert float(res) == pytest.approx(1.0)
    as_float = compare(_reps(x), _reps(x), lambda a, b: 0.5)
    assert isinstance(as_float, xr.DataArray) and float(as_float) == 0.5
    assert resolve_method(pattern_r) == (pattern_r, None)


# --------------------------------------------------------------------------- permutations


def test_permutation_test_shapes_and_pvalues(rng):
    x = rng.normal(size=(12, 3))
    a = {"l1": _reps(x), "l2": _reps(rng.normal(size=(12, 3)))}
    b = xr.concat([_reps(x + 0.1 * rng.normal(size=x.shape)), _reps(x)], dim="subject")
    b = b.assign_coords(subject=["s1", "s2"])

    def measure(a, b):  # broadcast through predictivity-free, labeled code
        return xr.DataArray(
            [[float(pattern_r(a[k], b.sel(subject=s))) for s in b.subject.values] for k in a],
            dims=("layer", "subject"),
            coords={"layer": list(a), "subject": b.subject.values},
        )

    res = permutation_test(a, b, measure, n_permutations=49, seed=0)
    assert res.statistic.dims == ("layer", "subject") and res.p_value.dims == res.statistic.dims
    assert res.null.dims == ("permutation", "layer", "subject")
    assert res.sizes["permutation"] == 49
    k = (res.null >= res.statistic - 1e-12).sum("permutation")
    np.testing.assert_allclose(res.p_value, (1 + k) / 50)
    assert float(res.p_value.sel(layer="l1", subject="s2")) == 0.02  # the smallest possible
    assert res.attrs["alternative"] == "greater" and res.attrs["kind"] == "similarity"


def test_permutation_null_is_the_exact_permutation_distribution(rng):
    # 4 stimuli: every permuted value must be one of the 24 brute-force values
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    res = permutation_test(_reps(x), _reps(y), pattern_r, n_permutations=60, seed=1)
    exact = [
        np.corrcoef(x.ravel(), y[list(p)].ravel())[0, 1] for p in itertools.permutations(range(4))
    ]
    dist = np.abs(res.null.values[:, None] - np.array(exact)[None]).min(1)
    assert dist.max() < 1e-12
    assert len(np.unique(res.null.values.round(12))) > 10  # many permutations, not one


def test_permutation_alternatives_follow_the_kind(rng):
    x = rng.normal(size=(10, 3))
    y = x + rng.normal(size=x.shape)
    a, b = _reps(x), _reps(y)
    for alt in ("greater", "less", "two-sided"):
        sim = permutation_test(a, b, pattern_r, n_permutations=39, seed=2, alternative=alt)
        dist = permutation_test(a, b, pattern_distance, n_permutations=39, seed=2, alternative=alt)
        np.testing.assert_allclose(sim.p_value, dist.p_value)
        assert dist.attrs["kind"] == "distance"
    g = permutation_test(a, b, pattern_r, n_permutations=39, seed=2, alternative="greater")
    le = permutation_test(a, b, pattern_r, n_permutations=39, seed=2, alternative="less")
    two = permutation_test(a, b, pattern_r, n_permutations=39, seed=2, alternative="two-sided")
    assert float(g.p_value) == 1 / 40 and float(le.p_value) == 1.0
    assert float(two.p_value) == pytest.approx(2 / 40)


def test_permutation_seed_and_stimulus_order(rng):
    x = rng.normal(size=(10, 3))
    a, b = _reps(x), _reps(x + rng.normal(size=x.shape))
    one = permutation_test(a, b, pattern_r, n_permutations=30, seed=4)
    two = permutation_test(a, b, pattern_r, n_permutations=30, seed=4)
    xr.testing.assert_identical(one, two)
    other = permutation_test(a, b, pattern_r, n_permutations=30, seed=5)
    assert not np.array_equal(one.null.values, other.null.values)
    perm = rng.permutation(10)
    shuffled = permutation_test(
        a.isel(stimulus=perm),
        b.isel(stimulus=rng.permutation(10)),
        pattern_r,
        n_permutations=30,
        seed=4,
    )
    np.testing.assert_allclose(shuffled.null, one.null, atol=1e-12)
    np.testing.assert_array_equal(shuffled.p_value, one.p_value)


def test_permutation_with_a_registered_measure(rng):
    x = rng.normal(size=(16, 4))
    y = x[:, :3] + 0.3 * rng.normal(size=(16, 3))
    res = permutation_test(
        _reps(x), _reps(y), "predictivity", n_permutations=9, seed=0, regression="ols", cv=4
    )
    assert float(res.p_value) == 0.1
    assert res.attrs["method"] == "predictivity"
    assert res.statistic.attrs["measure"] == "predictivity"


def test_permutation_errors(rng):
    x = _reps(rng.normal(size=(6, 3)))
    with pytest.raises(ValueError, match=r"n_permutations must be in the range \[1"):
        permutation_test(x, x, pattern_r, n_permutations=0)
    with pytest.raises(ValueError, match=r"'alternative'.*Did you mean 'greater'"):
        permutation_test(x, x, pattern_r, alternative="greatr")
    with pytest.raises(ValueError, match=r"'method'.*Did you mean 'cca'"):
        permutation_test(x, x, "ccaa")


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_shapes_percentiles_and_seed(rng):
    x = rng.normal(size=(15, 3))
    a, b = _reps(x), _reps(x + rng.normal(size=x.shape))
    res = bootstrap_ci(a, b, pattern_r, n_bootstrap=50, confidence=0.9, seed=0)
    assert res.bootstrap.dims == ("bootstrap",) and res.sizes["bootstrap"] == 50
    lo, hi = np.quantile(res.bootstrap.values, [0.05, 0.95])
    assert float(res.ci_low) == pytest.approx(lo) and float(res.ci_high) == pytest.approx(hi)
    assert float(res.ci_low) < float(res.statistic) < float(res.ci_high)
    again = bootstrap_ci(a, b, pattern_r, n_bootstrap=50, confidence=0.9, seed=0)
    xr.testing.assert_identical(res, again)
    perm = rng.permutation(15)
    shuffled = bootstrap_ci(
        a.isel(stimulus=perm), b, pattern_r, n_bootstrap=50, confidence=0.9, seed=0
    )
    np.testing.assert_allclose(shuffled.bootstrap, res.bootstrap, atol=1e-12)
    assert res.attrs["interval"] == "percentile" and res.attrs["confidence"] == 0.9


def test_bootstrap_relabels_copies_identically(rng):
    x = rng.normal(size=(8, 2))
    seen = []

    def check_pairs(a, b):
        ids = a.stimulus.values
        assert len(set(ids)) == len(ids) == 8  # copies get unique ids
        assert set(ids) == set(b.stimulus.values)
        np.testing.assert_allclose(b.sel(stimulus=ids).values - a.values, 3.0)  # rows paired
        seen.append(ids)
        return xr.DataArray(0.0)

    bootstrap_ci(_reps(x), _reps(x + 3.0), check_pairs, n_bootstrap=5, seed=1)
    assert any("#1" in i for ids in seen for i in ids)  # some stimulus was drawn twice
    assert all(str(i).split("#")[0].startswith("s") for ids in seen for i in ids)


def test_copy_ids_and_trial_resampling():
    ids = np.array(["a", "b", "c"])
    np.testing.assert_array_equal(
        _copy_ids(ids, np.array([2, 0, 2, 2])), ["c#0", "a#0", "c#1", "c#2"]
    )
    trials = xr.DataArray(
        np.arange(10.0).reshape(5, 2),
        dims=("trial", "unit"),
        coords={"stimulus": ("trial", ["a", "b", "a", "c", "b"])},
    )
    out = _resample(trials, np.array(["b", "a", "b"]), np.array(["b#0", "a#0", "b#1"]))
    np.testing.assert_array_equal(out.stimulus.values, ["b#0", "b#0", "a#0", "a#0", "b#1", "b#1"])
    np.testing.assert_array_equal(out.values[:, 0], [2.0, 8.0, 0.0, 4.0, 2.0, 8.0])


def test_bootstrap_refuses_cross_validated_measures(rng):
    x = _reps(rng.normal(size=(12, 3)))
    with pytest.raises(ValueError, match="cannot resample stimuli for method 'predictivity'"):
        bootstrap_ci(x, x, "predictivity", n_bootstrap=2)
    with pytest.raises(ValueError, match="cannot resample stimuli for method 'predictivity'"):
        bootstrap_ci(x, x, predictivity, n_bootstrap=2)
    with pytest.raises(ValueError, match=r"confidence must be in the range \(0.0, 1.0\)"):
        bootstrap_ci(x, x, pattern_r, confidence=1.0)
    with pytest.raises(ValueError, match=r"n_bootstrap must be in the range \[1"):
        bootstrap_ci(x, x, pattern_r, n_bootstrap=0)


def test_device_dtype_pass_through(rng, device):
    x = rng.normal(size=(16, 4))
    y = x[:, :2] + rng.normal(size=(16, 2))
    r64 = compare(
        _reps(x), _reps(y), "predictivity", regression="ols", cv=4, device=device, dtype="float64"
    )
    r32 = compare(
        _reps(x), _reps(y), "predictivity", regression="ols", cv=4, device=device, dtype="float32"
    )
    assert float(r32) == pytest.approx(float(r64), abs=1e-5)


@pytest.mark.parametrize(
    ("method", "kw"),
    [("cka", {}), ("cka", {"estimator": "song"}), ("shape_metric", {}), ("mutual_knn", {"k": 3}),
     ("soft_matching", {}), ("pwcca", {})],
)  # fmt: skip
def test_stacked_permutations_equal_one_call_per_permutation(method, kw, monkeypatch):
    # The stacked path (b's rows moved, a permutation dim) against relabelling b's ids and
    # calling the measure once per permutation (the path for callables and mappings).
    import numpy as np

    import brainalign as ba
    from brainalign.align import _inference

    rng = np.random.default_rng(0)
    ids = [f"s{i:02d}" for i in range(15)]
    a = ba.responses(rng.normal(size=(15, 6)), ids)
    order = rng.permutation(15)
    b = ba.responses(rng.normal(size=(15, 5))[order], [ids[i] for i in order])
    b = b.expand_dims(layer=["x", "y"]).copy()
    b.values[1] = 2 * b.values[1] + rng.normal(size=(15, 5))
    stacked = _inference.permutation_test(a, b, method, n_permutations=30, seed=1, **kw)
    monkeypatch.setattr(_inference, "_BATCHABLE", ())
    looped = _inference.permutation_test(a, b, method, n_permutations=30, seed=1, **kw)
    np.testing.assert_allclose(stacked.null.values, looped.null.values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(stacked.p_value.values, looped.p_value.values)
    assert stacked.null.dims == looped.null.dims == ("permutation", "layer")


@pytest.mark.parametrize(
    ("method", "kw"),
    [("cka", {}), ("cka", {"estimator": "song"}), ("cka", {"kernel": "rbf"}),
     ("shape_metric", {}),
     ("shape_metric", {"score": "euclidean"})],
)  # fmt: skip
def test_wide_patterns_permute_as_principal_coordinates(method, kw, monkeypatch, tol):
    # With more features than stimuli, rotation-invariant measures are permuted on the
    # n x r principal coordinates of each side: the null equals the one on the raw features
    # (whose measure calls are the reference), and the observed value is the raw one
    import numpy as np

    import brainalign as ba
    from brainalign.align import _inference

    rng = np.random.default_rng(2)
    ids = [f"s{i:02d}" for i in range(12)]
    a = ba.responses(rng.normal(size=(12, 40)) + 3.0, ids)
    b = ba.responses(rng.normal(size=(12, 25)) @ rng.normal(size=(25, 30)), ids)
    b = b.expand_dims(layer=["x", "y"]).copy()  # layers reduced in one batched SVD
    b.values[1] = rng.normal(size=(12, 30)) + b.values[0]
    reduced = _inference.permutation_test(a, b, method, n_permutations=20, seed=1, **kw)
    monkeypatch.setattr(_inference, "_principal_coordinates", lambda da: da)
    raw = _inference.permutation_test(a, b, method, n_permutations=20, seed=1, **kw)
    # float32: both nulls are computed in float32, from the principal coordinates (float64
    # SVD, rounded once) and from the raw features (a's +3 offset rounds at 4 eps32 of its
    # centred values): each within a few eps32 (x 10) relative, or absolute for CKA in [0, 1]
    eps32 = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(
        reduced.null.values,
        raw.null.values,
        rtol=tol(float64=0, float32=10 * eps32),
        atol=tol(float64=1e-9, float32=10 * eps32),
    )
    np.testing.assert_array_equal(reduced.p_value.values, raw.p_value.values)
    xr.testing.assert_identical(reduced.statistic, raw.statistic)


def test_principal_coordinates_only_where_exact():
    import numpy as np

    import brainalign as ba
    from brainalign.align import _inference

    rng = np.random.default_rng(0)
    tall = ba.responses(rng.normal(size=(10, 4)))
    assert _inference._principal_coordinates(tall) is tall  # p <= n: nothing to gain
    wide = ba.responses(rng.normal(size=(6, 9)))
    pc = _inference._principal_coordinates(wide)
    assert pc.shape == (6, 5)  # rank n - 1 after centring
    xc = wide.values - wide.values.mean(0)
    np.testing.assert_allclose(pc.values @ pc.values.T, xc @ xc.T, rtol=0, atol=1e-12)
    assert _inference._rotation_invariant("shape_metric", {})
    assert not _inference._rotation_invariant("shape_metric", {"alpha": 0.5})
    assert not _inference._rotation_invariant("shape_metric", {"group": "permutation"})
    assert not _inference._rotation_invariant("shape_metric", {"cv": 3})
    assert not _inference._rotation_invariant("pwcca", {})


@pytest.mark.parametrize(
    ("seed", "draw", "method", "kw"),
    [(0, 2, "cca", {}), (2, 1, "cka", {"estimator": "song"})],
)
def test_permutations_that_keep_a_categorical_b_tie_in_float32(seed, draw, method, kw):
    # b is categorical (2 categories of 3 stimuli): the ~10 % of permutations that swap
    # stimuli within categories leave it unchanged, and their null values equal the
    # observed one up to rounding (the null is computed in one batch, the observed value
    # alone). A fixed 1e-12 margin dropped some of these float32 ties (p 0.232 instead of
    # 0.279 for CCA; 0.036 instead of 0.084 for debiased CKA, with these data). Reference:
    # float64, whose ties lie within 1e-12.
    rng = np.random.default_rng(seed)
    cat = np.repeat(np.eye(2), 3, axis=0)
    for _ in range(draw + 1):  # the draw that showed the dropped ties
        x = rng.normal(size=(6, 4)) + cat @ rng.normal(size=(2, 4))
        y = cat @ rng.normal(size=(2, 3))
    a, b = _reps(x), _reps(y)
    kw = {**kw, "n_permutations": 500, "seed": 0, "device": "cpu"}
    p64 = float(permutation_test(a, b, method, dtype="float64", **kw).p_value)
    p32 = float(permutation_test(a, b, method, dtype="float32", **kw).p_value)
    assert p32 == p64
    assert p64 >= 41 / 501  # the observed value and at least 40 tied permutations
