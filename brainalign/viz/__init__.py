"""Figures that stand on their own (publication figures) and that reports embed."""

from brainalign.viz._rdm import plot_model_comparison, plot_rdm, plot_rdms

__all__ = ["plot_model_comparison", "plot_rdm", "plot_rdms"]
