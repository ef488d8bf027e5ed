"""Brain sources of your own files: ``dataset: arrays`` and ``dataset: beta_maps``.

The fixtures are the shipped Haxby ventral-temporal data cut into three pseudo-subjects
(runs 1-4, 5-8 and 9-12), each subject's stimulus-mean patterns written as .nc, .npy, csv
and NIfTI beta maps; the pipeline's brain RDMs are checked against :func:`brainalign.rsa.rdm`
of each subject's patterns, computed here.
"""

import re
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainalign as ba
from brainalign import rsa
from brainalign._checks import StimulusAlignmentError
from brainalign.data import average_trials
from brainalign.datasets import get_manifest, load_haxby
from brainalign.pipeline import SpecError
from brainalign.pipeline.sources import Arrays, BetaMaps

GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}
RUNS = {"sub-01": (1, 4), "sub-02": (5, 8), "sub-03": (9, 12)}
MASK = get_manifest("haxby2001")["path"] / "mask.nii.gz"


def _spec(brain, analyses=None):
    return {
        "name": "own_files",
        "seed": 0,
        "brain": brain,
        "models": {"cat": {"kind": "categorical", "groups": GROUPS}},
        "analyses": analyses or {"rsa": {"n_permutations": 50, "n_bootstrap": 100}},
    }


def _expected(patterns, ids):
    """The mean over subjects of each subject's correlation RDM, in the order ``ids``."""
    rdms = [rsa.rdm(p, "correlation").sel(stimulus_a=ids, stimulus_b=ids) for p in patterns]
    return np.mean([r.values for r in rdms], axis=0)


@pytest.fixture(scope="module")
def haxby_subjects():
    """Trials and stimulus means of three pseudo-subjects (each in its own stimulus order)."""
    trials = load_haxby()
    out = {}
    for name, (first, last) in RUNS.items():
        run = trials["run"].values
        sub = trials.isel(trial=np.flatnonzero((run >= first) & (run <= last)))
        out[name] = {"trials": sub, "means": average_trials(sub).drop_vars("n_trials")}
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory, haxby_subjects):
    """The subjects' patterns in every format, in one folder."""
    root = tmp_path_factory.mktemp("own")
    order = [str(s) for s in haxby_subjects["sub-01"]["means"]["stimulus"].values]
    stacked = []
    for name, sub in haxby_subjects.items():
        means = sub["means"]
        ba.save(means, root / f"{name}_patterns.nc")
        ba.save(sub["trials"], root / f"trials_{name}_bold.nc")  # (trial, voxel): averaged
        np.save(root / f"{name}.npy", means.sel(stimulus=order).values)
        table = pd.DataFrame(means.values, columns=[f"v{i}" for i in range(means.sizes["voxel"])])
        table.insert(0, "stimulus", means["stimulus"].values)
        table.to_csv(root / f"{name}.csv", index=False)
        table.to_parquet(root / f"{name}.parquet", index=False)  # fastparquet (test extra)
        stacked.append(means.sel(stimulus=order).reset_coords(drop=True))
    ba.save(
        xr.concat(stacked, dim="subject").assign_coords(subject=list(haxby_subjects)),
        root / "all_subjects.nc",
    )
    return {"root": root, "order": order}


@pytest.fixture(scope="module")
def arrays_run(tmp_path_factory, files):
    """One run with a source of each format (and one single-subject source)."""
    root = files["root"]
    brain = {
        "nc": {"dataset": "arrays", "files": str(root / "sub-*_patterns.nc")},
        "npy": {
            "dataset": "arrays",
            "files": [str(root / f"{s}.npy") for s in RUNS],
            "stimuli": files["order"],
        },
        "csv": {"dataset": "arrays", "files": str(root / "sub-0[123].csv")},
        "parquet": {"dataset": "arrays", "files": str(root / "sub-0[123].parquet")},
        "trials": {
            "dataset": "arrays",
            "files": str(root / "trials_sub-*_bold.nc"),
            "subject_names": "bids",
        },
        "stacked": {"dataset": "arrays", "files": str(root / "all_subjects.nc")},
        "single": {"dataset": "arrays", "files": str(root / "sub-02_patterns.nc")},
    }
    return ba.run(_spec(brain), out=tmp_path_factory.mktemp("arrays_out"))


@pytest.mark.parametrize("bname", ["nc", "npy", "csv", "parquet", "trials", "stacked"])
def test_arrays_group_rsa(arrays_run, haxby_subjects, bname):
    tree = arrays_run.tree
    brain = tree[f"brain/{bname}"]
    ids = [str(s) for s in brain["rdm"]["stimulus_a"].values]
    assert sorted(ids) == sorted(s for g in GROUPS.values() for s in g)
    expected = _expected([s["means"] for s in haxby_subjects.values()], ids)
    np.testing.assert_allclose(brain["rdm"].values, expected, rtol=0, atol=1e-12)
    assert brain.attrs["n_subjects"] == 3
    names = {
        "nc": "sub-01_patterns, sub-02_patterns, sub-03_patterns",
        "npy": "sub-01, sub-02, sub-03",
        "csv": "sub-01, sub-02, sub-03",
        "parquet": "sub-01, sub-02, sub-03",
        "trials": "sub-01, sub-02, sub-03",  # subject_names: bids
        "stacked": "sub-01, sub-02, sub-03",  # the file's subject coord
    }
    assert brain.attrs["subjects"] == names[bname]
    assert re.fullmatch(r"[0-9a-f]{64}", brain.attrs["sha256_file"])
    res = tree[f"rsa/{bname}"]
    assert res.attrs["n_subjects"] == 3
    for var in ("group_mean", "group_p", "similarity", "p_value"):
        assert np.isfinite(res[var].values).all(), var
    assert 0 < res.attrs["noise_ceiling_lower"] <= res.attrs["noise_ceiling_upper"] <= 1
    html = arrays_run.report.read_text(encoding="utf-8")
    assert f"Group level: models against 3 subjects ({bname})" in html


def test_arrays_single_subject_and_report(arrays_run, haxby_subjects, files):
    brain = arrays_run.tree["brain/single"]
    ids = [str(s) for s in brain["rdm"]["stimulus_a"].values]
    means = haxby_subjects["sub-02"]["means"]
    assert ids == [str(s) for s in means["stimulus"].values]  # the file's own order
    np.testing.assert_allclose(
        brain["rdm"].values, rsa.rdm(means, "correlation").values, rtol=0, atol=1e-12
    )
    assert brain.attrs["n_subjects"] == 1
    res = arrays_run.tree["rsa/single"]
    assert "group_mean" not in res and "n_subjects" not in res.attrs
    from brainalign.datasets import file_sha256

    sha = file_sha256(files["root"] / "sub-02_patterns.nc")
    assert brain.attrs["sha256_file"] == sha
    html = arrays_run.report.read_text(encoding="utf-8")
    assert "Group level: models against 3 subjects (single)" not in html
    assert f"sub-02_patterns.nc: {sha}" in html  # the Data section names file and digest
    assert arrays_run.report.exists() and arrays_run.results.exists()


# ------------------------------------------------------------------------------ beta maps
@pytest.fixture(scope="module")
def beta_table(tmp_path_factory, haxby_subjects):
    """One NIfTI map per stimulus and run (the run's mean pattern), and their table."""
    from nilearn import masking

    root = tmp_path_factory.mktemp("betas")
    (root / "maps").mkdir()
    rows, means = [], {}
    for name, sub in haxby_subjects.items():
        trials = sub["trials"]
        per_run = {}
        for run in np.unique(trials["run"].values):
            part = average_trials(trials.isel(trial=np.flatnonzero(trials["run"].values == run)))
            for stim in part["stimulus"].values:
                img = masking.unmask(part.sel(stimulus=stim).values, str(MASK))
                img = nib.Nifti1Image(img.get_fdata().astype(np.float64), img.affine)
                fname = f"maps/{name}_run-{run:02d}_{stim}.nii.gz"
                nib.save(img, root / fname)
                rows.append({"file": fname, "stimulus": stim, "subject": name, "run": run})
                per_run.setdefault(str(stim), []).append(part.sel(stimulus=stim).values)
        means[name] = xr.DataArray(
            np.array([np.mean(v, axis=0) for v in per_run.values()]),
            dims=("stimulus", "voxel"),
            coords={"stimulus": list(per_run), **{c: trials[c] for c in "xyzijk"}},
        )
    pd.DataFrame(rows).to_csv(root / "betas.csv", index=False)
    return {"root": root, "table": root / "betas.csv", "means": means, "rows": rows}


@pytest.fixture(scope="module")
def betas_run(tmp_path_factory, beta_table):
    brain = {
        "betas": {"dataset": "beta_maps", "table": str(beta_table["table"]), "mask": str(MASK)}
    }
    analyses = {"rsa": {"n_permutations": 50, "n_bootstrap": 100}, "searchlight": {"radius": 8}}
    return ba.run(_spec(brain, analyses), out=tmp_path_factory.mktemp("betas_out"))


def test_beta_maps_group_rsa_and_searchlight(betas_run, beta_table):
    tree = betas_run.tree
    brain = tree["brain/betas"]
    ids = [str(s) for s in brain["rdm"]["stimulus_a"].values]
    means = beta_table["means"]
    np.testing.assert_allclose(
        brain["rdm"].values, _expected(list(means.values()), ids), rtol=0, atol=1e-10
    )
    assert brain.attrs["n_subjects"] == 3 and brain.attrs["n_maps"] == 3 * 4 * 8
    assert brain.attrs["maps_per_stimulus"] == "sub-01: 4, sub-02: 4, sub-03: 4"
    res = tree["rsa/betas"]
    assert res.attrs["n_subjects"] == 3
    assert np.isfinite(res["group_mean"].values).all() and np.isfinite(res["group_p"]).all()
    assert res.attrs["noise_ceiling_lower"] <= res.attrs["noise_ceiling_upper"]
    # the searchlight ran on each subject's patterns (the voxels' mm coordinates); the group
    # map is their mean, tested across subjects by sign flips (max-t corrected)
    model = rsa.categorical_rdm(GROUPS).sel(stimulus_a=ids, stimulus_b=ids)
    per_subject = xr.concat(
        [rsa.searchlight(m.sel(stimulus=ids), model, radius=8.0) for m in means.values()],
        dim="subject",
    )
    got = tree["searchlight/betas"].to_dataset().sel(model="cat")
    np.testing.assert_allclose(got["similarity"].values, per_subject.mean("subject"), atol=1e-6)
    ref = rsa.sign_flip_test(per_subject, n_permutations=1000, seed=0)
    np.testing.assert_allclose(got["t"].values, ref["t"].values, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got["p_fwe"].values, ref["p_fwe"].values)
    # the null maxima and the threshold (in t) travel with the map, and the caption says it
    np.testing.assert_allclose(got["null_max"].values, ref["null_max"].values, rtol=1e-6)
    threshold = float(got["fwe_threshold"])
    assert threshold == pytest.approx(float(ref["fwe_threshold"]), rel=1e-6)
    assert tree["searchlight/betas"].attrs["n_subjects"] == 3
    html = betas_run.report.read_text(encoding="utf-8")
    assert "Group level: models against 3 subjects (betas)" in html
    assert "Searchlight: betas vs cat" in html
    assert (
        "Group mean over 3 subjects&#x27; maps" in html
        or "Group mean over 3 subjects' maps" in html
    )
    assert "glass brain" not in html  # mni: false
    assert "beta_maps" in html and "betas.csv" in html
    assert f"maximum t over the map; cat: t &gt; {threshold:.3g}" in html


def test_beta_maps_single_subject_without_subject_column(tmp_path, beta_table):
    rows = [r for r in beta_table["rows"] if r["subject"] == "sub-01"]
    table = tmp_path / "sub01.tsv"
    pd.DataFrame([{k: r[k] for k in ("file", "stimulus")} for r in rows]).to_csv(
        table, sep="\t", index=False
    )
    for r in rows:  # relative paths are relative to the table's folder
        (tmp_path / "maps").mkdir(exist_ok=True)
        (tmp_path / r["file"]).write_bytes((beta_table["root"] / r["file"]).read_bytes())
    source = BetaMaps()
    src = {"dataset": "beta_maps", "table": str(table), "mask": str(MASK), "mni": False}
    data = source.load(src)
    assert list(data.subjects) == ["sub01"]
    brain = source.brain(src, data, "correlation")
    assert "subjects" not in brain
    ids = [str(s) for s in brain["rdm"]["stimulus_a"].values]
    means = beta_table["means"]["sub-01"]
    np.testing.assert_allclose(brain["rdm"].values, _expected([means], ids), rtol=0, atol=1e-10)
    bg = source.background(src)
    assert bg["like"] == MASK and bg["mni"] is False and bg["bg"].shape == (40, 20, 1)


# ---------------------------------------------------------------------------------- errors
def _arrays(files_value, **extra):
    return _spec({"b": {"dataset": "arrays", "files": files_value, **extra}})


def test_missing_file_and_empty_glob(tmp_path, files):
    present = str(files["root"] / "sub-01_patterns.nc")
    missing = str(tmp_path / "sub-09_patterns.nc")
    with pytest.raises(
        SpecError, match=r"brain\.b\.files: file not found: '.*sub-09_patterns\.nc'"
    ):
        ba.run(_arrays([present, missing]), out=tmp_path / "o", dry_run=True)
    glob = str(tmp_path / "nothing-*.nc")
    with pytest.raises(
        SpecError, match=r"brain\.b\.files: the glob '.*nothing-\*\.nc' matches no"
    ):
        ba.run(_arrays(glob), out=tmp_path / "o", dry_run=True)
    with pytest.raises(SpecError, match=r"brain\.b\.files: is required for dataset arrays"):
        ba.run(_spec({"b": {"dataset": "arrays"}}), out=tmp_path / "o", dry_run=True)
    bad = tmp_path / "x.mat"
    bad.write_bytes(b"0")
    with pytest.raises(
        SpecError, match=r"'.*x\.mat' has the suffix '\.mat'; dataset arrays reads"
    ):
        ba.run(_arrays(str(bad)), out=tmp_path / "o", dry_run=True)


def test_npy_without_stimuli(tmp_path, files):
    npy = str(files["root"] / "sub-01.npy")
    with pytest.raises(SpecError, match=r"brain\.b\.stimuli: is required for \.npy files.*sub-01"):
        ba.run(_arrays(npy), out=tmp_path / "o", dry_run=True)
    wrong = _arrays(npy, stimuli=files["order"][:5])
    with pytest.raises(ValueError, match=r"sub-01\.npy' has 8 rows but stimuli lists 5 ids"):
        ba.run(wrong, out=tmp_path / "o")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("sub-02_patterns.nc", b"CDF\x01 cut short", r"cannot read '.*sub-02_patterns\.nc'"),
        ("sub-02.npy", b"not an array", r"cannot read '.*sub-02\.npy' \(12 bytes\) as a \.npy"),
        ("sub-02.csv", b"", r"cannot read '.*sub-02\.csv' \(0 bytes\) as a \.csv file"),
    ],
    ids=["nc", "npy", "csv"],
)
def test_unreadable_file(tmp_path, files, name, content, match):
    kind = name.split(".", 1)[1]
    for s in ("sub-01", "sub-03"):
        src = files["root"] / (f"{s}_patterns.nc" if kind == "nc" else f"{s}.{kind}")
        (tmp_path / src.name).write_bytes(src.read_bytes())
    (tmp_path / name).write_bytes(content)
    extra = {"stimuli": files["order"]} if kind == "npy" else {}
    with pytest.raises(ValueError, match=match):
        ba.run(_arrays(str(tmp_path / f"sub-*.{kind}"), **extra), out=tmp_path / "o")


def test_subject_with_other_stimuli(tmp_path, haxby_subjects):
    for name, sub in haxby_subjects.items():
        means = sub["means"]
        if name == "sub-03":  # no 'cat', and a 'dog' instead
            ids = ["dog" if s == "cat" else str(s) for s in means["stimulus"].values]
            means = means.assign_coords(stimulus=ids)
        ba.save(means, tmp_path / f"{name}.nc")
    with pytest.raises(
        StimulusAlignmentError,
        match=r"subject 'sub-03' \('.*sub-03\.nc'\): missing 1: 'cat'; extra 1: 'dog'",
    ):
        ba.run(_arrays(str(tmp_path / "sub-*.nc")), out=tmp_path / "o")


def test_nan_in_patterns(tmp_path, haxby_subjects):
    for name, sub in haxby_subjects.items():
        means = sub["means"].copy()
        if name == "sub-02":
            means.values[2, 7] = np.nan
            bad_stim = str(means["stimulus"].values[2])
        ba.save(means, tmp_path / f"{name}.nc")
    with pytest.raises(
        ValueError,
        match=rf"'.*sub-02\.nc' \(subject 'sub-02'\) holds 1 NaN or infinite value\(s\) out of "
        rf"4240, in 1 stimulus \('{bad_stim}'\); first: stimulus '{bad_stim}', voxel",
    ):
        ba.run(_arrays(str(tmp_path / "sub-*.nc")), out=tmp_path / "o")


def test_table_problems(tmp_path, files):
    csv = tmp_path / "sub-01.csv"
    text = (files["root"] / "sub-01.csv").read_text()
    csv.write_text(text.replace("stimulus,", "label,", 1))
    with pytest.raises(ValueError, match=r"sub-01\.csv' has no column 'stimulus' \(its columns"):
        ba.run(_arrays(str(csv)), out=tmp_path / "o")
    res = ba.run(  # stimulus_column names another column
        _arrays(str(csv), stimulus_column="label"),
        out=tmp_path / "o",
        dry_run=True,
    )
    assert res.status
    lines = text.splitlines()
    lines[3] = lines[3].replace(",", ",oops,", 1).rsplit(",", 1)[0]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError,
        match=r"1 cell\(s\) of the unit column\(s\) 'v0' are not numbers; first: line 4, "
        r"column 'v0': 'oops'",
    ):
        ba.run(_arrays(str(csv)), out=tmp_path / "o")
    headerless = tmp_path / "plain.csv"
    np.savetxt(headerless, np.eye(8), delimiter=",")
    with pytest.raises(ValueError, match=r"plain\.csv' has no header row.*stimuli: \[\.\.\.\]"):
        ba.run(_arrays(str(headerless)), out=tmp_path / "o")


def test_parquet_needs_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "sub-01.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    with pytest.raises(
        ImportError, match=r"sub-01\.parquet' \(parquet\) needs pyarrow.*pip install pyarrow"
    ):
        ba.run(_arrays(str(path)), out=tmp_path / "o")


def test_beta_table_problems(tmp_path, beta_table):
    def spec(table, mask=str(MASK)):
        return _spec({"b": {"dataset": "beta_maps", "table": str(table), "mask": mask}})

    table = tmp_path / "t.csv"
    table.write_text("files,stimulus\nmaps/a.nii.gz,face\n")
    with pytest.raises(
        SpecError,
        match=r"brain\.b\.table: '.*t\.csv' has no column 'file' \(its columns: 'files', "
        r"'stimulus'\).* Rename the column 'files' to 'file'\?",
    ):
        ba.run(spec(table), out=tmp_path / "o", dry_run=True)
    table.write_text("file,stimulus\nmaps/a.nii.gz,face\nmaps/b.nii.gz,house\n")
    with pytest.raises(SpecError, match=r"2 image\(s\) listed .* 'maps/a\.nii\.gz' \(line 2\)"):
        ba.run(spec(table), out=tmp_path / "o", dry_run=True)
    good = beta_table["table"]
    with pytest.raises(SpecError, match=r"brain\.b\.mask: file not found: '.*nomask\.nii\.gz'"):
        ba.run(spec(good, str(tmp_path / "nomask.nii.gz")), out=tmp_path / "o", dry_run=True)
    with pytest.raises(
        SpecError, match=r"brain\.b\.mni: true needs a 3-D volume .* \(40, 20, 1\)"
    ):
        ba.run(
            _spec(
                {"b": {"dataset": "beta_maps", "table": str(good), "mask": str(MASK), "mni": True}}
            ),
            out=tmp_path / "o",
            dry_run=True,
        )
    with pytest.raises(SpecError, match=r"brain\.b\.mask: is required for dataset beta_maps"):
        ba.run(
            _spec({"b": {"dataset": "beta_maps", "table": str(good)}}),
            out=tmp_path / "o",
            dry_run=True,
        )


def test_beta_map_nan_and_grid(tmp_path, beta_table):
    rows = [r for r in beta_table["rows"] if r["subject"] == "sub-01"]
    (tmp_path / "maps").mkdir()
    for r in rows:
        (tmp_path / r["file"]).write_bytes((beta_table["root"] / r["file"]).read_bytes())
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    victim = tmp_path / rows[5]["file"]
    img = nib.load(victim)
    data = img.get_fdata()
    data[np.asarray(nib.load(MASK).dataobj) > 0] = np.where(
        np.arange(530) < 3, np.nan, data[np.asarray(nib.load(MASK).dataobj) > 0]
    )
    nib.save(nib.Nifti1Image(data, img.affine), victim)
    spec = _spec(
        {"b": {"dataset": "beta_maps", "table": str(tmp_path / "t.csv"), "mask": str(MASK)}}
    )
    with pytest.raises(
        ValueError,
        match=rf"image '.*{rows[5]['file']}' \(table line 7\) holds 3 NaN or infinite value\(s\) "
        r"among the 530 voxels of the mask",
    ):
        ba.run(spec, out=tmp_path / "o")
    nib.save(nib.Nifti1Image(np.zeros((40, 20, 2)), img.affine), victim)
    with pytest.raises(ValueError, match=r"\(table line 7\) is not on the mask's voxel grid"):
        ba.run(spec, out=tmp_path / "o")


# ----------------------------------------------------------------------------------- cache
def test_changed_file_reruns_units(tmp_path, monkeypatch, haxby_subjects):
    monkeypatch.chdir(tmp_path)  # relative paths are from the working directory
    (tmp_path / "data").mkdir()
    for name, sub in haxby_subjects.items():
        ba.save(sub["means"], tmp_path / "data" / f"{name}.nc")
    spec = _spec(
        {"b": {"dataset": "arrays", "files": "data/sub-*.nc"}},
        {"rsa": {"n_permutations": 10, "n_bootstrap": 0}},
    )
    first = ba.run(spec, out="out")
    assert set(first.status.values()) == {"computed"}
    assert set(ba.run(spec, out="out", dry_run=True).status.values()) == {"cached"}
    means = haxby_subjects["sub-02"]["means"]
    ba.save(means * np.linspace(0.5, 1.5, means.sizes["voxel"]), tmp_path / "data" / "sub-02.nc")
    assert set(ba.run(spec, out="out", dry_run=True).status.values()) == {"to run"}
    second = ba.run(spec, out="out")
    assert set(second.status.values()) == {"computed"}
    assert not np.allclose(
        first.tree["brain/b"]["rdm"].values, second.tree["brain/b"]["rdm"].values
    )


def test_npz_key_and_bids_names(tmp_path, files, haxby_subjects):
    order = files["order"]
    for name, sub in haxby_subjects.items():
        values = sub["means"].sel(stimulus=order).values
        np.savez(tmp_path / f"{name}_task-view_betas.npz", patterns=values, other=values[:2])
    source = Arrays()
    src = {
        "dataset": "arrays",
        "files": str(tmp_path / "*.npz"),
        "stimuli": order,
        "stimulus_column": "stimulus",
        "npz_key": None,
        "subject_names": "bids",
    }
    with pytest.raises(ValueError, match=r"holds 2 arrays \('patterns', 'other'\); set npz_key"):
        source.load(src)
    with pytest.raises(ValueError, match=r"npz_key 'pattern' is not an array .* Did you mean"):
        source.load({**src, "npz_key": "pattern"})
    data = source.load({**src, "npz_key": "patterns"})
    assert list(data.subjects) == ["sub-01", "sub-02", "sub-03"]
    brain = source.brain(src, data, "correlation")
    expected = _expected([s["means"] for s in haxby_subjects.values()], order)
    np.testing.assert_allclose(brain["rdm"].values, expected, rtol=0, atol=1e-12)
    assert brain["subjects"].dims == ("subject", "stimulus_a", "stimulus_b")
    assert list(brain["subjects"]["subject"].values) == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_allclose(
        brain["subjects"].sel(subject="sub-03").values,
        rsa.rdm(haxby_subjects["sub-03"]["means"], "correlation")
        .sel(stimulus_a=order, stimulus_b=order)
        .values,
        rtol=0,
        atol=1e-12,
    )
    plain = tmp_path / "patterns.npz"
    plain.write_bytes((tmp_path / "sub-01_task-view_betas.npz").read_bytes())
    spec = _arrays(str(plain), stimuli=order, subject_names="bids", npz_key="patterns")
    with pytest.raises(SpecError, match=r"subject_names: 'bids' takes .* 'patterns\.npz' lacks"):
        ba.run(spec, out=tmp_path / "o", dry_run=True)


def test_wrong_dims_and_shapes(tmp_path, haxby_subjects):
    means = haxby_subjects["sub-01"]["means"]
    src = {
        "dataset": "arrays",
        "stimuli": None,
        "stimulus_column": "stimulus",
        "npz_key": None,
        "subject_names": "stem",
    }
    cube = means.expand_dims(time=[0.0, 0.1], axis=2)  # (stimulus, voxel, time)
    ba.save(cube, tmp_path / "cube.nc")
    with pytest.raises(
        ValueError,
        match=r"cube\.nc' has dims \('stimulus', 'voxel', 'time'\); .* exactly one feature dim "
        r".* got 2: \['voxel', 'time'\]",
    ):
        Arrays().load({**src, "files": str(tmp_path / "cube.nc")})
    ba.save(means.isel(stimulus=0), tmp_path / "one.nc")
    with pytest.raises(ValueError, match=r"one\.nc' has dims \('voxel',\); it needs a 'stimulus'"):
        Arrays().load({**src, "files": str(tmp_path / "one.nc")})
    np.save(tmp_path / "flat.npy", means.values.ravel())
    ids = [str(s) for s in means["stimulus"].values]
    with pytest.raises(ValueError, match=r"flat\.npy' holds an array of shape \(4240,\); it must"):
        Arrays().load({**src, "files": str(tmp_path / "flat.npy"), "stimuli": ids})


def test_beta_maps_subject_with_other_stimuli(tmp_path, beta_table):
    rows = [
        r
        for r in beta_table["rows"]
        if r["subject"] == "sub-01" or (r["subject"] == "sub-02" and r["stimulus"] != "cat")
    ]
    table = tmp_path / "t.csv"
    frame = pd.DataFrame(rows)
    frame["file"] = [str(beta_table["root"] / f) for f in frame["file"]]  # absolute paths
    frame.to_csv(table, index=False)
    src = {"dataset": "beta_maps", "table": str(table), "mask": str(MASK), "mni": False}
    with pytest.raises(
        StimulusAlignmentError,
        match=r"dataset beta_maps: .* subject 'sub-02' \(28 maps in '.*t\.csv', first on line "
        r"34\): missing 1: 'cat'",
    ):
        BetaMaps().load(src)


def test_nc_file_holding_a_saved_dict_is_refused_with_its_groups(tmp_path):
    from brainalign.pipeline.models.files import _rdm_from_nc
    from brainalign.pipeline.sources.arrays import _read_nc

    ids = [f"s{i}" for i in range(4)]
    pats = ba.responses(np.arange(8.0).reshape(4, 2), ids)
    path = ba.save({"lh": pats, "rh": pats}, tmp_path / "two.nc")
    with pytest.raises(ValueError, match=r"holds a tree of groups \(.*lh.*rh.*\); save one"):
        _read_nc(path)
    with pytest.raises(ValueError, match=r"m\.path: .* holds a tree of groups; an RDM file"):
        _rdm_from_nc(path, "m")
