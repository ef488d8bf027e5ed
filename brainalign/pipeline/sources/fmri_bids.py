"""BIDS fMRI with fMRIPrep derivatives (``dataset: fmri_bids``), one subject or several.

Each subject's preprocessed BOLD runs of the ``task`` (``*_space-<space>_desc-preproc_bold
.nii.gz`` in the fMRIPrep folder, every session and run unless ``session`` picks one), their
fMRIPrep confounds (``*_desc-confounds_timeseries.tsv``: the columns of ``confounds``) and the
raw ``*_events.tsv`` of the BIDS root (ids in ``stimulus_column``) go through a GLM
(:func:`brainalign.loaders.fmri.load_bold`: one pattern per run and condition, or per event);
the patterns are averaged per stimulus. The voxels are those of ``mask`` (default: the
fMRIPrep brain mask of the subject's first run).

The brain RDM is the mean of the subjects' RDMs; with two subjects or more the source also
gives the subjects' RDMs, and RSA adds group-level inference across subjects with a noise
ceiling. The source's run-wise trials are each subject's own (``subject_runs``): encoding
models are fit per subject and their maps tested across subjects; there is no run-split
ceiling (``runs`` is False), which keeps one subject's runs from standing for a group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import _fmt_list, did_you_mean
from brainalign.pipeline._analysis import Checker, register_source
from brainalign.pipeline.sources.arrays import (
    SubjectPatterns,
    SubjectsSource,
    align_subjects,
    file_digests,
    mean_patterns,
    provenance,
    subjects_text,
)

FMRI_BIDS = "fmri_bids"
"""The name of the source: BIDS fMRI with fMRIPrep derivatives."""
CONFOUND_STRATEGIES = {
    "motion": ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
    "motion+wm_csf": [
        "trans_x",
        "trans_y",
        "trans_z",
        "rot_x",
        "rot_y",
        "rot_z",
        "white_matter",
        "csf",
    ],
}
"""Named confound sets: strategy → the fMRIPrep confound columns."""
ESTIMATES = ("condition", "lsa", "lss")
"""Values of ``estimate`` (see :func:`brainalign.loaders.fmri.load_bold`)."""
_WHERE = f"dataset {FMRI_BIDS}"
_PREPROC = "_desc-preproc_bold.nii.gz"


@dataclass
class FmriRun:
    """One preprocessed run: its BOLD, confounds and raw events files, and its run label."""

    bold: Path
    confounds: Path
    events: Path
    mask: Path
    run: Any


@dataclass
class BidsPatterns(SubjectPatterns):
    """The subjects' stimulus patterns and GLM patterns (``subject_trials``).

    ``trials`` holds the GLM patterns of a source with one subject only.
    """

    trials: xr.DataArray | None = None
    subject_trials: dict[str, xr.DataArray] = field(default_factory=dict)


# ------------------------------------------------------------------------------- finding
def bids_root(src: dict[str, Any]) -> Path:
    """Return the source's BIDS root (``~`` expanded, relative to the working directory)."""
    return Path(src["root"]).expanduser()


def derivatives_dir(src: dict[str, Any]) -> Path:
    """Return the fMRIPrep folder: ``derivatives``, else ``<root>/derivatives/fmriprep``."""
    if src["derivatives"] is not None:
        return Path(src["derivatives"]).expanduser()
    return bids_root(src) / "derivatives" / "fmriprep"


def _entities(name: str) -> list[tuple[str, str]]:
    stem = name.split(".", 1)[0]
    return [tuple(p.split("-", 1)) for p in stem.split("_") if "-" in p]  # type: ignore[misc]


def _base(name: str) -> str:
    """Return a file's entities without space/res/desc (``sub-01_task-a_run-1``)."""
    return "_".join(f"{k}-{v}" for k, v in _entities(name) if k not in ("space", "res", "desc"))


def _subject_label(name: str) -> str:
    return name[4:] if str(name).startswith("sub-") else str(name)


def _available(deriv: Path, subject: str | None = None) -> str:
    """Describe the subjects, tasks and spaces of preprocessed BOLD under the fMRIPrep folder."""
    subjects = sorted(p.name for p in deriv.glob("sub-*") if p.is_dir())
    where = deriv / subject if subject is not None else deriv
    bolds = list(where.rglob(f"*{_PREPROC}")) if where.is_dir() else []
    tasks = sorted({dict(_entities(p.name)).get("task", "?") for p in bolds})
    spaces = sorted({dict(_entities(p.name)).get("space", "?") for p in bolds})
    whose = f" of {subject}" if subject is not None else ""
    return (
        f"The fMRIPrep folder holds subjects: {_fmt_list(subjects) if subjects else 'none'}; "
        f"tasks{whose}: {_fmt_list(tasks) if tasks else 'none'}; spaces{whose}: "
        f"{_fmt_list(spaces) if spaces else 'none'}."
    )


def _run_label(bold: Path, n: int) -> Any:
    run = dict(_entities(bold.name)).get("run")
    if run is None:
        return n + 1
    return int(run) if run.isdigit() else run


def find_runs(src: dict[str, Any]) -> dict[str, list[FmriRun]]:
    """Return each subject's preprocessed runs of the task: ``{"sub-XX": [FmriRun, ...]}``.

    Parameters
    ----------
    src : dict
        A validated ``fmri_bids`` source.

    Returns
    -------
    runs : dict
        Subject (sorted, or in the order of ``subjects``) → its runs, sorted by name.

    Raises
    ------
    FileNotFoundError
        When the root or the fMRIPrep folder is missing, a subject has no preprocessed BOLD of
        the task in the space (naming the subjects, tasks and spaces that exist), or a run's
        confounds, events or brain mask are missing (naming the file expected).
    """
    root, deriv = bids_root(src), derivatives_dir(src)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{_WHERE}: root: BIDS root not found: {str(src['root'])!r} (relative paths are "
            f"from the working directory {os.getcwd()!r})."
        )
    if not deriv.is_dir():
        raise FileNotFoundError(
            f"{_WHERE}: derivatives: the fMRIPrep folder {str(deriv)!r} does not exist; run "
            "fMRIPrep first, or give its output folder with derivatives: (default "
            "<root>/derivatives/fmriprep)."
        )
    if src["subjects"] == "all":
        names = sorted(p.name for p in deriv.glob("sub-*") if p.is_dir())
        if not names:
            raise FileNotFoundError(f"{_WHERE}: no sub-* folder in {str(deriv)!r}.")
    else:
        names = [f"sub-{_subject_label(s)}" for s in src["subjects"]]
        missing = [s for s in names if not (deriv / s).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"{_WHERE}: subjects: {_fmt_list(missing)} not found in {str(deriv)!r}. "
                + _available(deriv)
            )
    ses = src["session"]
    out = {}
    for name in names:
        pattern = f"{name}_*task-{src['task']}_*space-{src['space']}{_PREPROC}"
        bolds = sorted(
            p
            for p in (deriv / name).rglob(pattern)
            if ses is None or f"_ses-{ses}_" in f"_{p.name}"
        )
        if not bolds:
            raise FileNotFoundError(
                f"{_WHERE}: {name} has no preprocessed BOLD of task {src['task']!r} in space "
                f"{src['space']!r}{f' (session {ses!r})' if ses else ''} under "
                f"{str(deriv / name)!r}. " + _available(deriv, name)
            )
        runs = []
        for n, bold in enumerate(bolds):
            base = _base(bold.name)
            conf = bold.with_name(f"{base}_desc-confounds_timeseries.tsv")
            events = root / bold.parent.relative_to(deriv) / f"{base}_events.tsv"
            mask = bold.with_name(bold.name.replace(_PREPROC, "_desc-brain_mask.nii.gz"))
            for what, f in (("confounds", conf), ("events", events)):
                if not f.is_file():
                    raise FileNotFoundError(
                        f"{_WHERE}: {name}: the {what} file of {bold.name} is missing: "
                        f"expected {str(f)!r}."
                    )
            runs.append(FmriRun(bold, conf, events, mask, _run_label(bold, n)))
        out[name] = runs
    return out


def mask_of(src: dict[str, Any], runs: list[FmriRun]) -> Path:
    """Return a subject's mask: ``mask``, else the fMRIPrep brain mask of its first run."""
    if src["mask"] is not None:
        path = Path(src["mask"]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{_WHERE}: mask: file not found: {str(src['mask'])!r} (relative paths are "
                f"from the working directory {os.getcwd()!r})."
            )
        return path
    if not runs[0].mask.is_file():
        raise FileNotFoundError(
            f"{_WHERE}: the brain mask of {runs[0].bold.name} is missing: expected "
            f"{str(runs[0].mask)!r}; give a mask: (a NIfTI image on the BOLD grid)."
        )
    return runs[0].mask


def files_read(src: dict[str, Any]) -> list[Path]:
    """Return every file the source reads: BOLD, confounds, events and masks."""
    out: list[Path] = []
    for runs in find_runs(src).values():
        for r in runs:
            out += [r.bold, r.confounds, r.events]
        out.append(mask_of(src, runs))
    out += [Path(src[k]).expanduser() for k in ("atlas", "atlas_labels") if src.get(k)]
    return list(dict.fromkeys(out))


# -------------------------------------------------------------------------------- atlases
ATLAS_COLUMNS = ("index", "name")
"""Columns of ``atlas_labels`` (as a BIDS ``dseg.tsv``): the label value and its name."""


def _atlas_file(src: dict[str, Any], key: str) -> Path:
    path = Path(src[key]).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{_WHERE}: {key}: file not found: {str(src[key])!r} (relative paths are from the "
            f"working directory {os.getcwd()!r})."
        )
    return path


def atlas_regions(src: dict[str, Any]) -> dict[str, int]:
    """Return the atlas's regions, name → label value, in the table's (or label) order.

    Without ``atlas_labels`` the names are the label values of the image (``"1"``, ...).

    Raises
    ------
    FileNotFoundError
        When the atlas or its table is missing.
    ValueError
        When the table lacks ``index``/``name`` (naming its columns), repeats a name, or
        names a value the image does not hold; when ``rois`` names a region the atlas lacks
        (naming those it has).
    """
    import nibabel as nib
    import pandas as pd

    image = _atlas_file(src, "atlas")
    try:
        values = np.asarray(nib.load(image).dataobj)
    except Exception as err:  # nibabel raises many types for a file that is not an image
        raise ValueError(
            f"{_WHERE}: atlas: cannot read {str(image)!r} as a NIfTI label image: {err}"
        ) from err
    present = sorted(int(v) for v in np.unique(values[np.isfinite(values)]) if v != 0)
    if src.get("atlas_labels"):
        path = _atlas_file(src, "atlas_labels")
        sep = "," if path.suffix.lower() == ".csv" else "\t"
        try:
            table = pd.read_csv(path, sep=sep)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{_WHERE}: atlas_labels: cannot read {str(path)!r}: {err}") from err
        table.columns = [str(c).strip() for c in table.columns]
        missing = [c for c in ATLAS_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(
                f"{_WHERE}: atlas_labels: {str(path)!r} needs the columns index and name (as a "
                f"BIDS dseg.tsv); it has {_fmt_list(list(table.columns))}."
            )
        regions = {}
        for idx, name in zip(table["index"], table["name"], strict=True):
            name = str(name).strip()
            if name in regions:
                raise ValueError(
                    f"{_WHERE}: atlas_labels: {str(path)!r} repeats the name {name!r}."
                )
            regions[name] = int(idx)
        absent = [f"{n} ({v})" for n, v in regions.items() if v not in present and v != 0]
        if absent:
            raise ValueError(
                f"{_WHERE}: atlas_labels: {_fmt_list(absent)} not in the atlas image "
                f"{str(image)!r}, which holds the values {_fmt_list(present)}."
            )
        regions = {n: v for n, v in regions.items() if v != 0}  # 0: background
    else:
        regions = {str(v): v for v in present}
    picked = src.get("rois") or ([src["roi"]] if src.get("roi") else None)
    if picked:
        unknown = [str(r) for r in picked if str(r) not in regions]
        if unknown:
            raise ValueError(
                f"{_WHERE}: rois: {_fmt_list(unknown)} not in the atlas; its regions: "
                f"{_fmt_list(list(regions))}." + did_you_mean(unknown[0], list(regions))
            )
        regions = {str(r): regions[str(r)] for r in picked}
    if not regions:
        raise ValueError(f"{_WHERE}: atlas: {str(image)!r} holds no region (only 0).")
    return regions


def _safe(name: str) -> str:
    """Return a region name fit for a brain-source name (letters, digits, ``_.-``)."""
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-") else "_" for ch in name)
    return out.strip("_.-") or "roi"


def roi_mask(src: dict[str, Any], runs: list[FmriRun]) -> Any:
    """Return the mask of one region: the atlas's ``roi`` within the subject's mask.

    The atlas is resampled (nearest neighbour) to the mask's grid when the grids differ.

    Raises
    ------
    ValueError
        When the region has no voxel inside the mask.
    """
    import nibabel as nib
    from nilearn import image as nimg

    mask = nib.load(mask_of(src, runs))
    atlas = nib.load(_atlas_file(src, "atlas"))
    if atlas.shape[:3] != mask.shape[:3] or not np.allclose(atlas.affine, mask.affine):
        atlas = nimg.resample_to_img(
            atlas, mask, interpolation="nearest", force_resample=True, copy_header=True
        )
    value = atlas_regions(src)[src["roi"]]
    inside = (np.asarray(atlas.dataobj) == value) & (np.asarray(mask.dataobj) > 0)
    if not inside.any():
        raise ValueError(
            f"{_WHERE}: region {src['roi']!r} (value {value}) of the atlas has no voxel inside "
            f"the mask {str(mask_of(src, runs))!r}."
        )
    return nib.Nifti1Image(inside.astype(np.uint8), mask.affine)


# ------------------------------------------------------------------------------- reading
def confound_columns(src: dict[str, Any]) -> list[str]:
    """Return the confound columns: the strategy's, or the list given."""
    conf = src["confounds"]
    return list(CONFOUND_STRATEGIES[conf]) if isinstance(conf, str) else [str(c) for c in conf]


def read_confounds(path: Path, columns: list[str], n_volumes: int) -> Any:
    """Read the confound columns of an fMRIPrep ``*_desc-confounds_timeseries.tsv``.

    NaN in the first row (derivatives, framewise displacement) becomes 0.

    Raises
    ------
    ValueError
        When the file cannot be read, lacks a column (naming its columns), has another number
        of rows than the BOLD has volumes (both counts), or holds NaN or text past row 1.
    """
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", ""], keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{_WHERE}: cannot read the confounds {str(path)!r}: {type(err).__name__}: {err}"
        ) from err
    have = [str(c) for c in table.columns]
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(
            f"{_WHERE}: confounds: the column(s) {_fmt_list(missing)} are not in "
            f"{str(path)!r}; its columns: {_fmt_list(have, limit=40)}."
            + did_you_mean(missing[0], have)
        )
    if table.shape[0] != n_volumes:
        raise ValueError(
            f"{_WHERE}: {str(path)!r} has {table.shape[0]} rows but its BOLD run has "
            f"{n_volumes} volumes; the confounds need one row per volume."
        )
    conf = table[columns].apply(pd.to_numeric, errors="coerce")
    values = np.array(conf.to_numpy(dtype=np.float64), copy=True)
    values[0, np.isnan(values[0])] = 0.0  # fMRIPrep's derivatives start with n/a
    bad = ~np.isfinite(values)
    if bad.any():
        r, k = np.argwhere(bad)[0]
        raise ValueError(
            f"{_WHERE}: {str(path)!r}: {int(bad.sum())} confound value(s) are missing or not "
            f"numbers; first: row {int(r) + 1}, column {columns[k]!r}. Only the first row may "
            "be n/a (it becomes 0)."
        )
    return pd.DataFrame(values, columns=columns)


def read_stimulus_events(path: Path, column: str) -> Any:
    """Read a raw ``events.tsv`` with the stimulus ids of ``column`` as the trial types.

    Raises
    ------
    ValueError
        When the column is missing (naming the file's columns) or the events are invalid.
    """
    import pandas as pd

    from brainalign.loaders.fmri import read_events

    try:
        table = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a", ""]
        )
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{_WHERE}: cannot read the events {str(path)!r}: {type(err).__name__}: {err}"
        ) from err
    have = [str(c).strip() for c in table.columns]
    table.columns = have
    if column not in have:
        raise ValueError(
            f"{_WHERE}: stimulus_column: {str(path)!r} has no column {column!r}; its columns: "
            f"{_fmt_list(have)}." + did_you_mean(column, have)
        )
    if column == "trial_type":
        return read_events(path)  # its messages name the file and the line
    events = table.drop(columns=["trial_type"], errors="ignore").rename(
        columns={column: "trial_type"}
    )
    try:
        return read_events(events)
    except ValueError as err:
        raise ValueError(f"{_WHERE}: events file {str(path)!r}: {err}") from err


def load_subject(src: dict[str, Any], name: str, runs: list[FmriRun]) -> xr.DataArray:
    """Return one subject's GLM patterns ``(trial, voxel)``, its runs together."""
    import nibabel as nib

    from brainalign.loaders.fmri import load_bold

    columns = confound_columns(src)
    confounds, events = [], []
    for r in runs:
        try:
            n_volumes = int(nib.load(r.bold).shape[3])
        except (OSError, IndexError, ValueError) as err:
            raise ValueError(
                f"{_WHERE}: cannot read {str(r.bold)!r} as a 4-D NIfTI image: {err}"
            ) from err
        confounds.append(read_confounds(r.confounds, columns, n_volumes))
        events.append(read_stimulus_events(r.events, src["stimulus_column"]))
    return load_bold(
        [str(r.bold) for r in runs],
        events,
        mask=roi_mask(src, runs) if src.get("roi") else str(mask_of(src, runs)),
        estimate=src["estimate"],
        confounds=confounds,
        run_labels=[r.run for r in runs],
        subject=name,
    )


def load_fmri_bids(src: dict[str, Any]) -> BidsPatterns:
    """Load every subject: GLM patterns averaged per stimulus, in one stimulus order.

    Returns
    -------
    data : BidsPatterns
        ``subjects`` (name → ``(stimulus, voxel)`` with voxel coords), ``means`` (their mean
        when they share their voxels, else None), ``trials`` (one subject only) and
        ``attrs`` (provenance).
    """
    from brainalign.data import average_trials

    found = find_runs(src)
    subjects, where, counts = {}, {}, {}
    trials = None
    subject_trials = {}
    for name, runs in found.items():
        t = load_subject(src, name, runs)
        subject_trials[name] = t
        means = average_trials(t)
        means = means.drop_vars([c for c in ("n_trials",) if c in means.coords])
        means.attrs = {"subject": name, "source": str(runs[0].bold.parent)}
        subjects[name] = means
        where[name] = f"{len(runs)} run(s) in {str(runs[0].bold.parent)!r}"
        counts[name] = int(t.sizes["trial"])
        trials = t if len(found) == 1 else None
    subjects = align_subjects(subjects, where, None, _WHERE)
    ijk = [tuple(map(tuple, np.c_[d.i.values, d.j.values, d.k.values])) for d in subjects.values()]
    means = mean_patterns(subjects) if len(set(ijk)) == 1 else None
    data = BidsPatterns(
        subjects,
        file_digests(files_read(src)),
        means,
        trials=trials,
        subject_trials={n: subject_trials[n] for n in subjects},
    )
    data.attrs = {
        **provenance(data, "patterns"),
        "task": src["task"],
        "space": src["space"],
        "estimate": src["estimate"],
        "confounds": ", ".join(confound_columns(src)),
        "n_runs": ", ".join(f"{n}: {len(r)}" for n, r in found.items()),
        "n_trials": ", ".join(f"{n}: {c}" for n, c in counts.items()),
    }
    return data


# --------------------------------------------------------------------------------- source
@register_source
class FmriBids(SubjectsSource):
    """BIDS fMRI preprocessed by fMRIPrep: GLM patterns per subject, group-level RSA."""

    name = FMRI_BIDS
    data = "patterns"
    runs = False  # several subjects: group-level RSA, not one subject's runs
    subject_runs = True  # encoding models per subject, their maps tested across subjects
    grid = True
    complete = True
    option_label = (
        "an fmri_bids option (root, derivatives, task, subjects, session, space, mask, "
        "confounds, stimulus_column, estimate, atlas, atlas_labels, rois, roi)"
    )
    schema = {
        "root": (str, True, None),  # the BIDS root (raw events.tsv)
        "derivatives": (str, False, None),  # the fMRIPrep folder; default root/derivatives/...
        "task": (str, True, None),
        "subjects": ((str, list), False, "all"),  # "all" or a list of labels
        "session": (str, False, None),
        "space": (str, False, "MNI152NLin2009cAsym"),
        "mask": (str, False, None),  # default: each subject's first-run brain mask
        "confounds": ((str, list), False, "motion"),  # strategy name or column list
        "stimulus_column": (str, False, "trial_type"),
        "estimate": (str, False, "condition"),
        # a label image (on the BOLD grid, or resampled to it) and its table (index, name):
        # one brain entry per region, named <source>-<region>
        "atlas": (str, False, None),
        "atlas_labels": (str, False, None),
        "rois": (list, False, None),  # the regions to keep (default: all)
        "roi": (str, False, None),  # one region (set by the expansion, or by hand)
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the options, and that the root, fMRIPrep folder, subjects and runs exist."""
        c.option((*path, "estimate"), src["estimate"], ESTIMATES)
        conf = src["confounds"]
        if isinstance(conf, str):
            c.option((*path, "confounds"), conf, list(CONFOUND_STRATEGIES))
        elif not conf or not all(isinstance(x, str) and x for x in conf):
            c.fail(
                (*path, "confounds"),
                f"must be a strategy ({', '.join(CONFOUND_STRATEGIES)}) or a non-empty list of "
                f"confound column names (strings), got {conf!r}.",
            )
        subjects = src["subjects"]
        if isinstance(subjects, str) and subjects != "all":
            c.fail(
                (*path, "subjects"),
                f"must be 'all' or a list of subject labels (['01', '02']), got {subjects!r}.",
            )
        if isinstance(subjects, list) and not (
            subjects and all(isinstance(s, (str, int)) for s in subjects)
        ):
            c.fail(
                (*path, "subjects"),
                f"must be a non-empty list of subject labels (strings), got {subjects!r}.",
            )
        for key in ("atlas_labels", "rois", "roi"):
            if src[key] is not None and src["atlas"] is None:
                c.fail((*path, key), f"needs an atlas: (a label image), got {key}: {src[key]!r}.")
        if src["atlas"] is not None:
            try:
                atlas_regions(src)
            except (FileNotFoundError, ValueError) as err:
                text = str(err).removeprefix(f"{_WHERE}: ")
                key = next(
                    (k for k in ("atlas_labels", "atlas", "rois") if text.startswith(f"{k}:")),
                    "atlas",
                )
                c.fail((*path, key), text.removeprefix(f"{key}: "))
        try:
            found = find_runs(src)
            for runs in found.values():
                mask_of(src, runs)
        except FileNotFoundError as err:
            text = str(err).removeprefix(f"{_WHERE}: ")
            key = next(
                (k for k in ("root", "derivatives", "subjects", "mask") if text.startswith(k)),
                "task",
            )
            c.fail((*path, key), text.removeprefix(f"{key}: "))

    def expand(self, name: str, src: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """With an ``atlas``: one brain entry per region, ``<name>-<region>``.

        Each entry holds its own ``roi`` and no ``rois`` list, so its cache key is the same
        whichever other regions a spec lists.
        """
        if src["atlas"] is None or src["roi"] is not None:
            return {name: src}
        return {
            f"{name}-{_safe(roi)}": {**src, "rois": None, "roi": roi} for roi in atlas_regions(src)
        }

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the sha256 of every file read (BOLD, confounds, events)."""
        return {"src": src, "files": file_digests(files_read(src))}

    def load(self, src: dict[str, Any]) -> BidsPatterns:
        """Estimate each subject's patterns (:func:`load_fmri_bids`)."""
        return load_fmri_bids(src)

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the files, subjects, GLM and confounds."""
        what = (
            f"fMRI of task {src['task']!r} preprocessed by fMRIPrep (space {src['space']}, "
            f"BIDS dataset fmri_bids), patterns from a GLM ({src['estimate']} estimates, "
            f"confounds: {attrs.get('confounds')}) averaged per stimulus"
            + (
                f", in region {src['roi']!r} of the atlas {Path(src['atlas']).name!r}"
                if src["roi"]
                else ""
            )
        )
        return subjects_text(bname, what, attrs)

    def background(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the mask (the maps' grid), the mean of the first run and the space."""
        from nilearn import image

        runs = next(iter(find_runs(src).values()))
        bg = image.mean_img(str(runs[0].bold), copy_header=True)
        mni = str(src["space"]).startswith("MNI")
        note = f"Space {src['space']} (fMRIPrep)." if mni else ""
        return {"like": mask_of(src, runs), "bg": bg, "mni": mni, "note": note}
