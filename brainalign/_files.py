"""Files written atomically: complete at their path, or not there at all.

This module sits below every layer (like ``_checks``): ``data`` writes NetCDF through it and
``report`` its HTML.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path`` that replaces ``path`` when the block succeeds.

    The temporary name is unique to each writer (``mkstemp``), so two writers of one path
    never share it; it gets the mode a plain ``open()`` would give (not ``mkstemp``'s 0600),
    and it is removed whatever happens, so a failed write leaves nothing behind.

    Parameters
    ----------
    path : pathlib.Path
        The target file; its parent folders are created.

    Yields
    ------
    tmp : pathlib.Path
        The temporary file to write (it exists, empty).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
