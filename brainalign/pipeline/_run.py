"""Plan and run a pipeline spec: spec → plan → execute → results.nc + report.html.

Everything specific to an analysis, a brain source or a model lives in its plug-in (see
``_analysis``); this module only strings the steps together. :func:`redraw_figures` draws a
saved run's figures again from its results.nc (the resolved spec) and its cache.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from brainalign._config import config_context
from brainalign._logging import logger
from brainalign.pipeline._analysis import Unit, analyses, get_analysis
from brainalign.pipeline._cache import Cache
from brainalign.pipeline._context import Context
from brainalign.pipeline._executor import execute, unit_status
from brainalign.pipeline._spec import load_spec
from brainalign.pipeline._write import add_sections, results_tree, write_outputs


@dataclass
class RunResult:
    """What a pipeline run produced.

    Parameters
    ----------
    out : pathlib.Path
        The output folder.
    report : pathlib.Path or None
        The HTML report (None for a dry run).
    results : pathlib.Path or None
        The NetCDF results file (None for a dry run).
    units : list of Unit
        The planned units.
    tree : xarray.DataTree, optional
        The results, also in memory (None for a dry run).
    timings : dict
        Seconds per step.
    status : dict
        Unit key → for a dry run ``"cached"`` (the run would load it) or ``"to run"``; for a
        run ``"cached"`` (loaded) or ``"computed"``.
    cache_hits, cache_misses : dict
        Entries loaded from / computed into ``out/.cache``, by kind (brain, model, and each
        analysis's own kind).
    figures : list of pathlib.Path
        The figure files written with ``figures=`` (SVG, PDF and PNG of each report figure).
    """

    out: Path
    report: Path | None
    results: Path | None
    units: list[Unit]
    tree: xr.DataTree | None = None
    timings: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)
    cache_misses: dict[str, int] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def plan(spec: Any) -> list[Unit]:
    """Return the units of a spec (each analysis's units), validating it first.

    Parameters
    ----------
    spec : str or path-like or mapping
        A spec file or parsed spec.

    Returns
    -------
    units : list of Unit
        In execution order: by analysis (in the spec's order), then brain, then model.
    """
    spec = load_spec(spec)
    return [u for name in spec["analyses"] for u in get_analysis(name).units(spec)]


def default_out(name: str) -> Path:
    """Return the output folder of a run given no ``out``: ``brainalign-out/<name>``.

    Parameters
    ----------
    name : str
        The spec's ``name``.

    Returns
    -------
    out : pathlib.Path
        The folder.
    """
    return Path("brainalign-out") / name


def run(
    spec: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    dry_run: bool = False,
    device: str | None = None,
    client: Any = None,
    figures: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run a pipeline spec and write ``report.html`` and ``results.nc`` into ``out``.

    The spec is validated before any computation (unknown keys fail with the closest valid
    key and the line). Outputs are written atomically.

    Parameters
    ----------
    spec : str or path-like or mapping
        A YAML spec file (see ``pipelines/``) or a parsed spec.
    out : str or path-like, optional
        The output folder; default ``./brainalign-out/<spec name>``.
    dry_run : bool
        Validate and plan only; nothing is computed or written. ``status`` says which
        units a run would load from the cache.
    device : str, optional
        Device override (else the spec's, else the configured one).
    client : distributed.Client, optional
        Run the units as tasks on this Dask cluster (see :func:`brainalign.pipeline.connect`);
        results are identical to an in-process run. Default: in process.
    figures : str or path-like, optional
        Also write each report figure into this folder as SVG, PDF and 300-dpi PNG, named
        ``<section>_<title>`` (see :meth:`brainalign.Report.save_figures`).

    Returns
    -------
    result : RunResult
        Paths, plan, results tree and timings.

    Examples
    --------
    >>> import brainalign as ba
    >>> res = ba.run("pipelines/demo.yaml", dry_run=True)  # doctest: +SKIP
    >>> [u.key for u in res.units]  # doctest: +SKIP
    ['rsa/haxby_vt/category_structure', 'rsa/haxby_vt/random_network']
    """
    spec = load_spec(spec)
    units = plan(spec)
    out = Path(out) if out is not None else default_out(spec["name"])
    cache = Cache(out / ".cache")
    if dry_run:
        status = unit_status(Context(spec, cache, dry_run=True), units)
        return RunResult(out=out, report=None, results=None, units=units, status=status)
    device = device or spec["device"]
    cache.remove_stale()
    Cache(out).remove_stale()  # results/report temporaries of a run killed while writing
    close = None
    executor = spec["executor"] or {}
    if client is None and executor.get("kind", "inprocess") != "inprocess":
        from brainalign.pipeline._dask import connect

        client, close = connect(executor=executor)
    try:
        with config_context(seed=spec["seed"], **({"device": device} if device else {})):
            return _run(spec, units, out, cache, device, client, figures)
    finally:
        if close is not None:
            close()


def _run(
    spec: dict[str, Any],
    units: list[Unit],
    out: Path,
    cache: Cache,
    device: Any,
    client: Any,
    figures: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Execute the plan (on Dask first when a client is given), assemble and write."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    cluster_status: dict[str, str] = {}
    if client is not None:  # every unit as a task; entries land in the cache
        from brainalign.pipeline._dask import run_units

        out.mkdir(parents=True, exist_ok=True)
        cluster_status = run_units(client, spec, units, out, device=device)
        timings["cluster"] = time.perf_counter() - t_start
    ctx = Context(spec, cache)
    t0 = time.perf_counter()
    for bname in spec["brain"]:
        ctx.brain(bname)
    timings["load_and_brain_rdms"] = time.perf_counter() - t0
    executed = execute(ctx, units)
    timings.update(executed.timings)
    t0 = time.perf_counter()
    sections, nodes = _assemble(ctx, executed.results)
    for name, _, _ in sections:
        for note in ctx.notes.get(name, []):
            logger.warning("%s: %s", name, note)
    timings["assemble"] = time.perf_counter() - t0
    timings.update(ctx.timings)
    tree = results_tree(spec, nodes)
    timings["total"] = time.perf_counter() - t_start
    t0 = time.perf_counter()
    results_path, report_path, figure_files = write_outputs(
        ctx, tree, sections, out, timings, None if figures is None else Path(figures)
    )
    timings["write"] = time.perf_counter() - t0
    return RunResult(
        out=out,
        report=report_path,
        results=results_path,
        units=units,
        tree=tree,
        timings=timings,
        status={**executed.status, **cluster_status},  # as the workers found them
        cache_hits=dict(cache.hits),
        cache_misses=dict(cache.misses),
        figures=figure_files,
    )


def _assemble(
    ctx: Context, results: dict[str, dict[Unit, Any]]
) -> tuple[list[tuple[str, dict[str, xr.Dataset], Any]], dict[str, xr.Dataset]]:
    """Assemble each analysis's units (registry order): its sections and all nodes."""
    sections, nodes = [], {}
    for name in [a for a in analyses() if a in results]:  # registry order
        got, state = get_analysis(name).assemble(ctx, results[name])
        nodes.update(got)
        sections.append((name, got, state))
    return sections, nodes


class _LoadOnlyCache(Cache):
    """A run's cache that refuses to store: whatever is not cached would be computed."""

    def put(self, kind: str, key: str, obj: Any) -> None:
        """Refuse: redrawing figures computes nothing."""
        raise RuntimeError(
            f"redrawing the figures would compute a {kind!r} entry that {str(self.folder)!r} "
            "lacks; run the pipeline again (`brainalign run SPEC --out OUT --figures DIR` "
            "loads what is cached and writes the figures)."
        )


def redraw_figures(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    formats: tuple[str, ...] = ("svg", "pdf", "png"),
    dpi: int = 300,
    device: str | None = None,
) -> list[Path]:
    """Draw a saved run's report figures again, as files, without computing its analyses.

    The run's ``results.nc`` keeps the resolved spec; every unit of work, brain RDM and
    model RDM is loaded from the run's cache (``.cache`` beside ``results.nc``, which
    ``brainalign run`` keeps), never computed: each analysis assembles its cached units
    as in the run (the same seeded summaries) and draws its report section. Change the
    figure code, then redraw in seconds.

    Parameters
    ----------
    results : str or path-like
        A run's ``results.nc``.
    out : str or path-like
        The folder of the figure files (created when missing), named as by
        ``brainalign run --figures`` (``<section>_<title>.<format>``).
    formats : tuple of {"svg", "pdf", "png"}
        The formats written.
    dpi : int
        Resolution of the PNG files.
    device : str, optional
        Device override (else the spec's, else the configured one).

    Returns
    -------
    paths : list of pathlib.Path
        The files written.

    Raises
    ------
    FileNotFoundError
        When ``results`` does not exist.
    ValueError
        When ``results`` holds no spec (not written by ``brainalign run`` of this version),
        or the run's cache lacks entries (the message lists them, with what to run).
    """
    from brainalign.data import load
    from brainalign.report import Report

    results = Path(results)
    if not results.is_file():
        raise FileNotFoundError(f"results file not found: {str(results)!r}.")
    attrs = load(results).attrs
    if "spec" not in attrs:
        raise ValueError(
            f"{str(results)!r} holds no pipeline spec (its 'spec' attribute), so its figures "
            "cannot be redrawn: it was not written by `brainalign run` of this version; run "
            "the pipeline again, with --figures DIR to write the figures."
        )
    spec = load_spec(json.loads(attrs["spec"]))
    units = plan(spec)
    folder = results.parent / ".cache"
    status = unit_status(Context(spec, Cache(folder), dry_run=True), units)
    missing = [key for key, state in status.items() if state != "cached"]
    if missing:
        raise ValueError(
            f"the run's cache {str(folder)!r} lacks {len(missing)} of {len(units)} units "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}), so the figures "
            "cannot be redrawn without computing; run the pipeline again with --figures DIR "
            "(it loads what is cached)."
        )
    device = device or spec["device"]
    with config_context(seed=spec["seed"], **({"device": device} if device else {})):
        ctx = Context(spec, _LoadOnlyCache(folder))
        executed = execute(ctx, units)
        sections, _ = _assemble(ctx, executed.results)
        report = Report(spec["report"]["title"] or f"brainalign: {spec['name']}", downloads=False)
        report._embed = False  # only the figures: no page to draw
        add_sections(report, ctx, sections)
    return report.save_figures(out, formats=formats, dpi=dpi)
