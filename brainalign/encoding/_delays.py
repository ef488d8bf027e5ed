"""Run-aware time delays (FIR), HRF bases for fMRI and TRF lags for MEG/EEG.

Layout of delayed features
--------------------------
Every function here returns delayed (or HRF-convolved) features **feature-major**, the
layout of :class:`mne.decoding.ReceptiveField`: column ``j = f * n_delays + k`` holds
feature ``f`` at delay ``delays[k]``. A coefficient matrix fitted on such columns goes back
to ``(feature, delay, target)`` with :func:`undelay_coef`. For a DataArray input, the
delayed features live on one stacked dim ``"<feature dim>_delay"`` whose MultiIndex has the
levels ``(<feature dim>, "delay")`` (or ``(<feature dim>, "basis")`` for HRF bases), so
``coef.unstack("<feature dim>_delay")`` does the same on labeled coefficients.

Sign convention
---------------
``delayed[t] = X[t - d]``: a positive delay ``d`` gives each sample the stimulus ``d``
samples in the past (the brain responds after the stimulus); a negative delay is a lead
(``X[t + |d|]``). This is MNE's convention (``tmin < 0`` looks into the future).

Runs
----
Delays never cross a run boundary: a sample whose source ``t - d`` lies in another run (or
outside the recording) receives 0. Runs are contiguous blocks of samples; the ``runs``
argument gives one label per sample, a DataArray's ``run`` coordinate along the sample dim
is used when ``runs`` is None, and ``runs=False`` says explicitly that all samples are one
continuous recording.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from scipy.special import gammaln

from brainalign._checks import _fmt, _fmt_list, check_number, check_option
from brainalign._logging import warn

__all__ = [
    "RUN_LIKE_COORDS",
    "convolve_hrf",
    "delay",
    "flatten_targets",
    "hrf_basis",
    "lag_matrix",
    "spm_hrf",
    "trf_lags",
    "undelay_coef",
]

HRFKind = Literal["spm", "spm_derivative", "fir"]
HRF_KINDS = ("spm", "spm_derivative", "fir")

#: Coordinate names along the sample dim that look like run labels but are not ``run``:
#: with one of them holding several values and ``runs=None``, :func:`delay` refuses to guess.
RUN_LIKE_COORDS = (
    "session",
    "sessions",
    "chunk",
    "chunks",
    "run_id",
    "run_index",
    "runs",
    "block",
    "segment",
)


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------
def _run_bounds(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Any], np.ndarray]:
    """Per-sample run start and stop indices of contiguous runs.

    Returns ``start, stop`` (each ``(n,)``, stop exclusive), the run labels in order and
    the first sample of each run.
    """
    n = len(runs)
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int), [], np.zeros(0, int)
    change = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    firsts = np.concatenate([[0], change])
    labels = runs[firsts]
    # a label that starts a second block → not contiguous
    _, first_seen = np.unique(labels, return_index=True)
    if len(first_seen) != len(labels):
        again = np.setdiff1d(np.arange(len(labels)), first_seen)[0]
        label = labels[again]
        prev = int(np.flatnonzero(labels[:again] == label)[-1])
        prev_end = int(firsts[prev + 1]) - 1
        raise ValueError(
            f"runs must be contiguous blocks of samples, but run {_fmt(label)} reappears at "
            f"sample {int(firsts[again])} after ending at sample {prev_end} (another run lies "
            "between). Sort the samples by run, or relabel the second block as its own run."
        )
    lengths = np.diff(np.concatenate([firsts, [n]]))
    start = np.repeat(firsts, lengths)
    stop = np.repeat(firsts + lengths, lengths)
    return start, stop, labels.tolist(), firsts


def _resolve_runs(X: Any, runs: Any, n: int, delays: np.ndarray) -> np.ndarray | None:
    """Return one run label per sample (None: one continuous run)."""
    if runs is False:
        return None
    if runs is True:
        raise TypeError(
            "runs must be a sequence of run labels (one per sample), None or False, got bool "
            f"{runs!r}."
        )
    if runs is None:
        if not isinstance(X, xr.DataArray):
            return None
        sdim = X.dims[0]
        along = {k: c for k, c in X.coords.items() if c.dims == (sdim,)}
        if "run" in along:
            return np.asarray(along["run"].values)
        if np.any(delays != 0):
            for name in RUN_LIKE_COORDS:
                if name in along and len(np.unique(np.asarray(along[name].values))) > 1:
                    n_runs = len(np.unique(np.asarray(along[name].values)))
                    raise ValueError(
                        f"X has a {name!r} coordinate along {sdim!r} with {n_runs} distinct "
                        f"values, so delays {_fmt_list(delays)} may cross its boundaries, but "
                        f"runs=None. Pass runs=X[{name!r}] to keep each {name} separate, or "
                        "runs=False to treat all samples as one continuous recording."
                    )
        return None
    if isinstance(runs, xr.DataArray):
        runs = runs.values
    elif isinstance(runs, torch.Tensor):
        runs = runs.detach().cpu().numpy()
    runs = np.asarray(runs)
    if runs.ndim != 1:
        raise ValueError(f"runs must be 1-D (one label per sample), got shape {runs.shape}.")
    if len(runs) != n:
        raise ValueError(
            f"runs has {len(runs)} labels but X has {n} samples; give one run label per sample."
        )
    return runs


def _shift_index(
    n: int, d: int, bounds: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``t - d`` (clipped) and the mask of samples whose source is in-run."""
    t = np.arange(n)
    src = t - d
    if bounds is None:
        valid = (src >= 0) & (src < n)
    else:
        start, stop = bounds
        valid = (src >= start) & (src < stop)
    return np.clip(src, 0, max(n - 1, 0)), valid


def _as_2d(X: Any, name: str = "X") -> tuple[Any, bool]:
    """Return a 2-D array/tensor and whether the input was 1-D."""
    if X.ndim == 1:
        return X[:, None], True
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D or 2-D (n_samples, n_features), got shape {tuple(X.shape)}; "
            "flatten the feature axes first."
        )
    return X, False


def _check_delays(delays: Any) -> np.ndarray:
    if isinstance(delays, (int, np.integer)) and not isinstance(delays, bool):
        delays = [delays]
    arr = np.asarray(delays)
    if arr.ndim != 1:
        raise ValueError(f"delays must be a 1-D sequence of integers, got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"delays is empty (got {_fmt(delays)}); give at least one delay.")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(
            f"delays must be integers (samples), got dtype {arr.dtype}: {_fmt_list(arr)}."
        )
    if arr.dtype.kind == "f":
        bad = arr[~np.isfinite(arr) | (arr != np.round(arr))]
        if bad.size:
            raise TypeError(
                f"delays must be integers (samples), got non-integer values {_fmt_list(bad)}. "
                "Convert seconds with trf_lags(tmin, tmax, sfreq)."
            )
    arr = arr.astype(np.int64)
    uniq, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"delays must be unique, got duplicates {_fmt_list(uniq[counts > 1])}.")
    return arr


def _warn_long_delays(
    delays: np.ndarray, firsts: np.ndarray, labels: list[Any], n: int, what: str
) -> None:
    lengths = np.diff(np.concatenate([firsts, [n]])) if len(firsts) else np.array([n])
    reach = int(np.max(np.abs(delays)))
    short = np.flatnonzero(lengths <= reach)
    if short.size:
        names = [labels[i] for i in short] if labels else ["(single run)"]
        warn(
            f"The longest {what} ({reach} samples) is at least as long as {len(short)} run(s) "
            f"({_fmt_list(names)}; lengths {_fmt_list(lengths[short])}): their delayed columns "
            "are all zero there. Use shorter delays or longer runs."
        )


def _gather(X: Any, src: np.ndarray, valid: np.ndarray) -> Any:
    if isinstance(X, torch.Tensor):
        idx = torch.as_tensor(src, device=X.device)
        mask = torch.as_tensor(valid, device=X.device)[:, None]
        out = X.index_select(0, idx)
        return torch.where(mask, out, torch.zeros((), dtype=X.dtype, device=X.device))
    return np.where(valid[:, None], X[src], 0)


def _stack_output(
    X: xr.DataArray,
    values: np.ndarray,
    level: str,
    level_values: Sequence[Any],
    attrs: dict[str, Any],
) -> xr.DataArray:
    """Wrap ``(n, p, K)`` values into a DataArray with a stacked feature dim."""
    sdim = X.dims[0]
    if X.ndim == 1:
        fdim = "feature"
        coords = {k: c for k, c in X.coords.items() if set(c.dims) <= {sdim}}
        coords[fdim] = np.arange(1)
    else:
        fdim = X.dims[1]
        coords = dict(X.coords.items())
        if fdim not in X.coords:
            coords[fdim] = np.arange(X.shape[1])
    coords[level] = np.asarray(level_values)
    da = xr.DataArray(values, dims=(sdim, fdim, level), coords=coords, attrs=dict(X.attrs))
    da.attrs.update(attrs)
    return da.stack({f"{fdim}_{level}": (fdim, level)})


def delay(X: Any, delays: Any, *, runs: Any = None) -> Any:
    """Stack time-shifted copies of each feature (FIR delays), never across runs.

    ``out[t, f * n_delays + k] = X[t - delays[k], f]`` when sample ``t - delays[k]``
    belongs to the same run as ``t``, and 0 otherwise (including before the first and after
    the last sample). Positive delays look into the past (the response follows the
    stimulus), negative delays into the future (leads).

    Parameters
    ----------
    X : ndarray, torch.Tensor or xarray.DataArray, shape (n_samples, n_features) or (n_samples,)
        The features, one row per sample in temporal order (e.g. ``("time", "feature")`` or
        ``("stimulus", "unit")`` for one row per TR). A DataArray's first dim is the sample
        dim and its second the feature dim.
    delays : int or sequence of int
        Delays in samples (unique; may be negative).
    runs : sequence, False or None
        One run label per sample; runs must be contiguous blocks. ``None`` uses the ``run``
        coordinate of a DataArray along its sample dim, or treats all samples as one run.
        When a DataArray has no ``run`` coordinate but another run-like coordinate
        (``session``, ``chunks``, ``run_id`` ..., see :data:`RUN_LIKE_COORDS`) with several
        values, ``runs=None`` is an error: pass ``runs=X["session"]``, or ``runs=False`` to
        delay across its boundaries on purpose.

    Returns
    -------
    delayed : same type as X, shape (n_samples, n_features * n_delays)
        Feature-major columns: column ``f * n_delays + k`` is feature ``f`` at
        ``delays[k]``. A DataArray comes back with a stacked dim ``"<feature dim>_delay"``
        (MultiIndex levels ``<feature dim>`` and ``delay``), the sample coordinates kept and
        ``attrs["delays"]``. Torch tensors stay on their device.

    Raises
    ------
    TypeError
        When delays are not integers.
    ValueError
        For empty or duplicated delays, runs of the wrong length or not contiguous (naming the
        label and the sample where it reappears), or an unresolved run-like coordinate.

    Warns
    -----
    UserWarning
        When the longest delay is at least as long as a run (its columns are all zero there).

    See Also
    --------
    undelay_coef : back from delayed columns to (feature, delay, target).
    lag_matrix : the same with lags from ``tmin``, ``tmax`` and ``sfreq``.

    Notes
    -----
    The gather is vectorised (one masked index per delay, no loop over samples). Several
    targets, e.g. every ``(channel, time)`` pair of epoched data, share the delayed design
    matrix, so one ridge decomposition serves all of them: see :func:`flatten_targets`.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._delays import delay
    >>> X = np.arange(1.0, 7.0)[:, None]  # one feature, 6 samples, two runs of 3
    >>> delay(X, [0, 1], runs=[0, 0, 0, 1, 1, 1])
    array([[1., 0.],
           [2., 1.],
           [3., 2.],
           [4., 0.],
           [5., 4.],
           [6., 5.]])
    """
    d = _check_delays(delays)
    is_da = isinstance(X, xr.DataArray)
    raw = X.values if is_da else X
    if not isinstance(raw, torch.Tensor):
        raw = np.asarray(raw)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"X must hold numbers, got dtype {raw.dtype}.")
    arr, _ = _as_2d(raw)
    n, p = arr.shape
    labels = _resolve_runs(X, runs, n, d)
    if labels is None:
        bounds = None
        firsts, names = np.array([0]), []
    else:
        start, stop, names, firsts = _run_bounds(labels)
        bounds = (start, stop)
    if n:
        _warn_long_delays(d, firsts, names, n, "delay")
    if isinstance(arr, torch.Tensor):
        out = arr.new_zeros((n, p, len(d)))
    else:
        out = np.zeros((n, p, len(d)), dtype=np.result_type(arr.dtype, np.float32))
    for k, dk in enumerate(d.tolist()):
        src, valid = _shift_index(n, dk, bounds)
        out[:, :, k] = _gather(arr, src, valid)
    if is_da:
        return _stack_output(X, out, "delay", d, {"delays": d.tolist()})
    return out.reshape(n, p * len(d))


def undelay_coef(coef: Any, n_delays: int | Sequence[int] | None = None) -> Any:
    """Reshape coefficients of delayed features to ``(feature, delay[, target])``.

    Parameters
    ----------
    coef : ndarray, torch.Tensor or xarray.DataArray, shape (n_features * n_delays[, n_targets])
        Coefficients fitted on the feature-major columns of :func:`delay`. A DataArray with
        a stacked ``"<feature dim>_delay"`` (or ``_basis``) dim is unstacked instead.
    n_delays : int or sequence of int, optional
        The number of delays (or the delays themselves). Required for arrays.

    Returns
    -------
    coef : same type, shape (n_features, n_delays[, n_targets])
        ``coef[f, k]`` is the weight of feature ``f`` at the ``k``-th delay. A DataArray gets
        the dims ``(<feature dim>, "delay", ...)``.

    Raises
    ------
    ValueError
        When the number of rows is not a multiple of ``n_delays``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._delays import undelay_coef
    >>> undelay_coef(np.arange(6.0), 3)  # 2 features x 3 delays
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """
    if isinstance(coef, xr.DataArray):
        stacked = [
            dim
            for dim in coef.dims
            if dim in coef.indexes and getattr(coef.indexes[dim], "nlevels", 1) == 2
        ]
        if not stacked:
            raise ValueError(
                f"coef has dims {tuple(coef.dims)} and no stacked '<feature>_delay' dim to "
                "unstack; pass coef.values and n_delays instead."
            )
        dim = stacked[0]
        levels = list(coef.indexes[dim].names)
        out = coef.unstack(dim)
        rest = [x for x in coef.dims if x != dim]
        return out.transpose(*levels, *rest)
    if n_delays is None:
        raise ValueError(f"n_delays is required for array coefficients, got {n_delays!r}.")
    k = n_delays if isinstance(n_delays, (int, np.integer)) else len(n_delays)
    check_number("n_delays", int(k), low=1, integer=True)
    rows = coef.shape[0]
    if rows % k:
        raise ValueError(
            f"coef has {rows} rows, which is not a multiple of n_delays={k}; expected "
            "n_features * n_delays rows (feature-major)."
        )
    return coef.reshape(rows // k, k, *coef.shape[1:])


def flatten_targets(Y: xr.DataArray) -> tuple[np.ndarray, Any]:
    """Flatten every non-sample dim of ``Y`` into one target axis, and a way back.

    Time-resolved encoding of trials (``Y`` dims ``("stimulus", "channel", "time")``) fits
    one model per channel and time point. They all share the design matrix, so one ridge
    decomposition (one :class:`~brainalign.encoding._ridge.RidgeCV` call) solves them all:
    time is just an extra target axis.

    Parameters
    ----------
    Y : xarray.DataArray, dims (sample, ...)
        Responses; the first dim indexes samples.

    Returns
    -------
    Y2 : ndarray, shape (n_samples, n_targets)
        ``Y`` with the other dims flattened in C order.
    unflatten : callable
        ``unflatten(values)`` turns an array whose last axis has ``n_targets`` entries
        (scores ``(n_targets,)``, coefficients ``(n_features, n_targets)`` ...) back into a
        DataArray with the original dims and coordinates in place of the target axis.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign.encoding._delays import flatten_targets
    >>> Y = xr.DataArray(np.zeros((4, 2, 3)), dims=("stimulus", "channel", "time"),
    ...                  coords={"channel": ["Cz", "Pz"], "time": [0.0, 0.1, 0.2]})
    >>> Y2, unflatten = flatten_targets(Y)
    >>> Y2.shape  # then: RidgeCV(...).fit(X, Y2).cv_scores_, one per channel x time
    (4, 6)
    >>> scores = unflatten(np.arange(6.0))
    >>> scores.dims, scores.sel(channel="Pz").values.tolist()
    (('channel', 'time'), [3.0, 4.0, 5.0])
    """
    if not isinstance(Y, xr.DataArray):
        raise TypeError(f"Y must be an xarray.DataArray, got {type(Y).__name__}.")
    sdim = Y.dims[0]
    rest = Y.dims[1:]
    shape = tuple(Y.shape[1:])
    coords = {k: c for k, c in Y.coords.items() if sdim not in c.dims}
    values = np.asarray(Y.values).reshape(Y.shape[0], -1)

    def unflatten(v: Any) -> xr.DataArray:
        v = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)
        if v.shape[-1] != values.shape[1]:
            raise ValueError(
                f"values must have {values.shape[1]} targets on their last axis, got shape "
                f"{v.shape}."
            )
        lead = [f"dim_{i}" for i in range(v.ndim - 1)]
        return xr.DataArray(v.reshape(*v.shape[:-1], *shape), dims=(*lead, *rest), coords=coords)

    return values, unflatten


# --------------------------------------------------------------------------------------------
# HRF
# --------------------------------------------------------------------------------------------
def _gamma_pdf(t: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """Gamma density, 0 for ``t <= 0``."""
    out = np.zeros_like(t, dtype=float)
    pos = t > 0
    x = t[pos] / scale
    out[pos] = np.exp((shape - 1) * np.log(x) - x - gammaln(shape)) / scale
    return out


def _double_gamma(
    t: np.ndarray,
    *,
    peak: float = 6.0,
    undershoot: float = 16.0,
    dispersion: float = 1.0,
    u_dispersion: float = 1.0,
    ratio: float = 1.0 / 6.0,
) -> np.ndarray:
    """SPM's canonical double gamma at times ``t`` (seconds), not normalised."""
    return _gamma_pdf(t, peak / dispersion, dispersion) - ratio * _gamma_pdf(
        t, undershoot / u_dispersion, u_dispersion
    )


def _hrf_times(tr: float, oversampling: int, time_length: float) -> np.ndarray:
    check_number("tr", tr, low=0, closed="neither")
    check_number("oversampling", oversampling, low=1, integer=True)
    check_number("time_length", time_length, low=0, closed="neither")
    dt = tr / oversampling
    return np.arange(math.floor(time_length / dt + 1e-9) + 1) * dt


def spm_hrf(
    tr: float, oversampling: int = 1, time_length: float = 32.0, onset: float = 0.0
) -> np.ndarray:
    """SPM's canonical haemodynamic response, sampled every ``tr / oversampling`` seconds.

    The difference of two gamma densities (peak 6 s, undershoot 16 s, dispersions 1, ratio
    1/6), evaluated at ``t = k * dt - onset`` for ``k = 0 .. floor(time_length / dt)`` and
    normalised to sum 1, as ``spm_hrf.m`` does.

    Parameters
    ----------
    tr : float
        Repetition time in seconds (> 0).
    oversampling : int
        Samples per TR (1: one value per TR, for convolving TR-sampled regressors).
    time_length : float
        Kernel length in seconds.
    onset : float
        Onset shift in seconds.

    Returns
    -------
    hrf : ndarray, shape (floor(time_length * oversampling / tr) + 1,)
        The kernel, summing to 1.

    Raises
    ------
    ValueError
        When ``tr``, ``oversampling`` or ``time_length`` is not positive.

    Notes
    -----
    ``nilearn.glm.first_level.spm_hrf`` evaluates the same densities on a slightly different
    grid (``linspace(0, time_length, round(time_length / dt))`` shifted by one ``dt``) with
    ratio 0.167, so at ``oversampling=1`` nilearn's kernel is one TR later than SPM's; at
    ``oversampling=50`` the two agree within 2 % of the peak.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._delays import spm_hrf
    >>> h = spm_hrf(2.0, time_length=20.0)  # t = 0, 2, ..., 20 s
    >>> np.round(h, 3).tolist()
    [0.0, 0.085, 0.367, 0.377, 0.212, 0.075, 0.002, -0.03, -0.037, -0.03, -0.02]
    """
    t = _hrf_times(tr, oversampling, time_length) - onset
    h = _double_gamma(t)
    return h / h.sum()


def hrf_basis(
    tr: float,
    kind: HRFKind = "spm",
    *,
    oversampling: int = 1,
    time_length: float = 32.0,
    onset: float = 0.0,
) -> tuple[np.ndarray, list[str]]:
    """Build HRF kernels: canonical, canonical + time derivative, or FIR.

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    kind : {"spm", "spm_derivative", "fir"}
        ``"spm"``: the canonical HRF (:func:`spm_hrf`); ``"spm_derivative"``: plus its time
        derivative, ``(hrf(onset) - hrf(onset + 0.1 s)) / 0.1`` as in nilearn; ``"fir"``: one
        unit impulse per sample of the kernel (convolving with it equals :func:`delay` with
        delays ``0 .. n_taps - 1``).
    oversampling : int
        Samples per TR.
    time_length : float
        Kernel length in seconds.
    onset : float
        Onset shift in seconds.

    Returns
    -------
    basis : ndarray, shape (n_taps, n_basis)
        One kernel per column.
    names : list of str
        The kernels' names (``"spm"``, ``"spm_derivative"`` or ``"fir_0"`` ...).

    Examples
    --------
    >>> from brainalign.encoding._delays import hrf_basis
    >>> basis, names = hrf_basis(2.0, "spm_derivative")
    >>> basis.shape, names
    ((17, 2), ['spm', 'spm_derivative'])
    """
    check_option("kind", kind, HRF_KINDS)
    h = spm_hrf(tr, oversampling, time_length, onset)
    if kind == "spm":
        return h[:, None], ["spm"]
    if kind == "spm_derivative":
        step = 0.1
        dh = (h - spm_hrf(tr, oversampling, time_length, onset + step)) / step
        return np.stack([h, dh], axis=1), ["spm", "spm_derivative"]
    n = len(h)
    return np.eye(n), [f"fir_{k}" for k in range(n)]


def convolve_hrf(
    X: Any,
    tr: float,
    *,
    runs: Any = None,
    basis: HRFKind | np.ndarray = "spm",
    time_length: float = 32.0,
    onset: float = 0.0,
) -> Any:
    """Convolve TR-sampled features with HRF kernels, run by run.

    ``out[t, f * n_basis + b] = sum_k basis[k, b] * X[t - k, f]`` over the samples
    ``t - k`` of the same run as ``t`` (the run starts from rest: earlier samples count as
    0). Runs follow the rules of :func:`delay`.

    Parameters
    ----------
    X : ndarray, torch.Tensor or xarray.DataArray, shape (n_samples, n_features)
        One row per TR.
    tr : float
        Repetition time in seconds.
    runs : sequence, False or None
        Run labels, as in :func:`delay`.
    basis : {"spm", "spm_derivative", "fir"} or ndarray, shape (n_taps, n_basis)
        The kernels (see :func:`hrf_basis`), or your own, sampled once per TR.
    time_length : float
        Kernel length in seconds (named bases only).
    onset : float
        Onset shift in seconds (named bases only).

    Returns
    -------
    convolved : same type as X, shape (n_samples, n_features * n_basis)
        Feature-major columns; a DataArray gets a stacked ``"<feature dim>_basis"`` dim with
        levels ``(<feature dim>, "basis")``.

    Raises
    ------
    ValueError
        For bad runs or a basis that is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._delays import convolve_hrf, spm_hrf
    >>> X = np.zeros((20, 1)); X[0] = 1.0  # one event at the first TR
    >>> np.allclose(convolve_hrf(X, 2.0)[:17, 0], spm_hrf(2.0))
    True
    """
    if isinstance(basis, str):
        kernels, names = hrf_basis(tr, basis, time_length=time_length, onset=onset)
    else:
        kernels = np.asarray(basis, dtype=float)
        if kernels.ndim == 1:
            kernels = kernels[:, None]
        if kernels.ndim != 2 or kernels.shape[0] == 0:
            raise ValueError(f"basis must be (n_taps, n_basis), got shape {kernels.shape}.")
        names = [f"basis_{b}" for b in range(kernels.shape[1])]
    is_da = isinstance(X, xr.DataArray)
    raw = X.values if is_da else X
    if not isinstance(raw, torch.Tensor):
        raw = np.asarray(raw, dtype=float)
    arr, _ = _as_2d(raw)
    n, p = arr.shape
    taps = np.arange(kernels.shape[0])
    labels = _resolve_runs(X, runs, n, taps)
    bounds = None if labels is None else _run_bounds(labels)[:2]
    if isinstance(arr, torch.Tensor):
        out = arr.new_zeros((n, p, kernels.shape[1]))
        kern = torch.as_tensor(kernels, dtype=arr.dtype, device=arr.device)
    else:
        out = np.zeros((n, p, kernels.shape[1]))
        kern = kernels
    for k in taps.tolist():
        if not np.any(kernels[k]):
            continue
        src, valid = _shift_index(n, k, bounds)
        out += _gather(arr, src, valid)[:, :, None] * kern[k]
    if is_da:
        return _stack_output(X, out, "basis", names, {"tr": float(tr)})
    return out.reshape(n, p * kernels.shape[1])


# --------------------------------------------------------------------------------------------
# TRF lags
# --------------------------------------------------------------------------------------------
def trf_lags(tmin: float, tmax: float, sfreq: float) -> np.ndarray:
    """Integer lags (samples) from ``tmin`` to ``tmax`` seconds, as MNE computes them.

    ``arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``, identical to
    ``mne.decoding.ReceptiveField(...).delays_``.

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (``tmin <= tmax``); negative values are leads.
    sfreq : float
        Sampling frequency in Hz (> 0).

    Returns
    -------
    lags : ndarray of int64
        The lags in samples.

    Raises
    ------
    ValueError
        When ``tmin > tmax`` or ``sfreq <= 0``.

    Examples
    --------
    >>> from brainalign.encoding._delays import trf_lags
    >>> trf_lags(-0.1, 0.2, 10.0).tolist()
    [-1, 0, 1, 2]
    """
    check_number("tmin", tmin)
    check_number("tmax", tmax)
    check_number("sfreq", sfreq, low=0, closed="neither")
    if tmin > tmax:
        raise ValueError(f"tmin must be <= tmax, got tmin={tmin} and tmax={tmax}.")
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1, dtype=np.int64)


def lag_matrix(X: Any, tmin: float, tmax: float, sfreq: float, *, runs: Any = None) -> Any:
    """Delay ``X`` by the lags ``tmin`` to ``tmax`` seconds (:func:`delay` + :func:`trf_lags`).

    Parameters
    ----------
    X : ndarray, torch.Tensor or xarray.DataArray, shape (n_times, n_features)
        The stimulus features sampled at ``sfreq``.
    tmin, tmax : float
        First and last lag in seconds.
    sfreq : float
        Sampling frequency in Hz.
    runs : sequence, False or None
        Run labels, as in :func:`delay`.

    Returns
    -------
    lagged : same type as X, shape (n_times, n_features * n_lags)
        Feature-major columns, the layout of MNE's ``ReceptiveField``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding._delays import lag_matrix
    >>> lag_matrix(np.arange(1.0, 6.0), -0.1, 0.2, 10.0)  # MNE's _delay_time_series example
    array([[2., 1., 0., 0.],
           [3., 2., 1., 0.],
           [4., 3., 2., 1.],
           [5., 4., 3., 2.],
           [0., 5., 4., 3.]])
    """
    return delay(X, trf_lags(tmin, tmax, sfreq), runs=runs)
