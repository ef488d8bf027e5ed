"""Maps and time courses.

Per-voxel results on brain images (nilearn), and model–brain similarity over time with
permutation bands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError, _fmt_list
from brainalign._imports import soft_import
from brainalign.viz._rdm import _figure


def plot_brain_map(
    values: xr.DataArray,
    like: Any,
    *,
    bg_img: Any = None,
    threshold: float | None = None,
    title: str | None = None,
    display_mode: str | None = None,
    cut_coords: Any = None,
    vmax: float | None = None,
) -> Any:
    """Draw a per-voxel result (searchlight or encoding scores) on slices of a brain image.

    Parameters
    ----------
    values : xarray.DataArray, dims ("voxel",)
        The map, with ``i``/``j``/``k`` voxel coordinates (from the fMRI loaders or
        :func:`brainalign.rsa.searchlight`).
    like : image or path
        An image on the data's grid (e.g. the mask), giving shape and affine.
    bg_img : image or path, optional
        The background (e.g. the mean functional image); default nilearn's MNI template,
        which suits data in MNI space only.
    threshold : float, optional
        Hide values with a smaller absolute value.
    title : str, optional
        The title.
    display_mode, cut_coords : optional
        nilearn's slicing options; a single-slice image is shown as that slice.
    vmax : float, optional
        The colour limit.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    from brainalign.loaders.fmri import to_image

    plotting = soft_import("nilearn.plotting", "fmri", "plot_brain_map")
    if not isinstance(values, xr.DataArray) or values.dims != ("voxel",):
        dims = values.dims if isinstance(values, xr.DataArray) else type(values).__name__
        raise SchemaError(
            f"plot_brain_map needs one map with dims ('voxel',); got {dims}. Select one model "
            "first, e.g. maps.sel(model=...)."
        )
    img = to_image(values, like, fill=0.0)
    if img.shape[2] == 1 and display_mode is None:  # one axial slice: show exactly it
        display_mode, cut_coords = "z", 1
    fig = _figure((6.5, 3.2), layout=None)  # nilearn places its own axes
    kwargs = {} if bg_img is None else {"bg_img": bg_img}
    plotting.plot_stat_map(
        img,
        figure=fig,
        colorbar=True,
        threshold=threshold,
        title=title,
        display_mode=display_mode or "ortho",
        cut_coords=cut_coords,
        vmax=vmax,
        **kwargs,
    )
    return fig


def plot_glass_brain(
    values: xr.DataArray, like: Any, *, threshold: float | None = None, title: str | None = None
) -> Any:
    """Draw a per-voxel result of MNI-space data on a glass brain (nilearn).

    Parameters
    ----------
    values : xarray.DataArray, dims ("voxel",)
        The map with voxel coordinates.
    like : image or path
        An image on the data's grid.
    threshold : float, optional
        Hide values with a smaller absolute value.
    title : str, optional
        The title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    from brainalign.loaders.fmri import to_image

    plotting = soft_import("nilearn.plotting", "fmri", "plot_glass_brain")
    img = to_image(values, like, fill=0.0)
    fig = _figure((7.0, 2.8), layout=None)
    plotting.plot_glass_brain(
        img, figure=fig, colorbar=True, threshold=threshold, title=title, plot_abs=False
    )
    return fig


def plot_time_course(
    result: xr.Dataset, *, ax: Any = None, alpha: float | None = None, ylabel: str | None = None
) -> Any:
    """Draw model–brain similarity over time, with permutation bands and significance marks.

    Parameters
    ----------
    result : xarray.Dataset
        The output of :func:`brainalign.rsa.time_resolved` (``similarity`` over ``time`` and
        optionally ``model``; ``band_low``/``band_high`` and ``p_value_corrected`` when it
        ran permutations).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    alpha : float, optional
        Significance level for the marks (default the result's ``alpha``).
    ylabel : str, optional
        The y-axis label.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure; a dot under a curve marks a time point with corrected p < alpha.
    """
    if (
        not isinstance(result, xr.Dataset)
        or "similarity" not in result
        or ("time" not in result["similarity"].dims)
    ):
        raise SchemaError(
            "plot_time_course needs the Dataset of brainalign.rsa.time_resolved (a "
            f"'similarity' variable over 'time'); got {type(result).__name__}."
        )
    alpha = float(result.attrs.get("alpha", 0.05)) if alpha is None else alpha
    sim = result["similarity"]
    extra = [d for d in sim.dims if d != "time"]
    if len(extra) > 1:
        raise SchemaError(
            f"plot_time_course draws one line per model; similarity has the dims "
            f"{_fmt_list(extra)} besides time. Select first."
        )
    if ax is None:
        fig = _figure((6.0, 3.4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    t = np.asarray(sim["time"].values, float)
    names = [None] if not extra else list(sim[extra[0]].values)
    lows = []
    for k, name in enumerate(names):
        sel = {} if name is None else {extra[0]: name}
        y = np.asarray(sim.sel(sel).values, float)
        (line,) = ax.plot(t, y, label=None if name is None else str(name), lw=1.6)
        if "band_low" in result:
            ax.fill_between(
                t,
                result["band_low"].sel(sel).values,
                result["band_high"].sel(sel).values,
                color=line.get_color(),
                alpha=0.15,
                lw=0,
            )
        lows.append(np.nanmin(y))
        if "p_value_corrected" in result:
            sig = np.asarray(result["p_value_corrected"].sel(sel).values) < alpha
            if sig.any():
                base = np.nanmin(lows) - 0.05 * (k + 1)
                ax.plot(t[sig], np.full(sig.sum(), base), ".", color=line.get_color(), ms=5)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel or f"{result.attrs.get('method', 'similarity')} with model RDM")
    if extra:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
