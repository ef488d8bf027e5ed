"""Topological RSA: geo-topological (RGTM) and geodesic (RGDM) summaries of RDMs.

Lin & Kriegeskorte, "The Topology and Geometry of Neural Representations" (arXiv
2309.11028): transforms that keep who is near whom and de-emphasise the exact distances,
the paper's threshold grid and its five families, grid-wide model-brain comparisons, and
the paper's evaluation (identifying a held-out RDM's region or layer by nearest centroid).
"""

from brainalign.trsa._evaluation import grid_identification, identification_accuracy
from brainalign.trsa._geodesic import GEODESIC_METHODS, rgdm
from brainalign.trsa._grid import (
    FAMILIES,
    family,
    family_mean,
    grid_compare,
    threshold_grid,
)
from brainalign.trsa._plot import plot_grid
from brainalign.trsa._transforms import SEMANTICS, rgtm, rgtm_sigmoid

__all__ = [
    "FAMILIES",
    "GEODESIC_METHODS",
    "SEMANTICS",
    "family",
    "family_mean",
    "grid_compare",
    "grid_identification",
    "identification_accuracy",
    "plot_grid",
    "rgdm",
    "rgtm",
    "rgtm_sigmoid",
    "threshold_grid",
]
