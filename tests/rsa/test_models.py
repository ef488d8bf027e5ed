import numpy as np
import pytest

from brainalign import rsa


def test_categorical_matches_rsatoolbox():
    from rsatoolbox.rdm import get_categorical_rdm

    labels = ["a", "b", "a", "c", "b"]
    ref = get_categorical_rdm(labels).get_matrices()[0]
    np.testing.assert_array_equal(rsa.categorical_rdm(labels).values, ref)


def test_categorical_from_groups_in_given_order():
    r = rsa.categorical_rdm(
        {"animal": ["cat", "dog"], "tool": ["saw"]}, stimulus=["saw", "cat", "dog"]
    )
    assert list(r.stimulus_a.values) == ["saw", "cat", "dog"]
    assert list(r.category_a.values) == ["tool", "animal", "animal"]
    np.testing.assert_array_equal(r.values, [[0, 1, 1], [1, 0, 0], [1, 0, 0]])


def test_categorical_errors():
    with pytest.raises(ValueError, match=r"stimulus 'cat' is in two categories: 'a' and 'b'"):
        rsa.categorical_rdm({"a": ["cat"], "b": ["cat"]})
    with pytest.raises(ValueError, match=r"No category holds the stimulus id\(s\) 'cow'"):
        rsa.categorical_rdm({"a": ["cat"]}, stimulus=["cat", "cow"])
