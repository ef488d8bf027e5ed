"""Execute a plan: each unit's result from the cache or computed, through the Analysis interface.

Nothing here names an analysis: a unit's key, computation and cache kind come from its
registered :class:`~brainalign.pipeline._analysis.Analysis`. The same :func:`run_unit` runs
in process and in a Dask task (``_dask``), so both give identical results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainalign._logging import progress
from brainalign.pipeline._analysis import Unit, get_analysis
from brainalign.pipeline._context import Context, capture_warnings

#: The attribute of a cache entry that keeps the warnings of its computation.
WARNINGS_ATTR = "warnings"


@dataclass
class Executed:
    """What executing a plan gave.

    Attributes
    ----------
    results : dict
        Analysis name → {unit: its cache entry}, in plan order.
    status : dict
        Unit key → ``"cached"`` (loaded) or ``"computed"``.
    timings : dict
        Seconds per analysis.
    """

    results: dict[str, dict[Unit, Any]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def unit_key(ctx: Context, unit: Unit) -> tuple[str, str | None]:
    """Return a unit's cache kind and key (None when a dry run cannot tell)."""
    analysis = get_analysis(unit.analysis)
    return analysis.cache_kind, analysis.key(ctx, unit)


def unit_status(ctx: Context, units: list[Unit]) -> dict[str, str]:
    """Say ``"cached"`` or ``"to run"`` for each unit, computing nothing.

    ``"cached"`` means exactly that a run would load the unit's result: the status comes
    from the same keys the run uses (:func:`unit_key`) and the same check of the entry.
    """
    status = {}
    for unit in units:
        kind, key = unit_key(ctx, unit)
        status[unit.key] = "cached" if key is not None and ctx.cache.has(kind, key) else "to run"
    return status


def run_unit(ctx: Context, unit: Unit) -> tuple[Any, list[str], bool]:
    """Load a unit's result from the cache, or compute and store it.

    Returns
    -------
    entry : xarray.Dataset or DataTree
        The unit's result.
    notes : list of str
        The warnings of its computation (stored with the entry).
    loaded : bool
        Whether it came from the cache.
    """
    analysis = get_analysis(unit.analysis)
    key = analysis.key(ctx, unit)
    entry = ctx.cache.get(analysis.cache_kind, key)
    if entry is not None:
        notes = [str(w) for w in np.atleast_1d(entry.attrs.get(WARNINGS_ATTR, [])) if str(w)]
        return entry, notes, True
    entry, notes = capture_warnings(lambda: analysis.compute(ctx, unit))
    entry.attrs[WARNINGS_ATTR] = notes
    ctx.cache.put(analysis.cache_kind, key, entry)
    return entry, notes, False


def execute(ctx: Context, units: list[Unit]) -> Executed:
    """Run every unit in process, analysis by analysis (one progress bar each).

    Parameters
    ----------
    ctx : Context
        The run's context.
    units : list of Unit
        The plan.

    Returns
    -------
    executed : Executed
    """
    out = Executed()
    for name in dict.fromkeys(u.analysis for u in units):
        analysis = get_analysis(name)
        todo = [u for u in units if u.analysis == name]
        t0 = time.perf_counter()
        results = {}
        for unit in progress(todo, analysis.progress or f"{name} units"):
            entry, notes, loaded = run_unit(ctx, unit)
            results[unit] = entry
            out.status[unit.key] = "cached" if loaded else "computed"
            ctx.add_notes(name, notes)  # kept in the entry: a loaded unit has them too
        out.results[name] = results
        out.timings[name] = time.perf_counter() - t0
    return out
