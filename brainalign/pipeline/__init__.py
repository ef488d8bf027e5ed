"""Pipelines: a YAML spec → a plan of units → results and a report.

Analyses, brain sources and model kinds are plug-ins (:class:`Analysis`, :class:`Source`,
:class:`ModelKind`) registered with :func:`register_analysis`, :func:`register_source` and
:func:`register_model`, or from another package with entry points; see "Write your own
analysis" in ``docs/pipelines.md``.
"""

from brainalign.pipeline._analysis import (
    Analysis,
    ModelKind,
    Source,
    Unit,
    list_analyses,
    list_model_kinds,
    list_sources,
    register_analysis,
    register_model,
    register_source,
)
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline._dask import connect, slurm_cluster
from brainalign.pipeline._run import RunResult, default_out, plan, redraw_figures, run
from brainalign.pipeline._spec import SpecError, load_spec, validate_spec

__all__ = [
    "Analysis",
    "ModelKind",
    "RunResult",
    "Source",
    "SpecError",
    "Unit",
    "connect",
    "content_key",
    "default_out",
    "entries_to_tree",
    "list_analyses",
    "list_model_kinds",
    "list_sources",
    "load_spec",
    "plan",
    "redraw_figures",
    "register_analysis",
    "register_model",
    "register_source",
    "run",
    "slurm_cluster",
    "tree_to_entries",
    "validate_spec",
]
