"""brainalign.loaders.meeg: MNE objects and files → schema arrays.

Reference values come from MNE itself (``epochs.get_data()``, ``evoked.data``, MNE's own
baseline/crop/decimate) or from slicing the raw samples with numpy, never from the loader.
The real data are spkit's 16 s of 14-channel Emotiv EEG (DATA.md) with synthetic events.
"""

import importlib.util
import pickle
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainalign as ba
from brainalign import SchemaError
from brainalign.loaders.meeg import load_epochs, load_source_estimate

SFREQ = 128.0
EMOTIV = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4"]
EVENT_ID = {"left": 1, "right": 2}


def _spkit_eeg():
    """(samples, channels) in µV and the channel names, from spkit's shipped pickle."""
    spec = importlib.util.find_spec("spkit")
    if spec is None:
        pytest.fail("spkit is not installed: pip install -e '.[test]'")
    path = Path(spec.submodule_search_locations[0]) / "data" / "files" / "EEG16SecData.pkl"
    with open(path, "rb") as f:
        values, names = pickle.load(f)
    return np.asarray(values, dtype=np.float64), list(names)


def _synthetic_events(n_samples):
    """Two conditions alternating every second, from 1 s to 1 s before the end."""
    onsets = np.arange(int(SFREQ), n_samples - int(SFREQ), int(SFREQ))
    codes = np.where(np.arange(onsets.size) % 2 == 0, 1, 2)
    return np.column_stack([onsets, np.zeros_like(onsets), codes])


@pytest.fixture(scope="session")
def _eeg_session():
    values, names = _spkit_eeg()
    info = mne.create_info(names, SFREQ, "eeg")
    raw = mne.io.RawArray(values.T * 1e-6, info, verbose="error")  # µV → V
    raw.set_montage("standard_1020", verbose="error")
    return raw, values


@pytest.fixture
def eeg_raw(_eeg_session):
    """The real EEG as an mne.io.RawArray in volts with the standard 10-20 montage."""
    return _eeg_session[0].copy()


@pytest.fixture
def eeg_uv(_eeg_session):
    """The raw samples as shipped: (samples, channels) in µV."""
    return _eeg_session[1].copy()


@pytest.fixture
def eeg_events(_eeg_session):
    return _synthetic_events(_eeg_session[1].shape[0])


def _sim_epochs(seed=0):
    rng = np.random.default_rng(seed)
    info = mne.create_info(["Fz", "Cz", "Pz", "Oz"], 100.0, "eeg")
    codes = np.array([1, 2, 3, 1, 2, 3, 1, 2])
    events = np.column_stack([np.arange(8) * 100, np.zeros(8, int), codes])
    metadata = pd.DataFrame({"word": [f"w{i}" for i in range(8)], "code": codes})
    return mne.EpochsArray(
        rng.normal(size=(8, 4, 60)),
        info,
        events=events,
        tmin=-0.2,
        event_id={"face": 1, "house": 2, "tool": 3},
        metadata=metadata,
        verbose="error",
    )


@pytest.fixture(scope="session")
def _sim_session():
    return _sim_epochs()


@pytest.fixture
def sim_epochs(_sim_session):
    """8 simulated EEG epochs (3 conditions, 4 channels, 60 samples at 100 Hz, no montage)."""
    return _sim_session.copy()


def _without_source(da):
    return da.assign_attrs(source="-")


# --------------------------------------------------------------------------------------
# Real EEG (spkit, Emotiv 14 channels) with synthetic events
# --------------------------------------------------------------------------------------
def test_real_eeg_raw_events_match_the_samples(eeg_raw, eeg_uv, eeg_events):
    da = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID, tmin=-0.2, tmax=0.5)
    # MNE rounds the window to samples: round(-0.2 * 128) = -26, 0.5 * 128 = 64.
    first, last = -26, 64
    expected = np.stack([eeg_uv[s + first : s + last + 1].T * 1e-6 for s in eeg_events[:, 0]])
    assert da.dims == ("trial", "channel", "time")
    np.testing.assert_array_equal(da.values, expected)
    np.testing.assert_array_equal(da.time.values, np.arange(first, last + 1) / SFREQ)
    names = np.where(eeg_events[:, 2] == 1, "left", "right")
    assert da.stimulus.values.tolist() == names.tolist()
    np.testing.assert_array_equal(da["sample"].values, eeg_events[:, 0])
    assert da.channel.values.tolist() == EMOTIV
    assert set(da.ch_type.values.tolist()) == {"eeg"}
    assert da.attrs["sfreq"] == SFREQ and da.attrs["tmin"] == first / SFREQ
    assert da.attrs["modality"] == "eeg" and da.attrs["source"] == "mne.io.Raw"
    assert da.attrs["event_id"] == EVENT_ID and da.attrs["baseline"] is None
    # Scalp EEG in volts: a standard deviation of tens of microvolts.
    assert 1e-6 < float(da.std()) < 1e-3
    ba.validate(da)


def test_real_eeg_positions_are_the_montage(eeg_raw, eeg_events):
    da = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID)
    pos = eeg_raw.get_montage().get_positions()["ch_pos"]
    xyz = np.column_stack([da.ch_x, da.ch_y, da.ch_z])
    assert np.all(np.isfinite(xyz))
    np.testing.assert_allclose(xyz, np.array([pos[name] for name in EMOTIV]))
    # Left-hemisphere sites have negative x, right-hemisphere positive (RAS head frame).
    assert float(da.ch_x.sel(channel="T7")) < 0 < float(da.ch_x.sel(channel="T8"))


def test_real_eeg_epochs_object_equals_raw_path(eeg_raw, eeg_events):
    epochs = mne.Epochs(
        eeg_raw,
        eeg_events,
        EVENT_ID,
        tmin=-0.1,
        tmax=0.4,
        baseline=None,
        preload=True,
        verbose="error",
    )
    from_epochs = load_epochs(epochs)
    from_raw = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID, tmin=-0.1, tmax=0.4)
    np.testing.assert_array_equal(from_epochs.values, epochs.get_data())
    np.testing.assert_array_equal(from_epochs.time.values, epochs.times)
    assert from_epochs.attrs["source"] == "mne.Epochs"
    xr.testing.assert_identical(_without_source(from_epochs), _without_source(from_raw))


def test_real_eeg_stim_channel_events_are_found(eeg_raw, eeg_events):
    stim = np.zeros((1, eeg_raw.n_times))
    stim[0, eeg_events[:, 0]] = eeg_events[:, 2]
    stim[0, eeg_events[:, 0] + 1] = eeg_events[:, 2]  # MNE's shortest_event is 2 samples
    info = mne.create_info(["STI 014"], SFREQ, "stim")
    with_stim = eeg_raw.copy().add_channels([mne.io.RawArray(stim, info, verbose="error")])
    da = load_epochs(with_stim, event_id=EVENT_ID)
    reference = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID)
    xr.testing.assert_identical(da, reference)  # the stim channel is not a data channel
    codes_only = load_epochs(with_stim)  # no event_id: codes named by their number
    assert codes_only.stimulus.values.tolist()[:2] == ["1", "2"]
    assert codes_only.attrs["event_id"] == {"1": 1, "2": 2}


def test_real_eeg_annotation_events_keep_their_names(eeg_raw, eeg_events):
    onsets = eeg_events[:, 0] / SFREQ
    labels = np.where(eeg_events[:, 2] == 1, "face", "house").tolist()
    annotations = mne.Annotations(
        np.r_[onsets, 0.5], np.zeros(onsets.size + 1), [*labels, "BAD_blink"]
    )
    raw = eeg_raw.set_annotations(annotations, verbose="error")
    da = load_epochs(raw, reject_by_annotation=False)
    assert da.stimulus.values.tolist() == labels
    reference = mne.Epochs(
        raw,
        eeg_events,
        tmin=-0.2,
        tmax=0.5,
        baseline=None,
        reject_by_annotation=False,
        preload=True,
        verbose="error",
    ).get_data()
    np.testing.assert_array_equal(da.values, reference)
    only_face = load_epochs(raw, event_id="face")
    assert set(only_face.stimulus.values.tolist()) == {"face"}
    assert only_face.sizes["trial"] == labels.count("face")


def test_real_eeg_average_is_the_condition_mean(eeg_raw, eeg_uv, eeg_events):
    avg = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID, average=True)
    assert avg.dims == ("stimulus", "channel", "time")
    assert avg.stimulus.values.tolist() == ["left", "right"]
    segments = np.stack([eeg_uv[s - 26 : s + 65].T * 1e-6 for s in eeg_events[:, 0]])
    for code, name in ((1, "left"), (2, "right")):
        expected = segments[eeg_events[:, 2] == code].mean(axis=0)
        np.testing.assert_allclose(avg.sel(stimulus=name).values, expected, rtol=1e-12)
        assert int(avg.n_trials.sel(stimulus=name)) == int((eeg_events[:, 2] == code).sum())
    assert "sample" not in avg.coords  # a per-trial coordinate does not survive averaging


# --------------------------------------------------------------------------------------
# Simulated epochs: labels, metadata, processing against MNE
# --------------------------------------------------------------------------------------
def test_simulated_epochs_values_and_coords(sim_epochs):
    da = load_epochs(sim_epochs, run=3, subject="s01")
    np.testing.assert_array_equal(da.values, sim_epochs.get_data())
    assert da.stimulus.values.tolist() == ["face", "house", "tool"] * 2 + ["face", "house"]
    assert da.run.values.tolist() == [3] * 8
    assert da.attrs["subject"] == "s01"
    assert np.all(np.isnan(da.ch_x.values))  # no montage: positions unknown
    ba.validate(da)


def test_metadata_column_gives_stimulus_ids(sim_epochs):
    da = load_epochs(sim_epochs, stimulus="word")
    assert da.stimulus.values.tolist() == [f"w{i}" for i in range(8)]
    assert da.event.values.tolist()[:3] == ["face", "house", "tool"]
    selected = load_epochs(sim_epochs, stimulus="word", event_id=["house"])
    assert selected.stimulus.values.tolist() == ["w1", "w4", "w7"]
    np.testing.assert_array_equal(selected.values, sim_epochs["house"].get_data())


def test_stimulus_sequence_and_per_trial_run(sim_epochs):
    ids = [f"s{i % 4}" for i in range(8)]
    da = load_epochs(sim_epochs, stimulus=ids, run=[1, 1, 1, 1, 2, 2, 2, 2])
    assert da.stimulus.values.tolist() == ids
    avg = load_epochs(sim_epochs, stimulus=ids, average=True)
    expected = sim_epochs.get_data()[[0, 4]].mean(axis=0)
    np.testing.assert_allclose(avg.sel(stimulus="s0").values, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("baseline", "tmin", "tmax", "decim"),
    [
        ((None, 0.0), None, None, 1),
        ((-0.1, 0.0), 0.0, 0.3, 1),
        (None, -0.1, None, 2),
        ((None, None), None, 0.25, 3),
    ],
)
def test_baseline_crop_decim_agree_with_mne(sim_epochs, baseline, tmin, tmax, decim):
    da = load_epochs(
        sim_epochs, baseline=baseline, tmin=tmin, tmax=tmax, decim=decim, verbose="error"
    )
    ref = sim_epochs.copy()
    if baseline is not None:
        ref.apply_baseline(baseline, verbose="error")
    ref.crop(tmin, tmax, verbose="error").decimate(decim, verbose="error")
    np.testing.assert_array_equal(da.values, ref.get_data())
    np.testing.assert_array_equal(da.time.values, ref.times)
    assert da.attrs["sfreq"] == 100.0 / decim and da.attrs["decim"] == decim
    assert da.attrs["tmin"] == ref.times[0]
    expected_baseline = None if baseline is None else tuple(float(b) for b in ref.baseline)
    assert da.attrs["baseline"] == expected_baseline


def test_baseline_on_raw_agrees_with_mne(eeg_raw, eeg_events):
    da = load_epochs(eeg_raw, events=eeg_events, event_id=EVENT_ID, baseline=(None, 0))
    ref = mne.Epochs(eeg_raw, eeg_events, EVENT_ID, baseline=(None, 0), verbose="error")
    np.testing.assert_allclose(da.values, ref.get_data(), rtol=1e-12, atol=1e-18)
    pre = da.sel(time=slice(None, 0.0)).mean("time")
    np.testing.assert_allclose(pre.values, 0.0, atol=1e-18)


def test_average_equals_numpy_condition_means(sim_epochs):
    avg = load_epochs(sim_epochs, average=True)
    data, codes = sim_epochs.get_data(), sim_epochs.events[:, 2]
    assert avg.stimulus.values.tolist() == ["face", "house", "tool"]
    for name, code in sim_epochs.event_id.items():
        np.testing.assert_allclose(
            avg.sel(stimulus=name).values, data[codes == code].mean(axis=0), rtol=1e-12
        )
    assert avg.n_trials.values.tolist() == [3, 3, 2]


# --------------------------------------------------------------------------------------
# Evoked
# --------------------------------------------------------------------------------------
def test_evoked_list_is_per_stimulus(sim_epochs):
    evokeds = [sim_epochs[name].average() for name in ("tool", "face")]
    da = load_epochs(evokeds)
    assert da.dims == ("stimulus", "channel", "time")
    assert da.stimulus.values.tolist() == ["tool", "face"]
    np.testing.assert_array_equal(da.values, np.stack([ev.data for ev in evokeds]))
    assert da.n_trials.values.tolist() == [2, 3]
    assert da.attrs["source"] == "mne.Evoked" and "event_id" not in da.attrs
    single = load_epochs(evokeds[1], baseline=(None, 0), tmin=-0.1)
    ref = evokeds[1].copy().apply_baseline((None, 0), verbose="error").crop(-0.1, None)
    np.testing.assert_array_equal(single.values[0], ref.data)
    np.testing.assert_array_equal(single.time.values, ref.times)
    renamed = load_epochs(evokeds, stimulus=["b"], event_id=["face"])  # ids after selection
    assert renamed.stimulus.values.tolist() == ["b"]
    np.testing.assert_array_equal(renamed.values[0], evokeds[1].data)


# --------------------------------------------------------------------------------------
# Channels: picks, types, modality, bad channels
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _mixed_session():
    rng = np.random.default_rng(1)
    names = ["MEG 0111", "MEG 0112", "MEG 0113", "EEG 001", "EEG 002", "SEEG 1", "EOG 061"]
    types = ["mag", "grad", "grad", "eeg", "eeg", "seeg", "eog"]
    info = mne.create_info(names, 200.0, types)
    events = np.column_stack([np.arange(4) * 50, np.zeros(4, int), [1, 2, 1, 2]])
    return mne.EpochsArray(rng.normal(size=(4, 7, 20)), info, events=events, verbose="error")


@pytest.fixture
def mixed_epochs(_mixed_session):
    return _mixed_session.copy()


@pytest.mark.parametrize(
    ("picks", "channels", "modality"),
    [
        (None, ["MEG 0111", "MEG 0112", "MEG 0113", "EEG 001", "EEG 002", "SEEG 1"], "meg"),
        ("meg", ["MEG 0111", "MEG 0112", "MEG 0113"], "meg"),
        ("grad", ["MEG 0112", "MEG 0113"], "meg"),
        ("eeg", ["EEG 001", "EEG 002"], "eeg"),
        ("seeg", ["SEEG 1"], "ieeg"),
        (["EEG 002", "EOG 061"], ["EEG 002", "EOG 061"], "eeg"),
        ([4, 0], ["EEG 002", "MEG 0111"], "meg"),
        ("all", None, "meg"),
    ],
)
def test_picks_follow_mne(mixed_epochs, picks, channels, modality):
    da = load_epochs(mixed_epochs, picks=picks)
    ref = mixed_epochs.copy().pick("data" if picks is None else picks, exclude="bads")
    assert da.channel.values.tolist() == (channels or ref.ch_names)
    assert da.ch_type.values.tolist() == ref.get_channel_types()
    np.testing.assert_array_equal(da.values, ref.get_data())
    assert da.attrs["modality"] == modality


def test_bad_channels_are_excluded_unless_named(mixed_epochs):
    mixed_epochs.info["bads"] = ["EEG 001"]
    assert load_epochs(mixed_epochs, picks="eeg").channel.values.tolist() == ["EEG 002"]
    named = load_epochs(mixed_epochs, picks=["EEG 001"])
    assert named.channel.values.tolist() == ["EEG 001"]


def _with_bad_channels(epochs):
    data = epochs.get_data()
    data[2, 1, 5:9] = np.nan  # Cz: 4 NaN samples in one trial
    data[:, 3] = 1e-6  # Oz: constant
    return mne.EpochsArray(
        data,
        epochs.info,
        events=epochs.events,
        event_id=epochs.event_id,
        tmin=-0.2,
        verbose="error",
    )


@pytest.mark.parametrize(
    ("drop_bad", "kept"),
    [
        ("none", ["Fz", "Cz", "Pz", "Oz"]),
        ("nan", ["Fz", "Pz", "Oz"]),
        ("constant", ["Fz", "Cz", "Pz"]),
        ("both", ["Fz", "Pz"]),
    ],
)
def test_drop_bad_reports_and_drops(sim_epochs, drop_bad, kept):
    epochs = _with_bad_channels(sim_epochs)
    messages = {
        "none": r"1 of 4 channels hold NaN values \(Cz: 4 of 480\); 1 of 4 channels are "
        r"constant \('Oz'\)",
        "nan": r"^1 of 4 channels are constant \('Oz'\)\. They are kept \(drop_bad='nan'\); "
        r"pass drop_bad='both'",
        "constant": r"^1 of 4 channels hold NaN values \(Cz: 4 of 480\)\. They are kept",
    }
    if drop_bad in messages:
        with pytest.warns(UserWarning, match=messages[drop_bad]):
            da = load_epochs(epochs, drop_bad=drop_bad)
    else:
        da = load_epochs(epochs, drop_bad=drop_bad)
    assert da.channel.values.tolist() == kept
    dropped = [c for c in ["Fz", "Cz", "Pz", "Oz"] if c not in kept]
    assert da.attrs["dropped_channels"] == dropped
    np.testing.assert_array_equal(da.values, epochs.copy().pick(kept).get_data())


# --------------------------------------------------------------------------------------
# Files: FIF (epochs, raw, evoked), BrainVision; brainalign.save round trip
# --------------------------------------------------------------------------------------
# MNE's metadata reader calls a pandas API that pandas 3.1 deprecates (not brainalign's).
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")
def test_fif_epochs_round_trip(sim_epochs, tmp_path):
    path = tmp_path / "x-epo.fif"
    sim_epochs.save(path, fmt="double", verbose="error")
    from_file = load_epochs(path, stimulus="word", baseline=(None, 0))
    from_object = load_epochs(sim_epochs, stimulus="word", baseline=(None, 0))
    assert from_file.attrs["source"] == str(path)
    xr.testing.assert_identical(_without_source(from_file), _without_source(from_object))
    load_epochs(str(path))  # a str path works too


def test_fif_raw_round_trip(eeg_raw, eeg_events, tmp_path):
    path = tmp_path / "x_raw.fif"
    eeg_raw.save(path, fmt="double", verbose="error")
    kwargs = {"events": eeg_events, "event_id": EVENT_ID, "baseline": (None, 0), "decim": 2}
    from_file = load_epochs(path, verbose="error", **kwargs)
    from_object = load_epochs(eeg_raw, verbose="error", **kwargs)
    positions = ["ch_x", "ch_y", "ch_z"]
    xr.testing.assert_identical(
        _without_source(from_file).drop_vars(positions),
        _without_source(from_object).drop_vars(positions),
    )
    for name in positions:  # FIF stores sensor locations in float32
        np.testing.assert_allclose(from_file[name], from_object[name], rtol=1e-6)


def test_fif_evoked_round_trip(sim_epochs, tmp_path):
    evokeds = [sim_epochs[name].average() for name in ("face", "house", "tool")]
    path = tmp_path / "x-ave.fif"
    mne.write_evokeds(path, evokeds, verbose="error")
    from_file = load_epochs(path)
    assert from_file.stimulus.values.tolist() == ["face", "house", "tool"]
    np.testing.assert_allclose(
        from_file.values, np.stack([ev.data for ev in evokeds]), rtol=1e-6, atol=1e-12
    )


def _write_brainvision(folder, values_uv, names, markers):
    """A minimal BrainVision recording (float32 µV, multiplexed) written by hand."""
    folder.mkdir()
    (folder / "rec.eeg").write_bytes(values_uv.astype("<f4").tobytes())
    channels = "\n".join(f"Ch{i + 1}={name},,1,µV" for i, name in enumerate(names))
    (folder / "rec.vhdr").write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n"
        "[Common Infos]\nCodepage=UTF-8\nDataFile=rec.eeg\nMarkerFile=rec.vmrk\n"
        "DataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(names)}\nSamplingInterval={1e6 / SFREQ}\n\n"
        "[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n"
        f"[Channel Infos]\n{channels}\n",
        encoding="utf-8",
    )
    lines = "\n".join(
        f"Mk{i + 1}=Stimulus,S{code:3d},{sample + 1},1,0"
        for i, (sample, code) in enumerate(markers)
    )
    (folder / "rec.vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n"
        "[Common Infos]\nCodepage=UTF-8\nDataFile=rec.eeg\n\n"
        f"[Marker Infos]\n{lines}\n",
        encoding="utf-8",
    )
    return folder / "rec.vhdr"


def test_brainvision_file_with_markers(eeg_uv, eeg_events, tmp_path):
    path = _write_brainvision(tmp_path / "bv", eeg_uv, EMOTIV, eeg_events[:, [0, 2]])
    da = load_epochs(path, event_id=["Stimulus/S  1", "Stimulus/S  2"], tmin=0.0, tmax=0.25)
    assert da.attrs["source"] == str(path)
    segments = np.stack(
        [eeg_uv[s : s + 33].T.astype(np.float32).astype(np.float64) for s in eeg_events[:, 0]]
    )
    np.testing.assert_allclose(da.values, segments * 1e-6, rtol=1e-6)
    expected = np.where(eeg_events[:, 2] == 1, "Stimulus/S  1", "Stimulus/S  2")
    assert da.stimulus.values.tolist() == expected.tolist()


def test_brainalign_save_load_round_trip(eeg_raw, eeg_events, tmp_path):
    for average in (False, True):
        da = load_epochs(
            eeg_raw,
            events=eeg_events,
            event_id=EVENT_ID,
            baseline=(None, 0),
            average=average,
            run=1,
            subject="emotiv",
        )
        path = ba.save(da, tmp_path / f"epochs_{average}.nc")
        xr.testing.assert_identical(ba.load(path), da)


# --------------------------------------------------------------------------------------
# Source estimates
# --------------------------------------------------------------------------------------
def _stcs(n=3, tmin=0.0):
    vertices = [np.arange(3), np.arange(2)]
    data = np.arange(n * 5 * 4, dtype=float).reshape(n, 5, 4)
    return [
        mne.SourceEstimate(d, vertices, tmin=tmin, tstep=0.01, subject="fsaverage") for d in data
    ], data


def test_source_estimates_to_stimulus_vertex_time():
    stcs, data = _stcs()
    da = load_source_estimate(stcs, ["a", "b", "c"], modality="meg")
    assert da.dims == ("stimulus", "vertex", "time")
    np.testing.assert_array_equal(da.values, data)
    assert da.hemi.values.tolist() == ["lh", "lh", "lh", "rh", "rh"]
    assert da.vertno.values.tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(da.time.values, [0.0, 0.01, 0.02, 0.03])
    assert da.attrs["sfreq"] == pytest.approx(100.0) and da.attrs["subject"] == "fsaverage"
    assert da.attrs["modality"] == "meg" and da.attrs["src_type"] == "surface"
    ba.validate(da)
    from_dict = load_source_estimate(dict(zip(["a", "b", "c"], stcs, strict=True)), modality="meg")
    xr.testing.assert_identical(from_dict, da)


def test_source_estimate_trials_and_volume():
    stcs, data = _stcs(4)
    da = load_source_estimate(stcs, ["x", "y", "x", "y"], sample_dim="trial")
    avg = ba.average_trials(da)
    np.testing.assert_allclose(avg.sel(stimulus="x").values, data[[0, 2]].mean(axis=0))
    vol = mne.VolSourceEstimate(np.ones((4, 2)), [np.array([10, 11, 20, 30])], 0.0, 0.5)
    da = load_source_estimate(vol, ["only"], subject="s2")
    assert da.hemi.values.tolist() == ["vol"] * 4 and da.vertno.values.tolist() == [10, 11, 20, 30]
    assert da.attrs["src_type"] == "volume" and da.attrs["subject"] == "s2"
    assert da.attrs["source"] == "mne.VolSourceEstimate"


# --------------------------------------------------------------------------------------
# Bad input fails loudly and precisely
# --------------------------------------------------------------------------------------
def test_wrong_object_types(sim_epochs):
    with pytest.raises(TypeError, match=r"data must be an mne.Epochs .*; got ndarray\."):
        load_epochs(np.zeros((2, 3, 4)))
    evoked = sim_epochs.average()
    with pytest.raises(TypeError, match=r"data\[1\] must be an mne.Evoked .*got EpochsArray"):
        load_epochs([evoked, sim_epochs])
    with pytest.raises(ValueError, match=r"data is an empty list"):
        load_epochs([])


def test_file_errors(tmp_path):
    bad = tmp_path / "rec.xyz"
    bad.write_text("not eeg")
    with pytest.raises(ValueError, match=r"unknown file type '\.xyz'.*'-epo\.fif'.*'\.vhdr'"):
        load_epochs(bad)
    with pytest.raises(FileNotFoundError, match=r"missing_raw\.fif' does not exist"):
        load_epochs(tmp_path / "missing_raw.fif")


def test_missing_events(eeg_raw):
    with pytest.raises(ValueError, match=r"No events .*no stim channel \(channel types: 'eeg'\)"):
        load_epochs(eeg_raw)
    eeg_raw.set_annotations(mne.Annotations([1.0], [0.5], ["BAD_muscle"]))
    with pytest.raises(ValueError, match=r"and 1 annotation\(s\), all marked bad/edge"):
        load_epochs(eeg_raw)


def test_empty_stim_channel(eeg_raw):
    info = mne.create_info(["STI 014"], SFREQ, "stim")
    stim = mne.io.RawArray(np.zeros((1, eeg_raw.n_times)), info, verbose="error")
    with pytest.raises(ValueError, match=r"no events on the stim channel\(s\) 'STI 014'"):
        load_epochs(eeg_raw.add_channels([stim]), verbose="error")


@pytest.mark.parametrize(
    ("events", "match"),
    [
        (np.zeros(4, int), r"events must be an array of shape \(n_events, 3\).*got shape \(4,\)"),
        (np.zeros((0, 3), int), r"events is empty"),
        (np.full((2, 3), 0.5), r"events must hold integers, got dtype float64"),
    ],
)
def test_bad_events_array(eeg_raw, events, match):
    with pytest.raises(ValueError, match=match):
        load_epochs(eeg_raw, events=events)


def test_unknown_event_names_and_codes(sim_epochs, eeg_raw, eeg_events):
    with pytest.raises(
        ValueError,
        match=r"unknown event name 'hose'; the event names present are 'face', 'house', "
        r"'tool'\. Did you mean 'house'\?",
    ):
        load_epochs(sim_epochs, event_id=["face", "hose"])
    with pytest.raises(ValueError, match=r"maps 'face' to code 7, but the data code it as 1"):
        load_epochs(sim_epochs, event_id={"face": 7})
    with pytest.raises(
        ValueError, match=r"maps 'right' to code 9, which no event has.*present are 1, 2\."
    ):
        load_epochs(eeg_raw, events=eeg_events, event_id={"left": 1, "right": 9})
    with pytest.raises(ValueError, match=r"event_id lists names, but these events carry codes"):
        load_epochs(eeg_raw, events=eeg_events, event_id=["left"])
    with pytest.raises(ValueError, match=r"same code to several names \(code\(s\) 1\)"):
        load_epochs(eeg_raw, events=eeg_events, event_id={"a": 1, "b": 1})
    with pytest.raises(TypeError, match=r"event_id must be None, .*got int 3"):
        load_epochs(sim_epochs, event_id=3)
    eeg_raw.set_annotations(mne.Annotations([1.0, 2.0], [0, 0], ["face", "house"]))
    with pytest.raises(
        ValueError, match=r"'fase'; the annotation descriptions present.*Did you mean 'face'"
    ):
        load_epochs(eeg_raw, event_id={"fase": 1})


def test_events_with_epochs_is_an_error(sim_epochs, eeg_events):
    with pytest.raises(ValueError, match=r"events is used only to epoch a Raw.*EpochsArray"):
        load_epochs(sim_epochs, events=eeg_events)


def test_stimulus_errors(sim_epochs):
    with pytest.raises(ValueError, match=r"'wrd' is not a column.*'word', 'code'.*'word'\?"):
        load_epochs(sim_epochs, stimulus="wrd")
    no_meta = sim_epochs.copy()
    no_meta.metadata = None
    with pytest.raises(ValueError, match=r"stimulus='word' .* the epochs have no metadata"):
        load_epochs(no_meta, stimulus="word")
    with_nan = sim_epochs.copy()
    with_nan.metadata = with_nan.metadata.assign(word=[None, *with_nan.metadata.word[1:]])
    with pytest.raises(ValueError, match=r"missing for 1 of 8 trials \(rows 0\)"):
        load_epochs(with_nan, stimulus="word")
    with pytest.raises(ValueError, match=r"stimulus has 3 ids but the data has 8 rows"):
        load_epochs(sim_epochs, stimulus=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"run must be a scalar or hold one value per trial"):
        load_epochs(sim_epochs, run=[1, 2])


def test_evoked_errors(sim_epochs):
    face = sim_epochs["face"].average()
    with pytest.raises(SchemaError, match=r"unique stimulus ids; duplicated: 'face'"):
        load_epochs([face, face.copy()])
    unnamed = mne.EvokedArray(face.data, face.info, tmin=face.times[0], verbose="error")
    with pytest.raises(ValueError, match=r"position\(s\) 1 have no comment"):
        load_epochs([face, unnamed])
    with pytest.raises(ValueError, match=r"'tol'; the evoked comments present are 'face'"):
        load_epochs([face], event_id="tol")
    short = face.copy().crop(0.0, None)
    with pytest.raises(ValueError, match=r"Evoked 1 \('b'\) has 40 samples from 0\.0 s"):
        load_epochs([face, short], stimulus=["a", "b"])


def test_pick_errors(sim_epochs, mixed_epochs):
    with pytest.raises(
        ValueError, match=r"picks holds 'CZ', which is neither.*'eeg'.*Did you mean 'Cz'\?"
    ):
        load_epochs(sim_epochs, picks=["Fz", "CZ"])
    with pytest.raises(ValueError, match=r"picks holds 'Cx', .*channels: 'Fz', 'Cz', 'Pz', 'Oz'"):
        load_epochs(sim_epochs, picks="Cx")
    with pytest.raises(ValueError, match=r"picks='meg' selects no usable channel.*types present"):
        load_epochs(sim_epochs, picks="meg")
    with pytest.raises(ValueError, match=r"picks=\[0, 99\] selects no usable channel: All picks"):
        load_epochs(sim_epochs, picks=[0, 99])
    mixed_epochs.info["bads"] = ["SEEG 1"]
    with pytest.raises(ValueError, match=r"picks='seeg' selects no usable.*excluded.*'SEEG 1'"):
        load_epochs(mixed_epochs, picks="seeg")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"drop_bad": "nans"},
            ValueError,
            r"'drop_bad' parameter.*'none', 'nan', 'constant', 'both'; got 'nans'\. "
            r"Did you mean 'nan'\?",
        ),
        ({"decim": 0}, ValueError, r"decim must be in the range \[1, inf\), got 0"),
        ({"decim": 1.5}, TypeError, r"decim must be an integer, got float 1.5"),
        ({"average": "yes"}, TypeError, r"average must be a bool, got str 'yes'"),
        ({"tmin": 0.3, "tmax": 0.1}, ValueError, r"tmin=0.3 and tmax=0.1"),
        ({"tmin": -5.0}, ValueError, r"tmin=-5.0 lies outside the data's time range \[-0.2,"),
        ({"baseline": (-3.0, 0.0)}, ValueError, r"baseline start=-3.0 lies outside"),
        ({"baseline": 0.0}, TypeError, r"baseline must be None or a \(start, end\).*float 0.0"),
        ({"stimulus": 3}, TypeError, r"stimulus must be None, .*got int"),
        ({"subject": 1}, TypeError, r"subject must be a str or None, got int 1"),
        ({"event_id": ["tool"], "stimulus": [""] * 2}, ValueError, r"empty ids at positions 0"),
    ],
)
def test_parameter_errors(sim_epochs, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_epochs(sim_epochs, **kwargs)


def test_nothing_left_errors(sim_epochs, eeg_raw, eeg_events):
    with pytest.raises(ValueError, match=r"All 14 epochs were dropped \(reasons: 'TOO_SHORT'\)"):
        load_epochs(
            eeg_raw,
            events=eeg_events + np.array([20_000, 0, 0]),
            event_id=EVENT_ID,
            verbose="error",
        )
    flat = _with_bad_channels(sim_epochs)
    with pytest.raises(ValueError, match=r"drop_bad='both' drops all 2 channels \(NaN: 1,"):
        load_epochs(flat, picks=["Cz", "Oz"], drop_bad="both")


def test_source_estimate_errors():
    stcs, _ = _stcs(2)
    with pytest.raises(TypeError, match=r"stcs must be an mne.SourceEstimate .*got ndarray"):
        load_source_estimate(np.zeros((2, 5, 4)))
    vector = mne.VectorSourceEstimate(np.zeros((5, 3, 4)), stcs[0].vertices, 0.0, 0.01)
    with pytest.raises(TypeError, match=r"stcs\[1\] must be .*got VectorSourceEstimate.*magn"):
        load_source_estimate([stcs[0], vector])
    with pytest.raises(SchemaError, match=r"duplicated: 'a'\. For one estimate per trial"):
        load_source_estimate(stcs, ["a", "a"])
    other = mne.SourceEstimate(np.zeros((4, 4)), [np.arange(2), np.arange(2)], 0.0, 0.01)
    with pytest.raises(ValueError, match=r"stcs\[1\] \('b'\) has other vertices .*\[2, 2\]"):
        load_source_estimate([stcs[0], other], ["a", "b"])
    late = _stcs(1, tmin=0.1)[0][0]
    with pytest.raises(ValueError, match=r"stcs\[1\] \('b'\) has 4 samples from 0.1 s"):
        load_source_estimate([stcs[0], late], ["a", "b"])
    with pytest.raises(ValueError, match=r"stimulus must be None when stcs is a dict"):
        load_source_estimate({"a": stcs[0]}, ["a"])
    with pytest.raises(ValueError, match=r"'sample_dim' parameter.*got 'trials'"):
        load_source_estimate(stcs, sample_dim="trials")
    with pytest.raises(ValueError, match=r"'modality' parameter.*got 'fmri'"):
        load_source_estimate(stcs, modality="fmri")
    with pytest.raises(ValueError, match=r"stcs is empty"):
        load_source_estimate([])
