"""Voxelwise encoding models: each model entry's features predicting each voxel's trials.

One unit per pattern source and model: every trial is described by the model's features of
its stimulus; one ridge per voxel, its penalty chosen by cross-validation over runs (or K
folds); optionally a stimulus-permutation test within runs with max-statistic FWE p-values.
"""

from __future__ import annotations

import warnings
from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import (
    add_voxel_map,
    background,
    by_brain,
    refuse_meeg,
    require,
)


@register_analysis
class Encoding(Analysis):
    """Cross-validated voxelwise ridge encoding models."""

    name = "encoding"
    section = "Encoding"
    progress = "encoding units"
    schema = {
        "alphas": (list, False, None),  # default: brainalign.encoding.DEFAULT_ALPHAS
        "cv": ((str, int), False, "runs"),  # "runs" (leave one run out) or K for K-fold
        "criterion": (str, False, "neg_mse"),
        "scoring": (str, False, "r2"),
        "n_permutations": (int, False, 0),  # stimulus permutations within runs; 0: none
    }
    limits = {
        "cv": (2, 10_000, "folds of K-fold cross-validation"),
        "n_permutations": (0, 10_000_000, "stimulus permutations; 0: none"),
    }

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Positive penalties, a known CV scheme, criterion and scoring; pattern sources."""
        from brainalign.encoding import CRITERIA

        refuse_meeg(c, spec, "encoding")
        where = ("analyses", "encoding")
        alphas = params["alphas"]
        if alphas is not None and (
            not alphas
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in alphas)
            or min(alphas) <= 0
        ):
            c.fail((*where, "alphas"), f"must be a list of positive numbers, got {alphas!r}.")
        cv = params["cv"]
        if isinstance(cv, str) and cv != "runs":
            c.fail(
                (*where, "cv"), f"must be 'runs' (leave one run out) or an int >= 2, got {cv!r}."
            )
        if isinstance(cv, int) and cv < 2:
            c.fail((*where, "cv"), f"must be 'runs' (leave one run out) or an int >= 2, got {cv}.")
        c.option((*where, "criterion"), params["criterion"], CRITERIA)
        c.option((*where, "scoring"), params["scoring"], CRITERIA)
        if params["n_permutations"] < 0:
            c.fail((*where, "n_permutations"), f"must be >= 0, got {params['n_permutations']}.")
        require(c, spec, "runs", "has no responses to predict for an encoding model")
        from brainalign.pipeline._analysis import get_model_kind

        for mname, m in spec["models"].items():
            if not get_model_kind(m["kind"]).has_features:
                c.fail(
                    ("models", mname, "kind"),
                    f"{m['kind']!r} gives an RDM, not features, so it cannot be an encoding "
                    "model's predictors; use a model with features or drop it from this spec.",
                )

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the source's data, the model's settings and weights, the settings (and seed).

        Not the RDM settings: an encoding model never sees an RDM. The seed only with
        permutations, the only random draws.
        """
        params = ctx.params("encoding")
        payload = {
            "data": ctx.data_key(unit.brain),
            "model": ctx.model_content(unit.model),
            "encoding": params,
        }
        if params["n_permutations"]:
            payload["seed"] = ctx.seed
        return content_key(payload)

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """One ridge per voxel and model entry, penalties by cross-validation."""
        from sklearn.model_selection import LeaveOneGroupOut

        from brainalign import encoding

        params = ctx.params("encoding")
        trials = ctx.data(unit.brain).trials
        ids = [str(s) for s in dict.fromkeys(trials.stimulus.values)]
        runs = trials.run.values
        alphas = params["alphas"] or list(encoding.DEFAULT_ALPHAS)
        cv = LeaveOneGroupOut() if params["cv"] == "runs" else int(params["cv"])
        common = dict(cv=cv, groups=runs, criterion=params["criterion"], scoring=params["scoring"])
        out = {}
        for entry, feats in ctx.features(unit.model, ids).items():
            x = feats.sel(stimulus=trials.stimulus.values).values
            if params["n_permutations"]:
                # Trial patterns, shuffled within runs (kind explicit: the default would be
                # circular shifts, as for a time series). The report uses the max-statistic
                # FWE p-values, so the Benjamini-Hochberg resolution warning is not shown.
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", r"With n_permutations=\d+ the smallest p-value", UserWarning
                    )
                    ds = encoding.permutation_test(
                        x, trials, alphas, n_permutations=params["n_permutations"],
                        seed=ctx.seed, runs=runs, kind="stimulus", **common,
                    )  # fmt: skip
                ds = ds.drop_vars("null")
            else:
                ds = encoding.ridge_cv(x, trials, alphas, **common)[["cv_score", "best_alpha"]]
            ds.attrs.update(
                model=unit.model,
                entry=entry,
                n_features=int(x.shape[1]),
                scoring=params["scoring"],
            )
            out[entry] = ds
        return entries_to_tree(out, {"unit": unit.key})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: the scores stacked over model entries."""
        enc = by_brain({u: tree_to_entries(t) for u, t in results.items()})
        stacks = {b: _stack(entries) for b, entries in enc.items()}
        return {f"encoding/{b}": ds for b, ds in stacks.items()}, stacks

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Model × brain score matrix, per-entry table and the best entry's voxel map."""
        _section(report, ctx, state)


def _stack(entries: dict[str, xr.Dataset]) -> xr.Dataset:
    """Stack one brain source's encoding results over model entries."""
    names = list(entries)
    keep = [v for v in ("cv_score", "best_alpha", "p_value", "p_fwe", "p_fdr") if v in
            entries[names[0]]]  # fmt: skip
    ds = xr.concat([entries[e][keep] for e in names], dim="model").assign_coords(model=names)
    ds.attrs = {k: v for k, v in entries[names[0]].attrs.items() if k in ("scoring",)}
    ds.attrs["description"] = (
        "Voxelwise ridge encoding models: cv_score is the cross-validated score of each "
        "model entry's features predicting each voxel's trial responses."
    )
    return ds


def _section(report: Any, ctx: Any, stacks: dict[str, xr.Dataset]) -> None:
    """Model × brain score matrix, per-entry table and the best entry's voxel map."""
    from brainalign.viz import plot_score_matrix

    params = ctx.params("encoding")
    scoring = params["scoring"]
    models = list(next(iter(stacks.values())).model.values)
    mean = xr.DataArray(
        [[float(stacks[b].cv_score.sel(model=m).mean()) for b in stacks] for m in models],
        dims=("model", "brain"),
        coords={"model": models, "brain": list(stacks)},
    )
    has_p = all("p_fwe" in ds for ds in stacks.values())
    sig = None
    if has_p:
        sig = xr.DataArray(
            [[bool((stacks[b].p_fwe.sel(model=m) < 0.05).any()) for b in stacks] for m in models],
            dims=mean.dims,
            coords=mean.coords,
        )
    cv_text = "leave-one-run-out" if params["cv"] == "runs" else f"{params['cv']}-fold"
    report.add_figure(
        plot_score_matrix(mean, significant=sig, label=f"mean voxel {scoring}"),
        "Encoding: model × brain",
        section="Encoding",
        caption=f"Mean over voxels of the {cv_text} cross-validated {scoring} of a ridge model "
        "per voxel (penalty chosen per voxel by "
        f"{params['criterion']}) from each model entry's features of the trial's stimulus."
        + (
            f" *: at least one voxel significant at FWE 0.05 (max-statistic over "
            f"{params['n_permutations']} stimulus permutations within runs)."
            if has_p
            else ""
        ),
    )
    rows = []
    for b, ds in stacks.items():
        for m in models:
            s = ds.cv_score.sel(model=m)
            row = {
                "brain": b,
                "model": m,
                f"mean {scoring}": float(s.mean()),
                f"max {scoring}": float(s.max()),
                "median alpha": float(ds.best_alpha.sel(model=m).median()),
            }
            if has_p:
                row["voxels p_FWE < 0.05"] = int((ds.p_fwe.sel(model=m) < 0.05).sum())
            rows.append(row)
    report.add_table(rows, "Encoding scores per model entry", section="Encoding")
    for b, ds in stacks.items():
        best = str(mean.sel(brain=b).idxmax("model").item())
        add_voxel_map(
            report,
            ds.cv_score.sel(model=best).drop_vars("model"),
            background(ctx, b),
            name=f"{b} from {best}",
            kind="Encoding map",
            section="Encoding",
            caption=f"Per voxel: {cv_text} {scoring} of the best model entry.",
        )
