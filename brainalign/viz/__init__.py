"""Figures that stand on their own (publication figures) and that reports embed."""

from brainalign.viz._align import plot_layer_profile, plot_network_space
from brainalign.viz._maps import (
    SURFACE_VIEWS,
    plot_brain_map,
    plot_glass_brain,
    plot_surface_map,
    plot_time_course,
)
from brainalign.viz._rdm import (
    classical_mds,
    new_figure,
    plot_mds,
    plot_model_comparison,
    plot_rdm,
    plot_rdms,
)
from brainalign.viz._scores import plot_score_matrix

__all__ = [
    "SURFACE_VIEWS",
    "classical_mds",
    "new_figure",
    "plot_brain_map",
    "plot_glass_brain",
    "plot_layer_profile",
    "plot_mds",
    "plot_model_comparison",
    "plot_network_space",
    "plot_rdm",
    "plot_rdms",
    "plot_score_matrix",
    "plot_surface_map",
    "plot_time_course",
]
