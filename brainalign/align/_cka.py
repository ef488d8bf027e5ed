"""Centered kernel alignment (CKA) between two representations, linear or RBF.

CKA (Kornblith et al., 2019) is the cosine of the angle between the centred Gram matrices
of two representations, ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``. Three estimators of
HSIC are offered; every one is written in terms of the doubly centred kernel matrix
``C = H K H`` (``H`` the centring matrix, applied by subtracting means, never as a matrix),
its diagonal ``d`` and its trace ``s = sum(d)``:

* ``"gretton"`` (Gretton et al., 2005): ``<Cx, Cy>``, the biased estimator.
* ``"song"`` (Song et al., 2012): the unbiased U-statistic,
  ``<Cx, Cy> - n / (n - 2) dx.dy + sx sy / ((n - 1)(n - 2))``; equal to Kornblith's
  ``debiased=True`` (the U-statistic is unchanged by double centring).
* ``"lange"`` (Lange et al., 2023, ``repsim``'s ``AngularCKA(use_unbiased_hsic=True)``): the
  centred Gram matrices with their diagonals set to zero, ``<Cx, Cy> - dx.dy``.

With a linear kernel ``C = Xc Xc^T`` (``Xc`` the column-centred features), so every term
has a feature-space form: ``<Cx, Cy> = ||Xc^T Yc||_F^2`` and ``d`` the squared row norms,
O(n p q) time and no n x n matrix; ``||Xc^T Xc||_F^2`` is built from the upper block
triangle of ``Xc^T Xc`` (half the work, as BLAS ``syrk``). The Gram form is used for the RBF
kernel and when it is cheaper (``n < p + q``). Each entry's own terms are computed once and
reused for every pair it is in. Minibatch CKA (Nguyen et al., 2021) sums the HSIC of random
minibatches of stimuli before normalising; the batches are gathered into (B, m, p) tensors
and processed with batched matrix products.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._config import get_config
from brainalign._memory import check_fits, resolve_budget
from brainalign.align._inputs import apply_pair, entries, entry_label, result_attrs
from brainalign.data._schema import STIMULUS

__all__ = ["BANDWIDTHS", "ESTIMATORS", "KERNELS", "OUTPUTS", "cka"]

KERNELS = ("linear", "rbf")
ESTIMATORS = ("gretton", "song", "lange")
BANDWIDTHS = ("kornblith", "median_nonzero")
OUTPUTS = ("similarity", "angular")
_MIN_SAMPLES = {"gretton": 3, "lange": 3, "song": 4}
_BLOCK = 256  # feature-block width of the symmetric product Xc^T Xc
_SIMILARITY_ID = "measure/representation_similarity/cka-kernel={kernel}-hsic={hsic}-{out}"


# --------------------------------------------------------------------------- torch kernels


class _Side(NamedTuple):
    """One representation's share of the HSIC terms, per minibatch (float64 scalars)."""

    feats: torch.Tensor | None  # features (B, m, p), centred unless ``mean`` is given
    gram: torch.Tensor | None  # centred kernel matrix (B, m, m), Gram path
    self_term: torch.Tensor  # (B,) <C, C>
    diag: torch.Tensor | None  # (B, m) diag(C), None when the estimator does not use it
    trace: torch.Tensor  # (B,) trace(C)
    mean: np.ndarray | None = None  # (p,) column means of uncentred host ``feats``


def _center(x: torch.Tensor) -> torch.Tensor:
    """Subtract the column means of each (m, p) matrix of a (B, m, p) batch."""
    mean = x.sum(dim=-2, keepdim=True, dtype=torch.float64) / x.shape[-2]
    return x - mean.to(x.dtype)


def _sq_norm(m: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of each matrix of a batch, accumulated in float64."""
    return torch.linalg.vector_norm(m, dim=(-2, -1), dtype=torch.float64) ** 2


def _frobenius_dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``<U, V>_F`` for each pair of (m, m) matrices of two batches, in float64."""
    b = u.shape[0]
    if u.dtype == torch.float64:  # a BLAS dot, no n x n temporary
        return torch.bmm(u.reshape(b, 1, -1), v.reshape(b, -1, 1)).reshape(b)
    return torch.sum(u * v, dim=(-2, -1), dtype=torch.float64)


def _host_blas(t: torch.Tensor) -> bool:
    """Whether a (1, m, p) batch is on the CPU, where the products go to SciPy's BLAS.

    On the CPU the cost of linear CKA is three matrix products; PyTorch's CPU wheels link
    MKL, which runs them up to ~1.7x slower than the OpenBLAS of NumPy on non-Intel CPUs
    (measured: ``X^T X`` of 5000 x 2048 in 0.52 s vs 0.31 s). The GPU and minibatches keep
    the torch path.
    """
    return t.device.type == "cpu" and t.shape[0] == 1 and t.dtype in (torch.float32, torch.float64)


def _host_sq_norm(xc: torch.Tensor) -> torch.Tensor:
    """``||Xc^T Xc||_F^2`` of a (1, m, p) CPU batch with NumPy's BLAS (one GEMM).

    A full GEMM: used for float32 and for columns whose mean dwarfs their spread (see
    :func:`_host_side`, the float64 path).
    """
    a = xc[0].numpy()
    return torch.tensor([np.sum(np.square(a.T @ a, dtype=np.float64))], dtype=torch.float64)


# Largest mean^2 / variance of a column for which the uncentred products are used: the
# centred product X^T X - n mu mu^T then loses about log10(1 + ratio) digits of float64
# (at most 4 of 16; the tests' 1e-8 tolerance has room for 8).
_MAX_MEAN_TO_SD2 = 1e4


def _host_side(xb: torch.Tensor, need_diag: bool) -> _Side | None:
    """Compute the HSIC terms of a (1, m, p) float64 CPU batch without a centred copy.

    ``Xc^T Xc = X^T X - m mu mu^T``: ``X^T X`` by NumPy's BLAS (``syrk``, half a GEMM's
    arithmetic) on the features as they are, then the rank-one correction on the p x p
    result (:func:`_host_terms`), so that no centred n x p copy is written (the centring of
    the reference implementations is a full extra pass over the data). Returns None, for
    the explicit centring path, when a column's mean is so large against its spread
    (``mean^2 / variance > 1e4``) that the correction would cancel digits.
    """
    a = np.ascontiguousarray(xb[0].numpy())
    mu = a.sum(axis=0) / a.shape[0]
    g = a.T @ a
    if _mean_dominates(g, mu, a.shape[0]):
        return None
    return _host_terms(xb, a, g, mu, need_diag)


def _mean_dominates(g: np.ndarray, mu: np.ndarray, m: int) -> bool:
    """Whether some column's ``mean^2 / variance`` exceeds ``_MAX_MEAN_TO_SD2``."""
    ss = np.diagonal(g)  # m (variance + mean^2) per column
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(ss > 0, m * mu * mu / ss, 0.0)  # mean^2 / (variance + mean^2)
    return bool(share.size and share.max() > _MAX_MEAN_TO_SD2 / (1.0 + _MAX_MEAN_TO_SD2))


def _centred_sq(g: np.ndarray, u: np.ndarray, v: np.ndarray, m: int) -> float:
    """Centre the uncentred product ``g = A^T B`` in place and return its squared norm.

    ``Ac^T Bc = A^T B - m u v^T`` (``u``, ``v`` the column means) by BLAS ``dger`` on
    ``g^T``, which is Fortran-ordered for NumPy's C-ordered product; then ``||.||_F^2``.
    """
    from scipy.linalg.blas import dger

    dger(-float(m), v, u, a=g.T, overwrite_a=1)  # g^T - m v u^T, i.e. g - m u v^T
    return float(np.einsum("ij,ij->", g, g))


def _host_terms(
    xb: torch.Tensor, a: np.ndarray, g: np.ndarray, mu: np.ndarray, need_diag: bool
) -> _Side:
    """Compute the HSIC terms of ``a`` (m, p) from its uncentred product ``g = a^T a``.

    ``g`` (C order) is centred in place; ``mu`` holds the column means.
    """
    self_term = _centred_sq(g, mu, mu, a.shape[0])
    diag = None
    if need_diag:  # ||x_i - mu||^2 = ||x_i||^2 - 2 x_i.mu + mu.mu
        d = np.einsum("ij,ij->i", a, a) - 2.0 * (a @ mu) + float(mu @ mu)
        diag = torch.from_numpy(d).unsqueeze(0)
    return _Side(
        xb,
        None,
        torch.tensor([self_term], dtype=torch.float64),
        diag,
        torch.tensor([float(np.trace(g))], dtype=torch.float64),
        mu,
    )


def _host_pair(
    x: torch.Tensor, y: torch.Tensor, need_diag: bool
) -> tuple[_Side, _Side, torch.Tensor] | None:
    """Both sides' HSIC terms and ``<Cx, Cy>`` from the products of the uncentred features.

    For one pair seen for the first time: ``X^T X`` and ``Y^T Y`` (BLAS ``syrk``, half a
    GEMM's arithmetic) and ``X^T Y`` by NumPy's BLAS on the features as they are, then the
    rank-one corrections ``- m mu_x mu_y^T`` in place (:func:`_centred_sq`), so that neither
    a centred copy (the reference implementations' extra pass over the data) nor a
    concatenation is written. Measured at 5000 x (2048 + 1024): the three products take as
    long as one ``dsyrk`` of the concatenation (0.75 s each), which would also copy the
    data. None (the per-side path) when a mean dominates its column's spread.
    """
    a = np.ascontiguousarray(x.numpy())
    b = np.ascontiguousarray(y.numpy())
    m = a.shape[0]
    mu_a, mu_b = a.sum(axis=0) / m, b.sum(axis=0) / m
    gxx = a.T @ a  # symmetric (NumPy's syrk fills both triangles), C order
    if _mean_dominates(gxx, mu_a, m):
        return None
    gyy = b.T @ b
    if _mean_dominates(gyy, mu_b, m):
        return None
    gxy = a.T @ b
    sx = _host_terms(x.unsqueeze(0), a, gxx, mu_a, need_diag)
    sy = _host_terms(y.unsqueeze(0), b, gyy, mu_b, need_diag)
    return sx, sy, torch.tensor([_centred_sq(gxy, mu_a, mu_b, m)], dtype=torch.float64)


def _sym_sq_norm(xc: torch.Tensor) -> torch.Tensor:
    """``||Xc^T Xc||_F^2`` per batch, computing only the upper block triangle of Xc^T Xc.

    Blocks of ``_BLOCK`` features times the features from the block onwards: one GEMM per
    block, about half the work of the full product (what BLAS ``syrk`` saves); on the CPU,
    NumPy's BLAS (:func:`_host_blas`).
    """
    if _host_blas(xc):
        return _host_sq_norm(xc)
    p = xc.shape[-1]
    if p <= 2 * _BLOCK:
        return _sq_norm(xc.transpose(-1, -2) @ xc)
    total = torch.zeros(xc.shape[0], dtype=torch.float64, device=xc.device)
    for start in range(0, p, _BLOCK):  # p / _BLOCK GEMMs, not a loop over features
        block = xc[..., start : start + _BLOCK]
        w = block.shape[-1]
        g = block.transpose(-1, -2) @ xc[..., start:]
        total = total + _sq_norm(g[..., :w]) + 2.0 * _sq_norm(g[..., w:])
    return total


def _order_stats(values: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``j``-th and ``j+1``-th smallest (0-based) entries of each row of (B, M).

    One selection (``kthvalue``) and one pass for the next value, instead of two selections.
    """
    lo = torch.kthvalue(values, j + 1, dim=-1).values
    if j + 1 >= values.shape[-1]:
        return lo, lo
    above = torch.where(values > lo.unsqueeze(-1), values, torch.inf).amin(-1)
    ties = (values <= lo.unsqueeze(-1)).sum(-1)
    return lo, torch.where(ties >= j + 2, lo, above)


def _median_sq_distance(d: torch.Tensor, bandwidth: str) -> torch.Tensor:
    """Return the median squared distance of each (m, m) distance matrix of a batch.

    ``"kornblith"``: over the full matrix, its m zeros on the diagonal included (as
    :func:`numpy.median` on Kornblith's matrix); ``"median_nonzero"``: over the pairs
    ``i < j``. Both read only the upper triangle: the full matrix holds each of its values
    twice, after the m diagonal zeros. Even counts average the two middle values.
    """
    m = d.shape[-1]
    upper = d[:, torch.ones(m, m, dtype=torch.bool, device=d.device).triu(1)]
    if bandwidth == "median_nonzero":
        count = upper.shape[-1]
        j_lo, j_hi = (count - 1) // 2, count // 2
    else:  # position k >= m of the sorted full matrix holds sorted upper[(k - m) // 2]
        count = m * m
        j_lo, j_hi = ((count - 1) // 2 - m) // 2, (count // 2 - m) // 2
    lo, nxt = _order_stats(upper, j_lo)
    if count % 2:  # odd count: one middle value
        return lo
    return (lo + (nxt if j_hi > j_lo else lo)) / 2


def _rbf_gram(xc: torch.Tensor, bandwidth: str | float, threshold: float) -> torch.Tensor:
    """RBF kernel matrices ``exp(-||xi - xj||^2 / (2 sigma^2))`` of a (B, m, p) batch."""
    g = xc @ xc.transpose(-1, -2)
    sq = torch.diagonal(g, dim1=-2, dim2=-1).clone()
    d = g.mul_(-2.0).add_(sq.unsqueeze(-1)).add_(sq.unsqueeze(-2)).clamp_min_(0.0)
    if isinstance(bandwidth, str):
        sigma2 = threshold**2 * _median_sq_distance(d, bandwidth).to(torch.float64)
        if bool((sigma2 <= 0).any()):
            raise ValueError(
                f"the bandwidth heuristic bandwidth={bandwidth!r} gave sigma = 0: over half "
                "of the squared distances between stimuli are zero (repeated patterns). Pass "
                "a float bandwidth (sigma) instead."
            )
    else:
        sigma2 = torch.full(
            (d.shape[0],), (threshold * bandwidth) ** 2, dtype=torch.float64, device=d.device
        )
    scale = (-0.5 / sigma2).to(d.dtype).view(-1, 1, 1)
    return d.mul_(scale).exp_()


def _center_gram(k: torch.Tensor) -> torch.Tensor:
    """``H K H`` for each symmetric matrix of a batch, by subtracting row and column means."""
    r = k.sum(dim=-1, dtype=torch.float64) / k.shape[-1]
    r = r - r.mean(dim=-1, keepdim=True) / 2
    r = r.to(k.dtype)
    return k.sub_(r.unsqueeze(-1)).sub_(r.unsqueeze(-2))


def _side(
    xb: torch.Tensor,
    gram: bool,
    kernel: str,
    bandwidth: str | float,
    threshold: float,
    need_diag: bool = True,
    zero_diag: bool = False,
) -> _Side:
    """Compute the per-batch HSIC ingredients of one representation (B, m, p).

    ``zero_diag`` (the ``"song"`` estimator, Gram path): centre the kernel matrix with its
    diagonal set to zero. The U-statistic does not depend on the diagonal, and it is
    unchanged by double centring; but when the kernel is close to the identity (a narrow
    RBF bandwidth: off-diagonal entries of 1e-6) the centred full matrix holds the signal as
    a small difference of O(1 / m) terms, which loses its digits (2e-2 absolute in float32
    and 2e-9 in float64 at ``threshold=0.2``, m = 15, p = 40). Centred without the
    diagonal, each entry keeps its relative precision.
    """
    if not gram and _host_blas(xb) and xb.dtype == torch.float64:
        side = _host_side(xb, need_diag)
        if side is not None:
            return side
    xc = _center(xb)
    if not gram:
        d = torch.linalg.vector_norm(xc, dim=-1, dtype=torch.float64) ** 2
        return _Side(xc, None, _sym_sq_norm(xc), d, d.sum(-1))
    k = xc @ xc.transpose(-1, -2) if kernel == "linear" else _rbf_gram(xc, bandwidth, threshold)
    if zero_diag:  # the U-statistic never reads K's diagonal: drop it before centring
        torch.diagonal(k, dim1=-2, dim2=-1).zero_()
    c = k if kernel == "linear" and not zero_diag else _center_gram(k)
    d = torch.diagonal(c, dim1=-2, dim2=-1).to(torch.float64)
    return _Side(None, c, _frobenius_dot(c, c), d, d.sum(-1))


def _cross(sx: _Side, sy: _Side) -> torch.Tensor:
    """``<Cx, Cy>`` per batch."""
    if sx.feats is not None and sy.feats is not None:
        if _host_blas(sx.feats) and _host_blas(sy.feats):  # SciPy/NumPy BLAS on the CPU
            fx, fy = sx.feats[0].numpy(), sy.feats[0].numpy()
            g = fx.T @ fy
            if sx.mean is not None and sy.mean is not None:  # Xc^T Yc = X^T Y - m mx my^T
                from scipy.linalg.blas import dger

                gt = dger(-float(fx.shape[0]), sy.mean, sx.mean, a=g.T, overwrite_a=1)
                g = gt.T  # in place when g is C-ordered (gt then F-ordered)
            # (with one side centred, X^T Yc = Xc^T Yc already: Yc's columns sum to 0)
            flat = g.ravel(order="K")
            if flat.dtype == np.float64:
                return torch.tensor([float(np.dot(flat, flat))], dtype=torch.float64)
            return torch.tensor([np.sum(np.square(g, dtype=np.float64))], dtype=torch.float64)
        return _sq_norm(sx.feats.transpose(-1, -2) @ sy.feats)
    assert sx.gram is not None and sy.gram is not None
    return _frobenius_dot(sx.gram, sy.gram)


def _hsic(estimator: str, t: torch.Tensor, sx: _Side, sy: _Side, m: int) -> torch.Tensor:
    """Estimate the HSIC of each batch of size ``m`` from ``t = <Cx, Cy>``."""
    if estimator == "gretton":
        return t / (m - 1) ** 2
    dxy = (sx.diag * sy.diag).sum(-1)
    if estimator == "lange":
        return (t - dxy) / (m * (m - 1))
    return (t - m / (m - 2) * dxy + sx.trace * sy.trace / ((m - 1) * (m - 2))) / (m * (m - 3))


def _check_memory(
    x: torch.Tensor,
    y: torch.Tensor,
    gram: bool,
    m_max: int,
    batches: list[np.ndarray] | None,
) -> None:
    """Refuse, before allocating, a CKA whose matrices cannot fit the memory budget.

    The Gram path holds about three (m, m) matrices per side and minibatch (the kernel, its
    centred copy and a product), in float64 at least; the feature path the (p + q)^2 products
    in float64 and one more copy of the data.
    """
    n_groups = 1 if batches is None else sum(b.shape[0] for b in batches)
    if gram:
        need = 2 * 3 * n_groups * m_max**2 * 8
        what = f"cka: {2 * 3 * n_groups} ({m_max}, {m_max}) kernel matrices in float64"
    else:
        width = x.shape[1] + y.shape[1]
        need = width**2 * 8 + x.shape[0] * width * 8
        what = f"cka: the ({width}, {width}) feature products and a copy of the data"
    check_fits(need, what, resolve_budget(None, x.device))


def _cka_kernel(
    kernel: str,
    estimator: str,
    bandwidth: str | float,
    threshold: float,
    output: str,
    batches: list[np.ndarray] | None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Build ``f(X, Y) -> CKA`` that caches each input's own terms across pairs.

    ``batches`` holds (B, m) row-index arrays (one per batch size), or None for all rows.
    """
    cache: dict[tuple[int, bool], tuple[torch.Tensor, list[_Side]]] = {}

    def sides(x: torch.Tensor, gram: bool) -> list[_Side]:
        key = (id(x), gram)
        if key not in cache:  # keep x alive with its terms, so that its id stays unique
            if batches is None:
                groups = [x.unsqueeze(0)]
            else:
                groups = [x[torch.as_tensor(b, device=x.device)] for b in batches]
            need_diag = estimator != "gretton"
            zero_diag = gram and estimator == "song"
            cache[key] = (
                x,
                [
                    _side(g, gram, kernel, bandwidth, threshold, need_diag, zero_diag)
                    for g in groups
                ],
            )
        return cache[key][1]

    def joint(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """``<Cx, Cy>`` and both sides' terms in one product, for a new CPU float64 pair."""
        if not (
            batches is None
            and all(
                t.device.type == "cpu" and t.dtype == torch.float64 and (id(t), False) not in cache
                for t in (x, y)
            )
        ):
            return None
        pair = _host_pair(x, y, estimator != "gretton")
        if pair is None:
            return None
        cache[(id(x), False)] = (x, [pair[0]])
        cache[(id(y), False)] = (y, [pair[1]])
        return pair[2]

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m_max = x.shape[0] if batches is None else max(b.shape[1] for b in batches)
        gram = kernel != "linear" or m_max < x.shape[1] + y.shape[1]
        _check_memory(x, y, gram, m_max, batches)
        hxy = hxx = hyy = torch.zeros((), dtype=torch.float64, device=x.device)
        t_joint = None if gram or x is y else joint(x, y)
        for sx, sy in zip(sides(x, gram), sides(y, gram), strict=True):  # <= 2 batch sizes
            m = (sx.feats if sx.gram is None else sx.gram).shape[-2]
            t = _cross(sx, sy) if t_joint is None else t_joint
            hxy = hxy + _hsic(estimator, t, sx, sy, m).sum()
            hxx = hxx + _hsic(estimator, sx.self_term, sx, sx, m).sum()
            hyy = hyy + _hsic(estimator, sy.self_term, sy, sy, m).sum()
        for side, h in (("a", hxx), ("b", hyy)):
            if not bool(h > 0):
                raise ValueError(
                    f"the {estimator!r} HSIC of {side} with itself is {float(h):.3g} (not "
                    "positive), so CKA is undefined: too few stimuli (or minibatches) for "
                    f"this estimator, or {side} is (nearly) constant."
                )
        value = hxy / torch.sqrt(hxx * hyy)
        if output == "angular":
            value = torch.arccos(value.clamp(-1.0, 1.0))
        return value

    return f


# --------------------------------------------------------------------------- labeled edge


def _is_constant(vals: np.ndarray) -> bool:
    """Whether every row of ``vals`` is the same (the full check only when three agree)."""
    n = vals.shape[0]
    probe = vals[[0, n // 2, n - 1]]
    if not np.array_equal(probe, np.broadcast_to(probe[0], probe.shape), equal_nan=True):
        return False  # the usual case: two rows differ, found in O(features)
    return bool(np.all(np.ptp(vals, axis=0) == 0))


def _check_not_constant(x: Any, side: str, key_dim: str) -> np.ndarray:
    """Raise when an entry has the same pattern for every stimulus; return the stimulus ids."""
    e = entries(x, name=side, key_dim=key_dim)
    for i, da in enumerate(e.arrays):  # a loop over the (few) layers / subjects
        vals = np.asarray(da.values)
        if vals.shape[0] and np.issubdtype(vals.dtype, np.number) and _is_constant(vals):
            raise ValueError(
                f"{entry_label(side, e, i)} is constant: every stimulus has the same pattern, so "
                "its centred kernel matrix is zero and CKA is 0/0. Drop it or check the data."
            )
    return np.asarray(e.arrays[0][STIMULUS].values)


def _batch_indices(ids: np.ndarray, batch_size: int, seed: int | None) -> list[np.ndarray]:
    """Random minibatches of row indices, grouped by size: a list of (B, m) arrays.

    The permutation is drawn over the stimuli sorted by id, so it does not depend on the
    order of the rows. ``n // batch_size`` batches of ``batch_size`` or a few more stimuli.
    """
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    perm = order[np.random.default_rng(seed).permutation(n)]
    n_batches = max(n // batch_size, 1)
    size, extra = divmod(n, n_batches)
    cut = extra * (size + 1)
    groups = [perm[:cut].reshape(extra, size + 1), perm[cut:].reshape(n_batches - extra, size)]
    return [g for g in groups if g.shape[0]]


def cka(
    a: Any,
    b: Any,
    kernel: str = "linear",
    *,
    estimator: str | None = None,
    bandwidth: str | float = "kornblith",
    threshold: float = 1.0,
    batch_size: int | None = None,
    output: str = "similarity",
    seed: int | None = None,
    key_dims: tuple[str, str] = ("a", "b"),
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> xr.DataArray:
    """Centered kernel alignment between two representations of the same stimuli.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K`` and ``L`` the kernel
    matrices of ``a`` and ``b`` over the stimuli (Kornblith et al., 2019). CKA is invariant
    to orthogonal transforms and isotropic scaling of either representation, equals 1 for
    ``a`` compared with itself, and does not need ``a`` and ``b`` to have the same width.
    Stimuli are aligned by id; other dims (``layer``, ``subject``) broadcast.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        Representations with a ``stimulus`` dim and a feature dim (``unit``, ``voxel``,
        ``channel`` ...), or mappings of them (e.g. layers of different widths).
    kernel : {"linear", "rbf"}
        The kernel on stimuli. ``"linear"`` uses dot products (computed in feature space,
        ``||Xc^T Yc||_F^2``, unless there are fewer stimuli than features, ``n < p + q``);
        ``"rbf"`` uses ``exp(-||xi - xj||^2 / (2 sigma^2))``.
    estimator : {"gretton", "song", "lange"}, optional
        The HSIC estimator: ``"gretton"`` the biased one (centred Gram matrices; the CKA of
        Kornblith et al.), ``"song"`` the unbiased U-statistic of Song et al. (Kornblith's
        ``debiased=True``; may give small negative values), ``"lange"`` the centred Gram
        matrices with a zeroed diagonal (Lange et al.'s ``AngularCKA.unb``). Default
        ``"gretton"``, or ``"song"`` when ``batch_size`` is given (as Nguyen et al.).
    bandwidth : {"kornblith", "median_nonzero"} or float
        The RBF bandwidth ``sigma`` (``kernel="rbf"`` only). ``"kornblith"``:
        ``sigma = threshold * sqrt(median of the squared distances)`` with the median over
        the full n x n matrix, its zero diagonal included (exactly Kornblith's ``gram_rbf``);
        ``"median_nonzero"``: the same with the median over the pairs ``i != j`` only (as
        thingsvision's default, which drops every zero distance: the same unless stimuli
        repeat a pattern); a float: ``sigma = threshold * bandwidth``. Heuristics are
        evaluated per representation (and per minibatch). Squared distances come from the
        Gram matrix of the centred features, clipped at 0.
    threshold : float
        Multiplies the bandwidth (Kornblith's ``threshold``; they use 0.2 to 1).
    batch_size : int, optional
        Minibatch CKA (Nguyen et al., 2021): the stimuli are shuffled (with ``seed``) and cut
        into ``n // batch_size`` batches of ``batch_size`` stimuli (a few more when it does
        not divide n; one batch if ``batch_size >= n``); each batch's HSIC terms are
        estimated and summed over batches before ``HSIC_xy / sqrt(HSIC_xx HSIC_yy)``. HSICs
        are normalised per batch (by ``(m-1)^2``, ``m(m-3)`` or ``m(m-1)``). At least 4.
    output : {"similarity", "angular"}
        ``"similarity"`` returns CKA; ``"angular"`` returns ``arccos(CKA)`` in radians, a
        metric on centred, normalised kernel matrices (Williams et al., 2021; netrep's and
        repsim's angular CKA).
    seed : int, optional
        Seed of the minibatches (default: the configured seed). The permutation is drawn
        over stimuli sorted by id, so the result does not depend on the input's row order.
    key_dims : tuple of str
        Dim names for the keys of mapping inputs.
    device, dtype : optional
        Where and in what precision to compute (see :func:`brainalign.set_config`). Sums of
        squares and products are accumulated in float64 in any case.

    Returns
    -------
    cka : xarray.DataArray
        CKA (or its angle) for every pair of broadcast entries, dims: those of ``a``, then
        those of ``b`` that ``a`` lacks; attrs give the parameters and ``similarity_id`` (the
        nacloos/similarity-repository measure) where one matches exactly.

    Raises
    ------
    ValueError
        For an unknown option, ``batch_size < 4``, a non-positive bandwidth or threshold, a
        representation that is constant over stimuli (CKA is 0/0), or too few stimuli.
    StimulusAlignmentError
        When ``a`` and ``b`` do not hold the same stimulus ids.

    References
    ----------
    Kornblith, S., Norouzi, M., Lee, H., & Hinton, G. (2019). Similarity of neural network
    representations revisited. ICML. https://arxiv.org/abs/1905.00414

    Gretton, A., Bousquet, O., Smola, A., & Schölkopf, B. (2005). Measuring statistical
    dependence with Hilbert-Schmidt norms. ALT.

    Song, L., Smola, A., Gretton, A., Bedo, J., & Borgwardt, K. (2012). Feature selection
    via dependence maximization. JMLR 13, 1393-1434.

    Nguyen, T., Raghu, M., & Kornblith, S. (2021). Do wide and deep networks learn the same
    things? ICLR. https://arxiv.org/abs/2010.15327

    Williams, A. H., Kunz, E., Kornblith, S., & Linderman, S. W. (2021). Generalized shape
    metrics on neural representations. NeurIPS. https://arxiv.org/abs/2110.14739

    Lange, R. D., Kwok, D., Matelsky, J., Wang, X., Rolnick, D. S., & Kording, K. P. (2023).
    Deep networks as paths on the manifold of neural representations. PMLR 221.
    https://github.com/wrongu/repsim

    Examples
    --------
    >>> import numpy as np, brainalign as ba
    >>> from brainalign.align._cka import cka
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(30, 5))
    >>> q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    >>> a = ba.responses(x, [f"s{i}" for i in range(30)])
    >>> b = ba.responses(3.0 * x @ q, [f"s{i}" for i in range(30)])
    >>> round(float(cka(a, b)), 6)
    1.0
    >>> round(float(cka(a, b, output="angular")), 6)
    0.0
    """
    check_option("kernel", kernel, KERNELS)
    if estimator is None:
        estimator = "gretton" if batch_size is None else "song"
    check_option("estimator", estimator, ESTIMATORS)
    check_option("output", output, OUTPUTS)
    if isinstance(bandwidth, str):
        check_option("bandwidth", bandwidth, BANDWIDTHS)
    elif isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool):
        check_number("bandwidth", bandwidth, low=0, closed="neither")
        bandwidth = float(bandwidth)
    else:
        raise TypeError(
            f"bandwidth must be one of {BANDWIDTHS} or a positive float, got "
            f"{type(bandwidth).__name__} {bandwidth!r}."
        )
    check_number("threshold", threshold, low=0, closed="neither")
    if batch_size is not None:
        check_number("batch_size", batch_size, integer=True)
        if batch_size < 4:
            raise ValueError(
                f"batch_size must be at least 4, got {batch_size}: the unbiased HSIC of a "
                "minibatch of m stimuli divides by m(m - 3), so smaller batches give NaN or "
                "infinite values. Use batch_size=None for CKA on all stimuli at once."
            )
    if seed is None:
        seed = get_config()["seed"]

    ids = _check_not_constant(a, "a", key_dims[0])
    _check_not_constant(b, "b", key_dims[1])
    batches = None
    if batch_size is not None:
        batches = _batch_indices(ids, batch_size, seed)

    params: dict[str, Any] = {"kernel": kernel, "estimator": estimator, "output": output}
    kernel_id = "linear"
    if kernel == "rbf":
        params.update(bandwidth=bandwidth, threshold=float(threshold))
        sigma = threshold * bandwidth if isinstance(bandwidth, float) else None
        kernel_id = "" if sigma is None else f"(rbf-sigma={float(sigma)})"
    if batch_size is not None:
        params.update(batch_size=int(batch_size), seed=seed)
    similarity_id = None
    if kernel_id and batch_size is None:
        out = "score" if output == "similarity" else "distance=angular"
        similarity_id = _SIMILARITY_ID.format(kernel=kernel_id, hsic=estimator, out=out)
    attrs = result_attrs(
        "cka",
        kind="similarity" if output == "similarity" else "distance",
        params=params,
        similarity_id=similarity_id,
    )
    f = _cka_kernel(kernel, estimator, bandwidth, float(threshold), output, batches)
    return apply_pair(
        f,
        a,
        b,
        key_dims=key_dims,
        attrs=attrs,
        name="cka" if output == "similarity" else "cka_angle",
        device=device,
        dtype=dtype,
        min_samples=_MIN_SAMPLES[estimator],
    )
