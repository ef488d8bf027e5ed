"""Write a run's outputs: results.nc and report.html, of one run id, put in place together.

The report shell knows no analysis: it adds each analysis's own section (through the
Analysis interface) with the notes of its computation, then the Data section (each brain
source describes itself) and the provenance. results.nc keeps the resolved spec (its
``spec`` attribute, JSON), so that ``brainalign figures`` can redraw the report's figures
from the run's cache without computing (:func:`add_sections`, shared by both).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import xarray as xr

from brainalign._config import get_config
from brainalign._version import __version__
from brainalign.pipeline._analysis import get_analysis
from brainalign.pipeline._context import Context
from brainalign.pipeline._provenance import imported_package_versions


def results_tree(spec: dict[str, Any], nodes: dict[str, xr.Dataset]) -> xr.DataTree:
    """Build the results tree from the analyses' nodes (path → Dataset), with the run's attrs."""
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs.update(
        {
            "pipeline": spec["name"],
            "description": spec["description"],
            "seed": spec["seed"],
            "brainalign_version": __version__,
            # the resolved spec: `brainalign figures` redraws the figures from it and the cache
            "spec": json.dumps(spec, default=str),
        }
    )
    return tree


def write_outputs(
    ctx: Context,
    tree: xr.DataTree,
    sections: list[tuple[str, dict[str, xr.Dataset], Any]],
    out: Path,
    timings: dict[str, float],
    figures: Path | None = None,
) -> tuple[Path, Path, list[Path]]:
    """Write results.nc and report.html into ``out``, replaced together.

    Both carry one run id and are written to temporary files first (unique per writer), so
    a run killed on the way never leaves one beside the other's predecessor. With
    ``figures``, each report figure is also written there as SVG, PDF and 300-dpi PNG.

    Returns
    -------
    results, report : pathlib.Path
    figure_files : list of pathlib.Path
        The figure files written (empty without ``figures``).
    """
    from brainalign.data import save

    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    tree.attrs["run_id"] = run_id
    check_free_space(out, tree, "results.nc")  # fail before the write, sizes named
    results_tmp = save(tree, out / f".results.nc.{run_id}.tmp")
    try:
        report, report_tmp = _write_report(ctx, sections, out, timings, run_id)
    except BaseException:
        results_tmp.unlink(missing_ok=True)
        raise
    results_path, report_path = out / "results.nc", out / "report.html"
    os.replace(results_tmp, results_path)
    os.replace(report_tmp, report_path)
    files = report.save_figures(figures) if figures is not None else []
    return results_path, report_path, files


def add_sections(
    report: Any, ctx: Context, sections: list[tuple[str, dict[str, xr.Dataset], Any]]
) -> None:
    """Add each analysis's report section, with the notes of its computation."""
    for name, nodes, state in sections:
        analysis = get_analysis(name)
        analysis.report(report, ctx, nodes, state)
        if ctx.notes.get(name):
            report.add_text(
                "Notes from the computation:\n\n" + "\n\n".join(ctx.notes[name]),
                section=analysis.section or name,
            )


def _write_report(
    ctx: Context,
    sections: list[tuple[str, dict[str, xr.Dataset], Any]],
    out: Path,
    timings: dict[str, float],
    run_id: str,
) -> tuple[Any, Path]:
    """Write the report to a temporary file in ``out`` (the caller puts it in place).

    Returns the :class:`~brainalign.report.Report` (its figures) and the temporary file.
    """
    from brainalign.report import Report

    spec = ctx.spec
    rep = spec["report"]
    report = Report(
        rep["title"] or f"brainalign: {spec['name']}",
        subtitle=rep["subtitle"] or spec["description"].strip(),
        # SVG and PDF downloads beside each figure unless the spec (report.downloads) or the
        # config (report_downloads) turns them off: they double the demo's report (176 ->
        # 393 kB) and its drawing time; `brainalign run --figures DIR` writes the same files
        downloads=bool(
            get_config()["report_downloads"] if rep.get("downloads") is None else rep["downloads"]
        ),
    )
    add_sections(report, ctx, sections)
    data_lines, hashes = [], {}
    for bname, src in spec["brain"].items():
        brain = ctx.brain(bname)
        data_lines.append(ctx.source(bname).data_text(bname, src, brain["attrs"]))
        digest = brain["attrs"].get("sha256_bold", brain["attrs"].get("sha256_file"))
        if digest is not None:
            hashes[f"sha256 {bname}"] = digest
    report.add_text("\n\n".join(data_lines), section="Data")
    models = {}
    for mname, m in spec["models"].items():
        models.update(ctx.model_kind(mname).provenance(mname, m))
    cache = ctx.cache
    report.add_provenance(
        pipeline=spec["name"],
        seed=spec["seed"],
        timings={k: round(v, 3) for k, v in timings.items()},
        cache=f"{cache.folder}: loaded {dict(cache.hits)}, computed {dict(cache.misses)}",
        **hashes,
        **models,
        packages=imported_package_versions(),
        **{"run id": f"{run_id} (the run_id attribute of the results.nc written with it)"},
    )
    return report, report.save(out / f".report.html.{run_id}.tmp")


def check_free_space(folder: Path, tree: xr.DataTree, name: str) -> None:
    """Raise an ENOSPC OSError naming the sizes when ``folder`` lacks room for ``tree``.

    The need is the in-memory size of the values (NetCDF is written uncompressed) plus
    1 MiB for the headers and the report; only a clear shortfall fails.
    """
    datasets = [node.to_dataset(inherit=False) for node in tree.subtree]
    need = 2**20 + sum(var.nbytes for ds in datasets for var in ds.variables.values())
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"not enough free space to write {name}: it needs about {_size(need)}, "
            f"the disk has {_size(free)} free",
            str(folder),
        )


def _size(nbytes: float) -> str:
    """Return a byte count as text (``"12.3 MB"``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError  # pragma: no cover
