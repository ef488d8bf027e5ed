"""Monte-Carlo calibration: size of tests and coverage of intervals under a known truth.

A :class:`Calibration` is one claim brainalign makes ("this p-value holds its size when
brain and model are independent", "this interval covers the true value 95 % of the
time"). ``trial(rng)`` simulates one data set from the null (or from a model with a known
value), runs the brainalign routine on it, and returns ``True`` when the test rejects at
``nominal`` (size) or the interval covers the truth (coverage); it may return a 1-D boolean
array when one data set gives several exchangeable outcomes (one per target, say).

The suite (``tests/stats/test_calibration_*.py``) runs each case with 50 to a few hundred
repetitions (seeded) and checks the rate with an exact one-sided binomial test;
``benchmarks/calibration.py`` runs them all with 500 or more repetitions and writes the table
shown in ``docs/statistics.md``.

``expect`` states what the documentation claims:

- ``"valid"``: size <= nominal (coverage >= nominal). The suite fails when the rate is
  significantly on the wrong side (one-sided exact binomial p < ``strict``).
- ``"liberal"``: the documented failure of a test used outside its null (size > nominal); the
  suite checks the rate is significantly above nominal, so the documentation stays true.
- ``"conservative"``: size well under nominal, documented as such (coverage above it).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np
from scipy import stats

CASES: dict[str, Calibration] = {}


@dataclasses.dataclass(frozen=True)
class Calibration:
    """One calibration claim; see the module docstring."""

    name: str
    kind: str  # "size" or "coverage"
    nominal: float  # 0.05 for size at alpha = 0.05, 0.95 for 95 % coverage
    trial: Callable[[np.random.Generator], bool | np.ndarray]
    expect: str = "valid"  # "valid", "liberal" or "conservative"
    null: str = ""  # the simulated truth, in words (shown in the docs table)
    instead: str = ""  # for liberal cases: what to use instead
    n_reps: int = 200  # repetitions in the test suite
    n_reps_full: int = 500  # repetitions in benchmarks/calibration.py
    module: str = ""  # the case module that registered it (set by register)

    def __post_init__(self):
        if self.kind not in ("size", "coverage"):
            raise ValueError(f"kind must be 'size' or 'coverage', got {self.kind!r}")
        if self.expect not in ("valid", "liberal", "conservative"):
            raise ValueError(f"expect must be valid/liberal/conservative, got {self.expect!r}")


def register(case: Calibration) -> Calibration:
    """Add ``case`` to :data:`CASES` (names are unique) and return it."""
    if case.name in CASES:
        raise ValueError(f"duplicate calibration case {case.name!r}")
    case = dataclasses.replace(case, module=sys._getframe(1).f_globals["__name__"])
    CASES[case.name] = case
    return case


def cases_of(module: str) -> list[Calibration]:
    """The cases registered by the case module ``module`` (e.g. ``"cases_rsa"``), in order."""
    return [c for c in CASES.values() if c.module == module]


def seed_of(rng: np.random.Generator) -> int:
    """A seed for a brainalign call, drawn from the trial's generator."""
    return int(rng.integers(2**31 - 1))


def run(case: Calibration, n_reps: int | None = None, seed: int = 0) -> tuple[int, int, float]:
    """Run ``case`` ``n_reps`` times from ``seed``; return (events, outcomes, effective n).

    Events are rejections for a size case and covering intervals for a coverage case. When a
    trial gives several outcomes from one data set (one per model, say), they may be
    correlated, and a binomial test that counted them as independent would overstate its
    certainty. The effective number of outcomes divides the count by the design effect, the
    ratio of the between-trial (cluster-robust) variance of the rate to the binomial variance;
    it is never more than the number of outcomes and equals it for one outcome per trial.
    """
    n_reps = case.n_reps if n_reps is None else n_reps
    counts = []
    for i in range(n_reps):
        out = np.atleast_1d(np.asarray(case.trial(np.random.default_rng([seed, i])), dtype=bool))
        counts.append((int(out.sum()), out.size))
    k_i, m_i = np.array(counts, dtype=float).T
    k, n = int(k_i.sum()), int(m_i.sum())
    return k, n, effective_n(k_i, m_i)


def effective_n(k_i: np.ndarray, m_i: np.ndarray) -> float:
    """Outcomes corrected for correlation within trials (Kish's design effect, clustered)."""
    n = m_i.sum()
    if np.all(m_i == 1) or len(m_i) < 2:
        return float(n)
    p = k_i.sum() / n
    if p in (0.0, 1.0):
        return float(len(m_i))  # no spread to estimate from: count trials, the safe side
    robust = ((k_i - p * m_i) ** 2).sum() / n**2 * len(m_i) / (len(m_i) - 1)
    binomial = p * (1 - p) / n
    return float(min(n, max(len(m_i), n * binomial / robust)))


def binomial_pvalues(k: int, n: int, nominal: float) -> tuple[float, float]:
    """One-sided exact binomial p-values (rate > nominal, rate < nominal)."""
    above = stats.binomtest(k, n, nominal, alternative="greater").pvalue
    below = stats.binomtest(k, n, nominal, alternative="less").pvalue
    return float(above), float(below)


def verdict(
    case: Calibration, k: int, n: int, n_eff: float | None = None, strict: float = 0.01
) -> tuple[bool, str]:
    """Whether the rate ``k / n`` agrees with ``case.expect``; and a message saying why.

    The exact binomial test runs on the effective number of outcomes ``n_eff`` (default
    ``n``), with the events scaled to it. ``strict`` is its level for the wrong side: the
    suite's trials are seeded, so a case that passes keeps passing, and a test that turns
    liberal (a size of 0.10 where 0.05 is claimed) fails at a few hundred outcomes.
    """
    rate = k / n
    n_eff = n if n_eff is None else n_eff
    m = max(1, round(n_eff))
    above, below = binomial_pvalues(round(rate * m), m, case.nominal)
    msg = (
        f"{case.name}: {case.kind} {rate:.3f} ({k}/{n}, effective n {n_eff:.0f}) at nominal "
        f"{case.nominal}; expected {case.expect}; exact binomial p(above)={above:.2g}, "
        f"p(below)={below:.2g}"
    )
    wrong_side = above if case.kind == "size" else below
    if case.expect in ("valid", "conservative"):
        return wrong_side >= strict, msg
    # liberal: the documented failure must be visible (rate significantly on the wrong side)
    return wrong_side < 0.05, msg


def check(case: Calibration, n_reps: int | None = None, seed: int = 0) -> None:
    """Assert that ``case`` holds its claim (for the test suite)."""
    k, n, n_eff = run(case, n_reps, seed)
    ok, msg = verdict(case, k, n, n_eff)
    assert ok, msg
