"""Bootstrap confidence intervals of RDM comparisons, resampling stimuli, in one batch.

A stimulus bootstrap draws ``n`` stimuli with replacement and compares the resampled RDMs;
as rsatoolbox (``bootstrap_sample_pattern`` + ``subsample_pattern``) the pairs of a stimulus
with its own copy are left out (their dissimilarity would be trivially zero). Every other pair
``(i, j)`` of the original RDM then appears ``c_i * c_j`` times, ``c`` the draw counts. A
comparison of the resampled vectors is therefore a *weighted* comparison of the original
upper triangles with weights ``w = c_i * c_j``: weighted moments for Pearson and cosine, and
for the rank methods weighted average-tie ranks (the copies of a pair share one average rank:
the weight of all smaller values plus half the weight of its tie group). Nothing is resampled
and only the pairs that are finite in every RDM are touched, so an incomplete RDM of a
thousand stimuli with a thousand rated pairs costs a thousand pairs per sample, not half a
million. Methods without a weighted form fall back to explicit resampling
(:func:`brainalign.rsa.evaluate` with ``bootstrap="stimulus"``), the same draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import _fmt_list, check_number, check_option
from brainalign._config import get_config
from brainalign._device import resolve_device, to_numpy
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa import _compare
from brainalign.rsa._evaluate import _stack, _triu, evaluate
from brainalign.rsa._rdm import as_rdm

#: Comparison methods with a weighted (fast) bootstrap; the others resample explicitly.
WEIGHTED_METHODS = ("spearman", "pearson", "cosine", "rho_a")
_RANKED = ("spearman", "rho_a")
_MEMORY_BUDGET = 2**27  # bytes of float64 work arrays per chunk of bootstrap samples


def _weighted_ranks(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted average-tie ranks of the rows of ``x`` (K, P) under weights ``w`` (B, P).

    Returns ``r`` (B, K, P): the average rank that the ``w[b, p]`` copies of ``x[k, p]``
    would get among all copies (ranks start at an arbitrary constant; only differences
    matter to the correlations built on them).
    """
    k, p = x.shape
    order = torch.argsort(x, dim=-1, stable=True)  # (K, P)
    xs = torch.gather(x, 1, order)
    new = torch.ones_like(xs, dtype=torch.long)
    new[:, 1:] = (xs[:, 1:] != xs[:, :-1]).long()
    new[:, 0] = 1  # every vector starts a new tie group
    gid = torch.cumsum(new.reshape(-1), 0) - 1  # (K * P,) global tie-group ids
    n_groups = int(gid[-1]) + 1
    ws = w[:, order.reshape(-1)]  # (B, K * P) weights in sorted order
    gsum = torch.zeros(w.shape[0], n_groups, dtype=w.dtype, device=w.device)
    gsum.index_add_(1, gid, ws)
    cs = torch.cumsum(gsum, 1)
    first = gid.reshape(k, p)[:, 0]  # the first group of each vector
    base = torch.where(first > 0, cs[:, (first - 1).clamp_min(0)], torch.zeros_like(cs[:, :k]))
    sizes = torch.diff(torch.cat([first, first.new_tensor([n_groups])]))
    owner = torch.repeat_interleave(torch.arange(k, device=x.device), sizes)  # group → vector
    rank_g = cs - gsum - base[:, owner] + 0.5 * gsum  # weight below + half the group's
    out = torch.empty(w.shape[0], k, p, dtype=w.dtype, device=w.device)
    out.scatter_(2, order.expand(w.shape[0], k, p), rank_g[:, gid].reshape(-1, k, p))
    return out


def _weighted_compare(
    dv: torch.Tensor, mv: torch.Tensor, w: torch.Tensor, method: str
) -> torch.Tensor:
    """Weighted comparisons (B, M) of a data vector ``dv`` (P,) with models ``mv`` (M, P).

    ``w`` (B, P) holds the (integer) pair weights of each sample. Weighted sums of the
    vectors, their squares and products are batched matrix products in float64; the
    comparisons follow from these moments. Ranks are integers and half-integers, exact in
    float32 while their running sums stay below 2**23: they are computed in float32 then
    (half the memory traffic). Undefined comparisons (no weight, or a vector constant under
    the weights) are NaN.
    """
    f64 = torch.float64
    w = w.to(f64)
    tot = w.sum(-1)  # (B,)
    if method in _RANKED:
        x = torch.cat([dv[None], mv])
        exact32 = float(tot.max()) * x.shape[0] < 2**23
        r = _weighted_ranks(x, w.to(torch.float32) if exact32 else w).to(f64)
        a, b = r[:, 0], r[:, 1:]  # (B, P), (B, M, P)
        wa = w * a
        s_b = torch.bmm(b, w[..., None])[..., 0]
        s_ab = torch.bmm(b, wa[..., None])[..., 0]
        s_bb = torch.bmm(b * b, w[..., None])[..., 0]
    else:  # the vectors are the same for every sample: plain matrix products
        a, b = dv[None], mv
        wa = w * a
        s_b, s_ab, s_bb = w @ b.T, wa @ b.T, w @ (b * b).T
    s_a, s_aa = wa.sum(-1), (wa * a).sum(-1)
    if method == "cosine":
        cov, va, vb = s_ab, s_aa[:, None], s_bb
    else:
        mean_b = s_b / tot[:, None]
        cov = s_ab - s_a[:, None] * mean_b
        va = (s_aa - s_a * s_a / tot)[:, None]
        vb = s_bb - s_b * mean_b
    nan = torch.full_like(cov, float("nan"))
    # a vector constant under the weights: its variance is zero up to rounding
    flat = (va <= 1e-12 * s_aa[:, None]) | (vb <= 1e-12 * s_bb)
    if method == "rho_a":  # defined (0) for constant ranks, as with resampled vectors
        out = 12.0 * cov / (tot**3 - tot)[:, None]
        flat = torch.zeros_like(flat)
    else:
        out = cov / torch.sqrt(va * vb)
    return torch.where(flat | ~torch.isfinite(out), nan, out)


def _chunk_size(n_vectors: int, n_pairs: int) -> int:
    per_sample = (4 * n_vectors + 4) * n_pairs * 8
    return max(1, _MEMORY_BUDGET // max(per_sample, 1))


def bootstrap_ci(
    data_rdm: Any,
    model_rdms: Any,
    method: str = "spearman",
    *,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int | None = None,
    indices: Any = None,
    device: str | torch.device | None = None,
) -> xr.Dataset:
    """Percentile confidence intervals of model–data RDM comparisons, resampling stimuli.

    Each bootstrap sample draws the stimuli with replacement (one draw shared by all models)
    and compares the resampled RDMs, leaving out the pairs of a stimulus with its own copy, as
    rsatoolbox ``eval_bootstrap_pattern`` does. The interval holds the central ``ci`` of the
    valid samples' comparisons. All samples and models are computed in one batched,
    chunked torch computation: for the methods in ``WEIGHTED_METHODS`` as weighted
    comparisons of the original pairs (pair ``(i, j)`` weighs ``c_i * c_j``, ``c`` the draw
    counts), over the pairs finite in every RDM only (incomplete RDMs cost their rated
    pairs). Other methods resample explicitly through :func:`brainalign.rsa.evaluate`
    (slower, same draws, same result).

    Parameters
    ----------
    data_rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        The data (brain or behaviour) RDM; NaN marks pairs left out (an incomplete RDM).
    model_rdms : xarray.DataArray, dims (model, "stimulus_a", "stimulus_b"), or dict
        The model RDMs (a stack along one extra dim, a dict name → RDM, or a single RDM).
        Stimuli are aligned to the data by id; a mismatch raises.
    method : str
        The comparison, one of :data:`brainalign.rsa.METHODS` except ``"bures"`` (which
        needs complete RDMs).
    n_bootstrap : int
        Number of bootstrap samples (ignored when ``indices`` is given).
    ci : float
        The interval's coverage, in (0, 1).
    seed : int, optional
        Seed of the draws (numpy ``default_rng``, so the same on every device); default: the
        configured seed (None there: fresh entropy, attr ``seed`` -1). The draws equal those
        of ``evaluate(..., bootstrap="stimulus")`` with the same seed.
    indices : array-like of int, shape (n_bootstrap, n_stimuli), optional
        Explicit draws (stimulus positions) instead of random ones.
    device : str or torch.device, optional
        Where to compute; default: the configured device. Moments are float64 on every
        device; weighted ranks (integers and half-integers up to ``n**2 / 2``) are float32
        only while that is exact.

    Returns
    -------
    result : xarray.Dataset
        ``similarity`` (model): the comparison on the original RDMs; ``ci_lower`` and
        ``ci_upper`` (model): the percentile interval; ``bootstrap_evaluations``
        (bootstrap, model); ``valid`` (bootstrap): samples with at least 3 distinct stimuli
        (rsatoolbox's rule) and a defined comparison for every model. Attrs: ``method``,
        ``ci``, ``n_bootstrap``, ``n_valid``, ``seed``, ``resampling`` ("stimulus"),
        ``generalises_to`` ("stimuli (subjects fixed)": the interval is for the
        population of stimuli, for this data RDM's subject(s)), ``ci_method``
        ("percentile"), ``weighted`` (the fast path was used).

    Raises
    ------
    ValueError
        Unknown or unsupported ``method``, ``n_bootstrap < 1``, ``ci`` outside (0, 1),
        fewer than 3 stimuli, badly shaped ``indices``, or RDMs with several data RDMs.
    StimulusAlignmentError
        The data and model RDMs do not hold the same stimuli.

    Notes
    -----
    Cross-checked against rsatoolbox 0.3.2 (``bootstrap_sample_pattern``, ``compare``) and
    against explicit resampling in ``tests/rsa/test_bootstrap_ci.py``. Calibration
    (``tests/stats/cases_rsa.py``): with 20 stimuli drawn from a Gaussian population and
    population RDM correlations of 0.33-0.57, the 95 % Pearson intervals covered the
    population value in 93.7 % of 300 intervals; percentile intervals with few stimuli
    can fall a little short of their nominal coverage.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(12, 5))
    >>> data = rsa.rdm(x, "euclidean")
    >>> model = rsa.rdm(x + rng.normal(size=x.shape), "euclidean")
    >>> res = rsa.bootstrap_ci(data, {"noisy": model}, "spearman", n_bootstrap=200, seed=0)
    >>> bool(res.ci_lower <= res.similarity) and bool(res.similarity <= res.ci_upper)
    True
    """
    check_option("method", method, tuple(m for m in _compare.METHODS if m != "bures"))
    check_number("n_bootstrap", n_bootstrap, low=1, integer=True)
    check_number("ci", ci, low=0.0, high=1.0, closed="neither")
    if seed is None:
        seed = get_config()["seed"]
    data = as_rdm(data_rdm, "data_rdm")
    extra = [d for d in data.dims if d not in RDM_DIMS]
    if extra:
        raise ValueError(
            f"data_rdm must be a single RDM with dims {RDM_DIMS}; it has dims "
            f"{tuple(data.dims)}. Select one {extra[0]!r} first."
        )
    models = _stack(model_rdms, "model_rdms", "model")
    data, models = align_stimuli(data, models, join="exact")
    data = data.transpose(*RDM_DIMS)
    n = data.sizes[RDM_DIMS[0]]
    if n < 3:
        raise ValueError(f"A stimulus bootstrap needs at least 3 stimuli; the RDMs have {n}.")
    if indices is not None:
        draws = np.asarray(indices)
        if draws.ndim != 2 or draws.shape[1] != n or not np.issubdtype(draws.dtype, np.integer):
            raise ValueError(
                f"indices must be an integer array of shape (n_bootstrap, {n}), got dtype "
                f"{draws.dtype} and shape {draws.shape}."
            )
        if draws.shape[0] < 1 or draws.min() < 0 or draws.max() >= n:
            raise ValueError(
                f"indices must have at least one row and lie in [0, {n - 1}], got shape "
                f"{draws.shape}" + (f" and values in [{draws.min()}, {draws.max()}]." if
                                    draws.size else ".")
            )  # fmt: skip
        draws = draws.astype(np.int64)
        seed_attr = -1
    else:
        draws = np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))
        seed_attr = -1 if seed is None else int(seed)
    names = [str(v) for v in models["model"].values]
    i, j = _triu(n)
    dvec = np.asarray(data.values, dtype=np.float64)[i, j]
    mvec = np.asarray(models.values, dtype=np.float64)[:, i, j]
    keep = np.isfinite(dvec)
    if keep.sum() < 3:
        raise ValueError(
            f"data_rdm has {int(keep.sum())} finite pair(s); a comparison needs at least 3."
        )
    model_nan = ~np.isfinite(mvec[:, keep])
    weighted = method in WEIGHTED_METHODS and not model_nan.any()
    if weighted:
        full, boot = _weighted_path(dvec[keep], mvec[:, keep], i[keep], j[keep], n, draws,
                                    method, resolve_device(device))  # fmt: skip
    else:
        ev = evaluate(data, models, method, resample="stimulus",
                      indices={"stimulus": draws}, device=device)  # fmt: skip
        full = ev["mean_score"].values.astype(np.float64)
        boot = ev["bootstrap_evaluations"].values.astype(np.float64)
    drawn = np.sort(draws, axis=1)
    distinct = (drawn[:, 1:] != drawn[:, :-1]).sum(1) + 1 >= 3  # rsatoolbox's validity rule
    valid = distinct & np.isfinite(boot).all(-1)
    boot = np.where(valid[:, None], boot, np.nan)
    if not valid.any():
        raise ValueError(
            f"None of the {draws.shape[0]} bootstrap samples gives a defined {method} "
            f"comparison for every model ({_fmt_list(names)}); the RDMs have too few finite "
            "pairs for a stimulus bootstrap."
        )
    tail = (1.0 - ci) / 2.0
    lo, up = np.nanquantile(boot[valid], [tail, 1.0 - tail], axis=0)
    coords = {"model": names}
    ds = xr.Dataset(
        {
            "similarity": (("model",), full),
            "ci_lower": (("model",), lo),
            "ci_upper": (("model",), up),
            "bootstrap_evaluations": (("bootstrap", "model"), boot),
            "valid": (("bootstrap",), valid),
        },
        coords=coords,
        attrs={
            "kind": "rsa_bootstrap_ci",
            "method": method,
            "ci": float(ci),
            "ci_method": "percentile",
            "resampling": "stimulus",
            "generalises_to": "stimuli (subjects fixed)",
            "n_bootstrap": int(draws.shape[0]),
            "n_valid": int(valid.sum()),
            "n_stimuli": int(n),
            "seed": seed_attr,
            "weighted": int(weighted),
            "brainalign_version": __version__,
        },
    )
    return ds


def _weighted_path(
    dv: np.ndarray,
    mv: np.ndarray,
    pi: np.ndarray,
    pj: np.ndarray,
    n: int,
    draws: np.ndarray,
    method: str,
    dev: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed (M,) and bootstrap (B, M) comparisons over the kept pairs, in float64."""
    dt = torch.float64
    if method == "pearson":  # shift (and scale) invariant: keep the moments well conditioned
        dv, mv = dv - dv.mean(), mv - mv.mean(-1, keepdims=True)
    if method in ("pearson", "cosine"):
        dv = dv / max(float(np.abs(dv).max()), 1e-300)
        mv = mv / np.maximum(np.abs(mv).max(-1, keepdims=True), 1e-300)
    d = torch.as_tensor(dv, dtype=dt, device=dev)
    m = torch.as_tensor(mv, dtype=dt, device=dev)
    a = torch.as_tensor(pi, device=dev)
    b = torch.as_tensor(pj, device=dev)
    full = _weighted_compare(d, m, torch.ones(1, d.shape[0], dtype=dt, device=dev), method)[0]
    idx = torch.as_tensor(draws, device=dev)
    step = _chunk_size(m.shape[0] + 1, d.shape[0])
    out = []
    for start in range(0, idx.shape[0], step):
        chunk = idx[start : start + step]
        counts = torch.zeros(chunk.shape[0], n, dtype=dt, device=dev)
        counts.scatter_add_(1, chunk, torch.ones_like(chunk, dtype=dt))
        w = counts[:, a] * counts[:, b]  # (B, P) pair weights
        out.append(_weighted_compare(d, m, w, method))
    return to_numpy(full), to_numpy(torch.cat(out))
