"""fMRI loader on the shipped Haxby data, against nilearn's FirstLevelModel and numpy."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainalign as ba
from brainalign.datasets import data_dir
from brainalign.loaders import fmri

ROOT = data_dir() / "haxby2001"
SUB = ROOT / "openfmri_sub001"
MASK = ROOT / "mask.nii.gz"  # 530 ventral-temporal voxels on the 1-slice grid
KEY = SUB / "models" / "model001" / "condition_key.txt"


def run_img(r, kind="1slice"):
    return SUB / "sub001" / "BOLD" / f"task001_run{r:03d}" / f"bold_{kind}.nii.gz"


def run_events(r):
    return fmri.read_openfmri_events(
        SUB / "sub001" / "model" / "model001" / "onsets" / f"task001_run{r:03d}", KEY
    )


@pytest.fixture(scope="module")
def betas_all_runs():
    return fmri.load_bold(
        [run_img(r) for r in range(1, 13)],
        [run_events(r) for r in range(1, 13)],
        mask=MASK,
        subject="1",
    )


def _flm(run, events, mask, confounds=None, **kw):
    from nilearn.glm.first_level import FirstLevelModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FirstLevelModel(t_r=2.5, mask_img=nib.load(mask), **kw)
        return model.fit(str(run), events, confounds=confounds)


def _masked(img, mask):
    m = np.asarray(nib.load(mask).dataobj) > 0
    return np.asarray(img.dataobj)[m]


def test_openfmri_events():
    ev = run_events(1)
    assert list(ev.columns[:3]) == ["onset", "duration", "trial_type"]
    assert sorted(ev.trial_type) == sorted(ba.datasets.HAXBY_CATEGORIES)
    # cond001 of run 1 is "house" at 157.5 s for 22.5 s (the onset file itself)
    assert ev.set_index("trial_type").loc["house", "onset"] == 157.5
    assert (
        fmri.read_openfmri_events(SUB / "sub001/model/model001/onsets/task001_run001")
        .trial_type.str.startswith("cond")
        .all()
    )


def test_condition_betas_match_first_level_model():
    ev = run_events(3)
    ours = fmri.load_bold(run_img(3), ev, mask=MASK)
    flm = _flm(run_img(3), ev, MASK)
    for cond in ["face", "house", "chair"]:
        ref = _masked(flm.compute_contrast(cond, output_type="effect_size"), MASK)
        got = ours.isel(trial=np.flatnonzero(ours.stimulus.values == cond)).values[0]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    zs = fmri.load_bold(run_img(3), ev, mask=MASK, output="z_score", noise_model="ols")
    flm_ols = _flm(run_img(3), ev, MASK, noise_model="ols")
    ref = _masked(flm_ols.compute_contrast("cat", output_type="z_score"), MASK)
    np.testing.assert_allclose(
        zs.isel(trial=np.flatnonzero(zs.stimulus.values == "cat")).values[0],
        ref,
        rtol=1e-4,
        atol=1e-5,
    )


def test_lsa_and_lss_match_first_level_model():
    ev = run_events(2)
    lsa = fmri.load_bold(run_img(2), ev, mask=MASK, estimate="lsa")
    lss = fmri.load_bold(run_img(2), ev, mask=MASK, estimate="lss")
    assert lsa.sizes["trial"] == len(ev) == lss.sizes["trial"]
    assert list(lsa.stimulus.values) == list(ev.trial_type)
    # LSA: one regressor per event, AR(1) -- FirstLevelModel with unique trial types
    ev_lsa = ev.assign(trial_type=[f"t{i}" for i in range(len(ev))])
    flm = _flm(run_img(2), ev_lsa, MASK)
    ref = _masked(flm.compute_contrast("t4", output_type="effect_size"), MASK)
    np.testing.assert_allclose(lsa.values[4], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # LSS: target event alone, the others by condition, OLS -- one FirstLevelModel per trial
    for t in (0, 5):
        ev_lss = ev.copy()
        ev_lss.loc[t, "trial_type"] = "target"
        flm = _flm(run_img(2), ev_lss, MASK, noise_model="ols")
        ref = _masked(flm.compute_contrast("target", output_type="effect_size"), MASK)
        np.testing.assert_allclose(lss.values[t], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def _loro_accuracy(b):
    runs = b.run.values
    hits = []
    for r in np.unique(runs):
        train = ba.average_trials(b.isel(trial=np.flatnonzero(runs != r)))
        test = b.isel(trial=np.flatnonzero(runs == r))
        c = np.corrcoef(test.values, train.values)[:8, 8:]
        hits.extend(train.stimulus.values[c.argmax(1)] == test.stimulus.values)
    return np.mean(hits)


def test_glm_patterns_hold_category_information(betas_all_runs):
    """Leave-one-run-out correlation classification of GLM patterns (chance 1/8 = 0.125).

    t statistics suit pattern analysis better than percent-signal-change betas (Misaki et al.
    2010, NeuroImage 53:103); on this slice they score about 0.42 and betas about 0.26. With
    96 test patterns, 0.2 is already above chance at p < 0.01 (binomial).
    """
    assert betas_all_runs.sizes == {"trial": 96, "voxel": 530}
    assert _loro_accuracy(betas_all_runs) > 0.2
    tstats = fmri.load_bold(
        [run_img(r) for r in range(1, 13)],
        [run_events(r) for r in range(1, 13)],
        mask=MASK,
        output="stat",
    )
    assert _loro_accuracy(tstats) > 0.35


def test_openfmri_and_concatenated_routes_agree(betas_all_runs):
    # Raw data: the per-run 1-slice files are the concatenated bold.nii.gz, run by run.
    concat = np.asarray(nib.load(ROOT / "bold.nii.gz").dataobj)
    per_run = np.concatenate(
        [np.asarray(nib.load(run_img(r)).dataobj) for r in range(1, 13)], axis=3
    )
    np.testing.assert_array_equal(per_run, concat)
    # Events: the OpenFMRI onsets label exactly the volumes that attributes_literal labels.
    labels = np.loadtxt(ROOT / "attributes_literal.txt", dtype=str)[:, 0]
    t = np.arange(121) * 2.5
    from_onsets = []
    for r in range(1, 13):
        lab = np.full(121, "rest", dtype=object)
        for _, e in run_events(r).iterrows():
            lab[(t >= e.onset) & (t < e.onset + e.duration)] = e.trial_type
        from_onsets.append(lab)
    np.testing.assert_array_equal(np.concatenate(from_onsets), labels)
    # Patterns: GLM t maps (OpenFMRI route) and block averages (concatenated route) give
    # similar category RDMs (0.81 here).
    order = list(ba.datasets.HAXBY_CATEGORIES)
    tstats = fmri.load_bold(
        [run_img(r) for r in range(1, 13)],
        [run_events(r) for r in range(1, 13)],
        mask=MASK,
        output="stat",
    )
    glm = ba.rsa.rdm(ba.average_trials(tstats).sel(stimulus=order))
    blocks = ba.rsa.rdm(ba.average_trials(ba.datasets.load_haxby()).sel(stimulus=order))
    assert ba.rsa.compare(glm, blocks) > 0.7
    # same voxels in the same order
    np.testing.assert_array_equal(betas_all_runs.i.values, ba.datasets.load_haxby().i.values)


def test_to_image_and_load_betas_round_trip(tmp_path, betas_all_runs):
    avg = ba.average_trials(betas_all_runs)
    paths = []
    for s in avg.stimulus.values:
        img = fmri.to_image(avg.sel(stimulus=s), MASK)
        assert img.shape == (40, 20, 1)
        paths.append(tmp_path / f"beta_{s}.nii.gz")
        nib.save(img, paths[-1])
    back = fmri.load_betas(paths, avg.stimulus.values, mask=MASK)
    np.testing.assert_allclose(back.values, avg.values, rtol=1e-6, atol=1e-6)  # float32 images
    np.testing.assert_array_equal(back.x.values, avg.x.values)
    four_d = fmri.to_image(avg.transpose("voxel", "stimulus"), MASK)
    assert four_d.shape == (40, 20, 1, 8)
    from_4d = fmri.load_betas(four_d, avg.stimulus.values, mask=MASK)
    np.testing.assert_allclose(from_4d.values, back.values)
    arr = fmri.load_betas(avg.values, avg.stimulus.values)
    assert arr.dims == ("stimulus", "voxel") and "x" not in arr.coords
    xr.testing.assert_identical(ba.load(ba.save(back, tmp_path / "b.nc")), back)


def test_atlas_and_roi_masks_on_25mm_grid():
    runs = [run_img(r, "25mm") for r in (1, 2)]
    events = [run_events(r) for r in (1, 2)]
    brain = SUB / "sub001" / "masks" / "25mm" / "brain.nii.gz"
    atlas = SUB / "sub001" / "masks" / "25mm" / "hoc.nii.gz"
    b = fmri.load_bold(runs, events, mask=brain, atlas=atlas, drop_bad_voxels=True)
    assert "roi" in b.coords and b.roi.dims == ("voxel",)
    labels = np.asarray(nib.load(atlas).dataobj)[b.i.values, b.j.values, b.k.values]
    expected = np.where(labels == 0, "background", [f"roi{int(v)}" for v in labels])
    np.testing.assert_array_equal(b.roi.values, expected)
    means = fmri.apply_atlas(b.drop_vars("roi"), atlas, {1: "frontal_pole"}, means=True)
    assert means.dims == ("trial", "roi") and "frontal_pole" in means.roi.values
    # reference: plain numpy mean over the voxels carrying each label
    for lab in (1, 3):
        name = "frontal_pole" if lab == 1 else f"roi{lab}"
        np.testing.assert_allclose(means.sel(roi=name).values, b.values[:, labels == lab].mean(1))
    tree = fmri.split_rois(
        b,
        {
            "gray": SUB / "sub001/masks/25mm/gray.nii.gz",
            "white": SUB / "sub001/masks/25mm/white.nii.gz",
        },
    )
    assert set(tree.children) == {"gray", "white"}
    assert (
        tree["gray"]["bold"].sizes["voxel"] + tree["white"]["bold"].sizes["voxel"]
        <= b.sizes["voxel"]
    )
    assert ba.rsa.rdm(ba.average_trials(means)).shape == (8, 8)  # roi is a feature dim


def test_bids_events_file(tmp_path):
    ev = run_events(1)
    path = tmp_path / "sub-1_task-objects_run-1_events.tsv"
    ev.assign(response_time="n/a").to_csv(path, sep="\t", index=False)
    back = fmri.read_events(path)
    pd.testing.assert_frame_equal(
        back[["onset", "duration", "trial_type"]], ev[["onset", "duration", "trial_type"]]
    )


# ------------------------------------------------------------------------------ bad input
def test_missing_events_and_columns(tmp_path):
    with pytest.raises(ValueError, match=r"events has 1 table\(s\) but runs has 2 image\(s\)"):
        fmri.load_bold([run_img(1), run_img(2)], [run_events(1)], mask=MASK)
    bad = tmp_path / "events.tsv"
    pd.DataFrame({"onset": [1.0], "duration": [2.0]}).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['trial_type'\]"):
        fmri.read_events(bad)
    with pytest.raises(FileNotFoundError, match=r"No OpenFMRI onset files"):
        fmri.read_openfmri_events(tmp_path)
    late = run_events(1).assign(onset=lambda d: d.onset + 1000)
    with pytest.raises(ValueError, match=r"8 event\(s\) start after the run's last volume"):
        fmri.load_bold(run_img(1), late, mask=MASK)


def test_image_mask_mismatch_and_wrong_files(tmp_path):
    with pytest.raises(
        ba.SchemaError,
        match=r"Shape mismatch between images and mask: runs\[0\] "
        r"has shape \(6, 10, 10\).*the mask has shape "
        r"\(40, 20, 1\)",
    ):
        fmri.load_bold(run_img(1, "25mm"), run_events(1), mask=MASK)
    txt = tmp_path / "bold.txt"
    txt.write_text("not an image")
    with pytest.raises(ValueError, match=r"runs\[0\]: 'bold.txt' is not an image file"):
        fmri.load_bold(txt, run_events(1), mask=MASK)
    with pytest.raises(
        TypeError,
        match=r"mask must be a path to a NIfTI image or a nibabel image, "
        r"got int",
    ):
        fmri.load_bold(run_img(1), run_events(1), mask=3)
    with pytest.raises(
        ValueError, match=r"'estimate' parameter.*got 'conditon'.*Did you mean 'condition'"
    ):
        fmri.load_bold(run_img(1), run_events(1), mask=MASK, estimate="conditon")


def test_nan_and_constant_voxels_are_counted_then_dropped_on_request(tmp_path):
    img = nib.load(run_img(1))
    data = np.asarray(img.dataobj, dtype=np.float32)
    ijk = np.argwhere(np.asarray(nib.load(MASK).dataobj) > 0)
    data[tuple(ijk[0])] = 100.0  # constant voxel
    data[(*tuple(ijk[1]), 5)] = np.nan  # one NaN sample
    bad = tmp_path / "bad.nii.gz"
    header = img.header.copy()
    header.set_data_dtype(np.float32)  # the original is int16, which cannot hold NaN
    nib.save(nib.Nifti1Image(data, img.affine, header), bad)
    with pytest.raises(
        ValueError,
        match=r"BOLD: 1 voxel\(s\) hold NaN/inf values and 1 are "
        r"constant, out of 530 in the mask.*drop_bad_voxels=True",
    ):
        fmri.load_bold(bad, run_events(1), mask=MASK)
    ok = fmri.load_bold(bad, run_events(1), mask=MASK, drop_bad_voxels=True)
    assert ok.sizes["voxel"] == 528
    assert ok.attrs["n_constant_voxels"] == 1 and ok.attrs["n_nonfinite_voxels"] == 1


def test_load_betas_errors(betas_all_runs):
    avg = ba.average_trials(betas_all_runs)
    with pytest.raises(ValueError, match=r"stimulus has 3 ids but the data has 8 rows"):
        fmri.load_betas(avg.values, ["a", "b", "c"])
    with pytest.raises(ba.SchemaError, match=r"duplicated: 'a'.*sample_dim='trial'"):
        fmri.load_betas(avg.values, ["a"] * 8)
    t = fmri.load_betas(avg.values, ["a"] * 8, sample_dim="trial", runs=list(range(8)))
    assert t.dims == ("trial", "voxel") and list(t.run.values) == list(range(8))
    with pytest.raises(ValueError, match=r"mask is required to load beta images"):
        fmri.load_betas([run_img(1)], ["x"])
    with pytest.raises(ba.SchemaError, match=r"to_image takes at most one dim besides 'voxel'"):
        fmri.to_image(betas_all_runs.expand_dims(extra=[0]), MASK)


def test_real_motion_confounds_match_first_level_model():
    motion = pd.read_csv(
        SUB / "sub001/BOLD/task001_run004/bold_moest.txt",
        sep=r"\s+",
        header=None,
        names=["tx", "ty", "tz", "rx", "ry", "rz"],
    )
    assert motion.shape == (121, 6)
    ev = run_events(4)
    ours = fmri.load_bold(run_img(4), ev, mask=MASK, confounds=motion, hrf_model="spm")
    flm = _flm(run_img(4), ev, MASK, confounds=motion, hrf_model="spm")
    ref = _masked(flm.compute_contrast("shoe", output_type="effect_size"), MASK)
    got = ours.isel(trial=np.flatnonzero(ours.stimulus.values == "shoe")).values[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    assert ours.attrs["hrf_model"] == "spm"
    without = fmri.load_bold(run_img(4), ev, mask=MASK, hrf_model="spm")
    assert not np.allclose(without.values, ours.values)  # the confounds changed the fit
    with pytest.raises(ValueError, match=r"confounds have 120 rows but the run has 121 volumes"):
        fmri.load_bold(run_img(4), ev, mask=MASK, confounds=motion.iloc[:120])


# ------------------------------------------------------------ damaged files, named errors
def test_truncated_nifti_names_the_file(tmp_path):
    raw = run_img(1).read_bytes()
    cut = tmp_path / "bold_cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])  # an interrupted copy: the header reads, data ends
    with pytest.raises(
        ValueError,
        match=rf"runs\[0\]: the image file '.*bold_cut\.nii\.gz' \({len(raw) // 2} bytes\) is "
        r"truncated or corrupt: EOFError",
    ):
        fmri.load_bold(cut, run_events(1), mask=MASK)
    stub = tmp_path / "bold_stub.nii.gz"
    stub.write_bytes(raw[:200])  # not even a whole header
    with pytest.raises(ValueError, match=r"runs\[0\]: the image file '.*bold_stub\.nii\.gz' "
                       r"\(200 bytes\) is truncated or corrupt"):  # fmt: skip
        fmri.load_bold(stub, run_events(1), mask=MASK)
    mask_raw = MASK.read_bytes()
    mask_cut = tmp_path / "mask_cut.nii.gz"
    mask_cut.write_bytes(mask_raw[:-20])
    with pytest.raises(ValueError, match=r"mask: the image file '.*mask_cut\.nii\.gz'.*is "
                       r"truncated or corrupt"):  # fmt: skip
        fmri.load_betas([run_img(1)], ["x"], mask=mask_cut)
    with pytest.raises(ValueError, match=r"images\[1\]: the image file '.*bold_cut\.nii\.gz'"):
        fmri.load_betas([run_img(2), cut], ["x", "y"], mask=MASK)


def test_mask_on_another_affine_says_affine_and_shows_both(tmp_path):
    mask = nib.load(MASK)
    affine = mask.affine.copy()
    affine[:3, 3] += [3.5, 0.0, -7.0]  # same shape and voxel size, shifted in space
    shifted = tmp_path / "mask_shifted.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(mask.dataobj), affine), shifted)
    with pytest.raises(
        ba.SchemaError,
        match=r"Affine mismatch between images and mask: runs\[0\] and the mask both have shape "
        r"\(40, 20, 1\), but their affines.*differ.*runs\[0\] affine \[\[-3\.1, 0\.0, 0\.0, "
        r"60\.45\], \[0\.0, 3\.75, 0\.0, -35\.625\], \[0\.0, 0\.0, 3\.75, 0\.0\], .*\]\]; "
        r"the mask affine \[\[-3\.1, 0\.0, 0\.0, 63\.95\], .*\[0\.0, 0\.0, 3\.75, -7\.0\]",
    ):
        fmri.load_bold(run_img(1), run_events(1), mask=shifted)
    betas = fmri.load_betas(run_img(1), sample_dim="trial", mask=MASK)  # one row per volume
    with pytest.raises(ba.SchemaError, match=r"Affine mismatch between the data and atlas"):
        fmri.apply_atlas(betas, shifted)


def _events_lines(tmp_path):
    path = tmp_path / "sub-1_task-objects_run-1_events.tsv"
    run_events(1).to_csv(path, sep="\t", index=False)
    return path, path.read_text().splitlines()


def test_bad_events_files_name_the_file_line_column_and_value(tmp_path):
    path, lines = _events_lines(tmp_path)  # real events (run 1 of the Haxby data)
    assert lines[0].split("\t")[:3] == ["onset", "duration", "trial_type"]
    word = lines.copy()
    word[3] = "four\t" + word[3].split("\t", 1)[1]  # line 4 of the file
    path.write_text("\n".join(word) + "\n")
    with pytest.raises(
        ValueError,
        match=r"events file '.*_events\.tsv': column 'onset' holds 1 value\(s\) that are not "
        r"numbers: line 4: 'four'",
    ):
        fmri.read_events(path)
    negative = lines.copy()
    cells = negative[4].split("\t")
    cells[1] = "-22.5"
    negative[4] = "\t".join(cells)
    path.write_text("\n".join(negative) + "\n")
    with pytest.raises(
        ValueError,
        match=r"events file '.*_events\.tsv': column 'duration' holds 1 negative value\(s\) "
        r"\(line 5: -22\.5\)",
    ):
        fmri.load_bold(run_img(1), path, mask=MASK)
    frame = run_events(1).assign(duration=lambda d: np.where(d.index == 2, -1.0, d.duration))
    with pytest.raises(ValueError, match=r"events: column 'duration' holds 1 negative value\(s\) "
                       r"\(row 2: -1\)"):  # fmt: skip
        fmri.read_events(frame)
    gap = lines.copy()
    gap[2] = "n/a\t" + gap[2].split("\t", 1)[1]
    path.write_text("\n".join(gap) + "\n")
    with pytest.raises(ValueError, match=r"column 'onset' is missing a value on 1 row\(s\): "
                       r"line 3\."):  # fmt: skip
        fmri.read_events(path)
    empty = tmp_path / "empty_events.tsv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"events file '.*empty_events\.tsv' is empty"):
        fmri.read_events(empty)
    header = tmp_path / "header_events.tsv"
    header.write_text("onset\tduration\ttrial_type\n")
    with pytest.raises(ValueError, match=r"events file '.*header_events\.tsv' holds no event"):
        fmri.read_events(header)
    latin1 = tmp_path / "latin1_events.tsv"
    latin1.write_bytes(
        ("\n".join(lines[:2]) + "\n").encode() + "3.0\t1.0\tvisage\u00e9\n".encode("latin-1")
    )
    with pytest.raises(ValueError, match=r"events file '.*latin1_events\.tsv' is not UTF-8 "
                       r"text: line 3 holds the byte 0xe9"):  # fmt: skip
        fmri.read_events(latin1)


def test_event_words_that_pandas_reads_as_missing_are_trial_types(tmp_path):
    path, lines = _events_lines(tmp_path)
    renamed = [lines[0]]
    for n, line in enumerate(lines[1:]):
        cells = line.split("\t")
        cells[2] = ("NA", "null", "None", "nan")[n % 4]
        renamed.append("\t".join(cells))
    path.write_text("\n".join(renamed) + "\n")
    ev = fmri.read_events(path)
    assert sorted(set(ev.trial_type)) == ["NA", "None", "nan", "null"]
    assert len(ev) == len(lines) - 1


def test_bad_openfmri_onset_files_name_the_file_and_line(tmp_path):
    import shutil

    src = SUB / "sub001" / "model" / "model001" / "onsets" / "task001_run001"
    folder = tmp_path / "task001_run001"
    shutil.copytree(src, folder)
    cond = folder / "cond002.txt"
    onset, _, weight = cond.read_text().split()
    cond.write_text(f"{onset}\t-22.5\t{weight}\n")
    with pytest.raises(ValueError, match=r"onsets file '.*cond002\.txt': column 'duration' "
                       r"holds 1 negative value\(s\) \(line 1: -22\.5\)"):  # fmt: skip
        fmri.read_openfmri_events(folder, KEY)
    cond.write_text(f"{onset}\tfour\t{weight}\n")
    with pytest.raises(ValueError, match=r"onsets file '.*cond002\.txt': column 'duration' "
                       r"holds 1 value\(s\) that are not numbers: line 1: 'four'"):  # fmt: skip
        fmri.read_openfmri_events(folder, KEY)
    cond.write_text(f"{onset}\n")
    with pytest.raises(ValueError, match=r"cond002\.txt', line 1 holds 1 value\(s\)"):
        fmri.read_openfmri_events(folder, KEY)
    cond.write_bytes(b"\xff\xfe1\x002\x00")
    with pytest.raises(ValueError, match=r"onsets file '.*cond002\.txt' is not UTF-8 text"):
        fmri.read_openfmri_events(folder, KEY)
