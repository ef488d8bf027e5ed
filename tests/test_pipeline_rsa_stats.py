"""RSA report statistics: score beside the ceiling of the same comparison, layer-corrected
p-values (max statistic), heat maps centred at 0, time courses as small multiples."""

import copy
import re

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import brainalign as ba
from brainalign import rsa, viz
from brainalign.pipeline.analyses.rsa import (
    _best_layers,
    _layer_fwe,
    _max_statistic_p,
)
from brainalign.viz._timecourse import plot_time_courses

GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}
SPEC = {
    "name": "rsa_stats",
    "seed": 0,
    "brain": {"haxby_vt": {"dataset": "haxby2001"}},
    "models": {
        "category_structure": {"kind": "categorical", "groups": GROUPS},
    },
    "analyses": {
        "rsa": {
            "metric": "correlation",
            "method": "spearman",
            "n_permutations": 200,
            "n_bootstrap": 0,
        }
    },
}


IDS = ["bottle", "cat", "chair", "face", "house", "scissors", "scrambledpix", "shoe"]


@pytest.fixture(scope="module")
def run_stats(tmp_path_factory):
    """A small run: the categorical model and a 2-layer model (saved activations)."""
    out = tmp_path_factory.mktemp("rsa_stats")
    x = np.random.default_rng(5).normal(size=(len(IDS), 12))
    for k in range(1, 3):  # layers that drift apart, as a network's do
        x = x + np.random.default_rng(k).normal(size=x.shape)
        np.save(out / f"layer{k}.npy", x)
    spec = copy.deepcopy(SPEC)
    spec["models"]["net"] = {
        "kind": "activations",
        "path": str(out / "layer*.npy"),
        "stimuli": IDS,
    }
    return ba.run(spec, out / "run")


def _table(html, title):
    start = html.index(title)
    table = html[html.index("<table>", start) : html.index("</table>", start)]
    head = re.findall(r"<th>(.*?)</th>", table)
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table)]
    return [dict(zip(head, r, strict=True)) for r in rows if r]


def _category_rdm(ids):
    """0 within a category group, 1 between: the categorical model, built here directly."""
    group = {s: g for g, members in GROUPS.items() for s in members}
    lab = np.array([group[s] for s in ids])
    return xr.DataArray(
        (lab[:, None] != lab[None, :]).astype(float),
        dims=("stimulus_a", "stimulus_b"),
        coords={"stimulus_a": ids, "stimulus_b": ids},
    )


def _mean_rdm(trials, runs, ids):
    part = trials.isel(trial=np.flatnonzero(np.isin(trials["run"].values, runs)))
    return rsa.rdm(ba.average_trials(part), "correlation").sel(stimulus_a=ids, stimulus_b=ids)


def test_summary_score_and_ceiling_come_from_the_same_comparison(run_stats, haxby):
    """Recompute, from the trials, both pairs of the summary: (all-runs r, √SB reliability)
    and (mean r over run-pair RDMs, noise ceiling of those same RDMs)."""
    rows = {r["model"]: r for r in _table(run_stats.report.read_text(), "Brain–model RDM")}
    row = rows["category_structure"]
    ids = [str(s) for s in run_stats.tree["brain/haxby_vt"].to_dataset()["rdm"].stimulus_a.values]
    model = _category_rdm(ids)
    runs = np.unique(haxby["run"].values)
    # pair 1: r with the all-runs brain RDM, bounded by sqrt(Spearman-Brown reliability)
    full = _mean_rdm(haxby, runs, ids)
    r_full = float(rsa.compare(full, model, "spearman"))
    half = float(
        rsa.compare(
            _mean_rdm(haxby, runs[runs % 2 == 1], ids),
            _mean_rdm(haxby, runs[runs % 2 == 0], ids),
            "spearman",
        )
    )
    assert row["spearman r (brain RDM)"] == f"{r_full:.3g}"
    assert row["ceiling of r (brain RDM)"] == f"{np.sqrt(2 * half / (1 + half)):.3g}"
    # pair 2: the mean r with the run-pair RDMs beside the noise ceiling of the same RDMs
    splits = xr.concat([_mean_rdm(haxby, runs[k : k + 2], ids) for k in range(0, 12, 2)],
                       dim="subject")  # fmt: skip
    mean_split = np.mean([float(rsa.compare(s, model, "spearman")) for s in splits])
    nc = rsa.noise_ceiling(splits, "spearman")
    assert row["mean spearman r (split RDMs)"] == f"{mean_split:.3g}"
    assert row["noise ceiling"] == f"[{float(nc.lower):.3g}, {float(nc.upper):.3g}] (run splits)"
    assert mean_split <= float(nc.upper)  # a score below its own ceiling, as it must be
    ds = run_stats.tree["rsa/haxby_vt"].to_dataset()  # the same numbers, labeled
    assert abs(ds["split_mean"].sel(model="category_structure") - mean_split) < 1e-9
    assert abs(ds.attrs["ceiling_full_rdm"] - np.sqrt(2 * half / (1 + half))) < 1e-6


def _direct_fwe(observed, null, exact):
    """The max-statistic p written out with loops (the definition, no vectorisation)."""
    out = []
    n_tests, n_null = null.shape
    for i in range(n_tests):
        count = 0
        for k in range(n_null):
            if max(null[j, k] for j in range(n_tests)) >= observed[i]:
                count += 1
        out.append(count / n_null if exact else (1 + count) / (1 + n_null))
    return np.array(out)


@pytest.mark.parametrize("exact", [False, True])
def test_max_statistic_p_equals_the_direct_count(rng, exact):
    null = rng.normal(size=(4, 60))
    observed = np.array([0.5, 1.5, -0.2, 2.5])
    if exact:  # the identity permutation is among the columns
        null[:, 0] = observed
    np.testing.assert_allclose(
        _max_statistic_p(observed, null, exact), _direct_fwe(observed, null, exact), rtol=0
    )


def test_max_statistic_p_rejects_a_misshapen_null():
    with pytest.raises(ValueError, match=r"null must have shape \(n_tests=3, n_null >= 1\), got"):
        _max_statistic_p(np.zeros(3), np.zeros((2, 10)), False)


def test_results_hold_the_layer_corrected_p(run_stats):
    ds = run_stats.tree["rsa/haxby_vt"].to_dataset()
    layers = [str(m) for m in ds.model.values if str(m).startswith("net:")]
    assert len(layers) == 2
    sim, null = ds["similarity"].sel(model=layers).values, ds["null"].sel(model=layers).values
    direct = _direct_fwe(sim, null, bool(ds.attrs["exact"]))
    np.testing.assert_allclose(ds["p_value_fwe"].sel(model=layers).values, direct, rtol=1e-12)
    assert (ds["p_value_fwe"] >= ds["p_value"] - 1e-12).all()
    single = ds["p_value_fwe"].sel(model="category_structure")  # a family of one
    assert float(single) == float(ds["p_value"].sel(model="category_structure"))
    assert "max" in ds["p_value_fwe"].attrs["description"]
    (best,) = _table(run_stats.report.read_text(), "Best layer per model")
    top = layers[int(np.argmax(sim))]
    assert best["best layer"] == top.split(":")[1]
    assert best["p (FWE over layers)"] == f"{float(ds['p_value_fwe'].sel(model=top)):.3g}"
    assert best["p uncorrected (this layer)"] == f"{float(ds['p_value'].sel(model=top)):.3g}"


def _null_datasets(rng, n_sets, n_layers, n_stim, n_perm):
    """Spearman r of a brain RDM with each of ``n_layers`` model RDMs, all independent of
    the brain, and the r under ``n_perm`` stimulus permutations shared by the layers.

    Written out in numpy (the Mantel test: the pairs of the model RDM follow the permuted
    stimuli); Spearman = Pearson of ranks, and permuting stimuli permutes the ranks.
    """
    iu, ju = np.triu_indices(n_stim, k=1)
    pair = np.zeros((n_stim, n_stim), int)
    pair[iu, ju] = pair[ju, iu] = np.arange(iu.size)

    def ranked_rdm(x):  # (..., n_stim, feat) -> z-scored ranks of the upper triangle
        c = x - x.mean(-1, keepdims=True)
        c /= np.linalg.norm(c, axis=-1, keepdims=True)
        d = (1 - c @ np.swapaxes(c, -1, -2))[..., iu, ju]
        r = stats.rankdata(d, axis=-1)
        return (r - r.mean(-1, keepdims=True)) / r.std(-1, keepdims=True)

    brain = ranked_rdm(rng.normal(size=(n_sets, n_stim, 6)))  # (sets, pairs)
    x = rng.normal(size=(n_sets, n_stim, 6))
    layers = []
    for _ in range(n_layers):  # each layer a noisy version of the previous one
        x = x + 0.8 * rng.normal(size=x.shape)
        layers.append(ranked_rdm(x))
    layers = np.stack(layers, 1)  # (sets, layers, pairs)
    perms = np.argsort(rng.random((n_sets, n_perm, n_stim)), axis=-1)
    idx = pair[perms[..., iu], perms[..., ju]]  # (sets, perms, pairs)
    permuted = np.take_along_axis(layers[:, :, None, :], idx[:, None], axis=-1)
    null = np.einsum("sp,slkp->slk", brain, permuted) / iu.size
    observed = np.einsum("sp,slp->sl", brain, layers) / iu.size
    return observed, null


def test_best_layer_p_holds_its_size_under_the_null(rng):
    """200 datasets whose brain RDM is independent of 5 correlated model layers: the best
    layer's corrected p (the pipeline's best-layer table) rejects at alpha = 0.1 at the
    nominal rate (within a binomial 99% band); its uncorrected p rejects too often."""
    n_sets, n_layers, alpha, n_perm = 200, 5, 0.1, 99
    observed, null = _null_datasets(rng, n_sets, n_layers, 10, n_perm)
    p_raw = (1 + (null >= observed[..., None] - 1e-12).sum(-1)) / (1 + n_perm)
    fwe_hits = raw_hits = 0
    for s in range(n_sets):
        tests = {
            f"net:l{k}": xr.Dataset(
                {
                    "observed": observed[s, k],
                    "p_value": p_raw[s, k],
                    "null": ("permutation", null[s, k]),
                },
                attrs={"exact": False},
            )
            for k in range(n_layers)
        }
        (row,) = _best_layers({"b": tests}, "spearman")
        fwe_hits += row["p (FWE over layers)"] <= alpha
        raw_hits += row["p uncorrected (this layer)"] <= alpha
    lo, hi = stats.binom.ppf([0.005, 0.995], n_sets, alpha)
    assert lo <= fwe_hits <= hi, (fwe_hits, lo, hi)
    assert raw_hits > hi, (raw_hits, hi)  # the selection the correction removes


def test_layer_fwe_keeps_single_entries_and_groups_layers():
    null = np.array([[0.1, 0.9, 0.2], [0.8, 0.1, 0.3]])
    tests = {
        e: xr.Dataset(
            {"observed": obs, "p_value": p, "null": ("permutation", n)}, attrs={"exact": False}
        )
        for e, obs, p, n in zip(["m:a", "m:b"], [0.5, 0.7], [0.5, 0.25], null, strict=True)
    }
    tests["other"] = xr.Dataset(
        {"observed": 0.3, "p_value": 0.4, "null": ("permutation", [0.0, 0.5, 0.1])},
        attrs={"exact": False},
    )
    got = _layer_fwe(tests)
    # max over layers per permutation: [0.8, 0.9, 0.3]; 0.5 -> (1 + 2) / 4, 0.7 -> (1 + 2) / 4
    assert got == {"m:a": 0.75, "m:b": 0.75, "other": 0.4}


def test_score_heat_map_is_centred_at_zero():
    scores = xr.DataArray(
        [[0.10, 0.12], [0.11, -0.05]],
        dims=("model", "brain"),
        coords={"model": ["a", "b"], "brain": ["v1", "it"]},
    )
    fig = viz.plot_score_matrix(scores, cmap="RdBu_r", center=0.0)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert (lo, hi) == (-0.12, 0.12)  # ±max|value|, not min..max (-0.05..0.12)


@pytest.fixture
def courses():
    t = np.linspace(-0.1, 0.4, 21)
    names = [f"m{k}" for k in range(5)]
    sim = np.stack([np.sin(6 * t) * (k + 1) / 5 for k in range(5)])
    coords = {"model": names, "time": t}
    dims = ("model", "time")
    p = np.where(np.abs(sim) > 0.5, 0.01, 0.5)
    return xr.Dataset(
        {
            "similarity": xr.DataArray(sim, dims=dims, coords=coords),
            "band_low": xr.DataArray(
                -0.1 - 0.05 * np.arange(5)[:, None] + 0 * sim, dims=dims, coords=coords
            ),
            "band_high": xr.DataArray(0.1 + 0 * sim, dims=dims, coords=coords),
            "p_value_corrected": xr.DataArray(p, dims=dims, coords=coords),
        },
        attrs={"alpha": 0.05, "method": "pearson"},
    )


def test_time_courses_are_small_multiples_on_one_y_axis(courses):
    fig = plot_time_courses(courses, window=(0.1, 0.3))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [f"m{k}" for k in range(5)]
    assert len(fig.axes) == 6  # a 2 x 3 grid, the sixth cell hidden
    assert len({ax.get_ylim() for ax in shown}) == 1  # shared y axis
    for k, ax in enumerate(shown):  # each panel its own band, with that entry's bounds
        (band,) = [c for c in ax.collections if "null" in str(c.get_label())]
        ys = band.get_paths()[0].vertices[:, 1]
        assert np.isclose(ys.min(), -0.1 - 0.05 * k) and np.isclose(ys.max(), 0.1)
        sig = courses.p_value_corrected.isel(model=k).values < 0.05
        dots = [ln for ln in ax.get_lines() if ln.get_marker() == "."]
        assert sum(len(d.get_xdata()) for d in dots) == sig.sum()
    assert plot_time_courses(courses, ncols=5).axes[0].get_subplotspec().get_gridspec().ncols == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ncols": 0}, r"ncols must be a positive integer or None, got 0"),
        ({"alpha": 1.5}, r"alpha must be in \(0, 1\), got 1\.5"),
    ],
)
def test_time_courses_reject_bad_arguments(courses, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_time_courses(courses, **kwargs)
    with pytest.raises(ba.SchemaError, match=r"needs the Dataset of brainalign\.rsa\.time_res"):
        plot_time_courses(courses.similarity)
