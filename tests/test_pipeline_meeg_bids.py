"""``dataset: meeg_bids``: M/EEG recordings in a BIDS dataset, read with MNE-BIDS.

The fixture is the shipped semi-simulated EEG (real background EEG, simulated responses) cut
into three pseudo-subjects (the recording's thirds in time, each keeping whole epochs),
written as BrainVision files (a few lines below: no pybv needed) and put in a BIDS dataset
with ``mne_bids.write_raw_bids``. The three thirds share five of the eight stimuli.
"""

import json
import shutil
from pathlib import Path

import mne
import mne_bids
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainalign as ba
import brainalign.pipeline.sources.meeg_bids  # registers the source
from brainalign import rsa
from brainalign._checks import StimulusAlignmentError
from brainalign.loaders.meeg import load_epochs
from brainalign.pipeline import SpecError, load_spec
from brainalign.pipeline.sources.meeg_bids import load_meeg_bids, meeg_bids_brain

MAN = ba.datasets.get_manifest("eeg_haxby_sim")
FIF = MAN["path"] / next(f for f in MAN["files"] if f.endswith(".fif"))
TASK = "view"
# thirds of the 16 s recording, cut 0.4 s after an event (0.5 s apart): the epochs
# (-0.1 to 0.35 s) of every event stay whole inside one third
CUTS = {"01": (0.0, 5.5), "02": (5.5, 11.0), "03": (11.0, None)}
COMMON = ["house", "shoe", "bottle", "scissors", "scrambledpix"]  # in all three thirds
GROUPS = {
    "place": ["house"],
    "object": ["shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}
EPOCHS = {"tmin": -0.1, "tmax": 0.35, "baseline": [None, 0]}


def _write_brainvision(raw: mne.io.BaseRaw, vhdr: Path) -> None:
    """Write the EEG channels of ``raw`` as BrainVision (float32 in µV, no markers)."""
    eeg = raw.copy().pick("eeg")
    data = (eeg.get_data() * 1e6).astype("<f4")
    vhdr.with_suffix(".eeg").write_bytes(data.T.tobytes())
    channels = "\n".join(f"Ch{i + 1}={n},,1,µV" for i, n in enumerate(eeg.ch_names))
    vhdr.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={vhdr.stem}.eeg\nMarkerFile={vhdr.stem}.vmrk\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(eeg.ch_names)}\n"
        f"SamplingInterval={1e6 / raw.info['sfreq']}\n\n[Binary Infos]\n"
        f"BinaryFormat=IEEE_FLOAT_32\n\n[Channel Infos]\n{channels}\n",
        encoding="utf-8",
    )
    vhdr.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\n"
        f"Codepage=UTF-8\nDataFile={vhdr.stem}.eeg\n\n[Marker Infos]\nMk1=New Segment,,1,1,0\n",
        encoding="utf-8",
    )


def _write_bids(root: Path, pieces: dict[tuple[str, str | None], tuple], scratch: Path) -> dict:
    """Write ``{(subject, run): (start, end)}`` crops of the shipped EEG; return their events."""
    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error")
    written = {}
    for (sub, run), (start, end) in pieces.items():
        part = raw.copy().crop(start, end, include_tmax=False) if end else raw.copy().crop(start)
        events = mne.find_events(part, verbose="error")
        events[:, 0] -= part.first_samp
        vhdr = scratch / f"s{sub}_{run}.vhdr"
        _write_brainvision(part, vhdr)
        bv = mne.io.read_raw_brainvision(vhdr, verbose="error")
        event_id = {k: v for k, v in MAN["event_id"].items() if v in set(events[:, 2])}
        path = mne_bids.BIDSPath(subject=sub, task=TASK, run=run, datatype="eeg", root=root)
        mne_bids.write_raw_bids(bv, path, events=events, event_id=event_id, verbose="error")
        written[(sub, run)] = (path, events, event_id)
    return written


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    base = tmp_path_factory.mktemp("meeg_bids")
    (base / "bv").mkdir()
    written = _write_bids(base / "bids", {(s, None): c for s, c in CUTS.items()}, base / "bv")
    return base / "bids", written


def _spec(root, *, event_id=COMMON, analyses=None, **brain):
    return {
        "name": "bids",
        "brain": {
            "eeg": {
                "dataset": "meeg_bids",
                "root": str(root),
                "task": TASK,
                **({"event_id": event_id} if event_id is not None else {}),
                **EPOCHS,
                **brain,
            }
        },
        "models": {"cat": {"kind": "categorical", "groups": GROUPS}},
        "analyses": analyses or {"rsa": {"n_permutations": 50, "n_bootstrap": 100}},
    }


def _direct_evoked(path: mne_bids.BIDSPath, stimuli: list[str]) -> xr.DataArray:
    """A subject's evoked without MNE-BIDS: the BrainVision file and events.tsv's samples."""
    raw = mne.io.read_raw_brainvision(path.fpath, verbose="error")
    table = pd.read_csv(str(path.fpath).replace("_eeg.vhdr", "_events.tsv"), sep="\t")
    table = table[table.trial_type.isin(stimuli)]
    codes = {s: MAN["event_id"][s] for s in stimuli}
    events = np.c_[table["sample"], np.zeros(len(table), int), table.trial_type.map(codes)]
    evoked = load_epochs(
        raw, events=events.astype(int), event_id=codes, tmin=-0.1, tmax=0.35,
        baseline=(None, 0), average=True,
    )  # fmt: skip
    return evoked.sel(stimulus=stimuli)


def _window_rdm(evoked: xr.DataArray) -> xr.DataArray:
    return rsa.rdm(evoked.sel(time=slice(0.0, None)).mean("time"), "correlation")


@pytest.fixture(scope="module")
def group_run(bids, tmp_path_factory):
    root, _ = bids
    return ba.run(_spec(root), out=tmp_path_factory.mktemp("out") / "out")


def test_bids_dataset_keeps_the_events(bids):
    root, written = bids
    assert sorted(mne_bids.get_entity_vals(root, "subject")) == ["01", "02", "03"]
    total = 0
    for path, events, event_id in written.values():
        raw = mne_bids.read_raw_bids(path, verbose="error")
        names = {v: k for k, v in event_id.items()}
        assert list(raw.annotations.description) == [names[c] for c in events[:, 2]]
        onsets = np.round(raw.annotations.onset * raw.info["sfreq"]).astype(int)
        np.testing.assert_array_equal(onsets, events[:, 0])
        assert set(COMMON) <= set(event_id)
        total += len(events)
    assert total == 32  # every event of the shipped recording is in one subject


def test_group_rsa_is_the_mean_of_the_subjects_rdms(group_run, bids):
    written = bids[1]
    direct = {f"sub-{s}": _window_rdm(_direct_evoked(p, COMMON)) for (s, _), (p, _, _) in
              written.items()}  # fmt: skip
    brain = group_run.tree["brain/eeg"].to_dataset()
    assert list(brain.rdm.stimulus_a.values) == COMMON
    expected = np.mean([r.values for r in direct.values()], axis=0)
    np.testing.assert_allclose(brain.rdm.values, expected, atol=1e-10, rtol=0)
    src = load_spec(_spec(bids[0]))["brain"]["eeg"]
    subjects = meeg_bids_brain(src, load_meeg_bids(src), "correlation")["subjects"]
    assert list(subjects.subject.values) == ["sub-01", "sub-02", "sub-03"]
    for name, r in direct.items():
        np.testing.assert_allclose(subjects.sel(subject=name).values, r.values, atol=1e-10)
    attrs = group_run.tree["brain/eeg"].attrs
    assert attrs["n_subjects"] == 3 and attrs["subjects"] == "sub-01, sub-02, sub-03"
    assert attrs["n_files"] == 21 and "sub-02_task-view_events.tsv: " in attrs["files_sha256"]
    assert attrs["n_trials"] == "house: 4, shoe: 4, bottle: 4, scissors: 4, scrambledpix: 4"
    res = group_run.tree["rsa/eeg"].to_dataset()
    assert res.attrs["n_subjects"] == 3
    for var in ("group_mean", "group_p", "similarity", "p_value"):
        assert np.isfinite(res[var].values).all(), var
    # the categorical model against each subject's RDM, averaged: the group mean
    model = rsa.categorical_rdm(GROUPS)
    per = [rsa.compare(r, model, method="spearman") for r in direct.values()]
    np.testing.assert_allclose(res.group_mean.sel(model="cat"), np.mean(per), atol=1e-10)
    html = group_run.report.read_text()
    assert "Group level: models against 3 subjects (eeg)" in html
    assert "M/EEG recordings in the BIDS dataset" in html and "grand-average evoked" in html


def test_time_resolved_reads_the_grand_average(bids, tmp_path):
    root, written = bids
    spec = _spec(root, analyses={"time_resolved": {"n_permutations": 20}})
    res = ba.run(spec, out=tmp_path / "out")
    evoked = [_direct_evoked(p, COMMON) for p, _, _ in written.values()]
    grand = evoked[0].copy(data=np.mean([e.values for e in evoked], axis=0))
    direct = rsa.time_resolved(
        grand, {"cat": rsa.categorical_rdm(GROUPS)}, metric="correlation",
        method="spearman", n_permutations=20, seed=0,
    ).sel(model="cat")  # fmt: skip
    got = res.tree["time_course/eeg"].to_dataset().sel(model="cat")
    for var in ("similarity", "p_value_corrected"):
        np.testing.assert_allclose(got[var].values, direct[var].values, atol=1e-10)


def test_load_keeps_each_subject_and_one_subject_has_no_group(bids, tmp_path):
    root, written = bids
    src = load_spec(_spec(root))["brain"]["eeg"]
    grand = load_meeg_bids(src)
    per = grand.attrs["subject_evoked"]
    assert list(per) == ["sub-01", "sub-02", "sub-03"] and grand.dims == (
        "stimulus",
        "channel",
        "time",
    )
    np.testing.assert_allclose(grand.values, np.mean([e.values for e in per.values()], 0))
    path = written[("02", None)][0]
    np.testing.assert_allclose(per["sub-02"].values, _direct_evoked(path, COMMON).values)
    res = ba.run(_spec(root, subjects=["sub-02"]), out=tmp_path / "out")
    brain = res.tree["brain/eeg"].to_dataset()
    assert "subjects" not in brain and res.tree["brain/eeg"].attrs["n_subjects"] == 1
    expected = _window_rdm(_direct_evoked(path, COMMON))
    np.testing.assert_allclose(brain.rdm.values, expected.values, atol=1e-10)
    assert "group_mean" not in res.tree["rsa/eeg"].to_dataset()


def test_runs_of_a_subject_are_pooled(tmp_path):
    # one subject, the recording in two runs: together they are every epoch of the recording
    root = tmp_path / "bids"
    (tmp_path / "bv").mkdir()
    _write_bids(root, {("01", "1"): (0.0, 8.0), ("01", "2"): (8.0, None)}, tmp_path / "bv")
    src = load_spec(_spec(root, event_id=None))["brain"]["eeg"]
    pooled = load_meeg_bids(src).attrs["subject_evoked"]["sub-01"]
    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error")
    whole = load_epochs(
        raw, event_id=MAN["event_id"], tmin=-0.1, tmax=0.35, baseline=(None, 0), average=True
    ).sel(stimulus=[str(s) for s in pooled.stimulus.values])
    assert pooled.sizes["stimulus"] == 8 and pooled.n_trials.values.tolist() == [4] * 8
    # the same epochs: equal up to the BrainVision float32 microvolts
    np.testing.assert_allclose(pooled.values, whole.values, rtol=0, atol=1e-6 * abs(whole).max())
    second = load_meeg_bids(load_spec(_spec(root, event_id=None, run=2))["brain"]["eeg"])
    assert int(second.n_trials.sum()) == 16


def test_changed_file_of_one_subject_reruns(bids, tmp_path):
    root = tmp_path / "bids"
    shutil.copytree(bids[0], root)
    spec = _spec(root, analyses={"rsa": {"n_permutations": 10, "n_bootstrap": 0}})
    out = tmp_path / "out"
    ba.run(spec, out=out)
    assert ba.run(spec, out=out, dry_run=True).status["rsa/eeg/cat"] == "cached"
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\nsub-03\n")
    assert ba.run(spec, out=out, dry_run=True).status["rsa/eeg/cat"] == "cached"
    data = root / "sub-02" / "eeg" / "sub-02_task-view_eeg.eeg"
    values = np.frombuffer(data.read_bytes(), "<f4").copy()
    values[100] += 1.0
    data.write_bytes(values.tobytes())
    assert ba.run(spec, out=out, dry_run=True).status["rsa/eeg/cat"] == "to run"
    ba.run(spec, out=out)
    events = root / "sub-03" / "eeg" / "sub-03_task-view_events.tsv"
    events.write_text(events.read_text().replace("shoe", "house", 1))
    assert ba.run(spec, out=out, dry_run=True).status["rsa/eeg/cat"] == "to run"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"root": "nowhere"},
            r"brain\.eeg\.root: BIDS root not found: 'nowhere' \(relative paths are from the "
            r"working directory",
        ),
        ({"root": None}, r"brain\.eeg\.root: is required for dataset meeg_bids"),
        ({"task": None}, r"brain\.eeg\.task: is required for dataset meeg_bids"),
        (
            {"subjects": ["01", "sub-09"]},
            r"brain\.eeg\.subjects: no subject 'sub-09' in the BIDS dataset .*; it holds the "
            r"subjects 'sub-01', 'sub-02', 'sub-03'",
        ),
        (
            {"task": "rest"},
            r"brain\.eeg\.task: no task 'rest' in the BIDS dataset .*; it holds the tasks 'view'",
        ),
        (
            {"session": "2"},
            r"brain\.eeg\.session: no session '2' in the BIDS dataset .*; it holds the sessions "
            r"none",
        ),
        ({"run": 3}, r"brain\.eeg\.run: no run '3' in the BIDS dataset .*runs none"),
        (
            {"datatype": "meg"},
            r"brain\.eeg: dataset meeg_bids: no meg recording of task 'view' under .*datatypes: "
            r"'eeg'",
        ),
        ({"datatype": "EEG"}, r"brain\.eeg\.datatype: invalid value 'EEG'; allowed: 'eeg', 'meg'"),
        ({"subjects": "some"}, r"brain\.eeg\.subjects: must be 'all' or a list .*got 'some'"),
        ({"event_id": {"house": "1"}}, r"brain\.eeg\.event_id: must map event names"),
        ({"rsa_window": [0.3, 0.1]}, r"brain\.eeg\.rsa_window: must have start < end"),
    ],
)
def test_bad_specs_name_the_key_and_what_exists(bids, tmp_path, monkeypatch, change, match):
    monkeypatch.chdir(tmp_path)
    spec = _spec(bids[0])
    src = spec["brain"]["eeg"]
    for k, v in change.items():
        if v is None:
            del src[k]
        else:
            src[k] = v
    with pytest.raises(SpecError, match=match):
        load_spec(spec)


def test_event_names_without_annotations_and_other_stimuli_fail(bids):
    root, _ = bids
    src = load_spec(_spec(root, event_id=["house", "dog"]))["brain"]["eeg"]
    with pytest.raises(
        ValueError,
        match=r"dataset meeg_bids: sub-01 \('sub-01_task-view_eeg\.vhdr'\): the event_id "
        r"name\(s\) 'dog' match no annotation; the annotations \(events\.tsv trial_type\) found "
        r"are 'house', 'cat', 'scissors', 'scrambledpix', 'bottle', 'shoe'",
    ):
        load_meeg_bids(src)
    src = load_spec(_spec(root, event_id=["house", "cat"]))["brain"]["eeg"]  # sub-03: no cat
    with pytest.raises(ValueError, match=r"sub-03 .*the event_id name\(s\) 'cat' match no"):
        load_meeg_bids(src)
    src = load_spec(_spec(root, event_id=None))["brain"]["eeg"]  # every annotation: they differ
    with pytest.raises(
        StimulusAlignmentError,
        match=r"dataset meeg_bids: the subjects do not hold the same stimuli as the first "
        r"subject 'sub-01'.*subject 'sub-02' .*extra 2: 'chair', 'face'.*subject 'sub-03' "
        r".*missing 1: 'cat'; extra 2: ",
    ):
        load_meeg_bids(src)


def test_bids_keys_on_another_source_are_refused(bids):
    spec = _spec(bids[0])
    spec["brain"]["eeg"] = {"dataset": "haxby2001", "root": str(bids[0])}
    with pytest.raises(
        SpecError,
        match=r"brain\.eeg\.root: is an option of dataset\(s\) 'fmri_bids', 'meeg_bids'; "
        r"dataset 'haxby2001' takes none",
    ):
        load_spec(spec)


def test_init_writes_a_spec_for_the_bids_dataset_that_runs_unchanged(bids, tmp_path, capsys):
    # issue 19: `brainalign init` on a BIDS folder gives a spec that runs with no editing
    from brainalign.cli import main

    root, _ = bids
    spec = tmp_path / "eeg.yaml"
    window = ["--tmin", str(EPOCHS["tmin"]), "--tmax", str(EPOCHS["tmax"])]
    assert main(["init", str(root), "-o", str(spec), *window]) == 0
    text = spec.read_text()
    assert "dataset: meeg_bids" in text and "subjects: all" in text
    assert f"event_id: {json.dumps(sorted(COMMON))}" in text  # the conditions all subjects have
    res = ba.run(spec, out=tmp_path / "out")
    ds = res.tree["rsa/view"]  # the source is named after the task
    assert ds.attrs["n_subjects"] == 3 and "group_p" in ds.to_dataset()
    assert "time_course" in res.tree.children
    assert "Group level: models against 3 subjects" in res.report.read_text()
