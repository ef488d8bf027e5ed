"""The (lower, upper) threshold grid, the paper's five families, and grid-wide comparisons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_number, check_option
from brainalign._device import to_numpy
from brainalign._docdict import fill_doc
from brainalign._logging import progress, warn
from brainalign._version import __version__
from brainalign.data._align import align_stimuli
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._compare import METHODS, single_rdm
from brainalign.rsa._compare_kernels import compare_vectors
from brainalign.trsa._common import RDMBatch
from brainalign.trsa._geodesic import tie_rtol
from brainalign.trsa._kernels import (
    average_ranks,
    cpu_path,
    fill_disconnected,
    geodesic_cpu,
    quantiles_sorted,
    rank_minmax,
    rgtm_lu,
    shortest_paths,
    sorted_rows,
    to_square,
    upper_indices,
)

THRESHOLD = "threshold"
FAMILIES = ("local", "global", "geometry-sensitive", "topology-sensitive", "intermediate")
GRID_TRANSFORMS = ("rgtm", "rgdm")
_EPS = 1e-3  # the authors' tolerance on the family boundaries
_CHUNK_ELEMENTS = 2**24  # transformed values held at once (cells x RDMs x pairs)


#: The ``inference`` attr of tRSA results: statistics to describe, not p-values.
DESCRIPTIVE = "descriptive (no p-value)"


def family(lower: float, upper: float) -> str:
    """Return the paper's name for the RGTM with thresholds ``(lower, upper)``.

    Tested in this order (the authors' ``get_rgtm_type``, with their tolerance of 1e-3):
    ``"local"`` (mean of the two ≤ 0.2: only the smallest distances keep their geometry),
    ``"global"`` (mean ≥ 0.8), ``"geometry-sensitive"`` (``upper - lower`` ≥ 0.8: close to
    the RDM), ``"topology-sensitive"`` (``lower`` ≥ 0.4 and ``upper`` ≤ 0.6: close to a
    binary graph at the median), else ``"intermediate"``.

    Parameters
    ----------
    lower, upper : float
        Quantile thresholds, ``0 <= lower <= upper <= 1``.

    Returns
    -------
    family : str
        One of :data:`FAMILIES`.

    Examples
    --------
    >>> from brainalign import trsa
    >>> trsa.family(0.45, 0.55), trsa.family(0.0, 1.0), trsa.family(0.0, 0.2)
    ('topology-sensitive', 'geometry-sensitive', 'local')
    """
    check_number("lower", lower, low=0, high=1)
    check_number("upper", upper, low=0, high=1)
    mean = (lower + upper) / 2
    if mean <= 0.2 + _EPS:
        return "local"
    if mean >= 0.8 - _EPS:
        return "global"
    if upper - lower >= 0.8 - _EPS:
        return "geometry-sensitive"
    if lower >= 0.4 - _EPS and upper <= 0.6 + _EPS:
        return "topology-sensitive"
    return "intermediate"


def threshold_grid(step: float = 0.05) -> xr.DataArray:
    """Return the paper's grid of (lower, upper) thresholds and each cell's family.

    ``lower`` runs over ``0, step, ..., 1 - step`` and ``upper`` over ``lower ... 1`` (the
    authors' ``run_rgtm_grid_search``), without the degenerate cell ``lower = upper = 0``:
    229 cells for ``step=0.05``. Cells with ``lower == upper`` are binary graphs (see
    :func:`rgtm`).

    Parameters
    ----------
    step : float
        Grid spacing in (0, 0.5]; ``1 / step`` must be a whole number.

    Returns
    -------
    grid : xarray.DataArray of str, dims ("threshold",)
        The family of each cell, also as coordinate ``family``, with coordinates ``lower``
        and ``upper``.

    Raises
    ------
    ValueError
        A step outside (0, 0.5] or that does not divide 1.

    Examples
    --------
    >>> from brainalign import trsa
    >>> g = trsa.threshold_grid()
    >>> g.sizes["threshold"], int((g["family"] == "topology-sensitive").sum())
    (229, 15)
    """
    check_number("step", step, low=0, high=0.5, closed="right")
    n = round(1 / step)
    if abs(n * step - 1) > 1e-9:
        raise ValueError(f"step must divide 1 (1 / step a whole number); got step={step}.")
    lows, ups = [], []
    for i in range(n):
        for j in range(i, n + 1):
            if i == 0 and j == 0:
                continue
            lows.append(round(i / n, 10))
            ups.append(round(j / n, 10))
    return _grid_array(np.array(lows), np.array(ups), {"step": float(step)})


def _grid_array(lows: np.ndarray, ups: np.ndarray, attrs: dict[str, Any]) -> xr.DataArray:
    fams = np.array([family(float(lo), float(up)) for lo, up in zip(lows, ups, strict=True)])
    return xr.DataArray(
        fams,
        dims=(THRESHOLD,),
        coords={
            "lower": (THRESHOLD, lows),
            "upper": (THRESHOLD, ups),
            "family": (THRESHOLD, fams),
        },
        name="threshold_grid",
        attrs={"kind": "threshold_grid", **attrs},
    )


def _resolve_grid(grid: Any) -> xr.DataArray:
    if grid is None:
        return threshold_grid()
    if isinstance(grid, xr.DataArray) and THRESHOLD in grid.dims and "lower" in grid.coords:
        return grid
    pairs = np.asarray(grid, dtype=float)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(
            "grid must be a threshold_grid() DataArray or an array of (lower, upper) pairs "
            f"of shape (n_cells, 2); got shape {pairs.shape}."
        )
    for lo, up in pairs:
        if not (0 <= lo <= up <= 1):
            raise ValueError(
                f"grid holds the cell (lower={lo}, upper={up}); every cell needs "
                "0 <= lower <= upper <= 1."
            )
    return _grid_array(pairs[:, 0], pairs[:, 1], {})


class GridTransformer:
    """Transforms one batch of RDMs at many thresholds, sharing the rank and sort steps."""

    def __init__(self, batch: RDMBatch, transform: str, rank: bool) -> None:
        batch.check_not_constant()
        self.batch = batch
        self.transform = transform
        if rank:
            self.x, self.sorted = rank_minmax(batch.v)
        else:
            self.x, self.sorted = batch.v, sorted_rows(batch.v)

    def cells(self, lower: np.ndarray, upper: np.ndarray) -> torch.Tensor:
        """Return the transformed vectors ``(n_cells, B, m)`` at the given thresholds."""
        qa = quantiles_sorted(self.sorted, lower)[:, :, None]
        qb = quantiles_sorted(self.sorted, upper)[:, :, None]
        w = rgtm_lu(self.x[None], qa, qb)
        if self.transform == "rgtm":
            return w
        c, b, m = w.shape
        n = self.batch.n
        flat = w.reshape(c * b, m)
        if cpu_path(flat):
            geo, _ = geodesic_cpu(flat, flat < 1, None)
        else:
            weights = torch.where(flat < 1, flat, torch.full_like(flat, float("inf")))
            d, _ = fill_disconnected(shortest_paths(to_square(weights, n)), None)
            i, j = upper_indices(n, flat.device)
            geo = d[:, i, j]
        return average_ranks(geo, rtol=tie_rtol(geo.dtype, n)).reshape(c, b, m)


def cell_chunks(grid: xr.DataArray, per_cell: int) -> Iterator[np.ndarray]:
    """Index arrays of grid cells, ``per_cell`` values each, within the chunk budget."""
    size = max(1, _CHUNK_ELEMENTS // max(per_cell, 1))
    n = grid.sizes[THRESHOLD]
    return (np.arange(s, min(s + size, n)) for s in range(0, n, size))


@fill_doc
def grid_compare(
    rdm_a: Any,
    rdm_b: Any,
    method: str = "spearman",
    *,
    transform: str = "rgtm",
    grid: Any = None,
    rank: bool = True,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Compare RDMs after the same geo-topological transform, at every threshold cell.

    For each (lower, upper) cell of the grid, both sides are transformed (:func:`rgtm`, or
    the two-step :func:`rgdm` for ``transform="rgdm"``) and compared with
    :func:`brainalign.rsa.compare`'s ``method``. Ranks and sorted values are computed once
    per RDM, the cells are transformed in batches, and the comparison kernels see every
    cell at once. The result, over ``threshold``, is the model-brain similarity map of the
    paper (plot it with :func:`plot_grid`).

    Parameters
    ----------
    rdm_a, rdm_b : xarray.DataArray or array_like
        RDMs with the same stimuli (aligned by id), e.g. brain RDMs over ``subject`` and
        model RDMs over ``layer``. Their leading dims must differ; the result holds every
        combination.
    method : str
        One of :data:`brainalign.rsa.METHODS` but ``"neg_riem_dist"`` (undefined for
        geo-topological RDMs, which are not Euclidean distances).
    transform : {"rgtm", "rgdm"}
        RGTM, or the two-step geodesic RDM (zero-length edges kept, ranked).
    grid : xarray.DataArray or array_like, optional
        Cells: :func:`threshold_grid` (default, 229 cells) or ``(n_cells, 2)`` pairs.
    rank : bool
        Rank-transform each RDM first (the authors' definition).
    %(device)s
    %(dtype)s

    Returns
    -------
    similarity : xarray.DataArray, dims ``("threshold", *rdm_a.dims, *rdm_b.dims)``
        With the grid's ``lower``, ``upper`` and ``family`` coordinates. NaN, with a
        warning naming the cells, where a transformed RDM is constant (possible for the
        RGDM when zero-length edges join every stimulus) and the method is undefined.
        The values are descriptive (attr ``inference``): no p-value, and no correction
        for looking at 229 cells. For a test at a chosen cell, give the transformed RDMs
        (:func:`rgtm`, :func:`rgdm`) to :func:`brainalign.rsa.permutation_test` (valid:
        the transforms commute with relabelling the stimuli), or to
        :func:`brainalign.rsa.test` with ``resample="both"``.

    Raises
    ------
    ValueError
        Unknown method or transform; shared leading dims; a malformed grid; RDMs that
        are non-finite or constant.
    StimulusAlignmentError
        When the two sides hold different stimuli.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import trsa
    >>> x = np.arange(6.0)[:, None]
    >>> d = np.abs(x - x.T)
    >>> s = trsa.grid_compare(d, d ** 2, grid=[[0.2, 0.8], [0.4, 0.6]])
    >>> s.values.round(6).tolist()
    [1.0, 1.0]
    """
    check_option("method", method, METHODS)
    if method == "neg_riem_dist":
        raise ValueError(
            "method='neg_riem_dist' is not available in grid_compare: it needs RDMs whose "
            "second moment is positive definite (squared Euclidean or Mahalanobis distances), "
            "and geo-topological RDMs (clipped to [0, 1], ranked) are not such distances. Use "
            "another rsa.METHODS entry (the authors use 'spearman')."
        )
    check_option("transform", transform, GRID_TRANSFORMS)
    grid = _resolve_grid(grid)
    a, b = single_rdm(rdm_a, "rdm_a"), single_rdm(rdm_b, "rdm_b")
    if not all(
        np.array_equal(a[RDM_DIMS[0]].values, r[d].values) for r in (a, b) for d in RDM_DIMS
    ):
        a, b = align_stimuli(a, b, join="exact")
    ba = RDMBatch(a, "rdm_a", device, dtype)
    bb = RDMBatch(b, "rdm_b", device, dtype)
    shared = set(ba.bdims) & set(bb.bdims)
    if shared:
        raise ValueError(
            f"rdm_a and rdm_b share the leading dims {sorted(shared)}; grid_compare compares "
            "every RDM of one with every RDM of the other, so rename one side's dims "
            "(e.g. rdm_b.rename(subject='model_subject'))."
        )
    ta, tb = GridTransformer(ba, transform, rank), GridTransformer(bb, transform, rank)
    lower = np.asarray(grid["lower"].values, dtype=float)
    upper = np.asarray(grid["upper"].values, dtype=float)
    m = ba.v.shape[1]
    na, nb = ba.v.shape[0], bb.v.shape[0]
    out = np.empty((len(lower), na, nb))
    chunks = list(cell_chunks(grid, (na + nb) * m * (4 if transform == "rgdm" else 1)))
    for idx in progress(chunks, "tRSA grid", total=len(chunks)):
        va = ta.cells(lower[idx], upper[idx])
        vb = tb.cells(lower[idx], upper[idx])
        # RGDMs are average ranks already: Spearman = Pearson of them (no second ranking)
        kernel_method = "pearson" if (transform, method) == ("rgdm", "spearman") else method
        with np.errstate(invalid="ignore", divide="ignore"):  # constant cells: warned below
            res = compare_vectors(
                va[:, :, None, :], vb[:, None, :, :], kernel_method, n_stimuli=ba.n
            )
        out[idx] = to_numpy(res).reshape(len(idx), na, nb)
    bad = ~np.isfinite(out)
    if bad.any():
        cells = np.flatnonzero(bad.reshape(len(lower), -1).any(axis=1))
        warn(
            f"grid_compare: {int(bad.sum())} comparison(s) in {len(cells)} cell(s) are NaN "
            "because a transformed RDM is constant there (e.g. a graph whose zero-length "
            f"edges join every stimulus), first cells (lower, upper): "
            f"{[(float(lower[c]), float(upper[c])) for c in cells[:5]]}."
        )
    out = out.reshape(len(lower), *ba.batch_shape, *bb.batch_shape)
    coords: dict[str, Any] = {
        "lower": grid["lower"],
        "upper": grid["upper"],
        "family": grid["family"],
    }
    for side in (ba, bb):
        coords.update({d: side.lab[d] for d in side.bdims if d in side.lab.coords})
    attrs = {
        "kind": "trsa_grid_comparison",
        "inference": DESCRIPTIVE,
        "method": method,
        "transform": transform,
        "rank": int(rank),
        "brainalign_version": __version__,
    }
    return xr.DataArray(
        out, dims=(THRESHOLD, *ba.bdims, *bb.bdims), coords=coords, attrs=attrs, name=method
    )


def family_mean(values: xr.DataArray) -> xr.DataArray:
    """Average a grid result over the cells of each family.

    Parameters
    ----------
    values : xarray.DataArray
        A result over ``threshold`` with a ``family`` coordinate (from
        :func:`grid_compare` or :func:`grid_identification`).

    Returns
    -------
    mean : xarray.DataArray
        ``threshold`` replaced by ``family`` (in the order of :data:`FAMILIES`).

    Raises
    ------
    SchemaError
        When ``values`` has no ``threshold`` dim or no ``family`` coordinate.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import trsa
    >>> g = trsa.threshold_grid()
    >>> acc = g.copy(data=(g.values == "local").astype(float))
    >>> trsa.family_mean(acc).sel(family="local").item()
    1.0
    """
    from brainalign._checks import SchemaError

    if THRESHOLD not in values.dims or "family" not in values.coords:
        raise SchemaError(
            f"values must have a {THRESHOLD!r} dim with a 'family' coordinate (a grid "
            f"result); it has dims {tuple(values.dims)} and coords {sorted(values.coords)}."
        )
    out = values.groupby("family").mean(THRESHOLD)
    present = [f for f in FAMILIES if f in out["family"].values]
    return out.sel(family=present)
