"""Searchlight RSA: a brain map of model-brain RDM similarity in spheres around each voxel.

One unit per pattern source and model: each model entry's RDM against the RDM of the
stimulus-mean patterns within ``radius`` mm of every voxel (:func:`brainalign.rsa.searchlight`).

Corrected maps: for a source of one subject, the map is recomputed for ``n_permutations``
stimulus-label permutations of the model RDM (rows and columns together; the same
permutations for every centre, all in the same batched pass as the observed map), and each
centre's p-value is taken against the maximum over centres of every permuted map
(max-statistic family-wise error, :func:`~brainalign.pipeline.analyses._common.max_stat_fwe`).
For a source of several subjects the group map is tested by sign flips of the subjects' maps
(maximum t over the map, :func:`brainalign.rsa.sign_flip_test`).
"""

from __future__ import annotations

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
    finite_peak,
    max_stat_fwe,
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
        # one subject: stimulus-label permutations of the model RDM, max over centres (FWE);
        # several subjects: one map per subject, then a group map tested by sign flips
        # (max-t family-wise correction); 0: the map of the mean patterns only, untested
        "n_permutations": (int, False, 1000),
    }
    limits = {
        "n_permutations": (
            0,
            10_000_000,
            "stimulus-label permutations (one subject) or sign flips (several); 0: none",
        )
    }

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
        """Hash the source's data, the model RDMs and the searchlight settings.

        With permutations also the seed: a source of one subject draws its stimulus-label
        permutations here (a source of several subjects draws its sign flips when the maps
        are assembled, but whether it has one subject is known only once it is loaded).
        """
        model_key = ctx.model_key(unit.model, unit.brain)
        if model_key is None:
            return None
        params = ctx.params("searchlight")
        payload = {
            "data": ctx.data_key(unit.brain),
            "model": model_key,
            "searchlight": params,
        }
        if params["n_permutations"]:
            payload["seed"] = ctx.seed
        return content_key(payload)

    def compute(self, ctx: Any, unit: Unit) -> xr.DataTree:
        """One map per model entry (per subject for a source with several subjects)."""
        from brainalign import rsa

        params = ctx.params("searchlight")
        data = ctx.data(unit.brain)
        subjects = _subjects(data) if params["n_permutations"] else None
        opts = dict(radius=float(params["radius"]), metric=params["metric"],
                    method=params["method"])  # fmt: skip
        maps: dict[str, Any] = {}
        for entry, r in ctx.model_rdms(unit.model, unit.brain).items():
            if subjects is None and params["n_permutations"]:
                maps[entry] = permuted_searchlight(
                    data.means, r, n_permutations=params["n_permutations"], seed=ctx.seed,
                    **opts,
                )  # fmt: skip
            elif subjects is None:
                maps[entry] = rsa.searchlight(data.means, r, **opts)
            else:  # one map per subject, for the group-level test
                per = [rsa.searchlight(p, r, **opts) for p in subjects.values()]
                maps[entry] = xr.concat(per, dim="subject").assign_coords(subject=list(subjects))
        return entries_to_tree(maps, {"unit": unit.key})

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Per brain source: the maps stacked over model entries, with their FWE tests."""
        from brainalign import rsa

        params = ctx.params("searchlight")
        maps = by_brain({u: tree_to_entries(t) for u, t in results.items()})
        nodes, tests = {}, {}
        for bname, entries in maps.items():
            first = next(iter(entries.values()))
            kind = None
            if isinstance(first, xr.Dataset):  # one subject: stimulus-label permutations
                kind = "permutation"
                tested = entries
            elif "subject" in first.dims:  # group level across subjects: sign flips
                kind = "sign_flip"
                tested = {
                    e: rsa.sign_flip_test(m, n_permutations=params["n_permutations"],
                                          seed=ctx.seed).rename(mean_score="similarity")
                    for e, m in entries.items()
                }  # fmt: skip
            else:
                tested = {e: m.to_dataset(name="similarity") for e, m in entries.items()}
            names = list(tested)
            keep = [
                v
                for v in ("similarity", "t", "p_fwe", "fwe_threshold", "null_max")
                if v in tested[names[0]]
            ]
            ds = xr.concat(
                [tested[e][keep] for e in names], dim="model", join="exact",
                combine_attrs="override",
            ).assign_coords(model=names)  # fmt: skip
            ds.attrs = {}
            if kind is not None:
                attrs = tested[names[0]].attrs
                ds.attrs.update(
                    n_permutations=int(attrs["n_permutations"]),
                    test=str(attrs["test"]),
                    fwe_alpha=FWE_ALPHA,
                )
                if kind == "sign_flip":
                    ds.attrs["n_subjects"] = int(attrs["n_subjects"])
                ds["p_fwe"].attrs = {
                    "long_name": "family-wise error corrected p-value (max statistic)",
                    "test": str(attrs["test"]),
                }
                ds["significant_fwe"] = ds["p_fwe"] <= FWE_ALPHA
                ds["significant_fwe"].attrs = {
                    "long_name": f"p_fwe <= {FWE_ALPHA}",
                    "alpha": FWE_ALPHA,
                }
                tests[bname] = kind
            nodes[f"searchlight/{bname}"] = ds
        return nodes, {"nodes": nodes, "tests": tests}

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Slices, and glass brain + surface for MNI sources; corrected maps beside.

        For a model with several layers, the glass brain and surface show its layer with the
        highest peak similarity (the slices show every layer).
        """
        params = ctx.params("searchlight")
        for node, ds in state["nodes"].items():
            bname = node.split("/", 1)[1]
            bg = background(ctx, bname)
            caption = (
                f"Per voxel: {params['method']} correlation between the model RDM and the "
                f"{params['metric']} RDM of the voxels within {params['radius']} mm."
            )
            kind = state["tests"].get(bname)
            if kind == "sign_flip":
                caption += (
                    f" Group mean over {ds.attrs['n_subjects']} subjects' maps; tested "
                    "against 0 by a one-sample sign-flip permutation test "
                    f"({ds.attrs['n_permutations']} flips; family-wise error controlled by "
                    "the maximum t over the map)."
                )
                test = (
                    f"one-sample sign-flip test of the subjects' maps against 0, "
                    f"{ds.attrs['n_permutations']} flips, maximum t over the map; "
                    + "; ".join(
                        f"{e}: " + _threshold_text(float(ds.fwe_threshold.sel(model=e)), "t")
                        for e in ds.model.values
                    )
                )
            elif kind == "permutation":
                test = (
                    f"{ds.attrs['n_permutations']} stimulus-label permutations of the model "
                    "RDM (rows and columns together, the same for every centre), each "
                    "permuted map's maximum over centres forming the null; "
                    + "; ".join(
                        f"{e}: " + _threshold_text(float(ds.fwe_threshold.sel(model=e)))
                        for e in ds.model.values
                    )
                )
            if kind is not None:
                caption += (
                    f" Corrected test: max-statistic family-wise error ({test}). Voxels with "
                    f"p_FWE ≤ {FWE_ALPHA}: "
                    + "; ".join(
                        f"{e}: {int(ds.significant_fwe.sel(model=e).sum())}"
                        for e in ds.model.values
                    )
                    + "."
                )
            entries = {str(e): ds.similarity.sel(model=e).drop_vars("model")
                       for e in ds.model.values}  # fmt: skip
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
                    significant=(
                        None
                        if kind is None
                        else ds.significant_fwe.sel(model=entry).drop_vars("model")
                    ),
                )


def permuted_searchlight(
    means: xr.DataArray,
    model_rdm: xr.DataArray,
    *,
    n_permutations: int,
    seed: int | None,
    alpha: float = FWE_ALPHA,
    **opts: Any,
) -> xr.Dataset:
    """Compute a searchlight map with max-statistic FWE p-values over label permutations.

    The stimulus labels of ``model_rdm`` are permuted (rows and columns together) and the
    map is recomputed for all permutations in one batched pass with the observed map (the
    data RDM of each centre is computed once); the permutations are shared by every centre,
    so each permuted map's maximum over centres is a draw of the null of the map's maximum.

    Parameters
    ----------
    means : xarray.DataArray, dims ("stimulus", "voxel")
        The stimulus patterns.
    model_rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        One model RDM.
    n_permutations : int
        Number of random permutations (>= 1).
    seed : int or None
        Seed of the permutations.
    alpha : float
        The family-wise error level of ``fwe_threshold``.
    **opts
        Passed to :func:`brainalign.rsa.searchlight` (``radius``, ``metric``, ``method``).

    Returns
    -------
    result : xarray.Dataset
        ``similarity`` (dim ``voxel``; the observed map), ``p_fwe`` (dim ``voxel``),
        ``null_max`` (dim ``permutation``) and ``fwe_threshold`` (the similarity above
        which a centre has ``p_fwe <= alpha``); attrs ``n_permutations`` and ``test``.
    """
    from brainalign import rsa

    if model_rdm.ndim != 2:
        raise ValueError(
            f"permuted_searchlight: model_rdm must be one RDM with dims ('stimulus_a', "
            f"'stimulus_b'); got dims {model_rdm.dims}."
        )
    n = model_rdm.sizes["stimulus_a"]
    rng = np.random.default_rng(seed)
    perms = np.vstack([np.arange(n), np.argsort(rng.random((n_permutations, n)), axis=1)])
    mat = np.asarray(model_rdm.values, dtype=np.float64)
    stack = model_rdm.expand_dims(permutation=n_permutations + 1).copy(
        data=mat[perms[:, :, None], perms[:, None, :]]
    )
    maps = rsa.searchlight(means, stack, **opts).transpose("permutation", ...)
    observed = maps.isel(permutation=0, drop=True)
    if observed.dims != ("voxel",):
        raise ValueError(
            f"permuted_searchlight: expected one map over 'voxel', got dims {observed.dims}."
        )
    p_fwe, null_max, threshold = max_stat_fwe(observed.values, np.asarray(maps.values[1:]), alpha)
    test = (
        f"max-statistic FWE over centres, {n_permutations} stimulus-label permutations of the "
        "model RDM"
    )
    return xr.Dataset(
        {
            "similarity": observed,
            "p_fwe": observed.copy(data=p_fwe),
            "null_max": ("permutation", null_max),
            "fwe_threshold": xr.DataArray(
                threshold,
                attrs={
                    "long_name": "similarity above which p_fwe <= alpha",
                    "alpha": alpha,
                },
            ),
        },
        attrs={"n_permutations": int(n_permutations), "test": test},
    )


def _threshold_text(threshold: float, statistic: str = "similarity") -> str:
    """Caption text of a max-statistic threshold (or why there is none)."""
    if np.isfinite(threshold):
        return f"{statistic} > {threshold:.3g}"
    need = int(np.ceil(1 / FWE_ALPHA)) - 1
    return f"no p_FWE can reach {FWE_ALPHA} (at least {need} permutations are needed)"


def _subjects(data: Any) -> dict[str, xr.DataArray] | None:
    """Each subject's patterns on one voxel grid, when the source holds several subjects."""
    subjects = getattr(data, "subjects", None)
    if not subjects or len(subjects) < 2:
        return None
    voxels = [tuple(p.sizes.items()) for p in subjects.values()]
    return dict(subjects) if len({v[1:] for v in voxels}) == 1 else None
