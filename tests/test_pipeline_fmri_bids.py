"""``dataset: fmri_bids``: BIDS fMRI with fMRIPrep derivatives, one subject or several.

The fixture is a tiny fMRIPrep-style tree written from the shipped Haxby 2001 OpenFMRI subject
(25 mm whole-brain BOLD): three pseudo-subjects made of runs 1-4, 5-8 and 9-12, with the raw
events.tsv from the OpenFMRI onset files and the 25 mm brain mask as fMRIPrep's brain mask.
"""

import json
import shutil
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import brainalign as ba
import brainalign.pipeline.sources.fmri_bids  # registers the source
from brainalign import rsa
from brainalign.data import average_trials
from brainalign.datasets import get_manifest, wholebrain_mask_path
from brainalign.loaders.fmri import load_bold, read_openfmri_events
from brainalign.pipeline import SpecError

SUB = get_manifest("haxby2001")["path"] / "openfmri_sub001"
KEY = SUB / "models" / "model001" / "condition_key.txt"
TASK = "objects"
SPACE = "MNI152NLin2009cAsym"
SUBJECTS = {"01": [1, 2, 3, 4], "02": [5, 6, 7, 8], "03": [9, 10, 11, 12]}
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
GROUPS = {
    "animate": ["face", "cat"],
    "object": ["shoe", "bottle", "scissors", "chair"],
    "place": ["house"],
    "scrambled": ["scrambledpix"],
}


def _confounds(n: int, seed: int) -> pd.DataFrame:
    """Simulated motion: the shipped data has no motion estimates, so these are small,
    deterministic drifts (plus a derivative column whose first row is n/a, as fMRIPrep's)."""
    t = np.arange(n) / n
    cols = {c: 0.01 * (k + 1) * np.sin(2 * np.pi * t * (k + seed + 1)) for k, c in
            enumerate(MOTION)}  # fmt: skip
    cols["white_matter"] = 100 + t
    cols["csf"] = 200 - t
    table = pd.DataFrame(cols)
    table["trans_x_derivative1"] = table["trans_x"].diff()
    return table


def _name(sub: str, run: int) -> str:
    return f"sub-{sub}_task-{TASK}_run-{run:02d}"


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmri_bids") / "bids"
    prep = root / "derivatives" / "fmriprep"
    for folder, kind in ((root, "raw"), (prep, "derivative")):
        folder.mkdir(parents=True)
        info = {"Name": f"haxby {kind}", "BIDSVersion": "1.8.0", "DatasetType": kind}
        (folder / "dataset_description.json").write_text(json.dumps(info))
    for sub, runs in SUBJECTS.items():
        func, raw = prep / f"sub-{sub}" / "func", root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        raw.mkdir(parents=True)
        for r in runs:
            name = _name(sub, r)
            bold = SUB / "sub001" / "BOLD" / f"task001_run{r:03d}" / "bold_25mm.nii.gz"
            (func / f"{name}_space-{SPACE}_desc-preproc_bold.nii.gz").symlink_to(bold)
            shutil.copy(wholebrain_mask_path("brain"),
                        func / f"{name}_space-{SPACE}_desc-brain_mask.nii.gz")  # fmt: skip
            _confounds(121, r).to_csv(
                func / f"{name}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                na_rep="n/a",
            )  # fmt: skip
            onsets = SUB / "sub001" / "model" / "model001" / "onsets" / f"task001_run{r:03d}"
            ev = read_openfmri_events(onsets, KEY)[["onset", "duration", "trial_type"]]
            ev["category"] = ev["trial_type"]
            ev.to_csv(raw / f"{name}_events.tsv", sep="\t", index=False)
    return root


def _spec(root, analyses=None, **brain):
    return {
        "name": "fmri",
        "brain": {"bold": {"dataset": "fmri_bids", "root": str(root), "task": TASK, **brain}},
        "models": {"cat": {"kind": "categorical", "groups": GROUPS}},
        "analyses": analyses or {"rsa": {"n_permutations": 50, "n_bootstrap": 100}},
    }


def _direct_rdm(root: Path, sub: str, runs: list[int], columns=MOTION):
    """A subject's RDM straight from load_bold on the same files."""
    func = root / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
    bolds = [func / f"{_name(sub, r)}_space-{SPACE}_desc-preproc_bold.nii.gz" for r in runs]
    conf = [
        pd.read_csv(func / f"{_name(sub, r)}_desc-confounds_timeseries.tsv", sep="\t")[columns]
        for r in runs
    ]
    events = [root / f"sub-{sub}" / "func" / f"{_name(sub, r)}_events.tsv" for r in runs]
    mask = func / f"{_name(sub, runs[0])}_space-{SPACE}_desc-brain_mask.nii.gz"
    trials = load_bold([str(b) for b in bolds], events, mask=str(mask), confounds=conf,
                       run_labels=runs)  # fmt: skip
    return rsa.rdm(average_trials(trials), "correlation")


@pytest.fixture(scope="module")
def group_run(bids, tmp_path_factory):
    return ba.run(_spec(bids), out=tmp_path_factory.mktemp("out") / "out")


def test_group_rdm_is_the_mean_of_the_subjects_glm_rdms(group_run, bids):
    direct = {f"sub-{s}": _direct_rdm(bids, s, runs) for s, runs in SUBJECTS.items()}
    brain = group_run.tree["brain/bold"].to_dataset()
    ids = list(brain.rdm.stimulus_a.values)
    assert sorted(ids) == sorted(s for g in GROUPS.values() for s in g)
    expected = np.mean([r.sel(stimulus_a=ids, stimulus_b=ids).values for r in direct.values()], 0)
    np.testing.assert_allclose(brain.rdm.values, expected, atol=1e-8, rtol=0)
    attrs = group_run.tree["brain/bold"].attrs
    assert attrs["n_subjects"] == 3 and attrs["subjects"] == "sub-01, sub-02, sub-03"
    assert attrs["n_voxels"] == 129 and attrs["confounds"] == ", ".join(MOTION)
    # 12 BOLD + 12 confounds + 12 events + 3 masks, each hashed
    assert attrs["n_files"] == 39 and "sub-02_task-objects_run-05_events.tsv" in attrs["source"]
    res = group_run.tree["rsa/bold"].to_dataset()
    assert res.attrs["n_subjects"] == 3
    for var in ("group_mean", "group_p", "similarity", "p_value"):
        assert np.isfinite(res[var].values).all(), var
    model = rsa.categorical_rdm(GROUPS)
    per = [rsa.compare(r.sel(stimulus_a=ids, stimulus_b=ids), model.sel(stimulus_a=ids,
           stimulus_b=ids), method="spearman") for r in direct.values()]  # fmt: skip
    np.testing.assert_allclose(res.group_mean.sel(model="cat"), np.mean(per), atol=1e-8)
    html = group_run.report.read_text()
    assert "Group level: models against 3 subjects (bold)" in html
    assert "preprocessed by fMRIPrep" in html


def test_one_subject_other_column_and_confounds(bids, tmp_path):
    from brainalign.pipeline import load_spec
    from brainalign.pipeline.sources.fmri_bids import FmriBids

    cols = ["trans_x", "csf", "trans_x_derivative1"]  # its first row is n/a: 0
    src = load_spec(_spec(bids, subjects=["02"], confounds=cols, stimulus_column="category"))
    src = src["brain"]["bold"]
    data = FmriBids().load(src)
    assert list(data.subjects) == ["sub-02"] and data.trials is not None
    assert sorted(set(data.trials.run.values.tolist())) == [5, 6, 7, 8]
    func = bids / "derivatives" / "fmriprep" / "sub-02" / "func"
    conf = [
        pd.read_csv(func / f"{_name('02', r)}_desc-confounds_timeseries.tsv", sep="\t")[
            cols
        ].fillna(0.0)
        for r in SUBJECTS["02"]
    ]
    bolds = [str(func / f"{_name('02', r)}_space-{SPACE}_desc-preproc_bold.nii.gz")
             for r in SUBJECTS["02"]]  # fmt: skip
    events = [bids / "sub-02" / "func" / f"{_name('02', r)}_events.tsv" for r in SUBJECTS["02"]]
    direct = load_bold(bolds, events, mask=str(wholebrain_mask_path("brain")), confounds=conf,
                       run_labels=SUBJECTS["02"])  # fmt: skip
    np.testing.assert_allclose(data.trials.values, direct.values, atol=1e-10)
    brain = FmriBids().brain(src, data, "correlation")
    assert "subjects" not in brain
    bg = FmriBids().background(src)
    assert bg["mni"] is True and bg["bg"].shape == (6, 10, 10)


def _edit(bids: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(bids, root, symlinks=True)
    return root


def test_errors_name_what_exists(bids, tmp_path):
    with pytest.raises(SpecError, match=r"fMRIPrep folder .*does not exist"):
        ba.run(_spec(bids, derivatives=str(tmp_path / "nope")), out=tmp_path / "o1")
    with pytest.raises(SpecError, match=r"'sub-09' not found.*subjects: 'sub-01', 'sub-02'"):
        ba.run(_spec(bids, subjects=["09"]), out=tmp_path / "o2")
    spec = _spec(bids)
    spec["brain"]["bold"]["task"] = "faces"
    with pytest.raises(SpecError, match=r"no preprocessed BOLD of task 'faces'.*tasks.*'objects'"):
        ba.run(spec, out=tmp_path / "o3")
    with pytest.raises(ValueError, match=r"'wobble' are not in .*its columns: 'trans_x'"):
        ba.run(_spec(bids, subjects=["01"], confounds=["wobble"]), out=tmp_path / "o4")
    with pytest.raises(ValueError, match=r"has no column 'stim'; its columns: 'onset'"):
        ba.run(_spec(bids, subjects=["01"], stimulus_column="stim"), out=tmp_path / "o5")
    with pytest.raises(SpecError, match=r"confounds"):
        ba.run(_spec(bids, confounds="everything"), out=tmp_path / "o6")


def test_confounds_with_another_row_count(bids, tmp_path):
    root = _edit(bids, tmp_path)
    conf = (root / "derivatives" / "fmriprep" / "sub-01" / "func"
            / f"{_name('01', 2)}_desc-confounds_timeseries.tsv")  # fmt: skip
    _confounds(100, 2).to_csv(conf, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(ValueError, match=r"has 100 rows but its BOLD run has 121 volumes"):
        ba.run(_spec(root, subjects=["01"]), out=tmp_path / "out")
    # n/a past the first row (fMRIPrep writes n/a only in the derivatives' first row)
    table = _confounds(121, 2)
    table.loc[5, "rot_y"] = np.nan
    table.to_csv(conf, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(
        ValueError, match=r"1 confound value\(s\) are missing or not numbers; first: row 6, "
        r"column 'rot_y'\. Only the first row may be n/a"
    ):  # fmt: skip
        ba.run(_spec(root, subjects=["01"]), out=tmp_path / "out2")


def test_payload_hashes_every_file_read(bids, tmp_path):
    from brainalign.pipeline import load_spec
    from brainalign.pipeline.sources.fmri_bids import FmriBids

    root = _edit(bids, tmp_path)
    src = load_spec(_spec(root))["brain"]["bold"]
    before = FmriBids().payload(src)["files"]
    assert len(before) == 39
    events = root / "sub-03" / "func" / f"{_name('03', 9)}_events.tsv"
    events.write_text(events.read_text().replace("\t", "\t", 1) + "\n")
    after = FmriBids().payload(src)["files"]
    changed = [f for f in before if before[f] != after[f]]
    assert changed == [str(events)]


def test_searchlight_maps_on_the_grid(bids, tmp_path):
    from brainalign.pipeline import load_spec
    from brainalign.pipeline.sources.fmri_bids import FmriBids

    spec = _spec(bids, subjects=["01", "02"],
                 analyses={"searchlight": {"radius": 30, "n_permutations": 20}})  # fmt: skip
    res = ba.run(spec, out=tmp_path / "out")
    got = res.tree["searchlight/bold"].to_dataset()
    assert got.attrs["n_subjects"] == 2 and got.sizes["voxel"] == 129
    data = FmriBids().load(load_spec(spec)["brain"]["bold"])
    ids = list(data.means.stimulus.values)
    model = rsa.categorical_rdm(GROUPS).sel(stimulus_a=ids, stimulus_b=ids)
    per = [rsa.searchlight(p, model, radius=30.0, metric="correlation", method="spearman")
           for p in data.subjects.values()]  # fmt: skip
    mean = np.mean([m.values for m in per], axis=0)
    np.testing.assert_allclose(got.similarity.sel(model="cat").values, mean, atol=1e-8)


def test_init_writes_a_spec_for_the_fmriprep_dataset_that_runs_unchanged(bids, tmp_path):
    # issue 19: `brainalign init` on the BIDS fMRI fixture gives a spec that runs unchanged
    from brainalign.cli import main

    spec = tmp_path / "fmri.yaml"
    assert main(["init", str(bids), "-o", str(spec)]) == 0
    text = spec.read_text()
    assert "dataset: fmri_bids" in text and f'task: "{TASK}"' in text
    res = ba.run(spec, out=tmp_path / "out")
    assert res.tree[f"rsa/{TASK}"].attrs["n_subjects"] == 3
    assert "Group level: models against 3 subjects" in res.report.read_text()


def test_group_encoding_map_is_the_mean_of_the_subjects_maps_tested_by_sign_flips(bids, tmp_path):
    # issue 19: per-subject encoding models, then a group map with corrected statistics.
    # Reference: each subject's ridge_cv on its own GLM trials (the loader called directly),
    # averaged; the group test is rsa.sign_flip_test on the same stack with the run's seed.
    from sklearn.model_selection import LeaveOneGroupOut

    from brainalign import encoding
    from brainalign.pipeline import load_spec
    from brainalign.pipeline.sources.fmri_bids import FmriBids, find_runs, load_subject

    spec = _spec(bids, subjects=["01", "03"],
                 analyses={"encoding": {"alphas": [1.0, 100.0], "n_flips": 50}})  # fmt: skip
    res = ba.run(spec, out=tmp_path / "out")
    got = res.tree["encoding/bold"].to_dataset()
    assert got.attrs["n_subjects"] == 2 and set(got) >= {"cv_score", "t", "p_fwe"}
    src = load_spec(spec)["brain"]["bold"]
    maps = []
    for name, runs in find_runs(src).items():
        trials = load_subject(src, name, runs)
        onehot = np.array([[s in GROUPS[g] for g in GROUPS] for s in trials.stimulus.values],
                          dtype=float)  # fmt: skip
        ds = encoding.ridge_cv(onehot, trials, [1.0, 100.0], cv=LeaveOneGroupOut(),
                               groups=trials.run.values)  # fmt: skip
        maps.append(ds.cv_score.values)
    want = np.mean(maps, axis=0)
    np.testing.assert_allclose(got.cv_score.sel(model="cat").values, want, atol=1e-10)
    stack = got.subject_cv_score.sel(model="cat")
    assert list(stack.subject.values) == ["sub-01", "sub-03"]
    flips = rsa.sign_flip_test(stack, n_permutations=50, seed=load_spec(spec)["seed"])
    np.testing.assert_allclose(got.p_fwe.sel(model="cat").values, flips.p_fwe.values)
    assert FmriBids.subject_runs and not FmriBids.runs
    html = unescape((tmp_path / "out" / "report.html").read_text())
    assert "the mean of 2 subjects' maps" in html and "sign-flip test" in html


def _atlas(tmp_path: Path) -> tuple[Path, Path]:
    """A two-region label image on the mask's grid (left / right of the mask's middle
    column) and its BIDS dseg-style table; value 3 is in the table only as an error case."""
    import nibabel as nib

    mask = nib.load(wholebrain_mask_path("brain"))
    inside = np.asarray(mask.dataobj) > 0
    labels = np.zeros(mask.shape, dtype=np.int16)
    i = np.arange(mask.shape[0])[:, None, None] * np.ones(mask.shape, dtype=int)
    middle = int(np.median(np.nonzero(inside)[0]))
    labels[inside & (i < middle)] = 1
    labels[inside & (i >= middle)] = 2
    path = tmp_path / "atlas_dseg.nii.gz"
    nib.Nifti1Image(labels, mask.affine).to_filename(path)
    table = tmp_path / "atlas_dseg.tsv"
    table.write_text("index\tname\n1\tleft side\n2\tright\n")
    return path, table


def test_atlas_gives_one_brain_entry_per_region(bids, tmp_path):
    # issue 19: "a label image with a region table gives one brain entry per ROI"
    import nibabel as nib

    from brainalign.pipeline import load_spec

    atlas, table = _atlas(tmp_path)
    spec = _spec(bids, subjects=["01", "02"], atlas=str(atlas), atlas_labels=str(table),
                 analyses={"rsa": {"n_permutations": 20, "n_bootstrap": 0}})  # fmt: skip
    loaded = load_spec(spec)
    assert list(loaded["brain"]) == ["bold-left_side", "bold-right"]
    assert loaded["brain"]["bold-right"]["roi"] == "right"
    assert loaded["brain"]["bold-right"]["rois"] is None
    res = ba.run(spec, out=tmp_path / "out")
    got = res.tree["brain/bold-left_side"].to_dataset()
    # Reference: each subject's RDM from load_bold on the region's voxels (the atlas value 1
    # within the fMRIPrep mask), averaged over subjects.
    region = np.asarray(nib.load(atlas).dataobj) == 1
    mask_img = nib.load(wholebrain_mask_path("brain"))
    roi_img = nib.Nifti1Image((region & (np.asarray(mask_img.dataobj) > 0)).astype(np.uint8),
                              mask_img.affine)  # fmt: skip
    rdms = []
    for sub in ("01", "02"):
        runs = SUBJECTS[sub]
        func = bids / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
        bolds = [str(func / f"{_name(sub, r)}_space-{SPACE}_desc-preproc_bold.nii.gz")
                 for r in runs]  # fmt: skip
        conf = [pd.read_csv(func / f"{_name(sub, r)}_desc-confounds_timeseries.tsv",
                            sep="\t")[MOTION] for r in runs]  # fmt: skip
        events = [bids / f"sub-{sub}" / "func" / f"{_name(sub, r)}_events.tsv" for r in runs]
        trials = load_bold(bolds, events, mask=roi_img, confounds=conf, run_labels=runs)
        rdms.append(rsa.rdm(average_trials(trials), "correlation"))
    ids = list(got.rdm.stimulus_a.values)
    want = np.mean([r.sel(stimulus_a=ids, stimulus_b=ids).values for r in rdms], axis=0)
    np.testing.assert_allclose(got.rdm.values, want, atol=1e-10)
    html = unescape((tmp_path / "out" / "report.html").read_text())
    assert "in region 'left side' of the atlas 'atlas_dseg.nii.gz'" in html
    # one region by name; errors name what exists
    one = load_spec(_spec(bids, atlas=str(atlas), atlas_labels=str(table), rois=["right"]))
    assert list(one["brain"]) == ["bold-right"]
    with pytest.raises(SpecError, match=r"rois: 'rihgt' not in the atlas; its regions: "
                       r"'left side', 'right'.*Did you mean 'right'"):  # fmt: skip
        load_spec(_spec(bids, atlas=str(atlas), atlas_labels=str(table), rois=["rihgt"]))
    table.write_text("index\tname\n1\tleft\n3\tnowhere\n")
    with pytest.raises(SpecError, match=r"atlas_labels: 'nowhere \(3\)' not in the atlas image"):
        load_spec(_spec(bids, atlas=str(atlas), atlas_labels=str(table)))
    table.write_text("value\tlabel\n1\tleft\n")
    with pytest.raises(SpecError, match=r"needs the columns index and name .* it has 'value'"):
        load_spec(_spec(bids, atlas=str(atlas), atlas_labels=str(table)))
    with pytest.raises(SpecError, match=r"brain\.bold\.rois: needs an atlas"):
        load_spec(_spec(bids, rois=["left"]))
    with pytest.raises(SpecError, match=r"brain\.bold\.atlas: file not found: 'nope.nii.gz'"):
        load_spec(_spec(bids, atlas="nope.nii.gz"))
