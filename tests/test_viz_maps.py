"""Brain maps (nilearn) and time courses drawn from real results."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

import brainalign as ba
from brainalign import rsa, viz
from brainalign.datasets import data_dir

MASK = data_dir() / "haxby2001" / "mask.nii.gz"
GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}


def test_searchlight_map_on_the_haxby_slice(haxby):
    from nilearn import image

    maps = rsa.searchlight(ba.average_trials(haxby), rsa.categorical_rdm(GROUPS), radius=8.0)
    mean = image.mean_img(str(data_dir() / "haxby2001" / "bold.nii.gz"), copy_header=True)
    fig = viz.plot_brain_map(maps, MASK, bg_img=mean, threshold=0.2, title="category model")
    # the figure holds the slice image and a colour bar spanning the map's range
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert images, "no image drawn"
    drawn = np.ma.compressed(images[-1].get_array())
    assert np.nanmax(np.abs(drawn)) == pytest.approx(np.nanmax(np.abs(maps.values)), rel=1e-3)
    with pytest.raises(
        ba.SchemaError,
        match=r"plot_brain_map needs one map with dims "
        r"\('voxel',\); got \('voxel', 'extra'\)",
    ):
        viz.plot_brain_map(maps.expand_dims(extra=[0]).transpose("voxel", "extra"), MASK)


def test_glass_brain_draws(haxby):
    fig = viz.plot_glass_brain(haxby.isel(trial=0), MASK, title="one volume")
    assert len(fig.axes) >= 3  # sagittal, coronal, axial (+ colour bar)


def test_time_course_with_bands_and_marks():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(8)]
    signal = rng.normal(size=(8, 5))
    values = rng.normal(size=(8, 6, 12)) * 0.5
    values[:, :5, 6:] += signal[:, :, None]  # the model's structure appears from t = 0.6 s
    data = ba.responses(
        values, ids, dims=("stimulus", "channel", "time"), time=np.round(np.arange(12) * 0.1, 1)
    )
    model = rsa.rdm(ba.responses(signal, ids))
    res = rsa.time_resolved(data, {"model": model}, n_permutations=200, seed=0)
    fig = viz.plot_time_course(res)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), res.similarity.sel(model="model").values)
    assert len(ax.collections) == 1  # the permutation band
    sig = res.p_value_corrected.sel(model="model").values < 0.05
    assert sig[6:].sum() >= 4  # the planted structure (from 0.6 s) is found
    marks = ax.get_lines()[1]  # one dot per significant time point
    np.testing.assert_allclose(marks.get_xdata(), res.time.values[sig])
    with pytest.raises(ba.SchemaError, match=r"needs the Dataset of brainalign.rsa.time_resolved"):
        viz.plot_time_course(res.similarity)
    # publication sizes, as for the other viz functions (tests/test_viz_publication.py)
    assert viz.plot_time_course(res, size="column").get_size_inches()[0] == pytest.approx(3.5)
    w, h = viz.plot_time_course(res, size=(5.0, 2.0)).get_size_inches()
    assert (w, h) == pytest.approx((5.0, 2.0))
    w, h = viz.plot_time_courses(res, size="two-column").get_size_inches()
    w0, h0 = viz.plot_time_courses(res).get_size_inches()
    assert w == pytest.approx(7.2) and h / w == pytest.approx(h0 / w0)


@pytest.mark.parametrize("size", ["column", "two-column", 5.0])
def test_brain_maps_take_publication_sizes(haxby, size):
    width = {"column": 3.5, "two-column": 7.2}.get(size, size)
    vol = haxby.isel(trial=0)
    for fig in (
        viz.plot_brain_map(vol, MASK, size=size),
        viz.plot_glass_brain(vol, MASK, size=size),
    ):
        assert fig.get_size_inches()[0] == pytest.approx(width)
    with pytest.raises(ValueError, match=r"size must be 'column'.*got 'colum'"):
        viz.plot_brain_map(vol, MASK, size="colum")


def _wholebrain_map():
    from brainalign.datasets import load_haxby_wholebrain

    wb = load_haxby_wholebrain(runs=[1, 2, 3, 4])
    return rsa.searchlight(ba.average_trials(wb), rsa.categorical_rdm(GROUPS), radius=40.0)


WB_MASK = (
    data_dir() / "haxby2001" / "openfmri_sub001" / "sub001" / "masks" / "25mm" / "brain.nii.gz"
)


def test_surface_and_glass_brain_of_a_whole_brain_map():
    import matplotlib.pyplot as plt

    maps = _wholebrain_map()
    before = plt.get_fignums()
    fig = viz.plot_surface_map(maps, WB_MASK, title="category model")
    surfaces = [ax for ax in fig.axes if ax.name == "3d"]
    assert [ax.get_title() for ax in surfaces] == [
        "left lateral",
        "left ventral",
        "right lateral",
        "right ventral",
    ]
    assert all(ax.collections for ax in surfaces)  # a mesh drawn in every panel
    # the symmetric colour scale is set by the projected values, which are averages of
    # interpolated voxel values, so it never exceeds the map's largest absolute value
    cbar = next(ax for ax in fig.axes if ax.name != "3d")
    low, high = cbar.get_ylim()
    assert low == pytest.approx(-high)
    assert 0 < high <= float(np.abs(maps).max()) + 1e-12
    fig = viz.plot_surface_map(maps, WB_MASK, views=("medial",), hemispheres=("right",))
    assert [ax.get_title() for ax in fig.axes if ax.name == "3d"] == ["right medial"]
    glass = viz.plot_glass_brain(maps, WB_MASK, title="category model")
    assert len(glass.axes) >= 3
    assert plt.get_fignums() == before  # nothing registered with pyplot


def test_surface_and_glass_brain_errors(haxby):
    maps = _wholebrain_map()
    no_grid = maps.drop_vars(["i", "j", "k"])
    for func in (viz.plot_surface_map, viz.plot_glass_brain):
        name = func.__name__
        with pytest.raises(
            ba.SchemaError,
            match=rf"{name}: values is not on an image grid: it needs the voxel-index "
            r"coordinates i/j/k .*missing 'i', 'j', 'k'",
        ):
            func(no_grid, WB_MASK)
        with pytest.raises(
            ba.SchemaError,
            match=rf"{name}: values must be one map with dims \('voxel',\); got dims "
            r"\('model', 'voxel'\)",
        ):
            func(maps.expand_dims(model=["a", "b"]), WB_MASK)
        with pytest.raises(
            ba.SchemaError, match=rf"{name}: values must be an xarray.DataArray .*got ndarray"
        ):
            func(maps.values, WB_MASK)
        # a map of the 40 x 20 x 1 slice on the 6 x 10 x 10 whole-brain grid
        with pytest.raises(
            ba.SchemaError,
            match=rf"{name}: values' voxel indices i/j/k \(up to \(\d+, \d+, 0\)\) fall "
            r"outside the grid of like, shape \(6, 10, 10\)",
        ):
            func(haxby.isel(trial=0), WB_MASK)
    with pytest.raises(
        ba.SchemaError,
        match=r"plot_surface_map: like must be a 3-D volume covering the brain .*got a grid "
        r"of shape \(40, 20, 1\)",
    ):
        viz.plot_surface_map(haxby.isel(trial=0), MASK)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for the 'views' parameter. Allowed values are 'lateral', .*"
        r"got 'ventrale'",
    ):
        viz.plot_surface_map(maps, WB_MASK, views=("ventrale",))
    with pytest.raises(ValueError, match=r"'hemispheres' parameter.*got 'both'"):
        viz.plot_surface_map(maps, WB_MASK, hemispheres=("both",))


def _overlaps(fig, title):
    """The L/R markers (and other texts) of the displays whose box overlaps the title's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = title.get_window_extent(renderer)
    hits = []
    for ax in fig.axes:
        for t in ax.texts:
            if t.get_text().strip() and t.get_window_extent(renderer).overlaps(box):
                hits.append(t.get_text())
    return hits


def _title(fig, text):
    return next(t for t in fig.texts if t.get_text() == text)


def test_brain_map_with_corrected_panel_and_a_title_clear_of_the_markers(haxby):
    maps = haxby.isel(trial=0, drop=True)  # any map over the slice's voxels
    significant = maps > float(np.nanquantile(maps.values, 0.9))
    n = int(significant.sum())
    fig = viz.plot_brain_map(
        maps, MASK, bg_img=MASK, title="vt vs category model", significant=significant,
        significant_label="p_FWE ≤ 0.05",
    )  # fmt: skip
    labels = [t.get_text() for t in fig.texts]
    assert "unthresholded" in labels and f"thresholded: p_FWE ≤ 0.05 ({n} voxels)" in labels
    assert _overlaps(fig, _title(fig, "vt vs category model")) == []
    markers = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert markers.count("L") == 2 and markers.count("R") == 2  # one pair per display
    # the lower display keeps exactly the significant voxels, on the upper one's colour scale
    images = [im for ax in fig.axes for im in ax.get_images()]
    stat = [im for im in images if im.get_cmap().name != "gray"]
    assert len(stat) == 2 and stat[0].norm.vmax == stat[1].norm.vmax
    kept = np.ma.compressed(stat[1].get_array())
    assert kept.size == n
    assert_allclose(np.sort(kept), np.sort(maps.values[significant.values]), rtol=1e-6)
    with pytest.raises(
        ba.SchemaError,
        match=r"plot_brain_map: significant must be a boolean DataArray with dims \('voxel',\) "
        r"over the map's 530 voxels; got dims \('voxel',\) and 3 voxels",
    ):
        viz.plot_brain_map(maps, MASK, significant=significant.isel(voxel=[0, 1, 2]))


def test_glass_brain_title_clear_of_the_markers_and_an_empty_corrected_panel():
    from brainalign.datasets import load_haxby_wholebrain, wholebrain_mask_path

    wb = load_haxby_wholebrain().isel(trial=0)
    fig = viz.plot_glass_brain(
        wb, wholebrain_mask_path("brain"), title="whole brain, one block",
        significant=xr.zeros_like(wb, dtype=bool), significant_label="p_FWE ≤ 0.05",
    )  # fmt: skip
    assert _overlaps(fig, _title(fig, "whole brain, one block")) == []
    labels = [t.get_text() for t in fig.texts]
    assert "thresholded: p_FWE ≤ 0.05: no voxel survives" in labels
    with pytest.raises(
        ba.SchemaError, match=r"plot_glass_brain: significant must be.*got ndarray"
    ):
        viz.plot_glass_brain(wb, wholebrain_mask_path("brain"), significant=np.ones(129, bool))
