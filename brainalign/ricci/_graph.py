"""Weighted representational graphs over stimuli (k-NN and ε graphs from RDMs).

A :class:`Graph` is an undirected weighted graph stored as a symmetric CSR matrix (both
directions, rows sorted, no self-loops) with one stimulus id per node. Edge weights are
dissimilarities (lengths), so a short edge joins two similar stimuli.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from brainalign._checks import _fmt_list, check_number, check_option
from brainalign._docdict import fill_doc
from brainalign._logging import warn
from brainalign.data._schema import RDM_DIMS

CONNECTED = ("raise", "warn", "ignore")
WEIGHTS = ("distance", "unit")


@dataclass(frozen=True, eq=False)
class Graph:
    """An undirected weighted graph over stimuli, in symmetric CSR form.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n + 1,)
        Row pointers.
    indices : ndarray of int64, shape (2 * n_edges,)
        Column indices, sorted within each row; both directions of each edge are stored.
    weights : ndarray of float64, shape (2 * n_edges,)
        Edge lengths (dissimilarities), positive.
    stimulus : ndarray of str, shape (n,)
        The node labels (stimulus ids).
    attrs : dict
        Provenance: how the graph was built.

    See Also
    --------
    knn_graph, epsilon_graph, as_graph
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    stimulus: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return len(self.indices) // 2

    @property
    def degree(self) -> np.ndarray:
        """Number of neighbours of each node."""
        return np.diff(self.indptr)

    def rows(self) -> np.ndarray:
        """Return the source node of each stored (directed) entry.

        Returns
        -------
        rows : ndarray of int64, shape (2 * n_edges,)
            The row (node index) of each entry of ``indices`` and ``weights``.
        """
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), self.degree)

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the undirected edges ``(source, target, weight)`` with ``source < target``.

        Returns
        -------
        source, target : ndarray of int64
            Node indices, in lexicographic order.
        weight : ndarray of float64
            Edge lengths.
        """
        rows = self.rows()
        upper = self.indices > rows
        return rows[upper], self.indices[upper], self.weights[upper]

    def edge_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of each undirected edge in the CSR arrays (``u -> v`` and ``v -> u``).

        Returns
        -------
        upper : ndarray of int64, shape (n_edges,)
            The position of each edge's ``u -> v`` entry (``u < v``), in :meth:`edges` order.
        reverse : ndarray of int64, shape (n_edges,)
            The position of the same edge's ``v -> u`` entry.
        """
        rows = self.rows()
        upper = np.flatnonzero(self.indices > rows)
        # The reverse entry of (u, v) is (v, u): find it by sorting the keys.
        key = self.indices * self.n_nodes + rows  # (col, row) of each entry
        order = np.argsort(rows * self.n_nodes + self.indices, kind="stable")
        fwd_keys = (rows * self.n_nodes + self.indices)[order]
        reverse = order[np.searchsorted(fwd_keys, key[upper])]
        return upper, reverse

    def with_weights(self, weights: np.ndarray) -> Graph:
        """Return a copy with new weights, given per undirected edge in :meth:`edges` order.

        Parameters
        ----------
        weights : array_like of float, shape (n_edges,)
            The new edge lengths, one per undirected edge, in :meth:`edges` order.

        Returns
        -------
        graph : Graph
            The same nodes and edges (and a copy of ``attrs``) with the new weights stored in
            both directions.

        Raises
        ------
        ValueError
            When ``weights`` does not hold one value per edge.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n_edges,):
            raise ValueError(
                f"weights must have one value per edge, shape ({self.n_edges},), got {w.shape}."
            )
        upper, reverse = self.edge_slots()
        full = np.empty_like(self.weights)
        full[upper] = w
        full[reverse] = w
        return Graph(self.indptr, self.indices, full, self.stimulus, dict(self.attrs))

    def components(self) -> tuple[int, np.ndarray]:
        """Find the connected components.

        Returns
        -------
        n_components : int
            How many.
        labels : ndarray of int64, shape (n,)
            The component of each node (0 is the largest).
        """
        from scipy.sparse.csgraph import connected_components

        n, labels = connected_components(self.to_scipy(), directed=False)
        sizes = np.bincount(labels, minlength=n)
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(n)
        return int(n), rank[labels]

    def subgraph(self, nodes: np.ndarray) -> Graph:
        """Return the graph induced on ``nodes`` (indices, in the order given).

        Parameters
        ----------
        nodes : array_like of int
            Indices of the nodes to keep; node ``i`` of the subgraph is ``nodes[i]``.

        Returns
        -------
        graph : Graph
            The nodes given and the edges between them (with their weights and stimulus ids;
            ``attrs`` copied).
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        a = self.to_scipy()[nodes][:, nodes].tocsr()
        a.sort_indices()
        return Graph(
            a.indptr.astype(np.int64),
            a.indices.astype(np.int64),
            a.data.astype(np.float64),
            self.stimulus[nodes],
            dict(self.attrs),
        )

    def to_scipy(self):
        """Return the weighted adjacency as a ``scipy.sparse.csr_matrix``.

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix, shape (n, n)
            Symmetric: entry ``(u, v)`` is the length of edge ``u - v``; no entry where there
            is no edge. It shares the graph's arrays (do not modify it in place).
        """
        from scipy.sparse import csr_matrix

        n = self.n_nodes
        return csr_matrix((self.weights, self.indices, self.indptr), shape=(n, n))

    def to_networkx(self, weight: str = "weight"):
        """Return a :class:`networkx.Graph` (stimulus ids as nodes, ``weight`` attributes).

        Parameters
        ----------
        weight : str
            Name of the edge attribute that holds the edge lengths.

        Returns
        -------
        graph : networkx.Graph
            Every node (isolated ones too) under its stimulus id, every edge with its length.
        """
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(self.stimulus.tolist())
        s, t, w = self.edges()
        ids = self.stimulus
        g.add_weighted_edges_from(
            zip(ids[s].tolist(), ids[t].tolist(), w.tolist(), strict=True), weight=weight
        )
        return g

    def __repr__(self) -> str:
        n_comp = self.components()[0] if self.n_nodes else 0
        how = self.attrs.get("construction", "graph")
        return (
            f"<brainalign.ricci.Graph ({how}): {self.n_nodes} nodes, {self.n_edges} edges, "
            f"{n_comp} component(s)>"
        )


def _from_coo(
    n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, stimulus: np.ndarray, attrs: dict
) -> Graph:
    """Build a :class:`Graph` from undirected (src, dst, w) triplets (first duplicate kept)."""
    keep = src != dst
    src, dst, w = src[keep], dst[keep], np.asarray(w, dtype=np.float64)[keep]
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    key = a.astype(np.int64) * n + b
    key, first = np.unique(key, return_index=True)
    a, b, w = a[first], b[first], w[first]
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    ww = np.concatenate([w, w])
    order = np.lexsort((cols, rows))
    rows, cols, ww = rows[order], cols[order], ww[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return Graph(indptr, cols.astype(np.int64), ww, np.asarray(stimulus, dtype=str), attrs)


def _check_weights(w: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(w)):
        raise ValueError(
            f"{name} holds {int((~np.isfinite(w)).sum())} NaN or infinite edge weight(s); "
            "edge weights must be finite positive lengths."
        )
    if np.any(w <= 0):
        bad = w[w <= 0]
        raise ValueError(
            f"{name} holds {len(bad)} edge weight(s) <= 0 ({_fmt_list(bad.tolist())}); edge "
            "weights are lengths (dissimilarities) and must be > 0. Drop zero-length pairs "
            "or add a small offset."
        )


def _asymmetric(name: str, i: int, j: int, a: Any) -> None:
    """Refuse an asymmetric adjacency matrix (a directed graph), naming one bad pair."""
    raise ValueError(
        f"{name} must be a symmetric adjacency matrix (an undirected graph); got an "
        f"asymmetric one: {name}[{i}, {j}] = {float(a[i, j]):g} but {name}[{j}, {i}] = "
        f"{float(a[j, i]):g}. Representational graphs have no direction, so brainalign does "
        "not compute directed curvature; symmetrise it, e.g. (A + A.T) / 2 or "
        "np.maximum(A, A.T)."
    )


def as_graph(x: Any, *, weight: str = "weight", name: str = "graph") -> Graph:
    """Return ``x`` as a :class:`Graph`.

    Parameters
    ----------
    x : Graph or networkx.Graph or array_like or scipy.sparse matrix
        A brainalign graph; a networkx graph whose edges carry ``weight`` (edges without it
        get 1.0, as in GraphRicciCurvature; nodes keep ``G.nodes()`` order and ``str(node)``
        becomes the stimulus id); or a symmetric weighted adjacency matrix, dense (0 means
        no edge) or sparse.
    weight : str
        The networkx edge attribute holding the edge length.
    name : str
        Its name in messages.

    Returns
    -------
    graph : Graph
        The graph.

    Raises
    ------
    TypeError
        For an unsupported type, or a directed or multi- networkx graph.
    ValueError
        For an asymmetric matrix (a directed graph), or NaN, infinite or negative weights.

    Notes
    -----
    Directed graphs are refused (GraphRicciCurvature's in-/out-neighbour curvature of a
    ``networkx.DiGraph`` is not computed): graphs over stimuli come from symmetric RDMs
    and have no direction; see :func:`ollivier_ricci`.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.ricci import as_graph
    >>> g = as_graph(np.array([[0, 1.0, 0], [1.0, 0, 2.0], [0, 2.0, 0]]))
    >>> g.n_nodes, g.n_edges
    (3, 2)
    """
    if isinstance(x, Graph):
        return x
    if type(x).__module__.startswith("networkx"):
        import networkx as nx

        if x.is_directed():
            raise TypeError(
                f"{name} must be an undirected graph (networkx.Graph), got a directed "
                f"{type(x).__name__}. Representational graphs have no direction (RDMs are "
                "symmetric; knn_graph joins i and j when either is among the other's k "
                "nearest), so brainalign does not compute GraphRicciCurvature's directed "
                "(in-/out-neighbour) curvature; symmetrise the graph with G.to_undirected()."
            )
        if x.is_multigraph():
            raise TypeError(
                f"{name} must be an undirected simple graph, got a {type(x).__name__}; "
                "convert it with networkx.Graph(G)."
            )
        nodes = list(x.nodes())
        index = {v: i for i, v in enumerate(nodes)}
        edges = [(index[a], index[b], d.get(weight, 1.0)) for a, b, d in x.edges(data=True)]
        has_w = bool(nx.get_edge_attributes(x, weight))
        if edges:
            arr = np.asarray(edges, dtype=np.float64)
            src, dst, w = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
            if not has_w:
                w = np.ones_like(w)
        else:
            src = dst = np.zeros(0, dtype=np.int64)
            w = np.zeros(0)
        _check_weights(w[src != dst], name)
        ids = np.array([str(v) for v in nodes])
        return _from_coo(len(nodes), src, dst, w, ids, {"construction": "networkx"})
    from scipy import sparse

    if sparse.issparse(x):
        a = sparse.coo_matrix(x)
        if a.shape[0] != a.shape[1]:
            raise ValueError(f"{name} must be a square adjacency matrix, got shape {a.shape}.")
        asym = abs(a - a.T).tocoo()
        if asym.nnz and asym.data.max() > 1e-12 * max(abs(a).max(), 1e-300):
            k = int(np.argmax(asym.data))
            _asymmetric(name, int(asym.row[k]), int(asym.col[k]), a.tocsr())
        n = a.shape[0]
        w = np.asarray(a.data, dtype=np.float64)
        nz = w != 0
        _check_weights(w[nz & (a.row != a.col)], name)
        ids = np.array([str(i) for i in range(n)])
        return _from_coo(n, a.row[nz], a.col[nz], w[nz], ids, {"construction": "adjacency"})
    if isinstance(x, xr.DataArray) and all(d in x.dims for d in RDM_DIMS):
        raise TypeError(
            f"{name} is an RDM, not a graph; build one with knn_graph(rdm, k=...) or "
            "epsilon_graph(rdm, eps=...)."
        )
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise TypeError(
            f"{name} must be a Graph, a networkx.Graph or a square adjacency matrix; got "
            f"{type(x).__name__} of shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite entries; 0 marks a missing edge.")
    if not np.allclose(arr, arr.T, rtol=0, atol=1e-12 * max(np.abs(arr).max(), 1e-300)):
        i, j = np.unravel_index(int(np.argmax(np.abs(arr - arr.T))), arr.shape)
        _asymmetric(name, int(i), int(j), arr)
    src, dst = np.nonzero(np.triu(arr, 1))
    _check_weights(arr[src, dst], name)
    ids = np.array([str(i) for i in range(arr.shape[0])])
    return _from_coo(arr.shape[0], src, dst, arr[src, dst], ids, {"construction": "adjacency"})


def _rdm_values(
    rdm_or_data: Any, metric: str, device: Any, name: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Square dissimilarities (NaN = missing pair), stimulus ids and provenance."""
    from brainalign.rsa._rdm import as_rdm, as_responses, rdm

    if isinstance(rdm_or_data, xr.DataArray) and all(d in rdm_or_data.dims for d in RDM_DIMS):
        r = as_rdm(rdm_or_data, name=name)
    elif isinstance(rdm_or_data, xr.DataArray):
        r = rdm(as_responses(rdm_or_data, name=name), metric=metric, device=device)
    else:
        arr = np.asarray(
            rdm_or_data.detach().cpu() if hasattr(rdm_or_data, "detach") else rdm_or_data,
            dtype=np.float64,
        )
        if (
            arr.ndim == 2
            and arr.shape[0] == arr.shape[1]
            and np.allclose(np.diag(arr), 0, equal_nan=False)
        ):
            r = as_rdm(arr, name=name)
        else:
            r = rdm(as_responses(arr, name=name), metric=metric, device=device)
    extra = [d for d in r.dims if d not in RDM_DIMS]
    if extra:
        raise ValueError(
            f"{name} must be one RDM; it has extra dims {extra}. Select one with .sel() or "
            "build one graph per RDM in a loop or a list comprehension."
        )
    d = np.asarray(r.transpose(*RDM_DIMS).values, dtype=np.float64)
    ids = np.asarray(r[RDM_DIMS[0]].values).astype(str)
    off = ~np.eye(len(d), dtype=bool)
    vals = d[off]
    if np.isinf(vals).any():
        raise ValueError(f"{name} holds infinite dissimilarities; they must be finite (or NaN).")
    neg = vals[vals < 0]
    if len(neg):
        raise ValueError(
            f"{name} holds {len(neg)} negative dissimilarit(y/ies) ({_fmt_list(neg.tolist())}); "
            "a graph needs non-negative lengths."
        )
    if np.isnan(vals).all():
        raise ValueError(f"{name} has no finite dissimilarity between distinct stimuli.")
    keep = {k: v for k, v in r.attrs.items() if isinstance(v, (str, int, float))}
    return d, ids, keep


def _finish(graph: Graph, connected: str, name: str, zero: np.ndarray | None = None) -> Graph:
    if zero is not None and zero.any():
        raise ValueError(
            f"{name} puts {int(zero.sum())} edge(s) at dissimilarity 0 (identical stimuli, "
            "e.g. duplicates); edge lengths must be > 0. Merge or drop the duplicate stimuli."
        )
    n_comp, labels = graph.components()
    graph.attrs["n_components"] = n_comp
    if n_comp > 1 and connected != "ignore":
        sizes = np.bincount(labels)
        small = graph.stimulus[labels != 0]
        msg = (
            f"the graph built from {name} is disconnected: {n_comp} components of sizes "
            f"{_fmt_list(sizes.tolist())}; nodes outside the largest: "
            f"{_fmt_list(small.tolist())}. "
            "Raise k (or eps), or pass connected='warn' to go on: curvature and flow then run "
            "per component and never drop nodes."
        )
        if connected == "raise":
            raise ValueError(msg)
        warn(msg)
    return graph


#: The options :func:`knn_graph` and :func:`epsilon_graph` share, described once and filled
#: into their ``%(graph_options)s`` placeholders.
_GRAPH_OPTIONS = {
    "graph_options": """weight : {"distance", "unit"}
    Edge length: the dissimilarity, or 1 (unweighted graph).
metric : str
    RDM metric when responses are given.
connected : {"raise", "warn", "ignore"}
    What to do when the graph is disconnected.
device : str or torch.device, optional
    Device for the RDM of responses."""
}


# fills the ``%(graph_options)s`` placeholder of a graph builder's docstring
_fill_graph_options = functools.partial(fill_doc, entries=_GRAPH_OPTIONS)


@_fill_graph_options
def knn_graph(
    rdm_or_data: Any,
    k: int = 10,
    *,
    mutual: bool = False,
    weight: Literal["distance", "unit"] = "distance",
    metric: str = "euclidean",
    connected: Literal["raise", "warn", "ignore"] = "raise",
    device: Any = None,
) -> Graph:
    """Symmetric k-nearest-neighbour graph over the stimuli.

    Node ``i`` is joined to ``j`` when ``j`` is among the ``k`` most similar stimuli of ``i``
    or ``i`` among those of ``j`` (``mutual=True``: both), with edge length the
    dissimilarity, as in Torbati et al. (2025). Ties at the k-th distance go to the lower
    stimulus index. Missing pairs (NaN, as in incomplete human-judgment RDMs) are never
    edges: each stimulus then takes its ``k`` nearest *rated* partners.

    Parameters
    ----------
    rdm_or_data : xarray.DataArray or array_like
        An RDM (dims ``stimulus_a``, ``stimulus_b``; NaN marks an unrated pair), a square
        dissimilarity matrix with zero diagonal, or responses (``stimulus`` x features),
        whose RDM is computed with :func:`brainalign.rsa.rdm` and ``metric``.
    k : int
        Neighbours per stimulus, ``1 <= k < n``.
    mutual : bool
        Keep only mutual neighbours.
    %(graph_options)s

    Returns
    -------
    graph : Graph
        The graph; ``attrs`` record the construction and the number of components.

    Raises
    ------
    ValueError
        For ``k`` outside ``[1, n)``, negative or infinite dissimilarities, zero-length edges,
        or (``connected="raise"``) a disconnected graph.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.ricci import knn_graph
    >>> x = np.random.default_rng(0).normal(size=(30, 5))
    >>> g = knn_graph(x, k=4)
    >>> g.n_nodes, bool(g.degree.min() >= 4)
    (30, True)
    """
    check_option("weight", weight, WEIGHTS)
    check_option("connected", connected, CONNECTED)
    d, ids, prov = _rdm_values(rdm_or_data, metric, device, "rdm_or_data")
    n = len(d)
    check_number("k", k, low=1, integer=True)
    if k >= n:
        raise ValueError(f"k must be < the number of stimuli ({n}), got k={k}.")
    dd = np.where(np.isnan(d), np.inf, d)
    np.fill_diagonal(dd, np.inf)
    n_valid = np.isfinite(dd).sum(axis=1)
    # Stable sort: ties at the k-th distance go to the lower stimulus index.
    nbr = np.argsort(dd, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n), k)
    cols = nbr.ravel()
    ok = np.isfinite(dd[rows, cols])
    rows, cols = rows[ok], cols[ok]
    if mutual:
        a = np.zeros((n, n), dtype=bool)
        a[rows, cols] = True
        both = a & a.T
        rows, cols = np.nonzero(np.triu(both, 1))
    w = dd[rows, cols]
    zero = w == 0
    if weight == "unit":
        w = np.ones_like(w)
    few = np.flatnonzero(n_valid < k)
    attrs = {
        "construction": "mutual_knn" if mutual else "knn",
        "k": int(k),
        "weight": weight,
        **{f"rdm_{key}": v for key, v in prov.items()},
    }
    if len(few):
        attrs["n_short_rows"] = len(few)
    g = _from_coo(n, rows, cols, w, ids, attrs)
    return _finish(g, connected, "rdm_or_data", zero)


@_fill_graph_options
def epsilon_graph(
    rdm_or_data: Any,
    eps: float | None = None,
    *,
    quantile: float | None = None,
    weight: Literal["distance", "unit"] = "distance",
    metric: str = "euclidean",
    connected: Literal["raise", "warn", "ignore"] = "raise",
    device: Any = None,
) -> Graph:
    """Epsilon-neighbourhood graph: an edge for every pair with dissimilarity ``<= eps``.

    Parameters
    ----------
    rdm_or_data : xarray.DataArray or array_like
        As in :func:`knn_graph`.
    eps : float, optional
        The radius (in the RDM's units). Give ``eps`` or ``quantile``.
    quantile : float, optional
        The radius as a quantile of the finite off-diagonal dissimilarities, in (0, 1]:
        scale-free.
    %(graph_options)s

    Returns
    -------
    graph : Graph
        The graph.

    Raises
    ------
    ValueError
        For neither or both of ``eps``/``quantile``, values out of range, bad
        dissimilarities, or a disconnected graph.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.ricci import epsilon_graph
    >>> x = np.random.default_rng(0).normal(size=(30, 5))
    >>> epsilon_graph(x, quantile=0.3).n_nodes
    30
    """
    check_option("weight", weight, WEIGHTS)
    check_option("connected", connected, CONNECTED)
    if (eps is None) == (quantile is None):
        raise ValueError(
            f"give exactly one of eps= and quantile=; got eps={eps!r}, quantile={quantile!r}."
        )
    d, ids, prov = _rdm_values(rdm_or_data, metric, device, "rdm_or_data")
    n = len(d)
    iu = np.triu_indices(n, 1)
    vals = d[iu]
    if quantile is not None:
        check_number("quantile", quantile, low=0, high=1, closed="right")
        eps = float(np.quantile(vals[np.isfinite(vals)], quantile))
    else:
        check_number("eps", eps, low=0, closed="neither")
    sel = np.isfinite(vals) & (vals <= eps)
    rows, cols, w = iu[0][sel], iu[1][sel], vals[sel]
    zero = w == 0
    if weight == "unit":
        w = np.ones_like(w)
    attrs = {
        "construction": "epsilon",
        "eps": float(eps),
        "weight": weight,
        **{f"rdm_{key}": v for key, v in prov.items()},
    }
    if quantile is not None:
        attrs["quantile"] = float(quantile)
    g = _from_coo(n, rows, cols, w, ids, attrs)
    return _finish(g, connected, "rdm_or_data", zero)


def disjoint_union(graphs: list[Graph]) -> tuple[Graph, np.ndarray, np.ndarray]:
    """One graph holding ``graphs`` side by side (for batched kernels).

    Returns
    -------
    union : Graph
        The disjoint union.
    node_offset, edge_offset : ndarray of int64, shape (len(graphs) + 1,)
        Where each graph's nodes and (undirected, :meth:`Graph.edges` order) edges start.
    """
    n = np.array([g.n_nodes for g in graphs], dtype=np.int64)
    e = np.array([g.n_edges for g in graphs], dtype=np.int64)
    node_off = np.concatenate([[0], np.cumsum(n)])
    edge_off = np.concatenate([[0], np.cumsum(e)])
    if len(graphs) == 1:
        return graphs[0], node_off, edge_off
    nnz_off = np.concatenate([[0], np.cumsum(2 * e)])
    indptr = np.concatenate(
        [[0]] + [g.indptr[1:] + nnz_off[i] for i, g in enumerate(graphs)]
    ).astype(np.int64)
    indices = np.concatenate([g.indices + node_off[i] for i, g in enumerate(graphs)])
    weights = np.concatenate([g.weights for g in graphs])
    stim = np.concatenate([g.stimulus for g in graphs])
    return Graph(indptr, indices.astype(np.int64), weights, stim, {}), node_off, edge_off


def graphs_of(x: Any, name: str = "graph") -> tuple[list[Graph], Any]:
    """Split one graph / a list / a dict of graphs into a list and a key structure."""
    if isinstance(x, Mapping):
        keys = list(x)
        return [as_graph(x[k], name=f"{name}[{k!r}]") for k in keys], keys
    if isinstance(x, (list, tuple)):
        return [as_graph(g, name=f"{name}[{i}]") for i, g in enumerate(x)], len(x)
    return [as_graph(x, name=name)], None
