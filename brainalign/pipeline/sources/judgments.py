"""Human similarity judgments (``dataset: word_similarity``): an RDM of rated word pairs."""

from __future__ import annotations

from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import Checker, Source, register_source


@register_source
class WordSimilarity(Source):
    """SimLex-999 or WordSim-353 ratings as an (incomplete) RDM over words."""

    name = "word_similarity"
    data = "judgments"
    option_label = "a word_similarity option"
    uses_metric = False  # the ratings are the RDM
    schema = {
        "file": (str, False, None),  # simlex999.txt or wordsim353.tsv
        "scale": (list, False, None),  # rating scale [low, high]
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """``file`` is one of the dataset's files; ``scale`` two numbers."""
        from brainalign.datasets import get_manifest

        files = list(get_manifest("word_similarity")["files"])
        if src["file"] is None:
            c.fail(
                (*path, "file"),
                f"is required for dataset word_similarity; one of {', '.join(files)}.",
            )
        c.option((*path, "file"), src["file"], files)
        if src["scale"] is not None and (
            len(src["scale"]) != 2 or not all(isinstance(v, (int, float)) for v in src["scale"])
        ):
            c.fail(
                (*path, "scale"),
                f"must be a list [low, high] of two numbers, got {src['scale']!r}.",
            )

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the manifest sha256 of the ratings file."""
        from brainalign.datasets import get_manifest

        files = get_manifest(src["dataset"])["files"]
        return {"src": src, "files": {src["file"]: files[src["file"]]}}

    def load(self, src: dict[str, Any]) -> xr.DataArray:
        """Read the ratings as an RDM (checking the file's sha256)."""
        from brainalign.datasets import get_manifest, verify
        from brainalign.loaders.judgments import load_pairwise

        path = get_manifest("word_similarity")["path"] / src["file"]
        scale = tuple(src["scale"]) if src["scale"] is not None else None
        verify("word_similarity", [src["file"]])  # the file is the one the manifest lists
        return load_pairwise(path, scale=scale, source=f"datasets/word_similarity/{src['file']}")

    def brain(self, src: dict[str, Any], data: xr.DataArray, metric: str) -> dict[str, Any]:
        """Return the ratings as the RDM (no metric applies)."""
        sha = self.payload(src)["files"][src["file"]]  # verified by load()
        return {"rdm": data, "attrs": {**data.attrs, "sha256_file": sha}}

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Return the dataset's title, citation and licence."""
        from brainalign.datasets import get_manifest

        man = get_manifest(src["dataset"])
        return (
            f"{bname}: {man['title']}. {man['citation'].strip()} Licence: {man['licence'].strip()}"
        )
