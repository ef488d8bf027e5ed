"""
RSA of ventral-temporal cortex: Haxby et al. (2001)
===================================================

Load the shipped fMRI data, build a brain RDM from category-mean patterns, and compare it
with a category-structure model and an untrained random network.
"""

# %%
# Load the data: one labeled array of trials (fMRI volumes) by voxels.
import numpy as np

import brainalign as ba
from brainalign import rsa, viz

bold = ba.datasets.load_haxby()
print(bold.sizes, np.unique(bold.stimulus.values))

# %%
# Average the trials of each category and compute the correlation-distance RDM.
patterns = ba.average_trials(bold).sel(stimulus=list(ba.datasets.HAXBY_CATEGORIES))
brain = rsa.rdm(patterns, "correlation")
fig = viz.plot_rdm(brain, title="ventral-temporal cortex", rank=True)

# %%
# Two models: which categories belong together, and a random network (a null model).
category = rsa.categorical_rdm(
    {
        "animate": ["face", "cat"],
        "place": ["house"],
        "object": ["chair", "shoe", "bottle", "scissors"],
        "scrambled": ["scrambledpix"],
    }
)
random_net = ba.data.random_network(brain.stimulus_a.values, n_layers=3, seed=0)
random_rdm = rsa.rdm(random_net["layer3"]["activations"])

# %%
# Compare, with an exact permutation test over the 8! stimulus labellings. The model RDMs
# list the stimuli in other orders: they are aligned by id.
for name, model in [("category", category), ("random network", random_rdm)]:
    test = rsa.permutation_test(brain, model, "spearman")
    print(f"{name:>15}: spearman r = {float(test.observed):.3f}, p = {float(test.p_value):.4f}")

# %%
# How reliable is the brain RDM itself? Split the runs into odd and even halves.
runs = bold.run.values
halves = [
    rsa.rdm(ba.average_trials(bold.isel(trial=np.flatnonzero(runs % 2 == k)))) for k in (1, 0)
]
print("split-half reliability:", round(rsa.compare(*halves), 3))
