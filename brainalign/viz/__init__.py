"""Figures that stand on their own (publication figures) and that reports embed.

Every plotting function returns a matplotlib Figure drawn with publication defaults: a
``size`` of ``"column"`` (3.5 in) or ``"two-column"`` (7.2 in) or inches, the Okabe-Ito
colour-blind-safe palette for categories (:data:`OKABE_ITO`), viridis for RDMs, and fonts
that embed when saved (TrueType in PDF, text in SVG), without changing matplotlib's global
settings.
"""

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
from brainalign.viz._style import COLUMN_WIDTHS, OKABE_ITO
from brainalign.viz._timecourse import plot_time_courses

__all__ = [
    "COLUMN_WIDTHS",
    "OKABE_ITO",
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
    "plot_time_courses",
]
