"""``kind: vision_model``: a Hugging Face image model from a local folder, in a pipeline."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from PIL import Image
from scipy.stats import spearmanr

import brainalign as ba
import brainalign.pipeline.models.vision  # (registers the model kind)
from brainalign._checks import StimulusAlignmentError
from brainalign.pipeline import SpecError

transformers = pytest.importorskip("transformers")

#: Natural images shipped with scikit-image, one per stimulus.
IDS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "horse", "moon", "coins"]
RSA = {"rsa": {"n_permutations": 50, "n_bootstrap": 0}}


def _image(name: str) -> np.ndarray:
    """A scikit-image sample as RGB uint8 (grayscale and binary images repeated 3 times)."""
    import skimage.data

    a = getattr(skimage.data, name)()
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random ViT saved as a Hugging Face folder, 8 images and an early-vision brain."""
    d = tmp_path_factory.mktemp("vision")
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    transformers.utils.logging.disable_progress_bar()
    transformers.ViTModel(config).save_pretrained(d / "vit")
    transformers.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(d / "vit")
    (d / "images").mkdir()
    gray = {}
    for sid in IDS:
        img = Image.fromarray(_image(sid))
        img.save(d / "images" / f"{sid}.png")
        gray[sid] = np.asarray(img.convert("L").resize((8, 8), Image.BILINEAR), dtype=float)
    # A simulated "brain": no recording of these images ships, so an early-vision stand-in,
    # each image's 8x8 downsampled grayscale pixels (64 units), is the brain's pattern.
    brain = ba.responses(np.stack([gray[s].ravel() for s in IDS]), IDS)
    ba.save(brain, d / "v1.nc")
    # A second copy of the images, named through a mapping (and not touched by the cache test)
    (d / "copy").mkdir()
    for sid in IDS:
        shutil.copy(d / "images" / f"{sid}.png", d / "copy" / f"img_{sid}.png")
    return d


def _spec(d, models: dict) -> dict:
    return {
        "name": "vision",
        "brain": {"v1": {"dataset": "arrays", "files": str(d / "v1.nc")}},
        "models": models,
        "analyses": RSA,
    }


def _models(d) -> dict:
    return {
        "vit": {"kind": "vision_model", "model": str(d / "vit"), "images": str(d / "images")},
        "vitcls": {
            "kind": "vision_model",
            "model": str(d / "vit"),
            "images": {sid: str(d / "copy" / f"img_{sid}.png") for sid in IDS},
            "layers": ["hidden_states.2"],
            "pooling": "cls",
            "batch_size": 3,
        },
    }


def _hidden_states(d, image_dir, names: dict) -> tuple[torch.Tensor, ...]:
    """The oracle: the model's hidden states for all images at once, straight from transformers."""
    model = transformers.ViTModel.from_pretrained(d / "vit").eval()
    processor = transformers.AutoImageProcessor.from_pretrained(d / "vit")
    images = [Image.open(image_dir / names[s]).convert("RGB") for s in IDS]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(pixel_values=pixels, output_hidden_states=True).hidden_states


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    """One run with both models; its out folder (the brain RDM cached) is reused."""
    out = tmp_path_factory.mktemp("out")
    return ba.run(_spec(files, _models(files)), out=out), out


def test_model_rdms_equal_those_of_the_hidden_states(files, run):
    res, _ = run
    stack = res.tree["models/v1"]["rdm"]
    assert stack.dtype == np.float32
    assert [str(m) for m in stack.model.values] == [
        "vit:hidden_states.0",
        "vit:hidden_states.1",
        "vit:hidden_states.2",
        "vitcls:hidden_states.2",
    ]
    ids = [str(s) for s in res.tree["brain/v1"]["rdm"].stimulus_a.values]
    assert sorted(ids) == sorted(IDS)
    states = _hidden_states(files, files / "images", {s: f"{s}.png" for s in IDS})
    for i, h in enumerate(states):  # mean over the tokens (CLS included)
        want = ba.rsa.rdm(ba.responses(h.mean(dim=1).double().numpy(), IDS), "correlation")
        got = stack.sel(model=f"vit:hidden_states.{i}")
        assert_allclose(got.values, want.sel(stimulus_a=ids, stimulus_b=ids).values, rtol=1e-4)
    copies = _hidden_states(files, files / "copy", {s: f"img_{s}.png" for s in IDS})
    want = ba.rsa.rdm(ba.responses(copies[2][:, 0].numpy(), IDS), "correlation")  # CLS
    got = stack.sel(model="vitcls:hidden_states.2")
    assert_allclose(got.values, want.sel(stimulus_a=ids, stimulus_b=ids).values, rtol=1e-4)
    # the layers differ from each other, and pooling matters: the RDMs are not copies
    assert not np.allclose(stack.values[0], stack.values[2])
    assert not np.allclose(stack.values[2], stack.values[3])
    # the RSA compared each model RDM with the (simulated) brain's: Spearman of the pairs
    rsa = res.tree["rsa/v1"]
    brain = res.tree["brain/v1"]["rdm"].values
    upper = np.triu_indices(len(ids), k=1)
    for model in stack.model.values:
        want = spearmanr(brain[upper], stack.sel(model=model).values[upper]).statistic
        assert_allclose(float(rsa["similarity"].sel(model=model)), want, rtol=1e-5)
    assert np.isfinite(rsa["p_value"].values).all()


def test_spec_errors_name_the_key_and_value(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "noproc").mkdir()
    shutil.copy(files / "vit" / "config.json", tmp_path / "noproc" / "config.json")
    (tmp_path / "dup").mkdir()
    shutil.copy(files / "images" / "moon.png", tmp_path / "dup" / "moon.png")
    (tmp_path / "dup" / "moon.jpg").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    base = {"kind": "vision_model", "model": str(files / "vit"), "images": str(files / "images")}
    cases = [
        (
            {**base, "model": "google/vit-base-patch16-224"},
            r"models\.m\.model: 'google/vit-base-patch16-224' .* is not a local model folder "
            r"\(nothing is downloaded",
        ),
        (
            {**base, "model": "noproc"},
            r"models\.m\.model: the model folder 'noproc' lacks preprocessor_config\.json",
        ),
        ({**base, "images": "pics"}, r"models\.m\.images: 'pics' .* is not a folder"),
        ({**base, "images": "empty"}, r"models\.m\.images: the folder 'empty' .* holds no image"),
        (
            {**base, "images": "dup"},
            r"models\.m\.images: the images 'moon\.jpg' and 'moon\.png' .* both give the "
            r"stimulus id 'moon'",
        ),
        (
            {**base, "images": {"moon": "moon.png"}},
            r"models\.m\.images: moon: image file not found: 'moon\.png'",
        ),
        ({**base, "pooling": "max"}, r"models\.m\.pooling: invalid value 'max'; allowed: 'mean'"),
        ({**base, "layers": []}, r"models\.m\.layers: must be a layer name or a non-empty list"),
        (
            {**base, "batch_size": 0},
            r"models\.m\.batch_size: must be an integer in \[1, 65_536\] .*got 0",
        ),
        ({k: v for k, v in base.items() if k != "images"}, r"models\.m\.images: is required"),
    ]
    for model, match in cases:
        with pytest.raises(SpecError, match=match):
            ba.run(_spec(files, {"m": model}), out=tmp_path / "out")


def test_a_stimulus_without_an_image_is_named(files, run, tmp_path):
    _, out = run
    images = {sid: str(files / "images" / f"{sid}.png") for sid in IDS if sid != "horse"}
    model = {"kind": "vision_model", "model": str(files / "vit"), "images": images}
    with pytest.raises(
        StimulusAlignmentError,
        match=r"models\.m\.images has no image for 1 of the brain's 8 stimuli: 'horse'",
    ):
        ba.run(_spec(files, {"m": model}), out=out)


def test_an_unreadable_image_is_named(files, run, tmp_path):
    _, out = run
    shutil.copytree(files / "images", tmp_path / "images")
    (tmp_path / "images" / "coins.png").write_bytes(b"not a png at all")
    model = {
        "kind": "vision_model",
        "model": str(files / "vit"),
        "images": str(tmp_path / "images"),
    }
    with pytest.raises(
        ValueError, match=r"the image of stimulus 'coins', '.*coins\.png', cannot be read"
    ):
        ba.run(_spec(files, {"m": model}), out=out)


def test_an_unknown_layer_is_named(files, run):
    _, out = run
    model = {**_models(files)["vit"], "layers": ["hidden_states.7"]}
    with pytest.raises(ValueError, match=r"'hidden_states\.7' selects no hidden state"):
        ba.run(_spec(files, {"m": model}), out=out)


def test_a_changed_image_reruns_its_models_units(files, tmp_path):
    shutil.copytree(files / "images", tmp_path / "images")
    models = _models(files)
    models["vit"] = {**models["vit"], "images": str(tmp_path / "images")}
    spec = _spec(files, models)
    ba.run(spec, out=tmp_path / "out")

    def status():
        return ba.run(spec, out=tmp_path / "out", dry_run=True).status

    assert status() == {"rsa/v1/vit": "cached", "rsa/v1/vitcls": "cached"}
    # the same file name with another image: only the model that reads it runs again
    Image.fromarray(_image("camera")[::-1].copy()).save(tmp_path / "images" / "coins.png")
    assert status() == {"rsa/v1/vit": "to run", "rsa/v1/vitcls": "cached"}
    res = ba.run(spec, out=tmp_path / "out")
    assert res.status == {"rsa/v1/vit": "computed", "rsa/v1/vitcls": "cached"}


def test_a_model_without_pixel_values_is_refused(files, run, tmp_path):
    _, out = run
    folder = tmp_path / "bert"  # a text model with an image processor: not an image model
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    transformers.BertModel(config).save_pretrained(folder)
    shutil.copy(files / "vit" / "preprocessor_config.json", folder)
    model = {**_models(files)["vit"], "model": str(folder)}
    with pytest.raises(
        ValueError, match=r"models\.m\.model: BertModel .* takes 'input_ids' as its first input"
    ):
        ba.run(_spec(files, {"m": model}), out=out)
