"""Aligning arrays by stimulus id, and averaging trials."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from brainalign._checks import StimulusAlignmentError, _fmt_list, check_option
from brainalign.data._schema import RDM_DIMS, STIMULUS, TRIAL, validate


def _ids_of(da: xr.DataArray) -> np.ndarray:
    if RDM_DIMS[0] in da.dims:
        return np.asarray(da[RDM_DIMS[0]].values)
    if STIMULUS in da.dims:
        return np.asarray(da[STIMULUS].values)
    return pd.unique(np.asarray(da[STIMULUS].values))


def _select(da: xr.DataArray, ids: np.ndarray) -> xr.DataArray:
    if RDM_DIMS[0] in da.dims:
        return da.sel({RDM_DIMS[0]: ids, RDM_DIMS[1]: ids})
    if STIMULUS in da.dims:
        return da.sel({STIMULUS: ids})
    keep = np.isin(np.asarray(da[STIMULUS].values), ids)
    return da.isel({TRIAL: np.flatnonzero(keep)})


def align_stimuli(
    *arrays: xr.DataArray, join: Literal["exact", "inner"] = "exact"
) -> tuple[xr.DataArray, ...]:
    """Align arrays on their stimulus ids, never by position.

    The result lists stimuli in the order of the first array. Responses are aligned on
    ``stimulus``, RDMs on both ``stimulus_a`` and ``stimulus_b``, and trial arrays keep the
    trials whose stimulus is kept.

    Parameters
    ----------
    *arrays : xarray.DataArray
        Schema arrays (responses, trials or RDMs).
    join : {"exact", "inner"}
        ``"exact"`` requires the same set of ids everywhere and raises otherwise;
        ``"inner"`` keeps the ids common to all arrays.

    Returns
    -------
    aligned : tuple of xarray.DataArray
        Copies of the inputs, reordered (and for ``"inner"`` subset) to common ids.

    Raises
    ------
    StimulusAlignmentError
        With ``join="exact"``, naming the ids each array misses or has in excess of the
        first; with ``join="inner"``, when no id is common.

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> a = ba.responses(np.eye(2), ["x", "y"])
    >>> b = ba.responses(np.eye(2), ["y", "x"])
    >>> [d.stimulus.values.tolist() for d in ba.align_stimuli(a, b)]
    [['x', 'y'], ['x', 'y']]
    """
    check_option("join", join, ("exact", "inner"))
    if not arrays:
        return ()
    for i, da in enumerate(arrays):
        validate(da, name=f"arrays[{i}]")
    ref = _ids_of(arrays[0])
    if join == "exact":
        ref_set = set(ref.tolist())
        for i, da in enumerate(arrays[1:], start=1):
            ids = _ids_of(da)
            id_set = set(ids.tolist())
            missing = [s for s in ref.tolist() if s not in id_set]
            extra = [s for s in ids.tolist() if s not in ref_set]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(
                        f"missing {len(missing)} id(s) of arrays[0]: {_fmt_list(missing)}"
                    )
                if extra:
                    parts.append(f"{len(extra)} extra id(s): {_fmt_list(extra)}")
                raise StimulusAlignmentError(
                    f"Cannot align stimuli exactly: arrays[{i}] has {'; '.join(parts)}. "
                    "Select the shared stimuli first or use join='inner'."
                )
        keep = ref
    else:
        common = set(ref.tolist())
        for da in arrays[1:]:
            common &= set(_ids_of(da).tolist())
        keep = np.array([s for s in ref.tolist() if s in common])
        if keep.size == 0:
            raise StimulusAlignmentError(
                "Cannot align stimuli: the arrays share no stimulus id (join='inner'). "
                f"arrays[0] ids begin {_fmt_list(ref.tolist(), limit=5)}."
            )
    return tuple(_select(da, keep).copy() for da in arrays)


def average_trials(da: xr.DataArray, *, skipna: bool = False) -> xr.DataArray:
    """Average the trials of each stimulus: dim ``trial`` becomes ``stimulus``.

    Stimuli appear in the order of their first trial. Coordinates along ``trial`` that are
    constant within each stimulus (such as a category) are kept; per-trial ones (``run``,
    ``onset``) are dropped. A ``n_trials`` coordinate counts the trials averaged.

    Parameters
    ----------
    da : xarray.DataArray, dims ("trial", ...)
        Trial responses with a ``stimulus`` coordinate along ``trial``.
    skipna : bool
        Ignore NaN values in the mean (default: a NaN makes the mean NaN).

    Returns
    -------
    averaged : xarray.DataArray, dims ("stimulus", ...)
        One row per stimulus.

    Raises
    ------
    SchemaError
        When ``da`` has no ``trial`` dim with stimulus ids.
    """
    validate(da, name="da")
    if TRIAL not in da.dims:
        from brainalign._checks import SchemaError

        raise SchemaError(f"average_trials needs a 'trial' dim; da has dims {tuple(da.dims)}.")
    codes, uniques = pd.factorize(np.asarray(da[STIMULUS].values))
    n = len(uniques)
    axis = da.get_axis_num(TRIAL)
    values = np.moveaxis(np.asarray(da.values, dtype=np.float64), axis, 0)
    flat = values.reshape(values.shape[0], -1)
    onehot = np.zeros((n, flat.shape[0]))
    onehot[codes, np.arange(flat.shape[0])] = 1.0
    if skipna:
        finite = np.isfinite(flat)
        sums = onehot @ np.where(finite, flat, 0.0)
        counts_v = onehot @ finite.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts_v
    else:
        means = (onehot @ flat) / onehot.sum(axis=1, keepdims=True)
    means = np.moveaxis(means.reshape((n, *values.shape[1:])), 0, axis)
    if np.issubdtype(da.dtype, np.floating):
        means = means.astype(da.dtype, copy=False)
    dims = tuple(STIMULUS if d == TRIAL else d for d in da.dims)
    coords: dict[str, Any] = {STIMULUS: np.asarray(uniques, dtype=str)}
    coords["n_trials"] = (STIMULUS, np.bincount(codes, minlength=n))
    for name, coord in da.coords.items():
        if name in (STIMULUS, TRIAL):
            continue
        if TRIAL not in coord.dims:
            coords[name] = coord
            continue
        if coord.dims != (TRIAL,):
            continue
        vals = np.asarray(coord.values)
        first = vals[np.unique(codes, return_index=True)[1]]
        if np.array_equal(vals, first[codes]):
            coords[name] = (STIMULUS, first)
    return xr.DataArray(means, dims=dims, coords=coords, attrs=dict(da.attrs), name=da.name)
