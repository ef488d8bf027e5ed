"""Representational similarity analysis on a torch device.

RDMs, comparisons, inference, searchlight and time-resolved RSA.
"""

from brainalign.rsa._bootstrap_ci import bootstrap_ci
from brainalign.rsa._cluster import cluster_permutation_test
from brainalign.rsa._compare import METHODS, RSATOOLBOX_METHODS, compare
from brainalign.rsa._crossval import FITTERS, crossval, fit_weighted
from brainalign.rsa._evaluate import bootstrap, evaluate, model_tests, noise_ceiling, test
from brainalign.rsa._group import sign_flip_test
from brainalign.rsa._inference import permutation_test
from brainalign.rsa._models import categorical_rdm
from brainalign.rsa._noise import NOISE_METHODS, noise_precision
from brainalign.rsa._rdm import CV_METRICS, METRICS, as_rdm, rdm
from brainalign.rsa._searchlight import (
    SEARCHLIGHT_METHODS,
    SEARCHLIGHT_METRICS,
    mesh_adjacency,
    searchlight,
)
from brainalign.rsa._timeresolved import temporal_generalization, time_resolved

__all__ = [
    "CV_METRICS",
    "FITTERS",
    "METHODS",
    "METRICS",
    "NOISE_METHODS",
    "RSATOOLBOX_METHODS",
    "SEARCHLIGHT_METHODS",
    "SEARCHLIGHT_METRICS",
    "as_rdm",
    "bootstrap",
    "bootstrap_ci",
    "categorical_rdm",
    "cluster_permutation_test",
    "compare",
    "crossval",
    "evaluate",
    "fit_weighted",
    "mesh_adjacency",
    "model_tests",
    "noise_ceiling",
    "noise_precision",
    "permutation_test",
    "rdm",
    "searchlight",
    "sign_flip_test",
    "temporal_generalization",
    "test",
    "time_resolved",
]
