"""The Haxby 2001 fMRI source (``dataset: haxby2001``): trials of voxel patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Checker, Source, register_source

HAXBY_VOLUMES = ("vt_slice", "whole_brain_25mm")
"""haxby2001 volumes: the native ventral-temporal slice, or the whole brain at 25 mm."""
MNI_VOLUMES = ("whole_brain_25mm",)
"""Volumes whose grid is (approximately) in MNI space: maps also go on glass brains/surfaces."""


@dataclass
class Patterns:
    """Loaded pattern data: the trials and their stimulus means (in the dataset's order)."""

    trials: xr.DataArray
    means: xr.DataArray


def trials_rdm(trials: xr.DataArray, metric: str, ids: list[str] | None = None) -> xr.DataArray:
    """Compute the RDM of a set of trials, in the order of ``ids`` when given.

    Cross-validated over the trials' runs for a CV metric, else the RDM of their stimulus means.

    Parameters
    ----------
    trials : xarray.DataArray, dims ("trial", "unit")
        Trials with ``stimulus`` (and for a CV metric ``run``) coords.
    metric : str
        An RDM metric of :func:`brainalign.rsa.rdm`.
    ids : list of str, optional
        The stimulus order of the result.

    Returns
    -------
    rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
    """
    from brainalign import rsa
    from brainalign.data import average_trials

    if metric in rsa.CV_METRICS:
        r = rsa.rdm(trials, metric)
    else:
        r = rsa.rdm(average_trials(trials), metric)
    return r if ids is None else r.sel(stimulus_a=ids, stimulus_b=ids)


def run_splits(trials: xr.DataArray, ids: list[str], metric: str) -> xr.DataArray | None:
    """RDMs of independent pairs of runs (1-2, 3-4, ...): pseudo-subjects for a noise ceiling.

    With a cross-validated metric each pair's RDM is cross-validated over its two runs;
    otherwise it is the RDM of the pair's stimulus means. None with fewer than 4 runs.

    Parameters
    ----------
    trials : xarray.DataArray
        Trials with ``stimulus`` and ``run`` coords.
    ids : list of str
        The stimulus order.
    metric : str
        The RDM metric.

    Returns
    -------
    splits : xarray.DataArray, dims ("split", "stimulus_a", "stimulus_b"), or None
    """
    if "run" not in trials.coords:
        return None
    runs = np.unique(trials["run"].values)
    if runs.size < 4:
        return None
    out = []
    for k in range(0, runs.size - 1, 2):  # a handful of run pairs, each one batched RDM
        part = trials.isel(trial=np.flatnonzero(np.isin(trials["run"].values, runs[k : k + 2])))
        r = trials_rdm(part, metric, ids)
        out.append(r.drop_vars([c for c in r.coords if c not in ("stimulus_a", "stimulus_b")]))
    labels = [f"runs {runs[k]}-{runs[k + 1]}" for k in range(0, runs.size - 1, 2)]
    return xr.concat(out, dim="split").assign_coords(split=labels)


@register_source
class Haxby2001(Source):
    """Haxby et al. 2001, subject 1: the ventral-temporal slice or the whole brain at 25 mm."""

    name = "haxby2001"
    data = "patterns"
    runs = True
    grid = True
    option_label = "a haxby2001 option"
    schema = {
        "preprocess": (bool, False, True),  # detrend + z-score per run
        "volume": (str, False, "vt_slice"),  # vt_slice or whole_brain_25mm
        "mask": (str, False, None),  # whole_brain_25mm: brain (default), gray or white
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check ``volume`` and ``mask``."""
        from brainalign.datasets import WHOLEBRAIN_MASKS

        c.option((*path, "volume"), src["volume"], HAXBY_VOLUMES)
        if src["mask"] is not None:
            if src["volume"] != "whole_brain_25mm":
                c.fail(
                    (*path, "mask"),
                    f"applies to volume 'whole_brain_25mm' only (the vt_slice has its own "
                    f"ventral-temporal mask); got mask {src['mask']!r} with volume "
                    f"{src['volume']!r}.",
                )
            c.option((*path, "mask"), src["mask"], WHOLEBRAIN_MASKS)

    def files(self, src: dict[str, Any]) -> list[str]:
        """Return the dataset files the source reads."""
        if src.get("volume") == "whole_brain_25mm":
            from brainalign.datasets import wholebrain_files

            return wholebrain_files(src["mask"] or "brain")
        return ["bold.nii.gz", "mask.nii.gz", "attributes_literal.txt"]

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the manifest sha256 of every file read."""
        from brainalign.datasets import get_manifest

        files = get_manifest(src["dataset"])["files"]
        return {"src": src, "files": {f: files[f] for f in self.files(src)}}

    def load(self, src: dict[str, Any]) -> Patterns:
        """Load the trials and their stimulus means, in the dataset's order."""
        from brainalign.data import average_trials
        from brainalign.datasets import load_haxby, load_haxby_wholebrain

        if src.get("volume") == "whole_brain_25mm":  # one pattern per category block and run
            trials = load_haxby_wholebrain(
                mask=src["mask"] or "brain", preprocess=src["preprocess"]
            )
        else:
            trials = load_haxby(preprocess=src["preprocess"])
        avg = average_trials(trials)
        order = trials.attrs.get("stimulus_order")
        if order is not None:  # the dataset's canonical order, for readable figures
            avg = avg.sel(stimulus=[s for s in order if s in set(avg.stimulus.values)])
        return Patterns(trials, avg)

    def brain(self, src: dict[str, Any], data: Patterns, metric: str) -> dict[str, Any]:
        """Return the RDM of the stimulus means (cross-validated over runs for a CV metric)."""
        ids = [str(v) for v in data.means.stimulus.values]
        return {"rdm": trials_rdm(data.trials, metric, ids), "attrs": dict(data.trials.attrs)}

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Return the dataset's title, citation and licence."""
        from brainalign.datasets import get_manifest

        man = get_manifest(src["dataset"])
        title = man["title"]
        if src.get("volume") == "whole_brain_25mm":
            title += (
                f"; this source uses the whole-brain copy of the same subject (OpenFMRI tree, "
                f"25 mm voxels, {src['mask'] or 'brain'} mask), not the slice"
            )
        return f"{bname}: {title}. {man['citation'].strip()} Licence: {man['licence'].strip()}"

    def background(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the grid, slice background and space of the source's voxel maps.

        Returns ``like`` (the mask: the maps' grid), ``bg`` (the mean functional image),
        ``mni`` (True when the volume is approximately in MNI space, so maps also go on a
        glass brain and the fsaverage5 surface) and ``note`` (a caption sentence on the space).
        """
        from nilearn import image

        from brainalign.datasets import get_manifest

        folder = get_manifest("haxby2001")["path"]
        if src.get("volume") not in MNI_VOLUMES:
            bold = image.mean_img(str(folder / "bold.nii.gz"), copy_header=True)
            return {"like": folder / "mask.nii.gz", "bg": bold, "mni": False, "note": ""}
        from brainalign.datasets import mni_overlap, wholebrain_files, wholebrain_mask_path

        mask = src["mask"] or "brain"
        runs = [str(folder / f) for f in wholebrain_files(mask) if f.endswith("bold_25mm.nii.gz")]
        note = (
            f"Whole brain at 25 mm voxels ({mask} mask). The scan's grid is only approximately "
            f"aligned with MNI152 (Dice {mni_overlap():.2f} between its brain mask and "
            "nilearn's MNI152 brain mask), so the glass brain and the fsaverage5 projection "
            "are approximate: one 25 mm voxel spans several gyri."
        )
        bg = image.mean_img(runs, copy_header=True)
        return {"like": wholebrain_mask_path(mask), "bg": bg, "mni": True, "note": note}
