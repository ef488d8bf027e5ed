"""Render the demo report in real headless Chromium: it loads offline, whole and clean."""

import os
import shutil

import pytest

import brainalign as ba

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("BRAINALIGN_REQUIRE_BROWSER") == "1"  # set by .ci/run


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


def test_demo_report_in_chromium(browser, tmp_path, artifacts):
    res = ba.run("pipelines/demo.yaml", out=tmp_path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console, failed, requests = [], [], []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(res.report.resolve().as_uri(), wait_until="load")
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

    assert visible() == ["layer0"]
    slider = page.locator("input[type=range]")
    slider.fill("2")  # sets the value and fires 'input', as a user's drag does
    assert visible() == ["layer2"]
    assert page.inner_text("figure span") == "layer2"
    assert console == []
    page.close()
