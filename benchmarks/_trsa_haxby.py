"""Region RDMs of the shipped Haxby 2001 subject, per independent split of its 12 runs.

The paper identifies a held-out subject's regions from their RDMs; with one shipped
subject, the held-out unit here is a split of the runs (disjoint runs: independent
measurement noise, the same brain). Regions are spatial parcels (k-means on the voxel
coordinates, computed without looking at the responses, so no circularity) of

* ``wholebrain``: the whole-brain 25 mm data (129 brain voxels, 6 parcels of about 21), and
* ``vt_slice``: the ventral-temporal mask of the 3.1 × 3.75 mm slice (530 voxels, 8 parcels
  of about 66).

The shipped 25 mm Harvard-Oxford atlas (``masks/25mm/hoc.nii.gz``) has 1-5 voxels per
label, too few for an RDM, hence the parcellation. Stimuli are the 8 categories: each
split's pattern of a category is the mean of its block patterns (one block per run).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import xarray as xr

N_RUNS = 12
REGION_SETS = {
    "wholebrain": "whole brain at 25 mm, 6 spatial parcels (k-means on voxel coordinates)",
    "vt_slice": "ventral-temporal slice at 3.1 x 3.75 mm, 8 spatial parcels (k-means)",
}
N_PARCELS = {"wholebrain": 6, "vt_slice": 8}


@cache
def block_patterns(name: str) -> xr.DataArray:
    """One pattern per run and category (96 × voxels), with run/stimulus coords."""
    from brainalign.datasets import load_haxby, load_haxby_wholebrain

    if name == "wholebrain":
        return load_haxby_wholebrain()
    vols = load_haxby()
    key = [f"{r}|{s}" for r, s in zip(vols["run"].values, vols["stimulus"].values, strict=True)]
    keys, inverse = np.unique(key, return_inverse=True)
    sums = np.zeros((len(keys), vols.sizes["voxel"]))
    np.add.at(sums, inverse, vols.values)
    means = sums / np.bincount(inverse)[:, None]
    runs = np.array([int(k.split("|")[0]) for k in keys])
    stim = np.array([k.split("|")[1] for k in keys])
    coords = {c: vols[c] for c in vols.coords if vols[c].dims == ("voxel",)}
    return xr.DataArray(
        means,
        dims=("trial", "voxel"),
        coords={"stimulus": ("trial", stim), "run": ("trial", runs), **coords},
        attrs=dict(vols.attrs),
    )


@cache
def parcels(name: str) -> np.ndarray:
    """Parcel label of every voxel: k-means (seed 0) on the voxel coordinates in mm."""
    from sklearn.cluster import KMeans

    pat = block_patterns(name)
    xyz = np.c_[pat["x"].values, pat["y"].values, pat["z"].values].astype(float)
    km = KMeans(n_clusters=N_PARCELS[name], n_init=10, random_state=0).fit(xyz)
    return km.labels_


def split_rdms(name: str, runs_per_split: int) -> xr.DataArray:
    """Correlation-distance RDMs, dims (split, region, stimulus_a, stimulus_b)."""
    import brainalign as ba
    from brainalign import rsa

    pat = block_patterns(name)
    labels = parcels(name)
    stimuli = sorted(set(pat["stimulus"].values.tolist()))
    runs, stim = pat["run"].values, pat["stimulus"].values
    n_splits = N_RUNS // runs_per_split
    out = []
    for k in range(n_splits):
        inside = (runs - 1) // runs_per_split == k
        means = np.stack([pat.values[inside & (stim == s)].mean(axis=0) for s in stimuli])
        out.append(
            [
                np.asarray(rsa.rdm(ba.responses(means[:, labels == g], stimuli), "correlation"))
                for g in range(N_PARCELS[name])
            ]
        )
    return xr.DataArray(
        np.array(out),
        dims=("split", "region", "stimulus_a", "stimulus_b"),
        coords={
            "split": np.arange(n_splits),
            "region": [f"P{g + 1}" for g in range(N_PARCELS[name])],
            "stimulus_a": stimuli,
            "stimulus_b": stimuli,
        },
    )
