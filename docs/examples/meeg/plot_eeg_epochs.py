"""
Time-resolved RDMs from EEG epochs
==================================

Load 16 s of real 14-channel Emotiv EEG (shipped with spkit), cut it into epochs around
synthetic events with :func:`brainalign.loaders.meeg.load_epochs`, average the trials of
each condition and compute one RDM per time point.

The recording has no stimulus events, so the four "conditions" here are labels placed every
half second: the RDMs show how the loader and the time broadcasting work, not an effect.
"""

# %%
# Wrap the real recording in an MNE Raw object: samples are in µV, MNE works in volts.
import importlib.util
import pickle
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import numpy as np

from brainalign import rsa
from brainalign.loaders.meeg import load_epochs

spkit_dir = Path(importlib.util.find_spec("spkit").submodule_search_locations[0])
with open(spkit_dir / "data" / "files" / "EEG16SecData.pkl", "rb") as f:
    samples_uv, ch_names = pickle.load(f)  # (2048 samples, 14 channels) at 128 Hz
info = mne.create_info(list(ch_names), sfreq=128.0, ch_types="eeg")
raw = mne.io.RawArray(np.asarray(samples_uv).T * 1e-6, info, verbose="error")
raw.set_montage("standard_1020", verbose="error")

# %%
# Synthetic events: four conditions in turn, one event every 0.5 s from 1 s to 15 s.
onsets = np.arange(128, 2048 - 128, 64)
codes = np.arange(onsets.size) % 4 + 1
events = np.column_stack([onsets, np.zeros_like(onsets), codes])
event_id = {"face": 1, "house": 2, "tool": 3, "word": 4}

# %%
# Load labeled epochs: dims (trial, channel, time), stimulus ids from the event names,
# channel types and 10-20 positions as coordinates.
epochs = load_epochs(
    raw, events=events, event_id=event_id, tmin=-0.1, tmax=0.4, baseline=(None, 0)
)
print(epochs.sizes, epochs.attrs["modality"], epochs.attrs["sfreq"], "Hz")
print(epochs.stimulus.values[:6], epochs.ch_x.sel(channel="O1").item())

# %%
# Average per condition and compute Euclidean RDMs: the ``time`` dim broadcasts, giving one
# 4 × 4 RDM per sample.
avg = load_epochs(
    raw,
    events=events,
    event_id=event_id,
    tmin=-0.1,
    tmax=0.4,
    baseline=(None, 0),
    average=True,
)
brain = rsa.rdm(avg, "euclidean")
print(brain.dims, brain.sizes)

# %%
# The mean dissimilarity between conditions over time (in volts, across 14 channels).
upper = np.triu_indices(brain.sizes["stimulus_a"], k=1)
values = brain.transpose("time", "stimulus_a", "stimulus_b").values
mean_distance = values[:, upper[0], upper[1]].mean(axis=1)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(brain.time, mean_distance * 1e6)
ax.set(xlabel="time (s)", ylabel="mean distance (µV)", title="EEG RDMs over time")
print(f"mean distance: {mean_distance.mean() * 1e6:.1f} µV over {brain.sizes['time']} samples")
