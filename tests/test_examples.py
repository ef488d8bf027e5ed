"""Every docs example runs to the end (matplotlib without a display)."""

import runpy
from pathlib import Path

import matplotlib
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "docs" / "examples").rglob("plot_*.py"))


def test_examples_exist():
    assert EXAMPLES, "no examples found under docs/examples"


@pytest.fixture
def _registries():
    """Keep plug-ins that an example registers (docs/examples/pipelines) out of other tests."""
    from brainalign.pipeline import _analysis

    _analysis.analyses()  # the built-ins are loaded before the snapshot
    saved = {name: dict(reg) for name, reg in _analysis._GROUPS.items()}
    yield
    for name, reg in _analysis._GROUPS.items():
        reg.clear()
        reg.update(saved[name])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, capsys, _registries):
    matplotlib.use("Agg")
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"
