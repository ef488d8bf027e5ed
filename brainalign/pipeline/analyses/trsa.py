"""tRSA: model-brain similarity after geo-topological transforms (Lin & Kriegeskorte).

One unit per brain source and model: the similarity of the brain RDM and each model entry's
RDM after the same geo-topological transform of both, at every (lower, upper) cell of the
threshold grid (:func:`brainalign.trsa.grid_compare`).
"""

from __future__ import annotations

import warnings
from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key
from brainalign.pipeline.analyses._common import refuse_meeg, require, stack_rdms

#: The tRSA guide (docs/trsa.md): pyproject's Documentation URL + the page.
GUIDE_URL = "https://brainalign.readthedocs.io/en/latest/trsa.html"
_GUIDE_TEXT = (
    "How to read these grids, which threshold family to use, and how the paper's claim "
    "(geo-topological summaries identify regions and layers more robustly than the RDM) "
    "fares on networks and fMRI here: the tRSA guide, " + GUIDE_URL + " (docs/trsa.md)."
)

_DESCRIPTION = (
    "Model-brain similarity after the same geo-topological transform of both RDMs, at every "
    "(lower, upper) threshold cell (Lin & Kriegeskorte)."
)


@register_analysis
class TRSA(Analysis):
    """Similarity over the tRSA threshold grid, per brain source (model entry × cell)."""

    name = "trsa"
    section = "tRSA"
    progress = "tRSA units"
    schema = {
        "transform": (str, False, "rgtm"),  # rgtm or rgdm (two-step geodesic)
        "method": (str, False, "spearman"),  # any rsa.compare method but neg_riem_dist
        "step": ((int, float), False, 0.05),  # threshold grid step (0.05: the paper's 229 cells)
    }

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Check for a known transform and method, a grid step in (0, 0.5], complete RDMs."""
        from brainalign.rsa import METHODS

        refuse_meeg(c, spec, "trsa")
        c.option(("analyses", "trsa", "transform"), params["transform"], ("rgtm", "rgdm"))
        trsa_methods = tuple(m for m in METHODS if m != "neg_riem_dist")  # see grid_compare
        c.option(("analyses", "trsa", "method"), params["method"], trsa_methods)
        if not 0 < params["step"] <= 0.5:
            c.fail(("analyses", "trsa", "step"), f"must be in (0, 0.5], got {params['step']}.")
        require(
            c, spec, "complete",
            "gives an incomplete RDM (unrated pairs); tRSA transforms need all pairs",
        )  # fmt: skip

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the brain RDM, the model RDMs and the tRSA settings."""
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        return content_key(
            {"brain": ctx.brain_key(unit.brain), "model": model_key, "trsa": ctx.params("trsa")}
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.Dataset:
        """Compute the grid of every entry of the model (threshold × model)."""
        from brainalign import trsa

        params = ctx.params("trsa")
        models = stack_rdms(ctx.model_rdms(unit.model, unit.brain))
        with warnings.catch_warnings():  # constant cells (binary model RDMs) are counted
            warnings.simplefilter("ignore", UserWarning)
            grid = trsa.grid_compare(
                ctx.brain(unit.brain)["rdm"],
                models,
                params["method"],
                transform=params["transform"],
                grid=trsa.threshold_grid(step=float(params["step"])),
            )
        return grid.to_dataset(name="similarity")

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: the grids stacked over model entries."""
        params = ctx.params("trsa")
        per_brain: dict[str, list[xr.DataArray]] = {}
        for unit, ds in results.items():
            per_brain.setdefault(unit.brain, []).append(ds["similarity"])
        grids = {}
        for bname, parts in per_brain.items():
            grid = xr.concat(parts, dim="model") if len(parts) > 1 else parts[0].copy()
            grid.attrs = dict(parts[0].attrs)
            grid.attrs["n_undefined_cells"] = int(grid.isnull().sum())
            grid.attrs.update(
                transform=params["transform"], method=params["method"], brain=bname,
                description=_DESCRIPTION,
            )  # fmt: skip
            grids[bname] = grid
        return {f"trsa/{b}": g.to_dataset(name="similarity") for b, g in grids.items()}, grids

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Threshold-grid maps (the paper's figure) and family means per model entry."""
        from brainalign import trsa

        params = ctx.params("trsa")
        report.add_text(_GUIDE_TEXT, "The tRSA guide", section=self.section)
        for bname, grid in state.items():
            means = trsa.family_mean(grid)
            rows = [
                {
                    "model": str(m),
                    **{str(f): float(means.sel(model=m, family=f)) for f in means.family.values},
                }
                for m in grid.model.values
            ]
            report.add_table(
                rows,
                f"tRSA: mean similarity per threshold family ({bname})",
                section=self.section,
                caption=f"{params['method']} similarity of brain and model "
                f"{params['transform'].upper()}s averaged over the cells of each of the paper's "
                "five threshold families. Cells where a transformed RDM is constant (a model "
                "with few distinct dissimilarities, such as a category model) are undefined and "
                f"left out: {grid.attrs['n_undefined_cells']} of {grid.size} here.",
            )
            best = str(grid.mean("threshold").idxmax("model").item())
            report.add_figure(
                trsa.plot_grid(grid.sel(model=best), title=f"{bname} vs {best}").figure,
                f"tRSA threshold map: {bname} vs {best}",
                section=self.section,
                caption="Each square is a (lower, upper) threshold cell: below lower a "
                "dissimilarity becomes 0, above upper 1, linear between. The top-left cell keeps "
                "the whole rank geometry; the diagonal gives binary graphs (pure topology).",
            )
