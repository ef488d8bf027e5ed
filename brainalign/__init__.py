"""brainalign: how alike are a brain's representations and a model's.

The public API: configuration, the labeled-tensor schema, the analysis subpackages
(:mod:`brainalign.rsa`, :mod:`brainalign.encoding`, :mod:`brainalign.trsa`,
:mod:`brainalign.ricci`, :mod:`brainalign.align`), reports (:class:`brainalign.Report`) and
the command line.

``import brainalign`` is fast: it loads nothing but the version. Every public name (the
subpackages, ``ba.load``, ``ba.Report``, ``ba.run``, ...) is imported the first time it is
used (PEP 562 module ``__getattr__``, the lazy-submodule pattern of SciPy and MNE), so that
torch, xarray, scikit-learn, matplotlib, nilearn and mne load only when something needs them.
``from brainalign import X`` and ``dir(brainalign)`` work as for an eager package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from brainalign._version import __version__

if TYPE_CHECKING:  # static type checkers and IDEs see every public name
    from brainalign import (
        align,
        data,
        datasets,
        encoding,
        ricci,
        rsa,
        trsa,
        viz,
    )
    from brainalign import (
        loaders as loaders,
    )
    from brainalign import (
        pipeline as pipeline,
    )
    from brainalign import (
        report as report,
    )
    from brainalign._checks import SchemaError, StimulusAlignmentError
    from brainalign._config import config_context, get_config, set_config
    from brainalign._memory import MemoryBudgetError
    from brainalign.data import align_stimuli, average_trials, load, responses, save, validate
    from brainalign.pipeline import run
    from brainalign.report import Report

#: Subpackages reached as attributes (``ba.rsa``), imported on first use.
_SUBMODULES = (
    "align",
    "data",
    "datasets",
    "encoding",
    "loaders",
    "pipeline",
    "report",
    "ricci",
    "rsa",
    "trsa",
    "viz",
)

#: Public name → the module that defines it, imported on first use.
_ATTRIBUTES = {
    "SchemaError": "brainalign._checks",
    "StimulusAlignmentError": "brainalign._checks",
    "config_context": "brainalign._config",
    "get_config": "brainalign._config",
    "MemoryBudgetError": "brainalign._memory",
    "set_config": "brainalign._config",
    "align_stimuli": "brainalign.data",
    "average_trials": "brainalign.data",
    "load": "brainalign.data",
    "responses": "brainalign.data",
    "save": "brainalign.data",
    "validate": "brainalign.data",
    "run": "brainalign.pipeline",
    "Report": "brainalign.report",
}

__all__ = [
    "MemoryBudgetError",
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
    "ricci",
    "rsa",
    "run",
    "save",
    "set_config",
    "trsa",
    "validate",
    "viz",
]


def __getattr__(name: str) -> Any:
    """Import a public subpackage or name the first time it is used (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"brainalign.{name}")
    module = _ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module 'brainalign' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    """List the public names (lazy ones included) beside the module's own."""
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
