"""Time courses of many models as small multiples: one panel per model, shared y axis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError
from brainalign._mpltext import mpl_text
from brainalign.viz._rdm import new_figure
from brainalign.viz._style import figure_size, publication


@publication
def plot_time_courses(
    result: xr.Dataset,
    *,
    alpha: float | None = None,
    ylabel: str | None = None,
    ncols: int | None = None,
    onset: float | None = 0.0,
    window: tuple[float, float] | None = None,
    window_label: str = "window",
    panel_size: tuple[float, float] = (2.8, 1.9),
    size: Any = None,
) -> Any:
    """Draw one panel per model of a time-resolved RSA result, all on one y axis.

    Each panel holds one model entry's similarity over time, the band of its own
    stimulus-permutation null (``band_low`` .. ``band_high``) and dots under the curve at
    the time points whose corrected p-value is below ``alpha``. The panels share both axes,
    so heights compare across models without nine overlapping bands on one axis.

    Parameters
    ----------
    result : xarray.Dataset
        The output of :func:`brainalign.rsa.time_resolved`: ``similarity`` over ``time``
        and optionally one more dim (``model``); ``band_low``/``band_high`` and
        ``p_value_corrected`` when it ran permutations.
    alpha : float, optional
        Significance level of the dots (default: the result's ``alpha`` attr, else 0.05).
    ylabel : str, optional
        The y-axis label (default: ``"<method> with model RDM"``).
    ncols : int, optional
        Panels per row (default: up to 3 for up to 9 models, else 4).
    onset : float or None
        Time of stimulus onset, drawn as a dotted line; None draws none.
    window : (start, end), optional
        A time window shaded grey in every panel (e.g. where a simulation put its
        responses).
    window_label : str
        The legend label of ``window``.
    panel_size : (width, height)
        Size of one panel in inches.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width
        in inches (the height keeps the default aspect) or ``(width, height)`` of the whole figure;
        default from ``panel_size`` and the grid.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per model (extra grid cells hidden), sharing the y limits.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from brainalign.viz import plot_time_courses
    >>> t = np.linspace(-0.1, 0.4, 26)
    >>> sim = xr.DataArray(np.stack([np.sin(8 * t), 0.5 * np.sin(8 * t)]),
    ...                    dims=("model", "time"), coords={"model": ["a", "b"], "time": t})
    >>> fig = plot_time_courses(xr.Dataset({"similarity": sim}))
    >>> [ax.get_title() for ax in fig.axes if ax.get_visible()]
    ['a', 'b']
    """
    if (
        not isinstance(result, xr.Dataset)
        or "similarity" not in result
        or "time" not in result["similarity"].dims
    ):
        raise SchemaError(
            "plot_time_courses needs the Dataset of brainalign.rsa.time_resolved (a "
            f"'similarity' variable over 'time'); got {type(result).__name__}."
        )
    sim = result["similarity"]
    extra = [d for d in sim.dims if d != "time"]
    if len(extra) > 1:
        raise SchemaError(
            "plot_time_courses draws one panel per model; similarity has the dims "
            f"{extra} besides time. Select first."
        )
    if ncols is not None and (
        isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1
    ):
        raise ValueError(f"ncols must be a positive integer or None, got {ncols!r}.")
    alpha = float(result.attrs.get("alpha", 0.05)) if alpha is None else float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}.")
    names = [None] if not extra else [v for v in sim[extra[0]].values]
    n = len(names)
    ncols = min(n, (3 if n <= 9 else 4) if ncols is None else int(ncols))
    nrows = math.ceil(n / ncols)
    fig = new_figure(figure_size(size, (panel_size[0] * ncols + 0.6, panel_size[1] * nrows + 0.5)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    axes = axes.ravel()
    t = np.asarray(sim["time"].values, float)
    curves = [np.asarray(sim.sel({} if m is None else {extra[0]: m}).values, float) for m in names]
    values = [c for c in curves]
    if "band_low" in result:
        values.append(np.asarray(result["band_low"].values, float).ravel())
    if "band_high" in result:
        values.append(np.asarray(result["band_high"].values, float).ravel())
    every = np.concatenate([v[np.isfinite(v)] for v in values] + [np.zeros(1)])
    span = float(np.ptp(every)) or 1.0
    dot_y = float(every.min()) - 0.06 * span  # one level for every panel's dots
    colour = "#0072B2"  # Okabe–Ito blue
    for k, (ax, name, y) in enumerate(zip(axes, names, curves, strict=False)):
        sel = {} if name is None else {extra[0]: name}
        if window is not None:
            ax.axvspan(*window, color="0.9", lw=0, zorder=0, label=window_label)
        if "band_low" in result and "band_high" in result:
            ax.fill_between(
                t,
                np.asarray(result["band_low"].sel(sel).values, float),
                np.asarray(result["band_high"].sel(sel).values, float),
                color=colour,
                alpha=0.2,
                lw=0,
                label=f"permutation null, central {1 - alpha:.0%}",
            )
        ax.plot(t, y, color=colour, lw=1.5, label="similarity")
        if "p_value_corrected" in result:
            sig = np.asarray(result["p_value_corrected"].sel(sel).values, float) < alpha
            if sig.any():
                ax.plot(t[sig], np.full(int(sig.sum()), dot_y), ".", color="k", ms=4,
                        label=f"p corrected < {alpha:g}")  # fmt: skip
        ax.axhline(0, color="k", lw=0.6)
        if onset is not None:
            ax.axvline(onset, color="k", lw=0.8, ls=":")
        if name is not None:
            ax.set_title(mpl_text(str(name)), fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        if k % ncols == 0:
            ax.set_ylabel(
                mpl_text(ylabel or f"{result.attrs.get('method', 'similarity')} with model RDM"),
                fontsize=8,
            )
        if k >= n - ncols:
            ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelbottom=True)
    for ax in axes[n:]:
        ax.set_visible(False)
    legend: dict[str, Any] = {}
    for ax in axes[:n]:  # every kind of mark once, whichever panel has it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if len(legend) > 1:
        fig.legend(list(legend.values()), list(legend), loc="outside lower center",
                   ncols=len(legend), fontsize=8, frameon=False)  # fmt: skip
    return fig
