"""Nearest-neighbour alignment: mutual k-NN, Jaccard, cycle and rank (LCS) overlap.

Each representation defines, for every stimulus, the list of its ``k`` nearest other
stimuli (by cosine similarity or raw inner product). The measures compare these lists
between the two representations, stimulus by stimulus, and average over stimuli:

* mutual k-NN (Huh et al. 2024): ``|N_a(i) ∩ N_b(i)| / k``;
* Jaccard: ``|N_a(i) ∩ N_b(i)| / |N_a(i) ∪ N_b(i)|``;
* cycle k-NN (Huh et al. 2024): 1 when ``i`` is among the ``a``-neighbours of one of its
  ``b``-neighbours, else 0;
* rank: the longest common subsequence of the two neighbour lists, each ordered from the
  most to the least similar neighbour, divided by ``k`` (platonic-rep's ``lcs_knn`` / k).

Neighbour lists come from :func:`torch.topk` on blocks of rows of the similarity matrix
(never a full sort), so memory stays bounded for large numbers of stimuli; a stimulus is
never its own neighbour. Overlaps are found by binary search in sorted neighbour lists
(the cycle kind: in the sorted integer codes ``j * n + m`` of the edges ``j -> m``), in
``O(n k log(n k))`` time and ``O(n k)`` memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._memory import check_fits, resolve_budget
from brainalign.align._inputs import apply_pair, result_attrs

__all__ = ["knn_overlap", "mutual_knn"]


_METRICS = ("cosine", "inner")
_KINDS = ("jaccard", "cycle", "rank")
_SIMILARITY_IDS = {
    "mutual": "platonic/mutual_knn_topk",
    "jaccard": "llm_repsim/jaccard_similarity",
    "cycle": "platonic/cycle_knn_topk",
    "rank": "platonic/lcs_knn_topk",
}
# Elements of the similarity matrix held at once (a block of rows): 2**25 float64 = 256 MiB.
_BLOCK_ELEMENTS = 2**25


def _check_k(k: Any) -> int:
    check_number("k", k, low=1, integer=True)
    return int(k)


def _similarity_block(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of ``x @ x.T``.

    On the CPU the product goes to NumPy's BLAS: PyTorch's CPU wheels link MKL, which runs
    it about 2x slower than NumPy's OpenBLAS on non-Intel CPUs (measured at 2000 x 1024,
    float32: 0.20 s vs 0.10 s), and NumPy computes ``x @ x.T`` of one array as a symmetric
    rank-k update (half the arithmetic) when the block is the whole matrix.
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return x[start:stop] @ x.T
    xn = x.numpy()
    if start == 0 and stop == x.shape[0]:
        return torch.from_numpy(xn @ xn.T)
    return torch.from_numpy(xn[start:stop] @ xn.T)


def _knn_indices(x: torch.Tensor, k: int, metric: str) -> torch.Tensor:
    """Return the ``k`` nearest other rows of each row of ``x``, most similar first.

    Parameters
    ----------
    x : torch.Tensor, shape (n, p)
        One row per stimulus.
    k : int
        Number of neighbours, ``1 <= k < n``.
    metric : {"cosine", "inner"}
        Similarity: cosine (rows L2-normalised first) or raw inner product.

    Returns
    -------
    idx : torch.Tensor of int64, shape (n, k)
        Neighbour indices per row, in decreasing similarity (ties in arbitrary order).
    """
    n = x.shape[0]
    if k >= n:
        raise ValueError(
            f"k must be smaller than the number of stimuli in common ({n}), got k={k}: each "
            f"stimulus has only {n - 1} other stimuli to be its neighbours."
        )
    if metric == "cosine":
        norms = torch.linalg.vector_norm(x, dim=1)
        zero = norms == 0
        if bool(zero.any()):
            raise ValueError(
                f"metric='cosine' is undefined for a stimulus whose response vector is all "
                f"zeros; {int(zero.sum())} of {n} stimuli are (rows "
                f"{torch.nonzero(zero).flatten()[:10].tolist()}). Drop them or use "
                f"metric='inner'."
            )
        x = x / norms[:, None]
    # a block of rows of the similarity matrix, and topk's copy of it, within the budget
    budget = resolve_budget(None, x.device)
    check_fits(2 * n * x.element_size(), f"knn: one row of the ({n}, {n}) similarities", budget)
    room = min(_BLOCK_ELEMENTS, budget // (2 * x.element_size()))
    block = max(1, min(n, room // max(n, 1)))
    out = torch.empty((n, k), dtype=torch.long, device=x.device)
    for start in range(0, n, block):  # blocks of rows bound the memory, not a stimulus loop
        stop = min(start + block, n)
        sim = _similarity_block(x, start, stop)
        rows = torch.arange(stop - start, device=x.device)
        sim[rows, rows + start] = -torch.inf  # a stimulus is not its own neighbour
        out[start:stop] = torch.topk(sim, k, dim=1, largest=True, sorted=True).indices
    return out


def _member(query: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Whether each element of ``query`` is in ``codes`` (sort + binary search)."""
    table = codes.flatten().sort().values
    pos = torch.searchsorted(table, query).clamp_max(table.numel() - 1)
    return table[pos] == query


def _n_shared(ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``|N_a(i) ∩ N_b(i)|`` for every row ``i`` (int64, shape (n,))."""
    table = ia.sort(dim=1).values  # one sorted row per stimulus: a batched binary search
    pos = torch.searchsorted(table, ib).clamp_max(ia.shape[1] - 1)
    return (table.gather(1, pos) == ib).sum(dim=1)


def _cycle(ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """1 where ``i`` is an ``a``-neighbour of one of its ``b``-neighbours (shape (n,)).

    The edges ``j -> m`` of ``a`` are coded ``j * n + m``; the query for stimulus ``i`` is
    the code of ``j -> i`` for each ``j`` in ``N_b(i)``.
    """
    n = ia.shape[0]
    rows = torch.arange(n, device=ia.device)[:, None]
    return _member(ib * n + rows, rows * n + ia).any(dim=1).to(torch.long)


def _lcs(ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """Longest common subsequence of each pair of rows (int64, shape (n,)).

    Row ``t`` of the dynamic programme is ``L[t, j] = max_{j' <= j} c[j']`` with
    ``c[j'] = max(L[t-1, j'], L[t-1, j'-1] + [a_t == b_j'])``, a cumulative maximum, so
    the loop runs over the ``k`` positions only, vectorised over stimuli.
    """
    n, k = ia.shape
    prev = torch.zeros((n, k + 1), dtype=torch.long, device=ia.device)
    for t in range(k):  # over neighbour ranks (k), never over stimuli
        match = (ia[:, t, None] == ib).to(torch.long)
        cand = torch.maximum(prev[:, 1:], prev[:, :-1] + match)
        row = torch.cummax(cand, dim=1).values
        prev = torch.cat([prev[:, :1], row], dim=1)
    return prev[:, -1]


def _kernel(
    what: str, k: int, metric: str
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def neighbours(x: torch.Tensor) -> torch.Tensor:
        # apply_pair hands the same tensor object for the same entry: compute each entry's
        # neighbour lists once, however many entries of the other side it meets.
        hit = cache.get(id(x))
        if hit is None or hit[0] is not x:
            hit = (x, _knn_indices(x, k, metric))
            cache[id(x)] = hit
        return hit[1]

    def kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ia, ib = neighbours(x), neighbours(y)
        if what == "mutual":
            per = _n_shared(ia, ib).to(torch.float64) / k
        elif what == "jaccard":
            shared = _n_shared(ia, ib).to(torch.float64)
            per = shared / (2 * k - shared)
        elif what == "cycle":
            per = _cycle(ia, ib).to(torch.float64)
        else:
            per = _lcs(ia, ib).to(torch.float64) / k
        return per.mean()

    return kernel


def mutual_knn(
    a: Any,
    b: Any,
    k: int = 10,
    *,
    metric: str = "cosine",
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Mutual k-nearest-neighbour alignment of two representations.

    For every stimulus ``i``, ``N_a(i)`` and ``N_b(i)`` are its ``k`` nearest other stimuli
    in ``a`` and in ``b``; the alignment is the mean over stimuli of
    ``|N_a(i) ∩ N_b(i)| / k``, from 0 (no shared neighbour) to 1 (identical neighbourhoods).
    It is platonic-rep's ``AlignmentMetrics.mutual_knn`` (Huh et al. 2024), with stimuli
    aligned by id.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim and a feature dim (``unit``, ``voxel`` ...);
        other dims broadcast, a mapping's keys become the dims ``key_dims``. The widths of
        ``a`` and ``b`` may differ.
    k : int
        Number of neighbours, ``1 <= k < n_stimuli``.
    metric : {"cosine", "inner"}
        ``"cosine"``: rows L2-normalised before the inner product (as platonic-rep's
        ``compute_score(normalize=True)``); ``"inner"``: the raw inner product.
    key_dims : tuple of str
        Dim names for the keys of mapping inputs.
    device, dtype : optional
        Where and in what precision the similarities are computed (see
        :func:`brainalign.set_config`).

    Returns
    -------
    alignment : xarray.DataArray
        The mean fraction of shared neighbours, over the broadcast dims; attrs name the
        measure, ``k`` and ``metric``.

    Raises
    ------
    ValueError
        When ``k`` is not below the number of stimuli in common, ``metric`` is unknown, or
        a stimulus has an all-zero response with ``metric="cosine"``.
    brainalign.StimulusAlignmentError
        When ``a`` and ``b`` do not hold the same stimuli.

    Notes
    -----
    A stimulus is never its own neighbour. Neighbours tied in similarity at the ``k``-th
    place are chosen arbitrarily (by :func:`torch.topk`), as in platonic-rep's argsort, so
    results on data with exact ties may differ from another implementation. With
    ``dtype="float32"`` nearly tied neighbours can swap relative to float64.

    References
    ----------
    .. [1] Huh, M., Cheung, B., Wang, T., & Isola, P. (2024). The Platonic Representation
       Hypothesis. ICML. https://github.com/minyoungg/platonic-rep

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._knn import mutual_knn
    >>> x = np.random.default_rng(0).normal(size=(20, 5))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> float(mutual_knn(a, a, k=3))
    1.0
    """
    k = _check_k(k)
    check_option("metric", metric, _METRICS)
    attrs = result_attrs(
        "mutual_knn",
        kind="similarity",
        params={"k": k, "metric": metric},
        similarity_id=_SIMILARITY_IDS["mutual"],
    )
    return apply_pair(
        _kernel("mutual", k, metric),
        a,
        b,
        key_dims=key_dims,
        attrs=attrs,
        name="mutual_knn",
        device=device,
        dtype=dtype,
        min_samples=2,
    )


def knn_overlap(
    a: Any,
    b: Any,
    k: int = 10,
    *,
    kind: str = "jaccard",
    metric: str = "cosine",
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Overlap of the k-nearest-neighbour lists of two representations.

    For every stimulus ``i``, ``N_a(i)`` and ``N_b(i)`` are its ``k`` nearest other stimuli
    in ``a`` and ``b``. The result is the mean over stimuli of

    * ``kind="jaccard"``: ``|N_a(i) ∩ N_b(i)| / |N_a(i) ∪ N_b(i)|`` (the k-NN Jaccard
      similarity of Klabunde et al.; symmetric);
    * ``kind="cycle"``: 1 when ``i`` is among the ``a``-neighbours of at least one of its
      ``b``-neighbours, else 0 (platonic-rep's ``cycle_knn(a, b)``; not symmetric);
    * ``kind="rank"``: the length of the longest common subsequence of the two neighbour
      lists, each ordered from the most to the least similar, divided by ``k``
      (platonic-rep's ``lcs_knn`` divided by ``k``). It is 1 only when both lists hold the
      same neighbours in the same order, so unlike the other kinds it rewards agreement
      on the neighbours' ranks.

    All three lie in [0, 1], 1 for identical neighbourhoods.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim and a feature dim; other dims broadcast,
        a mapping's keys become the dims ``key_dims``.
    k : int
        Number of neighbours, ``1 <= k < n_stimuli``.
    kind : {"jaccard", "cycle", "rank"}
        The overlap (above).
    metric : {"cosine", "inner"}
        ``"cosine"``: rows L2-normalised before the inner product; ``"inner"``: raw inner
        product.
    key_dims : tuple of str
        Dim names for the keys of mapping inputs.
    device, dtype : optional
        Where and in what precision the similarities are computed.

    Returns
    -------
    overlap : xarray.DataArray
        The mean overlap over stimuli, over the broadcast dims; attrs name the measure,
        ``kind``, ``k`` and ``metric``.

    Raises
    ------
    ValueError
        When ``k`` is not below the number of stimuli in common, ``kind`` or ``metric`` is
        unknown, or a stimulus has an all-zero response with ``metric="cosine"``.
    brainalign.StimulusAlignmentError
        When ``a`` and ``b`` do not hold the same stimuli.

    Notes
    -----
    A stimulus is never its own neighbour; ties at the ``k``-th place are broken
    arbitrarily (see :func:`mutual_knn`). The ``similarity_id`` attr names the closest
    entry of the similarity repository: ``llm_repsim/jaccard_similarity`` (which centres
    features first), ``platonic/cycle_knn_topk`` and ``platonic/lcs_knn_topk`` (which is
    not divided by ``k``).

    References
    ----------
    .. [1] Huh, M., Cheung, B., Wang, T., & Isola, P. (2024). The Platonic Representation
       Hypothesis. ICML. https://github.com/minyoungg/platonic-rep
    .. [2] Klabunde, M., Schumacher, T., Strohmaier, M., & Lemmerich, F. (2025). Similarity
       of neural network models: A survey of functional and representational measures.
       ACM Computing Surveys.

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._knn import knn_overlap
    >>> x = np.random.default_rng(0).normal(size=(20, 5))
    >>> a = ba.responses(x, feature_dim="unit")
    >>> float(knn_overlap(a, a, k=3, kind="rank"))
    1.0
    """
    k = _check_k(k)
    check_option("kind", kind, _KINDS)
    check_option("metric", metric, _METRICS)
    attrs = result_attrs(
        "knn_overlap",
        kind="similarity",
        params={"overlap": kind, "k": k, "metric": metric},
        similarity_id=_SIMILARITY_IDS[kind],
    )
    return apply_pair(
        _kernel(kind, k, metric),
        a,
        b,
        key_dims=key_dims,
        attrs=attrs,
        name=f"knn_{kind}",
        device=device,
        dtype=dtype,
        min_samples=2,
    )
