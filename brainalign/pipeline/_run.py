"""Plan and run a pipeline spec: brain sources x models x analyses → results.nc + report.html."""

from __future__ import annotations

import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign._config import config_context
from brainalign._logging import logger, progress
from brainalign._version import __version__
from brainalign.pipeline._cache import Cache, content_key, entries_to_tree, tree_to_entries
from brainalign.pipeline._provenance import (
    imported_package_versions,
    model_provenance,
    text_model_path,
)
from brainalign.pipeline._spec import load_spec


@dataclass
class Unit:
    """One independent piece of work: an analysis of one brain source against one model."""

    analysis: str
    brain: str
    model: str

    @property
    def key(self) -> str:
        """A stable identifier, ``analysis/brain/model``."""
        return f"{self.analysis}/{self.brain}/{self.model}"


@dataclass
class RunResult:
    """What a pipeline run produced.

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    report : pathlib.Path or None
        The HTML report (None for a dry run).
    results : pathlib.Path or None
        The NetCDF results file (None for a dry run).
    units : list of Unit
        The planned units.
    tree : xarray.DataTree or None
        The results, also in memory.
    timings : dict
        Seconds per step.
    status : dict
        For a dry run: unit key → ``"cached"`` or ``"to run"``.
    cache_hits, cache_misses : dict
        Intermediates loaded from / computed into ``out/.cache`` (by kind: brain, model,
        unit).
    """

    out: Path
    report: Path | None
    results: Path | None
    units: list[Unit]
    tree: xr.DataTree | None = None
    timings: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)
    cache_misses: dict[str, int] = field(default_factory=dict)


def plan(spec: Any) -> list[Unit]:
    """Return the units of a spec (brain × model × analysis), validating it first.

    Parameters
    ----------
    spec : str or path-like or mapping
        A spec file or parsed spec.

    Returns
    -------
    units : list of Unit
        In execution order.
    """
    spec = load_spec(spec)
    return [Unit(a, b, m) for a in spec["analyses"] for b in spec["brain"] for m in spec["models"]]


def _load_patterns(src: dict[str, Any]) -> tuple[xr.DataArray, xr.DataArray]:
    """Trials of a pattern brain source and their stimulus means, in the dataset's order."""
    from brainalign.data import average_trials
    from brainalign.datasets import load_haxby, load_haxby_wholebrain

    if src.get("volume") == "whole_brain_25mm":  # one pattern per category block and run
        trials = load_haxby_wholebrain(mask=src["mask"] or "brain", preprocess=src["preprocess"])
    else:
        trials = load_haxby(preprocess=src["preprocess"])
    avg = average_trials(trials)
    order = trials.attrs.get("stimulus_order")
    if order is not None:  # the dataset's canonical order, for readable figures
        avg = avg.sel(stimulus=[s for s in order if s in set(avg.stimulus.values)])
    return trials, avg


def _trials_rdm(trials: xr.DataArray, metric: str, ids: list[str] | None = None) -> xr.DataArray:
    """Compute the RDM of a set of trials, in the order of ``ids`` when given.

    Cross-validated over the trials' runs for a CV metric, else the RDM of their stimulus means.
    """
    from brainalign import rsa
    from brainalign.data import average_trials

    if metric in rsa.CV_METRICS:
        r = rsa.rdm(trials, metric)
    else:
        r = rsa.rdm(average_trials(trials), metric)
    return r if ids is None else r.sel(stimulus_a=ids, stimulus_b=ids)


def _brain(src: dict[str, Any], metric: str, method: str, split_half: bool) -> dict[str, Any]:
    """Load one brain source: its RDM, and for pattern data the trials and a reliability."""
    from brainalign.pipeline._spec import MEEG_SOURCES

    if src["dataset"] in MEEG_SOURCES:  # epochs → the RDM of the rsa_window mean
        from brainalign.pipeline._meeg import meeg_brain

        return meeg_brain(src, metric)
    if src["dataset"] == "word_similarity":
        from brainalign.datasets import get_manifest
        from brainalign.loaders.judgments import load_pairwise

        path = get_manifest("word_similarity")["path"] / src["file"]
        scale = tuple(src["scale"]) if src["scale"] is not None else None
        from brainalign.datasets._registry import verify

        sha = verify("word_similarity", [src["file"]])[src["file"]]  # also checks the file
        rdm = load_pairwise(path, scale=scale, source=f"datasets/word_similarity/{src['file']}")
        attrs = {**rdm.attrs, "sha256_file": sha}
        return {"kind": "judgments", "rdm": rdm, "reliability": {}, "attrs": attrs}
    trials, avg = _load_patterns(src)
    ids = [str(v) for v in avg.stimulus.values]
    rdm = _trials_rdm(trials, metric, ids)
    splits = _run_splits(trials, ids, metric)
    reliability = (
        _split_half(trials, metric, method) if split_half and "run" in trials.coords else {}
    )
    return {
        "kind": "patterns",
        "rdm": rdm,
        "reliability": reliability,
        "attrs": dict(trials.attrs),
        "splits": splits,
    }


def _text_model_activations(name: str, m: dict[str, Any], ids: list[str]) -> xr.DataTree:
    """Activations of a Hugging Face text model's layers for the stimuli (offline)."""
    from brainalign._imports import soft_import
    from brainalign.loaders.activations import extract_activations

    texts = {i: str((m["texts"] or {}).get(i, i)) for i in ids}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers = soft_import("transformers", "models", f"models.{name} (kind text_model)")
    path = text_model_path(name, m)
    transformers.utils.logging.set_verbosity_error()  # brainalign shows its own progress
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModel.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return extract_activations(
        model,
        [texts[i] for i in ids],
        m["layers"],
        stimulus=ids,
        tokenizer=tokenizer,
        pooling=m["pooling"],
        batch_size=m["batch_size"],
        model_name=m["model"],
    )


def _text_model_rdms(
    name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
) -> dict[str, xr.DataArray]:
    """RDMs of a Hugging Face text model's layers over the brain's stimuli (offline)."""
    from brainalign import rsa

    ids = [str(v) for v in brain_rdm["stimulus_a"].values]
    tree = _text_model_activations(name, m, ids)
    out = {}
    for layer in tree.children:
        r = rsa.rdm(tree[layer]["activations"], metric)
        r.attrs["layer"] = layer
        out[f"{name}:{layer}"] = r
    return out


def _model_features(name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
    """Feature matrices (stimulus, feature) of one model source, one per entry (layer)."""
    from brainalign._checks import check_option
    from brainalign.data import random_network

    if m["kind"] == "text_model":
        tree = _text_model_activations(name, m, ids)
        return {f"{name}:{layer}": tree[layer]["activations"] for layer in tree.children}
    if m["kind"] == "categorical":
        groups = list(m["groups"])
        member = {str(s): g for g, members in m["groups"].items() for s in members}
        onehot = np.array([[member.get(i) == g for g in groups] for i in ids], dtype=float)
        return {
            name: xr.DataArray(
                onehot, dims=("stimulus", "feature"), coords={"stimulus": ids, "feature": groups}
            )
        }
    tree = random_network(
        np.asarray(ids),
        n_layers=m["n_layers"],
        n_units=m["n_units"],
        n_inputs=m["n_inputs"],
        seed=m["seed"],
    )
    layer = m["layer"] or list(tree.children)[-1]
    check_option(f"models.{name}.layer", layer, list(tree.children))
    return {name: tree[layer]["activations"]}


def _encoding_key(spec: dict[str, Any], unit: Unit) -> str:
    """Return the cache key of an encoding unit.

    It holds what the fit reads: the brain source's data (its settings and file hashes, not
    the RSA settings of its RDM: an encoding model never sees the RDM), the model's settings
    and weight content, the encoding settings and the seed.
    """
    from brainalign.pipeline._provenance import model_content

    payload = _brain_payload(spec["brain"][unit.brain], spec["analyses"]["rsa"])
    source = {k: v for k, v in payload.items() if k not in _RSA_KEYS}
    m = spec["models"][unit.model]
    return content_key(
        {
            "source": source,
            "model": [unit.model, m, model_content(unit.model, m)],
            "encoding": spec["analyses"]["encoding"],
            "seed": spec["seed"],
        }
    )


#: The parts of a brain entry's key that set its RDM, not its data.
_RSA_KEYS = ("metric", "method", "split_half")


def _compute_encoding(cache: Cache, spec: dict[str, Any], unit: Unit) -> dict[str, xr.Dataset]:
    """Voxelwise encoding models of one brain source from one model's features (cached).

    Every trial is described by the model's features of its stimulus; one ridge per voxel,
    its penalty chosen by cross-validation over runs (or K folds).
    """
    from sklearn.model_selection import LeaveOneGroupOut

    from brainalign import encoding

    params = spec["analyses"]["encoding"]
    m = spec["models"][unit.model]
    key = _encoding_key(spec, unit)
    cached = cache.get("encoding", key)
    if cached is not None:
        return tree_to_entries(cached)
    trials, _ = _load_patterns(spec["brain"][unit.brain])
    ids = [str(s) for s in dict.fromkeys(trials.stimulus.values)]
    runs = trials.run.values
    alphas = params["alphas"] or list(encoding.DEFAULT_ALPHAS)
    cv = LeaveOneGroupOut() if params["cv"] == "runs" else int(params["cv"])
    out = {}
    for entry, feats in _model_features(unit.model, m, ids).items():
        x = feats.sel(stimulus=trials.stimulus.values).values
        common = dict(cv=cv, groups=runs, criterion=params["criterion"], scoring=params["scoring"])
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
                    seed=spec["seed"], runs=runs, kind="stimulus", **common,
                )  # fmt: skip
            ds = ds.drop_vars("null")
        else:
            ds = encoding.ridge_cv(x, trials, alphas, **common)[["cv_score", "best_alpha"]]
        ds.attrs.update(
            model=unit.model, entry=entry, n_features=int(x.shape[1]), scoring=params["scoring"]
        )
        out[entry] = ds
    cache.put("encoding", key, entries_to_tree(out, {"unit": unit.key}))
    return out


def _model_rdms(
    name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
) -> dict[str, xr.DataArray]:
    """Build the model RDM(s) of one model source, named ``model`` or ``model:layer``."""
    from brainalign import rsa
    from brainalign._checks import StimulusAlignmentError
    from brainalign.data import align_stimuli

    if m["kind"] == "text_model":
        out = _text_model_rdms(name, m, brain_rdm, metric)
    elif m["kind"] == "categorical":
        try:
            _, r = align_stimuli(brain_rdm, rsa.categorical_rdm(m["groups"]), join="exact")
        except StimulusAlignmentError as err:
            raise StimulusAlignmentError(
                f"models.{name}.groups must list exactly the brain's stimuli: {err}"
            ) from None
        out = {name: r}
    else:
        ids = [str(v) for v in brain_rdm["stimulus_a"].values]
        acts = _model_features(name, m, ids)[name]
        r = rsa.rdm(acts, metric)
        r.attrs["layer"] = acts.attrs.get("layer", m["layer"])
        out = {name: r}
    for r in out.values():
        r.attrs["model"] = name
        r.attrs["modality"] = "model"
    return out


def _run_splits(trials: xr.DataArray, ids: list[str], metric: str) -> xr.DataArray | None:
    """RDMs of independent pairs of runs (1-2, 3-4, ...): pseudo-subjects for a noise ceiling.

    With a cross-validated metric each pair's RDM is cross-validated over its two runs;
    otherwise it is the RDM of the pair's stimulus means. None with fewer than 4 runs.
    """
    if "run" not in trials.coords:
        return None
    runs = np.unique(trials["run"].values)
    if runs.size < 4:
        return None
    out = []
    for k in range(0, runs.size - 1, 2):  # a handful of run pairs, each one batched RDM
        part = trials.isel(trial=np.flatnonzero(np.isin(trials["run"].values, runs[k : k + 2])))
        r = _trials_rdm(part, metric, ids)
        out.append(r.drop_vars([c for c in r.coords if c not in ("stimulus_a", "stimulus_b")]))
    labels = [f"runs {runs[k]}-{runs[k + 1]}" for k in range(0, runs.size - 1, 2)]
    return xr.concat(out, dim="split").assign_coords(split=labels)


def _split_half(trials: xr.DataArray, metric: str, method: str) -> dict[str, float]:
    """RDM reliability: the similarity of RDMs from odd and even runs, Spearman–Brown corrected."""
    from brainalign import rsa

    runs = np.asarray(trials["run"].values)
    odd = trials.isel(trial=np.flatnonzero(runs % 2 == 1))
    even = trials.isel(trial=np.flatnonzero(runs % 2 == 0))
    r = rsa.compare(_trials_rdm(odd, metric), _trials_rdm(even, metric), method)
    return {
        "split_half": float(r),
        "spearman_brown": float(2 * r / (1 + r)) if r > -1 else float("nan"),
    }


def default_out(name: str) -> Path:
    """Return the output folder of a run given no ``out``: ``brainalign-out/<name>``.

    Parameters
    ----------
    name : str
        The spec's ``name``.

    Returns
    -------
    out : pathlib.Path
        The folder.
    """
    return Path("brainalign-out") / name


def run(
    spec: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    dry_run: bool = False,
    device: str | None = None,
    client: Any = None,
) -> RunResult:
    """Run a pipeline spec and write ``report.html`` and ``results.nc`` into ``out``.

    The spec is validated before any computation (unknown keys fail with the closest valid
    key and the line). Outputs are written atomically.

    Parameters
    ----------
    spec : str or path-like or mapping
        A YAML spec file (see ``pipelines/``) or a parsed spec.
    out : str or path-like, optional
        The output folder; default ``./brainalign-out/<spec name>``.
    dry_run : bool
        Validate and plan only; nothing is computed or written.
    device : str, optional
        Device override (else the spec's, else the configured one).
    client : distributed.Client, optional
        Run the units as tasks on this Dask cluster (see :func:`brainalign.pipeline.connect`);
        results are identical to an in-process run. Default: in process.

    Returns
    -------
    result : RunResult
        Paths, plan, results tree and timings.

    Examples
    --------
    >>> import brainalign as ba
    >>> res = ba.run("pipelines/demo.yaml", dry_run=True)  # doctest: +SKIP
    >>> [u.key for u in res.units]  # doctest: +SKIP
    ['rsa/haxby_vt/category_structure', 'rsa/haxby_vt/random_network']
    """
    spec = load_spec(spec)
    units = plan(spec)
    out = Path(out) if out is not None else default_out(spec["name"])
    cache = Cache(out / ".cache")
    if dry_run:
        status = _unit_status(cache, spec, units)
        return RunResult(out=out, report=None, results=None, units=units, status=status)
    device = device or spec["device"]
    cache.remove_stale()
    Cache(out).remove_stale()  # results/report temporaries of a run killed while writing
    close = None
    if (
        client is None
        and spec["executor"]
        and spec["executor"].get("kind", "inprocess") != "inprocess"
    ):
        from brainalign.pipeline._dask import connect

        client, close = connect(executor=spec["executor"])
    try:
        return _execute(spec, units, out, cache, device, client)
    finally:
        if close is not None:
            close()


def _execute(
    spec: dict[str, Any],
    units: list[Unit],
    out: Path,
    cache: Cache,
    device: str | None,
    client: Any,
) -> RunResult:
    """Compute (or load) every unit, then write results.nc and the report."""
    from brainalign.data import save

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    with config_context(seed=spec["seed"], **({"device": device} if device else {})):
        params = spec["analyses"]["rsa"]
        method = params["method"]
        brains: dict[str, dict[str, Any]] = {}
        brain_keys: dict[str, str] = {}
        t0 = time.perf_counter()
        if client is not None:  # brains, models and units as tasks; entries land in the cache
            from brainalign.pipeline._dask import run_units

            out.mkdir(parents=True, exist_ok=True)
            run_units(client, spec, units, out, device=device)
            timings["cluster"] = time.perf_counter() - t0
        for bname, src in spec["brain"].items():
            brain_keys[bname], brains[bname] = _get_brain(cache, src, params)
        timings["load_and_brain_rdms"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model_rdms: dict[tuple[str, str], xr.DataArray] = {}
        results: dict[str, dict[str, Any]] = {b: {} for b in brains}
        for unit in progress([u for u in units if u.analysis == "rsa"], "RSA units"):
            rdms, tests = _compute_unit(
                cache, spec, unit, brain_keys[unit.brain], brains[unit.brain]
            )
            for entry, r in rdms.items():
                model_rdms[(unit.brain, entry)] = r
                results[unit.brain][entry] = tests[entry]
                logger.info(
                    "%s/%s: %s = %.3f, p = %.4g",
                    unit.key,
                    entry,
                    method,
                    float(tests[entry].observed),
                    float(tests[entry].p_value),
                )
        timings["rsa"] = time.perf_counter() - t0
        maps: dict[str, dict[str, xr.DataArray]] = {}
        for unit in [u for u in units if u.analysis == "searchlight"]:
            maps.setdefault(unit.brain, {}).update(
                _compute_searchlight(cache, spec, unit, brain_keys[unit.brain], brains[unit.brain])
            )
        enc: dict[str, dict[str, xr.Dataset]] = {}
        t0 = time.perf_counter()
        for unit in progress([u for u in units if u.analysis == "encoding"], "encoding units"):
            enc.setdefault(unit.brain, {}).update(_compute_encoding(cache, spec, unit))
        if enc:
            timings["encoding"] = time.perf_counter() - t0
        enc_stacks = {b: _encoding_dataset(entries) for b, entries in enc.items()}
        courses: dict[str, xr.Dataset] = {}
        if "time_resolved" in spec["analyses"]:  # M/EEG: one similarity per time point
            from brainalign.pipeline._meeg import time_courses

            t0 = time.perf_counter()
            courses = time_courses(cache, spec, units, brain_keys, brains)
            timings["time_resolved"] = time.perf_counter() - t0
        grids = (
            _trsa_grids(spec, brains, model_rdms, results) if "trsa" in spec["analyses"] else {}
        )
        t0 = time.perf_counter()
        ricci = (
            _ricci_groups(cache, spec, brains, brain_keys, model_rdms, results)
            if "ricci" in spec["analyses"]
            else []
        )
        if ricci:
            timings["ricci"] = time.perf_counter() - t0
        ceilings = _split_evaluations(spec, brains, model_rdms, results)
        t0 = time.perf_counter()
        cis = _bootstrap_cis(spec, brains, model_rdms, results)
        if cis:
            timings["bootstrap_ci"] = time.perf_counter() - t0
        tree = _results_tree(spec, brains, model_rdms, results, ceilings, cis)
        for bname, grid in grids.items():
            tree[f"trsa/{bname}"] = xr.DataTree(dataset=grid.to_dataset(name="similarity"))
        for group in [g for g in ricci if g["ds"] is not None]:
            tree[group["path"]] = xr.DataTree(dataset=group["ds"])
            for bname, fig_data in group["figures"].items():
                tree[f"{group['path']}/curvature/{bname}"] = xr.DataTree(dataset=fig_data)
        for bname, stack in enc_stacks.items():
            tree[f"encoding/{bname}"] = xr.DataTree(dataset=stack)
        for bname, course in courses.items():
            tree[f"time_course/{bname}"] = xr.DataTree(dataset=course)
        for bname, entries in maps.items():
            stack = xr.concat(list(entries.values()), dim="model", join="exact").assign_coords(
                model=list(entries)
            )
            tree[f"searchlight/{bname}"] = xr.DataTree(dataset=stack.to_dataset(name="similarity"))
        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        # results.nc and report.html of one run carry one run id; both are written to
        # temporary files first and then put in place together, so a run killed on the way
        # never leaves the one beside the other's predecessor.
        run_id = uuid.uuid4().hex[:12]
        tree.attrs["run_id"] = run_id
        _check_free_space(out, tree, "results.nc")  # fail before the write, sizes named
        results_tmp = save(tree, out / f".results.nc.{run_id}.tmp")
        timings["total"] = time.perf_counter() - t_start
        report_tmp = _write_report(
            spec,
            brains,
            model_rdms,
            results,
            out,
            timings,
            cache,
            ceilings,
            maps,
            enc_stacks,
            grids,
            ricci,
            cis,
            courses=courses,
            run_id=run_id,
        )
        results_path, report_path = out / "results.nc", out / "report.html"
        os.replace(results_tmp, results_path)
        os.replace(report_tmp, report_path)
        timings["write"] = time.perf_counter() - t0
    return RunResult(
        out=out,
        report=report_path,
        results=results_path,
        units=units,
        tree=tree,
        timings=timings,
        cache_hits=dict(cache.hits),
        cache_misses=dict(cache.misses),
    )


def _check_free_space(folder: Path, tree: xr.DataTree, name: str) -> None:
    """Raise an ENOSPC OSError naming the sizes when ``folder`` lacks room for ``tree``.

    The need is the in-memory size of the values (NetCDF is written uncompressed) plus
    1 MiB for the headers and the report; only a clear shortfall fails.
    """
    import errno
    import shutil

    datasets = [node.to_dataset(inherit=False) for node in tree.subtree]
    need = 2**20 + sum(var.nbytes for ds in datasets for var in ds.variables.values())
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"not enough free space to write {name}: it needs about {_size(need)}, "
            f"the disk has {_size(free)} free",
            str(folder),
        )


def _size(nbytes: float) -> str:
    """Return a byte count as text (``"12.3 MB"``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError  # pragma: no cover


def model_metric(params: dict[str, Any]) -> str:
    """Return the metric of model RDMs.

    ``model_metric`` when the spec sets it; otherwise the brain's metric, unless that is
    cross-validated over runs (models have no runs): then squared Euclidean, which is what
    crossnobis estimates without bias.
    """
    from brainalign.rsa import CV_METRICS

    if params.get("model_metric"):
        return params["model_metric"]
    return "sqeuclidean" if params["metric"] in CV_METRICS else params["metric"]


def _brain_payload(src: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    from brainalign.datasets import get_manifest
    from brainalign.pipeline._spec import MEEG_SOURCES

    if src["dataset"] in MEEG_SOURCES:  # the file's sha256 and the epoching options
        from brainalign.pipeline._meeg import meeg_payload

        return meeg_payload(src, params)

    files = get_manifest(src["dataset"])["files"]
    used = (
        ["bold.nii.gz", "mask.nii.gz", "attributes_literal.txt"]
        if src["dataset"] == "haxby2001"
        else [src["file"]]
    )
    if src.get("volume") == "whole_brain_25mm":
        from brainalign.datasets._haxby_wholebrain import wholebrain_files

        used = wholebrain_files(src["mask"] or "brain")
    return {
        "src": src,
        "metric": params["metric"],
        "method": params["method"],
        "split_half": params["split_half"],
        "files": {f: files[f] for f in used},
    }


def _get_brain(cache: Cache, src: dict[str, Any], params: dict[str, Any]) -> tuple[str, dict]:
    """Get a brain source's RDM and reliability, from the cache if its inputs are unchanged."""
    key = content_key(_brain_payload(src, params))
    cached = cache.get("brain", key)
    if cached is not None:
        return key, {
            "kind": cached.attrs["kind"],
            "rdm": cached["rdm"],
            "reliability": cached.attrs["reliability"],
            "attrs": cached.attrs["source_attrs"],
            "splits": cached["splits"] if "splits" in cached else None,
        }
    b = _brain(src, params["metric"], params["method"], params["split_half"])
    cache.put(
        "brain",
        key,
        xr.Dataset(
            {"rdm": b["rdm"], **({"splits": b["splits"]} if b.get("splits") is not None else {})},
            attrs={"kind": b["kind"], "reliability": b["reliability"], "source_attrs": b["attrs"]},
        ),
    )
    return key, b


def _model_key(name: str, m: dict[str, Any], ids: list[str], metric: str) -> str:
    """Return the cache key of a model's RDMs.

    The key holds the model's settings, the stimuli, the metric and the content of its
    weight files (a local model folder's digest), so new weights at the same path are never
    served from the cache.
    """
    from brainalign.pipeline._provenance import model_content

    payload = {"name": name, "model": m, "ids": ids, "metric": metric}
    content = model_content(name, m)
    if content is not None:
        payload["content"] = content
    return content_key(payload)


def _get_models(
    cache: Cache, name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
) -> tuple[str, dict[str, xr.DataArray]]:
    """Get a model source's RDMs over the brain's stimuli, from the cache when possible."""
    ids = [str(v) for v in brain_rdm["stimulus_a"].values]
    key = _model_key(name, m, ids, metric)
    cached = cache.get("model", key)
    if cached is not None:
        return key, tree_to_entries(cached)
    rdms = _model_rdms(name, m, brain_rdm, metric)
    cache.put("model", key, entries_to_tree(rdms, {"model": name}))
    return key, rdms


def unit_models(
    cache: Cache, spec: dict[str, Any], unit: Unit, brain: dict[str, Any]
) -> tuple[str, dict[str, xr.DataArray]]:
    """Get the RDMs of a unit's model over its brain's stimuli, in the RSA's model metric."""
    return _get_models(
        cache,
        unit.model,
        spec["models"][unit.model],
        brain["rdm"],
        model_metric(spec["analyses"]["rsa"]),
    )


def _searchlight_key(brain_key: str, model_key: str, params: dict[str, Any]) -> str:
    return content_key({"brain": brain_key, "model": model_key, "searchlight": params})


def _compute_searchlight(
    cache: Cache, spec: dict[str, Any], unit: Unit, brain_key: str, brain: dict[str, Any]
) -> dict[str, xr.DataArray]:
    """Searchlight maps of one brain source against one model's RDMs (cached)."""
    from brainalign import rsa

    params = spec["analyses"]["searchlight"]
    model_key, rdms = unit_models(cache, spec, unit, brain)
    key = _searchlight_key(brain_key, model_key, params)
    cached = cache.get("searchlight", key)
    if cached is not None:
        return tree_to_entries(cached)
    _, patterns = _load_patterns(spec["brain"][unit.brain])
    maps = {
        entry: rsa.searchlight(
            patterns,
            r,
            radius=float(params["radius"]),
            metric=params["metric"],
            method=params["method"],
        )
        for entry, r in rdms.items()
    }
    cache.put("searchlight", key, entries_to_tree(maps, {"unit": unit.key}))
    return maps


def _compute_unit(
    cache: Cache, spec: dict[str, Any], unit: Unit, brain_key: str, brain: dict[str, Any]
) -> tuple[dict[str, xr.DataArray], dict[str, Any]]:
    """Model RDMs and permutation tests of one unit, loaded from the cache when present."""
    from brainalign import rsa

    params = spec["analyses"]["rsa"]
    model_key, rdms = unit_models(cache, spec, unit, brain)
    unit_key = _unit_key(brain_key, model_key, params, spec["seed"])
    cached = cache.get("unit", unit_key)
    if cached is not None:
        return rdms, tree_to_entries(cached)
    tests = {
        entry: rsa.permutation_test(
            brain["rdm"],
            r,
            params["method"],
            n_permutations=params["n_permutations"],
            seed=spec["seed"],
        )
        for entry, r in rdms.items()
    }
    cache.put("unit", unit_key, entries_to_tree(tests, {"unit": unit.key}))
    return rdms, tests


def _unit_key(brain_key: str, model_key: str, params: dict[str, Any], seed: int) -> str:
    return content_key(
        {
            "brain": brain_key,
            "model": model_key,
            "method": params["method"],
            "n_permutations": params["n_permutations"],
            "seed": seed,
        }
    )


def _unit_status(cache: Cache, spec: dict[str, Any], units: list[Unit]) -> dict[str, str]:
    """Say 'cached' or 'to run' for each unit, from the cache alone (nothing is computed).

    'cached' means exactly that the run would load the unit's result: the status is decided
    from the same keys the run uses. tRSA grids are recomputed from the RSA units' RDMs on
    every run (they are not cached), so they are always 'to run'.
    """
    params = spec["analyses"]["rsa"]
    metric = model_metric(params)
    bkeys = {b: content_key(_brain_payload(src, params)) for b, src in spec["brain"].items()}
    ids: dict[str, list[str] | None] = {}
    for bname, bkey in bkeys.items():
        entry = cache.peek("brain", bkey)
        ids[bname] = None if entry is None else [str(v) for v in entry["rdm"]["stimulus_a"].values]
    status, ricci_status = {}, {}
    for unit in units:
        bkey, b_ids = bkeys[unit.brain], ids[unit.brain]
        if unit.analysis == "encoding":
            cached = cache.has("encoding", _encoding_key(spec, unit))
        elif unit.analysis == "time_resolved":
            from brainalign.pipeline._meeg import time_course_cached

            cached = time_course_cached(cache, spec, unit, bkey)
        elif b_ids is None or unit.analysis == "trsa":
            cached = False
        elif unit.analysis == "ricci":  # one entry per group of brains: looked up once
            if unit.brain not in ricci_status:
                ricci_status[unit.brain] = _ricci_cached(cache, spec, unit.brain, bkeys, ids)
            cached = ricci_status[unit.brain]
        else:
            mkey = _model_key(unit.model, spec["models"][unit.model], b_ids, metric)
            if unit.analysis == "searchlight":
                sl = spec["analyses"]["searchlight"]
                cached = cache.has("searchlight", _searchlight_key(bkey, mkey, sl))
            else:
                cached = cache.has("unit", _unit_key(bkey, mkey, params, spec["seed"]))
        status[unit.key] = "cached" if cached else "to run"
    return status


def _ricci_cached(cache: Cache, spec: dict, bname: str, bkeys: dict, ids: dict) -> bool:
    """Whether the Ricci group of brain ``bname`` would be loaded from the cache."""
    b_ids = ids[bname]
    bnames = [b for b in spec["brain"] if ids[b] == b_ids]  # _ricci_groups' grouping
    metric = model_metric(spec["analyses"]["rsa"])
    entries = []
    for mname, m in spec["models"].items():
        tree = cache.peek("model", _model_key(mname, m, b_ids, metric))
        if tree is None:
            return False
        rdms = tree_to_entries(tree)
        entries += [e for e, r in rdms.items() if _ricci_usable(r) is None]
    return cache.has("ricci", _ricci_key(spec, bnames, bkeys, b_ids, entries))


def _split_evaluations(spec: dict, brains: dict, model_rdms: dict, results: dict) -> dict:
    """Noise ceiling and model evaluations over the run-split RDMs (pseudo-subjects)."""
    from brainalign import rsa

    method = spec["analyses"]["rsa"]["method"]
    out = {}
    for bname, b in brains.items():
        splits = b.get("splits")
        if splits is None:
            continue
        entries = list(results[bname])
        stack = _stack_model_rdms(model_rdms, bname, entries)
        ceiling = rsa.noise_ceiling(splits, method)
        ev = rsa.evaluate(
            splits, stack, method, bootstrap="subject", n_bootstrap=1000, seed=spec["seed"]
        )
        out[bname] = {
            "lower": float(ceiling["lower"]),
            "upper": float(ceiling["upper"]),
            "mean": {e: float(v) for e, v in zip(entries, ev["mean"].values, strict=True)},
            "sem": {
                e: float(np.sqrt(v)) for e, v in zip(entries, ev["variance"].values, strict=True)
            },
            "n_splits": int(splits.sizes["split"]),
        }
    return out


def _bootstrap_cis(spec: dict, brains: dict, model_rdms: dict, results: dict) -> dict:
    """Confidence intervals of every model entry's similarity with each brain RDM.

    A bootstrap over stimuli (:func:`brainalign.rsa.bootstrap_ci`), all entries of one brain
    source in one batch; ``{}`` when ``analyses.rsa.n_bootstrap`` is 0.
    """
    from brainalign import rsa

    params = spec["analyses"]["rsa"]
    if not params["n_bootstrap"]:
        return {}
    out = {}
    for bname, b in brains.items():
        entries = list(results[bname])
        if entries:
            out[bname] = rsa.bootstrap_ci(
                b["rdm"],
                _stack_model_rdms(model_rdms, bname, entries),
                params["method"],
                n_bootstrap=params["n_bootstrap"],
                seed=spec["seed"],
            )
    return out


def _results_tree(
    spec: dict,
    brains: dict,
    model_rdms: dict,
    results: dict,
    ceilings: dict,
    cis: dict | None = None,
) -> xr.DataTree:
    nodes: dict[str, Any] = {}
    for bname, b in brains.items():
        nodes[f"brain/{bname}"] = xr.Dataset(
            {"rdm": b["rdm"]},
            attrs={
                **{k: v for k, v in b["attrs"].items() if isinstance(v, (str, int, float))},
                **{f"reliability_{k}": v for k, v in b["reliability"].items()},
            },
        )
        models = list(results[bname])
        stack = _stack_model_rdms(model_rdms, bname, models)
        stack = stack.astype(np.float32)  # figures need no more; scores stay float64
        stack.attrs = {"kind": "rdm", "modality": "model", "stored_dtype": "float32"}
        nodes[f"models/{bname}"] = xr.Dataset({"rdm": stack})
        tests = [results[bname][m] for m in models]
        n_null = min(t.sizes["permutation"] for t in tests)
        ds = xr.Dataset(
            {
                "similarity": xr.DataArray(
                    [float(t.observed) for t in tests], dims="model", coords={"model": models}
                ),
                "p_value": xr.DataArray(
                    [float(t.p_value) for t in tests], dims="model", coords={"model": models}
                ),
                "null": xr.concat(
                    [t.null.isel(permutation=slice(0, n_null)) for t in tests], dim="model"
                ).assign_coords(model=models),
            },
            attrs={
                "method": tests[0].attrs["method"],
                "exact": tests[0].attrs["exact"],
                "n_permutations": n_null,
                "metric": spec["analyses"]["rsa"]["metric"],
                **{f"reliability_{k}": v for k, v in b["reliability"].items()},
                **(
                    {
                        "noise_ceiling_lower": ceilings[bname]["lower"],
                        "noise_ceiling_upper": ceilings[bname]["upper"],
                        "n_run_splits": ceilings[bname]["n_splits"],
                    }
                    if bname in ceilings
                    else {}
                ),
            },
        )
        if bname in ceilings:  # models against the run-split RDMs (pseudo-subjects)
            c = ceilings[bname]
            ds["split_mean"] = xr.DataArray([c["mean"][m] for m in models], dims="model")
            ds["split_sem"] = xr.DataArray([c["sem"][m] for m in models], dims="model")
        if cis and bname in cis:  # stimulus-bootstrap percentile interval of "similarity"
            ci = cis[bname]
            for bound in ("ci_lower", "ci_upper"):
                ds[bound] = xr.DataArray(ci[bound].sel(model=models).values, dims="model")
            ds.attrs.update(
                ci=ci.attrs["ci"],
                ci_method="percentile bootstrap over stimuli",
                n_bootstrap=ci.attrs["n_bootstrap"],
                n_bootstrap_valid=ci.attrs["n_valid"],
            )
        nodes[f"rsa/{bname}"] = ds
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs.update(
        {
            "pipeline": spec["name"],
            "description": spec["description"],
            "seed": spec["seed"],
            "brainalign_version": __version__,
        }
    )
    return tree


def _multi_layer_models(entries: Any) -> dict[str, list[str]]:
    """Group ``model:layer`` entries by model, keeping the models with several layers."""
    layers: dict[str, list[str]] = {}
    for entry in entries:
        if ":" in entry:
            layers.setdefault(entry.split(":", 1)[0], []).append(entry)
    return {model: names for model, names in layers.items() if len(names) >= 2}


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
        for model, names in _multi_layer_models(tests).items():
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
    model_rdms: dict,
    entries: list[str],
    max_stimuli: int = 200,
) -> None:
    """One slider per multi-layer model: the brain RDM beside each layer's RDM."""
    from brainalign.viz import plot_rdms

    if brain_rdm.sizes["stimulus_a"] > max_stimuli:
        return  # the grid above already shows every layer; big paired images add little
    for model, names in _multi_layer_models(entries).items():
        figs = {
            name.split(":", 1)[1]: plot_rdms(
                {f"brain: {bname}": brain_rdm, name: model_rdms[(bname, name)]}, ncols=2
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


def _map_background(src: dict[str, Any]) -> dict[str, Any]:
    """Return the grid, slice background and space of one pattern brain source's voxel maps.

    Returns ``like`` (the mask: the maps' grid), ``bg`` (the mean functional image), ``mni``
    (True when the spec's ``volume`` is approximately in MNI space, so maps also go on a
    glass brain and the fsaverage5 surface) and ``note`` (a caption sentence on the space).
    """
    from nilearn import image

    from brainalign.datasets import get_manifest
    from brainalign.pipeline._spec import MNI_VOLUMES

    folder = get_manifest("haxby2001")["path"]
    if src.get("volume") not in MNI_VOLUMES:
        bold = image.mean_img(str(folder / "bold.nii.gz"), copy_header=True)
        return {"like": folder / "mask.nii.gz", "bg": bold, "mni": False, "note": ""}
    from brainalign.datasets._haxby_wholebrain import (
        mni_overlap,
        wholebrain_files,
        wholebrain_mask_path,
    )

    mask = src["mask"] or "brain"
    runs = [str(folder / f) for f in wholebrain_files(mask) if f.endswith("bold_25mm.nii.gz")]
    note = (
        f"Whole brain at 25 mm voxels ({mask} mask). The scan's grid is only approximately "
        f"aligned with MNI152 (Dice {mni_overlap():.2f} between its brain mask and nilearn's "
        "MNI152 brain mask), so the glass brain and the fsaverage5 projection are "
        "approximate: one 25 mm voxel spans several gyri."
    )
    bg = image.mean_img(runs, copy_header=True)
    return {"like": wholebrain_mask_path(mask), "bg": bg, "mni": True, "note": note}


def _add_voxel_map(
    report: Any,
    values: xr.DataArray,
    bg: dict,
    *,
    name: str,
    kind: str,
    section: str,
    caption: str,
) -> None:
    """Slices of a voxel map; for an (approximately) MNI source also a glass brain and surface.

    The figures go into ``section``, titled ``"{kind}: {name}"`` (slices),
    ``"{kind} (glass brain): {name}"`` and ``"{kind} (surface): {name}"``.
    """
    from brainalign.viz import plot_brain_map, plot_glass_brain, plot_surface_map

    report.add_figure(
        plot_brain_map(values, bg["like"], bg_img=bg["bg"], title=name),
        f"{kind}: {name}",
        section=section,
        caption=f"{caption} On the dataset's mean functional image.",
    )
    if not bg["mni"]:
        return
    report.add_figure(
        plot_glass_brain(values, bg["like"], title=name),
        f"{kind} (glass brain): {name}",
        section=section,
        caption=f"{caption} Maximum projections onto the MNI152 glass brain. {bg['note']}",
    )
    report.add_figure(
        plot_surface_map(values, bg["like"], title=name),
        f"{kind} (surface): {name}",
        section=section,
        caption=f"{caption} Projected onto the fsaverage5 cortical surface (mean along the "
        "line from white matter to pial surface; inflated, lateral and ventral views; grey: "
        f"no voxel of the map). {bg['note']}",
    )


def _searchlight_section(report: Any, spec: dict, maps: dict, backgrounds: dict) -> None:
    """Brain maps of the searchlight: slices, and glass brain + surface for MNI sources.

    For a model with several layers, the glass brain and surface show its layer with the
    highest peak similarity (the slices show every layer).
    """
    params = spec["analyses"]["searchlight"]
    for bname, entries in maps.items():
        bg = backgrounds[bname]
        caption = (
            f"Per voxel: {params['method']} correlation between the model RDM and the "
            f"{params['metric']} RDM of the voxels within {params['radius']} mm."
        )
        peaks = {
            e: float(np.nanmax(v.values)) if np.isfinite(v.values).any() else -np.inf
            for e, v in entries.items()
        }
        by_model: dict[str, list[str]] = {}
        for e in entries:  # "model" or "model:layer" entries, grouped by model
            by_model.setdefault(e.split(":", 1)[0], []).append(e)
        shown = {max(layers, key=peaks.__getitem__) for layers in by_model.values()}
        for entry, values in entries.items():
            name = f"{bname} vs {entry}"
            n_layers = len(by_model[entry.split(":", 1)[0]])
            best = " The model's layer with the highest peak similarity." if n_layers > 1 else ""
            _add_voxel_map(
                report,
                values,
                {**bg, "mni": bg["mni"] and entry in shown},
                name=name,
                kind="Searchlight",
                section="Searchlight",
                caption=caption + (best if entry in shown else ""),
            )


def _stack_model_rdms(model_rdms: dict, bname: str, entries: list[str]) -> xr.DataArray:
    """One brain source's model RDMs stacked over a ``model`` dim (stimulus coords only).

    The RDMs are aligned by stimulus id (the first entry's order) before stacking; different
    id sets raise, naming the ids (never a NaN-filled union).
    """
    from brainalign.data._align import align_stimuli

    keep = ("stimulus_a", "stimulus_b")
    rdms = align_stimuli(*(model_rdms[(bname, m)] for m in entries), join="exact")
    rdms = [r.drop_vars([c for c in r.coords if c not in keep]) for r in rdms]
    return xr.concat(rdms, dim="model", join="exact").assign_coords(model=entries)


def _trsa_grids(spec: dict, brains: dict, model_rdms: dict, results: dict) -> dict:
    """Model-brain similarity over the tRSA threshold grid, per brain source (model × cell)."""
    from brainalign import trsa

    params = spec["analyses"]["trsa"]
    out = {}
    for bname, b in brains.items():
        entries = list(results[bname])
        models = _stack_model_rdms(model_rdms, bname, entries)
        with warnings.catch_warnings():  # constant cells (binary model RDMs) are counted
            warnings.simplefilter("ignore", UserWarning)
            grid = trsa.grid_compare(
                b["rdm"],
                models,
                params["method"],
                transform=params["transform"],
                grid=trsa.threshold_grid(step=float(params["step"])),
            )
        grid.attrs["n_undefined_cells"] = int(grid.isnull().sum())
        grid.attrs.update(
            transform=params["transform"], method=params["method"], brain=bname,
            description="Model-brain similarity after the same geo-topological transform of "
            "both RDMs, at every (lower, upper) threshold cell (Lin & Kriegeskorte).",
        )  # fmt: skip
        out[bname] = grid
    return out


def _trsa_section(report: Any, spec: dict, grids: dict) -> None:
    """Threshold-grid maps (the paper's figure) and family means per model entry."""
    from brainalign import trsa

    params = spec["analyses"]["trsa"]
    for bname, grid in grids.items():
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
            section="tRSA",
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
            section="tRSA",
            caption="Each square is a (lower, upper) threshold cell: below lower a "
            "dissimilarity becomes 0, above upper 1, linear between. The top-left cell keeps "
            "the whole rank geometry; the diagonal gives binary graphs (pure topology).",
        )


def _ricci_key(
    spec: dict, bnames: list[str], brain_keys: dict, ids: list[str], entries: list[str]
) -> str:
    """Return the cache key of one Ricci group: its brains, every model, the usable entries."""
    metric = model_metric(spec["analyses"]["rsa"])
    return content_key(
        {
            "ricci": spec["analyses"]["ricci"],
            "brains": [brain_keys[b] for b in bnames],
            "models": [_model_key(m, spec["models"][m], ids, metric) for m in spec["models"]],
            "entries": entries,
            "seed": spec["seed"],
        }
    )


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


def _ricci_groups(
    cache: Cache,
    spec: dict,
    brains: dict,
    brain_keys: dict,
    model_rdms: dict,
    results: dict,
) -> list[dict[str, Any]]:
    """One :func:`brainalign.ricci.compare` call per set of brains over the same stimuli.

    Every brain RDM against every model entry's RDM (dicts of systems, one call), cached by
    content; then, per brain, the curvature and Ricci-flow communities of the brain and of
    its best model entry (highest node-curvature correlation) for the figures.
    """
    from brainalign import ricci

    params = spec["analyses"]["ricci"]
    groups: dict[tuple[str, ...], list[str]] = {}
    for bname, b in brains.items():
        ids = tuple(str(v) for v in b["rdm"]["stimulus_a"].values)
        groups.setdefault(ids, []).append(bname)
    out = []
    # a progress bar for the whole Ricci step (its flow has its own)
    for ids, bnames in progress(list(groups.items()), "Ricci comparisons"):
        first = bnames[0]
        entries, skipped = [], {}
        for entry in results[first]:
            why = _ricci_usable(model_rdms[(first, entry)])
            if why is None:
                entries.append(entry)
            else:
                skipped[entry] = why
        path = "ricci" if len(groups) == 1 else f"ricci/{'+'.join(bnames)}"
        group = {"path": path, "brains": bnames, "entries": entries, "skipped": skipped}
        group.update(ds=None, figures={}, notes=[], best={})
        out.append(group)
        if not entries:
            continue
        key = _ricci_key(spec, bnames, brain_keys, list(ids), entries)
        cached = cache.get("ricci", key)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            if cached is not None:
                ds = cached
            else:
                ds = ricci.compare(
                    {b: brains[b]["rdm"] for b in bnames},
                    {e: model_rdms[(first, e)] for e in entries},
                    k=params["k"],
                    alpha=float(params["alpha"]),
                    measure=params["measure"],
                    method=params["method"],
                    flow_iterations=params["flow_iterations"],
                    community_method=params["community_method"],
                    n_permutations=params["n_permutations"],
                    n_bootstrap=params["n_bootstrap"],
                    seed=spec["seed"],
                )
                ds.attrs["description"] = (
                    "Brain-versus-model comparison of the Ollivier-Ricci curvature of k-NN "
                    "graphs over the stimuli (system_a: brain sources, system_b: model "
                    "entries; brainalign.ricci.compare). node_correlation, community_ari and "
                    "community_nmi are tested against stimulus-label permutations (*_p); the "
                    "edge/node Wasserstein and KS distances are descriptive, with "
                    "stimulus-bootstrap intervals (*_ci_lower, *_ci_upper) and no p-value."
                )
                # the computation's warnings travel with the entry: a run that loads it from
                # the cache shows the same notes
                ds.attrs["warnings"] = _user_warnings(caught)
                cache.put("ricci", key, ds)
            for bname in bnames:
                group["figures"][bname], group["best"][bname] = _ricci_figure_data(
                    ds, bname, brains[bname]["rdm"], model_rdms, first, params
                )
        group["ds"] = ds
        stored = [str(w) for w in np.atleast_1d(ds.attrs.get("warnings", []))]
        group["notes"] = list(dict.fromkeys([*stored, *_user_warnings(caught)]))
        for note in group["notes"]:
            logger.warning("ricci: %s", note)
    return out


def _user_warnings(caught: list) -> list[str]:
    """Return the distinct messages of the UserWarnings that ``catch_warnings`` recorded."""
    return list(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    )


def _ricci_figure_data(
    ds: xr.Dataset, bname: str, brain_rdm: xr.DataArray, model_rdms: dict, first: str, params: dict
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
    systems = {bname: brain_rdm, model_name: model_rdms[(first, best)]}
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


def _ricci_section(report: Any, spec: dict, groups: list[dict[str, Any]]) -> None:
    """Ricci curvature: what the statistics mean, heat maps, histograms, MDS layouts."""
    from brainalign import ricci
    from brainalign.viz._rdm import _figure

    params = spec["analyses"]["ricci"]
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
        if group["notes"]:
            report.add_text(
                "Notes from the computation:\n\n" + "\n\n".join(group["notes"]),
                section=section,
            )
        stats = ("node_correlation", "edge_wasserstein", "community_ari")
        n_b = ds.sizes.get("system_b", 1)
        n_a = ds.sizes.get("system_a", 1)
        fig = _figure((3.2 + 0.9 * n_b, 1.6 + len(stats) * (1.2 + 0.45 * n_a)))
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
            ax = ricci.plot_curvature(results, title=f"{bname} vs {best}")
            report.add_figure(
                ax.figure,
                f"Edge curvature: {bname} vs {best}",
                section=section,
                caption="Distribution of edge curvature of the brain graph and of the model "
                "entry whose node curvature correlates best with the brain's. Dashed: means. "
                "Mass above 0: edges within clusters; below 0: bridges.",
            )
            fig = _figure((10.5, 4.4))
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


def _encoding_dataset(entries: dict[str, xr.Dataset]) -> xr.Dataset:
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


def _encoding_section(
    report: Any, spec: dict, stacks: dict[str, xr.Dataset], backgrounds: dict
) -> None:
    """Model × brain score matrix, per-entry table and the best entry's voxel map."""
    from brainalign.viz import plot_score_matrix

    params = spec["analyses"]["encoding"]
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
        _add_voxel_map(
            report,
            ds.cv_score.sel(model=best).drop_vars("model"),
            backgrounds[b],
            name=f"{b} from {best}",
            kind="Encoding map",
            section="Encoding",
            caption=f"Per voxel: {cv_text} {scoring} of the best model entry.",
        )


def _ceiling_cell(brain: dict, ceiling: dict | None) -> str:
    """Return the summary table's noise-ceiling cell of one brain source."""
    if ceiling is not None:
        return f"[{ceiling['lower']:.3g}, {ceiling['upper']:.3g}] (run splits)"
    rel = brain["reliability"]
    if rel:
        return f"{rel['spearman_brown']:.3g} (split-half reliability, Spearman–Brown)"
    if brain["kind"] == "judgments":
        return "none: one set of judgments, no runs"
    if brain["kind"] == "meeg":
        return "none: M/EEG epochs, no runs"
    return "none: fewer than 4 runs"


def _summary_caption(spec: dict, brains: dict) -> str:
    params = spec["analyses"]["rsa"]
    parts = []
    if any(b["kind"] == "patterns" for b in brains.values()):
        parts.append(f"Brain RDMs: {params['metric']} distance between stimulus-mean patterns.")
    if any(b["kind"] == "judgments" for b in brains.values()):
        parts.append(
            "Behavioural RDMs: rescaled ratings; unrated pairs are left out of every comparison."
        )
    if any(b["kind"] == "meeg" for b in brains.values()):
        parts.append(
            f"M/EEG RDMs: {params['metric']} distance between stimulus-mean channel patterns "
            "averaged over each source's rsa_window (see Data; the Time course section has "
            "one similarity per time point)."
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


def _write_report(
    spec: dict,
    brains: dict,
    model_rdms: dict,
    results: dict,
    out: Path,
    timings: dict[str, float],
    cache: Cache,
    ceilings: dict,
    maps: dict | None = None,
    enc: dict | None = None,  # brain -> encoding results stacked over model entries
    grids: dict | None = None,
    ricci: list | None = None,
    cis: dict | None = None,  # brain -> rsa.bootstrap_ci result over its model entries
    courses: dict | None = None,  # brain -> time_resolved results over model entries
    run_id: str = "",
) -> Path:
    """Write the report to a temporary file in ``out`` (the caller puts it in place)."""
    from brainalign.report import Report
    from brainalign.viz import plot_mds, plot_model_comparison, plot_rdms, plot_score_matrix

    rep = spec["report"]
    report = Report(
        rep["title"] or f"brainalign: {spec['name']}",
        subtitle=rep["subtitle"] or spec["description"].strip(),
    )
    params = spec["analyses"]["rsa"]
    cis = cis or {}
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
            row["noise ceiling"] = _ceiling_cell(brains[bname], ceilings.get(bname))
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
        rel = b["reliability"]
        if rel:
            report.add_text(
                f"{bname}: split-half reliability of the brain RDM (odd vs even runs) "
                f"= {rel['split_half']:.3f}; Spearman–Brown corrected = "
                f"{rel['spearman_brown']:.3f}. "
                "A model cannot be expected to correlate with the brain RDM much above this.",
                section="Summary",
            )
        panels = {f"brain: {bname}": b["rdm"]}
        panels.update({f"model: {m}": model_rdms[(bname, m)] for m in results[bname]})
        report.add_figure(
            plot_rdms(panels, rank=True),
            f"RDMs ({bname})",
            section="RDMs",
            caption="Percentile-ranked dissimilarities (0 = most similar).",
        )
        _layer_sliders(report, bname, b["rdm"], model_rdms, list(results[bname]))
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
    if maps or enc:  # voxel maps: each source's background is loaded once for both sections
        backgrounds = {b: _map_background(spec["brain"][b]) for b in {*(maps or {}), *(enc or {})}}
    if maps:
        _searchlight_section(report, spec, maps, backgrounds)
    if enc:
        _encoding_section(report, spec, enc, backgrounds)
    if grids:
        _trsa_section(report, spec, grids)
    if ricci:
        _ricci_section(report, spec, ricci)
    if courses:
        from brainalign.pipeline._meeg import time_course_section

        time_course_section(report, spec, courses)
    data_lines = []
    for bname, src in spec["brain"].items():
        if brains[bname]["kind"] == "meeg":  # file path, or the simulation's nature
            from brainalign.pipeline._meeg import data_text

            data_lines.append(data_text(bname, src, brains[bname]["attrs"]))
            continue
        from brainalign.datasets import get_manifest

        man = get_manifest(src["dataset"])
        title = man["title"]
        if src.get("volume") == "whole_brain_25mm":
            title += (
                f"; this source uses the whole-brain copy of the same subject (OpenFMRI tree, "
                f"25 mm voxels, {src['mask'] or 'brain'} mask), not the slice"
            )
        data_lines.append(
            f"{bname}: {title}. {man['citation'].strip()} Licence: {man['licence'].strip()}"
        )
    report.add_text("\n\n".join(data_lines), section="Data")
    report.add_provenance(
        pipeline=spec["name"],
        seed=spec["seed"],
        timings={k: round(v, 3) for k, v in timings.items()},
        cache=f"{out / '.cache'}: loaded {dict(cache.hits)}, computed {dict(cache.misses)}",
        **{
            f"sha256 {b}": brains[b]["attrs"].get(
                "sha256_bold", brains[b]["attrs"].get("sha256_file")
            )
            for b in brains
            if {"sha256_bold", "sha256_file"} & set(brains[b]["attrs"])
        },
        **model_provenance(spec["models"]),
        packages=imported_package_versions(),
        **{"run id": f"{run_id} (the run_id attribute of the results.nc written with it)"},
    )
    return report.save(out / f".report.html.{run_id}.tmp")
