"""Scorers against himalaya.scoring (numpy backend, 0.4.x) as the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from himalaya import scoring as hs
from hypothesis import given, settings
from hypothesis import strategies as st

from brainalign.encoding._scoring import (
    SCORERS,
    correlation_score,
    correlation_score_split,
    get_scorer,
    neg_mse,
    r2_score,
    r2_score_split,
    score,
)

# himalaya divides by zero on the constant target before zeroing it
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")

PAIRS = [
    (neg_mse, hs.l2_neg_loss),
    (r2_score, hs.r2_score),
    (correlation_score, hs.correlation_score),
]


EPS32 = float(np.finfo(np.float32).eps)


def _r2_err32(y, pred):
    """First-order float32 error of R² = 1 - SSE/SST, samples on axis -2.

    Inputs, residuals and centred values are rounded to float32 (each by eps32 times the
    magnitudes involved), sums accumulate in float64, the result is rounded once. Constant
    targets (SST = 0) get 0: both sides give exactly 0 there.
    """
    r, yc = y - pred, y - y.mean(-2, keepdims=True)
    sse, sst = (r**2).sum(-2), (yc**2).sum(-2)
    d_sse = 2 * EPS32 * (np.abs(r) * (np.abs(y) + np.abs(pred) + np.abs(r))).sum(-2)
    d_sst = 2 * EPS32 * (np.abs(yc) * (2 * np.abs(y) + np.abs(yc))).sum(-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = (d_sse + sse / sst * d_sst) / sst + EPS32 * np.abs(1 - sse / sst)
    return np.where(sst > 0, err, 0.0)


def _corr_err32(y, pred):
    """First-order float32 error of Pearson's r (as :func:`_r2_err32`): centring errs by
    eps32·(|x| + |x - mean|) per value, which moves r by the covariance it perturbs."""
    n = y.shape[-2]
    yc, pc = y - y.mean(-2, keepdims=True), pred - pred.mean(-2, keepdims=True)
    sy, sp = np.sqrt((yc**2).sum(-2) / n), np.sqrt((pc**2).sum(-2) / n)
    d_y, d_p = EPS32 * (np.abs(y) + np.abs(yc)), EPS32 * (np.abs(pred) + np.abs(pc))
    d_cov = (d_y * np.abs(pc) + np.abs(yc) * d_p).sum(-2) / n
    return 2 * d_cov / (sy * sp) + EPS32


def _data(rng, n=30, t=6, lead=(3,)):
    y = rng.standard_normal((n, t)) + 2.0
    y[:, 2] = 3.0  # a constant target: himalaya gives R² 0 and r 0 there
    pred = y + rng.standard_normal((*lead, n, t))
    return y, pred


@pytest.mark.parametrize(("ours", "ref"), PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_scorers_match_himalaya(ours, ref, rng, device):
    y, pred = _data(rng)
    t_y = torch.tensor(y, device=device)
    # one leading prediction dim (himalaya's n_predictions) and none
    got3 = ours(t_y, torch.tensor(pred, device=device)).cpu().numpy()
    got2 = ours(t_y, torch.tensor(pred[0], device=device)).cpu().numpy()
    np.testing.assert_allclose(got3, ref(y, pred.copy()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got2, ref(y, pred[0].copy()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("ours", "ref"), PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_scorers_broadcast_many_leading_dims(ours, ref, rng):
    y, pred = _data(rng, lead=(2, 3))
    got = ours(torch.tensor(y), torch.tensor(pred)).numpy()
    assert got.shape == (2, 3, y.shape[1])
    want = np.stack([ref(y, pred[i].copy()) for i in range(2)])  # himalaya: one lead dim
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("ours", "ref"), PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_float32_input_accumulates_in_float64(ours, ref, rng):
    # A large offset and many samples: float32 sums would drift; we keep float32 output
    # within float32 rounding of the float64 reference.
    y = (rng.standard_normal((20000, 3)) + 50).astype(np.float32)
    pred = (y + rng.standard_normal((20000, 3))).astype(np.float32)
    got = ours(torch.tensor(y), torch.tensor(pred))
    assert got.dtype == torch.float32
    want = ref(y.astype(np.float64), pred.astype(np.float64))
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-5)


def test_constant_prediction_scores_zero_correlation():
    y = torch.tensor([[1.0], [2.0], [4.0]])
    assert correlation_score(y, torch.ones_like(y)).item() == 0.0


@pytest.mark.parametrize("include_correlation", [True, False])
def test_r2_score_split_matches_himalaya(include_correlation, rng):
    y = rng.standard_normal((40, 5))
    y -= y.mean(0)
    parts = 0.5 * y + rng.standard_normal((3, 40, 5))
    got = r2_score_split(torch.tensor(y), torch.tensor(parts), include_correlation).numpy()
    want = hs.r2_score_split(y, parts.copy(), include_correlation=include_correlation)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    got2 = r2_score_split(torch.tensor(y), torch.tensor(parts[0])).numpy()
    np.testing.assert_allclose(got2, hs.r2_score_split(y, parts[0].copy()), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_bands=st.integers(1, 4))
def test_r2_split_sums_to_joint_r2(seed, n_bands):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((12, 3))
    y -= y.mean(0)
    parts = rng.standard_normal((n_bands, 12, 3))
    split = r2_score_split(torch.tensor(y), torch.tensor(parts)).sum(0)
    joint = r2_score(torch.tensor(y), torch.tensor(parts.sum(0)))
    torch.testing.assert_close(split, joint, rtol=1e-10, atol=1e-10)
    rsplit = correlation_score_split(torch.tensor(y), torch.tensor(parts)).sum(0)
    rjoint = correlation_score(torch.tensor(y), torch.tensor(parts.sum(0)))
    torch.testing.assert_close(rsplit, rjoint, rtol=1e-10, atol=1e-10)


def test_r2_score_split_warns_when_not_centered(rng):
    y = rng.standard_normal((10, 4)) + 1.0
    with pytest.warns(UserWarning, match="4 of 4 target"):
        r2_score_split(torch.tensor(y), torch.tensor(y[None]))


def test_correlation_score_split_matches_himalaya(rng):
    y = rng.standard_normal((25, 4)) + 1.0
    parts = 0.3 * y + rng.standard_normal((2, 25, 4))
    got = correlation_score_split(torch.tensor(y), torch.tensor(parts)).numpy()
    np.testing.assert_allclose(got, hs.correlation_score_split(y, parts.copy()), rtol=1e-12)
    got2 = correlation_score_split(torch.tensor(y), torch.tensor(parts[0])).numpy()
    np.testing.assert_allclose(got2, hs.correlation_score_split(y, parts[0].copy()), rtol=1e-12)


def test_registry_and_get_scorer():
    assert set(SCORERS) == {"neg_mse", "r2", "pearson"}
    assert get_scorer("pearson") is correlation_score
    with pytest.raises(ValueError, match=r"got 'R2'\. Did you mean 'r2'"):
        get_scorer("R2")


@pytest.mark.float32
def test_score_numpy_and_constant_zero_matches_himalaya(rng, tol):
    y, pred = _data(rng)
    got = score(y, pred, metric="r2", constant="zero", device="cpu")
    # float32: the first-order bound of _r2_err32, factor 4
    atol = tol(float64=1e-12, float32=4 * _r2_err32(y, pred).max())
    np.testing.assert_allclose(got, hs.r2_score(y, pred.copy()), rtol=1e-12, atol=atol)


@pytest.mark.float32
def test_score_dataarray_keeps_labels(rng, tol):
    y = rng.standard_normal((8, 3))
    pred = y[None] + rng.standard_normal((2, 8, 3))
    yt = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"voxel": ["a", "b", "c"]})
    yp = xr.DataArray(
        pred.transpose(2, 0, 1), dims=("voxel", "alpha", "stimulus"), coords={"alpha": [1, 10]}
    )
    out = score(yt, yp, metric="pearson")
    assert out.dims == ("alpha", "voxel")
    assert out["voxel"].values.tolist() == ["a", "b", "c"]
    # float32: the first-order bound of _corr_err32, factor 4
    np.testing.assert_allclose(
        out.values,
        hs.correlation_score(y, pred.copy()),
        rtol=tol(float64=1e-12, float32=0),
        atol=tol(float64=0, float32=4 * _corr_err32(y, pred).max()),
    )


def test_score_finds_the_sample_dim(rng, tol):
    y = rng.standard_normal((3, 10))  # (voxel, time): samples are not first
    pred = y + rng.standard_normal((3, 10))
    yt = xr.DataArray(y, dims=("voxel", "time"))
    out = score(yt, xr.DataArray(pred, dims=("voxel", "time")))
    assert out.dims == ("voxel",)
    # float32: the first-order bound of _r2_err32, factor 4
    np.testing.assert_allclose(
        out.values,
        hs.r2_score(y.T, pred.T.copy()),
        rtol=tol(float64=1e-12, float32=0),
        atol=tol(float64=0, float32=4 * _r2_err32(y.T, pred.T).max()),
    )


def test_score_errors(rng):
    y = rng.standard_normal((6, 3))
    bad = y.copy()
    bad[[1, 4], 0] = np.nan
    with pytest.raises(ValueError, match=r"y_true holds 2 NaN value\(s\) out of 18"):
        score(bad, y)
    with pytest.raises(ValueError, match=r"y_pred holds 2 NaN"):
        score(y, bad)
    const = y.copy()
    const[:, 1] = 7.0
    with pytest.raises(ValueError, match=r"1 of 3 target\(s\) constant .* \(at \(1,\)\)"):
        score(const, y, metric="pearson")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 6, 3\) .* got \(6, 4\)"):
        score(y, rng.standard_normal((6, 4)))
    with pytest.raises(ValueError, match=r"got shape \(1, 3\)"):
        score(y[:1], y[:1])
    with pytest.raises(ValueError, match="got 'spearman'"):
        score(y, y, metric="spearman")
    with pytest.raises(ValueError, match="got 'nan'"):
        score(y, y, constant="nan")
    yt = xr.DataArray(y, dims=("stimulus", "voxel"))
    with pytest.raises(ValueError, match=r"missing \('voxel',\)"):
        score(yt, xr.DataArray(y, dims=("stimulus", "unit")))
    with pytest.raises(TypeError, match="got ndarray"):
        score(y, xr.DataArray(y, dims=("stimulus", "voxel")))
