"""RDM benchmarks: brainalign.rsa.rdm versus rsatoolbox.rdm.calc_rdm on the same data.

python benchmarks/rdm.py            # quick sizes (seconds)
python benchmarks/rdm.py --full     # the RSA issue's sizes (500 stimuli x 20,000 features)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, add_device_args, atol, rtol, run_cases, use_device


def cases(full: bool) -> list[Case]:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    from brainalign import rsa

    n, p = (500, 20_000) if full else (200, 5_000)
    x = np.random.default_rng(0).normal(size=(n, p))
    ds = Dataset(x)

    def check(ours, ref):
        np.testing.assert_allclose(
            np.asarray(ours), ref.get_matrices()[0], rtol=rtol(), atol=atol(1e-10)
        )

    def check_sq(ours, ref):
        np.testing.assert_allclose(
            np.asarray(ours) / p, ref.get_matrices()[0], rtol=rtol(), atol=atol(1e-10)
        )

    return [
        Case(
            f"rdm correlation {n}x{p}",
            lambda: rsa.rdm(x, "correlation"),
            lambda: calc_rdm(ds, method="correlation"),
            "rsatoolbox",
            target=20.0,
            check=check,
        ),
        Case(
            f"rdm sqeuclidean {n}x{p}",
            lambda: rsa.rdm(x, "sqeuclidean"),
            lambda: calc_rdm(ds, method="euclidean"),
            "rsatoolbox",
            check=check_sq,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--repeat", type=int, default=5)
    add_device_args(parser)
    args = parser.parse_args()
    use_device(args)
    warnings.filterwarnings("ignore")
    run_cases(cases(args.full), repeat=args.repeat)


if __name__ == "__main__":
    main()
