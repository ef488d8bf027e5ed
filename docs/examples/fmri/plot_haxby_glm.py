"""
From BOLD runs and real onsets to category patterns: a GLM on Haxby (2001)
==========================================================================

The shipped OpenFMRI copy of Haxby subject 1 holds 12 BOLD runs and, per run, the onset of
each of the 8 category blocks. A GLM (nilearn's engine) turns them into one t map per
category and run; we build the category RDM, check its split-half reliability, and put a
per-voxel result back into a NIfTI image.
"""

# %%
import numpy as np

import brainalign as ba
from brainalign.loaders import fmri

tmaps = ba.datasets.load_haxby_openfmri(output="stat")  # (trial: 96, voxel: 530)
print(tmaps.sizes, tmaps.attrs["estimate"], tmaps.attrs["hrf_model"])

# %%
# One pattern per category, in a readable order, and the brain RDM.
order = list(ba.datasets.HAXBY_CATEGORIES)
brain = ba.rsa.rdm(ba.average_trials(tmaps).sel(stimulus=order))
print(np.round(brain.sel(stimulus_a="face").values, 2))

# %%
# Reliability: RDMs from odd and even runs.
runs = tmaps.run.values
odd, even = (
    ba.rsa.rdm(ba.average_trials(tmaps.isel(trial=np.flatnonzero(runs % 2 == k)))) for k in (1, 0)
)
print("split-half RDM reliability:", round(ba.rsa.compare(odd, even), 3))

# %%
# Single-trial estimates: least squares separate (all events solved in one batch).
lss = ba.datasets.load_haxby_openfmri(runs=[1, 2], estimate="lss")
print(lss.sizes, list(lss.stimulus.values[:4]))

# %%
# Any per-voxel result goes back to an image on the original grid, ready for nilearn.
face_minus_house = ba.average_trials(tmaps).sel(stimulus="face") - ba.average_trials(tmaps).sel(
    stimulus="house"
)
img = fmri.to_image(face_minus_house, ba.datasets.data_dir() / "haxby2001" / "mask.nii.gz")
print(img.shape, float(np.nanmax(img.get_fdata())))
