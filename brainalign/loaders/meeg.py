"""MEG, EEG and iEEG loaders: MNE-Python objects and files → schema tensors.

:func:`load_epochs` turns epochs, evoked responses or a continuous recording plus events
(objects, or any file :mod:`mne.io` reads) into a ``("trial", "channel", "time")`` array,
or ``("stimulus", "channel", "time")`` after averaging. :func:`load_source_estimate` turns
source estimates into a ``("stimulus", "vertex", "time")`` array. MNE is imported inside
the functions, so ``import brainalign`` stays fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from brainalign._checks import (
    SchemaError,
    _fmt,
    _fmt_list,
    check_number,
    check_option,
    check_type,
    did_you_mean,
)
from brainalign._imports import soft_import
from brainalign._logging import logger, warn
from brainalign._version import __version__
from brainalign.data._align import average_trials
from brainalign.data._schema import as_ids, duplicates, validate

DropBad = Literal["none", "nan", "constant", "both"]
DROP_BAD = ("none", "nan", "constant", "both")
"""Values of ``drop_bad``: which bad channels :func:`load_epochs` removes."""

SOURCE_SAMPLE_DIMS = ("stimulus", "trial")

EPOCHS_SUFFIXES = ("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")
EVOKED_SUFFIXES = ("-ave.fif", "_ave.fif", "-ave.fif.gz", "_ave.fif.gz")
# What mne.io.read_raw reads in MNE 1.12; used only when MNE cannot list its readers.
_RAW_EXTENSIONS_FALLBACK = (
    ".ahdr",
    ".asc",
    ".bdf",
    ".bin",
    ".cdt",
    ".cdt.cef",
    ".cdt.dpa",
    ".cef",
    ".cnt",
    ".con",
    ".dap",
    ".dat",
    ".data",
    ".ds",
    ".edf",
    ".eeg",
    ".fif",
    ".fif.gz",
    ".gdf",
    ".hdr",
    ".lay",
    ".mat",
    ".mefd",
    ".mff",
    ".nedf",
    ".ns3",
    ".nxe",
    ".rs3",
    ".set",
    ".snirf",
    ".sqd",
    ".txt",
    ".vhdr",
)
_MEG_TYPES = ("mag", "grad", "ref_meg")
_IEEG_TYPES = ("seeg", "ecog", "dbs")
_GENERIC_PICKS = ("all", "data", "data_or_ica", "meg", "fnirs", "eyetrack")
# MNE's default for events_from_annotations: annotations starting with "bad"/"edge" are not
# events.
_ANNOT_REGEXP = r"^(?![Bb][Aa][Dd]|[Ee][Dd][Gg][Ee]).*$"
_ACCEPTED = (
    "an mne.Epochs (or EpochsArray), an mne.Evoked or a list of them, an mne.io.Raw "
    "(with events), or a path to a file that mne.read_epochs / mne.read_evokeds / "
    "mne.io.read_raw reads"
)


def _import_mne() -> Any:
    return soft_import("mne", "meeg", "brainalign.loaders.meeg")


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def raw_extensions() -> tuple[str, ...]:
    """Return the file name endings that MNE's raw readers accept (``.fif``, ``.edf``, ...).

    Returns
    -------
    extensions : tuple of str
        The endings, sorted, each with its leading dot (MNE's own list of readers; a fixed
        list when this MNE version does not expose it).
    """
    try:  # MNE's own list of readers (private, so guarded)
        from mne.io._read_raw import _get_supported

        return tuple(sorted(_get_supported()))
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - older/newer MNE
        return _RAW_EXTENSIONS_FALLBACK


def _read_path(path: Path, verbose: Any) -> Any:
    """Read a file with the MNE reader its name calls for."""
    mne = _import_mne()
    name = path.name.lower()
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist.")
    if name.endswith(EPOCHS_SUFFIXES):
        return mne.read_epochs(path, preload=True, verbose=verbose)
    if name.endswith(EVOKED_SUFFIXES):
        return mne.read_evokeds(path, verbose=verbose)
    extensions = raw_extensions()
    if not name.endswith(extensions):
        kind = "".join(path.suffixes) or "(none)"
        raise ValueError(
            f"Cannot read {str(path)!r}: unknown file type {kind!r}. "
            f"Supported: epochs files ending in {_fmt_list(EPOCHS_SUFFIXES)}; evoked files "
            f"ending in {_fmt_list(EVOKED_SUFFIXES)}; and the raw formats mne.io.read_raw "
            f"reads: {_fmt_list(extensions, limit=100)}."
        )
    try:
        return mne.io.read_raw(path, preload=True, verbose=verbose)
    except ValueError as err:
        if name.endswith((".fif", ".fif.gz")):
            raise ValueError(
                f"mne.io.read_raw could not read {str(path)!r} as a raw FIF file ({err}). "
                "Name epochs files '*-epo.fif' and evoked files '*-ave.fif' so that the "
                "right reader is used."
            ) from err
        raise


def _as_instance(data: Any, verbose: Any) -> tuple[Any, str]:
    """Return ``(inst, source)``: an MNE Epochs, Raw or list of Evoked, and its provenance."""
    mne = _import_mne()
    source = None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        source = str(path)
        data = _read_path(path, verbose)
    if isinstance(data, mne.BaseEpochs):
        return data, source or "mne.Epochs"
    if isinstance(data, mne.io.BaseRaw):
        return data, source or "mne.io.Raw"
    if isinstance(data, mne.Evoked):
        data = [data]
    if isinstance(data, (list, tuple)) and not isinstance(data, str):
        if len(data) == 0:
            raise ValueError(
                f"data is an empty list; give at least one mne.Evoked (got {data!r})."
            )
        for i, item in enumerate(data):
            if not isinstance(item, mne.Evoked):
                raise TypeError(
                    f"data[{i}] must be an mne.Evoked (a list holds evoked responses only), "
                    f"got {type(item).__name__}."
                )
        return list(data), source or "mne.Evoked"
    raise TypeError(f"data must be {_ACCEPTED}; got {type(data).__name__}.")


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------
def _check_events(events: Any) -> np.ndarray:
    arr = np.asarray(events)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(
            f"events must be an array of shape (n_events, 3) (sample, previous value, event "
            f"code), got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"events is empty (shape {arr.shape}); there is nothing to epoch.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise ValueError(f"events must hold integers, got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
    return arr


def _find_events(raw: Any, event_id: Any, verbose: Any) -> tuple[np.ndarray, dict, bool]:
    """Events of a Raw without ``events``: its stim channel, else its annotations.

    Returns ``(events, available, names_known)``: ``available`` maps event names to codes.
    """
    mne = _import_mne()
    stim = mne.pick_types(raw.info, meg=False, stim=True, exclude=())
    types = sorted(set(raw.get_channel_types()))
    if len(stim):
        stim_names = [raw.ch_names[i] for i in stim]
        events = mne.find_events(raw, stim_channel=stim_names, verbose=verbose)
        if len(events) == 0:
            raise ValueError(
                f"Found no events on the stim channel(s) {_fmt_list(stim_names)} of the Raw; "
                "pass events=(n_events, 3) array."
            )
        return events, {str(c): int(c) for c in np.unique(events[:, 2])}, False
    descriptions = [
        str(d) for d in dict.fromkeys(raw.annotations.description) if re.match(_ANNOT_REGEXP, d)
    ]
    if descriptions:
        if isinstance(event_id, Mapping):
            _check_names(event_id.keys(), descriptions, "annotation descriptions")
            events, mapping = mne.events_from_annotations(
                raw, event_id={str(k): int(v) for k, v in event_id.items()}, verbose=verbose
            )
        else:
            events, mapping = mne.events_from_annotations(raw, verbose=verbose)
        return events, {str(k): int(v) for k, v in mapping.items()}, True
    n_annot = len(raw.annotations)
    raise ValueError(
        "No events to epoch the Raw with: pass events=(n_events, 3) array (for example from "
        "mne.find_events or mne.make_fixed_length_events). The Raw has no stim channel "
        f"(channel types: {_fmt_list(types)}) and {n_annot} annotation(s)"
        + (", all marked bad/edge." if n_annot else ".")
    )


def _check_names(names: Any, present: Sequence[str], what: str) -> None:
    for name in names:
        if name not in present:
            raise ValueError(
                f"event_id holds the unknown event name {_fmt(name)}; the {what} present are "
                f"{_fmt_list(present, limit=50)}.{did_you_mean(name, present)}"
            )


def _select_events(
    event_id: Any, available: Mapping[str, int], codes: np.ndarray, names_known: bool
) -> dict[str, int]:
    """Resolve ``event_id`` to a ``{name: code}`` dict of the events to keep."""
    present = np.unique(codes).tolist()
    if event_id is None:
        return {n: c for n, c in available.items() if c in present}
    if isinstance(event_id, str):
        event_id = [event_id]
    if isinstance(event_id, Mapping):
        selected: dict[str, int] = {}
        for name, code in event_id.items():
            check_type(f"event_id[{_fmt(name)}]", code, (int, np.integer), "an int event code")
            check_type("event_id keys", name, (str,), "str event names")
            selected[name] = int(code)
        if names_known:
            _check_names(selected, list(available), "event names")
            wrong = {n: c for n, c in selected.items() if available[n] != c}
            if wrong:
                name, code = next(iter(wrong.items()))
                raise ValueError(
                    f"event_id maps {name!r} to code {code}, but the data code it as "
                    f"{available[name]}; give the names only (event_id=[...]) or the codes "
                    f"{dict(available)}."
                )
        else:
            for name, code in selected.items():
                if code not in present:
                    raise ValueError(
                        f"event_id maps {name!r} to code {code}, which no event has; the event "
                        f"codes present are {_fmt_list(present, limit=50)}."
                    )
        dup = duplicates([str(c) for c in selected.values()])
        if dup:
            raise ValueError(
                f"event_id gives the same code to several names (code(s) {', '.join(dup)}); "
                "each kept event needs one name, its stimulus id."
            )
        return selected
    if isinstance(event_id, Sequence) and all(isinstance(n, str) for n in event_id):
        if not names_known:
            example = {f"cond{c}": c for c in present[:2]}
            raise ValueError(
                "event_id lists names, but these events carry codes only (from events= or a "
                f"stim channel); pass a dict {{name: code}}, for example {example}. Codes "
                f"present: {_fmt_list(present, limit=50)}."
            )
        _check_names(event_id, list(available), "event names")
        return {n: available[n] for n in event_id}
    raise TypeError(
        "event_id must be None, an event name, a list of names or a dict {name: code}, got "
        f"{type(event_id).__name__} {_fmt(event_id)}."
    )


def _names_of(codes: np.ndarray, selected: Mapping[str, int]) -> np.ndarray:
    inverse: dict[int, list[str]] = {}
    for name, code in selected.items():
        inverse.setdefault(int(code), []).append(name)
    for code, names in inverse.items():
        if len(names) > 1:
            raise ValueError(
                f"Event code {code} has several names ({_fmt_list(names)}), so trials with "
                "it have no single stimulus id; select one with event_id=[...] or name "
                "trials with stimulus=."
            )
    return np.array([inverse[int(c)][0] for c in codes], dtype=str)


# --------------------------------------------------------------------------------------
# Channels, time and bad channels
# --------------------------------------------------------------------------------------
def _pick(inst: Any, picks: Any, verbose: Any) -> Any:
    """Pick channels in place with MNE's semantics, after checking names and types."""
    mne = _import_mne()
    names = list(inst.ch_names)
    types = sorted(set(inst.get_channel_types()))
    if picks is None:
        picks = "data"
    items = [picks] if isinstance(picks, str) else picks
    if isinstance(items, (list, tuple, np.ndarray)):
        known_types = set(mne.io.get_channel_type_constants()) | set(_GENERIC_PICKS)
        for item in items:
            if isinstance(item, (str, np.str_)) and item not in names and item not in known_types:
                raise ValueError(
                    f"picks holds {_fmt(item)}, which is neither a channel name nor a channel "
                    f"type. Channel types present: {_fmt_list(types)}; channels: "
                    f"{_fmt_list(names)}.{did_you_mean(str(item), [*names, *types])}"
                )
    try:
        inst.pick(picks, exclude="bads", verbose=verbose)
    except (ValueError, IndexError) as err:
        raise ValueError(
            f"picks={_fmt(picks)} selects no usable channel: {err}. Channel types present: "
            f"{_fmt_list(types)}; bad channels (excluded unless named): "
            f"{_fmt_list(inst.info['bads']) or 'none'}."
        ) from err
    return inst


def _check_window(name: str, value: float | None, times: np.ndarray) -> None:
    if value is None:
        return
    check_number(name, value)
    lo, hi = float(times[0]), float(times[-1])
    step = float(times[1] - times[0]) if times.size > 1 else 0.0
    if not (lo - step / 2 <= value <= hi + step / 2):
        raise ValueError(f"{name}={value} lies outside the data's time range [{lo}, {hi}] s.")


def _check_baseline(baseline: Any, times: np.ndarray) -> None:
    if baseline is None:
        return
    if not isinstance(baseline, (tuple, list)) or len(baseline) != 2:
        raise TypeError(
            f"baseline must be None or a (start, end) tuple in seconds (None for the edge of "
            f"the data), got {type(baseline).__name__} {_fmt(baseline)}."
        )
    for name, value in zip(("start", "end"), baseline, strict=True):
        if value is not None:
            _check_window(f"baseline {name}", value, times)


def _process(
    inst: Any,
    *,
    picks: Any,
    baseline: Any,
    tmin: Any,
    tmax: Any,
    decim: int,
    crop: bool,
    verbose: Any,
) -> Any:
    """Pick, baseline-correct, crop and decimate an Epochs or Evoked in place (MNE does it)."""
    _pick(inst, picks, verbose)
    _check_baseline(baseline, inst.times)
    if baseline is not None:
        inst.apply_baseline(tuple(baseline), verbose=verbose)
    if crop and (tmin is not None or tmax is not None):
        _check_window("tmin", tmin, inst.times)
        _check_window("tmax", tmax, inst.times)
        inst.crop(tmin=tmin, tmax=tmax, verbose=verbose)
    if decim > 1:
        inst.decimate(decim, verbose=verbose)
    return inst


def _channel_coords(info: Any) -> dict[str, Any]:
    types = np.array(info.get_channel_types(), dtype=str)
    loc = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=np.float64).reshape(-1, 3)
    unknown = ~np.all(np.isfinite(loc), axis=1) | np.all(loc == 0, axis=1)
    loc[unknown] = np.nan
    return {
        "channel": np.array(info["ch_names"], dtype=str),
        "ch_type": ("channel", types),
        "ch_x": ("channel", loc[:, 0]),
        "ch_y": ("channel", loc[:, 1]),
        "ch_z": ("channel", loc[:, 2]),
    }


def _modality(types: Sequence[str]) -> str:
    if any(t in _MEG_TYPES for t in types):
        return "meg"
    if any(t in _IEEG_TYPES for t in types):
        return "ieeg"
    return "eeg"


def bad_channels(
    values: np.ndarray, names: Sequence[str], drop_bad: str
) -> tuple[np.ndarray, list[str]]:
    """Report NaN and constant channels; return the channel mask to keep and dropped names.

    Channels that are kept although NaN or constant are named in a warning that suggests
    the ``drop_bad`` value dropping them.

    Parameters
    ----------
    values : ndarray, shape (n_epochs, n_channels, n_times)
        The epochs' samples.
    names : sequence of str
        The channel names.
    drop_bad : {"none", "nan", "constant", "both"}
        Which bad channels to drop.

    Returns
    -------
    keep : ndarray of bool, shape (n_channels,)
        The channels to keep.
    dropped : list of str
        The names of the dropped channels.
    """
    per_channel = np.moveaxis(values, 1, 0).reshape(values.shape[1], -1)
    n_nan = np.isnan(per_channel).sum(axis=1)
    has_nan = n_nan > 0
    with np.errstate(invalid="ignore"):
        constant = ~has_nan & (np.ptp(per_channel, axis=1) == 0)
    keep = np.ones(len(names), bool)
    if drop_bad in ("nan", "both"):
        keep &= ~has_nan
    if drop_bad in ("constant", "both"):
        keep &= ~constant
    dropped = [names[i] for i in np.flatnonzero(~keep)]
    kept_bad = np.flatnonzero(keep & (has_nan | constant))
    if kept_bad.size:
        parts = []
        nan_idx = [i for i in kept_bad if has_nan[i]]
        const_idx = [i for i in kept_bad if constant[i]]
        if nan_idx:
            detail = [f"{names[i]}: {n_nan[i]} of {per_channel.shape[1]}" for i in nan_idx]
            parts.append(
                f"{len(nan_idx)} of {len(names)} channels hold NaN values ({', '.join(detail)})"
            )
        if const_idx:
            parts.append(
                f"{len(const_idx)} of {len(names)} channels are constant "
                f"({_fmt_list([names[i] for i in const_idx])})"
            )
        if drop_bad == "none" and not (nan_idx and const_idx):
            suggestion = "nan" if nan_idx else "constant"
        else:
            suggestion = "both"
        warn(
            "; ".join(parts) + f". They are kept (drop_bad={drop_bad!r}); pass "
            f"drop_bad={suggestion!r} to drop them."
        )
    if dropped:
        logger.info("Dropped %d bad channel(s): %s", len(dropped), _fmt_list(dropped))
    if not keep.any():
        raise ValueError(
            f"drop_bad={drop_bad!r} drops all {len(names)} channels (NaN: {int(has_nan.sum())},"
            f" constant: {int(constant.sum())}); nothing is left to load."
        )
    return keep, dropped


def _per_trial(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return np.repeat(arr, n)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must be a scalar or hold one value per trial ({n}), got shape {arr.shape}."
        )
    return arr


# --------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------
def load_epochs(
    data: Any,
    *,
    events: Any = None,
    event_id: Any = None,
    tmin: float | None = None,
    tmax: float | None = None,
    stimulus: str | Sequence[Any] | None = None,
    picks: Any = None,
    baseline: tuple[float | None, float | None] | None = None,
    decim: int = 1,
    average: bool = False,
    drop_bad: DropBad = "none",
    run: Any = None,
    subject: str | None = None,
    reject_by_annotation: bool = True,
    verbose: bool | str | None = None,
) -> xr.DataArray:
    """Load MEG / EEG / iEEG epochs as a labeled ``(trial, channel, time)`` array.

    The data pass through MNE-Python in this order: select events, epoch (Raw only), pick
    channels, apply the baseline, crop, decimate; then ``get_data()``. The values are MNE's,
    in SI units (V for EEG, T for magnetometers, T/m for gradiometers).

    Parameters
    ----------
    data : mne.Epochs, mne.Evoked, list of mne.Evoked, mne.io.Raw, str or path-like
        The recording. A path is read by its name: ``*-epo.fif`` with
        :func:`mne.read_epochs`, ``*-ave.fif`` with :func:`mne.read_evokeds`, anything else
        with :func:`mne.io.read_raw` (FIF, EDF, BDF, BrainVision, EEGLAB, ...). The object
        is copied, never changed.
    events : array_like of int, shape (n_events, 3), optional
        Raw only: MNE events (sample, previous value, code). Default: found with
        :func:`mne.find_events` on the stim channel(s), else read from the annotations
        (:func:`mne.events_from_annotations`, ``bad``/``edge`` annotations skipped).
    event_id : str, list of str or dict, optional
        Which events to keep and their names. With names known (epochs, annotations):
        a name or list of names (a dict must give the data's own codes). With code-only
        events (``events=``, stim channel): a dict ``{name: code}``; default: every code,
        named by its number (``"1"``, ``"2"`` ...). Evoked: names select by comment.
    tmin, tmax : float, optional
        Seconds. Raw: the epoch window relative to each event (default ``-0.2``, ``0.5``,
        as MNE). Epochs / Evoked: a crop (default: no crop).
    stimulus : str or sequence of str, optional
        The stimulus id of each trial. Default: the event name (the evoked comment). A str
        names a column of ``epochs.metadata``; a sequence gives one id per trial (per
        evoked) after event selection.
    picks : str, list of str, list of int or slice, optional
        Channels, as in MNE: channel names, a channel type (``"eeg"``, ``"meg"``,
        ``"grad"``, ``"seeg"`` ...), ``"data"`` or ``"all"``. Default ``"data"`` (data
        channels). Channels marked bad are excluded unless named.
    baseline : (float or None, float or None), optional
        Baseline interval in seconds subtracted per channel by MNE's ``apply_baseline``
        (``None`` for an edge of the data). Default: no correction (a baseline the epochs
        already carry stays applied).
    decim : int
        Keep every ``decim``-th sample (MNE's ``decimate``; low-pass the data first to
        avoid aliasing).
    average : bool
        Average the trials of each stimulus (:func:`brainalign.average_trials`), giving
        dims ``("stimulus", "channel", "time")``. Evoked input is always per stimulus.
    drop_bad : {"none", "nan", "constant", "both"}
        Which bad channels to drop: those holding any NaN (``"nan"``), constant ones (zero
        range over all trials and times, ``"constant"``), both, or none. Bad channels that
        are kept are reported in a warning with counts; dropped ones are listed in
        ``attrs["dropped_channels"]`` (and logged at INFO level).
    run : int, str or sequence, optional
        A run label: one for all trials, or one per trial; stored as coordinate ``run``.
    subject : str, optional
        Subject id, stored in ``attrs["subject"]``.
    reject_by_annotation : bool
        Raw only: drop epochs that overlap ``bad_*`` annotations (MNE's default).
    verbose : bool or str, optional
        Verbosity of the MNE calls (MNE's ``verbose``: ``True``/``"info"`` shows MNE's
        progress messages). Default ``"warning"``: MNE's warnings only.

    Returns
    -------
    epochs : xarray.DataArray, dims ("trial", "channel", "time")
        Or ``("stimulus", "channel", "time")`` with ``average=True`` or Evoked input.
        Coords: ``stimulus`` (str id; the index with ``average=True``), ``event`` (event
        name) and ``sample`` (event sample) along ``trial``, ``run`` when given;
        ``channel`` (names), ``ch_type``, ``ch_x``, ``ch_y``, ``ch_z`` (sensor position in
        metres from ``info["chs"][i]["loc"][:3]``, NaN when unknown); ``time`` (s);
        ``n_trials`` per stimulus when averaged. Attrs: ``modality`` (``"meg"`` when MEG
        channels are picked, ``"ieeg"`` for sEEG/ECoG/DBS, else ``"eeg"``), ``sfreq``,
        ``tmin``, ``baseline``, ``decim``, ``highpass``, ``lowpass``, ``event_id``,
        ``dropped_channels``, ``source`` (file path or ``"mne.Epochs"``,
        ``"mne.io.Raw"``, ``"mne.Evoked"``), ``subject`` when given,
        ``brainalign_version``.

    Raises
    ------
    TypeError
        ``data`` of another type (the message names it and the accepted ones), or a
        parameter of the wrong type.
    ValueError
        Missing events; unknown event names or codes (naming those present, with a
        "Did you mean"); unknown picks; an unknown file type (listing the supported
        ones); a ``stimulus`` column that does not exist; duplicate evoked ids; windows
        outside the data; every channel dropped.
    FileNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> import numpy as np, mne
    >>> from brainalign.loaders.meeg import load_epochs
    >>> info = mne.create_info(["Fz", "Cz", "Pz"], sfreq=100.0, ch_types="eeg")
    >>> events = np.array([[0, 0, 1], [50, 0, 2], [100, 0, 1], [150, 0, 2]])
    >>> epochs = mne.EpochsArray(
    ...     np.random.default_rng(0).normal(size=(4, 3, 30)), info, events=events,
    ...     tmin=-0.1, event_id={"face": 1, "house": 2}, verbose=False)
    >>> da = load_epochs(epochs)
    >>> da.dims, da.stimulus.values.tolist()
    (('trial', 'channel', 'time'), ['face', 'house', 'face', 'house'])
    >>> load_epochs(epochs, average=True, baseline=(None, 0), verbose=False).sizes
    Frozen({'stimulus': 2, 'channel': 3, 'time': 30})
    """
    check_type("average", average, (bool,), "a bool")
    check_type("reject_by_annotation", reject_by_annotation, (bool,), "a bool")
    check_option("drop_bad", drop_bad, DROP_BAD)
    check_number("decim", decim, low=1, integer=True)
    if subject is not None:
        check_type("subject", subject, (str,), "a str or None")
    if stimulus is not None and not isinstance(stimulus, (str, Sequence, np.ndarray)):
        raise TypeError(
            "stimulus must be None, a metadata column name (str) or a sequence of ids, got "
            f"{type(stimulus).__name__}."
        )
    for name, value in (("tmin", tmin), ("tmax", tmax)):
        if value is not None:
            check_number(name, value)
    if tmin is not None and tmax is not None and tmin >= tmax:
        raise ValueError(f"tmin must be smaller than tmax, got tmin={tmin} and tmax={tmax}.")
    verbose = "warning" if verbose is None else verbose
    mne = _import_mne()
    inst, source = _as_instance(data, verbose)
    if events is not None and not isinstance(inst, mne.io.BaseRaw):
        raise ValueError(
            f"events is used only to epoch a Raw recording, but data is "
            f"{type(inst).__name__}; epochs already carry their events (select them with "
            "event_id=)."
        )
    common = {"picks": picks, "baseline": baseline, "decim": int(decim), "verbose": verbose}
    if isinstance(inst, list):
        return _from_evokeds(
            inst,
            event_id=event_id,
            stimulus=stimulus,
            tmin=tmin,
            tmax=tmax,
            drop_bad=drop_bad,
            run=run,
            subject=subject,
            source=source,
            **common,
        )
    if isinstance(inst, mne.io.BaseRaw):
        epochs, selected = _epoch_raw(
            inst, events, event_id, tmin, tmax, reject_by_annotation, verbose
        )
        crop = False
    else:
        epochs = inst.copy()
        available = {str(k): int(v) for k, v in epochs.event_id.items()}
        selected = _select_events(event_id, available, epochs.events[:, 2], names_known=True)
        keep = np.flatnonzero(np.isin(epochs.events[:, 2], list(selected.values())))
        if keep.size == 0:
            raise ValueError(
                f"event_id={_fmt(event_id)} selects no epoch; the epochs hold "
                f"{_fmt_list(sorted(available))}."
            )
        if keep.size < len(epochs):
            epochs = epochs[keep]
        crop = True
    epochs.load_data()
    _process(epochs, tmin=tmin, tmax=tmax, crop=crop, **common)
    values = epochs.get_data(verbose=verbose)
    codes = epochs.events[:, 2]
    events_names = _names_of(codes, selected)
    ids = _stimulus_ids(stimulus, events_names, epochs.metadata, len(epochs))
    coords: dict[str, Any] = {
        "trial": np.arange(len(epochs)),
        "stimulus": ("trial", ids),
        "event": ("trial", events_names),
        "sample": ("trial", np.asarray(epochs.events[:, 0], dtype=np.int64)),
    }
    if run is not None:
        coords["run"] = ("trial", _per_trial(run, len(epochs), "run"))
    da = _assemble(
        values,
        "trial",
        coords,
        epochs,
        drop_bad=drop_bad,
        source=source,
        subject=subject,
        decim=int(decim),
        event_id=selected,
    )
    if average:
        da = average_trials(da)
    return validate(da, name="load_epochs result")


def _epoch_raw(
    raw: Any,
    events: Any,
    event_id: Any,
    tmin: float | None,
    tmax: float | None,
    reject_by_annotation: bool,
    verbose: Any,
) -> tuple[Any, dict[str, int]]:
    mne = _import_mne()
    if events is None:
        events, available, names_known = _find_events(raw, event_id, verbose)
    else:
        events = _check_events(events)
        available = {str(c): int(c) for c in np.unique(events[:, 2])}
        names_known = False
    selected = _select_events(event_id, available, events[:, 2], names_known)
    tmin = -0.2 if tmin is None else tmin
    tmax = 0.5 if tmax is None else tmax
    if tmin >= tmax:
        raise ValueError(f"tmin must be smaller than tmax, got tmin={tmin} and tmax={tmax}.")
    keep = np.isin(events[:, 2], list(selected.values()))
    epochs = mne.Epochs(
        raw,
        events[keep],
        event_id=selected,
        tmin=tmin,
        tmax=tmax,
        baseline=None,
        preload=True,
        reject_by_annotation=reject_by_annotation,
        on_missing="ignore",
        verbose=verbose,
    )
    n_dropped = int(keep.sum()) - len(epochs)
    if len(epochs) == 0:
        reasons = sorted({r for log in epochs.drop_log for r in log})
        raise ValueError(
            f"All {int(keep.sum())} epochs were dropped (reasons: {_fmt_list(reasons)}); "
            f"check tmin={tmin}, tmax={tmax} against the recording "
            f"({raw.times[-1]:.3f} s long) and its bad annotations."
        )
    if n_dropped:
        logger.info(
            "%d of %d epochs dropped by MNE (edges or bad annotations).",
            n_dropped,
            int(keep.sum()),
        )
    return epochs, selected


def _stimulus_ids(stimulus: Any, names: np.ndarray, metadata: Any, n: int) -> np.ndarray:
    if stimulus is None:
        return as_ids(names, n)
    if isinstance(stimulus, str):
        if metadata is None:
            raise ValueError(
                f"stimulus={stimulus!r} names a column of epochs.metadata, but the epochs have "
                "no metadata; attach a pandas DataFrame (epochs.metadata = df) or pass one id "
                "per trial."
            )
        columns = [str(c) for c in metadata.columns]
        if stimulus not in columns:
            raise ValueError(
                f"stimulus={stimulus!r} is not a column of epochs.metadata; columns: "
                f"{_fmt_list(columns, limit=50)}.{did_you_mean(stimulus, columns)}"
            )
        col = metadata[stimulus]
        missing = np.flatnonzero(col.isna().to_numpy())
        if missing.size:
            raise ValueError(
                f"epochs.metadata[{stimulus!r}] is missing for {missing.size} of {n} trials "
                f"(rows {_fmt_list(missing.tolist())}); every trial needs a stimulus id."
            )
        return as_ids(col.to_numpy(), n, name=f"epochs.metadata[{stimulus!r}]")
    return as_ids(stimulus, n)


def _assemble(
    values: np.ndarray,
    sample_dim: str,
    coords: dict[str, Any],
    inst: Any,
    *,
    drop_bad: str,
    source: str,
    subject: str | None,
    decim: int,
    event_id: Mapping[str, int] | None,
) -> xr.DataArray:
    info = inst.info
    ch = _channel_coords(info)
    keep, dropped = bad_channels(values, list(ch["channel"]), drop_bad)
    values = values[:, keep]
    coords["channel"] = ch["channel"][keep]
    for key in ("ch_type", "ch_x", "ch_y", "ch_z"):
        coords[key] = ("channel", ch[key][1][keep])
    coords["time"] = np.asarray(inst.times, dtype=np.float64)
    baseline = getattr(inst, "baseline", None)
    attrs: dict[str, Any] = {
        "modality": _modality(coords["ch_type"][1].tolist()),
        "sfreq": float(info["sfreq"]),
        "tmin": float(inst.times[0]),
        "baseline": None if baseline is None else tuple(float(b) for b in baseline),
        "decim": decim,
        "highpass": float(info["highpass"]),
        "lowpass": float(info["lowpass"]),
        "source": source,
    }
    if event_id is not None:
        attrs["event_id"] = {str(k): int(v) for k, v in event_id.items()}
    attrs["dropped_channels"] = dropped
    if subject is not None:
        attrs["subject"] = subject
    attrs["brainalign_version"] = __version__
    return xr.DataArray(
        values, dims=(sample_dim, "channel", "time"), coords=coords, attrs=attrs, name="meeg"
    )


def _from_evokeds(
    evokeds: list[Any],
    *,
    event_id: Any,
    stimulus: Any,
    tmin: Any,
    tmax: Any,
    drop_bad: str,
    run: Any,
    subject: str | None,
    source: str,
    picks: Any,
    baseline: Any,
    decim: int,
    verbose: Any,
) -> xr.DataArray:
    comments = [str(ev.comment or "") for ev in evokeds]
    if event_id is not None:
        names = list(event_id) if not isinstance(event_id, str) else [event_id]
        _check_names(names, comments, "evoked comments")
        evokeds = [evokeds[comments.index(n)] for n in names]
        comments = names
    if isinstance(stimulus, str):
        raise ValueError(
            f"stimulus={stimulus!r} names a metadata column, but evoked responses have no "
            "metadata; pass one id per evoked (a list) or set each evoked's comment."
        )
    if stimulus is None:
        empty = [i for i, c in enumerate(comments) if c == ""]
        if empty:
            raise ValueError(
                f"Evoked at position(s) {_fmt_list(empty)} have no comment to use as stimulus "
                "id; set evoked.comment or pass stimulus=[one id per evoked]."
            )
        stimulus = comments
    ids = as_ids(stimulus, len(evokeds))
    dup = duplicates(ids)
    if dup:
        raise SchemaError(
            f"Evoked responses must have unique stimulus ids; duplicated: {_fmt_list(dup)}. "
            "Combine them first (mne.combine_evoked) or pass distinct stimulus= ids."
        )
    processed = []
    for ev in evokeds:
        ev = _process(
            ev.copy(),
            picks=picks,
            baseline=baseline,
            tmin=tmin,
            tmax=tmax,
            decim=decim,
            crop=True,
            verbose=verbose,
        )
        processed.append(ev)
    first = processed[0]
    for i, ev in enumerate(processed[1:], start=1):
        if ev.ch_names != first.ch_names:
            raise ValueError(
                f"Evoked {i} ({_fmt(ids[i])}) has channels {_fmt_list(ev.ch_names)} but evoked 0 "
                f"has {_fmt_list(first.ch_names)}; all must share the same channels."
            )
        if ev.times.shape != first.times.shape or not np.allclose(ev.times, first.times):
            raise ValueError(
                f"Evoked {i} ({_fmt(ids[i])}) has {ev.times.size} samples from {ev.times[0]} s "
                f"but evoked 0 has {first.times.size} from {first.times[0]} s; all must share "
                "the same times (crop or resample them)."
            )
    values = np.stack([ev.data for ev in processed])
    coords: dict[str, Any] = {
        "stimulus": ids,
        "n_trials": ("stimulus", np.array([int(ev.nave) for ev in processed])),
    }
    if run is not None:
        coords["run"] = ("stimulus", _per_trial(run, len(processed), "run"))
    da = _assemble(
        values,
        "stimulus",
        coords,
        first,
        drop_bad=drop_bad,
        source=source,
        subject=subject,
        decim=decim,
        event_id=None,
    )
    return validate(da, name="load_epochs result")


def load_source_estimate(
    stcs: Any,
    stimulus: Sequence[Any] | None = None,
    *,
    sample_dim: Literal["stimulus", "trial"] = "stimulus",
    subject: str | None = None,
    modality: str | None = None,
) -> xr.DataArray:
    """Load MNE source estimates as a labeled ``(stimulus, vertex, time)`` array.

    Parameters
    ----------
    stcs : mne.SourceEstimate, mne.VolSourceEstimate, list of them, or dict
        One source estimate per stimulus (or per trial), all with the same vertices and
        times; a dict maps stimulus ids to source estimates.
    stimulus : sequence of str, optional
        The id of each source estimate (not with a dict). Default ``"0"..."n-1"``.
    sample_dim : {"stimulus", "trial"}
        ``"stimulus"``: ids must be unique; ``"trial"``: ids may repeat (dims
        ``("trial", "vertex", "time")``, average with :func:`brainalign.average_trials`).
    subject : str, optional
        Subject id for ``attrs["subject"]``; default the estimates' ``subject``.
    modality : {"meg", "eeg", "ieeg"}, optional
        The recording the estimates come from, for ``attrs["modality"]``.

    Returns
    -------
    sources : xarray.DataArray, dims ("stimulus", "vertex", "time")
        Coords: ``stimulus``; ``hemi`` (``"lh"``, ``"rh"``, or ``"vol"`` for a volume
        estimate) and ``vertno`` (the source-space vertex number) along ``vertex``;
        ``time`` (s). Attrs: ``sfreq``, ``tmin``, ``src_type`` (``"surface"`` or
        ``"volume"``), ``source`` (``"mne.SourceEstimate"`` ...), ``subject``,
        ``modality`` when known, ``brainalign_version``.

    Raises
    ------
    TypeError
        Another object than a (volume) source estimate, naming its type.
    ValueError
        Estimates with different vertices or times; duplicate ids with
        ``sample_dim="stimulus"``; ids and estimates of different lengths.

    Examples
    --------
    >>> import numpy as np, mne
    >>> from brainalign.loaders.meeg import load_source_estimate
    >>> vertices = [np.arange(3), np.arange(2)]
    >>> stcs = [mne.SourceEstimate(np.full((5, 4), float(i)), vertices, tmin=0.0, tstep=0.01)
    ...         for i in range(2)]
    >>> da = load_source_estimate(stcs, ["cat", "dog"])
    >>> da.dims, da.hemi.values.tolist()
    (('stimulus', 'vertex', 'time'), ['lh', 'lh', 'lh', 'rh', 'rh'])
    """
    mne = _import_mne()
    check_option("sample_dim", sample_dim, SOURCE_SAMPLE_DIMS)
    if modality is not None:
        check_option("modality", modality, ("meg", "eeg", "ieeg"))
    if subject is not None:
        check_type("subject", subject, (str,), "a str or None")
    accepted = (mne.SourceEstimate, mne.VolSourceEstimate)
    accepted_text = "mne.SourceEstimate or mne.VolSourceEstimate"
    if isinstance(stcs, Mapping):
        if stimulus is not None:
            raise ValueError(
                "stimulus must be None when stcs is a dict: its keys are the stimulus ids."
            )
        stimulus = [str(k) for k in stcs]
        stcs = list(stcs.values())
    elif isinstance(stcs, accepted):
        stcs = [stcs]
    if not isinstance(stcs, (list, tuple)):
        raise TypeError(
            f"stcs must be an {accepted_text}, a list of them or a dict {{id: estimate}}; "
            f"got {type(stcs).__name__}."
        )
    if len(stcs) == 0:
        raise ValueError(f"stcs is empty; give at least one source estimate (got {stcs!r}).")
    for i, stc in enumerate(stcs):
        if not isinstance(stc, accepted):
            hint = ""
            if isinstance(stc, (mne.VectorSourceEstimate, mne.VolVectorSourceEstimate)):
                hint = " For a vector estimate, pass stc.magnitude() (or stc.normal(src))."
            raise TypeError(
                f"stcs[{i}] must be an {accepted_text}, got {type(stc).__name__}.{hint}"
            )
    ids = as_ids(stimulus, len(stcs))
    if sample_dim == "stimulus":
        dup = duplicates(ids)
        if dup:
            raise SchemaError(
                f"stimulus ids must be unique with sample_dim='stimulus'; duplicated: "
                f"{_fmt_list(dup)}. For one estimate per trial use sample_dim='trial'."
            )
    first = stcs[0]
    for i, stc in enumerate(stcs[1:], start=1):
        if type(stc) is not type(first):
            raise TypeError(
                f"stcs[{i}] is a {type(stc).__name__} but stcs[0] a {type(first).__name__}; "
                "all must be the same kind."
            )
        same = len(stc.vertices) == len(first.vertices) and all(
            np.array_equal(a, b) for a, b in zip(stc.vertices, first.vertices, strict=True)
        )
        if not same:
            raise ValueError(
                f"stcs[{i}] ({_fmt(ids[i])}) has other vertices than stcs[0] "
                f"({[len(v) for v in stc.vertices]} vs {[len(v) for v in first.vertices]} per "
                "source space); morph or restrict them to the same source space first."
            )
        if stc.times.shape != first.times.shape or not np.allclose(stc.times, first.times):
            raise ValueError(
                f"stcs[{i}] ({_fmt(ids[i])}) has {stc.times.size} samples from {stc.tmin} s "
                f"(step {stc.tstep} s) but stcs[0] has {first.times.size} from {first.tmin} s "
                f"(step {first.tstep} s); all must share the same times."
            )
    if isinstance(first, mne.SourceEstimate):
        hemi = np.concatenate(
            [np.full(len(v), h) for v, h in zip(first.vertices, ("lh", "rh"), strict=True)]
        )
        src_type = "surface"
    else:
        hemi = np.full(sum(len(v) for v in first.vertices), "vol")
        src_type = "volume"
    vertno = np.concatenate([np.asarray(v, dtype=np.int64) for v in first.vertices])
    values = np.stack([np.asarray(stc.data) for stc in stcs])
    coords: dict[str, Any] = {
        "hemi": ("vertex", hemi.astype(str)),
        "vertno": ("vertex", vertno),
        "time": np.asarray(first.times, dtype=np.float64),
    }
    if sample_dim == "stimulus":
        coords["stimulus"] = ids
    else:
        coords["trial"] = np.arange(len(stcs))
        coords["stimulus"] = ("trial", ids)
    attrs: dict[str, Any] = {
        "sfreq": float(1.0 / first.tstep),
        "tmin": float(first.tmin),
        "src_type": src_type,
        "source": f"mne.{type(first).__name__}",
    }
    subject = subject if subject is not None else first.subject
    if subject is not None:
        attrs["subject"] = str(subject)
    if modality is not None:
        attrs["modality"] = modality
    attrs["brainalign_version"] = __version__
    da = xr.DataArray(
        values, dims=(sample_dim, "vertex", "time"), coords=coords, attrs=attrs, name="sources"
    )
    return validate(da, name="load_source_estimate result")
