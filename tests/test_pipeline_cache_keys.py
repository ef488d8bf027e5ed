"""Cache keys hold exactly what a unit depends on; the dry run says exactly what a run loads.

Each case runs a base spec once (shared, module-scoped), copies its output folder, changes
one thing in the spec, and checks, for every unit ("analysis/brain/model"):

1. the dry run's "cached" set equals the real run's "cached" set (the dry run tells the truth);
2. the units rerun ("to run" / "computed") are exactly those that depend on the change.
"""

from __future__ import annotations

import copy
import shutil

import pytest

import brainalign as ba
from brainalign.pipeline import load_spec, plan

GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}
MODELS = {
    "cats": {"kind": "categorical", "groups": GROUPS},
    "net": {"kind": "random_network", "n_layers": 1, "n_units": 16, "seed": 0},
}

FMRI = {
    "name": "keys_fmri",
    "seed": 0,
    "brain": {"vt": {"dataset": "haxby2001", "volume": "vt_slice", "preprocess": True}},
    "models": MODELS,
    "analyses": {
        # rsa, searchlight and encoding draw permutations (they depend on the seed); trsa
        # draws nothing.
        "rsa": {"method": "spearman", "n_permutations": 10, "split_half": False, "n_bootstrap": 0},
        "searchlight": {"radius": 8, "method": "spearman"},
        "encoding": {"alphas": [1, 10], "cv": 2, "n_permutations": 3, "n_components": 3},
        "trsa": {"step": 0.25},
        "ricci": {
            "k": 3,
            "n_permutations": 10,
            "n_bootstrap": 0,
            "flow_iterations": 2,
            "community_method": "louvain",
        },
    },
}

MEEG = {
    "name": "keys_meeg",
    "seed": 0,
    "brain": {"eeg": {"dataset": "eeg_haxby_sim", "baseline": [None, 0], "rsa_window": [0, 0.35]}},
    "models": MODELS,
    "analyses": {
        "rsa": {"method": "pearson", "n_permutations": 10, "n_bootstrap": 0},
        "time_resolved": {"method": "pearson", "n_permutations": 10},
    },
}
BASES = {"fmri": FMRI, "meeg": MEEG}


def _edit(spec: dict, path: str, value) -> dict:
    """A deep copy of ``spec`` with the dotted key ``path`` set to ``value``."""
    new = copy.deepcopy(spec)
    *parents, last = path.split(".")
    node = new
    for key in parents:
        node = node[key]
    assert last in node, f"{path} is not in the base spec"  # a change, not an addition
    assert node[last] != value, f"{path} is already {value!r}"
    node[last] = value
    return new


# (id, base, dotted key, new value, analyses rerun, models rerun, brains rerun):
# a unit is expected to rerun when its analysis, its model or its brain is listed.
CASES = [
    # fMRI runs are the slow ones (about 3 s each), so the cases that the M/EEG spec shows
    # as well (a second model change, rsa.n_permutations) are on the M/EEG spec only.
    ("fmri-unchanged", "fmri", None, None, (), (), ()),
    # RSA's own comparison method: searchlight has its own method, encoding never sees RDMs,
    # tRSA has its own method and Ricci works on the RDMs, not on their comparison.
    ("fmri-rsa.method", "fmri", "analyses.rsa.method", "pearson", ("rsa",), (), ()),
    (
        "fmri-searchlight.radius",
        "fmri",
        "analyses.searchlight.radius",
        6,
        ("searchlight",),
        (),
        (),
    ),
    ("fmri-encoding.alphas", "fmri", "analyses.encoding.alphas", [1, 100], ("encoding",), (), ()),
    ("fmri-trsa.step", "fmri", "analyses.trsa.step", 0.5, ("trsa",), (), ()),
    ("fmri-ricci.k", "fmri", "analyses.ricci.k", 2, ("ricci",), (), ()),
    ("fmri-seed", "fmri", "seed", 1, ("rsa", "searchlight", "encoding", "ricci"), (), ()),
    ("fmri-model.net.seed", "fmri", "models.net.seed", 1, (), ("net",), ()),
    ("fmri-brain.preprocess", "fmri", "brain.vt.preprocess", False, (), (), ("vt",)),
    ("meeg-unchanged", "meeg", None, None, (), (), ()),
    ("meeg-rsa.method", "meeg", "analyses.rsa.method", "spearman", ("rsa",), (), ()),
    ("meeg-rsa.n_permutations", "meeg", "analyses.rsa.n_permutations", 20, ("rsa",), (), ()),
    (
        "meeg-time_resolved.n_permutations",
        "meeg",
        "analyses.time_resolved.n_permutations",
        20,
        ("time_resolved",),
        (),
        (),
    ),
    ("meeg-seed", "meeg", "seed", 1, ("rsa", "time_resolved"), (), ()),
    ("meeg-model.net.seed", "meeg", "models.net.seed", 1, (), ("net",), ()),
    (
        "meeg-model.cats.groups",
        "meeg",
        "models.cats.groups",
        {**GROUPS, "animate": ["face"], "cat": ["cat"]},
        (),
        ("cats",),
        (),
    ),
    ("meeg-brain.baseline", "meeg", "brain.eeg.baseline", [-0.05, 0], (), (), ("eeg",)),
    # the window averaged for the brain RDM: the time courses use every sample
    ("meeg-brain.rsa_window", "meeg", "brain.eeg.rsa_window", [0.1, 0.3], ("rsa",), (), ()),
]


@pytest.fixture(scope="module", autouse=True)
def _no_figure_rendering():
    """Skip drawing the report's PNGs: about 3 s per run, and no part of what is tested here.

    The report itself (figures included) is tested in the other pipeline tests.
    """
    from brainalign.report import _report

    def placeholder(fig, dpi, mathtext):
        return ""

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_report, "_png", placeholder, raising=False)  # absent: slower, still right
        yield


def _unit_keys(spec) -> set[str]:
    return {u.key for u in plan(spec)}


def _split(status: dict[str, str], done: str) -> tuple[set[str], set[str]]:
    """(cached, rerun) unit keys of a status map whose other value is ``done``."""
    bad = {k: v for k, v in status.items() if v not in ("cached", done)}
    assert not bad, f"statuses other than 'cached' / {done!r}: {bad}"
    cached = {k for k, v in status.items() if v == "cached"}
    return cached, set(status) - cached


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory):
    """The output folder of one run of each base spec, computed once for all cases."""
    runs = {}

    def get(name):
        if name not in runs:
            out = tmp_path_factory.mktemp(f"base-{name}") / "out"
            before = ba.run(BASES[name], out=out, dry_run=True).status
            res = ba.run(BASES[name], out=out)
            runs[name] = (out, before, res.status)
        return runs[name]

    return get


@pytest.mark.parametrize("name", list(BASES))
def test_first_run_computes_every_unit(base_runs, name):
    _, before, status = base_runs(name)
    units = _unit_keys(BASES[name])
    assert before == dict.fromkeys(units, "to run")  # an empty folder: nothing cached
    assert status == dict.fromkeys(units, "computed")


@pytest.mark.parametrize(
    ("base", "path", "value", "analyses", "models", "brains"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_change_reruns_exactly_the_units_that_depend_on_it(
    base_runs, tmp_path, base, path, value, analyses, models, brains
):
    src, _, _ = base_runs(base)
    out = tmp_path / "out"
    shutil.copytree(src, out)
    spec = BASES[base] if path is None else _edit(BASES[base], path, value)
    units = _unit_keys(spec)
    assert units == _unit_keys(BASES[base])  # the change adds and removes no unit
    for a in analyses:  # each case names analyses and models that are there
        assert any(k.startswith(f"{a}/") for k in units), a
    for m in models:
        assert any(k.endswith(f"/{m}") for k in units), m
    expected = {
        k
        for k in units
        if k.split("/")[0] in analyses or k.split("/")[1] in brains or k.split("/")[2] in models
    }

    dry = ba.run(spec, out=out, dry_run=True).status
    assert set(dry) == units
    dry_cached, dry_rerun = _split(dry, "to run")
    real = ba.run(spec, out=out).status
    assert set(real) == units
    real_cached, real_rerun = _split(real, "computed")

    # (1) the dry run says exactly what the run loads from the cache
    assert dry_cached == real_cached
    # (2) exactly the units that depend on the change are rerun
    assert sorted(dry_rerun) == sorted(expected)
    assert sorted(real_rerun) == sorted(expected)


def _single_analysis_spec(analysis: str) -> dict:
    spec = copy.deepcopy(FMRI)
    spec["name"] = f"only_{analysis}"
    spec["analyses"] = {analysis: FMRI["analyses"][analysis]}
    return spec


@pytest.mark.parametrize("analysis", ["encoding", "searchlight"])
def test_rsa_is_optional(tmp_path, analysis):
    spec = _single_analysis_spec(analysis)
    assert "rsa" not in load_spec(spec)["analyses"]  # no RSA section, none added
    units = _unit_keys(spec)
    assert units == {f"{analysis}/vt/{m}" for m in MODELS}
    out = tmp_path / "out"
    assert ba.run(spec, out=out, dry_run=True).status == dict.fromkeys(units, "to run")
    first = ba.run(spec, out=out)
    assert first.status == dict.fromkeys(units, "computed")
    ds = first.tree[f"{analysis}/vt"].dataset
    assert sorted(ds.model.values) == sorted(MODELS)
    assert ba.load(first.results)[f"{analysis}/vt"].dataset.sizes == ds.sizes
    assert ba.run(spec, out=out, dry_run=True).status == dict.fromkeys(units, "cached")
    assert ba.run(spec, out=out).status == dict.fromkeys(units, "cached")
