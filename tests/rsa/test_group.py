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
