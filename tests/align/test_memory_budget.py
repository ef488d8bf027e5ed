"""The alignment kernels refuse, before allocating, a request that cannot fit ``max_memory``.

Each call below would need far more than the 1 MB budget set here (the sizes are in the
messages); with the default budget the same calls run (checked on smaller inputs elsewhere).
The error is :class:`brainalign.MemoryBudgetError` (a ``ValueError`` and a ``MemoryError``).
"""

from __future__ import annotations

import numpy as np
import pytest

import brainalign as ba
from brainalign import align


def _reps(rng, n, p, feature_dim="unit"):
    ids = [f"s{i:04d}" for i in range(n)]
    return ba.responses(rng.normal(size=(n, p)), ids, feature_dim=feature_dim)


@pytest.fixture
def tiny_budget():
    with ba.config_context(max_memory="1MB"):
        yield


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_cka_gram_path_refuses(rng, tiny_budget):
    a, b = _reps(rng, 400, 5), _reps(rng, 400, 3, "voxel")
    with pytest.raises(ba.MemoryBudgetError, match=r"cka: 6 \(400, 400\) kernel matrices"):
        align.cka(a, b, kernel="rbf")


@pytest.mark.float64_only(reason="sizes and messages of the budget are those of 8-byte items")
def test_cka_feature_path_refuses(rng, tiny_budget):
    a, b = _reps(rng, 600, 300), _reps(rng, 600, 200, "voxel")
    with pytest.raises(ba.MemoryBudgetError, match=r"cka: the \(500, 500\) feature products"):
        align.cka(a, b)


def test_knn_refuses_when_one_row_cannot_fit(rng):
    a, b = _reps(rng, 200, 4), _reps(rng, 200, 4, "voxel")
    with (
        ba.config_context(max_memory=1000),
        pytest.raises(
            ba.MemoryBudgetError, match=r"knn: one row of the \(200, 200\) similarities"
        ),
    ):
        align.mutual_knn(a, b, k=5)
    # within the budget, smaller row blocks give the same neighbours
    with ba.config_context(max_memory="40kB"):
        small = align.mutual_knn(a, b, k=5)
    assert float(small) == float(align.mutual_knn(a, b, k=5))


def test_soft_matching_refuses(rng, tiny_budget):
    a, b = _reps(rng, 10, 300), _reps(rng, 10, 400, "voxel")
    with pytest.raises(ba.MemoryBudgetError, match=r"soft_matching: the \(300, 400\)"):
        align.soft_matching(a, b)


def test_pairwise_shape_refuses(rng):
    reps = {f"n{i}": _reps(rng, 300, 40) for i in range(4)}
    with (
        ba.config_context(max_memory="100kB"),
        pytest.raises(ba.MemoryBudgetError, match=r"shape metrics: 4 networks of 300 stimuli"),
    ):
        align.pairwise(reps)
    # 50 stimuli: the Gram of all networks (200 x 200 float64, x 16 headroom) does not fit
    # 200 kB, the zero-padded stack (128 kB) does: same distances by the other route
    small = {f"n{i}": _reps(rng, 50, 40) for i in range(4)}
    with ba.config_context(max_memory="200kB"):
        stacked = align.pairwise(small)
    np.testing.assert_allclose(stacked.values, align.pairwise(small).values, rtol=1e-12)
