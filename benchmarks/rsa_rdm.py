"""RSA RDM benchmarks: brainalign.rsa versus rsatoolbox 0.3.2 on the same data.

python benchmarks/rsa_rdm.py            # quick sizes (seconds)
python benchmarks/rsa_rdm.py --full     # the RSA issue's sizes

Cases: correlation RDM (500 stimuli x 20,000 features), shrinkage noise precision from
measurements (10 runs x 100 conditions x 2,000 channels), crossnobis RDM with a shrinkage
precision (10 runs x 100 conditions x 5,000 channels; the precision is computed once,
outside the timing, and given to both packages: brainalign gets noise_precision's DataArray,
rsatoolbox its dense matrix), once with independent noise (the shrinkage intensity is 1: a
diagonal precision) and once with noise correlated through 50 latent factors (intensity
below 1: a diagonal minus a rank-1,000 update), crossnobis without a precision, and
crossnobis with one precision per run (8 runs x 40 conditions x 200 channels; full: 8 x 100 x
1,000; each run's precision the inverse of a Wishart-like covariance).

A dense precision costs the product of every run's patterns with the p x p matrix
(n_runs * n_conditions * p**2 multiply-adds; rsatoolbox does this fold by fold). brainalign
keeps noise_precision's factored form diag(v) - F^T F (F: n_observations x p) and needs
products with F only (n_runs * n_conditions * p * n_observations): with correlated noise
the speed-up is bounded by about p / n_observations (5,000 / 1,000) times rsatoolbox's
overhead; with independent noise F is empty (intensity 1) and only elementwise work is left.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, add_device_args, atol, rtol, run_cases, use_device


def _trials(n_runs: int, n_cond: int, p: int, seed: int, n_factors: int = 0):
    import brainalign as ba

    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_cond, p))
    x = np.tile(signal, (n_runs, 1)) + rng.normal(size=(n_runs * n_cond, p))
    if n_factors:  # noise correlated across channels
        mixing = rng.normal(size=(n_factors, p)) / np.sqrt(n_factors)
        x += rng.normal(size=(n_runs * n_cond, n_factors)) @ mixing
    stim = np.tile([f"c{i:03d}" for i in range(n_cond)], n_runs)
    run = np.repeat(np.arange(n_runs), n_cond)
    da = ba.responses(x, stim, sample_dim="trial", feature_dim="channel", run=("trial", run))
    return x, stim, run, da


def cases(full: bool) -> list[Case]:
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import prec_from_measurements
    from rsatoolbox.rdm import calc_rdm

    from brainalign import rsa
    from brainalign.rsa._noise import noise_precision

    # correlation RDM
    n, p = (500, 20_000) if full else (200, 5_000)
    x = np.random.default_rng(0).normal(size=(n, p))
    ds = Dataset(x)

    def check_rdm(ours, ref):
        np.testing.assert_allclose(
            np.asarray(ours), ref.get_matrices()[0], rtol=rtol(), atol=atol(1e-10)
        )

    # noise precision from measurements
    r_n, c_n, p_n = (10, 100, 2_000) if full else (4, 30, 200)
    xn, stim_n, run_n, da_n = _trials(r_n, c_n, p_n, 1)
    ds_n = Dataset(xn, obs_descriptors={"stimulus": stim_n, "run": run_n})

    def check_prec(ours, ref):
        np.testing.assert_allclose(
            np.asarray(ours), ref, rtol=rtol(), atol=atol(1e-10) * np.abs(ref).max()
        )

    # crossnobis with a shrinkage precision
    r_c, c_c, p_c = (10, 100, 5_000) if full else (4, 30, 400)
    xc, stim_c, run_c, da_c = _trials(r_c, c_c, p_c, 2)
    ds_c = Dataset(xc, obs_descriptors={"stimulus": stim_c, "run": run_c})
    # brainalign gets the DataArray (with its factored form), rsatoolbox the dense matrix
    prec = noise_precision(da_c, "shrinkage_diag", from_="measurements")
    prec_dense = np.asarray(prec)
    xf, stim_f, run_f, da_f = _trials(r_c, c_c, p_c, 3, n_factors=50)
    ds_f = Dataset(xf, obs_descriptors={"stimulus": stim_f, "run": run_f})
    prec_f = noise_precision(da_f, "shrinkage_diag", from_="measurements")
    prec_f_dense = np.asarray(prec_f)
    # crossnobis with one precision per run: rsatoolbox inverts each run's precision and
    # each run pair's mean covariance; brainalign factors M_k + M_l once per pair and
    # applies it to the patterns only (no inverse)
    r_r, c_r, p_r = (8, 100, 1_000) if full else (8, 40, 200)
    xr_, stim_r, run_r, da_r = _trials(r_r, c_r, p_r, 4)
    ds_r = Dataset(xr_, obs_descriptors={"stimulus": stim_r, "run": run_r})
    rng = np.random.default_rng(5)
    per_run = []
    for _ in range(r_r):
        a = rng.normal(size=(p_r, 2 * p_r))
        per_run.append(np.linalg.inv(a @ a.T / (2 * p_r) + 0.1 * np.eye(p_r)))

    def crossnobis(label, da, ds, noise, noise_ref, target=None):
        """A crossnobis case: ``noise`` for brainalign, ``noise_ref`` for rsatoolbox."""
        ids = np.asarray(da.stimulus.values)
        order = np.argsort(ids[: len(np.unique(ids))])  # rsatoolbox sorts by label

        def check(ours, ref):
            got = np.asarray(ours)[np.ix_(order, order)]
            np.testing.assert_allclose(got, ref.get_matrices()[0], rtol=rtol(), atol=atol(1e-12))

        ref_kw = {} if noise_ref is None else {"noise": noise_ref}
        return Case(
            label,
            lambda: rsa.rdm(da, "crossnobis", noise=noise),
            lambda: calc_rdm(
                ds, "crossnobis", descriptor="stimulus", cv_descriptor="run", **ref_kw
            ),
            "rsatoolbox",
            target=target,
            check=check,
        )

    return [
        Case(
            f"rdm correlation {n}x{p}",
            lambda: rsa.rdm(x, "correlation"),
            lambda: calc_rdm(ds, method="correlation"),
            "rsatoolbox",
            target=20.0 if full else None,
            check=check_rdm,
        ),
        Case(
            f"noise_precision shrinkage_diag {r_n}x{c_n}x{p_n}",
            lambda: noise_precision(
                da_n, "shrinkage_diag", from_="measurements", semantics="rsatoolbox"
            ),
            lambda: prec_from_measurements(ds_n, "stimulus", method="shrinkage_diag"),
            "rsatoolbox",
            target=15.0 if full else None,
            check=check_prec,
        ),
        crossnobis(
            f"rdm crossnobis+shrinkage {r_c}x{c_c}x{p_c}",
            da_c,
            ds_c,
            prec,
            prec_dense,
            target=10.0 if full else None,
        ),
        # bounded by the flop ratio p / n_observations (5 at full size): no target
        crossnobis(
            f"rdm crossnobis+shrinkage, correlated noise {r_c}x{c_c}x{p_c}",
            da_f,
            ds_f,
            prec_f,
            prec_f_dense,
        ),
        crossnobis(
            f"rdm crossnobis, one precision per run {r_r}x{c_r}x{p_r}",
            da_r,
            ds_r,
            per_run,
            per_run,
            target=1.0,
        ),
        crossnobis(f"rdm crossnobis (identity) {r_c}x{c_c}x{p_c}", da_c, ds_c, None, None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--repeat", type=int, default=5)
    add_device_args(parser)
    parser.add_argument("--reference-repeat", type=int, default=None)
    args = parser.parse_args()
    use_device(args)
    warnings.filterwarnings("ignore")
    run_cases(
        cases(args.full),
        repeat=args.repeat,
        reference_repeat=args.reference_repeat or (1 if args.full else None),
    )


if __name__ == "__main__":
    main()
