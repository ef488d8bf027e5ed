"""Readers for local copies of public BIDS datasets (nothing is downloaded)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import xarray as xr

from brainalign._checks import _fmt_list


def find_bids_runs(
    root: str | os.PathLike[str], subject: str, task: str, *, session: str | None = None
) -> list[tuple[Path, Path]]:
    """Find the (BOLD, events) file pairs of one subject and task in a BIDS folder.

    Parameters
    ----------
    root : str or path-like
        The BIDS dataset folder.
    subject : str
        The label after ``sub-`` (e.g. ``"01"``).
    task : str
        The label after ``task-``.
    session : str, optional
        The label after ``ses-``; default all sessions.

    Returns
    -------
    runs : list of (pathlib.Path, pathlib.Path)
        Sorted by session and run.

    Raises
    ------
    FileNotFoundError
        Naming what was searched for, the subjects and tasks that exist, and missing events.
    """
    root = Path(root)
    sub = root / f"sub-{subject}"
    if not sub.is_dir():
        subjects = sorted(p.name for p in root.glob("sub-*"))
        raise FileNotFoundError(
            f"No folder sub-{subject} in {str(root)!r}; subjects here: {_fmt_list(subjects)}."
        )
    ses = f"ses-{session}" if session is not None else "ses-*"
    pattern = f"**/sub-{subject}_*task-{task}_*bold.nii*"
    bolds = sorted(p for p in sub.glob(pattern) if session is None or f"_{ses}_" in p.name)
    if not bolds:
        tasks = sorted(
            {
                m.group(1)
                for p in sub.rglob("*_bold.nii*")
                if (m := re.search(r"task-([^_]+)", p.name))
            }
        )
        raise FileNotFoundError(
            f"No BOLD file for sub-{subject}, task-{task} ({ses}) under "
            f"{str(sub)!r}; tasks here: {_fmt_list(tasks)}."
        )
    pairs = []
    for bold in bolds:
        stem = re.sub(r"_bold\.nii(\.gz)?$", "", bold.name)
        stem = re.sub(r"_(space|desc)-[^_]+", "", stem)  # derivatives → raw events name
        events = bold.with_name(f"{stem}_events.tsv")
        if not events.exists():
            hits = list(root.glob(f"**/{stem}_events.tsv"))
            if not hits:
                raise FileNotFoundError(
                    f"Missing events for {bold.name}: expected {events.name} beside it."
                )
            events = hits[0]
        pairs.append((bold, events))
    return pairs


def load_bids_fmri(
    root: str | os.PathLike[str],
    subject: str,
    task: str,
    *,
    mask: Any,
    session: str | None = None,
    **glm: Any,
) -> xr.DataArray:
    """Estimate response patterns for one subject of a local BIDS fMRI dataset.

    Parameters
    ----------
    root : str or path-like
        The BIDS folder (e.g. a local copy of OpenNeuro ds000105).
    subject, task : str
        Labels after ``sub-`` and ``task-``.
    mask : image or path
        A mask on the BOLD grid.
    session : str, optional
        The label after ``ses-``.
    **glm
        Passed to :func:`brainalign.loaders.fmri.load_bold` (``estimate``, ``output``,
        ``hrf_model``, ``confounds`` ...).

    Returns
    -------
    patterns : xarray.DataArray, dims ("trial", "voxel")
        As :func:`brainalign.loaders.fmri.load_bold`, with run labels from the file names.
    """
    from brainalign.loaders.fmri import load_bold

    pairs = find_bids_runs(root, subject, task, session=session)
    labels = []
    for n, (bold, _) in enumerate(pairs, start=1):
        m = re.search(r"run-(\d+)", bold.name)
        labels.append(int(m.group(1)) if m else n)
    return load_bold(
        [b for b, _ in pairs],
        [e for _, e in pairs],
        mask=mask,
        run_labels=labels,
        subject=subject,
        **glm,
    )
