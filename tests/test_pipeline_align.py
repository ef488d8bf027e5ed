"""The align analysis of a pipeline: measures per model entry, inference, network space."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import brainalign as ba
from brainalign import align
from brainalign.pipeline import SpecError

SPEC = """
name: al
seed: 3
brain:
  vt: {dataset: haxby2001}
models:
  net: {kind: random_network, n_layers: 3}
  cats:
    kind: categorical
    groups: {animate: [face, cat], place: [house], object: [chair, shoe, bottle, scissors],
             scrambled: [scrambledpix]}
analyses:
  align:
    measures: [cka, shape_metric]
    options: {cka: {estimator: song}}
    n_permutations: 19
    n_bootstrap: 20
"""


@pytest.fixture(scope="module")
def align_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("align")
    path = out / "spec.yaml"
    path.write_text(SPEC)
    return ba.run(path, out=out / "out"), path


def test_align_analysis_matches_the_api(align_run):
    res, path = align_run
    ds = res.tree["align/vt"].to_dataset()
    assert list(ds.measure.values) == ["cka", "shape_metric"]
    entries = list(ds.model.values)
    assert entries == ["net", "cats"]
    assert set(ds.data_vars) == {"statistic", "p_value", "ci_low", "ci_high"}
    # The same numbers from the Python API, on the run's own inputs (the source's stimulus
    # means and the model's features, from the source and model plug-ins).
    from brainalign.pipeline import load_spec
    from brainalign.pipeline._analysis import get_model_kind, get_source

    spec = load_spec(path)
    brain = get_source("haxby2001").load(spec["brain"]["vt"]).means
    ids = [str(s) for s in brain.stimulus.values]
    feats = get_model_kind("random_network").features("net", spec["models"]["net"], ids)
    for entry, f in feats.items():
        want = align.permutation_test(brain, f, "cka", estimator="song", n_permutations=19,
                                      seed=3)  # fmt: skip
        got = ds.sel(measure="cka", model=entry)
        assert_allclose(float(got.statistic), float(want.statistic), rtol=1e-10)
        assert_allclose(float(got.p_value), float(want.p_value))
        with pytest.warns(UserWarning, match="gives a descriptive spread, not a confidence"):
            ci = align.bootstrap_ci(brain, f, "shape_metric", n_bootstrap=20, seed=3)
        got = ds.sel(measure="shape_metric", model=entry)
        assert_allclose([float(got.ci_low), float(got.ci_high)],
                        [float(ci.ci_low), float(ci.ci_high)], rtol=1e-10)  # fmt: skip
    space = res.tree["align/networks"].to_dataset()
    names = [str(n) for n in space.distance.network_a.values]
    assert names == ["brain/vt", "net", "cats"]
    d = space.distance.values
    assert_allclose(d, d.T, atol=1e-12) and np.allclose(np.diag(d), 0)
    html = res.report.read_text()
    assert "Layer profile: cka, vt" in html and "The metric space of networks" in html
    assert "a descriptive spread, not a confidence interval" in html


def test_align_is_cached(align_run, tmp_path):
    res, path = align_run
    again = ba.run(path, out=res.report.parent)
    assert again.cache_hits.get("align") == 2


def test_align_spec_errors(tmp_path):
    def run(edit):
        p = tmp_path / "s.yaml"
        p.write_text(SPEC.replace(*edit))
        ba.run(p, out=tmp_path / "o", dry_run=True)

    with pytest.raises(SpecError, match=r"measures: invalid value 'ckaa'.*Did you mean 'cka'"):
        run(("[cka, shape_metric]", "[ckaa]"))
    with pytest.raises(SpecError, match=r"options\.cca: sets options of a measure not in"):
        run(("{cka: {estimator: song}}", "{cca: {}}"))
    with pytest.raises(SpecError, match=r"'word_similarity' gives no stimulus patterns"):
        run(("vt: {dataset: haxby2001}", "vt: {dataset: word_similarity, file: simlex999.txt}"))
