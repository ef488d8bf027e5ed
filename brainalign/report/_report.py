"""A self-contained HTML report: figures as inline PNG, tables, text and provenance.

Every figure is also offered as SVG and PDF downloads (``data:`` links, so the file stays
self-contained), and :meth:`Report.save_figures` writes each as SVG, PDF and 300-dpi PNG
files named by section and title (figure scripts for papers).
"""

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
from brainalign._mpltext import embedded_fonts, literal_text
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
p.dl{font-size:12px;margin:2px 0 0;color:#555}p.dl a{margin-right:8px;color:#1f3b57}
div.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:14px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f0f3f6}td:first-child,th:first-child{text-align:left}
caption{caption-side:bottom;font-size:13px;color:#555;text-align:left;padding-top:4px}
.prov td{text-align:left;font-family:monospace;font-size:12px}
p.note{font-size:14px;line-height:1.45}
h1,h2,h3,header p,nav,p.note,figcaption,caption{overflow-wrap:break-word}
"""


@dataclass
class _Item:
    section: str
    kind: str
    title: str | None
    html: str


@dataclass
class FigureRecord:
    """A figure of a report, kept so that it can be written to files (:meth:`Report.save_figures`).

    Attributes
    ----------
    name : str
        The file name without extension: the section's and the title's (or caption's)
        slugs, unique within the report (``rdms_rdms-of-haxby-vt``).
    section : str
        The report section.
    title : str or None
        The figure's heading (a slider frame's is the heading and the frame's label).
    caption : str or None
        The text under it.
    figure : matplotlib.figure.Figure
        The figure itself.
    mathtext : bool
        Whether its texts keep matplotlib mathtext (see :meth:`Report.add_figure`).
    """

    name: str
    section: str
    title: str | None
    caption: str | None
    figure: Any
    mathtext: bool


#: MIME types of the formats a figure is written in.
_MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
#: The longest title slug in a figure's file name.
_NAME_CHARS = 60
#: The most bytes of a figure's SVG and PDF (together, before base64) embedded as downloads:
#: a larger figure (a 437-word RDM panel: 9.5 MB) gets a note pointing to save_figures.
MAX_DOWNLOAD_BYTES = 1_500_000


def _render(fig: Any, fmt: str, dpi: int, mathtext: bool) -> bytes:
    """Render a figure as ``fmt`` bytes, fonts embedded; unless ``mathtext``, texts as written.

    Vector formats (SVG, PDF) keep the figure's size in inches; SVG and PDF metadata carry
    no date, so the same figure gives the same bytes.
    """
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {"format": fmt, "dpi": dpi}
    if fmt == "pdf":
        kwargs["metadata"] = {"CreationDate": None}
    elif fmt == "svg":
        kwargs["metadata"] = {"Date": None}
    with embedded_fonts():
        if mathtext:
            fig.savefig(buf, **kwargs)
        else:
            with literal_text(fig):
                fig.savefig(buf, **kwargs)
    return buf.getvalue()


def _png(fig: Any, dpi: int, mathtext: bool) -> str:
    """Render a figure to base64 PNG; unless ``mathtext``, every text is drawn as written."""
    return base64.b64encode(_render(fig, "png", dpi, mathtext)).decode("ascii")


def _slug(text: str, empty: str = "section") -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or empty


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
    downloads : bool
        Offer every figure as SVG and PDF downloads beside the embedded PNG (``data:`` links:
        the file stays self-contained; default). They about double the file (the demo's
        report: 176 kB without, 393 kB with); a figure whose SVG and PDF exceed
        ``MAX_DOWNLOAD_BYTES`` (1.5 MB) gets a note instead. ``False`` keeps the file small
        (and faster to write); :meth:`save_figures` writes the files either way.

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
        downloads: bool = True,
    ):
        if not isinstance(downloads, bool):
            raise TypeError(f"downloads must be True or False, got {downloads!r}.")
        self.title = title
        self.subtitle = subtitle
        self.downloads = downloads
        #: Every figure added, in order (see :meth:`save_figures`).
        self.figures: list[FigureRecord] = []
        # False: only keep the figures (for save_figures), drawing no PNG (figure redraws)
        self._embed = True
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
        """Add a matplotlib figure (embedded as PNG, with SVG and PDF downloads).

        The figure is also kept in :attr:`figures` for :meth:`save_figures`, named by the
        section and the title (else the caption).

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
        record = self._record(fig, section, title, caption, mathtext, title or caption)
        if not self._embed:
            return
        data = _png(fig, dpi, mathtext)
        alt = html.escape(title or caption or "figure")
        body = f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        if caption:
            body += f"<figcaption>{html.escape(caption)}</figcaption>"
        body += self._download_links(record) + "</figure>"
        self._items.append(_Item(section, "figure", title, body))

    def _record(
        self,
        fig: Any,
        section: str,
        title: str | None,
        caption: str | None,
        mathtext: bool,
        text: str | None,
    ) -> FigureRecord:
        """Keep a figure for :meth:`save_figures` under a unique, stable file name."""
        stem = f"{_slug(section)}_{_slug(text or '', 'figure')[:_NAME_CHARS].strip('-')}"
        taken = {r.name for r in self.figures}
        name, n = stem, 2
        while name in taken:
            name, n = f"{stem}-{n}", n + 1
        record = FigureRecord(name, section, title, caption, fig, mathtext)
        self.figures.append(record)
        return record

    def _download_links(self, record: FigureRecord, attrs: str = "") -> str:
        """Return the SVG and PDF ``data:`` links of a figure (empty without ``downloads``)."""
        if not self.downloads:
            return ""
        files = {fmt: _render(record.figure, fmt, 72, record.mathtext) for fmt in ("svg", "pdf")}
        size = sum(map(len, files.values()))
        if size > MAX_DOWNLOAD_BYTES:
            return (
                f'<p class="dl"{attrs}>SVG and PDF not embedded: they would add '
                f"{size / 1e6:.1f} MB to this file; write them with Report.save_figures "
                "(or brainalign run --figures DIR).</p>"
            )
        links = [
            f'<a download="{html.escape(record.name)}.{fmt}" href="data:{_MIME[fmt]};base64,'
            f'{base64.b64encode(data).decode("ascii")}">{fmt.upper()}</a>'
            for fmt, data in files.items()
        ]
        return f'<p class="dl"{attrs}>Download: {"".join(links)}</p>'

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
        Each frame has its own SVG and PDF downloads (shown with it) and is kept in
        :attr:`figures` as ``<section>_<title>-<label>``.

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
        labels = [str(label) for label in figs]
        for label, fig in figs.items():
            if not hasattr(fig, "savefig"):
                raise TypeError(
                    f"figs[{label!r}] must be a matplotlib Figure, got {type(fig).__name__}."
                )
        imgs = []
        for n, (label, fig) in enumerate(zip(labels, figs.values(), strict=True)):
            frame = f"{title} ({label})" if title else label
            record = self._record(fig, section, frame, caption, mathtext, frame)
            if not self._embed:
                continue
            data = _png(fig, dpi, mathtext)
            hidden = "" if n == 0 else ' style="display:none"'
            imgs.append(
                f'<img id="{uid}-{n}" alt="{html.escape(label)}"{hidden} '
                f'src="data:image/png;base64,{data}">'
                + self._download_links(record, f' id="{uid}-{n}-dl"{hidden}')
            )
        js = (
            f"var labels={json.dumps(labels)};"
            f"for(var i=0;i<labels.length;i++){{var s=(i==this.value)?'':'none';"
            f"document.getElementById('{uid}-'+i).style.display=s;"
            f"var d=document.getElementById('{uid}-'+i+'-dl');if(d){{d.style.display=s;}}}}"
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
                # a wide table scrolls inside its card instead of overflowing the page
                f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>",
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
            f'<div class="scroll"><table class="prov">{prov}</table></div></section>'
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

    def save_figures(
        self,
        folder: str | os.PathLike[str],
        *,
        formats: Sequence[str] = ("svg", "pdf", "png"),
        dpi: int = 300,
    ) -> list[Path]:
        """Write every figure of the report as files, for a paper.

        Each figure is written once per format, named ``<section>_<title>.<format>`` (the
        slugs of its section and its title, or caption; a number is added where two would
        collide; a slider's frames add their labels): the names are stable from run to run.
        Fonts are embedded (TrueType in PDF, text in SVG) and vector files keep the figure's
        width in inches.

        Parameters
        ----------
        folder : str or path-like
            Where to write (created when missing); files of the same names are replaced.
        formats : sequence of {"svg", "pdf", "png"}
            The formats.
        dpi : int
            Resolution of the PNG files (default 300).

        Returns
        -------
        paths : list of pathlib.Path
            The files written, figure by figure in report order.

        Raises
        ------
        ValueError
            When a format is not one of ``"svg"``, ``"pdf"``, ``"png"``.
        """
        from brainalign._checks import check_option

        formats = [check_option("formats", f, list(_MIME)) for f in formats]
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for record in self.figures:
            for fmt in formats:
                path = folder / f"{record.name}.{fmt}"
                data = _render(record.figure, fmt, dpi, record.mathtext)
                with atomic_write(path) as tmp:
                    tmp.write_bytes(data)
                paths.append(path)
        return paths

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
