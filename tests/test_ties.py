"""brainalign._ties.tie_margin: the rounding margin of permutation p-values."""

import numpy as np
import pytest
import torch

from brainalign._ties import tie_margin


def test_margin_is_a_few_ulps_of_the_sum_and_scales_with_the_statistic():
    eps32, eps64 = 2.0**-23, 2.0**-52
    # float64: the 1e-12 floor until 8 sqrt(n) eps64 passes it (n > ~317,000 terms)
    assert tie_margin(36, torch.float64) == 1e-12
    assert tie_margin(10**6, torch.float64) == pytest.approx(8 * 1e3 * eps64)
    # float32: 8 sqrt(n) ulps, whatever the spelling of the dtype
    for dt in (torch.float32, np.float32, "float32"):
        assert tie_margin(36, dt) == pytest.approx(48 * eps32)
    # values above 1 in magnitude (neg_riem_dist: -3 to -30, t statistics) scale it
    scaled = tie_margin(36, torch.float32, np.array([0.5, -3.0, 30.0]))
    np.testing.assert_allclose(scaled, 48 * eps32 * np.array([1.0, 3.0, 30.0]))
    assert isinstance(tie_margin(36, torch.float32, -2.0), float)
