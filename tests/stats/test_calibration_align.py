"""Size and coverage of brainalign.align's inference (cases in ``cases_align``)."""

from __future__ import annotations

import _calib
import cases_align
import pytest

ALIGN_CASES = _calib.cases_of("cases_align")


@pytest.mark.parametrize("case", ALIGN_CASES, ids=[c.name for c in ALIGN_CASES])
def test_calibration(case):
    _calib.check(case, seed=0)


def test_the_cases_are_registered():
    assert len(ALIGN_CASES) == (4 if cases_align.HAS_CKA else 3)
    assert all(c.null for c in ALIGN_CASES)
    assert {c.kind for c in ALIGN_CASES} == {"size", "coverage"}


def test_the_inline_cka_is_linear_cka():
    """The callable's CKA against the closed form on one data set (1 for a rotated copy)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4))
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a = cases_align._patterns(x, ("stimulus", "unit"))
    b = cases_align._patterns((x @ q * 3.0)[None], ("subject", "stimulus", "unit"))
    assert float(cases_align.linear_cka(a, b)[0]) == pytest.approx(1.0)
    shuffled = b.isel(stimulus=rng.permutation(10))
    assert float(cases_align.linear_cka(a, shuffled)[0]) == pytest.approx(1.0)
