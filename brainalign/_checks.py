"""Shared validation helpers and error types.

Every error message follows one form: the parameter (or array) name, the allowed values or
range, the value received, and a "Did you mean ...?" hint where a close option exists.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class SchemaError(ValueError):
    """An array does not follow the labeled-tensor schema (dims, coords, values)."""


class StimulusAlignmentError(ValueError):
    """Arrays do not hold the same stimuli; the message lists missing and extra ids."""


def _fmt(value: Any) -> str:
    if isinstance(value, np.generic):  # np.str_('a') → 'a'
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _fmt_list(values: Iterable[Any], limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(_fmt(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown


def did_you_mean(value: Any, options: Iterable[Any]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or an empty string.

    Parameters
    ----------
    value : object
        The value received.
    options : iterable
        The valid values.

    Returns
    -------
    hint : str
        A sentence starting with a space, or ``""`` when nothing is close.
    """
    if not isinstance(value, str):
        return ""
    strings = [str(o) for o in options]
    lowered = {s.lower(): s for s in strings}
    if value.lower() in lowered:
        return f" Did you mean {lowered[value.lower()]!r}?"
    close = difflib.get_close_matches(value, strings, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_option(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Check that ``value`` is one of ``allowed``.

    Parameters
    ----------
    name : str
        The parameter's name, used in the message.
    value : object
        The value received.
    allowed : sequence
        The valid values.

    Returns
    -------
    value : object
        ``value``, unchanged.

    Raises
    ------
    ValueError
        Naming the parameter, the allowed values and the value, with a "Did you mean".
    """
    try:
        ok = value in allowed
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        raise ValueError(
            f"Invalid value for the {name!r} parameter. Allowed values are "
            f"{_fmt_list(allowed, limit=50)}; got {_fmt(value)}.{did_you_mean(value, allowed)}"
        )
    return value


def check_type(name: str, value: Any, types: tuple[type, ...], type_name: str) -> Any:
    """Check ``isinstance(value, types)`` (bools are rejected where ints are wanted).

    Parameters
    ----------
    name : str
        The parameter's name.
    value : object
        The value received.
    types : tuple of type
        Accepted types.
    type_name : str
        Human description of the accepted types, e.g. ``"an int"``.

    Returns
    -------
    value : object
        ``value``, unchanged.

    Raises
    ------
    TypeError
        Naming the parameter, the expected type and the type received.
    """
    bad_bool = isinstance(value, bool) and bool not in types and (int in types)
    if bad_bool or not isinstance(value, types):
        raise TypeError(f"{name} must be {type_name}, got {type(value).__name__} {_fmt(value)}.")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
    integer: bool = False,
) -> Any:
    """Check that ``value`` is a real number (or integer) within ``[low, high]``.

    Parameters
    ----------
    name : str
        The parameter's name.
    value : object
        The value received.
    low, high : float, optional
        Bounds; ``None`` means unbounded.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    integer : bool
        Require an integer.

    Returns
    -------
    value : int or float
        ``value``, unchanged.

    Raises
    ------
    TypeError
        When ``value`` is not a number.
    ValueError
        When ``value`` lies outside the interval; the message states the interval.
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(
            f"{name} must be {'an integer' if integer else 'a real number'}, "
            f"got {type(value).__name__} {_fmt(value)}."
        )
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    lo_ok = low is None or (value >= low if closed in ("both", "left") else value > low)
    hi_ok = high is None or (value <= high if closed in ("both", "right") else value < high)
    if not (lo_ok and hi_ok):
        left = "-inf" if low is None else low
        right = "inf" if high is None else high
        lb = "[" if closed in ("both", "left") and low is not None else "("
        rb = "]" if closed in ("both", "right") and high is not None else ")"
        raise ValueError(f"{name} must be in the range {lb}{left}, {right}{rb}, got {value}.")
    return value


def check_finite(values: np.ndarray, name: str, *, labels: Sequence[Any] | None = None) -> None:
    """Raise when ``values`` holds NaN or infinite entries, with counts and where.

    Parameters
    ----------
    values : ndarray
        The array to check.
    name : str
        The array's name, used in the message.
    labels : sequence, optional
        Labels of the first axis (for example stimulus ids) to name the affected rows.

    Raises
    ------
    ValueError
        Stating how many entries are NaN / infinite and which rows hold them.
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.integer):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):  # one pass, no mask: NaN and inf propagate to the sum
            return  # (a sum that overflows is checked entry by entry below)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    n_nan = int(np.isnan(values).sum())
    n_inf = int(bad.sum()) - n_nan
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} infinite")
    where = ""
    if values.ndim >= 1:
        rows = np.flatnonzero(bad.reshape(values.shape[0], -1).any(axis=1))
        names = [labels[i] for i in rows] if labels is not None else rows.tolist()
        where = f" in {len(rows)} of {values.shape[0]} rows ({_fmt_list(names)})"
    raise ValueError(
        f"{name} holds {' and '.join(parts)} value(s) out of {values.size}{where}. "
        "Remove or impute them first (brainalign never fills missing data silently)."
    )


def check_not_empty(values: np.ndarray, name: str) -> None:
    """Raise when ``values`` has no entries.

    Parameters
    ----------
    values : ndarray
        The array to check.
    name : str
        The array's name.

    Raises
    ------
    ValueError
        Naming the array and its shape.
    """
    values = np.asarray(values)
    if values.size == 0:
        raise ValueError(f"{name} is empty (shape {values.shape}); it needs at least one value.")


def check_not_constant(
    values: np.ndarray,
    name: str,
    *,
    axis: int = -1,
    labels: Sequence[Any] | None = None,
    what: str = "pattern",
) -> None:
    """Raise when a pattern along ``axis`` is constant (zero variance).

    Parameters
    ----------
    values : ndarray, shape (n, ...)
        The array; one pattern per row, features along ``axis``.
    name : str
        The array's name.
    axis : int
        The feature axis over which variance is taken.
    labels : sequence, optional
        Labels of the first axis, to name the constant rows.
    what : str
        What a row is called in the message.

    Raises
    ------
    ValueError
        Listing the constant rows.
    """
    values = np.asarray(values, dtype=float)
    spread = np.ptp(values, axis=axis)
    const = spread == 0
    if const.ndim > 1:
        const = const.reshape(const.shape[0], -1).any(axis=1)
    if np.any(const):
        rows = np.flatnonzero(np.atleast_1d(const))
        names = [labels[i] for i in rows] if labels is not None else rows.tolist()
        raise ValueError(
            f"{name} has {len(rows)} constant {what}(s) ({_fmt_list(names)}): their "
            "variance is zero, so the result is undefined. Drop them or pick another metric."
        )


def check_min_stimuli(ids: Sequence[Any], what: str, minimum: int = 3) -> None:
    """Raise when fewer than ``minimum`` stimuli are given, naming them.

    Parameters
    ----------
    ids : sequence
        The stimulus ids.
    what : str
        What needs them, e.g. ``"comparing RDMs"``.
    minimum : int
        The fewest stimuli accepted.

    Raises
    ------
    ValueError
        Saying how many dissimilarities an RDM of that many stimuli has, how many stimuli
        are needed and which were received.
    """
    n = len(ids)
    if n >= minimum:
        return
    pairs = n * (n - 1) // 2
    raise ValueError(
        f"An RDM of {n} stimul{'us' if n == 1 else 'i'} has {pairs} "
        f"dissimilarit{'y' if pairs == 1 else 'ies'}; "
        f"{what} needs at least {minimum} stimuli ({minimum * (minimum - 1) // 2} pairs); "
        f"got {n}: [{_fmt_list(ids)}]."
    )


def check_dims(
    da: Any,
    name: str,
    *,
    required: Sequence[str] = (),
    one_of: Sequence[str] = (),
    ndim: int | None = None,
) -> None:
    """Check a DataArray's dimension names.

    Parameters
    ----------
    da : xarray.DataArray
        The array.
    name : str
        Its name in the message.
    required : sequence of str
        Dims that must all be present.
    one_of : sequence of str
        Exactly one of these dims must be present.
    ndim : int, optional
        Required number of dims.

    Raises
    ------
    SchemaError
        Naming the array, the expected dims and the dims it has.
    """
    dims = tuple(da.dims)
    missing = [d for d in required if d not in dims]
    if missing:
        raise SchemaError(
            f"{name} must have dims {tuple(required)}; it has {dims}, missing {tuple(missing)}."
            + did_you_mean(missing[0], dims)
        )
    if one_of and sum(d in dims for d in one_of) != 1:
        raise SchemaError(
            f"{name} must have exactly one of the dims {tuple(one_of)}; it has {dims}."
        )
    if ndim is not None and len(dims) != ndim:
        raise SchemaError(f"{name} must have {ndim} dims, got {len(dims)}: {dims}.")
