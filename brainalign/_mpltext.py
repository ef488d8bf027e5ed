r"""Text for matplotlib, drawn as written: a ``$`` in a name never starts mathtext.

matplotlib reads a text with an even number of unescaped ``$`` as mathtext: a stimulus id or
a model name such as ``"$x$"`` is drawn as an italic *x*, and ``"$\alpha_$"`` fails when the
figure is rendered (after the results are written). Every text that brainalign hands to
matplotlib goes through :func:`mpl_text`; :func:`literal_text` makes a whole figure literal
while it is saved (the report's safety net for figures drawn elsewhere).

This module sits below every layer (like ``_checks``): ``viz``, ``report``, ``pipeline`` and
the analyses' plotting helpers all use the same escape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def mpl_text(text: Any) -> str:
    r"""Return ``str(text)`` with every ``$`` escaped, so that matplotlib draws it as written.

    matplotlib turns ``\$`` back into ``$`` in a text that holds no mathtext, so the drawn
    text is exactly ``str(text)``, backslashes included.

    Parameters
    ----------
    text : object
        A label, title, tick label or legend entry (converted with ``str``).

    Returns
    -------
    escaped : str
        The text with ``$`` replaced by ``\$``.

    Examples
    --------
    >>> mpl_text("$x$")
    '\\$x\\$'
    >>> mpl_text("face")
    'face'
    """
    return str(text).replace("$", r"\$")


def is_mathtext(text: Any) -> bool:
    """Return whether matplotlib would parse ``text`` as mathtext.

    That is when it holds an even, non-zero number of unescaped ``$``.

    Parameters
    ----------
    text : object
        The text.

    Returns
    -------
    math : bool
        matplotlib's own rule (``matplotlib.cbook.is_math_text``).
    """
    s = str(text)
    n = s.count("$") - s.count(r"\$")
    return n > 0 and n % 2 == 0


def _literal(text: Any) -> Any:
    return mpl_text(text) if isinstance(text, str) and is_mathtext(text) else text


@contextmanager
def literal_text(fig: Any) -> Iterator[Any]:
    """Within the block, draw every text of ``fig`` as written (no mathtext), then restore.

    Texts that matplotlib would parse as mathtext (titles, axis labels, legend entries,
    annotations, colour-bar labels) and string tick labels (fixed or categorical) are
    escaped with :func:`mpl_text`; texts already escaped are left alone. String tick labels
    are those of fixed, categorical and function formatters (``set_xticks(ticks, labels)``
    makes a function formatter); numeric tick labels keep their formatter (log axes draw
    ``10^2`` with mathtext on purpose).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. while it is saved.

    Yields
    ------
    fig : matplotlib.figure.Figure
        The same figure.
    """
    from matplotlib.category import StrCategoryFormatter
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    undo: list[Callable[[], None]] = []
    try:
        for t in fig.findobj(Text):
            s = t.get_text()
            if is_mathtext(s):
                t.set_text(mpl_text(s))
                undo.append(lambda t=t, s=s: t.set_text(s))
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                for fmt in (axis.get_major_formatter(), axis.get_minor_formatter()):
                    if isinstance(fmt, FuncFormatter):  # set_ticks(..., labels) makes one
                        func = fmt.func
                        fmt.func = lambda x, pos=None, func=func: _literal(func(x, pos))
                        undo.append(lambda fmt=fmt, func=func: setattr(fmt, "func", func))
                    if isinstance(fmt, FixedFormatter) and any(map(is_mathtext, fmt.seq)):
                        seq = fmt.seq
                        fmt.seq = [_literal(v) for v in seq]
                        undo.append(lambda fmt=fmt, seq=seq: setattr(fmt, "seq", seq))
                    units = getattr(fmt, "_units", None)
                    if isinstance(fmt, StrCategoryFormatter) and isinstance(units, dict):
                        if any(is_mathtext(k) for k in units if isinstance(k, str)):
                            fmt._units = {_literal(k): v for k, v in units.items()}
                            undo.append(lambda fmt=fmt, units=units: setattr(fmt, "_units", units))
        yield fig
    finally:
        for restore in reversed(undo):
            restore()


#: The rc settings of fonts that embed: TrueType (Type 42) in PDF and PostScript, not Type 3
#: bitmaps; SVG text kept as text (editable, set in the reader's font), not paths; and SVG
#: element ids from a fixed salt, so that the same figure gives the same SVG bytes.
EMBEDDED_FONTS_RC = {
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "brainalign",
}


@contextmanager
def embedded_fonts() -> Iterator[None]:
    """Within the block, figures are saved with fonts that embed (:data:`EMBEDDED_FONTS_RC`).

    matplotlib's settings are restored on exit: nothing is changed globally.

    Yields
    ------
    None
    """
    import matplotlib as mpl

    with mpl.rc_context(EMBEDDED_FONTS_RC):
        yield
