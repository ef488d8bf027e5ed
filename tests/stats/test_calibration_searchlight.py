"""Size of the searchlight and time-resolved permutation tests (cases in ``cases_searchlight``)."""

from __future__ import annotations

import _calib
import cases_searchlight  # noqa: F401 (registers the cases)
import pytest

SEARCHLIGHT_CASES = _calib.cases_of("cases_searchlight")


@pytest.mark.parametrize("case", SEARCHLIGHT_CASES, ids=[c.name for c in SEARCHLIGHT_CASES])
def test_calibration(case):
    _calib.check(case, seed=0)


def test_the_cases_are_registered():
    assert len(SEARCHLIGHT_CASES) == 4
    assert all(c.kind == "size" and c.expect == "valid" and c.null for c in SEARCHLIGHT_CASES)
