"""Permutation inference for RDM comparisons, all permutations in one batched computation."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._config import get_config
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._docdict import fill_doc
from brainalign._ties import tie_margin
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._compare import METHODS, compare, single_rdm
from brainalign.rsa._compare_kernels import compare_vectors
from brainalign.rsa._evaluate import _stack
from brainalign.rsa._rdm import as_rdm

_EXACT_LIMIT = 50_000


def _permutations(n: int, n_permutations: int | None, seed: int | None) -> tuple[np.ndarray, bool]:
    """Return stimulus permutations (identity first) and whether the set is exhaustive."""
    if n_permutations is None and math.factorial(n) <= _EXACT_LIMIT:
        perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
        return perms, True
    n_permutations = 10_000 if n_permutations is None else n_permutations
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_permutations, n)), axis=1)
    return np.vstack([np.arange(n)[None], perms]), False


def _plain_matrix(x: Any) -> bool:
    """Whether ``x`` is a nested list of numbers (one square matrix), not a list of RDMs."""
    return not isinstance(x, dict) and np.ndim(x) == 2


@fill_doc
def permutation_test(
    data_rdm: Any,
    model_rdm: Any,
    method: str = "spearman",
    *,
    n_permutations: int | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.Dataset:
    """Test an RDM correlation by permuting the stimulus labels of the model RDM.

    The null distribution permutes rows and columns of ``model_rdm`` together (Mantel
    test), the standard test for one data RDM against a model in RSA. With ``n`` stimuli and
    ``n! <= 50,000`` all permutations are used (an exact test) unless ``n_permutations`` is
    given; otherwise ``n_permutations`` random ones (default 10,000). The p-value is one-sided
    (greater): ``(1 + #{null >= observed}) / (1 + n_null)`` for random permutations, and
    ``#{null >= observed} / n!`` for the exact test (the identity is among the permutations).
    A null value below the observed one by less than rounding (a permutation that keeps the
    model, computed in another order) counts as ``>=``: the margin is the ``tie_margin``
    attr times ``max(1, |observed|)``, ``1e-12`` in float64 and a few float32 ulps of the
    pair sum in float32.

    Parameters
    ----------
    data_rdm : xarray.DataArray or array_like, shape (n, n)
        The data RDM.
    model_rdm : xarray.DataArray, dims (..., "stimulus_a", "stimulus_b")
        One model RDM, or a stack over a broadcast dim (e.g. ``model`` or ``layer``), or a
        dict ``{name: rdm}`` or a list of labeled RDMs (stacked along ``model``, each
        aligned by stimulus id; different id sets raise naming the ids), or an array of
        shape ``(n_models, n, n)``.
    method : str
        The comparison, one of :data:`brainalign.rsa.METHODS` (see
        :func:`brainalign.rsa.compare`).
    n_permutations : int, optional
        Number of random permutations; ``None`` means exact when feasible, else 10,000.
    seed : int, optional
        Seed for random permutations (default: the configured seed).
    %(device)s
    %(dtype)s

    Returns
    -------
    result : xarray.Dataset
        ``observed`` and ``p_value`` over the model's broadcast dims, and ``null`` with an
        extra ``permutation`` dim; attrs ``exact``, ``method``, ``n_permutations``, and
        ``generalises_to`` = ``"stimuli (subjects fixed)"``: relabelling stimuli tests the
        association over the population of stimuli, for the subject(s) whose data RDM
        this is (to generalise over subjects too, use :func:`brainalign.rsa.test` with
        ``resample="both"``).

    See Also
    --------
    brainalign.encoding.permutation_test : a different test under the same name: it
        permutes the *rows of the targets* (stimuli, blocks or circular shifts of time
        series) against the features and refits a cross-validated ridge encoding model per
        permutation, testing prediction accuracy per target; this one permutes the stimulus
        labels of a model RDM (a Mantel test) and refits nothing.
    brainalign.align.permutation_test : the same idea (permuting stimuli) for alignment
        measures between feature spaces.
    brainalign.rsa.test : bootstrap t-tests over subjects and/or stimuli.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import rsa
    >>> x = np.random.default_rng(0).normal(size=(6, 20))
    >>> res = rsa.permutation_test(rsa.rdm(x), rsa.rdm(x + 0.1))
    >>> bool(res.attrs["exact"]), float(res.p_value) < 0.01
    (True, True)
    """
    check_option("method", method, METHODS)
    if n_permutations is not None:
        check_number("n_permutations", n_permutations, low=1, integer=True)
    if seed is None:
        seed = get_config()["seed"]
    a = single_rdm(data_rdm, "data_rdm")
    if isinstance(model_rdm, xr.DataArray) or _plain_matrix(model_rdm):
        b = as_rdm(model_rdm, "model_rdm")
    else:  # a dict, a list (aligned by stimulus id, not position) or an (M, n, n) array
        b = _stack(model_rdm, "model_rdm", "model")
    if any(d not in RDM_DIMS for d in a.dims):
        raise ValueError(
            f"data_rdm must be a single RDM (dims {RDM_DIMS}), got dims {tuple(a.dims)}; "
            "select one with .sel()/.isel() first."
        )
    first = a[RDM_DIMS[0]].values
    if not all(np.array_equal(first, r[d].values) for r in (a, b) for d in RDM_DIMS):
        a, b = align_stimuli(a, b, join="exact")  # raises naming missing / extra ids
    # neg_riem_dist is not symmetric: the model comes first (rsatoolbox's compare(model, data))
    swap = method == "neg_riem_dist"
    observed = (  # also validates NaN / constant RDMs
        compare(b, a, method, device=device, dtype=dtype)
        if swap
        else compare(a, b, method, device=device, dtype=dtype)
    )
    n = a.sizes[RDM_DIMS[0]]
    perms, exact = _permutations(n, n_permutations, seed)
    bdims = [d for d in b.dims if d not in RDM_DIMS]
    bm = np.asarray(b.transpose(*bdims, *RDM_DIMS).values).reshape(-1, n, n)
    i, j = np.triu_indices(n, k=1)
    a_vec = np.asarray(a.values)[i, j]
    # Pairs that are NaN in the data RDM (unrated judgments) never count: gather only the
    # others, which for incomplete RDMs is a small fraction of all pairs.
    finite = np.isfinite(a_vec)
    i, j, a_vec = i[finite], j[finite], a_vec[finite]
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    av = as_tensor(a_vec, dev, dt)
    bt = as_tensor(bm, dev, dt)
    pt = torch.as_tensor(perms, device=dev)
    it, jt = torch.as_tensor(i, device=dev), torch.as_tensor(j, device=dev)
    chunk = max(1, 2**27 // max(1, bm.shape[0] * len(i)))
    null_parts = []
    for start in range(0, len(perms), chunk):  # chunks of permutations, batched within
        p = pt[start : start + chunk]
        vb = bt[:, p[:, it], p[:, jt]]  # (models, perms, pairs)
        pair = (vb, av) if swap else (av, vb)
        null_parts.append(compare_vectors(*pair, method, n_stimuli=n))
    null = to_numpy(torch.cat(null_parts, dim=1)).astype(np.float64)  # (models, perms)
    obs = null[:, :1]
    ge = (null >= obs - tie_margin(len(i), dt, obs)).sum(axis=1)
    # The identity permutation is the first null sample, so for random permutations this is
    # (1 + #{null >= observed}) / (1 + n_permutations), and for the exact test #{...} / n!.
    p_value = ge / null.shape[1]
    null_out = null if exact else null[:, 1:]
    shape = tuple(b.sizes[d] for d in bdims)
    coords = {d: b[d] for d in bdims if d in b.coords}
    obs_da = xr.DataArray(
        np.asarray(observed, dtype=float).reshape(shape), dims=bdims, coords=coords
    )
    return xr.Dataset(
        {
            "observed": obs_da,
            "p_value": xr.DataArray(p_value.reshape(shape), dims=bdims, coords=coords),
            "null": xr.DataArray(
                null_out.reshape((*shape, -1)), dims=(*bdims, "permutation"), coords=coords
            ),
        },
        attrs={
            "kind": "rdm_permutation_test",
            "method": method,
            "exact": bool(exact),
            "n_permutations": int(null_out.shape[-1]),
            "alternative": "greater",
            "generalises_to": "stimuli (subjects fixed)",
            "seed": -1 if seed is None else int(seed),
            "tie_margin": tie_margin(len(i), dt),  # per unit of max(1, |observed|)
            "brainalign_version": __version__,
        },
    )
