"""Saving and loading labeled results (NetCDF via h5netcdf) with exact round trips."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._files import atomic_write

_ATTRS_KEY = "_brainalign_attrs_json"
KIND_KEY = "_brainalign_kind"
_NAME_KEY = "_brainalign_name"
#: A saved dict's key order (JSON list), on the root group and on each nested dict's group.
_KEYS_KEY = "_brainalign_keys"
_ENGINE = "h5netcdf"
#: The variable that holds a DataArray whose name (and key) are taken by its coordinates.
_DATAARRAY_VAR = "__brainalign_dataarray__"


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.item(), "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"attrs dicts need str keys to be saved; got keys {bad!r}.")
        return {k: _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(
        f"Cannot save attribute value {value!r} of type {type(value).__name__}; attrs may "
        "hold str, int, float, bool, None, numpy arrays and lists/tuples/dicts of those."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        if "__npscalar__" in value:
            return np.dtype(value["dtype"]).type(value["__npscalar__"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _native_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attrs NetCDF stores natively (kept readable for other tools), the rest dropped."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (str, int, float, np.number)):
            out[k] = v
        elif isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "iuf":
            out[k] = v
    return out


def pack_attrs(obj: xr.Dataset | xr.DataArray) -> None:
    """Replace attrs in place by native ones plus one JSON blob with exact types."""
    items = [obj] + [obj[v] for v in obj.variables] if isinstance(obj, xr.Dataset) else [obj]
    if isinstance(obj, xr.DataArray):
        items += [obj[c] for c in obj.coords]
    for item in items:
        full = dict(item.attrs)
        item.attrs = _native_attrs(full)
        item.attrs[_ATTRS_KEY] = json.dumps(_encode(full))


def unpack_attrs(obj: xr.Dataset | xr.DataArray) -> None:
    """Undo :func:`pack_attrs` in place: attrs with their exact types again."""
    items = [obj] + [obj[v] for v in obj.variables] if isinstance(obj, xr.Dataset) else [obj]
    if isinstance(obj, xr.DataArray):
        items += [obj[c] for c in obj.coords]
    for item in items:
        blob = item.attrs.get(_ATTRS_KEY)
        if blob is not None:
            item.attrs = _decode(json.loads(blob))


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save a DataArray, Dataset, DataTree or dict of them to a NetCDF file.

    Values, coordinates and attrs round-trip exactly through :func:`load` (attrs may hold
    str, numbers, bool, None, numpy arrays, lists, tuples and dicts). The write is atomic:
    the file appears complete or not at all.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset or xarray.DataTree or dict
        What to save. A dict maps str keys to DataArrays, Datasets, DataTrees or nested
        dicts of those; it is written as NetCDF groups (one per key, readable by any NetCDF
        tool as a tree) with a marker that makes :func:`load` return a dict again, with the
        same keys in the same order and equal values.
    path : str or path-like
        The target file (``.nc``).

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    TypeError
        When ``obj`` (or a value of a dict) is of another type, or an attr cannot be saved.
    ValueError
        When a dict key is not a non-empty str without ``'/'``, or is ``'.'`` or ``'..'``.

    Examples
    --------
    >>> import numpy as np, brainalign as ba, tempfile, os
    >>> da = ba.responses(np.eye(2), ["a", "b"], modality="model")
    >>> f = ba.save(da, os.path.join(tempfile.mkdtemp(), "x.nc"))
    >>> ba.load(f).identical(da)
    True
    >>> g = ba.save({"brain": da, "model": 2 * da}, os.path.join(tempfile.mkdtemp(), "d.nc"))
    >>> back = ba.load(g)
    >>> list(back), back["model"].identical(2 * da)
    (['brain', 'model'], True)
    """
    path = Path(path)
    markers: dict[str, dict[str, str]] = {}
    if isinstance(obj, Mapping) and not isinstance(obj, (xr.Dataset, xr.DataTree)):
        obj = _tree_from_mapping(obj, markers)
        markers.setdefault("", {})[KIND_KEY] = "dict"
    with atomic_write(path) as tmp:
        if isinstance(obj, xr.DataArray):
            ds = obj.to_dataset(name=_DATAARRAY_VAR, promote_attrs=False)
            ds[_DATAARRAY_VAR].attrs = dict(obj.attrs)
            for c in obj.coords:
                ds[c].attrs = dict(obj[c].attrs)
            pack_attrs(ds)
            ds.attrs[KIND_KEY] = "DataArray"
            ds.attrs[_NAME_KEY] = json.dumps(obj.name)
            ds.to_netcdf(tmp, engine=_ENGINE)
        elif isinstance(obj, xr.Dataset):
            ds = obj.copy(deep=False)
            ds.attrs = dict(obj.attrs)
            for v in ds.variables:
                ds[v].attrs = dict(obj[v].attrs)
            pack_attrs(ds)
            ds.attrs[KIND_KEY] = "Dataset"
            ds.to_netcdf(tmp, engine=_ENGINE)
        elif isinstance(obj, xr.DataTree):
            tree = obj.copy(deep=False)
            for node in tree.subtree:
                ds = node.to_dataset(inherit=False).copy(deep=False)
                ds.attrs = dict(node.attrs)
                for v in ds.variables:
                    ds[v].attrs = dict(node.dataset[v].attrs)
                pack_attrs(ds)
                node.dataset = ds
            tree.attrs[KIND_KEY] = "DataTree"
            for where, marker in markers.items():  # a dict's kinds, names and key orders
                (tree[where] if where else tree).attrs.update(marker)
            tree.to_netcdf(tmp, engine=_ENGINE)
        else:
            raise TypeError(
                "save() takes an xarray DataArray, Dataset, DataTree or a dict of them; "
                f"got {type(obj).__name__}."
            )
    return path


def _check_keys(mapping: Mapping[Any, Any], where: str) -> None:
    for k in mapping:
        if not isinstance(k, str) or "/" in k or k in ("", ".", ".."):
            at = f" (in {where!r})" if where else ""
            raise ValueError(
                f"dict keys must be non-empty str without '/', got {k!r}{at} ('.' and '..' "
                "are not allowed either)."
            )


def _tree_from_mapping(
    mapping: Mapping[str, Any], markers: dict[str, dict[str, str]]
) -> xr.DataTree:
    """Build the tree a dict is written as, and fill ``markers``: node path → marker attrs.

    Each value's group is marked with what it was (``DataArray`` with its name, ``Dataset``,
    ``DataTree``, ``dict`` with its key order), so that :func:`load` can rebuild the dict.
    """

    def node(value: Any, where: str) -> xr.DataTree:
        if isinstance(value, xr.DataTree):
            markers[where] = {KIND_KEY: "DataTree", _NAME_KEY: json.dumps(value.name)}
            return value.copy()
        if isinstance(value, xr.Dataset):
            markers[where] = {KIND_KEY: "Dataset"}
            return xr.DataTree(dataset=value)
        if isinstance(value, xr.DataArray):
            key = where.rsplit("/", 1)[-1]
            wanted = value.name if isinstance(value.name, str) and value.name else key
            var = next(n for n in (wanted, key, _DATAARRAY_VAR) if n not in value.coords)
            markers[where] = {KIND_KEY: "DataArray", _NAME_KEY: json.dumps(value.name)}
            return xr.DataTree(dataset=value.to_dataset(name=var, promote_attrs=False))
        if isinstance(value, Mapping):
            return children(value, where)
        raise TypeError(
            f"save() of a dict takes DataArrays, Datasets, DataTrees or dicts as values; key "
            f"{where!r} holds {type(value).__name__}."
        )

    def children(value: Mapping[str, Any], where: str) -> xr.DataTree:
        _check_keys(value, where)
        markers[where] = {KIND_KEY: "dict", _KEYS_KEY: json.dumps(list(value))}
        return xr.DataTree(
            children={k: node(v, f"{where}/{k}" if where else k) for k, v in value.items()}
        )

    return children(mapping, "")


def _unpack_tree(tree: xr.DataTree) -> xr.DataTree:
    """Undo the packing of attrs on every node of a loaded tree (a copy is returned)."""
    out = tree.copy()
    for node in out.subtree:
        ds = node.to_dataset(inherit=False).copy(deep=False)
        unpack_attrs(ds)
        for key in (KIND_KEY, _NAME_KEY, _KEYS_KEY):
            ds.attrs.pop(key, None)
        node.dataset = ds
    return out


def _dict_from_tree(tree: xr.DataTree) -> dict[str, Any]:
    """Rebuild the dict that :func:`save` wrote as ``tree`` (see :func:`_tree_from_mapping`)."""

    def value(node: xr.DataTree) -> Any:
        kind = node.attrs.get(KIND_KEY)
        if kind == "dict":
            return rebuild(node)
        if kind == "DataTree":
            sub = _unpack_tree(node.copy())  # detached from the file's tree
            sub.name = json.loads(node.attrs[_NAME_KEY])
            return sub
        ds = node.to_dataset(inherit=False).copy(deep=False)
        name_blob = ds.attrs.get(_NAME_KEY)
        unpack_attrs(ds)
        if kind == "DataArray":
            (var,) = ds.data_vars
            da = ds[var]
            da.name = json.loads(name_blob)
            return da
        for key in (KIND_KEY, _NAME_KEY, _KEYS_KEY):
            ds.attrs.pop(key, None)
        return ds

    def rebuild(node: xr.DataTree) -> dict[str, Any]:
        keys = json.loads(node.attrs[_KEYS_KEY])
        return {k: value(node.children[k]) for k in keys}

    return rebuild(tree)


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


def _sniff(path: Path) -> str:
    """Return ``"hdf5"`` or ``"netcdf3"`` for ``path``, or raise naming what it is."""
    if path.is_dir():
        raise ValueError(
            f"{str(path)!r} is a directory; brainalign.load() reads one NetCDF file. For a "
            "Zarr store use xarray.open_zarr() and check it with brainalign.validate()."
        )
    with open(path, "rb") as f:
        head = f.read(8)
        is_hdf5 = False
        for offset in (0, *(512 * 2**i for i in range(12))):  # HDF5 may follow a user block
            f.seek(offset)
            if f.read(8) == _HDF5_SIGNATURE:
                is_hdf5 = True
                break
    if head[:4] in _NETCDF3_SIGNATURES:
        return "netcdf3"
    if not is_hdf5:
        shown = head[:8] if head else b"(empty file)"
        raise ValueError(
            f"{str(path)!r} is not a NetCDF file (neither NetCDF-4/HDF5 nor NetCDF-3; it "
            f"starts with {shown!r}). brainalign.load() reads files written by "
            "brainalign.save() and other NetCDF files; for other formats use their reader "
            "and build the array with brainalign.responses()."
        )
    _check_netcdf4(path)
    return "hdf5"


def _check_netcdf4(path: Path) -> None:
    """Refuse an HDF5 file whose datasets carry no NetCDF dimensions (plain h5py output)."""
    import h5py

    plain: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset) or obj.ndim == 0:
            return
        if "DIMENSION_LIST" in obj.attrs or obj.attrs.get("CLASS") == b"DIMENSION_SCALE":
            return
        plain.append("/" + name)

    try:
        with h5py.File(path, "r") as f:
            if KIND_KEY in f.attrs:
                return
            f.visititems(visit)
    except OSError as err:
        raise ValueError(
            f"{str(path)!r} starts like an HDF5 file but cannot be read ({err}); it may be "
            "truncated or damaged."
        ) from None
    if plain:
        shown = ", ".join(plain[:5]) + (f", ... ({len(plain) - 5} more)" if len(plain) > 5 else "")
        raise ValueError(
            f"{str(path)!r} is an HDF5 file without the NetCDF/brainalign schema: its "
            f"dataset(s) {shown} have no named dimensions (it was not written by "
            "brainalign.save() or a NetCDF library). Read the arrays with h5py and label them "
            "with brainalign.responses(values, stimulus_ids, ...)."
        )


def load(path: str | os.PathLike[str]) -> Any:
    """Load what :func:`save` wrote, fully into memory (the file is closed afterwards).

    Parameters
    ----------
    path : str or path-like
        A NetCDF file.

    Returns
    -------
    obj : xarray.DataArray or xarray.Dataset or xarray.DataTree or dict
        The object as it was saved: a DataArray, Dataset or DataTree as such, and a dict as
        a dict with the same keys (in the same order) and equal values. Files written by
        other tools load as a Dataset, or a DataTree when they have groups (as do dicts
        saved by earlier brainalign versions, which carry no dict marker).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` is not a NetCDF file: a directory, a file of another format, or an
        HDF5 file whose datasets have no NetCDF dimensions (written with h5py, say); the
        message names the file, what it is and how to read it.

    Notes
    -----
    NetCDF-3 files (classic and 64-bit offset, as written by
    ``xarray.Dataset.to_netcdf(engine="scipy")``) are read too, with scipy, as a Dataset.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}.")
    kind = _sniff(path)
    if kind == "netcdf3":
        with xr.open_dataset(path, engine="scipy") as opened:
            ds = opened.load()
        unpack_attrs(ds)
        return ds
    try:
        tree = xr.open_datatree(path, engine=_ENGINE)
    except OSError as err:  # a damaged or truncated HDF5 file
        raise ValueError(
            f"{str(path)!r} starts like an HDF5/NetCDF-4 file but cannot be read ({err}); it "
            "may be truncated or damaged. Write it again with brainalign.save()."
        ) from None
    try:
        tree = tree.load()
    finally:
        tree.close()
    kind = tree.attrs.get(KIND_KEY)
    if kind == "dict":
        return _dict_from_tree(tree)
    if kind == "DataTree" or (kind is None and tree.children):
        return _unpack_tree(tree)
    ds = tree.to_dataset().copy(deep=False)
    name_blob = ds.attrs.pop(_NAME_KEY, None)
    ds.attrs.pop(KIND_KEY, None)
    unpack_attrs(ds)
    if kind == "DataArray":
        da = ds["__brainalign_dataarray__"]
        da.name = json.loads(name_blob) if name_blob is not None else None
        return da
    return ds
