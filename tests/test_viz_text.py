"""Names and ids holding ``$`` are drawn as written (no matplotlib mathtext), in every figure.

matplotlib reads a text with an even number of unescaped ``$`` as mathtext: ``"$x$"`` was
drawn as an italic x, and ``"$\\alpha_$"`` or ``"$$"`` made the figure fail when it was
rendered, after results.nc was written.
"""

import io

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import brainalign as ba
from brainalign import rsa, viz
from brainalign._mpltext import is_mathtext, literal_text, mpl_text
from brainalign.report import Report

IDS = ["$x$", "a$b", "\\alpha$", "$\\alpha_$", "$$", "a \\$ b", "plain"]


def _drawn(text):
    """What matplotlib draws for a text object: (string, is_math), its own preprocessing."""
    return text._preprocess_math(text.get_text())


def _render(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)  # raised ValueError (mathtext) before the fix
    return buf.getvalue()


def _tick_texts(axis):
    return [t for t in axis.get_ticklabels() if t.get_text()]


def _rdm(ids):
    rng = np.random.default_rng(0)
    x = xr.DataArray(
        rng.normal(size=(len(ids), 5)), dims=("stimulus", "unit"), coords={"stimulus": ids}
    )
    return rsa.rdm(x, "euclidean")


@pytest.mark.parametrize("text", IDS)
def test_mpl_text_is_drawn_exactly_as_written(text):
    fig = Figure()
    t = fig.text(0.1, 0.5, mpl_text(text))
    assert _drawn(t) == (text, False)
    _render(fig)
    assert mpl_text(mpl_text(text)) != text or "$" not in text  # escaping is not idempotent
    assert is_mathtext(text) == (text in ("$x$", "$\\alpha_$", "$$"))


def test_rdm_and_mds_labels_are_literal():
    rdm = _rdm(IDS)
    fig = viz.plot_rdm(rdm, title="$\\alpha_$ model")
    _render(fig)
    ax = fig.axes[0]
    assert [_drawn(t) for t in _tick_texts(ax.xaxis)] == [(s, False) for s in IDS]
    assert [_drawn(t) for t in _tick_texts(ax.yaxis)] == [(s, False) for s in IDS]
    assert _drawn(ax.title) == ("$\\alpha_$ model", False)
    fig = viz.plot_rdms({"$m$": rdm, "a$b": rdm}, rank=True)
    _render(fig)
    assert [_drawn(a.title) for a in fig.axes[:2]] == [("$m$", False), ("a$b", False)]
    fig = viz.plot_mds(rdm, title="$$")
    _render(fig)
    ax = fig.axes[0]
    assert sorted(_drawn(t)[0] for t in ax.texts) == sorted(IDS)
    assert _drawn(ax.title) == ("$$", False)


def test_model_comparison_score_matrix_and_time_course_are_literal():
    scores = {name: 0.1 * (k + 1) for k, name in enumerate(IDS)}
    fig = viz.plot_model_comparison(
        scores, p_values=[0.01] * len(IDS), reliability=0.9, ylabel="$r_$"
    )
    _render(fig)
    ax = fig.axes[0]
    assert [_drawn(t) for t in _tick_texts(ax.xaxis)] == [(s, False) for s in IDS]
    assert _drawn(ax.yaxis.label) == ("$r_$", False)
    table = xr.DataArray(
        np.arange(6.0).reshape(2, 3),
        dims=("$layer$", "roi"),
        coords={"$layer$": ["$l1$", "a$b"], "roi": ["$V1$", "\\alpha$", "$$"]},
    )
    fig = viz.plot_score_matrix(table, title="$t_$", label="$c_$")
    _render(fig)
    ax = fig.axes[0]
    assert [_drawn(t)[0] for t in _tick_texts(ax.xaxis)] == ["$V1$", "\\alpha$", "$$"]
    assert [_drawn(t)[0] for t in _tick_texts(ax.yaxis)] == ["$l1$", "a$b"]
    assert _drawn(ax.xaxis.label) == ("roi", False) and _drawn(ax.yaxis.label)[0] == "$layer$"
    assert _drawn(fig.axes[1].yaxis.label) == ("$c_$", False)  # colour-bar label
    t = np.linspace(0, 1, 5)
    course = xr.Dataset(
        {"similarity": (("model", "time"), np.ones((2, 5)))},
        coords={"model": ["$x$", "$\\alpha_$"], "time": t},
    )
    fig = viz.plot_time_course(course, ylabel="$y_$")
    _render(fig)
    legend = fig.axes[0].get_legend()
    assert [_drawn(x) for x in legend.get_texts()] == [("$x$", False), ("$\\alpha_$", False)]


def test_report_draws_any_figure_literally_and_leaves_it_as_it_was(tmp_path):
    # a figure drawn outside viz (as the ricci and tRSA plots are), with mathtext-breaking
    # names in a title, fixed and categorical tick labels, a legend and an annotation
    fig = Figure()
    ax, bx = fig.subplots(1, 2)
    ax.set_xticks(range(3), ["$x$", "$\\alpha_$", "a$b"])
    ax.plot([0, 1, 2], [1, 2, 3], label="$$")
    ax.legend()
    ax.annotate("$y_$", (1, 2))
    ax.set_title("$\\alpha_$")
    bx.bar(["$c_$", "$d$"], [1.0, 2.0])  # categorical axis (StrCategoryFormatter)
    bx.set_yscale("log")  # numeric mathtext (10^0) stays mathtext
    with pytest.raises(ValueError, match=r"alpha_"):  # matplotlib itself cannot draw it
        _render(fig)
    report = Report("$x$ report")
    report.add_figure(fig, "$x$", caption="a$b")
    report.add_slider({"$x$": fig, "a$b": fig}, "slider")
    html = report.save(tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    # the SVG and PDF downloads are drawn literally too (mathtext would fail on $\alpha_$)
    assert html.count("data:image/svg+xml;base64,") == html.count("data:application/pdf;") == 3
    assert ax.title.get_text() == "$\\alpha_$"  # the figure is left as it was
    assert ax.xaxis.get_major_formatter()(1, 1) == "$\\alpha_$"
    with literal_text(fig):
        fig.canvas.draw()
        assert [_drawn(t)[0] for t in _tick_texts(ax.xaxis)] == ["$x$", "$\\alpha_$", "a$b"]
        assert [_drawn(t)[0] for t in _tick_texts(bx.xaxis)] == ["$c_$", "$d$"]
        assert all(_drawn(t)[1] for t in _tick_texts(bx.yaxis))  # log ticks: mathtext
        assert _drawn(ax.get_legend().get_texts()[0]) == ("$$", False)
        assert _drawn(ax.texts[0]) == ("$y_$", False)
    ok = Figure()
    ok.add_subplot().set_ylabel("$R^2$")
    report.add_figure(ok, "math kept", mathtext=True)  # mathtext on request
    assert ok.axes[0].yaxis.label.get_text() == "$R^2$"


def test_ids_with_dollars_through_a_whole_run(tmp_path):
    """Stimulus ids and group names with $ reach every figure of a pipeline report.

    Brain and model names are path parts and NetCDF group names, so the spec keeps them to
    letters, digits, ``_``, ``.`` and ``-`` (tests/test_pipeline_spec.py); any text inside
    the data may hold ``$``.
    """
    from pathlib import Path

    import mne

    fif = Path(ba.datasets.data_dir()) / "eeg_haxby_sim" / "eeg_haxby_sim_raw.fif"
    raw = mne.io.read_raw_fif(fif, preload=True, verbose="error").crop(0, 12)
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose="error")
    codes = sorted(set(mne.find_events(raw, verbose="error")[:, 2].tolist()))
    names = ["$x$", "a$b", "\\alpha$", "$\\alpha_$", "$$", "plain", "c$", "d"]
    event_id = {names[k]: int(c) for k, c in enumerate(codes)}
    spec = {
        "name": "dollars",
        "brain": {
            "rec": {
                "dataset": "meeg_file",
                "path": str(path),
                "event_id": event_id,
                "tmin": -0.1,
                "tmax": 0.3,
                "baseline": [None, 0],
                "picks": "eeg",
            }
        },
        "models": {
            "alpha": {
                "kind": "categorical",
                "groups": {"g$1": list(event_id)[::2], "g$2": list(event_id)[1::2]},
            },
            "ab": {"kind": "random_network"},
        },
        "analyses": {"rsa": {"n_bootstrap": 20}, "time_resolved": {"n_permutations": 20}},
    }
    res = ba.run(spec, out=tmp_path / "out")
    html = res.report.read_text()
    assert "Time course (rec)" in html and html.count("data:image/png;base64,") >= 3
    rdm = res.tree["brain/rec"].to_dataset()["rdm"]
    assert list(rdm.stimulus_a.values) == list(event_id)
