"""Representational dissimilarity matrices (labeled edge around the torch kernels)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import (
    SchemaError,
    check_finite,
    check_not_constant,
    check_not_empty,
    check_option,
)
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._version import __version__
from brainalign.data._schema import FEATURE_DIMS, RDM_DIMS, STIMULUS, TRIAL, responses, validate
from brainalign.rsa._kernels import RDM_KERNELS

Metric = Literal["correlation", "cosine", "euclidean", "sqeuclidean"]
METRICS = tuple(RDM_KERNELS)
_PROVENANCE = ("modality", "subject", "session", "space", "source", "model", "layer", "roi")
_MEMORY_BUDGET = 2**30  # bytes per chunk of broadcast slices


def as_responses(data: Any, name: str = "data") -> xr.DataArray:
    """Return ``data`` as a schema DataArray (numpy rows become stimuli ``"0"...``)."""
    if isinstance(data, xr.DataArray):
        return validate(data, name=name)
    arr = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
    if arr.ndim != 2:
        raise SchemaError(
            f"{name} as a plain array must be 2-D (n_stimuli, n_features), got shape "
            f"{arr.shape}; use a labeled DataArray for more dims."
        )
    return responses(arr)


def _feature_dim(da: xr.DataArray, feature_dim: str | None, name: str) -> str:
    if feature_dim is not None:
        if feature_dim not in da.dims:
            check_option("feature_dim", feature_dim, tuple(d for d in da.dims if d != STIMULUS))
        return feature_dim
    found = [d for d in da.dims if d in FEATURE_DIMS]
    if len(found) != 1:
        raise SchemaError(
            f"Cannot tell which dim of {name} holds the features: dims {tuple(da.dims)}, known "
            f"feature dims {FEATURE_DIMS}. Pass feature_dim=..."
        )
    return found[0]


def rdm(
    data: Any,
    metric: Metric = "correlation",
    *,
    feature_dim: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Compute representational dissimilarity matrices between stimulus patterns.

    Dims other than ``stimulus`` and the feature dim broadcast: a
    ``(stimulus, channel, time)`` array gives one RDM per time point.

    Parameters
    ----------
    data : xarray.DataArray, dims ("stimulus", feature, ...) or array_like
        Responses; a 2-D array is read as ``(n_stimuli, n_features)`` with ids
        ``"0"..."n-1"``.
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}
        ``"correlation"``: 1 − Pearson r (= rsatoolbox ``correlation``);
        ``"cosine"``: 1 − cosine similarity; ``"euclidean"``: Euclidean distance;
        ``"sqeuclidean"``: its square (divide by the number of features for
        rsatoolbox's ``euclidean``).
    feature_dim : str, optional
        The dim holding features; found automatically among ``unit``, ``voxel``,
        ``channel``, ``vertex``, ``feature``.
    device : str or torch.device, optional
        Where to compute (default: the configured device).
    dtype : {"auto", "float32", "float64"}, optional
        Compute precision (default: float64 on CPU, float32 on GPU).

    Returns
    -------
    rdm : xarray.DataArray, dims (..., "stimulus_a", "stimulus_b")
        Symmetric with a zero diagonal; ``np.asarray(rdm)`` is the square matrix for a
        single RDM, in the input's stimulus order.

    Raises
    ------
    ValueError
        Unknown metric, NaN/infinite values, empty data, or constant patterns with the
        ``correlation``/``cosine`` metrics (which are undefined for them).
    SchemaError
        Trial data (average first with :func:`brainalign.average_trials`) or unclear dims.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> d = rsa.rdm(np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1]]))
    >>> round(float(d[0, 2]), 6)
    2.0
    """
    check_option("metric", metric, METRICS)
    da = as_responses(data)
    if TRIAL in da.dims:
        raise SchemaError(
            "rdm() needs one pattern per stimulus but data has a 'trial' dim; average the "
            "trials first with brainalign.average_trials(data)."
        )
    fdim = _feature_dim(da, feature_dim, "data")
    bdims = [d for d in da.dims if d not in (STIMULUS, fdim)]
    da_t = da.transpose(*bdims, STIMULUS, fdim)
    values = np.asarray(da_t.values)
    check_not_empty(values, "data")
    ids = np.asarray(da[STIMULUS].values)
    if da.sizes[STIMULUS] < 2:
        raise ValueError(f"An RDM needs at least 2 stimuli; data has {da.sizes[STIMULUS]}.")
    check_finite(np.moveaxis(values, -2, 0), "data", labels=ids)
    rows = np.moveaxis(values, -2, 0).reshape(len(ids), -1, values.shape[-1])
    if metric == "correlation":
        check_not_constant(rows, "data", axis=-1, labels=ids)
    elif metric == "cosine":
        zero = (np.abs(rows).max(axis=-1) == 0).any(axis=1)
        if zero.any():
            raise ValueError(
                f"data has {int(zero.sum())} all-zero pattern(s) "
                f"({', '.join(map(repr, ids[zero][:10].tolist()))}): cosine distance is "
                "undefined for them."
            )
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    kernel = RDM_KERNELS[metric]
    n, p = values.shape[-2:]
    batch_shape = values.shape[:-2]
    flat_b = values.reshape(-1, n, p)
    per_item = (n * p + 2 * n * n) * torch.finfo(dt).bits // 8
    step = max(1, _MEMORY_BUDGET // max(per_item, 1))
    out = np.empty(
        (flat_b.shape[0], n, n), dtype=np.float64 if dt == torch.float64 else np.float32
    )
    for start in range(0, flat_b.shape[0], step):
        x = as_tensor(flat_b[start : start + step], dev, dt)
        out[start : start + step] = to_numpy(kernel(x))
    out = out.reshape((*batch_shape, n, n))
    coords: dict[str, Any] = {d: da_t[d] for d in bdims if d in da_t.coords}
    coords[RDM_DIMS[0]] = ids
    coords[RDM_DIMS[1]] = ids
    for cname, coord in da.coords.items():  # stimulus-level labels, e.g. category
        if coord.dims == (STIMULUS,) and cname != STIMULUS:
            coords[f"{cname}_a"] = (RDM_DIMS[0], coord.values)
            coords[f"{cname}_b"] = (RDM_DIMS[1], coord.values)
    attrs = {k: da.attrs[k] for k in _PROVENANCE if k in da.attrs}
    attrs.update({"kind": "rdm", "metric": metric, "brainalign_version": __version__})
    return xr.DataArray(out, dims=(*bdims, *RDM_DIMS), coords=coords, attrs=attrs, name="rdm")


def as_rdm(x: Any, name: str = "rdm") -> xr.DataArray:
    """Return ``x`` as a labeled RDM, validating a plain square matrix.

    Parameters
    ----------
    x : xarray.DataArray or array_like, shape (n, n)
        An RDM (labeled, or a square symmetric matrix with stimulus ids ``"0"...``).
    name : str
        Its name in messages.

    Returns
    -------
    rdm : xarray.DataArray, dims (..., "stimulus_a", "stimulus_b")
        The labeled RDM.
    """
    if isinstance(x, xr.DataArray):
        if not all(d in x.dims for d in RDM_DIMS):
            raise SchemaError(
                f"{name} must be an RDM with dims {RDM_DIMS}; it has dims {tuple(x.dims)}. "
                "Compute one with brainalign.rsa.rdm()."
            )
        return validate(x, name=name)
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise SchemaError(f"{name} must be a square (n, n) matrix, got shape {arr.shape}.")
    both = np.isfinite(arr) & np.isfinite(arr.T)
    if not np.allclose(np.where(both, arr, 0), np.where(both, arr.T, 0), equal_nan=True):
        raise ValueError(
            f"{name} must be symmetric; max |d - d.T| = {np.nanmax(np.abs(arr - arr.T)):.3g}."
        )
    ids = np.array([str(i) for i in range(arr.shape[0])])
    return xr.DataArray(
        arr,
        dims=RDM_DIMS,
        coords={RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
        attrs={"kind": "rdm"},
        name="rdm",
    )
