"""Weighted-model fits and cross-validation against rsatoolbox 0.3.2 on the same folds."""

import numpy as np
import pytest
import xarray as xr

from brainalign._checks import StimulusAlignmentError
from brainalign.rsa._crossval import crossval, fit_weighted

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import crossval as rs_crossval  # noqa: E402
from rsatoolbox.inference import sets_k_fold  # noqa: E402
from rsatoolbox.model import ModelWeighted  # noqa: E402
from rsatoolbox.model.fitter import (  # noqa: E402
    fit_optimize,
    fit_optimize_positive,
    fit_regress,
    fit_regress_nn,
)
from rsatoolbox.rdm import RDMs  # noqa: E402

RS_NAME = {
    "pearson": "corr",
    "cosine": "cosine",
    "spearman": "spearman",
    "rho_a": "rho-a",
    "kendall_tau_a": "tau-a",
}
RS_FITTER = {
    "regress": fit_regress,
    "regress_nn": fit_regress_nn,
    "optimize": fit_optimize,
    "optimize_nn": fit_optimize_positive,
}


def _sym(a):
    a = a + np.swapaxes(a, -1, -2)
    i = np.arange(a.shape[-1])
    a[..., i, i] = 0
    return a


def _make(seed=1, n=12, n_subjects=6, n_comp=3):
    rng = np.random.default_rng(seed)
    comp = _sym(rng.random((n_comp, n, n)))
    truth = comp[0] + 0.5 * comp[1] - 0.2 * comp[-1]
    data = np.stack([truth + 0.6 * _sym(rng.random((n, n))) for _ in range(n_subjects)])
    return data, comp


def _labelled(arr, dim, ids):
    return xr.DataArray(
        arr,
        dims=(dim, "stimulus_a", "stimulus_b"),
        coords={"stimulus_a": ids, "stimulus_b": ids},
        attrs={"kind": "rdm"},
    )


@pytest.mark.parametrize("method", ["pearson", "cosine"])
@pytest.mark.parametrize("fitter", ["regress", "regress_nn"])
def test_closed_form_fits_equal_rsatoolbox(method, fitter):
    data, comp = _make()
    ours = fit_weighted(data, comp, method, fitter=fitter)
    theirs = RS_FITTER[fitter](ModelWeighted("w", RDMs(comp)), RDMs(data), method=RS_NAME[method])
    np.testing.assert_allclose(ours.values, theirs, atol=1e-10)
    assert ours.dims == ("component",)
    if fitter == "regress_nn":
        assert (ours.values >= 0).all()


@pytest.mark.parametrize("method", ["pearson", "cosine"])
@pytest.mark.parametrize("fitter", ["optimize", "optimize_nn"])
def test_optimizer_fits_equal_rsatoolbox(method, fitter):
    data, comp = _make()
    ours = fit_weighted(data, comp, method, fitter=fitter, seed=0).values
    np.random.seed(0)  # noqa: NPY002 - rsatoolbox draws its starts from the global generator
    theirs = RS_FITTER[fitter](ModelWeighted("w", RDMs(comp)), RDMs(data), method=RS_NAME[method])
    # rsatoolbox's BFGS runs on finite-difference gradients (tol 1e-6): its optimum is
    # accurate to ~2e-6 (its own fit_regress differs from it by as much)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # our optimiser converges to the closed-form optimum (analytic gradients)
    closed = "regress" if fitter == "optimize" else "regress_nn"
    np.testing.assert_allclose(ours, fit_weighted(data, comp, method, fitter=closed), atol=1e-8)


def test_optimize_rank_method_beats_start():
    data, comp = _make()
    w = fit_weighted(data, comp, "spearman", fitter="optimize", seed=0).values
    assert np.isclose(np.linalg.norm(w), 1.0)
    assert w[0] > 0


@pytest.mark.parametrize(
    ("method", "fitter", "k_subject", "k_stimulus", "n", "n_subjects"),
    [
        ("pearson", "regress", 2, 2, 12, 6),
        ("cosine", "regress_nn", 3, 3, 13, 7),
        ("pearson", "regress_nn", 1, 3, 11, 4),
        ("cosine", "regress", 3, 1, 9, 5),
        ("pearson", "optimize", 2, 2, 10, 5),
    ],
)
def test_crossval_equals_rsatoolbox(method, fitter, k_subject, k_stimulus, n, n_subjects):
    data, comp = _make(seed=n, n=n, n_subjects=n_subjects)
    seed = 7
    ours = crossval(
        data, comp, method, k_stimulus=k_stimulus, k_subject=k_subject, fitter=fitter, seed=seed
    )
    rdms = RDMs(data)
    np.random.seed(seed)  # noqa: NPY002 - rsatoolbox draws folds from the global generator
    train, test, ceil = sets_k_fold(rdms, k_rdm=k_subject, k_pattern=k_stimulus, random=True)
    # same folds
    assert ours.sizes["fold"] == len(test) == k_subject * k_stimulus
    for f, (tr, te) in enumerate(zip(train, test, strict=True)):
        assert np.flatnonzero(ours.test_stimulus[f]).tolist() == sorted(te[1])
        assert np.flatnonzero(ours.train_stimulus[f]).tolist() == sorted(tr[1])
        assert ours.test_subject[f].sum() == te[0].n_rdm
        assert ours.train_subject[f].sum() == tr[0].n_rdm
    model = ModelWeighted("w", RDMs(comp))
    if fitter == "optimize":
        # rsatoolbox's optimiser has random starts: feed it our fitted weights instead and
        # check the folds' weights against rsatoolbox's closed form (same optimum).
        weights = iter(ours.weights.values[0])
        for f, tr in enumerate(train):
            w = fit_regress(
                model, tr[0], method=RS_NAME[method], pattern_idx=tr[1], pattern_descriptor="index"
            )
            np.testing.assert_allclose(ours.weights.values[0, f], w, atol=1e-8)

        def rs_fit(*args, **kwargs):
            return next(weights)
    else:
        rs_fit = RS_FITTER[fitter]
    res = rs_crossval(model, rdms, train, test, ceil, method=RS_NAME[method], fitter=rs_fit)
    np.testing.assert_allclose(ours.evaluations.values[0], res.evaluations[0, 0], atol=1e-8)
    np.testing.assert_allclose(float(ours["mean_score"][0]), np.mean(res.evaluations), atol=1e-8)
    lo, up = res.noise_ceiling
    np.testing.assert_allclose(float(ours.mean_noise_ceiling_lower), lo, atol=1e-8)
    np.testing.assert_allclose(float(ours.mean_noise_ceiling_upper), up, atol=1e-8)
    # per-fold ceilings: rsatoolbox on one fold at a time
    for f in (0, len(test) - 1):
        res_f = rs_crossval(
            model,
            rdms,
            train[f : f + 1],
            test[f : f + 1],
            ceil[f : f + 1],
            method=RS_NAME[method],
            fitter=lambda *a, f=f, **k: ours.weights.values[0, f],
        )
        np.testing.assert_allclose(res_f.evaluations[0, 0, 0], ours.evaluations[0, f], atol=1e-8)
        np.testing.assert_allclose(
            [float(ours.noise_ceiling_lower[f]), float(ours.noise_ceiling_upper[f])],
            res_f.noise_ceiling,
            atol=1e-8,
        )


@pytest.mark.filterwarnings("ignore:Noise ceiling for tau:UserWarning")
@pytest.mark.parametrize("method", ["spearman", "rho_a", "kendall_tau_a"])
def test_crossval_rank_methods_evaluate_like_rsatoolbox(method):
    """Given the fitted weights, evaluations and ceilings equal rsatoolbox's."""
    data, comp = _make(seed=3, n=10, n_subjects=5, n_comp=2)
    ours = crossval(data, comp, method, k_stimulus=2, k_subject=2, fitter="optimize", seed=4)
    weights = iter(ours.weights.values[0])
    rdms = RDMs(data)
    np.random.seed(4)  # noqa: NPY002
    train, test, ceil = sets_k_fold(rdms, k_rdm=2, k_pattern=2, random=True)
    res = rs_crossval(
        ModelWeighted("w", RDMs(comp)),
        rdms,
        train,
        test,
        ceil,
        method=RS_NAME[method],
        fitter=lambda *a, **k: next(weights),
    )
    np.testing.assert_allclose(ours.evaluations.values[0], res.evaluations[0, 0], atol=1e-8)
    lo, up = res.noise_ceiling
    np.testing.assert_allclose(float(ours.mean_noise_ceiling_lower), lo, atol=1e-8)
    np.testing.assert_allclose(float(ours.mean_noise_ceiling_upper), up, atol=1e-8)


def test_crossval_several_models_and_labels():
    data, comp = _make(seed=5, n=12, n_subjects=6, n_comp=3)
    ids = [f"s{i}" for i in range(12)]
    d = _labelled(data, "subject", ids)
    full = _labelled(comp, "component", ids)
    rev = slice(None, None, -1)
    models = {"full": full, "two": full.isel(component=[0, 1], stimulus_a=rev, stimulus_b=rev)}
    ours = crossval(d, models, "pearson", k_stimulus=2, k_subject=2, seed=1)
    assert ours["model"].values.tolist() == ["full", "two"]
    assert ours.evaluations.dims == ("model", "fold")
    assert np.isnan(ours.weights.values[1, :, 2]).all()
    single = crossval(data, comp[:2], "pearson", k_stimulus=2, k_subject=2, seed=1)
    np.testing.assert_allclose(ours.evaluations.values[1], single.evaluations.values[0])
    assert ours.stimulus.values.tolist() == ids
    assert (ours.noise_ceiling_lower <= ours.noise_ceiling_upper + 1e-12).all()


def test_errors():
    data, comp = _make(n=9, n_subjects=4)
    with pytest.raises(ValueError, match="Did you mean 'regress'"):
        fit_weighted(data, comp, "pearson", fitter="regres")
    with pytest.raises(ValueError, match="Did you mean 'optimize'"):
        crossval(data, comp, "pearson", fitter="optimise")
    with pytest.raises(ValueError, match="fits the 'pearson' and 'cosine'"):
        fit_weighted(data, comp, "spearman", fitter="regress")
    with pytest.raises(ValueError, match=r"k_stimulus=10 is larger than the number of stimuli"):
        crossval(data, comp, "pearson", k_stimulus=10)
    with pytest.raises(ValueError, match=r"k_subject=5 is larger than the number of subjects"):
        crossval(data, comp, "pearson", k_subject=5)
    with pytest.raises(ValueError, match="fewer than 3 stimuli"):
        crossval(data, comp, "pearson", k_stimulus=4)
    ids = [f"s{i}" for i in range(9)]
    other = [*ids[:-1], "zz"]
    with pytest.raises(StimulusAlignmentError, match="zz"):
        crossval(_labelled(data, "subject", ids), _labelled(comp, "component", other), "pearson")
    bad = data.copy()
    bad[0, 0, 1] = bad[0, 1, 0] = np.nan
    with pytest.raises(
        ValueError,
        match=r"must be complete.*hold 2 non-finite entries out of "
        rf"{bad.size}",
    ):
        fit_weighted(bad, comp, "pearson")
    with pytest.raises(ValueError, match="Did you mean 'pearson'"):
        crossval(data, comp, "pearsn")
