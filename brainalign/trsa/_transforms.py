"""Geo-topological transforms of RDMs (RGTM), Lin & Kriegeskorte (arXiv 2309.11028)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option, check_type
from brainalign._docdict import fill_doc
from brainalign.trsa._common import RDMBatch
from brainalign.trsa._kernels import (
    pooled_quantiles,
    quantiles_sorted,
    rank_minmax,
    rgtm_lu,
    rgtm_rsatoolbox,
    small_op_threads,
    sorted_rows,
)

Semantics = Literal["authors", "rsatoolbox"]
SEMANTICS = ("authors", "rsatoolbox")


def check_thresholds(lower: Any, upper: Any) -> None:
    """Validate a (lower, upper) quantile pair."""
    check_number("lower", lower, low=0, high=1)
    check_number("upper", upper, low=0, high=1)
    if lower > upper:
        raise ValueError(
            f"lower must not exceed upper (quantiles in [0, 1] with lower <= upper); got "
            f"lower={lower}, upper={upper}."
        )


def resolve_rank(rank: Any, semantics: str) -> bool:
    """``rank=None`` → True for the authors' semantics, False for rsatoolbox's."""
    check_option("semantics", semantics, SEMANTICS)
    if rank is None:
        return semantics == "authors"
    check_type("rank", rank, (bool,), "a bool or None")
    if rank and semantics == "rsatoolbox":
        raise ValueError(
            "rank=True cannot be combined with semantics='rsatoolbox' (rsatoolbox 0.3.2 has "
            f"no rank step); got rank={rank!r}, semantics={semantics!r}. Use "
            "semantics='authors' or rank=None."
        )
    return rank


def rgtm_vectors(
    batch: RDMBatch, lower: float, upper: float, rank: bool, semantics: str
) -> torch.Tensor:
    """Return the RGTM of each upper-triangle vector of ``batch`` (validated arguments)."""
    v = batch.v
    if semantics == "rsatoolbox":
        if lower == upper:
            raise ValueError(
                "semantics='rsatoolbox' needs lower < upper (rsatoolbox divides by the "
                f"difference of the two quantiles); got lower={lower}, upper={upper}."
            )
        a, b = pooled_quantiles(v, np.array([lower, upper]))
        return rgtm_rsatoolbox(v, a, b)
    batch.check_not_constant()
    x, xs = rank_minmax(v) if rank else (v, sorted_rows(v))
    ab = quantiles_sorted(xs, np.array([lower, upper]))  # (2, B)
    return rgtm_lu(x, ab[0][:, None], ab[1][:, None])


@fill_doc
def rgtm(
    rdm: Any,
    lower: float = 0.2,
    upper: float = 0.8,
    *,
    rank: bool | None = None,
    semantics: Semantics = "authors",
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Representational geo-topological matrix (RGTM) of each RDM.

    Per RDM, with ``d`` its off-diagonal dissimilarities: ``x = minmax(rank(d))`` (average
    ranks of ties, scaled to [0, 1]); ``a``, ``b`` = the ``lower`` and ``upper`` quantiles
    of ``x`` (numpy's linear interpolation); the RGTM is 0 where ``x < a``,
    ``(x - a) / (b - a)`` where ``a <= x <= b`` and 1 where ``x > b``: pairs closer than
    the ``lower`` quantile count as "the same", pairs beyond ``upper`` as "unrelated", and
    the geometry in between is kept. ``lower=0, upper=1`` leaves ``x`` (the ranked RDM).
    This is ``gt_transform`` of the authors' code (doerlbh/TopologicalRSA) and Lin &
    Kriegeskorte (2023), "The Topology and Geometry of Neural Representations",
    arXiv:2309.11028.

    Parameters
    ----------
    rdm : xarray.DataArray or array_like
        RDMs, dims ``(..., "stimulus_a", "stimulus_b")`` (see
        :func:`brainalign.rsa.rdm`), or one square matrix. Leading dims (``layer``,
        ``subject``, ...) are kept; each RDM is transformed on its own.
    lower, upper : float
        Quantiles in [0, 1], ``lower <= upper``. Where the two thresholds coincide the
        RGTM is a step: 0 up to and including ``a``, 1 above.
    rank : bool, optional
        Rank-transform first (default: True with ``semantics="authors"``). ``rank=False``
        thresholds the raw dissimilarities (quantiles still per RDM); for one RDM it equals
        rsatoolbox 0.3.2's ``geotopological_transform`` whenever that function's in-place
        defect (see Notes) does not strike, for example for dissimilarities that are all at
        least 1.
    semantics : {"authors", "rsatoolbox"}
        ``"rsatoolbox"`` reproduces ``rsatoolbox.rdm.geotopological_transform`` 0.3.2: no
        rank step, quantiles pooled over all RDMs of the input (so each RDM's result depends
        on the others), and its three in-place assignments in sequence (Notes).
    %(device)s
    %(dtype)s

    Returns
    -------
    rgtm : xarray.DataArray
        Same dims and coords as ``rdm``, values in [0, 1], zero diagonal; attrs record
        ``kind="rgtm"``, ``lower``, ``upper``, ``rank`` and ``semantics``.

    Raises
    ------
    ValueError
        Thresholds outside [0, 1] or ``lower > upper``; NaN or infinite dissimilarities;
        an RDM with fewer than 3 stimuli or constant (its ranks are undefined);
        ``rank=True`` with ``semantics="rsatoolbox"``; ``lower == upper`` with
        ``semantics="rsatoolbox"``.

    Notes
    -----
    rsatoolbox 0.3.2 assigns in place: ``d[d < a] = 0``, then rescales the entries now in
    ``[a, b]``, then sets the entries now ``> b`` to 1. Entries already rescaled to values
    above ``b`` (possible when ``b < 1``) are therefore set to 1, and with ``a < 0``
    entries set to 0 are rescaled again. ``semantics="rsatoolbox"`` reproduces this;
    ``semantics="authors", rank=False`` is the formula.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import trsa
    >>> d = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0.0]])
    >>> trsa.rgtm(d, 0.2, 0.8).values[0].round(3).tolist()
    [0.0, 0.0, 0.0, 0.333]
    """
    rank = resolve_rank(rank, semantics)
    check_thresholds(lower, upper)
    batch = RDMBatch(rdm, "rdm", device, dtype)
    with small_op_threads(batch.v.numel()):
        v = rgtm_vectors(batch, lower, upper, rank, semantics)
    attrs = {
        "kind": "rgtm",
        "lower": float(lower),
        "upper": float(upper),
        "rank": int(rank),
        "semantics": semantics,
    }
    return batch.wrap(v, attrs, "rgtm")


@fill_doc
def rgtm_sigmoid(
    rdm: Any,
    alpha: float = 10.0,
    beta: float = 0.5,
    *,
    rank: bool = True,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Sigmoid geo-topological transform ``1 / (1 + exp(-alpha (x - beta)))`` of each RDM.

    ``x = minmax(rank(d))`` per RDM, as in :func:`rgtm` (``gt_type="sigmoid"`` of the
    authors' code, whose defaults ``alpha=10``, ``beta=0.5`` are kept). A smooth version of
    the piecewise-linear RGTM: ``beta`` sets the midpoint, ``alpha`` the steepness.

    Parameters
    ----------
    rdm : xarray.DataArray or array_like
        RDMs, dims ``(..., "stimulus_a", "stimulus_b")``, or one square matrix.
    alpha : float
        Steepness, > 0.
    beta : float
        Midpoint, in [0, 1] on the rank scale.
    rank : bool
        Rank-transform first; ``False`` applies the sigmoid to ``minmax(d)``.
    %(device)s
    %(dtype)s

    Returns
    -------
    rgtm : xarray.DataArray
        Same dims and coords as ``rdm``, values in (0, 1) off the diagonal, zero diagonal.

    Raises
    ------
    ValueError
        ``alpha <= 0``, ``beta`` outside [0, 1], non-finite or constant RDMs.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import trsa
    >>> d = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]])
    >>> trsa.rgtm_sigmoid(d).values[0].round(4).tolist()
    [0.0, 0.0067, 0.5]
    """
    check_number("alpha", alpha, low=0, closed="neither")
    check_number("beta", beta, low=0, high=1)
    check_type("rank", rank, (bool,), "a bool")
    batch = RDMBatch(rdm, "rdm", device, dtype)
    batch.check_not_constant()
    if rank:
        x = rank_minmax(batch.v)[0]
    else:
        lo = batch.v.amin(dim=1, keepdim=True)
        x = (batch.v - lo) / (batch.v.amax(dim=1, keepdim=True) - lo)
    v = torch.sigmoid(alpha * (x - beta))
    attrs = {
        "kind": "rgtm",
        "variant": "sigmoid",
        "alpha": float(alpha),
        "beta": float(beta),
        "rank": int(rank),
    }
    return batch.wrap(v, attrs, "rgtm")
