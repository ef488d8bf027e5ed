"""Encoding models on a torch device: cross-validated ridge, banded ridge, delays, ceilings.

Fit features (model activations, stimulus descriptors, their delays) to brain responses
(voxels, channels × time) with exact K-fold ridge, one penalty per target (or one shared
by all), kernel ridge and multiple-kernel ridge (banded models in kernel form).
"""

from brainalign.encoding._banded import BandedRidgeCV
from brainalign.encoding._ceiling import (
    explainable_variance,
    ncsnr,
    normalize_score,
    nsd_noise_ceiling,
    spearman_brown,
    split_half_reliability,
)
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
from brainalign.encoding._inference import PERMUTATION_KINDS, permutation_test
from brainalign.encoding._kernel_ridge import KernelRidgeCV
from brainalign.encoding._kernels import KERNELS, pairwise_kernels
from brainalign.encoding._multiple_kernel import MultipleKernelRidgeCV
from brainalign.encoding._ridge import DEFAULT_ALPHAS, RidgeCV, make_folds, ridge, ridge_cv
from brainalign.encoding._scoring import (
    SCORERS,
    correlation_score_split,
    get_scorer,
    r2_score_split,
    score,
)
from brainalign.encoding._solvers import CRITERIA, SOLVERS
from brainalign.encoding._stats import (
    bootstrap_ci,
    bootstrap_indices,
    fdr_bh,
    fwe_max_stat,
    permutation_indices,
    permutation_pvalues,
)
from brainalign.encoding._trf import TRF, laplacian_penalty

__all__ = [
    "CRITERIA",
    "DEFAULT_ALPHAS",
    "KERNELS",
    "PERMUTATION_KINDS",
    "SCORERS",
    "SOLVERS",
    "TRF",
    "BandedRidgeCV",
    "KernelRidgeCV",
    "MultipleKernelRidgeCV",
    "RidgeCV",
    "bootstrap_ci",
    "bootstrap_indices",
    "convolve_hrf",
    "correlation_score_split",
    "delay",
    "explainable_variance",
    "fdr_bh",
    "flatten_targets",
    "fwe_max_stat",
    "get_scorer",
    "hrf_basis",
    "lag_matrix",
    "laplacian_penalty",
    "make_folds",
    "ncsnr",
    "normalize_score",
    "nsd_noise_ceiling",
    "pairwise_kernels",
    "permutation_indices",
    "permutation_pvalues",
    "permutation_test",
    "r2_score_split",
    "ridge",
    "ridge_cv",
    "score",
    "spearman_brown",
    "split_half_reliability",
    "spm_hrf",
    "trf_lags",
    "undelay_coef",
]
