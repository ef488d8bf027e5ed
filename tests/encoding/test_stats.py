"""Permutation indices, p-values, FWE/FDR and bootstrap CIs against independent references.

References: plain numpy loops (counts, maxima, per-resample scores with himalaya.scoring),
``scipy.stats.false_discovery_control`` for Benjamini–Hochberg, hand arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
import xarray as xr
from himalaya import scoring as hs

from brainalign.encoding import _stats
from brainalign.encoding._scoring import correlation_score
from brainalign.encoding._stats import (
    bootstrap_ci,
    bootstrap_indices,
    fdr_bh,
    fwe_max_stat,
    permutation_indices,
    permutation_pvalues,
)

RUNS = np.array([0] * 7 + [1] * 10 + [2] * 1 + [3] * 5)  # contiguous, one run of length 1
RUNS_MIXED = np.array([1, 0, 1, 1, 0, 2, 0, 2, 2, 1, 0])  # runs interleaved


def _assert_permutations_within_runs(idx, runs):
    n = runs.size
    assert idx.dtype == np.int64 and idx.shape[1] == n
    for row in idx:
        assert np.array_equal(np.sort(row), np.arange(n))  # a permutation
        assert np.array_equal(runs[row], runs)  # samples stay in their run


@pytest.mark.parametrize("runs", [None, RUNS, RUNS_MIXED], ids=["one_run", "runs", "mixed"])
@pytest.mark.parametrize("kind", ["stimulus", "block", "circular"])
def test_permutations_respect_runs(kind, runs):
    n = 23 if runs is None else runs.size
    idx = permutation_indices(n, 40, kind=kind, block_size=3, runs=runs, seed=0)
    _assert_permutations_within_runs(idx, np.zeros(n, int) if runs is None else runs)
    again = permutation_indices(n, 40, kind=kind, block_size=3, runs=runs, seed=0)
    assert np.array_equal(idx, again)  # seeded
    assert len({tuple(r) for r in idx}) > 1  # not all the same draw


def test_stimulus_permutations_are_uniform():
    # All 3! = 6 orders of 3 samples, each with probability 1/6 (chi-square, 6000 draws).
    idx = permutation_indices(3, 6000, kind="stimulus", seed=1)
    _, counts = np.unique(idx, axis=0, return_counts=True)
    assert counts.size == 6
    assert scipy.stats.chisquare(counts).pvalue > 1e-3


def test_block_permutations_keep_blocks_contiguous():
    idx = permutation_indices(RUNS.size, 30, kind="block", block_size=3, runs=RUNS, seed=2)
    for row in idx:
        for r in np.unique(RUNS):
            pos = np.flatnonzero(RUNS == r)
            seq = row[pos]  # the run's new content, in order
            # blocks of the original run: consecutive positions pos[k:k + 3]
            for k in range(0, pos.size, 3):
                block = pos[k : k + 3]
                where = np.flatnonzero(np.isin(seq, block))
                assert np.array_equal(seq[where], block)  # inner order kept
                assert np.all(np.diff(where) == 1)  # contiguous


def test_circular_shifts_are_rotations_never_identity():
    idx = permutation_indices(RUNS.size, 200, kind="circular", runs=RUNS, seed=3)
    for r in np.unique(RUNS):
        pos = np.flatnonzero(RUNS == r)
        length = pos.size
        shifts = set()
        for row in idx:
            local = np.searchsorted(pos, row[pos])  # indices within the run
            shift = (local[0] - 0) % length
            assert np.array_equal(local, (np.arange(length) + shift) % length)
            shifts.add(shift)
        if length > 1:
            assert shifts == set(range(1, length))  # every non-zero shift, never 0
        else:
            assert shifts == {0}


def test_permutation_index_errors():
    with pytest.raises(ValueError, match="got 'shuffle'"):
        permutation_indices(5, 2, kind="shuffle")
    with pytest.raises(ValueError, match=r"block_size is required .* got None"):
        permutation_indices(5, 2, kind="block")
    with pytest.raises(ValueError, match=r"block_size must be in the range \[1, inf\), got 0"):
        permutation_indices(5, 2, kind="block", block_size=0)
    with pytest.raises(ValueError, match=r"one per sample \(5\), got shape \(4,\)"):
        permutation_indices(5, 2, runs=[0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"n_permutations must be in the range \[1, inf\)"):
        permutation_indices(5, 0)


def test_pvalues_hand_checked():
    # target 0: observed 0.5, null [0.2, 0.6, 0.5] -> 2 >= 0.5 -> (1 + 2) / 4 = 0.75
    # target 1: observed 0.1, null [0.3, 0.0, 0.1] -> 2 >= 0.1 -> 0.75
    # max null per permutation: [0.3, 0.6, 0.5]; FWE: target 0 -> (1 + 2) / 4, target 1 -> 1
    obs = np.array([0.5, 0.1])
    null = np.array([[0.2, 0.3], [0.6, 0.0], [0.5, 0.1]])
    np.testing.assert_allclose(permutation_pvalues(obs, null), [0.75, 0.75])
    np.testing.assert_allclose(fwe_max_stat(obs, null), [0.75, 1.0])


def test_pvalues_match_numpy_loops(rng):
    obs = rng.standard_normal((4, 5))
    obs[0, 0] = np.nan
    null = rng.standard_normal((99, 4, 5))
    p = permutation_pvalues(obs, null)
    fwe = fwe_max_stat(obs, null)
    max_null = [null[k].max() for k in range(99)]
    for i in range(4):
        for j in range(5):
            if np.isnan(obs[i, j]):
                assert np.isnan(p[i, j]) and np.isnan(fwe[i, j])
                continue
            count = sum(null[k, i, j] >= obs[i, j] for k in range(99))
            assert p[i, j] == (1 + count) / 100
            count_max = sum(m >= obs[i, j] for m in max_null)
            assert fwe[i, j] == (1 + count_max) / 100
    finite = ~np.isnan(obs)
    assert np.all(fwe[finite] >= p[finite])


def test_pvalues_labels_and_errors(rng):
    obs = xr.DataArray([0.2, 0.4], dims=("voxel",), coords={"voxel": ["a", "b"]})
    out = permutation_pvalues(obs, rng.standard_normal((9, 2)))
    assert out.dims == ("voxel",) and out["voxel"].values.tolist() == ["a", "b"]
    with pytest.raises(ValueError, match=r"shape \(n_permutations, 2\) .* got \(9, 3\)"):
        permutation_pvalues(obs, rng.standard_normal((9, 3)))
    null = rng.standard_normal((9, 2))
    null[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"null holds 1 NaN"):
        fwe_max_stat(obs, null)


@pytest.mark.parametrize("shape", [(1,), (50,), (7, 9)])
def test_fdr_bh_matches_scipy(shape, rng):
    p = rng.random(shape) ** 3
    p.flat[:3] = p.flat[0]  # ties
    adjusted, reject = fdr_bh(p, alpha=0.1)
    want = scipy.stats.false_discovery_control(p.reshape(-1), method="bh").reshape(shape)
    np.testing.assert_allclose(adjusted, want, rtol=1e-12)
    assert np.array_equal(reject, want <= 0.1)


def test_fdr_bh_hand_checked_and_errors():
    # sorted p = [0.01, 0.03, 0.04], m = 3: scaled [0.03, 0.045, 0.04] -> running min from
    # the top: [0.03, 0.04, 0.04]
    adjusted, reject = fdr_bh([0.01, 0.04, 0.03], alpha=0.035)
    np.testing.assert_allclose(adjusted, [0.03, 0.04, 0.04])
    assert reject.tolist() == [True, False, False]
    with pytest.raises(ValueError, match=r"in \[0, 1\], got values in \[0.1, 1.5\]"):
        fdr_bh([0.1, 1.5])
    with pytest.raises(ValueError, match="pvalues holds 1 NaN"):
        fdr_bh([0.1, np.nan])
    with pytest.raises(ValueError, match=r"alpha must be in the range \[0, 1\], got 2"):
        fdr_bh([0.1], alpha=2)


def _boot_reference(y, pred, indices, metric):
    ref = {"pearson": hs.correlation_score, "r2": hs.r2_score, "neg_mse": hs.l2_neg_loss}
    return np.stack([ref[metric](y[i], pred[i].copy()) for i in indices])


@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
@pytest.mark.parametrize("metric", ["pearson", "r2", "neg_mse"])
def test_bootstrap_matches_numpy_loop(metric, rng, device, monkeypatch):
    monkeypatch.setattr(_stats, "_MEMORY_BUDGET", 2**12)  # force several chunks
    y = rng.standard_normal((12, 4)) + 10.0  # an offset: moments must not cancel
    pred = 0.7 * y + rng.standard_normal((12, 4))
    idx = bootstrap_indices(12, 60, seed=0)
    idx[0] = 5  # a resample of one repeated row: constant, himalaya scores 0 (r2, r)
    low, high, samples = bootstrap_ci(
        y,
        pred,
        metric=metric,
        indices=idx,
        ci=0.9,
        return_samples=True,
        device=device,
        dtype="float64",
    )
    ref = _boot_reference(y, pred, idx, metric)
    if metric != "neg_mse":
        # himalaya's convention for a constant y_true is 0; with the offset its float64 mean
        # leaves rounding residue (variance ~1e-30, R² ~ -1e30), so we state the convention
        ref[0] = 0.0
    np.testing.assert_allclose(samples, ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(low, np.quantile(ref, 0.05, axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(high, np.quantile(ref, 0.95, axis=0), rtol=1e-9, atol=1e-9)


def test_bootstrap_seed_labels_and_coverage(rng):
    y = rng.standard_normal((200, 3))
    pred = y * [1.0, 0.5, 0.0] + rng.standard_normal((200, 3))
    yt = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"voxel": ["a", "b", "c"]})
    low, high = bootstrap_ci(yt, pred, n_bootstraps=300, seed=4)
    low2, high2 = bootstrap_ci(yt, pred, n_bootstraps=300, seed=4)
    assert low.dims == ("voxel",) and low["voxel"].values.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(low.values, low2.values)
    np.testing.assert_array_equal(high.values, high2.values)
    observed = hs.correlation_score(y, pred.copy())
    assert np.all(low.values < observed) and np.all(observed < high.values)
    assert low.values[2] < 0 < high.values[2]  # no signal in target c


def test_bootstrap_errors(rng):
    y = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match=r"same shape .* got \(5, 2\) and \(5, 3\)"):
        bootstrap_ci(y, rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(n_bootstraps, 5\), got dtype int64 and "):
        bootstrap_ci(y, y, indices=np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"in \[0, 4\], got values in \[0, 5\]"):
        bootstrap_ci(y, y, indices=np.array([[0, 1, 2, 3, 5]]))
    with pytest.raises(ValueError, match=r"ci must be in the range \(0, 1\), got 1.5"):
        bootstrap_ci(y, y, ci=1.5)
    bad = y.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="y_pred holds 1 infinite"):
        bootstrap_ci(y, bad)


def test_rescoring_permuted_targets_gives_calibrated_pvalues(rng):
    # How the solver uses the indices: score y[idx] (n_perm, n, t) against fixed predictions
    # (the scorers broadcast y_true's leading dims). Under H0 (independent y and predictions)
    # the p-values are uniform on {1/100, ..., 1}: about 5% of targets reach p <= 0.05, and
    # the max-statistic FWE controls the family: few targets (usually none) survive.
    y = rng.standard_normal((40, 1000))
    pred = rng.standard_normal((40, 1000))
    idx = permutation_indices(40, 99, kind="stimulus", seed=5)
    null = correlation_score(torch.tensor(y[idx]), torch.tensor(pred)).numpy()
    assert null.shape == (99, 1000)
    observed = correlation_score(torch.tensor(y), torch.tensor(pred)).numpy()
    p = permutation_pvalues(observed, null)
    assert 0.03 < np.mean(p <= 0.05) < 0.07  # binomial sd ~0.007
    assert np.mean(fwe_max_stat(observed, null) <= 0.05) < 0.01
