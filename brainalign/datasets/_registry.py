"""Dataset registry: locate the shipped ``datasets/`` folder, read manifests, check hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from brainalign._checks import check_option


def data_dir() -> Path:
    """Return the folder that holds the shipped datasets.

    ``$BRAINALIGN_DATA`` when set, else the repository's ``datasets/`` folder.

    Returns
    -------
    path : pathlib.Path
        The datasets folder.

    Raises
    ------
    FileNotFoundError
        When the folder cannot be found.
    """
    env = os.environ.get("BRAINALIGN_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"The brainalign datasets folder was not found at {str(path)!r}. Install "
            "brainalign from its repository (pip install -e .) or set BRAINALIGN_DATA to a "
            "copy of its datasets/ folder."
        )
    return path


def list_datasets() -> list[str]:
    """Return the names of the registered datasets.

    Returns
    -------
    names : list of str
        Folder names under :func:`data_dir` that hold a ``manifest.yaml``.
    """
    return sorted(p.parent.name for p in data_dir().glob("*/manifest.yaml"))


def get_manifest(name: str) -> dict[str, Any]:
    """Return a dataset's manifest (title, citation, licence, files and their sha256).

    Parameters
    ----------
    name : str
        A registered dataset (see :func:`list_datasets`).

    Returns
    -------
    manifest : dict
        The parsed ``manifest.yaml``, with ``path`` set to the dataset folder.
    """
    check_option("name", name, list_datasets())
    folder = data_dir() / name
    with open(folder / "manifest.yaml", encoding="utf-8") as f:
        manifest = yaml.safe_load(f)
    manifest["path"] = folder
    return manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the sha256 of a file, or of the sorted files of a folder (e.g. a CTF ``.ds``).

    Parameters
    ----------
    path : path-like
        A file or a folder.

    Returns
    -------
    digest : str
        Hex digest; for a folder, of each file's relative path and sha256 in sorted order.
    """
    path = Path(path)
    if path.is_file():
        return _sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(_sha256(f).encode())
    return h.hexdigest()


def verify(name: str, files: list[str] | None = None) -> dict[str, str]:
    """Check a dataset's files against the sha256 in its manifest.

    Parameters
    ----------
    name : str
        A registered dataset.
    files : list of str, optional
        The files to check (paths as in the manifest); default all.

    Returns
    -------
    hashes : dict
        File name → sha256 (all verified).

    Raises
    ------
    FileNotFoundError
        When a listed file is missing.
    ValueError
        When a file's hash differs from the manifest's.
    """
    manifest = get_manifest(name)
    if not manifest.get("shipped", True):
        raise ValueError(
            f"Dataset {name!r} is not shipped with brainalign (nothing to verify); get it from "
            f"{manifest['source'].get('url', 'its source')} and read your local copy with "
            f"{manifest.get('loader', 'its loader')}."
        )
    out = {}
    listed = manifest["files"]
    if files is not None:
        unknown = [f for f in files if f not in listed]
        if unknown:
            check_option("files", unknown[0], list(listed))
        listed = {f: listed[f] for f in files}
    for fname, expected in listed.items():
        path = manifest["path"] / fname
        if not path.exists():
            raise FileNotFoundError(f"Dataset {name!r} is missing its file {str(path)!r}.")
        got = _sha256(path)
        if got != expected:
            raise ValueError(
                f"Dataset {name!r}: {fname} has sha256 {got}, but the manifest expects "
                f"{expected}; the file is corrupt or was changed."
            )
        out[fname] = got
    return out


def local_root(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of a local copy of a public (not shipped) dataset.

    Parameters
    ----------
    name : str
        A registered dataset.
    root : str or path-like, optional
        The folder; default ``$BRAINALIGN_<NAME>_ROOT`` (name upper-cased).

    Returns
    -------
    root : pathlib.Path
        An existing folder.

    Raises
    ------
    FileNotFoundError
        When no folder is given or it does not exist; the message says where to get the data.
    """
    manifest = get_manifest(name)
    var = f"BRAINALIGN_{name.upper()}_ROOT"
    root = root if root is not None else os.environ.get(var)
    if root is None or not Path(root).is_dir():
        where = f"at {str(root)!r}" if root is not None else f"given (root=None and ${var} unset)"
        raise FileNotFoundError(
            f"No local copy of {name!r} {where}. brainalign never downloads data: get "
            f"it from {manifest['source'].get('url')} "
            f"({manifest['source'].get('how_to_get', '')}), "
            f"then pass root=... or set {var}."
        )
    return Path(root)
