"""Noise ceilings from repeated presentations, and scores normalised by them.

Three estimators, each computed per target (voxel, channel, unit) in one batch:

- :func:`split_half_reliability`: random split-halves of the repeats, Pearson r between the
  half means over stimuli, averaged over splits, Spearman–Brown corrected.
- :func:`ncsnr` and :func:`nsd_noise_ceiling`: the noise-ceiling signal-to-noise ratio and
  noise ceiling of the Natural Scenes Dataset (Allen et al. 2022, Nature Neuroscience 25,
  116–126, Methods, "Noise ceiling").
- :func:`explainable_variance`: the explainable variance of the Gallant lab's voxelwise
  tutorials (``voxelwise_tutorials.utils.explainable_variance``; Sahani & Linden 2003, Hsu,
  Borst & Theunissen 2004), with its bias correction.

Inputs with repeats come in three forms:

- a DataArray with a ``"repeat"`` dim, a sample dim (``"stimulus"``, else ``"time"``, else
  the first other dim) and any target dims;
- a DataArray with a ``"trial"`` dim holding a ``"stimulus"`` (or ``"stimulus_id"``) coord:
  trials of one stimulus are its repeats (counts may differ for :func:`ncsnr`);
- an array of shape ``(n_repeats, n_samples, *target_shape)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import (
    SchemaError,
    _fmt_list,
    check_finite,
    check_number,
    check_option,
)
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._logging import warn

_F64 = torch.float64
_MEMORY_BUDGET = 2**27  # bytes per chunk of targets
NORMALIZATIONS = ("r2/ceiling", "(r/ceiling)^2")
CEILING_KINDS = ("variance", "percent", "correlation")


@dataclass
class _Repeats:
    values: np.ndarray  # (R, S, T), zeros where a repeat is missing
    mask: np.ndarray  # (R, S) bool, True where a repeat exists
    counts: np.ndarray  # (S,) repeats per sample
    target_shape: tuple[int, ...]
    template: xr.DataArray | None  # labels of the target dims (None for plain arrays)

    def wrap(self, out: np.ndarray, name: str, ceiling_kind: str | None = None) -> Any:
        out = out.reshape(self.target_shape)
        if self.template is None:
            return out
        da = self.template.copy(data=out).rename(name)
        if ceiling_kind is not None:  # read by normalize_score
            da.attrs["ceiling_kind"] = ceiling_kind
        return da


def _target_template(da: xr.DataArray, target_dims: list[str]) -> xr.DataArray:
    coords = {k: v for k, v in da.coords.items() if set(v.dims) <= set(target_dims)}
    shape = tuple(da.sizes[d] for d in target_dims)
    return xr.DataArray(np.zeros(shape), dims=target_dims, coords=coords)


def _as_repeats(y: Any, name: str, *, equal: bool) -> _Repeats:
    """Bring ``y`` into ``(repeat, sample, target)`` form; see the module docstring."""
    template = None
    if isinstance(y, xr.DataArray):
        if "repeat" in y.dims:
            rest = [d for d in y.dims if d != "repeat"]
            if not rest:
                raise SchemaError(
                    f"{name} must have a sample dim besides 'repeat'; it has dims {y.dims}."
                )
            sample = next((d for d in ("stimulus", "time") if d in rest), rest[0])
            targets = [d for d in rest if d != sample]
            y = y.transpose("repeat", sample, *targets)
            template = _target_template(y, targets)
            values = np.asarray(y.values, dtype=float)
        elif "trial" in y.dims:
            key = next((c for c in ("stimulus", "stimulus_id") if c in y.coords), None)
            if key is None or y[key].dims != ("trial",):
                raise SchemaError(
                    f"{name} with a 'trial' dim needs a 'stimulus' (or 'stimulus_id') coord "
                    f"along 'trial' to group repeats; it has coords {tuple(y.coords)}."
                )
            targets = [d for d in y.dims if d != "trial"]
            y = y.transpose("trial", *targets)
            template = _target_template(y, targets)
            trials = np.asarray(y.values, dtype=float)
            check_finite(trials.reshape(trials.shape[0], -1), name)
            _, codes = np.unique(np.asarray(y[key].values).astype(str), return_inverse=True)
            order = np.argsort(codes, kind="stable")
            counts_all = np.bincount(codes)
            starts = np.concatenate([[0], np.cumsum(counts_all)[:-1]])
            rank = np.empty_like(codes)
            rank[order] = np.arange(codes.size) - np.repeat(starts, counts_all)
            values = np.zeros((counts_all.max(), counts_all.size, *trials.shape[1:]))
            values[rank, codes] = trials
            mask = np.zeros((counts_all.max(), counts_all.size), dtype=bool)
            mask[rank, codes] = True
            return _finish(values, mask, template, name, equal)
        else:
            raise SchemaError(
                f"{name} must have a 'repeat' dim, or a 'trial' dim with a 'stimulus' coord; "
                f"it has dims {tuple(y.dims)}."
            )
    else:
        values = np.asarray(to_numpy(y), dtype=float)
        if values.ndim < 2:
            raise ValueError(
                f"{name} must have shape (n_repeats, n_samples, ...), got shape {values.shape}."
            )
    check_finite(values.reshape(values.shape[0], -1), name)
    mask = np.ones(values.shape[:2], dtype=bool)
    return _finish(values, mask, template, name, equal)


def _finish(
    values: np.ndarray, mask: np.ndarray, template: Any, name: str, equal: bool
) -> _Repeats:
    n_rep, n_samples = values.shape[:2]
    target_shape = values.shape[2:]
    values = values.reshape(n_rep, n_samples, -1)
    counts = mask.sum(0)
    if equal and (counts != counts[0]).any():
        uniq, freq = np.unique(counts, return_counts=True)
        raise ValueError(
            f"{name} must have the same number of repeats for every sample; got repeat "
            f"counts {_fmt_list(uniq.tolist())} for {_fmt_list(freq.tolist())} sample(s). "
            "Select samples with equal repeats first."
        )
    if n_samples < 2:
        raise ValueError(f"{name} needs at least 2 samples (stimuli or times), got {n_samples}.")
    present = values[mask]  # (n_trials, T)
    const = np.ptp(present, axis=0) == 0
    if const.any():
        idx = np.flatnonzero(const)
        where = [np.unravel_index(i, target_shape) for i in idx] if target_shape else []
        raise ValueError(
            f"{name} has {const.sum()} of {const.size} target(s) constant over all trials "
            f"(at {_fmt_list([tuple(int(v) for v in w) for w in where])}); their ceiling is "
            "undefined. Drop them first."
        )
    return _Repeats(values, mask, counts, target_shape, template)


def _chunks(n_targets: int, per_target: int) -> list[slice]:
    step = max(1, _MEMORY_BUDGET // max(1, 8 * per_target))
    return [slice(i, min(i + step, n_targets)) for i in range(0, n_targets, step)]


def spearman_brown(r: Any, factor: float = 2.0) -> Any:
    """Spearman–Brown prophecy: the reliability of a test ``factor`` times as long.

    Parameters
    ----------
    r : float or array_like
        Reliability (correlation) of the shorter test.
    factor : float
        Length ratio; 2 corrects a split-half correlation to the full length.

    Returns
    -------
    corrected : float or ndarray
        ``factor * r / (1 + (factor - 1) * r)``.

    Examples
    --------
    >>> from brainalign.encoding._ceiling import spearman_brown
    >>> float(spearman_brown(0.5))  # 2 * 0.5 / 1.5
    0.6666666666666666
    """
    check_number("factor", factor, low=0, closed="neither")
    r = np.asarray(r, dtype=float) if not isinstance(r, xr.DataArray) else r
    return factor * r / (1 + (factor - 1) * r)


def split_half_reliability(
    Y: Any,
    *,
    n_splits: int = 100,
    seed: int | None = None,
    spearman_brown: bool = True,
    average: str = "mean",
    splits: Any = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """Split-half reliability per target, Spearman–Brown corrected.

    Each split assigns the repeats at random to two halves of ``n_repeats // 2`` repeats
    each (with an odd count, one random repeat sits out of that split). The half means are
    correlated over samples (Pearson r) per target. The ``n_splits`` correlations are averaged
    (``average="mean"``: their mean, as Brain-Score's split-half consistency does;
    ``"fisher"``: ``tanh`` of the mean Fisher z), then corrected to the reliability of the
    mean of ``2 * (n_repeats // 2)`` repeats with ``2 r / (1 + r)``.

    All splits and targets are computed at once from the per-target Gram matrix of the
    repeats over samples (each half mean is a weighted sum of repeats, so every split's
    covariances are quadratic forms of that Gram matrix).

    Parameters
    ----------
    Y : xarray.DataArray or array_like
        Responses with repeats (see the module docstring for the accepted forms); every
        sample needs the same number of repeats, at least 2.
    n_splits : int
        Number of random splits.
    seed : int, optional
        Seed of ``numpy.random.default_rng`` drawing the splits.
    spearman_brown : bool
        Apply the Spearman–Brown correction.
    average : {"mean", "fisher"}
        How correlations are averaged over splits.
    splits : array_like of int, shape (n_splits, n_repeats), optional
        Explicit splits, one permutation of ``range(n_repeats)`` per row: the first
        ``n_repeats // 2`` entries form one half, the next ``n_repeats // 2`` the other
        (``n_splits`` and ``seed`` are then ignored).
    device, dtype : optional
        Where and in which precision to compute.

    Returns
    -------
    reliability : ndarray or xarray.DataArray
        One value per target (a DataArray over the target dims for a DataArray input, with
        ``attrs["ceiling_kind"] = "variance"``). It is a ceiling on R² (and on r²), not on
        r: a perfect model's r with the averaged responses is ``sqrt(reliability)``; see
        :func:`normalize_score`.

    Raises
    ------
    ValueError
        For NaN values, constant targets, unequal repeat counts or fewer than 2 repeats.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._ceiling import split_half_reliability
    >>> Y = np.array([[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.0]]])  # 2 identical repeats
    >>> split_half_reliability(Y, n_splits=2, seed=0)
    array([1.])
    """
    check_number("n_splits", n_splits, low=1, integer=True)
    check_option("average", average, ("mean", "fisher"))
    rep = _as_repeats(Y, "Y", equal=True)
    n_rep, n_samples, n_targets = rep.values.shape
    if n_rep < 2:
        raise ValueError(f"Y needs at least 2 repeats for split halves, got {n_rep}.")
    half = n_rep // 2
    if splits is None:
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(np.arange(n_rep), (n_splits, 1)), axis=1)
    else:
        perms = np.asarray(splits)
        ok = perms.ndim == 2 and perms.shape[1] == n_rep and perms.shape[0] >= 1
        if not ok or not np.array_equal(
            np.sort(perms, axis=1), np.tile(np.arange(n_rep), (len(perms), 1))
        ):
            raise ValueError(
                f"splits must hold permutations of range({n_rep}), one per row (shape "
                f"(n_splits, {n_rep})); got shape {perms.shape}."
            )
        n_splits = perms.shape[0]
    w1 = np.zeros((n_splits, n_rep))
    w2 = np.zeros((n_splits, n_rep))
    rows = np.arange(n_splits)[:, None]
    w1[rows, perms[:, :half]] = 1.0
    w2[rows, perms[:, half : 2 * half]] = 1.0
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    w1_t = as_tensor(w1, dev, _F64)
    w2_t = as_tensor(w2, dev, _F64)
    r = torch.empty(n_splits, n_targets, dtype=_F64, device=dev)
    for sl in _chunks(n_targets, n_rep * max(n_samples, n_rep, n_splits)):
        y = as_tensor(rep.values[:, :, sl], dev, dt)
        y = (y - y.mean(1, keepdim=True, dtype=_F64).to(dt)).to(_F64)
        gram = torch.einsum("ist,jst->tij", y, y)  # (T, R, R), accumulated in float64
        g1 = gram @ w1_t.T  # (T, R, K)
        g2 = gram @ w2_t.T
        c12 = torch.einsum("kr,trk->kt", w1_t, g2)
        c11 = torch.einsum("kr,trk->kt", w1_t, g1)
        c22 = torch.einsum("kr,trk->kt", w2_t, g2)
        r[:, sl] = c12 / (c11 * c22).sqrt()
    if average == "mean":
        rbar = r.mean(0)
    else:
        rbar = torch.tanh(torch.atanh(r.clamp(-1, 1)).mean(0))
    if spearman_brown:
        rbar = 2 * rbar / (1 + rbar)
    out = to_numpy(rbar)
    n_nan = int(np.isnan(out).sum())
    if n_nan:
        warn(
            f"split_half_reliability is NaN for {n_nan} of {out.size} target(s): a half mean "
            "was constant over samples in some split."
        )
    return rep.wrap(out, "split_half_reliability", "variance")


def _noise_signal(
    Y: Any, total_variance: float | None, device: Any, dtype: Any
) -> tuple[_Repeats, np.ndarray, np.ndarray]:
    """Return the repeats, the noise variance and the signal variance per target."""
    if total_variance is not None:
        check_number("total_variance", total_variance, low=0, closed="neither")
    rep = _as_repeats(Y, "Y", equal=False)
    dof = int((rep.counts - 1).clip(min=0).sum())
    if dof == 0:
        raise ValueError(
            "Y needs at least one sample with 2 or more repeats to estimate the noise; "
            f"repeat counts are {_fmt_list(np.unique(rep.counts).tolist())}."
        )
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    y = as_tensor(rep.values, dev, dt)
    m = as_tensor(rep.mask, dev, dt)[:, :, None]
    counts = as_tensor(rep.counts, dev, _F64)[:, None].clamp(min=1)
    mean = (y * m).sum(0, dtype=_F64) / counts  # (S, T)
    resid = (y - mean.to(dt)) * m
    noise = (resid**2).sum((0, 1), dtype=_F64) / dof  # pooled within-sample variance
    if total_variance is None:
        n_trials = float(rep.mask.sum())
        grand = (y * m).sum((0, 1), dtype=_F64) / n_trials
        total = (((y - grand.to(dt)) * m) ** 2).sum((0, 1), dtype=_F64) / n_trials
    else:
        total = torch.full_like(noise, float(total_variance))
    signal = (total - noise).clamp(min=0)
    return rep, to_numpy(noise), to_numpy(signal)


def ncsnr(
    Y: Any,
    *,
    total_variance: float | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """Noise-ceiling signal-to-noise ratio per target (NSD, Allen et al. 2022).

    ``sigma_noise**2`` is the variance across repeats of each stimulus (ddof=1), averaged
    over stimuli (pooled, weighted by ``n_i - 1``, when repeat counts differ; stimuli seen
    once do not count). ``sigma_signal**2 = max(0, sigma_total**2 - sigma_noise**2)``, and
    ``ncsnr = sigma_signal / sigma_noise``.

    NSD z-scores betas per session and sets ``sigma_total**2 = 1`` (so
    ``sigma_signal**2 = max(0, 1 - sigma_noise**2)``). Here ``sigma_total**2`` is the variance
    of all trials (ddof=0), which is exactly 1 for betas z-scored (ddof=0) within sessions
    over all their trials; pass ``total_variance=1.0`` to use NSD's value as such.

    Parameters
    ----------
    Y : xarray.DataArray or array_like
        Responses with repeats (see the module docstring); repeat counts may differ across
        stimuli when given as trials.
    total_variance : float, optional
        Use this instead of the data's total variance.
    device, dtype : optional
        Where and in which precision to compute.

    Returns
    -------
    ncsnr : ndarray or xarray.DataArray
        One value per target; ``inf`` where the noise variance is 0.

    Raises
    ------
    ValueError
        For NaN values, constant targets or no stimulus with 2 repeats.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._ceiling import ncsnr
    >>> Y = np.array([[[0.0], [2.0]], [[2.0], [4.0]]])  # 2 repeats x 2 stimuli
    >>> ncsnr(Y)  # noise var 2, total var 2, signal var 0
    array([0.])
    """
    rep, noise, signal = _noise_signal(Y, total_variance, device, dtype)
    with np.errstate(divide="ignore"):
        out = np.sqrt(signal) / np.sqrt(noise)
    out[noise == 0] = np.inf
    return rep.wrap(out, "ncsnr")


def nsd_noise_ceiling(
    Y: Any,
    n_average: Any = 1,
    *,
    total_variance: float | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """NSD noise ceiling in percent of variance: ``100 ncsnr² / (ncsnr² + mean(1/n))``.

    Allen et al. 2022 (Methods, "Noise ceiling"): for responses averaged over ``n`` trials,
    ``NC = 100 * ncsnr**2 / (ncsnr**2 + 1 / n)``; when test stimuli have different trial
    counts (fractions ``A``, ``B``, ``C`` with 3, 2, 1 trials) the ``1 / n`` term is
    ``A / 3 + B / 2 + C / 1``, which is what a sequence ``n_average`` of per-stimulus counts
    gives here (the mean of ``1 / n``).

    Parameters
    ----------
    Y : xarray.DataArray or array_like
        Responses with repeats (see :func:`ncsnr`).
    n_average : int or sequence of int
        Trials averaged per test stimulus: one count for all, or one per stimulus.
    total_variance : float, optional
        See :func:`ncsnr`.
    device, dtype : optional
        Where and in which precision to compute.

    Returns
    -------
    ceiling : ndarray or xarray.DataArray
        Percent of the variance explainable per target, in ``[0, 100]``; a DataArray
        carries ``attrs["ceiling_kind"] = "percent"``, which :func:`normalize_score` reads
        (for an array pass ``ceiling_kind="percent"``, or divide by 100).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._ceiling import nsd_noise_ceiling
    >>> Y = np.array([[[0.0], [4.0]], [[2.0], [6.0]]])  # noise var 2, total var 5
    >>> nsd_noise_ceiling(Y, n_average=2)  # ncsnr² = 3 / 2; 100 * 1.5 / (1.5 + 0.5)
    array([75.])
    """
    counts = np.atleast_1d(np.asarray(n_average))
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(
            "n_average must be a positive int or a 1-D sequence of positive ints, got "
            f"{n_average!r}."
        )
    if (counts < 1).any():
        raise ValueError(
            f"n_average must hold counts >= 1, got {_fmt_list(counts[counts < 1].tolist())}."
        )
    inv_n = float(np.mean(1.0 / counts))
    rep, noise, signal = _noise_signal(Y, total_variance, device, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr2 = signal / noise
        out = 100 * snr2 / (snr2 + inv_n)
    out[noise == 0] = 100.0
    return rep.wrap(out, "noise_ceiling", "percent")


def explainable_variance(
    Y: Any,
    bias_correction: bool = True,
    *,
    do_zscore: bool = True,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """Explainable variance per target, as in ``voxelwise_tutorials.utils``.

    With ``y`` z-scored over samples in each repeat (``do_zscore``),
    ``ev = var(mean over repeats) / mean over repeats of var`` (variances over samples,
    ddof=1), and the bias correction (Sahani & Linden 2003; Hsu, Borst & Theunissen 2004)
    gives ``ev - (1 - ev) / (n_repeats - 1)``.

    Parameters
    ----------
    Y : xarray.DataArray or array_like
        Responses ``("repeat", "time" or "stimulus", *targets)`` (see the module docstring);
        equal repeat counts.
    bias_correction : bool
        Apply the bias correction for the number of repeats.
    do_zscore : bool
        z-score each repeat over samples first (ddof=0, like ``scipy.stats.zscore``).
    device, dtype : optional
        Where and in which precision to compute.

    Returns
    -------
    ev : ndarray or xarray.DataArray
        One value per target (may be negative with the correction); a variance ceiling
        (``attrs["ceiling_kind"] = "variance"`` on a DataArray) for single-repeat responses.
        For responses averaged over ``n`` repeats, ``spearman_brown(ev, n)`` is the ceiling.

    Raises
    ------
    ValueError
        For NaN values, constant targets (or, with ``do_zscore``, a target constant within a
        repeat), unequal repeat counts or fewer than 2 repeats.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._ceiling import explainable_variance
    >>> Y = np.array([[[1.0], [-1.0]], [[1.0], [-1.0]]])  # identical repeats
    >>> explainable_variance(Y)
    array([1.])
    """
    rep = _as_repeats(Y, "Y", equal=True)
    n_rep = rep.values.shape[0]
    if n_rep < 2:
        raise ValueError(f"Y needs at least 2 repeats for the explainable variance, got {n_rep}.")
    if do_zscore:
        flat = np.ptp(rep.values, axis=1) == 0  # (R, T)
        if flat.any():
            raise ValueError(
                f"Y has {int(flat.any(0).sum())} target(s) constant over samples within a "
                f"repeat ({int(flat.sum())} (repeat, target) pairs), so they cannot be "
                "z-scored. Drop them, or pass do_zscore=False."
            )
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    y = as_tensor(rep.values, dev, dt)
    if do_zscore:
        y = y - y.mean(1, keepdim=True, dtype=_F64).to(dt)
        y = y / (y**2).mean(1, keepdim=True, dtype=_F64).sqrt().to(dt)
    mean_var = torch.var(y.to(_F64), dim=1, correction=1).mean(0)
    var_mean = torch.var(y.mean(0, dtype=_F64), dim=0, correction=1)
    ev = var_mean / mean_var
    if bias_correction:
        ev = ev - (1 - ev) / (n_rep - 1)
    return rep.wrap(to_numpy(ev), "explainable_variance", "variance")


def normalize_score(
    score: Any,
    ceiling: Any,
    *,
    normalization: str = "r2/ceiling",
    ceiling_kind: str | None = None,
) -> Any:
    """Express scores as a fraction of what a perfect model reaches, per target.

    A *perfect model* predicts the noise-free response exactly; on noisy test responses it
    still scores below 1: its R² (and its squared Pearson r) equals, in expectation, the
    fraction of the test responses' variance that is not noise. That fraction is the
    variance ceiling ``c``, and both normalisations divide by it, so a perfect model scores
    1 (in expectation) whatever the ceiling's origin:

    - ``"r2/ceiling"``: ``score`` is R² (variance explained, a fraction); returns
      ``R² / c``.
    - ``"(r/ceiling)^2"``: ``score`` is Pearson r; returns ``(r / sqrt(c))² = r² / c``
      (Brain-Score's squared ceiled correlation; the square drops the sign of ``r``). The
      largest attainable r is ``sqrt(c)``, not ``c``: dividing r by a reliability would
      score a perfect model ``1 / c``.

    What ``ceiling`` holds is said by ``ceiling_kind``:

    - ``"variance"``: the variance ceiling ``c`` itself, in ``[0, 1]``. This is what
      :func:`split_half_reliability` returns (Spearman–Brown corrected: the ceiling of test
      responses averaged over all the repeats; uncorrected: over half of them) and
      :func:`explainable_variance` (bias-corrected: the ceiling of *single-repeat* test
      responses; for test responses averaged over ``n`` repeats pass
      ``spearman_brown(ev, n)``).
    - ``"percent"``: ``100 c``, as :func:`nsd_noise_ceiling` returns it (with ``n_average``
      the number of trials averaged in the test responses).
    - ``"correlation"``: the largest attainable Pearson r, ``sqrt(c)`` (in ``[0, 1]``).

    Parameters
    ----------
    score : float, array_like or xarray.DataArray
        Model scores on the test responses: R² for ``"r2/ceiling"``, Pearson r for
        ``"(r/ceiling)^2"``.
    ceiling : float, array_like or xarray.DataArray
        The ceiling of the same test responses, of kind ``ceiling_kind``. Broadcast against
        ``score`` (DataArrays by dim name; shared dims are matched by label, reordered when
        the labels are the same set).
    normalization : {"r2/ceiling", "(r/ceiling)^2"}
        See above.
    ceiling_kind : {"variance", "percent", "correlation"}, optional
        What ``ceiling`` holds (see above). Default: the ``ceiling_kind`` attribute that
        brainalign's ceiling functions put on a DataArray, else ``"variance"`` for
        ``"r2/ceiling"``; ``"(r/ceiling)^2"`` refuses to guess (its name reads as a
        ceiling on r, which a reliability is not).

    Returns
    -------
    normalized : float, ndarray or xarray.DataArray
        NaN where the ceiling is not positive (or NaN); a warning counts those targets.

    Raises
    ------
    ValueError
        For an unknown option, or a ceiling outside the range of its kind (``[0, 1]`` for
        ``"variance"`` and ``"correlation"``, ``[0, 100]`` for ``"percent"``): a percent
        ceiling given as a fraction is refused rather than silently divided by 100.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._ceiling import normalize_score
    >>> normalize_score(np.array([0.1, 0.2]), np.array([0.5, 0.4]))
    array([0.2, 0.5])
    >>> # r = 0.3 against a reliability of 0.36: the best attainable r is 0.6
    >>> normalize_score(np.array([0.3]), np.array([0.36]), normalization="(r/ceiling)^2",
    ...                 ceiling_kind="variance")
    array([0.25])
    >>> normalize_score(np.array([0.3]), np.array([0.6]), normalization="(r/ceiling)^2",
    ...                 ceiling_kind="correlation")
    array([0.25])
    """
    check_option("normalization", normalization, NORMALIZATIONS)
    if ceiling_kind is None and isinstance(ceiling, xr.DataArray):
        ceiling_kind = ceiling.attrs.get("ceiling_kind")
    if ceiling_kind is None and normalization == "(r/ceiling)^2":
        raise ValueError(
            "normalization='(r/ceiling)^2' needs to know what the ceiling holds, and this "
            "ceiling carries no 'ceiling_kind' attribute: pass ceiling_kind='variance' for a "
            "reliability or explained-variance ceiling (the best attainable r is its square "
            "root), 'correlation' for a ceiling on r itself, or 'percent' for an NSD-style "
            "ceiling. (Earlier versions read it as a correlation ceiling.)"
        )
    kind = "variance" if ceiling_kind is None else ceiling_kind
    check_option("ceiling_kind", kind, CEILING_KINDS)
    if isinstance(score, xr.DataArray) and isinstance(ceiling, xr.DataArray):
        score, ceiling = _align_labels(score, ceiling)
    if not isinstance(score, xr.DataArray):
        score = np.asarray(score, dtype=float)
    if not isinstance(ceiling, xr.DataArray):
        ceiling = np.asarray(ceiling, dtype=float)
    values = np.asarray(ceiling, dtype=float)
    top = 100.0 if kind == "percent" else 1.0
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > top * (1 + 1e-9):
        hint = (
            " nsd_noise_ceiling returns percent: pass ceiling_kind='percent'."
            if kind != "percent" and finite.max() <= 100
            else ""
        )
        raise ValueError(
            f"ceiling must lie in [0, {top:g}] for ceiling_kind={kind!r}; got values up to "
            f"{finite.max():.6g}.{hint}"
        )
    bad = ~(values > 0)
    n_bad = int(bad.sum())
    if n_bad:
        warn(
            f"ceiling is not positive (<= 0 or NaN) for {n_bad} of {bad.size} target(s); their "
            "normalized score is NaN."
        )
        if isinstance(ceiling, xr.DataArray):
            ceiling = ceiling.where(~bad)
        else:
            ceiling = np.where(bad, np.nan, ceiling)
    # the variance ceiling c: the R² (and r²) a perfect model reaches in expectation
    if kind == "percent":
        c = ceiling / 100.0
    elif kind == "correlation":
        c = ceiling**2
    else:
        c = ceiling
    out = score / c if normalization == "r2/ceiling" else score**2 / c
    if isinstance(out, xr.DataArray):
        out = out.rename("normalized_score")
        out.attrs["normalization"] = normalization
        out.attrs["ceiling_kind"] = kind
    return out


def _align_labels(a: xr.DataArray, b: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Reorder ``b`` to ``a``'s labels on their shared indexed dims; refuse other mismatches."""
    for dim in set(a.dims) & set(b.dims):
        if dim not in a.indexes or dim not in b.indexes:
            if a.sizes[dim] != b.sizes[dim]:
                raise ValueError(
                    f"score and ceiling have {a.sizes[dim]} and {b.sizes[dim]} entries along "
                    f"{dim!r}."
                )
            continue
        ia, ib = a.indexes[dim], b.indexes[dim]
        if ia.equals(ib):
            continue
        missing, extra = ia.difference(ib), ib.difference(ia)
        if len(missing) or len(extra) or not (ia.is_unique and ib.is_unique):
            raise ValueError(
                f"score and ceiling must hold the same {dim!r} labels: the ceiling lacks "
                f"{len(missing)} ({_fmt_list(list(missing))}) and has {len(extra)} extra "
                f"({_fmt_list(list(extra))})."
            )
        b = b.sel({dim: ia})
    return a, b
