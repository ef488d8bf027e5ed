"""Monte-Carlo calibration: size of tests and coverage of intervals under a known truth.

A :class:`Calibration` is one claim brainalign makes ("this p-value holds its size when
brain and model are independent", "this interval covers the true value 95 % of the
time"). ``trial(rng)`` simulates one data set from the null (or from a model with a known
value), runs the brainalign routine on it, and returns ``True`` when the test rejects at
``nominal`` (size) or the interval covers the truth (coverage); it may return a 1-D boolean
array when one data set gives several exchangeable outcomes (one per target, say).

The suite (``tests/stats/test_calibration_*.py``) runs each case with a few hundred
repetitions and checks the rate with an exact one-sided binomial test;
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

    def __post_init__(self):
        if self.kind not in ("size", "coverage"):
            raise ValueError(f"kind must be 'size' or 'coverage', got {self.kind!r}")
        if self.expect not in ("valid", "liberal", "conservative"):
            raise ValueError(f"expect must be valid/liberal/conservative, got {self.expect!r}")


def register(case: Calibration) -> Calibration:
    """Add ``case`` to :data:`CASES` (names are unique) and return it."""
    if case.name in CASES:
        raise ValueError(f"duplicate calibration case {case.name!r}")
    CASES[case.name] = case
    return case


def run(case: Calibration, n_reps: int | None = None, seed: int = 0) -> tuple[int, int]:
    """Run ``case`` ``n_reps`` times from ``seed``; return (events, outcomes).

    Events are rejections for a size case and covering intervals for a coverage case.
    """
    n_reps = case.n_reps if n_reps is None else n_reps
    rngs = [np.random.default_rng([seed, i]) for i in range(n_reps)]
    k = n = 0
    for rng in rngs:
        out = np.atleast_1d(np.asarray(case.trial(rng), dtype=bool))
        k += int(out.sum())
        n += out.size
    return k, n


def binomial_pvalues(k: int, n: int, nominal: float) -> tuple[float, float]:
    """One-sided exact binomial p-values (rate > nominal, rate < nominal)."""
    above = stats.binomtest(k, n, nominal, alternative="greater").pvalue
    below = stats.binomtest(k, n, nominal, alternative="less").pvalue
    return float(above), float(below)


def verdict(case: Calibration, k: int, n: int, strict: float = 1e-3) -> tuple[bool, str]:
    """Whether the rate ``k / n`` agrees with ``case.expect``; and a message saying why."""
    above, below = binomial_pvalues(k, n, case.nominal)
    rate = k / n
    msg = (
        f"{case.name}: {case.kind} {rate:.3f} ({k}/{n}) at nominal {case.nominal}; "
        f"expected {case.expect}; exact binomial p(above)={above:.2g}, p(below)={below:.2g}"
    )
    wrong_side = above if case.kind == "size" else below
    if case.expect in ("valid", "conservative"):
        return wrong_side >= strict, msg
    # liberal: the documented failure must be visible (rate significantly on the wrong side)
    return wrong_side < 0.05, msg


def check(case: Calibration, n_reps: int | None = None, seed: int = 0) -> None:
    """Assert that ``case`` holds its claim (for the test suite)."""
    k, n = run(case, n_reps, seed)
    ok, msg = verdict(case, k, n)
    assert ok, msg
