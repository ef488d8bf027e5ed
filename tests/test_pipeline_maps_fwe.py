"""Corrected maps: the max-statistic family-wise error test of searchlight and encoding maps."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import binom

import brainalign as ba
from brainalign import rsa
from brainalign.encoding._stats import fwe_max_stat
from brainalign.pipeline.analyses._common import max_stat_fwe
from brainalign.pipeline.analyses.searchlight import permuted_searchlight

IDS = [f"s{i}" for i in range(8)]


def _direct_max_stat(observed, null):
    """The max-statistic p-values written out target by target (numpy only)."""
    n_perm = null.shape[0]
    maxima = [max(v for v in row if np.isfinite(v)) for row in null]
    return np.array(
        [
            np.nan if np.isnan(o) else (1 + sum(m >= o for m in maxima)) / (1 + n_perm)
            for o in observed
        ]
    ), np.array(maxima)


@pytest.mark.parametrize("n_perm", [9, 19, 99, 199])
def test_max_stat_fwe_matches_a_direct_computation(n_perm):
    rng = np.random.default_rng(n_perm)
    observed = rng.normal(size=30) + np.r_[np.full(5, 3.0), np.zeros(25)]
    null = rng.normal(size=(n_perm, 30))
    null[:, 7] = np.nan  # a centre without a patch: left out of every maximum
    observed[7] = np.nan
    p, null_max, threshold = max_stat_fwe(observed, null, alpha=0.05)
    p_ref, max_ref = _direct_max_stat(observed, null)
    assert_allclose(p, p_ref, rtol=0, atol=0)  # exact: the same integer counts
    assert_allclose(null_max, max_ref, rtol=0, atol=0)
    # the encoding module's own max statistic (no NaN there) agrees as well
    clean = np.delete(null, 7, axis=1)
    ref2 = fwe_max_stat(np.delete(observed, 7), clean)
    assert_allclose(np.delete(p, 7), ref2, rtol=0, atol=0)
    # the threshold separates exactly the targets with p_fwe <= alpha
    finite = ~np.isnan(observed)
    assert_array_equal((observed > threshold)[finite], (p <= 0.05)[finite])
    if n_perm < 19:  # floor(0.05 * (1 + 9)) = 0: no p-value can reach 0.05
        assert threshold == np.inf and not (p <= 0.05).any()
    else:
        m = int(np.floor(0.05 * (1 + n_perm) + 1e-9))
        assert threshold == np.sort(max_ref)[::-1][m - 1]


def test_max_stat_fwe_refuses_mismatched_shapes():
    with pytest.raises(
        ValueError, match=r"null must have shape \(n_permutations, \(4,\)\).*\(3, 5\)"
    ):
        max_stat_fwe(np.zeros(4), np.zeros((3, 5)))


def _grid_data(rng, shape=(5, 10), n_stim=8):
    """Random patterns over a flat voxel grid (3 mm), one per stimulus."""
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    values = rng.normal(size=(n_stim, ii.size))
    return xr.DataArray(
        values,
        dims=("stimulus", "voxel"),
        coords={
            "stimulus": IDS[:n_stim],
            "x": ("voxel", 3.0 * ii),
            "y": ("voxel", 3.0 * jj),
            "z": ("voxel", np.zeros(ii.size)),
            "i": ("voxel", ii),
            "j": ("voxel", jj),
            "k": ("voxel", np.zeros(ii.size, int)),
        },
    )


def _model(rng, n_stim=8):
    return rsa.rdm(ba.responses(rng.normal(size=(n_stim, 4)), IDS[:n_stim]))


def test_permuted_searchlight_equals_the_maps_of_permuted_models():
    rng = np.random.default_rng(0)
    data, model = _grid_data(rng), _model(rng)
    opts = dict(radius=4.0, metric="correlation", method="spearman")
    res = permuted_searchlight(data, model, n_permutations=12, seed=3, **opts)
    # the observed map is the plain searchlight map
    plain = rsa.searchlight(data, model, **opts)
    assert_allclose(res.similarity.values, plain.values, atol=1e-12)
    # the null: the documented draw (argsort of uniform keys, generator seeded with seed),
    # each permutation applied to the model's rows and columns, one map each, max over map
    keys = np.random.default_rng(3).random((12, 8))
    perms = np.argsort(keys, axis=1)
    mat = model.values
    maxima = []
    for perm in perms:
        permuted = model.copy(data=mat[np.ix_(perm, perm)])
        maxima.append(np.nanmax(rsa.searchlight(data, permuted, **opts).values))
    assert_allclose(res.null_max.values, maxima, atol=1e-12)
    count = (np.array(maxima)[:, None] >= plain.values[None, :]).sum(0)
    assert_allclose(res.p_fwe.values, (1 + count) / 13, rtol=0, atol=1e-15)
    assert res.attrs["n_permutations"] == 12 and "max-statistic" in res.attrs["test"]
    # floor(0.05 * 13) = 0: too few permutations for any centre to reach 0.05
    assert float(res.fwe_threshold) == np.inf and not (res.p_fwe.values <= 0.05).any()


def test_fwe_maps_control_the_familywise_error_rate():
    # Seeded Monte Carlo: 200 datasets of pure noise (8 stimuli, 50 centres each), 19
    # stimulus-label permutations of each dataset's own model RDM, the maps computed as in
    # permuted_searchlight (one batched searchlight pass; above it is checked to equal
    # searchlight maps of permuted models) and corrected by max_stat_fwe. Exchangeable labels
    # make the corrected test exact: P(any centre with p_fwe <= 0.05) = 1/20. The number of
    # datasets with a false positive must lie in the central 99.9 % binomial band; the
    # uncorrected test (each centre against its own null) must not.
    n_sets, n_perm, block = 200, 19, 50
    opts = dict(radius=4.0, metric="correlation", method="spearman")
    rng = np.random.default_rng(7)
    any_fwe = any_unc = 0
    # the datasets side by side on one grid, 1 m apart: no patch spans two of them
    ii, jj = np.meshgrid(np.arange(5), np.arange(10), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    shift = np.repeat(np.arange(block), ii.size)
    coords = {
        "stimulus": IDS,
        "x": ("voxel", 3.0 * np.tile(ii, block) + 1000.0 * shift),
        "y": ("voxel", 3.0 * np.tile(jj, block)),
        "z": ("voxel", np.zeros(ii.size * block)),
    }
    for _ in range(n_sets // block):  # 50 datasets per searchlight call
        data = xr.DataArray(
            rng.normal(size=(8, ii.size * block)), dims=("stimulus", "voxel"), coords=coords
        )
        feats = rng.normal(size=(block, 8, 4))  # each dataset's model: correlation distances
        models = np.stack([1 - np.corrcoef(f) for f in feats])
        perms = np.concatenate(
            [
                np.arange(8)[None, None].repeat(block, 0),
                np.argsort(rng.random((block, n_perm, 8)), -1),
            ],
            axis=1,
        )  # (dataset, 1 + n_perm, stimuli): the identity first
        rows = np.arange(block)[:, None, None, None]
        stack = models[rows, perms[:, :, :, None], perms[:, :, None, :]]
        rdms = xr.DataArray(
            stack,
            dims=("dataset", "permutation", "stimulus_a", "stimulus_b"),
            coords={"stimulus_a": IDS, "stimulus_b": IDS},
        )
        maps = rsa.searchlight(data, rdms, **opts).transpose("dataset", "permutation", "voxel")
        values = maps.values.reshape(block, 1 + n_perm, block, -1)  # by the voxels' dataset
        for k in range(block):
            own = values[k, :, k]  # dataset k's maps against its own permuted models
            p_fwe, _, threshold = max_stat_fwe(own[0], own[1:])
            hit = bool((p_fwe <= 0.05).any())
            assert hit == bool((own[0] > threshold).any())
            any_fwe += hit
            p_unc = (1 + (own[1:] >= own[0][None]).sum(0)) / (1 + n_perm)
            any_unc += bool((p_unc <= 0.05).any())
    low, high = binom.interval(0.999, n_sets, 0.05)
    assert low <= any_fwe <= high, (any_fwe, low, high)
    assert any_unc > high, any_unc
    print(
        f"FWE: {any_fwe}/{n_sets} (band {low:.0f}-{high:.0f}); uncorrected: {any_unc}"
    )  # without the correction the error rate is far above alpha
