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

Neighbour lists come from blocks of rows of the similarity matrix (never a full sort), so
memory stays bounded for large numbers of stimuli; a stimulus is never its own neighbour.
On the CPU the block is a BLAS product from NumPy and a numba-compiled partial selection
(one pass over each row, keeping the ``k`` best in an insertion-sorted buffer); on other
devices, or for ``k`` above ``_NUMBA_MAX_K``, it is :func:`torch.topk`. Overlaps are found
by binary search in one sorted table of integer codes (``i * n + m`` for neighbour ``m`` of
``i``; the cycle kind: ``j * n + m`` for the edges ``j -> m``), in ``O(n k log(n k))`` time
and ``O(n k)`` memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._memory import check_fits, resolve_budget
from brainalign.align._inputs import apply_pair, result_attrs
from brainalign.rsa._compare_kernels import numba_kernel

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
# Largest k for the CPU selection kernel: each accepted neighbour costs O(k) shifts, about
# k ln(n / k) of them per row on data in random order, so torch.topk wins for large k.
_NUMBA_MAX_K = 64
_TORCH_ON_CPU = False  # set by the tests to run the device (torch) selection on the CPU


def _check_k(k: Any) -> int:
    check_number("k", k, low=1, integer=True)
    return int(k)


def _numpy_path(x: torch.Tensor) -> bool:
    """Whether ``x`` takes the CPU path (NumPy's BLAS and numba) rather than torch's.

    On 2 cores the whole CPU path stays out of torch's intra-op thread pool: torch's
    threads and OpenBLAS's both busy-wait after each operation, and alternating the two
    pools made the BLAS product 1.5x slower (25 ms vs 40 ms at 2000 x 768, float32).
    """
    return (
        x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not _TORCH_ON_CPU
    )


def _similarity_block(x: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``x @ x.T`` (a NumPy array in, a NumPy array out on the CPU).

    On the CPU the product goes to NumPy's BLAS: PyTorch's CPU wheels link MKL, which runs
    it about 2x slower than NumPy's OpenBLAS on non-Intel CPUs (measured at 2000 x 1024,
    float32: 0.20 s vs 0.10 s), and NumPy computes ``x @ x.T`` of one array as a symmetric
    rank-k update (half the arithmetic) when the block is the whole matrix.
    """
    if start == 0 and stop == x.shape[0]:
        return x @ x.T
    return x[start:stop] @ x.T


def _topk_rows(sim, k, offset, out, start, stop):  # pragma: no cover - compiled by numba
    """Write into ``out[r]`` the ``k`` largest columns of ``sim[r]``, ``start <= r < stop``.

    Column ``r + offset`` (the stimulus itself) is left out; most similar first, ties in
    increasing column.

    One pass per row; the best ``k`` so far stay sorted in a buffer, a column enters only
    when strictly above the ``k``-th (so among equal values the lower column wins). NaN
    never enters.
    """
    n = sim.shape[1]
    vals = np.empty(k, dtype=sim.dtype)
    for r in range(start, stop):
        skip = r + offset
        m = 0
        low = -np.inf
        for j in range(n):
            v = sim[r, j]
            if j == skip or not (v > low or (m < k and v == v)):
                continue
            pos = m if m < k else k - 1  # the slot freed at the end (the k-th is dropped)
            while pos > 0 and vals[pos - 1] < v:
                vals[pos] = vals[pos - 1]
                out[r, pos] = out[r, pos - 1]
                pos -= 1
            vals[pos] = v
            out[r, pos] = j
            if m < k:
                m += 1
            if m == k:
                low = vals[k - 1]


def _select(sim: Any, k: int, offset: int) -> Any:
    """Return the ``k`` most similar columns of each row of a block (diagonal at ``offset``)."""
    if isinstance(sim, np.ndarray):
        out = np.empty((sim.shape[0], k), dtype=np.int64)
        if k <= _NUMBA_MAX_K:
            # one thread: OpenBLAS's workers still spin on the other cores after the product
            numba_kernel(_topk_rows)(sim, k, offset, out, 0, sim.shape[0])
            return out
        return _topk(torch.from_numpy(sim), k, offset).numpy()
    return _topk(sim, k, offset)


def _topk(sim: torch.Tensor, k: int, offset: int) -> torch.Tensor:
    rows = torch.arange(sim.shape[0], device=sim.device)
    sim[rows, rows + offset] = -torch.inf  # a stimulus is not its own neighbour
    return torch.topk(sim, k, dim=1, largest=True, sorted=True).indices


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
        Neighbour indices per row, in decreasing similarity; on the CPU (``k`` up to
        ``_NUMBA_MAX_K``) ties in increasing index, elsewhere in :func:`torch.topk`'s order.
    """
    n = x.shape[0]
    if k >= n:
        raise ValueError(
            f"k must be smaller than the number of stimuli in common ({n}), got k={k}: each "
            f"stimulus has only {n - 1} other stimuli to be its neighbours."
        )
    device, size = x.device, x.element_size()
    xp = x.numpy() if _numpy_path(x) else x
    lib = np if isinstance(xp, np.ndarray) else torch
    with np.errstate(over="ignore", under="ignore"):  # checked just below
        norms = lib.sqrt((xp * xp).sum(1))
    if metric == "cosine" and not bool((lib.isfinite(norms) & (norms > 0)).all()):
        # squares overflowed or underflowed: scale each row by its largest entry first
        peak = lib.amax(lib.abs(xp), 1)
        xp = xp / lib.where(peak > 0, peak, 1)[:, None]
        norms = lib.sqrt((xp * xp).sum(1))
    if metric == "cosine":
        zero = norms == 0
        if bool(zero.any()):
            raise ValueError(
                f"metric='cosine' is undefined for a stimulus whose response vector is all "
                f"zeros; {int(zero.sum())} of {n} stimuli are (rows "
                f"{torch.nonzero(torch.as_tensor(zero)).flatten()[:10].tolist()}). Drop them "
                f"or use metric='inner'."
            )
        xp = xp / norms[:, None]
    elif not float(norms.max()) ** 2 < torch.finfo(x.dtype).max / 2:
        big, top = float(norms.max()), float(np.sqrt(torch.finfo(x.dtype).max / 2))
        raise ValueError(
            f"metric='inner' overflows {x.dtype}: the largest response vector has norm "
            f"{f'{big:.3g}' if np.isfinite(big) else 'too large to compute'} (at most "
            f"{top:.3g} keeps its inner products finite). Rescale the responses, use "
            f"dtype='float64', or metric='cosine'."
        )
    # a block of rows of the similarity matrix, and topk's copy of it, within the budget
    budget = resolve_budget(None, device)
    check_fits(2 * n * size, f"knn: one row of the ({n}, {n}) similarities", budget)
    room = min(_BLOCK_ELEMENTS, budget // (2 * size))
    block = max(1, min(n, room // max(n, 1)))
    parts = []
    for start in range(0, n, block):  # blocks of rows bound the memory, not a stimulus loop
        stop = min(start + block, n)
        parts.append(_select(_similarity_block(xp, start, stop), k, start))
    if lib is np:
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))
    return torch.cat(parts)


def _member(query: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Whether each element of ``query`` is in ``codes`` (sort + binary search)."""
    if query.device.type == "cpu" and not _TORCH_ON_CPU:
        table_np = np.sort(codes.numpy().ravel())
        q = query.numpy()
        pos_np = np.searchsorted(table_np, q).clip(max=table_np.size - 1)
        return torch.from_numpy(table_np[pos_np] == q)
    table = codes.flatten().sort().values
    pos = torch.searchsorted(table, query).clamp_max(table.numel() - 1)
    return table[pos] == query


def _n_shared(ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``|N_a(i) ∩ N_b(i)|`` for every row ``i`` (int64, shape (n,)).

    Neighbour ``m`` of row ``i`` is coded ``i * n + m``, so one sorted table of ``a``'s
    codes answers every row's queries by binary search.
    """
    n = ia.shape[0]
    rows = torch.arange(n, device=ia.device)[:, None] * n
    return _member(ib + rows, ia + rows).sum(dim=1)


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
        a stimulus has an all-zero response with ``metric="cosine"``, or with
        ``metric="inner"`` the inner products overflow ``dtype``.
    brainalign.StimulusAlignmentError
        When ``a`` and ``b`` do not hold the same stimuli.

    Notes
    -----
    A stimulus is never its own neighbour. Neighbours tied in similarity at the ``k``-th
    place go to the lower stimulus index (in the order after alignment) on the CPU, and
    are chosen by :func:`torch.topk` on other devices, as platonic-rep chooses by its
    sort, so results on data with exact ties may differ from another implementation. With
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
