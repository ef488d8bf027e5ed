"""Calibration cases of RSA inference: permutation tests, bootstrap t-tests, bootstrap CIs.

Each trial simulates one small data set under a known truth and runs one public brainalign
routine on it (see ``_calib``). Patterns are Gaussian; RDMs are computed here with numpy
(correlation distance, or squared Euclidean distance where the true value needs a closed
form) and passed as plain arrays, so a trial costs one brainalign call.

Designs of the ``rsa.test`` cases (10 stimuli, 8 subjects, Pearson comparisons):

- *stimuli sampled*: every repetition draws new stimuli (a shared "true" pattern per
  stimulus) and new subjects (the true patterns plus subject noise of the same size); the
  model RDMs come from independent patterns of the same stimuli. Brain and models are
  independent, so every model's population evaluation is 0 and all models are equal.
- *stimuli fixed*: the stimuli and the model RDMs are the same in every repetition (drawn
  once below); each subject's patterns are independent noise. Every model's expected
  evaluation over subjects is then exactly 0 for these stimuli (the subject RDMs are
  exchangeable over stimuli), the null to which subject resampling generalises.
- *subjects fixed*: new stimuli every repetition; subject ``s`` responds with a fixed linear
  map of the stimulus's true pattern (the same map in every repetition).

One simulated data set gives several outcomes: the test of each of 6 models against zero,
and the pairwise tests of 3 disjoint pairs of models (independent under the null). The
zero and pairwise cases of one design run the same simulations, so a trial's p-values are
computed once and reused by the other case (cached by the trial generator's state).
"""

from __future__ import annotations

import functools

import numpy as np
from _calib import Calibration, register, seed_of

from brainalign import rsa

ALPHA = 0.05
N_STIMULI, N_FEATURES, N_SUBJECTS, N_MODELS = 10, 20, 8, 6
N_BOOTSTRAP = 100


def _corr_rdms(patterns: np.ndarray) -> np.ndarray:
    """Correlation-distance RDMs of patterns (..., n, features)."""
    z = patterns - patterns.mean(-1, keepdims=True)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    return 1.0 - z @ np.swapaxes(z, -1, -2)


def _sq_euclidean_rdms(patterns: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance RDMs of patterns (..., n, features)."""
    sq = (patterns * patterns).sum(-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * patterns @ np.swapaxes(patterns, -1, -2)
    return np.clip(d2, 0.0, None)


# --------------------------------------------------------------------------------------------
# rsa.permutation_test: one data RDM against independent model RDMs
# --------------------------------------------------------------------------------------------


def _permutation_trial(rng, n: int, n_permutations: int | None) -> np.ndarray:
    data = _corr_rdms(rng.normal(size=(n, N_FEATURES)))
    models = _corr_rdms(rng.normal(size=(5, n, N_FEATURES)))
    res = rsa.permutation_test(
        data, models, "pearson", n_permutations=n_permutations, seed=seed_of(rng), device="cpu"
    )
    return res.p_value.values <= ALPHA


register(
    Calibration(
        name="rsa.permutation_test exact (5 stimuli, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=lambda rng: _permutation_trial(rng, 5, None),
        null="data and 5 model RDMs from independent Gaussian patterns; all 120 permutations",
        n_reps=100,
        n_reps_full=500,
    )
)
register(
    Calibration(
        name="rsa.permutation_test Monte-Carlo (8 stimuli, 99 permutations, pearson)",
        kind="size",
        nominal=ALPHA,
        trial=lambda rng: _permutation_trial(rng, 8, 99),
        null="data and 5 model RDMs from independent Gaussian patterns; 99 random "
        "permutations, p = (1 + #null >= observed) / 100",
        n_reps=100,
        n_reps_full=500,
    )
)


# --------------------------------------------------------------------------------------------
# rsa.test: bootstrap t-tests against zero and between models
# --------------------------------------------------------------------------------------------

_FIXED = np.random.default_rng(20261206)
_FIXED_MODELS = _corr_rdms(_FIXED.normal(size=(N_MODELS, N_STIMULI, N_FEATURES)))
_SUBJECT_MAPS = np.eye(N_FEATURES) + _FIXED.normal(size=(N_SUBJECTS, N_FEATURES, N_FEATURES))


def _simulate(rng: np.random.Generator, design: str) -> tuple[np.ndarray, np.ndarray]:
    if design == "fixed":
        subjects = rng.normal(size=(N_SUBJECTS, N_STIMULI, N_FEATURES))
        return _corr_rdms(subjects), _FIXED_MODELS
    true = rng.normal(size=(N_STIMULI, N_FEATURES))
    if design == "subjects_fixed":
        subjects = true[None] @ _SUBJECT_MAPS
    else:  # both sampled
        subjects = true[None] + rng.normal(size=(N_SUBJECTS, N_STIMULI, N_FEATURES))
    models = rng.normal(size=(N_MODELS, N_STIMULI, N_FEATURES))
    return _corr_rdms(subjects), _corr_rdms(models)


_PVALUES: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}


def _test_trial(rng, design: str, resample: str, which: str) -> np.ndarray:
    """Reject or not, per outcome; the zero and pairwise cases share one simulation."""
    key = (design, resample, repr(rng.bit_generator.state))
    if key not in _PVALUES:
        if len(_PVALUES) > 4096:
            _PVALUES.clear()
        data, models = _simulate(rng, design)
        res = rsa.test(
            data, models, "pearson", resample=resample, n_bootstrap=N_BOOTSTRAP,
            seed=seed_of(rng), device="cpu",
        )  # fmt: skip
        pairs = [res.p_pairwise.values[i, i + 1] for i in range(0, N_MODELS, 2)]
        _PVALUES[key] = (res.p_zero.values.copy(), np.asarray(pairs))
    zero, pairwise = _PVALUES[key]
    return (zero if which == "zero" else pairwise) <= ALPHA


_DESIGNS = {
    "sampled": "new stimuli and new subjects every repetition; brain and models independent",
    "fixed": "the same stimuli and model RDMs every repetition; subjects' patterns "
    "independent noise, so each model's expected evaluation over subjects is 0",
    "subjects_fixed": "new stimuli every repetition; fixed subjects (fixed linear maps of "
    "the stimulus patterns); models independent of the brain",
}
_WHAT = {
    "zero": "one-sided t-test of each of 6 models against 0 (p_zero)",
    "pairwise": "two-sided t-test of the difference of 2 models (p_pairwise, 3 disjoint pairs)",
}
_CASES = [
    # (resample, design, expect, n_reps)
    ("subject", "sampled", "liberal", 40),
    ("subject", "fixed", "valid", 60),
    ("stimulus", "subjects_fixed", "conservative", 40),
    ("both", "sampled", "conservative", 40),
]
for _resample, _design, _expect, _n in _CASES:
    for _which in ("zero", "pairwise"):
        register(
            Calibration(
                name=f"rsa.test resample={_resample!r} {_which}, stimuli "
                f"{'fixed' if _design == 'fixed' else 'sampled'}",
                kind="size",
                nominal=ALPHA,
                trial=functools.partial(
                    _test_trial, design=_design, resample=_resample, which=_which
                ),
                expect=_expect,
                null=f"{_DESIGNS[_design]}; {_WHAT[_which]}; {N_STIMULI} stimuli, "
                f"{N_SUBJECTS} subjects, Pearson, {N_BOOTSTRAP} bootstrap samples",
                instead='resample="both" (or "stimulus" when subjects are fixed)'
                if _expect == "liberal"
                else "",
                n_reps=_n,
                n_reps_full=500,
            )
        )


# --------------------------------------------------------------------------------------------
# rsa.bootstrap_ci: coverage of the population RDM correlation
# --------------------------------------------------------------------------------------------

_Q, _P_BRAIN, _P_MODEL = 5, 10, 8
_CI_RNG = np.random.default_rng(2024)
_A = _CI_RNG.normal(size=(_Q, _P_BRAIN))
_B = _CI_RNG.normal(size=(3, _Q, _P_MODEL))
_NOISE_BRAIN, _NOISE_MODEL = 0.7, 1.5


def _ci_patterns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, _Q))
    brain = x @ _A + _NOISE_BRAIN * rng.normal(size=(n, _P_BRAIN))
    models = np.matmul(x[None], _B) + _NOISE_MODEL * rng.normal(size=(3, n, _P_MODEL))
    return brain, models


def population_correlation() -> np.ndarray:
    """The true Pearson correlation of the brain and each model's squared distances.

    Over pairs of independent stimuli of the population, the pattern differences are
    Gaussian, ``Δb ~ N(0, 2 Σ_b)`` and ``Δm ~ N(0, 2 Σ_m)`` with cross-covariance
    ``2 AᵀB``; for Gaussian vectors ``Cov(|u|², |v|²) = 2 |Cov(u, v)|_F²``, so the
    correlation of the squared distances is ``|AᵀB|_F² / (|Σ_b|_F |Σ_m|_F)``. It is the
    limit of the RDM correlation on ever larger stimulus sets (checked against a
    Monte-Carlo estimate on 200,000 stimulus pairs in ``test_calibration_rsa.py``).
    """
    cov_b = _A.T @ _A + _NOISE_BRAIN**2 * np.eye(_P_BRAIN)
    out = []
    for b in _B:
        cov_m = b.T @ b + _NOISE_MODEL**2 * np.eye(_P_MODEL)
        out.append(np.sum((_A.T @ b) ** 2) / np.sqrt(np.sum(cov_b**2) * np.sum(cov_m**2)))
    return np.asarray(out)


def _ci_trial(rng, n: int) -> np.ndarray:
    brain, models = _ci_patterns(rng, n)
    res = rsa.bootstrap_ci(
        _sq_euclidean_rdms(brain), _sq_euclidean_rdms(models), "pearson", n_bootstrap=200,
        ci=0.95, seed=seed_of(rng), device="cpu",
    )  # fmt: skip
    truth = population_correlation()
    return (res.ci_lower.values <= truth) & (truth <= res.ci_upper.values)


register(
    Calibration(
        name="rsa.bootstrap_ci 95 % coverage (20 stimuli, pearson)",
        kind="coverage",
        nominal=0.95,
        trial=lambda rng: _ci_trial(rng, 20),
        null="20 stimuli drawn from a Gaussian population; brain and 3 model patterns are "
        "noisy linear maps of the stimulus features; truth = the population correlation of "
        "the squared-distance RDMs (closed form, r = 0.33-0.57)",
        n_reps=100,
        n_reps_full=500,
    )
)
