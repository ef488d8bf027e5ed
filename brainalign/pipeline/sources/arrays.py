"""Patterns from your own files (``dataset: arrays``): one file per subject.

``files`` names the files: one, a glob (``data/sub-*_patterns.nc``) or a list of both. Each
file holds one subject's patterns, one row per stimulus, unless a ``.nc`` file holds a
``subject`` dim (several subjects in one file). The formats:

- ``.nc``: a DataArray in the brainalign schema (:func:`brainalign.data.save`):
  ``(stimulus, unit)`` (any one feature dim: ``unit``, ``voxel``, ...), or trials
  ``(trial, unit)`` with a ``stimulus`` coord (averaged per stimulus with
  :func:`brainalign.data.average_trials`), optionally with a ``subject`` dim;
- ``.npy`` / ``.npz``: a 2-D array ``(stimulus, unit)`` whose rows are the spec's
  ``stimuli`` (``npz_key`` picks the array of an ``.npz`` with several);
- ``.csv`` / ``.tsv`` / ``.parquet``: a table whose ``stimulus_column`` holds the ids and
  whose other columns (numbers) are the units; a headerless csv/tsv of numbers has the rows
  of ``stimuli``. Several rows of one stimulus are averaged. Parquet needs pyarrow.

Every subject must hold the same stimuli (a :class:`~brainalign._checks.StimulusAlignmentError`
names each subject's missing and extra ids); they are put in one order (``stimuli``'s, else
the first subject's). The brain RDM is the mean of the subjects' RDMs; with two subjects or
more the source also gives the subjects' RDMs, and RSA adds group-level inference across
subjects with a noise ceiling.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import StimulusAlignmentError, _fmt_list, did_you_mean
from brainalign.pipeline._analysis import Checker, Source, register_source

ARRAY_SUFFIXES = (".nc", ".npy", ".npz", ".csv", ".tsv", ".parquet")
"""File types of ``dataset: arrays``."""
UNLABELED_SUFFIXES = (".npy", ".npz")
"""File types whose rows carry no stimulus ids (the spec's ``stimuli`` names them)."""
SUBJECT_NAMES = ("stem", "bids")
"""Values of ``subject_names``: the file name without its suffix, or its ``sub-XX`` entity."""
LISTED_FILES = 10
"""Most files whose sha256 the report's Data paragraph lists one by one."""
_GLOB_CHARS = re.compile(r"[*?\[]")
_BIDS_SUBJECT = re.compile(r"(?:^|[_./-])(sub-[A-Za-z0-9]+)")


@dataclass
class SubjectPatterns:
    """Each subject's stimulus patterns, over the same stimuli in one order.

    Attributes
    ----------
    subjects : dict
        Subject name → ``(stimulus, feature)`` DataArray (one feature dim, e.g. ``unit`` or
        ``voxel``).
    files : dict
        Every file read → its sha256.
    means : xarray.DataArray or None
        The mean of the subjects' patterns when they share their features (the patterns
        themselves for one subject); None when the subjects' features differ.
    attrs : dict
        Provenance (files, sha256, subjects, counts).
    """

    subjects: dict[str, xr.DataArray]
    files: dict[str, str]
    means: xr.DataArray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------- helpers
def resolve_files(entries: str | list[str], key: str = "files") -> list[Path]:
    """Return the files a ``files`` setting names: files and globs, in order, once each.

    Parameters
    ----------
    entries : str or list of str
        A file, a glob (``*``, ``?``, ``[...]``; ``**`` spans folders) or a list of them;
        relative to the working directory, ``~`` expanded.
    key : str
        The setting's name, for messages.

    Returns
    -------
    files : list of pathlib.Path
        The files, a glob's matches sorted by name.

    Raises
    ------
    FileNotFoundError
        When a file does not exist or a glob matches no file (both named, with the working
        directory).
    """
    out: list[Path] = []
    for entry in [entries] if isinstance(entries, str) else list(entries):
        pattern = os.path.expanduser(entry)
        if _GLOB_CHARS.search(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            found = [p for p in found if p.is_file()]
            if not found:
                raise FileNotFoundError(
                    f"{key}: the glob {entry!r} matches no file (relative paths are from the "
                    f"working directory {os.getcwd()!r})."
                )
        else:
            path = Path(pattern)
            if not path.exists():
                raise FileNotFoundError(
                    f"{key}: file not found: {entry!r} (relative paths are from the working "
                    f"directory {os.getcwd()!r})."
                )
            if path.is_dir():
                raise FileNotFoundError(
                    f"{key}: {entry!r} is a folder; name its files, or a glob such as "
                    f"{os.path.join(entry, '*.nc')!r}."
                )
            found = [path]
        out += [p for p in found if p not in out]
    return out


def file_digests(files: list[Path]) -> dict[str, str]:
    """Return ``{file: sha256}`` for the files, sorted by name."""
    from brainalign.datasets import file_sha256

    return {str(f): file_sha256(f) for f in sorted(files, key=str)}


def combined_digest(digests: dict[str, str]) -> tuple[str, str]:
    """Return one sha256 for several files and a ``file: sha256`` listing.

    The digest of one file is its own; of several, the sha256 of their sorted digests (one a
    line).
    """
    values = sorted(digests.values())
    digest = (
        values[0] if len(values) == 1 else hashlib.sha256("\n".join(values).encode()).hexdigest()
    )
    listing = "; ".join(f"{Path(f).name}: {d}" for f, d in digests.items())
    return digest, listing


def suffix_of(path: Path) -> str:
    """Return a file's type: the suffix of ``ARRAY_SUFFIXES`` its name ends with, or its suffix."""
    name = path.name.lower()
    return next((s for s in ARRAY_SUFFIXES if name.endswith(s)), path.suffix.lower())


def check_patterns(da: xr.DataArray, where: str) -> None:
    """Refuse patterns holding NaN or infinite values, naming stimuli and features.

    Raises
    ------
    ValueError
        Stating the counts, the stimuli and the first feature affected.
    """
    values = np.asarray(da.values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    feature = next(d for d in da.dims if d != "stimulus")
    rows, cols = np.nonzero(bad)
    stims = [str(s) for s in np.asarray(da["stimulus"].values)[np.unique(rows)]]
    first_unit = np.asarray(da[feature].values)[cols[0]]
    raise ValueError(
        f"{where} holds {int(bad.sum())} NaN or infinite value(s) out of {values.size}, in "
        f"{len(stims)} stimul{'us' if len(stims) == 1 else 'i'} ({_fmt_list(stims)}); first: "
        f"stimulus {stims[0]!r}, {feature} {str(first_unit)!r}. An RDM needs finite patterns: "
        f"leave those {feature}s out or fill them before (brainalign never fills missing "
        "data silently)."
    )


def align_subjects(
    subjects: dict[str, xr.DataArray],
    where: dict[str, str],
    order: list[str] | None,
    what: str,
) -> dict[str, xr.DataArray]:
    """Put every subject's patterns in one stimulus order, refusing different stimuli.

    Parameters
    ----------
    subjects : dict
        Subject name → ``(stimulus, feature)`` patterns.
    where : dict
        Subject name → where its patterns come from (a file), for the message.
    order : list of str, optional
        The stimulus order (``stimuli``); default: the first subject's.
    what : str
        The source, for the message (``"dataset arrays"``).

    Returns
    -------
    subjects : dict
        The same patterns, each in the common order.

    Raises
    ------
    StimulusAlignmentError
        Naming, for each subject whose stimuli differ, the missing and the extra ids.
    """
    names = list(subjects)
    if order is None:
        ref = [str(s) for s in subjects[names[0]]["stimulus"].values]
        ref_name = f"the first subject {names[0]!r} ({where[names[0]]}, {len(ref)} stimuli)"
    else:
        ref = list(order)
        ref_name = f"the stimuli setting ({len(ref)} ids)"
    ref_set = set(ref)
    problems = []
    for name in names:
        ids = [str(s) for s in subjects[name]["stimulus"].values]
        missing = [s for s in ref if s not in set(ids)]
        extra = [s for s in ids if s not in ref_set]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)}: {_fmt_list(missing)}")
            if extra:
                parts.append(f"extra {len(extra)}: {_fmt_list(extra)}")
            problems.append(f"subject {name!r} ({where[name]}): {'; '.join(parts)}")
    if problems:
        raise StimulusAlignmentError(
            f"{what}: the subjects do not hold the same stimuli as {ref_name}. "
            + ". ".join(problems)
            + ". Every subject needs a pattern of every stimulus (ids are matched by name, "
            "never by position): drop or add stimuli so that they agree."
        )
    return {name: da.sel(stimulus=ref) for name, da in subjects.items()}


def mean_patterns(subjects: dict[str, xr.DataArray]) -> xr.DataArray | None:
    """Return the subjects' mean patterns when they share their features, else None."""
    first = next(iter(subjects.values()))
    if len(subjects) == 1:
        return first
    feature = next(d for d in first.dims if d != "stimulus")
    for da in subjects.values():
        if da.dims != first.dims or da.sizes[feature] != first.sizes[feature]:
            return None
        if feature in da.indexes and not da.indexes[feature].equals(first.indexes[feature]):
            return None
    stack = np.mean([np.asarray(da.values, dtype=np.float64) for da in subjects.values()], 0)
    out = first.copy(data=stack)
    out.attrs = {**first.attrs, "subject": f"mean of {len(subjects)} subjects"}
    return out


def subject_rdms(data: SubjectPatterns, metric: str) -> dict[str, Any]:
    """Return each subject's RDM, their mean and (with several subjects) their stack.

    Parameters
    ----------
    data : SubjectPatterns
        The subjects' patterns, over the same stimuli in one order.
    metric : str
        The RDM metric of :func:`brainalign.rsa.rdm`.

    Returns
    -------
    brain : dict
        ``rdm`` (the mean of the subjects' RDMs, or the one subject's RDM) and, with two
        subjects or more, ``subjects``: dims ``("subject", "stimulus_a", "stimulus_b")``,
        the subject names as coords.
    """
    from brainalign import rsa

    keep = ("stimulus_a", "stimulus_b")
    rdms = []
    for da in data.subjects.values():
        feature = next(d for d in da.dims if d != "stimulus")
        r = rsa.rdm(da, metric, feature_dim=feature)
        rdms.append(r.drop_vars([c for c in r.coords if c not in keep]))
    if len(rdms) == 1:
        return {"rdm": rdms[0]}
    names = list(data.subjects)
    subjects = xr.concat(rdms, dim="subject", join="exact").assign_coords(subject=names)
    rdm = subjects.mean("subject", keep_attrs=True)
    rdm.attrs["subject"] = f"mean of {len(names)} subjects"
    subjects.attrs = {**rdms[0].attrs, "subject": ", ".join(names)}
    return {"rdm": rdm, "subjects": subjects}


def provenance(data: SubjectPatterns, what: str) -> dict[str, Any]:
    """Return the attrs of a brain entry: files, digests, subjects and counts."""
    digest, listing = combined_digest(data.files)
    first = next(iter(data.subjects.values()))
    feature = next(d for d in first.dims if d != "stimulus")
    sizes = {n: int(da.sizes[feature]) for n, da in data.subjects.items()}
    n_features: int | str = next(iter(sizes.values()))
    if len(set(sizes.values())) > 1:
        n_features = ", ".join(f"{n}: {s}" for n, s in sizes.items())
    return {
        "kind": what,
        "source": "; ".join(data.files),
        "sha256_file": digest,
        "files_sha256": listing,
        "n_files": len(data.files),
        "n_subjects": len(data.subjects),
        "subjects": ", ".join(data.subjects),
        "n_stimuli": int(first.sizes["stimulus"]),
        "feature_dim": str(feature),
        f"n_{feature}s": n_features,
    }


# ------------------------------------------------------------------------------- readers
def _unreadable(path: Path, kind: str, err: BaseException) -> ValueError:
    size = path.stat().st_size if path.exists() else 0
    return ValueError(
        f"dataset arrays: cannot read {str(path)!r} ({size} bytes) as a {kind} file: "
        f"{type(err).__name__}: {err}. Check that the file is complete and of the type its "
        "suffix says."
    )


def _labeled(values: np.ndarray, ids: list[str], path: Path) -> xr.DataArray:
    """Label a 2-D array whose rows are the spec's ``stimuli``."""
    if values.ndim != 2:
        raise ValueError(
            f"dataset arrays: {str(path)!r} holds an array of shape {values.shape}; it must be "
            "2-D (stimulus, unit): one row per stimulus of the stimuli setting."
        )
    if values.shape[0] != len(ids):
        raise ValueError(
            f"dataset arrays: {str(path)!r} has {values.shape[0]} rows but stimuli lists "
            f"{len(ids)} ids ({_fmt_list(ids)}); give one id per row, in the rows' order."
        )
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(
        values.dtype, np.complexfloating
    ):
        raise ValueError(
            f"dataset arrays: {str(path)!r} holds {values.dtype} values; patterns must be real "
            "numbers."
        )
    return xr.DataArray(
        np.asarray(values, dtype=np.float64),
        dims=("stimulus", "unit"),
        coords={"stimulus": list(ids), "unit": np.arange(values.shape[1])},
    )


def _read_npy(path: Path, src: dict[str, Any]) -> xr.DataArray:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise _unreadable(path, ".npy", err) from err
    return _labeled(np.asarray(values), src["stimuli"], path)


def _read_npz(path: Path, src: dict[str, Any]) -> xr.DataArray:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            key = src["npz_key"]
            if key is None and len(keys) != 1:
                raise ValueError(
                    f"dataset arrays: {str(path)!r} holds {len(keys)} arrays "
                    f"({_fmt_list(keys)}); set npz_key to the one holding the patterns."
                )
            if key is not None and key not in keys:
                raise ValueError(
                    f"dataset arrays: npz_key {key!r} is not an array of {str(path)!r}; it "
                    f"holds {_fmt_list(keys)}." + did_you_mean(key, keys)
                )
            values = np.asarray(npz[key if key is not None else keys[0]])
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise _unreadable(path, ".npz", err) from err
    except ValueError as err:
        if str(err).startswith("dataset arrays:"):
            raise
        raise _unreadable(path, ".npz", err) from err
    return _labeled(values, src["stimuli"], path)


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _read_table(path: Path, src: dict[str, Any]) -> xr.DataArray:
    """Read a csv / tsv / parquet table of patterns (ids in ``stimulus_column``)."""
    import pandas as pd

    kind = suffix_of(path)
    column = src["stimulus_column"]
    if kind == ".parquet":
        _require_parquet(path)
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise _unreadable(path, ".parquet", err) from err
        table.columns = [str(c) for c in table.columns]
        line0 = 1  # rows are numbered from 1
    else:
        sep = "\t" if kind == ".tsv" else ","
        try:
            raw = pd.read_csv(
                path, sep=sep, header=None, dtype=str, keep_default_na=False, na_filter=False
            )
        except (OSError, ValueError) as err:  # empty, not UTF-8, ragged rows
            raise _unreadable(path, kind, err) from err
        header = [str(v).strip() for v in raw.iloc[0]]
        if column not in header and all(_is_number(v) for v in header):
            if src["stimuli"] is None:
                raise ValueError(
                    f"dataset arrays: {str(path)!r} has no header row (its first line holds "
                    f"numbers), so its rows carry no stimulus ids; give them with stimuli: "
                    f"[...] (one per row), or add a header with a {column!r} column."
                )
            values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            _refuse_text(raw, values, list(range(raw.shape[1])), path, first_line=1)
            return _labeled(values, src["stimuli"], path)
        table = raw.iloc[1:].reset_index(drop=True)
        table.columns = header
        line0 = 2  # the header is line 1
    if column not in table.columns:
        raise ValueError(
            f"dataset arrays: {str(path)!r} has no column {column!r} (its columns: "
            f"{_fmt_list(list(table.columns))}); stimulus_column names the column holding the "
            "stimulus ids." + did_you_mean(column, [str(c) for c in table.columns])
        )
    if table.shape[0] == 0:
        raise ValueError(f"dataset arrays: {str(path)!r} holds a header but no row of patterns.")
    units = [c for c in table.columns if c != column]
    if not units:
        raise ValueError(
            f"dataset arrays: {str(path)!r} has no column besides {column!r}; the other "
            "columns are the units (one number per stimulus each)."
        )
    values = table[units].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    _refuse_text(table[units], values, units, path, first_line=line0)
    ids = [str(v).strip() for v in table[column]]
    empty = [i for i, v in enumerate(ids) if not v]
    if empty:
        raise ValueError(
            f"dataset arrays: {str(path)!r}: column {column!r} is empty on line(s) "
            f"{_fmt_list([i + line0 for i in empty])}; every row needs its stimulus id."
        )
    da = xr.DataArray(
        values,
        dims=("trial", "unit"),
        coords={"trial": np.arange(len(ids)), "stimulus": ("trial", ids), "unit": units},
    )
    from brainalign.data import average_trials

    return average_trials(da).drop_vars("n_trials")  # several rows of a stimulus: averaged


def _refuse_text(
    table: Any, values: np.ndarray, units: list[Any], path: Path, *, first_line: int
) -> None:
    """Refuse cells that hold text where numbers are expected (empty cells become NaN)."""
    raw = table.to_numpy(dtype=object)
    bad = [
        (r, k)
        for r, k in zip(*np.nonzero(np.isnan(values)), strict=True)
        if not (raw[r, k] is None or isinstance(raw[r, k], float) or not str(raw[r, k]).strip())
    ]
    if bad:
        r, k = bad[0]
        cols = sorted({str(units[k]) for _, k in bad})
        raise ValueError(
            f"dataset arrays: {str(path)!r}: {len(bad)} cell(s) of the unit column(s) "
            f"{_fmt_list(cols)} are not numbers; first: line {int(r) + first_line}, column "
            f"{str(units[k])!r}: {str(raw[r, k])!r}. Every column other than the stimulus "
            "column must hold numbers (one unit each)."
        )


def _require_parquet(path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        try:
            import fastparquet  # noqa: F401
        except ImportError:
            raise ImportError(
                f"dataset arrays: reading {str(path)!r} (parquet) needs pyarrow, which is not "
                "installed: pip install pyarrow (or save the table as .csv/.tsv)."
            ) from None


def _read_nc(path: Path) -> list[tuple[str | None, xr.DataArray]]:
    """Read a ``.nc`` DataArray: ``(stimulus | trial, feature)``, maybe with ``subject``."""
    from brainalign._checks import SchemaError
    from brainalign.data import average_trials, load, validate

    try:
        obj = load(path)
    except (OSError, ValueError) as err:
        raise _unreadable(path, "NetCDF (.nc)", err) from err
    if isinstance(obj, (xr.DataTree, dict)):
        groups = list(obj.children) if isinstance(obj, xr.DataTree) else list(obj)
        raise ValueError(
            f"dataset arrays: {str(path)!r} holds a tree of groups "
            f"({_fmt_list(groups)}); save one DataArray per file with "
            "brainalign.save(patterns, path)."
        )
    if isinstance(obj, xr.Dataset):
        names = [str(v) for v in obj.data_vars]
        if len(names) != 1:
            raise ValueError(
                f"dataset arrays: {str(path)!r} holds {len(names)} variables "
                f"({_fmt_list(names)}); save one DataArray per file with "
                "brainalign.save(patterns, path)."
            )
        obj = obj[names[0]]
    da = obj
    shape = f"dims {tuple(str(d) for d in da.dims)}"
    if "trial" in da.dims:
        try:
            da = average_trials(da)
        except (SchemaError, ValueError) as err:
            raise ValueError(
                f"dataset arrays: {str(path)!r} holds trials ({shape}) that cannot be averaged "
                f"per stimulus: {err}"
            ) from err
    if "stimulus" not in da.dims:
        raise ValueError(
            f"dataset arrays: {str(path)!r} has {shape}; it needs a 'stimulus' dim (one "
            "pattern per stimulus, e.g. (stimulus, unit)) or a 'trial' dim with a 'stimulus' "
            "coord."
        )
    if "stimulus" not in da.coords:
        raise ValueError(
            f"dataset arrays: {str(path)!r} has a 'stimulus' dim without ids; give it a "
            "'stimulus' coordinate of stimulus ids (strings), or save the rows as .npy with "
            "the ids in stimuli:."
        )
    features = [d for d in da.dims if d not in ("stimulus", "subject")]
    if len(features) != 1:
        raise ValueError(
            f"dataset arrays: {str(path)!r} has {shape}; besides 'stimulus' (and 'subject') "
            f"it needs exactly one feature dim (unit, voxel, channel, ...), got "
            f"{len(features)}: {features}. Select or stack the others first."
        )
    da = da.reset_coords(drop=True)
    da = da.assign_coords(stimulus=[str(s) for s in da["stimulus"].values])
    if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.complexfloating):
        raise ValueError(
            f"dataset arrays: {str(path)!r} holds {da.dtype} values; patterns are numbers."
        )
    da = da.astype(np.float64)
    if "subject" not in da.dims:
        try:
            validate(da, name=f"dataset arrays: {str(path)!r}")
        except SchemaError as err:
            raise ValueError(str(err)) from err
        return [(None, da.transpose("stimulus", features[0]))]
    names = (
        [str(s) for s in da["subject"].values]
        if "subject" in da.coords
        else [f"{path.name}[{i}]" for i in range(da.sizes["subject"])]
    )
    out = []
    for i, name in enumerate(names):
        one = da.isel(subject=i, drop=True).transpose("stimulus", features[0])
        try:
            validate(one, name=f"dataset arrays: {str(path)!r}, subject {name!r}")
        except SchemaError as err:
            raise ValueError(str(err)) from err
        out.append((name, one))
    return out


def read_subjects(src: dict[str, Any]) -> SubjectPatterns:
    """Read every file of a ``dataset: arrays`` source: the subjects' stimulus patterns.

    Parameters
    ----------
    src : dict
        A validated ``arrays`` brain source.

    Returns
    -------
    data : SubjectPatterns
        The subjects' ``(stimulus, feature)`` patterns in one stimulus order.

    Raises
    ------
    FileNotFoundError
        When a file is missing or a glob matches nothing.
    ValueError
        When a file cannot be read, has the wrong shape or dims, or holds NaN values;
        :class:`~brainalign._checks.StimulusAlignmentError` when subjects hold other stimuli.
    ImportError
        For a parquet file without pyarrow.
    """
    files = resolve_files(src["files"])
    subjects: dict[str, xr.DataArray] = {}
    where: dict[str, str] = {}
    for path in files:
        kind = suffix_of(path)
        if kind == ".nc":
            read = _read_nc(path)
        elif kind in UNLABELED_SUFFIXES:
            if src["stimuli"] is None:
                raise ValueError(
                    f"dataset arrays: {str(path)!r} is a {kind} file, whose rows carry no "
                    "stimulus ids; give them with stimuli: [...] (one per row, in order)."
                )
            read = [(None, (_read_npy if kind == ".npy" else _read_npz)(path, src))]
        elif kind in (".csv", ".tsv", ".parquet"):
            read = [(None, _read_table(path, src))]
        else:
            raise ValueError(
                f"dataset arrays: {str(path)!r} has the suffix {kind!r}; files: takes "
                f"{', '.join(ARRAY_SUFFIXES)} files."
            )
        for name, da in read:
            name = name if name is not None else subject_name(path, src["subject_names"])
            if name in subjects:
                raise ValueError(
                    f"dataset arrays: two subjects are named {name!r} ({where[name]} and "
                    f"{str(path)!r}); give the files distinct names (subject_names: "
                    f"{src['subject_names']!r})."
                )
            check_patterns(da, f"dataset arrays: {str(path)!r} (subject {name!r})")
            da.attrs = {"subject": name, "source": str(path)}
            subjects[name] = da
            where[name] = repr(str(path))
    order = list(src["stimuli"]) if src["stimuli"] is not None else None
    subjects = align_subjects(subjects, where, order, "dataset arrays")
    data = SubjectPatterns(subjects, file_digests(files), mean_patterns(subjects))
    data.attrs = provenance(data, "patterns")
    return data


def subject_name(path: Path, how: str) -> str:
    """Return a subject's name from its file: the stem, or the BIDS ``sub-XX`` entity.

    Raises
    ------
    ValueError
        For ``"bids"`` when the name holds no ``sub-<label>``.
    """
    if how == "bids":  # the file name's sub-XX, else its folder's (sub-01/patterns.nc)
        found = _BIDS_SUBJECT.search(path.name)
        if found is None:
            matches = list(_BIDS_SUBJECT.finditer(path.as_posix()))
            found = matches[-1] if matches else None
        if found is None:
            raise ValueError(
                f"dataset arrays: subject_names: 'bids' takes the subject from a 'sub-<label>' "
                f"in the file name, which {path.name!r} lacks; rename the file or use "
                "subject_names: 'stem'."
            )
        return found.group(1)
    name = path.name
    kind = suffix_of(path)
    return name[: -len(kind)] if kind and name.lower().endswith(kind) else path.stem


# --------------------------------------------------------------------------------- source
class SubjectsSource(Source):
    """A source whose data are :class:`SubjectPatterns`: the brain RDM is the subjects' mean."""

    def brain(self, src: dict[str, Any], data: SubjectPatterns, metric: str) -> dict[str, Any]:
        """Return the mean of the subjects' RDMs, and their stack with two subjects or more."""
        out = subject_rdms(data, metric)
        out["attrs"] = dict(data.attrs)
        return out


@register_source
class Arrays(SubjectsSource):
    """Stimulus patterns from your own files: ``.nc``, ``.npy``/``.npz``, csv/tsv/parquet."""

    name = "arrays"
    data = "patterns"
    runs = False
    grid = False
    complete = True
    option_label = "an arrays option (files, stimuli, stimulus_column, npz_key, subject_names)"
    schema = {
        "files": ((str, list), False, None),  # required: a file, a glob, or a list of them
        "stimuli": (list, False, None),  # ids of the rows of .npy/.npz/headerless csv
        "stimulus_column": (str, False, "stimulus"),  # csv/tsv/parquet: the ids' column
        "npz_key": (str, False, None),  # the array of an .npz holding several
        "subject_names": (str, False, "stem"),  # stem (file name) or bids (sub-XX)
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check that the files exist and are of known types, and the ids where needed."""
        entries = src["files"]
        if entries is None:
            c.fail(
                (*path, "files"),
                "is required for dataset arrays: a file, a glob (data/sub-*_patterns.nc) or "
                f"a list of them, of the types {', '.join(ARRAY_SUFFIXES)}.",
            )
        if isinstance(entries, list) and not (
            entries and all(isinstance(e, str) and e for e in entries)
        ):
            c.fail(
                (*path, "files"),
                f"must be a file, a glob or a non-empty list of them (strings), got {entries!r}.",
            )
        try:
            files = resolve_files(entries)
        except FileNotFoundError as err:
            c.fail((*path, "files"), str(err).removeprefix("files: "))
        for f in files:
            if suffix_of(f) not in ARRAY_SUFFIXES:
                c.fail(
                    (*path, "files"),
                    f"{str(f)!r} has the suffix {suffix_of(f)!r}; dataset arrays reads "
                    f"{', '.join(ARRAY_SUFFIXES)} files.",
                )
        c.option((*path, "subject_names"), src["subject_names"], SUBJECT_NAMES)
        stimuli = src["stimuli"]
        if stimuli is not None:
            bad = [s for s in stimuli if not isinstance(s, str) or not s]
            if not stimuli or bad:
                c.fail(
                    (*path, "stimuli"),
                    f"must be a non-empty list of stimulus ids (strings; quote numbers), got "
                    f"{_fmt_list(bad or stimuli)}.",
                )
            dup = sorted({s for s in stimuli if stimuli.count(s) > 1})
            if dup:
                c.fail((*path, "stimuli"), f"must list each id once; repeated: {_fmt_list(dup)}.")
        unlabeled = [f for f in files if suffix_of(f) in UNLABELED_SUFFIXES]
        if unlabeled and stimuli is None:
            c.fail(
                (*path, "stimuli"),
                f"is required for {suffix_of(unlabeled[0])} files, whose rows carry no "
                f"stimulus ids: the id of each row, in order; got none for "
                f"{_fmt_list([str(f) for f in unlabeled])}.",
            )
        if src["npz_key"] is not None and not any(suffix_of(f) == ".npz" for f in files):
            c.fail(
                (*path, "npz_key"),
                f"applies to .npz files, and files: names none "
                f"({_fmt_list([str(f) for f in files])}).",
            )
        if src["subject_names"] == "bids":
            for f in files:
                if _BIDS_SUBJECT.search(f.as_posix()) is None:
                    c.fail(
                        (*path, "subject_names"),
                        f"'bids' takes the subject from a 'sub-<label>' in each file's name "
                        f"(or its folder's), which {f.name!r} lacks; rename the file or use "
                        "subject_names: 'stem'.",
                    )

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the sha256 of every file matched (sorted by name)."""
        return {"src": src, "files": file_digests(resolve_files(src["files"]))}

    def load(self, src: dict[str, Any]) -> SubjectPatterns:
        """Read each subject's patterns (:func:`read_subjects`)."""
        return read_subjects(src)

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the files (and their sha256), the subjects and the stimuli."""
        return subjects_text(bname, "patterns from your own files (dataset arrays)", attrs)


def subjects_text(bname: str, what: str, attrs: dict[str, Any]) -> str:
    """Return the Data paragraph of a source of subjects' patterns (arrays, beta_maps).

    It lists each file's sha256 up to ``LISTED_FILES`` files; beyond, their combined sha256
    (the listing stays in the results' ``brain/<name>`` attrs, ``files_sha256``).
    """
    n = int(attrs.get("n_subjects", 1))
    n_files = int(attrs.get("n_files", 1))
    feature = attrs.get("feature_dim", "unit")
    rdm = (
        f"the brain RDM is the mean of the {n} subjects' RDMs, and RSA adds group-level "
        "tests across subjects"
        if n > 1
        else "the brain RDM is that of its patterns"
    )
    if n_files == 1:
        files = f"1 file ({attrs.get('files_sha256')})"
    elif n_files <= LISTED_FILES:
        files = (
            f"{n_files} files ({attrs.get('files_sha256')}; sha256 of their sorted digests: "
            f"{attrs.get('sha256_file')})"
        )
    else:
        files = (
            f"{n_files} files (sha256 of their sorted digests: {attrs.get('sha256_file')}; "
            f"each file's sha256 is in results.nc, brain/{bname}, attribute files_sha256)"
        )
    subjects = "1 subject" if n == 1 else f"{n} subjects"
    return (
        f"{bname}: {what}; {files}. {subjects} ({attrs.get('subjects')}), "
        f"{attrs.get('n_stimuli')} stimuli, {attrs.get(f'n_{feature}s')} {feature}s each; "
        f"{rdm}."
    )
