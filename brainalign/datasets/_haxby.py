"""Reader for the shipped Haxby 2001 ventral-temporal slice."""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainalign._checks import check_type
from brainalign._version import __version__
from brainalign.datasets._registry import get_manifest, verify

HAXBY_CATEGORIES = ("face", "cat", "house", "chair", "shoe", "bottle", "scissors", "scrambledpix")
"""The 8 categories in the manifest's canonical order (animate, place, objects, scrambled)."""


def _detrend_zscore(values: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Remove a linear trend and z-score each voxel within each run."""
    out = np.empty_like(values, dtype=np.float64)
    for run in np.unique(runs):  # a dozen runs, each a vectorised least-squares fit
        idx = np.flatnonzero(runs == run)
        t = np.linspace(-1.0, 1.0, idx.size)
        design = np.column_stack([np.ones_like(t), t])
        beta, *_ = np.linalg.lstsq(design, values[idx], rcond=None)
        resid = values[idx] - design @ beta
        sd = resid.std(axis=0)
        out[idx] = resid / np.where(sd > 0, sd, 1.0)
    return out


def load_haxby(*, preprocess: bool = True, include_rest: bool = False) -> xr.DataArray:
    """Load the shipped Haxby 2001 ventral-temporal data as labeled trials.

    Each trial is one fMRI volume (TR 2.5 s) within a category block; the ``stimulus``
    coordinate holds its category. Files are checked against the manifest's sha256.

    Parameters
    ----------
    preprocess : bool
        Remove a linear trend and z-score every voxel within each run (computed on all
        volumes of the run, rest included), as in the PyMVPA tutorial.
    include_rest : bool
        Keep the ``"rest"`` volumes between blocks.

    Returns
    -------
    bold : xarray.DataArray, dims ("trial", "voxel")
        864 trials (8 categories × 12 runs × 9 volumes) × 530 voxels, coords
        ``stimulus``, ``run`` (1-12), ``volume``, ``x``/``y``/``z`` (mm) and ``i``/``j``/``k``.

    Examples
    --------
    >>> from brainalign.datasets import load_haxby
    >>> bold = load_haxby()
    >>> bold.sizes["trial"], bold.sizes["voxel"]
    (864, 530)
    """
    import nibabel as nib

    check_type("preprocess", preprocess, (bool,), "a bool")
    check_type("include_rest", include_rest, (bool,), "a bool")
    manifest = get_manifest("haxby2001")
    hashes = verify("haxby2001")
    folder = manifest["path"]
    img = nib.load(folder / "bold.nii.gz")
    mask = np.asarray(nib.load(folder / "mask.nii.gz").dataobj).astype(bool)
    data = np.asarray(img.dataobj, dtype=np.float64)
    ijk = np.argwhere(mask)
    values = data[mask].T  # (volumes, voxels)
    attrs = np.loadtxt(folder / "attributes_literal.txt", dtype=str)
    labels, runs = attrs[:, 0], attrs[:, 1].astype(int) + 1
    if values.shape[0] != labels.size:
        raise ValueError(
            f"haxby2001: bold.nii.gz has {values.shape[0]} volumes but attributes_literal.txt "
            f"lists {labels.size}."
        )
    if preprocess:
        values = _detrend_zscore(values, runs)
    keep = np.ones(labels.size, bool) if include_rest else labels != "rest"
    xyz = nib.affines.apply_affine(img.affine, ijk)
    return xr.DataArray(
        values[keep],
        dims=("trial", "voxel"),
        coords={
            "trial": np.arange(int(keep.sum())),
            "stimulus": ("trial", labels[keep]),
            "run": ("trial", runs[keep]),
            "volume": ("trial", np.flatnonzero(keep)),
            "x": ("voxel", xyz[:, 0]),
            "y": ("voxel", xyz[:, 1]),
            "z": ("voxel", xyz[:, 2]),
            "i": ("voxel", ijk[:, 0]),
            "j": ("voxel", ijk[:, 1]),
            "k": ("voxel", ijk[:, 2]),
        },
        attrs={
            "modality": "fmri",
            "subject": str(manifest["subject"]),
            "tr": float(manifest["tr"]),
            "space": "native",
            "roi": "ventral_temporal",
            "source": "datasets/haxby2001",
            "dataset": "haxby2001",
            "sha256_bold": hashes["bold.nii.gz"],
            "stimulus_order": list(manifest["stimuli"]),
            "preprocess": "linear detrend + z-score per run" if preprocess else "none",
            "brainalign_version": __version__,
        },
        name="bold",
    )
