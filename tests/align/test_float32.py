"""float32 shape metrics at rounding level (issue 23).

The distance is the square root of a difference of sums (|X|^2 + |Y|^2 - 2 |X^T Y|_*), so
float32 singular values (error eps * s_max each) left about sqrt(eps) of the norms: 2.3e-3
for a rotated copy of 25 x 6 data and 1.2e-3 for the stochastic Gaussian metric, before the
small SVDs and eigendecompositions moved to float64. The reference is the exact answer (0
for a rotated, translated copy) and the float64 computation.
"""

import numpy as np
import pytest

import brainalign as ba
from brainalign.align import shape_metric, stochastic_shape

pytestmark = pytest.mark.float32


def _ids(n):
    return [f"s{i}" for i in range(n)]


def _rot(rng, p):
    q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    return q


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("score", ["euclidean", "angular"])
def test_float32_rotated_copy_is_at_rounding_distance(rng, score, alpha):
    x = rng.normal(size=(25, 6)) @ rng.normal(size=(6, 6))
    y = x @ _rot(rng, 6) + rng.normal(size=6)
    a = ba.responses(x, _ids(25), feature_dim="unit")
    b = ba.responses(y, _ids(25), feature_dim="unit")
    d = float(shape_metric(a, b, score=score, alpha=alpha, dtype="float32"))
    # the float32 inputs differ from an exact rotation by eps32 * |x| per entry; the
    # distance (euclidean: in units of the data's norm, about 10 here; angular: radians,
    # where arccos near 1 turns a relative error e into sqrt(2 e)) stays near that
    limit = {"euclidean": 1e-4, "angular": 1e-3}[score]
    assert abs(d) < limit


def test_float32_stochastic_gaussian_of_rotated_copy(rng):
    z = rng.normal(size=(4, 5, 3)) + rng.normal(size=(4, 1, 3))
    rotated = z @ _rot(rng, 3)
    ids = np.repeat(_ids(4), 5)
    a = ba.responses(z.reshape(20, 3), ids, sample_dim="trial", feature_dim="unit")
    b = ba.responses(rotated.reshape(20, 3), ids, sample_dim="trial", feature_dim="unit")
    d64 = float(stochastic_shape(a, b, method="gaussian", dtype="float64"))
    d32 = float(stochastic_shape(a, b, method="gaussian", dtype="float32"))
    # the Bures term runs in float64; what is left is the float32 rounding of the inputs,
    # whose square root (the metric is a square root of a squared distance) is ~sqrt(eps32)
    # of the unit covariances at worst
    assert abs(d64) < 1e-6
    assert abs(d32) < 1e-4
