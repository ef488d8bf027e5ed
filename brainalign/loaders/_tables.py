"""Small text tables (events, judgments) with errors naming file, line, column and value.

The loaders read these files themselves instead of through ``pandas.read_csv`` so that a
problem is reported where it is: which file, which line of it, which column and what it
holds. Words are kept as words (``NA``, ``null``, ``nan`` or ``None`` are stimulus names, not
missing values).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainalign._checks import _fmt


def read_text(path: Path, what: str) -> str:
    """Return the text of a UTF-8 file, refusing an empty or undecodable one.

    Parameters
    ----------
    path : pathlib.Path
        The file (it must exist).
    what : str
        What the file holds, for the messages (``"events"``, ``"ratings"``...).

    Returns
    -------
    text : str
        The decoded text (a UTF-8 byte-order mark is dropped).

    Raises
    ------
    ValueError
        When the file is empty (or holds only white space) or is not UTF-8; the message
        names the file and, for a bad byte, its line and value.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        byte = raw[err.start : err.start + 1].hex()
        raise ValueError(
            f"{what} file {str(path)!r} is not UTF-8 text: line {line} holds the byte 0x{byte}, "
            f"which UTF-8 does not allow ({err.reason}). Save the file as UTF-8 (for example "
            "from a Latin-1 export: iconv -f latin1 -t utf-8)."
        ) from err
    if not text.strip():
        raise ValueError(
            f"{what} file {str(path)!r} is empty ({len(raw)} bytes, no line with a value)."
        )
    return text


def where_of(data: Any, what: str) -> str:
    """Return how messages name a table: ``"events file '/x/run1_events.tsv'"`` or ``"events"``."""
    if isinstance(data, (str, os.PathLike)):
        return f"{what} file {str(Path(data))!r}"
    return what


def _listing(locs: Sequence[str], values: Sequence[Any], limit: int = 5) -> str:
    pairs = zip(locs[:limit], values[:limit], strict=True)
    shown = "; ".join(f"{loc}: {_fmt(v)}" for loc, v in pairs)
    if len(locs) > limit:
        shown += f"; ... ({len(locs) - limit} more)"
    return shown


def numbers(
    values: pd.Series,
    locs: Sequence[str],
    *,
    where: str,
    column: str,
    allow_missing: bool = False,
) -> np.ndarray:
    """Parse a column of numbers, refusing words, missing values and non-finite numbers.

    Parameters
    ----------
    values : pandas.Series
        The column as read (strings, numbers or missing values).
    locs : sequence of str
        Where each row is, e.g. ``"line 4"`` (files) or ``"row 2"`` (tables).
    where : str
        The table, e.g. ``"events file '/data/sub-01_events.tsv'"``.
    column : str
        The column's name.
    allow_missing : bool
        Return NaN for missing values instead of refusing them.

    Returns
    -------
    numbers : ndarray of float64
        One value per row.

    Raises
    ------
    ValueError
        Naming the table, the line (row), the column and the value of the first bad entries.
    """
    gone = pd.isna(values).to_numpy()  # None or a NaN from a DataFrame; a word stays a word
    text = values.where(~gone, "").astype(str).str.strip().to_numpy(dtype=str)
    missing = gone | (text == "")
    out = pd.to_numeric(pd.Series(np.where(missing, "nan", text)), errors="coerce").to_numpy(
        dtype=np.float64
    )
    locs = list(locs)
    if missing.any() and not allow_missing:
        idx = np.flatnonzero(missing)
        raise ValueError(
            f"{where}: column {column!r} is missing a value on {idx.size} row(s): "
            f"{', '.join(locs[i] for i in idx[:10])}{' ...' if idx.size > 10 else ''}. Every "
            "row needs a number there."
        )
    words = ~missing & np.isnan(out) & (np.char.lower(text) != "nan")
    if words.any():
        idx = np.flatnonzero(words)
        raise ValueError(
            f"{where}: column {column!r} holds {idx.size} value(s) that are not numbers: "
            f"{_listing([locs[i] for i in idx], [text[i] for i in idx])}."
        )
    bad = ~missing & ~np.isfinite(out)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"{where}: column {column!r} holds {idx.size} value(s) that are not finite "
            f"numbers: {_listing([locs[i] for i in idx], [text[i] for i in idx])}. Write a "
            "finite number (or remove the row)."
        )
    return out
