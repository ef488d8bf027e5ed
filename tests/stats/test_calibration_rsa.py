"""Size and coverage of RSA inference under simulated truths (cases in ``cases_rsa``)."""

from __future__ import annotations

import _calib
import cases_rsa
import numpy as np
import pytest

RSA_CASES = _calib.cases_of("cases_rsa")


@pytest.mark.parametrize("case", RSA_CASES, ids=[c.name for c in RSA_CASES])
def test_calibration(case):
    _calib.check(case, seed=0)


def test_the_cases_are_registered():
    names = [c.name for c in RSA_CASES]
    assert len(names) == 11
    liberal = [c for c in RSA_CASES if c.expect == "liberal"]
    assert {c.name for c in liberal} == {
        "rsa.test resample='subject' zero, stimuli sampled",
        "rsa.test resample='subject' pairwise, stimuli sampled",
    }
    assert all('resample="both"' in c.instead for c in liberal)


def test_population_correlation_matches_monte_carlo():
    """The closed-form truth of the coverage case against 200,000 independent stimulus pairs."""
    rng = np.random.default_rng(99)
    b1, m1 = cases_rsa._ci_patterns(rng, 200_000)
    b2, m2 = cases_rsa._ci_patterns(rng, 200_000)
    db = ((b1 - b2) ** 2).sum(-1)
    dm = ((m1 - m2) ** 2).sum(-1)
    mc = [np.corrcoef(db, dm[k])[0, 1] for k in range(3)]
    np.testing.assert_allclose(cases_rsa.population_correlation(), mc, atol=0.01)
