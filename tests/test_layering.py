"""The package's layering (DESIGN.md) holds: checked with import-linter's contract in pyproject."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_optional_heavy_imports_stay_lazy():
    code = (
        "import sys, brainalign; "
        "print(sorted(m for m in ('nilearn', 'mne', 'matplotlib', 'transformers', 'rsatoolbox') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _subpackage(module: str) -> str:
    """The subpackage a module belongs to; pipeline's analyses and sources count as their own."""
    parts = module.split(".")
    if parts[1:2] == ["pipeline"] and len(parts) > 2 and parts[2] in ("analyses", "sources"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def test_no_private_name_is_imported_across_subpackages():
    # Issue 18: the runner imported viz._rdm._figure, loaders.meeg._raw_extensions,
    # loaders.fmri._voxel_coords and others; a subpackage's private names are its own.
    import ast

    bad = []
    for path in sorted((ROOT / "brainalign").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "brainalign."
            ):
                continue
            target = node.module
            if target.split(".")[1].startswith("_"):  # top-level helpers (_checks, ...)
                continue
            if _subpackage(target) == _subpackage(module):
                continue
            private = [a.name for a in node.names if a.name.startswith("_")]
            if private:
                bad.append(f"{module}: from {target} import {', '.join(private)}")
    assert not bad, "\n".join(bad)
