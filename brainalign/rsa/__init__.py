"""Representational similarity analysis: RDMs and their comparison, on a torch device."""

from brainalign.rsa._compare import METHODS, compare
from brainalign.rsa._inference import permutation_test
from brainalign.rsa._models import categorical_rdm
from brainalign.rsa._rdm import METRICS, as_rdm, rdm

__all__ = ["METHODS", "METRICS", "as_rdm", "categorical_rdm", "compare", "permutation_test", "rdm"]
