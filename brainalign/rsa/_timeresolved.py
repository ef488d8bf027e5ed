"""Time-resolved RSA for MEG/EEG: model similarity over time, and temporal generalization."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import SchemaError, check_number, check_option
from brainalign._config import get_config
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._ties import tie_margin
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS, STIMULUS, validate
from brainalign.rsa._compare_kernels import compare_vectors, scale_rows_pow2
from brainalign.rsa._rdm import rdm
from brainalign.rsa._searchlight import (
    SEARCHLIGHT_METHODS,
    SEARCHLIGHT_METRICS,
    SearchlightMethod,
    SearchlightMetric,
    _fit_range,
    _zscore_rows,
    compare_pairs,
    model_stack,
    model_vectors,
    prepare_models,
    ranked_zscores,
)

_MEMORY_BUDGET = 2**28


def _time_vectors(
    data: Any, metric: str, device: Any, dtype: Any, name: str
) -> tuple[xr.DataArray, np.ndarray]:
    """RDM upper-triangle vectors per time point: ``(n_times, n_pairs)``."""
    if not isinstance(data, xr.DataArray):
        raise TypeError(
            f"{name} must be an xarray.DataArray with dims ('stimulus', feature, 'time'), got "
            f"{type(data).__name__}."
        )
    validate(data, name=name)
    if "time" not in data.dims:
        raise SchemaError(
            f"{name} needs a 'time' dim for time-resolved RSA; it has dims {tuple(data.dims)}."
        )
    # Every result here is invariant to a positive scale of the data (the comparisons are
    # scale-free): bring data far from 1 into the compute dtype's range (exact).
    dt = resolve_dtype(dtype, resolve_device(device))
    if np.issubdtype(data.dtype, np.number) and data.size:
        values = np.asarray(data.values)
        (scaled,) = _fit_range(dt, values)
        if scaled is not values:
            data = data.copy(data=scaled)
    r = rdm(data, metric, device=device, dtype=dtype)
    extra = [d for d in r.dims if d not in ("time", *RDM_DIMS)]
    if extra:
        raise SchemaError(
            f"{name} must have dims ('stimulus', feature, 'time'); the extra dims {extra} "
            "would broadcast. Select or average them first."
        )
    r = r.transpose("time", *RDM_DIMS)
    n = r.sizes[RDM_DIMS[0]]
    i, j = np.triu_indices(n, k=1)
    return r, np.asarray(r.values, dtype=float)[:, i, j]


def _permutations(n: int, n_permutations: int, seed: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_permutations, n)), axis=1)


def _similarities(
    zdata: torch.Tensor | None,
    data: torch.Tensor,
    zmodels: torch.Tensor | None,
    models: torch.Tensor,
    method: str,
    n_stimuli: int,
) -> torch.Tensor:
    """``(T, P)`` data vectors against ``(M, P)`` model vectors → ``(T, M)``."""
    if zmodels is not None and zdata is not None:
        return zdata @ zmodels.T
    return compare_pairs(data, models, method, n_stimuli)


@fill_doc
def time_resolved(
    data: xr.DataArray,
    model_rdms: Any,
    *,
    metric: SearchlightMetric = "correlation",
    method: SearchlightMethod = "spearman",
    n_permutations: int = 0,
    alpha: float = 0.05,
    seed: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.Dataset:
    """Model–brain RDM similarity at every time point, with permutation bands.

    At each time point the RDM of the patterns over all features (e.g. channels) is
    compared with each model RDM: ``similarity[t] = compare(rdm(data.isel(time=t)), model)``.
    With ``n_permutations``, the stimulus labels of the model RDMs are permuted (rows and
    columns together; one permutation shared by all time points and models) and the whole
    time course is recomputed for each, in one batched product. The null distribution
    gives a per-time-point p-value, a p-value corrected over time by the maximum statistic,
    and a band of the null's ``alpha / 2`` and ``1 - alpha / 2`` quantiles.

    Parameters
    ----------
    data : xarray.DataArray, dims ("stimulus", feature, "time")
        One pattern per stimulus and time point (average trials first).
    model_rdms : xarray.DataArray or list or dict of RDMs
        As in :func:`brainalign.rsa._searchlight.searchlight`; stimuli are matched by id.
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}
        The data RDM metric (see :func:`brainalign.rsa.rdm`).
    method : str
        The comparison, any of :data:`brainalign.rsa.METHODS` (see
        :func:`brainalign.rsa.compare`). Spearman, Pearson and cosine take a fast path (one
        matrix product); the others run ``compare``'s batched kernels over all time points
        (and permutations) at once. ``"neg_riem_dist"`` fits the model to the data RDM
        (model first, as rsatoolbox's ``compare(model, data)``).
    n_permutations : int
        Number of random stimulus-label permutations (0: none).
    alpha : float
        Two-sided width of the permutation band, in (0, 1).
    seed : int, optional
        Seed for the permutations (default: the configured seed).
    %(device)s
    %(dtype)s

    Returns
    -------
    result : xarray.Dataset
        ``similarity`` (time[, model dims]); with permutations also ``null`` (permutation,
        time[, model dims]), ``p_value`` (one-sided, greater:
        ``(1 + #{null >= observed}) / (1 + n_permutations)``, a null value within rounding
        of the observed one counting as a tie: :func:`tie_margin`), ``p_value_corrected``
        (against the maximum of each permuted time course), ``band_low`` and ``band_high``.

    Raises
    ------
    ValueError
        Unknown metric or method, bad ``n_permutations`` or ``alpha``, a constant model.
    SchemaError
        Data without a ``time`` dim, or with dims that would broadcast.
    StimulusAlignmentError
        When ``data`` and the models hold different stimuli.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign import rsa
    >>> from brainalign.rsa._timeresolved import time_resolved
    >>> rng = np.random.default_rng(0)
    >>> data = xr.DataArray(rng.normal(size=(6, 4, 5)), dims=("stimulus", "channel", "time"),
    ...                     coords={"stimulus": list("abcdef"), "time": np.arange(5) / 100})
    >>> res = time_resolved(data, rsa.rdm(data.isel(time=2)), n_permutations=50, seed=0)
    >>> round(float(res.similarity[2]), 6), res.null.shape
    (1.0, (50, 5))
    """
    check_option("metric", metric, SEARCHLIGHT_METRICS)
    check_option("method", method, SEARCHLIGHT_METHODS)
    check_number("n_permutations", n_permutations, low=0, integer=True)
    check_number("alpha", alpha, low=0, high=1, closed="neither")
    if seed is None:
        seed = get_config()["seed"]
    model = model_stack(model_rdms)
    validate(data, name="data")
    data, model = align_stimuli(data, model, join="exact")
    r, dvecs = _time_vectors(data, metric, device, dtype, "data")
    n = data.sizes[STIMULUS]
    mvecs, mdims, mcoords = model_vectors(model, method)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    dv = as_tensor(dvecs, dev, dt)
    mv = as_tensor(scale_rows_pow2(mvecs, dt), dev, dt)  # scale-free methods: exact
    zmodels, mv = prepare_models(mv, method)
    zdata = None
    if zmodels is not None:
        zdata = (
            ranked_zscores(dv) if method == "spearman" else _zscore_rows(dv, method != "cosine")
        )
    observed = to_numpy(_similarities(zdata, dv, zmodels, mv, method, n)).astype(np.float64)
    mshape = tuple(model.sizes[d] for d in mdims)
    n_t = dvecs.shape[0]
    tcoords = {"time": r["time"]} if "time" in r.coords else {}
    coords = {**tcoords, **mcoords}
    dims = ("time", *mdims)
    out = {"similarity": xr.DataArray(observed.reshape((n_t, *mshape)), dims=dims, coords=coords)}
    if n_permutations:
        perms = torch.as_tensor(_permutations(n, n_permutations, seed), device=dev)
        iu = torch.triu_indices(n, n, offset=1, device=dev)
        # the symmetric matrices of the (z-scored / ranked) model vectors: permuting stimuli
        # only reorders pairs, so a permuted model's z-scores are a gather of these.
        src = zmodels if zmodels is not None else mv
        full = torch.zeros((src.shape[0], n, n), dtype=dt, device=dev)
        full[:, iu[0], iu[1]] = src
        full = full + full.mT
        n_m, n_p = src.shape
        width = torch.finfo(dt).bits // 8
        per = n_m * n_p * width * 2 + n_t * n_m * 8
        if zmodels is None:  # pairwise masks broadcast over time points
            per += 6 * n_t * n_m * n_p * width
        step = max(1, _MEMORY_BUDGET // per)
        parts = []
        for start in range(0, n_permutations, step):  # chunks of permutations, batched within
            p = perms[start : start + step]
            pm = full[:, p[:, iu[0]], p[:, iu[1]]]  # (M, perms, P)
            if zmodels is not None:
                assert zdata is not None
                s = torch.einsum("tp,mkp->ktm", zdata, pm)
            else:
                a, b = dv[None, :, None, :], pm.transpose(0, 1)[:, None]  # (K, T, M, P)
                pair = (b, a) if method == "neg_riem_dist" else (a, b)  # model first
                s = compare_vectors(*pair, method, n_stimuli=n)
            parts.append(to_numpy(s).astype(np.float64))
        null = np.concatenate(parts, axis=0)  # (perms, T, M)
        tie = tie_margin(n * (n - 1) // 2, dt, observed)
        ge = (null >= observed[None] - tie).sum(0)
        p_value = (1 + ge) / (1 + n_permutations)
        peak = null.max(axis=1)  # (perms, M): max over time per permutation
        ge_max = (peak[:, None, :] >= observed[None] - tie).sum(0)
        p_corr = (1 + ge_max) / (1 + n_permutations)
        low, high = np.quantile(null, [alpha / 2, 1 - alpha / 2], axis=0)
        shape = (n_t, *mshape)
        out["null"] = xr.DataArray(
            null.reshape((n_permutations, *shape)), dims=("permutation", *dims), coords=coords
        )
        for key, val in (
            ("p_value", p_value),
            ("p_value_corrected", p_corr),
            ("band_low", low),
            ("band_high", high),
        ):
            out[key] = xr.DataArray(val.reshape(shape), dims=dims, coords=coords)
    attrs = {k: data.attrs[k] for k in ("modality", "subject", "sfreq") if k in data.attrs}
    attrs.update(
        {
            "kind": "time_resolved_rsa",
            "metric": metric,
            "method": method,
            "n_permutations": int(n_permutations),
            "alpha": float(alpha),
            "alternative": "greater",
            "seed": -1 if seed is None else int(seed),
            "brainalign_version": __version__,
        }
    )
    return xr.Dataset(out, attrs=attrs)


@fill_doc
def temporal_generalization(
    data: xr.DataArray,
    other: xr.DataArray | None = None,
    *,
    metric: SearchlightMetric = "correlation",
    method: SearchlightMethod = "spearman",
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Similarity of the RDM at one time with the RDM at every other time.

    ``result[t1, t2] = compare(rdm(data.isel(time=t1)), rdm(other.isel(time=t2)))``: how
    long a representational geometry lasts (``other=None``: ``data`` against itself, for the
    symmetric methods a symmetric matrix with ones, or zeros for ``"neg_riem_dist"``, on the
    diagonal), or when the geometry of one recording reappears in another (e.g. two
    conditions, subjects or modalities sharing stimuli, matched by id). All pairs of time
    points come from one matrix product (Spearman, Pearson, cosine) or one batched call of
    the comparison kernels.

    Parameters
    ----------
    data : xarray.DataArray, dims ("stimulus", feature, "time")
        One pattern per stimulus and time point.
    other : xarray.DataArray, dims ("stimulus", feature, "time"), optional
        A second recording with the same stimuli (its own features and times).
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean"}
        The RDM metric.
    method : str
        The comparison, any of :data:`brainalign.rsa.METHODS`:
        ``result[t1, t2] = compare(rdm_a(t1), rdm_b(t2), method)`` (for the asymmetric
        ``"neg_riem_dist"``, ``data``'s RDM is the one fitted, in the role of the model).
    %(device)s
    %(dtype)s

    Returns
    -------
    generalization : xarray.DataArray, dims ("time_a", "time_b")
        ``time_a`` indexes ``data``'s RDMs, ``time_b`` those of ``other`` (or ``data``).
        NaN where an RDM is constant (its correlation is undefined).

    Raises
    ------
    ValueError
        Unknown metric or method.
    SchemaError
        Data without a ``time`` dim.
    StimulusAlignmentError
        When ``data`` and ``other`` hold different stimuli.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign.rsa._timeresolved import temporal_generalization
    >>> data = xr.DataArray(np.random.default_rng(0).normal(size=(6, 4, 3)),
    ...                     dims=("stimulus", "channel", "time"),
    ...                     coords={"stimulus": list("abcdef"), "time": [0.0, 0.1, 0.2]})
    >>> tg = temporal_generalization(data)
    >>> tg.dims, np.diag(tg.values).round(6).tolist()
    (('time_a', 'time_b'), [1.0, 1.0, 1.0])
    """
    check_option("metric", metric, SEARCHLIGHT_METRICS)
    check_option("method", method, SEARCHLIGHT_METHODS)
    validate(data, name="data")
    if other is not None:
        validate(other, name="other")
        data, other = align_stimuli(data, other, join="exact")
    ra, va = _time_vectors(data, metric, device, dtype, "data")
    if other is None:
        rb, vb = ra, va
    else:
        rb, vb = _time_vectors(other, metric, device, dtype, "other")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    ta, tb = as_tensor(va, dev, dt), as_tensor(vb, dev, dt)
    if method == "spearman":
        za, zb = ranked_zscores(ta), ranked_zscores(tb)
        res = to_numpy(za @ zb.T).astype(np.float64)
    elif method in ("pearson", "cosine"):
        za, zb = _zscore_rows(ta, method == "pearson"), _zscore_rows(tb, method == "pearson")
        res = to_numpy(za @ zb.T).astype(np.float64)
    else:  # one batched call over all pairs of time points: result[t1, t2] = compare(a, b)
        n = ra.sizes[RDM_DIMS[0]]
        sa, sb = (as_tensor(scale_rows_pow2(v, dt), dev, dt) for v in (va, vb))
        res = compare_vectors(sa[:, None, :], sb[None, :, :], method, n_stimuli=n)
        res = to_numpy(res).astype(np.float64)
    coords = {}
    if "time" in ra.coords:
        coords["time_a"] = np.asarray(ra["time"].values)
    if "time" in rb.coords:
        coords["time_b"] = np.asarray(rb["time"].values)
    attrs = {k: data.attrs[k] for k in ("modality", "subject", "sfreq") if k in data.attrs}
    attrs.update(
        {
            "kind": "temporal_generalization",
            "metric": metric,
            "method": method,
            "brainalign_version": __version__,
        }
    )
    return xr.DataArray(
        res, dims=("time_a", "time_b"), coords=coords, attrs=attrs, name="generalization"
    )
