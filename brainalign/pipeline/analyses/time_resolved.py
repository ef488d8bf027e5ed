"""Time-resolved RSA of M/EEG sources: one model-brain similarity per time point.

One unit per M/EEG source and model: the RDM at every time point of the stimulus-mean
channel patterns against each of the model's entries (:func:`brainalign.rsa.time_resolved`,
one call for all entries: the same stimulus permutations), with a stimulus-permutation band
and p-values corrected over time points by the maximum statistic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import logger
from brainalign._mpltext import mpl_text
from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import by_brain
from brainalign.pipeline.sources import simulated_window

#: What the time course results hold (``null`` stays out: it is large and can be recomputed
#: from the seed).
_TIME_COURSE_VARS = ("similarity", "p_value", "p_value_corrected", "band_low", "band_high")
_DESCRIPTION = (
    "Time-resolved RSA: at each time point, the similarity of the RDM of the "
    "stimulus-mean channel patterns with each model entry's RDM; band_low/band_high: "
    "quantiles of a stimulus-permutation null; p_value_corrected: max statistic "
    "over time points (per model entry, not across entries)."
)


@register_analysis
class TimeResolved(Analysis):
    """RSA time courses of M/EEG sources."""

    name = "time_resolved"
    cache_kind = "time_course"
    section = "Time course"
    progress = "time courses"
    schema = {
        "metric": (str, False, "correlation"),  # the data RDM per time point
        "method": (str, False, "spearman"),
        "n_permutations": (int, False, 1000),  # stimulus-label permutations (max-stat)
        "alpha": ((int, float), False, 0.05),  # band width and significance level
    }
    limits = {"n_permutations": (0, 10_000_000, "stimulus-label permutations")}

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Known metric and method, alpha in (0, 1), M/EEG sources only."""
        from brainalign.pipeline._analysis import get_source
        from brainalign.pipeline.sources import MEEG_SOURCES
        from brainalign.rsa import SEARCHLIGHT_METHODS, SEARCHLIGHT_METRICS

        where = ("analyses", "time_resolved")
        c.option((*where, "metric"), params["metric"], SEARCHLIGHT_METRICS)
        c.option((*where, "method"), params["method"], SEARCHLIGHT_METHODS)
        if params["n_permutations"] < 0:
            c.fail((*where, "n_permutations"), f"must be >= 0, got {params['n_permutations']}.")
        if not 0 < params["alpha"] < 1:
            c.fail((*where, "alpha"), f"must be in (0, 1), got {params['alpha']}.")
        for bname, src in spec["brain"].items():
            if get_source(src["dataset"]).data != "meeg":
                c.fail(
                    where,
                    f"needs M/EEG brain sources (dataset {' or '.join(MEEG_SOURCES)}), but "
                    f"brain.{bname} is {src['dataset']!r}, which has no time dim. Drop "
                    "time_resolved or move that source to another spec.",
                )

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the source's data, the model RDMs, the settings and the seed."""
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        return content_key(
            {
                "data": ctx.data_key(unit.brain),
                "model": model_key,
                "time_resolved": ctx.params("time_resolved"),
                "seed": ctx.seed,
            }
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """One :func:`brainalign.rsa.time_resolved` call for all entries of the model."""
        from brainalign.rsa import time_resolved

        params = ctx.params("time_resolved")
        rdms = ctx.model_rdms(unit.model, unit.brain)
        res = time_resolved(
            ctx.data(unit.brain),
            rdms,
            metric=params["metric"],
            method=params["method"],
            n_permutations=params["n_permutations"],
            alpha=float(params["alpha"]),
            seed=ctx.seed,
        )
        keep = [v for v in _TIME_COURSE_VARS if v in res]
        out = {}
        for entry in rdms:
            ds = res[keep].sel(model=entry).drop_vars("model")
            ds.attrs.update(model=unit.model, entry=entry)
            out[entry] = ds
        return entries_to_tree(out, {"unit": f"time_resolved/{unit.key}"})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per M/EEG source: the time courses stacked over model entries."""
        per_unit = {u: tree_to_entries(t) for u, t in results.items()}
        for unit, got in per_unit.items():
            for entry, ds in got.items():
                k = int(ds.similarity.argmax("time"))
                logger.info(
                    "%s/%s: peak %.3f at %.3f s", unit.key, entry,
                    float(ds.similarity[k]), float(ds.time[k]),
                )  # fmt: skip
        courses = {}
        for bname, per_entry in by_brain(per_unit).items():
            names = list(per_entry)
            ds = xr.concat([per_entry[n] for n in names], dim="model").assign_coords(model=names)
            first = per_entry[names[0]].attrs
            ds.attrs = {k: v for k, v in first.items() if k not in ("model", "entry")}
            ds.attrs["description"] = _DESCRIPTION
            courses[bname] = ds
        return {f"time_course/{b}": ds for b, ds in courses.items()}, courses

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """One figure and one peak table per M/EEG source."""
        _section(report, ctx, state)


def _peak_rows(bname: str, ds: xr.Dataset, alpha: float, method: str) -> list[dict[str, Any]]:
    """One row per model entry: peak time and value, corrected p there, significant span."""
    rows = []
    t = np.asarray(ds.time.values, float)
    for m in ds.model.values:
        sim = np.asarray(ds.similarity.sel(model=m).values, float)
        k = int(np.nanargmax(sim))
        row = {"brain": bname, "model": str(m), "peak time (s)": float(t[k]),
               f"peak {method} r": float(sim[k])}  # fmt: skip
        if "p_value_corrected" in ds:
            pc = np.asarray(ds.p_value_corrected.sel(model=m).values, float)
            sig = t[pc < alpha]
            row["p corrected (peak)"] = float(pc[k])
            row["p uncorrected (peak)"] = float(ds.p_value.sel(model=m).values[k])
            row[f"time points p_corr < {alpha:g}"] = (
                f"{sig.size}: {sig.min():.3f} to {sig.max():.3f} s" if sig.size else "0"
            )
        rows.append(row)
    return rows


def _section(report: Any, ctx: Any, courses: dict[str, xr.Dataset]) -> None:
    """Add the "Time course" section: one figure and one peak table per M/EEG source."""
    from brainalign.viz import plot_time_courses

    spec = ctx.spec
    params = ctx.params("time_resolved")
    alpha = float(params["alpha"])
    method = params["method"]
    n_perm = params["n_permutations"]
    section = "Time course"
    for bname, ds in courses.items():
        src = spec["brain"][bname]
        sim_window = simulated_window(src)
        fig = plot_time_courses(
            ds,
            alpha=alpha,
            ylabel=f"{method} r with model RDM",
            window=sim_window,
            window_label="simulated response",
        )
        fig.suptitle(mpl_text(f"{bname}: model–brain similarity over time"), fontsize=10)
        caption = (
            f"One panel per model entry, all on the same y axis: the {method} correlation, "
            f"at each time point, between the {params['metric']} RDM of the stimulus-mean "
            "channel patterns and that entry's RDM. "
        )
        if n_perm:
            caption += (
                f"Shaded band: the central {1 - alpha:.0%} of that entry's own null from "
                f"{n_perm} random permutations of the stimulus labels (stimuli fixed). Dots "
                f"under the curves: time points with p < {alpha:g} corrected over time by the "
                "maximum statistic (per model entry; not corrected across entries); the dots "
                "come from this one test. "
            )
        caption += "Dotted line: stimulus onset."
        if sim_window is not None:
            caption += (
                f" Grey: the {sim_window[0]:g}-{sim_window[1]:g} s window where this "
                "SEMI-SIMULATED dataset holds its simulated evoked responses (the background "
                "is real EEG; the events and responses are simulated)."
            )
        report.add_figure(fig, f"Time course ({bname})", section=section, caption=caption)
        report.add_table(
            _peak_rows(bname, ds, alpha, method),
            f"Peak similarity per model entry ({bname})",
            section=section,
            caption="Peak: the time point of highest similarity. p corrected: max-statistic "
            "permutation p-value at the peak (one-sided, corrected over time points, not "
            "across entries); p uncorrected: that time point's own permutation p. The last "
            f"column counts the time points with corrected p < {alpha:g} and gives their "
            "first and last time. The full time courses are in results.nc (time_course/"
            + bname
            + ").",
        )
