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
from brainalign.pipeline._analysis import Checker, analyses, model_kinds, sources


class SpecError(ValueError):
    """A pipeline spec is invalid; the message names the key path, the fix and the line."""


# Schema: key -> (type(s), required, default). The keys of brain sources, model kinds and
# analyses come from their plug-ins (_analysis: registries).
_REPORT_KEYS = {
    "title": (str, False, None),
    "subtitle": (str, False, None),
    "downloads": (bool, False, None),  # None: ba.get_config()["report_downloads"]
}
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
_LIMITS: dict[tuple[str, str], tuple[int, int, str]] = {
    # (section, key): (lowest, highest, what the integer counts). Model kinds and analyses
    # declare theirs (their ``limits``). Checked at validation so that a typo (an extra zero
    # or two) fails in a second instead of running for days.
    ("spec", "seed"): (0, 2**32 - 1, "the random seed; numpy's seed range"),
    ("executor", "n_workers"): (1, 100_000, "worker processes or jobs"),
    ("executor", "cores"): (1, 4_096, "cores per job"),
    ("executor", "gpus_per_worker"): (0, 64, "GPUs per worker"),
}
EXECUTOR_KINDS = ("inprocess", "local", "scheduler", "slurm")
"""Values of a spec's ``executor.kind``."""


def limits() -> dict[tuple[str, str], tuple[int, int, str]]:
    """Return the allowed range ``[lowest, highest]`` of every integer key of a spec.

    Returns
    -------
    limits : dict
        ``(section, key)`` → ``(lowest, highest, what the integer counts)``; the section is
        ``"spec"`` (the top level), ``"executor"``, a model kind or an analysis.
    """
    out = dict(_LIMITS)
    for registry in (model_kinds(), analyses()):
        for name, cls in registry.items():
            out.update({(name, key): value for key, value in cls.limits.items()})
    return out


def schemas() -> dict[str, Mapping[str, tuple]]:
    """Return the schema of every section: ``"spec"``, ``"executor"``, model kinds, analyses."""
    out: dict[str, Mapping[str, tuple]] = {"spec": _TOP, "executor": _EXECUTOR_KEYS}
    out.update({name: cls.schema for name, cls in model_kinds().items()})
    out.update({name: cls.schema for name, cls in analyses().items()})
    return out


def _dataset_names(registered: Mapping[str, Any]) -> list[str]:
    """Return the ``dataset`` values: the shipped datasets (sorted), then the other sources."""
    from brainalign.datasets import list_datasets

    shipped = set(list_datasets())
    return sorted(n for n in registered if n in shipped) + [
        n for n in registered if n not in shipped
    ]


def _brain_keys() -> dict[str, tuple]:
    """Return the keys of any brain source: ``dataset`` and every registered source's keys.

    A key that several sources read (``path``) takes any of their types, and a default
    only when they agree; each source's own schema is checked after this one.
    """
    keys: dict[str, tuple] = {"dataset": (str, True, None)}
    for cls in sources().values():
        for key, (types, _, default) in cls.schema.items():
            if key not in keys:
                keys[key] = (types, False, default)
                continue
            old_types, _, old_default = keys[key]
            merged = tuple(dict.fromkeys([*_as_tuple(old_types), *_as_tuple(types)]))
            keys[key] = (merged, False, old_default if old_default == default else None)
    return keys


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


def short(value: Any, limit: int = 200) -> str:
    """Return ``repr(value)``, cut to ``limit`` characters."""
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


class _Checker(Checker):
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
                path, f"must be a mapping of keys, got {type(value).__name__} {short(value)}."
            )
        out = {}
        for key in value:
            if key not in schema:
                self.fail(
                    (*path, str(key)),
                    f"unknown key {short(key)}. Valid keys here: {', '.join(schema)}."
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
                    f"must be {_type_name(types)}, got {type(v).__name__} {short(v)}.",
                )
            if isinstance(v, float) and not math.isfinite(v):
                self.fail((*path, key), f"must be a finite number, got {v}.")
            out[key] = v
        return out

    def option(self, path: tuple[str, ...], value: Any, allowed: Any) -> None:
        if value not in allowed:
            self.fail(
                path,
                f"invalid value {short(value)}; allowed: {', '.join(map(repr, allowed))}."
                + did_you_mean(str(value), allowed),
            )

    def name(self, path: tuple[str, ...], name: str, what: str) -> None:
        """Fail unless ``name`` is safe as a folder and NetCDF group name under --out."""
        problem = _name_problem(name)
        if problem is not None:
            self.fail(path, f"{what} {short(name)} is not allowed ({problem}): {_NAME_RULE}.")

    def limit(self, path: tuple[str, ...], value: Any, section: str, key: str) -> None:
        """Fail unless the integer ``value`` is within ``LIMITS[section, key]``."""
        low, high, what = limits()[section, key]
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            self.fail(
                path, f"must be an integer in [{low:_}, {high:_}] ({what}), got {short(value)}."
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
    c = _Checker(source, lines or {})
    out = c.mapping(spec, _TOP, ())
    c.name(("name",), out["name"], "the spec name")
    if not out["brain"]:
        c.fail(("brain",), "needs at least one brain source.")
    registered = sources()
    brain_keys = _brain_keys()
    brain = {}
    for name, src in out["brain"].items():
        path = ("brain", str(name))
        c.name(path, str(name), "the brain-source name")
        given = src
        src = c.mapping(given, brain_keys, path)  # unknown keys, with every source's keys
        c.option((*path, "dataset"), src["dataset"], _dataset_names(registered))
        own = registered[src["dataset"]]
        for key, value in src.items():  # another source's option, set here
            if key != "dataset" and key not in own.schema and value != brain_keys[key][2]:
                owners = [cls for cls in registered.values() if key in cls.schema]
                labels = {o.option_label for o in owners}
                label = (
                    labels.pop()
                    if len(labels) == 1 and "" not in labels
                    else (f"an option of dataset(s) {', '.join(repr(o.name) for o in owners)}")
                )
                c.fail(
                    (*path, key),
                    f"is {label}; dataset {src['dataset']!r} takes none, got {value!r}.",
                )
        # only its own keys, its own types and defaults: another source's defaults never
        # reach this one's settings (nor its cache keys)
        own_schema = {"dataset": brain_keys["dataset"], **own.schema}
        src = c.mapping({k: v for k, v in given.items() if k in own_schema}, own_schema, path)
        own().validate(c, src, path)
        for sub_name, sub_src in own().expand(str(name), src).items():
            if sub_name != str(name):
                c.name(path, sub_name, "the brain-source name")
                if sub_name in out["brain"] or sub_name in brain:
                    c.fail(path, f"makes the brain entry {sub_name!r}, which is already a name.")
            brain[sub_name] = sub_src
    out["brain"] = brain
    if not out["models"]:
        c.fail(("models",), "needs at least one model.")
    kinds = model_kinds()
    models = {}
    for name, m in out["models"].items():
        path = ("models", str(name))
        c.name(path, str(name), "the model name")
        if not isinstance(m, Mapping) or "kind" not in m:
            c.fail((*path, "kind"), f"is required; one of {', '.join(kinds)}.")
        c.option((*path, "kind"), m["kind"], tuple(kinds))
        m = c.mapping(m, kinds[m["kind"]].schema, path)
        kinds[m["kind"]]().validate(c, m, path)
        models[str(name)] = m
    out["models"] = models
    registry = analyses()
    params = {}
    for name, values in out["analyses"].items():
        c.option(("analyses", str(name)), name, tuple(registry))
        params[str(name)] = c.mapping(values or {}, registry[name].schema, ("analyses", str(name)))
    if not params:
        c.fail(("analyses",), f"needs at least one analysis; available: {', '.join(registry)}.")
    out["analyses"] = params
    for name in params:
        registry[name]().validate(c, params[name], out)
    out["report"] = c.mapping(out["report"] or {}, _REPORT_KEYS, ("report",))
    if out["executor"] is not None:
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
        for (sec, key), _ in limits().items():
            if sec == section and values is not None and values.get(key) is not None:
                c.limit((*path, key), values[key], section, key)


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
