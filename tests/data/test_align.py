import numpy as np
import pytest

import brainalign as ba
from brainalign import StimulusAlignmentError
from brainalign.rsa import rdm


def test_exact_reorders_to_first_array(rng):
    a = ba.responses(rng.normal(size=(3, 4)), ["x", "y", "z"])
    b = ba.responses(rng.normal(size=(3, 2)), ["z", "x", "y"])
    a2, b2 = ba.align_stimuli(a, b)
    assert list(b2.stimulus.values) == ["x", "y", "z"]
    np.testing.assert_array_equal(b2.sel(stimulus="z").values, b.values[0])
    np.testing.assert_array_equal(a2.values, a.values)


def test_exact_error_names_missing_and_extra_ids():
    a = ba.responses(np.eye(3), ["cat", "dog", "car"])
    b = ba.responses(np.eye(3), ["cat", "dog", "bus"])
    with pytest.raises(
        StimulusAlignmentError,
        match=r"arrays\[1\] has missing 1 id\(s\) of arrays\[0\]: 'car'; "
        r"1 extra id\(s\): 'bus'",
    ):
        ba.align_stimuli(a, b)


def test_inner_join_and_rdm_alignment(rng):
    a = ba.responses(rng.normal(size=(4, 5)), ["a", "b", "c", "d"])
    b = ba.responses(rng.normal(size=(3, 5)), ["d", "b", "e"])
    a2, b2 = ba.align_stimuli(a, b, join="inner")
    assert list(a2.stimulus.values) == ["b", "d"] == list(b2.stimulus.values)
    ra = rdm(a)
    rb = rdm(a.isel(stimulus=[3, 2, 1, 0]))
    ra2, rb2 = ba.align_stimuli(ra, rb)
    np.testing.assert_allclose(ra2.values, rb2.values)


def test_inner_join_without_common_ids():
    with pytest.raises(StimulusAlignmentError, match=r"share no stimulus id"):
        ba.align_stimuli(
            ba.responses(np.eye(2), ["a", "b"]), ba.responses(np.eye(2), ["c", "d"]), join="inner"
        )


def test_trials_are_kept_per_stimulus():
    t = ba.responses(np.arange(8.0).reshape(4, 2), ["a", "b", "c", "a"], sample_dim="trial")
    s = ba.responses(np.eye(2), ["a", "c"])
    t2, _ = ba.align_stimuli(t, s, join="inner")
    assert list(t2.stimulus.values) == ["a", "c", "a"]


def test_bad_join():
    with pytest.raises(ValueError, match=r"'join' parameter.*'exact', 'inner'; got 'outer'"):
        ba.align_stimuli(ba.responses(np.eye(2)), join="outer")


def test_average_trials_matches_groupby(rng):
    values = rng.normal(size=(6, 3))
    t = ba.responses(
        values,
        ["b", "a", "b", "a", "c", "b"],
        sample_dim="trial",
        feature_dim="voxel",
        run=("trial", [1, 1, 2, 2, 3, 3]),
        category=("trial", ["x", "y", "x", "y", "x", "x"]),
        modality="fmri",
    )
    avg = ba.average_trials(t)
    assert avg.dims == ("stimulus", "voxel")
    assert list(avg.stimulus.values) == ["b", "a", "c"]  # order of first appearance
    # reference: pandas-free numpy means
    np.testing.assert_allclose(avg.sel(stimulus="b").values, values[[0, 2, 5]].mean(0))
    np.testing.assert_allclose(avg.sel(stimulus="a").values, values[[1, 3]].mean(0))
    assert list(avg.n_trials.values) == [3, 2, 1]
    assert list(avg.category.values) == ["x", "y", "x"]  # constant within stimulus: kept
    assert "run" not in avg.coords  # varies within stimulus: dropped
    assert avg.attrs["modality"] == "fmri"


def test_average_trials_skipna_and_errors():
    values = np.array([[1.0, np.nan], [3.0, 4.0]])
    t = ba.responses(values, ["a", "a"], sample_dim="trial")
    assert np.isnan(ba.average_trials(t).values[0, 1])
    np.testing.assert_allclose(ba.average_trials(t, skipna=True).values, [[2.0, 4.0]])
    with pytest.raises(ba.SchemaError, match=r"average_trials needs a 'trial' dim"):
        ba.average_trials(ba.responses(np.eye(2)))
