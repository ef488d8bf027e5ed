"""The paper's evaluation: identify a held-out RDM's region or layer by nearest centroid."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import SchemaError, check_number, check_option, check_type
from brainalign._device import to_numpy
from brainalign._docdict import fill_doc
from brainalign._logging import progress
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._compare import single_rdm
from brainalign.trsa._common import RDMBatch
from brainalign.trsa._grid import (
    DESCRIPTIVE,
    GRID_TRANSFORMS,
    THRESHOLD,
    GridTransformer,
    _resolve_grid,
    cell_chunks,
)

BOOTSTRAP = "bootstrap"


def loo_nearest_centroid(x: torch.Tensor, groups: np.ndarray) -> torch.Tensor:
    """Leave-one-group-out nearest-centroid accuracy.

    Parameters
    ----------
    x : torch.Tensor, shape (K, N, C, m)
        ``K`` independent problems; ``N`` group draws, each with one vector per class.
    groups : ndarray, shape (N,)
        The original group of each draw: a held-out draw's centroids come from the draws of
        other groups only (copies of it in a bootstrap sample stay out of training).

    Returns
    -------
    accuracy : torch.Tensor, shape (K,)
        Fraction of the ``N * C`` held-out vectors whose nearest class centroid (Euclidean;
        ties to the first class) is their own class; NaN when a draw has no training draw.
    """
    g = torch.as_tensor(groups, device=x.device)
    w = (g[:, None] != g[None, :]).to(x.dtype)
    counts = w.sum(1)
    cent = torch.einsum("gh,khcm->kgcm", w, x) / counts.clamp(min=1)[None, :, None, None]
    k, n, c, m = x.shape
    dist = torch.cdist(x.reshape(k * n, c, m), cent.reshape(k * n, c, m))
    pred = dist.argmin(dim=2).reshape(k, n, c)
    correct = (pred == torch.arange(c, device=x.device)).to(x.dtype).mean(dim=(1, 2))
    if bool((counts == 0).any()):
        correct = torch.full_like(correct, float("nan"))
    return correct


class _Design:
    """RDMs laid out as ``(group, class)`` upper-triangle vectors."""

    def __init__(
        self,
        rdms: Any,
        class_dim: str,
        group_dim: str,
        device: Any,
        dtype: Any,
    ) -> None:
        check_type("class_dim", class_dim, (str,), "a dim name (str)")
        check_type("group_dim", group_dim, (str,), "a dim name (str)")
        da = single_rdm(rdms, "rdms")
        lead = [d for d in da.dims if d not in RDM_DIMS]
        for name, dim in (("class_dim", class_dim), ("group_dim", group_dim)):
            if dim not in lead:
                check_option(name, dim, lead)
        if class_dim == group_dim or set(lead) != {class_dim, group_dim}:
            raise SchemaError(
                f"rdms must have exactly the dims (group_dim, class_dim, 'stimulus_a', "
                f"'stimulus_b') with two different leading dims; got dims {tuple(da.dims)} "
                f"with class_dim={class_dim!r}, group_dim={group_dim!r}."
            )
        da = da.transpose(group_dim, class_dim, *RDM_DIMS)
        self.n_groups, self.n_classes = da.sizes[group_dim], da.sizes[class_dim]
        if self.n_groups < 2 or self.n_classes < 2:
            raise ValueError(
                f"Identification needs at least 2 groups ({group_dim!r}) and 2 classes "
                f"({class_dim!r}); rdms has {self.n_groups} and {self.n_classes}."
            )
        self.batch = RDMBatch(da, "rdms", device, dtype)
        self.class_dim, self.group_dim = class_dim, group_dim

    def shaped(self, v: torch.Tensor) -> torch.Tensor:
        """``(K, G * C, m)`` → ``(K, G, C, m)``."""
        return v.reshape(v.shape[0], self.n_groups, self.n_classes, v.shape[-1])


def _bootstrap_draws(
    n_groups: int, n: int, n_bootstrap: int, groups: bool, stimuli: bool, seed: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group draws and the pair indices kept for each bootstrap sample."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    index = np.full((n, n), -1, dtype=np.int64)
    index[i, j] = np.arange(len(i))
    index[j, i] = np.arange(len(i))
    out = []
    for _ in range(n_bootstrap):
        g = rng.integers(0, n_groups, n_groups) if groups else np.arange(n_groups)
        while len(np.unique(g)) < 2:  # one group drawn n times leaves nothing to train on
            g = rng.integers(0, n_groups, n_groups)
        s = rng.integers(0, n, n) if stimuli else np.arange(n)
        a, b = np.triu_indices(n, k=1)
        keep = s[a] != s[b]  # a stimulus drawn twice gives no pair with itself (dropped)
        out.append((g, index[s[a[keep]], s[b[keep]]]))
    return out


@fill_doc
def identification_accuracy(
    rdms: Any,
    class_dim: str,
    group_dim: str,
    *,
    n_bootstrap: int = 0,
    groups: bool = True,
    stimuli: bool = True,
    seed: Any = 0,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> float | xr.DataArray:
    """How well RDMs identify their class (region, layer), leaving one group out.

    The paper's evaluation (Lin & Kriegeskorte 2023, ``loo_eval``): for each group (subject
    or network seed), class centroids are the mean RDM vectors of the other groups; each
    of the held-out group's RDMs is assigned the class of the nearest centroid (Euclidean
    distance between upper triangles, as scikit-learn's ``NearestCentroid``). Give it RDMs,
    RGTMs or RGDMs alike.

    Parameters
    ----------
    rdms : xarray.DataArray, dims (group_dim, class_dim, "stimulus_a", "stimulus_b")
        One RDM per group and class.
    class_dim : str
        The dim to identify (e.g. ``"layer"``, ``"roi"``).
    group_dim : str
        The dim to leave out (e.g. ``"seed"``, ``"subject"``).
    n_bootstrap : int
        0: the accuracy on the data. Otherwise the accuracy on each of ``n_bootstrap``
        bootstrap samples: groups drawn with replacement (a held-out draw's copies stay out
        of training; a sample holding a single group is drawn again) and stimuli drawn with
        replacement (the pairs of the drawn stimuli are taken from the given matrices; a
        stimulus paired with its own copy is dropped, as the authors do).
    groups, stimuli : bool
        Which factors the bootstrap resamples.
    seed : int or numpy.random.Generator, optional
        Seed of the bootstrap draws.
    %(device)s
    %(dtype)s

    Returns
    -------
    accuracy : float or xarray.DataArray
        The fraction of RDMs identified correctly, or its bootstrap distribution over
        ``"bootstrap"`` (descriptive, attr ``inference``: no p-value is computed; its
        quantiles are a percentile interval whose coverage brainalign has not calibrated).

    Raises
    ------
    ValueError
        Unknown dims, fewer than 2 groups or classes, non-finite RDMs, ``n_bootstrap < 0``.
    SchemaError
        Dims other than the two named ones besides the stimulus pair.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign import trsa
    >>> rng = np.random.default_rng(0)
    >>> pts = rng.normal(size=(2, 5, 3))  # two regions, five stimuli
    >>> subj = pts[None] + 0.05 * rng.normal(size=(4, 2, 5, 3))  # four subjects
    >>> mats = np.linalg.norm(subj[..., :, None, :] - subj[..., None, :, :], axis=-1)
    >>> ids = list("abcde")
    >>> da = xr.DataArray(mats, dims=("subject", "roi", "stimulus_a", "stimulus_b"),
    ...                   coords={"stimulus_a": ids, "stimulus_b": ids})
    >>> trsa.identification_accuracy(da, "roi", "subject")
    1.0
    """
    check_number("n_bootstrap", n_bootstrap, low=0, integer=True)
    design = _Design(rdms, class_dim, group_dim, device, dtype)
    x = design.shaped(design.batch.v[None])
    if n_bootstrap == 0:
        return float(loo_nearest_centroid(x, np.arange(design.n_groups))[0])
    draws = _bootstrap_draws(design.n_groups, design.batch.n, n_bootstrap, groups, stimuli, seed)
    acc = np.empty(n_bootstrap)
    for b, (g, pairs) in enumerate(draws):
        xb = x[:, torch.as_tensor(g)][..., torch.as_tensor(pairs)]
        acc[b] = float(loo_nearest_centroid(xb, g)[0])
    return xr.DataArray(
        acc,
        dims=(BOOTSTRAP,),
        name="accuracy",
        attrs={
            "kind": "identification_bootstrap",
            "inference": DESCRIPTIVE,
            "brainalign_version": __version__,
        },
    )


@fill_doc
def grid_identification(
    rdms: Any,
    class_dim: str,
    group_dim: str,
    *,
    transform: str = "rgtm",
    grid: Any = None,
    rank: bool = True,
    n_bootstrap: int = 0,
    groups: bool = True,
    stimuli: bool = True,
    seed: Any = 0,
    device: str | torch.device | None = None,
    dtype: str | None = None,
) -> xr.DataArray:
    """Identification accuracy of RGTMs (or two-step RGDMs) at every threshold cell.

    Each RDM is transformed at every (lower, upper) cell of the grid and
    :func:`identification_accuracy` is computed per cell: the paper's threshold-grid map
    of how well geo-topological statistics tell regions or layers apart. Average it per
    family with :func:`family_mean`; plot it with :func:`plot_grid`.

    Parameters
    ----------
    rdms : xarray.DataArray, dims (group_dim, class_dim, "stimulus_a", "stimulus_b")
        One RDM per group and class.
    class_dim, group_dim : str
        As in :func:`identification_accuracy`.
    transform : {"rgtm", "rgdm"}
        The statistic computed at each cell.
    grid : xarray.DataArray or array_like, optional
        Cells (default :func:`threshold_grid`, 229 cells).
    rank : bool
        Rank-transform the RDMs first (authors).
    n_bootstrap : int
        0: the accuracy on the data; otherwise the accuracy on each of ``n_bootstrap``
        bootstrap samples, as in :func:`identification_accuracy` (the same draws for every
        cell; the transform is computed once, on the full RDMs, and the bootstrap selects
        pairs).
    groups, stimuli : bool
        Which factors the bootstrap resamples.
    seed : int or numpy.random.Generator, optional
        Seed of the bootstrap draws.
    %(device)s
    %(dtype)s

    Returns
    -------
    accuracy : xarray.DataArray, dims ("threshold",) or ("threshold", "bootstrap")
        With the grid's ``lower``, ``upper`` and ``family`` coordinates. Descriptive
        (attr ``inference``): no p-value, no correction across cells.

    Raises
    ------
    ValueError
        As :func:`identification_accuracy`; an unknown transform; a malformed grid.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign import trsa
    >>> rng = np.random.default_rng(0)
    >>> pts = rng.normal(size=(2, 6, 3))  # two layers, six stimuli
    >>> seeds = pts[None] + 0.05 * rng.normal(size=(3, 2, 6, 3))  # three seeds
    >>> mats = np.linalg.norm(seeds[..., :, None, :] - seeds[..., None, :, :], axis=-1)
    >>> ids = list("abcdef")
    >>> da = xr.DataArray(mats, dims=("seed", "layer", "stimulus_a", "stimulus_b"),
    ...                   coords={"stimulus_a": ids, "stimulus_b": ids})
    >>> acc = trsa.grid_identification(da, "layer", "seed", grid=[[0.2, 0.8], [0.4, 0.6]])
    >>> acc.values.tolist()
    [1.0, 1.0]
    """
    check_option("transform", transform, GRID_TRANSFORMS)
    check_number("n_bootstrap", n_bootstrap, low=0, integer=True)
    grid = _resolve_grid(grid)
    design = _Design(rdms, class_dim, group_dim, device, dtype)
    trans = GridTransformer(design.batch, transform, rank)
    lower = np.asarray(grid["lower"].values, dtype=float)
    upper = np.asarray(grid["upper"].values, dtype=float)
    draws = (
        _bootstrap_draws(design.n_groups, design.batch.n, n_bootstrap, groups, stimuli, seed)
        if n_bootstrap
        else []
    )
    n_cells = len(lower)
    point = np.empty(n_cells)
    boots = np.empty((n_cells, n_bootstrap))
    per_cell = design.batch.v.numel() * (4 if transform == "rgdm" else 1)
    chunks = list(cell_chunks(grid, per_cell))
    for idx in progress(chunks, "tRSA identification grid", total=len(chunks)):
        x = design.shaped(trans.cells(lower[idx], upper[idx]))
        if not draws:
            point[idx] = to_numpy(loo_nearest_centroid(x, np.arange(design.n_groups)))
        for b, (g, pairs) in enumerate(draws):
            xb = x[:, torch.as_tensor(g)][..., torch.as_tensor(pairs)]
            boots[idx, b] = to_numpy(loo_nearest_centroid(xb, g))
    coords: dict[str, Any] = {
        "lower": grid["lower"],
        "upper": grid["upper"],
        "family": grid["family"],
    }
    attrs = {
        "kind": "trsa_grid_identification",
        "inference": DESCRIPTIVE,
        "transform": transform,
        "rank": int(rank),
        "class_dim": class_dim,
        "group_dim": group_dim,
        "brainalign_version": __version__,
    }
    if draws:
        return xr.DataArray(
            boots, dims=(THRESHOLD, BOOTSTRAP), coords=coords, attrs=attrs, name="accuracy"
        )
    return xr.DataArray(point, dims=(THRESHOLD,), coords=coords, attrs=attrs, name="accuracy")
