"""The Ricci-curvature analysis of a pipeline: spec checks, results.nc and the report section."""

from __future__ import annotations

from html import escape as html_escape

import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign.pipeline import SpecError

ricci = pytest.importorskip("brainalign.ricci")
if not hasattr(ricci, "compare"):  # written in parallel; the rest of the file needs it
    pytest.skip("brainalign.ricci.compare is not available yet", allow_module_level=True)

SPEC = """
name: t
seed: 0
brain:
  vt: {dataset: haxby2001}
models:
  cats:
    kind: categorical
    groups: {animate: [face, cat], place: [house], object: [chair, shoe, bottle, scissors],
             scrambled: [scrambledpix]}
  net: {kind: random_network, n_layers: 2}
  net2: {kind: random_network, n_layers: 2, seed: 1}
analyses:
  rsa: {n_permutations: 10, split_half: false}
  ricci: {k: 3, n_permutations: 30, n_bootstrap: 4, flow_iterations: 10, community_method: louvain}
"""


def _write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def ricci_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ricci")
    return ba.run(_write(tmp, SPEC), out=tmp / "out")


def test_ricci_results_match_the_api(ricci_run):
    res = ricci_run
    stored = ba.load(res.results)
    ds = stored["ricci"].to_dataset(inherit=False)
    for var in (
        "edge_wasserstein", "edge_ks", "node_wasserstein", "node_ks", "node_correlation",
        "community_ari", "community_nmi", "modularity_a", "modularity_b",
    ):  # fmt: skip
        assert var in ds and ds[var].dims == ("system_a", "system_b")
    # p-values only where the null is brain-model independence (stimulus permutations);
    # the distribution distances are descriptive, with bootstrap intervals (issue 17).
    for var in ("node_correlation", "community_ari", "community_nmi"):
        assert f"{var}_p" in ds and ds[var].attrs["inference"] == "permutation test"
        assert ds[f"{var}_p"].attrs["null"] == "permutation"
    for var in ("edge_wasserstein", "edge_ks", "node_wasserstein", "node_ks"):
        assert f"{var}_p" not in ds and ds[var].attrs["inference"] == "descriptive"
        lo, hi = ds[f"{var}_ci_lower"].values, ds[f"{var}_ci_upper"].values
        assert np.isfinite(lo).all() and (lo <= hi).all()
    assert not [v for v in ds.data_vars if "rewir" in v or "rewir" in str(ds[v].attrs)]
    # The categorical model has zero dissimilarities (no graph): left out, with a note.
    assert list(ds.system_a.values) == ["vt"]
    assert list(ds.system_b.values) == ["net", "net2"]
    assert ds.attrs["k"] == 3 and ds.attrs["n_bootstrap"] == 4 and "n_rewire" not in ds.attrs
    # One compare() call on the stored RDMs gives the same numbers.
    brain = res.tree["brain/vt"].dataset.rdm
    models = res.tree["models/vt"].dataset.rdm
    ref = ricci.compare(
        {"vt": brain},
        {m: models.sel(model=m).drop_vars("model").astype(np.float64) for m in ("net", "net2")},
        k=3, n_permutations=30, n_bootstrap=4, flow_iterations=10, community_method="louvain",
    )  # fmt: skip
    for var in ("node_correlation", "edge_wasserstein", "node_ks", "node_ks_ci_upper"):
        np.testing.assert_allclose(ds[var].values, ref[var].values, rtol=1e-4, atol=1e-5)
    # The figures' numbers: the brain and its best model entry, communities consistent
    # with compare's modularity.
    fig = stored["ricci/curvature/vt"].to_dataset(inherit=False)
    best = fig.attrs["best_model"]
    assert best == str(ds.node_correlation.sel(system_a="vt").idxmax("system_b").item())
    assert list(fig.system.values) == ["vt", best]
    assert fig.node_curvature.dims == ("system", "stimulus")
    assert np.isfinite(fig.edge_curvature.values).all()
    np.testing.assert_allclose(
        fig.modularity.values,
        [float(ds.modularity_a.sel(system_a="vt", system_b=best)),
         float(ds.modularity_b.sel(system_a="vt", system_b=best))],
        rtol=1e-6,
    )  # fmt: skip


def test_ricci_report_section(ricci_run):
    html = ricci_run.report.read_text()
    assert "Ricci curvature" in html
    for title in (
        "What the curvature statistics mean",
        "Curvature comparison: brain × model (vt)",
        "Curvature statistics (vt)",
        "Edge curvature: vt vs",
        "Node curvature and Ricci-flow communities: vt and",
    ):
        assert title in html, title
    assert "Left out of the curvature comparison: cats" in html
    # Stars and p only for the permutation-tested statistics; the distances are labelled
    # descriptive, with intervals, and the rewiring null is gone (issue 17).
    assert "rewir" not in html
    assert "edge_wasserstein (descriptive)" in html and "edge_wasserstein 95 % CI" in html
    assert "edge_wasserstein p" not in html and "node_correlation p" in html


def test_ricci_is_cached(ricci_run, tmp_path):
    out = ricci_run.out
    again = ba.run(_write(tmp_path, SPEC), out=out)
    # one Ricci unit per brain source and model, every one loaded from the cache
    assert again.cache_hits.get("ricci") == 3 and not again.cache_misses.get("ricci")
    a = ricci_run.tree["ricci"].to_dataset(inherit=False)
    b = again.tree["ricci"].to_dataset(inherit=False)
    xr.testing.assert_allclose(a, b)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("k: 3,", "k: 8,", r"analyses\.ricci\.k: must be < the number of stimuli of brain\.vt "
                           r"\(8 Haxby categories\), got 8"),
        ("k: 3,", "k: 0,", r"analyses\.ricci\.k: must be an integer >= 1, got 0"),
        ("k: 3,", "k: 3, alpha: 1.0,", r"analyses\.ricci\.alpha: must be in \[0, 1\), got 1\.0"),
        ("k: 3,", "k: 3, measure: gausian,",
         r"analyses\.ricci\.measure: invalid value 'gausian'.*Did you mean 'gaussian'"),
        ("k: 3,", "k: 3, method: sinkorn,", r"analyses\.ricci\.method: invalid value 'sinkorn'"),
        ("community_method: louvain", "community_method: leiden",
         r"analyses\.ricci\.community_method: invalid value 'leiden'"),
        ("n_bootstrap: 4", "n_bootstrap: -1",
         r"analyses\.ricci\.n_bootstrap: must be >= 0, got -1"),
        ("n_bootstrap: 4", "n_bootstraps: 4",
         r"analyses\.ricci\.n_bootstraps: unknown key 'n_bootstraps'.*Did you mean "
         r"'n_bootstrap'"),
        ("n_bootstrap: 4", "n_rewire: 4",
         r"analyses\.ricci\.n_rewire: was removed: the degree-preserving rewiring null does "
         r"not test brain-model correspondence.*use n_bootstrap: N instead"),
        ("k: 3,", "k: 3.5,", r"analyses\.ricci\.k: must be an integer, got float 3\.5"),
    ],
)  # fmt: skip
def test_ricci_spec_errors(tmp_path, old, new, match):
    assert old in SPEC
    with pytest.raises(SpecError, match=match):
        ba.run(_write(tmp_path, SPEC.replace(old, new)), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing computed or written


def test_ricci_defaults():
    spec = ba.pipeline.load_spec(
        {
            "name": "d",
            "brain": {"ws": {"dataset": "word_similarity", "file": "wordsim353.tsv"}},
            "models": {"net": {"kind": "random_network"}},
            "analyses": {"rsa": {}, "ricci": None},
        }
    )
    assert spec["analyses"]["ricci"] == {
        "k": 10, "alpha": 0.5, "measure": "gaussian", "method": "exact", "flow_iterations": 20,
        "community_method": "cut", "n_permutations": 200, "n_bootstrap": 50,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------
# the figures on their own


def test_plot_functions_on_their_own():
    import matplotlib

    matplotlib.use("Agg")
    import networkx as nx

    from brainalign.ricci._plot import _classical_mds, graph_layout

    # Classical MDS recovers a planar configuration up to rotation: distances are kept.
    pts = np.random.default_rng(0).normal(size=(12, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    xy = _classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(xy[:, None] - xy[None], axis=-1), d, atol=1e-9)
    # A path graph lies on a line at its shortest-path distances.
    path = ricci.as_graph(nx.path_graph(6))
    xy = graph_layout(path)
    np.testing.assert_allclose(np.abs(xy[:, 0] - xy[0, 0]), np.arange(6), atol=1e-9)
    np.testing.assert_allclose(xy[:, 1], 0, atol=1e-6)

    flow = ricci.ricci_flow(nx.barbell_graph(5, 1), iterations=10)
    comm = ricci.communities(flow, method="louvain")
    ax = ricci.plot_node_curvature(flow, communities=comm)
    assert ax.get_xlabel() == "MDS 1" and ax.get_legend() is not None
    with pytest.raises(ValueError, match=r"layout must have shape \(11, 2\).*got \(3, 2\)"):
        ricci.plot_node_curvature(flow.original, layout=np.zeros((3, 2)))
    with pytest.raises(
        ValueError, match=r"'layout' parameter\. Allowed values are 'mds'; got 'tsne'"
    ):
        ricci.plot_node_curvature(flow.original, layout="tsne")
    with pytest.raises(ValueError, match=r"communities must give one label per node \(11\)"):
        ricci.plot_node_curvature(flow.original, communities=[0, 1])
    with pytest.raises(TypeError, match=r"result must be a CurvatureResult.*got list"):
        ricci.plot_node_curvature([1, 2])

    ax = ricci.plot_curvature({"a": flow.original, "b": flow.curvature.edges}, kind="edges")
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match=r"'kind' parameter.*got 'edge'\. Did you mean 'edges'"):
        ricci.plot_curvature(flow.original, kind="edge")

    # One pair of systems (scalars): a 1 x 1 map; p stars at 0.05 / 0.01 / 0.001.
    ds = xr.Dataset(
        {
            "edge_ks": 0.25,
            "edge_ks_p": xr.DataArray(0.0004, attrs={"alternative": "less"}),
        }
    )
    ax = ricci.plot_compare(ds, "edge_ks")
    assert [t.get_text() for t in ax.texts] == ["0.25***"]
    assert "lower = more alike" in ax.get_title()
    with pytest.raises(ba.SchemaError, match=r"statistic must be a variable of ds.*'edge_kz'"):
        ricci.plot_compare(ds, "edge_kz")


def test_plot_compare_never_stars_descriptive_statistics():
    """Issue 17: a distance shows its interval, never stars, even beside an old rewiring p."""
    import matplotlib

    matplotlib.use("Agg")
    cells = (("system_a", "system_b"), [[0.12, 0.3]])
    ds = xr.Dataset(
        {
            "edge_wasserstein": xr.DataArray(
                cells[1], dims=cells[0], attrs={"inference": "descriptive", "more_alike": "lower"}
            ),
            "edge_wasserstein_ci_lower": (cells[0], [[0.08, 0.2]]),
            "edge_wasserstein_ci_upper": (cells[0], [[0.17, np.nan]]),
            # results.nc written before the change: a p from the rewiring null
            "edge_wasserstein_p": xr.DataArray(
                [[0.001, 0.001]], dims=cells[0], attrs={"null": "rewire", "alternative": "less"}
            ),
        },
        coords={"system_a": ["VT"], "system_b": ["L1", "L2"]},
    )
    ax = ricci.plot_compare(ds, "edge_wasserstein")
    assert [t.get_text() for t in ax.texts] == ["0.12\n[0.08, 0.17]", "0.30"]
    assert "lower = more alike" in ax.get_title() and "[interval]" in ax.get_title()


def test_notes_from_the_computation_survive_the_cache(tmp_path):
    # Issue 18: the warnings of a Ricci computation (the report's "Notes from the
    # computation") vanished when the entry came from the cache. With k = 1 the k-NN graphs
    # of 8 stimuli fall apart into components, and compare warns about it.
    spec = _write(tmp_path, SPEC.replace("k: 3,", "k: 1,"))
    first = ba.run(spec, out=tmp_path / "out")
    stored = list(first.tree["ricci"].to_dataset(inherit=False).attrs["warnings"])
    assert any("disconnected" in note for note in stored)
    again = ba.run(spec, out=tmp_path / "out")
    # one Ricci unit per brain source and model, every one loaded from the cache
    assert again.cache_hits.get("ricci") == 3 and not again.cache_misses.get("ricci")
    for run in (first, again):
        html = run.report.read_text()
        assert "Notes from the computation" in html
        for note in stored:
            assert html_escape(note)[:60] in html


def test_a_renamed_brain_source_uses_its_ricci_entry_under_its_new_name(tmp_path):
    # The entry's key holds the brain's data, not its name (a rename computes nothing new);
    # the comparison it holds is labelled with the name of the source that loads it. Two
    # sources with the same data share one entry and get one row each.
    spec = _write(
        tmp_path, SPEC.replace("  net2: {kind: random_network, n_layers: 2, seed: 1}\n", "")
    )
    ba.run(spec, out=tmp_path / "out")
    renamed = _write(
        tmp_path,
        spec.read_text().replace(
            "  vt: {dataset: haxby2001}",
            "  vt2: {dataset: haxby2001}\n  vt3: {dataset: haxby2001}",
        ),
    )
    assert set(ba.run(renamed, out=tmp_path / "out", dry_run=True).status.values()) == {"cached"}
    res = ba.run(renamed, out=tmp_path / "out")
    assert not res.cache_misses.get("ricci")
    ds = res.tree["ricci"].to_dataset(inherit=False)
    assert list(ds.system_a.values) == ["vt2", "vt3"]
    np.testing.assert_array_equal(
        ds.node_correlation.sel(system_a="vt2").values,
        ds.node_correlation.sel(system_a="vt3").values,
    )
    assert {"vt2", "vt3"} <= set(res.tree["ricci/curvature"].children)
