import textwrap

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
            r"method, n_permutations, split_half\. Did you mean 'metric'\?",
        ),
        (("name: t", "nme: t"), r"line 2\): nme: unknown key 'nme'.*Did you mean 'name'\?"),
        (
            ("{kind: random_network}", "{kind: random_net}"),
            r"models\.m\.kind: invalid value 'random_net'; allowed: 'categorical', "
            r"'random_network'\. Did you mean 'random_network'\?",
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
            ("rsa: {}", "encoding: {}"),
            r"analyses\.encoding: invalid value 'encoding'; allowed: 'rsa'",
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
