"""Stimulus-bootstrap CIs against rsatoolbox 0.3.2 and against explicit resampling."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from brainalign import rsa
from brainalign.rsa._bootstrap_ci import WEIGHTED_METHODS

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import bootstrap_sample_pattern  # noqa: E402
from rsatoolbox.rdm import RDMs  # noqa: E402
from rsatoolbox.rdm import compare as rs_compare  # noqa: E402

# Ranks are exact in float32 (integers and half-integers); sums accumulate in float64.
TOL = {"spearman": 1e-9, "rho_a": 1e-9, "pearson": 1e-12, "cosine": 1e-12}


def _sq(x):
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def _labeled(d, m, ids):
    data = xr.DataArray(
        d, dims=("stimulus_a", "stimulus_b"), coords={"stimulus_a": ids, "stimulus_b": ids}
    )
    models = xr.DataArray(
        m,
        dims=("model", "stimulus_a", "stimulus_b"),
        coords={"model": [f"m{k}" for k in range(len(m))], "stimulus_a": ids, "stimulus_b": ids},
    )
    return data, models


def _incomplete_with_ties(rng, n=14):
    """An incomplete data RDM with tied values, two complete model RDMs (one with ties)."""
    x = rng.normal(size=(n, 4))
    d = np.round(_sq(x), 1)
    i, j = np.triu_indices(n, 1)
    drop = rng.choice(len(i), size=len(i) // 3, replace=False)
    d[i[drop], j[drop]] = d[j[drop], i[drop]] = np.nan
    m = np.stack(
        [_sq(x + 0.5 * rng.normal(size=x.shape)), np.round(_sq(rng.normal(size=x.shape)))]
    )
    return _labeled(d, m, [f"s{k}" for k in range(n)])


def _explicit(d, m, draws, method):
    """Materialise each resampled RDM (self-pairs dropped) and compare with scipy / numpy."""
    n = d.shape[0]
    a, b = np.triu_indices(n, 1)
    out = np.full((len(draws), len(m)), np.nan)
    for s, row in enumerate(draws):
        row = np.sort(row)
        ia, ib = row[a], row[b]
        dv = d[ia, ib]
        dv[ia == ib] = np.nan
        for k, mm in enumerate(m):
            mv = mm[ia, ib]
            keep = np.isfinite(dv) & np.isfinite(mv) & (ia != ib)
            u, v = dv[keep], mv[keep]
            if method in ("spearman", "rho_a"):
                u, v = stats.rankdata(u), stats.rankdata(v)
            if method == "rho_a":
                q = len(u)
                out[s, k] = 12 * ((u - u.mean()) * (v - v.mean())).sum() / (q**3 - q)
                continue
            if method != "cosine":
                u, v = u - u.mean(), v - v.mean()
            out[s, k] = (u * v).sum() / np.sqrt((u * u).sum() * (v * v).sum())
    return out


@pytest.mark.parametrize("method", WEIGHTED_METHODS)
def test_matches_explicit_resampling_of_incomplete_rdms_with_ties(rng, device, method, tol):
    data, models = _incomplete_with_ties(rng)
    draws = rng.integers(0, data.sizes["stimulus_a"], size=(60, data.sizes["stimulus_a"]))
    res = rsa.bootstrap_ci(data, models, method, indices=draws, device=device)
    ref = _explicit(data.values, models.values, draws, method)
    # float32 (the pass): rsa.compare's similarity is a correlation (|r| <= 1) of about 60
    # pairs rounded in float32: a few eps32 (1.2e-7)
    sim_tol = tol(float64=TOL[method], float32=1e-6)
    if device != "cpu":  # dtype "auto": float32 on a GPU
        close = sim_tol = 1e-4
    else:
        close = TOL[method]
    assert res.attrs["weighted"] == 1
    np.testing.assert_allclose(res.bootstrap_evaluations.values, ref, rtol=0, atol=close)
    np.testing.assert_allclose(
        res.similarity.values,
        [float(rsa.compare(data, models.sel(model=k), method)) for k in models.model.values],
        rtol=0,
        atol=sim_tol,
    )
    lo, up = np.quantile(ref, [0.025, 0.975], axis=0)
    np.testing.assert_allclose(res.ci_lower.values, lo, atol=close)
    np.testing.assert_allclose(res.ci_upper.values, up, atol=close)


@pytest.mark.parametrize("method", WEIGHTED_METHODS)
def test_matches_rsatoolbox_bootstrap_sample_pattern(rng, method):
    n = 11
    x = rng.normal(size=(n, 5))
    d = _sq(x)
    m = np.stack([_sq(x + s * rng.normal(size=x.shape)) for s in (0.3, 1.0, 3.0)])
    data, models = _labeled(d, m, [f"s{k}" for k in range(n)])
    rs_data = RDMs(d[None], dissimilarity_measure="euclidean")
    rs_models = RDMs(m, dissimilarity_measure="euclidean")
    name = rsa.RSATOOLBOX_METHODS[method]
    np.random.seed(int(rng.integers(2**31)))  # noqa: NPY002 (rsatoolbox draws from it)
    draws, ref = [], []
    for _ in range(40):  # rsatoolbox eval_bootstrap_pattern's loop, its own draws
        sample, idx = bootstrap_sample_pattern(rs_data)
        pred = rs_models.subsample_pattern("index", idx)
        ref.append(rs_compare(pred, sample, method=name)[:, 0])
        draws.append(idx)
    res = rsa.bootstrap_ci(data, models, method, indices=np.array(draws), device="cpu")
    ref = np.array(ref)
    valid = np.array([np.unique(r).size >= 3 for r in draws])
    np.testing.assert_allclose(
        res.bootstrap_evaluations.values[valid], ref[valid], rtol=0, atol=TOL[method]
    )
    assert (res.valid.values == valid).all()


def test_same_draws_as_evaluate_for_one_seed(rng, tol):
    n = 10
    x = rng.normal(size=(n, 5))
    data, models = _labeled(
        _sq(x), np.stack([_sq(x + rng.normal(size=x.shape)) for _ in range(2)]),
        [f"s{k}" for k in range(n)],
    )  # fmt: skip
    res = rsa.bootstrap_ci(data, models, "pearson", n_bootstrap=50, seed=3, device="cpu")
    ev = rsa.evaluate(data, models, "pearson", resample="stimulus", n_bootstrap=50, seed=3)
    # float32: evaluate's float32 GEMMs of pair-weighted moments (EV32 = 1e-5 in
    # test_evaluate.py, from eps32 * sqrt(45 pairs) and the one-pass covariances)
    np.testing.assert_allclose(
        res.bootstrap_evaluations.values,
        ev.bootstrap_evaluations.values,
        atol=tol(float64=1e-10, float32=1e-5),
    )
    again = rsa.bootstrap_ci(data, models, "pearson", n_bootstrap=50, seed=3, device="cpu")
    np.testing.assert_array_equal(res.ci_lower.values, again.ci_lower.values)
    assert res.attrs["seed"] == 3
    assert res.attrs["n_bootstrap"] == 50


def test_methods_without_weighted_form_resample_explicitly(rng, tol):
    data, models = _incomplete_with_ties(rng, n=9)
    draws = rng.integers(0, 9, size=(15, 9))
    res = rsa.bootstrap_ci(data, models, "kendall_tau_a", indices=draws, device="cpu")
    assert res.attrs["weighted"] == 0
    for s, row in enumerate(draws):
        row = np.sort(row)
        sub_d = data.values[np.ix_(row, row)]
        for k in range(2):
            sub_m = models.values[k][np.ix_(row, row)]
            i, j = np.triu_indices(9, 1)
            keep = (row[i] != row[j]) & np.isfinite(sub_d[i, j])
            u, v = sub_d[i, j][keep], sub_m[i, j][keep]
            s_u, s_v = np.sign(u[:, None] - u[None]), np.sign(v[:, None] - v[None])
            tau = (s_u * s_v).sum() / (len(u) * (len(u) - 1))
            # float32: tau-a, a ratio of exact integer counts, rounded once (eps32 / 2)
            close = tol(float64=1e-10, float32=2.5e-7)
            assert res.bootstrap_evaluations.values[s, k] == pytest.approx(tau, abs=close)


def test_a_dict_of_models_and_aligned_ids(rng):
    n = 8
    x = rng.normal(size=(n, 3))
    data, models = _labeled(_sq(x), _sq(x + rng.normal(size=x.shape))[None], list("abcdefgh"))
    shuffled = models.isel(model=0).isel(stimulus_a=slice(None, None, -1),
                                         stimulus_b=slice(None, None, -1))  # fmt: skip
    a = rsa.bootstrap_ci(data, {"m": shuffled}, n_bootstrap=30, seed=1, device="cpu")
    b = rsa.bootstrap_ci(data, models, n_bootstrap=30, seed=1, device="cpu")
    np.testing.assert_allclose(a.ci_lower.values, b.ci_lower.values)
    assert list(a.model.values) == ["m"]
    assert float(a.ci_lower[0]) <= float(a.ci_upper[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "spearmann"}, r"method.*'spearmann'.*Did you mean 'spearman'"),
        ({"method": "bures"}, r"method.*'bures'"),
        ({"n_bootstrap": 0}, r"n_bootstrap.*0"),
        ({"ci": 1.5}, r"ci.*1\.5"),
        ({"indices": np.zeros((3, 4), dtype=int)}, r"indices must be an integer array of shape "
                                                   r"\(n_bootstrap, 6\), got .*\(3, 4\)"),
        ({"indices": np.full((3, 6), 9)}, r"indices must .* lie in \[0, 5\].*\[9, 9\]"),
    ],
)  # fmt: skip
def test_errors_name_the_parameter_and_value(rng, kwargs, match):
    x = rng.normal(size=(6, 3))
    data, models = _labeled(_sq(x), _sq(x)[None], list("abcdef"))
    with pytest.raises(ValueError, match=match):
        rsa.bootstrap_ci(data, models, **{"method": "spearman", **kwargs})


def test_too_few_finite_pairs_are_refused():
    d = np.full((4, 4), np.nan)
    d[0, 1] = d[1, 0] = 1.0
    np.fill_diagonal(d, 0.0)
    data, models = _labeled(d, np.ones((1, 4, 4)) - np.eye(4), list("abcd"))
    with pytest.raises(ValueError, match=r"data_rdm has 1 finite pair\(s\); .* at least 3"):
        rsa.bootstrap_ci(data, models)


def test_several_data_rdms_are_refused(rng):
    x = rng.normal(size=(6, 3))
    _, models = _labeled(_sq(x), _sq(x)[None], list("abcdef"))
    with pytest.raises(ValueError, match=r"data_rdm must be a single RDM.*'model'"):
        rsa.bootstrap_ci(models, models)


def test_result_says_which_population_it_generalises_to(rng):
    """Issue 17 item 6: a stimulus bootstrap interval is about stimuli, subjects fixed."""
    x = rng.normal(size=(8, 5))
    res = rsa.bootstrap_ci(rsa.rdm(x), rsa.rdm(x + rng.normal(size=x.shape)), n_bootstrap=20)
    assert res.attrs["generalises_to"] == "stimuli (subjects fixed)"
