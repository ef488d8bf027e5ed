"""Alignment measures: brainalign.align against each anchor, on the same data, in one process.

The cases of the issue (each part's data and reference are in its ``_align_<part>.py``):

- pairwise angular Procrustes among 16 networks (``align.pairwise``) vs netrep's
  ``multiset.pairwise_distances`` (vendored under tests/align/_refs): target >= 3x;
- linear and debiased CKA at 5000 x 2048 vs 5000 x 1024 vs Kornblith's numpy code
  (vendored): target >= 1x;
- mutual kNN, n = 2000, k = 10 vs platonic-rep (vendored): target >= 4x;
- PWCCA vs Google's ``compute_pwcca`` (vendored): target >= 1x;
- predictivity (PLS, OLS, ridge) vs scikit-learn / himalaya (information).

Run: ``.venv/bin/python benchmarks/align.py [--threads N] [--only cka,shape,...]
[--device cuda] [--dtype float32|float64]``; prints one row per case with the ratio
reference / brainalign (above 1: brainalign is faster). The shape, CKA and CCA cases run
brainalign's public call on ``--device`` (the references stay on the CPU: none has a GPU
backend); kNN and predictivity, and the "kernel only" rows, stay on the CPU.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch

PARTS = ("shape", "cka", "knn", "cca", "predictivity")
TARGETS = {
    "pairwise angular": 3.0,
    "linear": 1.0,
    "debiased": 1.0,
    "mutual": 4.0,
    "pwcca": 1.0,
}


def _target(case: str) -> float | None:
    for key, t in TARGETS.items():
        if key in case.lower() and "kernel" not in case.lower():
            return t
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import add_device_args, use_device

    parser.add_argument("--networks", type=int, default=16, help="networks in the shape case")
    add_device_args(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    target = use_device(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), {target}")
    print(f"{'case':<58} {'brainalign s':>12} {'reference s':>12} {'ratio':>7}  target  reference")
    for part in args.only.split(","):
        mod = importlib.import_module(f"_align_{part}")
        if part == "shape":
            mod.N_NETWORKS = args.networks
        for row in mod.cases():
            ratio = row["reference_s"] / row["brainalign_s"]
            t = _target(row["case"])
            mark = "" if t is None else (f">= {t:g} ok" if ratio >= t else f">= {t:g} MISS")
            print(
                f"{row['case']:<58} {row['brainalign_s']:>12.4f} {row['reference_s']:>12.4f} "
                f"{ratio:>7.2f}  {mark:<10} {row['reference']}"
            )


if __name__ == "__main__":
    main()
