"""Reader for the shipped Haxby 2001 ventral-temporal slice."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import check_option, check_type
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

    from brainalign.loaders.fmri import voxel_coords

    check_type("preprocess", preprocess, (bool,), "a bool")
    check_type("include_rest", include_rest, (bool,), "a bool")
    manifest = get_manifest("haxby2001")
    hashes = verify("haxby2001", ["bold.nii.gz", "mask.nii.gz", "attributes_literal.txt"])
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
    return xr.DataArray(
        values[keep],
        dims=("trial", "voxel"),
        coords={
            "trial": np.arange(int(keep.sum())),
            "stimulus": ("trial", labels[keep]),
            "run": ("trial", runs[keep]),
            "volume": ("trial", np.flatnonzero(keep)),
            **voxel_coords(ijk, img.affine),
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


def load_haxby_openfmri(
    *,
    resolution: str = "1slice",
    mask: str | None = None,
    runs: list[int] | None = None,
    **glm: Any,
) -> xr.DataArray:
    """Estimate GLM response patterns from the shipped OpenFMRI copy of Haxby subject 1.

    Real events (the per-condition onset files) and real BOLD runs go through
    :func:`brainalign.loaders.fmri.load_bold`.

    Parameters
    ----------
    resolution : {"1slice", "25mm"}
        The ventral-temporal slice (40 × 20 × 1 voxels) or the whole brain at 25 mm.
    mask : str, optional
        For ``"1slice"``: the 530-voxel ventral-temporal mask (default). For ``"25mm"``: one
        of ``"brain"`` (default), ``"gray"``, ``"white"``, ``"vt"``.
    runs : list of int, optional
        Run numbers 1-12 (default all).
    **glm
        Passed to :func:`brainalign.loaders.fmri.load_bold` (``estimate``, ``output``,
        ``atlas`` ...).

    Returns
    -------
    patterns : xarray.DataArray, dims ("trial", "voxel")
        One row per category per run (``estimate="condition"``) with coords ``stimulus``
        and ``run``.

    Examples
    --------
    >>> from brainalign.datasets import load_haxby_openfmri
    >>> betas = load_haxby_openfmri(runs=[1, 2])
    >>> betas.sizes["trial"], betas.sizes["voxel"]
    (16, 530)
    """
    from brainalign.loaders.fmri import load_bold, read_openfmri_events

    check_option("resolution", resolution, ("1slice", "25mm"))
    manifest = get_manifest("haxby2001")
    root = manifest["path"]
    sub = root / "openfmri_sub001"
    if resolution == "1slice":
        check_option("mask", mask or "vt_slice", ("vt_slice",))
        mask_path = root / "mask.nii.gz"
    else:
        mask_name = mask or "brain"
        check_option("mask", mask_name, ("brain", "gray", "white", "vt"))
        mask_path = sub / "sub001" / "masks" / "25mm" / f"{mask_name}.nii.gz"
    runs = list(range(1, 13)) if runs is None else list(runs)
    for r in runs:
        check_option("runs", r, list(range(1, 13)))
    bold = [
        sub / "sub001" / "BOLD" / f"task001_run{r:03d}" / f"bold_{resolution}.nii.gz" for r in runs
    ]
    key = sub / "models" / "model001" / "condition_key.txt"
    events = [
        read_openfmri_events(
            sub / "sub001" / "model" / "model001" / "onsets" / f"task001_run{r:03d}", key
        )
        for r in runs
    ]
    verify("haxby2001", [str(p.relative_to(root)) for p in bold])
    da = load_bold(bold, events, mask=mask_path, run_labels=runs, subject="1", **glm)
    da.attrs["dataset"] = "haxby2001"
    da.attrs["roi"] = "ventral_temporal" if resolution == "1slice" else (mask or "brain")
    return da
