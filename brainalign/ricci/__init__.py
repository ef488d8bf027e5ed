"""Ollivier-Ricci curvature of representational graphs, Ricci flow and communities.

Graphs over stimuli are built from RDMs (k-NN, ε); edge and node curvature follow Ollivier
(2009) with the measures of GraphRicciCurvature (Ni et al. 2019) or scale-free ones; the
brain-versus-model comparison follows Torbati et al. (2025, arXiv:2501.00919), with
stimulus-permutation tests of node curvature and communities and stimulus-bootstrap
intervals of the (descriptive) curvature-distribution distances.

Names shared with other subpackages: :func:`compare` compares two systems' curvature
(node curvature, Ricci-flow communities, curvature distributions), not their RDMs as
``brainalign.rsa.compare`` does; :data:`METHODS` lists curvature solvers (``"exact"``,
``"sinkhorn"``, ``"atd"``), not comparison measures as ``brainalign.rsa.METHODS`` and
``brainalign.align.METHODS`` do. Graphs are undirected: directed graphs are refused (see
:func:`ollivier_ricci`).
"""

from brainalign.ricci._compare import compare
from brainalign.ricci._curvature import MEASURES, METHODS, CurvatureResult, ollivier_ricci
from brainalign.ricci._flow import (
    COMMUNITY_METHODS,
    CommunityResult,
    RicciFlowResult,
    communities,
    ricci_flow,
)
from brainalign.ricci._graph import Graph, as_graph, epsilon_graph, knn_graph
from brainalign.ricci._plot import plot_compare, plot_curvature, plot_node_curvature
from brainalign.ricci._rewire import rewire

__all__ = [
    "COMMUNITY_METHODS",
    "MEASURES",
    "METHODS",
    "CommunityResult",
    "CurvatureResult",
    "Graph",
    "RicciFlowResult",
    "as_graph",
    "communities",
    "compare",
    "epsilon_graph",
    "knn_graph",
    "ollivier_ricci",
    "plot_compare",
    "plot_curvature",
    "plot_node_curvature",
    "rewire",
    "ricci_flow",
]
