"""``brainalign init``: write a commented pipeline spec for a folder of data.

It looks at what the folder holds: per-subject pattern files (brainalign ``.nc`` with a
``stimulus`` dim, such as ``sub-01_patterns.nc``), a model's saved activations (a DataTree
with one ``activations`` array per layer, as :func:`brainalign.loaders.activations.
extract_activations` saves them) and a BIDS dataset (``dataset_description.json``: subjects,
tasks and runs are listed). It writes a spec that runs unchanged, with the choices left as
comments, and says what it found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from brainalign._logging import logger

_SUBJECT_RE = re.compile(r"(sub-[A-Za-z0-9]+)")
_TABLE_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".parquet")


@dataclass
class Found:
    """What a folder holds, as :func:`init_spec` reads it."""

    patterns: list[Path] = field(default_factory=list)
    activations: list[Path] = field(default_factory=list)
    other: list[Path] = field(default_factory=list)
    stimuli: list[str] = field(default_factory=list)
    bids: dict[str, list[str]] | None = None
    notes: list[str] = field(default_factory=list)


def _q(text: str) -> str:
    """Return ``text`` as a YAML string that reads back as the same string (JSON quoting)."""
    return json.dumps(str(text), ensure_ascii=False)


def _safe_name(text: str) -> str:
    """Return a spec name from a file or folder name (letters, digits, ``_ . -``; 64 at most)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-") or "data"
    return (name if name[0].isalnum() else f"x{name}")[:64]


def _inspect(path: Path) -> tuple[str, list[str]]:
    """Classify a ``.nc`` file: ``"patterns"``, ``"activations"`` or ``"other"``, and its ids."""
    import xarray as xr

    from brainalign.data import load

    try:
        obj = load(path)
    except Exception as err:
        return f"other (cannot be read: {type(err).__name__})", []
    if isinstance(obj, xr.DataTree):
        layers = [c for c in obj.children.values() if "activations" in c.dataset]
        if layers:
            ids = [str(s) for s in layers[0]["activations"]["stimulus"].values]
            return "activations", ids
        return "other (a DataTree without activations)", []
    if isinstance(obj, dict):
        return f"other (a saved dict of {len(obj)} entries)", []
    if isinstance(obj, xr.DataArray) and "stimulus" in obj.dims:
        return "patterns", [str(s) for s in obj["stimulus"].values]
    if isinstance(obj, xr.DataArray) and "stimulus" in obj.coords and "trial" in obj.dims:
        return "patterns", [str(s) for s in dict.fromkeys(obj["stimulus"].values)]
    return "other", []


def _bids(folder: Path) -> dict[str, list[str]]:
    """Subjects, tasks and runs of a BIDS folder, from its file names."""
    names = [p.name for p in folder.rglob("*") if p.is_file()]
    found: dict[str, list[str]] = {}
    for entity in ("sub", "ses", "task", "run"):
        values = sorted(
            {m.group(1) for n in names for m in re.finditer(rf"{entity}-([A-Za-z0-9]+)", n)}
        )
        if values:
            found[entity] = values
    return found


def scan(folder: str | Path) -> Found:
    """Return what ``folder`` holds (see the module docstring).

    Parameters
    ----------
    folder : path-like
        The data folder (searched two levels deep).

    Returns
    -------
    found : Found
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"brainalign init: {str(folder)!r} is not a folder.")
    found = Found()
    if (folder / "dataset_description.json").exists():
        found.bids = _bids(folder)
    files = sorted(p for p in folder.glob("*") if p.is_file())
    files += sorted(p for p in folder.glob("*/*") if p.is_file())
    for path in files:
        if path.suffix == ".nc":
            kind, ids = _inspect(path)
            if kind == "patterns":
                found.patterns.append(path)
                if not found.stimuli:
                    found.stimuli = ids
                elif set(ids) != set(found.stimuli):
                    found.notes.append(
                        f"{path.name} holds other stimuli than {found.patterns[0].name}"
                    )
            elif kind == "activations":
                found.activations.append(path)
                missing = sorted(set(found.stimuli) - set(ids)) if found.stimuli else []
                if missing:
                    found.notes.append(f"{path.name} lacks stimuli {missing[:10]}")
            else:
                found.other.append(path)
        elif path.suffix in _TABLE_SUFFIXES:
            found.other.append(path)
    return found


def _pattern_path(paths: list[Path]) -> str:
    """One glob for per-subject files named alike (``.../sub-*_patterns.nc``), else the file."""
    if len(paths) == 1:
        return str(paths[0].resolve())
    stems = {_SUBJECT_RE.sub("sub-*", p.name) for p in paths}
    parents = {p.parent.resolve() for p in paths}
    if len(stems) == 1 and len(parents) == 1:
        return str(parents.pop() / stems.pop())
    return ""


def init_spec(
    folder: str | Path, *, tmin: float | None = None, tmax: float | None = None
) -> tuple[str, Found]:
    """Write a commented pipeline spec (YAML text) for a folder of data.

    Parameters
    ----------
    folder : path-like
        The data folder.
    tmin, tmax : float, optional
        For a BIDS M/EEG folder: the epoch window (s) written into the spec, and used to
        find the conditions every subject has epochs of (default: the source's defaults).

    Returns
    -------
    text : str
        The spec. It validates and runs unchanged when the folder holds pattern files;
        paths are absolute, so it runs from any working directory.
    found : Found
        What was found.

    Raises
    ------
    FileNotFoundError
        When ``folder`` is not a folder.
    ValueError
        When it holds no pattern files a spec can use (the message lists what it holds).
    """
    from brainalign.pipeline._spec import load_spec

    folder = Path(folder).expanduser()
    found = scan(folder)
    name = _safe_name(folder.resolve().name)
    if not found.patterns and found.bids and _fmriprep_files(folder):
        text = _fmri_bids_spec(folder, name, found)
        load_spec(yaml.safe_load(text))  # it validates, or this is a bug
        return text, found
    if not found.patterns and found.bids and _meeg_files(folder):
        text = _meeg_bids_spec(folder, name, found, tmin, tmax)
        load_spec(yaml.safe_load(text))  # it validates, or this is a bug
        return text, found
    if not found.patterns:
        held = ", ".join(p.name for p in found.other[:10]) or "no files brainalign reads"
        bids = f"; BIDS entities: {found.bids}" if found.bids else ""
        raise ValueError(
            f"brainalign init: {str(folder)!r} holds no pattern files (brainalign .nc with a "
            f"stimulus dim, e.g. sub-01_patterns.nc); it holds {held}{bids}. Save each "
            "subject's patterns with brainalign.save(patterns, 'sub-01_patterns.nc'), or "
            "see docs/your_data.md for the other formats."
        )
    lines = [
        f"# Pipeline spec written by `brainalign init {folder}`.",
        "# Run it with: brainalign run <this file>   (--dry-run shows the plan)",
        f"name: {_q(name)}",
        f"description: {_q(f'Brain patterns in {folder.name} versus models.')}",
        "seed: 0",
        "",
        "brain:",
    ]
    glob = _pattern_path(found.patterns)
    subjects = [_SUBJECT_RE.search(p.relative_to(folder).as_posix()) for p in found.patterns]
    bids_names = all(subjects) and len({m.group(1) for m in subjects}) == len(subjects)
    more = " ..." if len(found.stimuli) > 8 else ""
    lines.append(
        f"  # {len(found.patterns)} pattern file(s), {len(found.stimuli)} stimuli: "
        f"{', '.join(found.stimuli[:8])}{more}"
    )
    if bids_names:
        names = ", ".join(m.group(1) for m in subjects if m)
        lines.append(f"  # subjects: {names} (several files: group-level RSA across subjects)")
    lines += [f"  {name}:", "    dataset: arrays"]
    if glob:
        lines.append(f"    files: {_q(glob)}")
    else:
        lines.append("    files:")
        lines += [f"      - {_q(str(p.resolve()))}" for p in found.patterns]
    if bids_names:
        lines.append("    subject_names: bids  # sub-XX from the file (or folder) names")
    lines += ["", "models:"]
    if found.activations:
        for path in found.activations:
            lines += [
                f"  {_safe_name(path.stem)}:",
                "    kind: activations",
                f"    path: {_q(str(path.resolve()))}",
                "    # layers: [layer1, layer2]   # default: every layer",
            ]
    lines += [
        "  random_network:  # a null model: an untrained network's RDM (a baseline to beat)",
        "    kind: random_network",
        "    n_layers: 2",
        "",
        "analyses:",
        "  rsa:",
        "    metric: correlation   # or euclidean, cosine, ... (no CV metric: no runs)",
        "    method: spearman      # or pearson, kendall_tau_a, cosine, ...",
        "    n_permutations: 1000  # permutation test of the mean RDM",
        "    n_bootstrap: 1000     # stimulus-bootstrap CIs; group-level tests use it too",
        "    group_resample: both  # group-level p-values generalise to new subjects and stimuli",
        "  # trsa: {}              # geo-topological RSA over the threshold grid",
        "  # ricci: {k: 5}         # Ricci curvature of k-NN graphs (k < number of stimuli)",
        "",
        "report:",
        f"  title: {_q(f'brainalign: {folder.name}')}",
    ]
    for note in found.notes:
        lines.insert(1, f"# NOTE: {note}")
    if found.bids:
        lines.insert(1, f"# BIDS entities found (not read by this spec): {found.bids}")
    text = "\n".join(lines) + "\n"
    load_spec(yaml.safe_load(text))  # it validates, or this is a bug
    logger.info(
        "init: %d pattern file(s), %d model file(s)", len(found.patterns), len(found.activations)
    )
    return text, found


def describe(found: Found) -> str:
    """Return a short summary of what :func:`scan` found."""
    parts = [
        f"{len(found.patterns)} pattern file(s)",
        f"{len(found.activations)} activation file(s)",
        f"{len(found.stimuli)} stimuli",
    ]
    if found.other:
        parts.append(f"{len(found.other)} other file(s) not used")
    if found.bids:
        parts.append(f"BIDS: {found.bids}")
    return ", ".join(parts)


def _meeg_files(folder: Path) -> list[Path]:
    """Return the M/EEG recordings of a BIDS folder (``*_eeg.*`` / ``*_meg.*`` data files)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if re.search(r"_(eeg|meg)\.(vhdr|edf|bdf|set|fif|con|sqd|ds)$", p.name)
    )


def _meeg_bids_spec(
    folder: Path, name: str, found: Found, tmin: float | None, tmax: float | None
) -> str:
    """Return a ``meeg_bids`` spec for a BIDS folder of M/EEG recordings."""
    files = _meeg_files(folder)
    datatype = "meg" if any("_meg." in p.name for p in files) else "eeg"
    # the tasks of the M/EEG recordings (not of func/ or derivatives files)
    tasks = sorted(
        {m.group(1) for p in files for m in re.finditer(r"task-([A-Za-z0-9]+)", p.name)}
    )
    task = tasks[0] if tasks else "unknown"
    window = {k: v for k, v in (("tmin", tmin), ("tmax", tmax)) if v is not None}
    per_subject = _epoched_stimuli(folder, task, datatype, window)
    common = sorted(set.intersection(*per_subject.values())) if per_subject else []
    every = sorted(set.union(*per_subject.values())) if per_subject else []
    subjects = sorted(per_subject)
    lines = [
        f"# Pipeline spec written by `brainalign init {folder}` for a BIDS M/EEG dataset.",
        "# Run it with: brainalign run <this file>   (--dry-run shows the plan)",
        f"# BIDS entities found: {found.bids}",
        f"name: {_q(name)}",
        f"description: {_q(f'{datatype.upper()} of {folder.name} (task {task}) versus models.')}",
        "seed: 0",
        "",
        "brain:",
        f"  # {len(subjects)} subject(s) with task {task}: {', '.join(subjects)}",
        f"  {_safe_name(task)}:",
        "    dataset: meeg_bids",
        f"    root: {_q(str(folder.resolve()))}",
        f"    task: {_q(task)}"
        + (f"   # other tasks: {', '.join(tasks[1:])}" if len(tasks) > 1 else ""),
        f"    datatype: {datatype}",
        "    subjects: all",
    ]
    if common:
        lines.append(f"    event_id: {json.dumps(common)}   # the conditions every subject has")
    if len(every) > len(common):
        lines.append(f"    # conditions some subjects lack: {sorted(set(every) - set(common))}")
    lines += [f"    {k}: {v}" for k, v in window.items()]
    lines += [f"    # {k}: -0.1" if k == "tmin" else f"    # {k}: 0.5" for k in
              ("tmin", "tmax") if k not in window]  # fmt: skip
    lines += [
        "    # baseline: [null, 0]",
        "    # rsa_window: [0.1, 0.4]",
        *_models_and_rsa(),
        "  time_resolved:  # one similarity per time point (of the grand-average evoked)",
        "    n_permutations: 1000",
        "",
        "report:",
        f"  title: {_q(f'brainalign: {folder.name} ({task})')}",
    ]
    return "\n".join(lines) + "\n"


def _epoched_stimuli(
    folder: Path, task: str, datatype: str, window: dict[str, float]
) -> dict[str, set[str]]:
    """Return the stimuli each subject has epochs of (an event at an edge gives none)."""
    from brainalign.pipeline._spec import load_spec
    from brainalign.pipeline.sources.meeg_bids import recordings, subject_evoked

    draft = {
        "name": "init",
        "brain": {"b": {"dataset": "meeg_bids", "root": str(folder), "task": task,
                        "datatype": datatype, **window}},
        "models": {"m": {"kind": "random_network"}},
        "analyses": {"rsa": {}},
    }  # fmt: skip
    src = load_spec(draft)["brain"]["b"]
    out = {}
    for subject, paths in recordings(src).items():
        evoked = subject_evoked(src, subject, paths)
        out[subject] = {str(s) for s in evoked.stimulus.values}
    return out


def _fmriprep_files(folder: Path) -> list[Path]:
    """Return the fMRIPrep preprocessed BOLD runs under ``derivatives/fmriprep``."""
    deriv = folder / "derivatives" / "fmriprep"
    return sorted(deriv.rglob("*_desc-preproc_bold.nii*")) if deriv.is_dir() else []


def _fmri_bids_spec(folder: Path, name: str, found: Found) -> str:
    """Return an ``fmri_bids`` spec for a BIDS folder with fMRIPrep derivatives."""
    files = _fmriprep_files(folder)
    tasks = sorted(
        {m.group(1) for p in files for m in re.finditer(r"task-([A-Za-z0-9]+)", p.name)}
    )
    spaces = sorted(
        {m.group(1) for p in files for m in re.finditer(r"space-([A-Za-z0-9]+)", p.name)}
    )
    task = tasks[0]
    space = "MNI152NLin2009cAsym" if "MNI152NLin2009cAsym" in spaces or not spaces else spaces[0]
    subjects = sorted({m.group(1) for p in files if (m := _SUBJECT_RE.search(p.name))})
    others = f"  # other tasks: {', '.join(tasks[1:])}" if tasks[1:] else ""
    lines = [
        f"# Pipeline spec written by `brainalign init {folder}` for a BIDS fMRI dataset with",
        "# fMRIPrep derivatives. Run it with: brainalign run <this file>",
        f"# BIDS entities found: {found.bids}",
        f"name: {_q(name)}",
        f"description: {_q(f'fMRI of {folder.name} (task {task}) versus models.')}",
        "seed: 0",
        "",
        "brain:",
        f"  # {len(subjects)} subject(s) with task {task}: {', '.join(subjects)}",
        f"  {_safe_name(task)}:",
        "    dataset: fmri_bids",
        f"    root: {_q(str(folder.resolve()))}",
        f"    task: {_q(task)}{others}",
        f"    space: {_q(space)}  # spaces found: {', '.join(spaces) or 'none'}",
        "    subjects: all",
        "    confounds: motion  # or motion+wm_csf, or a list of confounds columns",
        "    estimate: condition  # one beta per condition and run (or lsa, lss: per event)",
        "    # stimulus_column: trial_type   # the events.tsv column holding stimulus ids",
        "    # mask: path/to/mask.nii.gz     # default: each subject's fMRIPrep brain mask",
        *_models_and_rsa(),
        "",
        "report:",
        f"  title: {_q(f'brainalign: {folder.name} ({task})')}",
    ]
    return "\n".join(lines) + "\n"


def _models_and_rsa() -> list[str]:
    """Return the spec lines of a baseline model and RSA with group-level tests."""
    return [
        "",
        "models:",
        "  random_network:  # a null model; add yours (kind: activations, features, rdm, ...)",
        "    kind: random_network",
        "    n_layers: 2",
        "",
        "analyses:",
        "  rsa:",
        "    metric: correlation",
        "    method: spearman",
        "    n_permutations: 1000",
        "    n_bootstrap: 1000",
        "    group_resample: both",
    ]
