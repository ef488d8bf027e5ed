"""Pipelines: a YAML spec → a plan of units → results and a report."""

from brainalign.pipeline._dask import connect, slurm_cluster
from brainalign.pipeline._run import RunResult, Unit, default_out, plan, run
from brainalign.pipeline._spec import SpecError, load_spec, validate_spec

__all__ = [
    "RunResult",
    "SpecError",
    "Unit",
    "connect",
    "default_out",
    "load_spec",
    "plan",
    "run",
    "slurm_cluster",
    "validate_spec",
]
