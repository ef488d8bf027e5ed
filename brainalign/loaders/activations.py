"""Model activations as labeled tensors, one ``(stimulus, unit)`` array per layer.

Forward hooks on named modules, or a Hugging Face model's hidden states, pooled per batch.
The public functions are :func:`extract_activations` and :func:`list_layers`. Stimuli are a
tensor, a mapping of tensors (already tokenized text), texts (through a tokenizer) or any
items (image paths, arrays) through a ``preprocess`` callable. The result is an
:class:`xarray.DataTree` with one child per layer, as :func:`brainalign.data.random_network`
builds it, so every analysis takes it as it is.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign._checks import _fmt_list, check_number, check_option, check_type
from brainalign._device import resolve_device
from brainalign._imports import soft_import
from brainalign._logging import logger, progress
from brainalign._version import __version__
from brainalign.data._io import KIND_KEY, pack_attrs, unpack_attrs
from brainalign.data._schema import as_ids, validate

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "HIDDEN_STATES",
    "POOLINGS",
    "extract_activations",
    "first_tensor",
    "list_layers",
]

Pooling = Literal["mean", "first", "flatten", "max", "masked_mean"]
POOLINGS: tuple[str, ...] = ("mean", "first", "flatten", "max", "masked_mean")
"""The named pooling methods of :func:`extract_activations`."""

HIDDEN_STATES = "hidden_states"
"""The layer name that selects a Hugging Face model's ``outputs.hidden_states``."""

DEFAULT_BATCH_SIZE = 32
"""Stimuli per forward pass when neither ``batch_size`` nor ``max_memory_bytes`` is given."""

_DTYPES = ("float32", "float64")
_GLOB_CHARS = frozenset("*?[")
_HIDDEN_RE = re.compile(r"^hidden_states(\..+)?$")


# --------------------------------------------------------------------------------------
# layer names
# --------------------------------------------------------------------------------------


def _is_glob(spec: str) -> bool:
    return any(c in _GLOB_CHARS for c in spec)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a dotted glob: ``*`` and ``?`` stay within one component, ``**`` crosses."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append(r"[^.]*")
        elif c == "?":
            out.append(r"[^.]")
        elif c == "[" and (j := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : j]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _match(pattern: str, names: Sequence[str]) -> list[str]:
    """Return the names an exact name or a dotted glob selects, in ``names`` order."""
    if not _is_glob(pattern):
        return [pattern] if pattern in names else []
    regex = _glob_regex(pattern)
    return [n for n in names if regex.fullmatch(n)]


def list_layers(model: torch.nn.Module, pattern: str | None = None) -> list[str]:
    """List the layer names :func:`extract_activations` accepts for ``model``.

    These are the names of ``model.named_modules()`` without the root (``""``), in the
    model's order. Hugging Face models also accept :data:`HIDDEN_STATES` (see
    :func:`extract_activations`).

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    pattern : str, optional
        Keep only the names this glob selects: ``*`` and ``?`` match within one dotted
        component (``"encoder.layer.*"`` is the blocks, not their submodules), ``**``
        matches across components (``"**.output"``), ``[...]`` is a character set.

    Returns
    -------
    names : list of str
        The module names.

    Raises
    ------
    TypeError
        When ``model`` is not a :class:`torch.nn.Module`.

    Examples
    --------
    >>> import torch
    >>> from brainalign.loaders.activations import list_layers
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> list_layers(net)
    ['0', '1', '2']
    >>> list_layers(net, "[02]")
    ['0', '2']
    """
    check_type("model", model, (torch.nn.Module,), "a torch.nn.Module")
    names = [name for name, _ in model.named_modules() if name]
    if pattern is None:
        return names
    check_type("pattern", pattern, (str,), "a str (a module name or glob)")
    return _match(pattern, names)


def _unknown_layer(spec: str, names: Sequence[str], model: torch.nn.Module) -> ValueError:
    what = "matched no module" if _is_glob(spec) else "is not a module"
    close = difflib.get_close_matches(spec, [*names, HIDDEN_STATES], n=3, cutoff=0.6)
    hint = f" Did you mean {_fmt_list(close)}?" if close else ""
    return ValueError(
        f"Invalid value for the 'layers' parameter: {spec!r} {what} of "
        f"{type(model).__name__}, which has {len(names)} named modules.{hint} List the valid "
        "names with brainalign.loaders.activations.list_layers(model) (the names of "
        f"model.named_modules()); use {HIDDEN_STATES!r} for a Hugging Face model's hidden "
        "states."
    )


def _resolve_layers(model: torch.nn.Module, layers: Any) -> list[tuple[str, str]]:
    """Turn the ``layers`` parameter into ordered ``("module"|"hidden", name)`` entries."""
    if isinstance(layers, str):
        specs = [layers]
    elif isinstance(layers, Sequence) and not isinstance(layers, (bytes, bytearray)):
        specs = list(layers)
    else:
        raise TypeError(
            "layers must be a str or a sequence of str (module names, globs or "
            f"{HIDDEN_STATES!r}), got {type(layers).__name__} {layers!r}."
        )
    if not specs:
        raise ValueError(
            "layers is empty; give at least one module name, glob or 'hidden_states'."
        )
    bad = [s for s in specs if not isinstance(s, str) or not s]
    if bad:
        raise TypeError(f"layers must hold non-empty str names; got {_fmt_list(bad)}.")
    names = [name for name, _ in model.named_modules() if name]
    entries: list[tuple[str, str]] = []
    for spec in specs:  # loop over layer specs, not stimuli
        matched = _match(spec, names)
        if matched:
            entries += [("module", m) for m in matched]
        elif _HIDDEN_RE.match(spec):
            entries.append(("hidden", spec))
        else:
            raise _unknown_layer(spec, names, model)
    return list(dict.fromkeys(entries))  # drop repeats, keep the first position


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------


def first_tensor(output: Any) -> torch.Tensor | None:
    """Return a module output's first tensor.

    That is the output itself, or the first tensor of a tuple, list, mapping or Hugging Face
    ``ModelOutput`` (``None`` entries skipped). The default ``select`` of
    :func:`extract_activations`.

    Parameters
    ----------
    output : object
        What a module's ``forward`` returned.

    Returns
    -------
    tensor : torch.Tensor or None
        The tensor, or ``None`` when ``output`` holds none at its first level.

    Examples
    --------
    >>> import torch
    >>> from brainalign.loaders.activations import first_tensor
    >>> first_tensor((None, torch.zeros(2), torch.ones(3))).shape
    torch.Size([2])
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        values: Any = output.values()
    elif isinstance(output, (tuple, list)):
        values = output
    else:
        return None
    return next((v for v in values if isinstance(v, torch.Tensor)), None)


def _pooling_name(pooling: Any) -> str:
    if pooling is None:
        return "none"
    if callable(pooling):
        return getattr(pooling, "__name__", type(pooling).__name__)
    return str(pooling)


def _pool(
    t: torch.Tensor, pooling: Any, mask: torch.Tensor | None, layer: str
) -> tuple[torch.Tensor, str]:
    """Pool a batch ``(n, ...)`` to ``(n, units)``; return it and the pooling applied."""
    n = t.shape[0]
    shape = tuple(t.shape)
    if t.ndim <= 2:  # nothing to pool: (n,) is one unit, (n, units) stays
        return t.reshape(n, -1), "none"
    if callable(pooling):
        out = pooling(t, mask)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"pooling={_pooling_name(pooling)!r} must return a tensor of shape (n, units) "
                f"= ({n}, ...); for layer {layer!r} (output shape {shape}) it returned {got}."
            )
        return out, _pooling_name(pooling)
    if pooling is None:
        raise ValueError(
            f"Layer {layer!r} gives outputs of shape {shape}, and pooling=None keeps only 2-D "
            f"(stimulus, unit) outputs. Pass pooling= one of {_fmt_list(POOLINGS)} (or a "
            "callable(tensor, attention_mask) -> (n, units)): 'mean'/'max' over tokens or "
            "spatial positions, 'first' for the first (CLS) token, 'masked_mean' for padded "
            "text, 'flatten' to keep every value."
        )
    if pooling == "flatten":
        return t.reshape(n, -1), pooling
    if t.ndim == 3:  # (n, token, feature)
        if pooling == "first":
            return t[:, 0], pooling
        valid = None
        if mask is not None:
            if tuple(mask.shape) != shape[:2]:
                raise ValueError(
                    f"pooling={pooling!r} over tokens needs layer {layer!r}'s outputs "
                    f"(shape {shape}) to be (n, token, feature) with as many tokens as the "
                    f"attention mask (shape {tuple(mask.shape)}). Pick another layer, pooling "
                    "'flatten', or a pooling callable."
                )
            valid = mask.to(torch.bool)
        if pooling == "max":
            if valid is not None:
                t = t.masked_fill(~valid[..., None], float("-inf"))
            return t.amax(dim=1), pooling
        if pooling == "mean" or valid is None:  # masked_mean without a mask: every token
            return t.mean(dim=1, dtype=torch.float64), pooling
        weights = valid.to(t.dtype)[..., None]
        total = (t * weights).sum(dim=1, dtype=torch.float64)
        return total / valid.sum(dim=1, keepdim=True).to(torch.float64), pooling
    spatial = tuple(range(2, t.ndim))  # (n, channel, *spatial)
    if pooling == "mean":
        return t.mean(dim=spatial, dtype=torch.float64), pooling
    if pooling == "max":
        return t.amax(dim=spatial), pooling
    raise ValueError(
        f"pooling={pooling!r} applies to (n, token, feature) outputs, but layer {layer!r} gives "
        f"shape {shape}, read as (n, channel, *spatial). Use pooling 'mean', 'max' (over the "
        "spatial positions) or 'flatten'."
    )


# --------------------------------------------------------------------------------------
# stimuli
# --------------------------------------------------------------------------------------


def _floating_dtype(model: torch.nn.Module) -> torch.dtype | None:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _to(x: torch.Tensor, device: torch.device, float_dtype: torch.dtype | None) -> torch.Tensor:
    if float_dtype is not None and x.is_floating_point():
        return x.to(device=device, dtype=float_dtype)
    return x.to(device=device)


def _nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.element_size() * x.nelement()
    return 0


class _Stimuli:
    """Stimuli of one kind, cut into model inputs batch by batch."""

    def __init__(
        self,
        stimuli: Any,
        tokenizer: Any,
        tokenizer_kwargs: Mapping[str, Any] | None,
        preprocess: Callable[[Any], Any] | None,
    ) -> None:
        self.tokenizer = tokenizer
        self.tokenizer_kwargs = {
            "padding": True,
            "truncation": True,
            "return_tensors": "pt",
            **dict(tokenizer_kwargs or {}),
        }
        self.preprocess = preprocess
        if isinstance(stimuli, np.ndarray) and (stimuli.dtype.kind in "US" or preprocess):
            stimuli = list(stimuli) if preprocess else stimuli.tolist()  # items, or texts
        if isinstance(stimuli, (str, bytes)):
            raise TypeError(
                f"stimuli must be a sequence of items, got a single {type(stimuli).__name__} "
                f"{stimuli!r}; wrap it in a list: [{stimuli!r}]."
            )
        if isinstance(stimuli, np.ndarray) and preprocess is None:
            if not (np.issubdtype(stimuli.dtype, np.number) or stimuli.dtype == np.bool_):
                raise TypeError(
                    f"stimuli is a numpy array of dtype {stimuli.dtype}; pass numeric arrays, "
                    "texts with tokenizer=, or items with preprocess=."
                )
            stimuli = torch.as_tensor(stimuli)
        if isinstance(stimuli, torch.Tensor):
            if preprocess is not None:
                raise ValueError(
                    "preprocess is given but stimuli is a tensor; preprocess applies to a "
                    "sequence of items (image paths, arrays). Pass the items, or preprocess=None."
                )
            if stimuli.ndim < 1:
                raise ValueError(
                    f"stimuli is a 0-d tensor; it needs a first (stimulus) dim (got {stimuli!r})."
                )
            self.kind, self.n, self.data = "tensor", int(stimuli.shape[0]), stimuli
        elif isinstance(stimuli, Mapping):
            self._init_mapping(stimuli)
        elif isinstance(stimuli, Sequence):
            self._init_items(list(stimuli))
        else:
            raise TypeError(
                "stimuli must be a torch tensor (n, ...), a mapping of tensors (tokenized "
                "text), a list of texts (with tokenizer=) or a list of items (with "
                f"preprocess=); got {type(stimuli).__name__}."
            )
        if self.n == 0:
            raise ValueError(
                "stimuli is empty; it needs at least one stimulus (got a "
                f"{type(stimuli).__name__} of length 0)."
            )
        self.is_text = self.kind == "text" or (
            self.kind == "mapping" and "attention_mask" in self.data
        )

    def _init_mapping(self, stimuli: Mapping[str, Any]) -> None:
        if not stimuli:
            raise ValueError(
                "stimuli is an empty mapping; it needs at least one input tensor (got "
                f"{type(stimuli).__name__}())."
            )
        data = {
            str(k): v if isinstance(v, torch.Tensor) else torch.as_tensor(v)
            for k, v in stimuli.items()
        }
        lengths = {k: int(v.shape[0]) if v.ndim else 0 for k, v in data.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                "stimuli is a mapping of inputs whose first (stimulus) dims differ: "
                f"{lengths}; every input needs one row per stimulus."
            )
        self.kind, self.n, self.data = "mapping", next(iter(lengths.values())), data

    def _init_items(self, items: list[Any]) -> None:
        self.kind, self.n, self.data = "items", len(items), items
        if self.preprocess is not None:
            if self.tokenizer is not None:
                raise ValueError(
                    "tokenizer and preprocess are both given; pass tokenizer= for texts or "
                    "preprocess= for other items (image paths, arrays), not both."
                )
            if not callable(self.preprocess):
                raise TypeError(
                    "preprocess must be a callable(item) -> tensor, got "
                    f"{type(self.preprocess).__name__}."
                )
            return
        kinds = sorted({type(x).__name__ for x in items})
        if all(isinstance(x, str) for x in items) and items:
            if self.tokenizer is None:
                raise ValueError(
                    f"stimuli holds {len(items)} texts but tokenizer is None; texts need "
                    "tokenizer= (a Hugging Face tokenizer, e.g. transformers.AutoTokenizer."
                    "from_pretrained(...)). For image paths pass preprocess= instead."
                )
            if not callable(self.tokenizer):
                raise TypeError(
                    "tokenizer must be a callable Hugging Face tokenizer or a model name/path, "
                    f"got {type(self.tokenizer).__name__}."
                )
            self.kind = "text"
            return
        if self.tokenizer is not None:
            raise ValueError(
                f"tokenizer is given but stimuli holds {_fmt_list(kinds)} items, not only "
                "str texts."
            )
        if not all(isinstance(x, (torch.Tensor, np.ndarray)) for x in items):
            raise TypeError(
                f"stimuli is a list of {_fmt_list(kinds)}; without preprocess= only tensors or "
                "numeric arrays (stacked per batch) are accepted. Pass preprocess=callable(item) "
                "-> tensor (for example to read and resize an image path)."
            )

    def probe_index(self) -> int:
        """Return the stimulus that estimates memory: the longest text, else the first."""
        if self.kind == "text":
            return int(np.argmax(np.fromiter(map(len, self.data), dtype=np.int64)))
        return 0

    def batch(
        self, sl: slice, device: torch.device, float_dtype: torch.dtype | None
    ) -> tuple[tuple[Any, ...], dict[str, Any], torch.Tensor | None]:
        """Model inputs ``(args, kwargs, attention_mask)`` for the stimuli in ``sl``."""
        if self.kind == "tensor":
            return (_to(self.data[sl], device, float_dtype),), {}, None
        if self.kind == "mapping":
            kwargs = {k: _to(v[sl], device, float_dtype) for k, v in self.data.items()}
            return (), kwargs, kwargs.get("attention_mask")
        if self.kind == "text":
            enc = self.tokenizer(self.data[sl], **self.tokenizer_kwargs)
            kwargs = {k: _to(torch.as_tensor(v), device, float_dtype) for k, v in enc.items()}
            return (), kwargs, kwargs.get("attention_mask")
        fn = self.preprocess if self.preprocess is not None else (lambda item: item)
        tensors = [torch.as_tensor(fn(item)) for item in self.data[sl]]  # user's per-item step
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) != 1:
            raise ValueError(
                f"The items of stimuli {sl.start}..{sl.stop - 1} (after preprocess) are tensors "
                f"of different shapes {_fmt_list(sorted(shapes))}; every item must give the "
                "same shape (resize images to one size in preprocess)."
            )
        return (_to(torch.stack(tensors), device, float_dtype),), {}, None


# --------------------------------------------------------------------------------------
# running the model
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _prepared(model: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode on ``device`` for the extraction; the modes and the device are restored."""
    modes = [(m, m.training) for m in model.modules()]
    if device.type == "cuda" and device.index is None:  # compare with cuda:N parameters
        device = torch.device("cuda", torch.cuda.current_device())
    devices = {t.device for t in itertools.chain(model.parameters(), model.buffers())}
    origin = next(iter(devices)) if len(devices) == 1 else None
    moved = origin is not None and origin != device
    try:
        if moved:
            model.to(device)
        model.eval()
        yield
    finally:
        if moved:
            model.to(origin)
        for module, mode in modes:
            module.training = mode


def _accepts_hidden_states(model: torch.nn.Module) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return True
    return "output_hidden_states" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


class _Runner:
    """Runs batches through the model, hooks the modules and pools their outputs."""

    def __init__(
        self,
        model: torch.nn.Module,
        entries: list[tuple[str, str]],
        pooling: Any,
        select: Callable[[Any], Any] | None,
        out_dtype: torch.dtype,
        ids: np.ndarray,
    ) -> None:
        self.model = model
        self.entries = entries
        self.pooling = pooling
        self.select = select if select is not None else first_tensor
        self.out_dtype = out_dtype
        self.ids = ids
        self.modules = [name for kind, name in entries if kind == "module"]
        self.hidden = [spec for kind, spec in entries if kind == "hidden"]
        # The final layer order; with hidden states it is known after the first batch.
        self.names: list[str] | None = None if self.hidden else list(self.modules)
        self.hidden_index: dict[str, int] = {}
        self.applied: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.captured: dict[str, torch.Tensor] = {}
        self.mask: torch.Tensor | None = None
        self.batch_n = 0
        self.handles: list[Any] = []
        if self.hidden and not _accepts_hidden_states(model):
            raise ValueError(
                f"layers asks for {_fmt_list(self.hidden)}, but {type(model).__name__}.forward "
                "takes no output_hidden_states argument (hidden states are a Hugging Face "
                "model feature). Hook module names instead (list_layers(model))."
            )

    def __enter__(self) -> _Runner:
        lookup = dict(self.model.named_modules())
        for name in self.modules:
            self.handles.append(lookup[name].register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _keep(self, name: str, t: torch.Tensor) -> None:
        if t.ndim == 0 or t.shape[0] != self.batch_n:
            raise ValueError(
                f"Layer {name!r} gives outputs of shape {tuple(t.shape)}, whose first dim is not "
                f"the batch of {self.batch_n} stimuli; hook a module whose output is (n, ...) or "
                "pass select= a callable that returns such a tensor."
            )
        pooled, applied = _pool(t, self.pooling, self.mask, name)
        self.applied.setdefault(name, applied)
        # A copy now: in-place modules that run later (ReLU(inplace=True)) cannot change it.
        self.captured[name] = pooled.detach().to(device="cpu", dtype=self.out_dtype, copy=True)

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] > 1:
                return
            t = self.select(output)
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"Layer {name!r} ({type(module).__name__}) returned "
                    f"{type(output).__name__}, and select gave {type(t).__name__}, not a "
                    "tensor; pass select= a callable that picks the tensor from this output."
                )
            self._keep(name, t)

        return hook

    def _forward(
        self, sl: slice, inputs: tuple[tuple[Any, ...], dict[str, Any], torch.Tensor | None]
    ) -> Any:
        args, kwargs, mask = inputs
        if mask is not None:
            empty = np.flatnonzero(mask.sum(dim=1).cpu().numpy() == 0)
            if empty.size:
                raise ValueError(
                    f"stimuli {_fmt_list(self.ids[sl][empty].tolist())} have no token in the "
                    "attention mask (empty texts?); their pooled activations are undefined."
                )
        self.mask, self.batch_n = mask, sl.stop - sl.start
        self.calls.clear()
        self.captured.clear()
        if self.hidden:
            kwargs = {**kwargs, "output_hidden_states": True}
        with torch.inference_mode():
            outputs = self.model(*args, **kwargs)
        if self.hidden:
            self._keep_hidden(outputs)
        return outputs

    def run(self, sl: slice, stimuli: _Stimuli, device: torch.device) -> dict[str, np.ndarray]:
        """Pooled activations of the stimuli in ``sl``, one array per layer, in order."""
        self._forward(sl, stimuli.batch(sl, device, _floating_dtype(self.model)))
        silent = [name for name in self.modules if name not in self.calls]
        if silent:
            raise RuntimeError(
                f"Layer(s) {_fmt_list(silent)} never ran during the forward pass of "
                f"{type(self.model).__name__} (their forward hooks did not fire), so they have no "
                "activations. The module exists but forward() does not call it for these inputs; "
                "pick modules that run (list_layers(model))."
            )
        repeated = {name: c for name, c in self.calls.items() if c > 1}
        if repeated:
            raise RuntimeError(
                f"Layer(s) {_fmt_list(repeated)} ran more than once in one forward pass "
                f"(calls: {repeated}), so their activations are ambiguous; a module reused in "
                "forward() (a shared activation module) cannot be hooked by name."
            )
        assert self.names is not None
        return {name: self.captured[name].numpy() for name in self.names}

    def _resolve_hidden(self, count: int) -> None:
        valid = [f"{HIDDEN_STATES}.{i}" for i in range(count)]
        names: list[str] = []
        for kind, spec in self.entries:
            if kind == "module":
                names.append(spec)
                continue
            matched = valid if spec == HIDDEN_STATES else _match(spec, valid)
            if not matched:
                raise ValueError(
                    f"Invalid value for the 'layers' parameter: {spec!r} selects no hidden "
                    f"state; {type(self.model).__name__} returned {count} "
                    f"({valid[0]} ... {valid[-1]}: the embeddings, then one per block)."
                )
            names += matched
        self.names = list(dict.fromkeys(names))
        self.hidden_index = {v: i for i, v in enumerate(valid) if v in self.names}

    def _keep_hidden(self, outputs: Any) -> None:
        states = getattr(outputs, "hidden_states", None)
        if states is None and isinstance(outputs, Mapping):
            states = outputs.get("hidden_states")
        if not isinstance(states, (tuple, list)) or not states:
            raise ValueError(
                f"layers asks for {_fmt_list(self.hidden)}, but {type(self.model).__name__} "
                "returned no hidden_states with output_hidden_states=True. Hook module names "
                "instead (list_layers(model))."
            )
        if self.names is None:
            self._resolve_hidden(len(states))
        for name, index in self.hidden_index.items():
            self._keep(name, states[index])

    def probe(self, index: int, stimuli: _Stimuli, device: torch.device) -> int:
        """Estimate the bytes one stimulus needs (see ``max_memory_bytes``)."""
        sizes: list[int] = []

        def measure(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            sizes.append(_nbytes(first_tensor(output)))

        handles = [m.register_forward_hook(measure) for _, m in self.model.named_modules()]
        sl = slice(index, index + 1)
        try:
            inputs = stimuli.batch(sl, device, _floating_dtype(self.model))
            in_bytes = sum(map(_nbytes, itertools.chain(inputs[0], inputs[1].values())))
            outputs = self._forward(sl, inputs)
        finally:
            for handle in handles:
                handle.remove()
        states = getattr(outputs, "hidden_states", None) if self.hidden else None
        hidden_bytes = sum(map(_nbytes, states or ()))
        pooled_bytes = sum(map(_nbytes, self.captured.values()))
        return in_bytes + hidden_bytes + 2 * max(sizes, default=0) + pooled_bytes


# --------------------------------------------------------------------------------------
# where the activations go
# --------------------------------------------------------------------------------------


class _MemorySink:
    """Per-layer numpy arrays, allocated once the first batch reveals the unit counts."""

    def __init__(self, ids: np.ndarray, dtype: np.dtype) -> None:
        self.ids, self.dtype = ids, dtype
        self.arrays: dict[str, np.ndarray] = {}

    def write(self, sl: slice, batch: Mapping[str, np.ndarray]) -> None:
        for name, values in batch.items():  # loop over layers
            if name not in self.arrays:
                self.arrays[name] = np.empty((self.ids.size, values.shape[1]), self.dtype)
            _check_units(name, self.arrays[name].shape[1], values, sl)
            self.arrays[name][sl] = values

    def finish(self, layer_attrs: Mapping[str, dict], tree_attrs: dict) -> xr.DataTree:
        children = {}
        for name, values in self.arrays.items():
            da = xr.DataArray(
                values,
                dims=("stimulus", "unit"),
                coords={"stimulus": self.ids},
                attrs=layer_attrs[name],
                name="activations",
            )
            validate(da, name=f"activations of layer {name!r}")
            children[name] = xr.DataTree(dataset=da.to_dataset())
        tree = xr.DataTree(children=children)
        tree.attrs.update(tree_attrs)
        return tree

    def abort(self) -> None:
        self.arrays.clear()


def _check_units(name: str, units: int, values: np.ndarray, sl: slice) -> None:
    if values.shape[1] != units:
        raise ValueError(
            f"Layer {name!r} gave {values.shape[1]} units for stimuli {sl.start}..{sl.stop - 1} "
            f"but {units} for the first batch. With padded text, pooling 'flatten' "
            "depends on the padded length; use 'masked_mean', or pad to one length with "
            "tokenizer_kwargs={'padding': 'max_length', 'max_length': ...}."
        )


class _FileSink:
    """Writes each batch into a NetCDF (HDF5) file, one group per layer, atomically."""

    def __init__(self, path: Path, ids: np.ndarray, dtype: np.dtype) -> None:
        import h5netcdf

        self.path, self.ids, self.dtype = path, ids, dtype
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.file = h5netcdf.File(self.tmp, "w")
        self.vars: dict[str, Any] = {}

    def write(self, sl: slice, batch: Mapping[str, np.ndarray]) -> None:
        for name, values in batch.items():  # loop over layers
            if name not in self.vars:
                self.vars[name] = self._create(name, values.shape[1])
            var = self.vars[name].variables["activations"]
            _check_units(name, var.shape[1], values, sl)
            var[sl.start : sl.stop, :] = values

    def _create(self, name: str, units: int) -> Any:
        import h5py

        group = self.file.create_group(name)
        group.dimensions["stimulus"] = self.ids.size
        group.dimensions["unit"] = units
        stim = group.create_variable("stimulus", ("stimulus",), dtype=h5py.string_dtype())
        stim[:] = self.ids.astype(object)
        group.create_variable("activations", ("stimulus", "unit"), dtype=self.dtype)
        return group

    def finish(self, layer_attrs: Mapping[str, dict], tree_attrs: dict) -> xr.DataTree:
        # Attrs are packed as brainalign.save packs them, so brainalign.load reads the file
        # back exactly; they are written last, once the pooling applied is known.
        empty = _packed_attrs({})
        for name, group in self.vars.items():  # loop over layers
            group.attrs.update(empty)
            group.variables["stimulus"].attrs.update(empty)
            group.variables["activations"].attrs.update(_packed_attrs(layer_attrs[name]))
        self.file.attrs.update(_packed_attrs(tree_attrs))
        self.file.attrs[KIND_KEY] = "DataTree"
        self.file.close()
        os.replace(self.tmp, self.path)
        return _open_lazily(self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        self.tmp.unlink(missing_ok=True)


def _packed_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` as :func:`brainalign.save` stores them: native values plus exact JSON."""
    ds = xr.Dataset(attrs=dict(attrs))
    pack_attrs(ds)
    return dict(ds.attrs)


def _open_lazily(path: Path) -> xr.DataTree:
    """Open what :class:`_FileSink` wrote, values left on disk, attrs decoded."""
    tree = xr.open_datatree(path, engine="h5netcdf")
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False).copy(deep=False)
        unpack_attrs(ds)
        ds.attrs.pop(KIND_KEY, None)
        node.dataset = ds
    return tree


# --------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------


def _load_pretrained(kind: str, name: str) -> Any:
    transformers = soft_import(
        "transformers", "models", f"extract_activations({kind}={name!r}) (a name or path)"
    )
    auto = transformers.AutoModel if kind == "model" else transformers.AutoTokenizer
    return auto.from_pretrained(name)


def _stimulus_ids(stimulus: Any, n: int) -> np.ndarray:
    if stimulus is not None and not isinstance(stimulus, (str, bytes)):
        count = len(stimulus) if hasattr(stimulus, "__len__") else None
        if count is not None and count != n:
            raise ValueError(
                f"stimulus has {count} ids but stimuli holds {n} stimuli; give one id per "
                "stimulus, in the order of stimuli."
            )
    ids = as_ids(stimulus, n)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"stimulus ids must be unique; duplicated: {_fmt_list(uniq[counts > 1].tolist())}."
        )
    return ids


def extract_activations(
    model: torch.nn.Module | str | os.PathLike[str],
    stimuli: Any,
    layers: str | Sequence[str],
    *,
    stimulus: Sequence[Any] | None = None,
    pooling: Pooling | Callable[..., torch.Tensor] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    tokenizer: Any = None,
    tokenizer_kwargs: Mapping[str, Any] | None = None,
    preprocess: Callable[[Any], Any] | None = None,
    select: Callable[[Any], torch.Tensor] | None = None,
    max_memory_bytes: int | None = None,
    out: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    dtype: Literal["float32", "float64"] = "float32",
) -> xr.DataTree:
    """Extract a model's activations for stimuli, pooled to ``(stimulus, unit)`` per layer.

    Forward hooks on the named modules record their outputs (or, for Hugging Face models,
    ``outputs.hidden_states`` is taken directly); each batch is pooled on the device as it
    comes, so only pooled activations are kept. The model runs in eval mode under
    :func:`torch.inference_mode`; its modes and device are restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module or str or path-like
        The model. A str or path is loaded with ``transformers.AutoModel.from_pretrained``
        (a local folder works offline; needs ``pip install 'brainalign[models]'``), and then
        also gives the tokenizer for text stimuli when ``tokenizer`` is None.
    stimuli : torch.Tensor or mapping or sequence
        One of:

        - a tensor ``(n, ...)`` (or a numeric numpy array), passed as ``model(batch)``;
        - a mapping of tensors with one row per stimulus (e.g. a tokenizer's
          ``BatchEncoding``), passed as ``model(**batch)``; its ``attention_mask`` drives
          ``"masked_mean"``;
        - a list of texts (str) with ``tokenizer``: each batch is tokenized with
          ``padding=True, truncation=True, return_tensors="pt"``;
        - a list of items (image paths, arrays ...) with ``preprocess``, which turns each item
          into a tensor; the tensors of a batch are stacked. Without ``preprocess`` a list of
          tensors or numeric arrays is stacked as it is.
    layers : str or sequence of str
        What to record, in this order:

        - module names as in ``model.named_modules()`` (see :func:`list_layers`), e.g.
          ``"encoder.layer.3"``;
        - dotted globs: ``*`` and ``?`` match within one component, so
          ``"encoder.layer.*"`` is the six blocks (not their submodules), ``**`` matches
          across components, ``[...]`` is a character set; a glob expands in model order;
        - ``"hidden_states"``: every entry of a Hugging Face model's
          ``outputs.hidden_states`` (named ``"hidden_states.0"`` = embeddings,
          ``"hidden_states.1"`` ... = one per block), taken without hooks; or single entries
          ``"hidden_states.4"`` or globs such as ``"hidden_states.[1-3]"``.

        A module that returns a tuple, a mapping or a ``ModelOutput`` gives its first tensor
        (see :func:`first_tensor`), unless ``select`` says otherwise.
    stimulus : sequence of str, optional
        The stimulus id of each stimulus (unique). Default ``"0"..."n-1"``.
    pooling : {"mean", "first", "flatten", "max", "masked_mean"} or callable, optional
        How outputs with more than two dims become ``(n, units)``. Outputs of shape
        ``(n, token, feature)`` (3-D): ``"mean"`` over all positions (padding included),
        ``"masked_mean"`` over the tokens of the attention mask (the same as ``"mean"``
        without a mask), ``"max"`` over the tokens of the mask, ``"first"`` the first token
        (BERT's CLS). Outputs ``(n, channel, *spatial)`` (4-D and more, e.g. conv maps):
        ``"mean"`` or ``"max"`` over the spatial positions. ``"flatten"`` keeps every value.
        A callable ``f(tensor, attention_mask_or_None) -> (n, units)`` pools as it likes.
        Outputs already 2-D are kept as they are, whatever the pooling (recorded as
        ``pooling="none"``). Default: ``"masked_mean"`` for text (a tokenizer or an
        attention mask), otherwise None, which requires 2-D outputs.
    batch_size : int, optional
        Stimuli per forward pass. Default: from ``max_memory_bytes`` when given, else
        :data:`DEFAULT_BATCH_SIZE`.
    device : str or torch.device, optional
        Where to run (see :func:`brainalign.set_config`); default the configured device
        (``"auto"``: CUDA when available). A model whose parameters all sit on another
        device is moved there for the extraction and moved back afterwards; a model spread
        over several devices is left where it is.
    tokenizer : callable or str, optional
        A Hugging Face tokenizer for text stimuli (no transformers import is needed to pass
        one), or a name/path for ``AutoTokenizer.from_pretrained``.
    tokenizer_kwargs : dict, optional
        Overrides of the tokenizer arguments (``padding``, ``truncation``, ``max_length``
        ...).
    preprocess : callable, optional
        ``preprocess(item) -> tensor`` for each item of a list of stimuli (run in the batch
        loop, one call per item).
    select : callable, optional
        ``select(module_output) -> tensor`` for hooked modules whose output is not a tensor
        and whose first tensor is not the one wanted. Default :func:`first_tensor`.
    max_memory_bytes : int, optional
        A memory budget that sets the batch size when ``batch_size`` is None: the budget
        divided by an estimate of one stimulus's activation memory, measured on one extra
        forward pass of a single stimulus (the longest text for text) as its input, plus the
        hidden states when requested, plus twice the largest module output (one layer's
        input and output alive together), plus its pooled outputs. Model weights are not
        counted. The batch size used is recorded in ``tree.attrs["batch_size"]``.
    out : str or path-like, optional
        Stream to this NetCDF file instead of memory. Memory use: the model's own working
        memory for one batch (its raw, unpooled outputs are pooled in the hook and dropped)
        plus, without ``out``, one ``(n_stimuli, n_units)`` array per layer, allocated once
        when the first batch gives the unit counts and filled in place (nothing is held
        twice; the tree wraps these arrays). With ``out``, each batch's pooled activations
        are written to one group per layer as they come, so only one batch of pooled
        activations is held. The file is written under a temporary name and renamed at the
        end (an existing file is replaced only on success); it is what
        :func:`brainalign.save` writes for the tree, so :func:`brainalign.load` reads it.
    model_name : str, optional
        The ``model`` attribute of the result. Default the model's class name.
    dtype : {"float32", "float64"}
        The dtype of the stored activations. Means are accumulated in float64 before the
        cast.

    Returns
    -------
    tree : xarray.DataTree
        One child per layer name, each holding ``activations`` with dims
        ``("stimulus", "unit")`` and attrs ``modality="model"``, ``model``, ``layer``,
        ``pooling`` (the pooling applied), ``source`` (the model's ``name_or_path`` or its
        class path) and ``brainalign_version``; the tree's attrs are the same without
        ``layer``, plus ``batch_size``. In memory without ``out``. With ``out``, the tree is
        opened lazily from the file: values are read when used (``tree.load()`` reads all);
        call ``tree.close()`` when done.

    Raises
    ------
    ValueError
        For an unknown layer name or glob (with close matches and how to list the valid
        names), a hidden state the model did not return, stimulus ids that are not one per
        stimulus or not unique, an unknown pooling, a pooling that does not fit a layer's
        output, texts without a tokenizer, or unit counts that change between batches.
    TypeError
        For a model that is not a ``torch.nn.Module`` (or name), or stimuli of an unknown
        kind.
    RuntimeError
        When a hooked module never ran during the forward pass, or ran more than once.

    See Also
    --------
    list_layers : the valid layer names.
    brainalign.rsa.rdm : an RDM per layer, ``rdm(tree[layer]["activations"])``.

    Examples
    --------
    >>> import torch
    >>> from brainalign.loaders.activations import extract_activations
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2)
    ... )
    >>> tree = extract_activations(
    ...     net, torch.rand(5, 3, 8, 8), ["0", "3"], stimulus=list("abcde"), pooling="mean",
    ...     device="cpu"
    ... )
    >>> list(tree.children)
    ['0', '3']
    >>> da = tree["0"]["activations"]
    >>> da.dims, da.shape, da.attrs["pooling"], str(da.dtype)
    (('stimulus', 'unit'), (5, 4), 'mean', 'float32')

    A Hugging Face text model, layer by layer (needs its weights on disk):

    >>> tree = extract_activations(
    ...     "path/to/bert", ["a cat", "a house"], "hidden_states"
    ... )  # doctest: +SKIP
    >>> list(tree.children)  # doctest: +SKIP
    ['hidden_states.0', 'hidden_states.1', ...]
    """
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = _load_pretrained("model", path)
        if tokenizer is None and _looks_like_texts(stimuli):
            tokenizer = path
    check_type("model", model, (torch.nn.Module,), "a torch.nn.Module or a model name/path")
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = _load_pretrained("tokenizer", os.fspath(tokenizer))
    if pooling is not None and not callable(pooling):
        check_option("pooling", pooling, POOLINGS)
    check_option("dtype", dtype, _DTYPES)
    if batch_size is not None:
        check_number("batch_size", batch_size, low=1, integer=True)
    if max_memory_bytes is not None:
        check_number("max_memory_bytes", max_memory_bytes, low=1, integer=True)
    if select is not None and not callable(select):
        raise TypeError(f"select must be a callable(output) -> tensor, got {select!r}.")
    if model_name is not None:
        check_type("model_name", model_name, (str,), "a str")
    if tokenizer_kwargs is not None:
        check_type("tokenizer_kwargs", tokenizer_kwargs, (Mapping,), "a dict")
    dev = resolve_device(device)
    entries = _resolve_layers(model, layers)
    source = _Stimuli(stimuli, tokenizer, tokenizer_kwargs, preprocess)
    n = source.n
    ids = _stimulus_ids(stimulus, n)
    if pooling is None and source.is_text:
        pooling = "masked_mean"
    out_dtype = getattr(torch, dtype)
    np_dtype = np.dtype(dtype)
    name = model_name if model_name is not None else type(model).__name__
    origin = getattr(model, "name_or_path", None) or (
        f"{type(model).__module__}.{type(model).__qualname__}"
    )
    common = {"modality": "model", "model": name}
    tail = {"source": str(origin), "brainalign_version": __version__}

    with _prepared(model, dev), _Runner(model, entries, pooling, select, out_dtype, ids) as run:
        if batch_size is None and max_memory_bytes is not None:
            per_item = run.probe(source.probe_index(), source, dev)
            batch_size = int(min(n, max(1, max_memory_bytes // max(per_item, 1))))
            logger.info(
                "extract_activations: about %d bytes per stimulus; batch_size=%d for "
                "max_memory_bytes=%d",
                per_item,
                batch_size,
                max_memory_bytes,
            )
        elif batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE
        batch_size = int(min(batch_size, n))
        sink: _MemorySink | _FileSink = (
            _FileSink(Path(out), ids, np_dtype) if out is not None else _MemorySink(ids, np_dtype)
        )
        starts = range(0, n, batch_size)
        try:
            for start in progress(starts, f"activations of {name}", total=len(starts)):
                sl = slice(start, min(start + batch_size, n))
                sink.write(sl, run.run(sl, source, dev))
            assert run.names is not None
            layer_attrs = {
                layer: {**common, "layer": layer, "pooling": run.applied[layer], **tail}
                for layer in run.names
            }
            tree_attrs = {
                **common,
                "pooling": _pooling_name(pooling),
                **tail,
                "batch_size": batch_size,
            }
            return sink.finish(layer_attrs, tree_attrs)
        except BaseException:
            sink.abort()
            raise


def _looks_like_texts(stimuli: Any) -> bool:
    if isinstance(stimuli, np.ndarray):
        return stimuli.dtype.kind in "US"
    return (
        isinstance(stimuli, Sequence)
        and not isinstance(stimuli, str)
        and len(stimuli) > 0
        and all(isinstance(s, str) for s in stimuli)
    )
