"""
A voxelwise encoding model of Haxby (2001): delays, leave-one-run-out CV, score map
===================================================================================

The shipped Haxby subject 1 holds 12 runs of BOLD (TR 2.5 s, 121 volumes each) over 530
ventral-temporal voxels, with the category shown at every volume. We describe each volume
by which of the 8 categories is on screen, delay those features by 1-4 TRs (2.5-10 s, the
haemodynamic lag; delays never cross a run boundary), and fit one ridge model per voxel
with one penalty per voxel chosen by leave-one-run-out cross-validation. Then: a
permutation test that shifts the features within runs (block designs are autocorrelated,
so plain shuffles would be too liberal), a banded model that asks whether faces/houses
explain variance beyond the other categories, and a report with the score map.
"""

# %%
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from sklearn.model_selection import LeaveOneGroupOut

import brainalign as ba
from brainalign import encoding

bold = ba.datasets.load_haxby(include_rest=True)  # (trial: 1452 volumes, voxel: 530)
runs = bold.run.values
categories = list(bold.attrs["stimulus_order"])
onehot = xr.DataArray(
    (bold.stimulus.values[:, None] == np.array(categories)[None, :]).astype(float),
    dims=("trial", "category"),
    coords={"trial": bold.trial.values, "category": categories, "run": ("trial", runs)},
)
features = encoding.delay(onehot, [1, 2, 3, 4])  # the run coordinate keeps runs apart
print(features.sizes)

# %%
# One penalty per voxel, selected by leave-one-run-out CV; R² reported at that penalty.
model = encoding.RidgeCV(alphas=np.logspace(-1, 4, 11), cv=LeaveOneGroupOut())
model.fit(features, bold, groups=runs)
scores = model.results_.cv_score  # dims ("voxel",), with the voxel coordinates
print(f"median R² {float(scores.median()):.3f}; best voxel {float(scores.max()):.3f}")
alphas, counts = np.unique(model.best_alphas_, return_counts=True)
print("voxels per penalty:", dict(zip(alphas.round(1).tolist(), counts.tolist(), strict=True)))

# %%
# Significance: circular shifts of the responses within runs, the alpha re-selected for
# every shift, scored on the same decompositions as the observed fit. Circular shifts keep
# the autocorrelation of the responses, so they are valid for time series (a plain shuffle,
# ``kind="stimulus"``, is not). The max-statistic FWE p-values need few permutations;
# Benjamini-Hochberg over m voxels needs ``n_permutations >= m / 0.05 - 1`` before a single
# voxel can be rejected alone, so it is skipped here (``fdr_alpha=None``).
test = encoding.permutation_test(
    features, bold, np.logspace(-1, 4, 6), cv=LeaveOneGroupOut(), groups=runs,
    n_permutations=100, kind="circular", runs=runs, fdr_alpha=None, seed=0,
)  # fmt: skip
print(
    f"{int((test.p_fwe < 0.05).sum())} voxels significant at FWE 0.05 (max-statistic), "
    f"out of {test.sizes['voxel']}"
)

# %%
# Banded ridge: faces and houses as one band, the other categories as another; each voxel
# gets its own band weights, and the variance is partitioned between bands.
cols = features["category_delay"].to_index().get_level_values("category")
band = np.where(np.isin(cols, ["face", "house"]), "face+house", "other")
train, held_out = runs <= 10, runs > 10
banded = encoding.BandedRidgeCV(
    np.logspace(-1, 4, 6), n_iter=12, cv=LeaveOneGroupOut(), random_state=0
)
banded.fit(features.values[train], bold.values[train], groups=runs[train], bands=band)
split = banded.score_split(features.values[held_out], bold.values[held_out], bands=band)
print(split.mean("target_0").round(3).to_series().to_dict())

# %%
# The report: the score map on the mean image's grid, and the scores as NetCDF.
from nilearn import image

folder = ba.datasets.get_manifest("haxby2001")["path"]
mean_bold = image.mean_img(str(folder / "bold.nii.gz"), copy_header=True)
out = Path(tempfile.mkdtemp())
with ba.Report("Haxby voxelwise encoding", path=out / "report.html") as report:
    fig = ba.viz.plot_brain_map(
        scores, folder / "mask.nii.gz", bg_img=mean_bold, title="leave-one-run-out R²"
    )
    report.add_figure(fig, "Encoding score map", section="Encoding")
    report.add_table(
        model.results_[["cv_score", "best_alpha"]].to_dataframe().describe(),
        "Scores and penalties over voxels",
        section="Encoding",
    )
ba.save(model.results_.cv_score.rename("cv_score"), out / "encoding_scores.nc")
print(sorted(p.name for p in out.iterdir()))
