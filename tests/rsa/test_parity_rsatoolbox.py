"""Parity with rsatoolbox 0.3.2: ``neg_riem_dist`` and crossnobis with one precision per run.

The cases are rsatoolbox's own (``tests/test_compare_rdm.py::test_compare_neg_riemannian_distance``
and the crossnobis-with-noise-list branch of ``rdm/calc.py``), rebuilt here with the same
seeds and shapes and computed by rsatoolbox in the test.
"""

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize as scipy_minimize
from scipy.spatial.distance import squareform

import brainalign as ba
from brainalign import rsa

rsatoolbox = pytest.importorskip("rsatoolbox")
RC = pytest.importorskip("rsatoolbox.rdm.compare")  # the module (rsatoolbox.rdm.compare is
# also the name of a function, which shadows the module as an attribute of rsatoolbox.rdm)
TOL = 1e-8  # the tolerance the issue asks for (float64)
# float32: neg_riem_dist whitens 5 x 5 second moments (condition <= 43 here) by Cholesky and
# takes their eigenvalues: eps32 * cond = 5e-6 on the log-eigenvalues, distances of order 1
# (1.2e-6 seen)
RIEM32 = 1e-5


def _tight_nelder_mead(fun, x0, method=None):
    """rsatoolbox's Nelder-Mead, polished to the minimum (its default stops at 1e-4 in θ)."""
    first = scipy_minimize(fun, x0, method="Nelder-Mead")
    return scipy_minimize(
        fun,
        first.x,
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-14, "maxfev": 4000},
    )


@pytest.fixture(scope="module")
def riem_case():
    """rsatoolbox ``test_compare_neg_riemannian_distance``: euclidean RDMs of U(0,1) data."""
    rng = np.random.default_rng(0)
    rng.random((20, 6))  # setUp draws these first (test_rdm1, test_rdm2, test_rdm3)
    rng.random((3, 20, 6))
    rng.random((7, 15))
    sets = [
        [rsatoolbox.data.Dataset(rng.random((6, 20)), descriptors={"subj": s}) for s in range(k)]
        for k in (1, 5, 7)
    ]
    return [rsatoolbox.rdm.calc_rdm(d, method="euclidean") for d in sets]


def _sub(rdms, k):
    """The first ``k`` RDMs as a new RDMs object (rsatoolbox's ``rdms[:k]`` fails on slices)."""
    return rsatoolbox.rdm.RDMs(rdms.get_vectors()[:k], dissimilarity_measure="euclidean")


def _labeled(rdms, dim):
    vecs = rdms.get_vectors()
    ids = [f"c{i}" for i in range(6)]
    return xr.DataArray(
        np.stack([squareform(v) for v in vecs]),
        dims=(dim, "stimulus_a", "stimulus_b"),
        coords={dim: np.arange(len(vecs)), "stimulus_a": ids, "stimulus_b": ids},
    )


def test_neg_riem_dist_matches_rsatoolbox(riem_case, monkeypatch, tol):
    r1, r2, r3 = riem_case
    ours = rsa.compare(_labeled(r2, "model"), _labeled(r3, "subject"), "neg_riem_dist")
    assert ours.dims == ("model", "subject")
    default = RC.compare_neg_riemannian_distance(r2, r3)  # Nelder-Mead at its default tolerance
    np.testing.assert_allclose(ours.values, default, rtol=0, atol=tol(TOL, float32=RIEM32))
    # never a worse optimum than rsatoolbox's (up to rounding)
    assert (ours.values >= default - tol(float64=1e-12, float32=RIEM32)).all()
    monkeypatch.setattr(RC, "minimize", _tight_nelder_mead)
    polished = RC.compare_neg_riemannian_distance(_sub(r2, 2), _sub(r3, 3))
    np.testing.assert_allclose(
        ours.values[:2, :3], polished, rtol=0, atol=tol(float64=1e-11, float32=RIEM32)
    )
    # rsatoolbox's own assertions: a RDM against itself is 0, all others are negative
    v = r1.get_vectors()[0]
    # float32: the log-eigenvalues are eps32 * cond from 0, the distance sqrt(5) times that
    self_dist = rsa.compare(squareform(v), squareform(v), "neg_riem_dist")
    assert abs(self_dist) < tol(float64=1e-12, float32=RIEM32)
    assert (ours.values < 0).all()


@pytest.mark.float32
def test_neg_riem_dist_sigma_k_matches_rsatoolbox(riem_case, monkeypatch, tol):
    _, r2, r3 = riem_case
    a = np.random.default_rng(5).normal(size=(6, 9))
    sigma = a @ a.T / 9 + 0.1 * np.eye(6)
    monkeypatch.setattr(RC, "minimize", _tight_nelder_mead)
    ref = RC.compare_neg_riemannian_distance(_sub(r2, 2), _sub(r3, 3), sigma_k=sigma)
    ours = rsa.compare(_labeled(_sub(r2, 2), "model"), _labeled(_sub(r3, 3), "subject"),
                       "neg_riem_dist", sigma_k=sigma)  # fmt: skip
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=tol(TOL, float32=RIEM32))


def test_neg_riem_dist_evaluate_matches_rsatoolbox_eval_fixed(riem_case, monkeypatch, tol):
    _, r2, r3 = riem_case
    monkeypatch.setattr(RC, "minimize", _tight_nelder_mead)
    model = rsatoolbox.model.ModelFixed("m0", _sub(r2, 1))
    ref = rsatoolbox.inference.eval_fixed(model, r3, method="neg_riem_dist")
    ours = rsa.evaluate(_labeled(r3, "subject"), _labeled(_sub(r2, 1), "model"), "neg_riem_dist")
    atol = tol(TOL, float32=RIEM32)
    np.testing.assert_allclose(ours.evaluations.values[0], ref.evaluations[0, 0], atol=atol)
    np.testing.assert_allclose(ours.mean_score.values, ref.get_means(), atol=atol)
    np.testing.assert_allclose(
        [float(ours.noise_ceiling_lower), float(ours.noise_ceiling_upper)],
        np.asarray(ref.noise_ceiling).ravel(),
        atol=atol,
    )


def test_neg_riem_dist_puts_the_model_first_everywhere(riem_case):
    """Not symmetric: compare(model, data) as rsatoolbox; the permutation test follows."""
    _, r2, r3 = riem_case
    model, data = squareform(r2.get_vectors()[0]), squareform(r3.get_vectors()[0])
    forward = rsa.compare(model, data, "neg_riem_dist")
    assert abs(forward - rsa.compare(data, model, "neg_riem_dist")) > 1e-6
    res = rsa.permutation_test(data, model, "neg_riem_dist", n_permutations=20, seed=0)
    assert float(res.observed) == pytest.approx(forward, abs=1e-12)


def test_neg_riem_dist_errors(riem_case):
    _, r2, _ = riem_case
    d = squareform(r2.get_vectors()[0])
    with pytest.raises(
        ValueError, match=r"sigma_k for method='neg_riem_dist' must be the \(6, 6\)"
    ):
        rsa.compare(d, d, "neg_riem_dist", sigma_k=np.ones(6))
    holed = d.copy()
    holed[0, 1] = holed[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"method='neg_riem_dist' needs complete RDMs, but 1"):
        rsa.compare(d, holed, "neg_riem_dist")
    # a data RDM whose second moment is singular: all stimuli on a line (rank 1 of 5)
    line = rsa.rdm(np.arange(6.0)[:, None] * [1.0, 2.0], "sqeuclidean")
    with pytest.raises(ValueError, match=r"undefined in 1 case\(s\).*rdm_b .*positive definite"):
        rsa.compare(d, line, "neg_riem_dist")
    with pytest.raises(
        ValueError, match=r"method='neg_riem_dist' needs complete RDMs.*'stimulus'"
    ):
        rsa.evaluate(np.stack([d, d * 1.1]), d[None], "neg_riem_dist", resample="stimulus")


# ------------------------------------------------------------------ crossnobis, noise per run
def _crossnobis_case(seed=1, n=5, p=8, n_runs=4, rep=2):
    rng = np.random.default_rng(seed)
    stim = np.tile(np.repeat([f"c{i}" for i in range(n)], rep), n_runs)
    run = np.repeat([f"r{k}" for k in range(n_runs)], n * rep)
    x = rng.normal(size=(len(stim), p))
    precs = []
    for _ in range(n_runs):
        a = rng.normal(size=(p, 3 * p))
        precs.append(np.linalg.inv(a @ a.T / (3 * p)))
    trials = ba.responses(x, list(stim), sample_dim="trial", feature_dim="channel", run=run)
    ds = rsatoolbox.data.Dataset(x, obs_descriptors={"stim": stim, "run": run})
    return trials, ds, precs


# float32 crossnobis: 8-feature patterns through an 8 x 8 precision, rounded in float32:
# eps32 * sqrt(64) = 1e-6 of the largest dissimilarity (CN32 times it; 1e-7 seen)
CN32 = 1e-6


def _ref_crossnobis(ds, noise):
    with np.errstate(invalid="ignore"):  # rsatoolbox stores the noise list in a float array
        ref = rsatoolbox.rdm.calc_rdm_crossnobis(ds, "stim", noise=noise, cv_descriptor="run")
    ids = list(ref.pattern_descriptors["stim"])
    return ref.get_vectors()[0], ids


def _vec(rdm_da, ids):
    sq = np.asarray(rdm_da.sel(stimulus_a=ids, stimulus_b=ids))
    return sq[np.triu_indices(len(ids), 1)]


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("form", ["list", "array", "dataarray"])
def test_crossnobis_noise_per_run_matches_rsatoolbox(form, tol):
    trials, ds, precs = _crossnobis_case()
    ref, ids = _ref_crossnobis(ds, [q.copy() for q in precs])
    if form == "list":
        noise = precs
    elif form == "array":
        noise = np.stack(precs)
    else:  # labeled by run, given in another order: matched by label, not position
        order = [2, 0, 3, 1]
        noise = xr.DataArray(
            np.stack(precs)[order],
            dims=("run", "channel", "channel_b"),
            coords={"run": [f"r{k}" for k in order]},
        )
    ours = rsa.rdm(trials, "crossnobis", noise=noise)
    np.testing.assert_allclose(
        _vec(ours, ids), ref, rtol=0, atol=tol(1e-10, float32=CN32 * np.abs(ref).max())
    )
    assert ours.attrs["noise"] == "precision per run"


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_crossnobis_same_precision_per_run_equals_pooled(tol):
    trials, ds, precs = _crossnobis_case(seed=3, n_runs=3)
    pooled = rsa.rdm(trials, "crossnobis", noise=precs[0])
    per_run = rsa.rdm(trials, "crossnobis", noise=[precs[0]] * 3)
    big = np.abs(pooled.values).max()
    np.testing.assert_allclose(
        per_run.values,
        pooled.values,
        rtol=tol(float64=1e-10, float32=0.0),
        atol=tol(float64=1e-12, float32=CN32 * big),
    )
    ref, ids = _ref_crossnobis(ds, [precs[0].copy() for _ in range(3)])
    np.testing.assert_allclose(
        _vec(per_run, ids), ref, rtol=0, atol=tol(1e-10, float32=CN32 * big)
    )


def test_crossnobis_noise_per_run_errors():
    trials, _, precs = _crossnobis_case()
    with pytest.raises(
        ValueError, match=r"one precision matrix per run \(4: runs .*'r0'.*got a list of 3"
    ):
        rsa.rdm(trials, "crossnobis", noise=precs[:3])
    with pytest.raises(ValueError, match=r"got an array of shape \(5, 8, 8\)"):
        rsa.rdm(trials, "crossnobis", noise=np.stack(precs + precs[:1]))
    bad = list(precs)
    bad[2] = precs[2][:7, :7]
    with pytest.raises(ValueError, match=r"noise\[2\] \(run 'r2'\): noise must be a \(8, 8\) "):
        rsa.rdm(trials, "crossnobis", noise=bad)
    bad[2] = -precs[2]
    with pytest.raises(
        ValueError, match=r"noise\[2\] \(run 'r2'\): noise must be positive definite"
    ):
        rsa.rdm(trials, "crossnobis", noise=bad)
    labeled = xr.DataArray(np.stack(precs), dims=("run", "channel", "channel_b"),
                           coords={"run": ["r0", "r1", "r2", "r9"]})  # fmt: skip
    with pytest.raises(ValueError, match=r"lacks the run\(s\) 'r3'"):
        rsa.rdm(trials, "crossnobis", noise=labeled)
    averaged = ba.average_trials(trials)
    with pytest.raises(ValueError, match=r"used only by metric='crossnobis'.*got a list of 4"):
        rsa.rdm(averaged, "mahalanobis", noise=precs)


def test_neg_riem_dist_accepts_a_constant_model(riem_case):
    """All stimuli equally distinct is a valid model (its second moment is I + 11ᵀ)."""
    _, _, r3 = riem_case
    data = _labeled(r3, "subject")
    flat = xr.ones_like(data.isel(subject=0, drop=True)) - np.eye(6)
    res = rsa.evaluate(data, flat.expand_dims(model=["flat"]), "neg_riem_dist")
    want = rsa.compare(flat, data, "neg_riem_dist")
    np.testing.assert_allclose(res.evaluations.values[0], want.values, rtol=0, atol=1e-12)
