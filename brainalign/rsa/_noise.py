"""Noise precision matrices for Mahalanobis and crossnobis RDMs (= rsatoolbox ``data.noise``).

The covariance of residuals (or of measurements around their stimulus means) is estimated
over features, optionally shrunk, and inverted. The estimators are those of rsatoolbox
0.3.2's ``prec_from_residuals`` / ``prec_from_measurements``; the torch implementation needs
one Gram matrix and reduces the fourth-moment sums of the shrinkage intensities to
``O(n_observations * n_features)`` row sums. With fewer observations than features, the
shrinkage precisions come from the Woodbury identity (``O(n_observations * n_features**2)``
instead of a ``O(n_features**3)`` inverse).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import SchemaError, _fmt_list, check_finite, check_number, check_option
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._version import __version__
from brainalign.data._schema import FEATURE_DIMS, STIMULUS, TRIAL
from brainalign.rsa._kernels import LowRankPrecision, gram, needs_scaling
from brainalign.rsa._rdm import (
    SEMANTICS,
    _feature_dim,
    _register_low_rank,
    dtype_range,
    resolve_runs,
    run_patterns,
)

NoiseMethod = Literal["shrinkage_diag", "shrinkage_eye", "diag", "full"]
NOISE_METHODS = ("shrinkage_diag", "shrinkage_eye", "diag", "full")
NOISE_SOURCES = ("residuals", "measurements")


@fill_doc
def noise_precision(
    data: Any,
    method: NoiseMethod = "shrinkage_diag",
    *,
    from_: Literal["residuals", "measurements"] = "residuals",
    runs: Any = None,
    semantics: Literal["correct", "rsatoolbox"] = "correct",
    dof: int | None = None,
    feature_dim: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Estimate a noise precision matrix (inverse covariance over features).

    Use the result as ``noise=`` of :func:`brainalign.rsa.rdm` with the ``"mahalanobis"``
    or ``"crossnobis"`` metric.

    Parameters
    ----------
    data : xarray.DataArray or array_like
        With ``from_="residuals"``: residuals, shape ``(n_observations, n_features)``
        (e.g. GLM residual time series; a DataArray with one feature dim and one other
        dim). Each feature's mean is removed (= rsatoolbox ``prec_from_residuals``).
        With ``from_="measurements"``: trial data, dims ``("trial", feature)`` with a
        ``stimulus`` coordinate; each measurement minus its stimulus mean is the noise
        (= rsatoolbox ``prec_from_measurements``).
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}
        ``"shrinkage_diag"``: sample covariance shrunk towards its diagonal with the
        Schäfer & Strimmer (2005) intensity (off-diagonal entries times ``1 - lambda``);
        ``"shrinkage_eye"``: shrunk towards a multiple of the identity with the Ledoit &
        Wolf (2004) intensity; ``"diag"``: variances only; ``"full"``: the sample
        covariance (needs more observations than features).
    from_ : {"residuals", "measurements"}
        What ``data`` holds.
    runs : str or array_like, optional
        Measurements only: the run of each trial (a coordinate name or one label per
        trial; default: the ``run`` coordinate when there is one). Trials are then first
        averaged within run × stimulus, as :func:`~brainalign.rsa.rdm`'s crossnobis does,
        so the precision matches those run patterns. Without runs, each trial is one
        measurement.
    semantics : {"correct", "rsatoolbox"}
        Degrees of freedom for measurements: ``"correct"`` uses ``n_measurements -
        n_stimuli`` (= n_stimuli × (n_runs − 1) for one measurement per run);
        ``"rsatoolbox"`` reproduces rsatoolbox 0.3.2's ``(n_stimuli − 1) × n_runs`` (a
        defect: it scales the covariance by ``n_stimuli (n_runs − 1) / ((n_stimuli − 1)
        n_runs)``). Residuals use ``n_observations − 1`` either way.
    dof : int, optional
        Degrees of freedom, overriding the default (e.g. subtract the number of GLM
        regressors).
    feature_dim : str, optional
        The feature dim of a DataArray (found automatically among ``unit``, ``voxel``,
        ``channel``, ``vertex``, ``feature``).
    %(device)s
    dtype : {"auto", "float32", "float64"}, optional
        Precision of the result. The feature Gram matrix, the shrinkage, the low-rank
        route and the inversion run in float64 (an inverse's float32 rounding error would
        grow with the covariance's condition number); the result is then cast.

    Returns
    -------
    precision : xarray.DataArray, dims (feature, feature + "_b")
        Symmetric positive definite; both dims carry the feature labels when ``data``
        has them. ``np.asarray(precision)`` is the matrix. Attrs: ``kind="precision"``,
        ``method``, ``dof``, ``n_observations``, ``shrinkage`` (lambda, shrinkage methods).
        A shrinkage precision from fewer observations than features is ``diag(v) - F^T F``
        with ``F`` of shape ``(n_observations, n_features)``; the returned DataArray keeps
        that factored form privately, and :func:`~brainalign.rsa.rdm` uses it instead of
        the dense matrix (``O(n_observations)`` instead of ``O(n_features)`` work per
        feature of each pattern). Its values are then read-only: modify a ``.copy()``
        (copies, saved and loaded matrices work as plain dense precisions).

    Raises
    ------
    ValueError
        Unknown option, NaN/infinite values, fewer than 2 observations, a feature with
        zero variance, a singular covariance (``"full"`` with too few observations), or a
        precision beyond the range of the compute dtype (it scales as the data's scale to
        the power -2; data far from unit scale is rescaled exactly before the Gram matrix,
        so only a result that does not fit is refused).
    SchemaError
        Measurements that are not trial data with a ``stimulus`` coordinate.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.rsa._noise import noise_precision
    >>> res = np.random.default_rng(0).normal(size=(50, 4))
    >>> prec = noise_precision(res, "shrinkage_diag")
    >>> prec.dims, prec.shape
    (('feature', 'feature_b'), (4, 4))
    """
    check_option("method", method, NOISE_METHODS)
    check_option("from_", from_, NOISE_SOURCES)
    check_option("semantics", semantics, SEMANTICS)
    if dof is not None:
        check_number("dof", dof, low=1, integer=True)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    feature_coord = None
    if from_ == "residuals":
        if runs is not None:
            raise ValueError(
                f"runs= is used only with from_='measurements'; got from_={from_!r} and runs "
                f"of length {len(runs)}."
            )
        x, fdim, feature_coord = _residuals(data, feature_dim)
        check_finite(x, "data")
        n_obs = x.shape[0]
        if n_obs < 2:
            raise ValueError(f"noise_precision needs at least 2 observations; data has {n_obs}.")
        xt = as_tensor(x, dev, torch.float64)
        xt = xt - xt.mean(0, keepdim=True)
        default_dof = n_obs - 1
    else:
        xt, fdim, feature_coord, n_stim, n_rep = _measurement_residuals(
            data, runs, feature_dim, dev
        )
        n_obs = xt.shape[0]
        if semantics == "rsatoolbox":
            if n_rep is None:
                ids, counts = np.unique(np.asarray(data[STIMULUS].values), return_counts=True)
                pairs = zip(ids[:10], counts[:10], strict=True)
                shown = ", ".join(f"{i!s}: {c}" for i, c in pairs)
                raise ValueError(
                    "semantics='rsatoolbox' needs the same number of measurements for every "
                    "stimulus (rsatoolbox stacks them into one tensor); the counts differ "
                    f"({counts.min()} to {counts.max()}; {shown}"
                    f"{', ...' if len(ids) > 10 else ''}). Use semantics='correct'."
                )
            default_dof = (n_stim - 1) * n_rep
        else:
            default_dof = n_obs - n_stim
        if default_dof < 1 and dof is None:
            raise ValueError(
                f"noise_precision from measurements needs repeated measurements of each "
                f"stimulus: {n_obs} measurement(s) of {n_stim} stimuli leave {default_dof} "
                "degrees of freedom."
            )
    dof_used = int(default_dof if dof is None else dof)
    # Exact power-of-two rescaling of data far from 1 (the precision scales as
    # scale ** -2), so that the Gram matrix neither overflows nor underflows; the unscaled
    # result is then checked against dt's range.
    k = int(np.frexp(float(xt.abs().max()))[1]) if xt.numel() else 0
    k = int(np.clip(k, -1000, 1000)) if needs_scaling(np.array([k]), dt) else 0
    if k:
        xt = xt * math.ldexp(1.0, -k)
    # The Gram matrix stays in float64 whatever dt: the precision is its inverse, so a
    # float32 Gram's rounding (eps32 relative) would reach the result times the condition
    # number (5.9e-3 relative on small entries of a 'full' precision of condition 1e3). The
    # result is cast to dt at the end.
    low_rank = factored = None
    if method.startswith("shrinkage") and n_obs < xt.shape[1]:
        low_rank = _shrinkage_precision_low_rank(xt, method, dof_used, feature_coord, fdim)
    if low_rank is not None:
        prec, lam, factored = low_rank
    else:
        cov, lam = _covariance(xt, method, dof_used, feature_coord, fdim)
        prec = _inverse(cov, method, n_obs, cov.shape[0])
    values = to_numpy(prec)
    if k:
        values = _unscale_precision(
            values.astype(np.float64), k, dt, x_max=math.ldexp(float(xt.abs().max()), k)
        )
        if factored is not None:
            f64 = factored.to(torch.device("cpu"), torch.float64)
            factored = LowRankPrecision(
                f64.diag * math.ldexp(1.0, -2 * k), f64.factor * math.ldexp(1.0, -k)
            )
    if dt == torch.float32:
        values = values.astype(np.float32)
    coords: dict[str, Any] = {}
    if feature_coord is not None:
        coords = {fdim: feature_coord, f"{fdim}_b": feature_coord}
    attrs: dict[str, Any] = {
        "kind": "precision",
        "method": method,
        "from": from_,
        "dof": dof_used,
        "n_observations": int(n_obs),
        "brainalign_version": __version__,
    }
    if from_ == "measurements":
        attrs["semantics"] = semantics
    if lam is not None:
        attrs["shrinkage"] = lam
    out = xr.DataArray(
        values, dims=(fdim, f"{fdim}_b"), coords=coords, attrs=attrs, name="precision"
    )
    if factored is not None:  # rdm() then skips the dense matrix (see _register_low_rank)
        _register_low_rank(out, factored.to(torch.device("cpu"), torch.float64))
    return out


def _unscale_precision(values: np.ndarray, k: int, dt: torch.dtype, x_max: float) -> np.ndarray:
    """``values * 2**(-2k)`` (float64), refusing entries that do not fit ``dt``."""
    info = np.finfo(np.float32 if dt == torch.float32 else np.float64)
    mags = np.abs(values)
    significant = mags > info.eps * mags.max()  # smaller entries are rounding noise in dt
    # decimal exponents of the unscaled entries (they may not fit even float64)
    shift = 2 * k * math.log10(2)
    lo = float(np.log10(mags[significant].min())) - shift
    hi = float(np.log10(mags.max())) - shift
    if hi > math.log10(info.max) or lo < math.log10(info.tiny):
        name, range_and_hint = dtype_range(dt)
        raise ValueError(
            f"The noise precision of data with magnitudes up to {x_max:.3g} does not fit in "
            f"{name}: its entries would range from about 1e{lo:+.0f} to 1e{hi:+.0f}, outside "
            f"{range_and_hint}"
        )
    return np.ldexp(values, -2 * k)


def _residuals(data: Any, feature_dim: str | None) -> tuple[np.ndarray, str, Any]:
    if isinstance(data, xr.DataArray):
        if data.ndim != 2:
            raise SchemaError(
                f"residuals must be 2-D (observations, features); data has dims "
                f"{tuple(data.dims)}."
            )
        if feature_dim is not None:
            check_option("feature_dim", feature_dim, tuple(data.dims))
            fdim = feature_dim
        else:
            found = [d for d in data.dims if d in FEATURE_DIMS]
            if len(found) != 1:
                raise SchemaError(
                    f"Cannot tell which dim of data holds the features: dims "
                    f"{tuple(data.dims)}, known feature dims {FEATURE_DIMS}. Pass "
                    "feature_dim=..."
                )
            fdim = found[0]
        odim = next(d for d in data.dims if d != fdim)
        coord = np.asarray(data[fdim].values) if fdim in data.coords else None
        return np.asarray(data.transpose(odim, fdim).values, dtype=float), fdim, coord
    arr = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
    if arr.ndim != 2:
        raise SchemaError(
            "residuals as a plain array must be 2-D (n_observations, n_features), got shape "
            f"{arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"data must be numeric, got dtype {arr.dtype}.")
    return arr, feature_dim or "feature", None


def _measurement_residuals(
    data: Any, runs: Any, feature_dim: str | None, dev: torch.device
) -> tuple[torch.Tensor, str, Any, int, int | None]:
    """Measurements minus their stimulus means, float64 ``(n_measurements, p)``."""
    if not isinstance(data, xr.DataArray) or TRIAL not in data.dims:
        dims = tuple(data.dims) if isinstance(data, xr.DataArray) else np.shape(data)
        raise SchemaError(
            "from_='measurements' needs trial data: a DataArray with dims ('trial', "
            f"feature) and a 'stimulus' coordinate; got {type(data).__name__} with "
            f"{'dims' if isinstance(data, xr.DataArray) else 'shape'} {dims}. Build it with "
            "brainalign.responses(..., sample_dim='trial')."
        )
    fdim = _feature_dim(data, feature_dim, "data")
    if data.ndim != 2:
        raise SchemaError(
            f"noise_precision needs 2-D trial data ('trial', {fdim!r}); data has dims "
            f"{tuple(data.dims)}. Select one slice of the other dims first."
        )
    coord = np.asarray(data[fdim].values) if fdim in data.coords else None
    values = np.asarray(data.transpose(TRIAL, fdim).values)
    trial_ids = np.asarray(data[STIMULUS].values)
    check_finite(values, "data", labels=trial_ids)
    has_run = "run" in data.coords and data["run"].dims == (TRIAL,)
    if runs is not None or has_run:
        labels = resolve_runs(data, runs, "noise_precision(from_='measurements')")
        _, _, _, pats, _ = run_patterns(
            data, fdim, labels, "noise_precision(from_='measurements')", dev, min_runs=2
        )  # (R, n, p)
        res = pats - pats.mean(0, keepdim=True)
        n_rep, n_stim = res.shape[0], res.shape[1]
        return res.reshape(-1, res.shape[-1]), fdim, coord, n_stim, n_rep
    uniq, inv, counts = np.unique(trial_ids, return_inverse=True, return_counts=True)
    x = as_tensor(values, dev, torch.float64)
    idx = torch.as_tensor(inv.reshape(-1), device=dev)
    sums = torch.zeros((len(uniq), x.shape[1]), dtype=torch.float64, device=dev)
    sums.index_add_(0, idx, x)
    means = sums / torch.as_tensor(counts[:, None], dtype=torch.float64, device=dev)
    n_rep = int(counts[0]) if np.all(counts == counts[0]) else None
    return x - means[idx], fdim, coord, len(uniq), n_rep


def _covariance(
    x: torch.Tensor, method: str, dof: int, coord: Any, fdim: str
) -> tuple[torch.Tensor, float | None]:
    """Shrunk covariance (float64) of demeaned rows ``x`` and the shrinkage intensity."""
    n_obs, p = x.shape
    x64 = x.to(torch.float64)
    if method == "diag":
        q = (x64 * x64).sum(0)
    else:
        g = x64.transpose(0, 1) @ x64
        q = g.diagonal().clone()
    _check_variances(q, coord, fdim)
    if method == "diag":
        return torch.diag(q / dof), None
    if method == "full":
        return g / dof, None
    if method == "shrinkage_eye":
        s = g / n_obs
        m = torch.diagonal(s).sum() / p
        eye = torch.eye(p, dtype=s.dtype, device=s.device)
        d2 = ((s - m * eye) ** 2).sum()
        row = (x64 * x64).sum(1)  # sum_ij (x_i x_j)^2 per observation = (sum_i x_i^2)^2
        b2 = ((row * row).sum() / n_obs - (s * s).sum()) / n_obs
        b2 = torch.minimum(d2, b2)
        lam = float(b2 / d2) if float(d2) > 0 else 0.0
        return (lam * m * eye + (1.0 - lam) * s) * (n_obs / dof), lam
    # shrinkage_diag (Schäfer & Strimmer): correlations shrunk towards zero
    var = q / dof
    std = var.sqrt()
    s_mean = g / (std[:, None] * std[None, :]) / (n_obs - 1)
    diag_sq = (torch.diagonal(s_mean) ** 2).sum()
    off_sq = (s_mean * s_mean).sum() - diag_sq
    w = x64 * x64 / var  # (n_obs, p)
    s2_off = ((w.sum(1) ** 2) - (w * w).sum(1)).sum() / (n_obs - 1)
    var_hat = n_obs / dof**2 * (s2_off - off_sq)
    lam = float(var_hat / off_sq) if float(off_sq) > 0 else 0.0
    lam = min(max(lam, 0.0), 1.0)
    cov = g / dof * (1.0 - lam)
    cov.diagonal().copy_(var)
    return cov, lam


def _check_variances(q: torch.Tensor, coord: Any, fdim: str) -> None:
    zero = q <= 0
    if bool(zero.any()):
        where = np.flatnonzero(to_numpy(zero))
        names = coord[where] if coord is not None else where
        raise ValueError(
            f"{int(zero.sum())} feature(s) along {fdim!r} have zero variance in the noise "
            f"({_fmt_list(names)}); their precision is undefined. Drop them first."
        )


def _shrinkage_precision_low_rank(
    x: torch.Tensor, method: str, dof: int, coord: Any, fdim: str
) -> tuple[torch.Tensor, float, LowRankPrecision] | None:
    """Shrinkage precision with fewer observations than features, through Woodbury.

    The shrunk covariance is ``a * diag(v) + c * X^T X`` (rank ``n_obs`` update of a
    diagonal), so its inverse is ``diag(v)^-1/2 (I - W^T W) diag(v)^-1/2 / a`` with
    ``W = chol(C)^-1 X diag(v)^-1/2`` and an ``(n_obs, n_obs)`` matrix ``C``; the shrinkage
    intensities need only the ``(n_obs, n_obs)`` Gram matrix (``|X^T X|_F = |X X^T|_F``).
    This costs ``O(n_obs * p**2)`` instead of the ``O(p**3)`` of a direct inverse. Also
    returns the factored form ``diag(1 / (a scale**2)) - F^T F`` with ``F = W diag(scale)^-1
    / sqrt(a)`` (``(n_obs, p)``), which :func:`~brainalign.rsa.rdm` uses instead of the
    dense matrix. Returns None when the intensity is too small for the update to be
    accurate (the caller then inverts directly).
    """
    n_obs, p = x.shape
    x = x.to(torch.float64)
    q = (x * x).sum(0)
    _check_variances(q, coord, fdim)
    if method == "shrinkage_diag":
        var = q / dof
        std = var.sqrt()
        xs = x / std  # x_ij / std_j
        h = gram(xs)
        off_sq = (h * h).sum() / (n_obs - 1) ** 2 - p * (dof / (n_obs - 1)) ** 2
        w = xs * xs
        s2_off = ((w.sum(1) ** 2) - (w * w).sum(1)).sum() / (n_obs - 1)
        var_hat = n_obs / dof**2 * (s2_off - off_sq)
        lam = float(var_hat / off_sq) if float(off_sq) > 0 else 0.0
        lam = min(max(lam, 0.0), 1.0)
        if lam < 1e-3:
            return None
        if lam == 1.0:
            empty = x.new_zeros((0, p))
            return torch.diag(1.0 / var), lam, LowRankPrecision(1.0 / var, empty)
        # cov = S (lam I + (1 - lam)/dof Xs^T Xs) S with S = diag(std)
        a, c, scale, core = lam, (1.0 - lam) / dof, std, xs
    else:
        h = gram(x)
        s_sq = (h * h).sum() / n_obs**2
        m = q.sum() / (n_obs * p)
        d2 = s_sq - p * m * m
        row = (x * x).sum(1)
        b2 = torch.minimum(d2, ((row * row).sum() / n_obs - s_sq) / n_obs)
        lam = float(b2 / d2) if float(d2) > 0 else 0.0
        if lam < 1e-3 or lam >= 1.0:  # full shrinkage has no low-rank part: invert directly
            return None
        # cov = (lam m I + (1 - lam) X^T X / n) n / dof
        a, c = float(lam * m * n_obs / dof), (1.0 - lam) / dof
        scale, core = None, x
    cmat = (a / c) * torch.eye(n_obs, dtype=h.dtype, device=h.device) + h
    chol, info = torch.linalg.cholesky_ex(cmat)
    if int(info) > 0:
        return None
    wmat = torch.linalg.solve_triangular(chol, core, upper=False)  # (n_obs, p)
    prec = -gram(wmat.transpose(0, 1))
    prec.diagonal().add_(1.0)
    prec = prec / a
    if scale is not None:
        prec = prec / scale[:, None] / scale[None, :]
        factored = LowRankPrecision(1.0 / (a * scale * scale), wmat / (scale * a**0.5))
    else:
        factored = LowRankPrecision(wmat.new_full((p,), 1.0 / a), wmat / a**0.5)
    return 0.5 * (prec + prec.transpose(0, 1)), lam, factored


def _inverse(cov: torch.Tensor, method: str, n_obs: int, p: int) -> torch.Tensor:
    if method == "diag":
        return torch.diag(1.0 / torch.diagonal(cov))
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) > 0:
        hint = (
            f" method='full' needs more observations ({n_obs}) than features ({p}); use "
            "method='shrinkage_diag' or 'shrinkage_eye'."
            if method == "full"
            else ""
        )
        raise ValueError(
            f"The {method!r} noise covariance is singular (not positive definite: Cholesky "
            f"fails at leading minor {int(info)} of {p}).{hint}"
        )
    eye = torch.eye(p, dtype=cov.dtype, device=cov.device)
    prec = torch.cholesky_solve(eye, chol)  # much faster than cholesky_inverse on CPU
    return 0.5 * (prec + prec.transpose(0, 1))
