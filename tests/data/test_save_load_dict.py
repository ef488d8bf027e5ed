"""``ba.save(dict)`` then ``ba.load`` gives the dict back (issue 21); DataTrees stay trees."""

import h5py
import numpy as np
import pytest
import xarray as xr

import brainalign as ba
from brainalign.data._io import KIND_KEY


def _array(rng, name="bold", feature_dim="voxel"):
    da = ba.responses(
        rng.normal(size=(4, 3)),
        ["a", "b", "c", "d"],
        feature_dim=feature_dim,
        category=["x", "x", "y", "y"],
        modality="fmri",
        name=name,
    )
    da.attrs.update({"flag": True, "params": {"alpha": [0.1, 1.0]}, "shape": (4, 3)})
    da["stimulus"].attrs["note"] = "ids"
    return da


def _assert_same(back, saved):
    """Same type, same keys in the same order, identical values (names and attrs too)."""
    assert type(back) is type(saved)
    if isinstance(saved, dict):
        assert list(back) == list(saved)
        for k in saved:
            _assert_same(back[k], saved[k])
    elif isinstance(saved, xr.DataTree):
        xr.testing.assert_identical(back, saved)
    else:
        xr.testing.assert_identical(back, saved)
        if isinstance(saved, xr.DataArray):
            assert back.name == saved.name
            assert back.dtype == saved.dtype


def test_dict_of_dataarrays_round_trips(tmp_path, rng):
    rdm = ba.rsa.rdm(rng.normal(size=(5, 3)))
    saved = {
        "roi2": _array(rng),  # keys not in alphabetical order: the order is kept
        "roi1": _array(rng, name=None).astype(np.float32),
        "model": rdm,
        "stim": _array(rng, name="stimulus"),  # a name taken by a coordinate
    }
    back = ba.load(ba.save(saved, tmp_path / "d.nc"))
    assert isinstance(back, dict)
    _assert_same(back, saved)
    assert back["roi2"].attrs["params"] == {"alpha": [0.1, 1.0]}
    assert back["roi2"].attrs["shape"] == (4, 3)
    assert back["roi1"].name is None and back["stim"].name == "stimulus"


def test_dict_of_datasets_round_trips(tmp_path, rng):
    da = _array(rng)
    saved = {
        "sub-01": xr.Dataset({"bold": da, "mean": da.mean("voxel")}, attrs={"k": [1, 2]}),
        "sub-02": xr.Dataset({"bold": 2 * da}),
    }
    back = ba.load(ba.save(saved, tmp_path / "d.nc"))
    _assert_same(back, saved)
    assert back["sub-01"].attrs == {"k": [1, 2]}


def test_nested_and_mixed_dict_round_trips(tmp_path, rng):
    tree = ba.data.simulate(10, n_layers=2, n_voxels=5, seed=0).model
    saved = {
        "brain": {"vt": _array(rng), "v1": {"left": _array(rng, name="l")}},
        "patterns": xr.Dataset({"bold": _array(rng)}),
        "model": tree,
        "empty": {},
    }
    back = ba.load(ba.save(saved, tmp_path / "d.nc"))
    _assert_same(back, saved)
    assert isinstance(back["model"], xr.DataTree) and back["model"].name == tree.name
    assert back["empty"] == {}


def test_empty_dict_round_trips(tmp_path):
    assert ba.load(ba.save({}, tmp_path / "e.nc")) == {}


def test_dict_file_is_plain_netcdf_groups(tmp_path, rng):
    # other NetCDF tools read the groups; only brainalign's marker makes it a dict again
    da = _array(rng)
    path = ba.save({"roi": da}, tmp_path / "d.nc")
    with h5py.File(path, "r") as f:
        assert f.attrs[KIND_KEY] == "dict"
    opened = xr.open_datatree(path, engine="h5netcdf")
    try:
        np.testing.assert_array_equal(opened["roi"]["bold"].values, da.values)
    finally:
        opened.close()


def test_datatree_still_loads_as_datatree(tmp_path):
    tree = ba.data.simulate(10, n_layers=2, n_voxels=5, seed=0).model
    back = ba.load(ba.save(tree, tmp_path / "t.nc"))
    assert isinstance(back, xr.DataTree)
    xr.testing.assert_identical(back, tree)


def test_tree_without_dict_marker_loads_as_datatree(tmp_path, rng):
    # files of other tools (and dicts saved before the marker) keep loading as a DataTree
    da = xr.DataArray(rng.normal(size=(4, 3)), dims=("stimulus", "voxel"), name="bold")
    tree = xr.DataTree(children={"roi": xr.DataTree(dataset=da.to_dataset())})
    tree.to_netcdf(tmp_path / "plain.nc", engine="h5netcdf")
    back = ba.load(tmp_path / "plain.nc")
    assert isinstance(back, xr.DataTree)
    np.testing.assert_array_equal(back["roi"]["bold"].values, da.values)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        ({"a/b": 1}, r"'a/b'"),
        ({"": 1}, r"''"),
        ({"..": 1}, r"'\.\.'"),
        ({3: 1}, r"3"),
        ({"ok": {"x/y": 1}}, r"'x/y' \(in 'ok'\)"),
    ],
)
def test_bad_dict_keys_are_refused(tmp_path, bad, shown):
    with pytest.raises(
        ValueError, match=r"dict keys must be non-empty str without '/', got " + shown
    ):
        ba.save(bad, tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


def test_bad_dict_values_are_refused(tmp_path, rng):
    with pytest.raises(
        TypeError, match=r"save\(\) of a dict takes DataArrays.*key 'a/b' holds list"
    ):
        ba.save({"a": {"b": [1, 2]}}, tmp_path / "x.nc")
