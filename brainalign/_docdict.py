"""Parameter descriptions shared by many docstrings, written once (as MNE's ``docdict``).

A docstring names an entry by a line ``%(device)s`` in its Parameters section, indented
as the other parameters, and the function is decorated with :func:`fill_doc`, which
replaces each such line with the entry, its continuation lines indented to match.

Only ``%(name)s`` placeholders are replaced, so a docstring needs no ``%%`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

__all__ = ["docdict", "fill_doc"]

_F = TypeVar("_F", bound=Callable)

#: Entry name → numpydoc parameter text (first line unindented, description by 4 spaces).
docdict: dict[str, str] = {
    "device": """device : str or torch.device, optional
    Where to compute (default: the configured device, see
    :func:`brainalign.set_config`).""",
    "dtype": """dtype : {"auto", "float32", "float64"}, optional
    Compute precision (default: the configured dtype; ``"auto"`` is float64 on CPU and
    float32 on GPU).""",
    "seed": """seed : int, optional
    Random seed (default: the configured seed, see :func:`brainalign.set_config`).""",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def fill_docstring(docstring: str, entries: dict[str, str] | None = None) -> str:
    """Replace each ``%(name)s`` line of a docstring by its :data:`docdict` entry.

    Parameters
    ----------
    docstring : str
        The docstring; each placeholder stands alone on its line.
    entries : dict of str to str, optional
        The entries to use (default: :data:`docdict`).

    Returns
    -------
    filled : str
        The docstring with every placeholder replaced, indented as the placeholder.

    Raises
    ------
    KeyError
        If a placeholder names no entry.
    """
    entries = docdict if entries is None else entries

    def _entry(match: re.Match) -> str:
        name, indent = match.group("name"), match.group("indent")
        if name not in entries:
            raise KeyError(
                f"docstring placeholder %({name})s names no docdict entry; "
                f"known: {sorted(entries)}"
            )
        return "\n".join(indent + line if line else "" for line in entries[name].splitlines())

    return _PLACEHOLDER.sub(_entry, docstring)


def fill_doc(func: _F, entries: dict[str, str] | None = None) -> _F:
    """Fill the ``%(name)s`` placeholders of a function's or class's docstring.

    Parameters
    ----------
    func : callable
        The function or class; its ``__doc__`` is replaced in place (docstrings stripped
        by ``python -OO`` are left as they are).
    entries : dict of str to str, optional
        The entries to use (default: :data:`docdict`); a module's own shared text, bound
        with :func:`functools.partial` to make its decorator.

    Returns
    -------
    func : callable
        The same object.
    """
    if func.__doc__:
        func.__doc__ = fill_docstring(func.__doc__, entries)
    return func
