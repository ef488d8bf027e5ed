import numpy as np
import pytest

import brainalign as ba
from brainalign import Report, rsa, viz


def test_report_sections_and_save(tmp_path, rng):
    r = rsa.rdm(rng.normal(size=(5, 4)))
    report = Report("T <&>", subtitle="sub", downloads=False)  # (test_viz_publication)
    report.add_figure(viz.plot_rdm(r, title="rdm"), "An RDM", caption="cap", section="RDMs")
    report.add_table([{"model": "m<1>", "r": 0.51234}], "Scores", section="Summary")
    report.add_text("one\n\ntwo", section="Summary")
    report.add_provenance(seed=3)
    assert report.sections == ["RDMs", "Summary"]
    html = report.save(tmp_path / "sub" / "r.html").read_text()
    assert "<title>T &lt;&amp;&gt;</title>" in html  # escaped
    assert "<td>m&lt;1&gt;</td><td>0.512</td>" in html
    assert html.count('<p class="note">') == 2
    assert 'id="provenance"' in html and "<th>seed</th><td>3</td>" in html
    assert "data:image/png;base64," in html
    assert "RDMs" in repr(report) or "2 sections" in repr(report)


def test_context_manager_saves(tmp_path):
    with Report("x", path=tmp_path / "r.html") as report:
        report.add_text("hi")
    assert (tmp_path / "r.html").exists()


def test_report_errors():
    report = Report()
    with pytest.raises(TypeError, match=r"fig must be a matplotlib Figure, got str"):
        report.add_figure("fig")
    with pytest.raises(TypeError, match=r"rows must be a list of dicts"):
        report.add_table("rows")


def test_viz_functions(rng):
    r = rsa.rdm(ba.responses(rng.normal(size=(4, 6)), list("abcd")))
    fig = viz.plot_rdm(r, rank=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    fig = viz.plot_rdms({"a": r, "b": r * 2}, ncols=2)
    assert len(fig.axes) == 3  # two panels + colour bar
    fig = viz.plot_model_comparison(
        {"m1": 0.5, "m2": -0.1}, p_values={"m1": 0.01, "m2": 0.5}, reliability=0.7
    )
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["*"]
    with pytest.raises(ba.SchemaError, match=r"plot_rdm needs a single RDM"):
        viz.plot_rdm(ba.responses(np.eye(3)))


def test_classical_mds_recovers_a_configuration(rng):
    from scipy.spatial.distance import pdist, squareform

    points = rng.normal(size=(7, 2))
    d = squareform(pdist(points))
    coords = viz.classical_mds(d, 2)
    np.testing.assert_allclose(squareform(pdist(coords)), d, atol=1e-10)  # up to rotation
    fig = viz.plot_mds(
        ba.rsa.rdm(ba.responses(rng.normal(size=(5, 3)), list("abcde")), "euclidean")
    )
    assert [t.get_text() for t in fig.axes[0].texts] == list("abcde")
    incomplete = d.copy()
    incomplete[0, 1] = incomplete[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"needs a complete RDM; this one has 2 NaN entries"):
        viz.classical_mds(incomplete)


def test_add_slider_html_and_errors(rng):
    report = Report(downloads=False)
    figs = {
        'a"<b>': viz.plot_rdm(rsa.rdm(rng.normal(size=(3, 2)))),
        "c": viz.plot_rdm(rsa.rdm(rng.normal(size=(3, 2)))),
    }
    report.add_slider(figs, "Layers", section="RDMs")
    html = report.to_html()
    assert html.count('type="range"') == 1 and 'max="1"' in html
    assert 'alt="a&quot;&lt;b&gt;"' in html  # labels escaped in attributes
    with pytest.raises(ValueError, match=r"add_slider needs at least one figure; got \{\}"):
        report.add_slider({}, "x")
    with pytest.raises(TypeError, match=r"figs\['x'\] must be a matplotlib Figure, got str"):
        report.add_slider({"x": "not a figure"})


def test_two_saves_use_their_own_temporary_files(tmp_path, monkeypatch):
    # Issue 18: every save wrote ".report.html.tmp", so two saves to one path collided
    # (a reader saw an empty report). Each save now writes its own temporary file.
    import os
    from pathlib import Path

    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((src, Path(src).read_text(encoding="utf-8")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "report.html"
    Report("one").save(target)
    Report("two").save(target)
    assert len({src for src, _ in seen}) == 2
    assert all(text.startswith("<!DOCTYPE html>") for _, text in seen)
    assert "two" in target.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError, match="full"):
        Report("three").save(target)
    assert not list(tmp_path.glob(".*.tmp"))  # a failed save leaves nothing behind
