"""The encoding estimators under the one memory budget (issue 23).

``max_memory`` of :func:`brainalign.set_config` caps the estimators' working memory (their own
``max_memory=`` only sizes target chunks), and a fit whose smallest working set (the data and
one target at a time) exceeds it is refused before allocating, naming both sizes. Peak memory
is measured in a fresh subprocess (``run_measured`` in conftest).
"""

import sys

import numpy as np
import pytest

import brainalign as ba
from brainalign._memory import MemoryBudgetError
from brainalign.encoding import KernelRidgeCV, RidgeCV

_SCRIPT = """

import brainalign as ba
from brainalign.encoding import RidgeCV
rng = np.random.default_rng(0)
X = rng.normal(size=(400, 60))
Y = X @ rng.normal(size=(60, 30000)) + rng.normal(size=(400, 30000))
RidgeCV().fit(X[:50], Y[:50, :10])  # warm up
data = X.nbytes + Y.nbytes
budget = data + 80 * 10**6
out = {"data": data, "budget": budget}
est, out["grew_default"] = measure(lambda: RidgeCV(solver="primal").fit(X, Y))
ref = est.coef_
del est
with ba.config_context(max_memory=budget):
    est, out["grew"] = measure(lambda: RidgeCV(solver="primal").fit(X, Y))
out["coef_bytes"] = est.coef_.nbytes
out["same"] = bool(np.abs(est.coef_ - ref).max() <= 1e-10 * np.abs(ref).max())
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc (Linux)")
def test_ridge_cv_peak_memory_within_the_configured_budget(run_measured):
    out = run_measured(_SCRIPT, timeout=240)
    assert out["same"]  # smaller chunks change nothing but the rounding of the products
    # the data was allocated before the measurement; the fit's own growth (outputs, the
    # per-fold factors and the target chunks) stays within the budget left beside it, with
    # 8 MB for allocator slack
    assert out["grew"] <= out["budget"] - out["data"] + 8 * 10**6, out
    assert out["grew"] < out["grew_default"], out  # the budget did bound something


def test_ridge_cv_beyond_the_budget_is_refused_before_fitting(rng):
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 200))
    with (
        ba.config_context(max_memory="100kB"),
        pytest.raises(
            MemoryBudgetError,
            match=r"200 targets of 40 samples x 5 features, 9 alphas, 5 folds \(.* solver, the "
            r"data and one target at a time\) needs [\d.]+ kB \(\d+ bytes\), more than the "
            r"memory budget of 100 kB \(100000 bytes\)",
        ),
    ):
        RidgeCV().fit(X, Y)


def test_kernel_ridge_cv_beyond_the_budget_is_refused_before_the_kernel(rng):
    X, Y = rng.normal(size=(300, 5)), rng.normal(size=(300, 2))
    with (
        ba.config_context(max_memory="1MB"),
        pytest.raises(
            MemoryBudgetError,
            match=r"KernelRidgeCV: the \(300, 300\) kernel of 300 samples and its "
            r"eigendecomposition needs [\d.]+ MB \(\d+ bytes\), more than the memory budget "
            r"of 1 MB \(1000000 bytes\)",
        ),
    ):
        KernelRidgeCV().fit(X, Y)


def test_auto_chunks_never_exceed_the_configured_budget():
    import torch

    from brainalign.encoding._ridge import _resolve_memory

    cpu = torch.device("cpu")
    assert _resolve_memory("auto", cpu, 10**6) == 64 * 2**20  # the floor, budget permitting
    with ba.config_context(max_memory=5 * 10**6):
        assert _resolve_memory("auto", cpu, 10**6) == 4 * 10**6  # the budget less the data
        assert _resolve_memory(4096, cpu, 10**6) == 4096  # an explicit chunk size is kept
    np.testing.assert_equal(_resolve_memory("auto", cpu), 512 * 2**20)
