"""Lazy imports of optional dependencies, with an install hint on failure."""

from __future__ import annotations

import importlib
from types import ModuleType


def soft_import(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that says how to install it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"transformers"``.
    extra : str
        The brainalign extra that installs it, e.g. ``"models"``.
    purpose : str
        What needs it, e.g. ``"extract_activations(..., hidden_states=True)"``.

    Returns
    -------
    module : module
        The imported module.

    Raises
    ------
    ImportError
        Naming the module, what needs it and ``pip install 'brainalign[extra]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the optional package {module!r}, which is not installed "
            f"({err}). Install it with: pip install 'brainalign[{extra}]'"
        ) from None
