"""Penalties below what float32 resolves warn, in one form (issue 23)."""

import warnings

import numpy as np
import pytest

from brainalign.encoding import KernelRidgeCV

pytestmark = pytest.mark.float32


@pytest.fixture(scope="module")
def low_rank():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 10))
    y = x @ rng.normal(size=(10, 3)) + 0.1 * rng.normal(size=(60, 3))
    return x, y


def test_kernel_ridge_warns_below_float32_resolution(low_rank):
    x, y = low_rank
    # the linear kernel's largest eigenvalue is ~100 (60 samples x 10 features): float32
    # resolves a penalty down to about 10 * 1.2e-7 * 100 = 1.2e-4
    with pytest.warns(
        UserWarning, match=r"The smallest alpha \(1e-06\) is below 10·eps·λ_max\(K\)"
    ):
        fit32 = KernelRidgeCV(alphas=[1e-6], kernel="linear", dtype="float32").fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit64 = KernelRidgeCV(alphas=[1e-6], kernel="linear", dtype="float64").fit(x, y)
        KernelRidgeCV(alphas=[1.0], kernel="linear", dtype="float32").fit(x, y)
    # what the warning is about: the float32 dual coefficients at that penalty are far from
    # the float64 ones (a rank-10 kernel of 60 samples is singular up to the penalty)
    err = np.abs(fit32.dual_coef_ - fit64.dual_coef_).max() / np.abs(fit64.dual_coef_).max()
    assert err > 1e-3
