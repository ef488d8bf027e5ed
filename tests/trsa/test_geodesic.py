"""RGDM: against scipy shortest paths (zero-weight edges kept), the authors' networkx code and
rsatoolbox 0.3.2 (zero-weight edges dropped)."""

import networkx as nx
import numpy as np
import pytest
import torch
import xarray as xr
from scipy.sparse.csgraph import csgraph_from_dense, shortest_path
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from brainalign import trsa
from brainalign.data._schema import RDM_DIMS
from brainalign.trsa._kernels import floyd_warshall_torch, shortest_paths

EPS32 = float(np.finfo(np.float32).eps)


def _len_tol(tol, n, float64=1e-12):
    """``tol`` of geodesic lengths of ``n`` stimuli, sums of edge weights in [0, 1].

    float32: each weight (ranks scaled to [0, 1], the ramp's subtraction and division) is
    right to ~3 eps32 and a path has at most n - 1 edges: 3 (n - 1) eps32, x 4 / 3.
    Ranks of lengths need no tolerance: rgdm ties lengths within 8 (n - 1) eps32.
    """
    return tol(float64=float64, float32=4 * (n - 1) * EPS32)


def _vec(m):
    return squareform(np.asarray(m), checks=False)


def _rank_minmax(v):
    r = rankdata(v)
    return (r - r.min()) / (r.max() - r.min())


def _gt(v, lower, upper):
    x = _rank_minmax(v)
    a, b = np.quantile(x, lower), np.quantile(x, upper)
    return np.clip((x - a) / (b - a), 0, 1)


def _scipy_geodesic(w_vec, keep_vec, fill=None):
    """Shortest paths with scipy; csgraph_from_dense(null_value=inf) keeps 0-weight edges."""
    w = squareform(np.where(keep_vec, w_vec, np.inf), checks=False)
    np.fill_diagonal(w, np.inf)
    g = csgraph_from_dense(w, null_value=np.inf)
    d = shortest_path(g, method="D", directed=False)
    if fill is None:
        fill = d[np.isfinite(d)].max() + 1
    return _vec(np.where(np.isinf(d), fill, d))


def _ranks(d):
    """rankdata with distances equal to 1e-10 of the largest tied (rgdm's documented rule).

    Path sums of the same edges in different orders differ in their last bits; rounding to
    9 significant digits of the largest puts them in one tie group.
    """
    return rankdata(np.round(d / np.abs(d).max(), 9))


def _rdms(rng, n_rdm=3, n=14):
    return np.stack([squareform(pdist(rng.normal(size=(n, 5)))) + 1 for _ in range(n_rdm)])


def _labeled(mats):
    ids = [f"s{i}" for i in range(mats.shape[-1])]
    return xr.DataArray(
        mats,
        dims=("subject", *RDM_DIMS),
        coords={"subject": list(range(len(mats))), RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
    )


@pytest.mark.parametrize(("lower", "upper"), [(0.0, 0.075), (0.2, 0.8), (0.1, 0.3)])
@pytest.mark.float32  # float32 rounding broke ties of path lengths (issue 23)
def test_twostep_equals_scipy_reference_with_zero_edges(rng, lower, upper, tol):
    mats = _rdms(rng)
    got = trsa.rgdm(_labeled(mats), lower, upper)
    assert got.dims == ("subject", *RDM_DIMS)
    for m, g in zip(mats, got.values, strict=True):
        w = _gt(_vec(m), lower, upper)
        ref = _ranks(_scipy_geodesic(w, w < 1))
        np.testing.assert_allclose(_vec(g), ref, rtol=0, atol=1e-12)
        unranked = _vec(trsa.rgdm(m, lower, upper, rank_output=False).values)
        ref = _scipy_geodesic(w, w < 1)
        np.testing.assert_allclose(unranked, ref, rtol=0, atol=_len_tol(tol, len(m)))


def _authors_geodesic_twostep(gtx):
    """doerlbh/TopologicalRSA geodesic_transform(gd_type="twostep"), ported (networkx)."""
    data = (gtx - gtx.min()) / (gtx.max() - gtx.min())
    g = nx.from_numpy_array(squareform(data))
    g.remove_edges_from([e[:2] for e in g.edges.data("weight") if e[2] == 1])
    d = squareform(np.array(nx.floyd_warshall_numpy(g)), checks=False)
    # rankdata (ranks inf above all), with rgdm's tie tolerance for the finite lengths
    fin = np.isfinite(d)
    return rankdata(np.where(fin, np.round(d / d[fin].max(), 9), np.inf))


def test_drop_zero_edges_equals_authors_networkx_code(rng):
    for m in _rdms(rng, 2):
        for lower, upper in ((0.0, 0.075), (0.2, 0.8)):
            ref = _authors_geodesic_twostep(_gt(_vec(m), lower, upper))
            got = trsa.rgdm(m, lower, upper, drop_zero_edges=True)
            np.testing.assert_allclose(_vec(got.values), ref, rtol=0, atol=1e-12)


def test_rsatoolbox_semantics_equals_rsatoolbox_except_inf(rng, tol):
    from rsatoolbox.rdm import RDMs, geodesic_transform, geotopological_transform

    mats = _rdms(rng, 3) * np.array([1.0, 1.05, 1.1])[:, None, None]
    vecs = np.stack([_vec(m) for m in mats])
    # float32: rsatoolbox's weights are min-max scaled into [0, 1] as well
    atol = _len_tol(tol, mats.shape[-1])
    for lower, upper in ((0.2, 0.8), (0.05, 0.6), (0.0, 1.0)):
        gt = geotopological_transform(RDMs(vecs.copy()), lower, upper)  # it edits in place
        ref = geodesic_transform(gt).get_vectors()
        got = trsa.rgdm(_labeled(mats), lower, upper, semantics="rsatoolbox")
        got_v = np.stack([_vec(g) for g in got.values])
        fin = np.isfinite(ref)
        np.testing.assert_allclose(got_v[fin], ref[fin], rtol=0, atol=atol)
        fills = np.nanmax(np.where(fin, ref, np.nan), axis=1) + 1
        np.testing.assert_allclose(got_v, np.where(fin, ref, fills[:, None]), rtol=0, atol=atol)
        assert got.attrs["n_disconnected"] == int((~fin).sum())
    alone = geodesic_transform(RDMs(vecs.copy())).get_vectors()
    got = trsa.rgdm(_labeled(mats), 0.0, 1.0, semantics="rsatoolbox")
    np.testing.assert_allclose(np.stack([_vec(g) for g in got.values]), alone, rtol=0, atol=atol)


def test_differs_from_rsatoolbox_exactly_where_it_drops_zero_edges(rng, tol):
    from rsatoolbox.rdm import RDMs, geodesic_transform, geotopological_transform

    changed = []
    for m in _rdms(rng, 3, n=20):
        v = _vec(m)  # one RDM, values >= 1: pooled = per-RDM quantiles, no in-place defect
        ref = geodesic_transform(geotopological_transform(RDMs(v[None]), 0.2, 0.8))
        ref = ref.get_vectors()[0]
        ours = _vec(trsa.rgdm(m, 0.2, 0.8, rank=False, rank_output=False).values)
        w = trsa.rgtm(m, 0.2, 0.8, rank=False)
        w = _vec(w.values)
        kept = _scipy_geodesic(w, w < 1)
        dropped = _scipy_geodesic(w, (w < 1) & (w > 0), fill=np.inf)
        # float32: ours and w (hence kept and dropped) are float32 lengths and weights
        atol = _len_tol(tol, len(m))
        np.testing.assert_allclose(ours, kept, rtol=0, atol=atol)
        np.testing.assert_allclose(dropped, ref, rtol=0, atol=atol)  # what rsatoolbox does
        differs = ~np.isclose(ours, ref, rtol=0, atol=atol)
        np.testing.assert_array_equal(differs, ~np.isclose(kept, dropped, rtol=0, atol=1e-12))
        changed.append(differs.mean())
    assert min(changed) > 0.5  # zero-length edges change most of rsatoolbox's output


def _knn_reference(x_sq, k):
    n = len(x_sq)
    keep = np.zeros((n, n), bool)
    for i in range(n):
        d = x_sq[i].copy()
        d[i] = np.inf
        for j in np.argsort(d, kind="stable")[:k]:
            keep[i, j] = keep[j, i] = True
    return keep


@pytest.mark.parametrize(
    ("method", "kw"),
    [("p_shortest", {"p": 0.1}), ("k_nearest", {"k": 3}), ("p_nearest", {"p": 0.2})],
)
@pytest.mark.float32  # float32 rounding broke ties of path lengths (issue 23)
def test_other_methods_equal_scipy_reference(rng, method, kw):
    m = _rdms(rng, 1, n=16)[0]
    x = _rank_minmax(_vec(m))
    if method == "p_shortest":
        keep = x <= np.quantile(x, kw["p"])
    else:
        k = kw.get("k", int(kw.get("p", 0) * 16))
        keep = _vec(_knn_reference(squareform(x), k))
    ref = _ranks(_scipy_geodesic(x, keep))
    got = trsa.rgdm(m, method=method, **kw)
    np.testing.assert_allclose(_vec(got.values), ref, rtol=0, atol=1e-12)


def test_disconnected_pairs_are_finite_and_documented(rng):
    # two far-apart chains of points: k_nearest with k=1 links each chain, not the two
    line = np.array([0.0, 1, 3, 6, 10])
    m = squareform(pdist(np.concatenate([line, line + 100])[:, None]))
    g = trsa.rgdm(m, method="k_nearest", k=1, rank_output=False)
    vals = _vec(g.values)
    assert np.isfinite(vals).all() and g.attrs["n_disconnected"] >= 25
    group = np.arange(10) < 5
    cross = _vec((group[:, None] != group[None, :]).astype(float)) == 1
    finite_max = vals[~cross].max()
    np.testing.assert_allclose(vals[cross], finite_max + 1)
    g7 = trsa.rgdm(m, method="k_nearest", k=1, rank_output=False, disconnected=7.0)
    np.testing.assert_allclose(_vec(g7.values)[cross], 7.0)


def test_torch_floyd_warshall_equals_numba_kernel(rng):
    w = rng.random((3, 12, 12))
    w = (w + w.transpose(0, 2, 1)) / 2
    w[w > 0.6] = np.inf
    w[:, np.arange(12), np.arange(12)] = 0
    t = torch.from_numpy(w)
    np.testing.assert_array_equal(floyd_warshall_torch(t).numpy(), shortest_paths(t).numpy())
    ref = np.stack([shortest_path(csgraph_from_dense(a, null_value=np.inf)) for a in w])
    np.testing.assert_allclose(shortest_paths(t).numpy(), ref, atol=1e-12)


def test_device_and_dtype(rng, device):
    m = _rdms(rng, 1)[0]
    a = trsa.rgdm(m, 0.2, 0.8, device=device, dtype="float32")
    b = trsa.rgdm(m, 0.2, 0.8)
    np.testing.assert_allclose(a.values, b.values, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"method": "k_nearst"}, ValueError, r"got 'k_nearst'.*Did you mean 'k_nearest'"),
        ({"p": 1.2}, ValueError, r"p must be in the range \[0, 1\], got 1\.2"),
        ({"k": 0}, ValueError, r"k must be in the range \[1, inf\), got 0"),
        ({"k": 2.5}, TypeError, r"k must be an integer, got float 2\.5"),
        ({"disconnected": -1.0}, ValueError, r"disconnected must be in the range .*got -1"),
        ({"semantics": "rsatoolbox", "method": "p_shortest"}, ValueError, r"'p_shortest'"),
        ({"semantics": "rsatoolbox", "rank_output": True}, ValueError, r"rank_output=True"),
        ({"semantics": "rsatoolbox", "drop_zero_edges": False}, ValueError, r"=False"),
        ({"lower": 0.5, "upper": 0.4}, ValueError, r"lower=0\.5, upper=0\.4"),
    ],
)
def test_argument_errors(rng, kwargs, err, match):
    with pytest.raises(err, match=match):
        trsa.rgdm(_rdms(rng, 1)[0], **kwargs)


def test_torch_thread_count_is_restored(rng):
    before = torch.get_num_threads()
    trsa.rgdm(_rdms(rng, 2)[0], 0.0, 0.2)
    with pytest.raises(ValueError, match="constant"):
        trsa.rgdm(1 - np.eye(5))
    assert torch.get_num_threads() == before


def test_torch_code_paths_equal_cpu_paths(rng, monkeypatch, tol):
    """The GPU code (torch sorts, ranks, Floyd–Warshall) run on the CPU equals the CPU code."""
    from brainalign.trsa import _kernels

    mats = _rdms(rng, 3, n=12)
    da = _labeled(mats)
    da[1] = np.round(da[1])  # ties
    calls = {
        "rgtm": lambda: trsa.rgtm(da, 0.2, 0.7),
        "rgtm_rsatoolbox": lambda: trsa.rgtm(da, 0.2, 0.7, semantics="rsatoolbox"),
        "rgdm": lambda: trsa.rgdm(da, 0.0, 0.3),
        "rgdm_rsatoolbox": lambda: trsa.rgdm(da, 0.1, 0.9, semantics="rsatoolbox"),
        "k_nearest": lambda: trsa.rgdm(da, method="k_nearest", k=1),
        "p_shortest": lambda: trsa.rgdm(da, method="p_shortest", p=0.1),
        "grid": lambda: trsa.grid_compare(
            da.isel(subject=[0]),
            da.rename(subject="model"),
            transform="rgdm",
            grid=[[0.0, 0.2], [0.0, 0.5]],
        ),
    }
    cpu = {k: f() for k, f in calls.items()}
    monkeypatch.setattr(_kernels, "_TORCH_ON_CPU", True)
    # float32: the CPU sums paths in float64, the torch code in float32 (lengths of the
    # rsatoolbox semantics, within _len_tol; ranks are tied alike)
    atol = _len_tol(tol, 12)
    for k, f in calls.items():
        np.testing.assert_allclose(f().values, cpu[k].values, rtol=1e-12, atol=atol, err_msg=k)


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_rgdm_refuses_a_batch_that_cannot_fit_the_budget(rng):
    import brainalign as ba

    m = _labeled(squareform(pdist(rng.normal(size=(120, 4))))[None])
    with (
        ba.config_context(max_memory="100kB"),
        pytest.raises(
            ba.MemoryBudgetError, match=r"trsa: geodesic paths of 1 RDMs of 120 stimuli"
        ),
    ):
        trsa.rgdm(m)
    assert np.isfinite(np.asarray(trsa.rgdm(m))).all()  # the default budget runs it
