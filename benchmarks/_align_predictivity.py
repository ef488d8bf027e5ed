"""Linear predictivity: brainalign vs the Brain-Score pipeline built from scikit-learn/himalaya.

Cases (one process, the same data for both, best of 3 after a warm-up), 1,000 stimuli,
10-fold cross-validation, scores = median over targets of the held-out Pearson r per fold,
averaged over folds (the whole public call, labeled inputs, float64 on the CPU):

* PLS, 25 components, 300 source features, 100 targets: ``predictivity(regression="pls")``
  vs a loop over the same folds of scikit-learn's ``PLSRegression(25, scale=False)`` with
  its defaults (Brain-Score's settings: NIPALS with tol=1e-6) and ``scipy.stats.pearsonr``
  per target; agreement is ~1e-4 in r, from NIPALS' early stop (brainalign solves each
  component exactly; at tol=1e-24 the two agree to 1e-12, see tests/align/test_predictivity);
* OLS, 300 features, 100 targets: vs ``LinearRegression`` per fold (agreement 1e-12);
* ridge_cv, 300 features, 100 targets, 9 alphas, inner 5-fold: vs himalaya's ``RidgeCV``
  per fold (agreement 1e-12).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/_align_predictivity.py`` (one BLAS thread for
both sides; on a shared 2-core machine more threads oversubscribe and time noise instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy import stats
from sklearn.model_selection import KFold

import brainalign as ba
from brainalign.align._predictivity import predictivity
from brainalign.encoding import DEFAULT_ALPHAS


def _best(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _reference(x, y, folds, make_model) -> float:
    medians = []
    for train, test in folds:
        model = make_model().fit(x[train], y[train])
        pred = np.asarray(model.predict(x[test]))
        r = [stats.pearsonr(pred[:, j], y[test, j])[0] for j in range(y.shape[1])]
        medians.append(np.median(r))
    return float(np.mean(medians))


def cases() -> list[dict]:
    """Time each case; rows with the case, both timings and the reference's name."""
    import warnings

    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    n, p, q = 1000, 300, 100
    z = rng.normal(size=(n, 20))
    x = z @ rng.normal(size=(20, p)) + rng.normal(size=(n, p))
    y = z @ rng.normal(size=(20, q)) + 3 * rng.normal(size=(n, q))
    ids = [f"s{i:04d}" for i in range(n)]
    src, tgt = ba.responses(x, ids), ba.responses(y, ids, feature_dim="voxel")
    folds = list(KFold(10, shuffle=True, random_state=0).split(x))
    specs = [
        (
            "predictivity pls (25 comp.), n=1000, 300 -> 100, 10-fold",
            "pls",
            lambda: PLSRegression(25, scale=False),
            "sklearn PLSRegression(25, scale=False) + scipy pearsonr, per fold (Brain-Score)",
        ),
        (
            "predictivity ols, n=1000, 300 -> 100, 10-fold",
            "ols",
            LinearRegression,
            "sklearn LinearRegression + scipy pearsonr, per fold",
        ),
        (
            "predictivity ridge_cv (9 alphas, inner 5-fold), n=1000, 300 -> 100, 10-fold",
            "ridge_cv",
            lambda: HimalayaRidgeCV(alphas=DEFAULT_ALPHAS, cv=KFold(5), fit_intercept=True),
            "himalaya RidgeCV + scipy pearsonr, per fold",
        ),
    ]
    rows = []
    for name, regression, make_model, ref_name in specs:

        def ours(regression=regression):
            return float(predictivity(src, tgt, regression=regression, cv=10, seed=0))

        def ref(make_model=make_model):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _reference(x, y, folds, make_model)

        t_ours, v_ours = _best(ours)
        t_ref, v_ref = _best(ref)
        rows.append(
            {
                "case": name,
                "brainalign_s": t_ours,
                "reference_s": t_ref,
                "reference": ref_name,
                "abs_diff": abs(v_ours - v_ref),
            }
        )
    return rows


if __name__ == "__main__":
    for row in cases():
        ratio = row["reference_s"] / row["brainalign_s"]
        print(
            f"{row['case']}: brainalign {row['brainalign_s']:.3f} s, reference "
            f"{row['reference_s']:.3f} s, ratio {ratio:.2f} (|diff| {row['abs_diff']:.1e}; "
            f"{row['reference']})"
        )
