"""brainalign.ricci.compare (brain-versus-model curvature statistics) and rewire.

Oracles: scipy.stats (wasserstein_distance, ks_2samp, spearmanr) and scikit-learn
(adjusted_rand_score, normalized_mutual_info_score), computed here on the same curvatures
and partitions. Real data: the shipped WordSim-353 ratings (an incomplete RDM). CPU only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.ricci import _compare as C
from brainalign.ricci import (
    communities,
    compare,
    knn_graph,
    ollivier_ricci,
    rewire,
    ricci_flow,
)

WORDSIM = Path(__file__).resolve().parents[2] / "datasets" / "word_similarity" / "wordsim353.tsv"
STATS = list(C.STATISTICS)
TESTED = list(C.TESTED)
DESCRIPTIVE = list(C.DESCRIPTIVE)
FAST = {"n_permutations": 0, "n_bootstrap": 0}
N = 60


def _ids(n: int = N) -> list[str]:
    return [f"s{i:02d}" for i in range(n)]


def _clustered(seed: int, n_clusters: int = 10, per: int = 6, dim: int = 20) -> np.ndarray:
    """Cluster centres repeated ``per`` times (stimuli of a cluster are adjacent)."""
    centers = np.random.default_rng(seed).normal(size=(n_clusters, dim))
    return np.repeat(centers, per, axis=0)


def _views(noise: float = 0.5, seed: int = 1) -> tuple[xr.DataArray, xr.DataArray]:
    """Two seeded noisy views of the same 10-cluster Gaussian data (60 stimuli)."""
    base = _clustered(0)
    rng = np.random.default_rng(seed)
    a = base + rng.normal(size=base.shape) * noise
    b = base + rng.normal(size=base.shape) * noise
    return ba.responses(a, _ids()), ba.responses(b, _ids())


@pytest.fixture(scope="module")
def views():
    return _views()


@pytest.fixture(scope="module")
def views_result(views):
    a, b = views
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compare(a, b, n_permutations=999, n_bootstrap=30)


# ---------------------------------------------------------------------------------------
# the statistics against scipy / scikit-learn


def test_w1_ks_match_scipy(rng):
    u = np.round(rng.normal(size=37), 1)  # ties within and across samples
    v = np.round(rng.normal(0.3, 1.5, size=(6, 23)), 1)
    v[2, :5] = np.nan  # rows with dropped entries
    v[4, -1] = np.nan
    w1, ks = C._w1_ks(np.concatenate([u, [np.nan]]), v)
    for r in range(len(v)):
        vr = v[r][np.isfinite(v[r])]
        assert w1[r] == pytest.approx(stats.wasserstein_distance(u, vr), abs=1e-12)
        assert ks[r] == pytest.approx(stats.ks_2samp(u, vr).statistic, abs=1e-12)
    same_w1, same_ks = C._w1_ks(u, u[None])
    assert same_w1[0] == 0 and same_ks[0] == 0
    assert np.isnan(C._w1_ks(np.array([np.nan]), v)[0]).all()


def test_w1_ks_row_by_row_match_scipy(rng):
    """A 2-D first sample: row r against row r (NaN pads samples of different sizes)."""
    u = np.round(rng.normal(size=(5, 30)), 1)
    v = np.round(rng.normal(0.2, 1.3, size=(5, 25)), 1)
    u[1, 20:] = np.nan
    v[3, :7] = np.nan
    w1, ks = C._w1_ks(u, v)
    for r in range(5):
        ur, vr = u[r][np.isfinite(u[r])], v[r][np.isfinite(v[r])]
        assert w1[r] == pytest.approx(stats.wasserstein_distance(ur, vr), abs=1e-12)
        assert ks[r] == pytest.approx(stats.ks_2samp(ur, vr).statistic, abs=1e-12)
    u[2] = np.nan  # an empty sample: NaN, not an error
    w1, ks = C._w1_ks(u, v)
    assert np.isnan(w1[2]) and np.isnan(ks[2]) and np.isfinite(w1[[0, 1, 3, 4]]).all()


@pytest.mark.parametrize(
    ("la", "lb"),
    [
        ([0, 0, 1, 1, 2, 2, 2], [1, 1, 0, 0, 2, 2, 0]),
        ([0, 0, 0, 0], [0, 0, 0, 0]),  # one cluster each: sklearn's special case 1.0
        ([0, 0, 0, 0], [0, 1, 0, 1]),  # one side constant: NMI 0
        ([0, 1, 2, 3], [3, 2, 1, 0]),  # singletons, full agreement
        ([0, 0, 1, 1], [0, 1, 0, 1]),  # ARI -0.5
    ],
)
def test_ari_nmi_match_sklearn_cases(la, lb):
    ari, nmi = C._ari_nmi(np.array(la), np.array(lb)[None])
    assert ari[0] == pytest.approx(adjusted_rand_score(la, lb), abs=1e-12)
    assert nmi[0] == pytest.approx(normalized_mutual_info_score(la, lb), abs=1e-12)


def test_ari_nmi_batched_match_sklearn(rng):
    la = rng.integers(0, 5, size=50)
    lb = rng.integers(0, 7, size=50)
    perms = np.stack([rng.permutation(50) for _ in range(20)])
    ari, nmi = C._ari_nmi(la, lb[perms])
    for p in range(len(perms)):
        assert ari[p] == pytest.approx(adjusted_rand_score(la, lb[perms[p]]), abs=1e-12)
        assert nmi[p] == pytest.approx(normalized_mutual_info_score(la, lb[perms[p]]), abs=1e-12)


def test_compare_statistics_match_scipy_and_sklearn(views, views_result):
    """Every observed statistic, recomputed from the public building blocks."""
    a, b = views
    ga, gb = knn_graph(a, k=10), knn_graph(b, k=10)
    opts = {"alpha": 0.5, "measure": "gaussian", "method": "exact"}
    ca, cb = ollivier_ricci([ga, gb], **opts)
    ea, eb = ca.edges.values, cb.edges.values
    na, nb = ca.nodes.values, cb.nodes.values
    res = views_result
    assert float(res.edge_wasserstein) == pytest.approx(stats.wasserstein_distance(ea, eb))
    assert float(res.edge_ks) == pytest.approx(stats.ks_2samp(ea, eb).statistic)
    assert float(res.node_wasserstein) == pytest.approx(stats.wasserstein_distance(na, nb))
    assert float(res.node_ks) == pytest.approx(stats.ks_2samp(na, nb).statistic)
    assert float(res.node_correlation) == pytest.approx(stats.spearmanr(na, nb).statistic)
    # gaussian flows run on mean-normalised weights with the bandwidth at half the mean edge
    unit = [g.with_weights(g.edges()[2] / g.edges()[2].mean()) for g in (ga, gb)]
    fa, fb = ricci_flow(unit, iterations=20, bandwidth=0.5, **opts)
    la, lb = communities(fa).labels.values, communities(fb).labels.values
    assert float(res.community_ari) == pytest.approx(adjusted_rand_score(la, lb))
    assert float(res.community_nmi) == pytest.approx(normalized_mutual_info_score(la, lb))
    assert float(res.modularity_a) == pytest.approx(communities(fa).modularity)
    assert float(res.modularity_b) == pytest.approx(communities(fb).modularity)


def test_one_batched_curvature_and_flow_call(monkeypatch, views):
    """Systems: one ollivier_ricci call; bootstrap graphs: one curvature_arrays call."""
    calls = {"curvature": [], "flow": [], "bootstrap": []}
    real_or, real_flow, real_arrays = C.ollivier_ricci, C.ricci_flow, C.curvature_arrays

    def spy_or(graphs, **kw):
        calls["curvature"].append(len(graphs))
        return real_or(graphs, **kw)

    def spy_flow(graphs, **kw):
        calls["flow"].append(len(graphs))
        return real_flow(graphs, **kw)

    def spy_arrays(union, **kw):
        calls["bootstrap"].append(int(kw["graph_of_node"].max()) + 1)
        return real_arrays(union, **kw)

    monkeypatch.setattr(C, "ollivier_ricci", spy_or)
    monkeypatch.setattr(C, "ricci_flow", spy_flow)
    monkeypatch.setattr(C, "curvature_arrays", spy_arrays)
    a, b = views
    compare({"x": a, "y": b}, {"z": b}, n_permutations=10, n_bootstrap=4)
    assert calls == {"curvature": [3], "flow": [3], "bootstrap": [3 * 4]}


# ---------------------------------------------------------------------------------------
# invariances


def test_self_comparison(views):
    a, _ = views
    res = compare(a, a, n_permutations=99, n_bootstrap=0)
    for stat in ("edge_wasserstein", "edge_ks", "node_wasserstein", "node_ks"):
        assert float(res[stat]) == 0
    assert float(res.node_correlation) == pytest.approx(1.0)
    assert float(res.community_ari) == 1.0
    assert float(res.community_nmi) == pytest.approx(1.0)
    assert float(res.node_correlation_p) == pytest.approx(1 / 100)
    assert np.isnan(float(res.edge_wasserstein_ci_lower))  # n_bootstrap=0: no interval


def _shuffle(x, order):
    if isinstance(x, xr.DataArray) and "stimulus_a" in x.dims:
        return x.isel(stimulus_a=order, stimulus_b=order)
    if isinstance(x, xr.DataArray):
        return x.isel(stimulus=order)
    return x.subgraph(order)


@pytest.mark.parametrize("kind", ["responses", "rdm", "graph"])
def test_relabelled_copy_gives_same_statistics(views, kind, rng, tol):
    """Alignment by id: shuffling system_b's stimulus order changes nothing."""
    a, b = views
    if kind == "rdm":
        a, b = ba.rsa.rdm(a, metric="euclidean"), ba.rsa.rdm(b, metric="euclidean")
    elif kind == "graph":
        a, b = knn_graph(a, k=10), knn_graph(b, k=10)
    order = rng.permutation(N)
    shuffled = _shuffle(b, order)
    ids_b = shuffled.stimulus if kind == "graph" else shuffled.coords[shuffled.dims[0]]
    assert not np.array_equal(np.asarray(ids_b), _ids())
    kw = {"n_permutations": 199, "n_bootstrap": 5}
    with warnings.catch_warnings():
        if kind == "graph":  # prebuilt graphs: no bootstrap interval, with a warning
            warnings.filterwarnings("ignore", "prebuilt graph", UserWarning)
        ref, got = compare(a, b, **kw), compare(a, shuffled, **kw)
    # float32: another stimulus order sums in another order; the statistics (distances
    # between distributions of curvatures of size O(1), p-values, intervals) differ by a
    # few eps32 absolute (x 4)
    atol = tol(float64=0, float32=4 * float(np.finfo(np.float32).eps))
    for name in ref.data_vars:
        np.testing.assert_allclose(
            got[name].values, ref[name].values, rtol=1e-10, atol=atol, err_msg=name
        )
    self_shuffled = compare(a, _shuffle(a, order), **FAST)
    assert float(self_shuffled.edge_wasserstein) == pytest.approx(0, abs=max(atol, 1e-12))
    assert float(self_shuffled.community_ari) == 1.0


# ---------------------------------------------------------------------------------------
# nulls


def test_noisy_views_are_significant(views_result):
    res = views_result
    assert float(res.node_correlation) > 0.2
    assert float(res.node_correlation_p) < 0.05
    assert float(res.community_ari_p) < 0.05
    assert float(res.community_nmi_p) < 0.05
    assert res.community_ari_p.attrs["n_null"] == 999
    # p-values are (1 + hits) / (1 + n): never below 1 / (1 + n)
    assert float(res.community_ari_p) >= 1 / 1000
    for stat in TESTED:
        assert 0 < float(res[f"{stat}_p"]) <= 1
        assert np.isfinite(float(res[f"null_mean_{stat}"]))
        assert float(res[f"null_sd_{stat}"]) >= 0
    for stat in DESCRIPTIVE:  # finite intervals around the value
        lo, hi = float(res[f"{stat}_ci_lower"]), float(res[f"{stat}_ci_upper"])
        assert 0 <= lo <= float(res[stat]) <= hi and lo < hi, stat


def test_independent_systems_are_not_significant():
    """Unrelated data (shuffled cluster membership): permutation p-values spread out."""
    rng = np.random.default_rng(3)
    systems = {}
    for s in range(6):
        x = _clustered(10 + s)[rng.permutation(N)] + rng.normal(size=(N, 20)) * 0.5
        systems[f"m{s}"] = ba.responses(x, _ids())
    a = {k: systems[k] for k in ("m0", "m1", "m2")}
    b = {k: systems[k] for k in ("m3", "m4", "m5")}
    res = compare(a, b, n_permutations=199, n_bootstrap=0)
    p = np.concatenate(
        [res[f"{s}_p"].values.ravel() for s in ("node_correlation", "community_ari")]
    )
    assert np.all(p > 0.01)
    assert 0.2 < np.median(p) < 0.9


def test_p_value_definition():
    null = np.array([0.1, 0.2, 0.3, 0.3, 0.5])
    assert C._p_value(0.3, null, "greater") == pytest.approx((1 + 3) / 6)
    assert C._p_value(0.3, null, "less") == pytest.approx((1 + 4) / 6)
    assert np.isnan(C._p_value(0.3, np.zeros(0), "less"))
    assert np.isnan(C._p_value(np.nan, null, "less"))


def test_same_seed_same_result(views):
    a, b = views
    kw = {"n_permutations": 50, "n_bootstrap": 3, "seed": 5}
    r1, r2 = compare(a, b, **kw), compare(a, b, **kw)
    xr.testing.assert_identical(r1, r2)


# ---------------------------------------------------------------------------------------
# many systems, output


def test_dict_inputs_give_the_grid(views):
    a, b = views
    c = ba.responses(_clustered(7) + np.random.default_rng(2).normal(size=(N, 20)), _ids())
    res = compare(
        {"V1": a, "IT": c}, {"L1": b, "L2": a, "L3": c}, n_permutations=20, n_bootstrap=5
    )
    assert res.sizes == {"system_a": 2, "system_b": 3}
    assert res.system_a.values.tolist() == ["V1", "IT"]
    assert res.system_b.values.tolist() == ["L1", "L2", "L3"]
    for name in res.data_vars:
        assert res[name].dims == ("system_a", "system_b"), name
    assert float(res.edge_wasserstein.sel(system_a="V1", system_b="L2")) == 0
    single = compare(c, b, n_permutations=20, n_bootstrap=5)
    for name in single.data_vars:  # the same permutations and resamples for every pair
        assert float(res[name].sel(system_a="IT", system_b="L1")) == pytest.approx(
            float(single[name]), nan_ok=True
        ), name
    # modularity of a system is the same in every column / row
    assert np.ptp(res.modularity_a.values, axis=1).max() == 0
    assert np.ptp(res.modularity_b.values, axis=0).max() == 0
    one_side = compare({"V1": a}, b, **FAST)
    assert one_side.edge_ks.dims == ("system_a",)


def test_output_schema(views_result):
    res = views_result
    assert res.edge_ks.dims == ()
    assert TESTED == ["node_correlation", "community_ari", "community_nmi"]
    assert DESCRIPTIVE == ["edge_wasserstein", "edge_ks", "node_wasserstein", "node_ks"]
    for stat in TESTED:
        for name in (stat, f"{stat}_p", f"null_mean_{stat}", f"null_sd_{stat}"):
            assert name in res, name
        assert res[stat].attrs["inference"] == "permutation test"
        assert res[f"{stat}_p"].attrs["null"] == "permutation"
        assert res[f"{stat}_p"].attrs["alternative"] == "greater"
    for stat in DESCRIPTIVE:  # descriptive: an interval, never a p-value or a null
        assert res[stat].attrs["inference"] == "descriptive"
        for name in (f"{stat}_ci_lower", f"{stat}_ci_upper"):
            assert name in res and res[name].attrs["ci"] == 0.95, name
        for name in (f"{stat}_p", f"null_mean_{stat}", f"null_sd_{stat}"):
            assert name not in res, name
    for name in ("modularity_a", "modularity_b", "n_communities_a", "n_communities_b"):
        assert name in res
    assert not [v for v in res.data_vars if "rewir" in str(res[v].attrs)]
    attrs = res.attrs
    for key in (
        "k",
        "mutual",
        "alpha",
        "measure",
        "method",
        "flow_iterations",
        "community_method",
        "n_permutations",
        "n_bootstrap",
        "ci",
        "seed",
        "device",
        "brainalign_version",
    ):
        assert key in attrs, key
    assert attrs["n_stimuli"] == N and attrs["n_permutations"] == 999
    assert attrs["n_bootstrap"] == 30 and "n_rewire" not in attrs
    assert attrs["tested_statistics"] == "node_correlation, community_ari, community_nmi"


def test_wordsim_human_judgments_vs_model():
    """An incomplete human RDM (WordSim-353, rated pairs only) against a model RDM."""
    from brainalign.loaders.judgments import load_pairwise

    human = load_pairwise(WORDSIM, scale=(0, 10))
    all_rated = knn_graph(human, k=human.sizes["stimulus_a"] - 1, connected="ignore")
    _, comp = all_rated.components()
    words = all_rated.stimulus[comp == 0]  # the largest connected set of rated words
    human = human.sel(stimulus_a=words, stimulus_b=words)
    rng = np.random.default_rng(0)
    model = ba.rsa.rdm(ba.responses(rng.normal(size=(len(words), 30)), words[::-1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = compare(human, model, n_permutations=99, n_bootstrap=5, community_method="louvain")
    # The human graph holds rated pairs only.
    g = knn_graph(human, k=10)
    s, t, _ = g.edges()
    assert np.isfinite(human.values[s, t]).all()
    ch, cm = ollivier_ricci(
        [g, knn_graph(model.sel(stimulus_a=words, stimulus_b=words), k=10)], measure="gaussian"
    )
    assert float(res.edge_wasserstein) == pytest.approx(
        stats.wasserstein_distance(ch.edges.values, cm.edges.values)
    )
    assert float(res.node_correlation) == pytest.approx(
        stats.spearmanr(ch.nodes.values, cm.nodes.values).statistic
    )
    for stat in STATS:
        assert np.isfinite(float(res[stat])), stat


# ---------------------------------------------------------------------------------------
# errors


def test_different_stimuli_raise(views):
    a, b = views
    fewer = b.isel(stimulus=slice(0, 58))
    with pytest.raises(StimulusAlignmentError, match=r"misses 2 id\(s\) of system_a: 's58'"):
        compare(a, fewer, **FAST)
    renamed = b.assign_coords(stimulus=[*_ids()[:-1], "extra"])
    with pytest.raises(StimulusAlignmentError, match=r"1 extra id\(s\): 'extra'"):
        compare(a, {"L1": renamed}, **FAST)
    with pytest.raises(StimulusAlignmentError, match=r"system_b\['L1'\]"):
        compare(a, {"L1": renamed}, **FAST)
    g = knn_graph(fewer, k=10, connected="ignore")
    with pytest.raises(StimulusAlignmentError, match="'s59'"):
        compare(a, g, **FAST)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"measure": "gauss"}, r"'measure'.*got 'gauss'.*Did you mean 'gaussian'"),
        ({"method": "sinkorn"}, r"'method'.*got 'sinkorn'.*Did you mean 'sinkhorn'"),
        ({"community_method": "leiden"}, r"'community_method'.*'cut', 'louvain'; got 'leiden'"),
        ({"n_permutations": -1}, r"n_permutations must be in the range \[0, inf\), got -1"),
        ({"n_bootstrap": -3}, r"n_bootstrap must be in the range \[0, inf\), got -3"),
        ({"ci": 1.0}, r"ci must be in the range \(0, 1\), got 1.0"),
        ({"k": 60}, r"k must be < the number of stimuli \(60\), got k=60"),
        ({"alpha": 1.0}, r"alpha must be in the range \[0, 1\), got 1.0"),
    ],
)
def test_bad_parameters_raise(views, kw, match):
    a, b = views
    with pytest.raises(ValueError, match=match):
        compare(a, b, **{**FAST, **kw})


def test_bad_inputs_raise(views):
    a, b = views
    with pytest.raises(TypeError, match="dict"):
        compare(a, [b], **FAST)
    with pytest.raises(TypeError, match="never by position"):
        compare(a, b.values, **FAST)
    with pytest.raises(ValueError, match="empty dict"):
        compare({}, b, **FAST)
    with pytest.raises(TypeError, match="'stimulus' dim"):
        compare(a, b.rename(stimulus="item"), **FAST)


# ---------------------------------------------------------------------------------------
# rewire


@pytest.fixture(scope="module")
def graph():
    x = _clustered(0) + np.random.default_rng(0).normal(size=(N, 20)) * 0.5
    return knn_graph(ba.responses(x, _ids()), k=6)


def test_rewire_preserves_degrees_and_weights(graph):
    r = rewire(graph, seed=3)
    np.testing.assert_array_equal(r.degree, graph.degree)
    np.testing.assert_array_equal(np.sort(r.edges()[2]), np.sort(graph.edges()[2]))
    np.testing.assert_array_equal(r.stimulus, graph.stimulus)
    # simple: no self-loops, no multi-edges, symmetric
    rows = r.rows()
    assert not np.any(rows == r.indices)
    assert len(np.unique(rows * N + r.indices)) == len(rows)
    a = r.to_scipy()
    assert abs(a - a.T).max() == 0
    # different from the input, and connected (the default)
    s0, t0, _ = graph.edges()
    s1, t1, _ = r.edges()
    shared = np.intersect1d(s0 * N + t0, s1 * N + t1).size
    assert shared < 0.5 * graph.n_edges
    assert r.components()[0] == 1
    assert r.attrs["n_accepted"] > 0 and r.attrs["n_swaps"] == 10 * graph.n_edges


def test_rewire_is_seeded(graph):
    r1, r2, r3 = rewire(graph, seed=1), rewire(graph, seed=1), rewire(graph, seed=2)
    np.testing.assert_array_equal(r1.indices, r2.indices)
    np.testing.assert_array_equal(r1.weights, r2.weights)
    assert not np.array_equal(r1.indices, r3.indices)
    same = rewire(graph, 0)
    np.testing.assert_array_equal(same.indices, graph.indices)


def test_rewire_retries_then_warns_when_disconnected(monkeypatch):
    import networkx as nx

    from brainalign.ricci import _rewire

    path = nx.path_graph(20)  # a tree: many swaps cut it in pieces
    r = rewire(path, seed=1)  # attempts 0 and 1 are disconnected, attempt 2 is not
    assert r.attrs["attempt"] == 2 and r.components()[0] == 1
    np.testing.assert_array_equal(r.degree, [1, *([2] * 18), 1])
    monkeypatch.setattr(_rewire, "_N_RETRIES", 2)
    with pytest.warns(UserWarning, match="were all disconnected"):
        r = rewire(path, seed=1)
    assert r.components()[0] > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rewire(path, seed=1, connected=False).components()[0] > 1


def test_rewire_bad_input(graph):
    with pytest.raises(ValueError, match=r"n_swaps must be in the range \[0, inf\), got -1"):
        rewire(graph, -1)
    with pytest.raises(TypeError, match="connected must be a bool"):
        rewire(graph, connected="yes")


# ---------------------------------------------------------------------------------------
# the stimulus bootstrap of the descriptive statistics (issue 17: no rewiring p-values)


def test_n_rewire_is_gone(views):
    """The rewiring null did not test correspondence: asking for it says what replaced it."""
    a, b = views
    with pytest.raises(
        TypeError, match=r"no longer takes n_rewire \(got n_rewire=20\).*n_bootstrap="
    ):
        compare(a, b, n_rewire=20)
    res = compare(a, b, **FAST)
    assert not [v for v in res.data_vars if v.startswith(tuple(DESCRIPTIVE)) and "_p" in v]


def test_resampled_rdms_put_copies_at_the_nearest_neighbour(rng):
    d = np.array([[0, 1, 4, 5], [1, 0, 2, 6], [4, 2, 0, 3], [5, 6, 3, 0]], dtype=float)
    d[0, 3] = d[3, 0] = np.nan  # an unrated pair stays unrated
    sub = C._resampled_rdms(d, np.array([[0, 0, 2, 3]]))[0]
    expected = np.array(
        [[0, 1, 4, np.nan], [1, 0, 4, np.nan], [4, 4, 0, 3], [np.nan, np.nan, 3, 0]]
    )  # the two copies of stimulus 0 sit at its nearest-neighbour distance (1)
    np.testing.assert_array_equal(sub, expected)
    draws = C._bootstrap_draws(40, 7, seed=3)
    assert draws.shape == (7, 40) and (np.diff(draws, axis=1) >= 0).all()
    np.testing.assert_array_equal(draws, C._bootstrap_draws(40, 7, seed=3))


@pytest.mark.parametrize("mutual", [False, True])
@pytest.mark.parametrize("measure", ["gaussian", "uniform", "grc"])
def test_resampled_curvatures_equal_knn_graph_and_ollivier_ricci(rng, mutual, measure):
    """The batched bootstrap graphs are knn_graph's, their curvature ollivier_ricci's."""
    n, k = 24, 4
    xs = [rng.normal(size=(n, 5)) for _ in range(2)]
    dense = [np.linalg.norm(x[:, None] - x[None], axis=-1) for x in xs]
    dense[0][3, 7] = dense[0][7, 3] = np.nan  # an unrated pair
    draws = C._bootstrap_draws(n, 6, seed=1)
    opts = {"alpha": 0.5, "measure": measure, "method": "exact", "device": "cpu"}
    edges, nodes = C._resampled_curvatures(dense, draws, k, mutual, opts)
    for s, d in enumerate(dense):
        for b in range(len(draws)):
            g = knn_graph(C._resampled_rdms(d, draws[b : b + 1])[0], k=k, mutual=mutual,
                          connected="ignore")  # fmt: skip
            ref = ollivier_ricci(g, **opts)
            got = edges[s][b][np.isfinite(edges[s][b])]
            np.testing.assert_allclose(got, ref.edges.values, rtol=0, atol=1e-12)
            np.testing.assert_allclose(nodes[s][b], ref.nodes.values, rtol=0, atol=1e-12)


def test_bootstrap_interval_recomputed_with_scipy(views):
    """The interval: observed +- the resamples' larger half-width (W1 / KS with scipy)."""
    a, b = views
    n_boot = 12
    res = compare(a, b, n_permutations=0, n_bootstrap=n_boot, ci=0.8, seed=4)
    rdms = [ba.rsa.rdm(x, metric="euclidean").values for x in (a, b)]
    draws = C._bootstrap_draws(N, n_boot, seed=4)
    values = {s: [] for s in DESCRIPTIVE}
    for row in draws:
        curv = [
            ollivier_ricci(knn_graph(C._resampled_rdms(d, row[None])[0], k=10,
                                     connected="ignore"), measure="gaussian")
            for d in rdms
        ]  # fmt: skip
        ea, eb = (c.edges.values for c in curv)
        na, nb = (c.nodes.values for c in curv)
        values["edge_wasserstein"].append(stats.wasserstein_distance(ea, eb))
        values["edge_ks"].append(stats.ks_2samp(ea, eb).statistic)
        values["node_wasserstein"].append(stats.wasserstein_distance(na, nb))
        values["node_ks"].append(stats.ks_2samp(na, nb).statistic)
    for stat in DESCRIPTIVE:
        lo, med, hi = np.quantile(values[stat], [0.1, 0.5, 0.9])
        half = max(med - lo, hi - med)
        value = float(res[stat])
        assert float(res[f"{stat}_ci_lower"]) == pytest.approx(max(value - half, 0), abs=1e-12)
        assert float(res[f"{stat}_ci_upper"]) == pytest.approx(value + half, abs=1e-12)
        assert res[f"{stat}_ci_lower"].attrs["ci"] == 0.8


def test_interval_is_centred_on_the_observed_value():
    """Resampling shifts the statistic; the interval keeps only the spread, within range."""
    shifted = np.array([0.5, 0.6, 0.7, 0.8, 0.9])  # all above the observed 0.3
    assert C._interval(0.3, shifted, 0.5) == pytest.approx((0.3 - 0.1, 0.3 + 0.1))
    skewed = np.array([0.0, 0.1, 0.2, 0.6, 1.0])  # the larger half-width (upper) is used
    assert C._interval(0.3, skewed, 0.5) == pytest.approx((0.0, 0.7))  # clipped at 0
    assert C._interval(0.9, skewed, 0.5, high=1.0) == pytest.approx((0.5, 1.0))
    assert np.isnan(C._interval(0.3, np.array([0.2, np.nan]), 0.9)).all()


def test_prebuilt_graphs_have_no_interval(views):
    a, b = views
    with pytest.warns(UserWarning, match=r"prebuilt graph\(s\) 'system_b'.*intervals.*NaN"):
        res = compare(a, knn_graph(b, k=10), n_permutations=0, n_bootstrap=3)
    assert np.isnan(float(res.edge_ks_ci_lower)) and np.isfinite(float(res.edge_ks))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no interval asked for: no warning
        compare(a, knn_graph(b, k=10), **FAST)


def test_dicts_in_other_stimulus_orders_equal_aligned_input(views, rng, tol):
    """Issue 17 item 2: every system of a dict is matched by id, whatever its order."""
    a, b = views
    c = ba.responses(_clustered(7) + rng.normal(size=(N, 20)), _ids())
    kw = {"k": 6, "n_permutations": 30, "n_bootstrap": 4, "flow_iterations": 5}
    e = ba.rsa.rdm(ba.responses(_clustered(8) + rng.normal(size=(N, 20)), _ids()))
    ref = compare({"V1": a, "IT": c}, {"L1": b, "L2": e}, **kw)
    shuffled = {
        name: _shuffle(x, rng.permutation(N)) for name, x in (("V1", a), ("IT", c), ("L1", b))
    }
    l2 = _shuffle(e, rng.permutation(N))  # an RDM in yet another order
    got = compare({"V1": shuffled["V1"], "IT": shuffled["IT"]},
                  {"L1": shuffled["L1"], "L2": l2}, **kw)  # fmt: skip
    # RDMs of reordered responses differ in the last bit; float32: a few eps32 absolute of
    # the O(1) statistics (x 4), as in test_relabelled_copy_gives_same_statistics
    atol = tol(float64=1e-12, float32=4 * float(np.finfo(np.float32).eps))
    for name in ref.data_vars:
        np.testing.assert_allclose(
            got[name].values, ref[name].values, rtol=1e-10, atol=atol, err_msg=name
        )
    with pytest.raises(StimulusAlignmentError, match=r"system_a\['IT'\].*'s59'.*'zz'"):
        compare({"V1": a, "IT": c.assign_coords(stimulus=[*_ids()[:-1], "zz"])}, b, **FAST)
    with pytest.raises(TypeError, match=r"one system or a dict.*got a list"):
        compare([a, c], b, **FAST)
