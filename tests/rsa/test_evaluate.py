"""Model evaluation and bootstrap inference against rsatoolbox 0.3.2 on the same draws."""

import warnings

import numpy as np
import pytest
import torch
import xarray as xr

import brainalign as ba
from brainalign.rsa._evaluate import _Engine, evaluate, model_tests, noise_ceiling

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import evaluate as rs_eval  # noqa: E402
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

RS_NAME = {"pearson": "corr", "cosine": "cosine", "spearman": "spearman"}
METHODS = list(RS_NAME)
TOL = 1e-10
# float32: evaluations and noise ceilings are correlations/cosines (|r| <= 1) of RDM vectors
# of P <= 36 pairs from float32 GEMMs of pair-weighted moments: eps32 * sqrt(P) = 7e-7 per
# moment; one-pass (co)variances of unit-RMS vectors, and the leave-one-out ceiling's
# q - 2 k gk + k^2 cancels about (S / (S - 1))^2 <= 2x: ~3e-6 predicted (1.6e-6 seen).
EV32 = 1e-5


def _var_tol(tol, ref):
    """Tolerances of the variances and p-values, from EV32 and the reference's variances.

    A variance of evaluations each off by up to EV32 moves by at most 2 * sd * EV32
    (Cauchy-Schwarz), i.e. dvar / var <= 2 EV32 / sqrt(var). A p-value of
    t = mean / sqrt(var) then moves by at most 2 pdf(t) |dt| <= 0.8 EV32 / sqrt(var) +
    t pdf(t) dvar / var <= 1.8 EV32 / sqrt(var) (2 pdf <= 0.8, t pdf <= 0.25), largest at
    the smallest variance.
    """
    v = np.concatenate(
        [np.ravel(ref.model_var), np.ravel(ref.diff_var), np.ravel(ref.noise_ceil_var)]
    )
    v = v[np.isfinite(v) & (v > 0)]
    var_atol = 2 * np.sqrt(v.max()) * EV32
    p_atol = 1.8 * EV32 / np.sqrt(v.min())
    return tol(TOL, float32=var_atol), tol(1e-9, float32=p_atol)


def _rdm(x):
    return 1.0 - np.corrcoef(x)


def _make(rng, n=9, n_subjects=5, n_models=3):
    x = rng.normal(size=(n, 6))
    data = np.stack([_rdm(x + rng.normal(size=x.shape)) for _ in range(n_subjects)])
    models = np.stack([_rdm(x + 0.7 * i * rng.normal(size=x.shape)) for i in range(n_models)])
    return data, models


def _vec(sq):
    i, j = np.triu_indices(sq.shape[-1], k=1)
    return sq[..., i, j]


def _rs(data, models):
    rd = RDMs(_vec(data))
    mods = [ModelFixed(f"m{i}", _vec(m)) for i, m in enumerate(models)]
    return rd, mods


@pytest.fixture
def recorder(monkeypatch):
    """Record the bootstrap draws rsatoolbox's evaluate functions make."""
    draws = {"subject": [], "stimulus": []}

    def wrap(name):
        original = getattr(rs_eval, name)

        def recorded(*args, **kwargs):
            out = original(*args, **kwargs)
            if name == "bootstrap_sample":
                draws["subject"].append(out[1])
                draws["stimulus"].append(out[2])
            elif name == "bootstrap_sample_rdm":
                draws["subject"].append(out[1])
            else:
                draws["stimulus"].append(out[1])
            return out

        monkeypatch.setattr(rs_eval, name, recorded)

    for name in ("bootstrap_sample", "bootstrap_sample_rdm", "bootstrap_sample_pattern"):
        wrap(name)
    monkeypatch.setattr(rs_eval.tqdm, "trange", range)

    def take():
        out = {k: np.array(v, dtype=np.int64) for k, v in draws.items() if v}
        for v in draws.values():
            v.clear()
        return out

    return take


def _assert_variances(ours, ref, n_models, tol):
    iu = np.triu_indices(n_models, k=1)
    var_atol, p_atol = _var_tol(tol, ref)
    np.testing.assert_allclose(ours.variance.values, ref.model_var, rtol=0, atol=var_atol)
    np.testing.assert_allclose(
        ours.variance_difference.values[iu], ref.diff_var, rtol=0, atol=var_atol
    )
    np.testing.assert_allclose(
        ours.variance_noise_ceiling.values, ref.noise_ceil_var, rtol=0, atol=var_atol
    )
    tests = model_tests(ours)
    np.testing.assert_allclose(tests.p_pairwise.values, ref.test_pairwise(), atol=p_atol)
    np.testing.assert_allclose(tests.p_zero.values, ref.test_zero(), atol=p_atol)
    np.testing.assert_allclose(tests.p_noise_ceiling.values, ref.test_noise(), atol=p_atol)


@pytest.mark.float32
@pytest.mark.parametrize("method", METHODS)
def test_fixed_matches_eval_fixed(rng, method, tol):
    close = tol(TOL, float32=EV32)
    data, models = _make(rng)
    rd, mods = _rs(data, models)
    ref = rs_eval.eval_fixed(mods, rd, method=RS_NAME[method])
    ours = evaluate(data, models, method)
    np.testing.assert_allclose(ours.evaluations.values, ref.evaluations[0], rtol=0, atol=close)
    np.testing.assert_allclose(ours["mean_score"].values, ref.get_means(), rtol=0, atol=close)
    np.testing.assert_allclose(
        [float(ours.noise_ceiling_lower), float(ours.noise_ceiling_upper)],
        ref.noise_ceiling,
        rtol=0,
        atol=close,
    )
    assert ours.attrs["dof"] == ref.dof
    _assert_variances(ours, ref, len(models), tol)
    nc = noise_ceiling(data, method)
    ref_nc = boot_noise_ceiling(rd, method=RS_NAME[method])
    np.testing.assert_allclose([float(nc.lower), float(nc.upper)], ref_nc, rtol=0, atol=close)


@pytest.mark.parametrize("method", METHODS)
def test_subject_bootstrap_matches_eval_bootstrap_rdm(rng, recorder, method, tol):
    close = tol(TOL, float32=EV32)
    data, models = _make(rng)
    rd, mods = _rs(data, models)
    np.random.seed(3)  # noqa: NPY002 - rsatoolbox draws from it
    ref = rs_eval.eval_bootstrap_rdm(mods, rd, method=RS_NAME[method], N=25)
    draws = recorder()
    ours = evaluate(
        data, models, method, resample="subject", indices=draws, semantics="rsatoolbox"
    )
    assert ours.attrs["n_bootstrap"] == 25 and ours.attrs["dof"] == ref.dof
    np.testing.assert_allclose(ours.bootstrap_evaluations.values, ref.evaluations, atol=close)
    np.testing.assert_allclose(ours.bootstrap_mean.values, ref.get_means(), atol=close)
    bounds = np.stack(
        [ours.bootstrap_noise_ceiling_lower.values, ours.bootstrap_noise_ceiling_upper.values]
    )
    np.testing.assert_allclose(bounds, ref.noise_ceiling, rtol=0, atol=close)
    _assert_variances(ours, ref, len(models), tol)

    # The default keeps the ceiling's variance: rsatoolbox 0.3.2 overwrites it (a defect).
    fixed = evaluate(data, models, method, resample="subject", indices=draws)
    np.testing.assert_allclose(fixed.variance.values, ref.model_var, atol=close)
    cov = np.cov(np.column_stack([ref.evaluations, ref.noise_ceiling.T]).T)
    m, s = len(models), len(data)
    expected = (np.diag(cov)[:m, None] - 2 * cov[:m, m:] + np.diag(cov)[None, m:]) * (s / (s - 1))
    np.testing.assert_allclose(fixed.variance_noise_ceiling.values, expected, atol=close)
    assert not np.allclose(fixed.variance_noise_ceiling.values, ref.noise_ceil_var)


@pytest.mark.parametrize("method", METHODS)
def test_stimulus_bootstrap_matches_eval_bootstrap_pattern(rng, recorder, method, tol):
    close = tol(TOL, float32=EV32)
    # 4 stimuli: many samples hold fewer than 3 distinct stimuli and are invalid (NaN)
    for n, n_boot in ((4, 30), (9, 25)):
        data, models = _make(rng, n=n)
        rd, mods = _rs(data, models)
        np.random.seed(5)  # noqa: NPY002 - rsatoolbox draws from it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = rs_eval.eval_bootstrap_pattern(mods, rd, method=RS_NAME[method], N=n_boot)
        draws = recorder()
        ours = evaluate(data, models, method, resample="stimulus", indices=draws)
        ref_ok = np.isfinite(ref.evaluations[:, 0])
        np.testing.assert_array_equal(ours.valid.values, ref_ok)
        np.testing.assert_allclose(
            ours.bootstrap_evaluations.values, ref.evaluations, rtol=0, atol=close
        )
        bounds = np.stack(
            [ours.bootstrap_noise_ceiling_lower.values, ours.bootstrap_noise_ceiling_upper.values]
        )
        np.testing.assert_allclose(bounds, ref.noise_ceiling, rtol=0, atol=close)
        np.testing.assert_allclose(ours.bootstrap_mean.values, ref.get_means(), atol=close)
        assert ours.attrs["dof"] == ref.dof
        _assert_variances(ours, ref, len(models), tol)
        assert (~ours.valid.values).any() == (n == 4)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_dual_bootstrap_matches_eval_dual_bootstrap(rng, recorder, method, tol):
    close = tol(TOL, float32=EV32)
    data, models = _make(rng, n=8, n_subjects=4)
    rd, mods = _rs(data, models)
    np.random.seed(7)  # noqa: NPY002 - rsatoolbox draws from it
    ref = rs_eval.eval_dual_bootstrap(mods, rd, method=RS_NAME[method], N=20)
    draws = recorder()
    ours = evaluate(data, models, method, resample="both", indices=draws)
    assert list(ours.resampling.values) == ["both", "subject", "stimulus"]
    np.testing.assert_allclose(
        ours.bootstrap_evaluations.values,
        np.moveaxis(ref.evaluations[:, :, 0, 0, :], -1, 0),
        rtol=0,
        atol=close,
    )
    bounds = np.stack(
        [ours.bootstrap_noise_ceiling_lower.values, ours.bootstrap_noise_ceiling_upper.values]
    )
    np.testing.assert_allclose(
        bounds, np.moveaxis(ref.noise_ceiling[:, :, 0, :], -1, 1), rtol=0, atol=close
    )
    np.testing.assert_allclose(ours.bootstrap_mean.values, ref.get_means(), atol=close)
    assert ours.attrs["dof"] == ref.dof
    _assert_variances(ours, ref, len(models), tol)


@pytest.mark.parametrize("bootstrap", ["stimulus", "both", "subject"])
@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_fast_path_equals_explicit_resampling(rng, method, bootstrap):
    data, models = _make(rng, n=12, n_subjects=6)
    gen = np.random.default_rng(0)
    k = torch.as_tensor(gen.integers(0, 6, size=(40, 6)))
    k = torch.zeros(40, 6, dtype=torch.float64).scatter_add_(1, k, torch.ones(40, 6).double())
    if bootstrap == "stimulus":
        k = torch.ones_like(k)
    idx = None if bootstrap == "subject" else torch.as_tensor(gen.integers(0, 12, (40, 12)))
    fast = _Engine(data, models, method, torch.device("cpu"), torch.float64)
    slow = _Engine(data, models, method, torch.device("cpu"), torch.float64)
    slow.linear = False
    assert fast.linear
    for a, b in zip(fast.run(k, idx), slow.run(k, idx), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-12)


def test_seeded_and_labeled(rng):
    data, models = _make(rng, n=10, n_subjects=4, n_models=2)
    ids = [f"s{i}" for i in range(10)]
    da = xr.DataArray(
        data,
        dims=("participant", "stimulus_a", "stimulus_b"),
        coords={"participant": ["p1", "p2", "p3", "p4"], "stimulus_a": ids, "stimulus_b": ids},
    )
    order = np.arange(10)[::-1]
    mo = xr.DataArray(
        models[:, order][:, :, order],
        dims=("layer", "stimulus_a", "stimulus_b"),
        coords={
            "layer": ["conv", "fc"],
            "stimulus_a": [ids[i] for i in order],
            "stimulus_b": [ids[i] for i in order],
        },
    )
    a = evaluate(da, mo, "pearson", resample="both", n_bootstrap=50, seed=1)
    b = evaluate(da, mo, "pearson", resample="both", n_bootstrap=50, seed=1)
    c = evaluate(da, mo, "pearson", resample="both", n_bootstrap=50, seed=2)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.bootstrap_evaluations, c.bootstrap_evaluations)
    assert a.model.values.tolist() == ["conv", "fc"]
    assert a.subject.values.tolist() == ["p1", "p2", "p3", "p4"]
    assert a.bootstrap_evaluations.dims == ("resampling", "bootstrap", "model")
    assert a.attrs["seed"] == 1 and a.attrs["n_bootstrap"] == 50 and a.attrs["method"] == "pearson"
    # stimuli are aligned by id: same as the models given in the data's order
    plain = evaluate(data, models, "pearson", resample="both", n_bootstrap=50, seed=1)
    np.testing.assert_allclose(a.bootstrap_evaluations, plain.bootstrap_evaluations, atol=1e-12)
    with ba.config_context(seed=1):
        d = evaluate(da, mo, "pearson", resample="both", n_bootstrap=50)
    np.testing.assert_array_equal(d.bootstrap_evaluations, a.bootstrap_evaluations)
    single = evaluate(da, mo.sel(layer="fc"), "spearman")
    assert single.evaluations.shape == (1, 4)
    f32 = evaluate(da, mo, "pearson", resample="stimulus", n_bootstrap=30, seed=0, dtype="float32")
    f64 = evaluate(da, mo, "pearson", resample="stimulus", n_bootstrap=30, seed=0)
    np.testing.assert_allclose(f32.variance, f64.variance, rtol=1e-3)


def test_errors(rng):
    data, models = _make(rng, n=6, n_subjects=3, n_models=2)
    ids = [str(i) for i in range(6)]
    other = xr.DataArray(
        models,
        dims=("model", "stimulus_a", "stimulus_b"),
        coords={"stimulus_a": [*ids[:5], "x"], "stimulus_b": [*ids[:5], "x"]},
    )
    with pytest.raises(ba.StimulusAlignmentError, match=r"missing 1 id.*'5'.*extra id.*'x'"):
        evaluate(data, other)
    with pytest.raises(ValueError, match=r"n_bootstrap must be in the range \[1, inf\), got 0"):
        evaluate(data, models, resample="subject", n_bootstrap=0)
    with pytest.raises(
        ValueError, match=r"'method' parameter.*got 'pearsn'.*Did you mean 'pearson'"
    ):
        evaluate(data, models, "pearsn")
    with pytest.raises(ValueError, match=r"'resample' parameter.*got 'stimuli'.*'stimulus'"):
        evaluate(data, models, resample="stimuli")
    with pytest.raises(ValueError, match=r"resample='subject'.*at least 2 data RDMs.*got 1"):
        evaluate(data[:1], models, resample="subject")
    with pytest.raises(
        ValueError, match=r"indices\['stimulus'\] must be an integer array of shape"
    ):
        evaluate(data, models, resample="stimulus", indices={"stimulus": np.zeros((4, 5), int)})
    with pytest.raises(ValueError, match=r"indices must hold a 'subject' array"):
        evaluate(data, models, resample="both", indices={"stimulus": np.zeros((4, 6), int)})
    const = models.copy()
    const[1] = 1.0 - np.eye(6)
    with pytest.raises(ValueError, match=r"model_rdms has 1 RDM\(s\) that are constant.*\(1\)"):
        evaluate(data, const, "pearson")
    with pytest.raises(TypeError, match=r"result must be the Dataset returned by evaluate"):
        model_tests(xr.Dataset())


def test_two_stimuli_are_named_not_blamed_on_nan(rng):
    # Issue 17: two stimuli gave "Check for NaN entries" although there were none.
    data, models = _make(rng, n=2, n_subjects=3, n_models=2)
    with pytest.raises(ValueError, match=r"needs at least 3 stimuli; the RDMs have 2\."):
        evaluate(data, models)
    with pytest.raises(ValueError, match=r"a noise ceiling needs at least 3 stimuli.*got 2"):
        noise_ceiling(data)


@pytest.mark.parametrize(
    ("method", "rs_method"),
    [
        ("rho_a", "rho-a"),
        ("kendall_tau_a", "tau-a"),
        ("whitened_pearson", "corr_cov"),
        ("whitened_cosine", "cosine_cov"),
    ],
)
def test_other_methods_flow_through(rng, recorder, method, rs_method, tol):
    """Every comparison of rsa.compare works here, resampled pairs included."""
    close = tol(TOL, float32=EV32)
    data, models = _make(rng, n=8, n_subjects=4, n_models=2)
    rd, mods = _rs(data, models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox: "Noise ceiling for tau based on ..."
        ref = rs_eval.eval_fixed(mods, rd, method=rs_method)
        np.random.seed(11)  # noqa: NPY002 - rsatoolbox draws from it
        ref_boot = rs_eval.eval_bootstrap_pattern(mods, rd, method=rs_method, N=12)
    fixed = evaluate(data, models, method)
    np.testing.assert_allclose(fixed.evaluations.values, ref.evaluations[0], atol=close)
    np.testing.assert_allclose(
        [float(fixed.noise_ceiling_lower), float(fixed.noise_ceiling_upper)],
        ref.noise_ceiling,
        atol=close,
    )
    boot = evaluate(data, models, method, resample="stimulus", indices=recorder())
    np.testing.assert_allclose(
        boot.bootstrap_evaluations.values, ref_boot.evaluations, rtol=0, atol=close
    )
    _assert_variances(boot, ref_boot, len(models), tol)


def test_dict_models_and_bures_guard(rng):
    data, models = _make(rng, n=7, n_subjects=3, n_models=2)
    res = evaluate(data, {"a": models[0], "b": models[1]}, "cosine")
    assert res.model.values.tolist() == ["a", "b"]
    np.testing.assert_allclose(res.evaluations, evaluate(data, models, "cosine").evaluations)
    with pytest.raises(ValueError, match=r"method='bures' needs complete RDMs.*'stimulus'"):
        evaluate(data, models, "bures", resample="stimulus")


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_invariant_to_stimulus_order(rng, method, tol):
    """Relabelling the stimuli (and the draws with them) changes nothing."""
    data, models = _make(rng, n=9, n_subjects=4, n_models=2)
    perm = rng.permutation(9)
    draws = {"stimulus": rng.integers(0, 9, size=(15, 9)), "subject": rng.integers(0, 4, (15, 4))}
    inverse = np.argsort(perm)
    moved = {"stimulus": inverse[draws["stimulus"]], "subject": draws["subject"]}
    a = evaluate(data, models, method, resample="both", indices=draws)
    b = evaluate(
        data[:, perm][:, :, perm], models[:, perm][:, :, perm], method, resample="both",
        indices=moved,
    )  # fmt: skip
    # float32: both orders round differently, each within EV32 of the exact value
    for name in ("evaluations", "bootstrap_evaluations", "bootstrap_noise_ceiling_lower"):
        np.testing.assert_allclose(
            a[name].values, b[name].values, atol=tol(float64=1e-12, float32=2 * EV32)
        )


def test_api_names_bootstrap_and_test():
    """rsa.bootstrap / rsa.test (the API.md names) equal evaluate + model_tests."""
    import xarray as xr

    from brainalign import rsa

    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 12))
    data = np.stack([rsa.rdm(x + rng.normal(size=x.shape)).values for _ in range(6)])
    models = np.stack([rsa.rdm(x).values, rsa.rdm(rng.normal(size=x.shape)).values])
    direct = rsa.evaluate(data, models, "pearson", resample="subject", n_bootstrap=50, seed=1)
    xr.testing.assert_identical(
        rsa.bootstrap(data, models, "pearson", n_bootstrap=50, seed=1), direct
    )
    tested = rsa.test(data, models, "pearson", n_bootstrap=50, seed=1)
    tests = rsa.model_tests(direct)
    for name in ("p_zero", "p_pairwise", "p_noise_ceiling", "t_zero"):
        xr.testing.assert_identical(tested[name], tests[name])
    np.testing.assert_array_equal(tested["mean_score"].values, direct["mean_score"].values)
    with pytest.raises(
        ValueError,
        match=r"'resample' parameter.*got 'subjects'.*Did you mean "
        r"'subject'",
    ):
        rsa.bootstrap(data, models, resample="subjects")


@pytest.mark.parametrize(
    "bootstrap, population",
    [
        ("none", "subjects (stimuli fixed)"),
        ("subject", "subjects (stimuli fixed)"),
        ("stimulus", "stimuli (subjects fixed)"),
        ("both", "subjects and stimuli"),
    ],
)
def test_results_say_which_population_they_generalise_to(rng, bootstrap, population):
    """Issue 17 item 6: every result names the population its variances and p-values cover."""
    from brainalign import rsa

    data, models = _make(rng, n=7, n_subjects=4, n_models=2)
    res = evaluate(data, models, "pearson", resample=bootstrap, n_bootstrap=10, seed=0)
    assert res.attrs["generalises_to"] == population
    assert model_tests(res).attrs["generalises_to"] == population
    if bootstrap != "none":
        tested = rsa.test(data, models, "pearson", resample=bootstrap, n_bootstrap=10, seed=0)
        assert tested.attrs["generalises_to"] == population


def test_docstrings_point_subject_resampling_to_both():
    """The docs of test/evaluate say subject resampling fixes the stimuli and name 'both'."""
    from brainalign import rsa

    for func in (rsa.test, rsa.evaluate, rsa.model_tests):
        doc = " ".join(func.__doc__.split())
        assert "generalises_to" in doc, func.__name__
        assert '"both"' in doc, func.__name__
    doc = " ".join(rsa.test.__doc__.split())
    assert "new **subjects seeing these same stimuli**" in doc
    assert "liberal" in doc
