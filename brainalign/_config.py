"""Thread-local configuration: device, dtype, seed, verbosity, memory budget, report downloads.

Modelled on scikit-learn's ``_config.py``: a process-wide default that each thread copies on
first use, changed with :func:`set_config` and temporarily with :func:`config_context`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from brainalign._checks import check_option, check_type

_DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "dtype": "auto",
    "seed": None,
    "verbose": "warning",
    "max_memory": "auto",
    "report_downloads": True,
}
_DTYPES = ("auto", "float32", "float64")
_VERBOSE = ("debug", "info", "warning", "error", "critical")
_local = threading.local()


def _thread_config() -> dict[str, Any]:
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config() -> dict[str, Any]:
    """Return a copy of the current thread's configuration.

    Returns
    -------
    config : dict
        Keys ``"device"``, ``"dtype"``, ``"seed"``, ``"verbose"``, ``"max_memory"`` and
        ``"report_downloads"``.

    See Also
    --------
    set_config, config_context
    """
    return dict(_thread_config())


def _validate(key: str, value: Any) -> Any:
    if key == "device":
        # Imported here: _device imports this module.
        from brainalign._device import _check_device_spec

        return _check_device_spec(value)
    if key == "dtype":
        if value is not None and not isinstance(value, str):
            value = str(value).replace("torch.", "")
        return check_option("dtype", value, _DTYPES)
    if key == "seed":
        if value is not None:
            check_type("seed", value, (int,), "an int or None")
            if value < 0:
                raise ValueError(f"seed must be a non-negative int or None, got {value!r}.")
        return value
    if key == "verbose":
        if isinstance(value, bool):
            return "info" if value else "warning"
        check_type("verbose", value, (str,), "a bool or one of " + ", ".join(_VERBOSE))
        return check_option("verbose", value.lower(), _VERBOSE)
    if key == "max_memory":
        from brainalign._memory import parse_memory

        return parse_memory(value)
    if key == "report_downloads":
        check_type("report_downloads", value, (bool,), "True or False")
        return value
    raise AssertionError(key)  # pragma: no cover - guarded by callers


def set_config(
    *,
    device: str | None = None,
    dtype: str | None = None,
    seed: int | None = None,
    verbose: str | bool | None = None,
    max_memory: int | str | None = None,
    report_downloads: bool | None = None,
) -> None:
    """Set brainalign's configuration for the current thread.

    Arguments left as ``None`` keep their current value; use :func:`config_context` to
    change settings temporarily, or pass ``seed=None`` through ``config_context``.

    Parameters
    ----------
    device : str, optional
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype : str, optional
        ``"auto"`` (float64 on CPU, float32 on GPU), ``"float32"`` or ``"float64"``.
    seed : int, optional
        Default seed for functions that draw random numbers and get ``seed=None``.
    verbose : str or bool, optional
        Logging level of the ``brainalign`` logger (``"debug"``, ``"info"``,
        ``"warning"``, ...). ``True`` means ``"info"``.
    max_memory : int or str, optional
        Memory budget of the batched kernels: bytes (an int), a string with a unit
        (``"4GB"``, ``"512MiB"``; KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers
        of 1024) or ``"auto"`` (the default: half of the memory available when a call
        starts, host RAM on the CPU and free GPU memory on CUDA). :func:`brainalign.rsa.rdm`
        and the searchlight size their chunks from it (an RDM's output must fit it, and
        the work beyond the output stays within about half the output's size), and refuse
        a request that cannot fit before allocating, naming its size and the budget.
        The encoding estimators and the Ricci kernels read the same budget: their chunks
        (at most 512 MiB for the estimators' ``max_memory="auto"``, 256 MiB for the Ricci
        kernels on the CPU; 2 GiB each on a GPU) never exceed what it leaves beside the
        data, and a fit or curvature whose smallest working set does not fit is refused
        before allocating, in the same words; so are the alignment measures' kernel
        matrices, similarity blocks, transport costs and network products
        (:mod:`brainalign.align`). An estimator's own ``max_memory=`` (bytes) only sizes
        its target chunks.
    report_downloads : bool, optional
        Whether pipeline reports offer every figure as SVG and PDF downloads beside the
        embedded PNG (default ``True``; a spec's ``report.downloads`` overrides it). The
        downloads about double a report's size and drawing time.

    Examples
    --------
    >>> import brainalign as ba
    >>> ba.set_config(device="cpu")
    >>> ba.get_config()["device"]
    'cpu'
    >>> ba.set_config(device="auto")  # back to the default
    """
    new = {
        "device": device,
        "dtype": dtype,
        "seed": seed,
        "verbose": verbose,
        "max_memory": max_memory,
        "report_downloads": report_downloads,
    }
    conf = _thread_config()
    for key, value in new.items():
        if value is not None:
            conf[key] = _validate(key, value)
    if verbose is not None:
        from brainalign._logging import set_log_level

        set_log_level(conf["verbose"])


_UNSET = object()


@contextlib.contextmanager
def config_context(
    *,
    device: Any = _UNSET,
    dtype: Any = _UNSET,
    seed: Any = _UNSET,
    verbose: Any = _UNSET,
    max_memory: Any = _UNSET,
    report_downloads: Any = _UNSET,
) -> Iterator[dict[str, Any]]:
    """Change the configuration inside a ``with`` block, restoring it afterwards.

    Parameters
    ----------
    device, dtype, seed, verbose, max_memory, report_downloads : optional
        As in :func:`set_config`. Here ``seed=None`` resets the seed to unset.

    Yields
    ------
    config : dict
        The configuration in force inside the block.

    Examples
    --------
    >>> import brainalign as ba
    >>> with ba.config_context(dtype="float32"):
    ...     ba.get_config()["dtype"]
    'float32'
    """
    conf = _thread_config()
    old = dict(conf)
    given = {
        "device": device,
        "dtype": dtype,
        "seed": seed,
        "verbose": verbose,
        "max_memory": max_memory,
        "report_downloads": report_downloads,
    }
    try:
        for key, value in given.items():
            if value is _UNSET:
                continue
            conf[key] = None if (key == "seed" and value is None) else _validate(key, value)
        if verbose is not _UNSET:
            from brainalign._logging import set_log_level

            set_log_level(conf["verbose"])
        yield dict(conf)
    finally:
        conf.clear()
        conf.update(old)
        if verbose is not _UNSET:
            from brainalign._logging import set_log_level

            set_log_level(old["verbose"])
