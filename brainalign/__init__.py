"""brainalign: how alike are a brain's representations and a model's.

The public API: configuration, the labeled-tensor schema, the analysis subpackages
(:mod:`brainalign.rsa`, :mod:`brainalign.encoding`, :mod:`brainalign.trsa`,
:mod:`brainalign.align`), reports
(:class:`brainalign.Report`) and the command line.
"""

from brainalign import align, data, datasets, encoding, rsa, trsa, viz
from brainalign._checks import SchemaError, StimulusAlignmentError
from brainalign._config import config_context, get_config, set_config
from brainalign._version import __version__
from brainalign.data import align_stimuli, average_trials, load, responses, save, validate
from brainalign.pipeline import run
from brainalign.report import Report

__all__ = [
    "Report",
    "SchemaError",
    "StimulusAlignmentError",
    "__version__",
    "align",
    "align_stimuli",
    "average_trials",
    "config_context",
    "data",
    "datasets",
    "encoding",
    "get_config",
    "load",
    "responses",
    "rsa",
    "run",
    "save",
    "set_config",
    "trsa",
    "validate",
    "viz",
]
