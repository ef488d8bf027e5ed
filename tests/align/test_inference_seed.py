"""One ``seed`` makes an alignment test reproducible, the measure's own draws included.

Minibatch CKA cuts the stimuli into batches at random and a cross-validated shape metric draws
its folds: ``align.permutation_test`` and ``align.bootstrap_ci`` pass their ``seed`` on, so two
calls with the same seed agree exactly even with no configured seed, and the observed
statistic is the measure's own value at that seed (checked against a direct call).
"""

from __future__ import annotations

import numpy as np
import pytest

import brainalign as ba
from brainalign import align


@pytest.fixture
def pair(rng):
    x = rng.normal(size=(24, 5))
    ids = [f"s{i:02d}" for i in range(24)]
    y = x @ rng.normal(size=(5, 4)) + rng.normal(size=(24, 4))
    return ba.responses(x, ids), ba.responses(y, ids, feature_dim="voxel")


@pytest.mark.parametrize(
    ("method", "kw"),
    [("cka", {"batch_size": 6, "estimator": "song"}), ("shape_metric", {"cv": 3})],
)
def test_permutation_test_seeds_the_measure(pair, method, kw):
    a, b = pair
    with ba.config_context(seed=None):
        one = align.permutation_test(a, b, method, n_permutations=20, seed=5, **kw)
        two = align.permutation_test(a, b, method, n_permutations=20, seed=5, **kw)
        direct = align.compare(a, b, method, seed=5, **kw)
    np.testing.assert_array_equal(one["null"].values, two["null"].values)
    assert float(one["statistic"]) == float(direct)
    assert float(one["p_value"]) == float(two["p_value"])


def test_bootstrap_seeds_the_measure(pair):
    a, b = pair
    kw = {"batch_size": 6, "estimator": "song"}
    with ba.config_context(seed=None), pytest.warns(UserWarning, match="descriptive"):
        one = align.bootstrap_ci(a, b, "cka", n_bootstrap=10, seed=2, **kw)
    with ba.config_context(seed=None), pytest.warns(UserWarning, match="descriptive"):
        two = align.bootstrap_ci(a, b, "cka", n_bootstrap=10, seed=2, **kw)
    np.testing.assert_array_equal(one["bootstrap"].values, two["bootstrap"].values)
