"""CKA: brainalign vs Kornblith et al.'s reference numpy code (vendored).

Cases (one process, the same float64 data for both, CPU, best of 5 after a warm-up,
the runs of both interleaved),
n = 5,000 stimuli, X 5,000 x 2,048 vs Y 5,000 x 1,024:

* linear CKA: ``brainalign.align._cka.cka`` (labeled inputs, the whole public call) vs
  ``feature_space_linear_cka(X, Y)``;
* debiased linear CKA (``estimator="song"``) vs ``cka(gram_linear(X), gram_linear(Y),
  debiased=True)`` (Kornblith's Gram-matrix form, the one the brief names);
* the same two measures through the torch kernel alone (tensors in, no labels, no stimulus
  alignment), to separate the numerics from the labeled edge;
* RBF CKA (Kornblith's median bandwidth), n = 2,000, 512 vs 256 features, vs
  ``cka(gram_rbf(X), gram_rbf(Y))`` (information).

Run: ``.venv/bin/python benchmarks/_align_cka.py``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _harness import TARGET, rtol

import brainalign as ba
from brainalign.align._cka import _cka_kernel, cka

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "align" / "_refs"))
import kornblith_cka as ref  # the vendored reference


def _best_pair(ours: Callable, theirs: Callable, repeat: int = 5) -> list[tuple[float, float]]:
    """Best of ``repeat`` after a warm-up for each, the runs interleaved (ours, theirs, ...)
    so that a busy machine slows both alike."""
    fns = (ours, theirs)
    outs = [float(fn()) for fn in fns]  # warm-up
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[i] = float(fn())
            times[i].append(time.perf_counter() - t0)
    return [(min(t), out) for t, out in zip(times, outs, strict=True)]


def _data(rng: np.random.Generator, n: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, p))
    y = np.tanh(x[:, :q] + x[:, -q:]) + rng.standard_normal((n, q))
    return x, y


def _row(case: str, ours: Callable, theirs: Callable, reference: str) -> dict:
    (t_ours, v_ours), (t_ref, v_ref) = _best_pair(ours, theirs)
    np.testing.assert_allclose(v_ours, v_ref, rtol=0, atol=rtol())
    return {"case": case, "brainalign_s": t_ours, "reference_s": t_ref, "reference": reference}


def cases() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    n, p, q = 5000, 2048, 1024
    x, y = _data(rng, n, p, q)
    ids = [f"s{i:05d}" for i in range(n)]
    a, b = ba.responses(x, ids), ba.responses(y, ids)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    size = f"n={n}, {p} vs {q}, float64"
    rows.append(
        _row(
            f"linear CKA, {size}",
            lambda: cka(a, b, **TARGET),
            lambda: ref.feature_space_linear_cka(x, y),
            "kornblith feature_space_linear_cka",
        )
    )
    rows.append(
        _row(
            f"debiased linear CKA, {size}",
            lambda: cka(a, b, estimator="song", **TARGET),
            lambda: ref.cka(ref.gram_linear(x), ref.gram_linear(y), debiased=True),
            "kornblith cka(gram_linear, debiased=True)",
        )
    )
    for estimator, label in (("gretton", "linear"), ("song", "debiased linear")):

        def kernel_only(estimator=estimator):
            f = _cka_kernel("linear", estimator, "kornblith", 1.0, "similarity", None)
            return f(xt, yt)

        rows.append(
            _row(
                f"{label} CKA, torch kernel only, {size}",
                kernel_only,
                lambda estimator=estimator: ref.feature_space_linear_cka(
                    x, y, debiased=estimator == "song"
                ),
                "kornblith feature_space_linear_cka",
            )
        )
    n, p, q = 2000, 512, 256
    x, y = _data(rng, n, p, q)
    ids = [f"s{i:05d}" for i in range(n)]
    a, b = ba.responses(x, ids), ba.responses(y, ids)
    rows.append(
        _row(
            f"RBF CKA (median bandwidth), n={n}, {p} vs {q}, float64",
            lambda: cka(a, b, "rbf", **TARGET),
            lambda: ref.cka(ref.gram_rbf(x), ref.gram_rbf(y)),
            "kornblith cka(gram_rbf)",
        )
    )
    return rows


if __name__ == "__main__":
    print(f"torch threads: {torch.get_num_threads()}")
    for row in cases():
        ratio = row["reference_s"] / row["brainalign_s"]
        print(
            f"{row['case']:<62} brainalign {row['brainalign_s']:8.3f} s   "
            f"{row['reference']:<42} {row['reference_s']:8.3f} s   ratio {ratio:6.2f}"
        )
