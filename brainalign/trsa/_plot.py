"""Threshold-grid map (matplotlib imported lazily; nothing from brainalign.viz)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError
from brainalign.trsa._grid import FAMILIES, THRESHOLD


def plot_grid(
    values: xr.DataArray,
    *,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    families: bool = True,
) -> Any:
    """Draw a grid result (similarity or accuracy per threshold cell) as a triangle map.

    ``lower`` runs along x, ``upper`` along y; each cell is a square coloured by its value
    (the paper's grid-search figure). The cell of the plain rank RDM (0, 1) is at the top
    left, binary graphs on the diagonal.

    Parameters
    ----------
    values : xarray.DataArray, dims ("threshold",)
        From :func:`grid_compare` or :func:`grid_identification`, reduced to one value per
        cell (``.sel(...)`` or ``.mean(...)`` the other dims first).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    title : str, optional
        The axes title (default: the array's name).
    cmap : str
        Colormap.
    vmin, vmax : float, optional
        Colour limits (default: the data's range).
    families : bool
        Mark one cell of each family with its name.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    SchemaError
        When ``values`` has dims other than ``threshold`` or no ``lower``/``upper``
        coordinates.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from brainalign import trsa
    >>> g = trsa.threshold_grid()
    >>> ax = trsa.plot_grid(g.copy(data=g["upper"].values - g["lower"].values))
    >>> ax.get_xlabel()
    'lower quantile'
    """
    if values.dims != (THRESHOLD,) or not {"lower", "upper"} <= set(values.coords):
        raise SchemaError(
            f"values must have the single dim {THRESHOLD!r} with 'lower' and 'upper' "
            f"coordinates; got dims {tuple(values.dims)}. Select or average the other dims "
            "first, e.g. values.mean('layer')."
        )
    from matplotlib.figure import Figure

    lower = np.asarray(values["lower"].values, dtype=float)
    upper = np.asarray(values["upper"].values, dtype=float)
    vals = np.asarray(values.values, dtype=float)
    xs, ys = np.unique(lower), np.unique(upper)
    step = float(np.min(np.diff(np.union1d(xs, ys)))) if len(np.union1d(xs, ys)) > 1 else 1.0
    edges = np.arange(0, 1 + step / 2, step)
    img = np.full((len(edges), len(edges)), np.nan)
    ix = np.clip(np.round(lower / step).astype(int), 0, len(edges) - 1)
    iy = np.clip(np.round(upper / step).astype(int), 0, len(edges) - 1)
    img[iy, ix] = vals
    if ax is None:
        ax = Figure(figsize=(4.6, 4)).add_subplot()
    full = np.append(edges, 1 + step) - step / 2
    mesh = ax.pcolormesh(
        full, full, np.ma.masked_invalid(img), cmap=cmap, vmin=vmin, vmax=vmax, shading="flat"
    )
    ax.figure.colorbar(mesh, ax=ax, label=str(values.name or "value"))
    if families and "family" in values.coords:
        fams = np.asarray(values["family"].values)
        for fam in FAMILIES:
            sel = np.flatnonzero(fams == fam)
            if len(sel):
                mid = sel[len(sel) // 2]
                ax.annotate(
                    fam,
                    (lower[mid], upper[mid]),
                    fontsize=7,
                    ha="center",
                    va="center",
                    color="white",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "black", "alpha": 0.5},
                )
    ax.set_xlabel("lower quantile")
    ax.set_ylabel("upper quantile")
    ax.set_xlim(-step / 2, 1 + step / 2)
    ax.set_ylim(-step / 2, 1 + step / 2)
    ax.set_aspect("equal")
    ax.set_title(title if title is not None else str(values.name or ""))
    return ax
