"""M/EEG brain sources of the pipeline runner: epochs, window RDMs and RSA time courses.

An M/EEG source (``dataset: eeg_haxby_sim``, the shipped semi-simulated EEG, or
``dataset: meeg_file`` with ``path:``, any recording MNE reads) is epoched around its
events and averaged per stimulus: ``(stimulus, channel, time)``. Two analyses use it:

- ``rsa`` compares the RDM of the patterns averaged over ``rsa_window`` (default: from 0 s
  to the end of the epoch) with each model RDM, so the summary table, the model comparison
  and the other RDM-based analyses work as for fMRI;
- ``time_resolved`` compares the RDM at every time point with each model RDM
  (:func:`brainalign.rsa.time_resolved`), with a stimulus-permutation band and p-values
  corrected over time points by the maximum statistic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import logger, progress
from brainalign._mpltext import mpl_text
from brainalign.pipeline._cache import Cache, content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline._spec import MEEG_FILE

#: What the time course results hold (``null`` stays out: it is large and can be recomputed
#: from the seed).
_TIME_COURSE_VARS = ("similarity", "p_value", "p_value_corrected", "band_low", "band_high")


def _file_sha256(path: Path) -> str:
    """sha256 of a file, or of the sorted files of a folder (e.g. a CTF ``.ds``)."""
    import hashlib

    from brainalign.datasets._registry import _sha256

    if path.is_file():
        return _sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(_sha256(f).encode())
    return h.hexdigest()


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
        opts = {"path": path, "sha256": _file_sha256(path), "event_id": ev}
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


def meeg_brain(src: dict[str, Any], metric: str) -> dict[str, Any]:
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

    evoked = load_meeg(src)
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
    return {"kind": "meeg", "rdm": rdm, "reliability": {}, "attrs": attrs, "splits": None}


def meeg_payload(src: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Return what an M/EEG brain entry depends on (its cache key's payload)."""
    opts = epoch_options(src)
    return {
        "src": src,
        "metric": params["metric"],
        "files": {str(opts["path"].name): opts["sha256"]},
        "epochs": {k: opts[k] for k in ("tmin", "tmax", "baseline", "event_id", "picks")},
    }


def _time_course_key(spec: dict[str, Any], brain_key: str, model_key: str) -> str:
    return content_key(
        {
            "brain": brain_key,
            "model": model_key,
            "time_resolved": spec["analyses"]["time_resolved"],
            "seed": spec["seed"],
        }
    )


def compute_time_course(
    cache: Cache,
    spec: dict[str, Any],
    unit: Any,
    brain_key: str,
    brain: dict[str, Any],
    load: Callable[[str], xr.DataArray] | None = None,
) -> dict[str, xr.Dataset]:
    """RSA time courses of one M/EEG source against one model's entries (cached).

    All entries of the model go through one :func:`brainalign.rsa.time_resolved` call (the
    same stimulus permutations for all, from the spec's seed).

    Parameters
    ----------
    cache : Cache
        The run's cache.
    spec : dict
        The validated spec.
    unit : Unit
        A ``time_resolved`` unit.
    brain_key : str
        The brain entry's cache key.
    brain : dict
        The brain entry (its RDM gives the stimuli of the model RDMs).
    load : callable, optional
        Brain name → its stimulus-mean epochs (:func:`load_meeg`), called only when the
        unit is not cached; lets a run epoch each source once for all its models.

    Returns
    -------
    courses : dict
        Entry name → Dataset over ``time`` (``similarity``, ``p_value``,
        ``p_value_corrected``, ``band_low``, ``band_high``).
    """
    from brainalign.pipeline._run import unit_models
    from brainalign.rsa import time_resolved

    params = spec["analyses"]["time_resolved"]
    model_key, rdms = unit_models(cache, spec, unit, brain)
    key = _time_course_key(spec, brain_key, model_key)
    cached = cache.get("time_course", key)
    if cached is not None:
        return tree_to_entries(cached)
    evoked = load(unit.brain) if load is not None else load_meeg(spec["brain"][unit.brain])
    res = time_resolved(
        evoked,
        rdms,
        metric=params["metric"],
        method=params["method"],
        n_permutations=params["n_permutations"],
        alpha=float(params["alpha"]),
        seed=spec["seed"],
    )
    keep = [v for v in _TIME_COURSE_VARS if v in res]
    out = {}
    for entry in rdms:
        ds = res[keep].sel(model=entry).drop_vars("model")
        ds.attrs.update(model=unit.model, entry=entry)
        out[entry] = ds
    cache.put("time_course", key, entries_to_tree(out, {"unit": f"time_resolved/{unit.key}"}))
    return out


def time_courses(
    cache: Cache,
    spec: dict[str, Any],
    units: list[Any],
    brain_keys: dict[str, str],
    brains: dict[str, dict[str, Any]],
) -> dict[str, xr.Dataset]:
    """Compute (or load) every ``time_resolved`` unit; one Dataset per brain over ``model``.

    Parameters
    ----------
    cache : Cache
        The run's cache.
    spec : dict
        The validated spec.
    units : list of Unit
        The plan (only ``time_resolved`` units are used).
    brain_keys, brains : dict
        Brain name → cache key / brain entry.

    Returns
    -------
    courses : dict
        Brain name → Dataset with dims ``(model, time)``.
    """
    entries: dict[str, dict[str, xr.Dataset]] = {}

    @functools.cache
    def load(bname: str) -> xr.DataArray:  # each source epoched once, for all its models
        return load_meeg(spec["brain"][bname])

    for unit in progress([u for u in units if u.analysis == "time_resolved"], "time courses"):
        got = compute_time_course(
            cache, spec, unit, brain_keys[unit.brain], brains[unit.brain], load
        )
        entries.setdefault(unit.brain, {}).update(got)
        for entry, ds in got.items():
            k = int(ds.similarity.argmax("time"))
            logger.info(
                "%s/%s: peak %.3f at %.3f s",
                unit.key,
                entry,
                float(ds.similarity[k]),
                float(ds.time[k]),
            )
    out = {}
    for bname, per_entry in entries.items():
        names = list(per_entry)
        ds = xr.concat([per_entry[n] for n in names], dim="model").assign_coords(model=names)
        first = per_entry[names[0]].attrs
        ds.attrs = {k: v for k, v in first.items() if k not in ("model", "entry")}
        ds.attrs["description"] = (
            "Time-resolved RSA: at each time point, the similarity of the RDM of the "
            "stimulus-mean channel patterns with each model entry's RDM; band_low/band_high: "
            "quantiles of a stimulus-permutation null; p_value_corrected: max statistic "
            "over time points (per model entry, not across entries)."
        )
        out[bname] = ds
    return out


def _simulated_window(src: dict[str, Any]) -> list[float] | None:
    if src["dataset"] == MEEG_FILE:
        return None
    from brainalign.datasets import get_manifest

    return get_manifest(src["dataset"]).get("simulated_window")


def _peak_rows(bname: str, ds: xr.Dataset, alpha: float, method: str) -> list[dict[str, Any]]:
    """One row per model entry: peak time and value, corrected p there, significant span."""
    rows = []
    t = np.asarray(ds.time.values, float)
    for m in ds.model.values:
        sim = np.asarray(ds.similarity.sel(model=m).values, float)
        k = int(np.nanargmax(sim))
        row = {"brain": bname, "model": str(m), "peak time (s)": float(t[k]),
               f"peak {method} r": float(sim[k])}  # fmt: skip
        if "p_value_corrected" in ds:
            pc = np.asarray(ds.p_value_corrected.sel(model=m).values, float)
            sig = t[pc < alpha]
            row["p corrected (peak)"] = float(pc[k])
            row["p uncorrected (peak)"] = float(ds.p_value.sel(model=m).values[k])
            row[f"time points p_corr < {alpha:g}"] = (
                f"{sig.size}: {sig.min():.3f} to {sig.max():.3f} s" if sig.size else "0"
            )
        rows.append(row)
    return rows


def time_course_section(report: Any, spec: dict[str, Any], courses: dict[str, xr.Dataset]) -> None:
    """Add the "Time course" section: one figure and one peak table per M/EEG source.

    Parameters
    ----------
    report : Report
        The report.
    spec : dict
        The validated spec.
    courses : dict
        Brain name → time courses (from :func:`time_courses`).
    """
    from brainalign.viz import plot_time_course
    from brainalign.viz._rdm import _figure

    params = spec["analyses"]["time_resolved"]
    alpha = float(params["alpha"])
    method = params["method"]
    n_perm = params["n_permutations"]
    section = "Time course"
    for bname, ds in courses.items():
        src = spec["brain"][bname]
        fig = _figure((9.5, 4.4))
        ax = fig.add_subplot()
        sim_window = _simulated_window(src)
        if sim_window is not None:
            ax.axvspan(*sim_window, color="0.9", lw=0, zorder=0, label="simulated response")
        plot_time_course(ds, ax=ax, alpha=alpha, ylabel=f"{method} r with model RDM")
        for band in ax.collections:  # many entries: fainter bands keep the lines readable
            if band.get_label() != "simulated response":
                band.set_alpha(0.15 if ds.sizes["model"] <= 3 else 0.06)
        ax.axvline(0, color="k", lw=0.8, ls=":")
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(mpl_text(f"{bname}: model–brain similarity over time"))
        caption = (
            f"Each line: the {method} correlation, at each time point, between the "
            f"{params['metric']} RDM of the stimulus-mean channel patterns and one model "
            "entry's RDM. "
        )
        if n_perm:
            caption += (
                f"Shaded band (same colour): the central {1 - alpha:.0%} of a null from "
                f"{n_perm} random permutations of the stimulus labels. Dots under the "
                f"curves: time points with p < {alpha:g} corrected over time by the "
                "maximum statistic (per model entry; not corrected across entries). "
            )
        caption += "Dotted line: stimulus onset."
        if sim_window is not None:
            caption += (
                f" Grey: the {sim_window[0]:g}-{sim_window[1]:g} s window where this "
                "SEMI-SIMULATED dataset holds its simulated evoked responses (the background "
                "is real EEG; the events and responses are simulated)."
            )
        report.add_figure(fig, f"Time course ({bname})", section=section, caption=caption)
        report.add_table(
            _peak_rows(bname, ds, alpha, method),
            f"Peak similarity per model entry ({bname})",
            section=section,
            caption="Peak: the time point of highest similarity. p corrected: max-statistic "
            "permutation p-value at the peak (one-sided); the last column counts the time "
            f"points with corrected p < {alpha:g} and gives their first and last time. The "
            "full time courses are in results.nc (time_course/" + bname + ").",
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


def time_course_cached(cache: Cache, spec: dict[str, Any], unit: Any, brain_key: str) -> bool:
    """Return whether a ``time_resolved`` unit is in the cache (nothing is computed)."""
    from brainalign.data._io import load
    from brainalign.pipeline._run import _model_key, model_metric

    if not cache.has("brain", brain_key):
        return False
    ids = [str(v) for v in load(cache.path("brain", brain_key))["rdm"]["stimulus_a"].values]
    metric = model_metric(spec["analyses"]["rsa"])
    model_key = _model_key(unit.model, spec["models"][unit.model], ids, metric)
    return cache.has("time_course", _time_course_key(spec, brain_key, model_key))
