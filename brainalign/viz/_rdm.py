"""RDM heatmaps and model-comparison bar charts (matplotlib, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError
from brainalign._mpltext import mpl_text
from brainalign.viz._style import OKABE_ITO, SEQUENTIAL_CMAP, figure_size, publication

#: The aspect (height / width) of a figure given only a width (``"column"``, inches).
_DEFAULT_ASPECT = 0.75


def new_figure(figsize: Any, layout: str | None = "constrained") -> Any:
    """Return a matplotlib Figure that belongs to no pyplot state (safe in threads, no GUI).

    Its ``savefig`` embeds fonts (TrueType in PDF, text in SVG) without changing
    matplotlib's global settings.

    Parameters
    ----------
    figsize : {"column", "two-column"}, float or (float, float)
        ``"column"`` (3.5 in wide) or ``"two-column"`` (7.2 in) or a width in inches (the
        height is 3/4 of the width), or ``(width, height)`` in inches.
    layout : str or None
        Matplotlib's layout engine (default ``"constrained"``).

    Returns
    -------
    fig : matplotlib.figure.Figure
        A :class:`~brainalign.viz._figure.PublicationFigure`.

    Examples
    --------
    >>> from brainalign.viz import new_figure
    >>> new_figure("column").get_size_inches().round(3).tolist()
    [3.5, 2.625]
    """
    from brainalign.viz._figure import PublicationFigure

    return PublicationFigure(figsize=figure_size(figsize, (1.0, _DEFAULT_ASPECT)), layout=layout)


def _matrix(rdm: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(rdm, xr.DataArray):
        if rdm.ndim != 2 or "stimulus_a" not in rdm.dims:
            raise SchemaError(
                f"plot_rdm needs a single RDM with dims ('stimulus_a', 'stimulus_b'), got "
                f"dims {tuple(rdm.dims)}; select one with .sel()/.isel()."
            )
        r = rdm.transpose("stimulus_a", "stimulus_b")
        return np.asarray(r.values, float), [str(s) for s in r["stimulus_a"].values]
    arr = np.asarray(rdm, float)
    return arr, [str(i) for i in range(arr.shape[0])]


#: What the colours of an RDM heatmap mean, by ``rank``: shared by plot_rdm and plot_rdms.
_SCALE_LABEL = {True: "percentile rank", False: "dissimilarity"}


def _percentile_ranks(mat: np.ndarray) -> np.ndarray:
    """Percentile ranks (0–100] of the finite off-diagonal entries; diagonal 0, NaN kept."""
    from scipy.stats import rankdata

    diag = np.eye(len(mat), dtype=bool)
    off = ~diag & np.isfinite(mat)
    ranked = np.full_like(mat, np.nan)
    ranked[off] = rankdata(mat[off]) / max(int(off.sum()), 1) * 100
    ranked[diag] = 0
    return ranked


def _color_limits(
    mats: Sequence[np.ndarray], rank: bool, vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    """Return the default colour limits of RDM panels (both plot functions use this).

    With ``rank`` the limits are 0 and 100 (percentile ranks, comparable across RDMs and
    metrics); without it, the joint range of the finite values of all panels. ``vmin`` and
    ``vmax``, when given, win.
    """
    if rank:
        lo, hi = 0.0, 100.0
    else:
        finite = [m[np.isfinite(m)] for m in mats]
        values = np.concatenate(finite) if finite else np.empty(0)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    return (lo if vmin is None else float(vmin)), (hi if vmax is None else float(vmax))


@publication
def plot_rdm(
    rdm: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    cmap: str = SEQUENTIAL_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    rank: bool = True,
    size: Any = None,
) -> Any:
    """Draw an RDM as a heatmap with stimulus labels.

    The default scaling is the same as :func:`plot_rdms`'s: percentile ranks of the
    off-diagonal dissimilarities on a fixed 0–100 colour scale (``rank=True``), so that the
    colours mean the same in every RDM, whatever its metric (the convention of RSA figures).
    With ``rank=False`` the raw values are shown on their range (min to max of the finite
    entries), as :func:`plot_rdms` shows one RDM.

    Parameters
    ----------
    rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b"), or array_like
        The RDM.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made when omitted.
    title : str, optional
        The axes title.
    cmap : str
        Colour map (default: viridis, perceptually uniform).
    vmin, vmax : float, optional
        Colour limits (default: 0 and 100 with ``rank``, else the RDM's range); share them
        across panels to compare raw RDMs.
    colorbar : bool
        Add a colour bar.
    rank : bool
        Show percentile ranks of the off-diagonal dissimilarities (scale-free; default), or
        the raw values (``False``). NaN entries (unrated pairs) stay blank either way.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size when one is made: ``"column"`` (3.5 in wide), ``"two-column"``
        (7.2 in), a width in inches (the height keeps the default aspect, 4.2 × 3.6 in) or
        ``(width, height)`` in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn into.
    """
    mat, labels = _matrix(rdm)
    if rank:
        mat = _percentile_ranks(mat)
    vmin, vmax = _color_limits([mat], rank, vmin, vmax)
    if ax is None:
        fig = new_figure(figure_size(size, (4.2, 3.6)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    im = ax.imshow(
        np.ma.masked_invalid(mat), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    if len(labels) <= 40:
        shown = [mpl_text(s) for s in labels]
        ax.set_xticks(range(len(labels)), shown, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), shown, fontsize=8)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(mpl_text(title), fontsize=10)
    if colorbar:
        metric = getattr(rdm, "attrs", {}).get("metric")
        label = _SCALE_LABEL[rank] if rank or not metric else f"{_SCALE_LABEL[rank]} ({metric})"
        fig.colorbar(im, ax=ax, shrink=0.8, label=mpl_text(label))
    return fig


@publication
def plot_rdms(
    rdms: Mapping[str, Any],
    *,
    ncols: int = 4,
    rank: bool = True,
    cmap: str = SEQUENTIAL_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    size: Any = None,
) -> Any:
    """Draw several RDMs side by side on a shared colour scale.

    The default scaling is the same as :func:`plot_rdm`'s: percentile ranks of each RDM's
    off-diagonal dissimilarities on a fixed 0–100 colour scale (``rank=True``); with
    ``rank=False`` the raw values on the joint range of all panels (for one RDM, the same
    limits as ``plot_rdm(rdm, rank=False)``).

    Parameters
    ----------
    rdms : mapping of str to RDM
        Panel title → RDM.
    ncols : int
        Panels per row.
    rank : bool
        Show percentile ranks (comparable across metrics; default); otherwise raw values on
        the joint range.
    cmap : str
        Colour map (default: viridis, perceptually uniform).
    vmin, vmax : float, optional
        Colour limits shared by all panels (default: 0 and 100 with ``rank``, else the
        joint range).
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size when one is made: ``"column"`` (3.5 in wide), ``"two-column"``
        (7.2 in), a width in inches (the height keeps the default aspect, 3.3 in per panel) or
        ``(width, height)`` in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    names = list(rdms)
    ncols = min(ncols, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig = new_figure(figure_size(size, (3.3 * ncols, 3.3 * nrows)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    mats = [_matrix(rdms[n])[0] for n in names]
    vmin, vmax = _color_limits(mats, rank, vmin, vmax)
    for ax, name in zip(axes.flat, names, strict=False):
        plot_rdm(
            rdms[name],
            ax=ax,
            title=name,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            colorbar=False,
            rank=rank,
        )
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    import matplotlib.cm as cm
    import matplotlib.colors as mcolors

    sm = cm.ScalarMappable(norm=mcolors.Normalize(vmin, vmax), cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.7, label=_SCALE_LABEL[rank])
    return fig


@publication
def plot_model_comparison(
    scores: Mapping[str, float] | xr.DataArray,
    *,
    p_values: Mapping[str, float] | Sequence[float] | None = None,
    reliability: float | None = None,
    errors: Mapping[str, float] | Sequence[float] | None = None,
    noise_ceiling: tuple[float, float] | None = None,
    ylabel: str = "RDM correlation",
    ax: Any = None,
    alpha: float = 0.05,
    ci: Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]] | None = None,
    size: Any = None,
    reliability_label: str = "data reliability",
) -> Any:
    """Bar chart of brain–model RDM similarities, with significance marks.

    The legend (noise ceiling, data reliability) sits above the axes, so it never covers a
    bar, an interval or a star.

    Parameters
    ----------
    scores : mapping or xarray.DataArray
        Model name → similarity.
    p_values : mapping or sequence, optional
        One p-value per model; bars with ``p < alpha`` get a star.
    reliability : float, optional
        The data's reliability (e.g. split-half RDM correlation) drawn as a dashed line:
        an upper reference for model scores.
    errors : mapping or sequence, optional
        One error-bar half-length per model (e.g. a standard error).
    noise_ceiling : (lower, upper), optional
        The noise ceiling, drawn as a grey band.
    ylabel : str
        The y-axis label.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    alpha : float
        Significance level for the stars.
    ci : mapping or sequence of (lower, upper), optional
        One confidence interval per model (e.g. a bootstrap percentile interval), drawn as
        an error bar from ``lower`` to ``upper`` (asymmetric, and drawn as given even when
        it does not contain the score). Use either ``errors`` or ``ci``.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size when one is made: ``"column"`` (3.5 in wide), ``"two-column"``
        (7.2 in), a width in inches (the height keeps the default aspect: 1.1 in per model
        + 1.5 in wide, 3.4 in high) or ``(width, height)`` in inches.
    reliability_label : str
        The legend's name of the ``reliability`` line (its value follows in brackets), e.g.
        what it bounds.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    if errors is not None and ci is not None:
        raise ValueError(
            "plot_model_comparison takes errors= (half-lengths) or ci= (intervals), not both."
        )
    if isinstance(scores, xr.DataArray):
        dim = scores.dims[0]
        names = [str(v) for v in scores[dim].values]
        vals = np.asarray(scores.values, float)
    else:
        names = list(scores)
        vals = np.array([scores[n] for n in names], float)
    if isinstance(p_values, Mapping):
        pv = np.array([p_values[n] for n in names], float)
    elif p_values is not None:
        pv = np.asarray(p_values, float)
    else:
        pv = None
    if ax is None:
        fig = new_figure(figure_size(size, (max(3.5, 1.1 * len(names) + 1.5), 3.4)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    x = np.arange(len(names))
    if noise_ceiling is not None:
        ax.axhspan(
            noise_ceiling[0],
            noise_ceiling[1],
            color="0.85",
            zorder=0,
            label=f"noise ceiling [{noise_ceiling[0]:.2f}, {noise_ceiling[1]:.2f}]",
        )
    if isinstance(errors, Mapping):
        err = np.array([errors[n] for n in names], float)
    else:
        err = None if errors is None else np.asarray(errors, float)
    ax.bar(x, vals, color=OKABE_ITO[0], width=0.6, yerr=err, capsize=3 if err is not None else 0)
    bounds = np.empty((0, 2))
    if ci is not None:
        bounds = np.array([ci[n] for n in names] if isinstance(ci, Mapping) else ci, float)
        if bounds.shape != (len(names), 2):
            raise ValueError(
                f"ci must hold one (lower, upper) pair per model ({len(names)}), got shape "
                f"{bounds.shape}."
            )
        ax.vlines(x, bounds[:, 0], bounds[:, 1], color="k", lw=1.2)
        for edge in (0, 1):
            ax.hlines(bounds[:, edge], x - 0.08, x + 0.08, color="k", lw=1.2)
    ax.axhline(0, color="k", lw=0.8)
    if reliability is not None:
        ax.axhline(
            reliability,
            color=OKABE_ITO[3],
            ls="--",
            lw=1.2,
            label=f"{reliability_label} ({reliability:.2f})",
        )
    if pv is not None:
        for k, (xi, v, p) in enumerate(zip(x, vals, pv, strict=True)):
            if p < alpha:
                tip = v
                if ci is not None:  # above the interval's end
                    tip = max(v, bounds[k, 1]) if v >= 0 else min(v, bounds[k, 0])
                ax.text(
                    xi,
                    tip + 0.02 * np.sign(v or 1),
                    "*",
                    ha="center",
                    va="bottom" if v >= 0 else "top",
                    fontsize=14,
                )
    ax.set_xticks(x, [mpl_text(n) for n in names], rotation=20, ha="right")
    ax.set_ylabel(mpl_text(ylabel))
    if reliability is not None or noise_ceiling is not None:
        # above the axes (constrained layout makes room): never over a bar or a star
        ax.legend(
            loc="lower left",
            bbox_to_anchor=(0.0, 1.01),
            ncols=2,
            frameon=False,
            borderaxespad=0.0,
        )
    top = (
        max(
            1.0 if reliability is None else reliability,
            np.nanmax(vals),
            noise_ceiling[1] if noise_ceiling is not None else 0.0,
            np.nanmax(bounds, initial=0.0),
        )
        * 1.15
    )
    ax.set_ylim(min(0.0, np.nanmin(vals) * 1.2, np.nanmin(bounds, initial=0.0) * 1.2), top)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def classical_mds(rdm: Any, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling of a complete RDM.

    Coordinates are the top eigenvectors of ``B = -1/2 J D² J`` (``J`` the centring matrix),
    scaled by the square roots of their eigenvalues; for Euclidean distances they reproduce
    the configuration up to rotation and reflection.

    Parameters
    ----------
    rdm : xarray.DataArray or array_like, shape (n, n)
        A complete RDM (no NaN).
    n_components : int
        Number of dimensions.

    Returns
    -------
    coords : ndarray, shape (n, n_components)
        The embedding (negative eigenvalues are clipped to zero).

    Raises
    ------
    ValueError
        When the RDM holds NaN (an incomplete RDM has no classical MDS).
    """
    mat, _ = _matrix(rdm)
    if not np.isfinite(mat).all():
        raise ValueError(
            f"classical_mds needs a complete RDM; this one has {int(np.isnan(mat).sum())} NaN "
            "entries (incomplete judgments?)."
        )
    n = mat.shape[0]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (mat**2) @ j
    vals, vecs = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(vals)[::-1][:n_components]
    return vecs[:, order] * np.sqrt(np.clip(vals[order], 0, None))


@publication
def plot_mds(rdm: Any, *, ax: Any = None, title: str | None = None, size: Any = None) -> Any:
    """Draw a 2-D classical MDS of an RDM, one labelled point per stimulus.

    Parameters
    ----------
    rdm : xarray.DataArray or array_like, shape (n, n)
        A complete RDM.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    title : str, optional
        The axes title.
    size : {"column", "two-column"}, float or (float, float), optional
        The figure's size when one is made: ``"column"`` (3.5 in wide), ``"two-column"``
        (7.2 in), a width in inches (the height keeps the default aspect, 4.2 × 4.0 in) or
        ``(width, height)`` in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    coords = classical_mds(rdm, 2)
    _, labels = _matrix(rdm)
    if ax is None:
        fig = new_figure(figure_size(size, (4.2, 4.0)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.scatter(coords[:, 0], coords[:, 1], color=OKABE_ITO[0], s=30)
    if len(labels) <= 60:
        for (x, y), lab in zip(coords, labels, strict=True):
            ax.annotate(
                mpl_text(lab), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8
            )
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(mpl_text(title), fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
