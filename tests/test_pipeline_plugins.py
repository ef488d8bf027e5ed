"""The plug-in registries: analyses, brain sources and model kinds a lab adds without editing
brainalign (decorators or entry points), and the interface the runner goes through."""

from importlib import metadata
from typing import ClassVar

import pytest

from brainalign.pipeline import Analysis, SpecError, _analysis, load_spec, register_analysis


@pytest.fixture
def registries():
    """Restore the registries after a test that registers plug-ins."""
    _analysis.analyses()
    saved = {name: dict(reg) for name, reg in _analysis._GROUPS.items()}
    loaded = _analysis._loaded
    yield
    for name, reg in _analysis._GROUPS.items():
        reg.clear()
        reg.update(saved[name])
    _analysis._loaded = loaded


class _Count(Analysis):
    name = "count_stimuli"
    schema: ClassVar = {"offset": (int, False, 0)}
    limits: ClassVar = {"offset": (0, 10, "added to the count")}


SPEC = {
    "name": "x",
    "brain": {"vt": {"dataset": "haxby2001"}},
    "models": {"m": {"kind": "random_network"}},
}


def test_builtins_are_registered_in_report_order():
    assert list(_analysis.analyses())[:6] == [
        "rsa", "searchlight", "encoding", "trsa", "ricci", "time_resolved",
    ]  # fmt: skip
    assert {"haxby2001", "word_similarity", "eeg_haxby_sim", "meeg_file"} <= set(
        _analysis.sources()
    )
    assert set(_analysis.model_kinds()) >= {"categorical", "random_network", "text_model"}


def test_an_entry_point_registers_an_analysis(registries, monkeypatch):
    ep = metadata.EntryPoint(
        name="count_stimuli", value=f"{__name__}:_Count", group="brainalign.analyses"
    )
    real = metadata.entry_points

    def entry_points(group=None, **kw):
        return [ep] if group == "brainalign.analyses" else real(group=group, **kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    _analysis._loaded = False
    assert _analysis.analyses()["count_stimuli"] is _Count
    spec = load_spec({**SPEC, "analyses": {"count_stimuli": {"offset": 2}}})
    assert spec["analyses"] == {"count_stimuli": {"offset": 2}}
    # its schema and limits are checked like a built-in's
    with pytest.raises(SpecError, match=r"analyses\.count_stimuli\.offst: unknown key"):
        load_spec({**SPEC, "analyses": {"count_stimuli": {"offst": 2}}})
    with pytest.raises(SpecError, match=r"offset: must be an integer in \[0, 10\]"):
        load_spec({**SPEC, "analyses": {"count_stimuli": {"offset": 11}}})


def test_an_unknown_analysis_names_the_registered_ones():
    with pytest.raises(SpecError, match=r"analyses\.rsb: invalid value 'rsb'; allowed: 'rsa'"):
        load_spec({**SPEC, "analyses": {"rsb": {}}})


def test_a_name_cannot_be_taken_twice(registries):
    class Other(Analysis):
        name = "rsa"

    with pytest.raises(ValueError, match=r"analysis 'rsa' is registered already \(by "):
        register_analysis(Other)

    class Nameless(Analysis):
        pass

    with pytest.raises(ValueError, match=r"needs a non-empty 'name'"):
        register_analysis(Nameless)


def test_public_registry_listings_survive_the_subpackages_import():
    # brainalign.pipeline.analyses / .sources are subpackages: importing them sets the package
    # attributes of those names, which once shadowed public functions of the same names.
    import brainalign.pipeline as pipeline
    import brainalign.pipeline.analyses.rsa  # noqa: F401
    import brainalign.pipeline.sources  # noqa: F401

    for _ in range(2):
        assert list(pipeline.list_analyses())[:2] == ["rsa", "searchlight"]
        assert "haxby2001" in pipeline.list_sources()
        assert "random_network" in pipeline.list_model_kinds()
