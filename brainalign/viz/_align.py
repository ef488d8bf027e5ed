"""Figures of alignment measures: layer profiles and the metric space of networks."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import check_dims
from brainalign._mpltext import mpl_text
from brainalign.viz._rdm import new_figure
from brainalign.viz._style import figure_size, publication


def _layer_groups(entries: list[str]) -> dict[str, list[int]]:
    """Group ``model`` or ``model:layer`` entries by model, in order."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(e.split(":", 1)[0], []).append(i)
    return groups


@publication
def plot_layer_profile(
    statistic: xr.DataArray,
    *,
    ci_low: xr.DataArray | None = None,
    ci_high: xr.DataArray | None = None,
    p_value: xr.DataArray | None = None,
    dim: str = "model",
    alpha: float = 0.05,
    title: str | None = None,
    label: str = "alignment",
    size: Any = None,
) -> Any:
    """Plot an alignment measure along each model's layers, one line per model.

    Entries of ``dim`` named ``"model:layer"`` are grouped by model and drawn in order (a
    model without layers is one point); intervals are drawn as bands and entries with
    ``p_value <= alpha`` are marked with a filled dot.

    Parameters
    ----------
    statistic : xarray.DataArray, dims (``dim``,)
        One value per model entry.
    ci_low, ci_high : xarray.DataArray, optional
        Interval bounds, same dims.
    p_value : xarray.DataArray, optional
        p-values, same dims.
    dim : str
        The entry dim.
    alpha : float
        Level of the marks.
    title : str, optional
        Figure title.
    label : str
        The y-axis label.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width in
        inches (the height keeps the default aspect, 6.0 × 3.6 in) or ``(width, height)`` in
        inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Lines in the Okabe-Ito colour-blind-safe palette.

    Examples
    --------
    >>> import xarray as xr
    >>> from brainalign.viz import plot_layer_profile
    >>> s = xr.DataArray([0.2, 0.5, 0.4, 0.3], dims="model",
    ...                  coords={"model": ["net:l1", "net:l2", "net:l3", "cats"]})
    >>> fig = plot_layer_profile(s, label="CKA")
    >>> [line.get_label() for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    ['net', 'cats']
    """
    check_dims(statistic, "statistic", ndim=1)
    entries = [str(e) for e in statistic[dim].values]
    values = np.asarray(statistic.values, dtype=float)
    fig = new_figure(figure_size(size, (6.0, 3.6)))
    ax = fig.add_subplot(1, 1, 1)
    for model, idx in _layer_groups(entries).items():
        x = np.arange(1, len(idx) + 1)
        (line,) = ax.plot(x, values[idx], marker="o", mfc="white", label=mpl_text(model))
        if ci_low is not None and ci_high is not None:
            lo = np.asarray(ci_low.values, dtype=float)[idx]
            hi = np.asarray(ci_high.values, dtype=float)[idx]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        if p_value is not None:
            sig = np.asarray(p_value.values, dtype=float)[idx] <= alpha
            ax.plot(x[sig], values[idx][sig], "o", color=line.get_color(), label="_sig")
    longest = max(len(i) for i in _layer_groups(entries).values())
    ax.set_xticks(np.arange(1, longest + 1))
    ax.set_xlabel("layer (in the model's order)")
    ax.set_ylabel(mpl_text(label))
    # beside the axes (constrained layout makes room): never over a line or a band
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0.0)
    if title:
        ax.set_title(mpl_text(title))
    return fig


@publication
def plot_network_space(
    distances: xr.DataArray,
    embedding: xr.DataArray,
    *,
    title: str | None = None,
    label: str = "distance",
    size: Any = None,
) -> Any:
    """Plot a network × network distance matrix beside its 2-D embedding (MDS).

    Parameters
    ----------
    distances : xarray.DataArray, dims (``network_a``, ``network_b``)
        Symmetric distances.
    embedding : xarray.DataArray, dims (``network``, ``component``)
        The networks' coordinates (at least 2 components).
    title : str, optional
        Figure title.
    label : str
        The colour-bar label.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size: ``"column"`` (3.5 in wide), ``"two-column"`` (7.2 in), a width in
        inches (the height keeps the default aspect, 9.0 × 4.0 in) or ``(width, height)`` in
        inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: the distance matrix (with its colour bar) on the left, the networks'
        first two embedding components on the right.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign.viz import plot_network_space
    >>> names = ["a", "b", "c"]
    >>> d = xr.DataArray([[0, 1, 2], [1, 0, 1.5], [2, 1.5, 0]], dims=("network_a", "network_b"),
    ...                  coords={"network_a": names, "network_b": names})
    >>> e = xr.DataArray(np.eye(3)[:, :2], dims=("network", "component"),
    ...                  coords={"network": names})
    >>> fig = plot_network_space(d, e)
    >>> len(fig.axes)
    3
    """
    check_dims(distances, "distances", ndim=2)
    check_dims(embedding, "embedding", ndim=2)
    names = [str(n) for n in distances[distances.dims[0]].values]
    fig = new_figure(figure_size(size, (9.0, 4.0)))
    ax1 = fig.add_subplot(1, 2, 1)
    im = ax1.imshow(np.asarray(distances.values, dtype=float), cmap="magma_r")
    ax1.set_xticks(range(len(names)), [mpl_text(n) for n in names], rotation=90, fontsize=7)
    ax1.set_yticks(range(len(names)), [mpl_text(n) for n in names], fontsize=7)
    fig.colorbar(im, ax=ax1, label=mpl_text(label), shrink=0.8)
    ax2 = fig.add_subplot(1, 2, 2)
    xy = np.asarray(embedding.values, dtype=float)
    groups = _layer_groups([str(n) for n in embedding[embedding.dims[0]].values])
    for model, idx in groups.items():
        ax2.plot(xy[idx, 0], xy[idx, 1], "-o", ms=4, label=mpl_text(model))
    ax2.set_xlabel("MDS 1")
    ax2.set_ylabel("MDS 2")
    ax2.set_aspect("equal", adjustable="datalim")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0.0)
    if title:
        fig.suptitle(mpl_text(title))
    return fig
