"""Cluster-level inference on searchlight maps: max-cluster-mass permutation test."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import SchemaError, check_number
from brainalign._device import resolve_device, resolve_dtype
from brainalign._ties import tie_margin
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._rdm import as_rdm
from brainalign.rsa._searchlight import _POSITIONS, SPATIAL_DIMS, searchlight


def _centre_graph(sl: xr.DataArray, sdim: str | None, cluster_radius: float | None) -> Any:
    """Adjacency between the centres of a searchlight map (space, time or both)."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    graphs = []
    if sdim is not None:
        names = _POSITIONS.get(sdim, ())
        if not names or any(c not in sl.coords for c in names):
            raise SchemaError(
                f"Clusters over {sdim!r} need the {'/'.join(names or ('x', 'y', 'z'))} "
                "coordinates of the centres."
            )
        pos = np.stack([np.asarray(sl[c].values, dtype=float) for c in names], axis=1)
        tree = cKDTree(pos)
        if cluster_radius is None:  # connect every centre to its nearest neighbours
            nn = tree.query(pos, k=2)[0][:, 1] if len(pos) > 1 else np.zeros(1)
            cluster_radius = float(nn.max()) * 1.01
        pairs = tree.query_pairs(cluster_radius, output_type="ndarray")
        a = sp.coo_matrix(
            (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pos), len(pos))
        )
        graphs.append((a + a.T).tocsr())
    if "time" in sl.dims:
        n_t = sl.sizes["time"]
        graphs.append(sp.diags([np.ones(n_t - 1), np.ones(n_t - 1)], [-1, 1], (n_t, n_t)))
    if len(graphs) == 2:
        s, t = graphs
        return (sp.kron(s, sp.eye(t.shape[0])) + sp.kron(sp.eye(s.shape[0]), t)).tocsr()
    return graphs[0].tocsr()


def _cluster_masses(values: np.ndarray, graph: Any, threshold: float) -> tuple[np.ndarray, list]:
    """Label the supra-threshold clusters of a flat map and sum their values."""
    from scipy.sparse.csgraph import connected_components

    labels = np.full(values.shape, -1, dtype=np.int64)
    supra = np.flatnonzero(values > threshold)
    if supra.size == 0:
        return labels, []
    _, comp = connected_components(graph[supra][:, supra], directed=False)
    labels[supra] = comp
    masses = np.bincount(comp, weights=values[supra])
    return labels, masses.tolist()


def cluster_permutation_test(
    data: xr.DataArray,
    model_rdm: Any,
    *,
    radius: float | None,
    n_permutations: int = 1000,
    threshold: float | None = None,
    cluster_radius: float | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Cluster-based permutation test of a searchlight map against one model RDM.

    The stimulus labels of the model RDM are permuted (rows and columns together), and the
    searchlight map is recomputed for every permutation in the same batched pass as the
    observed map: each chunk's data RDMs are computed once and compared with all permuted
    models in one matrix product. Centres above ``threshold`` form clusters (connected over
    neighbouring centres, and over adjacent time samples); a cluster's mass is the sum of
    its similarities, and its p-value compares it with the null distribution of the largest
    cluster mass per permutation, which controls the family-wise error over the map.

    Parameters
    ----------
    data : xarray.DataArray
        As in :func:`searchlight`.
    model_rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        One model RDM.
    radius : float or None
        The searchlight radius (see :func:`searchlight`).
    n_permutations : int
        Number of random stimulus-label permutations (>= 1).
    threshold : float, optional
        Cluster-forming threshold on the similarity; default the 95th percentile of all
        permuted maps' values.
    cluster_radius : float, optional
        Centres closer than this are neighbours (in the units of the position coordinates);
        default: just above the largest nearest-neighbour distance between centres (face
        neighbours on a voxel grid).
    seed : int, optional
        Seed for the permutations (default: the configured seed).
    **kwargs
        Passed to :func:`searchlight` (``metric``, ``method``, ``centers``, ``mask``,
        ``temporal_radius``, ``device``, ``dtype``, ``batch_size``; not ``adjacency``).

    Returns
    -------
    result : xarray.Dataset
        ``similarity`` (the observed map), ``cluster`` (cluster id per centre, -1 outside
        clusters), ``cluster_p`` (the p-value of each centre's cluster, NaN outside),
        ``cluster_mass`` and ``cluster_p_value`` (per cluster, dim ``cluster_id``), and
        ``null_max_mass`` (dim ``permutation``); attrs ``threshold`` and
        ``n_permutations``. ``p = (1 + #{null >= mass}) / (1 + n_permutations)``, a null
        mass within rounding of the observed one counting as a tie (:func:`tie_margin` per
        centre of the cluster: a permutation that keeps the model gives the same map).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from brainalign import rsa
    >>> from brainalign.rsa._cluster import cluster_permutation_test
    >>> rng = np.random.default_rng(0)
    >>> grid = np.stack(np.meshgrid(np.arange(6), np.arange(6), [0], indexing="ij"), -1)
    >>> xyz = grid.reshape(-1, 3) * 3.0
    >>> data = xr.DataArray(rng.normal(size=(8, 36)), dims=("stimulus", "voxel"),
    ...     coords={"stimulus": list("abcdefgh"),
    ...             **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")}})
    >>> res = cluster_permutation_test(data, rsa.rdm(data), radius=4.0, n_permutations=20,
    ...                                seed=0)
    >>> res.similarity.dims, res.null_max_mass.shape
    (('voxel',), (20,))
    """
    from brainalign._config import get_config

    check_number("n_permutations", n_permutations, low=1, integer=True)
    if "adjacency" in kwargs:
        raise ValueError(
            "cluster_permutation_test does not take adjacency= yet (clusters connect over "
            f"positions only); got adjacency of type {type(kwargs['adjacency']).__name__}."
        )
    if seed is None:
        seed = get_config()["seed"]
    model = as_rdm(model_rdm, "model_rdm")
    if any(d not in RDM_DIMS for d in model.dims):
        raise SchemaError(
            f"model_rdm must be a single RDM with dims {RDM_DIMS}, got {tuple(model.dims)}."
        )
    n = model.sizes[RDM_DIMS[0]]
    rng = np.random.default_rng(seed)
    perms = np.vstack([np.arange(n), np.argsort(rng.random((n_permutations, n)), axis=1)])
    mat = np.asarray(model.values, dtype=float)
    stack = model.expand_dims(permutation=n_permutations + 1).copy(
        data=mat[perms[:, :, None], perms[:, None, :]]
    )
    maps = searchlight(data, stack, radius=radius, **kwargs)
    spatial = [d for d in maps.dims if d in SPATIAL_DIMS]
    sdim = spatial[0] if spatial else None
    mdims = [d for d in maps.dims if d != "permutation"]
    flat = np.asarray(maps.transpose("permutation", *mdims).values).reshape(n_permutations + 1, -1)
    observed, null = flat[0], flat[1:]
    if threshold is None:
        threshold = float(np.nanquantile(null, 0.95))
    graph = _centre_graph(maps.isel(permutation=0), sdim, cluster_radius)
    clean = np.nan_to_num(flat, nan=-np.inf)
    null_max = np.array(
        [max(_cluster_masses(v, graph, threshold)[1], default=0.0) for v in clean[1:]]
    )
    labels, masses = _cluster_masses(clean[0], graph, threshold)
    masses_arr = np.asarray(masses, dtype=float)
    # a null cluster equal to an observed one up to rounding (a permutation that keeps the
    # model) ties: each of its values may differ by the tie margin
    dt = resolve_dtype(kwargs.get("dtype"), resolve_device(kwargs.get("device")))
    inside = labels >= 0  # each member value may differ by its own margin
    spread = np.bincount(labels[inside], weights=np.maximum(1.0, np.abs(clean[0][inside])))
    tie = tie_margin(n * (n - 1) // 2, dt) * np.maximum(
        np.pad(spread, (0, len(masses) - len(spread))), 1.0
    )
    p_clusters = (1 + (null_max[None, :] >= (masses_arr - tie)[:, None]).sum(1)) / (
        1 + n_permutations
    )
    p_map = np.where(labels >= 0, p_clusters[np.maximum(labels, 0)] if masses else 1.0, np.nan)
    obs_da = maps.isel(permutation=0, drop=True)
    shape = obs_da.shape
    coords = {k: v for k, v in obs_da.coords.items()}
    attrs = dict(obs_da.attrs)
    attrs.update(
        {
            "kind": "searchlight_cluster_test",
            "threshold": float(threshold),
            "n_permutations": int(n_permutations),
            "alternative": "greater",
            "seed": -1 if seed is None else int(seed),
        }
    )
    return xr.Dataset(
        {
            "similarity": obs_da.copy(data=observed.reshape(shape)),
            "cluster": (obs_da.dims, labels.reshape(shape)),
            "cluster_p": (obs_da.dims, p_map.reshape(shape)),
            "cluster_mass": ("cluster_id", masses_arr),
            "cluster_p_value": ("cluster_id", p_clusters),
            "null_max_mass": ("permutation", null_max),
        },
        coords=coords,
        attrs=attrs,
    )
