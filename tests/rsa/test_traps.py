"""API traps of the RSA results (issue 21): names that shadow Dataset methods, two names for
one option, intervals a user had to compute by hand, and names shared with other modules."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from brainalign import rsa

DATASET_ATTRS = frozenset(dir(xr.Dataset))


@pytest.fixture(scope="module")
def rdms():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(8, 6))
    data = np.stack([np.asarray(rsa.rdm(x + rng.normal(size=x.shape))) for _ in range(4)])
    models = np.stack([np.asarray(rsa.rdm(x)), np.asarray(rsa.rdm(rng.normal(size=x.shape)))])
    return data, models


def _results(data, models):
    """Every Dataset the RSA module returns, on small inputs."""
    ev = rsa.evaluate(data, models, "pearson", resample="both", n_bootstrap=20, seed=0)
    maps = xr.DataArray(np.random.default_rng(0).normal(size=(5, 7)), dims=("subject", "voxel"))
    epochs = xr.DataArray(
        np.random.default_rng(1).normal(size=(8, 3, 4)),
        dims=("stimulus", "channel", "time"),
        coords={"stimulus": [str(i) for i in range(8)], "time": np.arange(4.0)},
    )
    rng = np.random.default_rng(2)
    comps = np.stack([np.asarray(rsa.rdm(rng.normal(size=(8, 3)), "euclidean")) for _ in range(2)])
    return {
        "evaluate(resample='none')": rsa.evaluate(data, models, "pearson"),
        "evaluate(resample='both')": ev,
        "model_tests": rsa.model_tests(ev),
        "test": rsa.test(data, models, "spearman", n_bootstrap=20, seed=0),
        "bootstrap": rsa.bootstrap(data, models, "pearson", n_bootstrap=20, seed=0),
        "noise_ceiling": rsa.noise_ceiling(data, "pearson"),
        "bootstrap_ci": rsa.bootstrap_ci(data[0], models, "pearson", n_bootstrap=20, seed=0),
        "permutation_test": rsa.permutation_test(data[0], models[0], n_permutations=20, seed=0),
        "sign_flip_test": rsa.sign_flip_test(maps, n_permutations=20, seed=0),
        "crossval": rsa.crossval(data, {"weighted": comps}, "pearson"),
        "time_resolved": rsa.time_resolved(epochs, models[0], n_permutations=5, seed=0),
    }


def test_no_result_variable_shadows_a_dataset_attribute(rdms):
    """A user's ``for name in res: res[name].mean`` / ``res.mean`` must reach the variable.

    ``res["mean"]`` works, but ``res.mean`` is the method ``Dataset.mean`` and a loop that
    mixed the two crashed on ``Dataset.values``; no variable may carry such a name.
    """
    for name, res in _results(*rdms).items():
        assert isinstance(res, xr.Dataset), name
        clashes = sorted(set(map(str, res.data_vars)) & DATASET_ATTRS)
        assert not clashes, f"{name} returns variables named like Dataset attributes: {clashes}"
        for var in res.data_vars:  # attribute access gives the variable itself
            assert isinstance(getattr(res, str(var)), xr.DataArray), (name, var)


def test_mean_score_is_the_mean_evaluation(rdms):
    data, models = rdms
    res = rsa.evaluate(data, models, "pearson")
    np.testing.assert_allclose(res.mean_score.values, res.evaluations.mean("subject").values)
    assert "mean" not in res.data_vars


def test_evaluate_bootstrap_keyword_is_a_deprecated_alias_of_resample(rdms):
    data, models = rdms
    new = rsa.evaluate(data, models, "pearson", resample="subject", n_bootstrap=15, seed=1)
    with pytest.warns(FutureWarning, match=r"evaluate\(bootstrap='subject'\) is deprecated.*"
                      r"use evaluate\(resample='subject'\)"):  # fmt: skip
        old = rsa.evaluate(data, models, "pearson", bootstrap="subject", n_bootstrap=15, seed=1)
    xr.testing.assert_identical(old, new)
    assert new.attrs["resample"] == new.attrs["bootstrap"] == "subject"
    with pytest.raises(ValueError, match=r"resample='both' and its deprecated alias "
                       r"bootstrap='subject'; pass only resample="):  # fmt: skip
        rsa.evaluate(data, models, resample="both", bootstrap="subject")
    with pytest.raises(ValueError, match=r"'resample' parameter.*got 'subjects'"):
        rsa.evaluate(data, models, resample="subjects")


def test_one_name_for_the_resampling_option():
    import inspect

    for func in (rsa.evaluate, rsa.test, rsa.bootstrap):
        assert "resample" in inspect.signature(func).parameters, func.__name__


@pytest.mark.parametrize("resample", ["subject", "stimulus", "both"])
def test_evaluate_returns_percentile_intervals(rdms, resample):
    data, models = rdms
    res = rsa.evaluate(data, models, "pearson", resample=resample, n_bootstrap=40, ci=0.9, seed=2)
    samples = res.bootstrap_evaluations.values
    if resample == "both":
        samples = samples[0]  # the samples that resample subjects and stimuli together
    ok = res.valid.values
    want = np.quantile(samples[ok], [0.05, 0.95], axis=0)  # numpy's percentile, independent
    np.testing.assert_allclose(res.ci_lower.values, want[0], rtol=1e-12)
    np.testing.assert_allclose(res.ci_upper.values, want[1], rtol=1e-12)
    assert res.attrs["ci"] == 0.9 and res.attrs["ci_method"] == "percentile"
    assert res.attrs["ci_coverage"].startswith("descriptive")
    assert "ci_lower" not in rsa.evaluate(data, models, "pearson").data_vars  # no samples


def test_stimulus_interval_of_one_subject_is_the_calibrated_bootstrap_ci(rdms, tol):
    """The one case whose coverage tests/stats shows: it equals rsa.bootstrap_ci exactly."""
    data, models = rdms
    ev = rsa.evaluate(data[:1], models, "spearman", resample="stimulus", n_bootstrap=60, seed=4)
    ci = rsa.bootstrap_ci(data[0], models, "spearman", n_bootstrap=60, seed=4)
    # float32: evaluate's bootstrap evaluations are float32 GEMM correlations (within 1e-5,
    # EV32 of test_evaluate.py); bootstrap_ci's moments are float64; a quantile moves by
    # at most the largest change of its samples
    rtol, atol = tol(float64=1e-10, float32=0.0), tol(float64=0.0, float32=1e-5)
    np.testing.assert_allclose(ev.ci_lower.values, ci.ci_lower.values, rtol=rtol, atol=atol)
    np.testing.assert_allclose(ev.ci_upper.values, ci.ci_upper.values, rtol=rtol, atol=atol)
    assert ev.attrs["ci_coverage"].startswith("calibrated")


def test_evaluate_ci_is_validated(rdms):
    data, models = rdms
    with pytest.raises(ValueError, match=r"ci.*got 1\.5"):
        rsa.evaluate(data, models, resample="subject", ci=1.5)


def test_shared_names_document_their_difference():
    """rsa.compare / rsa.METHODS / rsa.permutation_test say how they differ from their
    namesakes in ricci and encoding (the same name is not the same idea)."""
    import brainalign.rsa._compare as compare_module

    assert "brainalign.ricci.compare" in rsa.compare.__doc__
    assert "curvature" in rsa.compare.__doc__
    assert "brainalign.encoding.permutation_test" in rsa.permutation_test.__doc__
    assert "refits" in rsa.permutation_test.__doc__
    source = Path(compare_module.__file__).read_text()
    comment = source[source.index("#: The comparisons of") : source.index("METHODS = (")]
    assert "brainalign.ricci.METHODS" in comment and "solvers" in comment
