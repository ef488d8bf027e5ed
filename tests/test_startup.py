"""Fast start (issue 21): ``import brainalign`` and ``brainalign --help`` load no heavy package.

Wall times are measured by ``benchmarks/startup.py``, not asserted here.
"""

import ast
import subprocess
import sys

import pytest

import brainalign

HEAVY = ("torch", "xarray", "sklearn", "scipy", "matplotlib", "nilearn", "mne", "transformers")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_import_brainalign_loads_no_heavy_package():
    assert _loaded_after("import brainalign") == []


def test_cli_help_loads_no_heavy_package():
    code = (
        "import contextlib, io\n"
        "from brainalign.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "for command in ('demo', 'run', 'init', 'info', 'figures'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main([command, '--help'])"
    )
    assert _loaded_after(f"exec({code!r})") == []


def test_cli_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "brainalign", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "run", "init", "info", "figures"):
        assert command in out.stdout


def test_public_names_are_reachable_and_listed():
    names = dir(brainalign)
    for name in brainalign.__all__:
        assert name in names
        assert getattr(brainalign, name) is not None
    ns = {}
    exec("from brainalign import *", ns)
    assert set(brainalign.__all__) <= set(ns)


def test_lazy_names_are_the_defining_objects():
    import brainalign as ba
    from brainalign import Report, SchemaError, config_context, load, ricci, run
    from brainalign._checks import SchemaError as schema_error
    from brainalign._config import config_context as context
    from brainalign.data import load as data_load
    from brainalign.pipeline import run as pipeline_run
    from brainalign.report import Report as report_class

    assert SchemaError is schema_error
    assert config_context is context
    assert load is data_load and ba.load is data_load
    assert run is pipeline_run
    assert Report is report_class
    assert ricci is ba.ricci and ricci.__name__ == "brainalign.ricci"
    for sub in ("rsa", "trsa", "encoding", "ricci", "align"):
        assert getattr(ba, sub).__name__ == f"brainalign.{sub}"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match=r"module 'brainalign' has no attribute 'rsaa'"):
        brainalign.rsaa  # noqa: B018
    assert not hasattr(brainalign, "not_a_name")
