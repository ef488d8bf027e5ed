"""rsa.sign_flip_test: t against MNE's permutation_t_test, p against every sign flip."""

import itertools

import numpy as np
import pytest
import xarray as xr

from brainalign import rsa

mne_stats = pytest.importorskip("mne.stats")


def test_matches_mne_t_and_the_exhaustive_one_sided_max_t_test():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 30)) + np.r_[1.5, 1.0, np.zeros(28)]
    res = rsa.sign_flip_test(xr.DataArray(x, dims=("subject", "voxel")), n_permutations=20_000,
                             seed=0, device="cpu")  # fmt: skip
    t_ref, _, _ = mne_stats.permutation_t_test(x, n_permutations="all", tail=1, verbose=False)
    np.testing.assert_allclose(res.t.values, t_ref, rtol=1e-12)
    np.testing.assert_allclose(res["mean_score"].values, x.mean(0), rtol=1e-12)
    # MNE's tail=1 takes the maximum of |t| (a two-sided maximum); the one-sided test takes
    # the maximum of t. Reference: all 2^8 sign flips, by brute force (identity included).
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=8)))
    y = flips[:, :, None] * x[None]
    t_all = y.mean(1) / (y.std(1, ddof=1) / np.sqrt(8))
    p_ref = (t_all.max(1)[:, None] >= t_ref[None]).mean(0)
    np.testing.assert_allclose(res.p_fwe.values, p_ref, atol=0.012)  # 3.4 Monte-Carlo SE
    assert res.p_fwe.values[0] < 0.05 and (res.p_fwe.values[2:] > 0.05).all()


def test_elements_not_finite_in_every_subject_are_left_out():
    x = np.random.default_rng(0).normal(size=(6, 5))
    x[2, 3] = np.nan
    res = rsa.sign_flip_test(xr.DataArray(x, dims=("subject", "voxel")), n_permutations=50)
    assert np.isnan(res.p_fwe.values[3]) and np.isfinite(res.p_fwe.values[[0, 1, 2, 4]]).all()


@pytest.mark.parametrize(
    ("maps", "kw", "match"),
    [
        (xr.DataArray(np.zeros((3, 4)), dims=("s", "voxel")), {}, r"needs a 'subject' dim"),
        (xr.DataArray(np.zeros((1, 4)), dims=("subject", "voxel")), {}, r"at least 2 subjects"),
        (xr.DataArray(np.zeros((3, 4)), dims=("subject", "voxel")), {"n_permutations": 0},
         r"n_permutations"),
        (xr.DataArray(np.zeros((3, 4)), dims=("subject", "voxel")), {"alpha": 1.0},
         r"alpha must be in the range \(0(\.0)?, 1(\.0)?\), got 1\.0"),
    ],
)  # fmt: skip
def test_bad_input(maps, kw, match):
    with pytest.raises(ValueError, match=match):
        rsa.sign_flip_test(maps, **kw)


def test_an_element_equal_in_every_subject_has_no_t_and_no_p():
    # it used to get t = NaN and the smallest p-value (NaN >= nothing in the null)
    x = np.random.default_rng(0).normal(size=(8, 4))
    x[:, 1] = 0.0
    res = rsa.sign_flip_test(xr.DataArray(x, dims=("subject", "voxel")), n_permutations=99)
    assert np.isnan(res.t.values[1]) and np.isnan(res.p_fwe.values[1])
    assert np.isfinite(res.p_fwe.values[[0, 2, 3]]).all()


def test_the_identity_flip_counts_as_a_tie():
    # With 4 subjects, 2000 random flips hold the identity ~125 times. Its maximum t over
    # the map is the largest observed t, >= every observed t, but computed in another order
    # (a matrix product), so without a rounding margin it can fall an ulp below and not
    # count. Reference: the identity rows counted as hits by construction, the others by
    # the t formula in numpy (no ties among them: continuous data).
    rng = np.random.default_rng(3)
    n, n_perm, seed = 4, 2000, 11
    x = rng.normal(size=(n, 40)) + 0.8
    res = rsa.sign_flip_test(xr.DataArray(x, dims=("subject", "voxel")),
                             n_permutations=n_perm, seed=seed, device="cpu")  # fmt: skip
    flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_perm, n))  # as drawn
    t_obs = x.mean(0) / (x.std(0, ddof=1) / np.sqrt(n))
    identity = (flips == 1.0).all(1)
    y = flips[~identity][:, :, None] * x[None]
    t_max = (y.mean(1) / (y.std(1, ddof=1) / np.sqrt(n))).max(1)
    hits = identity.sum() + (t_max[:, None] >= t_obs[None]).sum(0)
    assert identity.sum() > 100
    np.testing.assert_array_equal(res.p_fwe.values, (1 + hits) / (1 + n_perm))


@pytest.mark.parametrize("n_perm", [9, 99, 999])
def test_fwe_threshold_separates_the_significant_elements(n_perm):
    rng = np.random.default_rng(n_perm)
    x = rng.normal(size=(9, 60)) + np.r_[np.full(6, 3.0), np.zeros(54)]
    res = rsa.sign_flip_test(xr.DataArray(x, dims=("subject", "voxel")),
                             n_permutations=n_perm, seed=0, alpha=0.05)  # fmt: skip
    assert res.null_max.dims == ("permutation",) and res.null_max.size == n_perm
    assert res.attrs["fwe_alpha"] == 0.05
    threshold = float(res.fwe_threshold)
    significant = res.p_fwe.values <= 0.05
    np.testing.assert_array_equal(res.t.values > threshold, significant)
    m = int(np.floor(0.05 * (1 + n_perm) + 1e-9))  # the m-th largest null maximum
    if m == 0:
        assert threshold == np.inf and not significant.any()
    else:
        assert threshold == np.sort(res.null_max.values)[::-1][m - 1]
        assert significant[:6].any() and not significant[6:].any()
