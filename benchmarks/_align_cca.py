"""Benchmark: the CCA family (brainalign.align cca / pwcca) vs google/svcca.

The reference is google/svcca's ``pwcca.compute_pwcca`` and ``cca_core.get_cca_similarity``
(vendored, unchanged, in ``tests/align/_refs/google_cca.py``), on the same data in one
process: best of 3 timed runs after a warm-up, the two alternating. google/svcca wants
(neurons, datapoints) with fewer neurons than datapoints, and its PWCCA raises IndexError
when the first side is the wider one, so ``a`` has 300 units and ``b`` 500, over 2,000
stimuli.

Rows: the public labeled call (stimulus alignment by id, checks, labeling included) and
the bare torch kernel on tensors (the numerics alone).

    .venv/bin/python benchmarks/_align_cca.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from _harness import TARGET

import brainalign as ba
from brainalign.align._cca import _canonical_correlations, _pwcca_value, cca, pwcca

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "align" / "_refs"))
import google_cca

N, P, Q = 2000, 300, 500


def _best_pair(ours, ref, repeat: int = 5) -> tuple[float, float, object, object]:
    """Best of ``repeat`` timed runs each, after a warm-up, alternating the two.

    Alternating keeps a change in machine load from favouring one side.
    """
    out_ours, out_ref = ours(), ref()  # warm-up
    t_ours, t_ref = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out_ours = ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_ref = ref()
        t_ref.append(time.perf_counter() - t0)
    return min(t_ours), min(t_ref), out_ours, out_ref


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, 50))
    x = z @ rng.standard_normal((50, P)) + rng.standard_normal((N, P))
    y = z @ rng.standard_normal((50, Q)) + 2.0 * rng.standard_normal((N, Q))
    # centred: google/svcca's PWCCA projects uncentred activity, brainalign centred activity
    return x - x.mean(0), y - y.mean(0)


def cases() -> list[dict]:
    """Time brainalign and google/svcca on the same data; one row per case."""
    x, y = _data()
    ids = [f"img{i:05d}" for i in range(N)]
    a = ba.responses(x, ids, feature_dim="unit")
    b = ba.responses(y, ids, feature_dim="unit")
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    xg, yg = x.T.copy(), y.T.copy()

    def google_cca_mean():
        return float(np.mean(google_cca.get_cca_similarity(xg, yg, verbose=False)["cca_coef1"]))

    plan = [
        (
            f"pwcca n={N}, {P} vs {Q} units, public call (float64, CPU)",
            lambda: float(pwcca(a, b, **TARGET)),
            lambda: float(google_cca.compute_pwcca(xg, yg)[0]),
            "google/svcca pwcca.compute_pwcca",
        ),
        (
            f"pwcca n={N}, {P} vs {Q} units, torch kernel (float64, CPU)",
            lambda: float(_pwcca_value(xt, yt)),
            lambda: float(google_cca.compute_pwcca(xg, yg)[0]),
            "google/svcca pwcca.compute_pwcca",
        ),
        (
            f"cca mean rho n={N}, {P} vs {Q} units, public call (float64, CPU)",
            lambda: float(cca(a, b, **TARGET)),
            google_cca_mean,
            "google/svcca cca_core.get_cca_similarity",
        ),
        (
            f"cca mean rho n={N}, {P} vs {Q} units, torch kernel (float64, CPU)",
            lambda: float(_canonical_correlations(xt, yt).mean()),
            google_cca_mean,
            "google/svcca cca_core.get_cca_similarity",
        ),
    ]
    rows = []
    for name, ours, ref, ref_name in plan:
        t_ours, t_ref, v_ours, v_ref = _best_pair(ours, ref)
        # google/svcca's eigh-based inverse square roots are accurate to about 1e-6 here
        assert abs(v_ours - v_ref) < 1e-5, (name, v_ours, v_ref)
        rows.append(
            {"case": name, "brainalign_s": t_ours, "reference_s": t_ref, "reference": ref_name}
        )
    return rows


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for row in cases():
        ratio = row["reference_s"] / row["brainalign_s"]
        print(
            f"{row['case']}: brainalign {row['brainalign_s']:.3f} s, "
            f"{row['reference']} {row['reference_s']:.3f} s, ratio {ratio:.2f}"
        )
