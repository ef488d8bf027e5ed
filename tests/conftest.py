"""Shared fixtures: seeds, devices, the shipped Haxby data loaded once per session.

``--dtype=float32`` (or ``BRAINALIGN_TEST_DTYPE=float32``) runs the tests with a GPU's default
precision on the CPU: brainalign's configured dtype becomes float32 for the session, so every
call that does not pin ``dtype=`` computes in float32. Tests that compare with a reference
state both tolerances with the :func:`tol` fixture; tests that cannot mean anything in float32
are marked ``@pytest.mark.float64_only(reason=...)`` and skipped in that pass.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import brainalign as ba

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


_TEST_DTYPES = ("auto", "float64", "float32")


def pytest_addoption(parser):
    parser.addoption(
        "--dtype",
        action="store",
        default=None,
        choices=_TEST_DTYPES,
        help="brainalign's configured dtype for the session: float32 runs the tests with a "
        "GPU's default precision on the CPU (default: $BRAINALIGN_TEST_DTYPE or 'auto').",
    )


def _session_dtype(config) -> str:
    value = config.getoption("--dtype", default=None)
    if value is None:
        value = os.environ.get("BRAINALIGN_TEST_DTYPE", "auto").strip().lower() or "auto"
    if value not in _TEST_DTYPES:
        raise pytest.UsageError(
            f"BRAINALIGN_TEST_DTYPE must be one of {', '.join(_TEST_DTYPES)}; got {value!r}."
        )
    return value


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "float64_only(reason): meaningless in float32 (skipped by the --dtype=float32 pass)",
    )
    config.addinivalue_line(
        "markers", "float32: selected for the CI float32 pass (the second command of make test)"
    )
    config.addinivalue_line(
        "markers",
        "tolerance: states its float64 and float32 tolerances (uses the tol fixture; added at "
        "collection), so the CI float32 pass runs it",
    )
    # Keep the global config unchanged between tests. Reports of pipelines run in-process
    # leave out the SVG/PDF downloads (they double drawing time); the tests that read the
    # downloads turn them on, and pipelines run as subprocesses (the shipped ones) keep them.
    ba.set_config(
        device="auto", dtype=_session_dtype(config), verbose="warning", report_downloads=False
    )


def pytest_report_header(config):
    return f"brainalign dtype: {_session_dtype(config)}"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: it may select ``tolerance``
def pytest_collection_modifyitems(config, items):
    for item in items:  # the tests that state float32 tolerances: the numerical comparisons
        if "tol" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tolerance)
    if _session_dtype(config) != "float32":
        return
    for item in items:
        marker = item.get_closest_marker("float64_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: float64_only needs a reason=")
            item.add_marker(pytest.mark.skip(reason=f"float64 only: {reason}"))


@pytest.fixture(scope="session")
def test_dtype(pytestconfig) -> str:
    """The precision of calls that do not pin ``dtype=``: ``"float32"`` or ``"float64"``."""
    return "float32" if _session_dtype(pytestconfig) == "float32" else "float64"


@pytest.fixture(scope="session")
def tol(test_dtype):
    """Pick the tolerance of the active precision: ``tol(float64=1e-10, float32=1e-4)``.

    The float32 value must be given (with a one-line reason at the call site, from the
    routine's conditioning); a test that runs in the float32 pass without one fails.
    """

    def pick(float64: float, float32: float | None = None) -> float:
        if test_dtype == "float64":
            return float64
        if float32 is None:
            raise AssertionError(
                "this comparison runs in the float32 pass but states no float32 tolerance: "
                "call tol(float64=..., float32=...) or mark the test float64_only."
            )
        return float32

    return pick


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device available here: CPU always, CUDA when present."""
    return request.param


@pytest.fixture
def global_random_seed():
    """A fixed seed; change it here to re-run seeded tests with another draw."""
    return 42


@pytest.fixture
def rng(global_random_seed):
    return np.random.default_rng(global_random_seed)


@pytest.fixture(autouse=True)
def _restore_config_and_log_level():
    """Fail a test that leaves the config or the log level changed."""
    before_conf = ba.get_config()
    before_level = logging.getLogger("brainalign").level
    yield
    after_conf = ba.get_config()
    after_level = logging.getLogger("brainalign").level
    ba.set_config(**{k: v for k, v in before_conf.items() if v is not None})
    logging.getLogger("brainalign").setLevel(before_level)
    assert after_conf == before_conf, "test changed the brainalign config without restoring it"
    assert after_level == before_level, "test changed the log level without restoring it"


@pytest.fixture(scope="session")
def _haxby_session():
    from brainalign.datasets import load_haxby

    return load_haxby()


@pytest.fixture
def haxby(_haxby_session):
    """The shipped Haxby ventral-temporal trials (a fresh copy per test)."""
    return _haxby_session.copy(deep=True)


_ARTIFACTS: list = []


@pytest.fixture
def artifacts(request):
    """A folder for files a person may want to look at (screenshots), listed after the run."""
    from pathlib import Path

    folder = Path(request.config.rootpath) / "brainalign-out" / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    yield folder
    _ARTIFACTS.extend(sorted(set(folder.iterdir()) - before))


def pytest_terminal_summary(terminalreporter):
    if _ARTIFACTS:
        terminalreporter.section("test artifacts")
        for path in _ARTIFACTS:
            terminalreporter.write_line(f"artifact: {path}")


# --- shipped pipelines: one capped run per pipeline and process, shared by the tests that
# read it (tests/test_pipelines_shipped.py, tests/test_report_browser.py).

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
DEMO_PIPELINE = ROOT / "pipelines" / "demo.yaml"

#: Most permutations / resamples per analysis in the suite (the demo is never capped).
SHIPPED_CAPS = {"n_permutations": 10, "n_bootstrap": 10, "n_flips": 10, "flow_iterations": 5}


def capped_spec(spec_path: Path, tmp: Path) -> Path:
    """Return the spec, or a copy with its resampling counts capped (``SHIPPED_CAPS``).

    The same code paths run with fewer draws, and the report leaves out the SVG/PDF
    downloads (they double the drawing time; the demo, never capped, keeps them and its
    Chromium test checks every link); ``BRAINALIGN_FULL_PIPELINES=1`` runs the specs as
    shipped.
    """
    import yaml

    from brainalign.pipeline._spec import load_spec

    if spec_path.stem == "demo" or os.environ.get("BRAINALIGN_FULL_PIPELINES") == "1":
        return spec_path
    raw = yaml.safe_load(spec_path.read_text())
    for name, params in load_spec(spec_path)["analyses"].items():  # defaults filled in
        for key, cap in SHIPPED_CAPS.items():
            if isinstance(params.get(key), int) and params[key] > cap:
                if not isinstance(raw["analyses"].get(name), dict):
                    raw["analyses"][name] = {}
                raw["analyses"][name][key] = cap
    raw["report"] = {**(raw.get("report") or {}), "downloads": False}
    path = tmp / spec_path.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def fresh_env(tmp: Path) -> dict[str, str]:
    """Return the environment of a fresh machine: empty user caches, no network."""
    env = dict(os.environ)
    for var in ("BRAINALIGN_CACHE_DIR", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        env[var] = str(tmp / "user-cache" / var.lower())
    env["HF_HUB_OFFLINE"] = "1"  # no network on a fresh machine either
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def _shipped_runs(tmp_path_factory):
    """Memo of the shipped-pipeline runs of this session (one run per pipeline)."""
    runs: dict[Path, tuple] = {}

    def get(spec: Path) -> tuple:
        if spec not in runs:
            tmp = tmp_path_factory.mktemp(f"shipped-{spec.stem}")
            spec_path = capped_spec(spec, tmp)
            out, work = tmp / "out", tmp / "cwd"
            work.mkdir()
            proc = subprocess.run(
                [sys.executable, "-m", "brainalign.cli", "run", str(spec_path), "--out", str(out)],
                cwd=work,
                env=fresh_env(tmp),
                capture_output=True,
                text=True,
                timeout=280,
            )
            runs[spec] = (spec_path, out, proc)
        return runs[spec]

    return get


@pytest.fixture
def shipped_run(request, _shipped_runs):
    """Run a shipped pipeline once per session from the command line, as on a fresh machine.

    The spec runs capped (``capped_spec``) in a subprocess with an empty output folder, empty
    user caches and the working directory outside the repository. Returns ``(spec_path, out,
    proc)``: the spec run, the output folder and the finished ``brainalign run`` process.
    Parametrize indirectly with pipeline paths. The memo is per process (per xdist worker).
    """
    return _shipped_runs(request.param)


# --- headless Chromium (tests/test_report_browser.py, tests/test_pipelines_shipped.py)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED_BROWSER = os.environ.get("BRAINALIGN_REQUIRE_BROWSER") == "1"  # set by .ci/run

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


def _assert_fits(page, width):
    """Assert that no element overflows the page horizontally outside a scroll container."""
    page.set_viewport_size({"width": width, "height": 900})
    got = page.evaluate(_OVERFLOW_JS)
    assert got["bad"] == [], f"at {width} px: {got['bad']}"
    assert got["scrollWidth"] <= got["width"], f"at {width} px the page scrolls sideways: {got}"


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through playwright (skipped when absent, unless
    ``BRAINALIGN_REQUIRE_BROWSER=1``, which CI sets)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install -e '.[test]')"
    else:
        missing = None if CHROMIUM else "Chromium (apt-get install chromium)"
    if missing:
        if REQUIRED_BROWSER:
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


@pytest.fixture
def assert_fits():
    """``assert_fits(page, width)``: no element overflows sideways outside a scroll container."""
    return _assert_fits


# --- peak memory of a fresh subprocess (tests/rsa, tests/encoding, tests/ricci test_memory.py)

#: Defines ``measure(fn) -> (result, bytes)``: the growth of the peak resident set size
#: (``VmHWM`` in ``/proc/self/status``, reset through ``/proc/self/clear_refs``) while ``fn``
#: runs, so the allocations of torch and numpy both count.
PEAK_RSS_PRELUDE = """
import ctypes, gc, json, sys
import numpy as np

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

def measure(fn):
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back before the reset
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to the current one
    base = rss("VmRSS:")
    res = fn()
    return res, rss("VmHWM:") - base
"""


@pytest.fixture(scope="session")
def run_measured():
    """``run_measured(script, timeout)``: run ``script`` in a fresh Python after
    ``PEAK_RSS_PRELUDE`` (which defines ``measure``) and return the JSON of its last line."""

    def run(script: str, timeout: float) -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_PRELUDE + script],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
