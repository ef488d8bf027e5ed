"""Pure torch kernels for RDMs and RDM comparisons (no labels, no validation).

All functions take batched tensors: patterns ``(..., n, p)``, RDM vectors ``(..., n_pairs)``.
"""

from __future__ import annotations

import torch


def _symmetrize_zero_diag(d: torch.Tensor) -> torch.Tensor:
    d = 0.5 * (d + d.transpose(-1, -2))
    n = d.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=d.device)
    return d.masked_fill(eye, 0.0)


def rdm_sqeuclidean(x: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between rows: ``(..., n, p)`` → ``(..., n, n)``."""
    x = x - x.mean(dim=-2, keepdim=True)  # translation-invariant; improves conditioning
    sq = (x * x).sum(-1)
    d = sq[..., :, None] + sq[..., None, :] - 2.0 * (x @ x.transpose(-1, -2))
    return _symmetrize_zero_diag(d.clamp_min(0.0))


def rdm_euclidean(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of ``x``."""
    return rdm_sqeuclidean(x).sqrt()


def rdm_cosine(x: torch.Tensor) -> torch.Tensor:
    """One minus the cosine similarity between the rows of ``x``."""
    xn = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return _symmetrize_zero_diag(1.0 - xn @ xn.transpose(-1, -2))


def rdm_correlation(x: torch.Tensor) -> torch.Tensor:
    """One minus the Pearson correlation between the rows of ``x``."""
    return rdm_cosine(x - x.mean(dim=-1, keepdim=True))


def upper_tri(d: torch.Tensor) -> torch.Tensor:
    """Vectorise the strict upper triangle, row-major (as scipy's ``squareform``)."""
    n = d.shape[-1]
    i, j = torch.triu_indices(n, n, offset=1, device=d.device)
    return d[..., i, j]


def rankdata(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Average-tie ranks (1-based) along the last dim, over the entries where ``mask`` holds.

    Entries outside the mask get rank 0. Equals ``scipy.stats.rankdata(method="average")``
    applied to each row's valid entries.
    """
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    m2 = mask.reshape(-1, shape[-1])
    b, p = x2.shape
    big = torch.finfo(x2.dtype).max
    xs, order = torch.sort(torch.where(m2, x2, torch.full_like(x2, big)), dim=-1, stable=True)
    ms = torch.gather(m2, -1, order)
    new = torch.ones_like(ms)
    new[:, 1:] = (xs[:, 1:] != xs[:, :-1]) | (ms[:, 1:] != ms[:, :-1])
    gid = (
        torch.cumsum(new.to(torch.int64), dim=-1)
        - 1
        + (torch.arange(b, device=x.device) * p)[:, None]
    )
    pos = torch.arange(1, p + 1, dtype=x2.dtype, device=x.device).expand(b, p)
    sums = torch.zeros(b * p, dtype=x2.dtype, device=x.device).index_add_(
        0, gid.reshape(-1), pos.reshape(-1)
    )
    cnt = torch.zeros(b * p, dtype=x2.dtype, device=x.device).index_add_(
        0, gid.reshape(-1), torch.ones(b * p, dtype=x2.dtype, device=x.device)
    )
    avg = (sums / cnt.clamp_min(1))[gid]
    avg = torch.where(ms, avg, torch.zeros_like(avg))
    ranks = torch.empty_like(avg).scatter_(-1, order, avg)
    return ranks.reshape(shape)


def masked_cosine(
    a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, *, center: bool
) -> torch.Tensor:
    """Cosine (or, with ``center``, Pearson) similarity of ``a`` and ``b`` over ``mask``."""
    w = mask.to(a.dtype)
    a = a * w
    b = b * w
    if center:
        n = w.sum(-1, keepdim=True)
        a = (a - a.sum(-1, keepdim=True) / n) * w
        b = (b - b.sum(-1, keepdim=True) / n) * w
    num = (a * b).sum(-1)
    den = torch.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    return num / den


def compare_vectors(a: torch.Tensor, b: torch.Tensor, method: str) -> torch.Tensor:
    """Compare RDM vectors ``(..., n_pairs)`` (broadcast) over pairs finite in both."""
    a, b = torch.broadcast_tensors(a, b)
    mask = torch.isfinite(a) & torch.isfinite(b)
    a = torch.where(mask, a, torch.zeros_like(a))
    b = torch.where(mask, b, torch.zeros_like(b))
    if method == "spearman":
        return masked_cosine(rankdata(a, mask), rankdata(b, mask), mask, center=True)
    if method == "pearson":
        return masked_cosine(a, b, mask, center=True)
    if method == "cosine":
        return masked_cosine(a, b, mask, center=False)
    raise AssertionError(method)  # guarded by the public function


RDM_KERNELS = {
    "correlation": rdm_correlation,
    "cosine": rdm_cosine,
    "euclidean": rdm_euclidean,
    "sqeuclidean": rdm_sqeuclidean,
}
