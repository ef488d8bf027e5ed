"""Hugging Face image models from a local folder as pipeline models (``kind: vision_model``).

The model (``transformers.AutoModel``) and its image processor
(``transformers.AutoImageProcessor``) are read from a local folder, never downloaded. Each
stimulus is an image file: a folder of images (stimulus id = file name without its suffix)
or a mapping ``{stimulus id: image path}``. Images are read with Pillow, converted to RGB,
processed by the folder's image processor and run through the model batch by batch
(:func:`brainalign.loaders.activations.extract_activations`); one entry per layer
(``model:layer``), the tokens of each layer pooled by their mean or the CLS token.

The results are keyed by the digest of the model folder and the sha256 of every image file,
so new weights or a changed image re-run the model's units. ``docs/your_models.md`` describes
the keys and the errors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import xarray as xr

from brainalign.pipeline._analysis import Checker, register_model
from brainalign.pipeline.models.builtin import LayeredModel, offline_transformers

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""The files of an ``images`` folder that are stimuli (other files are left out)."""
VISION_POOLINGS = {"mean": "mean", "cls": "first"}
"""Values of ``pooling`` → the ``pooling`` of ``extract_activations`` (cls: the first token)."""
MODEL_FILES = ("config.json", "preprocessor_config.json")
"""Files a model folder must hold (besides its weights)."""

# --------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------


def _path(text: str) -> Path:
    """Return a spec path: relative to the working directory, ``~`` expanded."""
    return Path(os.path.expanduser(text))


def _where(text: str) -> str:
    return f"{text!r} (relative paths are from the working directory {os.getcwd()!r})"


def image_files(images: str | dict[str, str], key: str = "images") -> dict[str, Path]:
    """Return the stimulus id → image file that an ``images`` setting names.

    Parameters
    ----------
    images : str or dict
        A folder, whose files with an image suffix (:data:`IMAGE_SUFFIXES`, any case) are the
        stimuli, each named by its file name without the suffix; or a mapping of stimulus
        ids to image files. Paths are relative to the working directory, ``~`` expanded.
    key : str
        The setting's name, for messages.

    Returns
    -------
    files : dict
        Stimulus id → image file (a folder's sorted by name).

    Raises
    ------
    FileNotFoundError
        When the folder or a file does not exist (named), or the folder holds no image.
    ValueError
        When two images of a folder share a stem (both named), or a mapping's id or path
        is not a non-empty string.
    """
    from brainalign._checks import _fmt_list

    if isinstance(images, str):
        folder = _path(images)
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.is_file() else "is not a folder"
            raise FileNotFoundError(
                f"{key}: {_where(images)} {what}; give a folder of images (stimulus id = file "
                "name without its suffix) or a mapping {stimulus id: image path}."
            )
        found = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise FileNotFoundError(
                f"{key}: the folder {_where(images)} holds no image (files ending in "
                f"{', '.join(IMAGE_SUFFIXES)})."
            )
        out: dict[str, Path] = {}
        for p in found:
            if p.stem in out:
                raise ValueError(
                    f"{key}: the images {out[p.stem].name!r} and {p.name!r} in {str(folder)!r} "
                    f"both give the stimulus id {p.stem!r}; keep one of them."
                )
            out[p.stem] = p
        return out
    bad = [k for k, v in images.items() if not (isinstance(k, str) and k and isinstance(v, str))]
    if bad:
        raise ValueError(
            f"{key}: must map stimulus ids (strings; quote numbers) to image paths (strings); "
            f"not so for {_fmt_list(bad)}."
        )
    out = {sid: _path(p) for sid, p in images.items()}
    for sid, p in out.items():
        if not p.is_file():
            what = "is a folder" if p.is_dir() else "not found"
            raise FileNotFoundError(f"{key}: {sid}: image file {what}: {_where(images[sid])}.")
    return out


def images_digest(files: dict[str, Path]) -> str:
    """Return one sha256 of the images: of their ``"<id> <sha256> <path>"`` lines, sorted.

    Parameters
    ----------
    files : dict
        Stimulus id → image file (:func:`image_files`).

    Returns
    -------
    text : str
        ``"images sha256 <hex> (<n> files)"``.
    """
    from brainalign.pipeline._provenance import files_sha256

    digests = files_sha256(sorted(set(files.values())))  # cached by size and mtime
    listing = "".join(f"{sid} {digests[p]} {p}\n" for sid, p in sorted(files.items()))
    return f"images sha256 {hashlib.sha256(listing.encode()).hexdigest()} ({len(files)} files)"


def read_image(path: Path, sid: str) -> Any:
    """Read an image file as an RGB ``PIL.Image`` (grayscale and RGBA converted).

    Raises
    ------
    ValueError
        Naming the stimulus, the file and Pillow's reason when the file is not a readable
        image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(
            f"the image of stimulus {sid!r}, {str(path)!r}, cannot be read: {err}"
        ) from None


# --------------------------------------------------------------------------------------
# the model kind
# --------------------------------------------------------------------------------------


@register_model
class VisionModel(LayeredModel):
    """A Hugging Face image model read from a local folder, one entry per layer."""

    name = "vision_model"
    schema = {
        "kind": (str, True, None),
        "model": (str, True, None),  # a local folder: config, weights, preprocessor config
        "images": ((str, dict), True, None),  # a folder (id = file stem) or {id: path}
        "layers": ((str, list), False, "hidden_states"),
        "pooling": (str, False, "mean"),  # mean over tokens, or cls (the first token)
        "batch_size": (int, False, 32),
    }
    limits = {"batch_size": (1, 65_536, "images per forward pass")}

    def validate(self, c: Checker, m: dict[str, Any], path: tuple[str, ...]) -> None:
        """Check the model folder, the images, the layer names and the pooling."""
        c.option((*path, "pooling"), m["pooling"], tuple(VISION_POOLINGS))
        folder = _path(m["model"])
        if not folder.is_dir():
            c.fail(
                (*path, "model"),
                f"{_where(m['model'])} is not a local model folder (nothing is downloaded at "
                "run time); give the path of a folder holding a Hugging Face image model: "
                f"{', '.join(MODEL_FILES)} and its weights (model.save_pretrained(folder) "
                "and image_processor.save_pretrained(folder)).",
            )
        missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
        if missing:
            c.fail(
                (*path, "model"),
                f"the model folder {str(folder)!r} lacks {', '.join(missing)}; it must hold "
                f"{', '.join(MODEL_FILES)} and the weights (save the image processor with "
                "image_processor.save_pretrained(folder)).",
            )
        layers = m["layers"]
        if isinstance(layers, list) and not (
            layers and all(isinstance(v, str) and v for v in layers)
        ):
            c.fail(
                (*path, "layers"),
                f"must be a layer name or a non-empty list of layer names, got {layers!r}.",
            )
        try:
            image_files(m["images"])
        except (FileNotFoundError, ValueError) as err:
            c.fail((*path, "images"), str(err).removeprefix("images: "))

    def content(self, name: str, m: dict[str, Any]) -> str | None:
        """Return the model folder's digest and the sha256 of every image."""
        from brainalign.pipeline._provenance import model_folder_digest

        folder = _path(m["model"])
        model = model_folder_digest(folder) if folder.is_dir() else f"not a local folder: {folder}"
        return f"{model}; {images_digest(image_files(m['images'], f'models.{name}.images'))}"

    def activations(self, name: str, m: dict[str, Any], ids: list[str]) -> xr.DataTree:
        """Return the activations of the model's layers for the images of ``ids`` (offline).

        Raises
        ------
        StimulusAlignmentError
            When a stimulus of the brain has no image (the ids named).
        ValueError
            When an image cannot be read (the stimulus and the file named), or the model
            does not take ``pixel_values`` as its first input.
        """
        import inspect

        from brainalign._checks import StimulusAlignmentError, _fmt_list
        from brainalign.loaders.activations import extract_activations

        where = f"models.{name}"
        files = image_files(m["images"], f"{where}.images")
        missing = [i for i in ids if i not in files]
        if missing:
            raise StimulusAlignmentError(
                f"{where}.images has no image for {len(missing)} of the brain's {len(ids)} "
                f"stimuli: {_fmt_list(missing)} (images hold {len(files)}: "
                f"{_fmt_list(list(files))}). Add an image per stimulus (a folder's file name "
                "without its suffix is the stimulus id); extra images are left out."
            )
        transformers = offline_transformers(f"{where} (kind vision_model)")
        folder = str(_path(m["model"]))
        model = transformers.AutoModel.from_pretrained(folder)
        processor = transformers.AutoImageProcessor.from_pretrained(folder)
        first = next(iter(inspect.signature(model.forward).parameters), None)
        if first != "pixel_values":
            raise ValueError(
                f"{where}.model: {type(model).__name__} (from {folder!r}) takes {first!r} as its "
                "first input, not 'pixel_values'; kind vision_model runs image-only models "
                "(e.g. ViTModel, or CLIPVisionModel for a CLIP folder)."
            )

        def preprocess(sid: str) -> Any:
            image = read_image(files[sid], sid)
            return processor(images=image, return_tensors="pt")["pixel_values"][0]

        return extract_activations(
            model,
            list(ids),
            m["layers"],
            stimulus=ids,
            preprocess=preprocess,
            pooling=VISION_POOLINGS[m["pooling"]],
            batch_size=m["batch_size"],
            model_name=m["model"],
        )
