"""Write a run's outputs: results.nc and report.html, of one run id, put in place together.

The report shell knows no analysis: it adds each analysis's own section (through the
Analysis interface) with the notes of its computation, then the Data section (each brain
source describes itself) and the provenance.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import xarray as xr

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
        }
    )
    return tree


def write_outputs(
    ctx: Context,
    tree: xr.DataTree,
    sections: list[tuple[str, dict[str, xr.Dataset], Any]],
    out: Path,
    timings: dict[str, float],
) -> tuple[Path, Path]:
    """Write results.nc and report.html into ``out``, replaced together.

    Both carry one run id and are written to temporary files first (unique per writer), so
    a run killed on the way never leaves one beside the other's predecessor.

    Returns
    -------
    results, report : pathlib.Path
    """
    from brainalign.data import save

    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    tree.attrs["run_id"] = run_id
    check_free_space(out, tree, "results.nc")  # fail before the write, sizes named
    results_tmp = save(tree, out / f".results.nc.{run_id}.tmp")
    try:
        report_tmp = _write_report(ctx, sections, out, timings, run_id)
    except BaseException:
        results_tmp.unlink(missing_ok=True)
        raise
    results_path, report_path = out / "results.nc", out / "report.html"
    os.replace(results_tmp, results_path)
    os.replace(report_tmp, report_path)
    return results_path, report_path


def _write_report(
    ctx: Context,
    sections: list[tuple[str, dict[str, xr.Dataset], Any]],
    out: Path,
    timings: dict[str, float],
    run_id: str,
) -> Path:
    """Write the report to a temporary file in ``out`` (the caller puts it in place)."""
    from brainalign.report import Report

    spec = ctx.spec
    rep = spec["report"]
    report = Report(
        rep["title"] or f"brainalign: {spec['name']}",
        subtitle=rep["subtitle"] or spec["description"].strip(),
    )
    for name, nodes, state in sections:
        analysis = get_analysis(name)
        analysis.report(report, ctx, nodes, state)
        if ctx.notes.get(name):
            report.add_text(
                "Notes from the computation:\n\n" + "\n\n".join(ctx.notes[name]),
                section=analysis.section or name,
            )
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
    return report.save(out / f".report.html.{run_id}.tmp")


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
