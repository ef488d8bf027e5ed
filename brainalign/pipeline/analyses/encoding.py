"""Voxelwise encoding models: each model entry's features predicting each voxel's trials.

One unit per pattern source and model: every trial is described by the model's features of
its stimulus; one ridge per voxel, its penalty chosen by cross-validation over runs (or K
folds); optionally a stimulus-permutation test within runs with max-statistic FWE p-values.

A source with several subjects (``subject_runs``, e.g. ``fmri_bids``) gets one map per
subject, then a group map: the subjects' mean score per voxel, tested against 0 by sign
flips of whole subject maps with the maximum t over the map (family-wise error,
:func:`brainalign.rsa.sign_flip_test`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import (
    add_voxel_map,
    background,
    by_brain,
    refuse_meeg,
    require_features,
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
        # sources with several subjects: sign flips of the subjects' maps; 0: no group test
        "n_flips": (int, False, 1000),
    }
    limits = {
        "cv": (2, 10_000, "folds of K-fold cross-validation"),
        "n_permutations": (0, 10_000_000, "stimulus permutations; 0: none"),
        "n_flips": (0, 10_000_000, "sign flips of the group-level maps; 0: none"),
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
        from brainalign.pipeline._analysis import get_source

        for bname, src in spec["brain"].items():
            source = get_source(src["dataset"])
            if not (source.runs or source.subject_runs):
                c.fail(
                    ("brain", bname, "dataset"),
                    f"{src['dataset']!r} has no responses (trials with runs) to predict for an "
                    "encoding model; use a source of trial patterns (haxby2001, fmri_bids) or "
                    "drop the analysis.",
                )

        require_features(c, spec, "it cannot be an encoding model's predictors")

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the source's data, the model's settings and weights, the settings (and seed).

        Not the RDM settings: an encoding model never sees an RDM. The seed only with
        permutations, the only random draws.
        """
        params = ctx.params("encoding")
        payload = {
            "data": ctx.data_key(unit.brain),
            "model": ctx.model_content(unit.model),
            # the sign flips of a group map are drawn when the maps are assembled
            "encoding": {k: v for k, v in params.items() if k != "n_flips"},
        }
        if params["n_permutations"]:
            payload["seed"] = ctx.seed
        return content_key(payload)

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """One ridge per voxel and model entry (per subject), penalties by cross-validation."""
        data = ctx.data(unit.brain)
        subjects = getattr(data, "subject_trials", None) or {}
        if len(subjects) < 2:
            trials = next(iter(subjects.values())) if subjects else data.trials
            out = _fit(ctx, unit, trials)
        else:
            _check_same_voxels(unit.brain, subjects)
            # the group test (sign flips across subjects) replaces per-subject permutations
            fits = {name: _fit(ctx, unit, t, permute=False) for name, t in subjects.items()}
            out = {
                entry: xr.concat([f[entry] for f in fits.values()], dim="subject",
                                 join="exact", combine_attrs="override")
                .assign_coords(subject=list(fits))
                for entry in next(iter(fits.values()))
            }  # fmt: skip
        return entries_to_tree(out, {"unit": unit.key})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: the scores stacked over model entries (group maps tested)."""
        n_flips = ctx.params("encoding")["n_flips"]
        enc = by_brain({u: tree_to_entries(t) for u, t in results.items()})
        stacks = {b: _stack(entries, n_flips, ctx.seed) for b, entries in enc.items()}
        return {f"encoding/{b}": ds for b, ds in stacks.items()}, stacks

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Model × brain score matrix, per-entry table and the best entry's voxel map."""
        _section(report, ctx, state)


def _fit(
    ctx: Any, unit: Unit, trials: xr.DataArray, *, permute: bool = True
) -> dict[str, xr.Dataset]:
    """Fit one subject's (or source's) trials: per model entry, scores and penalties."""
    from sklearn.model_selection import LeaveOneGroupOut

    from brainalign import encoding

    params = ctx.params("encoding")
    ids = [str(s) for s in dict.fromkeys(trials.stimulus.values)]
    runs = trials.run.values
    alphas = params["alphas"] or list(encoding.DEFAULT_ALPHAS)
    cv = LeaveOneGroupOut() if params["cv"] == "runs" else int(params["cv"])
    common = dict(cv=cv, groups=runs, criterion=params["criterion"], scoring=params["scoring"])
    out = {}
    for entry, feats in ctx.features(unit.model, ids).items():
        x = feats.sel(stimulus=trials.stimulus.values).values
        if params["n_permutations"] and permute:
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
    return out


def _check_same_voxels(bname: str, subjects: dict[str, xr.DataArray]) -> None:
    """Refuse subjects whose voxels differ: their maps cannot be averaged voxel by voxel."""
    names = list(subjects)
    ref = subjects[names[0]]
    for name in names[1:]:
        da = subjects[name]
        same = da.sizes["voxel"] == ref.sizes["voxel"] and all(
            np.array_equal(da[c].values, ref[c].values)
            for c in ("i", "j", "k")
            if c in ref.coords and c in da.coords
        )
        if not same:
            raise ValueError(
                f"brain.{bname}: the subjects' voxels differ ({names[0]}: "
                f"{ref.sizes['voxel']} voxels, {name}: {da.sizes['voxel']}), so their encoding "
                "maps cannot be averaged voxel by voxel for the group map; give the source a "
                "common mask: (one image on the grid of every subject's BOLD, e.g. in MNI "
                "space)."
            )


def _stack(
    entries: dict[str, xr.Dataset], n_flips: int = 0, seed: int | None = None
) -> xr.Dataset:
    """Stack one brain source's encoding results over model entries.

    With a ``subject`` dim (several subjects), ``cv_score`` is the subjects' mean map,
    ``subject_cv_score`` the subjects' maps, ``best_alpha`` the median penalty, and with
    ``n_flips`` the group test adds ``t`` and ``p_fwe`` (sign flips, max-t FWE).
    """
    from brainalign import rsa

    names = list(entries)
    first = entries[names[0]]
    if "subject" in first.cv_score.dims:
        group = {}
        for e in names:
            ds = entries[e]
            g = xr.Dataset(
                {
                    "cv_score": ds.cv_score.mean("subject"),
                    "subject_cv_score": ds.cv_score,
                    "best_alpha": ds.best_alpha.median("subject"),
                },
                attrs=ds.attrs,
            )
            if n_flips:
                test = rsa.sign_flip_test(ds.cv_score, n_permutations=n_flips, seed=seed)
                g["t"], g["p_fwe"] = test["t"], test["p_fwe"]
                g.attrs.update(n_permutations=test.attrs["n_permutations"],
                               test=test.attrs["test"])  # fmt: skip
            g.attrs["n_subjects"] = int(ds.sizes["subject"])
            group[e] = g
        entries = group
    names = list(entries)
    keep = [v for v in ("cv_score", "subject_cv_score", "best_alpha", "t", "p_value", "p_fwe",
                        "p_fdr") if v in entries[names[0]]]  # fmt: skip
    ds = xr.concat([entries[e][keep] for e in names], dim="model").assign_coords(model=names)
    ds.attrs = {
        k: v
        for k, v in entries[names[0]].attrs.items()
        if k in ("scoring", "n_subjects", "n_permutations", "test")
    }
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
    groups = {b: ds.attrs["n_subjects"] for b, ds in stacks.items() if "n_subjects" in ds.attrs}
    group_text = "".join(
        f" {b}: the mean of {n} subjects' maps, each subject's models fit to its own trials."
        for b, n in groups.items()
    )
    if has_p and groups:
        test_text = (
            f" *: at least one voxel significant at FWE 0.05 (one-sample sign-flip test of the "
            f"subjects' maps against 0, {params['n_flips']} flips, maximum t over the map)."
        )
    elif has_p:
        test_text = (
            f" *: at least one voxel significant at FWE 0.05 (max-statistic over "
            f"{params['n_permutations']} stimulus permutations within runs)."
        )
    else:
        test_text = ""
    report.add_figure(
        plot_score_matrix(mean, significant=sig, label=f"mean voxel {scoring}"),
        "Encoding: model × brain",
        section="Encoding",
        caption=f"Mean over voxels of the {cv_text} cross-validated {scoring} of a ridge model "
        "per voxel (penalty chosen per voxel by "
        f"{params['criterion']}) from each model entry's features of the trial's stimulus."
        + group_text
        + test_text,
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
            caption=f"Per voxel: {cv_text} {scoring} of the best model entry"
            + (
                f", the mean of {groups[b]} subjects' maps"
                + (
                    f"; voxels with p_FWE < 0.05 (sign flips, max t): "
                    f"{int((ds.p_fwe.sel(model=best) < 0.05).sum())}"
                    if "p_fwe" in ds
                    else ""
                )
                if b in groups
                else ""
            )
            + ".",
        )
