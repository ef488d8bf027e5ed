"""Mahalanobis, crossnobis and Poisson RDMs against rsatoolbox 0.3.2's ``calc_rdm``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

import brainalign as ba
from brainalign.rsa._noise import noise_precision
from brainalign.rsa._rdm import rdm

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import calc_rdm  # noqa: E402


def _trials(rng, n_runs=4, n_stim=6, p=9, reps=1, counts=False, shuffle=False):
    """Trial data (every stimulus ``reps`` times per run) as a DataArray and a Dataset."""
    signal = rng.normal(size=(n_stim, p))
    n = n_runs * n_stim * reps
    x = np.tile(signal, (n_runs * reps, 1)) + rng.normal(size=(n, p))
    if counts:
        x = rng.poisson(np.exp(np.tile(signal, (n_runs * reps, 1)) * 0.5 + 1.0)).astype(float)
    stim = np.tile([f"s{i}" for i in range(n_stim)], n_runs * reps)
    run = np.repeat([f"r{k}" for k in range(n_runs)], n_stim * reps)
    if shuffle:
        perm = rng.permutation(n)
        x, stim, run = x[perm], stim[perm], run[perm]
    da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    ds = Dataset(x, obs_descriptors={"stimulus": stim, "run": run})
    return da, ds


def _sorted(d):
    """Reorder an RDM to sorted stimulus ids (rsatoolbox sorts by the descriptor)."""
    ids = np.asarray(d.stimulus_a.values)
    order = np.argsort(ids)
    return np.asarray(d)[np.ix_(order, order)]


def _close(got, ref, dtype):
    # float32: p <= 40-term products of unit-scale patterns rounded in float32 (eps32 *
    # sqrt(p) = 8e-7 of the largest product), cancelling up to ~10x in cross-run differences
    if dtype == "float64":
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.fixture
def precision(rng):
    a = rng.normal(size=(9, 9))
    return a @ a.T / 9 + np.eye(9)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("metric", "ref_method", "post"),
    [
        ("correlation", "correlation", lambda d, p: d),
        ("sqeuclidean", "euclidean", lambda d, p: d / p),
        ("euclidean", "euclidean", lambda d, p: d**2 / p),
        ("mahalanobis", "mahalanobis", lambda d, p: d),
        ("poisson", "poisson", lambda d, p: d),
    ],
)
def test_stimulus_metrics_match_rsatoolbox(metric, ref_method, post, dtype, rng, precision):
    x = (
        rng.poisson(4.0, size=(7, 9)).astype(float)
        if metric == "poisson"
        else rng.normal(size=(7, 9)) * 2 + 0.5
    )
    noise = precision if metric == "mahalanobis" else None
    ref = calc_rdm(Dataset(x), method=ref_method, noise=noise).get_matrices()[0]
    got = rdm(x, metric, noise=noise, dtype=dtype)
    assert got.dtype == np.dtype(dtype)
    _close(post(np.asarray(got, dtype=float), x.shape[1]), ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mahalanobis_without_noise_is_rsatoolbox_euclidean(dtype, rng):
    x = rng.normal(size=(6, 5))
    ref = calc_rdm(Dataset(x), method="mahalanobis").get_matrices()[0]
    _close(np.asarray(rdm(x, "mahalanobis", dtype=dtype), dtype=float), ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("noise_kind", ["identity", "matrix", "shrinkage"])
@pytest.mark.parametrize("reps", [1, 2])
def test_crossnobis_matches_rsatoolbox(noise_kind, reps, dtype, rng, precision):
    da, ds = _trials(rng, reps=reps, shuffle=True)
    noise = {"identity": None, "matrix": precision}.get(noise_kind)
    if noise_kind == "shrinkage":
        noise = noise_precision(da, "shrinkage_diag", from_="measurements")
    ref_noise = None if noise is None else np.asarray(noise)
    ref = calc_rdm(
        ds, "crossnobis", descriptor="stimulus", noise=ref_noise, cv_descriptor="run"
    ).get_matrices()[0]
    got = rdm(da, "crossnobis", noise=noise, dtype=dtype)
    assert got.attrs["n_runs"] == 4
    _close(_sorted(got).astype(float), ref, dtype)


@pytest.mark.float32
def test_crossnobis_equals_mean_over_run_pairs(rng, precision, tol):
    """An independent oracle: the average over all ordered pairs of distinct runs."""
    da, _ = _trials(rng, n_runs=3, n_stim=5)
    x = np.asarray(da.values).reshape(3, 5, 9)  # runs are blocks of 5 stimuli in order
    want = np.zeros((5, 5))
    for k in range(3):
        for m in range(3):
            if k != m:
                dk = x[k][:, None, :] - x[k][None, :, :]
                dm = x[m][:, None, :] - x[m][None, :, :]
                want += np.einsum("ijp,pq,ijq->ij", dk, precision, dm)
    want /= 6 * 9
    # float32: 9-term products through a 9 x 9 precision, then 6 run pairs averaged:
    # eps32 * sqrt(81) = 1e-6 of the largest dissimilarity worst case (1.7e-7 seen)
    np.testing.assert_allclose(
        np.asarray(rdm(da, "crossnobis", noise=precision)),
        want,
        atol=tol(float64=1e-12, float32=2e-6 * np.abs(want).max()),
    )


def test_crossnobis_runs_argument_and_broadcast(rng):
    da, _ = _trials(rng, n_runs=3, n_stim=4, p=5)
    labels = np.asarray(da.run.values)
    plain = da.drop_vars("run")
    ref = rdm(da, "crossnobis")
    np.testing.assert_allclose(rdm(plain, "crossnobis", runs=labels).values, ref.values)
    np.testing.assert_allclose(
        rdm(da.rename(run="block"), "crossnobis", runs="block").values, ref.values
    )
    cube = ba.responses(
        np.stack([da.values, 2 * da.values], axis=-1),
        da.stimulus.values,
        sample_dim="trial",
        dims=("trial", "channel", "time"),
        time=[0.0, 0.1],
        run=("trial", labels),
    )
    out = rdm(cube, "crossnobis")
    assert out.dims == ("time", "stimulus_a", "stimulus_b")
    np.testing.assert_allclose(out.isel(time=0).values, ref.values, atol=1e-12)
    np.testing.assert_allclose(out.isel(time=1).values, 4 * ref.values, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_poisson_cv_rsatoolbox_semantics_keeps_last_fold(dtype, rng):
    da, ds = _trials(rng, counts=True, shuffle=True)
    ref = calc_rdm(ds, "poisson_cv", descriptor="stimulus", cv_descriptor="run")
    got = rdm(da, "poisson_cv", semantics="rsatoolbox", dtype=dtype)
    assert got.attrs["semantics"] == "rsatoolbox"
    _close(_sorted(got).astype(float), ref.get_matrices()[0], dtype)


def test_poisson_cv_correct_semantics_averages_all_folds(rng, tol):
    """Oracle: rsatoolbox's last fold, with each run relabelled as the last one in turn."""
    da, ds = _trials(rng, n_runs=3, counts=True)
    run = np.asarray(ds.obs_descriptors["run"])
    folds = []
    for k in ["r0", "r1", "r2"]:
        relabel = np.where(run == k, "z", run)
        ds_k = Dataset(
            ds.measurements,
            obs_descriptors={"stimulus": ds.obs_descriptors["stimulus"], "run": relabel},
        )
        folds.append(
            calc_rdm(
                ds_k, "poisson_cv", descriptor="stimulus", cv_descriptor="run"
            ).get_matrices()[0]
        )
    got = _sorted(rdm(da, "poisson_cv"))
    # float32: 9-feature sums of (difference x log-ratio) of counts near e, rounded in
    # float32: eps32 * sqrt(9) * a few = 1e-6 of the largest dissimilarity (2e-7 seen)
    rtol = tol(float64=1e-10, float32=0.0)
    atol = tol(float64=1e-12, float32=2e-6 * np.abs(folds).max())
    np.testing.assert_allclose(got, np.mean(folds, axis=0), rtol=rtol, atol=atol)
    last = _sorted(rdm(da, "poisson_cv", semantics="rsatoolbox"))
    np.testing.assert_allclose(last, folds[-1], rtol=rtol, atol=atol)
    assert np.abs(got - last).max() > 1e-3  # the defect changes the result


@pytest.mark.float32
def test_correlation_fast_path_is_accurate_with_large_offsets(rng, tol):
    x = rng.normal(size=(12, 50))
    x[::2] += 1e5  # ill-conditioned for the Gram formula: recomputed by centring
    # float32: the offset is removed in float64 before the cast, then 50-term dot products
    # of unit-scale values: eps32 * sqrt(50) = 8e-7 worst case per entry (5e-8 seen)
    t = tol(float64=1e-10, float32=2e-6)
    for metric in ("correlation", "cosine"):
        np.testing.assert_allclose(
            np.asarray(rdm(x, metric)), squareform(pdist(x, metric)), rtol=t, atol=t
        )


def _bad_trials():
    x = np.arange(12.0).reshape(6, 2) % 5 + 1
    return ba.responses(
        x,
        ["a", "b", "c", "a", "b", "a"],
        sample_dim="trial",
        feature_dim="channel",
        run=("trial", ["r1", "r1", "r1", "r2", "r2", "r3"]),
    )


@pytest.mark.parametrize(
    ("make", "kwargs", "exc", "match"),
    [
        (
            lambda: np.ones((3, 4)),
            {"metric": "crossnobs"},
            ValueError,
            r"'metric' parameter.*got 'crossnobs'\. Did you mean 'crossnobis'\?",
        ),
        (
            lambda: _bad_trials().drop_vars("run"),
            {"metric": "crossnobis"},
            ValueError,
            r"metric='crossnobis' needs the run of each trial: pass runs=",
        ),
        (
            lambda: _bad_trials(),
            {"metric": "crossnobis", "runs": ["r1"] * 6},
            ValueError,
            r"needs at least 2 runs to cross-validate; runs holds 1 distinct value\(s\) \('r1'\)",
        ),
        (
            lambda: _bad_trials(),
            {"metric": "crossnobis", "runs": "runs"},
            ValueError,
            r"runs='runs' is not a coordinate along 'trial'.*Did you mean 'run'\?",
        ),
        (
            lambda: _bad_trials(),
            {"metric": "crossnobis", "runs": [1, 2]},
            ValueError,
            r"runs must hold one label per trial \(6\); got shape \(2,\)",
        ),
        (
            lambda: _bad_trials(),
            {"metric": "crossnobis"},
            ValueError,
            r"every stimulus in every run: run 'r2' lacks stimuli 'c'; "
            r"run 'r3' lacks stimuli 'b', 'c'",
        ),
        (
            lambda: ba.responses(np.ones((3, 2))),
            {"metric": "crossnobis"},
            ba.SchemaError,
            r"metric='crossnobis' needs trial data.*has dims \('stimulus', 'unit'\)",
        ),
        (
            lambda: np.eye(3),
            {"metric": "mahalanobis", "noise": np.eye(4)},
            ValueError,
            r"noise must be a \(3, 3\) precision matrix for data's 3 features along 'unit'; "
            r"got shape \(4, 4\)",
        ),
        (
            lambda: np.eye(2),
            {"metric": "mahalanobis", "noise": np.array([[1.0, 2.0], [2.0, 1.0]])},
            ValueError,
            r"noise must be positive definite, but its Cholesky factorisation fails at "
            r"leading minor 2 of 2",
        ),
        (
            lambda: np.eye(2),
            {"metric": "mahalanobis", "noise": np.array([[1.0, np.nan], [0.0, 1.0]])},
            ValueError,
            r"noise holds 1 NaN value\(s\) out of 4",
        ),
        (
            lambda: np.eye(2),
            {"metric": "mahalanobis", "noise": np.diag([1.0, -2.0])},
            ValueError,
            r"diagonal entry 1 is -2 \(1 non-positive",
        ),
        (
            lambda: np.eye(2),
            {"metric": "mahalanobis", "noise": np.array([[1.0, 0.5], [0.0, 1.0]])},
            ValueError,
            r"noise must be a symmetric precision matrix; max \|noise - noise.T\| = 0.5",
        ),
        (
            lambda: np.array([[1.0, 2.0], [-0.5, 3.0], [0.0, 1.0]]),
            {"metric": "poisson"},
            ValueError,
            r"metric='poisson' needs non-negative data.*1 negative value\(s\) \(min -0.5\) "
            r"in 1 pattern\(s\) \('1'\)",
        ),
        (
            lambda: _bad_trials() - 3,
            {"metric": "poisson_cv", "runs": ["r1", "r1", "r1", "r2", "r2", "r2"]},
            ValueError,
            r"metric='poisson_cv' needs non-negative data",
        ),
        (
            lambda: _bad_trials().where(lambda d: d != 4.0),
            {"metric": "crossnobis", "runs": ["r1", "r1", "r1", "r2", "r2", "r2"]},
            ValueError,
            r"data holds 2 NaN value\(s\) out of 12 in 2 of 6 rows \('b', 'b'\)",
        ),
        (
            lambda: np.array([[1.0, np.inf], [2.0, 3.0]]),
            {"metric": "mahalanobis"},
            ValueError,
            r"data holds 1 infinite value\(s\) out of 4 in 1 of 2 rows \('0'\)",
        ),
        (
            lambda: np.eye(3),
            {"metric": "poisson", "prior_weight": 0},
            ValueError,
            r"metric='poisson' with prior_weight=0 needs positive data.*holds 6 zero\(s\)",
        ),
        (
            lambda: np.eye(3),
            {"metric": "poisson", "prior_lambda": -1.0},
            ValueError,
            r"prior_lambda must be in the range \(0, inf\), got -1.0",
        ),
        (
            lambda: np.eye(3),
            {"metric": "correlation", "noise": np.eye(3)},
            ValueError,
            r"noise= \(a precision matrix\) is used only by.*got metric='correlation'",
        ),
        (
            lambda: np.eye(3),
            {"metric": "cosine", "runs": [0, 1, 2]},
            ValueError,
            r"runs= is used only by the cross-validated metrics.*got metric='cosine'",
        ),
        (
            lambda: np.eye(3),
            {"metric": "poisson", "semantics": "rsa"},
            ValueError,
            r"'semantics' parameter.*got 'rsa'",
        ),
    ],
)
def test_bad_input(make, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rdm(make(), **kwargs)


def test_labeled_noise_must_match_feature_labels(rng):
    da, _ = _trials(rng, n_runs=2, n_stim=3, p=3)
    da = da.assign_coords(channel=["c1", "c2", "c3"])
    prec = noise_precision(da, "diag", from_="measurements")
    assert list(prec.channel.values) == ["c1", "c2", "c3"]
    rdm(da, "crossnobis", noise=prec)  # matching labels are fine
    with pytest.raises(ValueError, match=r"noise is labeled with other features.*'c3', 'c2'"):
        rdm(da, "crossnobis", noise=prec.isel(channel=[0, 2, 1], channel_b=[0, 2, 1]))


finite = st.floats(0, 50, allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 4),
    st.integers(2, 6),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["crossnobis", "poisson_cv"]),
)
def test_property_cv_symmetric_zero_diagonal(n_runs, n_stim, p, seed, metric):
    da, _ = _trials(np.random.default_rng(seed), n_runs, n_stim, p, counts=True, shuffle=True)
    d = np.asarray(rdm(da, metric))
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)  # crossnobis values may be negative: no sign check


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 7), st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_property_mahalanobis_poisson_nonnegative(n, p, seed, with_noise):
    rng = np.random.default_rng(seed)
    x = rng.poisson(3.0, size=(n, p)).astype(float)
    a = rng.normal(size=(p, p))
    noise = a @ a.T + np.eye(p) if with_noise else None
    for d in (np.asarray(rdm(x, "mahalanobis", noise=noise)), np.asarray(rdm(x, "poisson"))):
        assert np.array_equal(d, d.T)
        assert np.all(np.diag(d) == 0)
        assert np.all(d >= -1e-12)


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
def test_blocked_gram_path_matches_scipy(metric, rng, tol):
    """Enough stimuli for the block-triangular Gram product, with a broadcast dim."""
    x = rng.normal(size=(150, 12, 2)) + 0.3
    da = ba.responses(x, dims=("stimulus", "unit", "time"))
    got = rdm(da, metric)
    # float32: 12-term dot products of unit-scale values, one rounding per block:
    # eps32 * sqrt(12) * a few = 1e-6 on dissimilarities of order 1 (2e-7 seen)
    close = tol(float64=1e-10, float32=2e-6)
    for t in range(2):
        want = squareform(pdist(x[:, :, t], metric))
        np.testing.assert_allclose(got.isel(time=t).values, want, rtol=close, atol=close)
    d = got.isel(time=0).values
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0)


@pytest.mark.parametrize("metric", ["crossnobis", "poisson_cv"])
def test_unequal_trial_counts_rsatoolbox_semantics(metric, rng, precision, tol):
    """rsatoolbox averages the training runs' trials; "correct" averages their run means."""
    da, _ = _trials(rng, n_runs=3, n_stim=4, counts=True)
    extra = da.isel(trial=[0, 1, 5])  # more trials of s0, s1 in run r0 and of s1 in r1
    extra = extra.assign_coords(trial=np.arange(3) + da.sizes["trial"])
    da = ba.responses(
        np.concatenate([da.values, extra.values + 1.0]),
        np.concatenate([da.stimulus.values, extra.stimulus.values]),
        sample_dim="trial",
        feature_dim="channel",
        run=("trial", np.concatenate([da.run.values, extra.run.values])),
    )
    ds = Dataset(
        np.asarray(da.values),
        obs_descriptors={"stimulus": da.stimulus.values, "run": da.run.values},
    )
    noise = precision if metric == "crossnobis" else None
    ref = calc_rdm(
        ds, metric, descriptor="stimulus", noise=noise, cv_descriptor="run"
    ).get_matrices()[0]
    kwargs = {"noise": noise} if metric == "crossnobis" else {}
    got = _sorted(rdm(da, metric, semantics="rsatoolbox", **kwargs))
    # float32: 9-term products (through a 9 x 9 precision for crossnobis) of counts near
    # e: eps32 * sqrt(81) = 1e-6 of the largest dissimilarity (4e-7 seen)
    np.testing.assert_allclose(
        got,
        ref,
        rtol=tol(float64=1e-10, float32=0.0),
        atol=tol(float64=1e-12, float32=2e-6 * np.abs(ref).max()),
    )
    if metric == "crossnobis":
        assert np.abs(_sorted(rdm(da, metric, **kwargs)) - ref).max() > 1e-6


def _correlated_trials(rng, n_runs=3, n_stim=5, p=40):
    """Trials whose noise is correlated across channels, fewer run patterns than channels."""
    signal = rng.normal(size=(n_stim, p))
    n = n_runs * n_stim
    x = np.tile(signal, (n_runs, 1)) + rng.normal(size=(n, 4)) @ rng.normal(size=(4, p))
    x += 0.5 * rng.normal(size=(n, p)) + 3.0
    stim = np.tile([f"s{i}" for i in range(n_stim)], n_runs)
    run = np.repeat([f"r{k}" for k in range(n_runs)], n_stim)
    da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    return da, Dataset(x, obs_descriptors={"stimulus": stim, "run": run})


@pytest.fixture
def precision_kinds(monkeypatch):
    """Record the kind of precision each crossnobis / mahalanobis kernel call receives."""
    from brainalign.rsa import _kernels

    seen = []
    for name in ("crossnobis", "mahalanobis"):
        kernel = _kernels.RDM_KERNELS[name]

        def spy(x, precision=None, *args, _kernel=kernel, **kwargs):
            seen.append(type(precision).__name__)
            return _kernel(x, precision, *args, **kwargs)

        monkeypatch.setitem(_kernels.RDM_KERNELS, name, spy)
    return seen


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["shrinkage_diag", "shrinkage_eye"])
def test_crossnobis_low_rank_precision_equals_dense(method, dtype, rng, precision_kinds):
    """noise_precision's factored form (p > n_observations) replaces the dense matrix."""
    da, ds = _correlated_trials(rng)
    prec = noise_precision(da, method, from_="measurements", dtype=dtype)
    assert 0.0 < prec.attrs["shrinkage"] < 1.0
    dense = np.asarray(prec, dtype=float)
    got = rdm(da, "crossnobis", noise=prec, dtype=dtype)
    assert precision_kinds == ["LowRankPrecision"]  # the (p, p) matrix is never used
    want = rdm(da, "crossnobis", noise=dense, dtype=dtype)  # a plain array: dense route
    assert precision_kinds[1:] == ["Tensor"]
    _close(np.asarray(got, dtype=float), np.asarray(want, dtype=float), dtype)
    ref = calc_rdm(
        ds, "crossnobis", descriptor="stimulus", noise=dense, cv_descriptor="run"
    ).get_matrices()[0]
    _close(_sorted(got).astype(float), ref, dtype)
    assert got.attrs["noise"] == "precision"
    # mahalanobis takes the same route
    x = np.asarray(da.values)[:5]
    got = rdm(x, "mahalanobis", noise=prec, feature_dim="unit", dtype=dtype)
    assert precision_kinds[-1] == "LowRankPrecision"
    ref = calc_rdm(Dataset(x), method="mahalanobis", noise=dense).get_matrices()[0]
    _close(np.asarray(got, dtype=float), ref, dtype)


def test_crossnobis_low_rank_precision_with_training_means(rng, precision_kinds, test_dtype):
    """The factored route of rsatoolbox's trial-weighted training patterns."""
    da, _ = _correlated_trials(rng, n_runs=3, n_stim=4, p=30)
    extra = da.isel(trial=[0, 1, 5])
    da = ba.responses(
        np.concatenate([da.values, extra.values + 1.0]),
        np.concatenate([da.stimulus.values, extra.stimulus.values]),
        sample_dim="trial",
        feature_dim="channel",
        run=("trial", np.concatenate([da.run.values, extra.run.values])),
    )
    ds = Dataset(
        np.asarray(da.values),
        obs_descriptors={"stimulus": da.stimulus.values, "run": da.run.values},
    )
    prec = noise_precision(da, "shrinkage_diag", from_="measurements")
    got = rdm(da, "crossnobis", noise=prec, semantics="rsatoolbox")
    assert precision_kinds == ["LowRankPrecision"]
    ref = calc_rdm(
        ds,
        "crossnobis",
        descriptor="stimulus",
        noise=np.asarray(prec, dtype=float),
        cv_descriptor="run",
    ).get_matrices()[0]
    _close(_sorted(got).astype(float), ref, test_dtype)


def test_low_rank_precision_is_dropped_when_values_change(rng, precision_kinds):
    """Copies, replaced values and collected DataArrays use the dense matrix."""
    from brainalign.rsa._rdm import _LOW_RANK

    da, _ = _correlated_trials(rng)
    prec = noise_precision(da, "shrinkage_diag", from_="measurements")
    assert id(prec) in _LOW_RANK
    copy = prec.copy(deep=True)
    rdm(da, "crossnobis", noise=copy)
    assert precision_kinds == ["Tensor"]
    with pytest.raises(ValueError, match="read-only"):
        prec.values[3, :] *= 1.5
    changed = np.array(prec)
    changed[3, :] *= 1.5  # still symmetric positive definite after the next line
    changed[:, 3] *= 1.5
    prec.values = changed  # new values: the factored form no longer holds
    got = rdm(da, "crossnobis", noise=prec)
    assert precision_kinds[1:] == ["Tensor"]
    want = rdm(da, "crossnobis", noise=np.array(prec))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-14)
    key = id(prec)
    del prec
    import gc

    gc.collect()
    assert key not in _LOW_RANK
