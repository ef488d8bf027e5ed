"""float32 RDMs of data whose mean dwarfs its spread (issue 23).

Correlation and Euclidean RDMs ignore a translation (of each pattern, of all patterns). Below
float64 it is now removed in float64 before the cast: after the cast, a pattern of mean 1e6
and spread 10 keeps only float32's resolution of 1e6 (0.06) of its spread, and correlation
RDMs drifted towards 1 (error 1.3e-2 at a mean of 1e7 before the fix). Reference: scipy's
``pdist`` in float64 on the same values.
"""

import numpy as np
import pytest
import scipy.spatial.distance as ssd

import brainalign as ba
from brainalign import rsa

pytestmark = pytest.mark.float32

# The centred data is well conditioned in float32: each dissimilarity is a p-term dot product
# of values of order 1 rounded once (relative error about eps32 * sqrt(p) = 1.2e-6 for
# p = 100), the largest error over the RDM a few times that.
RTOL32 = 1e-5


@pytest.fixture(scope="module")
def offset_patterns():
    rng = np.random.default_rng(0)
    return {off: (rng.normal(size=(30, 100)) * 10 + off).astype(np.float32) for off in (1e4, 1e7)}


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("offset", [1e4, 1e7])
def test_float32_rdm_of_large_offset_data_matches_float64(offset_patterns, metric, offset):
    x = offset_patterns[offset]
    ref = ssd.squareform(ssd.pdist(x.astype(np.float64), metric))
    got = np.asarray(rsa.rdm(x, metric, dtype="float32"))
    assert np.abs(got - ref).max() <= RTOL32 * np.abs(ref).max()


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_float32_row_blocks_of_large_offset_data_match_float64(metric):
    # the row-block path (an output beyond the work budget) centres in float64 as well
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20)) + 1e6
    ref = ssd.squareform(ssd.pdist(x, metric))
    with ba.config_context(max_memory=400 * 400 * 4 + 400_000):
        got = np.asarray(rsa.rdm(x, metric, dtype="float32"))
    # p = 20 terms: eps32 * sqrt(20) ~ 5e-7 per entry
    assert np.abs(got - ref).max() <= RTOL32 * np.abs(ref).max()
