"""The tRSA analysis of a pipeline: threshold-grid maps stored and reported."""

from __future__ import annotations

import pytest
from numpy.testing import assert_allclose

import brainalign as ba
from brainalign.pipeline import SpecError

SPEC = """
name: t
seed: 0
brain:
  vt: {dataset: haxby2001}
models:
  cats:
    kind: categorical
    groups: {animate: [face, cat], place: [house], object: [chair, shoe, bottle, scissors],
             scrambled: [scrambledpix]}
  net: {kind: random_network, n_layers: 2}
analyses:
  rsa: {n_permutations: 10, split_half: false}
  trsa: {transform: rgtm, method: spearman, step: 0.1}
"""


def test_trsa_analysis_matches_the_api(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    res = ba.run(path, out=tmp_path / "out")
    grid = res.tree["trsa/vt"].dataset.similarity
    assert grid.dims == ("threshold", "model")
    assert list(grid.model.values) == ["cats", "net"]
    brain = res.tree["brain/vt"].dataset.rdm
    model = res.tree["models/vt"].dataset.rdm.sel(model="cats").drop_vars("model")
    with pytest.warns(UserWarning, match="NaN because a transformed RDM is constant"):
        ref = ba.trsa.grid_compare(brain, model, "spearman", grid=ba.trsa.threshold_grid(step=0.1))
    # The stored model RDMs are float32 (figures only), so compare at float32 precision.
    assert_allclose(grid.sel(model="cats").values, ref.values, rtol=1e-5, atol=1e-6)
    assert res.tree["trsa/vt"].dataset.similarity.attrs["n_undefined_cells"] > 0
    html = res.report.read_text()
    assert "tRSA threshold map" in html and "mean similarity per threshold family" in html
    assert "Model (layer) × brain similarity" in html  # the RSA score matrix of the summary


def test_trsa_spec_errors(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("transform: rgtm", "transform: rgtx"))
    with pytest.raises(SpecError, match=r"analyses\.trsa\.transform: invalid value 'rgtx'"):
        ba.run(path, out=tmp_path / "out")
    path.write_text(SPEC.replace("step: 0.1", "step: 0.7"))
    with pytest.raises(SpecError, match=r"analyses\.trsa\.step: must be in \(0, 0\.5\], got 0\.7"):
        ba.run(path, out=tmp_path / "out")
