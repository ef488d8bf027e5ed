"""Content-addressed cache of pipeline intermediates, written atomically.

Each entry is a NetCDF file ``<kind>-<key>.nc`` in the cache folder, where ``key`` hashes
everything the entry depends on (the spec fragment, dataset hashes, stimulus ids, the
brainalign version). A run that is interrupted leaves only complete entries (writes are
atomic), so re-running loads them and computes only what is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import xarray as xr

from brainalign._version import __version__
from brainalign.data._io import load, save


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

    def remove_stale(self) -> None:
        """Remove temporary files that a killed run left (never entries themselves).

        Call it once at the start of a run, before any task writes: on a cluster, tasks must
        not call it, or one could delete another's write in flight.
        """
        for stale in self.folder.glob(".*.tmp") if self.folder.is_dir() else ():
            stale.unlink(missing_ok=True)

    def path(self, kind: str, key: str) -> Path:
        """Return the file of an entry."""
        return self.folder / f"{kind}-{key}.nc"

    def has(self, kind: str, key: str) -> bool:
        """Return whether an entry exists."""
        return self.path(kind, key).exists()

    def get(self, kind: str, key: str) -> Any | None:
        """Load an entry, or return None (counted as a hit or a miss)."""
        path = self.path(kind, key)
        if not path.exists():
            self.misses[kind] += 1
            return None
        self.hits[kind] += 1
        return load(path)

    def put(self, kind: str, key: str, obj: Any) -> None:
        """Store an entry atomically."""
        save(obj, self.path(kind, key))


def entries_to_tree(entries: dict[str, xr.DataArray | xr.Dataset], attrs: dict) -> xr.DataTree:
    """Pack named arrays/datasets (names may hold ':') into a DataTree, order kept."""
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
    """Unpack :func:`entries_to_tree`."""
    out = {}
    for n, name in enumerate(tree.attrs["entries"]):
        ds = tree[f"e{n:04d}"].to_dataset(inherit=False)
        out[name] = ds["value"] if list(ds.data_vars) == ["value"] else ds
    return out
