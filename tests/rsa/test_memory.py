"""Memory budget of rsa.rdm and the searchlight (issue 23): peak memory and refusals.

Peak memory is measured in a fresh subprocess on the CPU as the growth of the peak resident
set size (``run_measured`` in conftest: ``VmHWM`` in ``/proc/self/status``, reset between
cases through ``/proc/self/clear_refs``), so the allocations of torch and numpy both count.
"""

import sys
import tracemalloc

import numpy as np
import pytest
import scipy.spatial.distance as ssd
import xarray as xr

import brainalign as ba
from brainalign import rsa
from brainalign._memory import MemoryBudgetError, check_fits, format_bytes, resolve_budget

linux_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="peak RSS read from /proc (Linux)"
)
# The measured tests share one subprocess per group (about 3 s of imports each): marked
# slow, they still run in CI.

_RDM_SCRIPT = """
import brainalign as ba
from brainalign import rsa
n, p = 4000, 50
rng = np.random.default_rng(0)
x = np.abs(rng.normal(size=(n, p)))
prec = np.eye(p) + 0.1 * np.ones((p, p))
rsa.rdm(x[:100], "correlation")  # warm up (imports, thread pools)
out = {}
for metric, dtype, noise in [
    ("correlation", "float64", None),
    ("euclidean", "float64", None),
    ("poisson", "float32", None),
    ("mahalanobis", "float64", prec),
]:
    d, grew = measure(lambda: np.asarray(rsa.rdm(x, metric, noise=noise, dtype=dtype)))
    out[f"{metric}-{dtype}"] = {"grew": grew, "nbytes": d.nbytes,
                                "symmetric": bool((d == d.T).all()),
                                "zero_diag": bool((np.diag(d) == 0).all())}
    if metric in ("correlation", "euclidean"):
        from scipy.spatial.distance import pdist, squareform
        out[f"{metric}-{dtype}"]["err"] = float(np.abs(d - squareform(pdist(x, metric))).max())
    del d
# crossnobis: 2 runs x 4000 stimuli x 20 channels of trials
trials = ba.responses(
    rng.normal(size=(2 * n, 20)), [f"s{i}" for i in range(n)] * 2, sample_dim="trial",
    feature_dim="channel", run=[0] * n + [1] * n,
)
d, grew = measure(lambda: np.asarray(rsa.rdm(trials, "crossnobis")))
out["crossnobis-float64"] = {"grew": grew, "nbytes": d.nbytes,
                             "symmetric": bool((d == d.T).all()),
                             "zero_diag": bool((np.diag(d) == 0).all())}
print(json.dumps(out))
"""

_SEARCHLIGHT_SCRIPT = """
import xarray as xr
import brainalign as ba
from brainalign.rsa import rdm
from brainalign.rsa._searchlight import _ball_csr, searchlight
out = {}
# 1. neighbourhoods of a 216,000-voxel volume (2 mm grid, 123 voxels per sphere)
g = np.indices((60, 60, 60)).reshape(3, -1).T * 2.0
(indptr, indices), grew = measure(
    lambda: _ball_csr(g, np.arange(len(g)), np.arange(len(g)), 6.1)
)
out["ball"] = {"grew": grew, "nbytes": indptr.nbytes + indices.nbytes,
               "nnz": int(indices.size), "max": int(np.diff(indptr).max())}
del indptr, indices, g
# 2. a whole searchlight within max_memory
shape = (24, 24, 24)
ijk = np.indices(shape).reshape(3, -1).T * 3.0
rng = np.random.default_rng(0)
data = xr.DataArray(
    rng.normal(size=(8, len(ijk))), dims=("stimulus", "voxel"),
    coords={"stimulus": [f"s{i}" for i in range(8)], "x": ("voxel", ijk[:, 0]),
            "y": ("voxel", ijk[:, 1]), "z": ("voxel", ijk[:, 2])},
)
model = rdm(data.isel(voxel=slice(0, 50)))
searchlight(data.isel(voxel=slice(0, 500)), model, radius=4.0)  # warm up
budget = 64 * 10**6
with ba.config_context(max_memory=budget):
    sl, grew = measure(lambda: searchlight(data, model, radius=6.5))
ref = searchlight(data, model, radius=6.5)
out["searchlight"] = {"grew": grew, "budget": budget, "n_centres": int(sl.size),
                      "same": bool(np.array_equal(sl.values, ref.values, equal_nan=True))}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rdm_peaks(run_measured):
    return run_measured(_RDM_SCRIPT, timeout=120)


@pytest.fixture(scope="module")
def searchlight_peaks(run_measured):
    return run_measured(_SEARCHLIGHT_SCRIPT, timeout=120)


# ------------------------------------------------------------------ peak memory (subprocess)
@linux_proc
@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        "correlation-float64",
        "euclidean-float64",
        "poisson-float32",
        "mahalanobis-float64",
        "crossnobis-float64",
    ],
)
def test_rdm_peak_memory_within_1_6_times_the_output(rdm_peaks, case):
    # 4,000 stimuli x 50 features: a 128 MB float64 (64 MB float32) RDM. The vectorised
    # kernels peaked at about 4x the output; row blocks written into the output stay
    # within 1.5x (+ a small margin for the allocator).
    res = rdm_peaks[case]
    assert res["nbytes"] >= 64 * 10**6
    assert res["grew"] <= 1.6 * res["nbytes"], (case, res["grew"] / res["nbytes"])
    assert res["symmetric"] and res["zero_diag"]


@linux_proc
@pytest.mark.slow
@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_rdm_row_blocks_at_scale_equal_scipy(rdm_peaks, metric):
    # reference: scipy.spatial.distance.pdist on the same 4000 x 50 data (in the subprocess)
    assert rdm_peaks[f"{metric}-float64"]["err"] < 1e-12


@linux_proc
@pytest.mark.slow
def test_ball_neighbourhoods_memory_is_the_flat_arrays(searchlight_peaks):
    # 216,000 centres x 123 voxels: CSR arrays of about 107 MB (int32 indices). Python
    # neighbour lists took about 36 bytes per entry (over 900 MB here); the chunked grid
    # lookup adds at most the candidates of one chunk (2**20 of them) on top.
    res = searchlight_peaks["ball"]
    assert res["max"] == 123  # voxels strictly within 6.1 mm on a 2 mm grid
    assert res["grew"] <= res["nbytes"] + 160 * 10**6, res


@linux_proc
@pytest.mark.slow
def test_searchlight_peak_memory_within_max_memory(searchlight_peaks):
    res = searchlight_peaks["searchlight"]
    assert res["n_centres"] == 24**3
    assert res["grew"] <= res["budget"], res
    assert res["same"]  # the budget changes the chunks, not the map


# ---------------------------------------------------------------- row blocks, small inputs
@pytest.fixture
def small_budget():
    # 300 stimuli x 40 features: a 720 kB RDM; 2.5 MB leaves too little work memory for
    # the vectorised kernels (about 3 x the output), so rdm takes the row-block path with
    # blocks of about 145 rows (3 blocks).
    with ba.config_context(max_memory="2.5MB"):
        yield


def _pdist(x, metric):
    return ssd.squareform(ssd.pdist(x, metric))


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_row_blocks_equal_scipy(rng, small_budget, metric, dtype):
    x = rng.normal(size=(300, 40)) + 2.0
    d = np.asarray(rsa.rdm(x, metric, dtype=dtype))
    ref = _pdist(x, metric)  # reference: scipy's pdist
    tol = {"float64": 1e-12, "float32": 2e-5}[dtype]
    np.testing.assert_allclose(d, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert (d == d.T).all() and (np.diag(d) == 0).all()


def test_row_blocks_mahalanobis_and_poisson_equal_their_formulas(rng, small_budget, tol):
    x = rng.normal(size=(300, 40))
    a = rng.normal(size=(40, 40))
    prec = a @ a.T / 40 + np.eye(40)
    diff = x[:, None, :] - x[None, :, :]
    # reference: rsatoolbox's definition, (x_i - x_j) M (x_i - x_j)^T / p
    ref = np.einsum("ijk,kl,ijl->ij", diff, prec, diff) / 40
    d = np.asarray(rsa.rdm(x, "mahalanobis", noise=prec))
    # float32: d_ij = q_ii + q_jj - 2 q_ij from 40-term float32 sums (~sqrt(40) eps32 = 7.5e-7
    # relative) cancels by up to (q_ii + q_jj + 2|q_ij|) / d_ij = 4.5 here (cond(prec) 4.6):
    # ~3.4e-6 relative worst case (observed 4.4e-7)
    np.testing.assert_allclose(
        d, ref, rtol=tol(float64=1e-10, float32=5e-6), atol=tol(float64=1e-12, float32=1e-6)
    )
    counts = rng.poisson(3.0, size=(300, 40)).astype(float)
    m = (counts + 0.1) / 1.1  # rsatoolbox's prior: lambda = 1, weight = 0.1
    # reference: symmetrised KL of Poisson rates, sum_k (m_i - m_j)(log m_i - log m_j) / p
    ref = np.einsum("ijk,ijk->ij", m[:, None] - m[None], np.log(m)[:, None] - np.log(m)[None])
    d = np.asarray(rsa.rdm(counts, "poisson"))
    # float32: sum m_i log m_i + sum m_j log m_j - (m_i . log m_j + m_j . log m_i), 40-term
    # float32 sums (~7.5e-7 relative), cancels by up to 18.5 on these counts: ~1.4e-5 worst
    np.testing.assert_allclose(
        d, ref / 40, rtol=tol(float64=1e-10, float32=3e-5), atol=tol(float64=1e-12, float32=1e-6)
    )


def test_row_blocks_low_rank_precision_and_scaled_data(rng, small_budget, tol):
    x = rng.normal(size=(300, 40))
    resid = rng.normal(size=(20, 40))
    prec = rsa.noise_precision(resid, method="shrinkage_diag")  # factored form (20 < 40)
    dense = np.array(prec.values)
    diff = x[:, None, :] - x[None, :, :]
    ref = np.einsum("ijk,kl,ijl->ij", diff, dense, diff) / 40  # the formula, as above
    # float32: as the dense case above, with the precision applied in its factored form
    # (a 20-term and a 40-term float32 sum): a few times sqrt(40) eps32 relative
    np.testing.assert_allclose(
        np.asarray(rsa.rdm(x, "mahalanobis", noise=prec)),
        ref,
        rtol=tol(float64=1e-9, float32=5e-6),
        atol=tol(float64=1e-12, float32=1e-6),
    )
    # float32 data far beyond unit scale: divided by a power of two, scaled back exactly
    big = (x * 1e30).astype(np.float32)
    d = np.asarray(rsa.rdm(big, "euclidean", dtype="float32"))
    ref = _pdist(big.astype(np.float64), "euclidean")
    np.testing.assert_allclose(d, ref, rtol=2e-5)


def test_row_blocks_broadcast_dims(rng, small_budget, tol):
    values = rng.normal(size=(300, 20, 2))
    da = xr.DataArray(
        values,
        dims=("stimulus", "unit", "time"),
        coords={"stimulus": [f"s{i}" for i in range(300)], "time": [0.0, 0.1]},
    )
    d = rsa.rdm(da, "correlation")
    # float32: 1 - r with r a 20-feature float32 dot product of unit-norm centred rows
    # (~sqrt(20) eps32 = 5e-7 typical, 20 eps32 = 2.4e-6 worst); distances of order 1
    atol = tol(float64=1e-12, float32=2e-6)
    for t in range(2):
        np.testing.assert_allclose(
            d.isel(time=t).values, _pdist(values[:, :, t], "correlation"), atol=atol
        )


def _cv_trials(rng, n_runs=3, n=300, p=5, reps=1, counts=False, uneven=False):
    """Trial data of ``n`` stimuli in every run (``uneven``: run 0 lacks 40 repeats)."""
    sig = rng.normal(size=(n, p))
    x = np.tile(sig, (n_runs * reps, 1)) + rng.normal(size=(n_runs * n * reps, p))
    if counts:
        x = rng.poisson(np.exp(np.tile(sig, (n_runs * reps, 1)) * 0.5 + 1)).astype(float)
    stim = np.tile([f"s{i:03d}" for i in range(n)], n_runs * reps)
    run = np.repeat([f"r{k}" for k in range(n_runs)], n * reps)
    if uneven:
        keep = np.ones(len(x), bool)
        keep[np.flatnonzero(run == "r0")[n : n + 40]] = False
        x, stim, run = x[keep], stim[keep], run[keep]
    da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    return da, x, stim, run


@pytest.fixture
def block_spy(monkeypatch):
    """Record the (n, rows) of every RDM written in row blocks."""
    from brainalign.rsa import _rdm

    calls = []
    original = _rdm._fill_blocks

    def spy(out, terms, rows, **kw):
        calls.append((out.shape[0], rows))
        return original(out, terms, rows, **kw)

    monkeypatch.setattr(_rdm, "_fill_blocks", spy)
    return calls


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
@pytest.mark.parametrize(
    ("metric", "noise", "semantics"),
    [
        ("crossnobis", None, "correct"),
        ("crossnobis", "matrix", "correct"),
        ("poisson_cv", None, "rsatoolbox"),
    ],
)
def test_cv_row_blocks_equal_rsatoolbox(rng, block_spy, metric, noise, semantics):
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    da, x, stim, run = _cv_trials(rng, counts=metric == "poisson_cv")
    a = rng.normal(size=(5, 5))
    prec = None if noise is None else a @ a.T / 5 + np.eye(5)
    # 300 stimuli x 3 runs: 1.5 MB forces row blocks of 90 rows (4 blocks)
    with ba.config_context(max_memory="1.5MB"):
        got = np.asarray(rsa.rdm(da, metric, noise=prec, semantics=semantics))
    assert block_spy == [(300, 90)]
    # reference: rsatoolbox 0.3.2 (stimulus ids sorted; ours are in the same order)
    ds = Dataset(x, obs_descriptors={"stimulus": stim, "run": run})
    ref = calc_rdm(ds, metric, descriptor="stimulus", noise=prec, cv_descriptor="run")
    np.testing.assert_allclose(got, ref.get_matrices()[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "case", ["per_run", "low_rank", "uneven_rsatoolbox", "uneven_low_rank", "poisson_uneven"]
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cv_row_blocks_equal_the_vectorised_kernels(rng, block_spy, case, dtype):
    # reference: the vectorised kernels (checked against rsatoolbox in test_rdm_metrics.py)
    a = rng.normal(size=(5, 5))
    prec = a @ a.T / 5 + np.eye(5)
    low_rank = rsa.noise_precision(rng.normal(size=(20, 40)), "shrinkage_diag")
    budget = "1.5MB"
    if case == "per_run":
        da, kw = _cv_trials(rng)[0], {"noise": [prec, prec + np.eye(5), 2 * prec]}
    elif case == "low_rank":
        da, kw = _cv_trials(rng, p=40)[0], {"noise": low_rank}
    elif case == "uneven_rsatoolbox":
        da = _cv_trials(rng, reps=2, uneven=True)[0]
        kw = {"noise": prec, "semantics": "rsatoolbox"}
    elif case == "uneven_low_rank":
        da = _cv_trials(rng, p=40, reps=2, uneven=True)[0]
        kw = {"noise": low_rank, "semantics": "rsatoolbox"}
    else:
        da = _cv_trials(rng, reps=2, uneven=True, counts=True)[0]
        kw = {"semantics": "rsatoolbox"}
    if "low_rank" in case:  # 40 channels: budgets that leave room for a few blocks
        budget = {"float64": "2.2MB", "float32": "1.2MB"}[dtype]
    metric = "poisson_cv" if case.startswith("poisson") else "crossnobis"
    ref = np.asarray(rsa.rdm(da, metric, dtype=dtype, **kw))
    assert block_spy == []
    with ba.config_context(max_memory=budget):
        got = np.asarray(rsa.rdm(da, metric, dtype=dtype, **kw))
    assert len(block_spy) == 1 and block_spy[0][1] < 300
    tol = {"float64": 1e-12, "float32": 2e-6}[dtype]
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert (got == got.T).all() and (np.diag(got) == 0).all()


# ----------------------------------------------------------------------------- refusals
def _peak_traced(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused(x):
    with pytest.raises(MemoryError):
        rsa.rdm(x, "correlation")


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_rdm_output_beyond_the_budget_is_refused_before_allocating(rng):
    x = rng.normal(size=(4000, 5))
    with ba.config_context(max_memory="10MB"):
        match = (
            r"rdm\(metric='correlation'\): the \(4000 x 4000\) output of 64-bit floats "
            r"needs 128 MB \(128000000 bytes\), more than the memory budget of 10 MB "
            r"\(10000000 bytes\)\. Raise the budget with brainalign\.set_config\(max_memory="
        )
        with pytest.raises(MemoryBudgetError, match=match):
            rsa.rdm(x, "correlation")
        # nothing near the output's size was allocated (numpy's allocations are traced)
        peak = _peak_traced(lambda: _refused(x))
        assert peak < 5 * 10**6


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_rdm_smallest_row_block_beyond_the_budget_is_refused(rng):
    # 1000 x 2000 data: the 8 MB output fits 30 MB, but the row-block path needs four
    # 16 MB copies of the data
    x = rng.normal(size=(1000, 2000))
    with ba.config_context(max_memory="30MB"):
        with pytest.raises(
            MemoryBudgetError,
            match=r"smallest row block .* needs 64 MB \(64024000 bytes\), more than the "
            r"memory budget of 22 MB \(22000000 bytes\)",
        ):
            rsa.rdm(x, "euclidean")


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_crossnobis_output_beyond_the_budget_is_refused(rng):
    x = rng.normal(size=(2 * 600, 4))
    trials = ba.responses(
        x,
        [f"c{i}" for i in range(600)] * 2,
        sample_dim="trial",
        feature_dim="channel",
        run=[0] * 600 + [1] * 600,
    )
    with ba.config_context(max_memory="1MB"):
        with pytest.raises(
            MemoryBudgetError,
            match=r"rdm\(metric='crossnobis'\): the \(600 x 600\) output .* needs 2\.88 MB "
            r"\(2880000 bytes\), more than the memory budget of 1 MB",
        ):
            rsa.rdm(trials, "crossnobis")


@pytest.fixture
def grid_volume(rng):
    ijk = np.indices((10, 10, 10)).reshape(3, -1).T * 3.0
    data = xr.DataArray(
        rng.normal(size=(6, len(ijk))),
        dims=("stimulus", "voxel"),
        coords={
            "stimulus": list("abcdef"),
            "x": ("voxel", ijk[:, 0]),
            "y": ("voxel", ijk[:, 1]),
            "z": ("voxel", ijk[:, 2]),
        },
    )
    return data, rsa.rdm(data.isel(voxel=slice(0, 20)))


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_searchlight_patch_beyond_the_budget_is_refused(grid_volume):
    from brainalign.rsa._searchlight import searchlight

    data, model = grid_volume
    # one centre: its neighbourhood fits, but not its patch beside the 48 kB of data; 147
    # voxels of a 3 mm grid lie strictly within 9.5 mm (counted over the integer offsets)
    with ba.config_context(max_memory=60_000):
        with pytest.raises(
            MemoryBudgetError,
            match=r"searchlight: one patch of up to 147 voxels x 1 samples and 6 stimuli .* "
            r"needs .* more than the memory budget of 60 kB \(60000 bytes\)",
        ):
            searchlight(data, model, radius=9.5, centers=[555])


def test_searchlight_neighbourhoods_beyond_the_budget_are_refused(grid_volume):
    from brainalign.rsa._searchlight import searchlight

    data, model = grid_volume
    with ba.config_context(max_memory=20_000):
        with pytest.raises(
            MemoryBudgetError,
            match=r"searchlight: the neighbourhoods of 1000 centres \(up to \d+ unit indices\) "
            r"needs .* more than the memory budget of 20 kB \(20000 bytes\)",
        ):
            searchlight(data, model, radius=9.5)


def test_searchlight_small_budget_gives_the_same_map(grid_volume):
    from brainalign.rsa._searchlight import searchlight

    data, model = grid_volume
    ref = searchlight(data, model, radius=6.5)
    with ba.config_context(max_memory="1MB"):  # chunks of a few centres
        small = searchlight(data, model, radius=6.5)
    np.testing.assert_array_equal(small.values, ref.values)
    np.testing.assert_array_equal(small.patch_size.values, ref.patch_size.values)


def test_scattered_positions_use_the_tree_and_equal_cdist(rng):
    from brainalign.rsa._searchlight import _ball_csr, _grid_lookup, pad_csr

    pos = rng.uniform(0, 30, size=(400, 3))
    assert _grid_lookup(pos, np.arange(400), 5.0) is None  # not a grid: the KD-tree path
    allowed = np.flatnonzero(rng.random(400) < 0.8)
    centres = allowed[::7]
    indptr, indices = _ball_csr(pos, allowed, centres, 5.0, budget=10**5)  # small chunks
    idx, valid = pad_csr(indptr, indices)
    dist = ssd.cdist(pos[centres], pos)  # reference: scipy's cdist (no ties at 5.0 here)
    for row, _c in enumerate(centres):
        expect = allowed[dist[row, allowed] < 5.0]
        np.testing.assert_array_equal(idx[row][valid[row]], expect)


def test_budget_helpers():
    assert format_bytes(3.2e9) == "3.2 GB"
    assert format_bytes(512) == "512 B"
    check_fits(10, "x", 10)  # fits exactly
    with pytest.raises(MemoryError, match=r"thing needs 11 B \(11 bytes\), more than the "):
        check_fits(11, "thing", 10)
    with ba.config_context(max_memory=12345):
        assert resolve_budget(None, "cpu") == 12345
    assert resolve_budget("2kB", "cpu") == 2000


def test_row_blocks_refuse_dissimilarities_beyond_the_dtype(rng, small_budget):
    # squared distances of data around 1e30 are around 1e62: beyond float32's 3.4e38
    x = rng.normal(size=(300, 40)) * 1e30
    with pytest.raises(ValueError, match=r"does not fit in float32: .* 89700 dissimilarities"):
        rsa.rdm(x, "sqeuclidean", dtype="float32")
