"""Every ``rsa.compare`` method against rsatoolbox 0.3.2 ``compare`` and independent oracles.

rsatoolbox is the reference at 1e-10 in float64, with two documented exceptions where the
reference itself is less accurate than that:

- ``bures``: rsatoolbox takes square roots of the rounding-level eigenvalue that double
  centring always creates, which moves its result by ~1e-9; brainalign drops that direction
  exactly. Tested at 1e-7 against rsatoolbox and at 1e-10 against an exact reference.
- ``whitened_*`` with a full 2-D ``sigma_k``: rsatoolbox solves ``V x = v`` by conjugate
  gradients to ``rtol=1e-5``; brainalign solves exactly. Tested at 1e-4 against rsatoolbox and
  at 1e-10 against a dense numpy solve (and at 1e-10 against rsatoolbox for ``sigma_k = I``,
  where its conjugate gradients converge exactly).
"""

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import null_space, sqrtm
from scipy.spatial.distance import pdist, squareform
from scipy.stats import kendalltau

import brainalign as ba
from brainalign import rsa
from brainalign.rsa._compare import RSATOOLBOX_METHODS
from brainalign.rsa._compare_kernels import tau_a_numba, tau_a_torch

N = 9  # stimuli → 36 pairs
N_MODELS = 4
EXACT = 1e-10
BURES_VS_RSATOOLBOX = 1e-7


def _rdm_vec(rng, n=N, p=2 * N):
    return pdist(rng.normal(size=(n, p))) ** 2


def _stack(vectors, ids=None):
    """Model RDMs ``(k, n_pairs)`` → a labeled stack over a ``model`` dim."""
    vectors = np.atleast_2d(vectors)
    mats = np.stack([squareform(v, checks=False) for v in vectors])
    n = mats.shape[-1]
    ids = [str(i) for i in range(n)] if ids is None else ids
    return xr.DataArray(
        mats,
        dims=("model", "stimulus_a", "stimulus_b"),
        coords={
            "model": [f"m{k}" for k in range(len(mats))],
            "stimulus_a": ids,
            "stimulus_b": ids,
        },
    )


def _single(vector):
    return _stack(vector).isel(model=0, drop=True)


def _rsatoolbox(method, data, models, **kwargs):
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as rt_compare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = rt_compare(
            RDMs(np.atleast_2d(data)),
            RDMs(np.atleast_2d(models)),
            method=RSATOOLBOX_METHODS[method],
            **kwargs,
        )
    return ref[0]


@pytest.fixture
def vectors(rng):
    data = _rdm_vec(rng)
    models = np.stack([_rdm_vec(rng) for _ in range(N_MODELS)])
    return data, models


def _variant(kind, data, models):
    if kind == "ties":  # integer-valued RDMs: many ties in both
        return np.round(data * 2 / data.mean()), np.round(models * 2 / models.mean())
    if kind == "nan":  # rsatoolbox needs the same NaN pairs in every RDM
        data, models = data.copy(), models.copy()
        data[[1, 7, 20]] = np.nan
        models[:, [1, 7, 20]] = np.nan
    return data, models


# float32 tolerances, from each method's conditioning: correlations and cosines (|r| <= 1,
# float64 accumulation of float32 values): a few eps32 = 1.2e-7; Bures: square roots of the
# second moment's near-zero eigenvalues, ~sqrt(eps32) = 3.5e-4; neg_riem_dist: logs of
# generalised eigenvalues, eps32 times their condition number (~100 here).
TOL32 = {"bures": 1e-3, "neg_riem_dist": 1e-5}
# float32: a correlation or cosine (|r| <= 1) of at most 81 entries rounded in float32
CORR32 = 1e-6
# float32: tau-a is a ratio of integer counts accumulated exactly, rounded once to float32
# (eps32 / 2 relative, |tau| <= 1)
TAU32 = 2.5e-7


@pytest.mark.float32
@pytest.mark.parametrize("kind", ["continuous", "ties", "nan"])
@pytest.mark.parametrize("method", rsa.METHODS)
def test_one_vs_many_matches_rsatoolbox(vectors, method, kind, tol):
    if method in ("bures", "neg_riem_dist") and kind == "nan":
        pytest.skip(f"{method} needs complete RDMs (rsatoolbox raises as well)")
    if method == "neg_riem_dist" and kind == "ties":
        pytest.skip("rounded RDMs are not Euclidean: no positive definite second moment")
    data, models = _variant(kind, *vectors)
    ours = rsa.compare(_single(data), _stack(models), method)
    assert ours.dims == ("model",) and ours.attrs["method"] == method
    ref = _rsatoolbox(method, data, models)
    atol = tol(
        float64=BURES_VS_RSATOOLBOX if method == "bures" else EXACT,
        float32=TOL32.get(method, 1e-6),
    )
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=atol)


def test_bures_exact_reference(vectors, tol):
    data, models = vectors
    q = null_space(np.ones((1, N)))  # drop the structural zero of double centring

    def kernel(v):
        return q.T @ (-squareform(v) / 2) @ q

    a = kernel(data)
    ra = sqrtm(a).real
    ref = [
        np.trace(sqrtm(ra @ kernel(m) @ ra).real) / np.sqrt(np.trace(a) * np.trace(kernel(m)))
        for m in models
    ]
    ours = rsa.compare(_single(data), _stack(models), "bures")
    # float32: eigendecompositions of 8 x 8 centred kernels of condition <= 45 (in the
    # basis that drops the structural zero): eps32 * cond = 5e-6 (2e-7 seen)
    close = tol(float64=EXACT, float32=1e-5)
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=close)
    same = rsa.compare(_single(data), _single(data), "bures")
    assert same == pytest.approx(1.0, abs=tol(float64=1e-12, float32=1e-5))


@pytest.mark.parametrize("kind", ["continuous", "nan"])
@pytest.mark.parametrize("method", ["whitened_pearson", "whitened_cosine"])
def test_whitened_sigma_k_matches_rsatoolbox(vectors, rng, method, kind, tol):
    data, models = _variant(kind, *vectors)
    variances = rng.uniform(0.5, 2.0, N)
    ours = rsa.compare(_single(data), _stack(models), method, sigma_k=variances)
    ref = _rsatoolbox(method, data, models, sigma_k=variances)
    # float32, diagonal Σ: cosines of double-centred, rescaled second moments (81 entries)
    close = tol(float64=EXACT, float32=CORR32)
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=close)
    # Σ = I given as a matrix: a Cholesky solve with V = (C Cᵀ)∘(C Cᵀ) of condition 9
    eye = rsa.compare(_single(data), _stack(models), method, sigma_k=np.eye(N))
    eye_close = tol(float64=EXACT, float32=10 * CORR32)
    np.testing.assert_allclose(
        eye.values, _rsatoolbox(method, data, models, sigma_k=np.eye(N)), rtol=0, atol=eye_close
    )
    np.testing.assert_allclose(  # Σ = I is the default
        eye.values, rsa.compare(_single(data), _stack(models), method).values, atol=eye_close
    )

    cov = np.cov(rng.normal(size=(N, 3 * N)))
    ours = rsa.compare(_single(data), _stack(models), method, sigma_k=cov)
    # exact oracle: V = (C Σ Cᵀ)∘(C Σ Cᵀ) restricted to the valid pairs, solved densely
    i, j = np.triu_indices(N, 1)
    contrast = np.zeros((len(i), N))
    contrast[np.arange(len(i)), i] = 1.0
    contrast[np.arange(len(i)), j] = -1.0
    xi = contrast @ cov @ contrast.T
    ok = np.isfinite(data)
    v = (xi * xi)[np.ix_(ok, ok)]
    ref = []
    for m in models:
        x, y = data[ok], m[ok]
        if method == "whitened_pearson":
            x, y = x - x.mean(), y - y.mean()
        vx, vy = np.linalg.solve(v, x), np.linalg.solve(v, y)
        ref.append(x @ vy / np.sqrt((x @ vx) * (y @ vy)))
    # float32: a Cholesky solve with V of condition ~200: eps32 * cond = 2.4e-5 (3e-7 seen)
    close = tol(float64=EXACT, float32=5e-5)
    np.testing.assert_allclose(ours.values, ref, rtol=0, atol=close)
    # rsatoolbox's conjugate gradients stop at rtol=1e-5
    np.testing.assert_allclose(
        ours.values, _rsatoolbox(method, data, models, sigma_k=cov), rtol=0, atol=1e-4
    )


def test_sigma_k_dataarray_aligned_by_id(vectors, rng):
    data, models = vectors
    ids = [f"s{k}" for k in range(N)]
    variances = rng.uniform(0.5, 2.0, N)
    order = rng.permutation(N)
    labeled = xr.DataArray(
        variances[order], dims="stimulus", coords={"stimulus": np.array(ids)[order]}
    )
    a, b = _stack(data, ids).isel(model=0, drop=True), _stack(models, ids)
    got = rsa.compare(a, b, "whitened_cosine", sigma_k=labeled)
    want = rsa.compare(a, b, "whitened_cosine", sigma_k=variances)
    np.testing.assert_allclose(got.values, want.values, atol=1e-14)


def test_nan_pairs_chosen_per_comparison(vectors, tol):
    data, models = vectors
    models = models.copy()
    models[0, [3, 4]] = np.nan
    models[2, [10]] = np.nan
    for method in ("spearman", "kendall_tau_a", "rho_a", "whitened_pearson"):
        ours = rsa.compare(_single(data), _stack(models), method)
        for k, m in enumerate(models):  # rsatoolbox, with the pairs of this comparison
            d = np.where(np.isfinite(m), data, np.nan)
            ref = _rsatoolbox(method, d, m)[0]
            close = tol(float64=EXACT, float32=CORR32)
            assert float(ours[k]) == pytest.approx(ref, abs=close), (method, k)


def _tau_a_loop(x, y):
    """Tau-a by definition: sum of sign products over all pairs / number of pairs."""
    n, s = len(x), 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return s / (n * (n - 1) / 2)


@pytest.mark.parametrize("kind", ["continuous", "ties", "nan"])
def test_kendall_tau_a_double_loop_and_scipy(vectors, kind, tol):
    data, models = _variant(kind, *vectors)
    ours = rsa.compare(_single(data), _stack(models), "kendall_tau_a")
    ok = np.isfinite(data)
    for k, m in enumerate(models):
        x, y = data[ok], m[ok]
        close = tol(float64=1e-14, float32=TAU32)
        assert float(ours[k]) == pytest.approx(_tau_a_loop(x, y), abs=close)
        # scipy's tau-b = (C - D) / sqrt((n0 - tx)(n0 - ty)); tau-a = (C - D) / n0
        n0 = len(x) * (len(x) - 1) / 2
        tx, ty = (
            sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1]) for v in (x, y)
        )
        tau_b = kendalltau(x, y, variant="b").statistic
        close = tol(float64=1e-12, float32=TAU32)
        assert float(ours[k]) == pytest.approx(
            tau_b * np.sqrt((n0 - tx) * (n0 - ty)) / n0, abs=close
        )
        if kind != "ties":
            assert float(ours[k]) == pytest.approx(tau_b, abs=close)


def test_tau_a_torch_path_equals_numba(rng):
    x = np.round(rng.normal(size=(5, 60)) * 2)
    y = np.round(rng.normal(size=(5, 60)) * 2)
    mask = rng.random((5, 60)) > 0.2
    ref = tau_a_numba(x, y, mask)
    got = tau_a_torch(
        torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(mask), chunk_elements=1000
    )
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-14)
    for r in range(5):
        assert ref[r] == pytest.approx(_tau_a_loop(x[r][mask[r]], y[r][mask[r]]), abs=1e-14)


@pytest.mark.parametrize("method", rsa.METHODS)
def test_devices_agree(vectors, method, device):
    data, models = vectors
    cpu = rsa.compare(_single(data), _stack(models), method, device="cpu")
    here = rsa.compare(_single(data), _stack(models), method, device=device)
    tol = EXACT if device == "cpu" else 1e-4  # float32 on GPUs
    np.testing.assert_allclose(here.values, cpu.values, rtol=0, atol=tol)


def test_broadcast_equals_loop(rng):
    times = [0.0, 0.1, 0.2]
    data = np.stack([_rdm_vec(rng) for _ in times])
    data = _stack(data).rename(model="time").assign_coords(time=times)
    models = _stack(np.stack([_rdm_vec(rng) for _ in range(3)]))
    for method in rsa.METHODS:
        res = rsa.compare(data, models, method)
        assert set(res.dims) == {"time", "model"}
        for t in times:
            for m in models.model.values:
                one = rsa.compare(data.sel(time=t), models.sel(model=m), method)
                assert float(res.sel(time=t, model=m)) == pytest.approx(one, abs=1e-12)


def test_constant_model_gives_zero_for_tau_a_and_rho_a(vectors):
    data, _ = vectors
    const = np.ones_like(data)
    for method in ("kendall_tau_a", "rho_a"):
        assert rsa.compare(_single(data), _single(const), method) == 0.0
        assert _rsatoolbox(method, data, const)[0] == 0.0


def test_errors(vectors):
    data, models = vectors
    a, b = _single(data), _stack(models)
    with pytest.raises(ValueError, match=r"got 'kendall_tau'\. Did you mean 'kendall_tau_a'\?"):
        rsa.compare(a, b, "kendall_tau")
    with pytest.raises(ValueError, match=r"got 'tau-a'\."):
        rsa.compare(a, b, "tau-a")
    nan = a.copy(data=np.full(a.shape, np.nan))
    with pytest.raises(
        ValueError, match=r"only 0 stimulus pair\(s\) are finite in both \(of 36\)"
    ):
        rsa.compare(nan, b, "kendall_tau_a")
    other = _stack(models, ids=[f"x{k}" for k in range(N)])
    with pytest.raises(ba.StimulusAlignmentError, match=r"missing 9 id\(s\) of arrays\[0\]: '0'"):
        rsa.compare(a, other, "rho_a")
    holes = a.copy()
    holes[0, 1] = holes[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"method='bures' needs complete RDMs, but 1 stimulus"):
        rsa.compare(holes, b, "bures")
    with pytest.raises(
        ValueError, match=r"sigma_k is used only by the methods .*got method='spearman'"
    ):
        rsa.compare(a, b, "spearman", sigma_k=np.ones(N))
    with pytest.raises(ValueError, match=r"sigma_k must have shape \(9,\) .* got shape \(3,\)"):
        rsa.compare(a, b, "whitened_cosine", sigma_k=np.ones(3))
    with pytest.raises(ValueError, match=r"must be positive; got minimum -1"):
        rsa.compare(a, b, "whitened_cosine", sigma_k=-np.ones(N))
    with pytest.raises(ValueError, match=r"positive definite; its smallest eigenvalue is -2\."):
        rsa.compare(a, b, "whitened_pearson", sigma_k=np.diag([-2.0, *range(1, N)]))
    with pytest.raises(ValueError, match=r"sigma_k must be symmetric; max \|S - S.T\| = 1"):
        rsa.compare(a, b, "whitened_pearson", sigma_k=np.eye(N) + np.eye(N, k=1))
    short = xr.DataArray(np.ones(N - 1), dims="stimulus", coords={"stimulus": list("abcdefgh")})
    with pytest.raises(ba.StimulusAlignmentError, match=r"misses 9 stimulus id\(s\).*'0', '1'"):
        rsa.compare(a, b, "whitened_cosine", sigma_k=short)
    const = a.copy(data=1.0 - np.eye(N))
    with pytest.raises(ValueError, match=r"rdm_a is constant .* whitened_pearson similarity"):
        rsa.compare(const, b, "whitened_pearson")
    zero = a.copy(data=np.zeros((N, N)))
    with pytest.raises(ValueError, match=r"rdm_b is all zero .* bures similarity"):
        rsa.compare(a, zero, "bures")


def _rdm_from(values):
    return squareform(values, checks=False)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(4, 9),
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.sampled_from(["spearman", "kendall_tau_a", "rho_a"]),
)
def test_property_rank_methods_invariant_to_monotone_transforms(n, seed, ties, method):
    rng = np.random.default_rng(seed)
    k = n * (n - 1) // 2
    a = rng.normal(size=k)
    b = rng.normal(size=k)
    if ties:
        a, b = np.round(a), np.round(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return  # spearman is undefined for a constant RDM
    transformed = np.exp(2 * b) - 7  # strictly increasing: keeps order and ties
    before = rsa.compare(_rdm_from(a), _rdm_from(b), method)
    after = rsa.compare(_rdm_from(a), _rdm_from(transformed), method)
    assert after == pytest.approx(before, abs=1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine", "rho_a"])
def test_torch_path_equals_numpy_path(rng, method):
    """The torch path (used on GPUs) against the numpy/numba CPU path, both on the CPU."""
    from brainalign.rsa._compare_kernels import _vector_methods_numpy, vector_methods_torch

    p = 45
    a = np.round(rng.normal(size=(3, 1, p)) * 2)  # ties
    b = rng.normal(size=(1, 4, p))
    for holes in (False, True):
        if holes:
            a[0, 0, [1, 2]] = np.nan
            b[0, 3, [2, 9]] = np.nan
        want = _vector_methods_numpy(a, b, method)
        got = vector_methods_torch(torch.as_tensor(a), torch.as_tensor(b), method)
        assert got.shape == (3, 4)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-13)


def test_rank_helpers_match_scipy(rng):
    from scipy.stats import rankdata

    from brainalign.rsa._compare_kernels import average_ranks, dense_ranks

    v = np.round(rng.normal(size=(4, 30)) * 2)
    v[1, [3, 7]] = np.nan
    mask = rng.random((4, 30)) > 0.3
    avg = average_ranks(v, mask)
    dense = dense_ranks(v)
    for r in range(4):
        keep = mask[r] & np.isfinite(v[r])
        np.testing.assert_array_equal(avg[r][keep], rankdata(v[r][keep]))
        assert (avg[r][~keep] == 0).all()
        fin = np.isfinite(v[r])
        np.testing.assert_array_equal(dense[r][fin], rankdata(v[r][fin], method="dense") - 1)
        assert (dense[r][~fin] == -1).all()


def test_many_data_rdms_one_model(rng, tol):
    """More rows on the data side than on the model side (the kernel swaps the two)."""
    from scipy.stats import spearmanr

    data = np.stack([_rdm_vec(rng) for _ in range(5)])
    model = _rdm_vec(rng)
    res = rsa.compare(_stack(data), _single(model), "spearman")
    want = [spearmanr(d, model).statistic for d in data]
    np.testing.assert_allclose(res.values, want, rtol=0, atol=tol(1e-12, float32=CORR32))
    rho_a = rsa.compare(_stack(data), _single(model), "rho_a")
    np.testing.assert_allclose(
        rho_a.values, _rsatoolbox("rho_a", model, data), atol=tol(EXACT, float32=CORR32)
    )


@pytest.mark.parametrize("method", rsa.METHODS)
def test_kernel_batched_over_models_and_permutations(rng, method):
    """``compare_vectors(a, b)`` with ``a: (p,)`` and ``b: (models, perms, p)``, as inference
    code calls it, equals one comparison at a time."""
    from brainalign.rsa._compare_kernels import compare_vectors

    a = torch.as_tensor(_rdm_vec(rng))
    b = torch.as_tensor(np.stack([_rdm_vec(rng) for _ in range(6)]).reshape(2, 3, -1))
    got = compare_vectors(a, b, method, n_stimuli=N)
    assert got.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = compare_vectors(a[None], b[i, j][None], method, n_stimuli=N)[0]
            assert float(got[i, j]) == pytest.approx(float(one), abs=1e-12)


@pytest.mark.parametrize("center", [False, True])
def test_whitened_torch_path_equals_numpy_path(rng, center):
    """The torch path of complete whitened comparisons (used on GPUs) against numpy."""
    from brainalign.rsa._compare_kernels import _whitened_complete_numpy, whitened

    a = np.stack([_rdm_vec(rng) for _ in range(2)])[:, None, :]
    b = np.stack([_rdm_vec(rng) for _ in range(3)])[None]
    for sigma in (None, rng.uniform(0.5, 2.0, N)):
        want = _whitened_complete_numpy(a, b, N, center=center, sigma_diag=sigma)
        got = whitened(
            torch.as_tensor(a),
            torch.as_tensor(b),
            None,
            N,
            center=center,
            sigma_k=None if sigma is None else torch.as_tensor(sigma),
        )
        assert got.shape == (2, 3)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-13)


def test_inputs_are_never_modified():
    """rsatoolbox 0.3.2's transforms overwrite their input RDMs in place (a known defect);
    brainalign's comparisons, tests and evaluations leave every input untouched."""
    from brainalign import rsa

    rng = np.random.default_rng(11)
    x = rng.normal(size=(7, 9))
    data = np.stack([rsa.rdm(x + rng.normal(size=x.shape)).values for _ in range(4)])
    model = rsa.rdm(x)
    data_before, model_before = data.copy(), model.copy(deep=True)
    for method in ("spearman", "kendall_tau_a", "rho_a", "whitened_pearson"):
        rsa.compare(data[0], model, method)
        rsa.permutation_test(data[0], model, method, n_permutations=20, seed=0)
    rsa.evaluate(data, model.values[None], "spearman", resample="both", n_bootstrap=5, seed=0)
    np.testing.assert_array_equal(data, data_before)
    xr.testing.assert_identical(model, model_before)
