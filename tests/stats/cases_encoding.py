"""Calibration cases of the encoding statistics (see ``_calib``).

- :func:`brainalign.encoding.permutation_test`: size per target, family-wise (max
  statistic) and false-discovery (Benjamini-Hochberg) under a true null, for every
  permutation kind on the data it is meant for: ``"stimulus"`` on i.i.d. samples,
  ``"block"`` and ``"circular"`` on AR(1) time series cut into runs, and the default kind
  on a time series (AR(1) coefficient 0.5). ``kind="stimulus"`` on AR(1) data (coefficient
  0.8) is the documented liberal failure. Not a case (too slow to resolve in the suite):
  circular shifts are mildly liberal when runs are short against the autocorrelation
  (coefficient 0.8 in runs of 30: family-wise 6-7 %, Benjamini-Hochberg 6-9 % over 500
  data sets), which the ``permutation_test`` docstring states.
- :func:`brainalign.encoding.bootstrap_ci`: coverage of the percentile interval of the
  Pearson r over test stimuli: about 93.4 % for a 95 % interval at 60 stimuli, registered
  as the documented (mild) under-coverage of the percentile bootstrap at small n.

Every trial simulates features X and targets Y independently (the null: no target depends
on the features), runs the whole procedure (penalty re-selected per permutation) and returns
the rejections at alpha = 0.05. Sizes are small (tens of samples) so the suite stays fast:
19 permutations (the fewest with an exact 0.05 level), 99 where Benjamini-Hochberg over 5
targets needs them. Single-threaded torch is much faster on such tiny problems.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _calib import Calibration, register, seed_of
from sklearn.model_selection import LeaveOneGroupOut

from brainalign.encoding import bootstrap_ci, permutation_test

ALPHA = 0.05
ALPHAS = [1.0, 100.0]
N_RUNS, RUN_LENGTH = 4, 30
PHI = 0.5  # AR(1) coefficient of the valid cases (fMRI noise at a TR of 1-2 s: 0.2-0.5)
PHI_STRONG = 0.8  # the liberal cases: strong autocorrelation, ~3 effective samples per run
RUNS = np.repeat(np.arange(N_RUNS), RUN_LENGTH)
BLOCK = 10  # 0.5 ** 10 ≈ 0.001: blocks much longer than the autocorrelation


def _ar1(rng: np.random.Generator, n_columns: int, phi: float = PHI) -> np.ndarray:
    """Stationary AR(1) series (unit variance, coefficient phi), one per run and column."""
    burn = 30
    e = rng.standard_normal((N_RUNS, RUN_LENGTH + burn, n_columns))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, RUN_LENGTH + burn):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * e[:, t]
    return x[:, burn:].reshape(N_RUNS * RUN_LENGTH, n_columns)


def _outcome(res: xr.Dataset, what: str) -> np.ndarray | bool:
    if what == "per_target":
        return res.p_value.values <= ALPHA
    if what == "fwe":
        return bool((res.p_fwe.values <= ALPHA).any())
    return bool(res.significant_fdr.values.any())  # FDR = FWE under the global null


def _n_perm(what: str) -> int:
    # BH over 5 targets needs n_permutations >= 5 / 0.05 - 1 = 99. Otherwise 19, the fewest
    # with an exact level: p = 1/20 = 0.05 exactly when the observed score beats all 19.
    return 99 if what == "fdr" else 19


def _fdr_alpha(what: str) -> float | None:
    return ALPHA if what == "fdr" else None  # BH only where it is the claim


def _n_targets(what: str) -> int:
    return 10 if what == "per_target" else 5


def _iid_trial(what: str):
    def trial(rng: np.random.Generator):
        X = rng.standard_normal((40, 2))
        Y = rng.standard_normal((40, _n_targets(what)))
        res = permutation_test(
            X, Y, ALPHAS, cv=4, n_permutations=_n_perm(what), kind="stimulus",
            fdr_alpha=_fdr_alpha(what), seed=int(rng.integers(2**31)),
        )  # fmt: skip
        return _outcome(res, what)

    return trial


def _ar1_trial(what: str, kind: str | None, labeled: bool = False, phi: float = PHI):
    def trial(rng: np.random.Generator):
        X, Y = _ar1(rng, 2, phi), _ar1(rng, _n_targets(what), phi)
        kw = {"block_size": BLOCK} if kind == "block" else {}
        if labeled:  # the default kind from a 'time' sample dim, runs from groups
            X = xr.DataArray(X, dims=("time", "feature"))
            Y = xr.DataArray(Y, dims=("time", "voxel"))
        else:
            kw["runs"] = RUNS
        res = permutation_test(
            X, Y, ALPHAS, cv=LeaveOneGroupOut(), groups=RUNS, n_permutations=_n_perm(what),
            kind=kind, fdr_alpha=_fdr_alpha(what), seed=int(rng.integers(2**31)), **kw,
        )  # fmt: skip
        return _outcome(res, what)

    return trial


_LABEL = {
    "per_target": "per-target p <= 0.05",
    "fwe": "any max-statistic p_fwe <= 0.05",
    "fdr": "any Benjamini-Hochberg rejection at q = 0.05",
}
_IID = "X (40 x 2) and Y independent i.i.d. normal; 4-fold CV"
_AR = (
    f"X and Y independent AR(1) series (phi = {PHI}) in {N_RUNS} runs of {RUN_LENGTH}; "
    "leave-one-run-out CV"
)
_AR_STRONG = _AR.replace(f"phi = {PHI}", f"phi = {PHI_STRONG}")
_REPS = {"per_target": (40, 200), "fwe": (100, 500), "fdr": (80, 500)}

for _what in ("per_target", "fwe", "fdr"):
    _n, _full = _REPS[_what]
    register(
        Calibration(
            f"encoding.permutation_test kind=stimulus iid {_what}",
            "size",
            ALPHA,
            _iid_trial(_what),
            null=f"{_IID}; {_LABEL[_what]}",
            n_reps=_n,
            n_reps_full=_full,
        )
    )
    for _kind in ("circular", "block"):
        if _kind == "block" and _what == "fdr":
            continue  # under the global null BH's FDR is its FWE: the fwe case covers it
        register(
            Calibration(
                f"encoding.permutation_test kind={_kind} AR(1) {_what}",
                "size",
                ALPHA,
                _ar1_trial(_what, _kind),
                null=f"{_AR}; {_kind} permutations within runs; {_LABEL[_what]}",
                n_reps=_n,
                n_reps_full=_full,
            )
        )

register(
    Calibration(
        "encoding.permutation_test default kind AR(1) fwe",
        "size",
        ALPHA,
        _ar1_trial("fwe", None, labeled=True),
        null=(
            f"{_AR}; kind left to its default (a 'time' sample dim with runs as groups: "
            f"circular shifts within runs); {_LABEL['fwe']}"
        ),
        n_reps=100,
        n_reps_full=500,
    )
)
for _what, _n, _full in (("per_target", 30, 200), ("fwe", 60, 500)):
    register(
        Calibration(
            f"encoding.permutation_test kind=stimulus AR(1) {_what}",
            "size",
            ALPHA,
            _ar1_trial(_what, "stimulus", phi=PHI_STRONG),
            expect="liberal",
            null=f"{_AR_STRONG}; plain shuffles within runs; {_LABEL[_what]}",
            instead="kind='circular' with runs= (the default when runs are given)",
            n_reps=_n,
            n_reps_full=_full,
        )
    )


def _bootstrap_trial(rng: np.random.Generator) -> np.ndarray:
    """Coverage of the true Pearson r (0.5) by the 95 % percentile CI, 10 targets."""
    n, t, rho = 60, 10, 0.5
    y_true = rng.standard_normal((n, t))
    y_pred = rho * y_true + np.sqrt(1 - rho**2) * rng.standard_normal((n, t))
    low, high = bootstrap_ci(
        y_true, y_pred, metric="pearson", n_bootstraps=1000, seed=int(rng.integers(2**31))
    )
    return (low <= rho) & (rho <= high)


register(
    Calibration(
        "encoding.bootstrap_ci pearson coverage",
        "coverage",
        0.95,
        _bootstrap_trial,
        expect="liberal",
        null="y_pred and y_true bivariate normal, true r = 0.5, 60 test stimuli; 95 % CI",
        instead=(
            "more test stimuli, or read the percentile interval as about 93 % at 60 "
            "stimuli (the percentile bootstrap of a correlation under-covers at small n)"
        ),
        n_reps=300,
        n_reps_full=1000,
    )
)


def _group_map_trial(rng: np.random.Generator) -> bool:
    """A family-wise error of the group-level encoding map (the pipeline's fmri_bids path).

    Five subjects, each with 4 runs of the same 6 stimuli and 12 voxels of pure noise; the
    features (3 per stimulus) are independent of the voxels. Each subject's map is the
    leave-one-run-out cross-validated r2 of ridge_cv; the group map is tested by
    rsa.sign_flip_test (19 flips, max t). Under this null the subjects' cv r2 are negative on
    average, so the test is valid but conservative (maps are not centred on 0).
    """

    from brainalign import rsa
    from brainalign.encoding import ridge_cv

    n_stim, n_runs, n_vox, n_sub = 6, 4, 12, 5
    feats = rng.standard_normal((n_stim, 3))
    runs = np.repeat(np.arange(n_runs), n_stim)
    x = np.tile(feats, (n_runs, 1))
    # the subjects share stimuli, runs and features, so one call fits every subject's voxels
    # (each voxel its own ridge and penalty, as in the per-subject fits)
    y = rng.standard_normal((n_stim * n_runs, n_sub * n_vox))
    ds = ridge_cv(x, y, [0.1, 10.0], cv=LeaveOneGroupOut(), groups=runs, device="cpu")
    stack = xr.DataArray(ds.cv_score.values.reshape(n_sub, n_vox), dims=("subject", "voxel"))
    res = rsa.sign_flip_test(stack, n_permutations=19, seed=seed_of(rng), device="cpu")
    return bool(np.nanmin(res.p_fwe.values) <= ALPHA)


register(
    Calibration(
        "group-level encoding map sign_flip_test fwe (pipeline, several subjects)",
        "size",
        ALPHA,
        _group_map_trial,
        expect="conservative",
        null=(
            "5 subjects × 12 noise voxels, 4 runs × 6 stimuli, features independent of the "
            "voxels; leave-one-run-out cv r2 maps, sign flips of whole maps (19), max t"
        ),
        n_reps=40,
        n_reps_full=300,
    )
)
