"""M/EEG brain sources in the pipeline runner: the shipped semi-simulated EEG and any file.

The shipped dataset ``eeg_haxby_sim`` is real EEG with simulated category responses in a
known window (120-300 ms), so the time courses have a known answer.
"""

import re
import textwrap
from pathlib import Path

import mne
import numpy as np
import pytest
import yaml

import brainalign as ba
from brainalign import rsa
from brainalign.loaders.meeg import load_epochs
from brainalign.pipeline import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "pipelines" / "eeg_haxby_time_course.yaml"
FIF = ROOT / "datasets" / "eeg_haxby_sim" / "eeg_haxby_sim_raw.fif"
WINDOW = (0.12, 0.30)  # where the dataset holds its simulated responses (manifest)


def _fast_spec() -> dict:
    """The shipped spec without the language model (the runner is the same; it is faster)."""
    spec = yaml.safe_load(SPEC.read_text())
    del spec["models"]["minilm"]
    return spec


@pytest.fixture(scope="module")
def eeg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eeg") / "out"
    return ba.run(_fast_spec(), out=out)


def test_shipped_spec_is_valid():
    spec = load_spec(SPEC)
    assert spec["brain"]["eeg_sim"]["dataset"] == "eeg_haxby_sim"
    assert spec["analyses"]["time_resolved"]["n_permutations"] == 1000
    assert set(spec["models"]) == {"minilm", "category_structure", "random_network"}


def test_run_writes_time_course_section_and_results(eeg_run):
    html = eeg_run.report.read_text()
    sections = re.findall(r'<section id="[^"]*"><h2>([^<]*)</h2>', html)
    assert "Time course" in sections and sections.index("Time course") < sections.index("Data")
    assert "Time course (eeg_sim)" in html and "Peak similarity per model entry (eeg_sim)" in html
    assert "SEMI-SIMULATED" in html and "background is real EEG" in html
    tree = ba.load(eeg_run.results)
    ds = tree["time_course/eeg_sim"].to_dataset()
    assert dict(ds.sizes) == {"model": 2, "time": 59}
    assert list(ds.model.values) == ["category_structure", "random_network"]
    for var in ("similarity", "p_value", "p_value_corrected", "band_low", "band_high"):
        assert ds[var].dims == ("model", "time") and ds[var].notnull().all()
    assert ds.attrs["n_permutations"] == 1000 and ds.attrs["method"] == "pearson"
    assert (ds.band_low <= ds.band_high).all()
    # the rsa summary uses the window RDM of the same source
    assert tree["rsa/eeg_sim"].to_dataset()["similarity"].sizes == {"model": 2}
    shipped = ba.datasets.get_manifest("eeg_haxby_sim")["files"]["eeg_haxby_sim_raw.fif"]
    assert tree["brain/eeg_sim"].attrs["sha256_file"] == shipped


def test_time_course_equals_direct_time_resolved(eeg_run):
    """Independent path: MNE epochs → load_epochs → rsa.time_resolved, same seed."""
    man = ba.datasets.get_manifest("eeg_haxby_sim")
    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error")
    evoked = load_epochs(
        raw, event_id=man["event_id"], tmin=-0.1, tmax=0.35, baseline=(None, 0), average=True
    )
    evoked = evoked.sel(stimulus=man["stimuli"])  # the runner's (the manifest's) order
    groups = _fast_spec()["models"]["category_structure"]["groups"]
    direct = rsa.time_resolved(
        evoked,
        {"category_structure": rsa.categorical_rdm(groups)},
        metric="correlation",
        method="pearson",
        n_permutations=1000,
        seed=0,
    ).sel(model="category_structure")
    got = eeg_run.tree["time_course/eeg_sim"].to_dataset().sel(model="category_structure")
    np.testing.assert_allclose(got.time, direct.time)
    for var in ("similarity", "p_value", "p_value_corrected", "band_low", "band_high"):
        np.testing.assert_allclose(got[var].values, direct[var].values, atol=1e-10, err_msg=var)


def test_simulated_effect_is_recovered(eeg_run):
    ds = eeg_run.tree["time_course/eeg_sim"].to_dataset()
    t = ds.time.values
    cat = ds.sel(model="category_structure")
    peak = float(t[int(np.argmax(cat.similarity.values))])
    assert WINDOW[0] <= peak <= WINDOW[1]
    assert float(cat.similarity.max()) > 0.5
    assert float(cat.p_value_corrected.min()) < 0.05
    assert float(cat.p_value_corrected.sel(time=peak)) < 0.05
    inside = (t >= WINDOW[0]) & (t <= WINDOW[1])
    for m in ds.model.values:  # nothing significant outside the simulated window
        p = ds.p_value_corrected.sel(model=m).values
        assert (p[~inside] >= 0.05).all(), (m, t[~inside][p[~inside] < 0.05])
        assert (p[t <= 0] >= 0.05).all()  # the baseline in particular
    rnd = ds.sel(model="random_network")  # the untrained network carries no category geometry
    assert (rnd.p_value_corrected >= 0.05).all()


def test_dataset_verifies_and_says_it_is_simulated():
    hashes = ba.datasets.verify("eeg_haxby_sim")
    man = ba.datasets.get_manifest("eeg_haxby_sim")
    assert hashes == man["files"] and man["shipped"] is True and man["modality"] == "eeg"
    assert "SIMULATED" in man["title"] and "real" in man["title"]
    assert "spkit" in man["citation"] and "Haxby" in man["citation"]
    assert set(man["stimuli"]) == set(ba.datasets.HAXBY_CATEGORIES)
    assert FIF.stat().st_size < 1_000_000
    raw = mne.io.read_raw_fif(FIF, verbose="error")
    events = mne.find_events(raw, verbose="error")
    codes, counts = np.unique(events[:, 2], return_counts=True)
    assert codes.tolist() == list(range(1, 9)) and set(counts) == {4}


def _file_spec(path, event_id, *, n_permutations, **extra):
    """A spec whose brain source is the M/EEG file at ``path`` (100 ms before to 300 after)."""
    return {
        "name": "nan_epochs",
        "brain": {
            "rec": {
                "dataset": "meeg_file",
                "path": str(path),
                "event_id": event_id,
                "tmin": -0.1,
                "tmax": 0.3,
                "baseline": [None, 0],
                "picks": "eeg",
                **extra,
            }
        },
        "models": {"net": {"kind": "random_network"}},
        "analyses": {
            "rsa": {"n_bootstrap": 0},
            "time_resolved": {"n_permutations": n_permutations},
        },
    }


def test_meeg_file_source_reads_a_fif(tmp_path):
    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error").crop(0, 12)
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose="error")
    events = mne.find_events(raw, verbose="error")
    man = ba.datasets.get_manifest("eeg_haxby_sim")
    present = set(events[:, 2])
    event_id = {k: v for k, v in man["event_id"].items() if v in present}
    spec = {**_file_spec(path, event_id, n_permutations=50), "name": "own_file"}
    res = ba.run(spec, out=tmp_path / "out")
    ds = res.tree["time_course/rec"].to_dataset()
    assert ds.sizes["model"] == 1 and ds.time.values[0] < 0 < ds.time.values[-1] <= 0.31
    assert res.tree["brain/rec"].attrs["sha256_file"] == ba.datasets._registry._sha256(path)
    brain_rdm = res.tree["brain/rec"].to_dataset()["rdm"]
    assert list(brain_rdm.stimulus_a.values) == list(event_id)  # the spec's order
    assert "M/EEG recording" in res.report.read_text()
    again = ba.run(spec, out=tmp_path / "out")  # everything from the cache
    assert again.cache_hits.get("time_course") == 1 and not again.cache_misses
    status = ba.run(spec, out=tmp_path / "out", dry_run=True).status
    assert status["time_resolved/rec/net"] == "cached"


BASE = """
name: t
brain:
  eeg: {dataset: eeg_haxby_sim}
models:
  m: {kind: random_network}
analyses:
  rsa: {}
  time_resolved: {}
"""


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: meeg_file, path: nope_raw.fif}"),
            r"brain\.eeg\.path: file not found: 'nope_raw\.fif' \(relative paths are from the "
            r"working directory",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: meeg_file}"),
            r"brain\.eeg\.path: is required for dataset meeg_file",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: eeg_haxby_sim, tmn: 0.1}"),
            r"line 4\): brain\.eeg\.tmn: unknown key 'tmn'.*Did you mean 'tmin'\?",
        ),
        (
            ("  time_resolved: {}", "  time_resolved: {n_permutation: 10}"),
            r"analyses\.time_resolved\.n_permutation: unknown key.*Did you mean 'n_permutations'",
        ),
        (
            ("  time_resolved: {}", "  time_resolved: {}\n  encoding: {}"),
            r"analyses\.encoding: needs fMRI patterns, but brain\.eeg is an M/EEG source "
            r"\('eeg_haxby_sim': channels over time\)\. Use analyses\.time_resolved",
        ),
        (
            ("  time_resolved: {}", "  time_resolved: {}\n  searchlight: {radius: 6}"),
            r"analyses\.searchlight: needs fMRI patterns, but brain\.eeg is an M/EEG source",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: haxby2001}"),
            r"analyses\.time_resolved: needs M/EEG brain sources \(dataset eeg_haxby_sim or "
            r"meeg_file or meeg_bids\), but brain\.eeg is 'haxby2001', which has no time dim",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: word_similarity, file: simlex999.txt}"),
            r"analyses\.time_resolved: needs M/EEG brain sources.*brain\.eeg is "
            r"'word_similarity'",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: haxby2001, tmin: -0.1}"),
            r"brain\.eeg\.tmin: is an M/EEG option \(eeg_haxby_sim, meeg_file, meeg_bids\); "
            r"dataset "
            r"'haxby2001' takes none, got -0\.1",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: eeg_haxby_sim, path: x_raw.fif}"),
            r"brain\.eeg\.path: is fixed by dataset 'eeg_haxby_sim'.*dataset: meeg_file",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: eeg_haxby_sim, baseline: [0]}"),
            r"brain\.eeg\.baseline: must be a list \[start, end\] of two numbers or null "
            r"\(the epoch's edge\) \(s\), got \[0\]",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: eeg_haxby_sim, tmin: 0.2, tmax: 0.1}"),
            r"brain\.eeg\.tmax: must be > tmin \(0\.2\), got 0\.1",
        ),
        (
            ("{dataset: eeg_haxby_sim}", "{dataset: eeg_haxby_sim, rsa_window: [0.3, 0.1]}"),
            r"brain\.eeg\.rsa_window: must have start < end \(s\), got \[0\.3, 0\.1\]",
        ),
        (
            ("  rsa: {}", "  rsa: {metric: crossnobis}"),
            r"analyses\.rsa\.metric: 'crossnobis' is cross-validated over runs, which the "
            r"M/EEG source\(s\) eeg do not have",
        ),
        (
            ("  time_resolved: {}", "  time_resolved: {alpha: 1.5}"),
            r"analyses\.time_resolved\.alpha: must be in \(0, 1\), got 1\.5",
        ),
        (
            ("  time_resolved: {}", "  time_resolved: {metric: crossnobis}"),
            r"analyses\.time_resolved\.metric: invalid value 'crossnobis'; allowed: "
            r"'correlation', 'cosine', 'euclidean', 'sqeuclidean'",
        ),
    ],
)
def test_bad_meeg_specs_fail_before_computing(tmp_path, monkeypatch, edit, match):
    monkeypatch.chdir(tmp_path)
    old, new = edit
    assert old in BASE
    p = tmp_path / "spec.yaml"
    p.write_text(textwrap.dedent(BASE.replace(old, new)))
    with pytest.raises(SpecError, match=match):
        load_spec(p)


def test_meeg_file_spec_checks_types_and_suffix(tmp_path):
    rec = tmp_path / "notes.csv"
    rec.write_text("not a recording")
    good = tmp_path / "ok_raw.fif"
    good.write_bytes(b"")

    def spec(**brain):
        return {
            "name": "t",
            "brain": {"b": {"dataset": "meeg_file", **brain}},
            "models": {"m": {"kind": "random_network"}},
            "analyses": {"rsa": {}},
        }

    with pytest.raises(SpecError, match=r"brain\.b\.path: 'notes\.csv' is not a file type mne "
                       r"reads; expected a name ending in one of -epo\.fif"):  # fmt: skip
        load_spec(spec(path=str(rec)))
    with pytest.raises(
        SpecError,
        match=r"brain\.b\.event_id: must map stimulus names to integer event codes.*"
        r"got \{'face': 'one'\}",
    ):
        load_spec(spec(path=str(good), event_id={"face": "one"}))
    with pytest.raises(SpecError, match=r"brain\.b\.picks: must be a channel type .* got \[1\]"):
        load_spec(spec(path=str(good), picks=[1]))
    ok = load_spec(spec(path=str(good), event_id=["face", "house"]))
    assert ok["brain"]["b"]["event_id"] == ["face", "house"]


def _nan_recording(tmp_path):
    """The shipped EEG (first 12 s) with NaN samples inside the first event's epoch."""
    raw = mne.io.read_raw_fif(FIF, preload=True, verbose="error").crop(0, 12)
    events = mne.find_events(raw, verbose="error")
    sample = int(events[0, 0] - raw.first_samp) + 10  # 78 ms after the first event (128 Hz)
    ch = mne.pick_types(raw.info, eeg=True)[3]
    raw._data[ch, sample : sample + 3] = np.nan
    path = tmp_path / "nan_raw.fif"
    raw.save(path, verbose="error")
    man = ba.datasets.get_manifest("eeg_haxby_sim")
    present = set(events[:, 2])
    event_id = {k: v for k, v in man["event_id"].items() if v in present}
    first = next(k for k, v in event_id.items() if v == events[0, 2])
    return path, event_id, first, raw.ch_names[ch], len(events)


def _nan_spec(path, event_id, **extra):
    return _file_spec(path, event_id, n_permutations=20, **extra)


def test_nan_samples_are_refused_by_default(tmp_path):
    # they used to be averaged away by the window's time average without a word
    from brainalign.pipeline.sources import load_meeg

    path, event_id, first, channel, n = _nan_recording(tmp_path)
    src = load_spec(_nan_spec(path, event_id))["brain"]["rec"]
    with pytest.raises(
        ValueError,
        match=rf"M/EEG source 'meeg_file' \(nan_raw\.fif\): 1 of {n} epochs hold NaN samples "
        rf"\(per stimulus: {first}: 1; channels with NaN, in how many epochs: {channel} \(1\); "
        rf"first: epoch 0, stimulus '{first}'\).*Set on_nan: drop_epochs",
    ):
        load_meeg(src)
    with pytest.raises(ValueError, match=r"1 of \d+ epochs hold NaN samples"):
        ba.run(_nan_spec(path, event_id), out=tmp_path / "out")


def test_nan_epochs_dropped_on_request_are_counted_in_results_and_report(tmp_path):
    path, event_id, first, channel, n = _nan_recording(tmp_path)
    res = ba.run(_nan_spec(path, event_id, on_nan="drop_epochs"), out=tmp_path / "out")
    attrs = res.tree["brain/rec"].attrs
    assert attrs["n_epochs_dropped_nan"] == 1
    assert f"1 of {n} epochs held NaN samples and were left out" in attrs["epochs_dropped_nan"]
    assert f"per stimulus: {first}: 1; channels: {channel} (1)" in attrs["epochs_dropped_nan"]
    html = res.report.read_text()
    assert "NaN samples: 1 of" in html and "on_nan: drop_epochs" in html
    rdm = res.tree["brain/rec"].to_dataset()["rdm"]
    assert np.isfinite(rdm.values).all()
    # the same as averaging the other epochs by hand
    with pytest.warns(UserWarning, match=rf"1 of 14 channels hold NaN values \({channel}: 3 of"):
        epochs = load_epochs(
            path, event_id=event_id, tmin=-0.1, tmax=0.3, baseline=(None, 0), picks="eeg"
        )
    clean = epochs.isel(trial=slice(1, None))
    expected = rsa.rdm(
        ba.average_trials(clean).sel(stimulus=list(event_id), time=slice(0.0, None)).mean("time"),
        "correlation",
    )
    np.testing.assert_allclose(rdm.values, expected.values, atol=1e-10)
    ds = res.tree["time_course/rec"].to_dataset()
    assert ds.similarity.notnull().all()


def test_on_nan_spec_values():
    def spec(source):
        return yaml.safe_load(BASE.replace("{dataset: eeg_haxby_sim}", source))

    with pytest.raises(
        SpecError,
        match=r"brain\.eeg\.on_nan: invalid value 'drop_epoch'; allowed: 'error', 'drop_epochs'\. "
        r"Did you mean 'drop_epochs'\?",
    ):
        load_spec(spec("{dataset: eeg_haxby_sim, on_nan: drop_epoch}"))
    with pytest.raises(SpecError, match=r"brain\.eeg\.on_nan: is an M/EEG option"):
        load_spec(spec("{dataset: haxby2001, on_nan: error}"))
    assert (
        load_spec(spec("{dataset: eeg_haxby_sim, on_nan: drop_epochs}"))["brain"]["eeg"]["on_nan"]
        == "drop_epochs"
    )
