"""What the units of a run share: the spec, the cache, and the data, brain RDMs and model RDMs.

A :class:`Context` loads each brain source once, and gets each brain RDM and each model's
RDMs from the cache when their inputs are unchanged (computing and storing them otherwise).
Each getter has a key function beside it, built from exactly what the value depends on:

- data: the source's settings and the sha256 of each file it reads (:meth:`Context.data_key`);
- brain RDM: the data and the RDM metric (:meth:`Context.brain_key`);
- model RDMs: the model's settings, the content of its weights, the stimuli and the metric
  (:meth:`Context.model_key`).

In a dry run nothing is loaded or computed: a key that needs the stimuli of a brain RDM that
is not cached yet is None, and the units that depend on it are "to run".
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import get_model_kind, get_source
from brainalign.pipeline._cache import Cache, content_key, entries_to_tree, tree_to_entries

#: The RDM settings of a run: ``analyses.rsa``'s values, else these defaults.
RDM_DEFAULTS = {"metric": "correlation", "model_metric": None}


class Context:
    """The shared state of one run (or one Dask task) of a validated spec.

    Parameters
    ----------
    spec : dict
        The validated spec.
    cache : Cache
        The run's cache.
    dry_run : bool
        Compute nothing: keys that need an uncached intermediate are None.
    """

    def __init__(self, spec: dict[str, Any], cache: Cache, *, dry_run: bool = False):
        self.spec = spec
        self.cache = cache
        self.dry_run = dry_run
        self.seed: int = spec["seed"]
        self._data: dict[str, Any] = {}
        self._data_keys: dict[str, str] = {}
        self._brains: dict[str, dict[str, Any] | None] = {}
        self._models: dict[tuple[str, str], tuple[str, dict[str, xr.DataArray]]] = {}
        self._memo: dict[Any, Any] = {}
        self.timings: dict[str, float] = {}
        self.notes: dict[str, list[str]] = {}

    # -- settings -------------------------------------------------------------------------
    def params(self, analysis: str) -> dict[str, Any]:
        """Return the validated settings of an analysis."""
        return self.spec["analyses"][analysis]

    @property
    def metric(self) -> str:
        """The metric of brain RDMs (``analyses.rsa.metric``, default correlation)."""
        rsa = self.spec["analyses"].get("rsa") or {}
        return rsa.get("metric") or RDM_DEFAULTS["metric"]

    @property
    def model_metric(self) -> str:
        """The metric of model RDMs.

        ``model_metric`` when the spec sets it; otherwise the brain's metric, unless that is
        cross-validated over runs (models have no runs): then squared Euclidean, which is what
        crossnobis estimates without bias.
        """
        from brainalign.rsa import CV_METRICS

        rsa = self.spec["analyses"].get("rsa") or {}
        if rsa.get("model_metric"):
            return rsa["model_metric"]
        return "sqeuclidean" if self.metric in CV_METRICS else self.metric

    def source(self, bname: str) -> Any:
        """Return the :class:`~brainalign.pipeline._analysis.Source` of a brain source."""
        return get_source(self.spec["brain"][bname]["dataset"])

    def model_kind(self, mname: str) -> Any:
        """Return the :class:`~brainalign.pipeline._analysis.ModelKind` of a model."""
        return get_model_kind(self.spec["models"][mname]["kind"])

    # -- data -----------------------------------------------------------------------------
    def data_key(self, bname: str) -> str:
        """Return the key of a brain source's data: its settings and its files' sha256."""
        if bname not in self._data_keys:
            src = self.spec["brain"][bname]
            self._data_keys[bname] = content_key(self.source(bname).payload(src))
        return self._data_keys[bname]

    def data(self, bname: str) -> Any:
        """Load a brain source's data (once per context)."""
        if bname not in self._data:
            self._data[bname] = self.source(bname).load(self.spec["brain"][bname])
        return self._data[bname]

    # -- brain RDMs -----------------------------------------------------------------------
    def brain_key(self, bname: str) -> str:
        """Return the key of a brain RDM: the source's data, RDM options and metric."""
        source = self.source(bname)
        payload = {"data": self.data_key(bname)}
        payload["rdm"] = source.rdm_options(self.spec["brain"][bname])
        if source.uses_metric:
            payload["metric"] = self.metric
        return content_key(payload)

    def brain(self, bname: str) -> dict[str, Any] | None:
        """Return a brain source's entry: ``rdm``, ``attrs``, ``data`` and maybe ``subjects``.

        From the cache when its key is there; else computed and stored. In a dry run, None
        when it is not cached.
        """
        if bname in self._brains:
            return self._brains[bname]
        key = self.brain_key(bname)
        if self.dry_run:
            cached = self.cache.peek("brain", key)
        else:
            cached = self.cache.get("brain", key)
        if cached is not None:
            brain = {"rdm": cached["rdm"], "attrs": dict(cached.attrs["source_attrs"])}
            if "subjects" in cached:
                brain["subjects"] = cached["subjects"]
        elif self.dry_run:
            brain = None
        else:
            src = self.spec["brain"][bname]
            brain = self.source(bname).brain(src, self.data(bname), self.metric)
            values = {"rdm": brain["rdm"]}
            if brain.get("subjects") is not None:
                values["subjects"] = brain["subjects"]
            self.cache.put(
                "brain", key, xr.Dataset(values, attrs={"source_attrs": brain["attrs"]})
            )
            ids = xr.Dataset(
                coords={"stimulus": [str(v) for v in brain["rdm"]["stimulus_a"].values]}
            )
            # the stimuli depend on the data alone: a dry run keys the units with them when
            # the brain RDM itself is not cached (new RDM options, a removed entry)
            self.cache.put("stimuli", self.data_key(bname), ids)
        if brain is not None:
            brain["data"] = self.source(bname).data
        self._brains[bname] = brain
        return brain

    def ids(self, bname: str) -> list[str] | None:
        """Return the stimulus ids of a brain RDM, in its order (None: unknown in a dry run).

        A dry run without the brain entry (another RDM metric or window, a removed entry)
        reads them from the small ``stimuli`` entry keyed by the data, which decide them.
        """
        brain = self.brain(bname)
        if brain is not None:
            return [str(v) for v in brain["rdm"]["stimulus_a"].values]
        stimuli = self.cache.peek("stimuli", self.data_key(bname))
        return None if stimuli is None else [str(v) for v in stimuli["stimulus"].values]

    # -- models ---------------------------------------------------------------------------
    def model_key(self, mname: str, bname: str) -> str | None:
        """Return the key of a model's RDMs over a brain's stimuli (None: stimuli unknown).

        It holds the model's settings, its weights' content, the stimuli and the metric, so
        new weights at the same path are never served from the cache.
        """
        ids = self.ids(bname)
        if ids is None:
            return None
        m = self.spec["models"][mname]
        payload = {"name": mname, "model": m, "ids": ids, "metric": self.model_metric}
        content = self.model_kind(mname).content(mname, m)
        if content is not None:
            payload["content"] = content
        return content_key(payload)

    def model_rdms(self, mname: str, bname: str) -> dict[str, xr.DataArray]:
        """Return a model's RDMs (entry → RDM) over a brain's stimuli, cached by content."""
        key = self.model_key(mname, bname)
        if key is None:
            raise RuntimeError(
                f"the RDMs of model {mname!r} over brain source {bname!r} need that source's "
                "stimuli, which a dry run does not load; an analysis's key() must return None "
                "when ctx.model_key() is None instead of computing."
            )
        got = self._models.get((mname, key))
        if got is not None:
            return got[1]
        cached = self.cache.get("model", key)
        if cached is not None:
            rdms = tree_to_entries(cached)
        else:
            brain = self.brain(bname)
            m = self.spec["models"][mname]
            rdms = self.model_kind(mname).rdms(mname, m, brain["rdm"], self.model_metric)
            for r in rdms.values():
                r.attrs["model"] = mname
                r.attrs["modality"] = "model"
            self.cache.put("model", key, entries_to_tree(rdms, {"model": mname}))
        self._models[(mname, key)] = (key, rdms)
        return rdms

    def model_content(self, mname: str) -> Any:
        """Return a model's settings and weights' content (for keys of feature-based units)."""
        m = self.spec["models"][mname]
        return [mname, m, self.model_kind(mname).content(mname, m)]

    def features(self, mname: str, ids: list[str]) -> dict[str, xr.DataArray]:
        """Return a model's feature matrices over ``ids`` (not cached)."""
        m = self.spec["models"][mname]
        return self.model_kind(mname).features(mname, m, ids)

    def add_notes(self, analysis: str, notes: list[str]) -> None:
        """Keep the distinct warnings of an analysis's computation (shown in its section)."""
        kept = self.notes.setdefault(analysis, [])
        kept += [n for n in notes if n and n not in kept]

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Add the seconds the block takes to ``timings[step]`` (the report's provenance)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - t0

    def memo(self, name: Any, compute: Callable[[], Any]) -> Any:
        """Return ``compute()``, computed once per context for ``name`` (not cached on disk)."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    # -- generic cached values ------------------------------------------------------------
    def cached(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        """Return the cache entry ``kind``/``key``, computing and storing it when missing.

        Looked up once per context (later calls return the same object).
        """
        if (kind, key) not in self._memo:
            got = self.cache.get(kind, key)
            if got is None:
                got = compute()
                self.cache.put(kind, key, got)
            self._memo[(kind, key)] = got
        return self._memo[(kind, key)]


#: One capture at a time: ``warnings`` filters are process-wide, and Dask workers may run
#: several tasks in threads of one process.
_CAPTURE_LOCK = threading.RLock()
#: Where re-emitted cache warnings are deduplicated (the "default" action shows each once).
_REEMITTED: dict[Any, Any] = {}


def capture_warnings(compute: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``compute``, returning its value and the distinct messages of its UserWarnings.

    The UserWarnings become notes (kept with a cache entry, shown in the report) instead of
    being shown. Other warnings go through the warning filters as usual (once per place with
    the default filter; an ``"error"`` filter raises). The cache's own warnings (an unusable
    entry) are shown after ``compute``, through the filters.
    """
    from brainalign.pipeline._cache import CacheWarning

    notes: list[str] = []
    later: list[tuple[Any, ...]] = []
    with _CAPTURE_LOCK, warnings.catch_warnings():
        shown = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, CacheWarning):
                later.append((message, category, filename, lineno))
            elif issubclass(category, UserWarning):
                if str(message) not in notes:
                    notes.append(str(message))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
        warnings.simplefilter("always", UserWarning)
        value = compute()
    for message, category, filename, lineno in later:
        warnings.warn_explicit(message, category, filename, lineno, registry=_REEMITTED)
    return value, notes
