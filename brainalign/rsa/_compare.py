"""Comparing RDMs: one data RDM against many model RDMs, NaN pairs masked, eight methods."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import (
    SchemaError,
    StimulusAlignmentError,
    _fmt_list,
    check_finite,
    check_min_stimuli,
    check_option,
)
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS, STIMULUS
from brainalign.rsa._compare_kernels import compare_vectors, scale_rows_pow2
from brainalign.rsa._rdm import as_rdm

Method = Literal[
    "spearman",
    "pearson",
    "kendall_tau_a",
    "rho_a",
    "cosine",
    "whitened_pearson",
    "whitened_cosine",
    "bures",
    "neg_riem_dist",
]
#: The comparisons of :func:`compare`: one RDM against another, over their stimulus pairs.
#: A different idea from ``brainalign.ricci.METHODS`` (the solvers of Ollivier-Ricci
#: curvature: ``"exact"``, ``"sinkhorn"``, ``"atd"``) and from ``brainalign.align.METHODS``
#: (measures between two feature spaces, e.g. CKA).
METHODS = (
    "spearman",
    "pearson",
    "kendall_tau_a",
    "rho_a",
    "cosine",
    "whitened_pearson",
    "whitened_cosine",
    "bures",
    "neg_riem_dist",
)
#: The same comparison in ``rsatoolbox.rdm.compare(..., method=...)`` (rsatoolbox 0.3.2).
RSATOOLBOX_METHODS = {
    "spearman": "spearman",
    "pearson": "corr",
    "kendall_tau_a": "tau-a",
    "rho_a": "rho-a",
    "cosine": "cosine",
    "whitened_pearson": "corr_cov",
    "whitened_cosine": "cosine_cov",
    "bures": "bures",
    "neg_riem_dist": "neg_riem_dist",
}
_WHITENED = ("whitened_pearson", "whitened_cosine")
_COMPLETE = ("bures", "neg_riem_dist")  # need complete RDMs
_CENTERED = ("spearman", "pearson", "whitened_pearson")  # undefined for a constant RDM
_UNCENTERED = ("cosine", "whitened_cosine", "bures")  # undefined for an all-zero RDM


def _vectors(r: xr.DataArray) -> xr.DataArray:
    n = r.sizes[RDM_DIMS[0]]
    i, j = np.triu_indices(n, k=1)
    bdims = [d for d in r.dims if d not in RDM_DIMS]
    square = np.asarray(r.transpose(*bdims, *RDM_DIMS).values)
    # a gather along the flattened matrix keeps each vector contiguous (row-major result)
    vals = np.take(square.reshape(*square.shape[:-2], n * n), i * n + j, axis=-1)
    coords = {d: r[d] for d in bdims if d in r.coords}
    return xr.DataArray(vals, dims=(*bdims, "pair"), coords=coords)


def _sigma_k(sigma_k: Any, ids: np.ndarray, method: str) -> np.ndarray | None:
    """Validate ``sigma_k`` and return it in the stimulus order ``ids``."""
    if sigma_k is None:
        return None
    if method not in (*_WHITENED, "neg_riem_dist"):
        raise ValueError(
            f"sigma_k is used only by the methods {_fmt_list((*_WHITENED, 'neg_riem_dist'))}; "
            f"got method={method!r}."
        )
    n = len(ids)
    if isinstance(sigma_k, xr.DataArray):
        labeled = [d for d in sigma_k.dims if d in (STIMULUS, *RDM_DIMS)]
        if len(labeled) != sigma_k.ndim or sigma_k.ndim not in (1, 2):
            raise SchemaError(
                "sigma_k as a DataArray must have dims ('stimulus',) or "
                f"('stimulus_a', 'stimulus_b'); it has dims {tuple(sigma_k.dims)}."
            )
        for d in sigma_k.dims:
            have = np.asarray(sigma_k[d].values).tolist()
            missing = [s for s in ids.tolist() if s not in set(have)]
            if missing:
                raise StimulusAlignmentError(
                    f"sigma_k (dim {d!r}) misses {len(missing)} stimulus id(s) of the RDMs: "
                    f"{_fmt_list(missing)}."
                )
        sigma_k = sigma_k.sel({d: ids for d in sigma_k.dims})
    arr = np.asarray(sigma_k, dtype=float)
    if arr.shape not in ((n,), (n, n)):
        raise ValueError(
            f"sigma_k must have shape ({n},) (pattern variances) or ({n}, {n}) (pattern "
            f"covariance) for the {n} stimuli of the RDMs; got shape {arr.shape}."
        )
    check_finite(arr, "sigma_k")
    if arr.ndim == 1 and method == "neg_riem_dist":
        raise ValueError(
            f"sigma_k for method='neg_riem_dist' must be the ({n}, {n}) pattern covariance "
            f"(as in rsatoolbox); got shape {arr.shape}. Pass np.diag(variances)."
        )
    if arr.ndim == 1:
        if arr.min() <= 0:
            raise ValueError(
                f"sigma_k (pattern variances) must be positive; got minimum {arr.min():.3g}."
            )
        return arr
    if not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12 * np.abs(arr).max()):
        raise ValueError(
            f"sigma_k must be symmetric; max |S - S.T| = {np.abs(arr - arr.T).max():.3g}."
        )
    low = float(np.linalg.eigvalsh(arr).min())
    if low <= 0:
        raise ValueError(
            f"sigma_k must be positive definite; its smallest eigenvalue is {low:.3g}."
        )
    return arr


def single_rdm(x: Any, name: str) -> xr.DataArray:
    """Return ``x`` as one labeled RDM (or stack); refuse a dict or list of RDMs.

    Stacking a collection by position would pair stimuli by position, so a function that
    takes one RDM (or one stack along a dim) refuses a collection with a message saying
    how to stack it by stimulus id.
    """
    if isinstance(x, dict) or (
        isinstance(x, list | tuple) and any(isinstance(v, xr.DataArray) for v in x)
    ):
        raise TypeError(
            f"{name} must be one RDM, or RDMs stacked along a dim in one DataArray; got a "
            f"{type(x).__name__} of {len(x)} RDM(s). Stack them by stimulus id first, e.g. "
            "xr.concat(brainalign.align_stimuli(*rdms), dim='model')."
        )
    return as_rdm(x, name)


@fill_doc
def compare(
    rdm_a: Any,
    rdm_b: Any,
    method: Method = "spearman",
    *,
    sigma_k: Any = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> float | xr.DataArray:
    """Compare RDMs on their upper triangles.

    The stimuli are aligned by id first (an error names missing or extra ids). Pairs that
    are NaN in either RDM (incomplete judgments) are left out, never filled. Broadcast dims
    of the two inputs combine: a data RDM over ``time`` against model RDMs over ``layer``
    gives a ``(time, layer)`` result, all in one batched computation.

    Every method equals ``rsatoolbox.rdm.compare`` 0.3.2 with the method named in
    :data:`RSATOOLBOX_METHODS` (rsatoolbox drops a pair that is NaN in any RDM and requires
    the same NaN pairs in both inputs; here the pairs are chosen per comparison, which is the
    same whenever rsatoolbox accepts the input).

    Parameters
    ----------
    rdm_a, rdm_b : xarray.DataArray or array_like
        RDMs (see :func:`brainalign.rsa.rdm`), or square matrices in the same stimulus order.
        Several RDMs come stacked along a dim in one DataArray; a list or dict of RDMs is
        refused (stack it by stimulus id with :func:`brainalign.align_stimuli`).
    method : str
        One of:

        - ``"spearman"``: Pearson correlation of average-tie ranks.
        - ``"pearson"``: Pearson correlation (= rsatoolbox ``corr``).
        - ``"kendall_tau_a"``: Kendall's tau-a, ``(concordant - discordant) / (m(m-1)/2)``
          over the ``m`` valid pairs; pairs tied in either RDM count as neither, the
          denominator is not tie-corrected (= ``tau-a``). For models that predict ties
          (categorical models), unlike tau-b. Compiled with numba on the CPU (O(m log m)).
        - ``"rho_a"``: ``12 Σ (r_a - r̄)(r_b - r̄) / (m³ - m)`` with average-tie ranks, the
          expected Spearman correlation under random tie breaking (= ``rho-a``).
        - ``"cosine"``: uncentred cosine similarity (= ``cosine``).
        - ``"whitened_pearson"``, ``"whitened_cosine"``: correlation / cosine after
          whitening by the covariance of the distance estimates
          ``V = (C Σ Cᵀ) ∘ (C Σ Cᵀ)`` (``C`` the pair contrasts, ``Σ`` = ``sigma_k``)
          (= ``corr_cov`` / ``cosine_cov``, "whitened unbiased RDM cosine similarity",
          Diedrichsen et al. 2021).
        - ``"bures"``: Bures similarity ``tr((A½ B A½)½) / sqrt(tr A tr B)`` of the
          double-centred kernels ``A = H (-D/2) H`` (= rsatoolbox ``bures``; the squared
          distance ``bures_metric`` is not offered). Needs complete RDMs.
        - ``"neg_riem_dist"``: negative Riemannian distance between second moments,
          ``-min_θ sqrt(Σ log² λ_i(e^θ0 G_a + e^θ1 P Σ Pᵀ, G_b))`` with
          ``G_kl = (d_0k + d_0l - d_kl) / 2`` (the second moment relative to the first
          stimulus, ``P = [-1 | I]``, ``λ`` generalised eigenvalues): ``rdm_b`` (the data) is
          fitted by a scaled ``rdm_a`` (the model) plus scaled pattern noise ``Σ`` =
          ``sigma_k`` (default ``I``) (= rsatoolbox ``neg_riem_dist``, Shahbazi et al. 2021).
          **Not symmetric**: pass the model first and the data second, as rsatoolbox's
          ``compare(model, data)``. Needs complete RDMs of squared-distance type whose data
          second moment is positive definite (squared Euclidean, Mahalanobis, or crossnobis
          with enough signal); rsatoolbox's Nelder-Mead optimum is found to ~1e-10, here
          the minimum to rounding (a grid over the noise weight plus golden-section search,
          batched; about 100 batched ``eigvalsh`` of ``(n-1, n-1)`` matrices).
    sigma_k : array_like or xarray.DataArray, shape (n,) or (n, n), optional
        Pattern variances (1-D) or covariance (2-D) of the stimuli, for the whitened
        methods and ``"neg_riem_dist"`` (2-D only), in the stimulus order of ``rdm_a`` (a
        DataArray over ``stimulus`` is aligned by id). Default: ``Σ = I``. As in rsatoolbox, a
        1-D ``s`` scales the centred second moments by ``1 / sqrt(s_i s_j)``, which differs
        from ``np.diag(s)``; a 2-D ``Σ`` builds ``V`` densely, with ``n_pairs²`` memory
        (n = 100: 200 MB), and is solved exactly (rsatoolbox solves it by conjugate
        gradients to ``rtol=1e-5``).
    %(device)s
    %(dtype)s

    Returns
    -------
    similarity : float or xarray.DataArray
        A float for two single RDMs, else a DataArray over the broadcast dims.

    Raises
    ------
    ValueError
        Unknown method; fewer than 3 pairs valid in both RDMs; an RDM that is constant
        over the valid pairs for ``"spearman"``, ``"pearson"`` and ``"whitened_pearson"``
        (the correlation is undefined; ``"kendall_tau_a"`` and ``"rho_a"`` give 0, as
        rsatoolbox does) or all zero for ``"cosine"``, ``"whitened_cosine"`` and ``"bures"``;
        NaN pairs with ``"bures"`` or ``"neg_riem_dist"``; a data RDM (``rdm_b``) whose
        second moment is not positive definite with ``"neg_riem_dist"``; an invalid
        ``sigma_k``.
    TypeError
        A list or dict of RDMs instead of one RDM or stack.
    StimulusAlignmentError
        When the RDMs (or ``sigma_k``) hold different stimuli.

    See Also
    --------
    brainalign.rsa.rdm : the RDMs compared here.
    brainalign.ricci.compare : a different analysis under the same verb: it compares two
        *systems* (data or RDMs) through the Ollivier-Ricci curvature of their kNN graphs,
        with permutation nulls, and returns a Dataset of curvature statistics; its
        ``method`` picks a curvature solver, not an RDM comparison.
    brainalign.align.compare : alignment measures between feature spaces (CKA, CCA, ...).

    Notes
    -----
    On the CPU the rank methods sort with numpy and accumulate in numba-compiled passes (the
    first call in a fresh environment compiles for ~2 s; numba caches the result on disk).
    One data RDM against many models ranks the data RDM once. Tau-a is O(m log m) per
    comparison on the CPU; on a GPU it sums sign products over all pairs in chunks (O(m²),
    fast for up to a few thousand pairs), and falls back to the CPU kernel beyond that. On a
    GPU (float32 by default) ties created by rounding to float32 count as ties.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> a = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]])
    >>> rsa.compare(a, a ** 2)
    1.0
    >>> b = np.array([[0, 1, 1], [1, 0, 2], [1, 2, 0.0]])  # ties
    >>> round(rsa.compare(a, b, "kendall_tau_a"), 6)
    0.666667
    """
    check_option("method", method, METHODS)
    a = single_rdm(rdm_a, "rdm_a")
    b = single_rdm(rdm_b, "rdm_b")
    first = a[RDM_DIMS[0]].values
    if not all(np.array_equal(first, r[d].values) for r in (a, b) for d in RDM_DIMS):
        a, b = align_stimuli(a, b, join="exact")  # raises naming missing / extra ids
    ids = np.asarray(a[RDM_DIMS[0]].values)
    sigma = _sigma_k(sigma_k, ids, method)
    va, vb = _vectors(a), _vectors(b)
    shared = [d for d in va.dims if d in vb.dims and d != "pair"]
    if shared:
        try:
            va, vb = xr.align(va, vb, join="exact")
        except ValueError as err:
            raise ValueError(
                f"rdm_a and rdm_b share the dims {shared} but their coordinates differ: {err}"
            ) from None
    # Broadcast lazily: each side keeps size-1 dims, so a data RDM is transformed (ranked,
    # normalised) once, not once per model.
    dims = [d for d in va.dims if d != "pair"] + [d for d in vb.dims if d not in va.dims]
    x, y = (
        np.asarray(
            v.expand_dims([d for d in dims if d not in v.dims]).transpose(*dims, "pair").values,
            dtype=float,
        )
        for v in (va, vb)
    )
    check_min_stimuli(ids, f"comparing RDMs (method={method!r})")
    n_pairs = x.shape[-1]
    complete = bool(np.isfinite(x).all() and np.isfinite(y).all())
    valid = None if complete else np.isfinite(x) & np.isfinite(y)
    n_min = n_pairs if valid is None else int(valid.sum(-1).min(initial=n_pairs))
    if n_min < 3:
        raise ValueError(
            f"Cannot compare RDMs: only {n_min} stimulus pair(s) are finite in both "
            f"(of {n_pairs}); at least 3 are needed. The others are NaN (missing) in "
            "rdm_a or rdm_b."
        )
    if method in _COMPLETE and not complete:
        raise ValueError(
            f"method={method!r} needs complete RDMs, but {n_pairs - n_min} stimulus pair(s) "
            f"(of {n_pairs}) are NaN in rdm_a or rdm_b; use another method or complete the "
            "RDMs."
        )
    for label, v in (("rdm_a", x), ("rdm_b", y)):
        if method not in _CENTERED + _UNCENTERED:
            break
        vm = v if valid is None else np.where(valid, v, np.nan)
        top, low = (np.max, np.min) if valid is None else (np.nanmax, np.nanmin)
        if method in _CENTERED:
            bad = top(vm, axis=-1) == low(vm, axis=-1)
            what = "constant"
        else:
            bad = top(np.abs(vm), axis=-1) == 0
            what = "all zero"
        if np.any(bad):
            raise ValueError(
                f"{label} is {what} over the valid stimulus pairs in {int(np.sum(bad))} "
                f"case(s), so its {method} similarity is undefined."
            )
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    x, y = scale_rows_pow2(x, dt), scale_rows_pow2(y, dt)  # no overflow in dt (exact)
    res = compare_vectors(
        as_tensor(x, dev, dt),
        as_tensor(y, dev, dt),
        method,
        n_stimuli=len(ids),
        sigma_k=None if sigma is None else as_tensor(sigma, dev, dt),
    )
    out = to_numpy(res).astype(np.float64)
    if method == "neg_riem_dist" and np.isnan(out).any():
        raise ValueError(
            f"method='neg_riem_dist' is undefined in {int(np.isnan(out).sum())} case(s): the "
            "second moment of rdm_b (the data RDM, G_kl = (d_0k + d_0l - d_kl) / 2) must be "
            "positive definite, as for squared Euclidean or Mahalanobis RDMs of patterns with "
            "at least n_stimuli - 1 independent dimensions, and that of rdm_a plus noise "
            "positive definite for some noise weight."
        )
    if not dims:
        return float(out)
    coords = {d: (va if d in va.dims else vb)[d] for d in dims}
    coords = {d: c for d, c in coords.items() if d in c.coords}
    attrs = {"kind": "rdm_comparison", "method": method, "brainalign_version": __version__}
    return xr.DataArray(out, dims=dims, coords=coords, attrs=attrs, name=method)
