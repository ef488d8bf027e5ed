"""Size and coverage of ``ricci.compare`` under simulated truths (cases in ``cases_ricci``)."""

from __future__ import annotations

import _calib
import cases_ricci  # noqa: F401 (registers the cases)
import pytest

RICCI_CASES = _calib.cases_of("cases_ricci")


@pytest.mark.parametrize("case", RICCI_CASES, ids=[c.name for c in RICCI_CASES])
def test_calibration(case):
    _calib.check(case, seed=0)


def test_every_reported_p_value_has_a_size_case():
    """Issue 17: each p-value compare reports is calibrated under independence, twice."""
    from brainalign.ricci import _compare as C

    size = [c for c in RICCI_CASES if c.kind == "size"]
    for stat in C.TESTED:
        designs = {c.name.split(", ")[-1] for c in size if f" {stat}_p," in c.name}
        assert designs == {"gaussian", "clustered"}, stat
    coverage = [c for c in RICCI_CASES if c.kind == "coverage"]
    for stat in C.DESCRIPTIVE:
        designs = {c.name.split(", ")[-1] for c in coverage if f" {stat} " in c.name}
        assert designs == {"related systems", "independent systems"}, stat
    assert all(c.expect == "valid" for c in RICCI_CASES)
