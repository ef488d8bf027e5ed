"""Alignment measures beyond RDMs, with stimuli aligned by id and other dims broadcast.

CKA (:func:`cka`), the CCA family (:func:`cca`, :func:`svcca`, :func:`pwcca`), generalised
shape metrics (:func:`shape_metric`, :func:`stochastic_shape`, :func:`pairwise`,
:func:`embed`), nearest-neighbour alignment (:func:`mutual_knn`, :func:`knn_overlap`), soft
matching (:func:`soft_matching`) and linear predictivity (:func:`predictivity`); one entry
point (:func:`compare`, :data:`METHODS`) and stimulus-level inference
(:func:`permutation_test`, :func:`bootstrap_ci`).
"""

from brainalign.align._cca import cca, pwcca, svcca
from brainalign.align._cka import cka
from brainalign.align._compare import METHODS, compare
from brainalign.align._inference import bootstrap_ci, permutation_test
from brainalign.align._knn import knn_overlap, mutual_knn
from brainalign.align._predictivity import predictivity
from brainalign.align._shape import embed, pairwise, shape_metric, stochastic_shape
from brainalign.align._soft import soft_matching

__all__ = [
    "METHODS",
    "bootstrap_ci",
    "cca",
    "cka",
    "compare",
    "embed",
    "knn_overlap",
    "mutual_knn",
    "pairwise",
    "permutation_test",
    "predictivity",
    "pwcca",
    "shape_metric",
    "soft_matching",
    "stochastic_shape",
    "svcca",
]
