"""Publication defaults: sizes in inches, colour-blind-safe colours, fonts that embed, legends
that never cover data, and the report's figure downloads and files."""

import base64
import io
import re

import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign import Report, viz
from brainalign.viz._style import COLUMN_WIDTHS, OKABE_ITO


def _rdm(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return ba.rsa.rdm(ba.responses(rng.normal(size=(n, 6)), [f"s{i}" for i in range(n)]))


def _scores():
    return xr.DataArray(
        [[0.1, 0.3], [0.2, 0.5]],
        dims=("layer", "roi"),
        coords={"layer": ["l1", "l2"], "roi": ["V1", "IT"]},
    )


def _profile():
    return xr.DataArray(
        [0.2, 0.5, 0.4, 0.3],
        dims="model",
        coords={"model": ["net:l1", "net:l2", "net:l3", "cats"]},
    )


def _space():
    names = ["a", "b", "c"]
    d = xr.DataArray(
        [[0, 1, 2], [1, 0, 1.5], [2, 1.5, 0]],
        dims=("network_a", "network_b"),
        coords={"network_a": names, "network_b": names},
    )
    e = xr.DataArray(np.eye(3)[:, :2], dims=("network", "component"), coords={"network": names})
    return d, e


#: Every public viz function of this module's scope, called on small inputs.
PLOTS = {
    "plot_rdm": lambda size: viz.plot_rdm(_rdm(), size=size),
    "plot_rdms": lambda size: viz.plot_rdms({"a": _rdm(), "b": _rdm(seed=1)}, size=size),
    "plot_mds": lambda size: viz.plot_mds(_rdm(), size=size),
    "plot_model_comparison": lambda size: viz.plot_model_comparison(
        {"m1": 0.5, "m2": 0.1}, reliability=0.6, size=size
    ),
    "plot_score_matrix": lambda size: viz.plot_score_matrix(_scores(), size=size),
    "plot_layer_profile": lambda size: viz.plot_layer_profile(_profile(), size=size),
    "plot_network_space": lambda size: viz.plot_network_space(*_space(), size=size),
}


@pytest.fixture(scope="module")
def figures():
    """Each function drawn once at its default size (the module's figures, shared)."""
    return {name: plot(None) for name, plot in PLOTS.items()}


def test_every_public_viz_function_returns_a_figure(figures):
    from matplotlib.figure import Figure

    for name, fig in figures.items():
        assert isinstance(fig, Figure), name


@pytest.mark.parametrize("name", list(PLOTS))
@pytest.mark.parametrize(
    ("size", "width"), [("column", 3.5), ("two-column", 7.2), (5.0, 5.0), ((3.0, 2.0), 3.0)]
)
def test_sizes_are_as_asked(figures, name, size, width):
    fig = PLOTS[name](size)
    w, h = fig.get_size_inches()
    assert w == pytest.approx(width)
    if isinstance(size, tuple):
        assert h == pytest.approx(size[1])
    else:  # a width alone keeps the function's own aspect
        w0, h0 = figures[name].get_size_inches()
        assert h / w == pytest.approx(h0 / w0)


def test_column_widths_are_the_journal_widths():
    # single column 3.5 in (89 mm), full page 7.2 in (183 mm): Nature's and Elsevier's
    assert COLUMN_WIDTHS == {"column": 3.5, "two-column": 7.2}
    assert viz.new_figure("column").get_size_inches().tolist() == [3.5, 2.625]


@pytest.mark.parametrize(
    ("size", "match"),
    [
        ("colum", r"size must be 'column'.*got 'colum'\. Did you mean 'column'\?"),
        (-1.0, r"size must be .*positive.*got -1\.0"),
        ((3.0,), r"size must be .*got \(3\.0,\)"),
        (True, r"size must be .*got True"),
    ],
)
def test_bad_size_is_refused(size, match):
    with pytest.raises(ValueError, match=match):
        viz.plot_rdm(_rdm(), size=size)


def test_pdf_embeds_truetype_fonts_at_the_asked_width():
    import matplotlib as mpl

    before = {k: mpl.rcParams[k] for k in ("pdf.fonttype", "svg.fonttype", "font.size")}
    fig = viz.plot_model_comparison({"m1": 0.5, "m2": 0.1}, reliability=0.6, size="column")
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")  # a plain savefig: the figure applies the setting
    pdf = buf.getvalue()
    # Type 42 (TrueType) fonts: TrueType outlines in a /FontFile2 stream, as a /TrueType
    # font or a /Type0 font with a /CIDFontType2 descendant (PDF 1.7, 9.7.4 and 9.9);
    # matplotlib's default Type 3 would be /Subtype /Type3
    subtypes = set(re.findall(rb"/Subtype /(\w+)", pdf))
    assert subtypes & {b"TrueType", b"CIDFontType2"} and b"/FontFile2" in pdf
    assert b"Type3" not in subtypes
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert float(box.group(1)) == pytest.approx(3.5 * 72)  # points
    svg = io.StringIO()
    fig.savefig(svg, format="svg")
    assert "<text" in svg.getvalue()  # text kept as text (svg.fonttype 'none')
    assert re.search(r'<svg[^>]* width="252pt"', svg.getvalue())
    # nothing was changed globally, neither by drawing nor by saving
    assert {k: mpl.rcParams[k] for k in before} == before


def test_categories_use_the_okabe_ito_palette(figures):
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    lines = [ln for ln in figures["plot_layer_profile"].axes[0].lines if ln.get_label()[0] != "_"]
    assert [to_hex(ln.get_color()).upper() for ln in lines] == list(OKABE_ITO[:2])
    bars = figures["plot_model_comparison"].axes[0].patches
    assert {to_hex(b.get_facecolor()).upper() for b in bars} == {OKABE_ITO[0]}
    assert figures["plot_rdm"].axes[0].images[0].get_cmap().name == "viridis"
    assert to_hex(mpl.rcParams["axes.prop_cycle"].by_key()["color"][0]) != OKABE_ITO[0].lower()


def _small():
    """A small, quick figure for the report tests."""
    fig = viz.new_figure((1.5, 1.0))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def _draw(fig):
    """Draw the figure with Agg (constrained layout runs) and return the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlap(a, b) -> bool:
    """Whether two display-space boxes share an area (touching edges do not count)."""
    return a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5


def test_comparison_legend_never_covers_a_bar_an_interval_or_a_star():
    # the star of the top model sits right under where the old "upper right" legend was
    fig = viz.plot_model_comparison(
        {"m1": 0.2, "m2": 0.85},
        p_values={"m1": 0.5, "m2": 0.001},
        reliability=0.9,
        noise_ceiling=(0.7, 0.95),
        ci={"m1": (0.1, 0.3), "m2": (0.8, 0.93)},
    )
    renderer = _draw(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    data = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() != 0]
    data += [t.get_window_extent(renderer) for t in ax.texts]
    data += [c.get_window_extent(renderer) for c in ax.collections]
    assert [t.get_text() for t in ax.texts] == ["*"]
    assert data and not any(_overlap(legend, d) for d in data)
    assert legend.y0 >= ax.get_window_extent(renderer).y1 - 0.5  # above the axes
    assert fig.bbox.contains(legend.x0, legend.y1 - 1)  # and inside the figure


def test_curvature_histogram_legend_is_under_its_bars():
    from brainalign.pipeline.analyses.ricci import _legend_below
    from brainalign.ricci import plot_curvature

    rng = np.random.default_rng(0)
    values = {"brain": rng.normal(0.2, 0.2, 300), "model": rng.normal(0.1, 0.3, 300)}
    fig = viz.new_figure((5.2, 3.8))
    ax = plot_curvature(values, ax=fig.add_subplot(), title="brain vs model")
    _legend_below(fig, ax)
    renderer = _draw(fig)
    assert ax.get_legend() is None and len(fig.legends) == 1
    legend = fig.legends[0].get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches]
    assert bars and not any(_overlap(legend, b) for b in bars)
    assert not _overlap(legend, ax.get_window_extent(renderer))
    assert fig.legends[0].get_texts()[0].get_text().startswith("brain (mean")


def test_report_figures_have_svg_and_pdf_downloads(tmp_path):
    fig = _small()
    with_dl, without = Report("a"), Report("b", downloads=False)
    for report in (with_dl, without):
        report.add_figure(fig, "An RDM", caption="cap", section="RDMs")
    with_dl.add_slider({"l1": fig, "l$2": fig}, "Layers", section="RDMs")
    html = with_dl.to_html()
    links = re.findall(r'<a download="([^"]+)" href="data:([^;]+);base64,([^"]+)"', html)
    assert [(name, mime) for name, mime, _ in links] == [
        ("rdms_an-rdm.svg", "image/svg+xml"),
        ("rdms_an-rdm.pdf", "application/pdf"),
        ("rdms_layers-l1.svg", "image/svg+xml"),
        ("rdms_layers-l1.pdf", "application/pdf"),
        ("rdms_layers-l-2.svg", "image/svg+xml"),
        ("rdms_layers-l-2.pdf", "application/pdf"),
    ]
    assert base64.b64decode(links[1][2])[:5] == b"%PDF-"
    assert b"<svg" in base64.b64decode(links[0][2])
    # the second frame's links are hidden with its image, and shown by the slider's script
    assert re.search(r'<p class="dl" id="slider\d+-1-dl" style="display:none">', html)
    assert "-dl&#x27;);if(d){d.style.display=s;}" in html  # (escaped in its attribute)
    plain = without.to_html()
    assert "<a download" not in plain and plain.count("data:image/png;base64,") == 1
    assert [r.name for r in without.figures] == ["rdms_an-rdm"]  # kept for save_figures
    with pytest.raises(TypeError, match=r"downloads must be True or False, got 'yes'"):
        Report(downloads="yes")


def test_save_figures_writes_stable_unique_names(tmp_path):
    fig = _small()
    report = Report(downloads=False)
    report.add_figure(fig, "Same title", section="RDMs")
    report.add_figure(fig, "Same title", section="RDMs")
    report.add_figure(fig, caption="Only a caption", section="Model comparison")
    report.add_figure(fig, section="Model comparison")
    paths = report.save_figures(tmp_path / "a", formats=("svg",))
    assert [p.name for p in paths] == [
        "rdms_same-title.svg",
        "rdms_same-title-2.svg",
        "model-comparison_only-a-caption.svg",
        "model-comparison_figure.svg",
    ]
    # saved again: the same names, and no date inside (a re-run does not change the files'
    # metadata)
    again = report.save_figures(tmp_path / "b", formats=("svg",))
    assert [p.name for p in again] == [p.name for p in paths]
    assert "<dc:date>" not in again[0].read_text()
    with pytest.raises(ValueError, match=r"'formats' parameter.*got 'jpg'"):
        report.save_figures(tmp_path, formats=("jpg",))


def test_save_figures_png_is_300_dpi_and_pdf_embeds_fonts(tmp_path):
    report = Report(downloads=False)
    report.add_figure(viz.plot_rdm(_rdm(), size=(3.0, 2.5)), "An RDM", section="RDMs")
    paths = report.save_figures(tmp_path)
    assert [p.name for p in paths] == ["rdms_an-rdm.svg", "rdms_an-rdm.pdf", "rdms_an-rdm.png"]
    png = paths[2].read_bytes()
    width_px = int.from_bytes(png[16:20], "big")  # the IHDR chunk
    assert width_px == pytest.approx(3.0 * 300, abs=1)  # 300 dpi at the figure's width
    pdf = paths[1].read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf


def test_downloads_too_large_are_left_out_with_a_note(monkeypatch):
    import brainalign.report._report as report_module

    monkeypatch.setattr(report_module, "MAX_DOWNLOAD_BYTES", 1000)  # its SVG is larger
    report = Report()
    report.add_figure(_small(), "An RDM", section="RDMs")
    html = report.to_html()
    assert "<a download" not in html
    assert re.search(r"SVG and PDF not embedded: they would add \d+\.\d MB to this file", html)
    assert [r.name for r in report.figures] == ["rdms_an-rdm"]  # save_figures still has it
