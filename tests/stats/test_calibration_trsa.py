"""tRSA: the documented test route holds its size; the grid statistics say they are descriptive."""

from __future__ import annotations

import _calib
import cases_trsa  # noqa: F401 (registers the cases)
import numpy as np
import pytest
import xarray as xr

from brainalign import trsa
from brainalign.trsa._grid import DESCRIPTIVE

TRSA_CASES = _calib.cases_of("cases_trsa")


@pytest.mark.parametrize("case", TRSA_CASES, ids=[c.name for c in TRSA_CASES])
def test_calibration(case):
    _calib.check(case, seed=0)


def _stack(rng, dims):
    x = rng.normal(size=(2, 3, 6, 4))
    d = np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)
    ids = [f"s{i}" for i in range(6)]
    return xr.DataArray(
        d, dims=(*dims, "stimulus_a", "stimulus_b"), coords={"stimulus_a": ids, "stimulus_b": ids}
    )


def test_trsa_statistics_are_reported_as_descriptive():
    """trsa offers no p-value: every labeled result says its numbers are descriptive."""
    rng = np.random.default_rng(0)
    grid = [[0.2, 0.8], [0.0, 1.0]]
    rdms = _stack(rng, ("subject", "roi"))
    sim = trsa.grid_compare(rdms.isel(roi=0), rdms.isel(subject=0), grid=grid)
    assert sim.attrs["inference"] == DESCRIPTIVE == "descriptive (no p-value)"
    acc = trsa.grid_identification(rdms, "subject", "roi", grid=grid)
    assert acc.attrs["inference"] == DESCRIPTIVE
    boot = trsa.identification_accuracy(rdms, "subject", "roi", n_bootstrap=3)
    assert boot.attrs["inference"] == DESCRIPTIVE
    for result in (sim, acc, boot):
        assert not any("p_value" in str(name) for name in result.coords)
    assert "no p-value" in " ".join(trsa.grid_compare.__doc__.split())
