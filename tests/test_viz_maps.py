"""Brain maps (nilearn) and time courses drawn from real results."""

import numpy as np
import pytest

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
