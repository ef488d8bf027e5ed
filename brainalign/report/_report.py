"""A self-contained HTML report: figures as inline PNG, tables, text and provenance."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainalign._files import atomic_write
from brainalign._mpltext import literal_text
from brainalign._version import __version__

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}
nav{padding:8px 32px;background:#e9eef3;font-size:14px}nav a{margin-right:14px;color:#1f3b57}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 20px;
margin:16px 0}
section h2{font-size:19px;margin:6px 0 10px;color:#1f3b57}
figure{margin:10px 0}figure img{max-width:100%;height:auto}
figcaption{font-size:13px;color:#555;margin-top:4px}
table{border-collapse:collapse;font-size:14px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f0f3f6}td:first-child,th:first-child{text-align:left}
caption{caption-side:bottom;font-size:13px;color:#555;text-align:left;padding-top:4px}
.prov td{text-align:left;font-family:monospace;font-size:12px}
p.note{font-size:14px;line-height:1.45}
"""


@dataclass
class _Item:
    section: str
    kind: str
    title: str | None
    html: str


def _png(fig: Any, dpi: int, mathtext: bool) -> str:
    """Render a figure to base64 PNG; unless ``mathtext``, every text is drawn as written."""
    buf = io.BytesIO()
    if mathtext:
        fig.savefig(buf, format="png", dpi=dpi)
    else:
        with literal_text(fig):
            fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class Report:
    """A brain-versus-model report written to one self-contained HTML file.

    Figures are embedded as base64 PNG and the page loads nothing from the network, so the
    file opens offline and can be mailed as is. Use it as a context manager to save on exit.

    Parameters
    ----------
    title : str
        The page title.
    subtitle : str, optional
        A line under the title.
    path : str or path-like, optional
        Where ``with Report(..., path=...) as r:`` saves on a clean exit.

    Examples
    --------
    >>> from brainalign import Report
    >>> report = Report("My analysis")
    >>> report.add_text("Hello.", section="Summary")
    >>> "Summary" in report.sections
    True
    """

    def __init__(
        self,
        title: str = "brainalign report",
        *,
        subtitle: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ):
        self.title = title
        self.subtitle = subtitle
        self._items: list[_Item] = []
        self.provenance: dict[str, Any] = {}
        self._save_path = Path(path) if path is not None else None

    @property
    def sections(self) -> list[str]:
        """The section names, in order of first use."""
        seen: list[str] = []
        for item in self._items:
            if item.section not in seen:
                seen.append(item.section)
        return seen

    def add_figure(
        self,
        fig: Any,
        title: str | None = None,
        *,
        caption: str | None = None,
        section: str = "Figures",
        dpi: int = 110,
        mathtext: bool = False,
    ) -> None:
        """Add a matplotlib figure (embedded as PNG).

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure.
        title : str, optional
            A heading above the figure.
        caption : str, optional
            Text under the figure.
        section : str
            The section it goes into.
        dpi : int
            Resolution of the PNG.
        mathtext : bool
            ``False`` (default): every text of the figure is drawn as written, so a stimulus
            id or model name holding ``$`` (``"$x$"``, ``"a$b"``) is not read as matplotlib
            mathtext (the figure is left as it was); ``True``: keep mathtext (``"$R^2$"``).
        """
        if not hasattr(fig, "savefig"):
            raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
        data = _png(fig, dpi, mathtext)
        alt = html.escape(title or caption or "figure")
        body = f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        if caption:
            body += f"<figcaption>{html.escape(caption)}</figcaption>"
        body += "</figure>"
        self._items.append(_Item(section, "figure", title, body))

    def add_slider(
        self,
        figs: Mapping[str, Any],
        title: str | None = None,
        *,
        caption: str | None = None,
        section: str = "Figures",
        dpi: int = 100,
        mathtext: bool = False,
    ) -> None:
        """Add several figures behind one slider (e.g. one RDM per model layer).

        The page shows one figure at a time and a range input that switches between them;
        the images are embedded as PNG and the few lines of inline JavaScript need no network.

        Parameters
        ----------
        figs : mapping of str to matplotlib.figure.Figure
            Label → figure, in slider order.
        title : str, optional
            A heading above the slider.
        caption : str, optional
            Text under it.
        section : str
            The section it goes into.
        dpi : int
            Resolution of the PNGs.
        mathtext : bool
            As in :meth:`add_figure`: ``False`` draws every text as written.
        """
        if not figs:
            raise ValueError(f"add_slider needs at least one figure; got {dict(figs)!r}.")
        uid = f"slider{len(self._items)}"
        labels = list(figs)
        imgs = []
        for n, (label, fig) in enumerate(figs.items()):
            if not hasattr(fig, "savefig"):
                raise TypeError(
                    f"figs[{label!r}] must be a matplotlib Figure, got {type(fig).__name__}."
                )
            data = _png(fig, dpi, mathtext)
            hidden = "" if n == 0 else ' style="display:none"'
            imgs.append(
                f'<img id="{uid}-{n}" alt="{html.escape(label)}"{hidden} '
                f'src="data:image/png;base64,{data}">'
            )
        js = (
            f"var labels={json.dumps(labels)};"
            f"for(var i=0;i<labels.length;i++){{document.getElementById('{uid}-'+i)"
            ".style.display=(i==this.value)?'':'none';}"
            f"document.getElementById('{uid}-label').textContent=labels[this.value];"
        )
        body = (
            f'<figure><div><input type="range" min="0" max="{len(labels) - 1}" value="0" '
            f'aria-label="{html.escape(title or "figure")}" oninput="{html.escape(js)}"> '
            f'<span id="{uid}-label">{html.escape(labels[0])}</span></div>{"".join(imgs)}'
        )
        if caption:
            body += f"<figcaption>{html.escape(caption)}</figcaption>"
        body += "</figure>"
        self._items.append(_Item(section, "slider", title, body))

    def add_table(
        self,
        rows: Any,
        title: str | None = None,
        *,
        caption: str | None = None,
        section: str = "Tables",
        float_format: str = "{:.3g}",
    ) -> None:
        """Add a table.

        Parameters
        ----------
        rows : list of dict, or pandas.DataFrame
            The rows; dict keys are the column names.
        title : str, optional
            A heading above the table.
        caption : str, optional
            Text under the table.
        section : str
            The section it goes into.
        float_format : str
            Format for floats.
        """
        if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
            rows = rows.to_dict(orient="records")
        if not isinstance(rows, Sequence) or not all(isinstance(r, Mapping) for r in rows):
            raise TypeError(
                f"rows must be a list of dicts or a pandas.DataFrame, got {type(rows).__name__}."
            )
        cols: list[str] = []
        for r in rows:
            cols += [str(c) for c in r if str(c) not in cols]

        def cell(v: Any) -> str:
            if isinstance(v, float):
                return html.escape(float_format.format(v))
            return html.escape(str(v))

        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in cols) + "</tr>"
            for r in rows
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._items.append(
            _Item(
                section,
                "table",
                title,
                f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
            )
        )

    def add_text(self, text: str, title: str | None = None, *, section: str = "Notes") -> None:
        """Add a paragraph of plain text (escaped; blank lines start new paragraphs).

        Parameters
        ----------
        text : str
            The text.
        title : str, optional
            A heading above it.
        section : str
            The section it goes into.
        """
        paras = "".join(
            f'<p class="note">{html.escape(p.strip())}</p>'
            for p in text.split("\n\n")
            if p.strip()
        )
        self._items.append(_Item(section, "text", title, paras))

    def add_provenance(self, **info: Any) -> None:
        """Record provenance (seeds, data hashes, timings ...) shown at the end.

        Parameters
        ----------
        **info
            Key → value pairs.
        """
        self.provenance.update(info)

    def _provenance_rows(self) -> list[tuple[str, str]]:
        import numpy as np
        import torch
        import xarray as xr

        from brainalign._config import get_config
        from brainalign._device import resolve_device

        rows = {
            "brainalign": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "numpy / xarray / torch": f"{np.__version__} / {xr.__version__} / {torch.__version__}",
            "device": str(resolve_device()),
            "config": str(get_config()),
        }
        rows.update({k: str(v) for k, v in self.provenance.items()})
        return list(rows.items())

    def to_html(self) -> str:
        """Render the report.

        Returns
        -------
        html : str
            A complete HTML document with no external resources.
        """
        esc = html.escape
        nav, parts = [], []
        for sec in [*self.sections, "Provenance"]:
            nav.append(f'<a href="#{_slug(sec)}">{esc(sec)}</a>')
        for sec in self.sections:
            inner = []
            for item in self._items:
                if item.section != sec:
                    continue
                if item.title:
                    inner.append(f"<h3>{esc(item.title)}</h3>")
                inner.append(item.html)
            parts.append(
                f'<section id="{_slug(sec)}"><h2>{esc(sec)}</h2>{"".join(inner)}</section>'
            )
        prov = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in self._provenance_rows()
        )
        parts.append(
            f'<section id="provenance"><h2>Provenance</h2>'
            f'<table class="prov">{prov}</table></section>'
        )
        sub = f"<p>{esc(self.subtitle)}</p>" if self.subtitle else ""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="brainalign {__version__}">'
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1>{sub}</header>"
            f"<nav>{''.join(nav)}</nav><main>{''.join(parts)}</main></body></html>"
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML file atomically.

        Parameters
        ----------
        path : str or path-like
            The target ``.html`` file; parent folders are created.

        Returns
        -------
        path : pathlib.Path
            The written file.
        """
        path = Path(path)
        with atomic_write(path) as tmp:  # one temporary file per writer: saves never collide
            tmp.write_text(self.to_html(), encoding="utf-8")
        return path

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._save_path is not None and exc[0] is None:
            self.save(self._save_path)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return (
            f"<Report {self.title!r}: {len(self._items)} items in {len(self.sections)} sections>"
        )
