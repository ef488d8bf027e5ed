"""
Human similarity judgments as RDMs: SimLex-999 and WordSim-353
==============================================================

Ratings cover only some word pairs, so these RDMs are incomplete. brainalign keeps unrated
pairs as NaN, counts the ratings behind each entry, and leaves NaN pairs out of every
comparison.
"""

# %%
import numpy as np

import brainalign as ba
from brainalign.loaders.judgments import load_pairwise, load_triplets

root = ba.datasets.data_dir() / "word_similarity"
simlex = load_pairwise(root / "simlex999.txt", scale=(0, 10))
wordsim = load_pairwise(root / "wordsim353.tsv", scale=(0, 10))
print(simlex.sizes, "rated pairs:", simlex.attrs["n_pairs_rated"])

# %%
# Words rated in both collections, aligned by id; only pairs rated in both are compared.
a, b = ba.align_stimuli(simlex, wordsim, join="inner")
both = np.isfinite(a.values) & np.isfinite(b.values) & ~np.eye(a.shape[0], dtype=bool)
print(f"{a.shape[0]} shared words, {both.sum() // 2} pairs rated in both")
print("similarity vs relatedness (spearman):", round(ba.rsa.compare(a, b), 3))

# %%
# Triplet odd-one-out choices give an RDM too.
triplet_rdm = load_triplets(
    [("cat", "dog", "car", "car"), ("cat", "dog", "car", "dog"), ("cat", "car", "bus", "cat")]
)
print(triplet_rdm.to_pandas().round(2))
