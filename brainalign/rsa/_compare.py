"""Comparing RDMs: one data RDM against many model RDMs, NaN pairs masked."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_option
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._kernels import compare_vectors
from brainalign.rsa._rdm import as_rdm

Method = Literal["spearman", "pearson", "cosine"]
METHODS = ("spearman", "pearson", "cosine")


def _vectors(r: xr.DataArray) -> xr.DataArray:
    n = r.sizes[RDM_DIMS[0]]
    i, j = np.triu_indices(n, k=1)
    bdims = [d for d in r.dims if d not in RDM_DIMS]
    vals = np.asarray(r.transpose(*bdims, *RDM_DIMS).values)[..., i, j]
    coords = {d: r[d] for d in bdims if d in r.coords}
    return xr.DataArray(vals, dims=(*bdims, "pair"), coords=coords)


def compare(
    rdm_a: Any,
    rdm_b: Any,
    method: Method = "spearman",
    *,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> float | xr.DataArray:
    """Compare RDMs on their upper triangles.

    The stimuli are aligned by id first (an error names missing or extra ids). Pairs that
    are NaN in either RDM (incomplete judgments) are left out, never filled. Broadcast dims
    of the two inputs combine: a data RDM over ``time`` against model RDMs over ``layer``
    gives a ``(time, layer)`` result.

    Parameters
    ----------
    rdm_a, rdm_b : xarray.DataArray or array_like
        RDMs (see :func:`brainalign.rsa.rdm`), or square matrices in the same stimulus order.
    method : {"spearman", "pearson", "cosine"}
        ``"spearman"``: Pearson correlation of average-tie ranks; ``"pearson"``: Pearson
        correlation (= rsatoolbox ``corr``); ``"cosine"``: uncentred cosine similarity.
    device : str or torch.device, optional
        Where to compute.
    dtype : {"auto", "float32", "float64"}, optional
        Compute precision.

    Returns
    -------
    similarity : float or xarray.DataArray
        A float for two single RDMs, else a DataArray over the broadcast dims.

    Raises
    ------
    ValueError
        Unknown method, fewer than 3 pairs valid in both RDMs, or an RDM that is constant
        over the valid pairs (the correlation is undefined).
    StimulusAlignmentError
        When the RDMs hold different stimuli.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> a = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]])
    >>> rsa.compare(a, a ** 2)
    1.0
    """
    check_option("method", method, METHODS)
    a = as_rdm(rdm_a, "rdm_a")
    b = as_rdm(rdm_b, "rdm_b")
    a, b = align_stimuli(a, b, join="exact")
    va, vb = _vectors(a), _vectors(b)
    shared = [d for d in va.dims if d in vb.dims and d != "pair"]
    if shared:
        try:
            va, vb = xr.align(va, vb, join="exact")
        except ValueError as err:
            raise ValueError(
                f"rdm_a and rdm_b share the dims {shared} but their coordinates differ: {err}"
            ) from None
    va_b, vb_b = xr.broadcast(va, vb)
    dims = [d for d in va_b.dims if d != "pair"]
    va_b = va_b.transpose(*dims, "pair")
    vb_b = vb_b.transpose(*dims, "pair")
    x = np.asarray(va_b.values, dtype=float)
    y = np.asarray(vb_b.values, dtype=float)
    valid = np.isfinite(x) & np.isfinite(y)
    n_valid = valid.sum(-1)
    if n_valid.size and n_valid.min() < 3:
        raise ValueError(
            f"Cannot compare RDMs: only {int(n_valid.min())} stimulus pair(s) are finite in both "
            f"(of {x.shape[-1]}); at least 3 are needed. Check for NaN entries."
        )
    for label, v in (("rdm_a", x), ("rdm_b", y)):
        vm = np.where(valid, v, np.nan)
        const = np.nanmax(vm, axis=-1) == np.nanmin(vm, axis=-1)
        if np.any(const) and method != "cosine":
            raise ValueError(
                f"{label} is constant over the valid stimulus pairs in {int(np.sum(const))} "
                f"case(s), so its {method} correlation is undefined."
            )
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    res = compare_vectors(
        as_tensor(x, dev, dt),
        as_tensor(y, dev, dt),
        method,
    )
    out = to_numpy(res).astype(np.float64)
    if not dims:
        return float(out)
    coords = {d: va_b[d] for d in dims if d in va_b.coords}
    attrs = {"kind": "rdm_comparison", "method": method, "brainalign_version": __version__}
    return xr.DataArray(out, dims=dims, coords=coords, attrs=attrs, name=method)
