"""RDM comparison benchmarks: brainalign.rsa.compare versus rsatoolbox.rdm.compare.

One data RDM against 100 model RDMs in one call, for the rank methods (spearman, tau-a),
plus the other methods for information. Both sides get ready-made inputs (a labeled RDM stack
for brainalign, ``RDMs`` objects for rsatoolbox); only the comparison is timed.

python benchmarks/rsa_compare.py            # 100 stimuli (4,950 pairs) x 100 models
python benchmarks/rsa_compare.py --full     # also 200 and 500 stimuli (19,900 / 124,750 pairs)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np
import xarray as xr

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, run_cases

N_MODELS = 100
RANK = ("spearman", "kendall_tau_a")
OTHERS = ("pearson", "rho_a", "cosine", "whitened_pearson", "whitened_cosine")


def _inputs(n: int, n_models: int, seed: int = 0):
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 20))
    data = pdist(base + rng.normal(size=base.shape)) ** 2
    models = np.stack([pdist(base + 2 * rng.normal(size=base.shape)) for _ in range(n_models)])
    ids = [f"s{i}" for i in range(n)]
    stim = {"stimulus_a": ids, "stimulus_b": ids}
    data_da = xr.DataArray(squareform(data), dims=("stimulus_a", "stimulus_b"), coords=stim)
    model_da = xr.DataArray(
        np.stack([squareform(m) for m in models]),
        dims=("model", "stimulus_a", "stimulus_b"),
        coords={"model": [f"m{k}" for k in range(n_models)], **stim},
    )
    return data, models, data_da, model_da


def cases(full: bool, methods: tuple[str, ...]) -> list[Case]:
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as rt_compare

    from brainalign import rsa
    from brainalign.rsa._compare import RSATOOLBOX_METHODS

    out = []
    for n in (100, 200, 500) if full else (100,):
        data, models, data_da, model_da = _inputs(n, N_MODELS)
        rt_data, rt_models = RDMs(data[None]), RDMs(models)
        for method in methods:
            if method.startswith("whitened") and n > 100:
                continue  # quick anyway; keeps --full focused on the rank methods

            def ours(method=method, data_da=data_da, model_da=model_da):
                return rsa.compare(data_da, model_da, method)

            def ref(method=method, rt_data=rt_data, rt_models=rt_models):
                return rt_compare(rt_data, rt_models, method=RSATOOLBOX_METHODS[method])

            def check(a, b):
                np.testing.assert_allclose(np.asarray(a), b[0], rtol=0, atol=1e-10)

            out.append(
                Case(
                    f"compare {method} 1 vs {N_MODELS}, n={n} ({len(data)} pairs)",
                    ours,
                    ref,
                    "rsatoolbox",
                    target=1.0 if method in RANK else None,
                    check=check,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also 200 and 500 stimuli")
    parser.add_argument("--all", action="store_true", help="every method, not only the rank ones")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    methods = RANK + OTHERS if args.all else RANK
    run_cases(cases(args.full, methods), repeat=args.repeat, reference_repeat=3)


if __name__ == "__main__":
    main()
