"""The tRSA evaluation benchmark's command line, and the report's link to the tRSA guide."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "trsa_evaluation.py"
    spec = importlib.util.spec_from_file_location("_trsa_evaluation_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_settings_and_defaults(bench):
    cnn = bench.parse_args(["--setting", "cnn"])
    assert cnn.extend and cnn.seeds == 10 and cnn.out.endswith("trsa_evaluation/cnn")
    mlp = bench.parse_args([])
    assert mlp.setting == "mlp" and not mlp.extend and mlp.out.endswith("trsa_evaluation")
    assert bench.parse_args(["--setting", "haxby"]).runs_per_split == [1, 2, 3, 4, 6]
    quick = bench.parse_args(["--setting", "cnn", "--quick", "--no-extend"])
    assert (quick.seeds, quick.epochs, quick.n_boot, quick.extend) == (4, 3, 10, False)


def test_bad_arguments_exit(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--setting", "haxby", "--runs-per-split", "5"])
    assert "each value must divide 12" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--setting", "resnet"])
    assert "invalid choice" in capsys.readouterr().err


def test_chance_band_is_two_binomial_standard_errors(bench):
    # 10 classes x 10 groups: p = 0.1, SE = sqrt(0.1 * 0.9 / 100) = 0.03 (binomial formula)
    assert bench.chance_band(10, 10) == pytest.approx(0.1 + 2 * 0.03, abs=1e-12)


def test_rank_cell_picks_lower_0_upper_1(bench):
    from brainalign import trsa

    grid = trsa.threshold_grid()
    acc = grid.copy(data=np.arange(grid.size, dtype=float))
    want = np.flatnonzero((grid["lower"].values == 0) & (grid["upper"].values == 1))
    assert bench.rank_cell(acc) == float(want[0])
    assert grid["upper"].values[0] != 1  # the first cell is not the full-range cell


def test_trsa_report_links_to_the_guide():
    from brainalign.pipeline.analyses.trsa import GUIDE_URL, TRSA

    class Ctx:
        def params(self, name):
            return {"transform": "rgtm", "method": "spearman", "step": 0.05}

    class Report:
        def __init__(self):
            self.texts = []

        def add_text(self, text, title=None, *, section="Notes"):
            self.texts.append((text, section))

    report = Report()
    TRSA().report(report, Ctx(), {}, {})
    ((text, section),) = report.texts
    assert GUIDE_URL in text and "docs/trsa.md" in text and section == "tRSA"
    page = Path(GUIDE_URL).name.replace(".html", ".md")
    assert (ROOT / "docs" / page).is_file()
