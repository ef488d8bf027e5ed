"""M/EEG brain sources: ``eeg_haxby_sim`` (shipped, semi-simulated) and ``meeg_file``.

``dataset: meeg_file`` with ``path:`` reads any recording MNE reads.

Epoched around the events and averaged per stimulus: ``(stimulus, channel, time)``. The brain
RDM is that of the patterns averaged over ``rsa_window`` (default: from 0 s to the end of the
epoch), so the RDM-based analyses work as for fMRI; ``analyses.time_resolved`` compares the
RDM at every time point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import logger
from brainalign.datasets import file_sha256
from brainalign.pipeline._analysis import Checker, Source, register_source

MEEG_FILE = "meeg_file"
"""A brain source that is any M/EEG file (``path:``), not a registered dataset."""
MEEG_SOURCES = ("eeg_haxby_sim", MEEG_FILE, "meeg_bids")
"""Brain sources with channels over time (epochs), analysed by ``time_resolved``."""
ON_NAN = ("error", "drop_epochs")
"""Values of an M/EEG source's ``on_nan``: refuse epochs with NaN samples, or drop them."""
MEEG_KEYS = {
    "path": (str, False, None),  # meeg_file: a recording mne reads, or *-epo.fif / *-ave.fif
    "event_id": ((dict, list), False, None),  # meeg_file: {name: code} or a list of names
    "tmin": ((int, float), False, None),  # epoch start (s); eeg_haxby_sim default -0.1
    "tmax": ((int, float), False, None),  # epoch end (s); eeg_haxby_sim default 0.35
    "baseline": (list, False, None),  # [start, end] s, null = edge; eeg_haxby_sim [null, 0]
    "picks": ((str, list), False, None),  # channels: names or a type ("eeg", "meg", ...)
    "rsa_window": (list, False, None),  # [start, end] s averaged for rsa; default [0, tmax]
    "on_nan": (str, False, None),  # epochs holding NaN samples: error (default) or drop_epochs
}


def epoch_options(src: dict[str, Any]) -> dict[str, Any]:
    """Return the file, its sha256 and the epoching options of an M/EEG brain source.

    Parameters
    ----------
    src : dict
        A validated brain source with ``dataset`` in ``eeg_haxby_sim`` / ``meeg_file``.

    Returns
    -------
    options : dict
        ``path``, ``sha256``, ``event_id``, ``tmin``, ``tmax``, ``baseline``, ``picks``
        and ``order`` (the stimulus order, or None): the spec's values, else the shipped
        dataset's defaults from its manifest.
    """
    if src["dataset"] == MEEG_FILE:
        path = Path(src["path"]).expanduser()
        ev = src["event_id"]
        opts = {"path": path, "sha256": file_sha256(path), "event_id": ev}
        opts.update(tmin=src["tmin"], tmax=src["tmax"], baseline=src["baseline"])
        opts["order"] = [str(k) for k in ev] if ev else None
    else:
        from brainalign.datasets import get_manifest, verify

        man = get_manifest(src["dataset"])
        fname = next(f for f in man["files"] if f.endswith(".fif"))
        sha = verify(src["dataset"], [fname])[fname]  # also checks the shipped file
        defaults = man["epochs"]
        opts = {"path": man["path"] / fname, "sha256": sha, "event_id": dict(man["event_id"])}
        for key in ("tmin", "tmax", "baseline"):
            opts[key] = src[key] if src[key] is not None else defaults[key]
        opts["order"] = [str(s) for s in man["stimuli"]]
    opts["picks"] = src["picks"]
    return opts


def load_meeg(src: dict[str, Any]) -> xr.DataArray:
    """Epoch an M/EEG brain source and average per stimulus.

    Epochs that hold a NaN sample (in the picked channels and the epoch window) are refused
    (``on_nan: error``, the default: a NaN would otherwise drop out of the time averages
    unnoticed) or left out before averaging (``on_nan: drop_epochs``), counted in
    ``attrs["n_epochs_dropped_nan"]`` and described in ``attrs["epochs_dropped_nan"]``.

    Parameters
    ----------
    src : dict
        A validated M/EEG brain source.

    Returns
    -------
    evoked : xarray.DataArray, dims ("stimulus", "channel", "time")
        In the source's stimulus order (``event_id``'s, or the manifest's); attrs from
        :func:`brainalign.loaders.meeg.load_epochs` plus ``sha256_file`` and
        ``n_epochs_dropped_nan``.

    Raises
    ------
    ValueError
        When epochs hold NaN samples and ``on_nan`` is ``"error"``, or when dropping them
        leaves a stimulus without epochs.
    """
    import warnings

    from brainalign.data import average_trials, validate
    from brainalign.loaders.meeg import bad_channels, load_epochs

    opts = epoch_options(src)
    baseline = tuple(opts["baseline"]) if opts["baseline"] is not None else None
    with warnings.catch_warnings(record=True) as caught:  # NaN channels: handled per epoch
        warnings.simplefilter("always")
        epochs = load_epochs(
            opts["path"],
            event_id=opts["event_id"],
            tmin=opts["tmin"],
            tmax=opts["tmax"],
            baseline=baseline,
            picks=opts["picks"],
        )
    epochs, note = _nan_epochs(src, opts, epochs)
    for w in caught:  # the loader's bad-channel warning is made again below, after the drop
        if "They are kept (drop_bad=" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    bad_channels(epochs.values, [str(c) for c in epochs.channel.values], "none")
    evoked = validate(average_trials(epochs))
    if opts["order"] is not None:
        present = set(str(s) for s in evoked.stimulus.values)
        evoked = evoked.sel(stimulus=[s for s in opts["order"] if s in present])
    evoked.attrs["sha256_file"] = opts["sha256"]
    evoked.attrs["n_epochs_dropped_nan"] = note[0]
    if note[0]:
        evoked.attrs["epochs_dropped_nan"] = note[1]
    return evoked


def _nan_epochs(
    src: dict[str, Any], opts: dict[str, Any], epochs: xr.DataArray
) -> tuple[xr.DataArray, tuple[int, str]]:
    """Refuse or drop the epochs holding NaN samples; return them and ``(count, note)``."""
    values = np.asarray(epochs.values)
    nan = np.isnan(values)
    bad = nan.any(axis=(1, 2))
    if not bad.any():
        return epochs, (0, "")
    on_nan = src.get("on_nan") or "error"
    stim = np.asarray(epochs.stimulus.values).astype(str)
    n, n_bad = bad.size, int(bad.sum())
    per_stim = dict(zip(*np.unique(stim[bad], return_counts=True), strict=True))
    by_stim = ", ".join(f"{k}: {int(v)}" for k, v in per_stim.items())
    channels = np.asarray(epochs.channel.values).astype(str)
    per_ch = nan.any(axis=2).sum(axis=0)
    by_ch = ", ".join(f"{channels[i]} ({int(per_ch[i])})" for i in np.flatnonzero(per_ch)[:10])
    where = f"M/EEG source {src['dataset']!r} ({opts['path'].name})"
    if on_nan == "error":
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: {n_bad} of {n} epochs hold NaN samples (per stimulus: {by_stim}; "
            f"channels with NaN, in how many epochs: {by_ch}; first: epoch {first}, stimulus "
            f"{str(stim[first])!r}). A NaN would drop out of the time averages unnoticed, so "
            "on_nan: error (the default) refuses it. Set on_nan: drop_epochs on the source to "
            "leave those epochs out (the report counts them), leave the channels out with "
            "picks:, or repair the recording."
        )
    kept = np.unique(stim[~bad])
    lost = sorted(set(stim) - set(kept.tolist()))
    if lost:
        raise ValueError(
            f"{where}: on_nan: drop_epochs leaves no epoch of stimulus "
            f"{', '.join(map(repr, lost))} (all of its epochs hold NaN samples; channels "
            f"with NaN: {by_ch}). Leave those channels out with picks:, or repair the recording."
        )
    note = (
        f"{n_bad} of {n} epochs held NaN samples and were left out before averaging "
        f"(on_nan: drop_epochs; per stimulus: {by_stim}; channels: {by_ch})."
    )
    logger.warning("%s: %s", where, note)
    return epochs.isel(trial=np.flatnonzero(~bad)), (n_bad, note)


def rsa_window(src: dict[str, Any], evoked: xr.DataArray) -> tuple[float, float]:
    """Return the ``[start, end]`` seconds of the time-averaged RDM (default 0 s to the end)."""
    if src["rsa_window"] is not None:
        return float(src["rsa_window"][0]), float(src["rsa_window"][1])
    return 0.0, float(evoked["time"].values[-1])


def _meeg_brain(src: dict[str, Any], evoked: xr.DataArray, metric: str) -> dict[str, Any]:
    """Load an M/EEG brain source for the runner: the RDM of its window-averaged patterns.

    Parameters
    ----------
    src : dict
        A validated M/EEG brain source.
    metric : str
        The RDM metric (``analyses.rsa.metric``).

    Returns
    -------
    brain : dict
        ``kind`` ("meeg"), ``rdm`` (of the patterns averaged over :func:`rsa_window`),
        ``reliability`` (empty: no runs), ``attrs`` (provenance, with ``sha256_file``) and
        ``splits`` (None).

    Raises
    ------
    ValueError
        When the window holds no sample of the epochs.
    """
    from brainalign import rsa

    start, end = rsa_window(src, evoked)
    sel = evoked.sel(time=slice(start, end))
    if sel.sizes["time"] == 0:
        times = evoked["time"].values
        raise ValueError(
            f"brain source {src['dataset']!r}: rsa_window [{start}, {end}] s holds no sample "
            f"of the epochs ({times[0]:.3f} to {times[-1]:.3f} s); set rsa_window inside it."
        )
    rdm = rsa.rdm(sel.mean("time", skipna=False, keep_attrs=True), metric)
    keep = (
        "modality",
        "sfreq",
        "source",
        "subject",
        "highpass",
        "lowpass",
        "sha256_file",
        "n_epochs_dropped_nan",
        "epochs_dropped_nan",
    )
    attrs = {k: evoked.attrs[k] for k in keep if k in evoked.attrs}
    n_trials = ""
    if "n_trials" in evoked.coords:
        pairs = zip(evoked.stimulus.values, evoked.n_trials.values, strict=True)
        n_trials = ", ".join(f"{s}: {int(n)}" for s, n in pairs)
    baseline = src["baseline"] if src["baseline"] is not None else evoked.attrs.get("baseline")
    attrs.update(
        kind="meeg",
        tmin=float(evoked["time"].values[0]),
        tmax=float(evoked["time"].values[-1]),
        baseline=str(baseline),
        rsa_window=f"[{start}, {end}] s ({sel.sizes['time']} samples)",
        n_channels=int(evoked.sizes["channel"]),
        n_trials=n_trials,
    )
    return {"rdm": rdm, "attrs": attrs}


def _check_meeg(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check the M/EEG keys of a brain source (``eeg_haxby_sim`` or ``meeg_file``)."""
    if src["dataset"] == MEEG_FILE:
        _check_meeg_file(c, src, path)
    else:
        for key in ("path", "event_id"):  # a shipped dataset: its file and events are fixed
            if src[key] is not None:
                c.fail(
                    (*path, key),
                    f"is fixed by dataset {src['dataset']!r} (its manifest); drop it, or use "
                    f"dataset: {MEEG_FILE} with path: for your own recording.",
                )
    check_epoch_options(c, src, path)


def check_epoch_options(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check the epoching keys of an M/EEG source.

    ``baseline``, ``rsa_window``, ``tmin < tmax``, ``on_nan`` and ``picks``: every M/EEG
    source reads them the same way.
    """
    for key in ("baseline", "rsa_window"):
        v = src[key]
        if v is None:
            continue
        nulls = key == "baseline"  # a baseline edge may be null (the epoch's edge)
        if len(v) != 2 or not all(
            (isinstance(x, (int, float)) and not isinstance(x, bool)) or (nulls and x is None)
            for x in v
        ):
            what = "numbers or null (the epoch's edge)" if nulls else "numbers"
            c.fail((*path, key), f"must be a list [start, end] of two {what} (s), got {v!r}.")
        if None not in v and v[0] >= v[1]:
            c.fail((*path, key), f"must have start < end (s), got {v!r}.")
    if src["tmin"] is not None and src["tmax"] is not None and src["tmin"] >= src["tmax"]:
        c.fail((*path, "tmax"), f"must be > tmin ({src['tmin']}), got {src['tmax']}.")
    if src["on_nan"] is not None:
        c.option((*path, "on_nan"), src["on_nan"], ON_NAN)
    picks = src["picks"]
    if isinstance(picks, list) and not (picks and all(isinstance(p, str) for p in picks)):
        c.fail(
            (*path, "picks"),
            f"must be a channel type (e.g. 'eeg', 'meg', 'grad') or a non-empty list of "
            f"channel names, got {picks!r}.",
        )


def _check_meeg_file(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check ``path`` and ``event_id`` of a ``meeg_file`` source (the file must exist)."""
    from brainalign.loaders.meeg import EPOCHS_SUFFIXES, EVOKED_SUFFIXES, raw_extensions

    if src["path"] is None:
        c.fail(
            (*path, "path"),
            "is required for dataset meeg_file: the recording (any file mne.io.read_raw "
            "reads, e.g. .fif, .edf, .bdf, .vhdr, .set) or epochs (*-epo.fif).",
        )
    file = Path(src["path"]).expanduser()
    if not file.exists():
        c.fail(
            (*path, "path"),
            f"file not found: {str(file)!r} (relative paths are from the working directory "
            f"{os.getcwd()!r}); give the path of an existing M/EEG recording.",
        )
    suffixes = (*EPOCHS_SUFFIXES, *EVOKED_SUFFIXES, *raw_extensions())
    if not file.name.lower().endswith(suffixes):
        c.fail(
            (*path, "path"),
            f"{file.name!r} is not a file type mne reads; expected a name ending in one of "
            f"{', '.join(suffixes)}.",
        )
    ev = src["event_id"]
    if isinstance(ev, dict):
        bad = {k: v for k, v in ev.items() if isinstance(v, bool) or not isinstance(v, int)}
        if not ev or bad:
            c.fail(
                (*path, "event_id"),
                f"must map stimulus names to integer event codes, e.g. {{face: 1, house: 2}}; "
                f"got {ev!r}.",
            )
    elif isinstance(ev, list) and not (ev and all(isinstance(v, str) for v in ev)):
        c.fail(
            (*path, "event_id"),
            f"must be a mapping {{name: code}} or a non-empty list of event names, got {ev!r}.",
        )


def data_text(bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
    """Return the "Data" section paragraph of an M/EEG brain source."""
    epochs = (
        f"Epochs {attrs.get('tmin', float('nan')):.3f} to {attrs.get('tmax', float('nan')):.3f}"
        f" s, baseline {attrs.get('baseline')}, {attrs.get('n_channels')} channels; trials per "
        f"stimulus: {attrs.get('n_trials')}; rsa window {attrs.get('rsa_window')}."
    )
    if attrs.get("n_epochs_dropped_nan"):
        epochs += f" NaN samples: {attrs.get('epochs_dropped_nan')}"
    if src["dataset"] == MEEG_FILE:
        return (
            f"{bname}: M/EEG recording {src['path']} (sha256 {attrs.get('sha256_file')}), "
            f"read with MNE. {epochs}"
        )
    from brainalign.datasets import get_manifest

    man = get_manifest(src["dataset"])
    return (
        f"{bname}: {man['title']}. SEMI-SIMULATED: the background is real EEG; the stimulus "
        "events and the evoked responses are simulated (see datasets/"
        f"{src['dataset']}/manifest.yaml and make_dataset.py). {epochs} "
        f"{man['citation'].strip()} Licence: {man['licence'].strip()}"
    )


def simulated_window(src: dict[str, Any]) -> list[float] | None:
    """Return the ``[start, end]`` s of a semi-simulated dataset's simulated responses.

    None for a recording (``meeg_file``, ``meeg_bids``) or a dataset whose manifest gives
    none.
    """
    from brainalign.datasets import get_manifest, list_datasets

    if src["dataset"] not in list_datasets():  # a recording (meeg_file, meeg_bids)
        return None
    return get_manifest(src["dataset"]).get("simulated_window")


class _Meeg(Source):
    """Shared by the M/EEG sources: epochs averaged per stimulus."""

    data = "meeg"
    option_label = "an M/EEG option (eeg_haxby_sim, meeg_file, meeg_bids)"
    schema = MEEG_KEYS

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the epoching options (and for meeg_file the file and its events)."""
        _check_meeg(c, src, path)

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the file's sha256 and the epoching options."""
        opts = epoch_options(src)
        return {
            "src": {k: v for k, v in src.items() if k != "rsa_window"},
            "files": {str(opts["path"].name): opts["sha256"]},
            "epochs": {k: opts[k] for k in ("tmin", "tmax", "baseline", "event_id", "picks")},
        }

    def rdm_options(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the window averaged for the brain RDM (the time courses use every sample)."""
        return {"rsa_window": src["rsa_window"]}

    def load(self, src: dict[str, Any]) -> xr.DataArray:
        """Epoch and average per stimulus (:func:`load_meeg`)."""
        return load_meeg(src)

    def brain(self, src: dict[str, Any], data: xr.DataArray, metric: str) -> dict[str, Any]:
        """Return the RDM of the patterns averaged over the source's ``rsa_window``."""
        return _meeg_brain(src, data, metric)

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the file (and its sha256) or the shipped dataset, and the epoching."""
        return data_text(bname, src, attrs)


@register_source
class EegHaxbySim(_Meeg):
    """The shipped semi-simulated EEG: real background EEG, simulated evoked responses."""

    name = "eeg_haxby_sim"


@register_source
class MeegFile(_Meeg):
    """Any M/EEG recording or epochs file that MNE reads (``path:``)."""

    name = MEEG_FILE
