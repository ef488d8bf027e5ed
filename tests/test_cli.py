"""The command line, end to end on the shipped data."""

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

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
    "args",
    [["--help"], ["demo", "--help"], ["run", "--help"], ["figures", "--help"], ["info", "--help"]],
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


# --- A CLI that fails cleanly (issue 18, item 5) -----------------------------------------

DEMO = "pipelines/demo.yaml"


@pytest.fixture
def cached_out(demo_out, tmp_path):
    """A fresh output folder holding the demo's cache: a run there loads every unit."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo_out / ".cache", out / ".cache")
    return out


def _no_work(*args, **kwargs):
    raise AssertionError("the pipeline ran although --out cannot be written")


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("below", [False, True])
def test_out_that_is_or_lies_under_a_file_fails_before_any_work(
    tmp_path, capsys, monkeypatch, below
):
    monkeypatch.setattr("brainalign.pipeline.run", _no_work)
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    out = afile / "run" if below else afile
    assert main(["run", DEMO, "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("brainalign run: error: cannot write to --out")
    assert repr(str(out)) in line and "is a file, not a folder" in line
    assert afile.read_text() == "x"


def test_read_only_out_fails_before_any_work(tmp_path, capsys, monkeypatch):
    import errno
    import os
    import types

    monkeypatch.setattr("brainalign.pipeline.run", _no_work)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: a read-only file system, simulated

        def refuse(dir=None, **kwargs):
            raise PermissionError(errno.EROFS, "Read-only file system", dir)

        monkeypatch.setattr("brainalign.cli.tempfile", types.SimpleNamespace(TemporaryFile=refuse))
    try:
        assert main(["demo", "--out", str(ro / "demo")]) == 2
    finally:
        ro.chmod(0o755)
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot write to --out {str(ro / 'demo')!r}" in line
    assert f"{str(ro)!r} cannot be written" in line
    assert "Permission denied" in line or "Read-only file system" in line
    assert not (ro / "demo").exists()


def test_unwritable_out_from_the_shell_has_no_traceback(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign", "run", DEMO, "--out", str(afile / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "is a file, not a folder" in _one_error_line(proc.stderr)


def _raise(err):
    def fail(*args, **kwargs):
        raise err

    return fail


@pytest.mark.parametrize(
    ("target", "error", "expected"),
    [
        (
            "brainalign.data.save",
            OSError(28, "No space left on device", "/big/disk/.results.nc.x.tmp"),
            ["'/big/disk/.results.nc.x.tmp': No space left on device", "free some space"],
        ),
        (
            "brainalign.report._report.Report.save",
            OSError(28, "No space left on device", "/big/disk/.report.html.x.tmp"),
            ["'/big/disk/.report.html.x.tmp': No space left on device"],
        ),
        (  # h5py: an OSError without a file name
            "brainalign.data.save",
            OSError("Unable to synchronously create file (unable to lock file, errno = 11)"),
            ["Unable to synchronously create file", "(output folder {out!r})"],
        ),
        (  # netCDF4: a RuntimeError
            "brainalign.data.save",
            RuntimeError("NetCDF: HDF error"),
            ["NetCDF: HDF error (output folder {out!r})"],
        ),
    ],
)
def test_io_errors_while_running_are_one_line(
    cached_out, capsys, monkeypatch, target, error, expected
):
    monkeypatch.setattr(target, _raise(error))
    assert main(["run", DEMO, "--out", str(cached_out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("brainalign run: error: ")
    for text in expected:
        assert text.format(out=str(cached_out)) in line
    assert not (cached_out / "results.nc").exists()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            MemoryError(
                "Unable to allocate 12.0 GiB for an array with shape (40320, 40000) and "
                "data type float64"
            ),
            "out of memory: Unable to allocate 12.0 GiB",
        ),
        (MemoryError(), "out of memory: no size reported"),
    ],
)
def test_out_of_memory_in_a_unit_is_one_line(cached_out, capsys, monkeypatch, error, expected):
    monkeypatch.setattr("brainalign.pipeline._executor.run_unit", _raise(error))
    assert main(["run", DEMO, "--out", str(cached_out)]) == 1
    assert expected in _one_error_line(capsys.readouterr().err)


def test_free_space_is_checked_before_writing_results(cached_out, capsys, monkeypatch):
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 500, 500))
    monkeypatch.setattr("brainalign.data.save", _no_work)
    assert main(["run", DEMO, "--out", str(cached_out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"{str(cached_out)!r}: not enough free space to write results.nc" in line
    assert re.search(r"needs about \d+\.\d MB, the disk has 500 B free", line)
    assert "free some space or choose another --out" in line


def test_ctrl_c_exits_130_and_counts_the_cache(cached_out, capsys, monkeypatch):
    n = len(list((cached_out / ".cache").glob("*.nc")))
    assert n >= 2
    monkeypatch.setattr("brainalign.pipeline._executor.run_unit", _raise(KeyboardInterrupt()))
    try:
        code = main(["run", DEMO, "--out", str(cached_out)])
    except KeyboardInterrupt:  # not pytest's own: fail this test, not the session
        pytest.fail("main() let KeyboardInterrupt through")
    assert code == 130
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"brainalign run: interrupted; {n} units cached in "
        f"{str(cached_out / '.cache')!r}; run the same command to resume."
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing_on_stderr(cached_out, capsys, monkeypatch, where):
    import logging
    import os

    monkeypatch.setenv("BRAINALIGN_PROGRESS", "1")  # -q wins over it
    args = ["run", DEMO, "--out", str(cached_out)]
    assert main(["-q", *args] if where == "before" else [*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Report:" in captured.out
    # nothing leaks past the command
    assert os.environ["BRAINALIGN_PROGRESS"] == "1"
    assert logging.getLogger("brainalign").level == logging.WARNING
    assert ba.get_config()["verbose"] == "warning"


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", DEMO, "-q", "-v"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_progress_bars_of_long_steps(cached_out, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_PROGRESS", "1")
    assert main(["run", DEMO, "--out", str(cached_out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"RSA units .* 2/2", err)
    assert "encoding units" not in err  # no empty bar for a step with nothing to do
    # Ricci: a bar for the step and one per flow
    spec = tmp_path / "ricci.yaml"
    text = Path(DEMO).read_text()
    spec.write_text(
        text.replace(
            "report:",
            "  ricci: {k: 3, flow_iterations: 2, n_permutations: 10, n_bootstrap: 0}\nreport:",
        )
    )
    assert main(["run", str(spec), "--out", str(cached_out)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"Ricci comparisons .* 1/1", err) and "Ricci flow" in err


def test_a_spec_without_rsa_runs_from_the_command_line(tmp_path, capsys):
    # Issue 18: RSA was required in every spec; the summary printed after a run read it.
    spec = tmp_path / "trsa_only.yaml"
    spec.write_text(
        "name: trsa_only\n"
        "brain: {vt: {dataset: haxby2001}}\n"
        "models: {net: {kind: random_network, n_layers: 2}}\n"
        "analyses: {trsa: {step: 0.25}}\n",
        encoding="utf-8",
    )
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "-q"]) == 0
    assert "Report:" in capsys.readouterr().out
    tree = ba.load(tmp_path / "out" / "results.nc")
    assert list(tree.children) == ["trsa"] and "similarity" in tree["trsa/vt"].dataset


def _no_compute(*args, **kwargs):
    raise AssertionError("redrawing the figures computed something")


@pytest.mark.slow  # about 2/3 of a demo run from its cache: two commands end to end
def test_figures_are_written_and_redrawn_without_computing(cached_out, tmp_path, monkeypatch):
    """run --figures writes each report figure; `figures` redraws the same set from the
    saved run, loading every unit and RDM from its cache and computing none."""
    from brainalign import Report
    from brainalign.pipeline._analysis import analyses, model_kinds, sources

    asked, save_figures = [], Report.save_figures

    def svg_only(self, folder, *, formats=("svg", "pdf", "png"), dpi=300):
        # the names do not depend on the format; test_viz_publication checks PDF and PNG
        asked.append((formats, dpi))
        return save_figures(self, folder, formats=("svg",), dpi=dpi)

    figs = tmp_path / "figs"
    with monkeypatch.context() as patch:
        patch.setattr(Report, "save_figures", svg_only)
        assert main(["-q", "run", DEMO, "--out", str(cached_out), "--figures", str(figs)]) == 0
    assert asked == [(("svg", "pdf", "png"), 300)]  # run --figures: SVG, PDF, 300-dpi PNG
    written = sorted(p.name for p in figs.iterdir())
    stems = [name.removesuffix(".svg") for name in written]
    # one name per report figure
    assert len(stems) == (cached_out / "report.html").read_text().count("<img ")
    assert "rdms_rdms-haxby-vt" in stems and "model-comparison_model-comparison-haxby-vt" in stems

    cache_before = sorted(p.name for p in (cached_out / ".cache").iterdir())
    for cls in analyses().values():
        monkeypatch.setattr(cls, "compute", _no_compute)
    for cls in sources().values():
        monkeypatch.setattr(cls, "brain", _no_compute)
    for cls in model_kinds().values():
        monkeypatch.setattr(cls, "rdms", _no_compute)
        monkeypatch.setattr(cls, "features", _no_compute)
    again = tmp_path / "again"
    results = str(cached_out / "results.nc")
    assert main(["-q", "figures", results, "--out", str(again), "--format", "svg"]) == 0
    assert sorted(p.name for p in again.iterdir()) == written
    assert sorted(p.name for p in (cached_out / ".cache").iterdir()) == cache_before
    # the figures are drawn again, not copied: same size in inches
    svg = (again / "rdms_rdms-haxby-vt.svg").read_text()
    assert re.search(r'<svg[^>]* width="([\d.]+)pt"', svg).group(1) == re.search(
        r'<svg[^>]* width="([\d.]+)pt"', (figs / "rdms_rdms-haxby-vt.svg").read_text()
    ).group(1)


def test_figures_refuses_results_it_cannot_redraw(demo_out, tmp_path, capsys):
    import shutil

    alone = tmp_path / "alone"  # results.nc without the run's cache
    alone.mkdir()
    shutil.copy(demo_out / "results.nc", alone / "results.nc")
    assert main(["figures", str(alone / "results.nc"), "--out", str(tmp_path / "f")]) == 1
    err = _one_error_line(capsys.readouterr().err)
    assert re.search(r"cache '.*alone/\.cache' lacks 2 of 2 units \(rsa/haxby_vt/", err)
    assert "run the pipeline again with --figures DIR" in err

    foreign = tmp_path / "foreign.nc"  # a results file that no run wrote
    ba.save(xr.DataTree(xr.Dataset({"x": ("a", [1.0])})), foreign)
    assert main(["figures", str(foreign), "--out", str(tmp_path / "f")]) == 1
    err = _one_error_line(capsys.readouterr().err)
    assert "holds no pipeline spec (its 'spec' attribute)" in err

    missing = tmp_path / "missing.nc"
    assert main(["figures", str(missing), "--out", str(tmp_path / "f")]) == 1
    assert f"results file not found: '{missing}'" in _one_error_line(capsys.readouterr().err)
