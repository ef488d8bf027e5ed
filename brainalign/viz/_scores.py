"""Score matrices: layer × ROI (or model × brain) with significance marks."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import check_dims
from brainalign._mpltext import mpl_text
from brainalign.viz._rdm import new_figure
from brainalign.viz._style import SEQUENTIAL_CMAP, figure_size, publication


@publication
def plot_score_matrix(
    scores: xr.DataArray,
    *,
    significant: xr.DataArray | None = None,
    title: str | None = None,
    label: str = "score",
    cmap: str = SEQUENTIAL_CMAP,
    fmt: str = "{:.2f}",
    size: Any = None,
    center: float | None = None,
) -> Any:
    """Heatmap of a 2-D score table (for example layer × ROI) with significance marks.

    Parameters
    ----------
    scores : xarray.DataArray, 2-D
        Rows and columns are the two dims (say ``layer`` and ``roi``), labeled by their
        coordinates.
    significant : xarray.DataArray of bool, optional
        Same dims; cells marked with ``*``.
    title : str, optional
        Figure title.
    label : str
        Colour-bar label.
    cmap : str
        Matplotlib colour map.
    fmt : str
        Format of the value printed in each cell.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width in
        inches (the height keeps the default aspect, set by the numbers of rows and
        columns) or ``(width, height)`` in inches.
    center : float, optional
        Put the colour scale symmetric around this value (``center ± max|value - center|``,
        for a diverging ``cmap``) instead of stretching it between the smallest and the
        largest value: a few similar values then keep similar colours, and the side of
        ``center`` shows.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: one heatmap with its colour bar, each cell's value printed in it.

    Examples
    --------
    >>> import xarray as xr
    >>> from brainalign.viz import plot_score_matrix
    >>> s = xr.DataArray([[0.1, 0.3], [0.2, 0.5]], dims=("layer", "roi"),
    ...                  coords={"layer": ["l1", "l2"], "roi": ["V1", "IT"]})
    >>> fig = plot_score_matrix(s, significant=s > 0.25)
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['0.10', '0.30*', '0.20', '0.50*']
    """
    check_dims(scores, "scores", ndim=2)
    rows, cols = scores.dims
    values = np.asarray(scores.values, dtype=float)
    marks = np.zeros(values.shape, bool)
    if significant is not None:
        if significant.dims != scores.dims or significant.shape != scores.shape:
            raise ValueError(
                f"significant must have the dims and shape of scores {scores.dims} "
                f"{scores.shape}; got {significant.dims} {significant.shape}."
            )
        marks = np.asarray(significant.values, dtype=bool)
    n_r, n_c = values.shape
    label_w = 0.08 * max((len(str(v)) for v in scores[rows].values), default=4)
    col_h = 0.07 * max((len(str(v)) for v in scores[cols].values), default=4)
    fig = new_figure(figure_size(size, (2.6 + label_w + 1.1 * n_c, 1.8 + col_h + 0.45 * n_r)))
    ax = fig.subplots()
    finite = values[np.isfinite(values)]
    limits: dict[str, float] = {}
    top = float(np.abs(finite - center).max()) if center is not None and finite.size else 0.0
    top = top if top > 0 else 1.0
    if center is not None:
        limits = {"vmin": center - top, "vmax": center + top}
    im = ax.imshow(values, cmap=cmap, aspect="auto", **limits)
    ax.set_xticks(range(n_c), [mpl_text(v) for v in scores[cols].values], rotation=30, ha="right")
    ax.set_yticks(range(n_r), [mpl_text(v) for v in scores[rows].values])
    ax.set_xlabel(mpl_text(cols))
    ax.set_ylabel(mpl_text(rows))
    mid = float(finite.min() + finite.max()) / 2 if finite.size else 0.0

    def text_colour(v: float) -> str:  # contrast with the cell's colour
        if center is None:  # a sequential map: dark below the middle
            return "black" if np.isfinite(v) and v > mid else "white"
        # a diverging map: dark at both ends
        return "white" if np.isfinite(v) and abs(v - center) > 0.6 * top else "black"

    for i in range(n_r):
        for j in range(n_c):
            v = values[i, j]
            text = "n/a" if not np.isfinite(v) else fmt.format(v) + ("*" if marks[i, j] else "")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color=text_colour(v),
            )
    fig.colorbar(im, ax=ax, label=mpl_text(label))
    if title:
        ax.set_title(mpl_text(title))
    return fig
