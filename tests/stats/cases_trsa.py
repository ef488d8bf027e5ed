"""Calibration of topological RSA: it offers no p-value, so the route it documents is checked.

``brainalign.trsa`` reports descriptive statistics only: :func:`trsa.grid_compare` and
:func:`trsa.grid_identification` return similarities and accuracies over the threshold grid
(attr ``inference`` = :data:`brainalign.trsa._grid.DESCRIPTIVE`), and
:func:`trsa.identification_accuracy` a bootstrap distribution without a p-value
(``test_calibration_trsa.py`` checks that they say so). For a test at one threshold cell,
``grid_compare``'s docstring sends the user to :func:`brainalign.rsa.permutation_test` on
the transformed RDMs; the case below checks that route's size under a true null.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _calib import Calibration, register, seed_of
from cases_rsa import _corr_rdms

from brainalign import rsa, trsa

ALPHA = 0.05

_IDS = [f"s{i}" for i in range(6)]


def _labeled(rdms: np.ndarray) -> xr.DataArray:
    dims = ("model", "stimulus_a", "stimulus_b")[3 - rdms.ndim :]
    return xr.DataArray(rdms, dims=dims, coords={"stimulus_a": _IDS, "stimulus_b": _IDS})


def _rgtm_permutation_trial(rng: np.random.Generator) -> np.ndarray:
    data = _corr_rdms(rng.normal(size=(6, 20)))
    models = _corr_rdms(rng.normal(size=(4, 6, 20)))
    a = trsa.rgtm(_labeled(data), 0.2, 0.8, device="cpu")
    b = trsa.rgtm(_labeled(models), 0.2, 0.8, device="cpu")
    res = rsa.permutation_test(a, b, "pearson", seed=seed_of(rng), device="cpu")
    return res.p_value.values <= ALPHA


register(
    Calibration(
        name="trsa.rgtm + rsa.permutation_test exact (6 stimuli, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=_rgtm_permutation_trial,
        null="data and 4 model RDMs from independent Gaussian patterns, each RGTM-transformed "
        "(lower=0.2, upper=0.8); all 720 stimulus permutations",
        n_reps=60,
        n_reps_full=500,
    )
)
