import threading

import pytest

import brainalign as ba


def test_defaults():
    conf = ba.get_config()
    assert conf == {"device": "auto", "dtype": "auto", "seed": None, "verbose": "warning"}


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
