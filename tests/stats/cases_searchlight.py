"""Calibration cases of the searchlight and time-resolved permutation tests.

Each trial simulates one small data set in which brain and model are independent (Gaussian
patterns; the model RDM from independent patterns of the same stimuli), runs one public
brainalign routine with 39 random stimulus-label permutations, and reports whether it
rejects at ``alpha = 0.05``. With ``p = (1 + #{null >= observed}) / 40``, a rejection needs
at most one permuted statistic at or above the observed one, whose probability under
exchangeable labels is exactly 2 / 40 = 0.05: the tests are valid (size <= 0.05).
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr
from _calib import Calibration, register, seed_of

from brainalign import rsa

ALPHA = 0.05
N_STIMULI, N_PERMUTATIONS = 8, 39
IDS = [f"s{i}" for i in range(N_STIMULI)]
_GRID = np.array(list(np.ndindex(4, 4, 2)))  # 32 voxels, 3 mm apart


def _model(rng: np.random.Generator) -> xr.DataArray:
    patterns = xr.DataArray(
        rng.normal(size=(N_STIMULI, 5)), dims=("stimulus", "unit"), coords={"stimulus": IDS}
    )
    return rsa.rdm(patterns, device="cpu")


def _cluster_trial(rng: np.random.Generator) -> bool:
    xyz = _GRID * 3.0
    data = xr.DataArray(
        rng.normal(size=(N_STIMULI, len(xyz))),
        dims=("stimulus", "voxel"),
        coords={"stimulus": IDS, **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")}},
    )
    res = rsa.cluster_permutation_test(
        data,
        _model(rng),
        radius=4.0,
        method="pearson",
        n_permutations=N_PERMUTATIONS,
        seed=seed_of(rng),
        device="cpu",
    )
    p = res.cluster_p_value.values
    return bool(p.size and p.min() <= ALPHA)  # any cluster significant: a family-wise error


register(
    Calibration(
        name="rsa.cluster_permutation_test family-wise error (8 stimuli, 32 voxels, 39 "
        "permutations, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=_cluster_trial,
        null="searchlight data (32 voxels on a 3 mm grid, radius 4 mm) and the model RDM "
        "from independent Gaussian patterns; a rejection is any cluster with p <= 0.05",
        n_reps=150,
        n_reps_full=500,
    )
)


def _time_trial(rng: np.random.Generator, corrected: bool) -> bool:
    data = xr.DataArray(
        rng.normal(size=(N_STIMULI, 6, 6)),
        dims=("stimulus", "channel", "time"),
        coords={"stimulus": IDS, "time": np.arange(6) / 100.0},
    )
    res = rsa.time_resolved(
        data,
        _model(rng),
        method="pearson",
        n_permutations=N_PERMUTATIONS,
        seed=seed_of(rng),
        device="cpu",
    )
    if corrected:  # any time point significant after max-statistic correction
        return bool((res.p_value_corrected.values <= ALPHA).any())
    return bool(res.p_value.values[0] <= ALPHA)  # one fixed time point, uncorrected


register(
    Calibration(
        name="rsa.time_resolved corrected p, family-wise error over 6 time points "
        "(8 stimuli, 39 permutations, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=functools.partial(_time_trial, corrected=True),
        null="M/EEG patterns (6 channels x 6 time points) and the model RDM from independent "
        "Gaussian patterns; a rejection is any time point with corrected p <= 0.05",
        n_reps=120,
        n_reps_full=500,
    )
)
register(
    Calibration(
        name="rsa.time_resolved uncorrected p at one time point (8 stimuli, 39 "
        "permutations, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=functools.partial(_time_trial, corrected=False),
        null="as the corrected case; a rejection is p <= 0.05 at the first time point",
        n_reps=120,
        n_reps_full=500,
    )
)


def _sign_flip_trial(rng: np.random.Generator) -> bool:
    # subject maps with no effect anywhere: Gaussian, spatially smooth (neighbouring voxels
    # share noise), so the max-t correction has correlated elements to handle
    raw = rng.normal(size=(8, 42))
    maps = xr.DataArray((raw[:, :-2] + raw[:, 1:-1] + raw[:, 2:]) / 3, dims=("subject", "voxel"))
    res = rsa.sign_flip_test(maps, n_permutations=N_PERMUTATIONS, seed=seed_of(rng))
    return bool((res.p_fwe.values <= ALPHA).any())  # any voxel: a family-wise error


register(
    Calibration(
        name="rsa.sign_flip_test family-wise error over a group map (8 subjects, 40 voxels, "
        "39 sign flips)",
        kind="size",
        nominal=ALPHA,
        trial=_sign_flip_trial,
        null="subject maps (searchlight or encoding maps) symmetric around 0 with no effect "
        "anywhere, neighbouring voxels correlated; a rejection is any voxel with p_FWE <= 0.05",
        n_reps=300,
        n_reps_full=1000,
    )
)
