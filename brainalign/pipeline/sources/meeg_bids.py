"""M/EEG recordings in a BIDS dataset (``dataset: meeg_bids``), one subject or several.

Each recording of the ``task`` (every session and run unless ``session`` / ``run`` pick one)
is read with :func:`mne_bids.read_raw_bids`; its events are the annotations that MNE-BIDS
makes of ``*_events.tsv`` (:func:`mne.events_from_annotations`, matched by name). Each
subject's epochs (its runs together) are averaged per stimulus into ``(stimulus, channel,
time)``, as ``meeg_file`` does. Every subject must hold the same stimuli.

The data (what ``analyses.time_resolved`` reads) are the grand average over subjects of the
subjects' evoked responses (on the channels they share). The brain RDM is the mean of the
subjects' RDMs, each of the subject's patterns averaged over ``rsa_window``; with two
subjects or more the source also gives the subjects' RDMs, and RSA adds group-level
inference across subjects with a noise ceiling.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import _fmt_list
from brainalign._logging import logger
from brainalign.pipeline._analysis import Checker, Source, register_source
from brainalign.pipeline.sources.arrays import align_subjects, combined_digest
from brainalign.pipeline.sources.meeg import MEEG_KEYS, check_epoch_options, rsa_window

MEEG_BIDS = "meeg_bids"
"""The name of the source: M/EEG recordings in a BIDS dataset."""
DATATYPES = ("eeg", "meg")
"""Values of ``datatype``: the BIDS folder (and suffix) of the recordings."""
SUBJECT_EVOKED = "subject_evoked"
"""The attr of the loaded grand average that holds each subject's evoked (name → DataArray)."""
_WHERE = f"dataset {MEEG_BIDS}"


# ------------------------------------------------------------------------------- finding
def bids_root(src: dict[str, Any]) -> Path:
    """Return the source's BIDS root (``~`` expanded, relative to the working directory)."""
    return Path(src["root"]).expanduser()


def _label(value: Any) -> str | None:
    return None if value is None else str(value)


def _subject_label(name: str) -> str:
    return name[4:] if name.startswith("sub-") else name


def raw_extensions(datatype: str) -> list[str]:
    """Return the raw-file extensions MNE-BIDS reads for a datatype (``.vhdr``, ``.fif`` ...)."""
    from mne_bids.config import ALLOWED_DATATYPE_EXTENSIONS

    return list(ALLOWED_DATATYPE_EXTENSIONS[datatype])


def _entity_values(root: Path, key: str) -> list[str]:
    from mne_bids import get_entity_vals

    return [str(v) for v in get_entity_vals(root, key)]


def recordings(src: dict[str, Any]) -> dict[str, list[Any]]:
    """Return the raw recordings of each subject: ``{"sub-XX": [BIDSPath, ...]}``.

    Parameters
    ----------
    src : dict
        A validated ``meeg_bids`` source.

    Returns
    -------
    found : dict
        Subject (``sub-<label>``, sorted, or in the order of ``subjects``) → its recordings
        of the task (every session and run unless the source picks one), sorted by name;
        the first part of a split recording only.

    Raises
    ------
    FileNotFoundError
        When the root does not exist, or a subject has no recording of the task (naming what
        exists).
    """
    from mne_bids import find_matching_paths

    root = bids_root(src)
    if not root.is_dir():
        raise FileNotFoundError(_missing_root(src))
    datatype = src["datatype"]
    wanted = None if src["subjects"] == "all" else [_subject_label(s) for s in src["subjects"]]
    run = _label(src["run"])
    if run is not None:  # "1" means the run written "01" (as write_raw_bids(run=1) names it)
        same = [e for e in _entity_values(root, "run") if _same_run(run, [e])]
        run = same[0] if same else run
    paths = find_matching_paths(
        root,
        subjects=wanted,
        tasks=src["task"],
        sessions=_label(src["session"]),
        runs=run,
        datatypes=datatype,
        suffixes=datatype,
        extensions=raw_extensions(datatype),
    )
    found: dict[str, list[Any]] = {}
    for p in sorted(paths, key=lambda p: str(p.fpath)):
        if p.split not in (None, "01", "1"):
            continue
        found.setdefault(f"sub-{p.subject}", []).append(p)
    if wanted is None:
        if not found:
            raise FileNotFoundError(
                f"{_WHERE}: no {datatype} recording of task {src['task']!r}"
                f"{_entities_text(src)} under {str(root)!r}. {_what_exists(root, datatype)}"
            )
        return dict(sorted(found.items()))
    missing = [f"sub-{s}" for s in wanted if f"sub-{s}" not in found]
    if missing:
        raise FileNotFoundError(
            f"{_WHERE}: subject(s) {_fmt_list(missing)} have no {datatype} recording of task "
            f"{src['task']!r}{_entities_text(src)} under {str(root)!r}. "
            f"{_what_exists(root, datatype)}"
        )
    return {f"sub-{s}": found[f"sub-{s}"] for s in wanted}


def _entities_text(src: dict[str, Any]) -> str:
    parts = [f"{k} {src[k]!r}" for k in ("session", "run") if src[k] is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _what_exists(root: Path, datatype: str) -> str:
    """Describe the subjects, tasks, sessions, runs and datatypes of a BIDS root."""
    from mne_bids import find_matching_paths

    parts = []
    for key, name in (
        ("subject", "subjects"),
        ("task", "tasks"),
        ("session", "sessions"),
        ("run", "runs"),
    ):
        vals = _entity_values(root, key)
        if key == "subject":
            vals = [f"sub-{v}" for v in vals]
        parts.append(f"{name}: {_fmt_list(vals) if vals else 'none'}")
    types = sorted({str(p.datatype) for p in find_matching_paths(root) if p.datatype})
    parts.append(f"datatypes: {_fmt_list(types) if types else 'none'}")
    return f"The dataset holds {'; '.join(parts)}."


def _missing_root(src: dict[str, Any]) -> str:
    return (
        f"BIDS root not found: {str(src['root'])!r} (relative paths are from the working "
        f"directory {os.getcwd()!r}); give the folder holding dataset_description.json and "
        "the sub-* folders."
    )


def _entities(name: str) -> dict[str, str]:
    """Return the ``key-value`` entities of a BIDS file name (without its suffix)."""
    stem = name.split(".", 1)[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def recording_files(path: Any) -> list[Path]:
    """Return the files a recording is read from: its data and its sidecars.

    Every file of the recording's folder whose entities are a subset of the recording's
    (``sub-01_task-a_eeg.vhdr`` / ``.eeg`` / ``.vmrk``, ``sub-01_task-a_events.tsv``,
    ``sub-01_task-a_channels.tsv``, ``sub-01_electrodes.tsv`` ...), split parts included;
    not the dataset-level files (``participants.tsv``, ``*_scans.tsv``), which do not change
    the data.
    """
    fpath = Path(path.fpath)
    own = _entities(fpath.name)
    own.pop("split", None)
    out = []
    root = Path(path.root) if getattr(path, "root", None) is not None else None
    folders = [fpath.parent]
    if root is not None:  # sidecars inherited from the folders above (BIDS inheritance)
        folders += [p for p in fpath.parent.parents if p == root or root in p.parents]
    for folder in folders:
        for f in sorted(folder.iterdir()):
            if not f.is_file() or f.name.endswith("_scans.tsv"):  # acquisition times only
                continue
            ents = _entities(f.name)
            ents.pop("split", None)
            if ents and all(own.get(k) == v for k, v in ents.items()):
                out.append(f)
    return out


def file_digests(src: dict[str, Any]) -> dict[str, str]:
    """Return ``{file: sha256}`` of every file the source reads (relative to the root)."""
    from brainalign.datasets import file_sha256

    root = bids_root(src)
    out = {}
    for paths in recordings(src).values():
        for p in paths:
            for f in recording_files(p):
                out[f.relative_to(root).as_posix()] = file_sha256(f)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------- loading
def _read_raw(path: Any) -> Any:
    """Read one recording with MNE-BIDS; its warnings are logged (naming the file)."""
    from mne_bids import read_raw_bids

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = read_raw_bids(path, verbose="error")
        except Exception as err:
            raise ValueError(
                f"{_WHERE}: cannot read {str(path.fpath)!r} with mne_bids.read_raw_bids: "
                f"{type(err).__name__}: {err}"
            ) from err
    for w in caught:
        logger.info("%s: reading %s: %s", _WHERE, path.fpath.name, w.message)
    return raw


def _names(src: dict[str, Any]) -> list[str] | None:
    ev = src["event_id"]
    return None if ev is None else [str(k) for k in ev]


def _epochs_of(
    src: dict[str, Any], subject: str, path: Any
) -> tuple[xr.DataArray | None, list[str]]:
    """Epoch one recording around its annotations: the epochs (None: no selected event)."""
    import mne

    from brainalign.loaders.meeg import load_epochs

    raw = _read_raw(path)
    present = [
        str(d)
        for d in dict.fromkeys(raw.annotations.description)
        if not str(d).lower().startswith(("bad", "edge"))
    ]
    names = _names(src)
    chosen = present if names is None else [n for n in names if n in present]
    if not chosen:
        return None, present
    codes = dict(src["event_id"]) if isinstance(src["event_id"], dict) else {}
    event_id = {n: int(codes.get(n, i + 1)) for i, n in enumerate(chosen)}
    events, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    baseline = tuple(src["baseline"]) if src["baseline"] is not None else None
    epochs = load_epochs(
        raw,
        events=events,
        event_id=event_id,
        tmin=src["tmin"],
        tmax=src["tmax"],
        baseline=baseline,
        picks=src["picks"],
        subject=subject,
    )
    return epochs, present


def subject_epochs(src: dict[str, Any], subject: str, paths: list[Any]) -> xr.DataArray:
    """Return a subject's epochs ``(trial, channel, time)``, its recordings concatenated.

    Raises
    ------
    ValueError
        When an ``event_id`` name matches no annotation of the subject (naming the
        annotations found), or when the recordings have other channels or times.
    """
    parts, found, files = [], {}, []
    for p in paths:
        epochs, present = _epochs_of(src, subject, p)
        files.append(p.fpath.name)
        found.update(dict.fromkeys(present))
        if epochs is not None:
            parts.append((p, epochs))
    names = _names(src)
    present = [str(d) for d in found]
    missing = [n for n in names or [] if n not in present]
    if missing or not parts:
        what = (
            f"the event_id name(s) {_fmt_list(missing)} match no annotation"
            if missing
            else "there is no event annotation to epoch"
        )
        raise ValueError(
            f"{_WHERE}: {subject} ({_fmt_list(files)}): {what}; the annotations (events.tsv "
            f"trial_type) found are {_fmt_list(present) if present else 'none'}. Name events "
            "that exist in event_id, or leave it out to use every annotation."
        )
    first = parts[0][1]
    for p, da in parts[1:]:
        same_ch = list(da.channel.values) == list(first.channel.values)
        if not same_ch or not np.array_equal(da.time.values, first.time.values):
            raise ValueError(
                f"{_WHERE}: {subject}: {p.fpath.name} has other channels or sample times than "
                f"{parts[0][0].fpath.name} ({da.sizes['channel']} vs {first.sizes['channel']} "
                f"channels, {da.sizes['time']} vs {first.sizes['time']} samples); the runs of "
                "a subject are averaged together, so they need the same channels (set picks: "
                "to the channels they share) and sampling rate."
            )
    if len(parts) == 1:
        return first
    out = xr.concat(
        [da for _, da in parts],
        dim="trial",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="override",
    )
    return out.assign_coords(trial=np.arange(out.sizes["trial"]))


def _nan_epochs(
    src: dict[str, Any], subject: str, epochs: xr.DataArray
) -> tuple[xr.DataArray, int, str]:
    """Refuse or drop a subject's epochs holding NaN samples (``on_nan``)."""
    values = np.asarray(epochs.values)
    bad = np.isnan(values).any(axis=(1, 2))
    if not bad.any():
        return epochs, 0, ""
    stim = np.asarray(epochs.stimulus.values).astype(str)
    n, n_bad = bad.size, int(bad.sum())
    names, counts = np.unique(stim[bad], return_counts=True)
    by_stim = ", ".join(f"{k}: {int(v)}" for k, v in zip(names, counts, strict=True))
    where = f"{_WHERE}: {subject}"
    if (src["on_nan"] or "error") == "error":
        raise ValueError(
            f"{where}: {n_bad} of {n} epochs hold NaN samples (per stimulus: {by_stim}). A NaN "
            "would drop out of the time averages unnoticed, so on_nan: error (the default) "
            "refuses it. Set on_nan: drop_epochs on the source to leave those epochs out, "
            "leave the channels out with picks:, or repair the recording."
        )
    lost = sorted(set(stim) - set(stim[~bad].tolist()))
    if lost:
        raise ValueError(
            f"{where}: on_nan: drop_epochs leaves no epoch of stimulus {_fmt_list(lost)} (all "
            "of its epochs hold NaN samples). Leave those channels out with picks:, or repair "
            "the recording."
        )
    note = f"{subject}: {n_bad} of {n} epochs left out (NaN samples; per stimulus: {by_stim})"
    logger.warning("%s", note)
    return epochs.isel(trial=np.flatnonzero(~bad)), n_bad, note


def subject_evoked(src: dict[str, Any], subject: str, paths: list[Any]) -> xr.DataArray:
    """Return one subject's evoked ``(stimulus, channel, time)``: its epochs per stimulus."""
    from brainalign.data import average_trials, validate
    from brainalign.loaders.meeg import bad_channels

    with warnings.catch_warnings(record=True) as caught:  # NaN channels: handled per epoch
        warnings.simplefilter("always")
        epochs = subject_epochs(src, subject, paths)
    epochs, n_bad, note = _nan_epochs(src, subject, epochs)
    for w in caught:  # the loader's bad-channel warning is made again below, after the drop
        if "They are kept (drop_bad=" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        bad_channels(epochs.values, [str(c) for c in epochs.channel.values], "none")
    for w in again:
        warnings.warn(f"{_WHERE}: {subject}: {w.message}", UserWarning, stacklevel=2)
    evoked = validate(average_trials(epochs))
    evoked.attrs.update(subject=subject, n_epochs_dropped_nan=n_bad, epochs_dropped_nan=note)
    return evoked


def grand_average(subjects: dict[str, xr.DataArray]) -> xr.DataArray:
    """Return the mean over subjects of their evoked, on the channels all of them hold.

    Parameters
    ----------
    subjects : dict
        Subject → ``(stimulus, channel, time)`` evoked, over the same stimuli in one order.

    Returns
    -------
    evoked : xarray.DataArray, dims ("stimulus", "channel", "time")
        The grand average; ``n_trials`` sums the subjects' trials per stimulus.

    Raises
    ------
    ValueError
        When the subjects' sample times differ or they share no channel.
    """
    names = list(subjects)
    first = subjects[names[0]]
    for name in names[1:]:
        da = subjects[name]
        if da.sizes["time"] != first.sizes["time"] or not np.allclose(
            da.time.values, first.time.values, rtol=0, atol=1e-9
        ):
            raise ValueError(
                f"{_WHERE}: the subjects' epochs have other sample times: {names[0]} "
                f"{first.sizes['time']} samples at {first.attrs.get('sfreq')} Hz, {name} "
                f"{da.sizes['time']} at {da.attrs.get('sfreq')} Hz; the grand average (and "
                "time_resolved) needs one sampling rate: resample the recordings."
            )
    channels = [
        c for c in first.channel.values if all(c in da.channel.values for da in subjects.values())
    ]
    if not channels:
        raise ValueError(
            f"{_WHERE}: the subjects share no channel ({_fmt_list(names)}); the grand average "
            "needs common channels (check picks: and the channels.tsv status)."
        )
    total = sum(int(da.sizes["channel"]) for da in subjects.values())
    if total != len(channels) * len(names):
        dropped = {
            n: [str(c) for c in da.channel.values if c not in channels]
            for n, da in subjects.items()
        }
        text = "; ".join(f"{n}: {_fmt_list(c)}" for n, c in dropped.items() if c)
        warnings.warn(
            f"{_WHERE}: the grand average (the time courses) uses the {len(channels)} "
            f"channels every subject holds; left out of it: {text}. Each subject's RDM uses "
            "all of its channels.",
            UserWarning,
            stacklevel=2,
        )
    sel = [subjects[n].sel(channel=channels) for n in names]
    values = np.mean([np.asarray(da.values, dtype=np.float64) for da in sel], axis=0)
    out = sel[0].copy(data=values)
    if "n_trials" in out.coords:
        out = out.assign_coords(
            n_trials=("stimulus", np.sum([da.n_trials.values for da in sel], axis=0))
        )
    keep = ("modality", "sfreq", "highpass", "lowpass", "baseline", "tmin")
    out.attrs = {k: first.attrs[k] for k in keep if k in first.attrs}
    out.attrs["subject"] = (
        f"grand average of {len(names)} subjects" if len(names) > 1 else names[0]
    )
    return out


def load_meeg_bids(src: dict[str, Any]) -> xr.DataArray:
    """Load a ``meeg_bids`` source: the grand-average evoked, keeping each subject's.

    Parameters
    ----------
    src : dict
        A validated ``meeg_bids`` source.

    Returns
    -------
    evoked : xarray.DataArray, dims ("stimulus", "channel", "time")
        The mean of the subjects' evoked responses (channels they share), in the order of
        ``event_id`` (else the first subject's). ``attrs["subject_evoked"]`` holds each
        subject's evoked (``sub-XX`` → DataArray, all of its channels); ``attrs`` also
        ``n_subjects``, ``subjects``, ``source`` (the root) and the NaN-epoch counts.

    Raises
    ------
    FileNotFoundError
        When the root or a subject's recordings are missing.
    ValueError
        Unknown event names, NaN samples (``on_nan: error``), unreadable files;
        :class:`~brainalign._checks.StimulusAlignmentError` when subjects hold other stimuli.
    """
    found = recordings(src)
    subjects = {s: subject_evoked(src, s, paths) for s, paths in found.items()}
    where = {s: _fmt_list([p.fpath.name for p in paths]) for s, paths in found.items()}
    aligned = align_subjects(subjects, where, _names(src), _WHERE)
    for name, da in aligned.items():
        da.attrs = subjects[name].attrs
    grand = grand_average(aligned)
    dropped = [da.attrs["epochs_dropped_nan"] for da in aligned.values()]
    grand.attrs.update(
        source=str(bids_root(src)),
        n_subjects=len(aligned),
        subjects=", ".join(aligned),
        n_epochs_dropped_nan=int(sum(da.attrs["n_epochs_dropped_nan"] for da in aligned.values())),
        epochs_dropped_nan="; ".join(d for d in dropped if d),
    )
    grand.attrs[SUBJECT_EVOKED] = aligned
    return grand


def meeg_bids_brain(src: dict[str, Any], data: xr.DataArray, metric: str) -> dict[str, Any]:
    """Return the brain entry: each subject's RDM of its ``rsa_window`` mean, and their mean.

    Parameters
    ----------
    src : dict
        A validated ``meeg_bids`` source.
    data : xarray.DataArray
        :func:`load_meeg_bids`'s grand average (with each subject's evoked in its attrs).
    metric : str
        The RDM metric (``analyses.rsa.metric``).

    Returns
    -------
    brain : dict
        ``rdm`` (the mean of the subjects' RDMs), ``attrs`` (provenance) and, with two
        subjects or more, ``subjects`` (dims ``("subject", "stimulus_a", "stimulus_b")``).

    Raises
    ------
    ValueError
        When ``rsa_window`` holds no sample of the epochs.
    """
    from brainalign import rsa

    per_subject: dict[str, xr.DataArray] = data.attrs[SUBJECT_EVOKED]
    start, end = rsa_window(src, data)
    rdms, n_samples = [], 0
    keep = ("stimulus_a", "stimulus_b")
    for evoked in per_subject.values():
        sel = evoked.sel(time=slice(start, end))
        if sel.sizes["time"] == 0:
            times = evoked["time"].values
            raise ValueError(
                f"{_WHERE}: rsa_window [{start}, {end}] s holds no sample of the epochs "
                f"({times[0]:.3f} to {times[-1]:.3f} s); set rsa_window inside it."
            )
        n_samples = sel.sizes["time"]
        r = rsa.rdm(sel.mean("time", skipna=False, keep_attrs=True), metric)
        rdms.append(r.drop_vars([c for c in r.coords if c not in keep]))
    names = list(per_subject)
    out: dict[str, Any] = {}
    if len(rdms) == 1:
        out["rdm"] = rdms[0]
    else:
        stack = xr.concat(rdms, dim="subject", join="exact").assign_coords(subject=names)
        rdm = stack.mean("subject", keep_attrs=True)
        rdm.attrs["subject"] = f"mean of {len(names)} subjects"
        stack.attrs = {**rdms[0].attrs, "subject": ", ".join(names)}
        out.update(rdm=rdm, subjects=stack)
    digests = file_digests(src)
    digest, listing = combined_digest(digests)
    n_trials = ""
    if "n_trials" in data.coords:
        pairs = zip(data.stimulus.values, data.n_trials.values, strict=True)
        n_trials = ", ".join(f"{s}: {int(n)}" for s, n in pairs)
    channels = {n: int(da.sizes["channel"]) for n, da in per_subject.items()}
    n_channels: int | str = next(iter(channels.values()))
    if len(set(channels.values())) > 1:
        n_channels = ", ".join(f"{n}: {c}" for n, c in channels.items())
    attrs = {
        k: data.attrs[k] for k in ("modality", "sfreq", "highpass", "lowpass") if k in data.attrs
    }
    attrs.update(
        kind="meeg",
        source=str(bids_root(src)),
        task=str(src["task"]),
        datatype=str(src["datatype"]),
        sha256_file=digest,
        files_sha256=listing,
        n_files=len(digests),
        n_subjects=len(names),
        subjects=", ".join(names),
        n_stimuli=int(data.sizes["stimulus"]),
        tmin=float(data["time"].values[0]),
        tmax=float(data["time"].values[-1]),
        baseline=str(src["baseline"]),
        rsa_window=f"[{start}, {end}] s ({n_samples} samples)",
        n_channels=n_channels,
        n_trials=n_trials,
        n_epochs_dropped_nan=int(data.attrs.get("n_epochs_dropped_nan", 0)),
    )
    if data.attrs.get("epochs_dropped_nan"):
        attrs["epochs_dropped_nan"] = data.attrs["epochs_dropped_nan"]
    out["attrs"] = attrs
    return out


def data_text(bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
    """Return the "Data" section paragraph of a ``meeg_bids`` source."""
    n = int(attrs.get("n_subjects", 1))
    picked = ", ".join(f"{k} {src[k]!r}" for k in ("session", "run") if src[k] is not None)
    rdm = (
        f"The brain RDM is the mean of the {n} subjects' RDMs (RSA adds group-level tests "
        "across subjects); the time courses are of the grand-average evoked response."
        if n > 1
        else "The brain RDM is that of the one subject."
    )
    text = (
        f"{bname}: M/EEG recordings in the BIDS dataset {attrs.get('source')} (task "
        f"{src['task']!r}, {src['datatype']}{', ' + picked if picked else ''}), read with "
        f"MNE-BIDS; {n} subject{'s' if n > 1 else ''} ({attrs.get('subjects')}), "
        f"{attrs.get('n_files')} files (sha256 of their sorted digests: "
        f"{attrs.get('sha256_file')}; each file's sha256 is in results.nc, brain/{bname}, "
        f"attribute files_sha256). Epochs {attrs.get('tmin', float('nan')):.3f} to "
        f"{attrs.get('tmax', float('nan')):.3f} s, baseline {attrs.get('baseline')}, "
        f"{attrs.get('n_channels')} channels; trials per stimulus (all subjects): "
        f"{attrs.get('n_trials')}; rsa window {attrs.get('rsa_window')}. {rdm}"
    )
    if attrs.get("n_epochs_dropped_nan"):
        text += f" NaN samples: {attrs.get('epochs_dropped_nan')}."
    return text


# --------------------------------------------------------------------------------- checks
def _check_numbers(c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check the epoching keys (as ``meeg_file``) and ``event_id``."""
    check_epoch_options(c, src, path)
    ev = src["event_id"]
    if isinstance(ev, dict):
        bad = {k: v for k, v in ev.items() if isinstance(v, bool) or not isinstance(v, int)}
        if not ev or bad:
            c.fail(
                (*path, "event_id"),
                f"must map event names (events.tsv trial_type) to integer codes, e.g. "
                f"{{face: 1, house: 2}}, or list the names; got {ev!r}.",
            )
    elif isinstance(ev, list) and not (ev and all(isinstance(v, str) for v in ev)):
        c.fail(
            (*path, "event_id"),
            f"must be a mapping {{name: code}} or a non-empty list of event names, got {ev!r}.",
        )


def _check_entities(c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check that the root exists and holds the task, subjects, session and run named."""
    if src["root"] is None:
        c.fail((*path, "root"), "is required for dataset meeg_bids: the BIDS dataset's folder.")
    if src["task"] is None:
        c.fail((*path, "task"), "is required for dataset meeg_bids: the BIDS task label.")
    root = bids_root(src)
    if not root.is_dir():
        c.fail((*path, "root"), _missing_root(src))
    c.option((*path, "datatype"), src["datatype"], DATATYPES)
    subjects = src["subjects"]
    if isinstance(subjects, str) and subjects != "all":
        c.fail(
            (*path, "subjects"), f"must be 'all' or a list of subject labels, got {subjects!r}."
        )
    if isinstance(subjects, list) and not (
        subjects and all(isinstance(s, str) and s for s in subjects)
    ):
        c.fail(
            (*path, "subjects"),
            f"must be 'all' or a non-empty list of subject labels (strings such as '01' or "
            f"'sub-01'; quote numbers), got {subjects!r}.",
        )
    checks = [("task", "task", [src["task"]])]
    if isinstance(subjects, list):
        checks.insert(0, ("subject", "subjects", [_subject_label(s) for s in subjects]))
    for key in ("session", "run"):
        if src[key] is not None:
            checks.append((key, key, [str(src[key])]))
    for entity, key, wanted in checks:
        exist = _entity_values(root, entity)
        unknown = [w for w in wanted if w not in exist]
        if entity == "run":  # run labels are numbers: 1 and 01 are one run
            unknown = [w for w in unknown if not _same_run(w, exist)]
        if unknown:
            shown = [f"sub-{v}" for v in exist] if entity == "subject" else exist
            asked = [f"sub-{v}" for v in unknown] if entity == "subject" else unknown
            c.fail(
                (*path, key),
                f"no {entity} {_fmt_list(asked)} in the BIDS dataset {str(root)!r}; it holds "
                f"the {entity}s {_fmt_list(shown) if shown else 'none'}.",
            )
    try:
        recordings(src)
    except FileNotFoundError as err:
        c.fail(path, str(err))


def _same_run(label: str, exist: list[str]) -> bool:
    return label.isdigit() and any(e.isdigit() and int(e) == int(label) for e in exist)


# --------------------------------------------------------------------------------- source
@register_source
class MeegBids(Source):
    """M/EEG recordings of one task in a BIDS dataset, one subject or several (MNE-BIDS)."""

    name = MEEG_BIDS
    data = "meeg"
    runs = False
    grid = False
    complete = True
    option_label = "an M/EEG option (eeg_haxby_sim, meeg_file, meeg_bids)"
    schema = {
        "root": (str, False, None),  # required: the BIDS root folder
        "subjects": ((str, list), False, "all"),  # "all" or labels ("01" or "sub-01")
        "task": (str, False, None),  # required: the BIDS task label
        "session": (str, False, None),  # one session (default: all, pooled per subject)
        "run": ((str, int), False, None),  # one run (default: all, pooled per subject)
        "datatype": (str, False, "eeg"),  # eeg or meg
        **{k: MEEG_KEYS[k] for k in ("event_id", "tmin", "tmax", "baseline", "picks")},
        **{k: MEEG_KEYS[k] for k in ("rsa_window", "on_nan")},
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the root, task, subjects, session, run and the epoching options."""
        _check_entities(c, src, path)
        _check_numbers(c, src, path)

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings (but ``rsa_window``) and the sha256 of every file read."""
        return {
            "src": {k: v for k, v in src.items() if k != "rsa_window"},
            "files": file_digests(src),
        }

    def rdm_options(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the window averaged for the brain RDMs (the time courses use every sample)."""
        return {"rsa_window": src["rsa_window"]}

    def load(self, src: dict[str, Any]) -> xr.DataArray:
        """Return the grand-average evoked, with each subject's (:func:`load_meeg_bids`)."""
        return load_meeg_bids(src)

    def brain(self, src: dict[str, Any], data: xr.DataArray, metric: str) -> dict[str, Any]:
        """Return the mean of the subjects' window RDMs, and their stack with two or more."""
        return meeg_bids_brain(src, data, metric)

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the BIDS dataset, the subjects, the files' sha256 and the epoching."""
        return data_text(bname, src, attrs)
