"""Curvature figures: edge histograms, node curvature on an MDS layout, comparison maps.

matplotlib is imported lazily; nothing comes from :mod:`brainalign.viz` (``ricci`` sits
below ``viz`` in the package's layers), so the heat map and the classical MDS are drawn here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError, check_option

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
_STAR_LEVELS = (0.05, 0.01, 0.001)


def _curvature_values(x: Any, kind: str, name: str) -> np.ndarray:
    """Finite edge or node curvature values of a result (or a plain array)."""
    if hasattr(x, "original") and hasattr(x, "trace"):  # RicciFlowResult: the input graph
        x = x.original
    if hasattr(x, "edges") and hasattr(x, "nodes") and hasattr(x, "graph"):
        x = x.edges if kind == "edges" else x.nodes
    try:
        v = np.asarray(getattr(x, "values", x), dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a CurvatureResult, a RicciFlowResult or an array of curvature "
            f"values; got {type(x).__name__}."
        ) from None
    return v[np.isfinite(v)]


def plot_curvature(
    result_or_results: Any,
    *,
    kind: str = "edges",
    bins: int | np.ndarray = 30,
    ax: Any = None,
    title: str | None = None,
    density: bool = True,
    colors: Any = None,
) -> Any:
    """Histogram of edge (or node) curvature, overlaid for several systems.

    The systems share one set of bins, so that a brain region and a model layer (or
    several layers) compare at a glance; a dashed line marks each system's mean.

    Parameters
    ----------
    result_or_results : CurvatureResult or RicciFlowResult or array_like or dict or list
        One result (a flow result shows its input graph's curvature), a dict
        ``{name: result}`` (the names label the legend), or a list of results.
    kind : {"edges", "nodes"}
        Edge curvature, or node curvature (mean of the incident edges).
    bins : int or array_like
        Number of shared bins over the pooled range, or the bin edges.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    title : str, optional
        The axes title.
    density : bool
        Normalise each histogram to unit area (graphs with different numbers of edges
        compare fairly).
    colors : list of str, optional
        One colour per system (default: matplotlib's cycle).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or no finite curvature value at all.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import networkx as nx
    >>> from brainalign.ricci import ollivier_ricci, plot_curvature
    >>> res = {"cycle": ollivier_ricci(nx.cycle_graph(8)),
    ...        "complete": ollivier_ricci(nx.complete_graph(6))}
    >>> ax = plot_curvature(res)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['cycle (mean 0.000)', 'complete (mean 0.600)']
    """
    check_option("kind", kind, ("edges", "nodes"))
    import matplotlib
    from matplotlib.figure import Figure

    if isinstance(result_or_results, Mapping):
        items = [(str(k), v) for k, v in result_or_results.items()]
    elif isinstance(result_or_results, (list, tuple)):
        items = [(f"graph {i}", v) for i, v in enumerate(result_or_results)]
    else:
        items = [("", result_or_results)]
    values = [(name, _curvature_values(v, kind, name or "result")) for name, v in items]
    pooled = np.concatenate([v for _, v in values]) if values else np.zeros(0)
    if pooled.size == 0:
        raise ValueError(f"no finite {kind[:-1]} curvature to plot.")
    if np.ndim(bins) == 0:
        lo, hi = float(pooled.min()), float(pooled.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.05, hi + 0.05
        edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float)
    if ax is None:
        ax = Figure(figsize=(5.2, 3.4), layout="constrained").add_subplot()
    cycle = colors or matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, v) in enumerate(values):
        color = cycle[i % len(cycle)]
        label = f"{name} (mean {v.mean():.3f})" if name else f"mean {v.mean():.3f}"
        ax.hist(v, bins=edges, density=density, color=color, alpha=0.35, label=label)
        ax.hist(v, bins=edges, density=density, color=color, histtype="step", linewidth=1.4)
        ax.axvline(v.mean(), color=color, linestyle="--", linewidth=1)
    ax.axvline(0, color="0.3", linewidth=0.6)
    ax.set_xlabel(f"{'edge' if kind == 'edges' else 'node'} Ollivier-Ricci curvature")
    ax.set_ylabel("density" if density else "count")
    ax.legend(fontsize=8, frameon=False)
    if title is not None:
        ax.set_title(title)
    return ax


def _classical_mds(d: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS of a distance matrix: top eigenvectors of ``-J D² J / 2``."""
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    vals, vecs = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(vals)[::-1][:n_components]
    coords = vecs[:, order] * np.sqrt(np.clip(vals[order], 0, None))
    if coords.shape[1] < n_components:
        coords = np.pad(coords, ((0, 0), (0, n_components - coords.shape[1])))
    # A deterministic sign: the largest-magnitude coordinate of each axis is positive.
    flip = np.sign(coords[np.abs(coords).argmax(axis=0), range(coords.shape[1])])
    return coords * np.where(flip == 0, 1, flip)


def graph_layout(graph: Any) -> np.ndarray:
    """2-D classical MDS of a graph's shortest-path distances, component by component.

    A connected graph gets the classical MDS of its shortest-path distances. In a
    disconnected graph (pairs without a path) each component gets its own MDS: the largest
    fills the left half, the others are tiled on the right, largest first, each scaled by the
    square root of its size.

    Parameters
    ----------
    graph : Graph
        The graph (edge weights are lengths).

    Returns
    -------
    coords : ndarray, shape (n_nodes, 2)
        The layout.
    """
    from scipy.sparse.csgraph import shortest_path

    d = shortest_path(graph.to_scipy(), method="D", directed=False)
    n_comp, comp = graph.components()
    if n_comp <= 1:
        return _classical_mds(d, 2)
    xy = np.zeros((graph.n_nodes, 2))
    sizes = np.bincount(comp, minlength=n_comp)
    n_rest = n_comp - 1
    ncols = int(np.ceil(np.sqrt(n_rest)))
    nrows = int(np.ceil(n_rest / ncols))
    cell = 1.0 / max(ncols, nrows)
    for c in range(n_comp):  # one small eigendecomposition per component
        members = np.flatnonzero(comp == c)
        local = (
            _classical_mds(d[np.ix_(members, members)], 2)
            if len(members) > 1
            else (np.zeros((1, 2)))
        )
        local = local - local.mean(axis=0)
        extent = float(np.abs(local).max())
        local = local / extent if extent > 0 else local
        if c == 0:
            xy[members] = 0.5 * local + [0.5, 0.5]
            continue
        i = c - 1
        radius = 0.42 * cell * np.sqrt(sizes[c] / sizes[1])
        center = [1.1 + cell * (i % ncols + 0.5), 1.0 - cell * (i // ncols + 0.5)]
        xy[members] = radius * local + center
    return xy


def _community_labels(communities: Any, ids: np.ndarray) -> np.ndarray:
    """Community labels in the order of ``ids`` (by stimulus id when labeled)."""
    lab = getattr(communities, "labels", communities)
    if isinstance(lab, xr.DataArray) and lab.ndim == 1:
        dim = lab.dims[0]
        if dim in lab.coords:
            have = np.asarray(lab[dim].values).astype(str)
            pos = {s: i for i, s in enumerate(have.tolist())}
            missing = [s for s in ids.tolist() if s not in pos]
            if missing:
                raise ValueError(
                    f"communities have no label for {len(missing)} node(s) of the graph, "
                    f"e.g. {missing[:3]}; pass the communities of this graph."
                )
            return np.asarray(lab.values)[[pos[s] for s in ids.tolist()]]
    arr = np.asarray(getattr(lab, "values", lab)).ravel()
    if arr.shape != ids.shape:
        raise ValueError(
            f"communities must give one label per node ({len(ids)}), got {arr.shape[0]}."
        )
    return arr


def plot_node_curvature(
    result: Any,
    layout: Any = "mds",
    communities: Any = None,
    ax: Any = None,
    *,
    cmap: str = "RdBu_r",
    labels: bool | None = None,
    title: str | None = None,
    vmax: float | None = None,
) -> Any:
    """Node curvature as colour on a 2-D layout of the graph, edges drawn lightly.

    Parameters
    ----------
    result : CurvatureResult or RicciFlowResult
        The curvature of a graph (a flow result shows its input graph's curvature).
    layout : "mds" or array_like, shape (n_nodes, 2)
        ``"mds"``: classical MDS of the graph's shortest-path distances
        (:func:`scipy.sparse.csgraph.shortest_path`); or node coordinates.
    communities : CommunityResult or xarray.DataArray or array_like, optional
        Community per node (by stimulus id when labeled): drawn as the marker shape and
        outline colour.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    cmap : str
        A diverging colour map, centred at curvature 0.
    labels : bool, optional
        Write the stimulus ids beside the nodes (default: when there are at most 40).
    title : str, optional
        The axes title.
    vmax : float, optional
        Colour limit ``[-vmax, vmax]`` (default: the largest absolute node curvature).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    TypeError
        When ``result`` is not a curvature or flow result.
    ValueError
        For an unknown ``layout`` string, coordinates of the wrong shape, or communities
        that do not label every node.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import networkx as nx
    >>> from brainalign.ricci import communities, ollivier_ricci, plot_node_curvature, ricci_flow
    >>> flow = ricci_flow(nx.barbell_graph(6, 0), iterations=20)
    >>> ax = plot_node_curvature(flow.original, communities=communities(flow, method="louvain"))
    >>> len(ax.collections) >= 2
    True
    """
    import matplotlib
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if hasattr(result, "original") and hasattr(result, "trace"):
        result = result.original
    if not (hasattr(result, "nodes") and hasattr(result, "graph")):
        raise TypeError(
            "result must be a CurvatureResult (from ollivier_ricci) or a RicciFlowResult; "
            f"got {type(result).__name__}."
        )
    graph = result.graph
    ids = np.asarray(graph.stimulus).astype(str)
    n = graph.n_nodes
    if isinstance(layout, str):
        check_option("layout", layout, ("mds",))
        xy = graph_layout(graph)
    else:
        xy = np.asarray(getattr(layout, "values", layout), dtype=float)
        if xy.shape != (n, 2):
            raise ValueError(
                f"layout must have shape ({n}, 2) (one x, y per node), got {xy.shape}."
            )
    kappa = np.asarray(result.nodes.values, dtype=float)
    finite = kappa[np.isfinite(kappa)]
    lim = vmax if vmax is not None else (float(np.abs(finite).max()) if finite.size else 1.0)
    lim = lim if lim > 0 else 1.0
    norm = Normalize(-lim, lim)
    if ax is None:
        ax = Figure(figsize=(5.2, 4.4), layout="constrained").add_subplot()
    src, dst, _ = graph.edges()
    segs = np.stack([xy[src], xy[dst]], axis=1) if len(src) else np.zeros((0, 2, 2))
    ax.add_collection(LineCollection(segs, colors="0.55", linewidths=0.6, alpha=0.35, zorder=1))
    comm = None if communities is None else _community_labels(communities, ids)
    groups = (
        [(None, np.arange(n))]
        if comm is None
        else [(c, np.flatnonzero(comm == c)) for c in np.unique(comm)]
    )
    palette = matplotlib.colormaps["tab10"]
    size = 60 if n <= 60 else max(8, 3000 / n)
    mappable = None
    for g, (c, members) in enumerate(groups):
        k = kappa[members]
        ok = np.isfinite(k)
        kw: dict[str, Any] = {"marker": _MARKERS[g % len(_MARKERS)], "s": size, "zorder": 3}
        if c is None:
            kw.update(edgecolors="0.2", linewidths=0.5)
            label = None
        else:
            kw.update(edgecolors=palette(g % 10), linewidths=1.6 if n <= 60 else 0.9)
            label = f"community {c} ({len(members)})"
        mappable = ax.scatter(
            xy[members[ok], 0], xy[members[ok], 1], c=k[ok], cmap=cmap, norm=norm, label=label,
            **kw,
        )  # fmt: skip
        if (~ok).any():  # isolated nodes have no curvature
            ax.scatter(xy[members[~ok], 0], xy[members[~ok], 1], color="0.8", **kw)
    if labels if labels is not None else n <= 40:
        for i in range(n):
            ax.annotate(ids[i], xy[i], xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.figure.colorbar(mappable, ax=ax, label="node curvature", shrink=0.85)
    if comm is not None and len(groups) <= 12:
        ax.legend(fontsize=7, frameon=False, loc="best", markerscale=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    if isinstance(layout, str):
        n_comp = graph.components()[0] if n else 0
        ax.set_xlabel("MDS 1" if n_comp <= 1 else f"MDS per component ({n_comp} components)")
        ax.set_ylabel("MDS 2" if n_comp <= 1 else "")
    ax.autoscale_view()
    if title is not None:
        ax.set_title(title)
    return ax


def _stars(p: float, levels: tuple[float, ...] = _STAR_LEVELS) -> str:
    """``*``, ``**``, ``***`` for p below each level ("" otherwise or NaN)."""
    return "*" * sum(bool(np.isfinite(p) and p < lv) for lv in levels)


def plot_compare(
    ds: xr.Dataset,
    statistic: str = "node_correlation",
    *,
    ax: Any = None,
    cmap: str | None = None,
    fmt: str = "{:.2f}",
    title: str | None = None,
) -> Any:
    """Heat map of one :func:`compare` statistic over (system_a, system_b), with p stars.

    Rows are ``system_a`` (for example brain regions), columns ``system_b`` (model layers).
    Each cell shows the value and ``*``/``**``/``***`` for ``<statistic>_p`` below 0.05 /
    0.01 / 0.001 (uncorrected for the number of cells). Descriptive statistics (the
    curvature-distribution distances, which have no p-value) show their interval
    ``[<statistic>_ci_lower, <statistic>_ci_upper]`` under the value instead, never stars;
    a p-value from the rewiring null of older results (``null="rewire"``, which did not
    test brain-model correspondence) is ignored.

    Parameters
    ----------
    ds : xarray.Dataset
        The result of :func:`compare` (scalars or dims ``system_a`` and/or ``system_b``).
    statistic : str
        A variable of ``ds``, e.g. ``"node_correlation"``, ``"edge_wasserstein"``,
        ``"community_ari"`` or ``"modularity_b"``.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure sized to the table).
    cmap : str, optional
        Colour map (default: ``"viridis"``, reversed for distances, where lower means more
        alike).
    fmt : str
        Format of the value printed in each cell.
    title : str, optional
        The axes title (default: the statistic's name).

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    SchemaError
        When ``statistic`` is not a variable of ``ds`` or has dims other than
        ``system_a``/``system_b``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import xarray as xr
    >>> from brainalign.ricci import plot_compare
    >>> ds = xr.Dataset(
    ...     {"node_correlation": (("system_a", "system_b"), [[0.1, 0.6]]),
    ...      "node_correlation_p": (("system_a", "system_b"), [[0.4, 0.004]])},
    ...     coords={"system_a": ["VT"], "system_b": ["L1", "L2"]})
    >>> ax = plot_compare(ds)
    >>> [t.get_text() for t in ax.texts]
    ['0.10', '0.60**']
    """
    from matplotlib.figure import Figure

    if statistic not in ds.data_vars:
        from brainalign._checks import did_you_mean

        raise SchemaError(
            f"statistic must be a variable of ds, one of {sorted(map(str, ds.data_vars))}; "
            f"got {statistic!r}." + did_you_mean(statistic, [str(v) for v in ds.data_vars])
        )
    values = ds[statistic]
    extra = [d for d in values.dims if d not in ("system_a", "system_b")]
    if extra:
        raise SchemaError(
            f"ds[{statistic!r}] must have dims from ('system_a', 'system_b'); got "
            f"{tuple(values.dims)}. Select the other dims first."
        )
    for dim in ("system_a", "system_b"):
        if dim not in values.dims:
            values = values.expand_dims(dim)
    values = values.transpose("system_a", "system_b")

    def grid(name: str) -> np.ndarray | None:
        if name not in ds.data_vars or set(ds[name].dims) - {"system_a", "system_b"}:
            return None
        var = ds[name]
        for dim in ("system_a", "system_b"):
            if dim not in var.dims:
                var = var.expand_dims(dim)
        return np.asarray(var.transpose("system_a", "system_b").values, dtype=float)

    pname = f"{statistic}_p"
    valid_null = pname in ds.data_vars and ds[pname].attrs.get("null") != "rewire"
    p = grid(pname) if valid_null else None
    lower, upper = grid(f"{statistic}_ci_lower"), grid(f"{statistic}_ci_upper")
    has_ci = lower is not None and upper is not None
    rows = (
        [str(v) for v in values["system_a"].values]
        if "system_a" in values.coords
        else ["system_a"]
    )
    cols = (
        [str(v) for v in values["system_b"].values]
        if "system_b" in values.coords
        else ["system_b"]
    )
    v = np.asarray(values.values, dtype=float)
    alternative = ds[pname].attrs.get("alternative") if p is not None else None
    is_distance = (
        alternative == "less"
        or values.attrs.get("more_alike") == "lower"
        or statistic.split("_")[-1] in ("wasserstein", "ks")
    )
    cmap = cmap or ("viridis_r" if is_distance else "viridis")
    n_r, n_c = v.shape
    if ax is None:
        label_w = 0.08 * max(len(r) for r in rows)
        col_h = 0.07 * max(len(c) for c in cols)
        ax = Figure(
            figsize=(2.6 + label_w + 0.9 * n_c, 1.8 + col_h + 0.45 * n_r), layout="constrained"
        ).add_subplot()
    im = ax.imshow(np.ma.masked_invalid(v), cmap=cmap, aspect="auto")
    ax.set_xticks(range(n_c), cols, rotation=30, ha="right")
    ax.set_yticks(range(n_r), rows)
    ax.set_xlabel("system_b")
    ax.set_ylabel("system_a")
    finite = v[np.isfinite(v)]
    mid = float(finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(n_r):
        for j in range(n_c):
            x = v[i, j]
            star = _stars(p[i, j]) if p is not None else ""
            text = "n/a" if not np.isfinite(x) else fmt.format(x) + star
            if np.isfinite(x) and has_ci and np.isfinite(lower[i, j] + upper[i, j]):
                text += f"\n[{fmt.format(lower[i, j])}, {fmt.format(upper[i, j])}]"
            light = np.isfinite(x) and ((x > mid) != is_distance)
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if light else "white")  # fmt: skip
    desc = values.attrs.get("description")
    ax.figure.colorbar(im, ax=ax, label=statistic if len(statistic) <= 16 else None)
    notes = ("lower = more alike" if is_distance else "", "[interval]" if has_ci else "")
    note = "; ".join(x for x in notes if x)
    if title is None:
        sub = "; ".join(x for x in (desc, note) if x)
        ax.set_title(f"{statistic}\n{sub}" if sub else statistic, fontsize=8 if sub else 10)
    else:
        ax.set_title(f"{title} ({note})" if note else title, fontsize=10)
    return ax
