"""Render reports in real headless Chromium: they load offline, whole, clean, and fit.

Each shipped pipeline's report is rendered at 1400 and 800 px: no element may overflow the
page horizontally unless it sits in a scroll container (wide tables scroll inside their
card). The pipelines run once per session (``shipped_run``, the same capped subprocess run
as ``test_pipelines_shipped``); the demo is never capped and runs unmarked, the others are
``slow``.
"""

import os
import shutil
from pathlib import Path

import pytest

import brainalign as ba

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("BRAINALIGN_REQUIRE_BROWSER") == "1"  # set by .ci/run
ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
DEMO = ROOT / "pipelines" / "demo.yaml"


def _pipeline_param(path):
    # the run is conftest.shipped_run's, shared with test_pipelines_shipped (one xdist worker)
    marks = [pytest.mark.xdist_group(name=f"shipped-{path.stem}")]
    if path != DEMO:
        marks.append(pytest.mark.slow)
    return pytest.param(path, id=path.stem, marks=marks)


def _report_of(shipped_run) -> Path:
    spec_path, out, proc = shipped_run
    assert proc.returncode == 0, (
        f"{spec_path.name}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    return out / "report.html"


#: Elements that stick out of the page sideways and are not inside a scroll container
#: (an ancestor whose overflow-x is auto, scroll or hidden), with the page's own overflow.
_OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = el => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const bad = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > width + 0.5 || r.left < -0.5) && !clipped(el)) {
      bad.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`
               + `${el.className ? '.' + el.className : ''}: ${Math.round(r.left)}`
               + `..${Math.round(r.right)} px (page ${width} px) `
               + JSON.stringify((el.innerText || el.alt || '').slice(0, 60)));
    }
  }
  return {bad: bad.slice(0, 10), scrollWidth: document.documentElement.scrollWidth, width};
}"""


def assert_fits(page, width):
    """Assert that no element overflows the page horizontally outside a scroll container."""
    page.set_viewport_size({"width": width, "height": 900})
    got = page.evaluate(_OVERFLOW_JS)
    assert got["bad"] == [], f"at {width} px: {got['bad']}"
    assert got["scrollWidth"] <= got["width"], f"at {width} px the page scrolls sideways: {got}"


@pytest.fixture(scope="module")
def browser():
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install -e '.[test]')"
    else:
        missing = None if CHROMIUM else "Chromium (apt-get install chromium)"
    if missing:
        if REQUIRED:
            pytest.fail(f"BRAINALIGN_REQUIRE_BROWSER=1 but {missing} is not installed")
        pytest.skip(f"{missing} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


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


@pytest.mark.parametrize("shipped_run", [_pipeline_param(p) for p in PIPELINES], indirect=True)
def test_shipped_report_fits_the_page(browser, shipped_run):
    """Wide tables scroll inside their card; nothing else sticks out, at 1400 and 800 px."""
    page = browser.new_page()
    page.goto(_report_of(shipped_run).resolve().as_uri(), wait_until="load")
    for width in (1400, 800):
        assert_fits(page, width)
    page.close()


def test_wide_table_scrolls_inside_its_card(browser, tmp_path):
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
