"""Shipped real datasets: a registry of manifests with sha256 checks, and their readers."""

from brainalign.datasets._haxby import HAXBY_CATEGORIES, load_haxby
from brainalign.datasets._registry import data_dir, get_manifest, list_datasets, verify

__all__ = [
    "HAXBY_CATEGORIES",
    "data_dir",
    "get_manifest",
    "list_datasets",
    "load_haxby",
    "verify",
]
