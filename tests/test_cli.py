"""The command line, end to end on the shipped data."""

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign.cli import main


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.links = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs)
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def test_demo_writes_report_with_rdm_figure_and_table(demo_out):
    html = (demo_out / "report.html").read_text()
    parser = _Collect()
    parser.feed(html)
    alts = [img["alt"] for img in parser.imgs]
    assert "RDMs (haxby_vt)" in alts and "Model comparison (haxby_vt)" in alts
    for img in parser.imgs:  # every figure is an embedded, decodable PNG
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Brain–model RDM similarity" in html
    assert re.search(r"<td>category_structure</td><td>0\.\d+</td>", html)
    # self-contained: no external resources
    assert all(link.startswith(("data:", "#")) for link in parser.links)


def test_demo_results_match_recomputation(demo_out):
    tree = ba.load(demo_out / "results.nc")
    rsa_ds = tree["rsa/haxby_vt"].to_dataset()
    assert list(rsa_ds.model.values) == ["category_structure", "random_network"]
    assert rsa_ds.attrs["exact"] and rsa_ds.attrs["n_permutations"] == 40320
    brain_rdm = tree["brain/haxby_vt"]["rdm"]
    assert list(brain_rdm.stimulus_a.values) == list(ba.datasets.HAXBY_CATEGORIES)
    # Independent recomputation with scipy from the raw trials
    from scipy.spatial.distance import pdist, squareform
    from scipy.stats import spearmanr

    trials = ba.datasets.load_haxby()
    means = np.stack(
        [trials.values[trials.stimulus.values == c].mean(0) for c in ba.datasets.HAXBY_CATEGORIES]
    )
    ref = squareform(pdist(means, "correlation"))
    np.testing.assert_allclose(brain_rdm.values, ref, atol=1e-12)
    model = tree["models/haxby_vt"]["rdm"].sel(model="category_structure").values
    r = spearmanr(squareform(ref, checks=False), squareform(model, checks=False))[0]
    assert float(rsa_ds.similarity.sel(model="category_structure")) == pytest.approx(r, abs=1e-12)
    assert float(rsa_ds.p_value.sel(model="category_structure")) < 0.05
    assert isinstance(tree, xr.DataTree)


def test_run_dry_run_and_info(capsys):
    assert main(["run", "pipelines/demo.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "rsa/haxby_vt/category_structure" in out and "nothing was computed" in out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "brainalign" in out and "torch" in out and "device='auto' resolves to" in out


def test_user_errors_exit_1_with_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbrian: {}\n")
    assert main(["run", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "brainalign run: error:" in err and "unknown key 'brian'" in err
    assert "Did you mean 'brain'?" in err


@pytest.mark.parametrize(
    "args", [["--help"], ["demo", "--help"], ["run", "--help"], ["info", "--help"]]
)
def test_help_everywhere(args):
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "usage: brainalign" in proc.stdout


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: brainalign" in capsys.readouterr().out


def test_python_dash_m_brainalign_is_the_cli():
    from brainalign import __version__

    proc = subprocess.run(
        [sys.executable, "-m", "brainalign", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"brainalign {__version__}"
