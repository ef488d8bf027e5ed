"""Shipped real datasets and manifests of public ones: sha256 checks, readers of local copies."""

from brainalign.datasets._bids import find_bids_runs, load_bids_fmri
from brainalign.datasets._haxby import HAXBY_CATEGORIES, load_haxby, load_haxby_openfmri
from brainalign.datasets._haxby_wholebrain import (
    WHOLEBRAIN_MASKS,
    load_haxby_wholebrain,
    mni_overlap,
    wholebrain_files,
    wholebrain_mask_path,
)
from brainalign.datasets._registry import (
    data_dir,
    file_sha256,
    get_manifest,
    list_datasets,
    local_root,
    verify,
)

__all__ = [
    "HAXBY_CATEGORIES",
    "WHOLEBRAIN_MASKS",
    "data_dir",
    "file_sha256",
    "find_bids_runs",
    "get_manifest",
    "list_datasets",
    "load_bids_fmri",
    "load_haxby",
    "load_haxby_openfmri",
    "load_haxby_wholebrain",
    "local_root",
    "mni_overlap",
    "verify",
    "wholebrain_files",
    "wholebrain_mask_path",
]
