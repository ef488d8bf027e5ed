"""Maps and time courses.

Per-voxel results on brain images (nilearn), and model–brain similarity over time with
permutation bands.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError, _fmt_list
from brainalign._imports import soft_import
from brainalign._mpltext import mpl_text
from brainalign.viz._rdm import new_figure
from brainalign.viz._style import figure_size, publication


@publication
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
    significant: xr.DataArray | None = None,
    significant_label: str = "corrected",
    size: Any = None,
) -> Any:
    """Draw a per-voxel result (searchlight or encoding scores) on slices of a brain image.

    With ``significant``, the map is drawn twice, one display above the other on one colour
    scale: unthresholded, and keeping only the significant voxels (e.g. of a family-wise
    error corrected test). The title sits in its own strip above the displays, clear of the
    L/R markers and the coordinate labels.

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
        The colour limit (default the largest absolute value of the map).
    significant : xarray.DataArray of bool, dims ("voxel",), optional
        Which voxels pass a corrected test (same voxels as ``values``); adds the
        thresholded display below the unthresholded one.
    significant_label : str
        Names the test in the thresholded display's label, e.g. ``"p_FWE ≤ 0.05"``.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width
        in inches (the height keeps the default aspect) or ``(width, height)`` of one display;
        default 6.5 × 2.9 in per display.

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
    panels = _panels(values, significant, significant_label, "plot_brain_map")
    first = to_image(values, like, fill=0.0)
    if first.shape[2] == 1 and display_mode is None:  # one axial slice: show exactly it
        display_mode, cut_coords = "z", 1
    kwargs = {} if bg_img is None else {"bg_img": bg_img}
    vmax = _vmax(values) if vmax is None else vmax

    def draw(fig: Any, rect: tuple, panel: xr.DataArray, thr: float | None, cut: Any) -> Any:
        return plotting.plot_stat_map(
            to_image(panel, like, fill=0.0),
            figure=fig,
            axes=rect,
            colorbar=True,
            threshold=thr,
            display_mode=display_mode or "ortho",
            cut_coords=cut_coords if cut is None else cut,
            vmax=vmax,
            vmin=-vmax,
            symmetric_cbar=True,
            **kwargs,
        )

    return _draw_panels(figure_size(size, (6.5, 2.9)), title, panels, threshold, draw)


def _check_volume_map(values: Any, like: Any, func: str) -> Any:
    """Check that ``values`` is one voxel map on the grid of ``like``; return ``like``'s image.

    Raises a SchemaError naming ``func``, the parameter, what it needs and what it got.
    """
    from brainalign.loaders.fmri import load_img

    if not isinstance(values, xr.DataArray):
        raise SchemaError(
            f"{func}: values must be an xarray.DataArray with dims ('voxel',) and i/j/k voxel "
            f"coordinates; got {type(values).__name__}."
        )
    if values.dims != ("voxel",):
        raise SchemaError(
            f"{func}: values must be one map with dims ('voxel',); got dims {values.dims}. "
            "Select one model first, e.g. maps.sel(model=...)."
        )
    missing = [c for c in ("i", "j", "k") if c not in values.coords]
    if missing:
        raise SchemaError(
            f"{func}: values is not on an image grid: it needs the voxel-index coordinates "
            f"i/j/k (from the fMRI loaders or rsa.searchlight); missing {_fmt_list(missing)}, "
            f"coords present: {_fmt_list(list(values.coords))}."
        )
    img = load_img(like, "like")
    if len(img.shape) < 3:
        raise SchemaError(
            f"{func}: like must be a 3-D image (the map's grid); got shape {img.shape}."
        )
    ijk = np.column_stack([np.asarray(values[c].values) for c in ("i", "j", "k")])
    shape = np.asarray(img.shape[:3])
    if np.any(ijk < 0) or np.any(ijk >= shape):
        raise SchemaError(
            f"{func}: values' voxel indices i/j/k (up to {tuple(int(v) for v in ijk.max(0))}) "
            f"fall outside the grid of like, shape {tuple(int(v) for v in shape)}; pass the "
            "image the map was computed on (e.g. its mask)."
        )
    return img


@publication
def plot_glass_brain(
    values: xr.DataArray,
    like: Any,
    *,
    threshold: float | None = None,
    title: str | None = None,
    vmax: float | None = None,
    significant: xr.DataArray | None = None,
    significant_label: str = "corrected",
    size: Any = None,
) -> Any:
    """Draw a per-voxel result of MNI-space data on a glass brain (nilearn).

    The glass brain is the MNI152 outline; it fits data in (approximately) MNI space only.
    With ``significant``, the unthresholded projections and those of the significant
    voxels only are drawn one above the other on one colour scale (see
    :func:`plot_brain_map`); the title has its own strip, clear of the L/R markers.

    Parameters
    ----------
    values : xarray.DataArray, dims ("voxel",)
        The map with ``i``/``j``/``k`` voxel coordinates.
    like : image or path
        An image on the data's grid (e.g. the mask), giving shape and affine.
    threshold : float, optional
        Hide values with a smaller absolute value.
    title : str, optional
        The title.
    vmax : float, optional
        The colour limit (default the largest absolute value of the map).
    significant : xarray.DataArray of bool, dims ("voxel",), optional
        Which voxels pass a corrected test; adds their display below the unthresholded one.
    significant_label : str
        Names the test in the thresholded display's label.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width
        in inches (the height keeps the default aspect) or ``(width, height)`` of one display;
        default 7.0 × 2.6 in per display.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (not registered with pyplot).

    Raises
    ------
    SchemaError
        When ``values`` is not one map with voxel coordinates on the grid of ``like``.
    """
    from brainalign.loaders.fmri import to_image

    plotting = soft_import("nilearn.plotting", "fmri", "plot_glass_brain")
    _check_volume_map(values, like, "plot_glass_brain")
    panels = _panels(values, significant, significant_label, "plot_glass_brain")
    vmax = _vmax(values) if vmax is None else vmax

    def draw(fig: Any, rect: tuple, panel: xr.DataArray, thr: float | None, cut: Any) -> Any:
        return plotting.plot_glass_brain(
            to_image(panel, like, fill=0.0),
            figure=fig,
            axes=rect,
            colorbar=True,
            threshold=thr,
            vmax=vmax,
            vmin=-vmax,
            plot_abs=False,
        )

    return _draw_panels(figure_size(size, (7.0, 2.6)), title, panels, threshold, draw)


def _vmax(values: xr.DataArray) -> float:
    """Return the largest finite absolute value of a map (1 for an empty or zero map)."""
    v = np.abs(np.asarray(values.values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size and v.max() > 0 else 1.0


def _panels(
    values: xr.DataArray, significant: Any, label: str, func: str
) -> list[tuple[str | None, xr.DataArray]]:
    """Return the (label, map) displays: the map, and its significant voxels when given."""
    if significant is None:
        return [(None, values)]
    if (
        not isinstance(significant, xr.DataArray)
        or significant.dims != ("voxel",)
        or significant.sizes["voxel"] != values.sizes["voxel"]
    ):
        got = (
            f"dims {significant.dims} and {significant.sizes.get('voxel', 0)} voxels"
            if isinstance(significant, xr.DataArray)
            else type(significant).__name__
        )
        raise SchemaError(
            f"{func}: significant must be a boolean DataArray with dims ('voxel',) over the "
            f"map's {values.sizes['voxel']} voxels; got {got}."
        )
    mask = np.asarray(significant.values, dtype=bool)
    kept = values.copy(data=np.where(mask, np.asarray(values.values, dtype=float), 0.0))
    n = int(mask.sum())
    text = f"thresholded: {label} ({n} voxel{'s' if n != 1 else ''})"
    if n == 0:
        text = f"thresholded: {label}: no voxel survives"
    return [("unthresholded", values), (text, kept)]


def _draw_panels(
    size: tuple[float, float],
    title: str | None,
    panels: list[tuple[str | None, xr.DataArray]],
    threshold: float | None,
    draw: Any,
) -> Any:
    """Stack nilearn displays in one figure, title and panel labels in their own strips.

    ``size`` is the width and the height of one display (inches); ``draw(fig, rect, map,
    threshold, cut_coords)`` draws one display into ``rect`` (figure fractions) and returns
    it; the displays below the first one show its cuts (``None`` for the first). A display
    with no voxel left shows the background only (nilearn's empty-image warnings are
    expected there and silenced). Every display hides
    the zeros (voxels outside the map, and in the thresholded display those outside the
    test) whatever ``threshold`` is, so the background shows there.
    """
    width, height = size
    title_h = 0.32 if title else 0.0
    label_h = 0.22 if len(panels) > 1 else 0.0
    total = title_h + len(panels) * (label_h + height)
    fig = new_figure((width, total), layout=None)  # nilearn places its own axes
    fig.patch.set_facecolor("white")
    top = total - title_h
    if title:
        fig.text(0.01, 1 - 0.5 * title_h / total, mpl_text(title), ha="left", va="center",
                 fontsize=10)  # fmt: skip
    cut = None
    for label, panel in panels:
        if label is not None:
            fig.text(0.01, (top - 0.5 * label_h) / total, mpl_text(label), ha="left",
                     va="center", fontsize=8, color="0.25")  # fmt: skip
        bottom = top - label_h - height
        thr = max(threshold or 0.0, 1e-12)
        rect = (0.0, bottom / total, 1.0, height / total)
        values = np.asarray(panel.values, dtype=float)
        with warnings.catch_warnings():
            if not (np.abs(np.nan_to_num(values)) > thr).any():  # nothing left to draw
                warnings.filterwarnings("ignore", "empty mask", UserWarning)
                warnings.filterwarnings("ignore", "Given img is empty", UserWarning)
            display = draw(fig, rect, panel, thr, cut)
        if cut is None:
            cut = getattr(display, "cut_coords", None)
        top = bottom
    return fig


SURFACE_VIEWS = ("lateral", "medial", "dorsal", "ventral", "anterior", "posterior")
"""The views of :func:`plot_surface_map` (nilearn's names)."""


@publication
def plot_surface_map(
    values: xr.DataArray,
    like: Any,
    *,
    threshold: float | None = None,
    title: str | None = None,
    views: tuple[str, ...] = ("lateral", "ventral"),
    hemispheres: tuple[str, ...] = ("left", "right"),
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    size: Any = None,
) -> Any:
    """Project a per-voxel result of MNI-space data onto the fsaverage5 surface and draw it.

    Each vertex takes the mean of the map sampled along the line from the white-matter to
    the pial surface (:func:`nilearn.surface.vol_to_surf`, linear interpolation, zero
    outside the map). Samples that fall in no voxel of the map are left out; vertices with
    no sample left stay uncoloured. The fsaverage5
    meshes ship with nilearn, so nothing is downloaded. The projection assumes the map's
    grid is in (approximately) MNI space.

    Parameters
    ----------
    values : xarray.DataArray, dims ("voxel",)
        The map with ``i``/``j``/``k`` voxel coordinates.
    like : image or path
        A 3-D image on the data's grid (e.g. the mask), giving shape and affine.
    threshold : float, optional
        Hide values with a smaller absolute value.
    title : str, optional
        The title.
    views : tuple of str
        Views per hemisphere, each one of ``SURFACE_VIEWS``.
    hemispheres : tuple of str
        ``"left"`` and/or ``"right"``.
    vmax : float, optional
        The colour limit (symmetric); default the largest absolute projected value.
    cmap : str
        A diverging colour map.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width
        in inches (the height keeps the default aspect) or ``(width, height)``;
        default 2.6 in per view and 2.4 in per hemisphere.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One row per hemisphere, one column per view (inflated surface, sulcal depth
        underneath) and a shared colour bar; not registered with pyplot.

    Raises
    ------
    SchemaError
        When ``values`` is not one map with voxel coordinates on the grid of ``like``, or
        ``like`` is a single slice (a surface projection needs a volume).
    ValueError
        For an unknown view or hemisphere, or a map that is NaN everywhere.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from brainalign._checks import check_option
    from brainalign.loaders.fmri import to_image

    plotting = soft_import("nilearn.plotting", "fmri", "plot_surface_map")
    from nilearn import datasets, surface

    img = _check_volume_map(values, like, "plot_surface_map")
    if min(img.shape[:3]) < 2:
        raise SchemaError(
            "plot_surface_map: like must be a 3-D volume covering the brain (the map is "
            f"projected onto the cortical surface); got a grid of shape {img.shape[:3]}. "
            "Use plot_brain_map for a single slice."
        )
    views, hemispheres = tuple(views), tuple(hemispheres)
    if not views or not hemispheres:
        raise ValueError(
            f"plot_surface_map: views and hemispheres must each name at least one; got "
            f"views={views!r}, hemispheres={hemispheres!r}."
        )
    for view in views:
        check_option("views", view, SURFACE_VIEWS)
    for hemi in hemispheres:
        check_option("hemispheres", hemi, ("left", "right"))
    mesh = datasets.fetch_surf_fsaverage("fsaverage5")  # ships with nilearn: no download
    vol = to_image(values, like, fill=0.0)
    inside = to_image(xr.ones_like(values), like, fill=0.0)  # the map's voxels
    textures = {}
    with warnings.catch_warnings():  # vertices with no sample inside the map: NaN
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        for hemi in hemispheres:
            textures[hemi] = surface.vol_to_surf(
                vol,
                mesh[f"pial_{hemi}"],
                inner_mesh=mesh[f"white_{hemi}"],
                mask_img=inside,
                interpolation="linear",
            )
    finite = np.concatenate([t[np.isfinite(t)] for t in textures.values()])
    if finite.size == 0:
        raise ValueError(
            "plot_surface_map: no surface vertex samples the map (all NaN); is the map's "
            "grid in MNI space and is like the image it was computed on?"
        )
    if vmax is None:
        vmax = float(np.abs(finite).max()) or 1.0
    default = (2.6 * len(views) + 0.8, 2.4 * len(hemispheres) + 0.4)
    fig = new_figure(figure_size(size, default), layout=None)
    axes = []
    for row, hemi in enumerate(hemispheres):
        for col, view in enumerate(views):
            ax = fig.add_subplot(
                len(hemispheres), len(views), row * len(views) + col + 1, projection="3d"
            )
            plotting.plot_surf_stat_map(
                mesh[f"infl_{hemi}"],
                textures[hemi],
                bg_map=mesh[f"sulc_{hemi}"],
                hemi=hemi,
                view=view,
                axes=ax,
                figure=fig,
                colorbar=False,
                threshold=threshold,
                vmax=vmax,
                cmap=cmap,
                symmetric_cbar=True,
                engine="matplotlib",
            )
            ax.set_title(mpl_text(f"{hemi} {view}"), fontsize=8)
            for mesh_faces in ax.collections:  # ~20,000 triangles per view: raster in SVG/PDF
                mesh_faces.set_rasterized(True)
            axes.append(ax)
    fig.subplots_adjust(left=0.0, right=0.86, bottom=0.0, top=0.9, wspace=0.0, hspace=0.05)
    cax = fig.add_axes((0.88, 0.15, 0.02, 0.6))
    fig.colorbar(ScalarMappable(Normalize(-vmax, vmax), cmap), cax=cax)
    if title:
        fig.suptitle(mpl_text(title), fontsize=10)
    return fig


@publication
def plot_time_course(
    result: xr.Dataset,
    *,
    ax: Any = None,
    alpha: float | None = None,
    ylabel: str | None = None,
    size: Any = None,
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
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width
        in inches (the height keeps the default aspect) or ``(width, height)``; ignored
        with ``ax``; default 6.0 × 3.4 in.

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
        fig = new_figure(figure_size(size, (6.0, 3.4)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    t = np.asarray(sim["time"].values, float)
    names = [None] if not extra else list(sim[extra[0]].values)
    lows = []
    for k, name in enumerate(names):
        sel = {} if name is None else {extra[0]: name}
        y = np.asarray(sim.sel(sel).values, float)
        (line,) = ax.plot(t, y, label=None if name is None else mpl_text(name), lw=1.6)
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
    ax.set_ylabel(mpl_text(ylabel or f"{result.attrs.get('method', 'similarity')} with model RDM"))
    if extra:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
