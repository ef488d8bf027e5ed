import numpy as np
import pytest
import xarray as xr

import brainalign as ba


@pytest.fixture
def rich_array(rng):
    da = ba.responses(
        rng.normal(size=(4, 3)),
        ["a", "b", "c", "d"],
        feature_dim="voxel",
        category=["x", "x", "y", "y"],
        x=("voxel", [1.5, 2.5, 3.5]),
        modality="fmri",
        subject="01",
        tr=2.5,
        n_runs=12,
        name="bold",
    )
    da.attrs.update(
        {
            "flag": True,
            "missing": None,
            "params": {"alpha": [0.1, 1.0], "cv": 5},
            "shape": (4, 3),
            "mask": np.array([1, 0, 1], dtype=np.int16),
        }
    )
    da["voxel"] = ["v0", "v1", "v2"]
    da["x"].attrs["units"] = "mm"
    return da


def test_dataarray_roundtrip_exact(tmp_path, rich_array):
    path = ba.save(rich_array, tmp_path / "a.nc")
    back = ba.load(path)
    xr.testing.assert_identical(back, rich_array)
    assert back.name == "bold"
    assert back.attrs["flag"] is True and back.attrs["missing"] is None
    assert back.attrs["params"] == {"alpha": [0.1, 1.0], "cv": 5}
    assert back.attrs["shape"] == (4, 3)
    assert back.attrs["mask"].dtype == np.int16
    assert back["x"].attrs == {"units": "mm"}
    assert back.dtype == rich_array.dtype


def test_unnamed_dataarray_and_float32(tmp_path):
    da = ba.responses(np.arange(6, dtype=np.float32).reshape(3, 2))
    back = ba.load(ba.save(da, tmp_path / "b.nc"))
    assert back.name is None and back.dtype == np.float32
    xr.testing.assert_identical(back, da)


def test_dataset_and_tree_roundtrip(tmp_path, rich_array):
    ds = xr.Dataset({"bold": rich_array, "mean": rich_array.mean("voxel")}, attrs={"k": [1, 2]})
    back = ba.load(ba.save(ds, tmp_path / "ds.nc"))
    xr.testing.assert_identical(back, ds)
    sim = ba.data.simulate(10, n_layers=2, n_voxels=5, seed=0)
    tree = sim.model
    back = ba.load(ba.save(tree, tmp_path / "tree.nc"))
    assert isinstance(back, xr.DataTree)
    xr.testing.assert_identical(back, tree)


def test_dict_saved_comes_back_as_a_dict(tmp_path, rich_array):
    back = ba.load(
        ba.save({"roi1": rich_array, "nested": {"roi2": rich_array * 2}}, tmp_path / "d.nc")
    )
    assert isinstance(back, dict) and list(back) == ["roi1", "nested"]
    xr.testing.assert_identical(back["roi1"], rich_array)
    np.testing.assert_array_equal(back["nested"]["roi2"].values, rich_array.values * 2)
    assert back["nested"]["roi2"].attrs["params"] == {"alpha": [0.1, 1.0], "cv": 5}


def test_save_is_atomic_and_errors(tmp_path, rich_array):
    target = tmp_path / "x.nc"
    ba.save(rich_array, target)
    bad = rich_array.copy()
    bad.attrs["obj"] = object()
    with pytest.raises(TypeError, match=r"Cannot save attribute value <object object"):
        ba.save(bad, target)
    xr.testing.assert_identical(ba.load(target), rich_array)  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["x.nc"]  # no temp file left
    with pytest.raises(TypeError, match=r"save\(\) takes an xarray DataArray.*got list"):
        ba.save([1, 2], tmp_path / "y.nc")
    with pytest.raises(FileNotFoundError, match=r"No such file: '.*nope.nc'"):
        ba.load(tmp_path / "nope.nc")
    with pytest.raises(
        ValueError, match=r"dict keys must be non-empty str without '/', got 'a/b'"
    ):
        ba.save({"a/b": rich_array}, tmp_path / "z.nc")


def test_saved_file_mode_follows_umask(tmp_path, rich_array):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = ba.save(rich_array, tmp_path / "m.nc")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ------------------------------------------------ files that are not brainalign's (issue 17)
def test_load_reads_netcdf3(tmp_path):
    # NetCDF-3 used to fail with h5py's "file signature not found"; scipy reads it.
    ds = xr.Dataset(
        {"v": (("stimulus", "unit"), np.arange(6.0).reshape(3, 2))},
        coords={"stimulus": ["a", "b", "c"]},
        attrs={"source": "elsewhere"},
    )
    path = tmp_path / "classic.nc"
    ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT")
    assert path.read_bytes()[:4] == b"CDF\x02"
    back = ba.load(path)
    xr.testing.assert_identical(back, ds)
    ba.validate(back["v"])


def test_load_refuses_plain_hdf5_naming_file_and_datasets(tmp_path):
    import h5py

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["responses"] = np.ones((3, 2))
        f["meta/ids"] = np.arange(3)
    with pytest.raises(
        ValueError,
        match=r"'.*plain\.h5' is an HDF5 file without the NetCDF/brainalign schema: its "
        r"dataset\(s\) /meta/ids, /responses have no named dimensions .*h5py.*"
        r"brainalign\.responses",
    ):
        ba.load(path)


@pytest.mark.parametrize(
    ("content", "shown"), [(b"hello world", r"b'hello wo'"), (b"", r"b'\(empty file\)'")]
)
def test_load_refuses_other_formats_naming_the_file(tmp_path, content, shown):
    path = tmp_path / "notes.nc"
    path.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=r"'.*notes\.nc' is not a NetCDF file \(neither NetCDF-4/HDF5 nor NetCDF-3; it "
        rf"starts with {shown}\)",
    ):
        ba.load(path)


def test_load_refuses_a_directory_and_a_truncated_file(tmp_path, rich_array):
    with pytest.raises(ValueError, match=r"'.*' is a directory; .*xarray\.open_zarr"):
        ba.load(tmp_path)
    path = ba.save(rich_array, tmp_path / "full.nc")
    cut = tmp_path / "cut.nc"
    cut.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ValueError, match=r"'.*cut\.nc' starts like an HDF5 .*cannot be read"):
        ba.load(cut)


def test_load_reads_netcdf4_from_other_tools(tmp_path):
    ds = xr.Dataset({"v": ("x", np.arange(3.0))}, coords={"x": [1, 2, 3]})
    path = tmp_path / "other.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    xr.testing.assert_identical(ba.load(path), ds)
