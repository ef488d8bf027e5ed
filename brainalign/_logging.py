"""Logging, warnings that point at the user's code, and progress display."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger("brainalign")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("brainalign: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
T = TypeVar("T")


def set_log_level(level: str | int) -> None:
    """Set the ``brainalign`` logger's level (``"info"``, ``"warning"``, ... or an int).

    Parameters
    ----------
    level : str or int
        A logging level name (case-insensitive) or number.
    """
    if isinstance(level, str):
        level = getattr(logging, level.upper())
    logger.setLevel(level)


def _user_stacklevel() -> int:
    """Return the stacklevel of the first frame outside the brainalign package."""
    frame = inspect.currentframe()
    level = 0
    while frame is not None:
        fname = str(Path(frame.f_code.co_filename).resolve())
        if not fname.startswith(_PACKAGE_DIR) and level > 0:
            break
        frame = frame.f_back
        level += 1
    return max(level, 1)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Emit a warning attributed to the first caller outside brainalign.

    Parameters
    ----------
    message : str
        The warning text.
    category : type of Warning
        The warning class.
    """
    warnings.warn(message, category, stacklevel=_user_stacklevel())


def _progress_enabled() -> bool:
    if os.environ.get("BRAINALIGN_PROGRESS", "").lower() in ("0", "false", "no"):
        return False
    if os.environ.get("BRAINALIGN_PROGRESS", "").lower() in ("1", "true", "yes"):
        return True
    return logger.getEffectiveLevel() <= logging.WARNING and sys.stderr.isatty()


def progress(iterable: Iterable[T], description: str, *, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (shown on a terminal, silent otherwise).

    Set ``BRAINALIGN_PROGRESS=1`` to force the bar (for example in a notebook) or ``0`` to
    hide it.

    Parameters
    ----------
    iterable : iterable
        What to iterate over.
    description : str
        The text beside the bar.
    total : int, optional
        The number of items, when ``len(iterable)`` is not defined.

    Yields
    ------
    item : object
        The items of ``iterable``.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not _progress_enabled() or total == 0:  # nothing to do: no empty "0/0" bar
        yield from iterable
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    from rich.console import Console

    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)


@contextlib.contextmanager
def step(description: str) -> Iterator[None]:
    """Log the start and duration of a long step at INFO level.

    Parameters
    ----------
    description : str
        What the step does.

    Yields
    ------
    None
    """
    import time

    logger.info("%s ...", description)
    t0 = time.perf_counter()
    yield
    logger.info("%s done in %.2f s", description, time.perf_counter() - t0)
