"""The encoding analysis of a pipeline: planned, computed, cached, stored and reported."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.model_selection import LeaveOneGroupOut

import brainalign as ba
from brainalign.pipeline import SpecError

SPEC = """
name: enc
seed: 0
brain:
  vt: {dataset: haxby2001}
models:
  cats:
    kind: categorical
    groups: {animate: [face, cat], place: [house], object: [chair, shoe, bottle, scissors],
             scrambled: [scrambledpix]}
analyses:
  rsa: {n_permutations: 10, split_half: false}
  encoding: {alphas: [1, 100, 10000], n_permutations: 5}
"""


def test_encoding_analysis_runs_and_matches_the_api(tmp_path, haxby):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    res = ba.run(path, out=tmp_path / "out")
    ds = res.tree["encoding/vt"].dataset
    assert ds.cv_score.dims == ("model", "voxel")
    assert set(ds.data_vars) >= {"cv_score", "best_alpha", "p_value", "p_fwe", "p_fdr"}
    # The same numbers from the Python API: one-hot groups of each trial's stimulus.
    groups = {"face": 0, "cat": 0, "house": 1, "chair": 2, "shoe": 2, "bottle": 2}
    groups.update({"scissors": 2, "scrambledpix": 3})
    codes = np.array([groups[s] for s in haxby.stimulus.values])
    X = (codes[:, None] == np.arange(4)[None, :]).astype(float)
    ref = ba.encoding.ridge_cv(
        X, haxby, [1, 100, 10000], cv=LeaveOneGroupOut(), groups=haxby.run.values
    )
    assert_allclose(ds.cv_score.sel(model="cats").values, ref.cv_score.values, rtol=1e-8)
    # corrected map: 5 permutations are too few for p_fwe <= 0.05 (1 / 6 at best), and the
    # stored null maxima are the maxima over voxels of the permuted maps behind p_fwe
    assert ds.null_max.dims == ("model", "permutation") and ds.null_max.shape == (1, 5)
    assert float(ds.fwe_threshold.sel(model="cats")) == np.inf
    assert not ds.significant_fwe.any()
    null_max = ds.null_max.sel(model="cats").values
    count = (null_max[:, None] >= ds.cv_score.sel(model="cats").values[None]).sum(0)
    assert_allclose(ds.p_fwe.sel(model="cats").values, (1 + count) / 6, rtol=0, atol=1e-15)
    assert ds.attrs["n_stimuli"] == 8 and int(ds.feature_rank.sel(model="cats")) == 3
    html = res.report.read_text()
    assert "Encoding: model × brain" in html and "Encoding map: vt from cats" in html
    assert "max-statistic family-wise error over voxels (5 stimulus permutations" in html
    assert "What this can show" in html and "What it cannot" in html
    # A second run loads the encoding results from the cache.
    again = ba.run(path, out=tmp_path / "out")
    assert again.cache_hits.get("encoding") == 1
    assert ba.run(path, out=tmp_path / "out", dry_run=True).status["encoding/vt/cats"] == "cached"


def test_encoding_needs_responses(tmp_path):
    spec = SPEC.replace(
        "vt: {dataset: haxby2001}", "vt: {dataset: word_similarity, file: simlex999.txt}"
    )
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    with pytest.raises(SpecError, match=r"brain\.vt\.dataset: 'word_similarity' has no responses"):
        ba.run(path, out=tmp_path / "out")


def test_rsa_settings_do_not_invalidate_the_encoding_results(tmp_path):
    # Issue 18: the encoding key held the brain RDM's key, and so the RSA settings: changing
    # only analyses.rsa.method recomputed every encoding model. An encoding fit never sees
    # the RDM; its key holds the brain data, the model, the encoding settings and the seed.
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    first = ba.run(path, out=tmp_path / "out")
    other = tmp_path / "other.yaml"
    other.write_text(
        SPEC.replace("rsa: {n_permutations: 10", "rsa: {method: pearson, n_permutations: 10")
    )
    assert ba.run(other, out=tmp_path / "out", dry_run=True).status["encoding/vt/cats"] == "cached"
    again = ba.run(other, out=tmp_path / "out")
    assert again.cache_hits.get("encoding") == 1 and not again.cache_misses.get("encoding")
    assert again.cache_misses.get("unit") == 1  # the RSA unit itself is recomputed
    a, b = first.tree["encoding/vt"].dataset, again.tree["encoding/vt"].dataset
    assert_allclose(a.cv_score.values, b.cv_score.values, rtol=0, atol=0)
    changed = tmp_path / "changed.yaml"  # an encoding setting does change the key
    changed.write_text(SPEC.replace("alphas: [1, 100, 10000]", "alphas: [1, 100]"))
    assert (
        ba.run(changed, out=tmp_path / "out", dry_run=True).status["encoding/vt/cats"] == "to run"
    )


NET = """
  net:
    kind: random_network
    n_layers: 1
    n_units: 16
    seed: 0
"""


def test_an_entry_spanning_every_stimulus_contrast_is_refused(tmp_path):
    # 16 random features over 8 stimuli reach rank 7 (= 8 - 1) after centring: a ridge on
    # them fits any pattern of the 8 stimulus means, as would any other such model.
    spec = SPEC.replace("analyses:", NET.lstrip("\n") + "analyses:")
    path = tmp_path / "spec.yaml"
    path.write_text(spec.replace("n_permutations: 5}", "n_permutations: 0}"))
    with pytest.raises(
        ValueError,
        match=r"Encoding model entry 'net(:\S+)?' has 16 features \(rank 7 over the stimuli "
        r"after centring\) for only 8 distinct stimuli in brain\.vt.*Set "
        r"analyses\.encoding\.n_components to at most 6",
    ):
        ba.run(path, out=tmp_path / "out")


def test_n_components_fits_each_entrys_first_principal_components(tmp_path, haxby):
    from sklearn.decomposition import PCA

    spec = SPEC.replace("n_permutations: 5}", "n_permutations: 0, n_components: 2}")
    spec = spec.replace("  rsa: {n_permutations: 10, split_half: false}\n", "")  # encoding only
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    ds = ba.run(path, out=tmp_path / "out").tree["encoding/vt"].dataset
    assert int(ds.n_components.sel(model="cats")) == 2
    # reference: scikit-learn's PCA of the one-hot group features over the 8 stimuli, each
    # trial given its stimulus's scores (the sign of a component does not change a ridge)
    groups = {"face": 0, "cat": 0, "house": 1, "chair": 2, "shoe": 2, "bottle": 2}
    groups.update({"scissors": 2, "scrambledpix": 3})
    ids = list(groups)
    onehot = (np.array([groups[s] for s in ids])[:, None] == np.arange(4)).astype(float)
    scores = PCA(n_components=2, svd_solver="full").fit_transform(onehot)
    X = scores[[ids.index(s) for s in haxby.stimulus.values]]
    ref = ba.encoding.ridge_cv(
        X, haxby, [1, 100, 10000], cv=LeaveOneGroupOut(), groups=haxby.run.values
    )
    assert_allclose(ds.cv_score.sel(model="cats").values, ref.cv_score.values, rtol=1e-8)
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.replace("n_components: 2", "n_components: 7"))
    with pytest.raises(
        ValueError, match=r"analyses\.encoding\.n_components must be < 7 .*; got 7\."
    ):
        ba.run(bad, out=tmp_path / "bad")
