"""Encoding models on a torch device: cross-validated ridge, banded ridge, delays, ceilings.

Fit features (model activations, stimulus descriptors, their delays) to brain responses
(voxels, channels × time) with exact K-fold ridge, one penalty per target.
"""

from brainalign.encoding._ridge import DEFAULT_ALPHAS, RidgeCV, make_folds, ridge, ridge_cv
from brainalign.encoding._solvers import CRITERIA, SOLVERS

__all__ = [
    "CRITERIA",
    "DEFAULT_ALPHAS",
    "SOLVERS",
    "RidgeCV",
    "make_folds",
    "ridge",
    "ridge_cv",
]
