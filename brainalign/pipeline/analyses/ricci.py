"""Ollivier-Ricci curvature of k-NN graphs of brain and model RDMs (Torbati et al.).

One unit per brain source and model: :func:`brainalign.ricci.compare` of the brain RDM with
every usable entry of the model (an RDM with zero or no finite dissimilarities cannot give a
k-NN graph and is left out, with the reason in the report). The assembly groups brain sources
over the same stimuli into one comparison table (``ricci``, or ``ricci/<brains>`` when there
are several groups) and, per brain, draws the curvature and Ricci-flow communities of the
brain and of its best model entry.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import xarray as xr

from brainalign._logging import progress
from brainalign.pipeline._analysis import Analysis, Unit, register_analysis
from brainalign.pipeline._cache import content_key
from brainalign.pipeline._context import capture_warnings
from brainalign.pipeline.analyses._common import brain_model_rdms

_DESCRIPTION = (
    "Brain-versus-model comparison of the Ollivier-Ricci curvature of k-NN graphs over the "
    "stimuli (system_a: brain sources, system_b: model entries; brainalign.ricci.compare). "
    "node_correlation, community_ari and community_nmi are tested against stimulus-label "
    "permutations (*_p); the edge/node Wasserstein and KS distances are descriptive, with "
    "stimulus-bootstrap intervals (*_ci_lower, *_ci_upper) and no p-value."
)
#: The unit entry's attribute that lists the model entries left out, with the reason.
_SKIPPED = "skipped_entries"


@register_analysis
class Ricci(Analysis):
    """Curvature comparison of brain and model k-NN graphs."""

    name = "ricci"
    section = "Ricci curvature"
    progress = "Ricci units"
    schema = {
        "k": (int, False, 10),  # neighbours per stimulus of the k-NN graphs
        "alpha": ((int, float), False, 0.5),  # mass kept on the node, in [0, 1)
        "measure": (str, False, "gaussian"),  # grc, uniform or gaussian (scale-free)
        "method": (str, False, "exact"),  # exact, sinkhorn or atd
        "flow_iterations": (int, False, 20),
        "community_method": (str, False, "cut"),  # cut (GraphRicciCurvature) or louvain
        "n_permutations": (int, False, 200),  # stimulus-label permutations (tested statistics)
        "n_bootstrap": (int, False, 50),  # stimulus resamples (intervals of the distances)
        "n_rewire": (int, False, None),  # removed: read only to say what replaced it
    }
    limits = {
        "k": (1, 10_000, "neighbours per stimulus of the k-NN graphs"),
        "flow_iterations": (0, 10_000, "Ricci-flow iterations"),
        "n_permutations": (0, 10_000_000, "stimulus-label permutations; 0: none"),
        "n_bootstrap": (0, 1_000_000, "stimulus resamples; 0: no intervals"),
    }

    def validate(self, c: Any, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Check the settings (k below the number of stimuli where it is known)."""
        _check_ricci(c, params, spec["brain"])

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Hash the brain RDM, the model RDMs, the Ricci settings and the seed."""
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        return content_key(
            {
                "ricci": ctx.params("ricci"),
                "brain": ctx.brain_key(unit.brain),
                "model": model_key,
                "seed": ctx.seed,
            }
        )

    def compute(self, ctx: Any, unit: Unit) -> xr.Dataset:
        """Compare the brain's graph with the graph of each usable entry of the model."""
        from brainalign import ricci

        params = ctx.params("ricci")
        entries, skipped = {}, {}
        for entry, r in ctx.model_rdms(unit.model, unit.brain).items():
            why = _ricci_usable(r)
            if why is None:
                entries[entry] = r
            else:
                skipped[entry] = why
        if entries:
            ds = ricci.compare(
                {unit.brain: ctx.brain(unit.brain)["rdm"]},
                entries,
                k=params["k"],
                alpha=float(params["alpha"]),
                measure=params["measure"],
                method=params["method"],
                flow_iterations=params["flow_iterations"],
                community_method=params["community_method"],
                n_permutations=params["n_permutations"],
                n_bootstrap=params["n_bootstrap"],
                seed=ctx.seed,
            )
            ds.attrs["description"] = _DESCRIPTION
        else:
            ds = xr.Dataset()
        ds.attrs[_SKIPPED] = json.dumps(skipped)
        return ds

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Group brains over the same stimuli; figures' numbers per brain."""
        params = ctx.params("ricci")
        per_brain: dict[str, list[xr.Dataset]] = {}
        for unit, ds in results.items():
            per_brain.setdefault(unit.brain, []).append(ds)
        groups: dict[tuple[str, ...], list[str]] = {}
        for bname in per_brain:
            groups.setdefault(tuple(ctx.ids(bname)), []).append(bname)
        nodes: dict[str, xr.Dataset] = {}
        out = []
        for bnames in progress(list(groups.values()), "Ricci comparisons"):
            path = "ricci" if len(groups) == 1 else f"ricci/{'+'.join(bnames)}"
            group = {"path": path, "brains": bnames, "ds": None, "figures": {}, "best": {}}
            skipped: dict[str, str] = {}
            rows, notes = [], []
            for bname in bnames:
                parts = []
                for ds in per_brain[bname]:
                    skipped.update(json.loads(ds.attrs.get(_SKIPPED, "{}")))
                    notes += [str(w) for w in np.atleast_1d(ds.attrs.get("warnings", []))]
                    if ds.data_vars:  # the entry may come from a source of another name
                        parts.append(ds.assign_coords(system_a=[bname]))
                if parts:
                    rows.append(_concat(parts, "system_b"))
            group["skipped"] = skipped
            out.append(group)
            if not rows:
                continue
            ds = _concat(rows, "system_a")
            ds.attrs = {k: v for k, v in rows[0].attrs.items() if k != _SKIPPED}
            ds.attrs["description"] = _DESCRIPTION
            ds.attrs["warnings"] = list(dict.fromkeys(notes))
            group["ds"] = ds
            rdms = brain_model_rdms(ctx, bnames[0])
            for bname in bnames:
                (group["figures"][bname], group["best"][bname]), more = capture_warnings(
                    functools.partial(
                        _ricci_figure_data, ds, bname, ctx.brain(bname)["rdm"], rdms, params
                    )
                )
                ctx.add_notes(self.name, more)  # shown with the units' notes
            nodes[path] = ds
            for bname, fig_data in group["figures"].items():
                nodes[f"{path}/curvature/{bname}"] = fig_data
        return nodes, out

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Add what the statistics mean, heat maps, tables, histograms and MDS layouts."""
        _section(report, ctx, state)


def _concat(parts: list[xr.Dataset], dim: str) -> xr.Dataset:
    """Join unit comparisons along ``system_a`` (brains) or ``system_b`` (model entries)."""
    if len(parts) == 1:
        return parts[0]
    return xr.concat(parts, dim=dim, data_vars="all", coords="minimal", compat="override",
                     combine_attrs="override")  # fmt: skip


def _ricci_usable(rdm: xr.DataArray) -> str | None:
    """Why an RDM cannot give a k-NN graph (None when it can)."""
    d = np.asarray(rdm.values, dtype=np.float64)
    off = d[~np.eye(len(d), dtype=bool)]
    if not np.isfinite(off).any():
        return "no finite dissimilarity"
    if (off[np.isfinite(off)] <= 0).any():
        return (
            "zero dissimilarities (stimuli it cannot tell apart), which cannot be graph edge "
            "lengths"
        )
    return None


def _ricci_figure_data(
    ds: xr.Dataset, bname: str, brain_rdm: xr.DataArray, model_rdms: dict, params: dict
) -> tuple[xr.Dataset, str]:
    """Curvature and communities of a brain and its best model entry (the figures' numbers).

    The communities are recomputed as :func:`brainalign.ricci.compare` documents them (with
    the ``"gaussian"`` measure the flow runs on weights divided by their mean, bandwidth
    half the mean edge), so their modularity matches ``modularity_a`` / ``modularity_b``.
    """
    from brainalign import ricci

    score = ds["node_correlation"].sel(system_a=bname)
    best = (
        str(score.idxmax("system_b").item())
        if np.isfinite(score.values).any()
        else str(score["system_b"].values[0])
    )
    model_name = best if best != bname else f"{best} (model)"  # distinct system labels
    systems = {bname: brain_rdm, model_name: model_rdms[best]}
    # compare() works in sorted-id order (Louvain and neighbour ties depend on node order):
    # the same order here keeps the communities, hence the modularity, identical to its.
    ids = sorted(str(s) for s in brain_rdm["stimulus_a"].values)
    systems = {name: r.sel(stimulus_a=ids, stimulus_b=ids) for name, r in systems.items()}
    graphs = [ricci.knn_graph(r, k=params["k"], connected="ignore") for r in systems.values()]
    opts = {"alpha": float(params["alpha"]), "measure": params["measure"],
            "method": params["method"]}  # fmt: skip
    curv = ricci.ollivier_ricci(graphs, **opts)
    flow_graphs, flow_opts = graphs, opts
    if params["measure"] == "gaussian":
        flow_graphs = [g.with_weights(g.edges()[2] / g.edges()[2].mean()) for g in graphs]
        flow_opts = {**opts, "bandwidth": 0.5}
    labels, modularity = [], []
    for g in flow_graphs:
        try:
            flow = ricci.ricci_flow(g, iterations=params["flow_iterations"], **flow_opts)
            comm = ricci.communities(flow, method=params["community_method"], seed=0)
            labels.append(np.asarray(comm.labels.values, dtype=np.int64))
            modularity.append(float(comm.modularity))
        except ValueError:  # compare warned already; no community outline for this one
            labels.append(np.full(g.n_nodes, -1, dtype=np.int64))
            modularity.append(float("nan"))
    ids = [str(s) for s in graphs[0].stimulus]
    names = list(systems)
    edges = []
    for name, c in zip(names, curv, strict=True):
        e = c.edges
        edges.append(
            xr.Dataset(
                {"edge_curvature": ("edge", e.values.astype(np.float64))},
                coords={
                    "edge_system": ("edge", [name] * e.sizes["edge"]),
                    "source": ("edge", [str(v) for v in e["source"].values]),
                    "target": ("edge", [str(v) for v in e["target"].values]),
                    "weight": ("edge", np.asarray(e["weight"].values, dtype=np.float64)),
                },
            )
        )
    data = xr.merge(
        [
            xr.concat(edges, dim="edge"),
            xr.Dataset(
                {
                    "node_curvature": (
                        ("system", "stimulus"),
                        np.stack([np.asarray(c.nodes.values, dtype=np.float64) for c in curv]),
                    ),
                    "community": (("system", "stimulus"), np.stack(labels)),
                    "modularity": ("system", modularity),
                },
                coords={"system": names, "stimulus": ids},
            ),
        ]
    )
    data.attrs.update(
        brain=bname,
        best_model=best,
        description="Edge and node curvature and Ricci-flow communities (-1: none found) of "
        "the brain and its best model entry (highest node-curvature correlation): the numbers "
        "behind the report's Ricci figures.",
    )
    return data, best


_RICCI_TEXT = (
    "Each RDM becomes a k-nearest-neighbour graph over the stimuli (k = {k}; edge length = "
    "dissimilarity; unrated pairs of incomplete human RDMs are never edges). The Ollivier-"
    "Ricci curvature of an edge compares the neighbourhoods of its two ends: positive when "
    "they overlap (the edge lies inside a cluster), negative when the edge is a bridge "
    "between regions. Measure: {measure} (alpha = {alpha}; 'gaussian' and 'uniform' do not "
    "depend on the RDM's units), solver: {method}. A Ricci flow ({flow} iterations) "
    "lengthens bridges and shrinks cluster edges; cutting its long edges gives communities "
    "({community}).\n\n"
    "Tested (p-values and stars): node_correlation, the Spearman correlation across "
    "stimuli of node curvature (does each stimulus sit in a cluster or on a bridge in both "
    "systems?), and community ARI / NMI, the agreement of the Ricci-flow communities; p "
    "for these: {n_perm} stimulus-label permutations, a null under which brain and model "
    "are independent. Stars: * p < 0.05, ** p < 0.01, *** p < 0.001, uncorrected for the "
    "number of cells.\n\n"
    "Descriptive (no p-value, never starred): edge/node Wasserstein and KS, distances "
    "between the shapes of the two systems' curvature distributions (lower = more alike), "
    "with approximate 95 % intervals from {n_boot} stimulus bootstrap resamples (stimuli "
    "drawn with replacement, both graphs rebuilt; centred on the observed value). They do "
    "not measure correspondence: two unrelated clustered systems have alike "
    "distributions, and no null of independence exists for them. modularity: how clearly "
    "each graph splits into its communities."
)


def _section(report: Any, ctx: Any, groups: list[dict[str, Any]]) -> None:
    """Ricci curvature: what the statistics mean, heat maps, histograms, MDS layouts."""
    from brainalign import ricci
    from brainalign.viz import new_figure

    params = ctx.params("ricci")
    section = "Ricci curvature"
    report.add_text(
        _RICCI_TEXT.format(
            k=params["k"],
            measure=params["measure"],
            alpha=params["alpha"],
            method=params["method"],
            flow=params["flow_iterations"],
            community=params["community_method"],
            n_perm=params["n_permutations"],
            n_boot=params["n_bootstrap"],
        ),
        "What the curvature statistics mean",
        section=section,
    )
    for group in groups:
        label = ", ".join(group["brains"])
        if group["skipped"]:
            report.add_text(
                "Left out of the curvature comparison: "
                + "; ".join(f"{e} (its RDM has {why})" for e, why in group["skipped"].items())
                + ".",
                section=section,
            )
        ds = group["ds"]
        if ds is None:
            continue
        stats = ("node_correlation", "edge_wasserstein", "community_ari")
        n_b = ds.sizes.get("system_b", 1)
        n_a = ds.sizes.get("system_a", 1)
        fig = new_figure((3.2 + 0.9 * n_b, 1.6 + len(stats) * (1.2 + 0.45 * n_a)))
        axes = fig.subplots(len(stats), 1)
        for i, (ax, stat) in enumerate(zip(np.atleast_1d(axes), stats, strict=True)):
            ricci.plot_compare(ds, stat, ax=ax)
            if i < len(stats) - 1:  # one set of column labels, under the last map
                ax.set_xticklabels([])
                ax.set_xlabel("")
        report.add_figure(
            fig,
            f"Curvature comparison: brain × model ({label})",
            section=section,
            caption="Rows: brain sources; columns: model entries. node_correlation and "
            "community_ari: higher = more alike, stars from the stimulus-permutation null; "
            "edge_wasserstein: lower = more alike, descriptive, with its 95 % "
            "stimulus-bootstrap interval in brackets (no p-value). Every value, p-value "
            f"and interval is in results.nc ({group['path']}).",
        )
        rows = []
        for a in np.atleast_1d(ds["system_a"].values):
            for b in np.atleast_1d(ds["system_b"].values):
                cell = ds.sel(system_a=a, system_b=b)
                row = {"brain": str(a), "model": str(b)}
                for stat in ("node_correlation", "community_ari", "community_nmi"):
                    row[stat] = float(cell[stat])
                    row[f"{stat} p"] = float(cell[f"{stat}_p"])
                for stat in ("edge_wasserstein", "edge_ks"):  # descriptive: no p-value
                    row[f"{stat} (descriptive)"] = float(cell[stat])
                    row[f"{stat} 95 % CI"] = (
                        f"[{float(cell[f'{stat}_ci_lower']):.3g}, "
                        f"{float(cell[f'{stat}_ci_upper']):.3g}]"
                    )
                row["modularity (brain)"] = float(cell["modularity_a"])
                row["modularity (model)"] = float(cell["modularity_b"])
                rows.append(row)
        report.add_table(rows, f"Curvature statistics ({label})", section=section)
        for bname, data in group["figures"].items():
            best = group["best"][bname]
            results = {}
            for name in data["system"].values:
                sel = data["edge_system"].values == name
                results[str(name)] = data["edge_curvature"].values[sel]
            fig = new_figure((5.2, 3.8))
            ax = ricci.plot_curvature(results, ax=fig.add_subplot(), title=f"{bname} vs {best}")
            _legend_below(fig, ax)
            report.add_figure(
                fig,
                f"Edge curvature: {bname} vs {best}",
                section=section,
                caption="Distribution of edge curvature of the brain graph and of the model "
                "entry whose node curvature correlates best with the brain's. Dashed: means. "
                "Mass above 0: edges within clusters; below 0: bridges.",
            )
            fig = new_figure((10.5, 4.4))
            axes = fig.subplots(1, 2)
            for ax, name in zip(axes, data["system"].values, strict=True):
                _node_panel(ax, data, str(name), params)
            report.add_figure(
                fig,
                f"Node curvature and Ricci-flow communities: {bname} and {best}",
                section=section,
                caption="Classical MDS of each graph's shortest-path distances; colour: node "
                "curvature (red: inside clusters, blue: on bridges); marker shape and outline: "
                "Ricci-flow community; grey lines: the graph's edges.",
            )


def _legend_below(fig: Any, ax: Any) -> None:
    """Move the axes' legend under the figure (outside the data: it never covers a bar)."""
    legend = ax.get_legend()
    if legend is None:
        return
    handles, labels = ax.get_legend_handles_labels()
    legend.remove()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 2), frameon=False
    )


def _node_panel(ax: Any, data: xr.Dataset, name: str, params: dict) -> None:
    """Rebuild one system's curvature result from the stored numbers and draw it."""
    from scipy.sparse import coo_matrix

    from brainalign import ricci

    sel = data["edge_system"].values == name
    ids = [str(s) for s in data["stimulus"].values]
    pos = {s: i for i, s in enumerate(ids)}
    src = np.array([pos[s] for s in data["source"].values[sel]], dtype=np.int64)
    dst = np.array([pos[s] for s in data["target"].values[sel]], dtype=np.int64)
    w = data["weight"].values[sel]
    n = len(ids)
    a = coo_matrix((np.r_[w, w], (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)).tocsr()
    a.sort_indices()
    graph = ricci.Graph(
        a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data.astype(np.float64),
        np.asarray(ids),
    )  # fmt: skip
    nodes = data["node_curvature"].sel(system=name).rename(stimulus="node")
    result = ricci.CurvatureResult(edges=data["edge_curvature"][sel], nodes=nodes,
                             nodes_weighted=nodes, graph=graph)  # fmt: skip
    comm = data["community"].sel(system=name).values
    q = float(data["modularity"].sel(system=name))
    ricci.plot_node_curvature(
        result,
        communities=None if (comm < 0).all() else comm,
        ax=ax,
        title=f"{name}" + (f" (modularity {q:.2f})" if np.isfinite(q) else ""),
    )


def _check_ricci(c: Any, params: dict[str, Any], brain: dict[str, Any]) -> None:
    """Check the Ricci settings (k below the number of stimuli where it is known)."""
    from brainalign.datasets import HAXBY_CATEGORIES
    from brainalign.ricci import COMMUNITY_METHODS, MEASURES, METHODS

    where = ("analyses", "ricci")
    if params["k"] < 1:
        c.fail((*where, "k"), f"must be an integer >= 1, got {params['k']}.")
    for bname, src in brain.items():  # pattern datasets: the stimuli are known up front
        if src["dataset"] == "haxby2001" and params["k"] >= len(HAXBY_CATEGORIES):
            c.fail(
                (*where, "k"),
                f"must be < the number of stimuli of brain.{bname} ({len(HAXBY_CATEGORIES)} "
                f"Haxby categories), got {params['k']}; try k: 3.",
            )
    if not 0 <= params["alpha"] < 1:
        c.fail((*where, "alpha"), f"must be in [0, 1), got {params['alpha']}.")
    c.option((*where, "measure"), params["measure"], MEASURES)
    c.option((*where, "method"), params["method"], METHODS)
    c.option((*where, "community_method"), params["community_method"], COMMUNITY_METHODS)
    if params.pop("n_rewire") is not None:
        c.fail(
            (*where, "n_rewire"),
            "was removed: the degree-preserving rewiring null does not test brain-model "
            "correspondence (any clustered model beats it), so the curvature-distribution "
            "distances are now descriptive with stimulus-bootstrap intervals; use "
            "n_bootstrap: N instead (default 50).",
        )
    for key in ("flow_iterations", "n_permutations", "n_bootstrap"):
        if params[key] < 0:
            c.fail((*where, key), f"must be >= 0, got {params[key]}.")
