"""RSA: each model entry's RDM against each brain RDM, with permutation p-values.

One unit per brain source and model: the model's RDMs over the brain's stimuli and a
stimulus-label permutation test of each. Per brain source, the assembly adds a
stimulus-bootstrap CI of every entry (one batch), the split-half reliability of the brain RDM
and, with 4 runs or more, the noise ceiling over run-split RDMs (pseudo-subjects). The report
section is the Summary, RDMs, MDS, Model comparison and Noise ceiling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import logger
from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline.analyses._common import (
    brain_model_rdms,
    multi_layer_models,
    stack_rdms,
)


@register_analysis
class RSA(Analysis):
    """Representational similarity analysis of brain and model RDMs."""

    name = "rsa"
    cache_kind = "unit"
    section = "Summary"
    progress = "RSA units"
    schema = {
        "metric": (str, False, "correlation"),
        "method": (str, False, "spearman"),
        "n_permutations": ((int, type(None)), False, None),
        "split_half": (bool, False, True),
        "model_metric": (str, False, None),  # default: metric (sqeuclidean for crossnobis)
        "n_bootstrap": (int, False, 1000),  # stimulus bootstrap samples for 95% CIs; 0: none
        # sources with several subjects: what the group-level tests resample ("both":
        # subjects and stimuli, so p-values generalise to new subjects and new stimuli)
        "group_resample": (str, False, "both"),
    }
    limits = {
        "n_permutations": (0, 10_000_000, "stimulus permutations; 0 or null: none"),
        "n_bootstrap": (0, 1_000_000, "bootstrap samples for 95% CIs; 0: none"),
    }

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Known metric and method; a cross-validated metric needs runs."""
        from brainalign.pipeline._analysis import get_source
        from brainalign.rsa import CV_METRICS, METHODS, METRICS

        c.option(("analyses", "rsa", "metric"), params["metric"], METRICS)
        c.option(("analyses", "rsa", "method"), params["method"], METHODS)
        c.option(
            ("analyses", "rsa", "group_resample"),
            params["group_resample"],
            ("subject", "stimulus", "both"),
        )
        if params["n_bootstrap"] < 0:
            c.fail(
                ("analyses", "rsa", "n_bootstrap"),
                f"must be >= 0 (0: no confidence intervals), got {params['n_bootstrap']}.",
            )
        if params["model_metric"] is not None:
            c.option(
                ("analyses", "rsa", "model_metric"),
                params["model_metric"],
                tuple(m for m in METRICS if m not in CV_METRICS),
            )
        meeg = [b for b, s in spec["brain"].items() if get_source(s["dataset"]).data == "meeg"]
        no_runs = [
            b
            for b, s in spec["brain"].items()
            if b not in meeg
            and not get_source(s["dataset"]).runs
            and get_source(s["dataset"]).uses_metric  # judgments are an RDM already
        ]
        if no_runs and params["metric"] in CV_METRICS:
            c.fail(
                ("analyses", "rsa", "metric"),
                f"{params['metric']!r} is cross-validated over runs, which the source(s) "
                f"{', '.join(no_runs)} do not have (one pattern per stimulus); use "
                "correlation, euclidean, ...",
            )
        if meeg and params["metric"] in CV_METRICS:
            c.fail(
                ("analyses", "rsa", "metric"),
                f"{params['metric']!r} is cross-validated over runs, which the M/EEG "
                f"source(s) {', '.join(meeg)} do not have; use correlation, euclidean, ...",
            )

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the brain RDM, the model RDMs, the method, the permutations and the seed."""
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        params = ctx.params("rsa")
        return content_key(
            {
                "brain": ctx.brain_key(unit.brain),
                "model": model_key,
                "method": params["method"],
                "n_permutations": params["n_permutations"],
                "seed": ctx.seed,
            }
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """Test each of the model's entries against the brain RDM (stimulus permutations)."""
        from brainalign import rsa

        params = ctx.params("rsa")
        brain = ctx.brain(unit.brain)
        tests = {
            entry: rsa.permutation_test(
                brain["rdm"],
                r,
                params["method"],
                n_permutations=params["n_permutations"],
                seed=ctx.seed,
            )
            for entry, r in ctx.model_rdms(unit.model, unit.brain).items()
        }
        _reliability(ctx, unit.brain)  # per brain, cached: computed where the data are
        return entries_to_tree(tests, {"unit": unit.key})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain: the brain RDM, the model RDMs, the tests, CIs and noise ceiling."""
        params = ctx.params("rsa")
        tests: dict[str, dict[str, xr.Dataset]] = {}
        for unit, tree in results.items():
            for entry, t in tree_to_entries(tree).items():
                tests.setdefault(unit.brain, {})[entry] = t
                logger.info(
                    "%s/%s: %s = %.3f, p = %.4g", unit.key, entry, params["method"],
                    float(t.observed), float(t.p_value),
                )  # fmt: skip
        state = {"brains": {}, "rdms": {}, "tests": tests, "reliability": {}, "ceilings": {}}
        state["cis"] = {}
        nodes: dict[str, xr.Dataset] = {}
        for bname in tests:
            brain = ctx.brain(bname)
            all_rdms = brain_model_rdms(ctx, bname)
            rdms = {e: all_rdms[e] for e in tests[bname]}
            rel = _reliability(ctx, bname)
            reliability = dict(rel.attrs["reliability"])
            splits = rel["splits"] if "splits" in rel else None
            stack = stack_rdms(rdms)
            ceiling = None
            if splits is not None and rel.attrs.get("level") == "subjects":
                ceiling = _group_evaluation(ctx, splits, stack)
            elif splits is not None:
                ceiling = _split_evaluation(ctx, splits, stack)
            ci = _bootstrap_ci(ctx, brain["rdm"], stack)
            state["brains"][bname] = brain
            state["rdms"][bname] = rdms
            state["reliability"][bname] = reliability
            if ceiling is not None:
                state["ceilings"][bname] = ceiling
            if ci is not None:
                state["cis"][bname] = ci
            nodes.update(_nodes(ctx, bname, brain, stack, tests[bname], reliability, ceiling, ci))
        return nodes, state

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Summary, RDMs, MDS, model comparison and noise ceiling."""
        _report(report, ctx, state)


def _reliability(ctx: Any, bname: str) -> xr.Dataset:
    """Return the split-half reliability of a brain RDM and its run-split RDMs (cached).

    Pattern sources with runs only; for others the entry is empty.
    """
    from brainalign.pipeline.sources import run_splits

    params = ctx.params("rsa")
    key = content_key(
        {
            "data": ctx.data_key(bname),
            "brain": ctx.brain_key(bname),  # subject RDMs follow the RDM options (rsa_window)
            "metric": params["metric"],
            "method": params["method"],
            "split_half": params["split_half"],
        }
    )

    def compute() -> xr.Dataset:
        brain = ctx.brain(bname)
        if brain.get("subjects") is not None:  # real subjects: no run splits needed
            return xr.Dataset({"splits": brain["subjects"].rename(subject="split")},
                              attrs={"reliability": {}, "level": "subjects"})  # fmt: skip
        if not ctx.source(bname).runs:
            return xr.Dataset(attrs={"reliability": {}})
        trials = ctx.data(bname).trials
        ids = [str(v) for v in brain["rdm"]["stimulus_a"].values]
        splits = run_splits(trials, ids, params["metric"])
        rel = {}
        if params["split_half"] and "run" in trials.coords:
            rel = _split_half(trials, params["metric"], params["method"])
        data = {"splits": splits} if splits is not None else {}
        return xr.Dataset(data, attrs={"reliability": rel, "level": "run splits"})

    return ctx.cached("reliability", key, compute)


def _split_half(trials: xr.DataArray, metric: str, method: str) -> dict[str, float]:
    """RDM reliability: the similarity of RDMs from odd and even runs, Spearman–Brown corrected."""
    from brainalign import rsa
    from brainalign.pipeline.sources import trials_rdm

    runs = np.asarray(trials["run"].values)
    odd = trials.isel(trial=np.flatnonzero(runs % 2 == 1))
    even = trials.isel(trial=np.flatnonzero(runs % 2 == 0))
    r = rsa.compare(trials_rdm(odd, metric), trials_rdm(even, metric), method)
    return {
        "split_half": float(r),
        "spearman_brown": float(2 * r / (1 + r)) if r > -1 else float("nan"),
    }


def _split_evaluation(ctx: Any, splits: xr.DataArray, stack: xr.DataArray) -> dict[str, Any]:
    """Noise ceiling and model evaluations over the run-split RDMs (pseudo-subjects)."""
    from brainalign import rsa

    method = ctx.params("rsa")["method"]
    entries = [str(m) for m in stack.model.values]
    ceiling = rsa.noise_ceiling(splits, method)
    ev = rsa.evaluate(splits, stack, method, resample="subject", n_bootstrap=1000, seed=ctx.seed)
    return {
        "lower": float(ceiling["lower"]),
        "upper": float(ceiling["upper"]),
        "mean": {e: float(v) for e, v in zip(entries, ev["mean_score"].values, strict=True)},
        "sem": {e: float(np.sqrt(v)) for e, v in zip(entries, ev["variance"].values, strict=True)},
        "n_splits": int(splits.sizes["split"]),
        "level": "run splits",
    }


def _group_evaluation(ctx: Any, subjects: xr.DataArray, stack: xr.DataArray) -> dict[str, Any]:
    """Group-level evaluation across subjects: mean, SE, tests against 0, noise ceiling.

    :func:`brainalign.rsa.test` with ``analyses.rsa.group_resample`` (default ``"both"``:
    subjects and stimuli resampled, so p-values generalise to new subjects and new stimuli).
    """
    from brainalign import rsa

    params = ctx.params("rsa")
    entries = [str(m) for m in stack.model.values]
    with ctx.timed("group_test"):
        res = rsa.test(
            subjects.rename(split="subject"),
            stack,
            params["method"],
            resample=params["group_resample"],
            n_bootstrap=params["n_bootstrap"] or 1000,  # documented: 0 turns CIs off only
            seed=ctx.seed,
        )
    per = {
        name: {e: float(v) for e, v in zip(entries, res[var].values, strict=True)}
        for name, var in (
            ("mean", "mean_score"),
            ("p_zero", "p_zero"),
            ("p_ceiling", "p_noise_ceiling"),
        )
    }
    return {
        "lower": float(res["noise_ceiling_lower"]),
        "upper": float(res["noise_ceiling_upper"]),
        **per,
        "sem": {
            e: float(np.sqrt(v)) for e, v in zip(entries, res["variance"].values, strict=True)
        },
        "n_splits": int(subjects.sizes["split"]),
        "level": "subjects",
        "resample": params["group_resample"],
        "generalises_to": str(res.attrs["generalises_to"]),
        "n_bootstrap": int(res.attrs["n_bootstrap"]),
    }


def _bootstrap_ci(ctx: Any, brain_rdm: xr.DataArray, stack: xr.DataArray) -> xr.Dataset | None:
    """CIs of every model entry's similarity with the brain RDM (stimulus bootstrap, one batch).

    None when ``analyses.rsa.n_bootstrap`` is 0.
    """
    from brainalign import rsa

    params = ctx.params("rsa")
    if not params["n_bootstrap"]:
        return None
    with ctx.timed("bootstrap_ci"):
        return rsa.bootstrap_ci(
            brain_rdm, stack, params["method"], n_bootstrap=params["n_bootstrap"], seed=ctx.seed
        )


def _nodes(
    ctx: Any,
    bname: str,
    brain: dict[str, Any],
    stack: xr.DataArray,
    tests: dict[str, xr.Dataset],
    reliability: dict[str, float],
    ceiling: dict[str, Any] | None,
    ci: xr.Dataset | None,
) -> dict[str, xr.Dataset]:
    """Return the results-tree nodes of one brain source: brain/, models/ and rsa/."""
    nodes: dict[str, xr.Dataset] = {}
    nodes[f"brain/{bname}"] = xr.Dataset(
        {"rdm": brain["rdm"]},
        attrs={
            **{k: v for k, v in brain["attrs"].items() if isinstance(v, (str, int, float))},
            **{f"reliability_{k}": v for k, v in reliability.items()},
        },
    )
    models = list(tests)
    stack = stack.astype(np.float32)  # figures need no more; scores stay float64
    stack.attrs = {"kind": "rdm", "modality": "model", "stored_dtype": "float32"}
    nodes[f"models/{bname}"] = xr.Dataset({"rdm": stack})
    t = [tests[m] for m in models]
    n_null = min(x.sizes["permutation"] for x in t)
    ds = xr.Dataset(
        {
            "similarity": xr.DataArray(
                [float(x.observed) for x in t], dims="model", coords={"model": models}
            ),
            "p_value": xr.DataArray(
                [float(x.p_value) for x in t], dims="model", coords={"model": models}
            ),
            "null": xr.concat(
                [x.null.isel(permutation=slice(0, n_null)) for x in t], dim="model"
            ).assign_coords(model=models),
        },
        attrs={
            "method": t[0].attrs["method"],
            "exact": t[0].attrs["exact"],
            "n_permutations": n_null,
            "metric": ctx.params("rsa")["metric"],
            **{f"reliability_{k}": v for k, v in reliability.items()},
            **(
                {
                    "noise_ceiling_lower": ceiling["lower"],
                    "noise_ceiling_upper": ceiling["upper"],
                    "n_run_splits": ceiling["n_splits"],
                }
                if ceiling is not None and ceiling["level"] == "run splits"
                else {}
            ),
            **(
                {
                    "noise_ceiling_lower": ceiling["lower"],
                    "noise_ceiling_upper": ceiling["upper"],
                    "n_subjects": ceiling["n_splits"],
                    "group_resample": ceiling["resample"],
                    "group_generalises_to": ceiling["generalises_to"],
                    "group_n_bootstrap": ceiling["n_bootstrap"],
                }
                if ceiling is not None and ceiling["level"] == "subjects"
                else {}
            ),
        },
    )
    if ceiling is not None and ceiling["level"] == "run splits":  # pseudo-subjects
        ds["split_mean"] = xr.DataArray([ceiling["mean"][m] for m in models], dims="model")
        ds["split_sem"] = xr.DataArray([ceiling["sem"][m] for m in models], dims="model")
    elif ceiling is not None:  # group level across subjects
        for var, key in (("group_mean", "mean"), ("group_sem", "sem"), ("group_p", "p_zero"),
                         ("group_p_noise_ceiling", "p_ceiling")):  # fmt: skip
            ds[var] = xr.DataArray([ceiling[key][m] for m in models], dims="model")
    if ci is not None:  # stimulus-bootstrap percentile interval of "similarity"
        for bound in ("ci_lower", "ci_upper"):
            ds[bound] = xr.DataArray(ci[bound].sel(model=models).values, dims="model")
        ds.attrs.update(
            ci=ci.attrs["ci"],
            ci_method="percentile bootstrap over stimuli",
            n_bootstrap=ci.attrs["n_bootstrap"],
            n_bootstrap_valid=ci.attrs["n_valid"],
        )
    nodes[f"rsa/{bname}"] = ds
    return nodes


def _report(report: Any, ctx: Any, state: dict[str, Any]) -> None:
    """Add the RSA sections: Summary, RDMs, MDS, Model comparison, Noise ceiling."""
    from brainalign.viz import plot_mds, plot_model_comparison, plot_rdms, plot_score_matrix

    spec = ctx.spec
    params = ctx.params("rsa")
    brains, rdms, results = state["brains"], state["rdms"], state["tests"]
    rels, ceilings, cis = state["reliability"], state["ceilings"], state["cis"]
    rows = []
    for bname in brains:
        for mname, test in results[bname].items():
            row = {
                "brain": bname,
                "model": mname,
                f"{params['method']} r": float(test.observed),
            }
            if bname in cis:
                row["95% CI"] = _ci_cell(cis[bname], mname)
            row["p (permutation)"] = float(test.p_value)
            row["permutations"] = f"{test.attrs['n_permutations']}" + (
                " (exact)" if test.attrs["exact"] else ""
            )
            row["noise ceiling"] = _ceiling_cell(brains[bname], rels[bname], ceilings.get(bname))
            rows.append(row)
    best = _best_layers(results, params["method"], cis)
    if best:
        report.add_table(
            best,
            "Best layer per model",
            section="Summary",
            caption="For models with several layers: the layer whose RDM is most "
            "similar to each brain RDM.",
        )
    report.add_table(
        rows,
        "Brain–model RDM similarity",
        section="Summary",
        caption=_summary_caption(spec, brains),
    )
    matrix = _rsa_score_matrix(results)
    if matrix is not None:
        report.add_figure(
            plot_score_matrix(
                matrix.similarity, significant=matrix.p_value < 0.05, label=params["method"]
            ),
            "Model (layer) × brain similarity",
            section="Summary",
            caption=f"{params['method']} correlation of each model entry's RDM (layers of one "
            "model in order) with each brain source's RDM; * p < 0.05 (permutation test).",
        )
    for bname, b in brains.items():
        rel = rels[bname]
        if rel:
            report.add_text(
                f"{bname}: split-half reliability of the brain RDM (odd vs even runs) "
                f"= {rel['split_half']:.3f}; Spearman–Brown corrected = "
                f"{rel['spearman_brown']:.3f}. "
                "A model cannot be expected to correlate with the brain RDM much above this.",
                section="Summary",
            )
        panels = {f"brain: {bname}": b["rdm"]}
        panels.update({f"model: {m}": r for m, r in rdms[bname].items()})
        report.add_figure(
            plot_rdms(panels, rank=True),
            f"RDMs ({bname})",
            section="RDMs",
            caption="Percentile-ranked dissimilarities (0 = most similar).",
        )
        _layer_sliders(report, bname, b["rdm"], rdms[bname])
        if np.isfinite(b["rdm"].values).all():
            report.add_figure(
                plot_mds(b["rdm"], title=f"brain: {bname}"),
                f"MDS ({bname})",
                section="MDS",
                caption="Classical multidimensional scaling of the brain RDM: nearby points "
                "evoke similar response patterns.",
            )
        scores = {m: float(t.observed) for m, t in results[bname].items()}
        pvals = {m: float(t.p_value) for m, t in results[bname].items()}
        ci = cis.get(bname)
        intervals = None
        if ci is not None:
            intervals = {m: (float(ci.ci_lower.sel(model=m)), float(ci.ci_upper.sel(model=m)))
                         for m in scores}  # fmt: skip
        report.add_figure(
            plot_model_comparison(
                scores,
                p_values=pvals,
                reliability=rel.get("split_half") if rel else None,
                ylabel=f"{params['method']} r with brain RDM",
                ci=intervals,
            ),
            f"Model comparison ({bname})",
            section="Model comparison",
            caption="* p < 0.05 (permutation test)."
            + (
                f" Error bars: 95% percentile bootstrap CI over stimuli "
                f"({ci.attrs['n_bootstrap']} samples)."
                if ci is not None
                else ""
            )
            + (" Dashed: split-half reliability of the brain RDM." if rel else ""),
        )
    for bname, c in ceilings.items():
        if c["level"] == "subjects":
            _group_section(report, bname, c, list(results[bname]), params["method"])
            continue
        models = list(results[bname])
        report.add_table(
            [
                {
                    "model": m,
                    f"mean {params['method']} r": c["mean"][m],
                    "SE": c["sem"][m],
                    "noise ceiling lower": c["lower"],
                    "noise ceiling upper": c["upper"],
                }
                for m in models
            ],
            f"Models against {c['n_splits']} run-split RDMs ({bname})",
            section="Noise ceiling",
            caption="The runs are split into independent pairs (1-2, 3-4, ...), one RDM per "
            "pair, treated as rsatoolbox treats subjects: each model's mean similarity with "
            "them, its standard error (bootstrap over splits, 1000 samples) and the noise "
            "ceiling (lower: leave-one-split-out; upper: all splits). A model reaching the "
            "lower bound explains the data as well as the data explain themselves.",
        )
        report.add_figure(
            plot_model_comparison(
                c["mean"],
                errors=c["sem"],
                noise_ceiling=(c["lower"], c["upper"]),
                ylabel=f"mean {params['method']} r with run-split RDMs",
            ),
            f"Noise ceiling ({bname})",
            section="Noise ceiling",
            caption="Bars: mean over run splits ± SE. Grey band: noise ceiling.",
        )


def _group_section(report: Any, bname: str, c: dict, models: list[str], method: str) -> None:
    """Add the group-level table and figure of a source with several subjects."""
    from brainalign.viz import plot_model_comparison

    report.add_table(
        [
            {
                "model": m,
                f"mean {method} r": c["mean"][m],
                "SE": c["sem"][m],
                "p (> 0)": c["p_zero"][m],
                "p (vs lower noise ceiling)": c["p_ceiling"][m],
                "noise ceiling lower": c["lower"],
                "noise ceiling upper": c["upper"],
            }
            for m in models
        ],
        f"Group level: models against {c['n_splits']} subjects ({bname})",
        section="Noise ceiling",
        caption=f"Each model's mean {method} correlation with the subjects' RDMs, its "
        f"standard error and one-sided t-tests against 0 and against the lower noise ceiling, "
        f"from {c['n_bootstrap']} bootstrap samples resampling {c['resample']} "
        f"(rsatoolbox's tests): the p-values generalise to new {c['generalises_to']}. "
        "Noise ceiling: lower = each subject against the mean of the others; upper = against "
        "the mean of all. Uncorrected for the number of models.",
    )
    sig = {m: c["p_zero"][m] for m in models}
    report.add_figure(
        plot_model_comparison(
            c["mean"],
            errors=c["sem"],
            p_values=sig,
            noise_ceiling=(c["lower"], c["upper"]),
            ylabel=f"mean {method} r with subject RDMs",
        ),
        f"Group level ({bname})",
        section="Noise ceiling",
        caption="Bars: mean over subjects ± SE; * p < 0.05 (group-level test against 0). "
        "Grey band: noise ceiling.",
    )


def _rsa_score_matrix(results: dict) -> xr.Dataset | None:
    """Similarity and p-value over (model entry × brain), when there is more than one cell."""
    entries = list(dict.fromkeys(e for tests in results.values() for e in tests))
    brains = list(results)
    if len(entries) * len(brains) < 2:
        return None
    nan = float("nan")

    def cell(b: str, e: str, what: str) -> float:
        t = results[b].get(e)
        return nan if t is None else float(getattr(t, what))

    coords = {"model": entries, "brain": brains}
    return xr.Dataset(
        {
            what: xr.DataArray(
                [[cell(b, e, key) for b in brains] for e in entries],
                dims=("model", "brain"),
                coords=coords,
            )
            for what, key in (("similarity", "observed"), ("p_value", "p_value"))
        }
    )


def _ci_cell(ci: xr.Dataset | None, entry: str) -> str | None:
    """Return ``"[lower, upper]"`` of one model entry's bootstrap CI (None without CIs)."""
    if ci is None:
        return None
    lo, up = (float(ci[k].sel(model=entry)) for k in ("ci_lower", "ci_upper"))
    return f"[{lo:.3g}, {up:.3g}]"


def _best_layers(results: dict, method: str, cis: dict | None = None) -> list[dict[str, Any]]:
    """Rows of (brain, model, best layer, score, CI, p) for every multi-layer model."""
    rows = []
    for bname, tests in results.items():
        ci = (cis or {}).get(bname)
        for model, names in multi_layer_models(tests).items():
            top = max(names, key=lambda n: float(tests[n].observed))
            row = {
                "brain": bname,
                "model": model,
                "best layer": top.split(":", 1)[1],
                f"{method} r": float(tests[top].observed),
            }
            if ci is not None:
                row["95% CI"] = _ci_cell(ci, top)
            row["p (permutation)"] = float(tests[top].p_value)
            row["layers"] = len(names)
            rows.append(row)
    return rows


def _layer_sliders(
    report: Any,
    bname: str,
    brain_rdm: xr.DataArray,
    rdms: dict,
    max_stimuli: int = 200,
) -> None:
    """One slider per multi-layer model: the brain RDM beside each layer's RDM."""
    from brainalign.viz import plot_rdms

    if brain_rdm.sizes["stimulus_a"] > max_stimuli:
        return  # the grid above already shows every layer; big paired images add little
    for model, names in multi_layer_models(rdms).items():
        figs = {
            name.split(":", 1)[1]: plot_rdms(
                {f"brain: {bname}": brain_rdm, name: rdms[name]}, ncols=2
            )
            for name in names
        }
        report.add_slider(
            figs,
            f"{model}: layer by layer ({bname})",
            section="RDMs",
            caption="Drag the slider to step through the model's layers "
            "(percentile-ranked dissimilarities, shared colour scale).",
        )


def _ceiling_cell(brain: dict, rel: dict, ceiling: dict | None) -> str:
    """Return the summary table's noise-ceiling cell of one brain source."""
    if ceiling is not None:
        return f"[{ceiling['lower']:.3g}, {ceiling['upper']:.3g}] ({ceiling['level']})"
    if rel:
        return f"{rel['spearman_brown']:.3g} (split-half reliability, Spearman–Brown)"
    if brain["data"] == "judgments":
        return "none: one set of judgments, no runs"
    if brain["data"] == "meeg":
        return "none: M/EEG epochs, no runs"
    return "none: fewer than 4 runs"


def _summary_caption(spec: dict, brains: dict) -> str:
    """Return the caption of the summary table: what each number is."""
    params = spec["analyses"]["rsa"]
    parts = []
    if any(b["data"] == "patterns" for b in brains.values()):
        parts.append(f"Brain RDMs: {params['metric']} distance between stimulus-mean patterns.")
    if any(b["data"] == "judgments" for b in brains.values()):
        parts.append(
            "Behavioural RDMs: rescaled ratings; unrated pairs are left out of every comparison."
        )
    if any(b["data"] == "meeg" for b in brains.values()):
        parts.append(
            f"M/EEG RDMs: {params['metric']} distance between stimulus-mean channel patterns "
            "averaged over each source's rsa_window (see Data; the Time course section has "
            "one similarity per time point)."
        )
    n_subjects = [
        b["subjects"].sizes["subject"] for b in brains.values() if b.get("subjects") is not None
    ]
    if n_subjects:
        parts.append(
            "Sources with several subjects: their RDM is the mean of the subjects' RDMs and "
            "the permutation p is of that mean; the group-level tests across subjects (which "
            "generalise beyond these subjects) are in the Noise ceiling section."
        )
    parts.append(
        f"Model RDMs: {params['metric']} distance between model activations (or the "
        "model's own dissimilarities)."
    )
    parts.append(
        f"Similarity: {params['method']} correlation of the RDMs' upper triangles. "
        "p: one-sided permutation test over stimulus labels, uncorrected for the "
        "number of models."
    )
    if params["n_bootstrap"]:
        parts.append(
            f"95% CI: percentile interval over {params['n_bootstrap']} bootstrap samples of "
            "the stimuli (pairs of a stimulus with its own copy left out, as rsatoolbox)."
        )
    parts.append(
        "Noise ceiling: where the runs allow, the [lower, upper] ceiling of a model's mean "
        "similarity with independent run-split RDMs (its own mean is in the Noise ceiling "
        "section); with fewer runs, the split-half reliability of the brain RDM."
    )
    n_stimuli = min(b["rdm"].sizes["stimulus_a"] for b in brains.values())
    if any(m["kind"] == "random_network" for m in spec["models"].values()) and n_stimuli < 20:
        parts.append(
            "With few stimuli, an untrained random network (a null model) can "
            "correlate with the brain RDM by chance."
        )
    return " ".join(parts)
