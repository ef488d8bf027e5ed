"""One memory budget for the batched kernels: parse, resolve and check it.

The budget is the ``max_memory`` configuration key (:func:`brainalign.set_config`): a
number of bytes, a string such as ``"4GB"`` or ``"512 MiB"``, or ``"auto"`` (half of the
memory available now: host RAM on the CPU, free GPU memory on CUDA). Kernels size their
chunks from it and refuse, before allocating, a request whose smallest chunk (or whose
output alone) does not fit, with :class:`MemoryBudgetError`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch

AUTO_FRACTION = 0.5  # share of the available memory that "auto" allows
_FALLBACK_BYTES = 4 * 2**30  # "auto" when the available memory cannot be read
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


class MemoryBudgetError(ValueError, MemoryError):
    """A request that cannot fit the memory budget (raised before allocating).

    A :class:`ValueError` (a bad request for the configured budget) and a
    :class:`MemoryError`, so either ``except`` clause catches it.
    """


def parse_memory(value: Any, name: str = "max_memory") -> int | str:
    """Return ``value`` as a number of bytes (int), or ``"auto"``.

    Parameters
    ----------
    value : int or str
        Bytes (a positive int, or an integral float), ``"auto"``, or a string with a
        unit: ``"4GB"``, ``"512 MiB"``, ``"1.5e9"`` (units B, KB, MB, GB, TB: powers of
        1000; KiB, MiB, GiB, TiB: powers of 1024; case-insensitive).
    name : str
        The parameter's name in messages.

    Returns
    -------
    bytes : int or "auto"
        The parsed value.

    Examples
    --------
    >>> parse_memory("4GB"), parse_memory("512 MiB"), parse_memory("auto")
    (4000000000, 536870912, 'auto')
    """
    allowed = (
        "a positive number of bytes, 'auto', or a string with a unit such as '4GB' or "
        "'512MiB' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
    )
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        match = _PATTERN.match(value)
        unit = match.group(2).upper() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(f"{name} must be {allowed}; got {value!r}.")
        n = float(match.group(1)) * _UNITS[unit]
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be {allowed}; got {type(value).__name__} {value!r}.")
    else:
        n = float(value)
    if not (n >= 1 and n < float("inf")):
        raise ValueError(f"{name} must be {allowed} (at least 1 byte); got {value!r}.")
    return int(n)


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes of memory available now on ``device`` (host RAM for the CPU)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_BYTES


def resolve_budget(max_memory: Any = None, device: torch.device | str = "cpu") -> int:
    """Return the memory budget in bytes on ``device``.

    Parameters
    ----------
    max_memory : int or str, optional
        As the ``max_memory`` configuration key; ``None`` reads it from the configuration.
    device : torch.device or str
        Where the memory is allocated (``"auto"`` uses half of what is available there).

    Returns
    -------
    budget : int
        Bytes.
    """
    if max_memory is None:
        from brainalign._config import get_config

        max_memory = get_config()["max_memory"]
    value = parse_memory(max_memory)
    if value == "auto":
        return max(1, int(AUTO_FRACTION * available_memory(device)))
    return int(value)


def format_bytes(n: float) -> str:
    """``n`` bytes as a short decimal string: ``"3.2 GB"``, ``"128 MB"``, ``"512 B"``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_fits(n_bytes: float, what: str, budget: int) -> None:
    """Raise :class:`MemoryBudgetError` when ``n_bytes`` exceed the ``budget``.

    Parameters
    ----------
    n_bytes : float
        The memory the request needs (at least).
    what : str
        What needs it, for the message (e.g. ``"rdm: the (20000, 20000) float64 output"``).
    budget : int
        The budget in bytes (from :func:`resolve_budget`).

    Raises
    ------
    MemoryBudgetError
        Naming the size, the budget and how to raise it.
    """
    if n_bytes <= budget:
        return
    raise MemoryBudgetError(
        f"{what} needs {format_bytes(n_bytes)} ({int(n_bytes)} bytes), more than the "
        f"memory budget of {format_bytes(budget)} ({int(budget)} bytes). Raise the budget "
        "with brainalign.set_config(max_memory=...) (bytes or e.g. '16GB'; default 'auto', "
        "half the available memory) if the machine has the memory, or make the request "
        "smaller."
    )
