"""Significance for encoding scores: permutation nulls, bootstrap CIs, FWE and FDR.

Permutation nulls are computed by re-scoring permuted targets on the same fitted
decomposition (the solver does that); this module supplies the batched permutation indices,
the p-values from a null distribution, max-statistic FWE and Benjamini–Hochberg FDR
corrections, and percentile bootstrap confidence intervals over test stimuli.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_finite, check_number, check_option
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign.encoding._ridge import _align_columns, _align_samples
from brainalign.encoding._scoring import SCORERS

_F64 = torch.float64
_MEMORY_BUDGET = 2**27  # bytes per chunk of bootstrap samples
PERMUTATION_KINDS = ("stimulus", "block", "circular")


def _run_codes(runs: Any, n_samples: int) -> np.ndarray:
    if runs is None:
        return np.zeros(n_samples, dtype=np.int64)
    runs = np.asarray(runs)
    if runs.ndim != 1 or runs.shape[0] != n_samples:
        raise ValueError(
            f"runs must be a 1-D sequence of run labels, one per sample ({n_samples}), got "
            f"shape {runs.shape}."
        )
    _, codes = np.unique(runs, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def permutation_indices(
    n_samples: int,
    n_permutations: int,
    *,
    kind: str = "stimulus",
    block_size: int | None = None,
    runs: Any = None,
    seed: int | None = None,
) -> np.ndarray:
    """Draw batched permutations of sample indices that respect run boundaries.

    Row ``k`` is a permutation of ``arange(n_samples)``: permuted targets are
    ``y[idx[k]]``. Samples only move within their run (``runs``; one run when ``None``):

    - ``"stimulus"``: a uniform shuffle within each run (exchangeable trials or stimuli).
    - ``"block"``: each run is cut into contiguous blocks of ``block_size`` samples (the last
      block of a run may be shorter); blocks are shuffled within the run and keep their
      inner order (autocorrelated time series).
    - ``"circular"``: each run is rotated by a random shift in ``[1, run_length - 1]``, so no
      run stays in place (runs of length 1 cannot move and are left as they are).

    The identity can occur for ``"stimulus"`` and ``"block"`` (with probability
    ``1 / n!`` or ``1 / n_blocks!`` per run); it is not removed.

    Parameters
    ----------
    n_samples : int
        Number of samples (time points, stimuli, trials).
    n_permutations : int
        Number of permutations (rows).
    kind : {"stimulus", "block", "circular"}
        The permutation scheme.
    block_size : int, optional
        Block length for ``kind="block"`` (required there, ignored otherwise).
    runs : array_like, optional
        One run label per sample; runs need not be contiguous.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    indices : ndarray of int64, shape (n_permutations, n_samples)
        One permutation per row.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a missing or invalid ``block_size``, or ``runs`` of the
        wrong length.

    Examples
    --------
    >>> from brainalign.encoding._stats import permutation_indices
    >>> idx = permutation_indices(6, 2, kind="circular", runs=[0, 0, 0, 1, 1, 1], seed=0)
    >>> idx.shape
    (2, 6)
    >>> sorted(idx[0, :3].tolist()), sorted(idx[0, 3:].tolist())
    ([0, 1, 2], [3, 4, 5])
    """
    check_number("n_samples", n_samples, low=1, integer=True)
    check_number("n_permutations", n_permutations, low=1, integer=True)
    check_option("kind", kind, PERMUTATION_KINDS)
    if kind == "block":
        if block_size is None:
            raise ValueError(f"block_size is required for kind={kind!r}, got {block_size}.")
        check_number("block_size", block_size, low=1, integer=True)
    codes = _run_codes(runs, n_samples)
    rng = np.random.default_rng(seed)
    grouped = np.argsort(codes, kind="stable")  # sample positions, grouped by run
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n_samples, dtype=np.int64)  # position of each sample within its run
    rank[grouped] = np.arange(n_samples) - np.repeat(starts, sizes)
    out = np.empty((n_permutations, n_samples), dtype=np.int64)
    if kind == "circular":
        length = sizes[codes]
        shift = rng.integers(1, np.maximum(sizes, 2), size=(n_permutations, sizes.size))
        new_rank = (rank[None, :] + shift[:, codes]) % length[None, :]
        out[:] = grouped[starts[codes][None, :] + new_rank]
        return out
    if kind == "stimulus":
        keys = rng.random((n_permutations, n_samples))
        tie = np.zeros(n_samples, dtype=np.int64)
    else:
        block = rank // block_size  # block within run
        n_blocks = int(block.max()) + 1
        keys = rng.random((n_permutations, sizes.size, n_blocks))[:, codes, block]
        tie = rank
    run_b = np.broadcast_to(codes, keys.shape)
    tie_b = np.broadcast_to(tie, keys.shape)
    order = np.lexsort((tie_b, keys, run_b), axis=-1)
    out[:, grouped] = order
    return out


def _as_array(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(to_numpy(x.values if isinstance(x, xr.DataArray) else x), dtype=float)
    if arr.ndim == 0:
        arr = arr[None]
    return arr


def _check_null(observed: Any, null: Any) -> tuple[np.ndarray, np.ndarray]:
    obs = _as_array(observed, "observed")
    nul = _as_array(null, "null")
    if nul.ndim < 1 or nul.shape[1:] != obs.shape:
        raise ValueError(
            f"null must have shape (n_permutations, {', '.join(map(str, obs.shape))}) to "
            f"match observed; got {nul.shape}."
        )
    check_finite(nul, "null")
    return obs, nul


def _wrap(p: np.ndarray, like: Any, name: str) -> Any:
    if isinstance(like, xr.DataArray):
        return like.copy(data=p.reshape(like.shape)).rename(name)
    return p


def permutation_pvalues(observed: Any, null: Any) -> Any:
    """One-sided permutation p-values per target: ``(1 + #(null >= observed)) / (1 + n)``.

    Parameters
    ----------
    observed : array_like or xarray.DataArray, shape ``(*target_shape)``
        Observed scores.
    null : array_like, shape ``(n_permutations, *target_shape)``
        Scores of the permuted data.

    Returns
    -------
    pvalues : ndarray or xarray.DataArray
        In ``(0, 1]``; NaN where ``observed`` is NaN. Labeled like ``observed``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._stats import permutation_pvalues
    >>> permutation_pvalues(np.array([0.5, 0.1]), np.array([[0.2, 0.3], [0.6, 0.0]]))
    array([0.66666667, 0.66666667])
    """
    obs, nul = _check_null(observed, null)
    count = (nul >= obs[None]).sum(0)
    p = (1.0 + count) / (1.0 + nul.shape[0])
    p = np.where(np.isnan(obs), np.nan, p)
    return _wrap(p, observed, "pvalue")


def fwe_max_stat(observed: Any, null: Any) -> Any:
    """Family-wise error corrected p-values with the max statistic over targets.

    The null of the maximum is the maximum over targets of each permutation's scores;
    ``p_t = (1 + #(max_null >= observed_t)) / (1 + n_permutations)``.

    Parameters
    ----------
    observed : array_like or xarray.DataArray, shape ``(*target_shape)``
        Observed scores.
    null : array_like, shape ``(n_permutations, *target_shape)``
        Scores of the permuted data (the same permutation for all targets in a row).

    Returns
    -------
    pvalues : ndarray or xarray.DataArray
        FWE-corrected p-values, labeled like ``observed``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._stats import fwe_max_stat
    >>> fwe_max_stat(np.array([0.5, 0.1]), np.array([[0.2, 0.3], [0.6, 0.0]]))
    array([0.66666667, 1.        ])
    """
    obs, nul = _check_null(observed, null)
    max_null = nul.reshape(nul.shape[0], -1).max(1)
    count = (max_null[:, None] >= obs.reshape(1, -1)).sum(0).reshape(obs.shape)
    p = (1.0 + count) / (1.0 + nul.shape[0])
    p = np.where(np.isnan(obs), np.nan, p)
    return _wrap(p, observed, "pvalue_fwe")


def fdr_bh(pvalues: Any, alpha: float = 0.05) -> tuple[Any, Any]:
    """Benjamini–Hochberg adjusted p-values and the rejections at level ``alpha``.

    Parameters
    ----------
    pvalues : array_like or xarray.DataArray
        p-values in ``[0, 1]`` (any shape; all entries form one family).
    alpha : float
        The false discovery rate to control.

    Returns
    -------
    adjusted : ndarray or xarray.DataArray
        ``min_{j >= i} (m / j) p_(j)``, capped at 1 (``scipy.stats.false_discovery_control``).
    reject : ndarray of bool or xarray.DataArray
        ``adjusted <= alpha``.

    Raises
    ------
    ValueError
        For NaN values or values outside ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._stats import fdr_bh
    >>> adjusted, reject = fdr_bh(np.array([0.01, 0.04, 0.03]))
    >>> adjusted, reject
    (array([0.03, 0.04, 0.04]), array([ True,  True,  True]))
    """
    check_number("alpha", alpha, low=0, high=1)
    p = _as_array(pvalues, "pvalues")
    check_finite(p, "pvalues")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(
            f"pvalues must lie in [0, 1], got values in [{p.min():.6g}, {p.max():.6g}]."
        )
    flat = p.reshape(-1)
    m = flat.size
    order = np.argsort(flat, kind="stable")
    scaled = flat[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    adjusted = np.empty_like(flat)
    adjusted[order] = adjusted_sorted
    adjusted = adjusted.reshape(p.shape)
    reject = adjusted <= alpha
    return _wrap(adjusted, pvalues, "pvalue_fdr"), _wrap(reject, pvalues, "reject")


def bootstrap_indices(n_samples: int, n_bootstraps: int, *, seed: int | None = None) -> np.ndarray:
    """Draw bootstrap resamples of sample (test stimulus) indices, with replacement.

    Parameters
    ----------
    n_samples : int
        Number of test samples.
    n_bootstraps : int
        Number of resamples.
    seed : int, optional
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    indices : ndarray of int64, shape (n_bootstraps, n_samples)
        ``rng.integers(0, n_samples, (n_bootstraps, n_samples))``.

    Examples
    --------
    >>> from brainalign.encoding._stats import bootstrap_indices
    >>> bootstrap_indices(4, 3, seed=0).shape
    (3, 4)
    """
    check_number("n_samples", n_samples, low=1, integer=True)
    check_number("n_bootstraps", n_bootstraps, low=1, integer=True)
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_samples, size=(n_bootstraps, n_samples), dtype=np.int64)


def _weighted_scores(
    metric: str, w: torch.Tensor, yt: torch.Tensor, yp: torch.Tensor, n: int
) -> torch.Tensor:
    """Scores of resampled rows from draw counts ``w`` (B, n) via weighted sums (GEMMs).

    ``yt`` and ``yp`` are (n, T) float64, centered by their full-sample means (the scores
    are shift-invariant; centering keeps the moment differences accurate).
    """
    if metric == "neg_mse":
        return -(w @ (yt - yp) ** 2) / n
    mt = (w @ yt) / n
    vt = (w @ yt**2) / n - mt**2
    scale_t = (yt**2).mean(0, keepdim=True)
    zero_t = vt <= 1e-12 * scale_t
    if metric == "r2":
        err = (w @ (yt - yp) ** 2) / n
        r2 = 1 - err / torch.where(zero_t, torch.ones_like(vt), vt)
        return torch.where(zero_t, torch.zeros_like(r2), r2)
    mp = (w @ yp) / n
    vp = (w @ yp**2) / n - mp**2
    zero_p = vp <= 1e-12 * (yp**2).mean(0, keepdim=True)
    cov = (w @ (yt * yp)) / n - mt * mp
    st = torch.where(zero_t, torch.ones_like(vt), vt.clamp(min=0).sqrt())
    sp = torch.where(zero_p, torch.ones_like(vp), vp.clamp(min=0).sqrt())
    cov = torch.where(zero_t | zero_p, torch.zeros_like(cov), cov)
    return cov / (st * sp)


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    *,
    metric: str = "pearson",
    n_bootstraps: int = 1000,
    ci: float = 0.95,
    seed: int | None = None,
    indices: Any = None,
    return_samples: bool = False,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """Percentile bootstrap confidence interval of a score over test stimuli, per target.

    Test rows (stimuli or time points) are resampled with replacement; each resample is
    scored like :func:`brainalign.encoding._scoring.score` (himalaya's conventions for
    constant resamples). All resamples are scored at once: a resample's score only needs
    draw-count-weighted sums over rows, so each chunk of resamples is a few matrix products
    of a ``(chunk, n_samples)`` count matrix with the data, and memory stays bounded.

    Resampling rows assumes independent test samples (stimuli); on an autocorrelated time
    series the interval is too narrow. Even for independent samples the percentile interval
    under-covers at small n: simulated coverage of a 95 % interval of Pearson r (true
    r = 0.5, 60 test stimuli) is about 93.4 % (``tests/stats/cases_encoding.py``).

    Parameters
    ----------
    y_true : array_like or xarray.DataArray, shape ``(n_samples, *target_shape)``
        Observed test responses.
    y_pred : array_like or xarray.DataArray, shape ``(n_samples, *target_shape)``
        Predictions of the test responses. When both are DataArrays, ``y_pred`` is matched
        to ``y_true`` by label (sample ids, target coords); a mismatch raises
        ``StimulusAlignmentError`` naming the labels.
    metric : {"pearson", "r2", "neg_mse"}
        The score.
    n_bootstraps : int
        Number of resamples (ignored when ``indices`` is given).
    ci : float
        Coverage of the interval, in ``(0, 1)``.
    seed : int, optional
        Seed of :func:`bootstrap_indices`.
    indices : array_like of int, shape (n_bootstraps, n_samples), optional
        Explicit resamples (rows of test-sample indices).
    return_samples : bool
        Also return the bootstrap scores.
    device, dtype : optional
        Where to compute; sums accumulate in float64 whatever ``dtype``.

    Returns
    -------
    low, high : ndarray or xarray.DataArray, shape ``(*target_shape)``
        The ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles of the bootstrap scores (numpy's
        linear interpolation). DataArrays over the target dims when ``y_true`` is one.
    samples : ndarray, shape ``(n_bootstraps, *target_shape)``
        The bootstrap scores (only with ``return_samples=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._stats import bootstrap_ci
    >>> y = np.arange(6.0)[:, None]
    >>> low, high = bootstrap_ci(y, 2 * y, n_bootstraps=50, seed=0)
    >>> round(float(low[0]), 6), round(float(high[0]), 6)
    (1.0, 1.0)
    """
    check_option("metric", metric, tuple(SCORERS))
    check_number("ci", ci, low=0, high=1, closed="neither")
    labeled = isinstance(y_true, xr.DataArray)
    if labeled and isinstance(y_pred, xr.DataArray) and y_true.ndim >= 1:
        if set(y_pred.dims) == set(y_true.dims):
            y_pred = y_pred.transpose(*y_true.dims)
        y_pred = _align_samples(y_pred, y_true, ("y_pred", "y_true"))
        y_pred = _align_columns(y_pred, y_true.isel({y_true.dims[0]: 0}, drop=True), "y_pred")
    yt = _as_array(y_true, "y_true")
    yp = _as_array(y_pred, "y_pred")
    if yt.shape != yp.shape or yt.ndim < 1:
        raise ValueError(
            f"y_true and y_pred must have the same shape (n_samples, ...); got {yt.shape} and "
            f"{yp.shape}."
        )
    n = yt.shape[0]
    if n < 2:
        raise ValueError(f"bootstrap_ci needs at least 2 test samples, got {n}.")
    check_finite(yt, "y_true")
    check_finite(yp, "y_pred")
    if indices is None:
        check_number("n_bootstraps", n_bootstraps, low=1, integer=True)
        idx = bootstrap_indices(n, n_bootstraps, seed=seed)
    else:
        idx = np.asarray(indices)
        if idx.ndim != 2 or idx.shape[1] != n or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(
                f"indices must be an integer array of shape (n_bootstraps, {n}), got dtype "
                f"{idx.dtype} and shape {idx.shape}."
            )
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"indices must lie in [0, {n - 1}], got values in [{idx.min()}, {idx.max()}]."
            )
    target_shape = yt.shape[1:]
    dev = resolve_device(device)
    resolve_dtype(dtype, dev)  # validates; accumulation is float64 regardless
    t_true = as_tensor(yt.reshape(n, -1), dev, _F64)
    t_pred = as_tensor(yp.reshape(n, -1), dev, _F64)
    shift = t_true.mean(0, keepdim=True)  # scores are invariant to a common shift
    t_true = t_true - shift
    t_pred = t_pred - (t_pred.mean(0, keepdim=True) if metric == "pearson" else shift)
    n_boot, n_targets = idx.shape[0], t_true.shape[1]
    step = max(1, _MEMORY_BUDGET // (8 * max(n, n_targets) * 4))
    samples = np.empty((n_boot, n_targets))
    for start in range(0, n_boot, step):
        rows = as_tensor(idx[start : start + step], dev, torch.int64)
        w = torch.zeros(rows.shape[0], n, dtype=_F64, device=dev)
        w.scatter_add_(1, rows, torch.ones_like(rows, dtype=_F64))
        scores = _weighted_scores(metric, w, t_true, t_pred, n)
        samples[start : start + step] = to_numpy(scores)
    q = np.quantile(samples, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    low = q[0].reshape(target_shape)
    high = q[1].reshape(target_shape)
    if labeled:
        dims = y_true.dims[1:]
        coords = {k: v for k, v in y_true.coords.items() if set(v.dims) <= set(dims)}
        low = xr.DataArray(low, dims=dims, coords=coords, name="ci_low")
        high = xr.DataArray(high, dims=dims, coords=coords, name="ci_high")
    if return_samples:
        return low, high, samples.reshape(n_boot, *target_shape)
    return low, high
