"""k-NN alignment (mutual k-NN, Jaccard, cycle, rank) against platonic-rep and scikit-learn.

References: the vendored platonic-rep metrics (tests/align/_refs/platonic.py, commit
dcd76ba) for mutual_knn, cycle_knn and lcs_knn; scikit-learn's NearestNeighbors (the
neighbour search of llm_repsim's jaccard_similarity) for the Jaccard overlap. The
measures are means of counts, so they are compared as integer totals (exactly).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from sklearn.neighbors import NearestNeighbors

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.align import _knn
from brainalign.align._knn import knn_overlap, mutual_knn

_spec = importlib.util.spec_from_file_location(
    "_platonic_ref", Path(__file__).parent / "_refs" / "platonic.py"
)
plat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plat)


def _reps(rng, n, p, *, ids=None, values=None):
    values = rng.normal(size=(n, p)) if values is None else values
    ids = [f"s{i:03d}" for i in range(n)] if ids is None else ids
    return ba.responses(values, ids, feature_dim="unit")


def _pair(rng, n=40, p=6, q=9, noise=1.0):
    """Two related representations of the same stimuli (shared latent + noise)."""
    z = rng.normal(size=(n, 4))
    x = z @ rng.normal(size=(4, p)) + noise * rng.normal(size=(n, p))
    y = z @ rng.normal(size=(4, q)) + noise * rng.normal(size=(n, q))
    return _reps(rng, n, p, values=x), _reps(rng, n, q, values=y)


def _ref_feats(da, metric):
    t = torch.as_tensor(da.values, dtype=torch.float64)
    return F.normalize(t, dim=-1) if metric == "cosine" else t


@pytest.mark.parametrize("metric", ["cosine", "inner"])
@pytest.mark.parametrize(("n", "k"), [(12, 1), (40, 5), (40, 39), (90, 10)])
def test_mutual_knn_matches_platonic(rng, metric, n, k):
    a, b = _pair(rng, n=n)
    ours = float(mutual_knn(a, b, k, metric=metric))
    ref = plat.mutual_knn(_ref_feats(a, metric), _ref_feats(b, metric), k)
    # both are (shared neighbours) / (n k): compare the integer totals exactly
    assert round(ours * n * k, 6) == round(ref * n * k)
    assert ours == pytest.approx(ref, abs=1e-6)  # the reference sums in float32


@pytest.mark.parametrize("metric", ["cosine", "inner"])
@pytest.mark.parametrize(("n", "k"), [(12, 1), (40, 3), (60, 10)])
def test_cycle_matches_platonic(rng, metric, n, k):
    a, b = _pair(rng, n=n)
    ours = float(knn_overlap(a, b, k, kind="cycle", metric=metric))
    ref = plat.cycle_knn(_ref_feats(a, metric), _ref_feats(b, metric), k)
    assert round(ours * n, 6) == round(ref * n)
    # and the other direction, which differs in general
    ours_ba = float(knn_overlap(b, a, k, kind="cycle", metric=metric))
    ref_ba = plat.cycle_knn(_ref_feats(b, metric), _ref_feats(a, metric), k)
    assert round(ours_ba * n, 6) == round(ref_ba * n)


@pytest.mark.parametrize("metric", ["cosine", "inner"])
@pytest.mark.parametrize(("n", "k"), [(12, 1), (40, 5), (50, 12)])
def test_rank_is_platonic_lcs_over_k(rng, metric, n, k):
    a, b = _pair(rng, n=n, noise=0.3)
    ours = float(knn_overlap(a, b, k, kind="rank", metric=metric))
    ref = float(plat.lcs_knn(_ref_feats(a, metric), _ref_feats(b, metric), k))
    assert round(ours * n * k, 6) == round(ref * n)
    assert 0 < ours < 1


def _sklearn_neighbours(x, k, metric):
    if metric == "cosine":
        nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(x)
        return nn.kneighbors(x, return_distance=False)[:, 1:]  # drop the point itself
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "inner"])
@pytest.mark.parametrize("k", [1, 4, 15])
def test_jaccard_matches_sklearn_neighbours(rng, metric, k):
    a, b = _pair(rng, n=50)
    na = _sklearn_neighbours(a.values, k, metric)
    nb = _sklearn_neighbours(b.values, k, metric)
    ref = np.mean(
        [len(set(u) & set(v)) / len(set(u) | set(v)) for u, v in zip(na, nb, strict=True)]
    )
    assert float(knn_overlap(a, b, k, kind="jaccard", metric=metric)) == pytest.approx(
        ref, abs=1e-12
    )


def test_jaccard_and_mutual_are_related(rng):
    a, b = _pair(rng, n=40)
    for k in (1, 5, 20):
        m = float(mutual_knn(a, b, k))
        # per stimulus J = s / (2k - s) with s = k m_i; at least the bound J <= m holds
        assert float(knn_overlap(a, b, k, kind="jaccard")) <= m + 1e-12


@pytest.mark.parametrize("kind", ["mutual", "jaccard", "cycle", "rank"])
def test_identical_representations_give_one(rng, kind):
    a = _reps(rng, 30, 5)
    fn = mutual_knn if kind == "mutual" else (lambda x, y, k: knn_overlap(x, y, k, kind=kind))
    assert float(fn(a, a, 4)) == 1.0


def test_stimulus_order_invariance(rng):
    a, b = _pair(rng, n=45)
    perm = rng.permutation(45)
    b_shuffled = b.isel(stimulus=perm)
    assert float(mutual_knn(a, b, 5)) == float(mutual_knn(a, b_shuffled, 5))
    for kind in ("jaccard", "cycle", "rank"):
        assert float(knn_overlap(a, b, 5, kind=kind)) == float(
            knn_overlap(a, b_shuffled, 5, kind=kind)
        )


def test_orthogonal_and_scaling_invariance(rng):
    a, b = _pair(rng, n=40, p=6)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a_rot = a.copy(data=3.7 * a.values @ q)
    for metric in ("cosine", "inner"):  # a global scale keeps the inner-product order
        assert float(mutual_knn(a, a_rot, 5, metric=metric)) == 1.0
        assert float(mutual_knn(a_rot, b, 5, metric=metric)) == float(
            mutual_knn(a, b, 5, metric=metric)
        )
    # per-stimulus scaling changes inner products but not cosines
    scaled = a.copy(data=a.values * rng.uniform(0.5, 3.0, size=(40, 1)))
    assert float(mutual_knn(a, scaled, 5, metric="cosine")) == 1.0
    assert float(mutual_knn(a, scaled, 5, metric="inner")) < 1.0


def test_symmetry(rng):
    a, b = _pair(rng, n=40)
    assert float(mutual_knn(a, b, 6)) == float(mutual_knn(b, a, 6))
    assert float(knn_overlap(a, b, 6)) == float(knn_overlap(b, a, 6))
    assert float(knn_overlap(a, b, 6, kind="rank")) == float(knn_overlap(b, a, 6, kind="rank"))


def test_row_blocks_give_the_same_neighbours(rng, monkeypatch):
    x = torch.as_tensor(rng.normal(size=(37, 5)))
    full = _knn._knn_indices(x, 6, "cosine")
    monkeypatch.setattr(_knn, "_BLOCK_ELEMENTS", 37 * 4)  # blocks of 4 rows, last of 1
    assert torch.equal(_knn._knn_indices(x, 6, "cosine"), full)
    monkeypatch.setattr(_knn, "_BLOCK_ELEMENTS", 1)
    assert torch.equal(_knn._knn_indices(x, 6, "cosine"), full)


def test_neighbours_sorted_and_exclude_self(rng):
    x = torch.as_tensor(rng.normal(size=(25, 4)))
    idx = _knn._knn_indices(x, 24, "inner")
    assert not (idx == torch.arange(25)[:, None]).any()
    sim = x @ x.T
    picked = sim.gather(1, idx)
    assert (picked[:, :-1] >= picked[:, 1:]).all()


def test_mappings_broadcast_and_label(rng):
    a1, b1 = _pair(rng, n=30)
    a2, b2 = _pair(rng, n=30, p=3)
    out = mutual_knn({"l1": a1, "l2": a2}, {"m1": b1, "m2": b2}, 4, key_dims=("src", "tgt"))
    assert out.dims == ("src", "tgt")
    assert list(out["src"].values) == ["l1", "l2"]
    assert float(out.sel(src="l2", tgt="m1")) == float(mutual_knn(a2, b1, 4))
    assert out.attrs["measure"] == "mutual_knn"
    assert out.attrs["kind"] == "similarity"
    assert out.attrs["k"] == 4
    assert out.attrs["similarity_id"] == "platonic/mutual_knn_topk"
    ov = knn_overlap({"l1": a1, "l2": a2}, b1, 4, kind="cycle")
    assert ov.dims == ("a",)
    assert ov.attrs["overlap"] == "cycle"
    assert ov.attrs["similarity_id"] == "platonic/cycle_knn_topk"


def test_extra_dims_broadcast(rng):
    a, b = _pair(rng, n=30)
    stacked = xr.concat([a, a * 2.0, -a], dim="layer").assign_coords(layer=["x", "y", "z"])
    out = mutual_knn(stacked, b, 5)
    assert out.dims == ("layer",)
    np.testing.assert_array_equal(out.values[:2], float(mutual_knn(a, b, 5)))


def test_errors(rng, monkeypatch):
    a, b = _pair(rng, n=10)
    with pytest.raises(ValueError, match=r"k must be smaller than the number of stimuli.*10"):
        mutual_knn(a, b, 10)
    with pytest.raises(ValueError, match=r"k must be in the range \[1, inf\), got 0"):
        knn_overlap(a, b, 0)
    with pytest.raises(TypeError, match=r"k must be an integer, got float 2\.5"):
        mutual_knn(a, b, 2.5)
    with pytest.raises(ValueError, match=r"'metric' parameter.*'cosine', 'inner'.*'cos'"):
        mutual_knn(a, b, 3, metric="cos")
    with pytest.raises(ValueError, match=r"'kind' parameter.*'jaccard', 'cycle', 'rank'"):
        knn_overlap(a, b, 3, kind="mutual")
    zero = a.copy(data=np.where(np.arange(10)[:, None] == 2, 0.0, a.values))
    with pytest.raises(ValueError, match=r"metric='cosine' is undefined.*1 of 10 stimuli"):
        mutual_knn(zero, b, 3)
    x = torch.as_tensor(zero.values)
    for torch_path in (False, True):  # both selection paths name the row
        with monkeypatch.context() as m:
            m.setattr(_knn, "_TORCH_ON_CPU", torch_path)
            with pytest.raises(ValueError, match=r"1 of 10 stimuli are \(rows \[2\]\)"):
                _knn._knn_indices(x, 3, "cosine")
    assert 0.0 <= float(mutual_knn(zero, b, 3, metric="inner")) <= 1.0
    other = _reps(rng, 10, 4, ids=[f"t{i}" for i in range(10)])
    with pytest.raises(StimulusAlignmentError, match="missing 10 id"):
        mutual_knn(a, other, 3)
    nan = a.copy(data=np.where(np.arange(10)[:, None] == 0, np.nan, a.values))
    with pytest.raises(ValueError, match="NaN"):
        knn_overlap(nan, b, 3)


def test_float32_matches_float64(rng, device):
    a, b = _pair(rng, n=60)
    for kind in ("jaccard", "cycle", "rank"):
        f64 = float(knn_overlap(a, b, 7, kind=kind, dtype="float64"))
        f32 = float(knn_overlap(a, b, 7, kind=kind, device=device, dtype="float32"))
        assert f32 == pytest.approx(f64, abs=1e-5)
    f64 = float(mutual_knn(a, b, 7, dtype="float64"))
    assert float(mutual_knn(a, b, 7, device=device, dtype="float32")) == pytest.approx(
        f64, abs=1e-5
    )
    assert float(mutual_knn(a, b, 7, device=device)) == pytest.approx(f64, abs=1e-5)


def _lexsort_neighbours(sim, k):
    """Reference: per row, the k largest other columns by (similarity desc, index asc)."""
    n = sim.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):  # a per-row reference on a small matrix
        cols = np.array([j for j in range(n) if j != i])
        order = np.lexsort((cols, -sim[i, cols]))
        out[i] = cols[order[:k]]
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_selection_equals_torch_topk(rng, monkeypatch, dtype):
    # The numba selection (CPU) and torch.topk (the device path) on the same data without ties.
    x = torch.as_tensor(rng.normal(size=(150, 12)), dtype=dtype)
    for metric in ("cosine", "inner"):
        cpu = _knn._knn_indices(x, 9, metric)
        monkeypatch.setattr(_knn, "_TORCH_ON_CPU", True)
        dev = _knn._knn_indices(x, 9, metric)
        monkeypatch.setattr(_knn, "_TORCH_ON_CPU", False)
        assert torch.equal(cpu, dev)
        # and the overlap counts through NumPy's and torch's binary searches
        y = x + 0.5 * torch.as_tensor(rng.normal(size=x.shape), dtype=dtype)
        iy = _knn._knn_indices(y, 9, metric)
        shared_np, cycle_np = _knn._n_shared(cpu, iy), _knn._cycle(cpu, iy)
        monkeypatch.setattr(_knn, "_TORCH_ON_CPU", True)
        assert torch.equal(_knn._n_shared(cpu, iy), shared_np)
        assert torch.equal(_knn._cycle(cpu, iy), cycle_np)
        monkeypatch.setattr(_knn, "_TORCH_ON_CPU", False)
        expected = np.array(
            [len(set(a) & set(b)) for a, b in zip(cpu.tolist(), iy.tolist(), strict=True)]
        )
        np.testing.assert_array_equal(shared_np.numpy(), expected)


def test_cpu_ties_go_to_the_lower_index(rng):
    # Integer features: many exactly tied inner products, at the k-th place too.
    x = torch.as_tensor(rng.integers(-1, 2, size=(60, 3)), dtype=torch.float64)
    sim = (x @ x.T).numpy()
    for k in (1, 5, 17):
        got = _knn._knn_indices(x, k, "inner").numpy()
        np.testing.assert_array_equal(got, _lexsort_neighbours(sim, k))


def test_large_k_takes_torch_topk(rng, monkeypatch):
    x = torch.as_tensor(rng.normal(size=(40, 6)))
    monkeypatch.setattr(_knn, "_NUMBA_MAX_K", 4)
    got = _knn._knn_indices(x, 20, "cosine").numpy()
    xn = (x / torch.linalg.vector_norm(x, dim=1, keepdim=True)).numpy()
    np.testing.assert_array_equal(got, _lexsort_neighbours(xn @ xn.T, 20))


def test_cosine_survives_squares_that_overflow_or_underflow(rng):
    a, b = _pair(rng, n=30)
    ref = float(mutual_knn(a, b, 5, dtype="float32"))
    for scale in (1e25, 1e-25):  # float32 squares overflow to inf / underflow to 0
        big = a.copy(data=a.values * scale)
        assert float(mutual_knn(big, b, 5, dtype="float32")) == ref


def test_inner_overflow_is_refused(rng):
    a, b = _pair(rng, n=30)
    big = a.copy(data=a.values * 1e20)
    with pytest.raises(
        ValueError, match=r"metric='inner' overflows torch.float32.*too large.*at most 1.3e\+19"
    ):
        mutual_knn(big, b, 5, metric="inner", dtype="float32")
    assert 0.0 <= float(mutual_knn(big, b, 5, metric="inner", dtype="float64")) <= 1.0
