import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign import SchemaError


def test_responses_builds_schema(rng):
    values = rng.normal(size=(4, 5))
    da = ba.responses(
        values,
        ["w", "x", "y", "z"],
        feature_dim="voxel",
        category=["a", "a", "b", "b"],
        roi=("voxel", list("vvvvv")),
        modality="fmri",
        subject="01",
    )
    assert da.dims == ("stimulus", "voxel")
    assert list(da.stimulus.values) == ["w", "x", "y", "z"]
    assert da.category.dims == ("stimulus",)
    assert da.roi.dims == ("voxel",)
    assert da.attrs["modality"] == "fmri" and da.attrs["subject"] == "01"
    assert "brainalign_version" in da.attrs
    np.testing.assert_array_equal(da.values, values)


def test_default_ids_and_numeric_ids_become_strings():
    da = ba.responses(np.zeros((3, 2)))
    assert list(da.stimulus.values) == ["0", "1", "2"]
    da = ba.responses(np.zeros((2, 2)), [10, 20])
    assert list(da.stimulus.values) == ["10", "20"]


def test_trials_and_nd():
    da = ba.responses(
        np.zeros((4, 3, 5)),
        ["a", "b", "a", "b"],
        sample_dim="trial",
        dims=("trial", "channel", "time"),
        time=np.linspace(0, 0.4, 5),
        run=("trial", [1, 1, 2, 2]),
    )
    assert da.dims == ("trial", "channel", "time")
    assert list(da.stimulus.values) == ["a", "b", "a", "b"]
    assert da.time.dims == ("time",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"values": np.zeros((3, 2)), "stimulus": ["a", "a", "b"]},
            r"stimulus ids must be unique.*duplicated: 'a'.*sample_dim='trial'",
        ),
        (
            {"values": np.zeros((3, 2)), "stimulus": ["a", "b"]},
            r"stimulus has 2 ids but the data has 3 rows",
        ),
        ({"values": np.zeros((2, 2, 2))}, r"values has 3 dims .*pass dims="),
        (
            {"values": np.zeros((2, 3)), "dims": ("unit", "stimulus")},
            r"The first dim must be 'stimulus'",
        ),
        (
            {"values": np.zeros((2, 3)), "category": [1, 2, 3, 4]},
            r"Coordinate 'category' has 4 values but no dim has that length",
        ),
        (
            {"values": np.zeros((2, 2)), "category": ["a", "b"]},
            r"matches dims \['stimulus', 'unit'\]; pass category=\(dim, values\)",
        ),
        ({"values": np.zeros((2, 2)), "stimulus": ["a", ""]}, r"empty ids at positions 1"),
        (
            {"values": np.zeros((2, 2)), "modality": "pet"},
            r"Invalid value for the \"data.attrs\['modality'\]\" parameter.*got 'pet'",
        ),
        ({"values": np.array([["a", "b"], ["c", "d"]])}, r"values must be numeric, got dtype <U1"),
    ],
)
def test_responses_errors(kwargs, match):
    with pytest.raises((SchemaError, ValueError), match=match):
        ba.responses(**kwargs)


def test_validate_errors():
    with pytest.raises(TypeError, match=r"data must be an xarray.DataArray, got ndarray"):
        ba.validate(np.zeros(3))
    da = xr.DataArray(np.zeros((2, 3)), dims=("stimuli", "unit"))
    with pytest.raises(
        SchemaError,
        match=r"exactly one of the dims 'stimulus' or 'trial'.*"
        r"Did you mean 'stimulus'\?",
    ):
        ba.validate(da)
    da = xr.DataArray(np.zeros((2, 3)), dims=("stimulus", "unit"))
    with pytest.raises(SchemaError, match=r"has a 'stimulus' dim without ids"):
        ba.validate(da)
    da = da.assign_coords(stimulus=[1, 2])
    with pytest.raises(SchemaError, match=r"data.stimulus ids must be strings, got dtype int64"):
        ba.validate(da)
    trials = xr.DataArray(np.zeros((2, 3)), dims=("trial", "unit"))
    with pytest.raises(SchemaError, match=r"'trial' dim but no 'stimulus' coordinate"):
        ba.validate(trials)
    rdm = xr.DataArray(
        np.zeros((2, 2)),
        dims=("stimulus_a", "stimulus_b"),
        coords={"stimulus_a": ["a", "b"], "stimulus_b": ["b", "a"]},
    )
    with pytest.raises(SchemaError, match=r"stimulus_a and stimulus_b ids differ"):
        ba.validate(rdm)
    timed = ba.responses(np.zeros((2, 1, 3)), dims=("stimulus", "channel", "time"))
    timed = timed.assign_coords(time=[0.0, 0.2, 0.1])
    with pytest.raises(SchemaError, match=r"data.time must be strictly increasing"):
        ba.validate(timed)


BAD_IDS = [
    ("a\x00x", r"'a\\x00x' \(a NUL character\)"),
    ("a\x00", r"'a\\x00' \(a NUL character\)"),  # numpy str arrays would drop it silently
    ("a\ud800", r"'a\\ud800' \(a lone surrogate \(not valid UTF-8\)\)"),
]


@pytest.mark.parametrize(("bad", "match"), BAD_IDS)
def test_unstorable_ids_are_refused_at_construction(bad, match):
    # Issue 17: such ids were accepted, then saving failed (h5py: "VLEN strings do not
    # support embedded NULLs"; "surrogates not allowed").
    with pytest.raises(SchemaError, match=r"1 id\(s\) that cannot be saved .*" + match):
        ba.responses(np.eye(2), [bad, "b"])
    with pytest.raises(SchemaError, match=match):
        ba.responses(np.eye(3), [bad, "b", bad + "2"], sample_dim="trial")


@pytest.mark.parametrize(("bad", "match"), BAD_IDS)
def test_unstorable_ids_are_refused_by_validate_and_rdm_builders(bad, match):
    ids = np.array([bad, "b", "c"], dtype=object)
    da = xr.DataArray(np.eye(3), dims=("stimulus", "unit"), coords={"stimulus": ids})
    with pytest.raises(SchemaError, match=r"data\.stimulus holds 1 id\(s\) .*" + match):
        ba.validate(da)
    with pytest.raises(SchemaError, match=match):
        ba.rsa.rdm(da)
    rdm = xr.DataArray(
        np.zeros((3, 3)),
        dims=("stimulus_a", "stimulus_b"),
        coords={"stimulus_a": ids, "stimulus_b": ids},
    )
    with pytest.raises(SchemaError, match=r"rdm_a\.stimulus_a holds 1 id\(s\) .*" + match):
        ba.rsa.compare(rdm, rdm)


def test_storable_unicode_ids_are_kept(tmp_path):
    ids = ["café", "猫", "a b", "emoji \U0001f600"]
    da = ba.responses(np.eye(4), ids)
    back = ba.load(ba.save(da, tmp_path / "u.nc"))
    assert back.stimulus.values.tolist() == ids
