"""Searchlight RSA: a brain map of model-brain RDM similarity in spheres around each voxel.

One unit per pattern source and model: each model entry's RDM against the RDM of the
stimulus-mean patterns within ``radius`` mm of every voxel (:func:`brainalign.rsa.searchlight`).
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import (
    add_voxel_map,
    background,
    by_brain,
    finite_peak,
    refuse_meeg,
    require,
)


@register_analysis
class Searchlight(Analysis):
    """Searchlight maps of each brain source against each model entry's RDM."""

    name = "searchlight"
    section = "Searchlight"
    progress = "searchlight units"
    schema = {
        "radius": ((int, float), True, None),  # mm
        "metric": (str, False, "correlation"),
        "method": (str, False, "spearman"),
        # sources with several subjects: one map per subject, then a group map tested by
        # sign flips (max-t family-wise correction); 0: the map of the mean patterns only
        "n_permutations": (int, False, 1000),
    }
    limits = {"n_permutations": (0, 10_000_000, "sign flips of the group-level maps; 0: none")}

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Check for a positive radius, a known metric and method, pattern sources only."""
        from brainalign.rsa import SEARCHLIGHT_METHODS

        refuse_meeg(c, spec, "searchlight")
        if params["radius"] <= 0:
            c.fail(
                ("analyses", "searchlight", "radius"), f"must be > 0 (mm), got {params['radius']}."
            )
        c.option(
            ("analyses", "searchlight", "metric"),
            params["metric"],
            ("correlation", "cosine", "euclidean", "sqeuclidean"),
        )
        c.option(
            ("analyses", "searchlight", "method"),
            params["method"],
            SEARCHLIGHT_METHODS,  # every rsa.compare method
        )
        require(c, spec, "grid", "has no voxels for a searchlight")

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the source's data, the model RDMs and the searchlight settings."""
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        return content_key(
            {
                "data": ctx.data_key(unit.brain),
                "model": model_key,
                # the per-subject maps depend only on whether a group test is asked for;
                # the number of flips is applied when the maps are assembled
                "searchlight": {
                    **ctx.params("searchlight"),
                    "n_permutations": bool(ctx.params("searchlight")["n_permutations"]),
                },
            }
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """One map per model entry (per subject for a source with several subjects)."""
        from brainalign import rsa

        params = ctx.params("searchlight")
        data = ctx.data(unit.brain)
        subjects = _subjects(data) if params["n_permutations"] else None
        opts = dict(radius=float(params["radius"]), metric=params["metric"],
                    method=params["method"])  # fmt: skip
        maps = {}
        for entry, r in ctx.model_rdms(unit.model, unit.brain).items():
            if subjects is None:
                maps[entry] = rsa.searchlight(data.means, r, **opts)
            else:  # one map per subject, for the group-level test
                per = [rsa.searchlight(p, r, **opts) for p in subjects.values()]
                maps[entry] = xr.concat(per, dim="subject").assign_coords(subject=list(subjects))
        return entries_to_tree(maps, {"unit": unit.key})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: the maps stacked over model entries."""
        from brainalign import rsa

        params = ctx.params("searchlight")
        maps = by_brain({u: tree_to_entries(t) for u, t in results.items()})
        nodes, groups = {}, {}
        for bname, entries in maps.items():
            if "subject" in next(iter(entries.values())).dims:  # group level across subjects
                tests = {
                    e: rsa.sign_flip_test(m, n_permutations=params["n_permutations"],
                                          seed=ctx.seed)
                    for e, m in entries.items()
                }  # fmt: skip
                groups[bname] = tests
                entries = maps[bname] = {e: t["mean_score"] for e, t in tests.items()}
            stack = xr.concat(list(entries.values()), dim="model", join="exact").assign_coords(
                model=list(entries)
            )
            ds = stack.to_dataset(name="similarity")
            if bname in groups:
                tests = groups[bname]
                for var in ("t", "p_fwe"):
                    ds[var] = xr.concat([t[var] for t in tests.values()], dim="model",
                                        join="exact").assign_coords(model=list(tests))  # fmt: skip
                first = next(iter(tests.values()))
                ds.attrs.update(
                    n_subjects=first.attrs["n_subjects"],
                    n_permutations=first.attrs["n_permutations"],
                    test=first.attrs["test"],
                )
            nodes[f"searchlight/{bname}"] = ds
        return nodes, {"maps": maps, "groups": groups}

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Slices, and glass brain + surface for MNI sources.

        For a model with several layers, the glass brain and surface show its layer with the
        highest peak similarity (the slices show every layer).
        """
        params = ctx.params("searchlight")
        for bname, entries in state["maps"].items():
            bg = background(ctx, bname)
            caption = (
                f"Per voxel: {params['method']} correlation between the model RDM and the "
                f"{params['metric']} RDM of the voxels within {params['radius']} mm."
            )
            tests = state["groups"].get(bname)
            if tests is not None:
                first = next(iter(tests.values()))
                caption += (
                    f" Group mean over {first.attrs['n_subjects']} subjects' maps; tested "
                    "against 0 by a one-sample sign-flip permutation test "
                    f"({first.attrs['n_permutations']} flips; family-wise error controlled by "
                    "the maximum t over the map). Voxels with p_FWE < 0.05: "
                    + "; ".join(f"{e}: {int((t['p_fwe'] < 0.05).sum())}" for e, t in tests.items())
                    + "."
                )
            peaks = {e: finite_peak(v) for e, v in entries.items()}
            by_model: dict[str, list[str]] = {}
            for e in entries:  # "model" or "model:layer" entries, grouped by model
                by_model.setdefault(e.split(":", 1)[0], []).append(e)
            shown = {max(layers, key=peaks.__getitem__) for layers in by_model.values()}
            for entry, values in entries.items():
                n_layers = len(by_model[entry.split(":", 1)[0]])
                best = (
                    " The model's layer with the highest peak similarity." if n_layers > 1 else ""
                )
                add_voxel_map(
                    report,
                    values,
                    {**bg, "mni": bg["mni"] and entry in shown},
                    name=f"{bname} vs {entry}",
                    kind="Searchlight",
                    section=self.section,
                    caption=caption + (best if entry in shown else ""),
                )


def _subjects(data: Any) -> dict[str, xr.DataArray] | None:
    """Each subject's patterns on one voxel grid, when the source holds several subjects."""
    subjects = getattr(data, "subjects", None)
    if not subjects or len(subjects) < 2:
        return None
    voxels = [tuple(p.sizes.items()) for p in subjects.values()]
    return dict(subjects) if len({v[1:] for v in voxels}) == 1 else None
