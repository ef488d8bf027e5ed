"""The plug-in interfaces of the pipeline runner, and their registries.

Three kinds of plug-in make a pipeline, each a small class in its own module that owns all
that concerns it (as xarray's backends or PyG's registers):

- :class:`Source`: a kind of brain data (``brain.<name>.dataset``): its spec keys and checks,
  what its data depend on (file hashes and options: the cache key), how it is loaded, its
  RDM and its paragraph in the report's Data section;
- :class:`ModelKind`: a kind of model (``models.<name>.kind``): its spec keys and checks, the
  content its results depend on (weight digests), its features and RDMs over the brain's
  stimuli, and its provenance;
- :class:`Analysis`: an analysis (``analyses.<name>``): its spec keys and checks, its units
  (by default one per brain source and model), each unit's cache key (from exactly what the
  unit reads), the computation of a unit, the assembly of the units' results into the
  results tree, and its report section.

The runner (``_run``) and the executors (in process, or Dask) name no analysis, source or
model: they go through these interfaces. Register a plug-in with the decorators
(:func:`register_analysis`, :func:`register_source`, :func:`register_model`) or, from another
package, with an entry point in the groups ``brainalign.analyses``, ``brainalign.sources`` or
``brainalign.models`` (the object named is the plug-in class). ``docs/pipelines.md`` ("Write
your own analysis") has a complete example.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, TypeVar

import xarray as xr

from brainalign._checks import check_option
from brainalign._docdict import fill_doc

#: A spec schema: key → (type or tuple of types, required, default).
Schema = Mapping[str, tuple[Any, bool, Any]]
#: Integer ranges: key → (lowest, highest, what the integer counts).
Limits = Mapping[str, tuple[int, int, str]]


#: Parameter text shared by the plug-in base classes' method docstrings, written once and
#: filled into their ``%(name)s`` placeholders by :func:`_fill_methods`.
_PARAMS = {
    "src": """src : dict
    The source's settings (``brain.<name>`` of the validated spec, defaults filled
    in).""",
    "model_name": """name : str
    The model's name (its key under ``models``).""",
    "m": """m : dict
    The model's settings (``models.<name>`` of the validated spec, defaults filled
    in).""",
    "ctx": """ctx : Context
    The run's context (``_context.Context``): the validated spec, the cache and the
    brain and model entries (loaded or computed on first use).""",
    "checker": """c : Checker
    The spec's checker: ``c.fail(path, message)`` or ``c.option(path, value,
    allowed)`` reports a problem (a ``SpecError`` naming the key and its line).""",
    "register": """Returns
-------
cls : type
    The same class.

Raises
------
ValueError
    When the class has no ``name``, or another class holds the name.""",
}


_filled = functools.partial(fill_doc, entries=_PARAMS)  # one docstring from _PARAMS


def _fill_methods(cls: type[T]) -> type[T]:
    """Fill the ``%(name)s`` placeholders of a class's method docstrings from :data:`_PARAMS`."""
    for attr in vars(cls).values():
        if callable(attr):
            _filled(attr)
    return cls


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: an analysis of one brain source against one model.

    Parameters
    ----------
    analysis : str
        The analysis's name (its key under ``analyses``).
    brain : str
        The brain source's name (its key under ``brain``, or an entry it expands to).
    model : str
        The model's name (its key under ``models``).
    """

    analysis: str
    brain: str
    model: str

    @property
    def key(self) -> str:
        """A stable identifier, ``analysis/brain/model``."""
        return f"{self.analysis}/{self.brain}/{self.model}"


class Checker:
    """What a plug-in's ``validate`` gets to report a problem in the spec (see ``_spec``)."""

    def fail(self, path: tuple[str, ...], message: str) -> None:  # pragma: no cover
        """Raise a SpecError naming the key path, the problem and the line."""
        raise NotImplementedError

    def option(self, path: tuple[str, ...], value: Any, allowed: Any) -> None:  # pragma: no cover
        """Fail unless ``value`` is one of ``allowed`` (with "Did you mean ...?")."""
        raise NotImplementedError


@_fill_methods
class Source:
    """A kind of brain data, named by ``brain.<name>.dataset`` in a spec.

    Attributes
    ----------
    name : str
        The ``dataset`` value.
    data : str
        What the data are: ``"patterns"`` (trials × voxels), ``"judgments"`` (an RDM) or
        ``"meeg"`` (stimuli × channels × time). Analyses check it to refuse sources they
        cannot use.
    schema : dict
        The spec keys this source reads (besides ``dataset``).
    option_label : str
        How an error names its keys when another source is given one (``"an M/EEG option
        (eeg_haxby_sim, meeg_file)"``); default ``"an option of dataset <name>"``.
    uses_metric : bool
        Whether the RDM metric shapes its brain RDM (False for a source that is an RDM).
    complete : bool
        Whether its RDMs hold every pair of stimuli (tRSA needs it; judgments may not).
    runs : bool
        Whether its data are trials with a ``run`` coord (``data.trials``): encoding models
        and run-split noise ceilings need them.
    subject_runs : bool
        Whether each of its subjects' data are trials with a ``run`` coord
        (``data.subject_trials``, subject name → trials): encoding models are then fit per
        subject and tested across subjects.
    grid : bool
        Whether its patterns lie on a voxel grid (``data.means`` with voxel coords and a
        :meth:`background`): searchlights and brain maps need it.

    Notes
    -----
    :meth:`brain` may also return ``subjects``: one RDM per subject, dims ``("subject",
    "stimulus_a", "stimulus_b")``, when the source holds several subjects; ``rdm`` is then
    their mean, and RSA adds group-level inference across subjects with a noise ceiling.
    """

    name: ClassVar[str] = ""
    data: ClassVar[str] = ""
    schema: ClassVar[Schema] = {}
    option_label: ClassVar[str] = ""
    uses_metric: ClassVar[bool] = True
    complete: ClassVar[bool] = True
    runs: ClassVar[bool] = False
    subject_runs: ClassVar[bool] = False
    grid: ClassVar[bool] = False

    def validate(self, c: Checker, src: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check a source's settings beyond their types (default: nothing).

        Parameters
        ----------
        %(checker)s
        %(src)s
        path : tuple of str
            The source's key path in the spec (``("brain", <name>)``), to prefix the keys
            that a message names.
        """

    def expand(self, name: str, src: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Return the brain entries this source's settings make (default: itself).

        A source may stand for several entries, e.g. one per region of an atlas; each is
        then a brain source of its own (its own units, cache keys and report rows).

        Parameters
        ----------
        name : str
            The source's name (its key under ``brain``).
        %(src)s

        Returns
        -------
        entries : dict
            Brain-entry name → its settings (by default ``{name: src}``).
        """
        return {name: src}

    def payload(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return what the data depend on: the settings and the sha256 of each file read.

        Leave out settings that only shape the brain RDM (see :meth:`rdm_options`).

        Parameters
        ----------
        %(src)s

        Returns
        -------
        payload : dict
            JSON-serialisable values, hashed into the cache key of the source's data.
        """
        raise NotImplementedError

    def rdm_options(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the settings that shape the brain RDM but not the data (default: none).

        Parameters
        ----------
        %(src)s

        Returns
        -------
        options : dict
            JSON-serialisable values, added to the cache key of the brain RDM (not to that
            of the data).
        """
        return {}

    def load(self, src: dict[str, Any]) -> Any:
        """Load the data (the object the analyses of this ``data`` kind expect).

        Parameters
        ----------
        %(src)s

        Returns
        -------
        data : object
            The loaded data, as the analyses of this source's ``data`` kind expect them.
        """
        raise NotImplementedError

    def brain(self, src: dict[str, Any], data: Any, metric: str) -> dict[str, Any]:
        """Return the brain entry: ``rdm``, ``attrs`` (provenance), optional ``splits``.

        Parameters
        ----------
        %(src)s
        data : object
            The source's data, as :meth:`load` returns them.
        metric : str
            The spec's RDM metric (ignored by a source that is an RDM).

        Returns
        -------
        brain : dict
            ``rdm`` (xarray.DataArray, dims ``("stimulus_a", "stimulus_b")``), ``attrs``
            (dict, provenance), and optionally ``splits`` and ``subjects`` (see Notes of
            the class).
        """
        raise NotImplementedError

    def data_text(self, bname: str, src: dict[str, Any], attrs: dict[str, Any]) -> str:
        """Return the paragraph of the report's Data section on this source.

        Parameters
        ----------
        bname : str
            The brain entry's name.
        %(src)s
        attrs : dict
            The ``attrs`` (provenance) of the entry that :meth:`brain` returned.

        Returns
        -------
        text : str
            The paragraph (by default ``"<bname>: <dataset>."``).
        """
        return f"{bname}: {src['dataset']}."

    def background(self, src: dict[str, Any]) -> dict[str, Any]:
        """Return the grid and background of voxel maps (sources with ``grid``).

        Parameters
        ----------
        %(src)s

        Returns
        -------
        background : dict
            ``like`` (an image on the maps' grid), ``bg`` (a background image), ``mni``
            (whether the grid is in MNI space) and ``note`` (a caption sentence on the
            space).

        Raises
        ------
        NotImplementedError
            For a source without a voxel grid (the default).
        """
        raise NotImplementedError(f"dataset {self.name!r} has no voxel grid")


@_fill_methods
class ModelKind:
    """A kind of model, named by ``models.<name>.kind`` in a spec.

    Attributes
    ----------
    name : str
        The ``kind`` value.
    schema : dict
        The spec keys of this kind (``kind`` included).
    limits : dict
        Integer ranges of its keys.
    has_features : bool
        Whether it gives feature matrices (encoding models need them); a model that is only
        an RDM (a file of dissimilarities) overrides :meth:`rdms` and sets it False.
    """

    name: ClassVar[str] = ""
    schema: ClassVar[Schema] = {}
    limits: ClassVar[Limits] = {}
    has_features: ClassVar[bool] = True

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check a model's settings beyond their types (default: nothing).

        Parameters
        ----------
        %(checker)s
        m : dict
            The model's settings (``models.<name>`` of the spec, defaults filled in).
        path : tuple of str
            The model's key path in the spec (``("models", <name>)``), to prefix the keys
            that a message names.
        """

    def content(self, name: str, m: dict[str, Any]) -> str | None:
        """Return what the model's results depend on beyond its settings (weight digests).

        Parameters
        ----------
        %(model_name)s
        %(m)s

        Returns
        -------
        content : str or None
            A digest added to the cache keys of the model's results (None: the settings
            say it all, the default).
        """
        return None

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Return feature matrices ``(stimulus, feature)``, one per entry (``model:layer``).

        Parameters
        ----------
        %(model_name)s
        %(m)s
        ids : list of str
            The stimulus ids, in the order the rows must follow.

        Returns
        -------
        features : dict of str to xarray.DataArray
            Entry name (``model`` or ``model:layer``) → its features, dims
            ``("stimulus", "feature")``, rows in the order of ``ids``.
        """
        raise NotImplementedError

    def rdms(
        self, name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
    ) -> dict[str, xr.DataArray]:
        """Return the model's RDMs over the brain RDM's stimuli, one per entry.

        By default the RDM (:func:`brainalign.rsa.rdm` with ``metric``) of each feature
        matrix of :meth:`features`; a model that is only an RDM overrides it.

        Parameters
        ----------
        %(model_name)s
        %(m)s
        brain_rdm : xarray.DataArray
            The brain RDM, whose ``stimulus_a`` ids (and their order) the model RDMs follow.
        metric : str
            The spec's RDM metric for models.

        Returns
        -------
        rdms : dict of str to xarray.DataArray
            Entry name (``model`` or ``model:layer``, with a ``layer`` attr) → its RDM,
            dims ``("stimulus_a", "stimulus_b")``.
        """
        from brainalign import rsa

        ids = [str(v) for v in brain_rdm["stimulus_a"].values]
        out = {}
        for entry, acts in self.features(name, m, ids).items():
            r = rsa.rdm(acts, metric)
            if ":" in entry:
                r.attrs["layer"] = entry.split(":", 1)[1]
            out[entry] = r
        return out

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return rows for the report's provenance table (default: none).

        Parameters
        ----------
        %(model_name)s
        %(m)s

        Returns
        -------
        rows : dict of str to str
            Row label → value (for example weight digests or a model's source).
        """
        return {}


@_fill_methods
class Analysis:
    """An analysis, named by ``analyses.<name>`` in a spec.

    A subclass sets the class attributes and implements :meth:`key`, :meth:`compute`,
    :meth:`assemble` and :meth:`report`; the runner does the rest (cache look-up and storage,
    warnings kept with the entry, dry-run status, Dask tasks, progress, results.nc).

    Attributes
    ----------
    name : str
        The key under ``analyses``.
    schema : dict
        Its spec keys: key → (type(s), required, default).
    limits : dict
        Integer ranges of its keys, checked at validation.
    cache_kind : str
        The prefix of its cache entries (default: ``name``).
    section : str
        Its report section's title.
    progress : str
        The label of its progress bar.
    """

    name: ClassVar[str] = ""
    schema: ClassVar[Schema] = {}
    limits: ClassVar[Limits] = {}
    cache_kind: ClassVar[str] = ""
    section: ClassVar[str] = ""
    progress: ClassVar[str] = ""

    def validate(self, c: Checker, params: dict[str, Any], spec: dict[str, Any]) -> None:
        """Check the analysis's settings against each other and the spec's sources.

        Parameters
        ----------
        %(checker)s
        params : dict
            The analysis's settings (``analyses.<name>`` of the spec, defaults filled in).
        spec : dict
            The whole spec, its sources and models validated (to check that they suit
            the analysis, for example by their ``data`` kind).
        """

    def units(self, spec: dict[str, Any]) -> list[Unit]:
        """Return the units of work: by default one per brain source and model.

        Parameters
        ----------
        spec : dict
            The validated spec.

        Returns
        -------
        units : list of Unit
            The units, by brain source, then model (the default).
        """
        return [Unit(self.name, b, m) for b in spec["brain"] for m in spec["models"]]

    def key(self, ctx: Any, unit: Unit) -> str | None:
        """Return the unit's cache key, from exactly what the unit reads.

        In a dry run it computes nothing: a key that needs an uncached intermediate is
        None ("to run").

        Parameters
        ----------
        %(ctx)s
        unit : Unit
            The unit of work.

        Returns
        -------
        key : str or None
            The cache key (None in a dry run when it cannot be known without computing).
        """
        raise NotImplementedError

    def compute(self, ctx: Any, unit: Unit) -> xr.Dataset | xr.DataTree:
        """Compute one unit's result (cached by the runner under :meth:`key`).

        Parameters
        ----------
        %(ctx)s
        unit : Unit
            The unit of work.

        Returns
        -------
        result : xarray.Dataset or xarray.DataTree
            The unit's result, as stored in the cache and given to :meth:`assemble`.
        """
        raise NotImplementedError

    def assemble(self, ctx: Any, results: dict[Unit, Any]) -> tuple[dict[str, xr.Dataset], Any]:
        """Turn the units' results into results-tree nodes (path → Dataset), plus a state.

        Parameters
        ----------
        %(ctx)s
        results : dict of Unit to object
            Each unit's result, as :meth:`compute` returned it (or the cache held it).

        Returns
        -------
        nodes : dict of str to xarray.Dataset
            Path in the results tree → node.
        state : object
            Whatever :meth:`report` needs beyond the nodes.
        """
        raise NotImplementedError

    def report(self, report: Any, ctx: Any, nodes: dict[str, xr.Dataset], state: Any) -> None:
        """Add the analysis's section to the report.

        Parameters
        ----------
        report : brainalign.report.Report
            The run's report, to add text, tables and figures to (in the section
            :attr:`section`).
        %(ctx)s
        nodes : dict of str to xarray.Dataset
            The nodes that :meth:`assemble` returned.
        state : object
            The state that :meth:`assemble` returned.
        """


_ANALYSES: dict[str, type[Analysis]] = {}
_SOURCES: dict[str, type[Source]] = {}
_MODELS: dict[str, type[ModelKind]] = {}
_GROUPS = {
    "brainalign.analyses": _ANALYSES,
    "brainalign.sources": _SOURCES,
    "brainalign.models": _MODELS,
}
#: The modules of the built-in plug-ins (imported on first use of a registry).
_BUILTINS = (
    "brainalign.pipeline.sources",
    "brainalign.pipeline.models",
    "brainalign.pipeline.analyses",
)
_loaded = False
T = TypeVar("T")


def _register(registry: dict[str, Any], kind: str) -> Callable[[type[T]], type[T]]:
    def decorator(cls: type[T]) -> type[T]:
        name = cls.name  # type: ignore[attr-defined]
        if not name:
            raise ValueError(f"a {kind} plug-in needs a non-empty 'name'; {cls!r} has none.")
        old = registry.get(name)
        if old is not None and old is not cls and old.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"{kind} {name!r} is registered already (by {old.__module__}.{old.__qualname__})"
                f"; pick another name for {cls.__module__}.{cls.__qualname__}."
            )
        registry[name] = cls
        return cls

    return decorator


@_filled
def register_analysis(cls: type[Analysis]) -> type[Analysis]:
    """Register an :class:`Analysis` subclass under its ``name`` (a class decorator).

    ``cls`` is the analysis class; its ``cache_kind`` defaults to its ``name``.

    %(register)s
    """
    if not cls.cache_kind:
        cls.cache_kind = cls.name
    return _register(_ANALYSES, "analysis")(cls)


@_filled
def register_source(cls: type[Source]) -> type[Source]:
    """Register a :class:`Source` subclass under its ``name`` (a class decorator).

    ``cls`` is the source class.

    %(register)s
    """
    return _register(_SOURCES, "source")(cls)


@_filled
def register_model(cls: type[ModelKind]) -> type[ModelKind]:
    """Register a :class:`ModelKind` subclass under its ``name`` (a class decorator).

    ``cls`` is the model-kind class.

    %(register)s
    """
    return _register(_MODELS, "model kind")(cls)


def _load_plugins() -> None:
    """Import the built-in plug-ins, then those that packages declare as entry points."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTINS:
        importlib.import_module(module)
    for group, registry in _GROUPS.items():
        for ep in metadata.entry_points(group=group):
            cls = ep.load()
            _register(registry, group.rsplit(".", 1)[1][:-1])(cls)


def spec_plugins(spec: Mapping[str, Any]) -> dict[str, list[type]]:
    """Return the plug-in classes a validated spec uses, by registry group.

    Sent with each Dask task (:func:`register_plugins` on the worker), so that a plug-in
    registered only in the client's session runs on the cluster too.
    """
    _load_plugins()
    return {
        "brainalign.analyses": [_ANALYSES[a] for a in spec["analyses"]],
        "brainalign.sources": list({_SOURCES[s["dataset"]] for s in spec["brain"].values()}),
        "brainalign.models": list({_MODELS[m["kind"]] for m in spec["models"].values()}),
    }


def register_plugins(plugins: Mapping[str, list[type]]) -> None:
    """Register plug-in classes (from :func:`spec_plugins`) where they are missing."""
    _load_plugins()
    for group, classes in plugins.items():
        registry = _GROUPS[group]
        for cls in classes:
            if registry.get(cls.name) is None:  # type: ignore[attr-defined]
                if group == "brainalign.analyses" and not cls.cache_kind:  # type: ignore[attr-defined]
                    cls.cache_kind = cls.name  # type: ignore[attr-defined]
                registry[cls.name] = cls  # type: ignore[attr-defined]


def list_analyses() -> dict[str, type[Analysis]]:
    """Return the registered analyses, built-ins first.

    Returns
    -------
    analyses : dict of str to type
        Analysis name (the key under ``analyses:`` in a spec) → its :class:`Analysis` class.
    """
    _load_plugins()
    return dict(_ANALYSES)


def list_sources() -> dict[str, type[Source]]:
    """Return the registered brain sources.

    Returns
    -------
    sources : dict of str to type
        Dataset name (``brain.<name>.dataset`` in a spec) → its :class:`Source` class.
    """
    _load_plugins()
    return dict(_SOURCES)


def list_model_kinds() -> dict[str, type[ModelKind]]:
    """Return the registered model kinds.

    Returns
    -------
    kinds : dict of str to type
        Model kind (``models.<name>.kind`` in a spec) → its :class:`ModelKind` class.
    """
    _load_plugins()
    return dict(_MODELS)


# Internal short names. The public ones are ``list_*``: ``brainalign.pipeline.analyses`` and
# ``brainalign.pipeline.sources`` are subpackages, which would replace functions of the same
# names as attributes of the package once imported.
analyses = list_analyses
sources = list_sources
model_kinds = list_model_kinds


def get_analysis(name: str) -> Analysis:
    """Return an instance of the analysis ``name`` (ValueError naming the registered ones)."""
    registry = analyses()
    check_option("analysis", name, list(registry))
    return registry[name]()


def get_source(name: str) -> Source:
    """Return an instance of the brain source ``name``."""
    registry = sources()
    check_option("dataset", name, list(registry))
    return registry[name]()


def get_model_kind(name: str) -> ModelKind:
    """Return an instance of the model kind ``name``."""
    registry = model_kinds()
    check_option("kind", name, list(registry))
    return registry[name]()
