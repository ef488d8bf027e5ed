"""Geodesic RDMs (RGDM): shortest paths over a graph of the nearest stimulus pairs."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option, check_type
from brainalign._docdict import fill_doc
from brainalign._logging import logger
from brainalign._memory import check_fits, resolve_budget
from brainalign.trsa._common import RDMBatch
from brainalign.trsa._kernels import (
    average_ranks,
    cpu_path,
    fill_disconnected,
    geodesic_cpu,
    knn_mask,
    minmax,
    pooled_quantiles,
    quantiles_sorted,
    rank_minmax,
    rsatoolbox_edges,
    shortest_paths,
    small_op_threads,
    sorted_rows,
    to_square,
    upper_indices,
)
from brainalign.trsa._transforms import SEMANTICS, check_thresholds, resolve_rank, rgtm_vectors

GeodesicMethod = Literal["twostep", "p_shortest", "k_nearest", "p_nearest"]
GEODESIC_METHODS = ("twostep", "p_shortest", "k_nearest", "p_nearest")
TIE_RTOL = 1e-10  # geodesic distances this close (relative to the largest) rank as ties


def tie_rtol(dtype: torch.dtype, n: int) -> float:
    """Relative distance below which geodesic distances of ``n`` stimuli tie.

    A path has at most ``n - 1`` edges, each weight (at most 1, the largest distance at
    least 1) rounded by a few ``eps`` of the dtype, so two sums that are equal in exact
    arithmetic differ by up to ~``2 (n - 1) * 3 eps`` of the largest: ``8 (n - 1) eps``,
    and at least ``TIE_RTOL``. In float64 that is ``TIE_RTOL`` up to n = 56,000; in
    float32 (1.2e-5 at n = 14) it keeps the ties that float32 rounding would break.
    """
    return max(TIE_RTOL, 8 * (n - 1) * torch.finfo(dtype).eps)


def _resolve_flag(name: str, value: Any, default: bool, semantics: str) -> bool:
    if value is None:
        return default
    check_type(name, value, (bool,), "a bool or None")
    if semantics == "rsatoolbox" and value != default:
        raise ValueError(
            f"{name}={value} cannot be combined with semantics='rsatoolbox' (rsatoolbox "
            f"0.3.2 behaves as {name}={default}); got {name}={value}."
        )
    return value


def geodesic_vectors(
    batch: RDMBatch,
    lower: float,
    upper: float,
    method: str,
    p: float,
    k: int,
    rank: bool,
    rank_output: bool,
    drop_zero_edges: bool,
    disconnected: float | None,
    semantics: str,
) -> tuple[torch.Tensor, int]:
    """Geodesic upper-triangle vectors of ``batch``, and the number of disconnected pairs."""
    n = batch.n
    # the (n, n) edge weights, path lengths and result of every RDM of the batch (the CPU
    # kernel works on vectors and per-thread rows, about half of that)
    copies = 2 if cpu_path(batch.v) else 4
    check_fits(
        copies * batch.v.shape[0] * n * n * batch.v.element_size(),
        f"trsa: geodesic paths of {batch.v.shape[0]} RDMs of {n} stimuli",
        resolve_budget(None, batch.v.device),
    )
    if (
        method == "twostep"
        and semantics == "rsatoolbox"
        and drop_zero_edges
        and cpu_path(batch.v)
        and lower < upper
    ):  # rsatoolbox's two-step on CPU: one compiled pass from thresholds to kept edges
        a, b = pooled_quantiles(batch.v, np.array([lower, upper]))
        fused = rsatoolbox_edges(batch.v, a, b)
        if fused is not None:
            out, n_bad = geodesic_cpu(*fused, disconnected)
            return out, n_bad
    if method == "twostep":
        w = rgtm_vectors(batch, lower, upper, rank, semantics)
        if semantics == "rsatoolbox":
            const = w.amax(dim=1) == w.amin(dim=1)
            if bool(const.any()):
                batch.check_not_constant(w, " after rsatoolbox's geo-topological transform")
            w = minmax(w)
        keep = w < 1
    else:
        batch.check_not_constant()
        w = rank_minmax(batch.v)[0] if rank else minmax(batch.v)
        if method == "p_shortest":
            thr = quantiles_sorted(sorted_rows(w), np.array([p]))[0]
            keep = w <= thr[:, None]
        else:
            keep = torch.ones_like(w, dtype=torch.bool)
    if drop_zero_edges:
        keep &= w != 0
    if method in ("k_nearest", "p_nearest"):
        kk = k if method == "k_nearest" else int(p * n)
        keep_sq = knn_mask(to_square(w, n), kk, to_square(keep.to(w.dtype), n) > 0)
        i, j = upper_indices(n, w.device)
        keep = keep_sq[:, i, j]
    if cpu_path(w):
        out, n_bad = geodesic_cpu(w, keep, disconnected)
    else:
        weights = torch.where(keep, w, torch.full_like(w, float("inf")))
        d = shortest_paths(to_square(weights, n, diagonal=0.0))
        d, n_bad = fill_disconnected(d, disconnected)
        i, j = upper_indices(n, w.device)
        out = d[:, i, j]
        n_bad //= 2
    if rank_output:
        out = average_ranks(out, rtol=tie_rtol(out.dtype, n))
    return out, n_bad


@fill_doc
def rgdm(
    rdm: Any,
    lower: float = 0.0,
    upper: float = 0.075,
    *,
    method: GeodesicMethod = "twostep",
    p: float = 0.05,
    k: int = 5,
    rank: bool | None = None,
    rank_output: bool | None = None,
    drop_zero_edges: bool | None = None,
    disconnected: float | None = None,
    semantics: str = "authors",
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Representational geodesic distance matrix (RGDM) of each RDM.

    A graph over the stimuli keeps the short dissimilarities as weighted edges; the RGDM is
    the length of the shortest path between every two stimuli, then ranked (the authors'
    ``geodesic_transform``, Lin & Kriegeskorte 2023, arXiv:2309.11028). Methods:

    - ``"twostep"``: the edges are the RGTM (:func:`rgtm` with ``lower``, ``upper``) minus
      the edges whose RGTM is 1 (beyond the ``upper`` quantile). The defaults
      ``lower=0, upper=0.075`` are the authors' (``gd_after_gt``).
    - ``"p_shortest"``: the shortest fraction ``p`` of the edges of ``x = minmax(rank(d))``
      (``x <= quantile(x, p)``), weighted by ``x``.
    - ``"k_nearest"``: each stimulus's ``k`` nearest neighbours in ``x`` (an edge is kept
      when either end is among the other's ``k`` nearest; ties go to the lower index).
    - ``"p_nearest"``: ``"k_nearest"`` with ``k = int(p * n_stimuli)`` (authors).

    Edges of length 0 (pairs the RGTM sets to 0, the smallest pair of ``x``) are kept as
    zero-length edges: the stimuli they join are at geodesic distance 0. The authors' code
    and rsatoolbox build the graph with networkx ``from_numpy_array``, which reads a zero
    weight as "no edge", dropping those edges (with ``lower=0.2`` a fifth of all pairs);
    ``drop_zero_edges=True`` reproduces that.

    Parameters
    ----------
    rdm : xarray.DataArray or array_like
        RDMs, dims ``(..., "stimulus_a", "stimulus_b")``, or one square matrix; leading
        dims are kept and each RDM is transformed on its own.
    lower, upper : float
        RGTM quantiles for ``"twostep"`` (ignored by the other methods).
    method : {"twostep", "p_shortest", "k_nearest", "p_nearest"}
        How the graph is built.
    p : float
        Fraction in [0, 1] for ``"p_shortest"`` and ``"p_nearest"`` (authors' default 0.05).
    k : int
        Neighbours per stimulus for ``"k_nearest"`` (>= 1).
    rank : bool, optional
        Rank-transform the RDM before building the graph (default True; False with
        ``semantics="rsatoolbox"``).
    rank_output : bool, optional
        Return the average ranks (1 ... n_pairs) of the geodesic distances, as the authors
        do (default True; False with ``semantics="rsatoolbox"``, which returns lengths).
        Distances within ``1e-10`` times the largest of each other tie (in float32,
        ``8 (n - 1) eps32``, the rounding of a path of up to n - 1 edges): sums of the same
        edges taken in different orders differ in their last bits, which would otherwise
        break ties at random.
    drop_zero_edges : bool, optional
        Drop zero-weight edges as networkx does (default False; True with
        ``semantics="rsatoolbox"``). For comparison with the authors' code and rsatoolbox.
    disconnected : float, optional
        Geodesic distance given to pairs with no path between them. Default: per RDM, the
        largest finite geodesic distance plus 1 (one maximal edge more than any path), so
        ranked they tie above every connected pair, exactly as ``inf`` ranks in the authors'
        code. The count is logged at INFO level and stored in ``attrs["n_disconnected"]``.
    semantics : {"authors", "rsatoolbox"}
        ``"rsatoolbox"``, with ``method="twostep"``, reproduces
        ``rsatoolbox.rdm.geodesic_transform(geotopological_transform(rdms, lower, upper))``
        0.3.2 (pooled quantiles, per-RDM min-max scaling, zero-weight edges dropped, no
        ranks), except that disconnected pairs get ``disconnected`` instead of ``inf``.
        ``lower=0, upper=1`` gives ``geodesic_transform(rdms)`` alone.
    device : str or torch.device, optional
        Where to compute (CPU: numba-compiled Floyd–Warshall over threads; GPU: batched
        torch Floyd–Warshall).
    %(dtype)s

    Returns
    -------
    rgdm : xarray.DataArray
        Same dims and coords as ``rdm``, zero diagonal, always finite; attrs record the
        method, its parameters and ``n_disconnected``.

    Raises
    ------
    ValueError
        Unknown method or semantics; parameters out of range; non-finite, constant or
        too small RDMs; a flag that contradicts ``semantics="rsatoolbox"``, or
        ``semantics="rsatoolbox"`` with a method other than ``"twostep"``.

    Notes
    -----
    With zero-length edges kept, a ``lower`` quantile above 0 joins the stimuli of every
    pair below it at distance 0; when those pairs connect all stimuli (``lower=0.2`` usually
    suffices for RDMs of a few dozen stimuli) every geodesic distance is 0 and the RGDM is
    constant. The authors' defaults (``lower=0``) keep a single zero-length edge (the
    smallest pair). rsatoolbox's ``geodesic_transform`` after
    ``geotopological_transform(rdms, 0.2, 0.8)`` instead drops the zero-weight edges, which
    changes most of its geodesic distances (the tests find over half changed on random
    RDMs).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import trsa
    >>> x = np.array([0.0, 1, 3, 6, 10])[:, None]  # points on a line, gaps 1, 2, 3, 4
    >>> d = np.abs(x - x.T)
    >>> g = trsa.rgdm(d, method="k_nearest", k=1, rank=False, rank_output=False)
    >>> (g.values[0] * 9).round(6).tolist()  # path lengths along the line, in units of 1/9
    [0.0, 0.0, 1.0, 3.0, 6.0]
    """
    check_option("method", method, GEODESIC_METHODS)
    check_option("semantics", semantics, SEMANTICS)
    if semantics == "rsatoolbox" and method != "twostep":
        raise ValueError(
            "semantics='rsatoolbox' exists only for method='twostep' (rsatoolbox 0.3.2 has "
            f"no other geodesic transform); got method={method!r}."
        )
    rank = resolve_rank(rank, semantics)
    rank_output = _resolve_flag("rank_output", rank_output, semantics == "authors", semantics)
    drop_zero_edges = _resolve_flag(
        "drop_zero_edges", drop_zero_edges, semantics == "rsatoolbox", semantics
    )
    check_thresholds(lower, upper)
    check_number("p", p, low=0, high=1)
    check_number("k", k, low=1, integer=True)
    if disconnected is not None:
        check_number("disconnected", disconnected, low=0)
    batch = RDMBatch(rdm, "rdm", device, dtype)
    with small_op_threads(batch.v.numel()):
        out, n_bad = geodesic_vectors(
            batch,
            lower,
            upper,
            method,
            p,
            k,
            rank,
            rank_output,
            drop_zero_edges,
            disconnected,
            semantics,
        )
    if n_bad:
        logger.info(
            "rgdm: %d stimulus pair(s) have no path between them; set to %s.",
            n_bad,
            "max finite + 1" if disconnected is None else disconnected,
        )
    attrs = {
        "kind": "rgdm",
        "method": method,
        "rank": int(rank),
        "rank_output": int(rank_output),
        "drop_zero_edges": int(drop_zero_edges),
        "semantics": semantics,
        "n_disconnected": n_bad,
    }
    if method == "twostep":
        attrs.update(lower=float(lower), upper=float(upper))
    elif method == "k_nearest":
        attrs["k"] = int(k)
    else:
        attrs["p"] = float(p)
    return batch.wrap(out, attrs, "rgdm")
