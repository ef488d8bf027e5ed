"""
Searchlight RSA: where does ventral-temporal cortex carry category structure?
=============================================================================

A searchlight computes an RDM in a small sphere around every voxel and compares it with a
model RDM, giving a map of model fit. Here: the shipped Haxby et al. (2001) ventral-temporal
slice, category-mean patterns, and a categorical model (animate / place / object /
scrambled). Then a time-resolved RSA on simulated sensor data, with permutation bands.
"""

# %%
# Load the trials and average them per category: 8 stimuli by 530 voxels, with the voxels'
# ``x``/``y``/``z`` positions in mm (and ``i``/``j``/``k`` grid indices) as coordinates.
import numpy as np
import xarray as xr

import brainalign as ba
from brainalign import rsa

bold = ba.datasets.load_haxby()
patterns = ba.average_trials(bold)
print(dict(patterns.sizes))

# %%
# The model: which categories belong together.
model = rsa.categorical_rdm(
    {
        "animate": ["face", "cat"],
        "place": ["house"],
        "object": ["chair", "shoe", "bottle", "scissors"],
        "scrambled": ["scrambledpix"],
    }
)

# %%
# A searchlight of radius 8 mm (about 16 voxels on this 3.1 x 3.75 mm grid): one RDM per
# voxel, all compared with the model by Spearman correlation. The model lists the stimuli
# in another order; they are matched by id.
sl = rsa.searchlight(patterns, model, radius=8.0, metric="correlation", method="spearman")
print(f"{sl.sizes['voxel']} centres, median patch size {int(np.median(sl.patch_size))} voxels")
best = sl.isel(voxel=np.argsort(-sl.values)[:5])
for v in best.voxel.values:
    s = best.sel(voxel=v)
    print(f"  voxel (i={int(s.i)}, j={int(s.j)}): spearman r = {float(s):.3f}")

# %%
# The map keeps the voxel coordinates, so it goes back into an image on the data's grid
# (``brainalign.loaders.fmri.to_image(sl, mask_img)``) for plotting with nilearn. Here we
# draw the slice directly.
import matplotlib.pyplot as plt

grid = np.full((int(sl.i.max()) + 1, int(sl.j.max()) + 1), np.nan)
grid[sl.i.values, sl.j.values] = sl.values
fig, ax = plt.subplots(figsize=(3, 5))
im = ax.imshow(grid, cmap="viridis")
ax.set_title("searchlight: category model")
fig.colorbar(im, ax=ax, label="Spearman r")

# %%
# Several models at once: each chunk of centres is compared with all of them in one matrix
# product. Here the category model and an "animate vs the rest" model.
animacy = rsa.categorical_rdm(
    {
        "animate": ["face", "cat"],
        "other": ["house", "chair", "shoe", "bottle", "scissors", "scrambledpix"],
    }
)
both = rsa.searchlight(patterns, {"category": model, "animacy": animacy}, radius=8.0)
print(both.mean("voxel").to_series().round(3).to_dict())

# %%
# Is the category map more than chance? Permute the stimulus labels of the model 200 times
# (every permuted map comes from the same batched pass as the observed one), form clusters
# of neighbouring centres above the permutation maps' 95th percentile, and compare each
# cluster's summed similarity with the largest cluster of every permuted map.
test = rsa.cluster_permutation_test(patterns, model, radius=8.0, n_permutations=200, seed=0)
for k, (mass, p) in enumerate(
    zip(test.cluster_mass.values, test.cluster_p_value.values, strict=True)
):
    if p < 0.05:
        print(
            f"  cluster {k}: {int((test.cluster == k).sum())} voxels, mass {mass:.1f}, p = {p:.4f}"
        )

# %%
# Time-resolved RSA: M/EEG-like data (stimulus, channel, time) where a known geometry
# appears between 100 and 200 ms. One RDM per time point is compared with the model, and
# 200 stimulus-label permutations of the model (one batched product) give a null band and
# p-values corrected over time by the maximum statistic.
rng = np.random.default_rng(0)
n_stim, n_chan, times = 12, 16, np.arange(-0.1, 0.4, 0.01)
truth = rng.normal(size=(n_stim, n_chan))
signal = ((times > 0.1) & (times < 0.2)).astype(float)
meg = xr.DataArray(
    rng.normal(size=(n_stim, n_chan, times.size)) + truth[:, :, None] * 2 * signal,
    dims=("stimulus", "channel", "time"),
    coords={"stimulus": [f"s{k}" for k in range(n_stim)], "time": times},
)
meg_model = rsa.rdm(ba.responses(truth, meg.stimulus.values))
res = rsa.time_resolved(meg, meg_model, n_permutations=200, seed=0)
sig = res.time.values[res.p_value_corrected.values < 0.05]
print(f"significant from {sig.min():.2f} s to {sig.max():.2f} s (corrected p < 0.05)")

# %%
# Temporal generalization: the RDM at each time against the RDM at every other time.
tg = rsa.temporal_generalization(meg)
window = slice(0.105, 0.195)
within = float(tg.sel(time_a=window, time_b=window).mean())
baseline = float(tg.sel(time_a=slice(None, -0.005), time_b=window).mean())
print(f"RDM similarity within the signal window: {within:.2f}; baseline to window: {baseline:.2f}")
