"""Encoding models on a torch device: cross-validated ridge, banded ridge, delays, ceilings.

Fit features (model activations, stimulus descriptors, their delays) to brain responses
(voxels, channels × time) with exact K-fold ridge, one penalty per target.
"""

from brainalign.encoding._banded import BandedRidgeCV
from brainalign.encoding._delays import (
    convolve_hrf,
    delay,
    flatten_targets,
    hrf_basis,
    lag_matrix,
    spm_hrf,
    trf_lags,
    undelay_coef,
)
from brainalign.encoding._ridge import DEFAULT_ALPHAS, RidgeCV, make_folds, ridge, ridge_cv
from brainalign.encoding._solvers import CRITERIA, SOLVERS
from brainalign.encoding._trf import TRF, laplacian_penalty

__all__ = [
    "CRITERIA",
    "DEFAULT_ALPHAS",
    "SOLVERS",
    "TRF",
    "BandedRidgeCV",
    "RidgeCV",
    "convolve_hrf",
    "delay",
    "flatten_targets",
    "hrf_basis",
    "lag_matrix",
    "laplacian_penalty",
    "make_folds",
    "ridge",
    "ridge_cv",
    "spm_hrf",
    "trf_lags",
    "undelay_coef",
]
