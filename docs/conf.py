"""Sphinx configuration of the brainalign documentation site.

Build with ``make docs`` (or ``sphinx-build -W --keep-going -b html docs docs/_build/html``).
The build is offline: no intersphinx inventories are fetched, and every gallery example runs
on the data and models that the package and its dependencies ship.
"""

import os
import warnings

import brainalign

project = "brainalign"
author = "brainalign developers"
copyright = "brainalign developers"
release = brainalign.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples"]
myst_heading_anchors = 3

# -- API reference (autosummary + numpydoc) ----------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

# -- Examples gallery (sphinx-gallery) ---------------------------------------------------
# Every example runs at build time (as tests/test_examples.py runs them); a failing example
# fails the build.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "plot_gallery": os.environ.get("BRAINALIGN_DOCS_PLOT", "True"),
    "abort_on_example_error": True,
    "download_all_examples": False,
    "write_computation_times": False,
    "min_reported_time": 1,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "subsection_order": [
        "examples/rsa",
        "examples/fmri",
        "examples/meeg",
        "examples/models",
        "examples/behavior",
        "examples/align",
        "examples/pipelines",
    ],
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"brainalign {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_show_sourcelink = False


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing methods (``set_*_request``)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    """Connect the member filter."""
    app.connect("autodoc-skip-member", _skip_member)
