"""Threshold grid, families, grid-wide comparisons and the grid map."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from brainalign import rsa, trsa
from brainalign._checks import SchemaError
from brainalign.data._schema import RDM_DIMS


def _authors_grid():
    """The cells of doerlbh/TopologicalRSA run_rgtm_grid_search and get_rgtm_type, ported."""
    cells = []
    for lo in np.arange(0, 1.0 - 1e-5, 0.05):
        for up in np.arange(1 + 1e-4, lo + 1e-5, -0.05):
            if lo + up <= 1e-2 or lo + up >= 2 - 1e-2:
                continue
            lo2, up2 = np.around(lo, decimals=2), min(np.around(up, decimals=2), 1)
            m = np.mean([lo2, up2])
            if m <= 0.2 + 1e-3:
                fam = "local"
            elif m >= 0.8 - 1e-3:
                fam = "global"
            elif np.abs(up2 - lo2) >= 0.8 - 1e-3:
                fam = "geometry-sensitive"
            elif (lo2 >= 0.4 - 1e-3) & (up2 <= 0.6 + 1e-3):
                fam = "topology-sensitive"
            else:
                fam = "intermediate"
            cells.append((round(float(lo2), 2), round(float(up2), 2), fam))
    return sorted(cells)


def test_threshold_grid_equals_authors_grid():
    g = trsa.threshold_grid()
    ours = sorted(
        (round(float(lo), 2), round(float(up), 2), str(f))
        for lo, up, f in zip(g["lower"].values, g["upper"].values, g.values, strict=True)
    )
    assert ours == _authors_grid()
    assert len(ours) == 229
    np.testing.assert_array_equal(g["family"].values, g.values)
    assert set(g.values) == set(trsa.FAMILIES)
    assert trsa.threshold_grid(0.25).sizes["threshold"] == 5 + 4 + 3 + 2 - 1  # minus (0, 0)


def test_family_boundaries():
    assert trsa.family(0.0, 0.4) == "local"
    assert trsa.family(0.6, 1.0) == "global"
    assert trsa.family(0.1, 0.9) == "geometry-sensitive"
    assert trsa.family(0.4, 0.6) == "topology-sensitive"
    assert trsa.family(0.3, 0.6) == "intermediate"


def _rdms(rng, n_rdm, n=10, dim="layer", offset=0.0):
    mats = np.stack([squareform(pdist(rng.normal(size=(n, 4)))) + offset for _ in range(n_rdm)])
    ids = [f"s{i}" for i in range(n)]
    return xr.DataArray(
        mats,
        dims=(dim, *RDM_DIMS),
        coords={dim: [f"{dim}{i}" for i in range(n_rdm)], RDM_DIMS[0]: ids, RDM_DIMS[1]: ids},
    )


CELLS = [[0.2, 0.8], [0.45, 0.55], [0.0, 0.3], [0.5, 0.5]]


def test_grid_compare_refuses_neg_riem_dist(rng):
    brain, models = _rdms(rng, 1, dim="subject"), _rdms(rng, 2)
    with pytest.raises(ValueError, match=r"neg_riem_dist' is not available in grid_compare"):
        trsa.grid_compare(brain, models, "neg_riem_dist", grid=CELLS)


@pytest.mark.parametrize("method", [m for m in rsa.METHODS if m != "neg_riem_dist"])
def test_grid_compare_equals_compare_of_rgtms(rng, method, tol):
    brain = _rdms(rng, 2, dim="subject")
    models = _rdms(rng, 3)
    got = trsa.grid_compare(brain, models, method, grid=CELLS)
    assert got.dims == ("threshold", "subject", "layer")
    # float32: both sides transform to the same float32 RGTMs and compare them in float32,
    # batched differently: sums over the 45 pairs in another order differ by up to
    # 45 eps32 relative, x 2 (bures needs its square roots in float64 to stay within it)
    rtol = tol(float64=1e-9, float32=2 * 45 * float(np.finfo(np.float32).eps))
    for c, (lo, up) in enumerate(CELLS):
        ref = rsa.compare(trsa.rgtm(brain, lo, up), trsa.rgtm(models, lo, up), method)
        np.testing.assert_allclose(got[c].values, ref.values, rtol=rtol, atol=1e-12)


def test_grid_compare_rgdm_equals_compare_of_rgdms(rng):
    brain = _rdms(rng, 1, dim="subject")
    models = _rdms(rng, 2)
    cells = [[0.0, 0.1], [0.0, 0.3], [0.0, 0.6]]  # lower > 0 often joins all stimuli at 0
    got = trsa.grid_compare(brain, models, "spearman", transform="rgdm", grid=cells)
    for c, (lo, up) in enumerate(cells):
        ref = rsa.compare(trsa.rgdm(brain, lo, up), trsa.rgdm(models, lo, up), "spearman")
        np.testing.assert_allclose(got[c].values, ref.values, rtol=1e-9, atol=1e-12)


def test_grid_compare_rank_false_equals_rsatoolbox(rng):
    from rsatoolbox.rdm import RDMs, compare, geotopological_transform

    brain = _rdms(rng, 1, dim="subject", offset=1.0).isel(subject=0)
    models = _rdms(rng, 3, offset=1.0)  # >= 1: rsatoolbox's in-place defect does not strike
    got = trsa.grid_compare(brain, models, "spearman", grid=CELLS[:3], rank=False)
    i, j = np.triu_indices(10, k=1)
    for c, (lo, up) in enumerate(CELLS[:3]):
        gb = geotopological_transform(RDMs(brain.values[i, j][None].copy()), lo, up)
        gm = [geotopological_transform(RDMs(m[i, j][None].copy()), lo, up) for m in models.values]
        gm = RDMs(np.concatenate([r.get_vectors() for r in gm]))
        np.testing.assert_allclose(got[c].values, compare(gb, gm, "spearman")[0], atol=1e-12)


def test_family_mean(rng):
    g = trsa.threshold_grid()
    vals = g.copy(data=rng.random(g.sizes["threshold"]))
    out = trsa.family_mean(vals)
    assert list(out["family"].values) == list(trsa.FAMILIES)
    for fam in trsa.FAMILIES:
        np.testing.assert_allclose(out.sel(family=fam), vals.values[g.values == fam].mean())
    with pytest.raises(SchemaError, match=r"it has dims \('x',\)"):
        trsa.family_mean(xr.DataArray([1.0], dims=("x",)))


def test_plot_grid(rng, artifacts):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = trsa.threshold_grid()
    ax = trsa.plot_grid(g.copy(data=rng.random(229)), title="random")
    assert ax.get_title() == "random"
    ax.figure.savefig(artifacts / "trsa_grid.png")
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"got dims \('threshold', 'layer'\)"):
        trsa.plot_grid(xr.DataArray(np.ones((229, 2)), dims=("threshold", "layer")))


def test_grid_errors(rng):
    a, b = _rdms(rng, 2), _rdms(rng, 2)
    with pytest.raises(ValueError, match=r"share the leading dims \['layer'\]"):
        trsa.grid_compare(a, b)
    b = b.rename(layer="model")
    with pytest.raises(ValueError, match=r"got 'spearmann'.*Did you mean 'spearman'"):
        trsa.grid_compare(a, b, "spearmann")
    with pytest.raises(ValueError, match=r"got 'rgdn'.*Did you mean 'rgdm'"):
        trsa.grid_compare(a, b, transform="rgdn")
    with pytest.raises(ValueError, match=r"cell \(lower=0\.6, upper=0\.4\)"):
        trsa.grid_compare(a, b, grid=[[0.6, 0.4]])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        trsa.grid_compare(a, b, grid=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"step must divide 1.*got step=0\.3"):
        trsa.threshold_grid(0.3)
    with pytest.raises(ValueError, match=r"step must be in the range \(0, 0\.5\], got 0"):
        trsa.threshold_grid(0)


def test_grid_compare_warns_on_degenerate_rgdm_cells(rng):
    brain = _rdms(rng, 1, dim="subject")
    models = _rdms(rng, 2)
    # lower = 0.5: the zero-length edges of the nearest half of the pairs join every stimulus,
    # so every geodesic distance is 0 and the comparison is undefined
    with pytest.warns(UserWarning, match=r"in 1 cell\(s\).*\(0\.5, 0\.9\)"):
        out = trsa.grid_compare(brain, models, transform="rgdm", grid=[[0.5, 0.9], [0.0, 0.5]])
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
