"""Degree-preserving rewiring of representational graphs (double-edge swaps).

A double-edge swap takes two edges ``(u, v)`` and ``(x, y)`` and replaces them with
``(u, x)`` and ``(v, y)``: every node keeps its degree. A swap that would create a self-loop
or a multi-edge is rejected, so the graph stays simple. Each new edge keeps the weight of
the edge it replaces, so the multiset of edge lengths is preserved too (Maslov & Sneppen
2002). The swap loop is a compiled kernel: adjacency rows keep a fixed length (the degree
never changes), so a neighbour test scans one row.
"""

from __future__ import annotations

import threading

import numpy as np

from brainalign._checks import check_number, check_type
from brainalign._logging import warn
from brainalign.ricci._graph import Graph, _from_coo, as_graph

_N_RETRIES = 10  # connected=True: reseeded attempts before giving up with a warning


def _has_edge(indptr, nbr, a, b):  # pragma: no cover - compiled by numba
    """Whether ``b`` is a neighbour of ``a`` (scans the shorter of the two rows)."""
    if indptr[a + 1] - indptr[a] > indptr[b + 1] - indptr[b]:
        a, b = b, a
    for p in range(indptr[a], indptr[a + 1]):
        if nbr[p] == b:
            return True
    return False


def _replace(indptr, nbr, a, old, new):  # pragma: no cover - compiled by numba
    """In row ``a``, replace neighbour ``old`` with ``new``."""
    for p in range(indptr[a], indptr[a + 1]):
        if nbr[p] == old:
            nbr[p] = new
            return


def _swap_edges(indptr, nbr, src, dst, pick_i, pick_j, flip):  # pragma: no cover - numba
    """Attempt one double-edge swap per draw, in place; return the number accepted.

    ``src``/``dst`` list the undirected edges (their weights stay at their positions),
    ``nbr`` the CSR neighbour rows (unsorted after the first swap). Draw ``t`` takes edges
    ``pick_i[t]`` = (u, v) and ``pick_j[t]`` = (x, y), reversed when ``flip[t]``, and
    rewires them to (u, x), (v, y) unless that creates a self-loop or a multi-edge.
    """
    n_done = 0
    for t in range(len(pick_i)):
        i = pick_i[t]
        j = pick_j[t]
        if i == j:
            continue
        u = src[i]
        v = dst[i]
        if flip[t]:
            x = dst[j]
            y = src[j]
        else:
            x = src[j]
            y = dst[j]
        if u == x or v == y:
            continue  # self-loop
        if _has_edge(indptr, nbr, u, x) or _has_edge(indptr, nbr, v, y):
            continue  # multi-edge
        _replace(indptr, nbr, u, v, x)
        _replace(indptr, nbr, v, u, y)
        _replace(indptr, nbr, x, y, u)
        _replace(indptr, nbr, y, x, v)
        src[i] = u
        dst[i] = x
        src[j] = v
        dst[j] = y
        n_done += 1
    return n_done


_NUMBA_FUNCS = ("_has_edge", "_replace", "_swap_edges")
_compiled: dict = {}
_compile_lock = threading.Lock()


def _numba(name: str):
    """Return the compiled kernel ``name``, compiling all of them once per process."""
    with _compile_lock:
        if not _compiled:
            import numba

            jit = numba.njit(cache=True, nogil=True)
            g = globals()
            for func in _NUMBA_FUNCS:
                g[func] = jit(g[func])  # jitted callees must be module globals for numba
                _compiled[func] = g[func]
    return _compiled[name]


def _rewire_once(graph: Graph, n_swaps: int, rng: np.random.Generator) -> tuple[Graph, int]:
    """One rewired copy of ``graph`` and the number of swaps accepted."""
    src, dst, w = graph.edges()
    e = len(src)
    if e < 2 or n_swaps == 0:
        return Graph(graph.indptr, graph.indices, graph.weights, graph.stimulus), 0
    src = src.astype(np.int64)
    dst = dst.astype(np.int64)
    nbr = graph.indices.astype(np.int64).copy()
    pick = rng.integers(0, e, size=(2, n_swaps), dtype=np.int64)
    flip = rng.random(n_swaps) < 0.5
    n_done = _numba("_swap_edges")(graph.indptr, nbr, src, dst, pick[0], pick[1], flip)
    out = _from_coo(graph.n_nodes, src, dst, w, graph.stimulus, {})
    return out, int(n_done)


def rewire(
    graph: Graph, n_swaps: int | None = None, *, seed: int = 0, connected: bool = True
) -> Graph:
    """Rewire a graph at random, keeping every degree (double-edge swaps).

    Each attempt picks two edges ``(u, v)`` and ``(x, y)`` uniformly and replaces them with
    ``(u, x)`` and ``(v, y)`` (or ``(u, y)``, ``(v, x)``), rejecting swaps that would create a
    self-loop or a multi-edge. Every node keeps its degree exactly, and each new edge keeps
    the length of the edge it replaces, so the multiset of edge lengths is unchanged: the
    null model of Maslov & Sneppen (2002) for weighted graphs.

    Parameters
    ----------
    graph : Graph or networkx.Graph or array_like
        The graph (see :func:`as_graph`).
    n_swaps : int, optional
        Swap attempts (default ``10 * n_edges``). Rejected attempts count.
    seed : int
        Seed of the random swaps, ``>= 0``.
    connected : bool
        When the input is connected and a rewiring is not, try again with other random
        swaps (up to 10 times), then warn and return the last (disconnected) rewiring.

    Returns
    -------
    rewired : Graph
        The rewired graph, over the same stimuli; ``attrs`` record ``n_swaps`` (attempts),
        ``n_accepted``, ``seed`` and ``attempt`` (the retry that gave a connected graph).

    Raises
    ------
    ValueError
        For a negative ``n_swaps`` or ``seed``.
    TypeError
        For a non-integer ``n_swaps`` or ``seed``, or a non-bool ``connected``.

    See Also
    --------
    compare : brain-versus-model statistics (permutation tests, bootstrap intervals).

    Notes
    -----
    A rewired graph is a reference for *one* graph (how far its curvature or clustering is
    from random graphs of the same degrees), not a null for comparing two systems: a
    rewiring destroys clustering, so every clustered representation differs from it,
    whether or not it corresponds to another. :func:`compare` therefore tests brain-model
    correspondence with stimulus permutations only.

    References
    ----------
    Maslov & Sneppen (2002), Science 296(5569).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.ricci import knn_graph, rewire
    >>> g = knn_graph(np.random.default_rng(0).normal(size=(40, 5)), k=4)
    >>> r = rewire(g, seed=1)
    >>> bool(np.array_equal(r.degree, g.degree))
    True
    >>> bool(np.array_equal(np.sort(r.weights), np.sort(g.weights)))
    True
    """
    graph = as_graph(graph, name="graph")
    if n_swaps is None:
        n_swaps = 10 * graph.n_edges
    check_number("n_swaps", n_swaps, low=0, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_type("connected", connected, (bool, np.bool_), "a bool")
    want = bool(connected) and graph.n_nodes > 0 and graph.components()[0] == 1
    out, n_done, attempt, ok = _rewire_connected(graph, int(n_swaps), (int(seed),), want)
    if not ok:
        warn(
            f"rewire: {_N_RETRIES} rewiring(s) (seed {seed}) of a connected graph with "
            f"{graph.n_nodes} nodes and {graph.n_edges} edges were all disconnected; "
            "returning the last one. Pass connected=False to accept disconnected rewirings "
            "silently, or use a denser graph (larger k)."
        )
    out.attrs.update(
        {
            **{k: v for k, v in graph.attrs.items() if k != "n_components"},
            "rewired": True,
            "n_swaps": int(n_swaps),
            "n_accepted": n_done,
            "seed": int(seed),
            "attempt": attempt,
            "n_components": out.components()[0],
        }
    )
    return out


def _rewire_connected(
    graph: Graph, n_swaps: int, key: tuple[int, ...], want_connected: bool
) -> tuple[Graph, int, int, bool]:
    """Rewire with seeds ``(*key, attempt)``, retrying while the result is disconnected.

    Returns the rewired graph, the swaps accepted, the attempt used and whether the
    connectivity request was met.
    """
    for attempt in range(_N_RETRIES if want_connected else 1):
        rng = np.random.default_rng([*key, attempt])
        out, n_done = _rewire_once(graph, n_swaps, rng)
        if not want_connected or out.components()[0] == 1:
            return out, n_done, attempt, True
    return out, n_done, attempt, False
