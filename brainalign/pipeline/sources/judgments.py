"""Human similarity judgments (``dataset: word_similarity``): an RDM of rated word pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Checker, Source, register_source


@register_source
class WordSimilarity(Source):
    """SimLex-999 or WordSim-353 ratings as an (incomplete) RDM over words."""

    name = "word_similarity"
    data = "judgments"
    option_label = "a word_similarity option"
    uses_metric = False  # the ratings are the RDM
    complete = False  # unrated pairs are NaN
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


#: The columns each judgment format needs, in the loaders' names.
JUDGMENT_COLUMNS = {"pairwise": ("a", "b", "score"), "triplets": ("a", "b", "c", "odd")}


@register_source
class JudgmentsFile(Source):
    """A lab's own similarity judgments: pairwise ratings or triplet odd-one-out choices."""

    name = "judgments_file"
    data = "judgments"
    option_label = "a judgments_file option"
    uses_metric = False  # the judgments are the RDM
    complete = False  # pairs never rated (or never shown together) are NaN
    schema = {
        "path": (str, False, None),  # required: a csv/tsv (or a headerless tab-separated file)
        "format": (str, False, "pairwise"),  # pairwise (a, b, score) or triplets (a, b, c, odd)
        "columns": (dict, False, None),  # {a: item1, b: item2, score: rating} for a header
        "kind": (str, False, "similarity"),  # pairwise scores: similarity or dissimilarity
        "scale": (list, False, None),  # pairwise: rating scale [low, high]
        "stimuli": (list, False, None),  # the RDM's stimulus order (default: as they appear)
    }

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the file, the format, the column mapping and the scale."""
        import os
        from pathlib import Path

        if src["path"] is None:
            c.fail(
                (*path, "path"),
                "is required for dataset judgments_file: a csv/tsv of ratings or triplets.",
            )
        file = Path(src["path"]).expanduser()
        if not file.is_file():
            c.fail(
                (*path, "path"),
                f"file not found: {str(file)!r} (relative paths are from the working "
                f"directory {os.getcwd()!r}).",
            )
        c.option((*path, "format"), src["format"], tuple(JUDGMENT_COLUMNS))
        c.option((*path, "kind"), src["kind"], ("similarity", "dissimilarity"))
        needed = JUDGMENT_COLUMNS[src["format"]]
        if src["columns"] is not None:
            unknown = sorted(set(src["columns"]) - set(needed))
            missing = [k for k in needed if k not in src["columns"]]
            if unknown or missing:
                c.fail(
                    (*path, "columns"),
                    f"maps the {src['format']} fields {', '.join(needed)} to the file's "
                    f"column names; got {src['columns']!r}"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                    + (f" (missing: {', '.join(missing)})" if missing else "")
                    + ".",
                )
        if src["scale"] is not None and (
            src["format"] != "pairwise"
            or len(src["scale"]) != 2
            or not all(isinstance(v, (int, float)) for v in src["scale"])
        ):
            c.fail(
                (*path, "scale"),
                f"is a pair [low, high] of numbers for pairwise ratings, got {src['scale']!r}.",
            )

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings and the file's sha256."""
        from pathlib import Path

        from brainalign.datasets import file_sha256

        file = Path(src["path"]).expanduser()
        return {"src": src, "files": {file.name: file_sha256(file)}}

    def load(self, src: dict[str, Any]) -> xr.DataArray:
        """Read the judgments into an (incomplete) RDM."""
        from pathlib import Path

        from brainalign.loaders.judgments import load_pairwise, load_triplets

        file = Path(src["path"]).expanduser()
        data: Any = file
        if src["columns"] is not None:  # a table with a header: renamed to the loader's fields
            import pandas as pd

            sep = "," if file.suffix.lower() == ".csv" else "\t"
            table = pd.read_csv(file, sep=sep, dtype=str, keep_default_na=False)
            absent = [col for col in src["columns"].values() if col not in table.columns]
            if absent:
                raise ValueError(
                    f"{str(file)!r} has no column(s) {', '.join(map(repr, absent))}; its "
                    f"columns: {', '.join(map(repr, table.columns))}."
                )
            rename = {col: field for field, col in src["columns"].items()}
            data = table[list(rename)].rename(columns=rename)
            if src["format"] == "pairwise":
                score = pd.to_numeric(data["score"], errors="coerce")
                bad = data["score"][score.isna()]
                if len(bad):
                    raise ValueError(
                        f"{str(file)!r}: column {src['columns']['score']!r} holds values that "
                        f"are not numbers, e.g. {bad.iloc[0]!r} (row {bad.index[0] + 2} of the "
                        "file, counting the header as row 1)."
                    )
                data["score"] = score
        stimulus = src["stimuli"]
        if src["format"] == "triplets":
            rdm = load_triplets(data, stimulus=stimulus, source=str(file))
        else:
            scale = tuple(src["scale"]) if src["scale"] is not None else None
            rdm = load_pairwise(
                data, kind=src["kind"], scale=scale, stimulus=stimulus, source=str(file)
            )
        return rdm

    def brain(self, src: dict[str, Any], data: xr.DataArray, metric: str) -> dict[str, Any]:
        """Return the judgments as the RDM (no metric applies)."""
        sha = next(iter(self.payload(src)["files"].values()))
        n = (
            int(np.triu(np.asarray(data["n_ratings"].values), 1).sum())
            if "n_ratings" in data.coords
            else 0
        )
        return {"rdm": data, "attrs": {**data.attrs, "sha256_file": sha, "n_ratings_total": n}}

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Describe the file, its format and its sha256."""
        n = int(attrs.get("n_ratings_total", 0) or 0)
        what = "pairwise ratings" if src["format"] == "pairwise" else "triplet odd-one-out choices"
        return (
            f"{bname}: {what} from {src['path']} (sha256 {attrs.get('sha256_file')})"
            + (
                (f", {n} ratings" if src["format"] == "pairwise" else f", {n // 3} triplets")
                if n
                else ""
            )
            + ". Pairs never judged are left out of every comparison."
        )
