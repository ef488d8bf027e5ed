"""Representational dissimilarity matrices (labeled edge around the torch kernels)."""

from __future__ import annotations

import weakref
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import (
    SchemaError,
    _fmt_list,
    check_finite,
    check_not_constant,
    check_not_empty,
    check_number,
    check_option,
    did_you_mean,
)
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._memory import check_fits, format_bytes, resolve_budget
from brainalign._version import __version__
from brainalign.data._schema import FEATURE_DIMS, RDM_DIMS, STIMULUS, TRIAL, responses, validate
from brainalign.rsa._kernels import (
    RDM_KERNELS,
    FoldPairs,
    LowRankPrecision,
    fold_pair_factors,
    fold_pair_terms,
    gram_rdm,
    needs_scaling,
    pow2_exponents,
    rdm_crossnobis_fold_pairs,
)

Metric = Literal[
    "correlation",
    "cosine",
    "euclidean",
    "sqeuclidean",
    "mahalanobis",
    "crossnobis",
    "poisson",
    "poisson_cv",
]
Semantics = Literal["correct", "rsatoolbox"]
METRICS = tuple(RDM_KERNELS)
CV_METRICS = ("crossnobis", "poisson_cv")
SEMANTICS = ("correct", "rsatoolbox")
RUN = "run"
_FULL_PD_CHECK_MAX = 2048  # features up to which noise= is Cholesky-checked in full
_PROVENANCE = ("modality", "subject", "session", "space", "source", "model", "layer", "roi")
_MEMORY_BUDGET = 2**30  # bytes per chunk of broadcast slices
_MIN_WORK = 64 * 2**20  # work memory allowed beside a small output (vectorised path)
_MIN_BLOCK_WORK = 4 * 2**20  # row blocks of at least this size when the budget allows
_ROW_COPIES = 3  # (rows, n) temporaries of one row block (2, and a margin)
_DATA_COPIES = 4  # (n, p) copies of the data that the row-block path prepares
# Factored forms of the precision DataArrays returned by noise_precision, keyed by id():
# (weak reference to the DataArray, its values array, the factored form). Private: the
# DataArray itself stays a plain one (saved, loaded and copied as its dense matrix).
_LOW_RANK: dict[int, tuple[weakref.ref, np.ndarray, LowRankPrecision]] = {}


def as_responses(data: Any, name: str = "data") -> xr.DataArray:
    """Return ``data`` as a schema DataArray (numpy rows become stimuli ``"0"...``)."""
    if isinstance(data, xr.DataArray):
        return validate(data, name=name)
    arr = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
    if arr.ndim != 2:
        raise SchemaError(
            f"{name} as a plain array must be 2-D (n_stimuli, n_features), got shape "
            f"{arr.shape}; use a labeled DataArray for more dims."
        )
    return responses(arr)


def _feature_dim(da: xr.DataArray, feature_dim: str | None, name: str) -> str:
    if feature_dim is not None:
        if feature_dim not in da.dims:
            check_option("feature_dim", feature_dim, tuple(d for d in da.dims if d != STIMULUS))
        return feature_dim
    found = [d for d in da.dims if d in FEATURE_DIMS]
    if len(found) != 1:
        raise SchemaError(
            f"Cannot tell which dim of {name} holds the features: dims {tuple(da.dims)}, known "
            f"feature dims {FEATURE_DIMS}. Pass feature_dim=..."
        )
    return found[0]


@fill_doc
def rdm(
    data: Any,
    metric: Metric = "correlation",
    *,
    runs: Any = None,
    noise: Any = None,
    semantics: Semantics = "correct",
    prior_lambda: float = 1.0,
    prior_weight: float = 0.1,
    feature_dim: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Compute representational dissimilarity matrices between stimulus patterns.

    Dims other than ``stimulus`` (``trial`` for the cross-validated metrics) and the
    feature dim broadcast: a ``(stimulus, channel, time)`` array gives one RDM per time
    point.

    Parameters
    ----------
    data : xarray.DataArray, dims ("stimulus", feature, ...) or array_like
        Responses; a 2-D array is read as ``(n_stimuli, n_features)`` with ids
        ``"0"..."n-1"``. The cross-validated metrics (``"crossnobis"``, ``"poisson_cv"``)
        take trial data instead: dims ``("trial", feature, ...)`` with a ``stimulus``
        coordinate and a run label per trial (see ``runs``).
    metric : str
        ``"correlation"``: 1 − Pearson r (= rsatoolbox ``correlation``);
        ``"cosine"``: 1 − cosine similarity; ``"euclidean"``: Euclidean distance;
        ``"sqeuclidean"``: its square (divide by the number of features for
        rsatoolbox's ``euclidean``);
        ``"mahalanobis"``: squared Mahalanobis distance with the precision ``noise``,
        divided by the number of features (= rsatoolbox ``mahalanobis``; identity
        precision when ``noise`` is None);
        ``"crossnobis"``: cross-validated squared Mahalanobis distance, divided by the
        number of features: trials are averaged within run × stimulus, and the distance is
        the mean over all ordered pairs of distinct runs ``k != l`` of
        ``(a_k - b_k) M (a_l - b_l)^T`` (= rsatoolbox ``crossnobis`` with
        ``cv_descriptor`` = run; unbiased, so it can be negative);
        ``"poisson"``: symmetrised KL divergence of Poisson rates (= rsatoolbox
        ``poisson``; spike counts, non-negative);
        ``"poisson_cv"``: its leave-one-run-out cross-validated version, averaged over all
        folds (see ``semantics``).
    runs : str or array_like, optional
        For the cross-validated metrics: the run of each trial, as the name of a
        coordinate along ``trial`` or one label per trial. Default: the ``run``
        coordinate. Every run must contain every stimulus.
    noise : xarray.DataArray or array_like, shape (n_features, n_features), optional
        Noise precision matrix for ``"mahalanobis"`` and ``"crossnobis"`` (for example
        from :func:`brainalign.rsa.noise_precision`); symmetric positive definite, in the
        order of the feature dim (a labeled matrix must carry the same feature
        coordinate). Default: identity. Up to 2048 features it is checked with a Cholesky
        factorisation; above, only symmetry and a positive diagonal are checked.

        ``"crossnobis"`` also takes **one precision per run**: a list of ``(n_features,
        n_features)`` matrices or a ``(run, n_features, n_features)`` array, in sorted run
        order (``np.unique`` of the run labels, rsatoolbox's fold order), or a 3-D
        DataArray whose first dim carries the run labels as its coordinate (matched by
        label). Each is the precision of that run's mean patterns. The distance is then the
        mean over the unordered run pairs ``k < l`` of ``(a_k - b_k) M_kl (a_l - b_l)ᵀ / p``
        with ``M_kl = ((M_k⁻¹ + M_l⁻¹) / 2)⁻¹`` (= rsatoolbox ``calc_rdm_crossnobis(...,
        noise=[...])``; run means, not trial-weighted, under either ``semantics``).
    semantics : {"correct", "rsatoolbox"}
        Cross-validated metrics only. ``"correct"``: the training patterns of a fold are
        the mean of the other runs' run × stimulus means (every run weighs the same), and
        ``poisson_cv`` averages all folds. ``"rsatoolbox"`` reproduces rsatoolbox 0.3.2:
        training patterns average the other runs' trials (they differ from ``"correct"``
        only when runs hold different numbers of trials of a stimulus), and
        ``poisson_cv`` keeps only the last fold (the last run in sorted order; a defect).
    prior_lambda, prior_weight : float
        Poisson metrics: rates are shrunk to ``(x + prior_lambda * prior_weight) /
        (1 + prior_weight)`` (rsatoolbox's defaults).
    feature_dim : str, optional
        The dim holding features; found automatically among ``unit``, ``voxel``,
        ``channel``, ``vertex``, ``feature``.
    %(device)s
    %(dtype)s

    Returns
    -------
    rdm : xarray.DataArray, dims (..., "stimulus_a", "stimulus_b")
        Symmetric with a zero diagonal; ``np.asarray(rdm)`` is the square matrix for a
        single RDM, in the input's stimulus order (order of first appearance for trial
        data). Stimulus-level coordinates become ``{name}_a`` / ``{name}_b`` coordinates
        on the two axes (for trial data: the coordinates along ``trial`` that are constant
        within each stimulus, such as a category; not ``run`` or onsets).

    Raises
    ------
    ValueError
        Unknown metric, NaN/infinite values, empty data, constant patterns with the
        ``correlation``/``cosine`` metrics (which are undefined for them), negative data
        with the Poisson metrics, fewer than 2 runs or a run missing a stimulus, a
        precision matrix of the wrong size or not positive definite; dissimilarities
        beyond the range of the compute dtype (the message gives the data's magnitudes
        and suggests ``dtype="float64"``).
    SchemaError
        Trial data for a non cross-validated metric (average first with
        :func:`brainalign.average_trials`), stimulus data for a cross-validated one, or
        unclear dims.
    brainalign._memory.MemoryBudgetError
        (a ``ValueError`` and a ``MemoryError``) Before allocating: when the output alone
        exceeds the memory budget (``brainalign.set_config(max_memory=...)``), or the
        budget leaves no room for the smallest row block; the message gives the sizes and
        the budget.

    Notes
    -----
    Memory: the output is allocated once and, when the vectorised kernels would need more
    than half its size (and 64 MiB), filled in blocks of rows (each pair computed once and
    mirrored, so the RDM is exactly symmetric), with at most about a third of the output
    in temporaries; the peak memory stays within 1.5 times the output plus a few copies
    of the data. On a GPU the blocks are computed on the device and copied into the host
    output, so the device holds only the data and one block.

    Data far from unit scale (float32 data times 1e20, say, or times 1e-25) is divided
    by a power of two before the sums of squares, which is exact, and the distances are
    scaled back: correlation and cosine are scale-free, the Euclidean family and the
    Mahalanobis distances scale with the data (and the precision), the Poisson
    divergences with the rates and ``prior_lambda`` together. Dissimilarities outside the
    range of the compute dtype (above its largest value, or below its smallest normal
    number) are refused, not returned as inf, NaN or flushed to zero.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> d = rsa.rdm(np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1]]))
    >>> round(float(d[0, 2]), 6)
    2.0

    Crossnobis distances from two runs of trials:

    >>> import brainalign as ba
    >>> x = np.array([[0.0, 1], [2, 0], [0, 1.2], [2.2, 0]])
    >>> trials = ba.responses(
    ...     x, ["a", "b", "a", "b"], sample_dim="trial", feature_dim="channel", run=[1, 1, 2, 2]
    ... )
    >>> round(float(rsa.rdm(trials, "crossnobis")[0, 1]), 6)
    2.8
    """
    check_option("metric", metric, METRICS)
    check_option("semantics", semantics, SEMANTICS)
    if noise is not None and metric not in ("mahalanobis", "crossnobis"):
        raise ValueError(
            "noise= (a precision matrix) is used only by metric='mahalanobis' or "
            f"'crossnobis'; got metric={metric!r}."
        )
    if metric == "mahalanobis" and _is_per_fold(noise):
        raise ValueError(
            "noise= with one precision per run (a list or a (run, feature, feature) array) "
            "is used only by metric='crossnobis'; metric='mahalanobis' takes one "
            f"(n_features, n_features) precision; got {_describe_noise(noise)}."
        )
    if runs is not None and metric not in CV_METRICS:
        raise ValueError(
            f"runs= is used only by the cross-validated metrics {CV_METRICS}; got "
            f"metric={metric!r}."
        )
    if metric.startswith("poisson"):
        check_number("prior_lambda", prior_lambda, low=0, closed="neither")
        check_number("prior_weight", prior_weight, low=0)
    da = as_responses(data)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if metric in CV_METRICS:
        return _rdm_cv(
            da, metric, runs, noise, semantics, prior_lambda, prior_weight, feature_dim, dev, dt
        )
    if TRIAL in da.dims:
        raise SchemaError(
            f"rdm(metric={metric!r}) needs one pattern per stimulus but data has a 'trial' "
            "dim; average the trials first with brainalign.average_trials(data) (or use a "
            f"cross-validated metric: {', '.join(map(repr, CV_METRICS))})."
        )
    fdim = _feature_dim(da, feature_dim, "data")
    bdims = [d for d in da.dims if d not in (STIMULUS, fdim)]
    da_t = da.transpose(*bdims, STIMULUS, fdim)
    values = np.asarray(da_t.values)
    check_not_empty(values, "data")
    ids = np.asarray(da[STIMULUS].values)
    if da.sizes[STIMULUS] < 2:
        raise ValueError(f"An RDM needs at least 2 stimuli; data has {da.sizes[STIMULUS]}.")
    n, p = values.shape[-2:]
    batch_shape = values.shape[:-2]
    flat_b = values.reshape(-1, n, p)
    itemsize = torch.finfo(dt).bits // 8
    work = _work_budget(flat_b.shape[0], n, itemsize, dev, f"rdm(metric={metric!r})")
    out = np.empty(
        (flat_b.shape[0], n, n), dtype=np.float64 if dt == torch.float64 else np.float32
    )
    per_item = (n * p + 3 * n * n) * itemsize
    step = max(1, min(_MEMORY_BUDGET, work) // max(per_item, 1))
    kernel = RDM_KERNELS[metric]
    if per_item > work:
        # Large RDMs: row blocks written straight into the output, work <= ~out / 2.
        _validate_patterns(values, ids, metric, prior_weight)
        prec, k_prec = None, 0
        if metric == "mahalanobis":
            prec, k_prec = _noise_tensor(noise, da, fdim, dev, dt, return_exponent=True)
        n_bad = 0
        for i in range(flat_b.shape[0]):
            n_bad += _rdm_rows(
                flat_b[i],
                out[i],
                metric,
                work,
                dev,
                dt,
                prec,
                k_prec,
                prior_lambda,
                prior_weight,
                f"rdm(metric={metric!r})",
                out.nbytes,
            )
        if metric not in ("correlation", "cosine"):
            _check_representable(out, values, metric, dt, n_bad=n_bad)
    elif metric in ("correlation", "cosine"):
        # Fast path: one Gram matrix per batch; validation runs only when a row is flagged.
        validated = False
        for start in range(0, flat_b.shape[0], step):
            block = flat_b[start : start + step]
            x = as_tensor(block, dev, dt)
            d, flag = gram_rdm(x, metric)
            if bool(flag.any()):
                if not validated:
                    _validate_patterns(values, ids, metric)
                    validated = True
                # ill-conditioned for the Gram formula, or squares out of the dtype's range:
                # centre explicitly, each row scaled to a largest magnitude in [0.5, 1)
                # (both metrics are scale-invariant; a power of two scales exactly)
                x, _ = _scaled_tensor(
                    block,
                    x,
                    dev,
                    dt,
                    axes=(-1,),
                    always=True,
                    centre=-1 if metric == "correlation" else None,
                )
                d = kernel(x)
            out[start : start + step] = to_numpy(d)
    else:
        _validate_patterns(values, ids, metric, prior_weight)
        prec, k_prec = None, 0
        if metric == "mahalanobis":
            prec, k_prec = _noise_tensor(noise, da, fdim, dev, dt, return_exponent=True)
        # distances scale as (data scale) ** power (times the precision's scale)
        power = {"euclidean": 1, "sqeuclidean": 2, "mahalanobis": 2, "poisson": 1}[metric]
        for start in range(0, flat_b.shape[0], step):
            block = flat_b[start : start + step]
            x, k = _scaled_tensor(
                block, None, dev, dt, axes=(-2, -1), centre=None if metric == "poisson" else -2
            )
            if metric == "mahalanobis":
                d = RDM_KERNELS["sqeuclidean"](x) / p if prec is None else kernel(x, prec)
            elif metric == "poisson":
                # KL divergence of shifted rates scales with them: scale the prior too
                lam = prior_lambda if k is None else as_tensor(np.ldexp(prior_lambda, -k), dev, dt)
                d = kernel(x, lam, prior_weight)
            else:
                d = kernel(x)
            out[start : start + step] = _unscale(to_numpy(d), k, power, k_prec)
        _check_representable(out, values, metric, dt)
    out = out.reshape((*batch_shape, n, n))
    coords: dict[str, Any] = {d: da_t[d] for d in bdims if d in da_t.coords}
    coords[RDM_DIMS[0]] = ids
    coords[RDM_DIMS[1]] = ids
    for cname, coord in da.coords.items():  # stimulus-level labels, e.g. category
        if coord.dims == (STIMULUS,) and cname != STIMULUS:
            coords[f"{cname}_a"] = (RDM_DIMS[0], coord.values)
            coords[f"{cname}_b"] = (RDM_DIMS[1], coord.values)
    attrs = {k: da.attrs[k] for k in _PROVENANCE if k in da.attrs}
    attrs.update({"kind": "rdm", "metric": metric, "brainalign_version": __version__})
    return xr.DataArray(out, dims=(*bdims, *RDM_DIMS), coords=coords, attrs=attrs, name="rdm")


def _work_budget(
    n_items: int, n: int, itemsize: int, dev: torch.device, what: str, *, floor: bool = True
) -> int:
    """Refuse an output beyond the memory budget; return the bytes of work memory allowed.

    The output (``n_items`` RDMs of ``n x n``, host memory) must fit the budget. The work
    memory is what is left of the budget (on a GPU: the device's budget), capped at half
    the output's size (``floor``: but at least :data:`_MIN_WORK`, so small problems keep
    the vectorised kernels).
    """
    out_bytes = n_items * n * n * itemsize
    host = resolve_budget(None, "cpu")
    shape = f"({n_items} x {n} x {n})" if n_items > 1 else f"({n} x {n})"
    check_fits(out_bytes, f"{what}: the {shape} output of {itemsize * 8}-bit floats", host)
    room = host - out_bytes if dev.type == "cpu" else resolve_budget(None, dev)
    if not floor:
        return room
    return int(min(max(out_bytes // 2, _MIN_WORK), room))


def _rdm_rows(
    x_np: np.ndarray,
    out: np.ndarray,
    metric: str,
    work: int,
    dev: torch.device,
    dt: torch.dtype,
    prec: Any,
    k_prec: int,
    prior_lambda: float,
    prior_weight: float,
    what: str,
    held: int,
) -> int:
    """One RDM in blocks of rows, written into ``out`` (``(n, n)``, preallocated).

    Block ``[r0, r1)`` computes the dissimilarities of its rows with the columns ``r0...``
    (the upper triangle and the diagonal block) and mirrors them, so the result is
    exactly symmetric and each pair is computed once. Every distance is
    ``K_ii + K_jj - K_ij - K_ji`` for a kernel ``K = sum_t c_t A_t B_t^T`` of prepared
    ``(n, q)`` factors (``1 - K_ij`` of unit-norm rows for correlation and cosine), the
    formulas of the vectorised kernels in :mod:`brainalign.rsa._kernels`; the data was
    validated by the caller. Temporaries: the factors (a few copies of the data) and
    about :data:`_ROW_COPIES` ``(rows, n)`` blocks, within ``work`` bytes and half the
    output's size; ``held`` is the size of the whole output (all broadcast slices).
    Returns the number of non-finite dissimilarities (out of the dtype's range).
    """
    n, p = x_np.shape
    itemsize = torch.finfo(dt).bits // 8
    rows = _block_rows(
        n,
        _DATA_COPIES * n * p * max(itemsize, 8),
        f"{_DATA_COPIES} copies of the ({n}, {p}) data",
        itemsize,
        dev,
        held,
        out.nbytes,
        work,
        what,
    )
    k = None
    symmetric, one_minus, clamp, root, divide = True, False, False, False, 1.0
    if metric in ("correlation", "cosine"):
        x, _ = _scaled_tensor(
            x_np,
            None,
            dev,
            dt,
            axes=(-1,),
            always=True,
            centre=-1 if metric == "correlation" else None,
        )
        if metric == "correlation":
            x = x - x.mean(dim=-1, keepdim=True)
        x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        terms = [(1.0, x, x)]
        one_minus = True
    else:
        x, k = _scaled_tensor(
            x_np[None], None, dev, dt, axes=(-2, -1), centre=None if metric == "poisson" else -2
        )
        x = x[0]
        if metric == "poisson":
            lam = prior_lambda if k is None else float(np.ldexp(prior_lambda, -int(k.flat[0])))
            m = (x + lam * prior_weight) / (1.0 + prior_weight)
            terms = [(1.0, m, torch.log(m))]
            symmetric, divide = False, float(p)
        else:
            x = x - x.mean(dim=-2, keepdim=True)
            clamp = True
            root = metric == "euclidean"
            if metric == "mahalanobis":
                divide = float(p)
                if isinstance(prec, LowRankPrecision):
                    fx = x @ prec.factor.transpose(0, 1)
                    terms = [(1.0, x * prec.diag, x), (-1.0, fx, fx)]
                elif prec is not None:
                    terms = [(1.0, x @ prec, x)]
                else:
                    terms = [(1.0, x, x)]
            else:
                terms = [(1.0, x, x)]
    check_finite_out = not one_minus and k is None and k_prec == 0
    n_bad = _fill_blocks(
        out,
        terms,
        rows,
        symmetric=symmetric,
        one_minus=one_minus,
        clamp=clamp,
        root=root,
        divide=divide,
        count_bad=check_finite_out,
    )
    power = {"euclidean": 1, "sqeuclidean": 2, "mahalanobis": 2, "poisson": 1}.get(metric, 0)
    if not check_finite_out:
        n_bad = _unscale_rows(out, None if k is None else int(k.flat[0]), power, k_prec, rows)
    return n_bad


def _block_rows(
    n: int,
    prep: int,
    prep_what: str,
    itemsize: int,
    dev: torch.device,
    held: int,
    out_bytes: int,
    work: int,
    what: str,
) -> int:
    """Rows per block of an ``(n, n)`` RDM; refuses a budget without room for one row.

    ``prep``: bytes of the prepared factors (described by ``prep_what``); ``held``: the
    whole output's bytes (host memory, counted on the CPU); ``out_bytes``: this RDM's.
    """
    row = _ROW_COPIES * n * itemsize
    room = resolve_budget(None, dev)
    if dev.type == "cpu":
        room -= held
    check_fits(
        prep + row,
        f"{what}: the smallest row block (one row of {n} dissimilarities and "
        f"{prep_what}) beside the output of {format_bytes(held)}",
        room,
    )
    # blocks within a third of the output (two of them live at once: the peak stays well
    # within 1.5x the output), or within the budget
    block_work = min(max(out_bytes // 3, _MIN_BLOCK_WORK), room - prep, work)
    return int(max(1, min(n, block_work // row)))


def _fill_blocks(
    out: np.ndarray,
    terms: list[tuple[float, torch.Tensor, torch.Tensor]],
    rows: int,
    *,
    symmetric: bool = True,
    one_minus: bool = False,
    clamp: bool = False,
    root: bool = False,
    divide: float = 1.0,
    count_bad: bool = False,
) -> int:
    """Write an RDM into ``out`` (``(n, n)``) in blocks of ``rows`` rows.

    The kernel is ``K = sum_t c_t A_t B_t^T`` over ``terms`` ``(c_t, A_t, B_t)`` (each
    ``(n, q_t)``; ``symmetric``: every term gives a symmetric ``K``). The RDM is
    ``(K_ii + K_jj - K_ij - K_ji) / divide`` (clamped at 0 with ``clamp``, its square root
    with ``root``), or ``1 - K_ij`` with ``one_minus``. Block ``[r0, r1)`` computes its
    rows against the columns ``r0...`` and is mirrored: the result is exactly symmetric
    with a zero diagonal. Returns the number of non-finite entries (with ``count_bad``).
    """
    n = out.shape[0]
    n_bad = 0
    diag = None
    if not one_minus:
        diag = sum(c * (a * b).sum(-1) for c, a, b in terms)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        kern = None
        for c, a, b in terms:  # accumulated in place: one (rows, n - r0) block
            pairs = [(a, b)] if symmetric else [(a, b), (b, a)]
            for u, v in pairs:
                if kern is None:
                    kern = u[r0:r1] @ v[r0:].transpose(0, 1)
                    if c != 1.0:
                        kern.mul_(c)
                else:
                    kern.addmm_(u[r0:r1], v[r0:].transpose(0, 1), alpha=c)
        if one_minus:
            d = kern.neg_().add_(1.0)
        else:
            if symmetric:
                kern.mul_(2.0)
            d = diag[r0:r1, None] + diag[None, r0:]
            d.sub_(kern)
            del kern
            if divide != 1.0:
                d.div_(divide)
            if clamp:
                d.clamp_min_(0.0)
            if root:
                d.sqrt_()
        d[:, : r1 - r0].diagonal().zero_()
        block = to_numpy(d)
        if count_bad:
            n_bad += block.size - int(np.count_nonzero(np.isfinite(block)))
        out[r0:r1, r0:] = block
        out[r1:, r0:r1] = block[:, r1 - r0 :].T
        sub = out[r0:r1, r0:r1]  # the diagonal block: mirror its upper triangle
        low = np.tril_indices(r1 - r0, -1)
        sub[low] = sub.T[low]
        del d, block
    return n_bad


def _unscale_rows(out: np.ndarray, k: int | None, power: int, k_extra: int, rows: int) -> int:
    """:func:`_unscale` of one ``(n, n)`` RDM in place, in blocks of ``rows`` rows.

    Returns the number of entries that end up non-finite (out of range).
    """
    n = out.shape[0]
    if k is None and k_extra == 0:
        return sum(
            out[r : r + rows].size - int(np.count_nonzero(np.isfinite(out[r : r + rows])))
            for r in range(0, n, rows)
        )
    e = k_extra if k is None else power * k + k_extra
    top = max(float(np.abs(out[r : r + rows]).max()) for r in range(0, n, rows))
    info = np.finfo(out.dtype)
    big = top * (8 * info.eps)
    n_bad = 0
    for r in range(0, n, rows):
        d = out[r : r + rows]
        with np.errstate(over="ignore", under="ignore"):
            res = np.ldexp(d, e).astype(d.dtype, copy=False)
        lost = (np.abs(d) > big) & (np.abs(res) < info.tiny)
        if lost.any():
            res[lost] = np.nan
        n_bad += res.size - int(np.count_nonzero(np.isfinite(res)))
        out[r : r + rows] = res
    return n_bad


def _scaled_tensor(
    block: np.ndarray,
    x: torch.Tensor | None,
    dev: torch.device,
    dt: torch.dtype,
    *,
    axes: tuple[int, ...],
    always: bool = False,
    centre: int | None = None,
) -> tuple[torch.Tensor, np.ndarray | None]:
    """``block`` in ``dt`` on ``dev``, each slice over ``axes`` divided by a power of two.

    The division is exact (powers of two), happens in float64 before the cast to ``dt``
    (so float64 data beyond float32's range casts without overflow) and only when a slice's
    largest magnitude leaves the safe range of ``dt`` (or with ``always``).

    ``centre`` names an axis whose mean the metric ignores (the features for correlation,
    the stimuli for Euclidean distances). Below float64 it is subtracted in float64 before
    the cast: after the cast, a pattern of mean 1e6 and spread 1 keeps only float32's
    resolution of 1e6 (about 0.06) of its spread, and its correlations collapse towards 0.

    Returns
    -------
    x : torch.Tensor
        The (scaled) block; ``x`` itself (or the cast block) when nothing was scaled.
    k : ndarray of int or None
        The exponents (dims over ``axes`` kept), ``None`` when nothing was scaled.
    """
    k = None
    if block.size and np.issubdtype(block.dtype, np.number):
        k = pow2_exponents(block, axes)
        if centre is not None and dt != torch.float64:
            b = np.ldexp(block.astype(np.float64), -k)  # in range for the mean
            b -= b.mean(axis=centre, keepdims=True)
            k2 = pow2_exponents(b, axes)
            return as_tensor(np.ldexp(b, -k2), dev, dt), k + k2
        if not (always or needs_scaling(k, dt)):
            k = None
    if k is None:
        return (as_tensor(block, dev, dt) if x is None else x), None
    return as_tensor(np.ldexp(block.astype(np.float64), -k), dev, dt), k


def _unscale(d: np.ndarray, k: np.ndarray | None, power: int, k_extra: int = 0) -> np.ndarray:
    """``d * 2**(power * k + k_extra)``, exact where it fits ``d``'s dtype.

    Values beyond the dtype's range become inf; non-negligible values (above a few
    rounding errors of their slice's largest) that fall below its smallest normal number
    become NaN, so that :func:`_check_representable` refuses both.
    """
    if k is None and k_extra == 0:
        return d
    e = k_extra if k is None else power * k + k_extra
    with np.errstate(over="ignore", under="ignore"):
        res = np.ldexp(d, e).astype(d.dtype, copy=False)
    info = np.finfo(d.dtype)
    big = np.abs(d).max(axis=(-2, -1), keepdims=True) * (8 * info.eps)
    lost = (np.abs(d) > big) & (np.abs(res) < info.tiny)
    if lost.any():
        res[lost] = np.nan
    return res


def dtype_range(dt: torch.dtype) -> tuple[str, str]:
    """Return a dtype's name and the end of an out-of-range message: its range and a hint."""
    info = torch.finfo(dt)
    name = str(dt).replace("torch.", "")
    hint = (
        "Pass dtype='float64' or rescale the data"
        if dt != torch.float64
        else "Rescale the data (e.g. by a power of ten)"
    )
    return (
        name,
        f"{name}'s range (smallest normal {info.tiny:.3g}, largest {info.max:.3g}). {hint}.",
    )


def _check_representable(
    out: np.ndarray, values: Any, metric: str, dt: torch.dtype, *, n_bad: int | None = None
) -> None:
    """Refuse dissimilarities that do not fit ``dt`` (the inputs were checked finite).

    ``n_bad``: the number of non-finite entries of ``out`` when the caller counted them.
    """
    if n_bad is None:
        n_bad = 0 if np.isfinite(out).all() else int((~np.isfinite(out)).sum())
    if n_bad == 0:
        return
    vals = np.abs(np.asarray(values.values if isinstance(values, xr.DataArray) else values))
    name, range_and_hint = dtype_range(dt)
    raise ValueError(
        f"rdm(metric={metric!r}) does not fit in {name}: the data's magnitudes range from "
        f"{float(vals[vals > 0].min(initial=np.inf)):.3g} to {float(vals.max(initial=0)):.3g}, "
        f"and {n_bad} dissimilarities fall outside {range_and_hint}"
    )


def _validate_patterns(
    values: np.ndarray, ids: np.ndarray, metric: str, prior_weight: float = 0.1
) -> None:
    """Full checks of ``(..., n, p)`` patterns; raises with the offending stimulus ids."""
    rows_first = np.moveaxis(values, -2, 0)
    _check_finite_fast(rows_first, "data", ids)
    rows = rows_first.reshape(len(ids), -1, values.shape[-1])
    if metric == "correlation":
        check_not_constant(rows, "data", axis=-1, labels=ids)
    elif metric == "cosine":
        zero = (np.abs(rows).max(axis=-1) == 0).any(axis=1)
        if zero.any():
            raise ValueError(
                f"data has {int(zero.sum())} all-zero pattern(s) "
                f"({', '.join(map(repr, ids[zero][:10].tolist()))}): cosine distance is "
                "undefined for them."
            )
    elif metric.startswith("poisson"):
        _check_non_negative(rows, ids, metric, prior_weight)


def _check_finite_fast(values: np.ndarray, name: str, labels: np.ndarray) -> None:
    """:func:`check_finite`, run only when the sum of ``values`` is not finite (one pass)."""
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values.sum()):
        check_finite(values, name, labels=labels)


def _check_non_negative(
    rows: np.ndarray, labels: np.ndarray, metric: str, prior_weight: float
) -> None:
    if prior_weight == 0 and (rows == 0).any():
        raise ValueError(
            f"metric={metric!r} with prior_weight=0 needs positive data (log(0) is "
            f"undefined); data holds {int((rows == 0).sum())} zero(s). Use prior_weight > 0."
        )
    neg = rows < 0
    if neg.any():
        bad = neg.reshape(len(labels), -1).any(axis=1)
        raise ValueError(
            f"metric={metric!r} needs non-negative data (counts or rates); data holds "
            f"{int(neg.sum())} negative value(s) (min {float(rows.min()):.4g}) in "
            f"{int(bad.sum())} pattern(s) ({_fmt_list(np.unique(labels[bad]))})."
        )


def _noise_tensor(
    noise: Any,
    da: xr.DataArray,
    fdim: str,
    dev: torch.device,
    dt: torch.dtype,
    *,
    return_exponent: bool = False,
) -> Any:
    """Validate a precision matrix against the data's feature dim and move it to ``dev``.

    A precision straight from :func:`~brainalign.rsa.noise_precision` that has a factored
    form (:func:`_register_low_rank`) is returned in that form (and needs no checks: it is
    symmetric positive definite by construction); the dense matrix is then never used.
    With ``return_exponent``, returns ``(precision / 2**k, k)``: a precision whose largest
    (diagonal) entry leaves the range where ``dt`` computes safely is divided by an even
    power of two ``2**k`` (exactly, in float64, before the cast); otherwise ``k = 0``.
    """
    if noise is None:
        return (None, 0) if return_exponent else None
    prec = _noise_tensor_unscaled(noise, da, fdim, dev, dt if not return_exponent else None)
    if not return_exponent:
        return prec
    diag = prec.diag if isinstance(prec, LowRankPrecision) else prec.diagonal()
    k = int(np.frexp(float(diag.abs().max()))[1])
    if not needs_scaling(np.array([k]), dt):
        return prec.to(dev, dt), 0
    k += k % 2  # even: the factor of a low-rank form scales by 2**(k / 2)
    half = 2.0 ** (-k // 2)
    if isinstance(prec, LowRankPrecision):
        scaled = LowRankPrecision(prec.diag * half * half, prec.factor * half)
        return scaled.to(dev, dt), k
    return (prec * half * half).to(dt), k


def _noise_tensor_unscaled(
    noise: Any, da: xr.DataArray, fdim: str, dev: torch.device, dt: torch.dtype | None
) -> torch.Tensor | LowRankPrecision:
    """:func:`_noise_tensor` without the scaling; ``dt=None`` keeps float64."""
    p = da.sizes[fdim]
    if isinstance(noise, xr.DataArray):
        if noise.ndim != 2:
            raise ValueError(
                f"noise must be a 2-D (n_features, n_features) precision matrix; got dims "
                f"{tuple(noise.dims)}."
            )
        if fdim in da.coords and noise.dims[0] in noise.coords and noise.shape == (p, p):
            ours = np.asarray(da[fdim].values)
            theirs = np.asarray(noise[noise.dims[0]].values)
            if not np.array_equal(ours, theirs):
                raise ValueError(
                    f"noise is labeled with other features than data's {fdim!r} dim "
                    f"(first labels: noise {_fmt_list(theirs[:3])}, data "
                    f"{_fmt_list(ours[:3])}); reorder it with noise.sel(...) first."
                )
        arr = np.asarray(noise.values)
    else:
        arr = np.asarray(noise.detach().cpu() if hasattr(noise, "detach") else noise)
    if arr.shape != (p, p):
        raise ValueError(
            f"noise must be a ({p}, {p}) precision matrix for data's {p} features along "
            f"{fdim!r}; got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"noise must be numeric, got dtype {arr.dtype}.")
    low = _registered_low_rank(noise, arr)
    if low is not None:
        return low.to(dev, torch.float64 if dt is None else dt)
    t64 = as_tensor(arr, dev, torch.float64)
    # Symmetry through a random probe (two matrix-vector products instead of a transposed
    # copy): |(M - M^T) v|_i <= max|M - M^T| * |v|_1, so a symmetric matrix never fails.
    # NaN/inf entries propagate to the products. For a positive semi-definite matrix
    # max|M| is the largest diagonal entry.
    probe = torch.randn(p, dtype=torch.float64, device=dev, generator=_probe_generator(dev))
    mv, mtv = t64 @ probe, t64.transpose(0, 1) @ probe
    if not bool(torch.isfinite(mv).all() & torch.isfinite(mtv).all()):
        check_finite(arr, "noise")
    diag = np.diagonal(arr)
    if np.any(diag <= 0):
        k = int(np.flatnonzero(diag <= 0)[0])
        raise ValueError(
            f"noise must be positive definite, but its diagonal entry {k} is {diag[k]:.4g} "
            f"({int((diag <= 0).sum())} non-positive diagonal entries)."
        )
    scale = float(diag.max())
    gap = float(torch.linalg.vector_norm(mv - mtv, float("inf")))
    if gap > 1e-8 * scale * float(probe.abs().sum()):
        asym = float((t64 - t64.transpose(0, 1)).abs_().max())
        raise ValueError(
            f"noise must be a symmetric precision matrix; max |noise - noise.T| = {asym:.3g} "
            f"(max |diagonal| = {scale:.3g})."
        )
    t = t64 if dt is None else t64.to(dt)
    if p <= _FULL_PD_CHECK_MAX:
        _, info = torch.linalg.cholesky_ex(t64)
        if int(info) > 0:
            raise ValueError(
                f"noise must be positive definite, but its Cholesky factorisation fails at "
                f"leading minor {int(info)} of {p}; estimate it with noise_precision(..., "
                "method='shrinkage_diag') or add a ridge to its covariance."
            )
    return t


def _is_per_fold(noise: Any) -> bool:
    """Whether ``noise`` holds one precision per run (a list, or a 3-D array)."""
    if noise is None:
        return False
    if isinstance(noise, list | tuple):
        return True
    return getattr(noise, "ndim", np.ndim(noise)) == 3


def _describe_noise(noise: Any) -> str:
    if isinstance(noise, list | tuple):
        return f"a {type(noise).__name__} of {len(noise)} matrices"
    return f"an array of shape {tuple(np.shape(noise))}"


def _fold_noise(
    noise: Any,
    da: xr.DataArray,
    fdim: str,
    run_ids: np.ndarray,
    dev: torch.device,
    dt: torch.dtype,
) -> tuple[FoldPairs, int]:
    """Validate one precision per run; return the run-pair factors (scaled) and exponent.

    The factors of the pair precisions ``((M_k⁻¹ + M_l⁻¹) / 2)⁻¹`` (:class:`FoldPairs`,
    float64) come from the run precisions divided by an even power of two ``2**k`` when
    their largest diagonal entry leaves the range where ``dt`` computes safely (as
    :func:`_noise_tensor`).
    """
    n_runs = len(run_ids)
    if isinstance(noise, xr.DataArray):
        fold_dim = noise.dims[0]
        if fold_dim in noise.coords:
            have = [str(v) for v in np.asarray(noise[fold_dim].values)]
            want = [str(v) for v in run_ids]
            missing = [r for r in want if r not in have]
            if missing:
                raise ValueError(
                    f"noise (one precision per run along {fold_dim!r}) lacks the run(s) "
                    f"{_fmt_list(missing)}; data's runs are {_fmt_list(want)} and noise's "
                    f"{fold_dim!r} labels are {_fmt_list(have)}."
                )
            noise = noise.isel({fold_dim: [have.index(r) for r in want]})
        items = [noise.isel({fold_dim: i}) for i in range(noise.sizes[fold_dim])]
    elif isinstance(noise, list | tuple):
        items = list(noise)
    else:
        arr = noise.detach().cpu().numpy() if hasattr(noise, "detach") else np.asarray(noise)
        items = list(arr)
    if len(items) != n_runs:
        raise ValueError(
            f"noise must hold one precision matrix per run ({n_runs}: runs "
            f"{_fmt_list(run_ids)}, in this order); got {_describe_noise(noise)}."
        )
    mats = []
    for i, item in enumerate(items):
        try:
            prec = _noise_tensor_unscaled(item, da, fdim, dev, None)
        except (ValueError, TypeError) as err:
            raise type(err)(f"noise[{i}] (run {_fmt_list([run_ids[i]])}): {err}") from None
        mats.append(prec.dense() if isinstance(prec, LowRankPrecision) else prec)
    precs = torch.stack(mats)
    top = float(precs.diagonal(dim1=-2, dim2=-1).abs().max())
    e = int(np.frexp(top)[1])
    if needs_scaling(np.array([e]), dt):
        # M_kl is homogeneous of degree 1 in the run precisions: scaling them all by an
        # exact power of two scales every pair precision by it
        e += e % 2
        precs = precs * 2.0 ** (-e)
    else:
        e = 0
    return fold_pair_factors(precs), e


def _register_low_rank(precision: xr.DataArray, low: LowRankPrecision) -> None:
    """Remember that ``precision`` (a DataArray) equals ``low``; its values become read-only.

    The entry lives as long as ``precision`` (a weak reference) and holds only while its
    values array stays the same, read-only object (see :func:`_registered_low_rank`).
    """
    key = id(precision)
    values = precision.values
    values.flags.writeable = False

    def _forget(ref: weakref.ref, key: int = key) -> None:
        entry = _LOW_RANK.get(key)
        if entry is not None and entry[0] is ref:
            del _LOW_RANK[key]

    _LOW_RANK[key] = (weakref.ref(precision, _forget), values, low)


def _registered_low_rank(noise: Any, arr: np.ndarray) -> LowRankPrecision | None:
    """Return the factored form of ``noise`` if it has one that still matches ``arr``.

    ``arr`` (the values of ``noise``) must be the very array registered, still read-only:
    replaced values drop the factored form, and copies never have one, so the dense
    matrix is used for them.
    """
    entry = _LOW_RANK.get(id(noise))
    if entry is None or entry[0]() is not noise or entry[1] is not arr:
        return None
    if arr.flags.writeable:
        return None
    return entry[2]


def _probe_generator(dev: torch.device) -> torch.Generator:
    gen = torch.Generator(device=dev)
    gen.manual_seed(0)
    return gen


def resolve_runs(da: xr.DataArray, runs: Any, what: str) -> np.ndarray:
    """Return one run label per trial of ``da`` from ``runs`` (None, a coord name, labels).

    Parameters
    ----------
    da : xarray.DataArray, dims ("trial", ...)
        Trial data.
    runs : None or str or array_like
        ``None``: the ``run`` coordinate; a str: a coordinate along ``trial``; else one
        label per trial.
    what : str
        The caller, for messages (e.g. ``"metric='crossnobis'"``).

    Returns
    -------
    runs : ndarray, shape (n_trials,)
        The labels.
    """
    n_trials = da.sizes[TRIAL]
    trial_coords = [c for c, v in da.coords.items() if v.dims == (TRIAL,) and c != TRIAL]
    if runs is None:
        if RUN not in trial_coords:
            raise ValueError(
                f"{what} needs the run of each trial: pass runs=... (one label per trial, or "
                f"the name of a coordinate along 'trial') or give data a {RUN!r} coordinate; "
                f"data's trial coordinates are {_fmt_list(trial_coords) or 'none'}."
            )
        runs = RUN
    if isinstance(runs, str):
        if runs not in trial_coords:
            raise ValueError(
                f"runs={runs!r} is not a coordinate along 'trial'; data's trial coordinates "
                f"are {_fmt_list(trial_coords) or 'none'}.{did_you_mean(runs, trial_coords)}"
            )
        labels = np.asarray(da[runs].values)
    else:
        labels = np.asarray(runs.values if isinstance(runs, xr.DataArray) else runs)
        if labels.ndim != 1 or len(labels) != n_trials:
            raise ValueError(
                f"runs must hold one label per trial ({n_trials}); got shape {labels.shape}."
            )
    return labels


def run_patterns(
    da: xr.DataArray,
    fdim: str,
    run_labels: np.ndarray,
    what: str,
    dev: torch.device,
    *,
    min_runs: int = 2,
) -> tuple[np.ndarray, np.ndarray, list[str], torch.Tensor, torch.Tensor]:
    """Average trials within run × stimulus.

    Parameters
    ----------
    da : xarray.DataArray, dims ("trial", ..., fdim)
        Trial data (validated, finite).
    fdim : str
        The feature dim.
    run_labels : ndarray, shape (n_trials,)
        Run of each trial.
    what : str
        The caller, for messages.
    dev : torch.device
        Where to average (in float64).
    min_runs : int
        Fewest runs accepted.

    Returns
    -------
    run_ids : ndarray
        Distinct runs, sorted (rsatoolbox's fold order).
    stim_ids : ndarray of str
        Stimuli in order of first appearance.
    bdims : list of str
        The broadcast dims.
    patterns : torch.Tensor, float64, shape (*broadcast, n_runs, n_stimuli, p)
        Run × stimulus means.
    counts : torch.Tensor, float64, shape (n_runs, n_stimuli, 1)
        Trials per run × stimulus.
    """
    bdims = [d for d in da.dims if d not in (TRIAL, fdim)]
    values = np.asarray(da.transpose(TRIAL, *bdims, fdim).values)
    stim = np.asarray(da[STIMULUS].values)
    uniq, first, inv = np.unique(stim, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    stim_ids = uniq[order]
    stim_idx = np.argsort(order)[inv.reshape(-1)]
    run_ids, run_idx = np.unique(run_labels, return_inverse=True)
    run_idx = run_idx.reshape(-1)
    n_runs, n = len(run_ids), len(stim_ids)
    if n_runs < min_runs:
        raise ValueError(
            f"{what} needs at least {min_runs} runs to cross-validate; runs holds "
            f"{n_runs} distinct value(s) ({_fmt_list(run_ids)})."
        )
    if n < 2:
        raise ValueError(f"An RDM needs at least 2 stimuli; data has {n}.")
    counts = np.zeros((n_runs, n), dtype=np.int64)
    np.add.at(counts, (run_idx, stim_idx), 1)
    if (counts == 0).any():
        lines = []
        for r in np.flatnonzero((counts == 0).any(axis=1))[:5]:
            missing = stim_ids[counts[r] == 0]
            lines.append(f"run {_fmt_list([run_ids[r]])} lacks stimuli {_fmt_list(missing)}")
        raise ValueError(
            f"{what} needs every stimulus in every run: " + "; ".join(lines) + ". Drop those "
            "stimuli or runs first."
        )
    x = as_tensor(values.reshape(values.shape[0], -1), dev, torch.float64)
    flat = run_idx * n + stim_idx
    cnt = torch.as_tensor(counts.reshape(-1, 1), dtype=torch.float64, device=dev)
    if (counts == 1).all():  # one trial per run x stimulus: a permutation (often none)
        perm = np.argsort(flat, kind="stable")
        if not np.array_equal(perm, np.arange(len(perm))):
            x = x[torch.as_tensor(perm, device=dev)]
        means = x.reshape(n_runs, n, *values.shape[1:])
    else:
        sums = torch.zeros((n_runs * n, x.shape[1]), dtype=torch.float64, device=dev)
        sums.index_add_(0, torch.as_tensor(flat, device=dev), x)
        means = (sums / cnt).reshape(n_runs, n, *values.shape[1:])  # (R, n, *b, p)
    nb = len(bdims)
    means = means.permute(*range(2, 2 + nb), 0, 1, 2 + nb)  # (*b, R, n, p)
    return run_ids, stim_ids, bdims, means, cnt.reshape(n_runs, n, 1)


def _rdm_cv(
    da: xr.DataArray,
    metric: str,
    runs: Any,
    noise: Any,
    semantics: str,
    prior_lambda: float,
    prior_weight: float,
    feature_dim: str | None,
    dev: torch.device,
    dt: torch.dtype,
) -> xr.DataArray:
    what = f"metric={metric!r}"
    if TRIAL not in da.dims:
        raise SchemaError(
            f"{what} needs trial data: dims ('trial', feature) with a 'stimulus' coordinate "
            f"and a run per trial ({RUN!r} coordinate or runs=...); data has dims "
            f"{tuple(da.dims)}. Build it with brainalign.responses(..., sample_dim='trial')."
        )
    fdim = _feature_dim(da, feature_dim, "data")
    run_labels = resolve_runs(da, runs, what)
    values = np.asarray(da.values)
    check_not_empty(values, "data")
    trial_ids = np.asarray(da[STIMULUS].values)
    _check_finite_fast(np.moveaxis(values, da.dims.index(TRIAL), 0), "data", trial_ids)
    if metric == "poisson_cv":
        _check_non_negative(
            np.moveaxis(values, da.dims.index(TRIAL), 0), trial_ids, metric, prior_weight
        )
    _run_ids, ids, bdims, pats, counts = run_patterns(da, fdim, run_labels, what, dev)
    train = None
    if semantics == "rsatoolbox" and bool((counts != counts[0]).any()):
        # rsatoolbox averages the training runs' trials, not their run means
        sums = pats * counts
        train = (sums.sum(-3, keepdim=True) - sums) / (counts.sum(0) - counts)
    per_fold = metric == "crossnobis" and _is_per_fold(noise)
    fold_pairs = None
    if per_fold:
        fold_pairs, k_prec = _fold_noise(noise, da, fdim, _run_ids, dev, dt)
        prec = None
        train = None  # rsatoolbox's per-fold branch uses the run means under both semantics
    else:
        prec, k_prec = (
            _noise_tensor(noise, da, fdim, dev, dt, return_exponent=True)
            if metric == "crossnobis"
            else (None, 0)
        )
    batch_shape = tuple(pats.shape[:-3])
    n_runs, n, p = pats.shape[-3:]
    flat_b = pats.reshape(-1, n_runs, n, p)
    flat_t = None if train is None else train.reshape(-1, n_runs, n, p)
    itemsize = torch.finfo(dt).bits // 8
    per_item = (4 * n_runs * n * p + 3 * n_runs * n * n) * itemsize
    if fold_pairs is not None:
        per_item += 6 * fold_pairs.run_k.numel() * n * p * 8  # float64 gathers and terms
    work = _work_budget(flat_b.shape[0], n, itemsize, dev, f"rdm({what})")
    blocked = per_item > work  # large RDMs: row blocks written straight into the output
    rows = 0
    if blocked:
        n_pairs = 0 if fold_pairs is None else fold_pairs.run_k.numel()
        copies = 3 * n_runs + 2 + 2 * n_pairs * (1 + 8 // itemsize)  # + float64 temporaries
        rows = _block_rows(
            n,
            copies * n * p * itemsize,
            f"{copies} ({n}, {p}) run patterns and factors",
            itemsize,
            dev,
            flat_b.shape[0] * n * n * itemsize,
            n * n * itemsize,
            work,
            f"rdm({what})",
        )
    out = np.empty(
        (flat_b.shape[0], n, n), dtype=np.float64 if dt == torch.float64 else np.float32
    )
    step = 1 if blocked else max(1, min(_MEMORY_BUDGET, work) // max(per_item, 1))
    power = 2 if metric == "crossnobis" else 1  # distances scale as (data scale) ** power
    n_bad = 0
    for start in range(0, flat_b.shape[0], step):
        x = flat_b[start : start + step]  # float64 run means
        tr = None if train is None else flat_t[start : start + step]
        # exact power-of-two rescaling where the magnitudes leave dt's safe range
        m = x.abs().amax(dim=(-3, -2, -1), keepdim=True)
        k = np.frexp(to_numpy(m))[1].astype(np.int64)
        if needs_scaling(k, dt):
            f = as_tensor(np.ldexp(1.0, -np.clip(k, -1022, 1023)), dev, torch.float64)
            x = x * f
            tr = None if tr is None else tr * f
        else:
            k = None
        x = x.to(dt)
        tr = None if tr is None else tr.to(dt)
        if blocked:
            lam = prior_lambda if k is None else float(np.ldexp(prior_lambda, -int(k.flat[0])))
            terms, symmetric = _cv_terms(
                x[0],
                None if tr is None else tr[0],
                metric,
                prec,
                fold_pairs,
                lam,
                prior_weight,
                semantics == "correct",
            )
            _fill_blocks(out[start], terms, rows, symmetric=symmetric, divide=float(p))
            del terms
            kk = None if k is None else int(np.clip(k, -1022, 1023).flat[0])
            n_bad += _unscale_rows(out[start], kk, power, k_prec, rows)
            continue
        if fold_pairs is not None:
            d = rdm_crossnobis_fold_pairs(x, fold_pairs)
        elif metric == "crossnobis":
            d = RDM_KERNELS[metric](x, prec, train=tr)
        else:
            lam = (
                prior_lambda
                if k is None
                else as_tensor(np.ldexp(prior_lambda, -np.clip(k, -1022, 1023)), dev, dt)
            )
            d = RDM_KERNELS[metric](
                x, lam, prior_weight, all_folds=semantics == "correct", train=tr
            )
        kk = None if k is None else np.clip(k, -1022, 1023).reshape(-1, 1, 1)
        out[start : start + step] = _unscale(to_numpy(d), kk, power, k_prec)
    _check_representable(out, values, metric, dt, n_bad=n_bad if blocked else None)
    out = out.reshape((*batch_shape, n, n))
    coords: dict[str, Any] = {d: da[d] for d in bdims if d in da.coords}
    coords[RDM_DIMS[0]] = ids
    coords[RDM_DIMS[1]] = ids
    coords.update(
        _stimulus_level_coords(da, ids, exclude=(runs,) if isinstance(runs, str) else ())
    )
    attrs = {k: da.attrs[k] for k in _PROVENANCE if k in da.attrs}
    attrs.update(
        {
            "kind": "rdm",
            "metric": metric,
            "n_runs": n_runs,
            "brainalign_version": __version__,
        }
    )
    if metric == "poisson_cv":
        attrs["semantics"] = semantics
    if metric == "crossnobis":
        attrs["noise"] = (
            "precision per run" if per_fold else "identity" if prec is None else "precision"
        )
    return xr.DataArray(out, dims=(*bdims, *RDM_DIMS), coords=coords, attrs=attrs, name="rdm")


def _cv_terms(
    x: torch.Tensor,
    train: torch.Tensor | None,
    metric: str,
    prec: Any,
    fold_pairs: Any,
    prior_lambda: float,
    prior_weight: float,
    all_folds: bool,
) -> tuple[list[tuple[float, torch.Tensor, torch.Tensor]], bool]:
    """Kernel terms of a cross-validated RDM for :func:`_fill_blocks`, and its symmetry.

    ``x``: run patterns ``(R, n, p)`` (``train``: the training patterns of each fold, or
    None). The terms reproduce :func:`~brainalign.rsa._kernels.rdm_crossnobis`,
    :func:`~brainalign.rsa._kernels.rdm_crossnobis_fold_pairs` and
    :func:`~brainalign.rsa._kernels.rdm_poisson_cv` (before their division by ``p``).
    """
    r = x.shape[0]
    if metric == "poisson_cv":
        if train is None:
            train = (x.sum(0, keepdim=True) - x) / (r - 1)
        if not all_folds:
            x, train = x[-1:], train[-1:]

        def shift(t: torch.Tensor) -> torch.Tensor:
            return (t + prior_lambda * prior_weight) / (1.0 + prior_weight)

        f = x.shape[0]
        return [(1.0 / f, shift(train[i]), torch.log(shift(x[i]))) for i in range(f)], False
    if fold_pairs is not None:
        d = x.to(torch.float64)
        left, right = fold_pair_terms(d - d.mean(dim=-2, keepdim=True), fold_pairs)
        left, right = left.to(x.dtype), right.to(x.dtype)
        q = left.shape[0]
        return [(1.0 / q, left[i], right[i]) for i in range(q)], False
    c = 1.0 / (r * (r - 1))
    if isinstance(prec, LowRankPrecision):
        sv = prec.diag.sqrt()
        gt = (prec.factor / sv).transpose(0, 1)
        ds = torch.addcmul(x.mean(dim=-2, keepdim=True) * -sv, x, sv)  # centred, scaled
        fd = ds @ gt
        if train is not None:
            ts = torch.addcmul(train.mean(dim=-2, keepdim=True) * -sv, train, sv)
            tg = ts @ gt
            terms = [(1.0 / r, ts[i], ds[i]) for i in range(r)]
            terms += [(-1.0 / r, tg[i], fd[i]) for i in range(r)]
            return terms, False
        terms = [(c, ds.sum(0), ds.sum(0)), (-c, fd.sum(0), fd.sum(0))]
        terms += [(-c, ds[i], ds[i]) for i in range(r)]
        terms += [(c, fd[i], fd[i]) for i in range(r)]
        return terms, True
    d = x - x.mean(dim=-2, keepdim=True)
    y = d if prec is None else d @ prec
    if train is not None:
        tc = train - train.mean(dim=-2, keepdim=True)
        return [(1.0 / r, tc[i], y[i]) for i in range(r)], False
    total = d.sum(0)
    terms = [(c, total if prec is None else y.sum(0), total)]
    terms += [(-c, y[i], d[i]) for i in range(r)]
    return terms, True


def _stimulus_level_coords(
    da: xr.DataArray, ids: np.ndarray, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``{name}_a`` / ``{name}_b`` RDM coords from trial coords constant within stimuli.

    A coordinate along ``trial`` that takes one value per stimulus (a category, say) is
    a stimulus-level label, kept as :func:`rdm` keeps the stimulus coords of averaged
    data (and as :func:`~brainalign.average_trials` keeps them); per-trial coords (run,
    onset) are not.
    """
    stim = np.asarray(da[STIMULUS].values)
    pos = {s: i for i, s in enumerate(ids.tolist())}
    codes = np.array([pos[s] for s in stim.tolist()], dtype=np.int64)
    first = np.unique(codes, return_index=True)[1]  # first trial of each stimulus, in ids order
    out: dict[str, Any] = {}
    for cname, coord in da.coords.items():
        if coord.dims != (TRIAL,) or cname in (STIMULUS, TRIAL, RUN, *exclude):
            continue
        vals = np.asarray(coord.values)
        per_stim = vals[first]
        if np.array_equal(vals, per_stim[codes], equal_nan=vals.dtype.kind in "fc"):
            out[f"{cname}_a"] = (RDM_DIMS[0], per_stim)
            out[f"{cname}_b"] = (RDM_DIMS[1], per_stim)
    return out


def as_rdm(x: Any, name: str = "rdm") -> xr.DataArray:
    """Return ``x`` as a labeled RDM, validating a plain square matrix.

    Parameters
    ----------
    x : xarray.DataArray or array_like, shape (n, n)
        An RDM (labeled, or a square symmetric matrix with stimulus ids ``"0"...``).
    name : str
        Its name in messages.

    Returns
    -------
    rdm : xarray.DataArray, dims (..., "stimulus_a", "stimulus_b")
        The labeled RDM.
    """
    if isinstance(x, xr.DataArray):
        if not all(d in x.dims for d in RDM_DIMS):
            raise SchemaError(
                f"{name} must be an RDM with dims {RDM_DIMS}; it has dims {tuple(x.dims)}. "
                "Compute one with brainalign.rsa.rdm()."
            )
        return validate(x, name=name)
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise SchemaError(f"{name} must be a square (n, n) matrix, got shape {arr.shape}.")
    both = np.isfinite(arr) & np.isfinite(arr.T)
    if not np.allclose(np.where(both, arr, 0), np.where(both, arr.T, 0), equal_nan=True):
        raise ValueError(
            f"{name} must be symmetric; max |d - d.T| = {np.nanmax(np.abs(arr - arr.T)):.3g}."
        )
    ids = np.array([str(i) for i in range(arr.shape[0])])
    return xr.DataArray(
        arr,
        dims=RDM_DIMS,
        coords={RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
        attrs={"kind": "rdm"},
        name="rdm",
    )
