"""Build ``eeg_haxby_sim_raw.fif``: real EEG background + simulated category responses.

SEMI-SIMULATED DATA. The background is 16 s of real 14-channel Emotiv EEG at 128 Hz, shipped
by the spkit package (BSD-2; ``spkit/data/files/EEG16SecData.pkl``). It has no stimulus
events; this script adds them and adds simulated evoked responses:

1. a stim channel ``STI 014`` with 32 events, one every 0.5 s from 0.125 s, four per Haxby
   category (face, cat, house, chair, shoe, bottle, scissors, scrambledpix; event codes
   1-8 in that order), in a seeded shuffled order;
2. after each event, a response in a 120-300 ms window (Hann envelope, peak at 210 ms):
   a topography common to all categories plus a category-specific one. The specific
   topographies carry the geometry of the REAL Haxby et al. (2001) ventral-temporal RDM
   (correlation distance between the category-mean patterns of the shipped fMRI, computed
   with brainalign): classical MDS of that RDM, embedded into the 14 channels by a seeded
   orthonormal mixing (orthogonal to the common topography and to the channel mean).

Nothing else is changed: outside the 120-300 ms windows the file holds the real recording
(float32, in volts). Run from the repository root, offline::

    pip download spkit==0.0.9.7 --no-deps -d /tmp/spk
    python datasets/eeg_haxby_sim/make_dataset.py /tmp/spk/spkit-0.0.9.7-py3-none-any.whl

The output is deterministic (fixed seed); the script prints the file's sha256, which
``manifest.yaml`` records.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import mne
import numpy as np

import brainalign as ba
from brainalign import rsa

HERE = Path(__file__).resolve().parent
OUT = HERE / "eeg_haxby_sim_raw.fif"
PKL_IN_WHEEL = "spkit/data/files/EEG16SecData.pkl"
PKL_SHA256 = "9e5b716a44f632e13496fb16e7948a9853872be5e2d1d80d6e6004061ae1eb18"
CATEGORIES = ["face", "cat", "house", "chair", "shoe", "bottle", "scissors", "scrambledpix"]
SFREQ = 128.0
SEED = 3  # event order; 2001 put a chance baseline-level peak at 31 ms (see manifest)
FIRST_EVENT = 16  # samples (0.125 s): room for a 0.1 s baseline before the first event
SOA = 64  # samples (0.5 s) between events
N_REPEATS = 4  # per category: 32 events fill the 16 s
WINDOW = (0.12, 0.30)  # seconds after each event that hold the simulated response
# Far larger than real evoked potentials (a few µV): only 4 trials per category fit in 16 s
# of a noisy recording (background SD about 80 µV per channel), so the responses must be
# large for their geometry to show after averaging 4 trials.
AMP_SPECIFIC = 1000e-6  # V per MDS unit: category-specific topographies
AMP_COMMON = 1000e-6  # V: norm of the topography shared by all categories


def read_background(wheel: Path) -> tuple[np.ndarray, list[str]]:
    """Read the real EEG (n_samples, 14) in µV and its channel names from the spkit wheel."""
    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read(PKL_IN_WHEEL)
    got = hashlib.sha256(blob).hexdigest()
    if got != PKL_SHA256:
        raise ValueError(f"{PKL_IN_WHEEL} in {wheel} has sha256 {got}, expected {PKL_SHA256}.")
    samples_uv, ch_names = pickle.load(io.BytesIO(blob))  # (2048, 14), µV, 128 Hz
    return np.asarray(samples_uv, dtype=np.float64), [str(c) for c in ch_names]


def haxby_geometry() -> np.ndarray:
    """Compute the real Haxby VT RDM (correlation distance of category means)."""
    patterns = ba.average_trials(ba.datasets.load_haxby())
    rdm = rsa.rdm(patterns, "correlation")
    return rdm.sel(stimulus_a=CATEGORIES, stimulus_b=CATEGORIES).values


def classical_mds(d: np.ndarray) -> np.ndarray:
    """Coordinates whose squared Euclidean distances best match ``d`` (Torgerson MDS).

    A correlation distance is proportional to a squared Euclidean distance between
    z-scored patterns, so ``d`` is treated as squared distances.
    """
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ d @ j
    w, v = np.linalg.eigh(b)
    keep = w > 1e-9 * w.max()
    return v[:, keep] * np.sqrt(w[keep])


def build(wheel: Path) -> mne.io.RawArray:
    """Return the semi-simulated Raw object (EEG in volts + stim channel)."""
    rng = np.random.default_rng(SEED)
    eeg_uv, ch_names = read_background(wheel)
    n_samples, n_ch = eeg_uv.shape
    coords = classical_mds(haxby_geometry())  # (8, k), k <= 7
    # Orthonormal channel topographies, all orthogonal to the channel mean (average
    # reference): column 0 is the common response, the rest carry the MDS coordinates.
    basis = np.linalg.qr(np.column_stack([np.ones(n_ch), rng.normal(size=(n_ch, n_ch - 1))]))[0]
    basis = basis[:, 1:]  # drop the mean direction
    common = basis[:, 0] * AMP_COMMON
    specific = coords @ basis[:, 1 : 1 + coords.shape[1]].T * AMP_SPECIFIC  # (8, 14)
    topographies = common[None, :] + specific
    onsets = FIRST_EVENT + SOA * np.arange(N_REPEATS * len(CATEGORIES))
    labels = rng.permutation(np.repeat(np.arange(len(CATEGORIES)), N_REPEATS))
    t = np.arange(round(WINDOW[0] * SFREQ), round(WINDOW[1] * SFREQ) + 1)
    envelope = np.hanning(t.size + 2)[1:-1]  # zero just outside the window
    data = eeg_uv.T * 1e-6  # (14, n_samples), volts
    stim = np.zeros(n_samples)
    for onset, label in zip(onsets, labels, strict=True):
        data[:, onset + t] += topographies[label][:, None] * envelope[None, :]
        stim[onset] = label + 1
    info = mne.create_info([*ch_names, "STI 014"], SFREQ, ch_types=["eeg"] * n_ch + ["stim"])
    raw = mne.io.RawArray(np.vstack([data, stim]), info, verbose="error")
    raw.set_montage("standard_1020", verbose="error")
    raw.set_meas_date(None)
    raw.info["description"] = (
        "SEMI-SIMULATED: real Emotiv EEG (spkit 0.0.9.7, BSD-2) + simulated evoked responses "
        "(120-300 ms) with the geometry of the Haxby 2001 VT RDM; brainalign "
        "datasets/eeg_haxby_sim/make_dataset.py"
    )
    return raw


def main() -> None:
    """Write the FIF file and print its sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path of spkit-0.0.9.7-py3-none-any.whl")
    args = parser.parse_args()
    raw = build(args.wheel)
    raw.save(OUT, fmt="single", overwrite=True, verbose="error")
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    added = raw.get_data(picks="eeg") - read_background(args.wheel)[0].T * 1e-6
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), sha256 {digest}")
    print(
        f"simulated response: peak |amplitude| {np.abs(added).max() * 1e6:.0f} µV, RMS over "
        f"channels at the peak {np.sqrt((added**2).mean(0)).max() * 1e6:.0f} µV"
    )


if __name__ == "__main__":
    main()
