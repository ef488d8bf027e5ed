"""RDMs that a lab can publish: labels kept by every metric, no silent overflow, clear errors.

References: scipy.spatial.distance (``pdist``) on the rescaled data; the overflow checks
rely on the scale laws of each metric (correlation and cosine are scale-invariant, the
Euclidean family scales with ``c`` or ``c**2``, the Mahalanobis family with ``c**2``, the
Poisson KL divergence with ``c`` when the prior is scaled with the rates).
"""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

import brainalign as ba
from brainalign import rsa

METRICS = rsa.METRICS if hasattr(rsa, "METRICS") else None


def _trials(rng, n_stim=4, n_runs=3, p=6, counts=False):
    stim = [f"s{i}" for i in range(n_stim)] * n_runs
    runs = np.repeat(np.arange(n_runs), n_stim)
    x = (
        rng.poisson(5.0, size=(len(stim), p)).astype(float)
        if counts
        else rng.normal(size=(len(stim), p))
    )
    category = ["face" if s in ("s0", "s1") else "house" for s in stim]
    return ba.responses(
        x,
        stim,
        sample_dim="trial",
        feature_dim="channel",
        run=("trial", runs),
        category=("trial", category),
        onset=("trial", np.arange(len(stim)) * 2.0),
    )


@pytest.mark.parametrize(
    "metric",
    [
        "correlation",
        "cosine",
        "euclidean",
        "sqeuclidean",
        "mahalanobis",
        "poisson",
        "crossnobis",
        "poisson_cv",
    ],
)
def test_every_metric_keeps_stimulus_level_coords(metric, rng):
    # Issue 17 item 8: crossnobis and poisson_cv dropped category_a / category_b.
    trials = _trials(rng, counts=metric.startswith("poisson"))
    data = trials if metric in ("crossnobis", "poisson_cv") else ba.average_trials(trials)
    r = rsa.rdm(data, metric)
    ids = list(r.stimulus_a.values)
    expect = ["face" if s in ("s0", "s1") else "house" for s in ids]
    assert list(r.category_a.values) == expect
    assert list(r.category_b.values) == expect
    assert r.category_a.dims == ("stimulus_a",) and r.category_b.dims == ("stimulus_b",)
    # per-trial labels (run, onset) are not stimulus labels
    assert not {"run_a", "onset_a", "trial_a"} & set(r.coords)


def test_cv_rdm_keeps_only_coords_constant_within_stimulus(rng):
    trials = _trials(rng)
    # a coordinate that varies within a stimulus (here: across runs) is dropped
    trials = trials.assign_coords(block=("trial", trials.run.values % 2))
    r = rsa.rdm(trials, "crossnobis")
    assert "category_a" in r.coords and "block_a" not in r.coords
    # runs given by another coordinate name: that coordinate is not kept either
    r2 = rsa.rdm(trials.rename(run="session_run"), "crossnobis", runs="session_run")
    assert "session_run_a" not in r2.coords and "category_b" in r2.coords


# ---------------------------------------------------------------- no silent overflow (item 9)
# Scales whose squares leave the dtype's range: float32 tops out at 3.4e38, float64 at 1.8e308.
BIG = {"float32": 1e20, "float64": 1e200}
TINY = {"float32": 1e-25, "float64": 1e-200}
RTOL = {"float32": 2e-5, "float64": 1e-10}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", ["big", "tiny", "beyond_float32"])
@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_scale_free_metrics_equal_scipy_at_any_magnitude(metric, scale, dtype, rng):
    # float32 correlation of data x 1e20 used to be all 1.0, Euclidean inf/NaN.
    x = rng.normal(size=(6, 30))
    s = {"big": BIG[dtype], "tiny": TINY[dtype], "beyond_float32": 1e39}[scale]
    if metric == "euclidean" and s * 10 > float(np.finfo(dtype).max):  # beyond the dtype
        with pytest.raises(ValueError, match=rf"does not fit in {dtype}.*Pass dtype='float64'"):
            rsa.rdm(x * s, metric, dtype=dtype, device="cpu")
        return
    got = np.asarray(rsa.rdm(x * s, metric, dtype=dtype, device="cpu"), dtype=float)
    ref = squareform(pdist(x, metric))
    if metric == "euclidean":
        got = got / s
    np.testing.assert_allclose(got, ref, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_squared_distances_refuse_results_beyond_the_dtype(dtype, rng):
    x = rng.normal(size=(5, 20))
    s = BIG[dtype]
    for metric in ("sqeuclidean", "mahalanobis"):
        with pytest.raises(
            ValueError,
            match=rf"rdm\(metric='{metric}'\) does not fit in {dtype}: the data's magnitudes "
            rf"range from .* to \d\.\d+e\+\d+, and 20 dissimilarities fall outside {dtype}'s "
            r"range .*" + ("Pass dtype='float64'" if dtype == "float32" else "Rescale the data"),
        ):
            rsa.rdm(x * s, metric, dtype=dtype, device="cpu")
    with pytest.raises(ValueError, match=r"does not fit in .*smallest normal"):
        rsa.rdm(x * TINY[dtype], "sqeuclidean", dtype=dtype, device="cpu")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_squared_distances_of_large_data_when_the_result_fits(dtype, rng):
    # float32: data 1e17 has squares ~1e34 per feature, sums over features near the top of
    # the range; the result itself (~1e36) fits. float64: 1e150 -> 1e302.
    x = rng.normal(size=(5, 20))
    s = {"float32": 2.0**56, "float64": 2.0**500}[dtype]
    for metric, power in (("sqeuclidean", 2), ("euclidean", 1)):
        got = np.asarray(rsa.rdm(x * s, metric, dtype=dtype, device="cpu"), dtype=float)
        ref = squareform(pdist(x, metric))
        np.testing.assert_allclose(got / s**power, ref, rtol=RTOL[dtype], atol=RTOL[dtype])
    got = np.asarray(rsa.rdm(x * s, "mahalanobis", dtype=dtype, device="cpu"), dtype=float)
    np.testing.assert_allclose(
        got / s**2, squareform(pdist(x, "sqeuclidean")) / 20, rtol=RTOL[dtype]
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mahalanobis_with_a_precision_beyond_float32(dtype, rng):
    # A precision of 2**-140 (noise variance 2**140) is a subnormal (or zero) in float32.
    x = rng.normal(size=(5, 4))
    a = rng.normal(size=(4, 4))
    prec = a @ a.T + 4 * np.eye(4)
    ref = np.asarray(rsa.rdm(x, "mahalanobis", noise=prec, dtype="float64"))
    got = rsa.rdm(x * 2.0**60, "mahalanobis", noise=prec * 2.0**-140, dtype=dtype, device="cpu")
    np.testing.assert_allclose(np.asarray(got, dtype=float) / 2.0**-20, ref, rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_poisson_scale_law_beyond_float32(dtype, rng):
    # The symmetrised KL divergence of shifted rates scales with them: rates c * s with the
    # prior lambda * s give s times the divergence of (c, lambda).
    x = rng.poisson(4.0, size=(5, 30)).astype(float)
    s = {"float32": 2.0**120, "float64": 2.0**1000}[dtype]
    ref = np.asarray(rsa.rdm(x, "poisson", dtype="float64"))
    got = rsa.rdm(x * s, "poisson", prior_lambda=s, dtype=dtype, device="cpu")
    np.testing.assert_allclose(np.asarray(got, dtype=float) / s, ref, rtol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_validated_metrics_at_large_magnitudes(dtype, rng):
    s = {"float32": 2.0**60, "float64": 2.0**505}[dtype]
    trials = _trials(rng, n_stim=5, n_runs=4, p=8)
    ref = np.asarray(rsa.rdm(trials, "crossnobis", dtype="float64"))
    got = rsa.rdm(trials * s, "crossnobis", dtype=dtype, device="cpu")
    np.testing.assert_allclose(
        np.asarray(got, dtype=float) / s**2, ref, rtol=RTOL[dtype] * 10, atol=1e-6
    )
    counts = _trials(rng, n_stim=5, n_runs=4, p=8, counts=True)
    ref = np.asarray(rsa.rdm(counts, "poisson_cv", dtype="float64"))
    got = rsa.rdm(counts * s, "poisson_cv", prior_lambda=s, dtype=dtype, device="cpu")
    np.testing.assert_allclose(
        np.asarray(got, dtype=float) / s, ref, rtol=RTOL[dtype] * 10, atol=1e-6
    )
    with pytest.raises(ValueError, match=rf"rdm\(metric='crossnobis'\) does not fit in {dtype}"):
        rsa.rdm(trials * BIG[dtype] * 1e4, "crossnobis", dtype=dtype, device="cpu")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_crossnobis_with_per_run_precisions_beyond_float32(dtype, rng):
    # Per-run precisions of 2**-140 (subnormal in float32) and data 2**60: the distances,
    # linear in the precision and quadratic in the data, are 2**-20 times those at unit
    # scale. Reference: the same call at unit scale in float64.
    trials = _trials(rng, n_stim=5, n_runs=4, p=8)
    precs = []
    for _ in range(4):
        a = rng.normal(size=(8, 8))
        precs.append(a @ a.T + 8 * np.eye(8))
    ref = np.asarray(rsa.rdm(trials, "crossnobis", noise=precs, dtype="float64"))
    tiny = [q * 2.0**-140 for q in precs]
    got = rsa.rdm(trials * 2.0**60, "crossnobis", noise=tiny, dtype=dtype, device="cpu")
    np.testing.assert_allclose(
        np.asarray(got, dtype=float) / 2.0**-20, ref, rtol=RTOL[dtype] * 10, atol=1e-6
    )


COMPARE_TOL = {"float32": 1e-5, "float64": 1e-10}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", rsa.METHODS)
def test_compare_is_scale_free_at_any_magnitude(method, dtype, rng):
    # RDMs of data x 1e20 in float32 (squared distances ~1e40 when computed in float64)
    # used to compare as 1.0 or NaN.
    a = squareform(rng.random(15))
    b = squareform(rng.random(15))
    if method == "neg_riem_dist":  # needs RDMs with a positive definite second moment
        a, b = (
            np.asarray(rsa.rdm(rng.random((6, 8)), "sqeuclidean", dtype="float64"))
            for _ in range(2)
        )
    ref = rsa.compare(a, b, method, dtype="float64")
    tol = COMPARE_TOL[dtype]
    if method == "bures":  # square roots of near-zero eigenvalues: ~sqrt(eps) accuracy
        tol = {"float32": 2e-3, "float64": 1e-7}[dtype]
    for s in {"float32": (1e39, 1e-44), "float64": (1e300, 1e-300)}[dtype]:
        got = rsa.compare(a * s, b * s, method, dtype=dtype, device="cpu")
        assert got == pytest.approx(ref, abs=tol), (s, got, ref)


# --------------------------------------------------------------------------- clear messages
def test_compare_two_stimuli_names_them_instead_of_nan(rng):
    r = rsa.rdm(ba.responses(rng.normal(size=(2, 5)), ["a", "b"]))
    with pytest.raises(
        ValueError,
        match=r"An RDM of 2 stimuli has 1 dissimilarity; comparing RDMs \(method='spearman'\) "
        r"needs at least 3 stimuli \(3 pairs\); got 2: \['a', 'b'\]\.",
    ):
        rsa.compare(r, r)


def test_compare_nan_message_kept_for_missing_pairs():
    a = squareform(np.array([1.0, np.nan, np.nan, 2, np.nan, 3]))
    a[0, 1] = a[1, 0] = np.nan  # 2 finite pairs of 6
    with pytest.raises(
        ValueError, match=r"only 2 stimulus pair\(s\) are finite in both \(of 6\).*NaN"
    ):
        rsa.compare(a, a)
