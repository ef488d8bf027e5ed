"""Calibration tests: the harness (_calib) and the per-area case modules import by name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
# The harness and the case modules are imported by name (below); collecting them for doctests
# too would import them a second time under another name and register every case twice.
collect_ignore_glob = ["_calib.py", "cases_*.py"]
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Calibration trials are tiny problems: one torch thread is faster and shares the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
