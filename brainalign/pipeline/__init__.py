"""Pipelines: a YAML spec → a plan of units → results and a report."""

from brainalign.pipeline._run import RunResult, Unit, plan, run
from brainalign.pipeline._spec import SpecError, load_spec, validate_spec

__all__ = ["RunResult", "SpecError", "Unit", "load_spec", "plan", "run", "validate_spec"]
