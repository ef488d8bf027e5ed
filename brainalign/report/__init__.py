"""Self-contained HTML reports of brain-versus-model analyses."""

from brainalign.report._report import Report

__all__ = ["Report"]
