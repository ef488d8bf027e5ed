"""Reader for the shipped whole-brain (25 mm) copy of Haxby 2001 subject 1: block patterns."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import xarray as xr

from brainalign._checks import check_option, check_type
from brainalign._version import __version__
from brainalign.datasets._haxby import _detrend_zscore
from brainalign.datasets._registry import get_manifest, verify

WHOLEBRAIN_MASKS = ("brain", "gray", "white")
"""The 25 mm masks a whole-brain pattern can be read in (``vt`` holds a single voxel)."""

_SUB = "openfmri_sub001"
_N_RUNS = 12


def wholebrain_files(mask: str = "brain", runs: list[int] | None = None) -> list[str]:
    """List the shipped files :func:`load_haxby_wholebrain` reads (paths as in the manifest).

    Parameters
    ----------
    mask : {"brain", "gray", "white"}
        The 25 mm mask.
    runs : list of int, optional
        Run numbers 1-12 (default all).

    Returns
    -------
    files : list of str
        The BOLD runs, the mask, the condition key and every onset file of those runs.
    """
    return _files(get_manifest("haxby2001"), mask, runs)


def _files(manifest: dict, mask: str, runs: list[int] | None) -> list[str]:
    check_option("mask", mask, WHOLEBRAIN_MASKS)
    runs = list(range(1, _N_RUNS + 1)) if runs is None else list(runs)
    for r in runs:
        check_option("runs", r, list(range(1, _N_RUNS + 1)))
    listed = manifest["files"]
    files = [
        f"{_SUB}/sub001/masks/25mm/{mask}.nii.gz",
        f"{_SUB}/models/model001/condition_key.txt",
    ]
    for r in runs:
        files.append(f"{_SUB}/sub001/BOLD/task001_run{r:03d}/bold_25mm.nii.gz")
        onsets = f"{_SUB}/sub001/model/model001/onsets/task001_run{r:03d}/"
        files += sorted(f for f in listed if f.startswith(onsets))
    return files


def wholebrain_mask_path(mask: str = "brain") -> Path:
    """Return the path of a shipped 25 mm mask (the grid of the whole-brain maps).

    Parameters
    ----------
    mask : {"brain", "gray", "white"}
        The mask.

    Returns
    -------
    path : pathlib.Path
        The NIfTI file.
    """
    check_option("mask", mask, WHOLEBRAIN_MASKS)
    return (
        get_manifest("haxby2001")["path"] / _SUB / "sub001" / "masks" / "25mm" / f"{mask}.nii.gz"
    )


def load_haxby_wholebrain(
    *, mask: str = "brain", preprocess: bool = True, runs: list[int] | None = None
) -> xr.DataArray:
    """Load whole-brain (25 mm) category patterns of Haxby 2001 subject 1, one per block.

    Each pattern is the mean of the volumes acquired during one category block of one run
    (9 volumes of 2.5 s; a volume belongs to a block when its acquisition time ``n * TR``
    lies in ``[onset, onset + duration)`` of the run's OpenFMRI onset files, which gives the
    same labels as the PyMVPA attributes of the ventral-temporal slice). The grid is
    6 × 10 × 10 voxels of 25 mm; its affine places the brain roughly where MNI152 space
    does (the brain mask overlaps nilearn's MNI152 brain mask with a Dice of about 0.8),
    so maps can be drawn, approximately, on MNI glass brains and surfaces. Files are
    checked against the manifest's sha256.

    Parameters
    ----------
    mask : {"brain", "gray", "white"}
        The 25 mm mask of the voxels to keep (129, 28 or 34 voxels).
    preprocess : bool
        Remove a linear trend and z-score every voxel within each run (over all of the run's
        121 volumes, rest included) before averaging, as for :func:`load_haxby`.
    runs : list of int, optional
        Run numbers 1-12 (default all).

    Returns
    -------
    patterns : xarray.DataArray, dims ("trial", "voxel")
        One row per run × category (96 for all runs), coords ``stimulus``, ``run`` and
        ``n_volumes``; voxel coords ``x``/``y``/``z`` (mm) and ``i``/``j``/``k``. Attrs
        ``space`` (approximate MNI152), ``voxel_size_mm`` and ``sha256_bold`` (a digest of
        the sha256 of every file read).

    Raises
    ------
    ValueError
        For an unknown mask or run, or a file whose hash differs from the manifest's.

    Examples
    --------
    >>> from brainalign.datasets import load_haxby_wholebrain
    >>> patterns = load_haxby_wholebrain(runs=[1, 2])
    >>> patterns.sizes["trial"], patterns.sizes["voxel"]
    (16, 129)
    """
    import nibabel as nib

    from brainalign.loaders.fmri import read_openfmri_events, voxel_coords

    check_type("preprocess", preprocess, (bool,), "a bool")
    manifest = get_manifest("haxby2001")
    files = _files(manifest, mask, runs)
    runs = list(range(1, _N_RUNS + 1)) if runs is None else list(runs)
    hashes = verify("haxby2001", files)
    sub = manifest["path"] / _SUB
    mask_img = nib.load(sub / "sub001" / "masks" / "25mm" / f"{mask}.nii.gz")
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    tr = float(manifest["tr"])
    rows, stimuli, run_of, counts = [], [], [], []
    for r in runs:
        img = nib.load(sub / "sub001" / "BOLD" / f"task001_run{r:03d}" / "bold_25mm.nii.gz")
        if img.shape[:3] != mask_img.shape or not np.allclose(img.affine, mask_img.affine):
            raise ValueError(
                f"haxby2001: run {r}'s 25 mm BOLD grid {img.shape[:3]} differs from the "
                f"{mask} mask's {mask_img.shape}."
            )
        data = np.asarray(img.dataobj, dtype=np.float64)
        values = data[ijk[:, 0], ijk[:, 1], ijk[:, 2]].T  # (volumes, voxels)
        if preprocess:
            values = _detrend_zscore(values, np.zeros(values.shape[0], int))
        events = read_openfmri_events(
            sub / "sub001" / "model" / "model001" / "onsets" / f"task001_run{r:03d}",
            sub / "models" / "model001" / "condition_key.txt",
        )
        t = np.arange(values.shape[0]) * tr
        for onset, duration, category in zip(
            events["onset"], events["duration"], events["trial_type"], strict=True
        ):
            inside = (t >= onset) & (t < onset + duration)
            rows.append(values[inside].mean(axis=0))
            stimuli.append(str(category))
            run_of.append(r)
            counts.append(int(inside.sum()))
    digest = hashlib.sha256("".join(f"{f}:{hashes[f]}\n" for f in files).encode()).hexdigest()
    return xr.DataArray(
        np.vstack(rows),
        dims=("trial", "voxel"),
        coords={
            "trial": np.arange(len(rows)),
            "stimulus": ("trial", np.array(stimuli)),
            "run": ("trial", np.array(run_of)),
            "n_volumes": ("trial", np.array(counts)),
            **voxel_coords(ijk, mask_img.affine),
        },
        attrs={
            "modality": "fmri",
            "subject": str(manifest["subject"]),
            "tr": tr,
            "space": "approximately MNI152 (native scan, 25 mm grid)",
            "voxel_size_mm": 25.0,
            "roi": f"whole brain ({mask} mask, 25 mm)",
            "source": f"datasets/haxby2001/{_SUB}",
            "dataset": "haxby2001",
            "sha256_bold": digest,
            "stimulus_order": list(manifest["stimuli"]),
            "patterns": "mean of each category block's volumes, per run",
            "preprocess": "linear detrend + z-score per run" if preprocess else "none",
            "brainalign_version": __version__,
        },
        name="bold",
    )


def mni_overlap(mask: str = "brain") -> float:
    """Measure how well the 25 mm grid matches MNI space: Dice of the brain masks.

    Every 1 mm voxel of nilearn's MNI152 brain mask (shipped with nilearn) is assigned to
    the 25 mm voxel holding its centre; a 25 mm voxel counts as MNI brain when more than
    half of its volume is. That mask is compared with the shipped one.

    Parameters
    ----------
    mask : {"brain", "gray", "white"}
        The shipped 25 mm mask (``"brain"`` is the meaningful comparison).

    Returns
    -------
    dice : float
        ``2 |A ∩ B| / (|A| + |B|)``, in [0, 1]; about 0.82 for the brain mask.
    """
    import nibabel as nib
    from nilearn import datasets

    ours = nib.load(wholebrain_mask_path(mask))
    mni = datasets.load_mni152_brain_mask()
    to_ours = np.linalg.inv(ours.affine) @ mni.affine  # MNI voxel → 25 mm voxel indices
    ijk = np.argwhere(np.asarray(mni.dataobj) > 0) @ to_ours[:3, :3].T + to_ours[:3, 3]
    ijk = np.floor(ijk + 0.5).astype(int)  # centres on a boundary go to the upper voxel
    shape = np.asarray(ours.shape[:3])
    inside = np.all((ijk >= 0) & (ijk < shape), axis=1)
    counts = np.bincount(np.ravel_multi_index(ijk[inside].T, shape), minlength=shape.prod())
    voxel_mm3 = abs(np.linalg.det(ours.affine[:3, :3])) / abs(np.linalg.det(mni.affine[:3, :3]))
    a = counts.reshape(shape) > 0.5 * voxel_mm3
    b = np.asarray(ours.dataobj) > 0
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))
