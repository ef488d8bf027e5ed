"""Beta or t maps (``dataset: beta_maps``): one NIfTI image per stimulus, listed in a table.

``table`` is a csv/tsv with the columns ``file`` (the image; relative paths are relative to
the table's folder) and ``stimulus`` (its id), optionally ``subject`` (several subjects:
group-level RSA, as for ``dataset: arrays``) and ``run`` / ``session`` (for your records).
Several rows of one stimulus (runs, sessions) are averaged. ``mask`` (a NIfTI image on the
maps' grid) selects the voxels, with nilearn. The patterns lie on a voxel grid, so
searchlights and brain maps work; ``mni: true`` says the grid is in MNI space (maps also go
on a glass brain and the cortical surface).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
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

TABLE_COLUMNS = ("file", "stimulus", "subject", "run", "session")
"""Columns of a beta_maps table: ``file`` and ``stimulus`` required, the others optional."""
TABLE_SUFFIXES = (".csv", ".tsv")
"""File types of a beta_maps table."""
_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".img", ".hdr", ".mgz", ".mgh")


@dataclass
class MapRow:
    """One row of a beta_maps table: the image, its stimulus and subject, and its line."""

    file: Path
    written: str
    stimulus: str
    subject: str
    line: int


def read_table(path: str | os.PathLike[str]) -> list[MapRow]:
    """Read a beta_maps table: one row per image, with its stimulus (and subject).

    Parameters
    ----------
    path : path-like
        A csv or tsv file with the columns ``file`` and ``stimulus``, optionally
        ``subject``, ``run`` and ``session``.

    Returns
    -------
    rows : list of MapRow
        In the table's order; ``file`` resolved (relative to the table's folder, ``~``
        expanded); ``subject`` the table's name (without suffix) when it has no ``subject``
        column.

    Raises
    ------
    FileNotFoundError
        When the table or an image it lists is missing (named, with their lines).
    ValueError
        When the table cannot be read, lacks a column, has an unknown column or empty cells.
    """
    import pandas as pd

    table = Path(path).expanduser()
    if not table.is_file():
        raise FileNotFoundError(
            f"table: file not found: {str(path)!r} (relative paths are from the working "
            f"directory {os.getcwd()!r})."
        )
    kind = "".join(table.suffixes[-1:]).lower()
    if kind not in TABLE_SUFFIXES:
        raise ValueError(
            f"table: {table.name!r} is not a csv or tsv file; give a table with the suffix "
            f"{' or '.join(TABLE_SUFFIXES)}."
        )
    try:
        df = pd.read_csv(
            table,
            sep="\t" if kind == ".tsv" else ",",
            dtype=str,
            keep_default_na=False,
            na_filter=False,
        )
    except (OSError, ValueError) as err:  # empty, not UTF-8, ragged rows
        raise ValueError(
            f"table: cannot read {str(table)!r} as a {kind} table: {type(err).__name__}: {err}."
        ) from err
    columns = [str(c).strip() for c in df.columns]
    df.columns = columns
    unknown = [c for c in columns if c not in TABLE_COLUMNS]
    for col in ("file", "stimulus"):
        if col not in columns:
            close = difflib.get_close_matches(col, unknown, n=1, cutoff=0.6)
            raise ValueError(
                f"table: {str(table)!r} has no column {col!r} (its columns: "
                f"{_fmt_list(columns)}); it needs 'file' (the image of each row) and "
                "'stimulus' (its stimulus id), and optionally 'subject', 'run' and 'session'."
                + (f" Rename the column {close[0]!r} to {col!r}?" if close else "")
            )
    if unknown:
        raise ValueError(
            f"table: {str(table)!r} has the unknown column(s) {_fmt_list(unknown)}; its "
            f"columns may be {', '.join(TABLE_COLUMNS)}." + did_you_mean(unknown[0], TABLE_COLUMNS)
        )
    if df.shape[0] == 0:
        raise ValueError(f"table: {str(table)!r} has a header but no row.")
    has_subject = "subject" in columns
    rows, missing = [], []
    for n, rec in enumerate(df.to_dict("records")):
        line = n + 2  # the header is line 1
        values = {k: str(v).strip() for k, v in rec.items()}
        empty = [c for c in ("file", "stimulus", "subject") if c in values and not values[c]]
        if empty:
            raise ValueError(
                f"table: {str(table)!r}, line {line}: the column(s) {_fmt_list(empty)} are "
                "empty; every row needs its file, stimulus (and subject)."
            )
        file = Path(values["file"]).expanduser()
        if not file.is_absolute():
            file = table.parent / file
        if not file.is_file():
            missing.append(f"{values['file']!r} (line {line})")
        subject = values["subject"] if has_subject else table.name[: -len(kind)]
        rows.append(MapRow(file, values["file"], values["stimulus"], subject, line))
    if missing:
        raise FileNotFoundError(
            f"table: {len(missing)} image(s) listed in {str(table)!r} are missing: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (relative paths "
            f"are from the table's folder {str(table.parent)!r})."
        )
    return rows


def _masked(row: MapRow, mask_img: Any, n_voxels: int) -> np.ndarray:
    """Return one map's values in the mask (nilearn), naming the file in every error."""
    import zlib

    from nilearn import masking

    from brainalign.loaders.fmri import load_img

    where = f"dataset beta_maps: image {str(row.file)!r} (table line {row.line})"
    img = load_img(row.file, f"{where}: file")
    if len(img.shape) == 4 and img.shape[3] == 1:
        from nilearn import image

        img = image.index_img(img, 0)
    if len(img.shape) != 3:
        raise ValueError(
            f"{where} has shape {img.shape}; each row of the table needs one 3-D map "
            "(split a 4-D image into one file per volume)."
        )
    try:
        values = masking.apply_mask(img, mask_img, dtype=None, ensure_finite=False)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(
            f"{where} cannot be read: {type(err).__name__}: {err}. The file may be truncated "
            "or corrupt; write or copy it again."
        ) from err
    except ValueError as err:
        raise ValueError(
            f"{where} is not on the mask's voxel grid: {err}. Resample it onto the mask "
            "first (nilearn.image.resample_to_img), or give a mask on its grid."
        ) from err
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{where} holds {int(bad.sum())} NaN or infinite value(s) among the {n_voxels} "
            "voxels of the mask (beta maps often hold NaN outside the brain). An RDM needs "
            "finite patterns: use a mask that leaves those voxels out."
        )
    return values


def read_maps(src: dict[str, Any]) -> SubjectPatterns:
    """Read the maps of a ``dataset: beta_maps`` source: each subject's stimulus patterns.

    Parameters
    ----------
    src : dict
        A validated ``beta_maps`` brain source.

    Returns
    -------
    data : SubjectPatterns
        The subjects' ``(stimulus, voxel)`` patterns (voxel coords ``x``/``y``/``z`` in mm
        and ``i``/``j``/``k``), the maps of a stimulus averaged, in one stimulus order (the
        first subject's); ``means`` is their mean over subjects.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`read_table`; also when an image or the mask cannot be read, an image is
        not on the mask's grid, or holds NaN values in the mask;
        :class:`~brainalign._checks.StimulusAlignmentError` when subjects hold other stimuli.
    """
    from nilearn import masking

    from brainalign.data import average_trials
    from brainalign.loaders.fmri import load_img, voxel_coords

    rows = read_table(src["table"])
    mask_path = Path(src["mask"]).expanduser()
    mask_img = load_img(mask_path, "dataset beta_maps: mask")
    try:
        mask, affine = masking.load_mask_img(mask_img)
    except (EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"dataset beta_maps: mask {str(mask_path)!r} is not a usable mask: "
            f"{type(err).__name__}: {err}"
        ) from err
    ijk = np.argwhere(mask)  # nilearn's order of the masked voxels (C order)
    coords = voxel_coords(ijk, affine)
    by_subject: dict[str, list[MapRow]] = {}
    for row in rows:
        by_subject.setdefault(row.subject, []).append(row)
    subjects: dict[str, xr.DataArray] = {}
    where: dict[str, str] = {}
    for name, srows in by_subject.items():
        values = np.stack([_masked(r, mask_img, len(ijk)) for r in srows])
        trials = xr.DataArray(
            values,
            dims=("trial", "voxel"),
            coords={
                "trial": np.arange(len(srows)),
                "stimulus": ("trial", [r.stimulus for r in srows]),
                **coords,
            },
        )
        means = average_trials(trials)
        means.attrs = {"subject": name, "space": "MNI" if src["mni"] else "native"}
        subjects[name] = means
        where[name] = f"{len(srows)} maps in {src['table']!r}, first on line {srows[0].line}"
    subjects = align_subjects(subjects, where, None, "dataset beta_maps")
    files = sorted({r.file for r in rows}, key=str)
    read = [Path(src["table"]).expanduser(), *image_files(Path(mask_path))]
    read += [f for m in files for f in image_files(Path(m))]
    data = SubjectPatterns(subjects, file_digests(read))
    data.means = mean_patterns(subjects)
    data.attrs = provenance(data, "patterns")
    n_maps = {s: [int(n) for n in da["n_trials"].values] for s, da in subjects.items()}
    data.attrs.update(
        table=str(src["table"]),
        mask=str(src["mask"]),
        space="MNI" if src["mni"] else "native",
        n_maps=len(rows),
        maps_per_stimulus=", ".join(
            f"{s}: {min(v)}" + (f"-{max(v)}" if max(v) != min(v) else "")
            for s, v in n_maps.items()
        ),
    )
    return data


def image_files(path: Path) -> list[Path]:
    """Return the files an image is read from: an Analyze/NIfTI pair is two files."""
    for head, body in ((".hdr", ".img"), (".img", ".hdr")):
        if path.name.lower().endswith(head):
            other = path.with_name(path.name[: -len(head)] + body)
            return [path, other] if other.exists() else [path]
    return [path]


@register_source
class BetaMaps(SubjectsSource):
    """Beta or t maps of your own: one NIfTI image per stimulus (and run, subject)."""

    name = "beta_maps"
    data = "patterns"
    runs = False
    grid = True
    complete = True
    option_label = "a beta_maps option (table, mask, mni)"
    schema = {
        "table": (str, False, None),  # required: csv/tsv with file, stimulus [, subject]
        "mask": (str, False, None),  # required: a NIfTI mask on the maps' grid
        "mni": (bool, False, False),  # the grid is in MNI space: glass brain + surface maps
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the table (its columns and images) and that the mask exists."""
        if src["table"] is None:
            c.fail(
                (*path, "table"),
                "is required for dataset beta_maps: a csv/tsv table with the columns file "
                "(a NIfTI map) and stimulus (its id), optionally subject.",
            )
        try:
            read_table(src["table"])
        except (FileNotFoundError, ValueError) as err:
            c.fail((*path, "table"), str(err).removeprefix("table: "))
        if src["mask"] is None:
            c.fail(
                (*path, "mask"),
                "is required for dataset beta_maps: a NIfTI mask on the maps' grid (the "
                "voxels to keep).",
            )
        mask = Path(src["mask"]).expanduser()
        if not mask.is_file():
            c.fail(
                (*path, "mask"),
                f"file not found: {src['mask']!r} (relative paths are from the working "
                f"directory {os.getcwd()!r}); give a NIfTI mask on the maps' grid.",
            )
        if not mask.name.lower().endswith(_IMAGE_SUFFIXES):
            c.fail(
                (*path, "mask"),
                f"{mask.name!r} is not an image file; expected one of the suffixes "
                f"{', '.join(_IMAGE_SUFFIXES)}.",
            )
        if src["mni"]:
            from brainalign.loaders.fmri import load_img

            try:
                shape = tuple(int(n) for n in load_img(mask, "mask").shape[:3])
            except (OSError, ValueError) as err:
                c.fail((*path, "mask"), str(err))
            if len(shape) < 3 or min(shape) < 2:
                c.fail(
                    (*path, "mni"),
                    f"true needs a 3-D volume (maps go on a glass brain and the cortical "
                    f"surface), but the mask's grid has the shape {shape}, a single slice; set "
                    "mni: false (the maps are then shown as slices).",
                )

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the sha256 of the table, the mask and every map."""
        from brainalign.datasets import file_sha256

        rows = read_table(src["table"])
        maps = {r.written: r.file for r in rows}
        mask = Path(src["mask"]).expanduser()
        return {
            "src": src,
            "table": file_sha256(Path(src["table"]).expanduser()),
            "mask": [file_sha256(f) for f in image_files(mask)],
            "files": {k: [file_sha256(f) for f in image_files(maps[k])] for k in sorted(maps)},
        }

    def load(self, src: dict[str, Any]) -> SubjectPatterns:
        """Mask and average the maps of each subject (:func:`read_maps`)."""
        return read_maps(src)

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the table, the mask, the maps and their sha256, the subjects."""
        what = (
            f"beta/t maps of your own (dataset beta_maps): {attrs.get('n_maps')} NIfTI maps "
            f"listed in {attrs.get('table')}, masked with {attrs.get('mask')} "
            f"({attrs.get('space')} space), maps per stimulus averaged "
            f"({attrs.get('maps_per_stimulus')})"
        )
        return subjects_text(bname, what, attrs)

    def background(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the mask (the maps' grid), the mean map as background, and the space."""
        from nilearn import image

        files = sorted({str(r.file) for r in read_table(src["table"])})
        bg = image.mean_img(files, copy_header=True)
        return {"like": Path(src["mask"]).expanduser(), "bg": bg, "mni": src["mni"], "note": ""}
