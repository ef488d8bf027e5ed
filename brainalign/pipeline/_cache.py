"""Content-addressed cache of pipeline intermediates, written atomically.

Each entry is a NetCDF file ``<kind>-<key>.nc`` in the cache folder, where ``key`` hashes
everything the entry depends on (the spec fragment, dataset and model-weight hashes, stimulus
ids, the brainalign version). A run that is interrupted leaves only complete entries (writes
are atomic), so re-running loads them and computes only what is missing.

An entry is never trusted blindly: it stores its key and a checksum of its values, and an
entry that cannot be read, or whose key or checksum does not match, is reported in a
warning naming the file, removed, and computed again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import warn
from brainalign._version import __version__
from brainalign.data._io import load, save

#: A temporary file older than this (seconds) belongs to a run that was killed; younger ones
#: may be another run's write in flight and are left alone.
STALE_AFTER = 3600.0
_KEY_ATTR, _SUM_ATTR = "brainalign_cache_key", "brainalign_cache_checksum"


class CacheWarning(UserWarning):
    """A cache entry could not be used (unreadable, another key, a bad checksum)."""


def content_key(payload: Any) -> str:
    """Return a 16-hex-digit sha256 of a JSON-able payload plus the brainalign version.

    Parameters
    ----------
    payload : object
        What the cached value depends on (dicts, lists, str, numbers).

    Returns
    -------
    key : str
        The hash.
    """
    blob = json.dumps({"v": __version__, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class Cache:
    """A folder of cached intermediates with hit/miss counters.

    Parameters
    ----------
    folder : path-like
        Where entries live (created on first write).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    def remove_stale(self, older_than: float = STALE_AFTER) -> None:
        """Remove temporary files that a killed run left (never entries themselves).

        Only files older than ``older_than`` seconds are removed: a younger one may be the
        write in flight of another run sharing the folder.

        Parameters
        ----------
        older_than : float
            Age in seconds (modification time) from which a temporary file is stale.
        """
        now = time.time()
        for stale in self.folder.glob(".*.tmp") if self.folder.is_dir() else ():
            try:
                if now - stale.stat().st_mtime > older_than:
                    stale.unlink(missing_ok=True)
            except FileNotFoundError:  # its writer finished meanwhile
                continue

    def path(self, kind: str, key: str) -> Path:
        """Return the file of an entry."""
        return self.folder / f"{kind}-{key}.nc"

    def _read(self, kind: str, key: str) -> tuple[Any | None, str | None]:
        """Load and verify an entry: (object, None), or (None, why it cannot be used)."""
        path = self.path(kind, key)
        try:
            obj = load(path)
        except Exception as err:  # any unreadable file is computed again
            return None, f"it cannot be read ({type(err).__name__}: {err})"
        if obj.attrs.get(_KEY_ATTR) != key:
            return None, (
                f"it holds key {obj.attrs.get(_KEY_ATTR)!r}, not the {key!r} of its name"
            )
        if obj.attrs.get(_SUM_ATTR) != checksum(obj):
            return None, "its values do not match the checksum written with them"
        return obj, None

    def peek(self, kind: str, key: str) -> Any | None:
        """Load a usable entry without counting it or removing a bad one (for dry runs)."""
        if not self.path(kind, key).exists():
            return None
        return self._read(kind, key)[0]

    def has(self, kind: str, key: str) -> bool:
        """Return whether a usable entry exists (readable, with its key and checksum)."""
        return self.path(kind, key).exists() and self._read(kind, key)[1] is None

    def get(self, kind: str, key: str) -> Any | None:
        """Load an entry, or return None (counted as a hit or a miss).

        An entry that cannot be used (unreadable, another key, values that do not match its
        checksum) is removed with a warning naming the file, and counts as a miss.
        """
        path = self.path(kind, key)
        if not path.exists():
            self.misses[kind] += 1
            return None
        obj, why = self._read(kind, key)
        if why is not None:
            warn(
                f"cache entry {str(path)!r} is not used: {why}; it is computed again.",
                CacheWarning,
            )
            path.unlink(missing_ok=True)
            self.misses[kind] += 1
            return None
        self.hits[kind] += 1
        for name in (_KEY_ATTR, _SUM_ATTR):
            obj.attrs.pop(name, None)
        return obj

    def put(self, kind: str, key: str, obj: Any) -> None:
        """Store an entry atomically, with its key and the checksum of its values."""
        obj = obj.copy()
        obj.attrs = {**obj.attrs, _KEY_ATTR: key, _SUM_ATTR: checksum(obj)}
        save(obj, self.path(kind, key))


def _variables(obj: Any) -> list[tuple[str, xr.Variable]]:
    """Every variable of a DataArray, Dataset or DataTree, named by node path, sorted."""
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name="__dataarray__", promote_attrs=False)
    nodes = obj.subtree if isinstance(obj, xr.DataTree) else [obj]
    out = []
    for node in nodes:
        ds = node.to_dataset(inherit=False) if isinstance(node, xr.DataTree) else node
        prefix = node.path if isinstance(node, xr.DataTree) else ""
        out.extend((f"{prefix}/{name}", var) for name, var in ds.variables.items())
    return sorted(out, key=lambda item: item[0])


def checksum(obj: Any) -> str:
    """Return the sha256 of the values, dims and coordinates of a cached object.

    Numbers are hashed as float64 (NaNs made canonical), text as JSON, so the checksum
    survives a NetCDF round trip exactly; attributes are left out.

    Parameters
    ----------
    obj : xarray.DataArray, Dataset or DataTree
        What a cache entry holds.

    Returns
    -------
    digest : str
        Hex digest.
    """
    h = hashlib.sha256()
    for name, var in _variables(obj):
        h.update(json.dumps([name, list(var.dims), list(var.shape)]).encode())
        values = np.asarray(var.values)
        if values.dtype.kind in "biuf":
            v = np.ascontiguousarray(values, dtype="<f8")
            h.update(np.where(np.isnan(v), np.nan, v).tobytes())
        else:
            h.update(json.dumps([str(x) for x in values.ravel().tolist()]).encode())
    return h.hexdigest()


def entries_to_tree(entries: dict[str, xr.DataArray | xr.Dataset], attrs: dict) -> xr.DataTree:
    """Pack named arrays/datasets (names may hold ':') into a DataTree, order kept.

    Parameters
    ----------
    entries : dict of str to xarray.DataArray or xarray.Dataset
        The values, by name (any string: the names are kept in an attribute, not as node
        names).
    attrs : dict
        Attributes of the tree's root.

    Returns
    -------
    tree : xarray.DataTree
        One child per entry (``e0000``, ``e0001``, ... in the order given), a DataArray
        stored as the variable ``value`` of its child; the root's attrs are ``attrs`` plus
        ``entries`` (the names, in order).
    """
    children = {}
    for n, value in enumerate(entries.values()):
        ds = (
            value.to_dataset(name="value", promote_attrs=False)
            if isinstance(value, xr.DataArray)
            else value
        )
        children[f"e{n:04d}"] = xr.DataTree(dataset=ds)
    tree = xr.DataTree(children=children)
    tree.attrs = {**attrs, "entries": list(entries)}
    return tree


def tree_to_entries(tree: xr.DataTree) -> dict[str, Any]:
    """Unpack :func:`entries_to_tree`.

    Parameters
    ----------
    tree : xarray.DataTree
        A tree that :func:`entries_to_tree` made (or read back from a file).

    Returns
    -------
    entries : dict of str to xarray.DataArray or xarray.Dataset
        The values by name, in the order packed: a child holding only the variable
        ``value`` gives back a DataArray, any other a Dataset.
    """
    out = {}
    for n, name in enumerate(tree.attrs["entries"]):
        ds = tree[f"e{n:04d}"].to_dataset(inherit=False)
        out[name] = ds["value"] if list(ds.data_vars) == ["value"] else ds
    return out
