"""Human similarity judgments → RDMs: pairwise ratings and triplet odd-one-out choices.

Judgments usually cover only some pairs. Unrated pairs stay NaN, and a per-pair
``n_ratings`` coordinate says how many judgments each entry rests on; comparisons
(:func:`brainalign.rsa.compare`) leave NaN pairs out, never filling them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from brainalign._checks import _fmt_list, check_option
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS, validate
from brainalign.loaders._tables import numbers, read_text, where_of


def _table(data: Any, columns: Sequence[str], what: str) -> tuple[pd.DataFrame, list[str], str]:
    """Read a tab-separated file ('#' lines are comments), a DataFrame or rows.

    Returns the table (named columns, ids as str), where each row is (``"line 5"`` for a
    file, ``"row 2"`` otherwise) and how messages name the table.
    """
    where = where_of(data, what)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"{what}: no such file {str(path)!r}.")
        rows, locs = [], []
        for n, line in enumerate(read_text(path, what).splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = line.split("\t")
            if len(cells) < len(columns):
                raise ValueError(
                    f"{where}, line {n} has {len(cells)} tab-separated column(s) "
                    f"({line.strip()!r}); expected {len(columns)}: {', '.join(columns)}."
                )
            rows.append([c.strip() for c in cells[: len(columns)]])
            locs.append(f"line {n}")
        if not rows:
            raise ValueError(f"{where} holds no row, only comments or blank lines.")
        return pd.DataFrame(rows, columns=list(columns), dtype=object), locs, where
    if isinstance(data, pd.DataFrame):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise ValueError(f"{what} lacks the column(s) {missing}; it has {list(data.columns)}.")
        df = data[list(columns)].copy()
        locs = [f"row {i}" for i in range(len(df))]
    else:
        rows = list(data)
        if not rows or any(len(r) != len(columns) for r in rows):
            raise ValueError(
                f"{what} rows must each hold {len(columns)} values: {', '.join(columns)}."
            )
        df = pd.DataFrame(rows, columns=list(columns), dtype=object)
        locs = [f"row {i}" for i in range(len(df))]
    for col in columns:  # ids must be there (a word like 'NA' is an id, a None is not)
        if col == "score":
            continue
        gone = df[col].isna().to_numpy()
        if gone.any():
            i = int(np.flatnonzero(gone)[0])
            raise ValueError(
                f"{where}, {locs[i]}: column {col!r} is missing ({df[col].iloc[i]!r}); every "
                f"row needs its {', '.join(c for c in columns if c != 'score')} ids."
            )
        df[col] = df[col].astype(str).str.strip()
    return df.reset_index(drop=True), locs, where


def _order(ids_seen: np.ndarray, stimulus: Sequence[Any] | None, what: str) -> np.ndarray:
    seen = pd.unique(ids_seen)
    if stimulus is None:
        return np.asarray(seen, dtype=str)
    order = np.array([str(s) for s in stimulus])
    dup = pd.Series(order).duplicated()
    if dup.any():
        raise ValueError(f"stimulus lists duplicated ids: {_fmt_list(sorted(set(order[dup])))}.")
    unknown = sorted(set(seen) - set(order.tolist()))
    if unknown:
        raise ValueError(
            f"{what} mentions {len(unknown)} id(s) that stimulus does not list: "
            f"{_fmt_list(unknown)}."
        )
    return order


def _rdm(values: np.ndarray, counts: np.ndarray, ids: np.ndarray, attrs: dict) -> xr.DataArray:
    np.fill_diagonal(values, 0.0)
    da = xr.DataArray(
        values,
        dims=RDM_DIMS,
        coords={RDM_DIMS[0]: ids, RDM_DIMS[1]: ids, "n_ratings": (RDM_DIMS, counts)},
        attrs={"kind": "rdm", "modality": "behavior", "brainalign_version": __version__, **attrs},
        name="rdm",
    )
    return validate(da)


def load_pairwise(
    ratings: Any,
    *,
    kind: Literal["similarity", "dissimilarity"] = "similarity",
    scale: tuple[float, float] | None = None,
    stimulus: Sequence[Any] | None = None,
    source: str | None = None,
) -> xr.DataArray:
    """Build an RDM from pairwise ratings (complete or incomplete).

    Parameters
    ----------
    ratings : str or path-like or pandas.DataFrame or sequence of (a, b, score)
        A tab-separated UTF-8 file of ``item_a, item_b, score`` rows (``#`` lines are
        comments, as in SimLex-999 / WordSim-353), a DataFrame with columns ``a``, ``b``,
        ``score``, or rows. A pair may appear several times (one row per rater); ``(a, b)``
        and ``(b, a)`` are the same pair. Items are words as written: ``NA``, ``null``,
        ``nan`` or ``None`` are items, not missing values.
    kind : {"similarity", "dissimilarity"}
        What the scores measure.
    scale : (low, high), optional
        The rating scale (e.g. ``(0, 10)``); default the observed minimum and maximum.
        Dissimilarity = ``(high - score) / (high - low)`` for similarities,
        ``(score - low) / (high - low)`` for dissimilarities: in [0, 1].
    stimulus : sequence of str, optional
        The RDM's stimulus order (may list unrated items); default order of appearance.
    source : str, optional
        Provenance (default the file path).

    Returns
    -------
    rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        Mean dissimilarity per rated pair, NaN where unrated, zero diagonal, and an
        ``n_ratings`` coordinate (ratings per pair; 0 where unrated).

    Raises
    ------
    ValueError
        Unknown ``kind``; scores that are missing, not numbers, not finite or outside
        ``scale``; ids outside ``stimulus``; no rating; a file that is empty, not UTF-8 or
        has short rows. Messages name the file, the line (``row n`` for tables), the column
        and the value.

    Examples
    --------
    >>> from brainalign.loaders.judgments import load_pairwise
    >>> r = load_pairwise([("cat", "dog", 8.0), ("cat", "car", 1.0)], scale=(0, 10))
    >>> r.sel(stimulus_a="cat", stimulus_b="dog").item()
    0.2
    """
    check_option("kind", kind, ("similarity", "dissimilarity"))
    df, locs, where = _table(ratings, ("a", "b", "score"), "ratings")
    if df.empty:
        raise ValueError(f"ratings hold no rows (got an empty table of shape {df.shape}).")
    s = numbers(df["score"], locs, where=where, column="score")
    low, high = (float(s.min()), float(s.max())) if scale is None else map(float, scale)
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ValueError(
            f"scale must hold two finite numbers with low < high, got ({low}, {high})"
            + (
                " (from the scores' minimum and maximum: all ratings are equal; give scale="
                "(low, high))."
                if scale is None
                else "."
            )
        )
    outside = (s < low) | (s > high)
    if outside.any():
        idx = np.flatnonzero(outside)
        raise ValueError(
            f"{where}: {idx.size} score(s) fall outside scale ({low}, {high}): "
            f"{_fmt_list(s[outside].tolist())} ({', '.join(locs[i] for i in idx[:10])})."
        )
    d = (high - s) / (high - low) if kind == "similarity" else (s - low) / (high - low)
    ids = _order(np.concatenate([df["a"].to_numpy(), df["b"].to_numpy()]), stimulus, "ratings")
    index = {v: n for n, v in enumerate(ids.tolist())}
    ia = np.array([index[v] for v in df["a"]])
    ib = np.array([index[v] for v in df["b"]])
    off = ia != ib  # self-pairs carry no between-item information
    ia, ib, d = ia[off], ib[off], d[off]
    n = len(ids)
    sums = np.zeros((n, n))
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(sums, (ia, ib), d)
    np.add.at(sums, (ib, ia), d)
    np.add.at(counts, (ia, ib), 1)
    np.add.at(counts, (ib, ia), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    src = source or (str(ratings) if isinstance(ratings, (str, os.PathLike)) else "ratings")
    return _rdm(
        values,
        counts,
        ids,
        {
            "metric": f"pairwise_{kind}",
            "scale": [low, high],
            "source": src,
            "n_pairs_rated": int((counts[np.triu_indices(n, 1)] > 0).sum()),
        },
    )


def load_triplets(
    triplets: Any,
    *,
    stimulus: Sequence[Any] | None = None,
    source: str | None = None,
) -> xr.DataArray:
    """Build an RDM from triplet odd-one-out choices.

    For a pair (x, y), the similarity is the fraction of triplets holding both in which
    neither was chosen as the odd one out (the pair was kept together); the dissimilarity is
    one minus that. This is the estimator of the THINGS odd-one-out RDMs (Hebart et al. 2020).

    Parameters
    ----------
    triplets : pandas.DataFrame or sequence of (a, b, c, odd) or path
        Each row holds three items and the one chosen as the odd one out (one of the three).
        A DataFrame needs columns ``a``, ``b``, ``c``, ``odd``; a file is tab-separated UTF-8
        (``#`` lines are comments; items are words as written, as in :func:`load_pairwise`).
    stimulus : sequence of str, optional
        The RDM's order (default order of appearance).
    source : str, optional
        Provenance.

    Returns
    -------
    rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        Dissimilarities in [0, 1], NaN for pairs never shown together, and ``n_ratings``:
        the number of triplets holding each pair.

    Raises
    ------
    ValueError
        When an odd-one-out is not one of its triplet's items, a triplet repeats an item, or
        a file is empty, not UTF-8 or has short rows (naming the file and the line).

    Examples
    --------
    >>> from brainalign.loaders.judgments import load_triplets
    >>> r = load_triplets([("cat", "dog", "car", "car"), ("cat", "dog", "car", "dog")])
    >>> r.sel(stimulus_a="cat", stimulus_b="dog").item()
    0.5
    """
    df, locs, where = _table(triplets, ("a", "b", "c", "odd"), "triplets")
    if df.empty:
        raise ValueError(f"triplets hold no rows (got an empty table of shape {df.shape}).")
    items = df[["a", "b", "c"]].to_numpy(dtype=str)
    odd = df["odd"].to_numpy(dtype=str)
    repeated = (
        (items[:, 0] == items[:, 1]) | (items[:, 0] == items[:, 2]) | (items[:, 1] == items[:, 2])
    )
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ValueError(
            f"{where}: {int(repeated.sum())} triplet(s) repeat an item, e.g. "
            f"{locs[row]}: {items[row].tolist()}."
        )
    is_odd = items == odd[:, None]
    bad = is_odd.sum(axis=1) != 1
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: {int(bad.sum())} triplet(s) name an odd one out that is not one of "
            f"their items, e.g. {locs[row]}: items {items[row].tolist()}, odd "
            f"{str(odd[row])!r}."
        )
    ids = _order(items.ravel(), stimulus, "triplets")
    index = {v: n for n, v in enumerate(ids.tolist())}
    code = np.vectorize(index.__getitem__)(items)
    n = len(ids)
    together = np.zeros((n, n))
    shown = np.zeros((n, n), dtype=np.int64)
    for p, q in ((0, 1), (0, 2), (1, 2)):  # the three pairs of every triplet, all rows at once
        a, b = code[:, p], code[:, q]
        kept = (~is_odd[:, p] & ~is_odd[:, q]).astype(float)
        np.add.at(shown, (a, b), 1)
        np.add.at(shown, (b, a), 1)
        np.add.at(together, (a, b), kept)
        np.add.at(together, (b, a), kept)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(shown > 0, 1.0 - together / np.maximum(shown, 1), np.nan)
    return _rdm(
        values,
        shown,
        ids,
        {
            "metric": "triplet_odd_one_out",
            "source": source
            or (str(triplets) if isinstance(triplets, (str, os.PathLike)) else "triplets"),
            "n_triplets": len(df),
        },
    )
