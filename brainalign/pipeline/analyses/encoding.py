"""Voxelwise encoding models: each model entry's features predicting each voxel's trials.

One unit per pattern source and model: every trial is described by the model's features of
its stimulus; one ridge per voxel, its penalty chosen by cross-validation over runs (or K
folds); optionally a stimulus-permutation test within runs with max-statistic FWE p-values.

A source with several subjects (``subject_runs``, e.g. ``fmri_bids``) gets one map per
subject, then a group map: the subjects' mean score per voxel, tested against 0 by sign
flips of whole subject maps with the maximum t over the map (family-wise error,
:func:`brainalign.rsa.sign_flip_test`).

Few stimuli: every trial's features are its stimulus's, so with ``n`` distinct stimuli a
ridge predicts one value per stimulus and voxel. An entry whose features span all ``n - 1``
contrasts between the stimuli (rank ``n - 1`` after centring over the stimuli, e.g. 384
features for 8 categories) can fit any pattern of stimulus means, as can every other such
entry: their scores then differ only by the penalty's shrinkage and cannot tell the models
apart. Such an entry is refused, unless ``n_components`` reduces every entry to its first
principal components over the stimuli (fewer than ``n - 1``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import (
    FWE_ALPHA,
    add_voxel_map,
    background,
    by_brain,
    max_stat_fwe,
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
        # each entry's first principal components over the stimuli (fewer than the
        # stimuli - 1); None: the features as they are (refused when they span every
        # contrast between the stimuli)
        "n_components": (int, False, None),
    }
    limits = {
        "n_components": (1, 1_000_000, "principal components of each entry's features"),
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
        feats, info = stimulus_features(
            feats.sel(stimulus=ids), params["n_components"], entry=entry, brain=unit.brain
        )
        # aligned by stimulus id: each trial gets the features of its stimulus
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
            null = ds["null"].transpose("permutation", ...)
            _, null_max, threshold = max_stat_fwe(
                ds.cv_score.values.reshape(-1),
                np.asarray(null.values).reshape(null.sizes["permutation"], -1),
            )
            ds = ds.drop_vars("null")
            ds["null_max"] = ("permutation", null_max)
            ds["fwe_threshold"] = xr.DataArray(
                threshold,
                attrs={"long_name": "cv_score above which p_fwe <= alpha", "alpha": FWE_ALPHA},
            )
        else:
            ds = encoding.ridge_cv(x, trials, alphas, **common)[["cv_score", "best_alpha"]]
        ds.attrs.update(
            model=unit.model,
            entry=entry,
            n_features=int(x.shape[1]),
            scoring=params["scoring"],
            **info,
        )
        out[entry] = ds
    return out


def stimulus_features(
    feats: xr.DataArray, n_components: int | None, *, entry: str, brain: str
) -> tuple[xr.DataArray, dict[str, int]]:
    """Check (and optionally reduce) one entry's features over the distinct stimuli.

    A ridge with an intercept on features that are constant within a stimulus predicts one
    value per stimulus; when the features span every contrast between the ``n`` stimuli
    (rank ``n - 1`` after centring over them) the model can fit any pattern of stimulus
    means, like every other such model, so it is refused. With ``n_components`` the features
    are replaced by their first principal components over the stimuli (scores of the centred
    features, ``min(n_components, rank)`` of them), which must be fewer than ``n - 1``.

    Parameters
    ----------
    feats : xarray.DataArray, dims ("stimulus", "unit")
        The entry's features, one row per distinct stimulus.
    n_components : int or None
        Principal components to keep; None keeps the features.
    entry, brain : str
        Names for the error message.

    Returns
    -------
    feats : xarray.DataArray, dims ("stimulus", "unit")
        The features to fit (the components, units ``"pc0"``, ``"pc1"``, ...).
    info : dict
        ``n_stimuli``, ``n_model_features`` and ``feature_rank`` (centred, over the stimuli).

    Raises
    ------
    ValueError
        When the features (or ``n_components``) reach ``n_stimuli - 1`` dimensions.
    """
    values = np.asarray(feats.values, dtype=np.float64)
    n_stim, n_feat = values.shape
    centred = values - values.mean(axis=0, keepdims=True)
    u, sv, _ = np.linalg.svd(centred, full_matrices=False)
    tol = (sv.max() if sv.size else 0.0) * max(centred.shape) * np.finfo(np.float64).eps
    rank = int((sv > tol).sum())
    info = {"n_stimuli": n_stim, "n_model_features": n_feat, "feature_rank": rank}
    todo = (
        f"Set analyses.encoding.n_components to at most {n_stim - 2} (each entry's first "
        "principal components over the stimuli: the models are then compared by their main "
        f"dimensions of variation over these {n_stim} stimuli), use a dataset with more "
        "distinct stimuli than features, or compare the models by RSA."
    )
    if n_components is not None:
        if n_components >= n_stim - 1:
            raise ValueError(
                f"analyses.encoding.n_components must be < {n_stim - 1} (the number of "
                f"distinct stimuli of brain.{brain}, {n_stim}, minus 1): with as many "
                "components every entry spans all contrasts between the stimuli and all "
                f"score alike; got {n_components}. {todo}"
            )
        k = min(n_components, rank)
        scores = u[:, :k] * sv[:k]
        return (
            xr.DataArray(
                scores,
                dims=("stimulus", "unit"),
                coords={"stimulus": feats.stimulus.values, "unit": [f"pc{i}" for i in range(k)]},
            ),
            {**info, "n_components": k},
        )
    if n_stim >= 2 and rank >= n_stim - 1:
        raise ValueError(
            f"Encoding model entry {entry!r} has {n_feat} features (rank {rank} over the "
            f"stimuli after centring) for only {n_stim} distinct stimuli in brain.{brain} "
            f"(n_stimuli - 1 = {n_stim - 1} <= rank): every trial's features are its "
            "stimulus's, so a ridge on them can fit any pattern of the stimulus means, as can "
            "every other such entry; their scores would differ only by the penalty's "
            f"shrinkage and could not tell the models apart. {todo}"
        )
    return feats, info


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
    variables = ("cv_score", "subject_cv_score", "best_alpha", "t", "p_value", "p_fwe", "p_fdr",
                 "fwe_threshold", "null_max")  # fmt: skip
    keep = [v for v in variables if v in entries[names[0]]]
    ds = xr.concat([entries[e][keep] for e in names], dim="model").assign_coords(model=names)
    for attr in ("n_model_features", "feature_rank", "n_components"):
        if all(attr in entries[e].attrs for e in names):
            ds = ds.assign_coords({attr: ("model", [int(entries[e].attrs[attr]) for e in names])})
    ds.attrs = {
        k: v
        for k, v in entries[names[0]].attrs.items()
        if k in ("scoring", "n_subjects", "n_permutations", "test", "n_stimuli")
    }
    if "p_fwe" in ds:
        ds["significant_fwe"] = ds["p_fwe"] <= FWE_ALPHA
        ds["significant_fwe"].attrs = {"long_name": f"p_fwe <= {FWE_ALPHA}", "alpha": FWE_ALPHA}
        ds["p_fwe"].attrs["long_name"] = "family-wise error corrected p-value (max statistic)"
        ds.attrs["fwe_alpha"] = FWE_ALPHA
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
            [[bool(stacks[b].significant_fwe.sel(model=m).any()) for b in stacks] for m in models],
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
            f" *: at least one voxel with p_FWE ≤ {FWE_ALPHA} (one-sample sign-flip test of the "
            f"subjects' maps against 0, {params['n_flips']} flips, maximum t over the map)."
        )
    elif has_p:
        test_text = (
            f" *: at least one voxel with p_FWE ≤ {FWE_ALPHA} (max-statistic over "
            f"{params['n_permutations']} stimulus permutations within runs)."
        )
    else:
        test_text = ""
    limits_text = _limits_text(stacks, params)
    report.add_figure(
        plot_score_matrix(mean, significant=sig, label=f"mean voxel {scoring}"),
        "Encoding: model × brain",
        section="Encoding",
        caption=f"Mean over voxels of the {cv_text} cross-validated {scoring} of a ridge model "
        "per voxel (penalty chosen per voxel by "
        f"{params['criterion']}) from each model entry's features of the trial's stimulus."
        + group_text
        + test_text
        + limits_text,
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
                row[f"voxels p_FWE ≤ {FWE_ALPHA}"] = int(ds.significant_fwe.sel(model=m).sum())
                if "fwe_threshold" in ds:
                    row[f"FWE threshold ({scoring})"] = float(ds.fwe_threshold.sel(model=m))
            if "feature_rank" in ds.coords:
                row["features (rank)"] = (
                    f"{int(ds.n_model_features.sel(model=m))} "
                    f"({int(ds.feature_rank.sel(model=m))})"
                )
            if "n_components" in ds.coords:
                row["components fitted"] = int(ds.n_components.sel(model=m))
            rows.append(row)
    report.add_table(rows, "Encoding scores per model entry", section="Encoding")
    for b, ds in stacks.items():
        best = str(mean.sel(brain=b).idxmax("model").item())
        test = ""
        if "p_fwe" in ds and b in groups:
            test = (
                f" Corrected test: one-sample sign-flip test of the {groups[b]} subjects' maps "
                f"against 0 ({params['n_flips']} flips, family-wise error controlled by the "
                "maximum t over the map)."
            )
        elif "p_fwe" in ds:
            test = (
                f" Corrected test: max-statistic family-wise error over voxels "
                f"({params['n_permutations']} stimulus permutations within runs, the whole "
                "encoding model refitted on each; each permuted map's maximum forms the null; "
                + _threshold_text(float(ds.fwe_threshold.sel(model=best)), scoring)
                + ")."
            )
        add_voxel_map(
            report,
            ds.cv_score.sel(model=best).drop_vars("model"),
            background(ctx, b),
            name=f"{b} from {best}",
            kind="Encoding map",
            section="Encoding",
            caption=f"Per voxel: {cv_text} {scoring} of the best model entry"
            + (f", the mean of {groups[b]} subjects' maps" if b in groups else "")
            + "."
            + test,
            significant=(
                ds.significant_fwe.sel(model=best).drop_vars("model")
                if "significant_fwe" in ds
                else None
            ),
        )


def _threshold_text(threshold: float, what: str) -> str:
    """Caption text of a max-statistic threshold (or why there is none)."""
    if np.isfinite(threshold):
        return f"significant where {what} > {threshold:.3g}"
    need = int(np.ceil(1 / FWE_ALPHA)) - 1
    return f"too few permutations for any p_FWE ≤ {FWE_ALPHA}: at least {need} are needed"


def _limits_text(stacks: dict[str, xr.Dataset], params: dict[str, Any]) -> str:
    """Caption text: what the encoding scores can and cannot show with few stimuli."""
    counts = sorted({int(ds.attrs["n_stimuli"]) for ds in stacks.values()
                     if "n_stimuli" in ds.attrs})  # fmt: skip
    if not counts:
        return ""
    n = "/".join(str(c) for c in counts)
    text = (
        f" What this can show: how much of each voxel's trial responses follows the {n} "
        "distinct stimuli through each entry's features (every trial gets the features of "
        "its stimulus, matched by stimulus id). What it cannot: the features vary only "
        f"between these {n} stimuli, so no entry can explain more than the stimulus identity "
        "does, and nothing is tested on stimuli outside the fit (the folds leave out runs, "
        "not stimuli); an entry whose features span every contrast between the stimuli "
        "would fit the stimulus means exactly like any other (such entries are refused)."
    )
    if params["n_components"] is not None:
        text += (
            f" Each entry is reduced to its first {params['n_components']} principal "
            "components over the stimuli (fewer where its features have a lower rank), so "
            "the entries are compared by their main dimensions of variation at equal "
            "dimensionality."
        )
    return text
