"""Publication defaults of the figures: sizes, colour-blind-safe colours, embeddable fonts.

Nothing here changes matplotlib's global state: the style is applied while a ``viz``
function draws (:func:`publication`), and the font settings while a figure is saved
(:func:`brainalign._mpltext.embedded_fonts`, which the figures of :func:`new_figure` apply in
their ``savefig``). Importing this module does not import matplotlib.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

from brainalign._checks import did_you_mean

#: The Okabe & Ito (2008) colour-blind-safe palette, ordered for categories (blue first;
#: yellow, hard to see on white, and black last). https://jfly.uni-koeln.de/color/
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#000000",  # black
)
#: The perceptually uniform colour map of RDMs and score matrices (readable in grey scale
#: and by colour-blind readers).
SEQUENTIAL_CMAP = "viridis"
#: Figure widths (inches) of a journal's single column and full page width.
COLUMN_WIDTHS = {"column": 3.5, "two-column": 7.2}

#: The rc settings applied while a ``viz`` function draws: small fonts in points (true size
#: at the figure's width), Okabe-Ito lines and bars, a perceptually uniform image map.
STYLE_RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
    "image.cmap": SEQUENTIAL_CMAP,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.4,
}

F = TypeVar("F", bound=Callable[..., Any])


def figure_size(size: Any, default: tuple[float, float]) -> tuple[float, float]:
    """Return a figure's ``(width, height)`` in inches from a ``size`` argument.

    Parameters
    ----------
    size : {"column", "two-column"}, float, (float, float) or None
        ``"column"`` (3.5 in wide) or ``"two-column"`` (7.2 in), or a width in inches: the
        height keeps the aspect ratio of ``default``; a ``(width, height)`` pair in inches;
        None: ``default``.
    default : (float, float)
        The figure's own size (inches).

    Returns
    -------
    width, height : float
        In inches.

    Raises
    ------
    ValueError
        When ``size`` is none of these (the message names the value received).
    """
    w0, h0 = float(default[0]), float(default[1])
    if size is None:
        return w0, h0
    allowed = "'column' (3.5 in), 'two-column' (7.2 in), a width in inches or (width, height)"
    if isinstance(size, str):
        if size not in COLUMN_WIDTHS:
            raise ValueError(
                f"size must be {allowed}; got {size!r}.{did_you_mean(size, COLUMN_WIDTHS)}"
            )
        width = COLUMN_WIDTHS[size]
        return width, h0 * width / w0
    if isinstance(size, numbers.Real) and not isinstance(size, bool):
        if not size > 0:
            raise ValueError(f"size must be {allowed} (positive); got {size!r}.")
        return float(size), h0 * float(size) / w0
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        return float(size[0]), float(size[1])
    raise ValueError(f"size must be {allowed} (positive); got {size!r}.")


def publication(func: F) -> F:
    """Draw within the publication style (:data:`STYLE_RC` and the Okabe-Ito cycle).

    A decorator for the ``viz`` functions: the rc settings hold while the function draws
    and are restored afterwards (matplotlib's global settings are never changed).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib as mpl
        from cycler import cycler

        with mpl.rc_context({**STYLE_RC, "axes.prop_cycle": cycler(color=list(OKABE_ITO))}):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
