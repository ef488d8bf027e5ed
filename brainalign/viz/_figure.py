"""The Figure class of :func:`brainalign.viz.new_figure`: its ``savefig`` embeds fonts.

Imported only when a figure is made (it imports matplotlib).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from brainalign._mpltext import embedded_fonts


class PublicationFigure(Figure):
    """A matplotlib Figure whose :meth:`savefig` writes fonts that embed and stay editable.

    PDF and PostScript get TrueType (Type 42) fonts instead of Type 3 bitmaps, and SVG keeps
    text as text (``svg.fonttype: "none"``), as journals ask; the settings hold only while
    saving (matplotlib's global settings are never changed).
    """

    def savefig(self, *args: Any, **kwargs: Any) -> Any:
        """Save the figure as :meth:`matplotlib.figure.Figure.savefig` does, fonts embedded.

        Parameters
        ----------
        *args, **kwargs
            As for :meth:`matplotlib.figure.Figure.savefig`.

        Returns
        -------
        None
            As matplotlib's.
        """
        with embedded_fonts():
            return super().savefig(*args, **kwargs)
