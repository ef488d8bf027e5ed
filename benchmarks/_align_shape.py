"""Benchmark: pairwise shape distances among many networks, brainalign vs netrep.

brainalign.align.pairwise (one Gram matrix, batched singular values) against netrep's
``multiset.pairwise_distances(LinearMetric(alpha=1, score_method="angular"), data)``
(vendored in tests/align/_refs/netrep_ref.py, commit 0186b8a7), on the same data in one
process: 16 networks, 500 stimuli, widths 50-200. Timings are the best of 3 after a warm-up.

Run: ``.venv/bin/python benchmarks/_align_shape.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "align" / "_refs"))

import netrep_ref  # noqa: E402
from _harness import TARGET, rtol  # noqa: E402

import brainalign as ba  # noqa: E402
from brainalign.align._shape import pairwise  # noqa: E402

#: Networks in the pairwise case (issue 20: 12-20; issue 23's GPU goal names 20).
N_NETWORKS = 16


def _best_pair(ours, theirs, repeat: int = 5) -> tuple[float, float]:
    """Best of ``repeat`` after a warm-up for each, the runs interleaved (ours, theirs, ...)
    so that a busy machine slows both alike."""
    fns = (ours, theirs)
    for fn in fns:
        fn()
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return min(times[0]), min(times[1])


def _data(n_networks: int, n: int, seed: int = 0) -> tuple[dict, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    widths = rng.integers(50, 201, size=n_networks)
    arrays = [rng.normal(size=(n, w)) @ rng.normal(size=(w, w)) / np.sqrt(w) for w in widths]
    ids = [f"s{i}" for i in range(n)]
    reps = {f"net{i}": ba.responses(x, ids) for i, x in enumerate(arrays)}
    return reps, arrays


def cases() -> list[dict]:
    """Time the benchmark cases.

    Returns
    -------
    rows : list of dict
        One row per case: ``case``, ``brainalign_s``, ``reference_s``, ``reference``.
    """
    rows = []
    m = N_NETWORKS
    for score in ("angular", "euclidean"):
        reps, arrays = _data(m, 500)
        metric = netrep_ref.LinearMetric(alpha=1.0, score_method=score)
        ours = pairwise(reps, score=score, **TARGET)
        ref = netrep_ref.pairwise_distances(metric, arrays, verbose=False)
        np.testing.assert_allclose(ours.values, ref, rtol=rtol(), atol=rtol())
        t_ours, t_ref = _best_pair(
            lambda s=score, r=reps: pairwise(r, score=s, **TARGET),
            lambda m=metric, a=arrays: netrep_ref.pairwise_distances(m, a, verbose=False),
        )
        rows.append(
            {
                "case": f"pairwise {score} Procrustes, {m} networks, n=500, widths 50-200",
                "brainalign_s": t_ours,
                "reference_s": t_ref,
                "reference": "netrep multiset.pairwise_distances(LinearMetric) @0186b8a7",
            }
        )
    return rows


if __name__ == "__main__":
    for row in cases():
        ratio = row["reference_s"] / row["brainalign_s"]
        print(
            f"{row['case']}: brainalign {row['brainalign_s']:.3f} s, "
            f"reference {row['reference_s']:.3f} s, ratio {ratio:.2f}x ({row['reference']})"
        )
