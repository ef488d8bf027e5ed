"""The labeled edge of :mod:`brainalign.align`: stimuli aligned by id, other dims broadcast.

Every measure takes two representations ``a`` and ``b``. Each is a schema DataArray with a
``stimulus`` dim and one or more feature dims (``unit``, ``voxel``, ``channel`` ...), or a
mapping (a dict or an :class:`xarray.DataTree`) of such arrays, e.g. the layers of a model,
which may differ in width. Any other dim of a DataArray (``layer``, ``subject``, ``time``)
broadcasts as in xarray: a dim that both inputs have pairs up label by label, the others
form an outer product. A mapping's keys become one more dim, named by ``key_dims``.

The measures themselves are pure torch kernels on ``(n_stimuli, n_features)`` tensors;
:func:`apply_pair` loops over the (few) broadcast entries, never over stimuli.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import SchemaError, StimulusAlignmentError, check_finite
from brainalign._device import as_tensor, resolve_device, resolve_dtype
from brainalign.data._align import align_stimuli
from brainalign.data._schema import FEATURE_DIMS, STIMULUS, TRIAL, responses, validate

__all__ = ["Entries", "align_sides", "apply_pair", "entries", "entry_label", "result_attrs"]


@dataclass
class Entries:
    """One side of a comparison, flattened to 2-D entries.

    Attributes
    ----------
    arrays : list of xarray.DataArray
        One ``(stimulus, feature)`` (or ``(trial, feature)``) array per entry, in C order
        over ``dims``.
    dims : tuple of str
        The broadcast dims of this side.
    coords : dict
        The labels of each broadcast dim.
    ids : ndarray
        The stimulus ids (after alignment, the common order).
    """

    arrays: list[xr.DataArray]
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each broadcast dim."""
        return tuple(len(self.coords[d]) for d in self.dims)


def _as_array(x: Any, name: str) -> xr.DataArray:
    if isinstance(x, xr.DataArray):
        return validate(x, name=name)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise SchemaError(
            f"{name} as a plain array must be numeric and 2-D (n_stimuli, n_features), got "
            f"shape {arr.shape} of dtype {arr.dtype}; pass a labeled DataArray (with a "
            f"'stimulus' dim of stimulus ids) for more dims, so stimuli align by id."
        )
    return responses(arr)


def _split(da: xr.DataArray, name: str, samples: str) -> tuple[list[str], list[str]]:
    feats = [d for d in da.dims if d in FEATURE_DIMS]
    if not feats:
        raise SchemaError(
            f"{name} has no feature dim: dims {tuple(da.dims)}; a representation needs one "
            f"of {FEATURE_DIMS} (rename yours, e.g. da.rename(neuron='unit'))."
        )
    if samples not in da.dims:
        raise SchemaError(
            f"{name} has no {samples!r} dim: dims {tuple(da.dims)}"
            + ("; this measure needs single trials (a 'trial' dim)." if samples == TRIAL else ".")
        )
    batch = [d for d in da.dims if d not in feats and d not in (samples, STIMULUS, TRIAL)]
    return feats, batch


def entries(
    x: Any,
    *,
    name: str,
    key_dim: str,
    samples: str = STIMULUS,
) -> Entries:
    """Flatten one side of a comparison into 2-D entries.

    Parameters
    ----------
    x : xarray.DataArray or mapping of xarray.DataArray or array_like
        The representation(s).
    name : str
        The parameter name, for errors (``"a"``, ``"b"``).
    key_dim : str
        The dim a mapping's keys become.
    samples : {"stimulus", "trial"}
        The sample dim each entry keeps.

    Returns
    -------
    entries : Entries
        The entries (not yet aligned across sides).
    """
    if isinstance(x, xr.DataTree):
        x = {k: v for k, v in _tree_items(x)}
    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"{name} is an empty mapping; give at least one representation.")
        keys = [str(k) for k in x]
        arrays: list[xr.DataArray] = []
        for k, v in x.items():
            da = _as_array(v, f"{name}[{k!r}]")
            feats, batch = _split(da, f"{name}[{k!r}]", samples)
            if batch:
                raise SchemaError(
                    f"{name}[{k!r}] has dims {batch} besides its samples and features; in a "
                    f"mapping each value must be one (samples, features) representation."
                )
            arrays.append(_flat(da, feats, samples))
        return Entries(arrays, (key_dim,), {key_dim: np.asarray(keys)})
    da = _as_array(x, name)
    feats, batch = _split(da, name, samples)
    coords = {d: (da[d].values if d in da.coords else np.arange(da.sizes[d])) for d in batch}
    out = []
    for idx in itertools.product(*(range(da.sizes[d]) for d in batch)):
        sub = da.isel(dict(zip(batch, idx, strict=True))) if batch else da
        out.append(_flat(sub, feats, samples))
    return Entries(out, tuple(batch), coords)


def _tree_items(tree: xr.DataTree) -> list[tuple[str, xr.DataArray]]:
    items = []
    for node in tree.subtree:
        for var_name, var in node.dataset.data_vars.items():
            label = var_name if node is tree else f"{node.path.strip('/')}/{var_name}"
            items.append((label, var))
    return items


def _flat(da: xr.DataArray, feats: list[str], samples: str) -> xr.DataArray:
    if len(feats) > 1:
        da = da.stack(feature=feats)
        da = da.drop_vars([c for c in ("feature", *feats) if c in da.coords])
    else:
        da = da.rename({feats[0]: "feature"}) if feats[0] != "feature" else da
    return da.transpose(samples, "feature")


def align_sides(ea: Entries, eb: Entries, samples: str) -> None:
    first = ea.arrays[0]
    aligned = []
    for side, e in (("a", ea), ("b", eb)):
        for i, da in enumerate(e.arrays):
            if da is first or np.array_equal(da[STIMULUS].values, first[STIMULUS].values):
                aligned.append(da)  # same ids in the same order: nothing to align
                continue
            try:
                _, da2 = align_stimuli(first, da, join="exact")
            except StimulusAlignmentError as err:
                raise StimulusAlignmentError(
                    f"the stimuli of {entry_label(side, e, i)} differ from those of "
                    f"{entry_label('a', ea, 0)}: {err}"
                ) from None
            aligned.append(da2)
    ea.arrays[:] = aligned[: len(ea.arrays)]
    eb.arrays[:] = aligned[len(ea.arrays) :]
    ea.ids = eb.ids = np.asarray(first[STIMULUS].values)


def entry_label(side: str, e: Entries, i: int) -> str:
    """Name entry ``i`` of one side for a message: ``"a"``, or ``"a[layer='l1']"``."""
    if not e.dims:
        return side
    idx = np.unravel_index(i, e.shape)
    labels = (
        f"{d}={np.asarray(e.coords[d][j]).item()!r}" for d, j in zip(e.dims, idx, strict=True)
    )
    return f"{side}[{', '.join(labels)}]"


def result_attrs(
    measure: str,
    *,
    kind: str,
    params: Mapping[str, Any],
    similarity_id: str | None = None,
) -> dict[str, Any]:
    """Return the attrs every alignment result carries.

    Parameters
    ----------
    measure : str
        The measure's name (``"cka"``, ``"pwcca"`` ...).
    kind : {"similarity", "distance"}
        Whether larger means more alike.
    params : mapping
        The parameters that define the value (None values are stored as ``"none"``).
    similarity_id : str, optional
        The measure's id in the similarity repository (nacloos/similarity-repository).

    Returns
    -------
    attrs : dict
        NetCDF-storable attrs.
    """
    attrs: dict[str, Any] = {"measure": measure, "kind": kind}
    if similarity_id is not None:
        attrs["similarity_id"] = similarity_id
    for k, v in params.items():
        if v is None:
            v = "none"
        elif isinstance(v, bool):
            v = int(v)
        elif not isinstance(v, (int, float, str)):
            v = str(v)
        attrs[k] = v
    return attrs


def apply_pair(
    kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | np.ndarray | float],
    a: Any,
    b: Any,
    *,
    key_dims: tuple[str, str] = ("a", "b"),
    samples: str = STIMULUS,
    extra_dims: tuple[str, ...] = (),
    extra_coords: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    min_samples: int = 3,
) -> xr.DataArray:
    """Apply a 2-D kernel to every pair of entries of ``a`` and ``b``, labeled.

    Parameters
    ----------
    kernel : callable
        ``kernel(X, Y)`` on tensors ``(n, p)`` and ``(n, q)`` whose rows are the same
        stimuli in the same order (with ``samples="trial"``: the trials, whose stimulus ids
        are given to the kernel as the attribute ``kernel.ids`` is not; use
        :func:`entries` directly). Returns a scalar, or an array over ``extra_dims``.
    a, b : xarray.DataArray or mapping of xarray.DataArray or array_like
        The two sides.
    key_dims : tuple of str
        Dim names for the keys of a mapping ``a`` and ``b``.
    samples : {"stimulus", "trial"}
        The sample dim.
    extra_dims : tuple of str
        Dims the kernel's output adds (e.g. ``("component",)`` for canonical correlations).
    extra_coords : mapping, optional
        Coords of ``extra_dims``.
    attrs : mapping, optional
        The result's attrs (see :func:`result_attrs`).
    name : str, optional
        The result's name.
    device, dtype : optional
        Where and in what precision the kernel runs.
    min_samples : int
        The fewest stimuli the measure accepts.

    Returns
    -------
    result : xarray.DataArray
        Dims: the broadcast dims of ``a``, then those of ``b`` that ``a`` lacks, then
        ``extra_dims``. A dim both sides have pairs label by label (xarray semantics).
    """
    ea = entries(a, name="a", key_dim=key_dims[0], samples=samples)
    eb = entries(b, name="b", key_dim=key_dims[1], samples=samples)
    align_sides(ea, eb, samples)
    n = ea.arrays[0].sizes[samples]
    if n < min_samples:
        raise ValueError(
            f"this measure needs at least {min_samples} "
            f"{'stimuli' if samples == STIMULUS else 'trials'} in common, got {n}."
        )
    shared = [d for d in eb.dims if d in ea.dims]
    for d in shared:
        if not np.array_equal(ea.coords[d], eb.coords[d]):
            raise ValueError(
                f"dim {d!r} is in both a and b with different labels (a: "
                f"{list(ea.coords[d])[:5]}, b: {list(eb.coords[d])[:5]}); it pairs label by "
                f"label, so rename it in one of them for an outer product."
            )
    out_dims = list(ea.dims) + [d for d in eb.dims if d not in ea.dims]
    out_shape = [len(ea.coords[d]) if d in ea.coords else len(eb.coords[d]) for d in out_dims]
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    tensors: dict[tuple[str, int], torch.Tensor] = {}

    def tensor(side: str, e: Entries, i: int) -> torch.Tensor:
        if (side, i) not in tensors:
            vals = e.arrays[i].values
            check_finite(vals, entry_label(side, e, i))
            tensors[(side, i)] = as_tensor(vals, dev, dt)
        return tensors[(side, i)]

    results = []
    for pos in itertools.product(*(range(s) for s in out_shape)):
        lab = dict(zip(out_dims, pos, strict=True))
        ia = int(np.ravel_multi_index([lab[d] for d in ea.dims], ea.shape)) if ea.dims else 0
        ib = int(np.ravel_multi_index([lab[d] for d in eb.dims], eb.shape)) if eb.dims else 0
        val = kernel(tensor("a", ea, ia), tensor("b", eb, ib))
        if isinstance(val, torch.Tensor):
            val = val.detach().to("cpu", torch.float64).numpy()
        results.append(np.asarray(val, dtype=np.float64))
    extra_shape = results[0].shape
    values = np.stack(results).reshape((*out_shape, *extra_shape))
    coords: dict[str, Any] = {d: (ea.coords | eb.coords)[d] for d in out_dims}
    coords.update(dict(extra_coords or {}))
    out = xr.DataArray(
        values, dims=(*out_dims, *extra_dims), coords=coords, attrs=dict(attrs or {}), name=name
    )
    out.attrs["n_stimuli"] = len(np.unique(ea.ids))
    return out
