"""Shared fixtures: seeds, devices, the shipped Haxby data loaded once per session."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import brainalign as ba

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_configure(config):
    # Keep the global config unchanged between tests.
    ba.set_config(device="auto", dtype="auto", verbose="warning")


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
