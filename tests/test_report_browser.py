"""Render reports in real headless Chromium: they load offline, whole, clean, and fit.

The demo's report is checked whole here; every shipped pipeline's report is rendered at 1400
and 800 px by ``test_pipelines_shipped`` (no element may overflow the page horizontally unless
it sits in a scroll container: wide tables scroll inside their card). The browser and the
fit check are fixtures in conftest.
"""

from pathlib import Path

import pytest

import brainalign as ba

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
DEMO = ROOT / "pipelines" / "demo.yaml"


def _pipeline_param(path):
    return pytest.param(path, id=path.stem)


def _report_of(shipped_run) -> Path:
    spec_path, out, proc = shipped_run
    assert proc.returncode == 0, (
        f"{spec_path.name}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    return out / "report.html"


@pytest.mark.parametrize("shipped_run", [_pipeline_param(DEMO)], indirect=True)
def test_demo_report_in_chromium(browser, shipped_run, artifacts):
    report = _report_of(shipped_run)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console, failed, requests = [], [], []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.resolve().as_uri(), wait_until="load")
    sections = [h.inner_text() for h in page.query_selector_all("section > h2")]
    assert sections == [
        "Summary",
        "RDMs",
        "MDS",
        "Model comparison",
        "Noise ceiling",
        "Data",
        "Provenance",
    ]
    n_images = page.eval_on_selector_all("img", "els => els.length")
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.naturalWidth > 0)).length"
    )
    assert n_images == 5 and broken == 0  # RDMs, MDS, score matrix, comparison, ceiling
    # every figure has its SVG and PDF downloads (report.downloads, on by default)
    assert page.eval_on_selector_all("figure p.dl", "els => els.length") == n_images
    links = page.eval_on_selector_all("figure p.dl a", "els => els.map(e => e.href.slice(0, 30))")
    assert sum(h.startswith("data:image/svg+xml") for h in links) == n_images
    assert sum(h.startswith("data:application/pdf") for h in links) == n_images
    assert "category_structure" in page.inner_text("section#summary table")
    shot = artifacts / "demo_report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert failed == [] and console == []
    # offline: the only request is the file itself (figures are inline data: URIs)
    assert [u for u in requests if not u.startswith(("data:", "file:"))] == []
    page.close()


def test_layer_slider_switches_figures(browser, tmp_path):
    from brainalign import Report, viz

    rng = __import__("numpy").random.default_rng(0)
    figs = {f"layer{i}": viz.plot_rdm(ba.rsa.rdm(rng.normal(size=(4, 3)))) for i in range(3)}
    report = Report("slider")
    report.add_slider(figs, "Layers", section="RDMs")
    path = report.save(tmp_path / "slider.html")
    page = browser.new_page()
    console = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(str(e)))
    page.goto(path.resolve().as_uri())

    def visible():
        return page.eval_on_selector_all(
            "figure img", "els => els.filter(e => e.style.display !== 'none').map(e => e.alt)"
        )

    def downloads():  # the SVG and PDF links of the frame shown, inline data: URIs
        return page.eval_on_selector_all(
            "figure p.dl",
            "els => els.filter(e => e.style.display !== 'none').flatMap(e => "
            "[...e.querySelectorAll('a')].map(a => [a.download, a.href.slice(0, 22)]))",
        )

    assert visible() == ["layer0"]
    assert downloads() == [
        ["rdms_layers-layer0.svg", "data:image/svg+xml;bas"],
        ["rdms_layers-layer0.pdf", "data:application/pdf;b"],
    ]
    slider = page.locator("input[type=range]")
    slider.fill("2")  # sets the value and fires 'input', as a user's drag does
    assert visible() == ["layer2"]
    assert [name for name, _ in downloads()] == [
        "rdms_layers-layer2.svg",
        "rdms_layers-layer2.pdf",
    ]
    assert page.inner_text("figure span") == "layer2"
    assert console == []
    page.close()


def test_wide_table_scrolls_inside_its_card(browser, assert_fits, tmp_path):
    """A table wider than the page (the curvature table's 14 columns) scrolls in its card."""
    from brainalign import Report

    row = {f"a long column name {i}": 0.123456 for i in range(24)}
    report = Report("wide")
    report.add_table([row, row], "Wide", section="Tables")
    report.add_text("x" * 400, section="Tables")  # one long word wraps instead
    page = browser.new_page()
    page.goto(report.save(tmp_path / "wide.html").resolve().as_uri())
    for width in (1400, 800):
        assert_fits(page, width)
        table = page.eval_on_selector(
            "div.scroll table", "e => [e.scrollWidth, e.parentElement.clientWidth]"
        )
        assert table[0] > table[1]  # really wider than its card: it scrolls there
    page.close()
