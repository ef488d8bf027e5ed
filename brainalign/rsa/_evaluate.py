"""Model evaluation: noise ceilings and bootstrap inference, all samples in one batch.

Semantics follow rsatoolbox 0.3.2 (``eval_fixed``, ``eval_bootstrap_rdm``,
``eval_bootstrap_pattern``, ``eval_dual_bootstrap``, ``boot_noise_ceiling``, ``t_tests``),
with one documented correction (see ``semantics`` in :func:`evaluate`).

Inside, a bootstrap sample is a pair of count vectors: how often each subject (``k``) and each
stimulus (``c``) was drawn. Resampling stimuli with replacement repeats RDM entries; rsatoolbox
drops the pairs of two copies of one stimulus (they would be trivially zero) and keeps every
other repeated pair. For the Pearson and cosine comparisons this is a weighted comparison over
the original pairs with weights ``c_i * c_j``, so all samples reduce to a few GEMMs of the
weights with the RDM vectors (weighted moments; see ``_Linear.weighted``). Other methods
resample the vectors explicitly (index gathers with NaN at the dropped pairs), still batched
over samples; rank methods then sort every resampled vector, as rsatoolbox does.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from scipy import stats

from brainalign._checks import (
    SchemaError,
    StimulusAlignmentError,
    _fmt_list,
    check_min_stimuli,
    check_number,
    check_option,
)
from brainalign._config import get_config
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._logging import warn
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa import _compare, _compare_kernels
from brainalign.rsa._kernels import rankdata
from brainalign.rsa._rdm import as_rdm

Bootstrap = Literal["none", "subject", "stimulus", "both"]
BOOTSTRAPS = ("none", "subject", "stimulus", "both")
SEMANTICS = ("brainalign", "rsatoolbox")
_LINEAR = ("pearson", "cosine")  # comparisons with a sufficient-statistics fast path
_POOL_ZSCORE = ("pearson", "whitened_pearson")
_POOL_RMS = ("cosine", "whitened_cosine")
_POOL_RANK = ("spearman", "rho_a", "kendall_tau_a")
_UNCENTERED = ("cosine", "whitened_cosine", "bures")  # undefined for an all-zero RDM
_MEMORY_BUDGET = 2**28  # bytes per chunk of bootstrap samples
_RESAMPLING = ("both", "subject", "stimulus")
#: The population each bootstrap's variances (and so the p-values of model_tests) generalise to.
GENERALISES_TO = {
    "none": "subjects (stimuli fixed)",
    "subject": "subjects (stimuli fixed)",
    "stimulus": "stimuli (subjects fixed)",
    "both": "subjects and stimuli",
}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _stack(x: Any, name: str, dim: str) -> xr.DataArray:
    """Return ``x`` as RDMs with dims ``(dim, stimulus_a, stimulus_b)``.

    A dict, or a list or tuple holding labeled RDMs, is aligned by stimulus id to its first
    RDM (:func:`brainalign.align_stimuli`, ``join="exact"``), never stacked by position.
    """
    labeled_list = isinstance(x, list | tuple) and (
        not x or any(isinstance(v, xr.DataArray) for v in x)
    )
    if isinstance(x, dict) or labeled_list:
        kind = "dict" if isinstance(x, dict) else type(x).__name__
        if not x:
            raise ValueError(f"{name} is an empty {kind}; it needs at least one RDM.")
        keys = list(x) if isinstance(x, dict) else list(range(len(x)))
        values = list(x.values()) if isinstance(x, dict) else list(x)
        rdms = [as_rdm(v, f"{name}[{k!r}]") for k, v in zip(keys, values, strict=True)]
        for k, r in zip(keys, rdms, strict=True):
            if set(r.dims) != set(RDM_DIMS):
                raise SchemaError(
                    f"{name} as a {kind} must hold single RDMs; {name}[{k!r}] has dims "
                    f"{tuple(r.dims)}."
                )
        try:
            rdms = list(align_stimuli(*rdms, join="exact"))
        except StimulusAlignmentError as err:  # name the entries, not arrays[i]
            msg = str(err)
            for i, k in reversed(list(enumerate(keys))):
                msg = msg.replace(f"arrays[{i}]", f"{name}[{k!r}]")
            raise StimulusAlignmentError(msg) from None
        # Only the stimulus coordinates survive: per-RDM scalar coords or attrs may differ.
        ids = rdms[0][RDM_DIMS[0]].values
        out = xr.DataArray(
            np.stack([np.asarray(r.transpose(*RDM_DIMS).values) for r in rdms]),
            dims=(dim, *RDM_DIMS),
            coords={
                dim: [str(k) for k in keys] if isinstance(x, dict) else np.arange(len(keys)),
                RDM_DIMS[0]: ids,
                RDM_DIMS[1]: ids,
            },
            attrs={"kind": "rdm"},
        )
        return out
    if not isinstance(x, xr.DataArray):
        arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=float)
        if arr.ndim == 3:
            if arr.shape[1] != arr.shape[2]:
                raise SchemaError(
                    f"{name} as a plain array must have shape ({dim}s, n, n), got {arr.shape}."
                )
            i, j = _triu(arr.shape[1])
            up, lo = arr[:, i, j], arr[:, j, i]
            both = np.isfinite(up) & np.isfinite(lo)
            asym = np.abs(np.where(both, up - lo, 0.0)).max(initial=0.0)
            if asym > 1e-8 * max(1.0, np.abs(np.where(both, up, 0.0)).max(initial=0.0)):
                raise ValueError(f"{name} must hold symmetric RDMs; max |d - d.T| = {asym:.3g}.")
            ids = np.array([str(i) for i in range(arr.shape[1])])
            return xr.DataArray(
                arr,
                dims=(dim, *RDM_DIMS),
                coords={dim: np.arange(arr.shape[0]), RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
                attrs={"kind": "rdm"},
            )
    r = as_rdm(x, name)
    extra = [d for d in r.dims if d not in RDM_DIMS]
    if not extra:
        r = r.expand_dims(dim)
        extra = [dim]
    if len(extra) > 1:
        raise SchemaError(
            f"{name} must hold RDMs along one dim besides {RDM_DIMS} (the {dim}s); it has "
            f"dims {tuple(r.dims)}. Select or stack the others first."
        )
    r = r.transpose(extra[0], *RDM_DIMS)
    if extra[0] != dim:
        if dim in r.coords:
            r = r.drop_vars(dim)
        r = r.rename({extra[0]: dim})
    if dim not in r.coords:
        r = r.assign_coords({dim: np.arange(r.sizes[dim])})
    return r


@functools.lru_cache(maxsize=8)
def _resolve_resample(resample: Any, bootstrap: Any, func: str) -> str:
    """Return the resampling option, accepting the deprecated alias ``bootstrap=``."""
    if bootstrap is not None:
        if resample != "none" and resample != bootstrap:
            raise ValueError(
                f"{func}() got resample={resample!r} and its deprecated alias "
                f"bootstrap={bootstrap!r}; pass only resample=."
            )
        warn(
            f"{func}(bootstrap={bootstrap!r}) is deprecated: the option is now named "
            f"resample, as in rsa.test and rsa.bootstrap; use {func}(resample={bootstrap!r}).",
            FutureWarning,
        )
        resample = bootstrap
    check_option("resample", resample, BOOTSTRAPS)
    return resample


def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def _check_vectors(sq: np.ndarray, name: str, method: str, labels: np.ndarray) -> np.ndarray:
    """Return the upper triangles; raise for fewer than 3 finite pairs or constant RDMs."""
    i, j = _triu(sq.shape[-1])
    v = sq[:, i, j]
    finite = np.isfinite(v)
    n_valid = finite.sum(-1)
    if (n_valid < 3).any():
        bad = labels[n_valid < 3].tolist()
        raise ValueError(
            f"{name} has RDMs with fewer than 3 finite stimulus pairs ({name} {bad}); "
            "comparisons need at least 3. Check for NaN entries."
        )
    vmax = np.where(finite, v, -np.inf).max(-1)
    vmin = np.where(finite, v, np.inf).min(-1)
    if method in (*_UNCENTERED, "neg_riem_dist"):  # a constant RDM is a valid neg_riem_dist model
        bad_rows = (vmax == 0) & (vmin == 0)
        what = "all zero"
    else:
        bad_rows = vmax == vmin
        what = "constant"
    if bad_rows.any():
        raise ValueError(
            f"{name} has {int(bad_rows.sum())} RDM(s) that are {what} over their finite pairs "
            f"({_fmt_list(labels[bad_rows].tolist())}), so their {method} comparison is "
            "undefined."
        )
    return v


def _check_indices(indices: Any, bootstrap: str, n_subjects: int, n_stimuli: int) -> dict:
    need = {"subject": ("subject", "both"), "stimulus": ("stimulus", "both")}
    if not isinstance(indices, dict):
        raise TypeError(
            "indices must be a dict with keys 'subject' and/or 'stimulus', got "
            f"{type(indices).__name__}."
        )
    out = {}
    n_boot = None
    for key, size in (("subject", n_subjects), ("stimulus", n_stimuli)):
        wanted = bootstrap in need[key]
        if key not in indices:
            if wanted:
                raise ValueError(
                    f"indices must hold a {key!r} array for resample={bootstrap!r}; got keys "
                    f"{sorted(indices)}."
                )
            continue
        if not wanted:
            raise ValueError(
                f"indices holds a {key!r} array but resample={bootstrap!r} does not resample "
                f"{key}s."
            )
        arr = np.asarray(indices[key])
        if arr.ndim != 2 or arr.shape[1] != size or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"indices[{key!r}] must be an integer array of shape (n_bootstrap, {size}), got "
                f"dtype {arr.dtype} and shape {arr.shape}."
            )
        if arr.size and (arr.min() < 0 or arr.max() >= size):
            raise ValueError(
                f"indices[{key!r}] must lie in [0, {size - 1}], got values in "
                f"[{arr.min()}, {arr.max()}]."
            )
        if n_boot is not None and arr.shape[0] != n_boot:
            raise ValueError(
                f"indices['subject'] and indices['stimulus'] must have the same number of "
                f"rows, got {n_boot} and {arr.shape[0]}."
            )
        n_boot = arr.shape[0]
        if n_boot < 1:
            raise ValueError(f"indices[{key!r}] has no rows; it needs at least one sample.")
        out[key] = arr.astype(np.int64)
    return out


# --------------------------------------------------------------------------------------------
# Kernels (pure torch; no labels, no validation)
# --------------------------------------------------------------------------------------------


def _counts(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Draw counts ``(B, size)`` from bootstrap index rows ``(B, m)``."""
    out = torch.zeros(idx.shape[0], size, dtype=torch.float64, device=idx.device)
    return out.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))


def _nc_from_gram(g: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Leave-one-subject-out noise ceilings from the subjects' similarity matrices.

    ``g`` (B, S, S) or (S, S) holds the comparison of every pair of subject RDMs (Pearson or
    cosine, weighted as the sample weights pairs), ``k`` (B, S) the subject counts. The
    pooled RDM is the count-weighted mean of the standardised RDMs, so its comparison with
    subject ``s`` is ``(G k)_s / sqrt(k' G k)``; leaving ``s`` out sets ``k_s = 0``.
    """
    gk = k @ g if g.dim() == 2 else torch.einsum("bst,bt->bs", g, k)  # g is symmetric
    q = (k * gk).sum(-1, keepdim=True)
    upper_s = gk / q.sqrt()
    gss = torch.diagonal(g, dim1=-2, dim2=-1)
    gk_loo = gk - k * gss
    q_loo = q - 2 * k * gk + k * k * gss
    return _nc_reduce(upper_s, gk_loo / q_loo.clamp_min(1e-300).sqrt(), k)


def _nc_reduce(
    upper_s: torch.Tensor, lower_s: torch.Tensor, k: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average per-subject ceiling terms (B, S) over the subjects drawn (rsatoolbox)."""
    present = k > 0
    single = present.sum(-1, keepdim=True) == 1  # rsatoolbox: train on all when one group
    lower_s = torch.where(single, upper_s, lower_s)
    w = present.to(upper_s.dtype)
    n_present = w.sum(-1)
    lower = (torch.where(present, lower_s, 0.0) * w).sum(-1) / n_present
    upper = (torch.where(present, upper_s, 0.0) * w).sum(-1) / n_present
    return lower, upper


def _precondition(v: np.ndarray, method: str) -> np.ndarray:
    """Centre and scale vectors (Pearson) or scale them (cosine): results are invariant."""
    if method == "pearson":
        v = v - v.mean(-1, keepdims=True)
    scale = np.sqrt((v * v).mean(-1, keepdims=True))
    return v / np.where(scale > 0, scale, 1.0)


class _Linear:
    """Pearson / cosine evaluations and ceilings of pair-weighted RDM vectors by GEMMs.

    The vectors are preconditioned on the host (numpy, float64: small, single-threaded).
    """

    def __init__(self, dv: np.ndarray, mv: np.ndarray, method: str, dev, dt) -> None:
        self.method = method
        self.s, self.m = dv.shape[0], mv.shape[0]
        dvp, mvp = _precondition(dv, method), _precondition(mv, method)
        p = dv.shape[-1]  # preconditioned vectors have unit RMS (and zero mean)
        self._unweighted = (
            as_tensor((dvp @ mvp.T) / p, dev, dt),
            as_tensor((dvp @ dvp.T) / p, dev, dt),
        )
        self._host = (dvp, mvp)
        self._dev, self._dt = dev, dt
        self._moments: torch.Tensor | None = None
        self._both: torch.Tensor | None = None
        self._dv: torch.Tensor | None = None

    def unweighted(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return evaluations (S, M) and subject similarities (S, S) over all pairs."""
        return self._unweighted

    def _device_arrays(self) -> None:
        dvp, mvp = self._host
        self._dv = as_tensor(dvp, self._dev, self._dt)
        both = np.concatenate([dvp, mvp])
        self._both = as_tensor(both.T, self._dev, self._dt)
        self._moments = as_tensor(np.concatenate([both, both * both]).T, self._dev, self._dt)

    def weighted(
        self,
        counts: torch.Tensor,
        k: torch.Tensor,
        pairs: tuple[torch.Tensor, torch.Tensor],
        bufs: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean evaluations (B, M) and noise ceilings (B,) x 2 for stimulus counts (B, n).

        Pair ``(i, j)`` weighs ``c_i * c_j``; ``bufs`` are three reusable ``(>= B, P)``
        buffers (fresh large tensors for every chunk cost page faults, not arithmetic).

        Only subject-weighted sums are needed: with ``a_s = k_s / sd_s`` (``sd`` the weighted
        standard deviation, or RMS for cosine) and the pooled vector ``z = sum_s a_s x_s``,
        the mean evaluation of model ``m`` is ``cov(z, y_m) / sd_m / sum(k)``, and the
        ceiling terms are ``(G k)_s = cov(z, x_s) / sd_s`` and ``k' G k = var(z)`` (``cov``
        weighted; uncentred for cosine). Three GEMMs over the pairs instead of ``S^2``.
        """
        centred = self.method == "pearson"
        s, b = self.s, counts.shape[0]
        w, wz, z = (x[:b] for x in bufs)
        torch.index_select(counts, 1, pairs[0], out=w)
        torch.index_select(counts, 1, pairs[1], out=wz)
        w.mul_(wz)
        sw = w.sum(-1, keepdim=True)
        if self._moments is None:
            self._device_arrays()
        st = (w @ self._moments) / sw  # (B, 2S + 2M): weighted first and second moments
        mean, sq = st[:, : s + self.m], st[:, s + self.m :]
        if centred:
            sd = torch.sqrt(sq - mean * mean)
        else:
            sd, mean = torch.sqrt(sq), torch.zeros_like(mean)
        mx, sdx, sdy = mean[:, :s], sd[:, :s], sd[:, s:]
        coef = k / sdx
        torch.matmul(coef, self._dv, out=z)  # (B, P) pooled vector (up to a constant shift)
        mz = (coef * mx).sum(-1, keepdim=True)
        torch.mul(w, z, out=wz)
        cz = (wz @ self._both) / sw - mz * mean  # cov(z, x_s), cov(z, y_m)
        vz = torch.einsum("bp,bp->b", wz, z) / sw[:, 0] - mz[:, 0] ** 2
        ev = cz[:, s:] / sdy / k.sum(-1, keepdim=True)
        gk = cz[:, :s] / sdx
        q = vz[:, None]
        upper_s = gk / q.sqrt()
        gk_loo = gk - k
        q_loo = q - 2 * k * gk + k * k
        lo, up = _nc_reduce(upper_s, gk_loo / q_loo.clamp_min(1e-300).sqrt(), k)
        return ev, lo, up


def _rank(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average-tie ranks over ``mask`` (the compare module's fastest kernel for the device)."""
    ranks = getattr(_compare_kernels, "_ranks", rankdata)
    return ranks(v, mask.expand_as(v))


def _unit_centred(r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Centre ``r`` (B, K, P) over ``mask`` (B, 1, P), zero elsewhere, and scale to unit norm."""
    w = mask.to(r.dtype)
    c = (r - (r * w).sum(-1, keepdim=True) / w.sum(-1, keepdim=True)) * w
    return c / torch.linalg.vector_norm(c, dim=-1, keepdim=True)


def _cmp(a: torch.Tensor, b: torch.Tensor, method: str, n: int) -> torch.Tensor:
    """Compare broadcast RDM vectors with :func:`brainalign.rsa.compare`'s kernels."""
    return _compare_kernels.compare_vectors(a, b, method, n_stimuli=n)


def _pool_transform(v: torch.Tensor, method: str) -> torch.Tensor:
    """Apply the per-RDM transform of rsatoolbox ``pool_rdm`` (NaN kept)."""
    mask = torch.isfinite(v)
    w = mask.to(v.dtype)
    n = w.sum(-1, keepdim=True)
    v0 = torch.where(mask, v, torch.zeros_like(v))
    if method in _POOL_ZSCORE:
        mean = v0.sum(-1, keepdim=True) / n
        c = torch.where(mask, v0 - mean, torch.zeros_like(v))
        sd = torch.sqrt((c * c).sum(-1, keepdim=True) / n)
        out = c / sd
    elif method in _POOL_RMS:
        out = v0 / torch.sqrt((v0 * v0).sum(-1, keepdim=True) / n)
    elif method in _POOL_RANK:
        out = _rank(v0, mask)
    else:  # methods rsatoolbox pools by a plain mean (euclid, neg_riem_dist, ...)
        out = v0
    return torch.where(mask, out, torch.full_like(out, float("nan")))


def _pooled_mean(t: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Count-weighted mean over subjects (B, P) and leave-one-out means (B, S, P), NaN kept."""
    bad = torch.isnan(t)
    t0 = torch.where(bad, torch.zeros_like(t), t)
    present = (k > 0).to(t.dtype)
    ksum = k.sum(-1)
    tot = torch.einsum("bs,bsp->bp", k, t0)
    pooled = tot / ksum[:, None]
    n_bad = torch.einsum("bs,bsp->bp", present, bad.to(t.dtype))
    pooled = pooled.masked_fill(n_bad > 0, float("nan"))
    rest = ksum[:, None] - k
    single = (present.sum(-1, keepdim=True) == 1).expand_as(k)
    loo = (tot[:, None, :] - k[..., None] * t0) / torch.where(rest > 0, rest, 1.0)[..., None]
    loo_bad = n_bad[:, None, :] - present[..., None] * bad.to(t.dtype) > 0
    loo = loo.masked_fill(loo_bad, float("nan"))
    loo = torch.where(single[..., None], pooled[:, None, :], loo)
    return pooled, loo


def _generic_chunk(
    dsq: torch.Tensor,
    msq: torch.Tensor,
    dv: torch.Tensor,
    mv: torch.Tensor,
    idx: torch.Tensor | None,
    k: torch.Tensor,
    method: str,
    pairs: tuple[torch.Tensor, torch.Tensor],
    finite: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-subject evaluations (B, S, M) and noise-ceiling terms (B, S) x 2, explicitly."""
    bsz = k.shape[0]
    if idx is None:
        v, u = dv[None], mv[None]
    else:
        a, b = idx[:, pairs[0]], idx[:, pairs[1]]  # (B, P) resampled stimulus pairs
        same = (a == b)[:, None, :]
        nan = float("nan")
        v = dsq[:, a, b].transpose(0, 1).masked_fill(same, nan)
        u = msq[:, a, b].transpose(0, 1).masked_fill(same, nan)
    n = dsq.shape[-1]
    shared = method == "spearman" and finite  # one mask for all vectors: rank each once
    if shared:
        mask = torch.isfinite(v[:, :1])
        cv, cu = _unit_centred(_rank(v, mask), mask), _unit_centred(_rank(u, mask), mask)
        e = cv @ cu.transpose(-1, -2)
    elif method == "neg_riem_dist":  # not symmetric: model first (rsatoolbox compare(model, data))
        e = _cmp(u[:, None, :, :], v[:, :, None, :], method, n)
    else:
        e = _cmp(v[:, :, None, :], u[:, None, :, :], method, n)
    t = _pool_transform(v, method)
    if idx is None:  # the same vectors for every sample
        e, v, t = (x.expand(bsz, -1, -1) for x in (e, v, t))
        if shared:
            cv, mask = cv.expand(bsz, -1, -1), mask.expand(bsz, -1, -1)
    pooled, loo = _pooled_mean(t, k.to(v.dtype))
    if shared:
        cp = _unit_centred(_rank(torch.nan_to_num(pooled)[:, None], mask), mask)
        upper = (cp * cv).sum(-1)
        lower = (_unit_centred(_rank(torch.nan_to_num(loo), mask), mask) * cv).sum(-1)
    else:
        upper = _cmp(pooled[:, None, :], v, method, n)
        lower = _cmp(loo, v, method, n)
    return e, lower, upper


def _reduce(e: torch.Tensor, lower_s: torch.Tensor, upper_s: torch.Tensor, k: torch.Tensor):
    k = k.to(e.dtype)
    ev = torch.einsum("bs,bsm->bm", k, e) / k.sum(-1, keepdim=True)
    present = k > 0
    w = present.to(e.dtype)
    lo = torch.where(present, lower_s, 0.0).mul(w).sum(-1) / w.sum(-1)
    up = torch.where(present, upper_s, 0.0).mul(w).sum(-1) / w.sum(-1)
    return ev, lo, up


class _Engine:
    """Evaluations and noise ceilings for batches of (subject counts, stimulus indices)."""

    def __init__(
        self,
        d: np.ndarray,
        m: np.ndarray,
        method: str,
        dev: torch.device,
        dt: torch.dtype,
        vectors: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.n = d.shape[-1]
        self.s, self.nm = d.shape[0], m.shape[0]
        self.method = method
        i, j = _triu(self.n)
        self.p = len(i)
        self.dev, self.dt = dev, dt
        self._d, self._m = d, m
        self._sq: tuple[torch.Tensor, torch.Tensor] | None = None
        dv, mv = (d[:, i, j], m[:, i, j]) if vectors is None else vectors
        self.dv = as_tensor(dv, dev, dt)
        self.mv = as_tensor(mv, dev, dt)
        self.pairs = (torch.from_numpy(i.copy()).to(dev), torch.from_numpy(j.copy()).to(dev))
        self.finite = bool(np.isfinite(dv).all() and np.isfinite(mv).all())
        self.linear = method in _LINEAR and self.finite
        self._lin = _Linear(dv, mv, method, dev, dt) if self.linear else None

    @property
    def dsq(self) -> torch.Tensor:
        """The square data RDMs on the device (for explicit resampling only)."""
        return self._squares()[0]

    @property
    def msq(self) -> torch.Tensor:
        """The square model RDMs on the device (for explicit resampling only)."""
        return self._squares()[1]

    def _squares(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._sq is None:
            self._sq = (
                as_tensor(self._d, self.dev, self.dt),
                as_tensor(self._m, self.dev, self.dt),
            )
        return self._sq

    def per_subject(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return evaluations (S, M) and the noise ceiling on the full data."""
        k = torch.ones(1, self.s, dtype=self.dt, device=self.dev)
        if self.linear:
            e, g = self._lin.unweighted()
            lo, up = _nc_from_gram(g, k)
            return e, lo, up
        e, lo_s, up_s = _generic_chunk(
            self.dsq, self.msq, self.dv, self.mv, None, k, self.method, self.pairs, self.finite
        )
        _, lo, up = _reduce(e, lo_s, up_s, k)
        return e[0], lo, up

    def _chunk_size(self) -> int:
        if self.linear:  # samples per reusable 16 MiB (chunk, P) buffer: ~100 at 200 stimuli
            return max(1, 2**24 // (self.p * 8))
        per = (self.s * self.nm + 6 * self.s + 4 * self.nm) * self.p * 8 * 2
        return max(1, _MEMORY_BUDGET // per)

    def run(self, k: torch.Tensor, idx: torch.Tensor | None):
        """Mean evaluations (B, M), noise ceilings (B,) x 2 and validity (B,) per sample."""
        b = k.shape[0]
        k = k.to(self.dt)
        if idx is None and self.linear:  # subject resampling only: closed form, no chunks
            e, g = self._lin.unweighted()
            ev = (k @ e) / k.sum(-1, keepdim=True)
            lo, up = _nc_from_gram(g, k)
            return ev, lo, up, torch.ones(b, dtype=torch.bool, device=self.dev)
        out_e, out_lo, out_up, out_ok = [], [], [], []
        step = min(b, self._chunk_size())
        if self.linear:
            bufs = [torch.empty(step, self.p, dtype=self.dt, device=self.dev) for _ in range(3)]
        for start in range(0, b, step):
            kc = k[start : start + step]
            ic = None if idx is None else idx[start : start + step]
            if ic is not None:
                counts = _counts(ic, self.n)
                ok = (counts > 0).sum(-1) >= 3
            else:
                ok = torch.ones(kc.shape[0], dtype=torch.bool, device=self.dev)
            if self.linear:
                ev, lo, up = self._lin.weighted(counts.to(self.dt), kc, self.pairs, bufs)
            else:
                # rsatoolbox sorts the selection; the order only matters for ties in ranks
                ic_sorted = None if ic is None else torch.sort(ic, dim=-1).values
                e, lo_s, up_s = _generic_chunk(
                    self.dsq, self.msq, self.dv, self.mv, ic_sorted, kc, self.method,
                    self.pairs, self.finite,
                )  # fmt: skip
                ev, lo, up = _reduce(e, lo_s, up_s, kc)
            nan = float("nan")
            out_e.append(ev.masked_fill(~ok[:, None], nan))
            out_lo.append(lo.masked_fill(~ok, nan))
            out_up.append(up.masked_fill(~ok, nan))
            out_ok.append(ok)
        return torch.cat(out_e), torch.cat(out_lo), torch.cat(out_up), torch.cat(out_ok)


# --------------------------------------------------------------------------------------------
# Variances (rsatoolbox ``extract_variances``) on the host, in float64
# --------------------------------------------------------------------------------------------


def _correct(v: np.ndarray, n: int | None) -> np.ndarray:
    return v if n is None else v * (n / (n - 1))


def _extract(cov: np.ndarray, n_models: int, n: int | None):
    """Model, pairwise-difference and model-minus-ceiling variances from one covariance."""
    with_nc = cov.shape[-1] != n_models
    cm = cov[..., :n_models, :n_models]
    var = np.diagonal(cm, axis1=-2, axis2=-1)
    diff = var[..., :, None] + var[..., None, :] - 2 * cm
    if with_nc:
        cnc = cov[..., :n_models, n_models:]
        vnc = np.diagonal(cov[..., n_models:, n_models:], axis1=-2, axis2=-1)
        nc_var = var[..., :, None] - 2 * cnc + vnc[..., None, :]
    else:
        nc_var = np.stack([var, var], axis=-1)
    return _correct(var, n), _correct(diff, n), _correct(nc_var, n)


def _dual(v: np.ndarray, n_rdm: int, n_pattern: int) -> np.ndarray:
    """Combine (both, subject, stimulus) variances as rsatoolbox's dual bootstrap."""
    a = n_rdm / (n_rdm - 1)
    b = n_pattern / (n_pattern - 1)
    out = a * v[1] + b * v[2] - a * b * (v[0] - v[1] - v[2])
    out = np.maximum(np.maximum(out, a * v[1]), b * v[2])
    return np.minimum(out, v[0])


def _cov(x: np.ndarray) -> np.ndarray:
    """Covariance of the columns of ``x`` (samples in rows), ddof 1 (as ``np.cov(x.T)``)."""
    x = x - x.mean(0, keepdims=True)
    return (x.T @ x) / (x.shape[0] - 1)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@fill_doc
def evaluate(
    data_rdms: Any,
    model_rdms: Any,
    method: str = "spearman",
    *,
    resample: Bootstrap = "none",
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int | None = None,
    indices: dict[str, Any] | None = None,
    semantics: Literal["brainalign", "rsatoolbox"] = "brainalign",
    device: str | torch.device | None = None,
    dtype: str | None = None,
    bootstrap: Bootstrap | None = None,
) -> xr.Dataset:
    """Evaluate fixed model RDMs against the data RDMs of several subjects.

    Each model RDM is compared with each subject's data RDM (after aligning stimuli by id);
    the noise ceiling brackets the best possible mean evaluation: its upper bound compares
    each subject with the pooled RDM of all subjects, its lower bound with the pooled RDM of
    the other subjects (leave one subject out), as rsatoolbox ``boot_noise_ceiling``. Pooling
    standardises each RDM as the comparison needs (z-scores for Pearson, unit RMS for cosine,
    ranks for rank correlations) and averages.

    With a bootstrap, all samples are evaluated in one batched computation on ``device``:

    - ``"subject"``: resample subjects with replacement (rsatoolbox ``eval_bootstrap_rdm``);
    - ``"stimulus"``: resample stimuli with replacement (``eval_bootstrap_pattern``). Pairs of
      two copies of one stimulus are dropped and other repeated pairs kept, as rsatoolbox
      does; samples with fewer than 3 distinct stimuli are invalid (NaN);
    - ``"both"``: rsatoolbox ``eval_dual_bootstrap`` (without cross-validation): each sample
      draws subjects and stimuli once and is evaluated with both resamplings, subjects only
      and stimuli only; the variances combine the three with rsatoolbox's small-sample
      correction.

    **Which population the variances generalise to.** The variances (and so the p-values
    of :func:`model_tests` and :func:`test`) reflect only what is resampled. Without a
    bootstrap or with ``"subject"`` they generalise to new *subjects* seeing these same
    stimuli. If the stimuli are themselves a sample (of images, words, sounds) and the
    claim is about the population of stimuli, the variances are too small and the tests
    liberal: with brain and models independent, 10 stimuli drawn afresh and 8 subjects,
    brainalign's calibration (``tests/stats/cases_rsa.py``, docs/statistics.md) rejects 17 %
    of tests against zero and 25 % of pairwise comparisons at alpha = 0.05 (the excess grows
    with the share of RDM structure that subjects have in common). With fixed stimuli the
    same tests hold their size approximately (5.6 % and 6.0 %: a t-test on 8 subjects).
    ``"stimulus"`` generalises to new stimuli for these subjects; ``"both"`` to new subjects
    and new stimuli, and is the one to use when both are samples. Both are conservative
    with few stimuli (0-1 % at alpha = 0.05 in the
    same calibration): the stimulus bootstrap overestimates the variance. The result's
    attr ``generalises_to`` says which population applies (``"subjects (stimuli fixed)"``,
    ``"stimuli (subjects fixed)"`` or ``"subjects and stimuli"``).

    Every input is aligned by stimulus id, never by position: a dict or a list of labeled
    RDMs is aligned to its first RDM, and the models to the data; different id sets raise a
    :class:`~brainalign.StimulusAlignmentError` naming the missing and extra ids.

    Parameters
    ----------
    data_rdms : xarray.DataArray, dims (subject, "stimulus_a", "stimulus_b")
        One data RDM per subject, along one extra dim of any name (returned as
        ``subject``). Also a dict ``{subject: rdm}`` or a list of labeled RDMs (aligned by
        stimulus id), or an array of shape ``(n_subjects, n, n)``.
    model_rdms : xarray.DataArray, dims (model, "stimulus_a", "stimulus_b")
        The model RDMs along one extra dim (returned as ``model``), or a single RDM, a dict
        ``{name: rdm}`` or a list of labeled RDMs (aligned by stimulus id), or an array of
        shape ``(n_models, n, n)``.
    method : str
        A comparison of :func:`brainalign.rsa.compare` (``"spearman"``, ``"pearson"``,
        ``"cosine"``, ``"rho_a"``, ``"kendall_tau_a"``, the whitened ones...). With complete
        RDMs, ``"pearson"`` and ``"cosine"`` reduce every sample to weighted moments (a few
        GEMMs) and are by far the fastest; the others resample the vectors explicitly and
        the rank methods sort every resampled vector, as rsatoolbox does (batched, but
        bound by the sorts). ``"bures"`` and ``"neg_riem_dist"`` need complete RDMs, so no
        stimulus resampling; ``"neg_riem_dist"`` fits each model to each subject's RDM (the
        model first, as rsatoolbox's ``compare(model, data)``; = ``eval_fixed`` to 1e-8) and
        pools the subjects' RDMs by a plain mean, as rsatoolbox ``pool_rdm``.
    resample : {"none", "subject", "stimulus", "both"}
        What the bootstrap resamples (the same option as in :func:`test` and
        :func:`bootstrap`).
    n_bootstrap : int
        Number of bootstrap samples (ignored with ``resample="none"`` or ``indices``).
    ci : float
        Coverage of the percentile intervals ``ci_lower`` / ``ci_upper`` returned with a
        bootstrap, in (0, 1).
    seed : int, optional
        Seed of the draws (default: the configured seed); the same seed gives the same
        samples on every device.
    indices : dict, optional
        Explicit draws instead of random ones: ``{"subject": (n_bootstrap, n_subjects)}``
        and/or ``{"stimulus": (n_bootstrap, n_stimuli)}`` integer positions, as the
        bootstrap needs (for example rsatoolbox's own draws, to reproduce its results).
        Stimulus positions refer to the stimulus order of the (first) data RDM, to which
        every other RDM is aligned.
    semantics : {"brainalign", "rsatoolbox"}
        ``"rsatoolbox"`` reproduces a defect of rsatoolbox 0.3.2's ``eval_bootstrap_rdm``,
        which replaces its covariance with one of the model evaluations only, so the
        variances of the differences from the noise ceiling ignore the ceiling's own
        variance and covariance. The default keeps the ceiling terms (as rsatoolbox does
        for the other bootstraps). Other results are the same under both.
    %(device)s
    %(dtype)s
    bootstrap : {"none", "subject", "stimulus", "both"}, optional
        Deprecated alias of ``resample`` (FutureWarning); will be removed.

    Returns
    -------
    result : xarray.Dataset
        - ``evaluations`` (model, subject): each model against each subject's full RDM;
        - ``mean_score`` (model): their mean over subjects (the point estimate; named so
          that it does not shadow :meth:`xarray.Dataset.mean`);
        - ``noise_ceiling_lower``, ``noise_ceiling_upper``: on the full data;
        - ``variance`` (model): the variance of the mean evaluation (squared standard
          error; from the subjects without a bootstrap, else from the samples);
          ``variance_difference`` (model, model_b) of pairwise differences, and
          ``variance_noise_ceiling`` (model, bound) of the differences from the ceiling's
          lower and upper bounds; all corrected by ``n / (n - 1)`` as rsatoolbox does;
        - with a bootstrap: ``bootstrap_evaluations`` (bootstrap, model),
          ``bootstrap_noise_ceiling_lower`` / ``_upper`` (bootstrap) and ``valid``
          (bootstrap) (with ``"both"`` these have a leading ``resampling`` dim: ``both``,
          ``subject``, ``stimulus``), ``bootstrap_mean`` (model) (the mean over valid
          samples, rsatoolbox's ``Result.get_means()``), ``covariance`` of the models and
          the two bounds over the samples, and the draws ``subject_index`` /
          ``stimulus_index`` (bootstrap, draw);
        - with a bootstrap: ``ci_lower``, ``ci_upper`` (model), the central ``ci`` of the
          valid samples' mean evaluations (percentile intervals, as
          :func:`brainalign.rsa.bootstrap_ci`; with ``"both"`` from the samples that resample
          subjects and stimuli together). Their coverage is calibrated in ``tests/stats``
          only for the stimulus bootstrap of one data RDM (:func:`bootstrap_ci`, 93.7 % for
          a nominal 95 % with 20 stimuli); otherwise they are **descriptive** (attr
          ``ci_coverage``), and the t-tests of :func:`model_tests` are the calibrated
          inference.

        Attrs: ``method``, ``resample`` (also under its old name ``bootstrap``),
        ``n_bootstrap``, ``ci``, ``ci_method``, ``ci_coverage``, ``seed``, ``semantics``, ``dof``
        (degrees of freedom of the t-tests of :func:`model_tests`), ``generalises_to``
        (the population the variances generalise to, see above), ``n_subjects``,
        ``n_stimuli``.

    Raises
    ------
    ValueError
        Unknown method / bootstrap / semantics, ``n_bootstrap < 1``, a subject bootstrap with
        one subject, fewer than 3 stimuli, or constant RDMs.
    StimulusAlignmentError
        When data and model RDMs (or the RDMs of a dict or list) hold different stimuli.

    See Also
    --------
    model_tests : t-tests between models, against zero and against the noise ceiling.

    Notes
    -----
    Equal to rsatoolbox 0.3.2 (``eval_fixed``, ``eval_bootstrap_rdm``,
    ``eval_bootstrap_pattern``, ``eval_dual_bootstrap`` with ``k_pattern = k_rdm = 1``) to
    1e-10 when given rsatoolbox's draws through ``indices``, for complete RDMs. RDMs with
    NaN pairs are compared over the pairs finite in both (as :func:`brainalign.rsa.compare`),
    whereas rsatoolbox drops the pairs missing in any RDM. Cross-validated evaluation of
    flexible (weighted) models is not implemented yet.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> from brainalign.rsa._evaluate import evaluate
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 5))
    >>> data = np.stack([np.asarray(rsa.rdm(x + rng.normal(size=x.shape))) for _ in range(4)])
    >>> models = np.stack([np.asarray(rsa.rdm(x)), np.asarray(rsa.rdm(rng.normal(size=(8, 5))))])
    >>> res = evaluate(data, models, "pearson", resample="subject", n_bootstrap=200, seed=0)
    >>> res.bootstrap_evaluations.shape
    (200, 2)
    >>> bool(res["mean_score"][0] > res["mean_score"][1])
    True
    >>> bool((res.ci_lower <= res.mean_score).all() and (res.mean_score <= res.ci_upper).all())
    True
    """
    check_option("method", method, _compare.METHODS)
    bootstrap = _resolve_resample(resample, bootstrap, "evaluate")
    check_option("semantics", semantics, SEMANTICS)
    check_number("n_bootstrap", n_bootstrap, low=1, integer=True)
    check_number("ci", ci, low=0.0, high=1.0, closed="neither")
    if seed is None:
        seed = get_config()["seed"]
    data = _stack(data_rdms, "data_rdms", "subject")
    models = _stack(model_rdms, "model_rdms", "model")
    ids_d = data[RDM_DIMS[0]].values
    if not (
        np.array_equal(ids_d, models[RDM_DIMS[0]].values)
        and np.array_equal(ids_d, data[RDM_DIMS[1]].values)
        and np.array_equal(ids_d, models[RDM_DIMS[1]].values)
    ):
        data, models = align_stimuli(data, models, join="exact")
    n_subj, n = data.sizes["subject"], data.sizes[RDM_DIMS[0]]
    n_mod = models.sizes["model"]
    if n < 3:
        raise ValueError(f"Evaluating RDMs needs at least 3 stimuli; the RDMs have {n}.")
    if method in ("bures", "neg_riem_dist") and bootstrap in ("stimulus", "both"):
        raise ValueError(
            f"method={method!r} needs complete RDMs, but resample={bootstrap!r} resamples stimuli "
            "and leaves out the pairs of repeated stimuli. Use resample='subject' or 'none'."
        )
    if bootstrap in ("subject", "both") and n_subj < 2:
        raise ValueError(
            f"resample={bootstrap!r} resamples subjects and needs at least 2 data RDMs along "
            f"the subject dim, got {n_subj}. Use resample='stimulus' or 'none'."
        )
    d = np.asarray(data.values, dtype=np.float64)
    m = np.asarray(models.values, dtype=np.float64)
    dv = _check_vectors(d, "data_rdms", method, data["subject"].values)
    mv = _check_vectors(m, "model_rdms", method, models["model"].values)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    engine = _Engine(d, m, method, dev, dt, vectors=(dv, mv))
    e_full, lo_full, up_full = engine.per_subject()
    e_np = to_numpy(e_full).astype(np.float64).T  # (model, subject)

    # Variables and coordinates are collected and the Dataset built once at the end: every
    # Dataset.__setitem__ re-aligns all variables (most of the time of a small evaluation).
    coords: dict[str, Any] = {
        "model": models["model"].values,
        "subject": data["subject"].values,
    }
    out: dict[str, Any] = {
        "evaluations": (("model", "subject"), e_np),
        "mean_score": (("model",), e_np.mean(-1)),
        "noise_ceiling_lower": float(to_numpy(lo_full)[0]),
        "noise_ceiling_upper": float(to_numpy(up_full)[0]),
    }
    attrs: dict[str, Any] = {
        "kind": "rsa_model_evaluation",
        "method": method,
        "resample": bootstrap,
        "bootstrap": bootstrap,  # the old name of "resample", kept for readers of old results
        "n_bootstrap": 0,
        "seed": -1 if seed is None else int(seed),
        "semantics": semantics,
        "generalises_to": GENERALISES_TO[bootstrap],
        "n_subjects": int(n_subj),
        "n_stimuli": int(n),
        "brainalign_version": __version__,
    }
    if bootstrap == "none":
        if n_subj > 1:
            c = np.atleast_2d(np.cov(e_np, ddof=0)) / n_subj
            var, diff, ncv = _extract(c, n_mod, n_subj)
        else:
            var = np.full(n_mod, np.nan)
            diff = np.full((n_mod, n_mod), np.nan)
            ncv = np.full((n_mod, 2), np.nan)
        attrs["dof"] = int(n_subj - 1)
        _add_variances(out, coords, var, diff, ncv)
        return xr.Dataset(out, coords=coords, attrs=attrs)

    if indices is not None:
        draws = _check_indices(indices, bootstrap, n_subj, n)
        attrs["seed"] = -1  # the draws were given
    else:
        rng = np.random.default_rng(seed)
        draws = {}
        if bootstrap in ("subject", "both"):
            draws["subject"] = rng.integers(0, n_subj, size=(n_bootstrap, n_subj))
        if bootstrap in ("stimulus", "both"):
            draws["stimulus"] = rng.integers(0, n, size=(n_bootstrap, n))
    n_boot = next(iter(draws.values())).shape[0]
    attrs["n_bootstrap"] = int(n_boot)
    ones = torch.ones(n_boot, n_subj, dtype=dt, device=dev)
    k = (
        _counts(torch.as_tensor(draws["subject"], device=dev), n_subj)
        if "subject" in draws
        else ones
    )
    sidx = torch.as_tensor(draws["stimulus"], device=dev) if "stimulus" in draws else None
    if bootstrap == "both":
        runs = [engine.run(k, sidx), engine.run(k, None), engine.run(ones, sidx)]
    else:
        runs = [engine.run(k, sidx)]
    ev = np.stack([to_numpy(r[0]).astype(np.float64) for r in runs])  # (R, B, M)
    lo = np.stack([to_numpy(r[1]).astype(np.float64) for r in runs])
    up = np.stack([to_numpy(r[2]).astype(np.float64) for r in runs])
    ok = to_numpy(runs[0][3]).astype(bool)
    ev[:, ~ok] = np.nan  # rsatoolbox: an invalid sample is invalid for all three resamplings
    lo[:, ~ok] = np.nan
    up[:, ~ok] = np.nan
    ok = ok & np.isfinite(ev[0]).all(-1)
    mat = np.concatenate([ev, lo[..., None], up[..., None]], axis=-1)[:, ok]  # (R, B_ok, M+2)
    covs = np.stack([_cov(x) for x in mat])  # (R, M+2, M+2)
    if bootstrap == "subject":
        attrs["dof"] = int(n_subj - 1)
        if semantics == "rsatoolbox":  # eval_bootstrap_rdm: models only, all samples
            c = np.atleast_2d(np.cov(ev[0].T))
            var, diff, ncv = _extract(c, n_mod, n_subj)
        else:
            var, diff, ncv = _extract(covs[0], n_mod, n_subj)
    elif bootstrap == "stimulus":
        attrs["dof"] = int(n - 1)
        var, diff, ncv = _extract(covs[0], n_mod, n)
    else:
        attrs["dof"] = int(min(n_subj, n) - 1)
        parts = _extract(covs, n_mod, None)
        var, diff, ncv = (_dual(p, n_subj, n) for p in parts)
    _add_variances(out, coords, var, diff, ncv)
    lead = ("resampling",) if bootstrap == "both" else ()
    sl = slice(None) if bootstrap == "both" else 0
    if bootstrap == "both":
        coords["resampling"] = list(_RESAMPLING)
    out["bootstrap_evaluations"] = ((*lead, "bootstrap", "model"), ev[sl])
    out["bootstrap_noise_ceiling_lower"] = ((*lead, "bootstrap"), lo[sl])
    out["bootstrap_noise_ceiling_upper"] = ((*lead, "bootstrap"), up[sl])
    out["valid"] = (("bootstrap",), ok)
    out["bootstrap_mean"] = (("model",), np.nanmean(ev[:, ok], axis=1).mean(0))
    tail = (1.0 - ci) / 2.0
    if ok.any():
        lo_ci, up_ci = np.quantile(ev[0][ok], [tail, 1.0 - tail], axis=0)
    else:
        lo_ci = up_ci = np.full(n_mod, np.nan)
    out["ci_lower"] = (("model",), lo_ci)
    out["ci_upper"] = (("model",), up_ci)
    attrs["ci"] = float(ci)
    attrs["ci_method"] = "percentile"
    attrs["ci_coverage"] = (
        "calibrated (stimulus bootstrap of one data RDM, tests/stats)"
        if bootstrap == "stimulus" and n_subj == 1
        else "descriptive (coverage not calibrated; use the t-tests of model_tests)"
    )
    terms = [str(v) for v in coords["model"]] + ["noise_ceiling_lower", "noise_ceiling_upper"]
    out["covariance"] = ((*lead, "term", "term_b"), covs[sl])
    coords["term"] = terms
    coords["term_b"] = terms
    for key, arr in draws.items():
        out[f"{key}_index"] = (("bootstrap", f"{key}_draw"), arr)
    return xr.Dataset(out, coords=coords, attrs=attrs)


def _add_variances(out: dict, coords: dict, var, diff, ncv) -> None:
    out["variance"] = (("model",), np.asarray(var, dtype=np.float64))
    out["variance_difference"] = (("model", "model_b"), np.asarray(diff, dtype=np.float64))
    out["variance_noise_ceiling"] = (("model", "bound"), np.asarray(ncv, dtype=np.float64))
    coords["model_b"] = coords["model"]
    coords["bound"] = ["lower", "upper"]


@fill_doc
def noise_ceiling(
    data_rdms: Any,
    method: str = "spearman",
    *,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.Dataset:
    """Lower and upper bounds of the noise ceiling of a set of subject RDMs.

    The upper bound is the mean comparison of each subject's RDM with the pooled RDM of all
    subjects; the lower bound uses the pooled RDM of the other subjects (leave one subject
    out). Equals rsatoolbox ``boot_noise_ceiling`` (see :func:`evaluate` for pooling).

    Parameters
    ----------
    data_rdms : xarray.DataArray, dims (subject, "stimulus_a", "stimulus_b")
        One RDM per subject, a dict ``{subject: rdm}`` or a list of labeled RDMs (aligned
        by stimulus id to the first; different id sets raise a
        :class:`~brainalign.StimulusAlignmentError` naming the ids), or an array of shape
        ``(n_subjects, n, n)``.
    method : str
        A comparison of :func:`brainalign.rsa.compare`.
    %(device)s
    %(dtype)s

    Returns
    -------
    ceiling : xarray.Dataset
        Scalars ``lower`` and ``upper``; attrs ``method``, ``n_subjects``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> from brainalign.rsa._evaluate import noise_ceiling
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 5))
    >>> data = np.stack([np.asarray(rsa.rdm(x + rng.normal(size=x.shape))) for _ in range(4)])
    >>> nc = noise_ceiling(data, "pearson")
    >>> bool(nc.lower < nc.upper)
    True
    """
    check_option("method", method, _compare.METHODS)
    data = _stack(data_rdms, "data_rdms", "subject")
    check_min_stimuli(data[RDM_DIMS[0]].values, "a noise ceiling")
    d = np.asarray(data.values, dtype=np.float64)
    _check_vectors(d, "data_rdms", method, data["subject"].values)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    engine = _Engine(d, d[:1], method, dev, dt)
    _, lo, up = engine.per_subject()
    return xr.Dataset(
        {"lower": float(to_numpy(lo)[0]), "upper": float(to_numpy(up)[0])},
        attrs={
            "kind": "rsa_noise_ceiling",
            "method": method,
            "n_subjects": int(data.sizes["subject"]),
            "brainalign_version": __version__,
        },
    )


def model_tests(result: xr.Dataset) -> xr.Dataset:
    """Student's t-tests of an :func:`evaluate` result: between models, vs 0, vs the ceiling.

    As rsatoolbox's ``t_tests``, ``t_test_0`` and ``t_test_nc`` on the result's variances,
    with ``result.attrs["dof"]`` degrees of freedom. The tested means are those rsatoolbox
    tests: the mean over subjects without a bootstrap, else the mean over the valid bootstrap
    samples (``bootstrap_mean``), and the ceiling is the mean of the lower bound over the
    samples. Variances are floored at machine epsilon.

    The p-values generalise to the population the result's bootstrap resampled (attr
    ``generalises_to``): with ``resample="none"`` or ``"subject"`` to new subjects on the
    same stimuli only. When the stimuli are a sample too, these tests are liberal; evaluate
    with ``resample="both"`` (see :func:`evaluate`).

    Parameters
    ----------
    result : xarray.Dataset
        The output of :func:`evaluate`.

    Returns
    -------
    tests : xarray.Dataset
        ``p_pairwise`` (model, model_b): two-sided tests of the difference of two models
        (1 on the diagonal); ``p_zero`` (model): one-sided test of evaluation > 0;
        ``p_noise_ceiling`` (model): two-sided test against the lower noise-ceiling bound;
        and the matching t values ``t_pairwise``, ``t_zero``, ``t_noise_ceiling``. Attrs
        include ``generalises_to``, copied from ``result``.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> from brainalign.rsa._evaluate import evaluate, model_tests
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(10, 30))
    >>> data = np.stack([np.asarray(rsa.rdm(x + rng.normal(size=x.shape))) for _ in range(5)])
    >>> models = np.stack([np.asarray(rsa.rdm(x)), np.asarray(rsa.rdm(rng.normal(size=x.shape)))])
    >>> tests = model_tests(evaluate(data, models, "pearson"))
    >>> bool(tests.p_pairwise[0, 1] < 0.05), bool(tests.p_zero[0] < 0.05)
    (True, True)
    """
    if not isinstance(result, xr.Dataset) or result.attrs.get("kind") != "rsa_model_evaluation":
        raise TypeError(
            "result must be the Dataset returned by evaluate(), got "
            f"{type(result).__name__} with kind {getattr(result, 'attrs', {}).get('kind')!r}."
        )
    dof = result.attrs["dof"]
    eps = np.finfo(float).eps
    if result.attrs["bootstrap"] == "none":
        means = result["mean_score"].values
        ceiling = float(result["noise_ceiling_lower"])
    else:
        means = result["bootstrap_mean"].values
        ceiling = float(np.nanmean(result["bootstrap_noise_ceiling_lower"].values))
    diff = means[:, None] - means[None, :]
    t_pair = diff / np.sqrt(np.maximum(result["variance_difference"].values, eps))
    np.fill_diagonal(t_pair, 0.0)
    t_zero = means / np.sqrt(np.maximum(result["variance"].values, eps))
    t_nc = (means - ceiling) / np.sqrt(
        np.maximum(result["variance_noise_ceiling"].sel(bound="lower").values, eps)
    )
    p_pair = 2 * (1 - stats.t.cdf(np.abs(t_pair), dof))
    p_zero = 1 - stats.t.cdf(t_zero, dof)
    p_nc = 2 * (1 - stats.t.cdf(np.abs(t_nc), dof))
    coords = {"model": result["model"].values, "model_b": result["model"].values}
    return xr.Dataset(
        {
            "t_pairwise": (("model", "model_b"), t_pair),
            "p_pairwise": (("model", "model_b"), p_pair),
            "t_zero": (("model",), t_zero),
            "p_zero": (("model",), p_zero),
            "t_noise_ceiling": (("model",), t_nc),
            "p_noise_ceiling": (("model",), p_nc),
        },
        coords=coords,
        attrs={
            "kind": "rsa_model_tests",
            "test": "t-test",
            "dof": int(dof),
            "noise_ceiling": ceiling,
            "method": result.attrs["method"],
            "bootstrap": result.attrs["bootstrap"],
            "generalises_to": result.attrs.get(
                "generalises_to", GENERALISES_TO[result.attrs["bootstrap"]]
            ),
            "brainalign_version": __version__,
        },
    )


@fill_doc
def bootstrap(
    data_rdms: Any,
    model_rdms: Any,
    method: str = "spearman",
    *,
    resample: str = "subject",
    n_bootstrap: int = 1000,
    seed: int | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Bootstrap evaluation of model RDMs: :func:`evaluate` with a bootstrap ``resample``.

    Parameters
    ----------
    data_rdms : xarray.DataArray, dict, list or array_like
        The data RDMs, one per subject, as in :func:`evaluate`.
    model_rdms : xarray.DataArray, dict, list or array_like
        The model RDMs, as in :func:`evaluate`.
    method : str
        The comparison of :func:`brainalign.rsa.compare`, as in :func:`evaluate`.
    resample : {"subject", "stimulus", "both"}
        What the bootstrap resamples (= rsatoolbox ``eval_bootstrap_rdm``,
        ``eval_bootstrap_pattern``, ``eval_dual_bootstrap``): the variances generalise to
        new subjects (stimuli fixed), new stimuli (subjects fixed), or both; use
        ``"both"`` when subjects and stimuli are samples (see :func:`evaluate`).
    n_bootstrap : int
        Number of bootstrap samples, computed in one batch.
    %(seed)s
    **kwargs
        More :func:`evaluate` options (``indices``, ``semantics``, ``device``, ``dtype``).

    Returns
    -------
    result : xarray.Dataset
        As :func:`evaluate`.
    """
    check_option("resample", resample, ("subject", "stimulus", "both"))
    return evaluate(
        data_rdms,
        model_rdms,
        method,
        resample=resample,
        n_bootstrap=n_bootstrap,
        seed=seed,
        **kwargs,
    )


@fill_doc
def test(
    data_rdms: Any,
    model_rdms: Any,
    method: str = "spearman",
    *,
    resample: str = "subject",
    n_bootstrap: int = 1000,
    seed: int | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Evaluate models with a bootstrap and test them against zero, each other and the ceiling.

    One call for :func:`bootstrap` followed by :func:`model_tests` (rsatoolbox's t-tests on
    the bootstrap variances).

    A p-value generalises only to the population that was resampled (attr
    ``generalises_to`` of the result):

    - ``resample="subject"`` (the default): to new **subjects seeing these same stimuli**.
      If the stimuli are a sample from a larger set (images, words, sounds) and the claim
      is about that set, the tests are liberal: with brain and models independent and
      stimuli drawn afresh (10 stimuli, 8 subjects), 25 % of pairwise model comparisons
      and 17 % of tests against zero reject at alpha = 0.05 in brainalign's calibration.
      Use ``resample="both"`` then.
    - ``resample="stimulus"``: to new **stimuli**, for these subjects.
    - ``resample="both"``: to new **subjects and new stimuli** (rsatoolbox's dual
      bootstrap); the choice when both are samples. With few stimuli the stimulus
      bootstraps are conservative (0-2 % at alpha = 0.05 in the same calibration).

    Parameters
    ----------
    data_rdms : xarray.DataArray, dict, list or array_like
        The data RDMs, one per subject, as in :func:`evaluate` (dicts and lists of labeled
        RDMs are aligned by stimulus id).
    model_rdms : xarray.DataArray, dict, list or array_like
        The model RDMs, as in :func:`evaluate` (aligned by stimulus id likewise).
    method : str
        The comparison of :func:`brainalign.rsa.compare`, as in :func:`evaluate`.
    resample : {"subject", "stimulus", "both"}
        What the bootstrap resamples, and so the population a p-value generalises to (see
        above).
    n_bootstrap : int
        Number of bootstrap samples.
    %(seed)s
    **kwargs
        More :func:`evaluate` options.

    Returns
    -------
    result : xarray.Dataset
        The :func:`evaluate` variables plus ``t_``/``p_`` ``zero``, ``pairwise`` and
        ``noise_ceiling`` from :func:`model_tests`; attrs as :func:`evaluate`'s, with
        ``generalises_to`` (``"subjects (stimuli fixed)"``, ``"stimuli (subjects fixed)"``
        or ``"subjects and stimuli"``) and ``test``.

    See Also
    --------
    evaluate : the bootstraps, and which population each generalises to.
    """
    result = bootstrap(
        data_rdms,
        model_rdms,
        method,
        resample=resample,
        n_bootstrap=n_bootstrap,
        seed=seed,
        **kwargs,
    )
    tests = model_tests(result)
    merged = xr.merge([result, tests], combine_attrs="drop")
    merged.attrs = {**result.attrs, "test": tests.attrs.get("test", "t-test")}
    return merged


test.__test__ = False  # a library function named "test": test runners must not collect it
