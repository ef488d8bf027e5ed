"""Helpers that several analyses share (no analysis imports another)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

FWE_ALPHA = 0.05
"""The family-wise error level of the corrected (max-statistic) maps in reports."""


def stack_rdms(rdms: dict[str, xr.DataArray]) -> xr.DataArray:
    """RDMs stacked over a ``model`` dim named by their keys (stimulus coords only).

    The RDMs are aligned by stimulus id (the first one's order) before stacking; different
    id sets raise, naming the ids (never a NaN-filled union).

    Parameters
    ----------
    rdms : dict
        Entry name → RDM.

    Returns
    -------
    stack : xarray.DataArray, dims ("model", "stimulus_a", "stimulus_b")
    """
    from brainalign.data import align_stimuli

    keep = ("stimulus_a", "stimulus_b")
    aligned = align_stimuli(*rdms.values(), join="exact")
    aligned = [r.drop_vars([c for c in r.coords if c not in keep]) for r in aligned]
    return xr.concat(aligned, dim="model", join="exact").assign_coords(model=list(rdms))


def brain_model_rdms(ctx: Any, bname: str) -> dict[str, xr.DataArray]:
    """Every model entry's RDM over brain ``bname``'s stimuli, in the spec's model order."""
    out: dict[str, xr.DataArray] = {}
    for mname in ctx.spec["models"]:
        out.update(ctx.model_rdms(mname, bname))
    return out


def by_brain(results: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """Group units' results (unit → {entry: value}) by brain, entries in unit order."""
    out: dict[str, dict[str, Any]] = {}
    for unit, entries in results.items():
        out.setdefault(unit.brain, {}).update(entries)
    return out


def multi_layer_models(entries: Any) -> dict[str, list[str]]:
    """Group ``model:layer`` entries by model, keeping the models with several layers."""
    layers: dict[str, list[str]] = {}
    for entry in entries:
        if ":" in entry:
            layers.setdefault(entry.split(":", 1)[0], []).append(entry)
    return {model: names for model, names in layers.items() if len(names) >= 2}


def add_voxel_map(
    report: Any,
    values: xr.DataArray,
    bg: dict,
    *,
    name: str,
    kind: str,
    section: str,
    caption: str,
    significant: xr.DataArray | None = None,
    alpha: float | None = None,
) -> None:
    """Slices of a voxel map; for an (approximately) MNI source also a glass brain and surface.

    The figures go into ``section``, titled ``"{kind}: {name}"`` (slices),
    ``"{kind} (glass brain): {name}"`` and ``"{kind} (surface): {name}"``. ``bg`` is what a
    pattern source's ``background()`` returns. With ``significant`` (the voxels passing the
    corrected test at ``alpha``), the slices and the glass brain show the unthresholded map
    above the thresholded one, on one colour scale; the surface shows the unthresholded map.
    """
    from brainalign.viz import plot_brain_map, plot_glass_brain, plot_surface_map

    alpha = FWE_ALPHA if alpha is None else alpha
    pair = {}
    layout = ""
    if significant is not None:
        pair = {"significant": significant, "significant_label": f"p_FWE ≤ {alpha}"}
        layout = (
            f" Top: the unthresholded map; below: the voxels with p_FWE ≤ {alpha} only, on "
            "the same colour scale."
        )
    report.add_figure(
        plot_brain_map(values, bg["like"], bg_img=bg["bg"], title=name, **pair),
        f"{kind}: {name}",
        section=section,
        caption=f"{caption}{layout} On the dataset's mean functional image.",
    )
    if not bg["mni"]:
        return
    report.add_figure(
        plot_glass_brain(values, bg["like"], title=name, **pair),
        f"{kind} (glass brain): {name}",
        section=section,
        caption=f"{caption}{layout} Maximum projections onto the MNI152 glass brain. {bg['note']}",
    )
    report.add_figure(
        plot_surface_map(values, bg["like"], title=name),
        f"{kind} (surface): {name}",
        section=section,
        caption=f"{caption} Projected onto the fsaverage5 cortical surface (mean along the "
        "line from white matter to pial surface; inflated, lateral and ventral views; grey: "
        f"no voxel of the map; unthresholded). {bg['note']}",
    )


def background(ctx: Any, bname: str) -> dict[str, Any]:
    """Return a pattern source's map background (loaded once per run for every section)."""
    src = ctx.spec["brain"][bname]
    return ctx.memo(("background", bname), lambda: ctx.source(bname).background(src))


def require(c: Any, spec: dict[str, Any], capability: str, problem: str) -> None:
    """Fail for every brain source without ``capability`` (a flag of its Source class).

    ``complete`` (every pair in its RDMs), ``runs`` (trials with runs) or ``grid`` (voxel
    maps).
    """
    from brainalign.pipeline._analysis import get_source

    for bname, src in spec["brain"].items():
        if not getattr(get_source(src["dataset"]), capability):
            c.fail(
                ("brain", bname, "dataset"),
                f"{src['dataset']!r} {problem}; use a pattern dataset (haxby2001) or drop "
                "the analysis.",
            )


def require_features(c: Any, spec: dict[str, Any], consequence: str) -> None:
    """Fail for every model whose kind gives an RDM and no features (``has_features``).

    ``consequence`` completes "gives an RDM, not features, so ...".
    """
    from brainalign.pipeline._analysis import get_model_kind

    for mname, m in spec["models"].items():
        if not get_model_kind(m["kind"]).has_features:
            c.fail(
                ("models", mname, "kind"),
                f"{m['kind']!r} gives an RDM, not features, so {consequence}; use a model "
                "with features or drop it from this spec.",
            )


def refuse_meeg(c: Any, spec: dict[str, Any], analysis: str) -> None:
    """Fail when a brain source is M/EEG (channels over time) for a voxel analysis."""
    from brainalign.pipeline._analysis import get_source

    for bname, src in spec["brain"].items():
        if get_source(src["dataset"]).data == "meeg":
            c.fail(
                ("analyses", analysis),
                f"needs fMRI patterns, but brain.{bname} is an M/EEG source "
                f"({src['dataset']!r}: channels over time). Use analyses.time_resolved "
                "for M/EEG sources, or move them to another spec.",
            )


def finite_peak(values: xr.DataArray) -> float:
    """Return the largest finite value (-inf when there is none)."""
    return float(np.nanmax(values.values)) if np.isfinite(values.values).any() else -np.inf


def max_stat_fwe(
    observed: np.ndarray, null: np.ndarray, alpha: float = FWE_ALPHA
) -> tuple[np.ndarray, np.ndarray, float]:
    """Max-statistic family-wise error p-values, the null maxima and the critical value.

    The null of the largest value over the map is each permutation's maximum over targets
    (NaN targets left out); ``p_t = (1 + #{null_max >= observed_t}) / (1 + n_permutations)``.
    ``threshold`` is the value that the observed map must exceed (strictly) for
    ``p_fwe <= alpha``: the ``m``-th largest null maximum with
    ``m = floor(alpha (1 + n_permutations))``, ``inf`` when ``m = 0`` (too few permutations
    for any target to reach ``alpha``).

    Parameters
    ----------
    observed : numpy.ndarray, shape (n_targets,)
        The observed map (voxels or searchlight centres).
    null : numpy.ndarray, shape (n_permutations, n_targets)
        The maps of the permuted data, the same permutation for every target in a row.
    alpha : float
        The family-wise error level of ``threshold``.

    Returns
    -------
    p_fwe : numpy.ndarray, shape (n_targets,)
        FWE-corrected p-values (NaN where ``observed`` is NaN).
    null_max : numpy.ndarray, shape (n_permutations,)
        The maximum over targets of each permuted map.
    threshold : float
        ``observed > threshold`` exactly where ``p_fwe <= alpha``.
    """
    obs = np.asarray(observed, dtype=np.float64)
    nul = np.asarray(null, dtype=np.float64)
    if nul.ndim != 2 or nul.shape[1:] != obs.shape or obs.ndim != 1:
        raise ValueError(
            f"max_stat_fwe: null must have shape (n_permutations, {obs.shape}) for observed "
            f"of shape {obs.shape}; got {nul.shape}."
        )
    finite = np.isfinite(nul)
    null_max = np.where(finite, nul, -np.inf).max(axis=1)
    count = (null_max[:, None] >= obs[None, :]).sum(axis=0)
    p_fwe = np.where(np.isnan(obs), np.nan, (1.0 + count) / (1.0 + nul.shape[0]))
    from brainalign.rsa._group import fwe_threshold

    threshold = fwe_threshold(null_max, alpha)
    return p_fwe, null_max, threshold
