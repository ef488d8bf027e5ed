"""Searchlight RSA: an RDM per neighbourhood (sphere, channel disc, surface disc, time window).

Neighbourhoods are kept as flat index arrays (CSR) and gathered, one chunk of centres at
a time, into padded ``(centres, max_size, stimuli)`` tensors with a mask, so a whole chunk
of centres becomes one batched matrix product (chunks sized from the memory budget,
``brainalign.set_config(max_memory=...)``); every data RDM of the chunk is compared with
all model RDMs at once. The only Python loop runs over chunks.

A patch holds every spatial unit whose distance to the centre is *strictly less* than
``radius``, decided exactly for the float coordinates and the float ``radius`` (also when
``radius`` lies one float step from a shell of a regular grid). mne-rsa compares rounded
distances, so the two differ only when ``radius`` is itself a rounded shell length: on a
3 mm grid ``radius=np.sqrt(27)`` lies just above the true sqrt(27), so the 8 voxels at
offsets (±3, ±3, ±3) mm are strictly closer and kept here (27 voxels), while mne-rsa rounds
their distance to that same float and leaves them out (19). A radius between shells (5.1)
gives the same patches in both. With ``temporal_radius=r``, a patch also spans the
samples ``t - r ... t + r`` around each time centre ``t``; time centres without a full
window (the first and last ``r`` samples) are left out, as in mne-rsa.

:func:`brainalign.rsa.cluster_permutation_test` (in ``_cluster``) recomputes the map for
stimulus-label permutations of the model (all permutations in the same batched pass) and
tests clusters of centres against the maximum cluster mass.

``metric="crossnobis"`` takes trial data: run × stimulus means and residuals are gathered
per patch, each patch gets its own noise covariance (batched over the chunk, padded units
masked to an identity block), its patterns are whitened by a batched Cholesky solve, and the
cross-validated distances use ``sum_{k != l} d_k P d_l^T = (sum d) P (sum d)^T - sum_k d_k P
d_k^T``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

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
from brainalign._docdict import fill_doc
from brainalign._logging import progress
from brainalign._memory import check_fits, format_bytes, resolve_budget
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS, STIMULUS, TRIAL, validate
from brainalign.rsa._compare import _CENTERED, _COMPLETE, _UNCENTERED, METHODS, Method
from brainalign.rsa._compare_kernels import compare_vectors, scale_rows_pow2
from brainalign.rsa._kernels import needs_scaling, rankdata
from brainalign.rsa._rdm import as_rdm, resolve_runs, run_patterns

SearchlightMetric = Literal["correlation", "cosine", "euclidean", "sqeuclidean", "crossnobis"]
SearchlightMethod = Method
SEARCHLIGHT_METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean")  # stimulus data
SEARCHLIGHT_NOISE = ("shrinkage_diag", "shrinkage_eye", "diag")  # per-patch crossnobis noise
#: Every comparison of :func:`brainalign.rsa.compare`; Spearman, Pearson and cosine take a
#: fast path (one matrix product of normalised vectors), the others run the batched kernels
#: of ``compare`` over all patches (or time points) at once.
SEARCHLIGHT_METHODS = METHODS
_FAST_METHODS = ("spearman", "pearson", "cosine")
SPATIAL_DIMS = ("voxel", "channel", "vertex")
_POSITIONS = {"voxel": ("x", "y", "z"), "channel": ("ch_x", "ch_y", "ch_z")}
_MEMORY_BUDGET = 2**28  # bytes of intermediate tensors per chunk of centres
_DIJKSTRA_CHUNK = 512
_BALL_CHUNK = 4096  # centres whose candidate offsets are checked at once
_CANDIDATE_BYTES = 160  # bytes per candidate unit while a chunk of balls is built
_MAX_CANDIDATES = 2**20  # candidates per chunk (cache-sized)


# ----------------------------------------------------------------------------- model RDMs
def model_stack(model_rdms: Any, name: str = "model_rdms") -> xr.DataArray:
    """Return one or many model RDMs as one labeled stack ``(*model_dims, a, b)``.

    A list becomes a ``model`` dim (coordinate: the RDMs' names, or ``"0"...``), a mapping a
    ``model`` dim with its keys; a single RDM keeps its own broadcast dims (e.g. ``layer``).
    """
    if isinstance(model_rdms, Mapping) or (
        isinstance(model_rdms, Sequence)
        and not isinstance(model_rdms, str)
        and len(model_rdms) > 0
        and not np.isscalar(model_rdms[0])
        and np.ndim(model_rdms[0]) == 2
    ):
        if isinstance(model_rdms, Mapping):
            keys = [str(k) for k in model_rdms]
            items = list(model_rdms.values())
        else:
            items = list(model_rdms)
            keys = [str(i) for i in range(len(items))]
        if not items:
            raise ValueError(f"{name} is empty; give at least one model RDM.")
        rdms = [as_rdm(r, f"{name}[{k!r}]") for k, r in zip(keys, items, strict=True)]
        for k, r in zip(keys, rdms, strict=True):
            if any(d not in RDM_DIMS for d in r.dims):
                raise SchemaError(
                    f"{name}[{k!r}] must be a single RDM with dims {RDM_DIMS} inside a list or "
                    f"mapping; it has dims {tuple(r.dims)}."
                )
        ref = rdms[0]
        aligned = [ref] + [align_stimuli(ref, r, join="exact")[1] for r in rdms[1:]]
        values = np.stack([np.asarray(r.values, dtype=float) for r in aligned])
        ids = ref[RDM_DIMS[0]].values
        return xr.DataArray(
            values,
            dims=("model", *RDM_DIMS),
            coords={"model": keys, RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
            name="rdm",
        )
    return as_rdm(model_rdms, name)


def model_vectors(
    model: xr.DataArray, method: str, name: str = "model_rdms"
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Flatten a model stack to upper-triangle vectors ``(n_models, n_pairs)``; validate."""
    n = model.sizes[RDM_DIMS[0]]
    mdims = [d for d in model.dims if d not in RDM_DIMS]
    vals = np.asarray(model.transpose(*mdims, *RDM_DIMS).values, dtype=float).reshape(-1, n, n)
    i, j = np.triu_indices(n, k=1)
    vecs = vals[:, i, j]
    finite = np.isfinite(vecs)
    n_valid = finite.sum(-1)
    if n_valid.min() < 3:
        raise ValueError(
            f"{name} has only {int(n_valid.min())} finite stimulus pair(s) (of {vecs.shape[1]}) "
            "in at least one RDM; at least 3 are needed."
        )
    if method in _COMPLETE and not finite.all():
        raise ValueError(
            f"method={method!r} needs complete RDMs, but {name} has "
            f"{int((~finite).sum())} NaN stimulus pair(s); use another method."
        )
    vm = np.where(finite, vecs, np.nan)
    if method in _CENTERED:
        const = np.nanmax(vm, axis=-1) == np.nanmin(vm, axis=-1)
        if const.any():
            raise ValueError(
                f"{name} holds {int(const.sum())} RDM(s) that are constant over their finite "
                f"pairs, so their {method} correlation with any data RDM is undefined."
            )
    elif method in _UNCENTERED:
        zero = np.nanmax(np.abs(vm), axis=-1) == 0
        if zero.any():
            raise ValueError(
                f"{name} holds {int(zero.sum())} RDM(s) that are all zero over their finite "
                f"pairs, so their {method} similarity with any data RDM is undefined."
            )
    coords = {d: model[d] for d in mdims if d in model.coords}
    return vecs, mdims, coords


# ------------------------------------------------------------------------------ kernels
def _sort_order(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise sort order of a finite float64 array, and the rows that need exact ranking.

    Each value is shifted to be positive (then its IEEE bits order like integers), its
    lowest ``ceil(log2(n))`` bits are replaced by its column index, and the int64 keys are
    sorted in place: numpy's SIMD sort of plain keys is several times faster than
    ``argsort``. Rows where two keys share their high bits (ties, or values closer than about
    ``2**-39`` relative to each other) are flagged for exact ranking.
    """
    n = a.shape[-1]
    bits = max(1, int(np.ceil(np.log2(n))))
    keys = a - (float(a.min()) - 1.0)  # >= 1: positive floats order like their bits
    keys = keys.view(np.int64)
    np.bitwise_and(keys, np.int64(~((1 << bits) - 1)), out=keys)
    np.bitwise_or(keys, np.arange(n, dtype=np.int64), out=keys)
    keys.sort(axis=-1)
    flagged = (np.diff(keys, axis=-1) < (1 << bits)).any(axis=-1)
    np.bitwise_and(keys, np.int64((1 << bits) - 1), out=keys)
    return keys, flagged


def ranked_zscores(v: torch.Tensor) -> torch.Tensor:
    """Centred, unit-norm average-tie ranks along the last dim of a finite ``(rows, n)`` tensor.

    The dot product of two such rows is their Spearman correlation. Without ties the
    z-scored ranks are a fixed sequence, scattered to each row's sort order. Rows with ties
    (or near-ties) are ranked exactly with :func:`brainalign.rsa._kernels.rankdata`.
    """
    if v.device.type != "cpu" or v.shape[0] == 0 or v.shape[-1] > 2**24:
        return _zscore_rows(rankdata(v), True)
    a = v.numpy()
    if a.dtype != np.float64:
        a = a.astype(np.float64)
    order, flagged = _sort_order(a)
    seq = torch.arange(a.shape[1], dtype=torch.float64)
    seq = _zscore_rows(seq, True).to(v.dtype).expand(a.shape[0], -1)
    z = torch.empty_like(v).scatter_(-1, torch.from_numpy(order), seq)
    if flagged.any():
        rows = torch.from_numpy(np.flatnonzero(flagged))
        z[rows] = _zscore_rows(rankdata(v[rows]), True)
    return z


def _zscore_rows(v: torch.Tensor, center: bool) -> torch.Tensor:
    if center:
        v = v - v.mean(dim=-1, keepdim=True)
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)


def prepare_models(models: torch.Tensor, method: str) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Normalised model vectors for the fast path (``None``: NaN pairs, or another method)."""
    if method not in _FAST_METHODS or not bool(torch.isfinite(models).all()):
        return None, models
    if method == "spearman":
        return ranked_zscores(models), models
    return _zscore_rows(models, method == "pearson"), models


def score_vectors(
    data: torch.Tensor,
    bad: torch.Tensor,
    zmodels: torch.Tensor | None,
    models: torch.Tensor,
    method: str,
    *,
    similarity: bool = False,
    n_stimuli: int | None = None,
) -> torch.Tensor:
    """Compare data RDM vectors ``(B, P)`` with model vectors ``(M, P)`` → ``(B, M)``.

    Rows flagged in ``bad`` (an undefined RDM) give NaN. With finite models this is one
    matrix product of normalised (ranked) vectors; otherwise each pair is compared over the
    pairs finite in the model, exactly as :func:`brainalign.rsa.compare`. With
    ``similarity=True``, ``data`` holds ``1 - d`` (Spearman and Pearson only), whose
    correlations are those of ``d`` with the sign flipped. The other methods run
    :func:`compare_vectors` on all rows at once (``n_stimuli`` for the structured ones);
    ``"neg_riem_dist"`` fits the model to the data (model first, as rsatoolbox).
    """
    any_bad = bool(bad.any())
    if any_bad:
        data = torch.where(bad[:, None], torch.zeros_like(data), data)
    if zmodels is not None:
        if method == "spearman":
            z = ranked_zscores(data)
        else:
            z = _zscore_rows(data, method == "pearson")
        out = z @ (-zmodels.T if similarity else zmodels.T)
    else:
        if similarity:
            data = 1.0 - data
        out = compare_pairs(data, models, method, n_stimuli)
    if any_bad:
        out = out.masked_fill(bad[:, None], float("nan"))
    return out


def compare_pairs(
    data: torch.Tensor, models: torch.Tensor, method: str, n_stimuli: int | None
) -> torch.Tensor:
    """Every data vector ``(B, P)`` against every model vector ``(M, P)`` → ``(B, M)``.

    One batched call of :func:`compare_vectors`; ``"neg_riem_dist"`` is not symmetric and
    takes the model first (it fits the model to the data, as rsatoolbox's
    ``compare(model, data)``).
    """
    if method == "neg_riem_dist":
        return compare_vectors(models[None, :, :], data[:, None, :], method, n_stimuli=n_stimuli)
    return compare_vectors(data[:, None, :], models[None, :, :], method, n_stimuli=n_stimuli)


def _take_columns(t: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``t[:, columns]``; numpy's ``take`` is several times faster on the CPU."""
    if t.device.type == "cpu":
        return torch.from_numpy(np.take(t.numpy(), columns.numpy(), axis=1))
    return torch.index_select(t, 1, columns)


def patch_rdm_vectors(
    x: torch.Tensor,
    sp_idx: torch.Tensor,
    sp_valid: torch.Tensor,
    t_idx: torch.Tensor,
    metric: str,
    iu: tuple[torch.Tensor, torch.Tensor],
    *,
    similarity: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper-triangle RDM vectors of a chunk of patches.

    Parameters
    ----------
    x : tensor, shape (n_spatial, n_times, n_stimuli)
        The data.
    sp_idx, sp_valid : tensor, shape (B, K)
        Padded spatial indices of each patch and which of them are real.
    t_idx : tensor, shape (B, W)
        Time samples of each patch.
    metric : str
        One of :data:`SEARCHLIGHT_METRICS`.
    iu : tuple of tensor
        Upper-triangle indices.
    similarity : bool
        For ``correlation`` and ``cosine``, return ``1 - d`` (saves a pass).

    Returns
    -------
    vectors : tensor, shape (B, n_pairs)
        The RDM vectors (or similarities).
    bad : tensor of bool, shape (B,)
        Patches whose RDM is undefined (a constant or all-zero pattern with
        ``correlation`` or ``cosine``).
    """
    b, w = t_idx.shape
    n = x.shape[-1]
    if x.shape[1] == 1:  # no time dim: a plain row gather is faster
        g = x[:, 0][sp_idx]  # (B, F, n)
    else:
        g = x[sp_idx[:, :, None], t_idx[:, None, :]].reshape(b, -1, n)  # (B, F, n)
    m = sp_valid[:, :, None].expand(-1, -1, w).reshape(b, -1, 1).to(x.dtype)
    i, j = iu
    flat = i * n + j
    if metric in ("correlation", "cosine"):
        g = g * m
        if metric == "correlation":
            n_feat = m.sum(1, keepdim=True)
            mean = g.sum(1, keepdim=True) / n_feat
            g = (g - mean).mul_(m)
            sq = (g * g).sum(1)  # (B, n)
            # constant pattern: its centred norm vanishes relative to its raw norm
            bad = (sq <= 1e-20 * (sq + n_feat[:, 0] * mean[:, 0] ** 2)).any(-1)
        else:
            sq = (g * g).sum(1)
            bad = (sq == 0).any(-1)
        g = g.mul_(torch.where(sq == 0, torch.ones_like(sq), sq).rsqrt_()[:, None, :])
        sim = _take_columns((g.mT @ g).reshape(b, -1), flat)
        return (sim if similarity else sim.neg_().add_(1.0)), bad
    g = (g - g.mean(-1, keepdim=True)).mul_(m)  # translation-invariant; better conditioned
    gram = (g.mT @ g).reshape(b, -1)  # (B, n * n)
    diag = gram[:, :: n + 1]
    d = (diag[:, i] + diag[:, j]).sub_(_take_columns(gram, flat), alpha=2.0)
    d = d.clamp_min_(0.0)
    bad = torch.zeros(b, dtype=torch.bool, device=x.device)
    return (d.sqrt_() if metric == "euclidean" else d), bad


# ------------------------------------------------------------------------ crossnobis
def _crossnobis_inputs(
    data: xr.DataArray, runs: Any, sdim: str, dev: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Run × stimulus means and residuals of trial data, voxel-major.

    Returns the stimulus ids (order of first appearance), the run patterns
    ``(n_spatial, n_runs * n_stimuli)`` (run-major, float64), the residuals (each trial minus
    its run × stimulus mean, then minus each unit's mean over trials, as
    :func:`brainalign.rsa.noise_precision` removes it) ``(n_spatial, n_trials)``, and the
    number of runs.
    """
    what = "searchlight(metric='crossnobis')"
    labels = resolve_runs(data, runs, what)
    values = np.asarray(data.transpose(TRIAL, sdim).values, dtype=float)
    check_finite(values, "data", labels=np.asarray(data[STIMULUS].values))
    run_ids, stim_ids, _, pats, _ = run_patterns(
        data.transpose(TRIAL, sdim), sdim, labels, what, dev
    )
    n_runs, n = len(run_ids), len(stim_ids)
    means = to_numpy(pats)  # (R, n, p)
    run_idx = np.searchsorted(run_ids, labels)
    lookup = {s: k for k, s in enumerate(stim_ids.tolist())}
    stim_idx = np.array([lookup[s] for s in np.asarray(data[STIMULUS].values).tolist()])
    res = values - means[run_idx, stim_idx]
    res -= res.mean(0, keepdims=True)
    flat = np.ascontiguousarray(means.reshape(n_runs * n, -1).T)
    return stim_ids, flat, np.ascontiguousarray(res.T), n_runs


def patch_crossnobis_vectors(
    pats: torch.Tensor,
    res: torch.Tensor,
    sp_idx: torch.Tensor,
    sp_valid: torch.Tensor,
    n_runs: int,
    noise: str | None,
    iu: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crossnobis RDM vectors of a chunk of patches, each with its own noise precision.

    Parameters
    ----------
    pats : tensor, shape (n_spatial, n_runs * n_stimuli)
        Run × stimulus means (run-major columns).
    res : tensor, shape (n_spatial, n_observations)
        Residuals, demeaned over observations (used when ``noise`` is given).
    sp_idx, sp_valid : tensor, shape (B, K)
        Padded spatial indices of each patch and which of them are real.
    n_runs : int
        Number of runs.
    noise : {"shrinkage_diag", "shrinkage_eye", "diag"} or None
        Per-patch precision estimated from the patch's residuals exactly as
        :func:`brainalign.rsa.noise_precision` (``dof = n_observations - 1``); None: the
        identity.
    iu : tuple of tensor
        Upper-triangle indices.

    Returns
    -------
    vectors : tensor, shape (B, n_pairs)
        Crossnobis distances (mean over ordered pairs of distinct runs, divided by the
        number of real units of each patch).
    bad : tensor of bool, shape (B,)
        Patches whose noise covariance is not positive definite.

    Notes
    -----
    Padded units enter as zero patterns and zero residuals with an identity block in the
    covariance, so they change nothing. The precision is never formed: patterns are
    whitened with the covariance's Cholesky factor (a batched triangular solve), and
    ``sum_{k != l} d_k P d_l^T = (sum d) P (sum d)^T - sum_k d_k P d_k^T``.
    """
    b, k = sp_idx.shape
    m = sp_valid.to(pats.dtype)  # (B, K)
    p = m.sum(1)  # real units per patch
    d = pats[sp_idx]  # (B, K, R * n)
    n = d.shape[-1] // n_runs
    d = d.reshape(b, k, n_runs, n)
    d = (d - d.mean(-1, keepdim=True)).mul_(m[:, :, None, None]).reshape(b, k, -1)
    bad = torch.zeros(b, dtype=torch.bool, device=pats.device)
    if noise is not None:
        x = res[sp_idx].mul_(m[:, :, None])  # (B, K, T)
        n_obs = x.shape[-1]
        dof = n_obs - 1
        if noise == "diag":
            var = (x * x).sum(-1) / dof + (1.0 - m)  # padded: 1
            d = d / var.sqrt()[:, :, None]
        else:
            g = x @ x.mT  # (B, K, K)
            q = g.diagonal(dim1=-2, dim2=-1)
            eye = torch.eye(k, dtype=g.dtype, device=g.device)
            if noise == "shrinkage_eye":
                s = g / n_obs
                mu = q.sum(-1) / n_obs / p  # (B,)
                dev_sq = s - mu[:, None, None] * torch.diag_embed(m)
                d2 = (dev_sq * dev_sq).sum((-2, -1))
                row = (x * x).sum(1)  # (B, T)
                b2 = ((row * row).sum(-1) / n_obs - (s * s).sum((-2, -1))) / n_obs
                b2 = torch.minimum(d2, b2)
                lam = torch.where(d2 > 0, b2 / torch.where(d2 > 0, d2, 1.0), 0.0)
                cov = (s * (1.0 - lam)[:, None, None]).mul_(n_obs / dof)
                diag_add = (lam * mu * n_obs / dof)[:, None] * m + (1.0 - m)
                cov = cov + torch.diag_embed(diag_add)
            else:  # shrinkage_diag (Schäfer & Strimmer), as noise_precision
                var = q / dof + (1.0 - m)  # padded: 1
                std = var.sqrt()
                s_mean = g / (std[:, :, None] * std[:, None, :]) / (n_obs - 1)
                sd = s_mean.diagonal(dim1=-2, dim2=-1)
                diag_sq = (sd * sd).sum(-1)
                off_sq = (s_mean * s_mean).sum((-2, -1)) - diag_sq
                w = x * x / var[:, :, None]  # (B, K, T)
                s2_off = ((w.sum(1) ** 2) - (w * w).sum(1)).sum(-1) / (n_obs - 1)
                var_hat = n_obs / dof**2 * (s2_off - off_sq)
                lam = torch.where(off_sq > 0, var_hat / torch.where(off_sq > 0, off_sq, 1.0), 0.0)
                lam = lam.clamp(0.0, 1.0)
                cov = g * ((1.0 - lam) / dof)[:, None, None]
                cov = cov * (1.0 - eye) + torch.diag_embed(var)
            chol, info = torch.linalg.cholesky_ex(cov)
            bad = info > 0
            if bool(bad.any()):
                chol = torch.where(bad[:, None, None], eye, chol)
            d = torch.linalg.solve_triangular(chol, d, upper=False)
    d = d.reshape(b, k, n_runs, n)
    total = d.sum(2)  # (B, K, n)
    flat_d = d.reshape(b, k * n_runs, n)
    kmat = (total.mT @ total - flat_d.mT @ flat_d) / (n_runs * (n_runs - 1))  # (B, n, n)
    i, j = iu
    diag = kmat.diagonal(dim1=-2, dim2=-1)
    vec = (diag[:, i] + diag[:, j] - 2.0 * kmat[:, i, j]) / p[:, None]
    return vec, bad


# ------------------------------------------------------------------------ neighbourhoods
def mesh_adjacency(vertices: Any, faces: Any) -> Any:
    """Sparse graph of a triangle mesh's edges, weighted by their Euclidean length.

    Pass it as ``adjacency=`` to :func:`searchlight` for geodesic discs on a surface.

    Parameters
    ----------
    vertices : array_like, shape (n_vertices, 3)
        Vertex positions (mm).
    faces : array_like of int, shape (n_faces, 3)
        Triangles as vertex indices.

    Returns
    -------
    graph : scipy.sparse.csr_matrix, shape (n_vertices, n_vertices)
        Symmetric; entry ``(u, v)`` is the length of edge ``u-v``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.rsa._searchlight import mesh_adjacency
    >>> g = mesh_adjacency(np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0.0]]), [[0, 1, 2]])
    >>> g.toarray()[0].tolist()
    [0.0, 1.0, 2.0]
    """
    import scipy.sparse as sp

    v = np.asarray(vertices, dtype=float)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (n_vertices, 3), got {v.shape}.")
    if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= len(v):
        raise ValueError(
            f"faces must be an (n_faces, 3) array of vertex indices in [0, {len(v) - 1}], "
            f"got shape {f.shape}."
        )
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)
    g = sp.coo_matrix((length, (e[:, 0], e[:, 1])), shape=(len(v), len(v))).tocsr()
    return (g + g.T).tocsr()


def _csr_from_lists(lists: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-centre index lists as flat ``(indptr, indices)`` arrays (CSR rows)."""
    import itertools

    lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    total = int(indptr[-1])
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=total)
    return indptr, flat


def pad_csr(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pad CSR rows into ``(len(rows), max_size)`` indices (int64, 0 where padded) and a mask.

    Parameters
    ----------
    indptr, indices : ndarray
        Neighbourhoods as CSR rows: row ``c`` holds ``indices[indptr[c]:indptr[c + 1]]``.
    rows : ndarray of int, optional
        The rows to pad (any order, repeats allowed); default all.

    Returns
    -------
    idx : ndarray of int64, shape (n_rows, width)
        The indices, left-aligned, zero-padded (``width`` = the largest row, at least 1).
    valid : ndarray of bool, shape (n_rows, width)
        Which entries are real.
    """
    if rows is None:
        rows = np.arange(len(indptr) - 1)
    start, stop = indptr[rows], indptr[np.asarray(rows) + 1]
    lens = stop - start
    width = max(int(lens.max(initial=0)), 1)
    valid = np.arange(width)[None, :] < lens[:, None]
    idx = np.zeros((len(rows), width), dtype=np.int64)
    if valid.any():
        # flat positions of the real entries, row by row: start + offset within the row
        r, c = np.nonzero(valid)
        idx[r, c] = indices[start[r] + c]
    return idx, valid


def _index_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def _ball_neighbours(
    pos: np.ndarray, allowed: np.ndarray, centres: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Units of ``allowed`` strictly closer than ``radius`` to each centre, padded.

    :func:`_ball_csr` padded with :func:`pad_csr`.
    """
    return pad_csr(*_ball_csr(pos, allowed, centres, radius))


class _BallPlan(NamedTuple):
    """How the candidates of each ball are found, and how many each centre has."""

    search_r: float  # radius a little beyond the ball's, so that rounding loses none
    counts: np.ndarray  # candidates per centre (int64)
    tree: Any  # a cKDTree over the allowed units, or None on a regular grid
    grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # flat volume, cells, offsets


def _grid_lookup(
    pos: np.ndarray, allowed: np.ndarray, search_r: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return a lookup volume when ``pos`` lies on a regular axis-aligned grid, else None.

    Returns the flat volume (allowed unit at each grid cell, -1 elsewhere; padded so that
    no offset leaves it), each unit's flat cell and the flat offsets of the cells within
    ``search_r`` (widened by the grid's rounding, so that they hold every unit the tree
    would find; the exact test comes after).
    """
    if len(pos) < 2:
        return None
    origin = pos.min(0)
    step = np.ones(pos.shape[1])
    for axis in range(pos.shape[1]):
        gaps = np.diff(np.unique(pos[:, axis]))
        if gaps.size:
            step[axis] = gaps.min()
    ijk = np.rint((pos - origin) / step)
    tol = 1e-6 * float(step.min())
    if float(np.abs(origin + ijk * step - pos).max()) > tol:
        return None
    reach_r = (search_r + 4 * tol) * (1 + 1e-9)
    reach = np.floor(reach_r / step).astype(np.int64)
    # a volume padded by the reach on every side: no offset leaves it
    shape = ijk.max(0).astype(np.int64) + 1 + 2 * reach
    if float(np.prod(shape.astype(float))) > 8 * len(pos) + 2**16:
        return None  # a sparse set of points: the tree is cheaper
    strides = np.cumprod(np.r_[1, shape[::-1][:-1]])[::-1]  # C order
    lin = (ijk.astype(np.int64) + reach) @ strides
    lookup = np.full(int(np.prod(shape)), -1, dtype=_index_dtype(len(pos)))
    lookup[lin[allowed]] = allowed
    grids = np.meshgrid(*(np.arange(-k, k + 1) for k in reach), indexing="ij")
    off = np.stack(grids, -1).reshape(-1, pos.shape[1])
    off = off[((off * step) ** 2).sum(1) <= reach_r**2]
    return lookup, lin, off @ strides


def _ball_plan(
    pos: np.ndarray, allowed: np.ndarray, centres: np.ndarray, radius: float, budget: int
) -> _BallPlan:
    """Candidates of every ball: offsets on a regular grid, else a KD-tree's (counted)."""
    r = float(radius)
    mag = float(np.abs(pos).max()) if pos.size else 0.0
    search_r = r + 1e-9 * r + 64 * np.finfo(np.float64).eps * mag
    grid = _grid_lookup(pos, allowed, search_r)
    if grid is None:
        from scipy.spatial import cKDTree

        tree = cKDTree(pos[allowed])
        counts = tree.query_ball_point(pos[centres], r=search_r, workers=-1, return_length=True)
        return _BallPlan(search_r, np.asarray(counts, dtype=np.int64), tree, None)
    plan = _BallPlan(search_r, np.zeros(len(centres), dtype=np.int64), None, grid)
    for rows, _vals, count in _ball_candidates(
        plan, pos, allowed, centres, budget, count_only=True
    ):
        plan.counts[rows] = count
    return plan


def _ball_candidates(
    plan: _BallPlan,
    pos: np.ndarray,
    allowed: np.ndarray,
    centres: np.ndarray,
    budget: int,
    *,
    count_only: bool = False,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield chunks of centres: their rows, the candidates (ascending per centre), owners.

    With ``count_only`` (grid only), the third item is each centre's candidate count.

    A chunk's candidates take about :data:`_CANDIDATE_BYTES` each, within an eighth of
    ``budget`` (at least one centre per chunk).
    """
    cap = max(min((budget // 8) // _CANDIDATE_BYTES, _MAX_CANDIDATES), 1)
    start = 0
    while start < len(centres):
        if plan.grid is not None:
            lookup, lin, off = plan.grid
            stop = min(len(centres), start + max(1, cap // max(len(off), 1)))
            vals = np.take(lookup, lin[centres[start:stop]][:, None] + off[None, :])
            if count_only:
                yield slice(start, stop), vals, np.count_nonzero(vals >= 0, axis=1)
                start = stop
                continue
            vals.sort(axis=1)  # ascending unit index per centre; misses (-1) first
            owner, col = np.nonzero(vals >= 0)
            flat = vals[owner, col].astype(np.int64)
        else:
            csum = np.cumsum(plan.counts[start : start + _BALL_CHUNK])
            stop = start + max(1, int(np.searchsorted(csum, cap, side="right")))
            found = plan.tree.query_ball_point(
                pos[centres[start:stop]], r=plan.search_r, workers=-1, return_sorted=True
            )
            ptr, flat = _csr_from_lists(list(found))
            del found
            flat = allowed[flat]
            owner = np.repeat(np.arange(stop - start), np.diff(ptr))
        yield slice(start, stop), flat, owner
        start = stop


def _ball_csr(
    pos: np.ndarray,
    allowed: np.ndarray,
    centres: np.ndarray,
    radius: float,
    *,
    budget: int | None = None,
    plan: _BallPlan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Units of ``allowed`` strictly closer than ``radius`` to each centre, exactly, as CSR.

    Candidates a little beyond ``radius`` (their own rounding must lose none) come from
    integer offsets on a regular grid (a lookup volume, every centre of a chunk at once),
    or from a KD-tree for scattered positions, in chunks of centres within a slice of the
    memory ``budget``; each candidate's squared distance is then compared with
    ``radius**2``. A coordinate difference ``fl(a - b)`` carries a relative error of at most
    one rounding, so the float comparison is certain outside a band of relative width
    1e-12 around ``radius**2``; the pairs inside the band (a regular grid puts whole shells
    there) are decided in rational arithmetic on the exact differences, once per distinct
    offset. ``plan`` is :func:`_ball_plan`'s result when the caller has it.

    Returns
    -------
    indptr : ndarray of int64, shape (n_centres + 1,)
        Row pointers.
    indices : ndarray of int32 (int64 beyond 2**31 units)
        The units of each centre's ball, ascending.
    """
    r = float(radius)
    budget = resolve_budget(None, "cpu") if budget is None else budget
    if plan is None:
        plan = _ball_plan(pos, allowed, centres, r, budget)
    indices = np.empty(int(plan.counts.sum()), dtype=_index_dtype(len(pos)))
    lens = np.zeros(len(centres), dtype=np.int64)
    at = 0
    for rows, flat, owner in _ball_candidates(plan, pos, allowed, centres, budget):
        keep = _strictly_within(pos, flat[:, None], centres[rows][owner], r)[:, 0]
        kept = flat[keep]
        indices[at : at + kept.size] = kept
        at += kept.size
        lens[rows] = np.bincount(owner[keep], minlength=rows.stop - rows.start)
    indptr = np.zeros(len(centres) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    return indptr, indices[:at]


def _strictly_within(
    pos: np.ndarray, idx: np.ndarray, centres: np.ndarray, r: float
) -> np.ndarray:
    """Whether ``|pos[idx] - pos[centres]| < r`` holds exactly, ``(n_centres, width)``."""
    # a power-of-two rescaling (exact) puts r in [0.5, 1): no overflow or underflow in r**2
    k = int(np.frexp(r)[1])
    r = float(np.ldexp(r, -k))
    d2 = np.zeros(idx.shape)
    for c in range(pos.shape[1]):
        col = np.ldexp(pos[:, c], -k)
        s = col[idx]
        s -= col[centres][:, None]  # fl(a - b): relative error <= one rounding
        d2 += s * s
    r2 = r * r
    inside = d2 < r2
    band = np.abs(d2 - r2) <= 1e-12 * r2
    if band.any():
        inside[band] = _exact_verdicts(pos, idx, centres, k, band, r)
    return inside


def _exact_verdicts(
    pos: np.ndarray, idx: np.ndarray, centres: np.ndarray, k: int, band: np.ndarray, r: float
) -> np.ndarray:
    """Decide ``|a - b|**2 < r**2`` in rational arithmetic for the pairs in ``band``.

    Coordinates are scaled by ``2**-k`` (exactly); each distinct pair of (difference,
    rounding error) is decided once.
    """
    from fractions import Fraction

    rows, cols = np.nonzero(band)
    a = np.ldexp(pos[idx[rows, cols]], -k)
    b = np.ldexp(pos[centres[rows]], -k)
    s = a - b
    bv = s - a  # TwoSum(a, -b): s + e == a - b exactly
    e = (a - (s - bv)) + (-b - bv)
    offsets = np.ascontiguousarray(np.concatenate([s, e], axis=1))
    # distinct offsets through a 1-D key, checked against the rows it groups
    key = offsets @ np.random.default_rng(0).uniform(1.0, 2.0, offsets.shape[1])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(offsets, offsets[first][inverse]):  # a key collision: exact unique
        _, first, inverse = np.unique(offsets, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    exact_r2 = Fraction(r) ** 2
    dim = s.shape[1]
    verdict = np.array(
        [
            sum((Fraction(u[i]) + Fraction(u[dim + i])) ** 2 for i in range(dim)) < exact_r2
            for u in offsets[first].tolist()
        ],
        dtype=bool,
    )
    return verdict[inverse]


def _graph_neighbours(
    graph: Any, allowed: np.ndarray, centres: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Graph neighbourhoods (shortest-path length below ``radius``), padded."""
    return pad_csr(*_graph_csr(graph, allowed, centres, radius))


def _graph_csr(
    graph: Any,
    allowed: np.ndarray,
    centres: np.ndarray,
    radius: float,
    *,
    budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Graph neighbourhoods as CSR rows; Dijkstra runs on chunks of centres within budget."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    g = sp.csr_matrix(graph)[allowed][:, allowed]
    local = np.full(int(allowed.max()) + 1 if allowed.size else 0, -1, dtype=np.int64)
    local[allowed] = np.arange(allowed.size)
    budget = resolve_budget(None, "cpu") if budget is None else budget
    # each centre's row of distances (float64) and its mask, in a slice of the budget
    chunk = int(max(1, min(_DIJKSTRA_CHUNK, (budget // 8) // (9 * max(allowed.size, 1)))))
    dtype = _index_dtype(int(allowed.max()) + 1 if allowed.size else 1)
    pieces, lens = [], np.zeros(len(centres), dtype=np.int64)
    for start in range(0, len(centres), chunk):
        c = local[centres[start : start + chunk]]
        d = dijkstra(g, directed=False, indices=c, limit=radius)
        inside = d < radius
        del d
        cols = np.nonzero(inside)[1]
        lens[start : start + len(c)] = inside.sum(1)
        pieces.append(allowed[cols].astype(dtype))
    indptr = np.zeros(len(centres) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    indices = np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
    return indptr, indices


def _as_index(value: Any, n: int, dim: str, coords: Any, name: str) -> np.ndarray:
    """Positions selected by a boolean mask or integer indices over ``dim``."""
    if isinstance(value, xr.DataArray):
        if value.dims != (dim,):
            raise SchemaError(f"{name} must have the single dim {dim!r}, got {value.dims}.")
        if dim in value.coords and dim in coords.coords:
            value = value.reindex({dim: coords[dim].values})
        value = value.values
    arr = np.asarray(value)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(
                f"{name} as a boolean mask must have shape ({n},) (one entry per {dim}), got "
                f"{arr.shape}."
            )
        return np.flatnonzero(arr)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must be a boolean mask over {dim!r} or 1-D integer indices, got dtype "
            f"{arr.dtype} and shape {arr.shape}."
        )
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise ValueError(f"{name} holds indices outside [0, {n - 1}]: {_fmt_list(arr[:10])}.")
    return np.unique(np.where(arr < 0, arr + n, arr))


def _adjacency_matrix(adjacency: Any, da: xr.DataArray, dim: str) -> Any:
    import scipy.sparse as sp

    n = da.sizes[dim]
    names = None
    if isinstance(adjacency, tuple) and len(adjacency) == 2:  # mne.channels.find_ch_adjacency
        adjacency, names = adjacency
    g = sp.csr_matrix(adjacency, dtype=float)
    if names is not None:
        names = [str(s) for s in names]
        have = [str(s) for s in da[dim].values]
        missing = [c for c in have if c not in names]
        if missing:
            raise ValueError(
                f"adjacency lacks the {dim}(s) {_fmt_list(missing)} of data; it names "
                f"{len(names)} {dim}s."
            )
        order = np.array([names.index(c) for c in have])
        g = g[order][:, order]
    if g.shape != (n, n):
        raise ValueError(
            f"adjacency must be an ({n}, {n}) matrix (one row per {dim} of data), got {g.shape}."
        )
    if g.data.size and (g.data < 0).any():
        raise ValueError(
            f"adjacency holds {int((g.data < 0).sum())} negative edge length(s) (minimum "
            f"{float(g.data.min()):.3g}); they must be >= 0."
        )
    return g


def _positions(da: xr.DataArray, dim: str) -> np.ndarray:
    names = _POSITIONS.get(dim)
    missing = [c for c in (names or ("x", "y", "z")) if c not in da.coords]
    if names is None or missing:
        need = "/".join(names or ("x", "y", "z"))
        raise SchemaError(
            f"A searchlight over {dim!r} with a radius needs the {need} coordinates along "
            f"{dim!r} (missing {missing}), or an adjacency= graph."
        )
    pos = np.stack([np.asarray(da[c].values, dtype=float) for c in names], axis=1)
    if not np.isfinite(pos).all():
        bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
        raise ValueError(
            f"{len(bad)} {dim}(s) have no position ({_fmt_list(da[dim].values[bad])}); drop "
            "them or pass adjacency=."
        )
    return pos


def _fit_range(dt: torch.dtype, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Divide ``arrays`` by one power of two when their magnitude leaves ``dt``'s safe range.

    A searchlight map is invariant to a common positive scale of the data (each patch RDM
    scales by ``c``, ``c**2`` or not at all, a per-patch noise precision by ``c**-2``, and
    the comparisons are scale-free), so this exact division changes no result; it keeps the
    sums of squares of data far from 1 (float32 data x 1e20, or x 1e-25) inside ``dt``
    instead of turning every map into NaN.
    """
    m = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
    k = np.frexp(np.array([m]))[1]
    if not needs_scaling(k, dt):
        return arrays
    return tuple(np.ldexp(a, -int(k[0])) for a in arrays)


# -------------------------------------------------------------------------- public API
@fill_doc
def searchlight(
    data: xr.DataArray,
    model_rdms: Any,
    *,
    radius: float | None,
    metric: SearchlightMetric = "correlation",
    method: SearchlightMethod = "spearman",
    centers: Any = None,
    mask: Any = None,
    temporal_radius: int | None = None,
    adjacency: Any = None,
    runs: Any = None,
    noise: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
) -> xr.DataArray:
    """Searchlight RSA: compare the RDM of every neighbourhood with model RDMs.

    For every centre, the patterns of the spatial units within ``radius`` (and, for
    time-resolved data, the samples within ``temporal_radius``) form an RDM, which is
    compared with each model RDM. The spatial units are voxels (a sphere over the ``x``,
    ``y``, ``z`` coordinates, in mm), channels (a ball over ``ch_x``, ``ch_y``, ``ch_z``, in
    the units of those coordinates, or a graph neighbourhood from ``adjacency``) or surface
    vertices (geodesic discs over ``adjacency``, for example :func:`mesh_adjacency`).

    A patch holds every unit strictly closer than ``radius`` to its centre (Euclidean, or
    shortest-path length over ``adjacency``; with the binary adjacency of
    :func:`mne.channels.find_ch_adjacency` every edge has length 1, so ``radius=1.5`` gives
    a channel and its direct neighbours). With ``temporal_radius=r`` it holds the samples
    ``t - r ... t + r`` of each time centre ``t``; centres without a full window (the first
    and last ``r`` samples) are left out. Patch features (units × samples) are flattened as
    in mne-rsa, whose ``rsa_array`` this equals for the same patches.

    Parameters
    ----------
    data : xarray.DataArray, dims ("stimulus", "voxel" | "channel" | "vertex"[, "time"])
        Responses, one pattern per stimulus (average trials first). With
        ``metric="crossnobis"``: trial data, dims ``("trial", spatial)`` with a ``stimulus``
        coordinate and a run per trial (see ``runs``); no ``time`` dim.
    model_rdms : xarray.DataArray or list or dict of RDMs
        One model RDM ``(stimulus_a, stimulus_b)``, a stack with extra dims (e.g.
        ``model``), or a list / dict of RDMs (stacked along a ``model`` dim). Stimuli are
        matched by id to ``data``. NaN pairs in a model are left out of its comparisons.
    radius : float or None
        Spatial radius (> 0; mm for voxels). ``None`` pools all spatial units into one
        patch (a purely temporal searchlight; needs ``temporal_radius``).
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean", "crossnobis"}
        The RDM metric (see :func:`brainalign.rsa.rdm`). ``"crossnobis"`` averages trials
        within run × stimulus and cross-validates over ordered pairs of distinct runs,
        divided by the patch size (= ``rdm(patch, "crossnobis", noise=...)``, with
        ``semantics="correct"``: every run weighs the same).
    method : str
        The comparison, any of :data:`brainalign.rsa.METHODS` (see
        :func:`brainalign.rsa.compare`): ``"spearman"``, ``"pearson"`` and ``"cosine"`` take
        a fast path (one matrix product per chunk); ``"kendall_tau_a"``, ``"rho_a"``, the
        whitened methods (with ``sigma_k = I``), ``"bures"`` and ``"neg_riem_dist"`` (the
        model fitted to each patch's RDM; NaN where a patch's second moment is not positive
        definite, always so for a ``"sqeuclidean"`` or ``"cosine"`` patch of fewer than
        ``n_stimuli - 1`` features, ``"correlation"``: ``n_stimuli``) run
        :func:`brainalign.rsa.compare`'s batched kernels on every patch of a chunk at once.
        Each equals ``compare`` on the patch's RDM.
    centers : array_like of int or bool, or xarray.DataArray, optional
        The spatial units to centre patches on (indices or a boolean mask over the spatial
        dim); default all units in ``mask``.
    mask : array_like of bool or xarray.DataArray, optional
        The spatial units whose data may enter patches (e.g. a brain mask); default all.
    temporal_radius : int, optional
        Half-width of the time window in samples (>= 0). ``None`` uses all samples of a
        ``time`` dim as features.
    adjacency : array_like or scipy.sparse matrix or tuple, optional
        An ``(n_units, n_units)`` graph of edge lengths (0 = no edge), or the
        ``(matrix, names)`` tuple returned by :func:`mne.channels.find_ch_adjacency`
        (reordered to the data's channels by name). Neighbourhoods are then shortest-path
        distances below ``radius``.
    runs : str or array_like, optional
        Crossnobis only: the run of each trial, as the name of a coordinate along
        ``trial`` or one label per trial (default: the ``run`` coordinate). At least 2 runs,
        each holding every stimulus.
    noise : {"shrinkage_diag", "shrinkage_eye", "diag"} or None
        Crossnobis only: noise normalisation with a precision estimated for every patch
        from its own residuals (each trial minus its run × stimulus mean), exactly as
        ``noise_precision(patch_residuals, noise)`` (``dof = n_trials - 1``). None (default)
        uses the identity. Patches whose covariance is singular give NaN.
    %(device)s
    %(dtype)s
    batch_size : int, optional
        Centres per chunk (default: at most 64, fewer when a chunk would exceed 256 MiB
        or the chunks of all threads together the memory budget,
        ``brainalign.set_config(max_memory=...)``). On the CPU, chunks run in parallel
        threads (``torch.get_num_threads()`` of them, each single-threaded for the
        duration of the call).

    Returns
    -------
    similarity : xarray.DataArray, dims (spatial[, "time"][, model dims])
        The model similarity at every centre, with the data's coordinates along the spatial
        dim (so :func:`brainalign.loaders.fmri.to_image` works on voxel maps) and a
        ``patch_size`` coordinate (spatial units per patch). NaN where a patch's RDM is
        undefined (a constant pattern with ``correlation``). No spatial dim when
        ``radius=None``.

    Raises
    ------
    ValueError
        Bad radius, metric or method; fewer than 3 stimuli; NaN data; a constant model.
        Crossnobis: no run labels, fewer than 2 runs, a run missing a stimulus, ``noise``
        with units of zero residual variance inside ``mask``, ``temporal_radius``; ``noise``
        or ``runs`` with another metric.
    SchemaError
        Trial data (except for crossnobis, which needs it), missing coordinates, or dims
        other than stimulus (trial), spatial and time.
    StimulusAlignmentError
        When ``data`` and ``model_rdms`` hold different stimuli (naming them).
    brainalign._memory.MemoryBudgetError
        (a ``ValueError`` and a ``MemoryError``) Before the neighbourhoods or the map are
        allocated, when they or the smallest chunk (one patch) beside the data exceed the
        memory budget; the message gives the sizes and the budget.

    See Also
    --------
    brainalign.rsa.rdm, brainalign.rsa.compare

    Notes
    -----
    Neighbourhoods are kept as flat index arrays (CSR: row pointers and unit indices,
    int32 below 2**31 units): on a regular grid they are built from one sphere of integer
    offsets applied to chunks of centres through a lookup volume (a KD-tree for scattered
    positions), then decided exactly as described above; each chunk of centres is padded
    only when it is processed. The work memory of the chunks, the neighbourhoods and the
    map stay within the budget.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign import rsa
    >>> from brainalign.rsa._searchlight import searchlight
    >>> rng = np.random.default_rng(0)
    >>> data = xr.DataArray(
    ...     rng.normal(size=(6, 27)), dims=("stimulus", "voxel"),
    ...     coords={"stimulus": list("abcdef"), "x": ("voxel", np.arange(27) % 3 * 3.0),
    ...             "y": ("voxel", np.arange(27) // 3 % 3 * 3.0),
    ...             "z": ("voxel", np.arange(27) // 9 * 3.0)})
    >>> model = rsa.rdm(data.isel(voxel=slice(0, 9)))
    >>> sl = searchlight(data, model, radius=4.0)
    >>> sl.dims, int(sl.patch_size[13])
    (('voxel',), 7)
    """
    check_option("metric", metric, (*SEARCHLIGHT_METRICS, "crossnobis"))
    check_option("method", method, SEARCHLIGHT_METHODS)
    crossnobis = metric == "crossnobis"
    if noise is not None:
        if not crossnobis:
            raise ValueError(
                f"noise={noise!r} (per-patch noise normalisation) is used only by "
                f"metric='crossnobis'; got metric={metric!r}."
            )
        check_option("noise", noise, SEARCHLIGHT_NOISE)
    if runs is not None and not crossnobis:
        raise ValueError(f"runs= is used only by metric='crossnobis'; got metric={metric!r}.")
    if radius is not None:
        check_number("radius", radius, low=0, closed="neither")
    if temporal_radius is not None:
        check_number("temporal_radius", temporal_radius, low=0, integer=True)
    if batch_size is not None:
        check_number("batch_size", batch_size, low=1, integer=True)
    if not isinstance(data, xr.DataArray):
        raise TypeError(
            f"data must be an xarray.DataArray with a spatial dim {SPATIAL_DIMS} and its "
            f"coordinates, got {type(data).__name__}."
        )
    validate(data, name="data")
    if crossnobis:
        if (
            TRIAL not in data.dims
            or data.ndim != 2
            or not any(d in SPATIAL_DIMS for d in data.dims)
        ):
            raise SchemaError(
                "searchlight(metric='crossnobis') needs trial data with dims ('trial', one of "
                f"{SPATIAL_DIMS}), a 'stimulus' coordinate and a run per trial; data has dims "
                f"{tuple(data.dims)}."
            )
        if temporal_radius is not None:
            raise ValueError(
                "metric='crossnobis' has no temporal searchlight; got "
                f"temporal_radius={temporal_radius}."
            )
    elif TRIAL in data.dims:
        raise SchemaError(
            "searchlight() needs one pattern per stimulus but data has a 'trial' dim; average "
            "the trials first with brainalign.average_trials(data)."
        )
    sdims = [d for d in data.dims if d in SPATIAL_DIMS]
    extra = [d for d in data.dims if d not in (STIMULUS, TRIAL, "time", *SPATIAL_DIMS)]
    if len(sdims) != 1 or extra:
        raise SchemaError(
            f"data must have dims ('stimulus', one of {SPATIAL_DIMS}[, 'time']); it has "
            f"{tuple(data.dims)}. Select or stack other dims first."
        )
    sdim = sdims[0]
    has_time = "time" in data.dims
    if temporal_radius is not None and not has_time:
        raise SchemaError(
            f"temporal_radius={temporal_radius} needs a 'time' dim; data has dims "
            f"{tuple(data.dims)}."
        )
    if radius is None and temporal_radius is None:
        raise ValueError(
            "radius=None (one spatial patch) needs a temporal_radius; with neither, use "
            "brainalign.rsa.rdm and brainalign.rsa.compare on the whole array."
        )
    if radius is None and (centers is not None or adjacency is not None):
        given = "centers" if centers is not None else "adjacency"
        raise ValueError(f"{given} needs a spatial radius; got radius=None (with {given} given).")

    model = model_stack(model_rdms)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if crossnobis:
        stim_ids, cn_pats, cn_res, n_runs = _crossnobis_inputs(data, runs, sdim, dev)
        proxy = xr.DataArray(np.zeros(len(stim_ids)), dims=STIMULUS, coords={STIMULUS: stim_ids})
        proxy, model = align_stimuli(proxy, model, join="exact")
        n = len(stim_ids)
        n_sp, n_t = data.sizes[sdim], 1
    else:
        data, model = align_stimuli(data, model, join="exact")
        n = data.sizes[STIMULUS]
    if n < 3:
        raise ValueError(f"A searchlight needs at least 3 stimuli; data has {n}.")
    mvecs, mdims, mcoords = model_vectors(model, method)
    if crossnobis:
        x = None
        cn_pats, cn_res = _fit_range(dt, cn_pats, cn_res)
        pats_t = as_tensor(cn_pats, dev, dt)
        res_t = as_tensor(cn_res if noise is not None else cn_res[:, :0], dev, dt)
    else:
        da = data.transpose(sdim, *(["time"] if has_time else []), STIMULUS)
        values = np.asarray(da.values, dtype=float)
        check_finite(np.moveaxis(values, -1, 0), "data", labels=data[STIMULUS].values)
        if not has_time:
            values = values[:, None, :]
        n_sp, n_t = values.shape[:2]
        (values,) = _fit_range(dt, values)
        x = as_tensor(values, dev, dt)

    # spatial neighbourhoods
    allowed = np.arange(n_sp) if mask is None else _as_index(mask, n_sp, sdim, data, "mask")
    if allowed.size == 0:
        raise ValueError(f"mask selects no {sdim} (of {n_sp}).")
    if crossnobis and noise is not None:
        zero = allowed[(cn_res[allowed] ** 2).sum(1) <= 0]
        if zero.size:
            raise ValueError(
                f"{zero.size} {sdim}(s) have zero residual variance (e.g. index "
                f"{int(zero[0])}); their noise precision is undefined. Leave them out with "
                "mask=, or, with one trial per run x stimulus (no residuals), use noise=None."
            )
    budget = resolve_budget(None, dev)
    host_budget = budget if dev.type == "cpu" else resolve_budget(None, "cpu")
    if radius is None:
        centres = np.array([0])
        indptr, indices = np.array([0, allowed.size]), allowed
    else:
        centres = allowed if centers is None else _as_index(centers, n_sp, sdim, data, "centers")
        outside = np.setdiff1d(centres, allowed)
        if outside.size:
            raise ValueError(
                f"centers holds {outside.size} {sdim}(s) outside mask (e.g. index "
                f"{int(outside[0])}); centres must lie inside the mask."
            )
        if centres.size == 0:
            raise ValueError(f"centers selects no {sdim} (of {n_sp}).")
        if adjacency is not None:
            indptr, indices = _graph_csr(
                _adjacency_matrix(adjacency, data, sdim),
                allowed,
                centres,
                radius,
                budget=host_budget,
            )
        else:
            pos = _positions(data, sdim)
            plan = _ball_plan(pos, allowed, centres, radius, host_budget)
            counts = plan.counts
            # the flat neighbourhood arrays (at most the candidates) must fit the budget
            check_fits(
                8 * len(centres) + np.dtype(_index_dtype(n_sp)).itemsize * int(counts.sum()),
                f"searchlight: the neighbourhoods of {len(centres)} centres (up to "
                f"{int(counts.sum())} unit indices)",
                host_budget,
            )
            indptr, indices = _ball_csr(
                pos, allowed, centres, radius, budget=host_budget, plan=plan
            )
            del plan, counts
    sizes = np.diff(indptr)

    # temporal windows
    if temporal_radius is None:
        t_centres = None
        windows = np.arange(n_t)[None, :]
    else:
        if n_t < 2 * temporal_radius + 1:
            raise ValueError(
                f"temporal_radius={temporal_radius} needs at least {2 * temporal_radius + 1} "
                f"time samples; data has {n_t}."
            )
        t_centres = np.arange(temporal_radius, n_t - temporal_radius)
        windows = t_centres[:, None] + np.arange(-temporal_radius, temporal_radius + 1)

    models_t = as_tensor(scale_rows_pow2(mvecs, dt), dev, dt)  # scale-free methods: exact
    zmodels, models_t = prepare_models(models_t, method)
    iu = tuple(torch.triu_indices(n, n, offset=1, device=dev))
    similarity = metric in ("correlation", "cosine") and method in ("spearman", "pearson")
    n_pairs = n * (n - 1) // 2
    n_sc, n_tc = len(sizes), windows.shape[0]
    total = n_sc * n_tc
    k_max = max(int(sizes.max(initial=0)), 1)
    feat = k_max * windows.shape[1]
    width = torch.finfo(dt).bits // 8
    per = (3 * n * feat + 2 * n * n + 4 * n_pairs + 2 * mvecs.shape[0]) * width
    if crossnobis:
        per = (3 * k_max * (cn_pats.shape[1] + cn_res.shape[1]) + 4 * k_max * k_max) * width
    if zmodels is None:  # pairwise masks broadcast over the models
        per += 6 * mvecs.shape[0] * n_pairs * width
    per += 17 * k_max + 24  # the chunk's padded indices and mask (int64, bool) and rows
    out_bytes = total * mvecs.shape[0] * 8
    n_workers = torch.get_num_threads() if dev.type == "cpu" else 1
    # fixed: the output and the neighbourhoods (host), the data tensors (on the device)
    fixed_host = out_bytes + indptr.nbytes + indices.nbytes
    fixed_dev = (x.nbytes if x is not None else pats_t.nbytes + res_t.nbytes) + models_t.nbytes
    fixed = fixed_host + fixed_dev if dev.type == "cpu" else fixed_dev
    what = (
        f"searchlight: one patch of up to {k_max} {sdim}s x {windows.shape[1]} samples "
        f"and {n} stimuli ({format_bytes(per)} of work arrays), beside "
        f"{format_bytes(fixed)} of data, neighbourhoods and output,"
    )
    check_fits(fixed + per, what, budget)
    if dev.type != "cpu":
        check_fits(fixed_host, "searchlight: the output and neighbourhoods", host_budget)
    room = budget - fixed
    if batch_size is None:
        # cache-sized chunks, every worker thread's chunk within the budget
        fit = room // (per * (n_workers if total > 1 else 1))
        batch_size = int(min(64, max(1, _MEMORY_BUDGET // per), max(1, fit)))
    elif batch_size * per > room:
        check_fits(fixed + batch_size * per, f"{what} with batch_size={batch_size}", budget)
    n_workers = max(1, min(n_workers, room // (per * batch_size)))
    win_t = torch.as_tensor(windows, device=dev)
    # neg_riem_dist needs a positive definite data second moment; an RDM of F features of
    # these metrics (squared distances between F-dim points; correlation: centred, so F - 1
    # dims) has one of rank <= F - rank_drop, exactly singular below n - 1
    rank_drop = {"sqeuclidean": 0, "cosine": 0, "correlation": 1}.get(metric)
    if method != "neg_riem_dist" or crossnobis:
        rank_drop = None
    out = np.empty((total, mvecs.shape[0]), dtype=np.float64)
    starts = range(0, total, batch_size)

    def run_chunk(start: int) -> None:
        stop = min(start + batch_size, total)
        t = torch.arange(start, stop, device=dev) % n_tc
        idx, valid = pad_csr(indptr, indices, np.arange(start, stop) // n_tc)
        idx_t = torch.as_tensor(idx, device=dev)
        valid_t = torch.as_tensor(valid, device=dev)
        if crossnobis:
            vec, bad = patch_crossnobis_vectors(pats_t, res_t, idx_t, valid_t, n_runs, noise, iu)
        else:
            vec, bad = patch_rdm_vectors(
                x, idx_t, valid_t, win_t[t], metric, iu, similarity=similarity
            )
            if rank_drop is not None:
                # fewer features than the second moment's n - 1 dims: singular exactly,
                # whatever the rounding decides in the Cholesky test
                bad = bad | (valid_t.sum(1) * windows.shape[1] - rank_drop < n - 1)
        out[start:stop] = to_numpy(
            score_vectors(vec, bad, zmodels, models_t, method, similarity=similarity, n_stimuli=n)
        )

    if n_workers > 1 and len(starts) > 1:
        # On the CPU, chunks run in parallel threads (torch and numpy's sort release the
        # GIL), each single-threaded: coarse-grained parallelism that keeps its speed on a
        # busy machine, where fine-grained intra-op threads stall on each other.
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with concurrent.futures.ThreadPoolExecutor(n_workers) as pool:
                for _ in progress(pool.map(run_chunk, starts), "searchlight", total=len(starts)):
                    pass
        finally:
            torch.set_num_threads(previous)
    else:
        for start in progress(starts, "searchlight", total=len(starts)):
            run_chunk(start)

    # labels
    mshape = tuple(model.sizes[d] for d in mdims)
    res = out.reshape((n_sc, n_tc, *mshape))
    dims: list[str] = []
    coords: dict[str, Any] = dict(mcoords)
    if radius is not None:
        dims.append(sdim)
        for cname, coord in data.coords.items():
            if coord.dims == (sdim,):
                coords[cname] = (sdim, np.asarray(coord.values)[centres])
        coords["patch_size"] = (sdim, sizes)
    else:
        res = res[0]
    if t_centres is not None:
        dims.append("time")
        if "time" in data.coords:
            coords["time"] = np.asarray(data["time"].values)[t_centres]
    elif radius is not None:
        res = res[:, 0]
    attrs = {k: data.attrs[k] for k in ("modality", "subject", "space", "roi") if k in data.attrs}
    for key in ("sfreq", "grid_shape", "affine"):
        if key in data.attrs:
            attrs[key] = data.attrs[key]
    attrs.update(
        {
            "kind": "searchlight",
            "metric": metric,
            "method": method,
            "radius": -1.0 if radius is None else float(radius),
            "temporal_radius": -1 if temporal_radius is None else int(temporal_radius),
            **({"noise": "identity" if noise is None else noise} if crossnobis else {}),
            "brainalign_version": __version__,
        }
    )
    return xr.DataArray(res, dims=(*dims, *mdims), coords=coords, attrs=attrs, name=method)
