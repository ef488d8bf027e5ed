"""Every shipped pipeline runs from the command line, as on a fresh machine, to a report.

Each spec in ``pipelines/`` (new ones are picked up automatically) runs in a subprocess with an
empty output folder (no intermediate cache), empty user caches (no weight-digest cache, no
matplotlib cache) and the working directory outside the repository; the report and the
results file must exist, load and hold what the spec asks for. The demo runs as shipped;
the others run with their resampling counts capped (``SHIPPED_CAPS`` in conftest: the same
code paths, fewer draws), which keeps the suite within its time budget (set
``BRAINALIGN_FULL_PIPELINES=1`` to run them as shipped). Each report is also rendered in
headless Chromium at 1400 and 800 px: nothing may stick out sideways outside a scroll
container (wide tables scroll inside their card).
"""

import re
from pathlib import Path

import pytest
import yaml

import brainalign as ba
from brainalign.pipeline._spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
#: Report sections every RSA pipeline has, and those an analysis adds.
ALWAYS = ("Summary", "RDMs", "Model comparison", "Data")
BY_ANALYSIS = {
    "searchlight": "Searchlight",
    "encoding": "Encoding",
    "trsa": "tRSA",
    "ricci": "Ricci curvature",
}


def _param(path: Path):
    return pytest.param(path, id=path.stem)


def _provenance(html: str) -> dict[str, str]:
    section = html[html.index('<section id="provenance">') :]
    return dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", section))


def test_pipelines_are_found():
    assert len(PIPELINES) >= 5, PIPELINES
    assert ROOT / "pipelines" / "demo.yaml" in PIPELINES


@pytest.mark.slow
@pytest.mark.parametrize("shipped_run", [_param(p) for p in PIPELINES], indirect=True)
def test_shipped_pipeline_writes_a_report(shipped_run, browser, assert_fits):
    spec_path, out, proc = shipped_run  # capped resampling counts: conftest.capped_spec
    spec = load_spec(spec_path)
    raw = yaml.safe_load(spec_path.read_text())
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )

    tree = ba.load(out / "results.nc")
    assert tree.attrs["pipeline"] == raw["name"]
    n_boot = spec["analyses"]["rsa"]["n_bootstrap"]
    for bname in spec["brain"]:
        ds = tree[f"rsa/{bname}"].to_dataset()
        entries = [str(m) for m in ds["similarity"].model.values]
        for mname in spec["models"]:
            assert any(e == mname or e.startswith(f"{mname}:") for e in entries), (mname, entries)
        assert ds["similarity"].notnull().all()
        assert ((ds["p_value"] > 0) & (ds["p_value"] <= 1)).all()
        if n_boot:
            assert (ds["ci_lower"] <= ds["ci_upper"]).all()
            assert ds.attrs["n_bootstrap"] == n_boot

    html = (out / "report.html").read_text()
    sections = re.findall(r'<section id="[^"]*"><h2>([^<]*)</h2>', html)
    expected = [*ALWAYS, *(BY_ANALYSIS[a] for a in spec["analyses"] if a in BY_ANALYSIS)]
    assert set(expected) <= set(sections), (expected, sections)
    assert sections[-1] == "Provenance"
    assert "Brain–model RDM similarity" in html
    if n_boot:
        assert "<th>95% CI</th>" in html
    assert "<th>noise ceiling</th>" in html
    srcs = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)  # self-contained
    prov = _provenance(html)
    for key in ("brainalign", "numpy / xarray / torch", "device", "seed", "timings", "packages"):
        assert prov.get(key), key
    for bname in spec["brain"]:
        digest = prov.get(f"sha256 {bname}", "")
        assert re.fullmatch(r"[0-9a-f]{64}", digest), f"no data hash for brain {bname!r}"
    for mname, m in spec["models"].items():
        if m["kind"] == "text_model":
            assert re.search(r"sha256 [0-9a-f]{64}", prov[f"sha256 model {mname}"])
        if m["kind"] == "random_network":
            assert prov[f"seed model {mname}"] == str(m["seed"])

    page = browser.new_page()  # the report fits the page at a desktop and a laptop width
    page.goto((out / "report.html").resolve().as_uri(), wait_until="load")
    for width in (1400, 800):
        assert_fits(page, width)
    page.close()
