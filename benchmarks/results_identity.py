"""Do the shipped pipelines give the same results.nc at two versions of brainalign?

Runs every spec in ``pipelines/`` (or those named) with the code of a git ref and with the
working tree, each in a fresh output folder (no cache), and compares every variable and
coordinate of every node of the two results files, and their attributes (except the run id).
This is how a refactor of the pipeline runner shows that it changed no number.

Usage::

    python benchmarks/results_identity.py --ref 0af18d3            # both sides, then compare
    python benchmarks/results_identity.py --ref 0af18d3 demo ricci_minilm_words
    python benchmarks/results_identity.py --compare OLD_DIR NEW_DIR  # two folders of outputs

It prints one line per pipeline (``identical`` or the differences) and exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Attributes that differ between any two runs by design.
VOLATILE_ATTRS = ("run_id",)


def run_pipelines(code: Path, out: Path, names: list[str]) -> None:
    """Run the named shipped pipelines with the brainalign package found in ``code``."""
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for name in names:
        spec = ROOT / "pipelines" / f"{name}.yaml"
        cmd = [sys.executable, "-m", "brainalign.cli", "run", str(spec), "-q"]
        proc = subprocess.run(
            [*cmd, "--out", str(out / name)], env=env, cwd=out, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed with {code}:\n{proc.stderr[-3000:]}")
        print(f"ran {name} with {code}", flush=True)


def _differences(a: Path, b: Path) -> list[str]:
    """Every difference between two results files (node, variable, attribute)."""
    from brainalign import load

    ta, tb = load(a), load(b)
    diffs = []
    paths_a = {n.path for n in ta.subtree}
    paths_b = {n.path for n in tb.subtree}
    if paths_a != paths_b:
        diffs.append(f"nodes differ: only old {paths_a - paths_b}, only new {paths_b - paths_a}")
    for path in sorted(paths_a & paths_b):
        da, db = ta[path].to_dataset(inherit=False), tb[path].to_dataset(inherit=False)
        if set(da.variables) != set(db.variables):
            diffs.append(f"{path}: variables {sorted(da.variables)} != {sorted(db.variables)}")
        for var in set(da.variables) & set(db.variables):
            va, vb = da[var], db[var]
            if va.dims != vb.dims or va.shape != vb.shape:
                diffs.append(f"{path}/{var}: dims {va.dims}{va.shape} != {vb.dims}{vb.shape}")
                continue
            x, y = np.asarray(va.values), np.asarray(vb.values)
            same = (
                np.array_equal(x, y, equal_nan=True)
                if x.dtype.kind in "fc"
                else np.array_equal(x, y)
            )
            if not same:
                diffs.append(f"{path}/{var}: values differ")
            if _attrs(va.attrs) != _attrs(vb.attrs):
                diffs.append(f"{path}/{var}: attrs differ")
        if _attrs(da.attrs) != _attrs(db.attrs):
            old, new = _attrs(da.attrs), _attrs(db.attrs)
            keys = {k for k in {*old, *new} if old.get(k) != new.get(k)}
            diffs.append(f"{path}: attrs {sorted(keys)} differ")
    return diffs


def _attrs(attrs: dict) -> dict:
    """Attributes to compare: run ids left out, the code's folder in paths made neutral."""
    out = {}
    for k, v in attrs.items():
        if k in VOLATILE_ATTRS:
            continue
        v = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
        if isinstance(v, str):  # a shipped file's path names the checkout it was read from
            v = re.sub(r"\S*/datasets/", "<checkout>/datasets/", v)
        out[k] = v
    return out


def compare(old: Path, new: Path, names: list[str]) -> int:
    """Print one line per pipeline; return the number that differ."""
    bad = 0
    for name in names:
        diffs = _differences(old / name / "results.nc", new / name / "results.nc")
        print(f"{name}: " + ("identical" if not diffs else "DIFFERENT\n  " + "\n  ".join(diffs)))
        bad += bool(diffs)
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="pipeline names (default: all shipped)")
    parser.add_argument("--ref", help="the git ref to compare the working tree with")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = parser.parse_args()
    names = args.names or sorted(p.stem for p in (ROOT / "pipelines").glob("*.yaml"))
    if args.compare:
        raise SystemExit(1 if compare(*args.compare, names) else 0)
    if not args.ref:
        parser.error("give --ref REF or --compare OLD NEW")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp / "code"), args.ref],
            check=True,
            capture_output=True,
        )
        try:
            for side, code in (("old", tmp / "code"), ("new", ROOT)):
                (tmp / side).mkdir()
                run_pipelines(code, tmp / side, names)
            bad = compare(tmp / "old", tmp / "new", names)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "code")],
                capture_output=True,
            )
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
