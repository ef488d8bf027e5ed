import numpy as np
import pytest

import brainalign as ba
from brainalign import datasets


def test_registry_and_hashes():
    assert "haxby2001" in datasets.list_datasets()
    man = datasets.get_manifest("haxby2001")
    assert man["tr"] == 2.5 and "Haxby" in man["citation"] and "CC0" in man["licence"]
    hashes = datasets.verify("haxby2001")
    assert hashes == man["files"]
    assert list(datasets.verify("haxby2001", ["mask.nii.gz"])) == ["mask.nii.gz"]
    with pytest.raises(
        ValueError, match=r"'name' parameter.*got 'haxby'.*Did you mean 'haxby2001'"
    ):
        datasets.get_manifest("haxby")


def test_corrupt_file_is_detected(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(datasets.data_dir() / "haxby2001", tmp_path / "haxby2001")
    (tmp_path / "haxby2001" / "mask.nii.gz").write_bytes(b"not a nifti")
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"haxby2001'?: mask.nii.gz has sha256 [0-9a-f]{64}, but "
        r"the manifest expects 8d879d35",
    ):
        datasets.verify("haxby2001")
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"datasets folder was not found"):
        datasets.list_datasets()


def test_haxby_schema_and_counts(haxby):
    ba.validate(haxby)
    assert haxby.sizes == {"trial": 864, "voxel": 530}
    assert haxby.attrs["modality"] == "fmri" and haxby.attrs["tr"] == 2.5
    stim, counts = np.unique(haxby.stimulus.values, return_counts=True)
    assert set(stim) == set(datasets.HAXBY_CATEGORIES) and set(counts) == {108}
    assert sorted(np.unique(haxby.run.values)) == list(range(1, 13))
    # per-run z-scoring: mean 0 / sd 1 over each run's volumes (rest included) -> finite here
    assert np.isfinite(haxby.values).all()
    raw = datasets.load_haxby(preprocess=False, include_rest=True)
    assert raw.sizes["trial"] == 1452 and raw.attrs["preprocess"] == "none"


def test_haxby_holds_category_information(haxby):
    """Leave-one-run-out correlation classifier over 8 categories (chance 0.125).

    DATA.md reports about 0.51 for this slice; the reference decoder here is plain numpy.
    """
    acc = []
    runs = haxby.run.values
    for r in np.unique(runs):
        train = ba.average_trials(haxby.isel(trial=np.flatnonzero(runs != r)))
        test = haxby.isel(trial=np.flatnonzero(runs == r))
        c = np.corrcoef(test.values, train.values)[: test.sizes["trial"], test.sizes["trial"] :]
        acc.append(np.mean(train.stimulus.values[c.argmax(1)] == test.stimulus.values))
    assert np.mean(acc) > 0.4


def test_public_manifests_are_complete():
    for name in ("ds000105", "things_fmri", "nsd", "ds000117"):
        man = datasets.get_manifest(name)
        assert man["shipped"] is False and man["files"] == {}
        for key in ("title", "citation", "licence", "layout", "loader"):
            assert man[key], f"{name}: {key} is empty"
        assert man["source"]["url"].startswith("https://")
        with pytest.raises(ValueError, match=rf"Dataset '{name}' is not shipped with brainalign"):
            datasets.verify(name)
    with pytest.raises(
        FileNotFoundError,
        match=r"No local copy of 'ds000105' given \(root=None.*"
        r"openneuro.org/datasets/ds000105.*BRAINALIGN_DS000105_ROOT",
    ):
        datasets.local_root("ds000105")


def test_shipped_openfmri_copy_is_registered_with_hashes():
    man = datasets.get_manifest("haxby2001")
    runs = [f for f in man["files"] if f.endswith("bold_1slice.nii.gz")]
    assert len(runs) == 12
    assert datasets.verify("haxby2001", runs[:2]) == {f: man["files"][f] for f in runs[:2]}
    betas = datasets.load_haxby_openfmri(runs=[1, 2])
    assert betas.sizes == {"trial": 16, "voxel": 530}
    assert list(np.unique(betas.run.values)) == [1, 2]
    whole = datasets.load_haxby_openfmri(resolution="25mm", runs=[3])
    assert whole.sizes["voxel"] == 129 and whole.attrs["roi"] == "brain"
    with pytest.raises(ValueError, match=r"'runs' parameter.*got 13"):
        datasets.load_haxby_openfmri(runs=[13])


def test_bids_reader_on_a_local_copy(tmp_path):
    """A tiny BIDS tree made from the shipped runs reads like the OpenFMRI route."""
    import shutil

    from brainalign.loaders import fmri

    man = datasets.get_manifest("haxby2001")
    sub = man["path"] / "openfmri_sub001"
    func = tmp_path / "sub-1" / "func"
    func.mkdir(parents=True)
    key = sub / "models" / "model001" / "condition_key.txt"
    for r in (1, 2):
        shutil.copy(
            sub / f"sub001/BOLD/task001_run{r:03d}/bold_1slice.nii.gz",
            func / f"sub-1_task-objectviewing_run-{r}_bold.nii.gz",
        )
        ev = fmri.read_openfmri_events(
            sub / f"sub001/model/model001/onsets/task001_run{r:03d}", key
        )
        ev.to_csv(func / f"sub-1_task-objectviewing_run-{r}_events.tsv", sep="\t", index=False)
    pairs = datasets.find_bids_runs(tmp_path, "1", "objectviewing")
    assert [p[0].name for p in pairs] == [
        "sub-1_task-objectviewing_run-1_bold.nii.gz",
        "sub-1_task-objectviewing_run-2_bold.nii.gz",
    ]
    bids = datasets.load_bids_fmri(
        tmp_path, "1", "objectviewing", mask=man["path"] / "mask.nii.gz"
    )
    ref = datasets.load_haxby_openfmri(runs=[1, 2])
    np.testing.assert_allclose(bids.values, ref.values)
    assert list(bids.run.values) == list(ref.run.values)
    with pytest.raises(FileNotFoundError, match=r"No folder sub-2 in .*subjects here: 'sub-1'"):
        datasets.find_bids_runs(tmp_path, "2", "objectviewing")
    with pytest.raises(
        FileNotFoundError,
        match=r"No BOLD file for sub-1, task-rest.*tasks here: "
        r"'objectviewing'",
    ):
        datasets.find_bids_runs(tmp_path, "1", "rest")
    (func / "sub-1_task-objectviewing_run-2_events.tsv").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"Missing events for sub-1_task-objectviewing_run-2"
    ):
        datasets.find_bids_runs(tmp_path, "1", "objectviewing")
