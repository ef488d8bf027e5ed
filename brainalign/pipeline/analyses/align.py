"""Alignment measures (CKA, CCA family, shape metrics, kNN, soft matching, predictivity).

One unit per pattern source and model: each chosen measure between the source's stimulus
patterns and each model entry's features (:mod:`brainalign.align`), with a stimulus-label
permutation p-value (calibrated) and, on request, a stimulus-bootstrap spread (descriptive:
the measures are biased at small numbers of stimuli and duplicated stimuli inflate them, so
the percentile band is not a confidence interval). The report adds a layer profile per
measure and the metric space of networks: the distances between every model entry (and
brain source) under a shape metric, with their MDS embedding (Williams et al. 2021).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key
from brainalign.pipeline.analyses._common import by_brain, require_features

_CV_MEASURES = ("predictivity",)  # cross-validated: no stimulus bootstrap (copies leak)
_DESCRIPTION = (
    "Alignment measures between a brain source's stimulus patterns and each model entry's "
    "features: statistic, its stimulus-label permutation p-value (one-sided, towards more "
    "alignment) and, with n_bootstrap, the stimulus-bootstrap percentile spread (ci_low, "
    "ci_high: descriptive, not a calibrated confidence interval)."
)


@register_analysis
class Align(Analysis):
    """Alignment measures of each brain source against each model entry."""

    name = "align"
    section = "Alignment measures"
    progress = "alignment units"
    schema = {
        "measures": (list, False, ["cka"]),  # names in brainalign.align.METHODS
        "options": (dict, False, {}),  # measure -> its keyword arguments
        "n_permutations": (int, False, 1000),  # stimulus-label permutations; 0: none
        # stimulus resamples for a descriptive spread (not a calibrated interval); 0: none
        "n_bootstrap": (int, False, 0),
        "confidence": ((int, float), False, 0.95),
        # the metric space of networks (model entries and brain sources); null: none
        "network_measure": ((str, type(None)), False, "shape_metric"),
        "network_options": (dict, False, {}),
    }
    limits = {
        "n_permutations": (0, 10_000_000, "stimulus-label permutations; 0: none"),
        "n_bootstrap": (0, 10_000_000, "stimulus resamples; 0: no intervals"),
    }

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Known measures and options, a confidence in (0, 1), pattern sources and features."""
        from brainalign.align import METHODS
        from brainalign.pipeline._analysis import get_source

        where = ("analyses", "align")
        measures = params["measures"]
        if not measures or not all(isinstance(m, str) for m in measures):
            c.fail((*where, "measures"), f"must be a non-empty list of names, got {measures!r}.")
        for m in measures:
            c.option((*where, "measures"), m, tuple(METHODS))
        for m, kw in params["options"].items():
            if m not in measures:
                c.fail(
                    (*where, "options", str(m)),
                    f"sets options of a measure not in measures ({', '.join(measures)}).",
                )
            if not isinstance(kw, dict):
                c.fail((*where, "options", str(m)), f"must be a mapping, got {kw!r}.")
        if not 0 < params["confidence"] < 1:
            c.fail((*where, "confidence"), f"must be in (0, 1), got {params['confidence']}.")
        if params["network_measure"] is not None:
            c.option(
                (*where, "network_measure"),
                params["network_measure"],
                ("shape_metric", "stochastic_shape"),
            )
        for bname, src in spec["brain"].items():
            if get_source(src["dataset"]).data != "patterns":
                c.fail(
                    ("brain", bname, "dataset"),
                    f"{src['dataset']!r} gives no stimulus patterns for alignment measures "
                    "(they compare feature spaces, not RDMs); use a pattern source or drop "
                    "the analysis.",
                )
        require_features(c, spec, "alignment measures cannot use it")

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the source's data, the model's settings and weights, the settings and seed.

        Not the network space's settings: it is computed when the units are assembled.
        """
        params = ctx.params("align")
        return content_key(
            {
                "data": ctx.data_key(unit.brain),
                "model": ctx.model_content(unit.model),
                "align": {k: v for k, v in params.items() if not k.startswith("network_")},
                "seed": ctx.seed,
            }
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.Dataset:
        """Every measure × model entry: statistic, p-value and interval."""
        from brainalign import align

        params = ctx.params("align")
        brain = _patterns(ctx, unit.brain)
        ids = [str(s) for s in brain.stimulus.values]
        feats = ctx.features(unit.model, ids)
        rows = []
        for measure in params["measures"]:
            kw = dict(params["options"].get(measure, {}))
            per_entry = []
            for entry, f in feats.items():
                a, b = (f, brain) if measure == "predictivity" else (brain, f)
                ds = _one(align, a, b, measure, kw, params, ctx.seed)
                per_entry.append(ds.expand_dims(model=[entry]))
            rows.append(xr.concat(per_entry, dim="model").expand_dims(measure=[measure]))
        out = xr.concat(rows, dim="measure", combine_attrs="drop_conflicts")
        out.attrs = {"n_stimuli": len(ids)}
        return out

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: measures × model entries; the metric space of networks."""
        params = ctx.params("align")
        nodes, state = {}, {"brains": {}, "space": None}
        for bname, parts in by_brain({u: {u.model: ds} for u, ds in results.items()}).items():
            ds = xr.concat(list(parts.values()), dim="model", combine_attrs="drop_conflicts")
            ds.attrs.update(
                description=_DESCRIPTION,
                n_permutations=params["n_permutations"],
                n_bootstrap=params["n_bootstrap"],
                confidence=float(params["confidence"]),
            )
            for m in params["measures"]:
                ds.attrs[f"kind_{m}"] = _kind(m)
            nodes[f"align/{bname}"] = ds
            state["brains"][bname] = ds
        if params["network_measure"] is not None:
            space = _network_space(ctx, params)
            if space is not None:
                nodes["align/networks"] = space
                state["space"] = space
        return nodes, state

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Add a layer profile per measure and brain, a table, and the network space."""
        from brainalign.viz import plot_layer_profile, plot_network_space

        params = ctx.params("align")
        conf = round(100 * float(params["confidence"]))
        rows = []
        for bname, ds in state["brains"].items():
            for m in ds.measure.values:
                one = ds.sel(measure=m)
                has_p = "p_value" in one and bool(np.isfinite(one.p_value).any())
                has_ci = "ci_low" in one
                report.add_figure(
                    plot_layer_profile(
                        one.statistic,
                        ci_low=one.ci_low if has_ci else None,
                        ci_high=one.ci_high if has_ci else None,
                        p_value=one.p_value if has_p else None,
                        title=f"{bname}: {m}",
                        label=f"{m} ({_kind(str(m))})",
                    ),
                    f"Layer profile: {m}, {bname}",
                    section=self.section,
                    caption=f"{m} between {bname}'s stimulus patterns and each model entry's "
                    "features, along each model's layers"
                    + (
                        f"; band: the central {conf} % of {params['n_bootstrap']} stimulus-"
                        "bootstrap values (a descriptive spread, not a confidence interval: "
                        "the measure is biased at small numbers of stimuli and duplicated "
                        "stimuli inflate it)"
                        if has_ci
                        else ""
                    )
                    + (
                        f"; filled dots: p <= 0.05 by {params['n_permutations']} stimulus-label "
                        "permutations (one-sided, towards more alignment; not corrected over "
                        "entries)"
                        if has_p
                        else ""
                    )
                    + ".",
                )
                for e in one.model.values:
                    cell = one.sel(model=e)
                    row = {
                        "brain": bname,
                        "measure": str(m),
                        "model": str(e),
                        "value": float(cell.statistic),
                    }
                    if has_ci:
                        lo, hi = float(cell.ci_low), float(cell.ci_high)
                        row[f"bootstrap {conf} % spread"] = f"[{lo:.3f}, {hi:.3f}]"
                    if has_p:
                        row["p"] = float(cell.p_value)
                    rows.append(row)
        report.add_table(rows, "Alignment measures per model entry", section=self.section)
        space = state["space"]
        if space is not None:
            report.add_figure(
                plot_network_space(
                    space.distance, space.embedding, label=str(params["network_measure"])
                ),
                "The metric space of networks",
                section=self.section,
                caption=f"{params['network_measure']} distances between every model entry and "
                "brain source over the same stimuli (left) and their classical MDS embedding "
                "(right; Williams et al. 2021, 'Generalized shape metrics on neural "
                "representations'). Lines join a model's layers in order.",
            )


def _kind(measure: str) -> str:
    from brainalign.align import METHODS

    return str(METHODS[measure].kind)


def _patterns(ctx: Any, bname: str) -> xr.DataArray:
    """Return a source's stimulus patterns (the subjects' mean for several subjects)."""
    data = ctx.data(bname)
    means = getattr(data, "means", None)
    if means is None:
        raise ValueError(
            f"brain.{bname}: its subjects hold different features, so there is no mean "
            "pattern to align with a model; give the subjects one feature set (one mask, "
            "one space) or one brain source per subject."
        )
    return means


def _one(
    align: Any,
    a: xr.DataArray,
    b: xr.DataArray,
    measure: str,
    kw: dict[str, Any],
    params: dict[str, Any],
    seed: int,
) -> xr.Dataset:
    """One measure on one pair: statistic, p-value and interval (as the settings ask)."""
    if params["n_permutations"]:
        test = align.permutation_test(
            a, b, measure, n_permutations=params["n_permutations"], seed=seed, **kw
        )
        out = test[["statistic", "p_value"]]
    else:
        out = align.compare(a, b, measure, **kw).to_dataset(name="statistic")
    if params["n_bootstrap"] and measure not in _CV_MEASURES and not kw.get("cv"):
        ci = align.bootstrap_ci(
            a,
            b,
            measure,
            n_bootstrap=params["n_bootstrap"],
            confidence=float(params["confidence"]),
            seed=seed,
            **kw,
        )
        out["ci_low"], out["ci_high"] = ci["ci_low"], ci["ci_high"]
    return out.reset_coords(drop=True)


def _network_space(ctx: Any, params: dict[str, Any]) -> xr.Dataset | None:
    """Distances between every model entry and brain source, with their MDS embedding."""
    from brainalign import align

    first = next(iter(ctx.spec["brain"]))
    ids = [str(s) for s in _patterns(ctx, first).stimulus.values]
    reps: dict[str, xr.DataArray] = {}
    for bname in ctx.spec["brain"]:
        try:
            pat = _patterns(ctx, bname)
        except ValueError:
            continue
        if sorted(str(s) for s in pat.stimulus.values) == sorted(ids):
            reps[f"brain/{bname}"] = pat
    for mname in ctx.spec["models"]:
        reps.update(ctx.features(mname, ids))
    if len(reps) < 2:
        return None
    dist = align.pairwise(reps, measure=params["network_measure"], **params["network_options"])
    emb = align.embed(dist, n_components=min(2, len(reps) - 1))
    return xr.Dataset({"distance": dist, "embedding": emb}, attrs={"measure": str(
        params["network_measure"])})  # fmt: skip
