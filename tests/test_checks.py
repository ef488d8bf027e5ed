import numpy as np
import pytest
import xarray as xr

from brainalign._checks import (
    SchemaError,
    check_dims,
    check_finite,
    check_not_constant,
    check_not_empty,
    check_number,
    check_option,
    check_type,
    did_you_mean,
)


def test_check_option_message_has_name_options_value_and_hint():
    with pytest.raises(
        ValueError,
        match=(
            r"Invalid value for the 'metric' parameter\. Allowed values are 'correlation', "
            r"'euclidean'; got 'corelation'\. Did you mean 'correlation'\?"
        ),
    ):
        check_option("metric", "corelation", ("correlation", "euclidean"))
    assert check_option("metric", "euclidean", ("correlation", "euclidean")) == "euclidean"


def test_did_you_mean():
    assert did_you_mean("Spearman", ["spearman", "pearson"]) == " Did you mean 'spearman'?"
    assert did_you_mean("zzz", ["spearman"]) == ""
    assert did_you_mean(3, ["spearman"]) == ""


def test_unhashable_option_value():
    with pytest.raises(ValueError, match=r"got \['a'\]"):
        check_option("x", ["a"], ("a",))


def test_check_type_and_number():
    with pytest.raises(TypeError, match=r"n must be an int, got bool True"):
        check_type("n", True, (int,), "an int")
    with pytest.raises(ValueError, match=r"alpha must be in the range \[0, 1\], got 2"):
        check_number("alpha", 2, low=0, high=1)
    with pytest.raises(ValueError, match=r"k must be in the range \(0, inf\), got 0"):
        check_number("k", 0, low=0, closed="neither", integer=True)
    with pytest.raises(TypeError, match=r"k must be an integer, got float 1.5"):
        check_number("k", 1.5, integer=True)
    with pytest.raises(ValueError, match=r"x must be finite, got nan"):
        check_number("x", float("nan"))
    assert check_number("x", 0.5, low=0, high=1) == 0.5


def test_check_finite_counts_and_rows():
    x = np.ones((4, 3))
    x[1, 0] = np.nan
    x[3, 2] = np.inf
    with pytest.raises(
        ValueError,
        match=(
            r"brain holds 1 NaN and 1 infinite value\(s\) out of 12 in 2 of 4 rows \('b', 'd'\)"
        ),
    ):
        check_finite(x, "brain", labels=["a", "b", "c", "d"])
    check_finite(np.ones(3), "ok")
    check_finite(np.arange(3), "ints")


def test_check_not_constant_and_empty():
    x = np.array([[1.0, 2.0], [3.0, 3.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"data has 1 constant pattern\(s\) \('cat'\)"):
        check_not_constant(x, "data", labels=["dog", "cat", "car"])
    with pytest.raises(ValueError, match=r"data is empty \(shape \(0, 3\)\)"):
        check_not_empty(np.zeros((0, 3)), "data")


def test_check_dims():
    da = xr.DataArray(np.zeros((2, 3)), dims=("stimulus", "unit"))
    check_dims(da, "x", required=("stimulus",), ndim=2)
    with pytest.raises(
        SchemaError,
        match=r"x must have dims \('stimulus', 'voxel'\); it has "
        r"\('stimulus', 'unit'\), missing \('voxel',\)",
    ):
        check_dims(da, "x", required=("stimulus", "voxel"))
    with pytest.raises(SchemaError, match=r"exactly one of the dims \('trial', 'time'\)"):
        check_dims(da, "x", one_of=("trial", "time"))
    with pytest.raises(SchemaError, match=r"x must have 3 dims, got 2"):
        check_dims(da, "x", ndim=3)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (
            ["a", "b"],
            r"An RDM of 2 stimuli has 1 dissimilarity; comparing RDMs needs at least 3 "
            r"stimuli \(3 pairs\); got 2: \['a', 'b'\]\.",
        ),
        (["a"], r"An RDM of 1 stimulus has 0 dissimilarities; .*got 1: \['a'\]\."),
    ],
)
def test_check_min_stimuli_names_the_stimuli(ids, match):
    from brainalign._checks import check_min_stimuli

    with pytest.raises(ValueError, match=match):
        check_min_stimuli(ids, "comparing RDMs")
    check_min_stimuli([*ids, "c", "d"][:3], "comparing RDMs")  # 3 stimuli pass
