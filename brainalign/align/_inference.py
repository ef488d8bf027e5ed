"""Stimulus-level inference for any alignment measure: permutation tests and bootstrap CIs.

Both work on the labels, not on the numbers: a permutation relabels the stimuli of ``b``
(alignment by id then pairs each stimulus of ``a`` with another stimulus of ``b``), a
bootstrap draw resamples the stimuli of both sides with replacement and relabels the copies
``"id#0"``, ``"id#1"`` ... so that ids stay unique. Any measure of :data:`METHODS` or a
user's own function ``f(a, b, **kw) -> DataArray`` is recomputed on each relabelled pair,
one call per permutation or draw.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._config import get_config
from brainalign._device import resolve_device, resolve_dtype
from brainalign._logging import progress, warn
from brainalign._ties import tie_margin
from brainalign.align._compare import MethodSpec, _as_result, resolve_method
from brainalign.data._schema import FEATURE_DIMS, STIMULUS, TRIAL, responses

__all__ = ["ALTERNATIVES", "bootstrap_ci", "permutation_test"]

ALTERNATIVES = ("greater", "less", "two-sided")

# --------------------------------------------------------------------------- relabelling


def _map_arrays(x: Any, fn: Callable[[xr.DataArray], xr.DataArray]) -> Any:
    """Apply ``fn`` to every representation of one side, keeping its structure."""
    if isinstance(x, xr.DataTree):
        x = {
            (k if node is x else f"{node.path.strip('/')}/{k}"): v
            for node in x.subtree
            for k, v in node.dataset.data_vars.items()
        }
    if isinstance(x, Mapping):
        return {k: _map_arrays(v, fn) for k, v in x.items()}
    if isinstance(x, xr.DataArray):
        return fn(x)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return fn(responses(np.asarray(x)))


def _arrays(x: Any) -> list[xr.DataArray]:
    out: list[xr.DataArray] = []
    _map_arrays(x, lambda da: out.append(da) or da)
    return out


def _stimulus_ids(x: Any, name: str) -> np.ndarray:
    """Return the sorted unique stimulus ids of one side (from its first representation)."""
    da = _arrays(x)[0]
    if STIMULUS not in da.coords:
        raise ValueError(
            f"{name} has no 'stimulus' coordinate (dims {tuple(da.dims)}); stimulus-level "
            "inference needs stimulus ids."
        )
    return np.unique(np.asarray(da[STIMULUS].values))


def _take(da: xr.DataArray, dim: str, pos: np.ndarray | None, ids: np.ndarray) -> xr.DataArray:
    """Rows ``pos`` of ``da`` along ``dim`` (all rows when None), with stimulus ids ``ids``.

    Built directly (no xarray alignment): this runs once per permutation or draw.
    """
    axis = da.dims.index(dim)
    values = da.values if pos is None else np.take(da.values, pos, axis=axis)
    coords: dict[str, Any] = {}
    for cname, c in da.coords.items():
        if cname == STIMULUS:
            coords[cname] = xr.Variable(c.dims, ids)
        elif dim in c.dims and pos is not None:
            if cname == dim:  # a trial index: copies of a trial get new positions
                coords[cname] = xr.Variable(dim, np.arange(len(pos)))
            else:
                coords[cname] = xr.Variable(c.dims, np.take(c.values, pos, axis=c.dims.index(dim)))
        else:
            coords[cname] = c.variable
    return xr.DataArray(values, dims=da.dims, coords=coords, attrs=da.attrs, name=da.name)


def _relabel(da: xr.DataArray, ids: np.ndarray, new: np.ndarray) -> xr.DataArray:
    """Replace each stimulus id ``ids[i]`` by ``new[i]`` (``ids`` sorted)."""
    old = np.asarray(da[STIMULUS].values)
    pos = np.searchsorted(ids, old).clip(0, len(ids) - 1)
    return _take(da, da[STIMULUS].dims[0], None, new[pos])


def _resample(da: xr.DataArray, drawn: np.ndarray, new: np.ndarray) -> xr.DataArray:
    """Rows of the drawn stimuli (all trials of each), relabelled with the new ids."""
    if STIMULUS in da.dims:
        vals = np.asarray(da[STIMULUS].values)
        order = np.argsort(vals)
        pos = order[np.searchsorted(vals[order], drawn).clip(0, len(vals) - 1)]
        return _take(da, STIMULUS, pos, new)
    dim = da[STIMULUS].dims[0]  # trial-level data: the stimulus coord of the trial dim
    vals = np.asarray(da[STIMULUS].values)
    order = np.argsort(vals, kind="stable")
    uniq, start, counts = np.unique(vals[order], return_index=True, return_counts=True)
    g = np.searchsorted(uniq, drawn).clip(0, len(uniq) - 1)
    lengths = counts[g]
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows = order[np.repeat(start[g], lengths) + offsets]
    return _take(da, dim, rows, np.repeat(new, lengths))


def _copy_ids(ids: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``"id#k"`` for the k-th copy of each drawn stimulus."""
    order = np.argsort(idx, kind="stable")
    first = np.r_[0, np.flatnonzero(np.diff(idx[order])) + 1]
    group_start = np.repeat(first, np.diff(np.r_[first, len(idx)]))
    k = np.empty(len(idx), dtype=np.int64)
    k[order] = np.arange(len(idx)) - group_start
    return np.char.add(np.char.add(ids[idx].astype(str), "#"), k.astype(str))


# --------------------------------------------------------------------------- the tests


def _kind(result: xr.DataArray, spec: MethodSpec | None) -> str:
    kind = result.attrs.get("kind", spec.kind if spec is not None else "similarity")
    return kind if kind in ("similarity", "distance") else "similarity"


def _name(method: Any) -> str:
    return method if isinstance(method, str) else getattr(method, "__name__", repr(method))


def _seed(seed: int | None) -> int | None:
    return get_config()["seed"] if seed is None else seed


def _with_measure_seed(
    fn: Callable[..., Any], kwargs: dict[str, Any], seed: int | None
) -> dict[str, Any]:
    """Pass the test's ``seed`` on to a measure that draws at random.

    CKA's minibatches and shape-metric folds are drawn with it, so that one seed makes the
    whole test reproducible: the name ``seed`` is the test's own, so the measure could not
    otherwise be given one.
    """
    try:
        takes_seed = "seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a callable without a signature
        takes_seed = False
    return {**kwargs, "seed": seed} if takes_seed and seed is not None else kwargs


#: Measures that broadcast over any extra dim of ``b`` (their kernels run per entry of
#: :func:`brainalign.align._inputs.apply_pair`): their permutations run as one stack.
_BATCHABLE = ("cka", "cca", "svcca", "pwcca", "shape_metric", "mutual_knn", "knn_overlap",
              "soft_matching")  # fmt: skip
_BATCH_ELEMENTS = 2**24  # values of b per stack of permutations (128 MiB in float64)


def _rotation_invariant(name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether a built-in measure sees each side only through its centred Gram matrix.

    Such a measure is unchanged by any orthogonal map of the features: CKA (linear or RBF,
    any estimator, minibatches too) and the orthogonal shape metric without partial
    whitening (``alpha=1``; whitening and the zero-padding rescale depend on the width) and
    without ``cv`` (a map fitted on fewer stimuli than features is arbitrary off their span).
    Not the CCA family (PWCCA weighs the original neurons; CCA and SVCCA are degenerate
    when features outnumber stimuli), nor kNN (uncentred rows), nor soft matching (neurons).
    """
    if name == "cka":
        return True
    if name == "shape_metric":
        return (
            float(kwargs.get("alpha", 1.0)) == 1.0
            and kwargs.get("group", "orthogonal") == "orthogonal"
            and kwargs.get("cv") is None
        )
    return False


def _principal_coordinates(da: xr.DataArray) -> xr.DataArray:
    """Replace each entry's ``(stimulus, features)`` patterns by principal coordinates.

    ``Xc = U S V^T`` (centred, thin SVD); ``U S`` (n x n) has the same centred inner
    products and distances between stimuli as ``X``, so a rotation-invariant measure
    (:func:`_rotation_invariant`) takes the same value on it, also on any subset or
    resample of the stimuli (every centred row lies in the span of ``V``), at O(n^2 r) per
    permutation instead of O(n p min(n, p)). Entries along other dims (``layer``) are
    reduced together (one batched SVD); columns whose singular value is at rounding level
    in every entry are dropped, the rest zeroed where negligible. Arrays with no more
    features than stimuli, or not finite, are returned as they are.
    """
    feats = [d for d in da.dims if d in FEATURE_DIMS]
    if not feats or STIMULUS not in da.dims or TRIAL in da.dims:
        return da
    batch = [d for d in da.dims if d not in feats and d != STIMULUS]
    n = da.sizes[STIMULUS]
    p = int(np.prod([da.sizes[d] for d in feats]))
    vals = np.asarray(da.transpose(*batch, STIMULUS, *feats).values)
    if p <= n or not np.issubdtype(vals.dtype, np.number) or not np.all(np.isfinite(vals)):
        return da
    bshape = vals.shape[: len(batch)]
    x = vals.reshape(-1, n, p).astype(np.float64)
    xc = x - x.mean(axis=1, keepdims=True)
    u, sv, _ = np.linalg.svd(xc, full_matrices=False)  # (B, n, n), (B, n)
    tiny = sv <= sv[:, :1] * max(n, p) * np.finfo(np.float64).eps
    sv = np.where(tiny, 0.0, sv)
    keep = ~tiny.all(axis=0)
    keep[0] = True
    f = (u * sv[:, None, :])[:, :, keep]
    coords = {k: c for k, c in da.coords.items() if not set(c.dims) & set(feats)}
    return xr.DataArray(
        f.reshape(*bshape, n, int(keep.sum())),
        dims=(*batch, STIMULUS, feats[0]),
        coords=coords,
        attrs=da.attrs,
        name=da.name,
    )


def _can_batch(spec: MethodSpec | None, b: Any) -> bool:
    """Whether the permutations can be stacked along a new dim of ``b``."""
    return (
        spec is not None
        and spec.name in _BATCHABLE
        and isinstance(b, xr.DataArray)
        and STIMULUS in b.dims
        and "permutation" not in b.dims
    )


def _batched_null(
    fn: Callable[..., Any],
    a: Any,
    b: xr.DataArray,
    perms: np.ndarray,
    ids: np.ndarray,
    kwargs: dict[str, Any],
    method: Any,
) -> xr.DataArray:
    """Return the null distribution from stacks of permuted copies of ``b``.

    Relabelling ``b``'s stimulus ``ids[i]`` as ``ids[perm[i]]`` pairs each stimulus of
    ``a`` with the same values as keeping ``b``'s ids and moving its rows: the row of id
    ``ids[j]`` takes the values of the row of id ``ids[argsort(perm)[j]]``. The rows move in
    numpy; the measure sees ``b`` with a ``permutation`` dim and broadcasts over it, so its
    per-call checks and alignment run once per stack, not once per permutation.
    """
    axis = b.dims.index(STIMULUS)
    b_ids = np.asarray(b[STIMULUS].values)
    idx = np.searchsorted(ids, b_ids)  # each row's id, as a position in the sorted ids
    row_of = np.empty(len(ids), dtype=np.int64)
    row_of[idx] = np.arange(len(b_ids))  # the row holding sorted id k
    values = np.asarray(b.values)
    per = max(1, _BATCH_ELEMENTS // max(1, values.size))
    parts = []
    for start in progress(range(0, len(perms), per), "permutation test"):
        chunk = perms[start : start + per]
        rows = row_of[np.argsort(chunk, axis=1)[:, idx]]  # (c, n): new row r <- old row
        stacked = np.moveaxis(np.take(values, rows, axis=axis), axis, 0)
        b_perm = xr.DataArray(
            stacked, dims=("permutation", *b.dims), coords=b.coords, attrs=b.attrs, name=b.name
        )
        res = _as_result(fn(a, b_perm, **kwargs), method)
        parts.append(res.transpose("permutation", ...))
    return xr.concat(parts, dim="permutation", coords="minimal", compat="override")


def permutation_test(
    a: Any,
    b: Any,
    method: str | Callable[..., Any],
    *,
    n_permutations: int = 1000,
    seed: int | None = None,
    alternative: str = "greater",
    **kwargs: Any,
) -> xr.Dataset:
    """Test an alignment measure by permuting the stimulus labels of ``b``.

    Each permutation relabels ``b``'s stimuli (every representation of ``b`` the same way),
    so matching by id pairs each stimulus of ``a`` with another of ``b``, and recomputes
    the measure: the null of no stimulus-level correspondence. With ``k`` permuted values
    at least as extreme as the observed one, ``p = (1 + k) / (1 + n_permutations)``; a
    permuted value within rounding of the observed one (a few ulps of the measure's
    ``dtype`` over the stimuli) counts as at least as extreme.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        The representations (as for the measure; other dims broadcast).
    method : str or callable
        A name in :data:`METHODS`, or a function ``f(a, b, **kwargs)`` returning a
        DataArray (``attrs["kind"] = "distance"`` when smaller means more alike).
    n_permutations : int
        Number of random permutations.
    seed : int, optional
        Seed of the permutations (default: the configured seed); also passed to a measure
        that draws at random (``cka`` with ``batch_size``, ``shape_metric`` with ``cv``,
        ``predictivity``'s folds), so one seed makes the whole test reproducible.
    alternative : {"greater", "less", "two-sided"}
        In terms of alignment, whatever the measure's kind: ``"greater"`` tests for *more*
        alignment than chance (a larger similarity, a smaller distance), ``"less"`` for
        less; ``"two-sided"`` is ``min(1, 2 min(p_greater, p_less))``.
    **kwargs
        Passed to the measure (``device=``, ``dtype=``, its options).

    Returns
    -------
    result : xarray.Dataset
        ``statistic`` (the observed measure) and ``p_value`` over the measure's dims, and
        ``null`` with an extra leading ``permutation`` dim; attrs ``method``, ``kind``,
        ``alternative``, ``n_permutations``, ``seed``.

    Notes
    -----
    The measure is called once per permutation (a loop with a progress bar); the labels of
    ``a`` and ``b`` stay paired with their own rows, so the test generalises over stimuli for
    the fixed units, voxels and subjects of ``a`` and ``b``.

    References
    ----------
    Phipson, B. & Smyth, G. K. (2010). Permutation p-values should never be zero.
    Statistical Applications in Genetics and Molecular Biology 9(1), 39.

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._inference import permutation_test
    >>> def pattern_r(a, b):
    ...     return np.corrcoef(a.values.ravel(), b.sel(stimulus=a.stimulus).values.ravel())[0, 1]
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(12, 4))
    >>> ids = [f"s{i}" for i in range(12)]
    >>> res = permutation_test(ba.responses(x, ids), ba.responses(x + 0.1, ids), pattern_r,
    ...                        n_permutations=99, seed=0)
    >>> float(res.p_value)
    0.01
    """
    check_number("n_permutations", n_permutations, low=1, integer=True)
    check_option("alternative", alternative, ALTERNATIVES)
    fn, spec = resolve_method(method)
    seed = _seed(seed)
    kwargs = _with_measure_seed(fn, kwargs, seed)
    observed = _as_result(fn(a, b, **kwargs), method)
    kind = _kind(observed, spec)
    ids = _stimulus_ids(b, "b")
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_permutations, len(ids))), axis=1)
    if spec is not None and _rotation_invariant(spec.name, kwargs):
        # the measure sees only the centred Gram matrix of each side: permute n x r
        # principal coordinates instead of n x p features (exact; r <= n < p)
        a, b = _map_arrays(a, _principal_coordinates), _map_arrays(b, _principal_coordinates)
    if _can_batch(spec, b):
        null = _batched_null(fn, a, b, perms, ids, kwargs, method)
    else:
        nulls = []
        for perm in progress(perms, "permutation test"):  # one measure call per permutation
            new = ids[perm]
            b_perm = _map_arrays(b, lambda da, new=new: _relabel(da, ids, new))
            nulls.append(_as_result(fn(a, b_perm, **kwargs), method))
        null = xr.concat(nulls, dim="permutation", coords="minimal", compat="override")
    null = null.assign_coords(permutation=np.arange(n_permutations))
    # a permuted value equal to the observed one up to rounding (duplicate or tied stimuli,
    # another batch or order) is as extreme: margin of the measure's own precision
    dtype = resolve_dtype(kwargs.get("dtype"), resolve_device(kwargs.get("device")))
    tol = tie_margin(len(ids), dtype) * np.maximum(1.0, abs(observed))
    sign = 1.0 if kind == "similarity" else -1.0
    more = (sign * (null - observed) >= -tol).sum("permutation")  # as aligned or more
    less = (sign * (null - observed) <= tol).sum("permutation")  # as misaligned or more
    p_more = (1.0 + more) / (1.0 + n_permutations)
    p_less = (1.0 + less) / (1.0 + n_permutations)
    if alternative == "greater":
        p = p_more
    elif alternative == "less":
        p = p_less
    else:
        p = np.minimum(1.0, 2.0 * np.minimum(p_more, p_less))
    p = p.where(np.isfinite(observed))
    attrs = {
        "method": _name(method),
        "kind": kind,
        "alternative": alternative,
        "n_permutations": int(n_permutations),
        "seed": "none" if seed is None else int(seed),
        "permuted": "stimulus labels of b",
    }
    ds = xr.Dataset({"statistic": observed, "p_value": p, "null": null})
    ds["statistic"].attrs = dict(observed.attrs)
    ds.attrs.update(attrs)
    return ds


def bootstrap_ci(
    a: Any,
    b: Any,
    method: str | Callable[..., Any],
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Percentile bootstrap interval of an alignment measure over stimuli.

    Each draw resamples the stimuli with replacement, identically for ``a`` and ``b``,
    relabels the k-th copy of stimulus ``id`` as ``"id#k"`` (ids stay unique, so alignment
    by id keeps the copies paired), and recomputes the measure. The interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the draws.

    Parameters
    ----------
    a, b : xarray.DataArray or mapping of xarray.DataArray
        The representations; with trial-level data every trial of a drawn stimulus comes
        along.
    method : str or callable
        A name in :data:`METHODS` or a function ``f(a, b, **kwargs)`` returning a DataArray.
        Cross-validated measures (``"predictivity"``, ``"shape_metric"`` with ``cv``) are
        refused: copies of one stimulus would sit in both a training and a test set.
    n_bootstrap : int
        Number of draws.
    confidence : float
        Coverage of the interval, in (0, 1).
    seed : int, optional
        Seed of the draws (default: the configured seed); also passed to a measure that
        draws at random, as in :func:`permutation_test`.
    **kwargs
        Passed to the measure.

    Returns
    -------
    result : xarray.Dataset
        ``statistic``, ``ci_low``, ``ci_high`` over the measure's dims and ``bootstrap``
        (the draws, with a leading ``bootstrap`` dim); attrs ``confidence``, ``interval``
        (``"percentile"``), ``n_bootstrap``, ``seed``, ``method``.

    Raises
    ------
    ValueError
        For a cross-validated measure.

    References
    ----------
    Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13.

    Examples
    --------
    >>> import numpy as np
    >>> import brainalign as ba
    >>> from brainalign.align._inference import bootstrap_ci
    >>> def pattern_r(a, b):
    ...     return np.corrcoef(a.values.ravel(), b.sel(stimulus=a.stimulus).values.ravel())[0, 1]
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(20, 3))
    >>> ids = [f"s{i}" for i in range(20)]
    >>> res = bootstrap_ci(ba.responses(x, ids), ba.responses(x + rng.normal(size=x.shape), ids),
    ...                    pattern_r, n_bootstrap=200, seed=0)
    >>> bool(res.ci_low < res.statistic < res.ci_high)
    True
    """
    check_number("n_bootstrap", n_bootstrap, low=1, integer=True)
    check_number("confidence", confidence, low=0.0, high=1.0, closed="neither")
    fn, spec = resolve_method(method)
    if spec is not None and spec.is_cross_validated(kwargs):
        raise ValueError(
            f"bootstrap_ci cannot resample stimuli for method {spec.name!r}: it cross-"
            "validates over stimuli, so copies of one stimulus would land in both a training "
            "and a test fold and inflate the score. Use permutation_test for a p-value, or "
            "bootstrap held-out predictions (brainalign.encoding.bootstrap_ci)"
            + (
                f" or {spec.cross_validated}=None."
                if isinstance(spec.cross_validated, str)
                else "."
            )
        )
    if spec is not None:
        warn(
            f"bootstrap_ci of {spec.name!r} gives a descriptive spread, not a confidence "
            "interval: the measure is a biased estimator at small numbers of stimuli and "
            "duplicated stimuli in a resample inflate it, so the percentile interval misses "
            "the population value far more often than 1 - confidence (linear CKA, 95 % "
            "intervals: 1 % coverage at 20 stimuli, 44 % at 60; docs/statistics.md). Use "
            "permutation_test for inference.",
            UserWarning,
        )
    seed = _seed(seed)
    kwargs = _with_measure_seed(fn, kwargs, seed)
    observed = _as_result(fn(a, b, **kwargs), method)
    ids = _stimulus_ids(a, "a")
    n = len(ids)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))
    values = []
    for idx in progress(draws, "bootstrap"):  # one measure call per draw
        drawn, new = ids[idx], _copy_ids(ids, idx)

        def pick(da: xr.DataArray, drawn: np.ndarray = drawn, new: np.ndarray = new) -> Any:
            return _resample(da, drawn, new)

        values.append(_as_result(fn(_map_arrays(a, pick), _map_arrays(b, pick), **kwargs), method))
    boot = xr.concat(values, dim="bootstrap", coords="minimal", compat="override")
    boot = boot.assign_coords(bootstrap=np.arange(n_bootstrap))
    tail = (1.0 - confidence) / 2.0
    q = boot.quantile([tail, 1.0 - tail], dim="bootstrap", skipna=True)
    ds = xr.Dataset(
        {
            "statistic": observed,
            "ci_low": q.isel(quantile=0, drop=True),
            "ci_high": q.isel(quantile=1, drop=True),
            "bootstrap": boot,
        }
    )
    ds["statistic"].attrs = dict(observed.attrs)
    ds.attrs.update(
        method=_name(method),
        confidence=float(confidence),
        interval="percentile",
        n_bootstrap=int(n_bootstrap),
        seed="none" if seed is None else int(seed),
        resampled="stimuli with replacement, the k-th copy of a stimulus relabelled 'id#k'",
    )
    return ds
