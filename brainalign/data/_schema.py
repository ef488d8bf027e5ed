"""The labeled-tensor schema: constructors and validators.

See ``DESIGN.md``: every array has a ``stimulus`` dim (index = stimulus ids as strings), a
``trial`` dim with a ``stimulus`` coordinate, or the RDM pair ``stimulus_a``/``stimulus_b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError, _fmt_list, check_option, did_you_mean
from brainalign._version import __version__

STIMULUS = "stimulus"
TRIAL = "trial"
RDM_DIMS = ("stimulus_a", "stimulus_b")
SAMPLE_DIMS = (STIMULUS, TRIAL)
FEATURE_DIMS = ("unit", "voxel", "channel", "vertex", "roi", "feature")
MODALITIES = ("fmri", "meg", "eeg", "ieeg", "model", "behavior", "simulation")


def as_ids(stimulus: Any, n: int, *, name: str = "stimulus") -> np.ndarray:
    """Return stimulus ids as a 1-D array of str, defaulting to ``"0"..."n-1"``.

    Parameters
    ----------
    stimulus : sequence or None
        The ids (anything with a ``str``), or ``None``.
    n : int
        The number of rows the ids label.
    name : str
        The parameter name used in messages.

    Returns
    -------
    ids : ndarray of str, shape (n,)
        The ids.

    Raises
    ------
    ValueError
        When the number of ids differs from ``n`` or an id is empty.
    SchemaError
        When an id holds a NUL character or a lone surrogate (they cannot be saved).
    """
    if stimulus is None:
        return np.array([str(i) for i in range(n)])
    if isinstance(stimulus, (list, tuple)):  # numpy's str arrays would drop trailing NULs
        _check_storable(np.array([str(v) for v in stimulus], dtype=object), name)
    ids = np.asarray(stimulus)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of ids, got shape {ids.shape}.")
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} ids but the data has {n} rows; they must match.")
    ids = np.array([str(v) for v in ids.tolist()])
    empty = [i for i, v in enumerate(ids) if v == ""]
    if empty:
        raise ValueError(f"{name} holds empty ids at positions {_fmt_list(empty)}.")
    return ids


def duplicates(ids: Sequence[str]) -> list[str]:
    """Return the ids that occur more than once (sorted)."""
    uniq, counts = np.unique(np.asarray(ids), return_counts=True)
    return uniq[counts > 1].tolist()


def responses(
    values: Any,
    stimulus: Any = None,
    *,
    feature_dim: str = "unit",
    sample_dim: str = "stimulus",
    dims: Sequence[str] | None = None,
    name: str | None = None,
    **coords_and_attrs: Any,
) -> xr.DataArray:
    """Build a schema DataArray of responses from any array.

    Parameters
    ----------
    values : array_like, shape (n_samples, n_features) or N-D
        The responses, one row per stimulus (or trial).
    stimulus : sequence of str, optional
        The stimulus id of each row. Default ``"0"..."n-1"``. With
        ``sample_dim="trial"`` ids may repeat (several presentations).
    feature_dim : str
        The name of the feature dim for 2-D values: ``"unit"`` (model), ``"voxel"``
        (fMRI), ``"channel"`` (M/EEG), ``"vertex"`` (surface) or ``"feature"``.
    sample_dim : {"stimulus", "trial"}
        Whether rows are stimuli (unique ids) or trials (ids in a ``stimulus`` coord).
    dims : sequence of str, optional
        All dim names, for values with more than 2 dims (e.g.
        ``("trial", "channel", "time")``). The first must be ``sample_dim``.
    name : str, optional
        The array's name.
    **coords_and_attrs
        A keyword whose value is a sequence of the length of one dim becomes a coordinate on
        that dim (``category=[...]``); give ``(dim, values)`` when lengths are ambiguous.
        Scalars and strings become attrs (``modality="fmri"``, ``subject="01"``).

    Returns
    -------
    da : xarray.DataArray
        A validated schema array.

    Raises
    ------
    SchemaError
        When the result breaks the schema (duplicate stimulus ids, unknown dims ...).

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> da = ba.responses(np.eye(3), ["cat", "dog", "car"], modality="model")
    >>> da.dims, da.stimulus.values.tolist()
    (('stimulus', 'unit'), ['cat', 'dog', 'car'])
    """
    check_option("sample_dim", sample_dim, SAMPLE_DIMS)
    arr = values.values if isinstance(values, xr.DataArray) else values
    if hasattr(arr, "detach"):  # torch tensor
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr)
    if arr.ndim < 1:
        raise SchemaError(f"values must have at least one dim, got a scalar of shape {arr.shape}.")
    if dims is None:
        if arr.ndim == 1:
            dims = (sample_dim,)
        elif arr.ndim == 2:
            dims = (sample_dim, feature_dim)
        else:
            raise SchemaError(
                f"values has {arr.ndim} dims (shape {arr.shape}); pass dims=(...) with one "
                f"name per axis, the first being {sample_dim!r}."
            )
    dims = tuple(dims)
    if len(dims) != arr.ndim:
        raise SchemaError(f"dims {dims} has {len(dims)} names but values has {arr.ndim} axes.")
    if dims[0] != sample_dim:
        raise SchemaError(f"The first dim must be {sample_dim!r} (sample_dim), got dims {dims}.")
    ids = as_ids(stimulus, arr.shape[0])
    if sample_dim == STIMULUS:
        dup = duplicates(ids)
        if dup:
            raise SchemaError(
                f"stimulus ids must be unique along the 'stimulus' dim; duplicated: "
                f"{_fmt_list(dup)}. For repeated presentations use sample_dim='trial' "
                "and average_trials()."
            )
        coords: dict[str, Any] = {STIMULUS: ids}
    else:
        coords = {STIMULUS: (TRIAL, ids), TRIAL: np.arange(arr.shape[0])}
    attrs: dict[str, Any] = {}
    sizes = dict(zip(dims, arr.shape, strict=True))
    for key, value in coords_and_attrs.items():
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], str)
            and (value[0] in dims)
        ):
            coords[key] = value
            continue
        if isinstance(value, (str, bytes, int, float, bool, np.generic)) or value is None:
            attrs[key] = value
            continue
        seq = np.asarray(value)
        if seq.ndim != 1:
            attrs[key] = value
            continue
        matches = [d for d in dims if sizes[d] == len(seq)]
        if not matches:
            raise SchemaError(
                f"Coordinate {key!r} has {len(seq)} values but no dim has that length "
                f"(sizes: {sizes})."
            )
        if len(matches) > 1:
            raise SchemaError(
                f"Coordinate {key!r} has {len(seq)} values, which matches dims {matches}; "
                f"pass {key}=(dim, values) to say which."
            )
        coords[key] = (matches[0], seq)
    attrs.setdefault("brainalign_version", __version__)
    da = xr.DataArray(arr, dims=dims, coords=coords, attrs=attrs, name=name)
    return validate(da)


def validate(da: Any, *, name: str = "data") -> xr.DataArray:
    """Check that ``da`` follows the brainalign schema, raising a precise error otherwise.

    Checks: it is a DataArray; it has exactly one sample axis (``stimulus``, ``trial``, or
    the RDM pair ``stimulus_a``/``stimulus_b``); stimulus ids are non-empty strings without
    NUL characters or lone surrogates (which NetCDF cannot store), unique along
    ``stimulus`` and equal on both RDM axes; a ``trial`` array carries a ``stimulus``
    coordinate; ``time`` is increasing; values are numeric; ``modality`` is known.

    Parameters
    ----------
    da : xarray.DataArray
        The array to check.
    name : str
        The array's name in messages.

    Returns
    -------
    da : xarray.DataArray
        The same array, for chaining.

    Raises
    ------
    SchemaError
        Naming the array and the violation.
    TypeError
        When ``da`` is not a DataArray.
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.DataArray, got {type(da).__name__}.")
    dims = tuple(da.dims)
    is_rdm = all(d in dims for d in RDM_DIMS)
    present = [d for d in SAMPLE_DIMS if d in dims]
    if is_rdm:
        if present:
            raise SchemaError(f"{name} has RDM dims {RDM_DIMS} and also {present}; pick one.")
        for d in RDM_DIMS:
            _check_id_coord(da, d, name)
        a, b = (np.asarray(da[d].values) for d in RDM_DIMS)
        if da.sizes[RDM_DIMS[0]] != da.sizes[RDM_DIMS[1]] or not np.array_equal(a, b):
            raise SchemaError(
                f"{name} is an RDM whose stimulus_a and stimulus_b ids differ; both axes must "
                "list the same stimuli in the same order."
            )
    elif len(present) != 1:
        hint = ""
        for d in dims:
            hint = hint or did_you_mean(d, (*SAMPLE_DIMS, *RDM_DIMS))
        raise SchemaError(
            f"{name} must have exactly one of the dims 'stimulus' or 'trial' (or the RDM dims "
            f"'stimulus_a', 'stimulus_b'); it has dims {dims}.{hint}"
        )
    elif present[0] == STIMULUS:
        _check_id_coord(da, STIMULUS, name)
    else:
        if STIMULUS not in da.coords or da[STIMULUS].dims != (TRIAL,):
            raise SchemaError(
                f"{name} has a 'trial' dim but no 'stimulus' coordinate along it; add the "
                "stimulus id of each trial (responses(..., sample_dim='trial'))."
            )
        _check_str_values(da[STIMULUS].values, f"{name}.stimulus", allow_dup=True)
    if "time" in dims and "time" in da.coords:
        t = np.asarray(da["time"].values, dtype=float)
        if t.size > 1 and not np.all(np.diff(t) > 0):
            raise SchemaError(f"{name}.time must be strictly increasing (seconds).")
    if not (np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.bool_)):
        raise SchemaError(f"{name} values must be numeric, got dtype {da.dtype}.")
    modality = da.attrs.get("modality")
    if modality is not None:
        check_option(f"{name}.attrs['modality']", modality, MODALITIES)
    return da


def _check_id_coord(da: xr.DataArray, dim: str, name: str) -> None:
    if dim not in da.coords:
        raise SchemaError(f"{name} has a {dim!r} dim without ids; assign a {dim!r} coordinate.")
    _check_str_values(da[dim].values, f"{name}.{dim}", allow_dup=False)


def _check_str_values(values: np.ndarray, label: str, *, allow_dup: bool) -> None:
    values = np.asarray(values)
    if values.dtype.kind not in ("U", "O", "S"):
        raise SchemaError(
            f"{label} ids must be strings, got dtype {values.dtype}; convert with "
            "responses(..., stimulus=[str(i) for i in ids])."
        )
    bad = [v for v in values.tolist() if not isinstance(v, str) or v == ""]
    if bad:
        raise SchemaError(f"{label} holds non-string or empty ids: {_fmt_list(bad)}.")
    _check_storable(values, label)
    if not allow_dup:
        dup = duplicates(values)
        if dup:
            raise SchemaError(f"{label} ids must be unique; duplicated: {_fmt_list(dup)}.")


def _unstorable(v: str) -> str:
    """Why id ``v`` cannot be stored (NetCDF/HDF5 strings are NUL-free UTF-8), or ``""``."""
    if "\x00" in v:
        return "a NUL character"
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (not valid UTF-8)"
    return ""


def _check_storable(values: np.ndarray, label: str) -> None:
    """Refuse ids holding NUL or lone surrogates: saving them would fail or cut them."""
    if values.size == 0:
        return
    joined = "\x01".join(values.tolist())  # one pass over all ids in the common case
    if "\x00" not in joined:
        try:
            joined.encode("utf-8")
            return
        except UnicodeEncodeError:
            pass
    bad = [(v, why) for v in values.tolist() if (why := _unstorable(v))]
    shown = ", ".join(f"{v!r} ({why})" for v, why in bad[:10])
    more = f", ... ({len(bad) - 10} more)" if len(bad) > 10 else ""
    raise SchemaError(
        f"{label} holds {len(bad)} id(s) that cannot be saved (NetCDF/HDF5 strings are "
        f"UTF-8 without NUL characters): {shown}{more}. Remove or replace those characters."
    )


def sample_dim(da: xr.DataArray) -> str:
    """Return ``"stimulus"`` or ``"trial"``: the dim that indexes samples in ``da``.

    Parameters
    ----------
    da : xarray.DataArray
        A schema array.

    Returns
    -------
    dim : str
        The sample dim.
    """
    for d in SAMPLE_DIMS:
        if d in da.dims:
            return d
    raise SchemaError(f"array with dims {tuple(da.dims)} has no 'stimulus' or 'trial' dim.")


def stimulus_ids(da: xr.DataArray) -> np.ndarray:
    """Return the stimulus ids of a schema array (per row, or per RDM axis).

    Parameters
    ----------
    da : xarray.DataArray
        A schema array (responses, trials or RDM).

    Returns
    -------
    ids : ndarray of str
        ``da.stimulus`` (one per row or trial) or ``da.stimulus_a`` for an RDM.
    """
    if RDM_DIMS[0] in da.dims:
        return np.asarray(da[RDM_DIMS[0]].values)
    return np.asarray(da[STIMULUS].values)


def feature_dims(da: xr.DataArray) -> list[str]:
    """Return the dims of ``da`` that are known feature dims (unit, voxel, channel ...).

    Parameters
    ----------
    da : xarray.DataArray
        A schema array.

    Returns
    -------
    dims : list of str
        The feature dims present, in ``da.dims`` order.
    """
    return [d for d in da.dims if d in FEATURE_DIMS]
