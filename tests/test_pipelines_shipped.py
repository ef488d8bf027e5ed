"""Every shipped pipeline runs from the command line, as on a fresh machine, to a report.

Each spec in ``pipelines/`` (new ones are picked up automatically) runs in a subprocess with an
empty output folder (no intermediate cache), empty user caches (no weight-digest cache, no
matplotlib cache) and the working directory outside the repository; the report and the
results file must exist, load and hold what the spec asks for. The demo runs as shipped;
the others run with their resampling counts capped (``_CAPS``: the same code paths, fewer
draws), which keeps the suite within its time budget (set ``BRAINALIGN_FULL_PIPELINES=1`` to
run them as shipped).
"""

import os
import re
import subprocess
import sys
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


#: Most permutations / resamples per analysis in the suite (the demo is never capped).
_CAPS = {"n_permutations": 10, "n_bootstrap": 10, "n_flips": 10, "flow_iterations": 5}


def _capped(spec_path: Path, tmp: Path) -> Path:
    """Return the spec, or a copy with its resampling counts capped (see the module doc)."""
    if spec_path.stem == "demo" or os.environ.get("BRAINALIGN_FULL_PIPELINES") == "1":
        return spec_path
    raw = yaml.safe_load(spec_path.read_text())
    for name, params in load_spec(spec_path)["analyses"].items():  # defaults filled in
        for key, cap in _CAPS.items():
            if isinstance(params.get(key), int) and params[key] > cap:
                if not isinstance(raw["analyses"].get(name), dict):
                    raw["analyses"][name] = {}
                raw["analyses"][name][key] = cap
    path = tmp / spec_path.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _fresh_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("BRAINALIGN_CACHE_DIR", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        env[var] = str(tmp / "user-cache" / var.lower())
    env["HF_HUB_OFFLINE"] = "1"  # no network on a fresh machine either
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _provenance(html: str) -> dict[str, str]:
    section = html[html.index('<section id="provenance">') :]
    return dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", section))


def test_pipelines_are_found():
    assert len(PIPELINES) >= 5, PIPELINES
    assert ROOT / "pipelines" / "demo.yaml" in PIPELINES


@pytest.mark.slow
@pytest.mark.parametrize("spec_path", PIPELINES, ids=lambda p: p.stem)
def test_shipped_pipeline_writes_a_report(spec_path, tmp_path):
    spec_path = _capped(spec_path, tmp_path)
    spec = load_spec(spec_path)
    raw = yaml.safe_load(spec_path.read_text())
    out = tmp_path / "out"
    work = tmp_path / "cwd"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", "run", str(spec_path), "--out", str(out)],
        cwd=work,
        env=_fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=280,
    )
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
