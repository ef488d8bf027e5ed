"""The test environment is the demo's environment.

``make test`` installs the test extras into the ``.venv`` of ``make demo`` with every package
the demo installed held at its version (``demo-versions.txt``, written by the Makefile before
the test extras go in), and GraphRicciCurvature without its stale ``scipy<=1.13.1`` pin.
These tests check both: nothing the demo uses changed, and the curvature reference runs on
the scipy the demo uses.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

DEMO_VERSIONS = Path(sys.prefix) / "demo-versions.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in DEMO_VERSIONS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "==" not in line:
            continue  # direct references (name @ url) carry no version to compare
        req = Requirement(line)
        pins[req.name] = next(iter(req.specifier)).version
    return pins


@pytest.mark.skipif(not DEMO_VERSIONS.exists(), reason="not an environment built by make")
def test_every_package_of_the_demo_keeps_its_version():
    pins = _pins()
    assert "numpy" in pins and "scipy" in pins
    changed = {}
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            changed[name] = (pinned, None)
            continue
        if installed != pinned:
            changed[name] = (pinned, installed)
    assert not changed, f"make test changed the demo's packages (demo, now): {changed}"


def test_graph_ricci_curvature_runs_on_this_scipy():
    nx = pytest.importorskip("networkx")
    orc_module = pytest.importorskip("GraphRicciCurvature.OllivierRicci")
    # the karate club graph, unweighted, alpha 0.5 (GRC's exact OTD solver). Edge 0-11 joins
    # node 0 (16 neighbours) to the leaf 11; by hand: m_11 = {11: 1/2, 0: 1/2}, m_0 = {0: 1/2,
    # each neighbour: 1/32}; the 15/32 on 0's other neighbours travels 2 hops to 11, so
    # W1 = 30/32 and kappa = 1 - W1 / 1 = 1/16
    g = nx.karate_club_graph()
    for _, _, d in g.edges(data=True):
        d.pop("weight", None)
    orc = orc_module.OllivierRicci(g, alpha=0.5, method="OTD", proc=1, verbose="ERROR")
    orc.compute_ricci_curvature()
    kappa = np.array([d["ricciCurvature"] for _, _, d in orc.G.edges(data=True)])
    assert kappa.shape == (g.number_of_edges(),)
    assert np.all(np.isfinite(kappa)) and np.all(np.abs(kappa) <= 1 + 1e-12)
    assert orc.G[0][11]["ricciCurvature"] == pytest.approx(1 / 16, abs=1e-9)
