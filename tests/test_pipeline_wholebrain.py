"""The whole-brain (25 mm) Haxby source: loader, spec, cache keys, maps in the report."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import spearmanr

import brainalign as ba
from brainalign.datasets import data_dir, load_haxby_wholebrain
from brainalign.pipeline import SpecError, load_spec

SUB = data_dir() / "haxby2001" / "openfmri_sub001" / "sub001"
GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}
SPEC = """
name: wholebrain
seed: 0
brain:
  wb: {dataset: haxby2001, volume: whole_brain_25mm}
models:
  cats:
    kind: categorical
    groups: {animate: [face, cat], place: [house], object: [chair, shoe, bottle, scissors],
             scrambled: [scrambledpix]}
analyses:
  rsa: {n_permutations: 10, split_half: false}
  searchlight: {radius: 40}
  encoding: {alphas: [1, 100, 10000]}
"""


@pytest.fixture(scope="module")
def wholebrain():
    return load_haxby_wholebrain()


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wholebrain")
    path = folder / "spec.yaml"
    path.write_text(SPEC)
    return ba.run(path, out=folder / "out")


def _raw_block_mean(run: int, condition: str, preprocess: bool) -> np.ndarray:
    """Mean of one category block's volumes, from the raw files (nibabel + numpy only)."""
    img = nib.load(SUB / "BOLD" / f"task001_run{run:03d}" / "bold_25mm.nii.gz")
    mask = np.asarray(nib.load(SUB / "masks" / "25mm" / "brain.nii.gz").dataobj) > 0
    series = np.asarray(img.dataobj, dtype=np.float64)[mask].T  # (121 volumes, voxels)
    if preprocess:  # linear detrend + z-score of each voxel over the whole run
        t = np.arange(series.shape[0])
        fit = np.polynomial.polynomial.polyfit(t, series, 1)
        resid = series - (fit[0] + np.outer(t, fit[1]))
        series = resid / resid.std(axis=0)
    onset, duration, _ = np.loadtxt(
        SUB / "model" / "model001" / "onsets" / f"task001_run{run:03d}" / f"{condition}.txt"
    )
    times = np.arange(series.shape[0]) * 2.5
    return series[(times >= onset) & (times < onset + duration)].mean(axis=0)


def test_loader_shapes_coords_and_block_means(wholebrain):
    da = wholebrain
    assert da.dims == ("trial", "voxel")
    assert da.shape == (96, 129)  # 12 runs x 8 categories, 129 voxels in the brain mask
    assert sorted(set(da.stimulus.values)) == sorted(ba.datasets.HAXBY_CATEGORIES)
    assert (da.groupby("stimulus").count("trial").values[:, 0] == 12).all()
    assert set(da.n_volumes.values) == {9}
    # voxel coordinates: the mask's voxels, and mm from its affine
    mask_img = nib.load(SUB / "masks" / "25mm" / "brain.nii.gz")
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    assert_allclose(np.column_stack([da.i, da.j, da.k]), ijk)
    xyz = nib.affines.apply_affine(mask_img.affine, ijk)
    assert_allclose(np.column_stack([da.x, da.y, da.z]), xyz)
    assert "MNI152" in da.attrs["space"] and da.attrs["voxel_size_mm"] == 25.0
    # face is cond008 (condition_key.txt), house cond001
    face3 = da.isel(trial=np.flatnonzero((da.run.values == 3) & (da.stimulus.values == "face")))
    assert_allclose(face3.values[0], _raw_block_mean(3, "cond008", True), rtol=1e-10)
    raw = load_haxby_wholebrain(preprocess=False, runs=[7])
    assert raw.sizes["trial"] == 8
    house7 = raw.isel(trial=np.flatnonzero(raw.stimulus.values == "house"))
    assert_allclose(house7.values[0], _raw_block_mean(7, "cond001", False), rtol=1e-12)


def test_loader_errors():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for the 'mask' parameter. Allowed values are 'brain', "
        r"'gray', 'white'; got 'vt'",
    ):
        load_haxby_wholebrain(mask="vt")
    with pytest.raises(ValueError, match=r"'runs' parameter.*got 13"):
        load_haxby_wholebrain(runs=[1, 13])


def test_spec_volume_and_mask_options():
    base = {
        "name": "x",
        "models": {"cats": {"kind": "categorical", "groups": GROUPS}},
        "analyses": {"rsa": {}},
    }
    spec = load_spec({**base, "brain": {"vt": {"dataset": "haxby2001"}}})
    assert spec["brain"]["vt"]["volume"] == "vt_slice" and spec["brain"]["vt"]["mask"] is None
    bad = {"wb": {"dataset": "haxby2001", "volume": "whole_brain"}}
    with pytest.raises(
        SpecError,
        match=r"brain\.wb\.volume: invalid value 'whole_brain'; allowed: 'vt_slice', "
        r"'whole_brain_25mm'\. Did you mean 'whole_brain_25mm'",
    ):
        load_spec({**base, "brain": bad})
    bad = {"vt": {"dataset": "haxby2001", "mask": "gray"}}
    with pytest.raises(
        SpecError, match=r"brain\.vt\.mask: applies to volume 'whole_brain_25mm' only.*'vt_slice'"
    ):
        load_spec({**base, "brain": bad})
    bad = {"wb": {"dataset": "haxby2001", "volume": "whole_brain_25mm", "mask": "vt"}}
    with pytest.raises(SpecError, match=r"brain\.wb\.mask: invalid value 'vt'; allowed: 'brain'"):
        load_spec({**base, "brain": bad})
    bad = {"s": {"dataset": "word_similarity", "file": "simlex999.txt", "volume": "vt_slice2"}}
    with pytest.raises(SpecError, match=r"brain\.s\.volume: is a haxby2001 option.*'vt_slice2'"):
        load_spec({**base, "brain": bad})


def test_cache_key_covers_the_files_read():
    from brainalign.pipeline.sources import Haxby2001

    src = load_spec(
        {
            "name": "x",
            "brain": {"wb": {"dataset": "haxby2001", "volume": "whole_brain_25mm"}},
            "models": {"cats": {"kind": "categorical", "groups": GROUPS}},
            "analyses": {"rsa": {}},
        }
    )["brain"]["wb"]
    files = Haxby2001().payload(src)["files"]
    runs = [f for f in files if f.endswith("bold_25mm.nii.gz")]
    assert len(runs) == 12 and len([f for f in files if "/onsets/" in f]) == 96
    assert "openfmri_sub001/sub001/masks/25mm/brain.nii.gz" in files
    manifest = ba.datasets.get_manifest("haxby2001")["files"]
    assert all(files[f] == manifest[f] for f in files)  # the manifest's sha256 of each
    gray = Haxby2001().payload({**src, "mask": "gray"})["files"]
    assert "openfmri_sub001/sub001/masks/25mm/gray.nii.gz" in gray


def test_pipeline_report_has_glass_brain_and_surface_maps(pipeline_run):
    html = pipeline_run.report.read_text()
    searchlight = html[html.index('<section id="searchlight">') :]
    searchlight = searchlight[: searchlight.index("</section>")]
    titles = re.findall(r"<h3[^>]*>([^<]*)</h3>", searchlight)
    assert titles == [
        "Searchlight: wb vs cats",
        "Searchlight (glass brain): wb vs cats",
        "Searchlight (surface): wb vs cats",
    ]
    assert len(re.findall(r"data:image/png;base64", searchlight)) == 3
    assert "fsaverage5" in searchlight and "approximately" in searchlight
    dice = float(re.search(r"Dice (0\.\d+)", searchlight).group(1))
    assert 0.75 < dice < 0.9
    encoding = html[html.index('<section id="encoding">') :]
    encoding = encoding[: encoding.index("</section>")]
    for view in ("", " (glass brain)", " (surface)"):
        assert f"Encoding map{view}: wb from cats" in encoding


def test_searchlight_value_matches_an_independent_computation(pipeline_run, wholebrain):
    sl = pipeline_run.tree["searchlight/wb"].dataset.similarity.sel(model="cats")
    assert sl.sizes["voxel"] == 129
    v = int(np.argmax(sl.patch_size.values))  # a voxel with a full 40 mm neighbourhood
    xyz = np.column_stack([wholebrain.x, wholebrain.y, wholebrain.z])
    patch = np.linalg.norm(xyz - xyz[v], axis=1) < 40
    assert patch.sum() == int(sl.patch_size[v]) == 19  # itself, 6 faces and 12 edges
    ids = list(ba.datasets.HAXBY_CATEGORIES)
    labels = wholebrain.stimulus.values
    means = np.stack([wholebrain.values[labels == s][:, patch].mean(axis=0) for s in ids])
    brain_rdm = 1 - np.corrcoef(means)
    group = {s: g for g, members in GROUPS.items() for s in members}
    model_rdm = np.array([[float(group[a] != group[b]) for b in ids] for a in ids])
    iu = np.triu_indices(len(ids), 1)
    expected = spearmanr(brain_rdm[iu], model_rdm[iu]).statistic
    assert float(sl[v]) == pytest.approx(expected, abs=1e-10)
    # the encoding map covers the same voxels
    enc = pipeline_run.tree["encoding/wb"].dataset.cv_score.sel(model="cats")
    assert_allclose(enc.i.values, wholebrain.i.values)


def test_corrected_searchlight_map_in_results_and_report(pipeline_run, wholebrain):
    # one subject: the map is also tested by 1000 stimulus-label permutations of the model
    # RDM (the searchlight's default), the maximum over the map giving FWE p-values
    ds = pipeline_run.tree["searchlight/wb"].dataset
    assert ds.attrs["n_permutations"] == 1000 and ds.attrs["fwe_alpha"] == 0.05
    assert ds.null_max.dims == ("model", "permutation") and ds.null_max.shape == (1, 1000)
    sim = ds.similarity.sel(model="cats").values
    null_max = ds.null_max.sel(model="cats").values
    # p_fwe recounted from the stored null maxima; the threshold separates the same voxels
    count = (null_max[:, None] >= sim[None]).sum(0)
    assert_allclose(ds.p_fwe.sel(model="cats").values, (1 + count) / 1001, rtol=0, atol=1e-15)
    threshold = float(ds.fwe_threshold.sel(model="cats"))
    assert threshold == np.sort(null_max)[::-1][49]  # floor(0.05 * 1001) = 50th largest
    assert_allclose(ds.significant_fwe.sel(model="cats").values, sim > threshold)
    html = pipeline_run.report.read_text()
    searchlight = html[html.index('<section id="searchlight">') :]
    searchlight = searchlight[: searchlight.index("</section>")]
    assert "max-statistic family-wise error (1000 stimulus-label permutations" in searchlight
    assert "Top: the unthresholded map; below: the voxels with p_FWE ≤ 0.05" in searchlight
