"""RSA: each model entry's RDM against each brain RDM, with permutation p-values.

One unit per brain source and model: the model's RDMs over the brain's stimuli and a
stimulus-label permutation test of all its entries (one call: the layers share every
permutation). Per brain source, the assembly adds each entry's p-value corrected over the
layers of its model (max statistic over the same permutations, ``p_value_fwe``), a
stimulus-bootstrap CI of every entry (one batch), the split-half reliability of the brain RDM
(whose Spearman–Brown square root bounds the r with the all-runs RDM) and, with 4 runs or
more, the noise ceiling over run-split RDMs (pseudo-subjects), which bounds the mean r with
those same RDMs. The report section is the Summary, RDMs, MDS, Model comparison and Noise
ceiling; every score in it stands beside the ceiling of its own comparison.
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

#: What ``p_value_fwe`` of ``rsa/<brain>`` in results.nc is.
_FWE_DESCRIPTION = (
    "permutation p corrected over the layers of the entry's model: the entry's similarity "
    "against the maximum similarity over that model's layers under the same stimulus "
    "permutations (max statistic, family-wise); a model with one entry: its own p"
)
#: What ``ceiling_full_rdm`` of ``rsa/<brain>`` in results.nc is.
_FULL_CEILING_DESCRIPTION = (
    "sqrt of the Spearman-Brown corrected split-half reliability of the brain RDM: the "
    "similarity a noiseless model can be expected to reach with the all-runs brain RDM "
    "(classical attenuation bound); it bounds 'similarity', not 'split_mean'"
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
        rdms = ctx.model_rdms(unit.model, unit.brain)
        # One call for all entries: every entry (layer) sees the same stimulus permutations,
        # column for column, which the max statistic over layers (assemble) relies on.
        res = rsa.permutation_test(
            brain["rdm"],
            stack_rdms(rdms),
            params["method"],
            n_permutations=params["n_permutations"],
            seed=ctx.seed,
        )
        tests = {entry: res.sel(model=entry).drop_vars("model") for entry in rdms}
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
        state["fwe"] = {b: _layer_fwe(t) for b, t in tests.items()}
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
            nodes.update(
                _nodes(
                    ctx, bname, brain, stack, tests[bname], reliability, ceiling, ci,
                    state["fwe"][bname],
                )
            )  # fmt: skip
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


def _full_rdm_ceiling(rel: dict[str, float]) -> float:
    """Return sqrt(Spearman–Brown reliability): the ceiling of r with the all-runs brain RDM."""
    sb = rel.get("spearman_brown", float("nan"))
    return float(np.sqrt(sb)) if sb >= 0 else float("nan")


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


def _max_statistic_p(
    observed: np.ndarray, null: np.ndarray, exact: bool, tie: float = 1e-12
) -> np.ndarray:
    """Family-wise p-values by the maximum statistic over a family of tests.

    Each test's observed value is compared with the maximum over the family of the null
    values of the same permutation (the null's columns must be the same permutations for
    every row). With random permutations (identity not in ``null``)
    ``p = (1 + #{max null >= observed}) / (1 + n_null)``; with the exhaustive set (``exact``,
    identity among the columns) ``p = #{max null >= observed} / n_null``.

    Parameters
    ----------
    observed : numpy.ndarray, shape (n_tests,)
        The observed statistics (larger is more extreme).
    null : numpy.ndarray, shape (n_tests, n_null)
        The null statistics, one column per permutation shared by all tests.
    exact : bool
        Whether the columns are every permutation, identity included.
    tie : float
        A null maximum below an observed value by less than ``tie * max(1, |observed|)``
        counts as ``>=`` (the ``tie_margin`` attr of
        :func:`brainalign.rsa.permutation_test`).

    Returns
    -------
    p : numpy.ndarray, shape (n_tests,)
        One-sided (greater) FWE-corrected p-values; NaN nulls never count as exceeding.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if null.ndim != 2 or null.shape[0] != observed.shape[0] or null.shape[1] < 1:
        raise ValueError(
            f"null must have shape (n_tests={observed.shape[0]}, n_null >= 1), got {null.shape}."
        )
    top = np.where(np.isnan(null), -np.inf, null).max(axis=0)  # (n_null,)
    tie = tie * np.maximum(1.0, np.abs(observed))  # the tie rule of each test's p_value
    ge = (top[None, :] >= (observed - tie)[:, None]).sum(axis=1)
    n_null = null.shape[1]
    return ge / n_null if exact else (1 + ge) / (1 + n_null)


def _layer_fwe(tests: dict[str, Any]) -> dict[str, float]:
    """Return each entry's p-value corrected over the layers of its model (max statistic).

    The family of an entry ``model:layer`` is every layer of that model; an entry of a model
    with one entry is a family of one (its own permutation p). The nulls of one unit share
    their permutations (one :func:`brainalign.rsa.permutation_test` call), so no permutation
    is recomputed.
    """
    out = {e: float(t.p_value) for e, t in tests.items()}
    for names in multi_layer_models(tests).values():
        t = [tests[n] for n in names]
        n_null = min(x.sizes["permutation"] for x in t)
        null = np.stack([np.asarray(x.null.values)[:n_null] for x in t])
        obs = np.array([float(x.observed) for x in t])
        exact = all(bool(x.attrs["exact"]) for x in t)
        tie = max(float(x.attrs.get("tie_margin", 1e-12)) for x in t)
        p_fam = _max_statistic_p(obs, null, exact, tie)
        out.update(zip(names, (float(p) for p in p_fam), strict=True))
    return out


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
    fwe: dict[str, float],
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
                [float(x.p_value) for x in t],
                dims="model",
                coords={"model": models},
                attrs={"description": "permutation p of each entry, uncorrected"},
            ),
            "p_value_fwe": xr.DataArray(
                [fwe[m] for m in models],
                dims="model",
                coords={"model": models},
                attrs={"description": _FWE_DESCRIPTION},
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
                    "ceiling_full_rdm": _full_rdm_ceiling(reliability),
                    "ceiling_full_rdm_description": _FULL_CEILING_DESCRIPTION,
                    "reliability_split_half_description": "similarity of the RDMs of odd and "
                    "even runs (each half the data); bounds no score shown",
                }
                if reliability
                else {}
            ),
            **(
                {
                    "noise_ceiling_lower": ceiling["lower"],
                    "noise_ceiling_upper": ceiling["upper"],
                    "noise_ceiling_description": "bounds split_mean (the mean similarity "
                    "with the same run-split RDMs), not similarity",
                    "n_run_splits": ceiling["n_splits"],
                }
                if ceiling is not None and ceiling["level"] == "run splits"
                else {}
            ),
            **(
                {
                    "noise_ceiling_lower": ceiling["lower"],
                    "noise_ceiling_upper": ceiling["upper"],
                    "noise_ceiling_description": "bounds group_mean (the mean similarity "
                    "with the same subjects' RDMs), not similarity",
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
    from brainalign.viz import plot_mds, plot_rdms, plot_score_matrix

    spec = ctx.spec
    params = ctx.params("rsa")
    method = params["method"]
    brains, rdms, results = state["brains"], state["rdms"], state["tests"]
    rels, ceilings, cis = state["reliability"], state["ceilings"], state["cis"]
    fwe = state.get("fwe") or {b: _layer_fwe(t) for b, t in results.items()}
    layered = any(multi_layer_models(t) for t in results.values())
    rows = _summary_rows(brains, results, rels, ceilings, cis, fwe, method, layered)
    best = _best_layers(results, method, cis, fwe)
    if best:
        report.add_table(
            best,
            "Best layer per model",
            section="Summary",
            caption="For models with several layers: the layer whose RDM is most similar to "
            "each brain RDM. p (FWE over layers): the best layer's r against the maximum r "
            "over all the model's layers under the same stimulus permutations (max "
            "statistic), which accounts for picking the best of several layers. p uncorrected "
            "(this layer): that layer's own permutation p, which ignores the selection and is "
            "too small for a chosen layer. The 95% CI (stimulus bootstrap) is of the chosen "
            "layer's r and does not account for the selection either.",
        )
    report.add_table(
        rows,
        "Brain–model RDM similarity",
        section="Summary",
        caption=_summary_caption(spec, brains, layered),
    )
    matrix = _rsa_score_matrix(results, fwe)
    if matrix is not None:
        fig = plot_score_matrix(
            matrix.similarity,
            significant=matrix.p_value_fwe < 0.05,
            label=f"{method} r",
            cmap="RdBu_r",
            center=0.0,
        )
        report.add_figure(
            fig,
            "Model (layer) × brain similarity",
            section="Summary",
            caption=f"{method} correlation of each model entry's RDM (layers of one model in "
            "order) with each brain source's RDM. Colour scale symmetric around 0 (red "
            "positive, blue negative), not stretched between the smallest and largest value. "
            "* p < 0.05 by the stimulus-label permutation test"
            + (
                ", corrected over the layers of each model by the maximum statistic"
                if layered
                else ""
            )
            + " (not corrected across models or brains).",
        )
    for bname, b in brains.items():
        rel = rels[bname]
        if rel:
            report.add_text(_reliability_text(bname, rel, ceilings.get(bname), method),
                            section="Summary")  # fmt: skip
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
        _comparison_figure(report, bname, results[bname], fwe[bname], rel, cis.get(bname),
                           method, layered)  # fmt: skip
    for bname, c in ceilings.items():
        if c["level"] == "subjects":
            _group_section(report, bname, c, list(results[bname]), method)
            continue
        _split_section(report, bname, c, list(results[bname]), method)


def _summary_rows(
    brains: dict,
    results: dict,
    rels: dict,
    ceilings: dict,
    cis: dict,
    fwe: dict,
    method: str,
    layered: bool,
) -> list[dict[str, Any]]:
    """Rows of the summary table: two score–ceiling pairs, each from one comparison.

    ``{method} r (brain RDM)`` is bounded by ``ceiling of r (brain RDM)``; ``mean {method} r
    (split RDMs)`` by ``noise ceiling`` (the same split RDMs).
    """
    rows = []
    for bname in brains:
        ceiling = ceilings.get(bname)
        for mname, test in results[bname].items():
            row: dict[str, Any] = {
                "brain": bname,
                "model": mname,
                f"{method} r (brain RDM)": float(test.observed),
            }
            if bname in cis:
                row["95% CI"] = _ci_cell(cis[bname], mname)
            row["ceiling of r (brain RDM)"] = _full_ceiling_cell(brains[bname], rels[bname])
            row["p (permutation, uncorrected)"] = float(test.p_value)
            if layered:
                row["p (FWE over layers)"] = fwe[bname][mname]
            row["permutations"] = f"{test.attrs['n_permutations']}" + (
                " (exact)" if test.attrs["exact"] else ""
            )
            row[f"mean {method} r (split RDMs)"] = (
                ceiling["mean"][mname] if ceiling is not None else "n/a"
            )
            row["noise ceiling"] = _ceiling_cell(brains[bname], rels[bname], ceiling)
            rows.append(row)
    return rows


def _reliability_text(bname: str, rel: dict, ceiling: dict | None, method: str) -> str:
    """Say what each reliability figure of one brain source bounds."""
    text = (
        f"{bname}: split-half reliability of the brain RDM (odd vs even runs) = "
        f"{rel['split_half']:.3f}: the {method} correlation of two RDMs each from half the "
        f"runs; it bounds nothing shown here. Spearman–Brown corrected = "
        f"{rel['spearman_brown']:.3f}: the estimated reliability of the RDM of all runs; its "
        f"square root, {_full_rdm_ceiling(rel):.3f}, is the ceiling of a model's r with that "
        "all-runs brain RDM (the r a noiseless model can be expected to reach; column "
        "'ceiling of r (brain RDM)')."
    )
    if ceiling is not None and ceiling["level"] == "run splits":
        text += (
            f" The noise ceiling [{ceiling['lower']:.3f}, {ceiling['upper']:.3f}] bounds a "
            f"different score: a model's mean r with the {ceiling['n_splits']} run-split RDMs "
            "(two runs each, so noisier: lower values; column 'mean "
            f"{method} r (split RDMs)'). Compare each score only with its own ceiling."
        )
    return text


def _comparison_figure(
    report: Any,
    bname: str,
    tests: dict,
    fwe: dict[str, float],
    rel: dict,
    ci: xr.Dataset | None,
    method: str,
    layered: bool,
) -> None:
    """Add the model comparison bar chart of one brain source (stars: one declared test)."""
    from brainalign.viz import plot_model_comparison

    scores = {m: float(t.observed) for m, t in tests.items()}
    intervals = None
    if ci is not None:
        intervals = {m: (float(ci.ci_lower.sel(model=m)), float(ci.ci_upper.sel(model=m)))
                     for m in scores}  # fmt: skip
    bound = _full_rdm_ceiling(rel) if rel else None
    fig = plot_model_comparison(
        scores,
        p_values={m: fwe[m] for m in scores},
        reliability=bound if bound is not None and np.isfinite(bound) else None,
        ylabel=f"{method} r with brain RDM",
        ci=intervals,
        reliability_label="ceiling of r: √(Spearman–Brown)",
    )
    caption = (
        f"Bars: the {method} r of each model entry with the brain RDM. * p < 0.05 by one "
        "test, the stimulus-label permutation test (labels of the model RDM permuted, "
        "stimuli fixed: is the association stronger than for random pairings of these "
        "stimuli?)"
        + (", corrected over the layers of each model by the maximum statistic" if layered else "")
        + "; not corrected across models."
    )
    if ci is not None:
        caption += (
            f" Error bars: 95% percentile bootstrap CI over stimuli "
            f"({ci.attrs['n_bootstrap']} samples). It resamples the stimuli (how much r would "
            "vary with another sample of stimuli) and is not the test behind the stars: "
            "it answers a different question and, with few stimuli, can span 0 beside a "
            "small permutation p."
        )
    if bound is not None and np.isfinite(bound):
        caption += (
            f" Dashed: the ceiling of r with this brain RDM, √(Spearman–Brown split-half "
            f"reliability) = {bound:.2f}."
        )
    report.add_figure(fig, f"Model comparison ({bname})", section="Model comparison",
                      caption=caption)  # fmt: skip


def _split_section(report: Any, bname: str, c: dict, models: list[str], method: str) -> None:
    """Add the run-split table and figure: each mean score beside its own noise ceiling."""
    from brainalign.viz import plot_model_comparison

    report.add_table(
        [
            {
                "model": m,
                f"mean {method} r (split RDMs)": c["mean"][m],
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
        "ceiling of that same mean (lower: each split against the mean of the others; upper: "
        "against the mean of all). A model reaching the lower bound explains the split RDMs "
        "as well as they explain each other. These means are lower than the r with the "
        "all-runs brain RDM (Summary) because each split RDM has two runs only: compare each "
        "score with its own ceiling.",
    )
    report.add_figure(
        plot_model_comparison(
            c["mean"],
            errors=c["sem"],
            noise_ceiling=(c["lower"], c["upper"]),
            ylabel=f"mean {method} r with run-split RDMs",
        ),
        f"Noise ceiling ({bname})",
        section="Noise ceiling",
        caption="Bars: mean r over the run-split RDMs ± SE. Grey band: the noise ceiling of "
        "that mean (same split RDMs). No stars: this figure shows no test.",
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


def _rsa_score_matrix(results: dict, fwe: dict | None = None) -> xr.Dataset | None:
    """Similarity and p-values over (model entry × brain), when there is more than one cell.

    ``p_value`` is each entry's own permutation p; ``p_value_fwe`` is corrected over the
    layers of its model (``fwe``: brain → entry → p; without it, the uncorrected p).
    """
    entries = list(dict.fromkeys(e for tests in results.values() for e in tests))
    brains = list(results)
    if len(entries) * len(brains) < 2:
        return None
    nan = float("nan")

    def cell(b: str, e: str, what: str) -> float:
        t = results[b].get(e)
        if t is None:
            return nan
        if what == "p_value_fwe":
            return float((fwe or {}).get(b, {}).get(e, t.p_value))
        return float(getattr(t, what))

    coords = {"model": entries, "brain": brains}
    return xr.Dataset(
        {
            what: xr.DataArray(
                [[cell(b, e, key) for b in brains] for e in entries],
                dims=("model", "brain"),
                coords=coords,
            )
            for what, key in (
                ("similarity", "observed"),
                ("p_value", "p_value"),
                ("p_value_fwe", "p_value_fwe"),
            )
        }
    )


def _ci_cell(ci: xr.Dataset | None, entry: str) -> str | None:
    """Return ``"[lower, upper]"`` of one model entry's bootstrap CI (None without CIs)."""
    if ci is None:
        return None
    lo, up = (float(ci[k].sel(model=entry)) for k in ("ci_lower", "ci_upper"))
    return f"[{lo:.3g}, {up:.3g}]"


def _best_layers(
    results: dict, method: str, cis: dict | None = None, fwe: dict | None = None
) -> list[dict[str, Any]]:
    """Rows of (brain, model, best layer, score, CI, p) for every multi-layer model.

    ``fwe`` (brain → entry → p corrected over the model's layers, see :func:`_layer_fwe`)
    is computed from the tests' nulls when not given.
    """
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
            p_fwe = (fwe or {}).get(bname, {}).get(top)
            if p_fwe is None and all(hasattr(tests[n], "null") for n in names):
                p_fwe = _layer_fwe({n: tests[n] for n in names})[top]
            if p_fwe is not None:
                row["p (FWE over layers)"] = float(p_fwe)
            row["p uncorrected (this layer)"] = float(tests[top].p_value)
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


def _full_ceiling_cell(brain: dict, rel: dict) -> str:
    """Return the summary's ceiling of r with the brain RDM: √(Spearman–Brown reliability)."""
    if rel:
        bound = _full_rdm_ceiling(rel)
        return f"{bound:.3g}" if np.isfinite(bound) else "n/a (reliability < 0)"
    if brain.get("subjects") is not None:
        return "n/a: mean of subject RDMs (see noise ceiling)"
    if brain["data"] == "judgments":
        return "none: one set of judgments, no runs"
    if brain["data"] == "meeg":
        return "none: M/EEG epochs, no runs"
    return "none: no split-half reliability"


def _ceiling_cell(brain: dict, rel: dict, ceiling: dict | None) -> str:
    """Return the summary table's noise-ceiling cell: the ceiling of the mean split r."""
    if ceiling is not None:
        return f"[{ceiling['lower']:.3g}, {ceiling['upper']:.3g}] ({ceiling['level']})"
    if brain["data"] == "judgments":
        return "none: one set of judgments, no runs"
    if brain["data"] == "meeg":
        return "none: M/EEG epochs, no runs"
    return "none: fewer than 4 runs"


def _summary_caption(spec: dict, brains: dict, layered: bool = False) -> str:
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
    method = params["method"]
    parts.append(
        f"Two scores, each beside the ceiling of the same comparison. '{method} r (brain "
        f"RDM)': the {method} correlation of the upper triangles of the model RDM and the "
        "brain RDM (all runs); 'ceiling of r (brain RDM)' bounds it: √ of the Spearman–Brown "
        "split-half reliability of that brain RDM, the r a noiseless model can be expected "
        f"to reach. 'mean {method} r (split RDMs)': the model's mean r with independent "
        "run-split RDMs (or with the subjects' RDMs); 'noise ceiling' bounds it: the "
        "[lower, upper] noise ceiling over the same split RDMs (see the Noise ceiling "
        "section). The split RDMs hold fewer runs each, so both that mean and its ceiling "
        "are lower than the all-runs pair: compare a score only with its own ceiling."
    )
    parts.append(
        "p (permutation, uncorrected): one-sided test with the stimuli fixed and the labels "
        "of the model RDM permuted (is the association stronger than for random pairings of "
        "these stimuli?), uncorrected for the number of models."
        + (
            " p (FWE over layers): the same permutations, each layer against the maximum r "
            "over its model's layers (max statistic), correcting for picking a layer; for a "
            "model with one entry it equals the uncorrected p."
            if layered
            else ""
        )
    )
    if params["n_bootstrap"]:
        parts.append(
            f"95% CI: percentile interval over {params['n_bootstrap']} bootstrap samples of "
            "the stimuli (stimuli resampled; pairs of a stimulus with its own copy left out, "
            "as rsatoolbox): how much r would vary with another sample of stimuli. It answers "
            "another question than the permutation p and is no test: with few stimuli it can "
            "span 0 beside a small p. Stars in the figures come from the permutation test only."
        )
    n_stimuli = min(b["rdm"].sizes["stimulus_a"] for b in brains.values())
    if any(m["kind"] == "random_network" for m in spec["models"].values()) and n_stimuli < 20:
        parts.append(
            "With few stimuli, an untrained random network (a null model) can "
            "correlate with the brain RDM by chance."
        )
    return " ".join(parts)
