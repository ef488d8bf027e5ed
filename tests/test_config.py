import threading

import pytest

import brainalign as ba


def test_defaults():
    from brainalign._config import _DEFAULTS

    assert _DEFAULTS == {
        "device": "auto",
        "dtype": "auto",
        "seed": None,
        "verbose": "warning",
        "max_memory": "auto",
        "report_downloads": True,
    }
    # tests/conftest.py turns the downloads off for the suite's in-process pipelines
    assert ba.get_config() == {
        **_DEFAULTS,
        "dtype": ba.get_config()["dtype"],
        "report_downloads": False,
    }


def test_report_downloads_follow_config_unless_the_spec_says(tmp_path):
    spec = {
        "name": "dl",
        "brain": {"vt": {"dataset": "haxby2001", "volume": "vt_slice"}},
        "models": {"net": {"kind": "random_network", "n_layers": 1, "n_units": 4}},
        "analyses": {"rsa": {"n_permutations": 5, "n_bootstrap": 0, "split_half": False}},
    }
    with ba.config_context(report_downloads=True):
        html = ba.run(spec, out=tmp_path / "on").report.read_text()
    assert "data:application/pdf;base64," in html and "data:image/svg+xml;base64," in html
    off = {**spec, "report": {"downloads": False}}
    with ba.config_context(report_downloads=True):
        html = ba.run(off, out=tmp_path / "off").report.read_text()
    assert "data:application/pdf" not in html
    html = ba.run(spec, out=tmp_path / "cfg").report.read_text()  # config False here
    assert "data:application/pdf" not in html
    with pytest.raises(TypeError, match=r"report_downloads.*True or False"):
        ba.set_config(report_downloads="yes")


def test_config_context_restores_even_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with ba.config_context(device="cpu", dtype="float32", seed=3):
            assert ba.get_config()["dtype"] == "float32"
            assert ba.get_config()["seed"] == 3
            raise RuntimeError("boom")
    assert ba.get_config()["dtype"] == "auto"
    assert ba.get_config()["seed"] is None


def test_set_config_and_get_config_returns_copy():
    conf = ba.get_config()
    conf["device"] = "mutated"
    assert ba.get_config()["device"] == "auto"
    with ba.config_context():
        ba.set_config(dtype="float64", seed=7)
        assert ba.get_config()["dtype"] == "float64"
        assert ba.get_config()["seed"] == 7


def test_config_is_thread_local():
    seen = {}

    def worker():
        seen["before"] = ba.get_config()["dtype"]
        ba.set_config(dtype="float32")
        seen["after"] = ba.get_config()["dtype"]

    with ba.config_context(dtype="float64"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert ba.get_config()["dtype"] == "float64"
    assert seen == {"before": "auto", "after": "float32"}


def test_verbose_bool_maps_to_level():
    import logging

    with ba.config_context(verbose=True):
        assert ba.get_config()["verbose"] == "info"
        assert logging.getLogger("brainalign").level == logging.INFO
    assert logging.getLogger("brainalign").level == logging.WARNING


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"dtype": "float16"},
            ValueError,
            r"'dtype' parameter.*'auto', 'float32', 'float64'; got 'float16'",
        ),
        ({"dtype": "flaot32"}, ValueError, r"Did you mean 'float32'\?"),
        ({"device": "gpu"}, ValueError, r"'device' parameter.*got 'gpu'"),
        ({"seed": -1}, ValueError, r"seed must be a non-negative int or None, got -1"),
        ({"seed": 1.5}, TypeError, r"seed must be an int or None, got float 1.5"),
        ({"verbose": "loud"}, ValueError, r"'verbose' parameter.*got 'loud'"),
    ],
)
def test_bad_config_values(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ba.set_config(**kwargs)
    with pytest.raises(exc, match=match):
        with ba.config_context(**kwargs):
            pass
    assert ba.get_config()["dtype"] == "auto"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000, 1000),
        ("4GB", 4 * 10**9),
        ("512 MiB", 512 * 2**20),
        ("1.5kb", 1500),
        ("auto", "auto"),
        ("AUTO", "auto"),
    ],
)
def test_max_memory_parses_bytes_units_and_auto(value, expected):
    with ba.config_context(max_memory=value):
        assert ba.get_config()["max_memory"] == expected
    assert ba.get_config()["max_memory"] == "auto"


def test_set_config_max_memory_persists_until_reset():
    with ba.config_context():
        ba.set_config(max_memory="2GiB")
        assert ba.get_config()["max_memory"] == 2 * 2**30


@pytest.mark.parametrize(
    ("value", "err", "match"),
    [
        ("lots", ValueError, r"max_memory must be .*'4GB'.*got 'lots'"),
        ("4 parsecs", ValueError, r"got '4 parsecs'"),
        (0, ValueError, r"at least 1 byte.*got 0"),
        (-5, ValueError, r"got -5"),
        (True, TypeError, r"got bool True"),
        ([1], TypeError, r"got list \[1\]"),
    ],
)
def test_max_memory_rejects_bad_values(value, err, match):
    with pytest.raises(err, match=match):
        ba.set_config(max_memory=value)
    assert ba.get_config()["max_memory"] == "auto"


def test_max_memory_auto_resolves_to_half_the_available_memory():
    from brainalign._memory import available_memory, resolve_budget

    with ba.config_context(max_memory="auto"):
        budget = resolve_budget(None, "cpu")
    # independent reference: MemAvailable read again (it moves a little between reads)
    assert 0 < budget <= available_memory("cpu")
    assert abs(budget - available_memory("cpu") / 2) < 0.05 * available_memory("cpu")
    with ba.config_context(max_memory="3MB"):
        assert resolve_budget(None, "cpu") == 3 * 10**6
