"""Scorers for encoding models: negative MSE, R², Pearson r and their per-band splits.

The torch kernels (:func:`neg_mse`, :func:`r2_score`, :func:`correlation_score`,
:func:`r2_score_split`, :func:`correlation_score_split`) follow ``himalaya.scoring`` (0.4.x)
value for value, with two generalisations: any number of leading prediction dims broadcast
(``y_pred`` of shape ``(..., n_samples, n_targets)``), and ``y_true`` may carry leading dims
too (``(..., n_samples, n_targets)``, broadcast against ``y_pred``; the bootstrap uses this).
They do no validation (the solver calls them in inner loops): NaN propagates. Sums over
samples accumulate in float64 whatever the input dtype; results come back in ``y_pred``'s
dtype, as in himalaya.

Constant targets follow himalaya: R² is 0 where ``y_true`` has zero variance, and a zero
standard deviation counts as 1 in the correlation (so its score is 0).

:func:`score` is the labeled, validated entry point for numpy arrays, tensors and DataArrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import _fmt_list, check_finite, check_option
from brainalign._device import resolve_device, resolve_dtype, to_numpy, to_tensor
from brainalign._logging import warn

_F64 = torch.float64
_SAMPLE_DIMS = ("stimulus", "trial", "time")


def _center(x: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over samples (axis -2), the mean accumulated in float64."""
    return x - x.mean(-2, keepdim=True, dtype=_F64).to(x.dtype)


def neg_mse(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Negative mean squared error per target (``himalaya.scoring.l2_neg_loss``).

    Parameters
    ----------
    y_true : torch.Tensor, shape (..., n_samples, n_targets)
        Observed responses.
    y_pred : torch.Tensor, shape (..., n_samples, n_targets)
        Predictions; leading dims broadcast against ``y_true``'s.

    Returns
    -------
    score : torch.Tensor, shape (..., n_targets)
        ``-mean((y_true - y_pred) ** 2)`` over samples.

    Examples
    --------
    >>> import torch
    >>> from brainalign.encoding._scoring import neg_mse
    >>> y = torch.tensor([[1.0], [2.0], [3.0]])
    >>> neg_mse(y, y + 1)
    tensor([-1.])
    """
    n = y_true.shape[-2]
    err = ((y_true - y_pred) ** 2).sum(-2, dtype=_F64)
    return (-err / n).to(y_pred.dtype)


def r2_score(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination per target (``himalaya.scoring.r2_score``).

    Parameters
    ----------
    y_true : torch.Tensor, shape (..., n_samples, n_targets)
        Observed responses.
    y_pred : torch.Tensor, shape (..., n_samples, n_targets)
        Predictions; leading dims (alphas, folds, bootstrap samples) broadcast.

    Returns
    -------
    r2 : torch.Tensor, shape (..., n_targets)
        ``1 - SS_res / SS_tot``; 0 where ``y_true`` is constant.

    Examples
    --------
    >>> import torch
    >>> from brainalign.encoding._scoring import r2_score
    >>> y = torch.tensor([[1.0], [2.0], [3.0]])
    >>> r2_score(y, torch.tensor([[1.0], [2.0], [4.0]]))  # 1 - 1 / 2
    tensor([0.5000])
    """
    err = ((y_true - y_pred) ** 2).sum(-2, dtype=_F64)
    var = (_center(y_true) ** 2).sum(-2, dtype=_F64)
    zero = var == 0
    r2 = 1.0 - err / torch.where(zero, torch.ones_like(var), var)
    r2 = torch.where(zero, torch.zeros_like(r2), r2)
    return r2.to(y_pred.dtype)


def correlation_score(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per target (``himalaya.scoring.correlation_score``).

    Parameters
    ----------
    y_true : torch.Tensor, shape (..., n_samples, n_targets)
        Observed responses.
    y_pred : torch.Tensor, shape (..., n_samples, n_targets)
        Predictions; leading dims broadcast.

    Returns
    -------
    r : torch.Tensor, shape (..., n_targets)
        The correlation over samples; a zero standard deviation counts as 1, so a constant
        ``y_true`` or ``y_pred`` scores 0.

    Examples
    --------
    >>> import torch
    >>> from brainalign.encoding._scoring import correlation_score
    >>> y = torch.tensor([[1.0], [2.0], [3.0]])
    >>> correlation_score(y, -2 * y)
    tensor([-1.])
    """
    n = y_true.shape[-2]
    yt = _center(y_true)
    yp = _center(y_pred)
    cov = (yt * yp).sum(-2, dtype=_F64) / n
    st = ((yt**2).sum(-2, dtype=_F64) / n).sqrt()
    sp = ((yp**2).sum(-2, dtype=_F64) / n).sqrt()
    st = torch.where(st == 0, torch.ones_like(st), st)
    sp = torch.where(sp == 0, torch.ones_like(sp), sp)
    return (cov / (st * sp)).to(y_pred.dtype)


def _warn_not_centered(y_true: torch.Tensor, name: str) -> None:
    mean = y_true.mean(-2, dtype=_F64).abs()
    if bool((mean > 1e-6).any()):
        n_bad = int((mean > 1e-6).sum())
        warn(
            f"{name} assumes y_true is zero-mean over samples; {n_bad} of {mean.numel()} "
            f"target(s) have |mean| > 1e-6 (largest {float(mean.max()):.3g}). Center y_true "
            "first, or the band contributions will not sum to the joint R²."
        )


def r2_score_split(
    y_true: torch.Tensor, y_pred: torch.Tensor, include_correlation: bool = True
) -> torch.Tensor:
    """Split R² into per-band contributions with the product measure (himalaya's).

    With a joint prediction ``sum_b y_pred[b]``, band ``b`` gets
    ``sum_s (2 y_s yhat_bs - yhat_bs sum_k yhat_ks) / sum_s y_s**2``; the contributions sum to
    the joint R² when ``include_correlation`` (``yhat_bs**2`` replaces the cross term
    otherwise). ``y_true`` must be zero-mean over samples (a warning says when not).

    Parameters
    ----------
    y_true : torch.Tensor, shape (n_samples, n_targets)
        Observed responses, centered over samples.
    y_pred : torch.Tensor, shape (..., n_bands, n_samples, n_targets) or (n_samples, n_targets)
        Per-band predictions (band axis third from last).
    include_correlation : bool
        Account for the correlations between band predictions.

    Returns
    -------
    r2 : torch.Tensor, shape (..., n_bands, n_targets) or (n_targets,)
        Per-band R². Where ``sum_s y_s**2 == 0`` the contribution is 0 (himalaya divides by
        zero there).

    Examples
    --------
    >>> import torch
    >>> from brainalign.encoding._scoring import r2_score_split
    >>> y = torch.tensor([[-1.0], [0.0], [1.0]])
    >>> parts = torch.stack([0.5 * y, 0.25 * y])
    >>> r2_score_split(y, parts)  # (2 * 1 - 0.75) / 2 and (1 - 0.375) / 2; sum 0.9375
    tensor([[0.6250],
            [0.3125]])
    """
    _warn_not_centered(y_true, "r2_score_split")
    no_split = y_pred.ndim == 2
    if no_split:
        y_pred = y_pred[None]
    sst = (y_true**2).sum(-2, dtype=_F64)
    inter = (y_true * y_pred).sum(-2, dtype=_F64)  # (..., B, T)
    if include_correlation:
        total = y_pred.sum(-3, keepdim=True)
        asst = (y_pred * total).sum(-2, dtype=_F64)
    else:
        asst = (y_pred**2).sum(-2, dtype=_F64)
    zero = sst == 0
    r2 = (2 * inter - asst) / torch.where(zero, torch.ones_like(sst), sst)
    r2 = torch.where(zero, torch.zeros_like(r2), r2).to(y_pred.dtype)
    return r2[0] if no_split else r2


def correlation_score_split(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Split the joint correlation into per-band contributions (himalaya's).

    Band ``b`` gets ``cov(y, yhat_b) / (std(y) std(sum_k yhat_k))``, so the contributions sum
    to the correlation of ``y`` with the joint prediction.

    Parameters
    ----------
    y_true : torch.Tensor, shape (n_samples, n_targets)
        Observed responses.
    y_pred : torch.Tensor, shape (..., n_bands, n_samples, n_targets) or (n_samples, n_targets)
        Per-band predictions (band axis third from last).

    Returns
    -------
    r : torch.Tensor, shape (..., n_bands, n_targets) or (n_targets,)
        Per-band contributions (zero standard deviations count as 1).

    Examples
    --------
    >>> import torch
    >>> from brainalign.encoding._scoring import correlation_score_split
    >>> y = torch.tensor([[-1.0], [0.0], [1.0]])
    >>> correlation_score_split(y, torch.stack([3 * y, y]))
    tensor([[0.7500],
            [0.2500]])
    """
    no_split = y_pred.ndim == 2
    if no_split:
        return correlation_score(y_true, y_pred)
    n = y_true.shape[-2]
    yt = _center(y_true)
    yp = _center(y_pred)
    st = ((yt**2).sum(-2, dtype=_F64) / n).sqrt()
    st = torch.where(st == 0, torch.ones_like(st), st)
    total = yp.sum(-3, keepdim=True)
    sp = ((total**2).sum(-2, dtype=_F64) / n).sqrt()
    sp = torch.where(sp == 0, torch.ones_like(sp), sp)
    cov = (yt * yp).sum(-2, dtype=_F64) / n
    return (cov / (st * sp)).to(y_pred.dtype)


SCORERS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "neg_mse": neg_mse,
    "r2": r2_score,
    "pearson": correlation_score,
}


def get_scorer(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return the torch scorer registered under ``name``.

    Parameters
    ----------
    name : {"neg_mse", "r2", "pearson"}
        The metric.

    Returns
    -------
    scorer : callable
        ``scorer(y_true, y_pred) -> (..., n_targets)`` tensor.

    Raises
    ------
    ValueError
        For an unknown name (with a "Did you mean").

    Examples
    --------
    >>> from brainalign.encoding._scoring import get_scorer
    >>> get_scorer("r2").__name__
    'r2_score'
    """
    check_option("metric", name, tuple(SCORERS))
    return SCORERS[name]


# --------------------------------------------------------------------------------------------
# Labeled, validated wrapper
# --------------------------------------------------------------------------------------------


def _constant_targets(y: np.ndarray) -> np.ndarray:
    """Return a boolean mask of the targets (columns) of ``y`` (n, T) that are constant."""
    return np.ptp(y, axis=0) == 0 if y.shape[0] else np.zeros(y.shape[1], dtype=bool)


def score(
    y_true: Any,
    y_pred: Any,
    metric: str = "r2",
    *,
    constant: str = "raise",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """Score predictions per target, with validation and labels.

    Parameters
    ----------
    y_true : array_like or xarray.DataArray, shape ``(n_samples, *target_shape)``
        Observed responses. Samples are the first axis; for a DataArray, its
        ``"stimulus"``, ``"trial"`` or ``"time"`` dim (else its first dim).
    y_pred : array_like or xarray.DataArray, shape ``(*lead, n_samples, *target_shape)``
        Predictions. As a DataArray it must hold all of ``y_true``'s dims (in any order);
        extra dims (alphas, folds) lead the result.
    metric : {"r2", "pearson", "neg_mse"}
        The scorer (see :data:`SCORERS`).
    constant : {"raise", "zero"}
        What a target that is constant over samples in ``y_true`` does: ``"raise"`` names
        them; ``"zero"`` keeps himalaya's convention (R² and r are 0 there).
    device, dtype : optional
        Where and in which precision to compute (see :func:`brainalign.set_config`).

    Returns
    -------
    scores : ndarray or xarray.DataArray, shape ``(*lead, *target_shape)``
        A DataArray over ``y_pred``'s non-sample dims when ``y_pred`` is one (coords kept),
        else an ndarray.

    Raises
    ------
    ValueError
        For NaN or infinite values, constant targets (with ``constant="raise"``) or shapes
        that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._scoring import score
    >>> y = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> score(y, y * 2, metric="pearson")
    array([1., 1.])
    """
    check_option("metric", metric, tuple(SCORERS))
    check_option("constant", constant, ("raise", "zero"))
    labeled = isinstance(y_pred, xr.DataArray)
    if isinstance(y_true, xr.DataArray):
        if y_true.ndim:
            sample = next((d for d in _SAMPLE_DIMS if d in y_true.dims), y_true.dims[0])
            y_true = y_true.transpose(sample, ...)
    if labeled:
        if not isinstance(y_true, xr.DataArray):
            raise TypeError(
                "y_true must be a DataArray when y_pred is one (to match dims), got "
                f"{type(y_true).__name__}."
            )
        missing = [d for d in y_true.dims if d not in y_pred.dims]
        if missing:
            raise ValueError(
                f"y_pred must hold every dim of y_true {tuple(y_true.dims)}; it has "
                f"{tuple(y_pred.dims)}, missing {tuple(missing)}."
            )
        lead = [d for d in y_pred.dims if d not in y_true.dims]
        y_pred = y_pred.transpose(*lead, *y_true.dims)
        if y_pred.shape[len(lead) :] != y_true.shape:
            raise ValueError(
                f"y_pred's sizes along y_true's dims {tuple(y_true.dims)} are "
                f"{y_pred.shape[len(lead) :]}; y_true has {y_true.shape}."
            )
    yt = to_numpy(y_true.values if isinstance(y_true, xr.DataArray) else y_true)
    yp = to_numpy(y_pred.values if labeled else y_pred)
    if yt.ndim < 1 or yt.shape[0] < 2:
        raise ValueError(
            f"y_true must have shape (n_samples, ...) with at least 2 samples, got shape "
            f"{yt.shape}."
        )
    target_shape = yt.shape[1:]
    if yp.ndim < yt.ndim or yp.shape[yp.ndim - yt.ndim :] != yt.shape:
        raise ValueError(
            f"y_pred must have shape (..., {', '.join(map(str, yt.shape))}) to match y_true; "
            f"got {yp.shape}."
        )
    check_finite(yt, "y_true")
    check_finite(yp, "y_pred")
    n = yt.shape[0]
    yt2 = yt.reshape(n, -1)
    if constant == "raise" and metric != "neg_mse":
        const = _constant_targets(yt2)
        if const.any():
            where = np.argwhere(const.reshape(target_shape)).tolist() if target_shape else []
            raise ValueError(
                f"y_true has {int(const.sum())} of {const.size} target(s) constant over "
                f"samples (at {_fmt_list([tuple(w) for w in where])}); {metric} is undefined "
                "there. Drop them, or pass constant='zero' for himalaya's convention (score 0)."
            )
    lead_shape = yp.shape[: yp.ndim - yt.ndim]
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    t_true = to_tensor(yt2, device=dev, dtype=dt)
    t_pred = to_tensor(yp.reshape(*lead_shape, n, -1), device=dev, dtype=dt)
    out = to_numpy(SCORERS[metric](t_true, t_pred)).reshape(*lead_shape, *target_shape)
    if not labeled:
        return out
    dims = tuple(lead) + tuple(y_true.dims[1:])
    coords = {k: v for k, v in y_pred.coords.items() if set(v.dims) <= set(dims)}
    coords.update({k: v for k, v in y_true.coords.items() if set(v.dims) <= set(dims)})
    return xr.DataArray(out, dims=dims, coords=coords, name=metric, attrs={"metric": metric})
