"""Lists, dicts and stacks of labeled RDMs are aligned by stimulus id, never by position.

Issue 17, item 2: ``rsa.evaluate([A, A2], [A reordered])`` used to stack the list by
position and score about 0 instead of 1. Every RSA / tRSA entry point that takes several
labeled RDMs must give exactly the result of pre-aligned input, or refuse and name the ids.
"""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

import brainalign as ba
from brainalign import rsa, trsa
from brainalign.rsa._crossval import crossval

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import evaluate as rs_eval  # noqa: E402
from rsatoolbox.inference.noise_ceiling import boot_noise_ceiling  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402

IDS = [f"s{i}" for i in range(8)]
PERM = [5, 2, 7, 0, 3, 6, 1, 4]  # a reordering of the 8 stimuli


def _rdm(x):
    return rsa.rdm(ba.responses(x, IDS), "correlation")


def _shuffled(r):
    return r.isel(stimulus_a=PERM, stimulus_b=PERM)


@pytest.fixture
def rdms(rng):
    """Three subject RDMs and two model RDMs on the same 8 stimuli, in the order IDS."""
    x = rng.normal(size=(8, 6))
    subjects = [_rdm(x + rng.normal(size=x.shape)) for _ in range(3)]
    models = [_rdm(x), _rdm(rng.normal(size=x.shape))]
    return subjects, models


def _vec(r):
    i, j = np.triu_indices(r.sizes["stimulus_a"], k=1)
    return np.asarray(r.values)[i, j]


# float32: correlations (|r| <= 1) of 28-pair RDM vectors whose float32 sums run in another
# order once the stimuli are reordered (Spearman's ranks): a few eps32 (1.2e-7)
CORR32 = 1e-6


def _assert_same(a: xr.Dataset, b: xr.Dataset, atol: float = 1e-12):
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        assert_allclose(a[name].values, b[name].values, rtol=0, atol=atol, err_msg=name)


def test_evaluate_list_with_a_reordered_model_scores_one(rdms, tol):
    """The issue's example: [A, A2] against [A reordered] gives A's own score, 1."""
    subjects, _ = rdms
    a, a2 = subjects[:2]
    res = rsa.evaluate([a, a2], [_shuffled(a)], "pearson")
    aligned = rsa.evaluate([a, a2], [a], "pearson")
    assert_allclose(res.evaluations.values[0, 0], 1.0, atol=1e-12)
    _assert_same(res, aligned)
    # rsatoolbox 0.3.2 eval_fixed on the pre-aligned vectors
    ref = rs_eval.eval_fixed([ModelFixed("a", _vec(a))], RDMs(np.stack([_vec(a), _vec(a2)])),
                             method="corr")  # fmt: skip
    assert_allclose(
        res.evaluations.values, ref.evaluations[0], rtol=0, atol=tol(1e-10, float32=CORR32)
    )


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("bootstrap", ["none", "subject", "stimulus", "both"])
def test_evaluate_lists_dicts_and_stacks_equal_prealigned(rdms, method, bootstrap, tol):
    subjects, models = rdms
    kw = {"resample": bootstrap, "n_bootstrap": 20, "seed": 3}
    aligned = rsa.evaluate(subjects, models, method, **kw)
    mixed_subjects = [subjects[0], _shuffled(subjects[1]), subjects[2]]
    mixed_models = [_shuffled(models[0]), models[1]]
    _assert_same(rsa.evaluate(mixed_subjects, mixed_models, method, **kw), aligned)
    as_dicts = rsa.evaluate(
        {"p1": subjects[0], "p2": _shuffled(subjects[1]), "p3": subjects[2]},
        {"m0": _shuffled(models[0]), "m1": models[1]},
        method,
        **kw,
    )
    _assert_same(as_dicts, aligned)
    assert as_dicts.model.values.tolist() == ["m0", "m1"]
    # a stacked DataArray of subjects in one order, a list of models in another
    stack = xr.concat(subjects, dim="subject")
    _assert_same(rsa.evaluate(stack, [_shuffled(m) for m in models], method, **kw), aligned)
    # the stack itself reordered: the result follows the data's (first) order
    reordered = rsa.evaluate(_shuffled(stack), [_shuffled(m) for m in models], method, **kw)
    if bootstrap in ("none", "subject"):  # stimulus draws are positions: same only then
        _assert_same(reordered, aligned, atol=tol(float64=1e-12, float32=CORR32))


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_noise_ceiling_of_a_list_with_one_reordered_rdm(rdms, method, tol):
    subjects, _ = rdms
    aligned = rsa.noise_ceiling(subjects, method)
    mixed = rsa.noise_ceiling([subjects[0], _shuffled(subjects[1]), subjects[2]], method)
    _assert_same(mixed, aligned)
    by_dict = rsa.noise_ceiling({str(i): s for i, s in enumerate(subjects)}, method)
    _assert_same(by_dict, aligned)
    ref = boot_noise_ceiling(
        RDMs(np.stack([_vec(s) for s in subjects])),
        method={"pearson": "corr", "spearman": "spearman", "cosine": "cosine"}[method],
    )  # rsatoolbox 0.3.2 on the pre-aligned vectors
    bounds = [float(mixed.lower), float(mixed.upper)]
    assert_allclose(bounds, ref, rtol=0, atol=tol(float64=1e-10, float32=CORR32))


def test_test_and_model_tests_on_reordered_lists(rdms):
    subjects, models = rdms
    kw = {"resample": "both", "n_bootstrap": 30, "seed": 0}
    aligned = rsa.test(subjects, models, "pearson", **kw)
    mixed = rsa.test([_shuffled(s) if i == 1 else s for i, s in enumerate(subjects)],
                     [models[0], _shuffled(models[1])], "pearson", **kw)  # fmt: skip
    _assert_same(mixed, aligned)
    mt = rsa.model_tests(rsa.evaluate(subjects, [_shuffled(m) for m in models], "spearman"))
    _assert_same(mt, rsa.model_tests(rsa.evaluate(subjects, models, "spearman")))


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])  # weighted and explicit
def test_bootstrap_ci_list_of_models(rdms, method):
    subjects, models = rdms
    kw = {"n_bootstrap": 25, "seed": 1}
    aligned = rsa.bootstrap_ci(subjects[0], xr.concat(models, dim="model"), method, **kw)
    mixed = rsa.bootstrap_ci(subjects[0], [_shuffled(models[0]), models[1]], method, **kw)
    _assert_same(mixed, aligned)


def test_permutation_test_list_and_dict_of_models(rdms):
    subjects, models = rdms
    kw = {"n_permutations": 50, "seed": 2}
    aligned = rsa.permutation_test(subjects[0], xr.concat(models, dim="model"), "pearson", **kw)
    mixed = rsa.permutation_test(subjects[0], [_shuffled(models[0]), models[1]], "pearson", **kw)
    _assert_same(mixed, aligned)
    named = rsa.permutation_test(
        subjects[0], {"x": models[0], "rand": _shuffled(models[1])}, "pearson", **kw
    )
    assert named.model.values.tolist() == ["x", "rand"]
    assert_allclose(named.p_value.values, aligned.p_value.values, rtol=0, atol=1e-12)


def test_crossval_and_fit_weighted_lists(rdms):
    subjects, models = rdms
    aligned = rsa.fit_weighted(subjects, models, "pearson")
    mixed = rsa.fit_weighted([_shuffled(s) for s in subjects], [models[0], _shuffled(models[1])],
                             "pearson")  # fmt: skip
    assert_allclose(mixed.values, aligned.values, rtol=0, atol=1e-12)
    ref = crossval(subjects, {"w": models}, "pearson", seed=0)
    got = crossval([subjects[0], _shuffled(subjects[1]), subjects[2]],
                   {"w": [_shuffled(models[0]), models[1]]}, "pearson", seed=0)  # fmt: skip
    _assert_same(got, ref)


def _other_ids(r, drop, add):
    """``r`` with stimulus ``drop`` renamed ``add``: one id missing, one extra."""
    ids = [add if s == drop else s for s in r.stimulus_a.values.tolist()]
    return r.assign_coords(stimulus_a=ids, stimulus_b=ids)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, m: rsa.evaluate(s, m, "pearson"),
        lambda s, m: rsa.test(s, m, "pearson", n_bootstrap=5, seed=0),
        lambda s, m: rsa.bootstrap(s, m, "pearson", n_bootstrap=5, seed=0),
        lambda s, m: rsa.noise_ceiling(s, "pearson"),
    ],
    ids=["evaluate", "test", "bootstrap", "noise_ceiling"],
)
def test_different_id_sets_are_refused_with_the_ids(rdms, call):
    subjects, models = rdms
    bad = [subjects[0], _other_ids(subjects[1], "s3", "zz"), subjects[2]]
    with pytest.raises(
        ba.StimulusAlignmentError,
        match=r"data_rdms\[1\] has missing 1 id\(s\) of data_rdms\[0\]: 's3'; 1 extra id\(s\): "
        r"'zz'",
    ):
        call(bad, models)
    bad_dict = {"ann": subjects[0], "bob": _other_ids(subjects[1], "s3", "zz")}
    with pytest.raises(ba.StimulusAlignmentError, match=r"data_rdms\['bob'\].*'s3'.*'zz'"):
        call(bad_dict, models)


def test_models_with_other_ids_are_refused(rdms):
    subjects, models = rdms
    bad = [models[0], _other_ids(models[1], "s0", "new")]
    with pytest.raises(ba.StimulusAlignmentError, match=r"model_rdms\[1\].*'s0'.*'new'"):
        rsa.evaluate(subjects, bad, "pearson")
    with pytest.raises(ba.StimulusAlignmentError, match=r"model_rdms\[1\].*'s0'.*'new'"):
        rsa.bootstrap_ci(subjects[0], bad, n_bootstrap=5)
    with pytest.raises(ba.StimulusAlignmentError, match=r"model_rdm\[1\].*'s0'.*'new'"):
        rsa.permutation_test(subjects[0], bad, n_permutations=5)
    with pytest.raises(ba.StimulusAlignmentError, match=r"'s0'.*'new'"):
        rsa.evaluate(subjects, _other_ids(models[0], "s0", "new"), "pearson")


def test_a_list_holding_a_stack_is_refused(rdms):
    subjects, _ = rdms
    stack = xr.concat(subjects, dim="subject")
    with pytest.raises(ba.SchemaError, match=r"data_rdms as a list must hold single RDMs; "
                       r"data_rdms\[1\] has dims \('subject'"):  # fmt: skip
        rsa.noise_ceiling([subjects[0], stack])
    with pytest.raises(ValueError, match=r"data_rdms is an empty list"):
        rsa.noise_ceiling([])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda r, rs: rsa.compare(r, rs), "rdm_b"),
        (lambda r, rs: rsa.permutation_test(rs, r), "data_rdm"),
        (lambda r, rs: trsa.grid_compare(r, rs, grid=[[0.2, 0.8]]), "rdm_b"),
        (lambda r, rs: trsa.rgtm(rs, 0.2, 0.8), "rdm"),
        (lambda r, rs: trsa.identification_accuracy(rs, "a", "b"), "rdms"),
    ],
    ids=["compare", "permutation_test", "grid_compare", "rgtm", "identification"],
)
def test_functions_of_one_rdm_or_stack_refuse_lists(rdms, call, name):
    """Taking one RDM (or one stack), they refuse a list instead of stacking by position."""
    subjects, _ = rdms
    with pytest.raises(TypeError, match=rf"{name} must be one RDM.*got a list of 2 RDM\(s\)"):
        call(subjects[0], [subjects[1], _shuffled(subjects[2])])
    with pytest.raises(TypeError, match=rf"{name} must be one RDM.*got a dict of 1 RDM\(s\)"):
        call(subjects[0], {"a": subjects[1]})


def test_trsa_grid_compare_aligns_reordered_stacks(rdms):
    subjects, models = rdms
    grid = [[0.2, 0.8], [0.0, 0.5]]
    stack, mstack = xr.concat(subjects, dim="subject"), xr.concat(models, dim="model")
    aligned = trsa.grid_compare(stack, mstack, grid=grid)
    mixed = trsa.grid_compare(stack, _shuffled(mstack), grid=grid)
    assert_allclose(mixed.values, aligned.values, rtol=0, atol=1e-12)
    with pytest.raises(ba.StimulusAlignmentError, match=r"'s3'.*'zz'"):
        trsa.grid_compare(stack, _other_ids(mstack, "s3", "zz"), grid=grid)
