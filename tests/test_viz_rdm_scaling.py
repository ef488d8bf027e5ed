"""plot_rdm and plot_rdms share their default scaling (issue 21)."""

import numpy as np
import pytest

import brainalign as ba
from brainalign import viz


@pytest.fixture
def rdm(rng):
    return ba.rsa.rdm(ba.responses(rng.normal(size=(6, 4)), list("abcdef")), "euclidean")


def _image(fig, k=0):
    (im,) = fig.axes[k].get_images()
    return im


def _colorbar_label(fig):
    return fig.axes[-1].get_ylabel()


def _percentiles(mat):
    """Reference: mid-rank percentiles of the off-diagonal entries, from their definition.

    Entry x gets (#{y < x} + #{y <= x} + 1) / 2 / n * 100 over the n finite off-diagonal
    entries (the average rank of ties, as a percentage); the diagonal is 0.
    """
    off = ~np.eye(len(mat), dtype=bool) & np.isfinite(mat)
    vals = mat[off]
    less = (vals[None, :] < vals[:, None]).sum(1)
    less_eq = (vals[None, :] <= vals[:, None]).sum(1)
    out = np.full(mat.shape, np.nan)
    out[off] = (less + less_eq + 1) / 2 / vals.size * 100
    out[np.eye(len(mat), dtype=bool)] = 0
    return out


def test_default_scaling_is_the_same(rdm):
    one = viz.plot_rdm(rdm)
    many = viz.plot_rdms({"brain": rdm})
    assert _image(one).get_clim() == _image(many).get_clim() == (0.0, 100.0)
    np.testing.assert_array_equal(_image(one).get_array(), _image(many).get_array())
    assert _colorbar_label(one) == _colorbar_label(many) == "percentile rank"


def test_default_is_percentile_ranks(rdm):
    shown = np.ma.filled(_image(viz.plot_rdm(rdm)).get_array(), np.nan)
    # equal to 1e-12: both are ratios of small integers
    np.testing.assert_allclose(shown, _percentiles(rdm.values), rtol=0, atol=1e-12)


def test_raw_scaling_is_the_same(rdm):
    one = viz.plot_rdm(rdm, rank=False)
    many = viz.plot_rdms({"brain": rdm}, rank=False)
    expected = (float(np.nanmin(rdm.values)), float(np.nanmax(rdm.values)))
    assert _image(one).get_clim() == _image(many).get_clim() == expected
    np.testing.assert_array_equal(_image(one).get_array(), rdm.values)


def test_panels_share_limits_and_limits_can_be_set(rdm):
    fig = viz.plot_rdms({"a": rdm, "b": 3 * rdm}, rank=False, ncols=2)
    expected = (0.0, float(3 * rdm.values.max()))
    assert _image(fig, 0).get_clim() == _image(fig, 1).get_clim() == expected
    assert _image(viz.plot_rdm(rdm, vmin=1, vmax=2)).get_clim() == (1.0, 2.0)
    fig = viz.plot_rdms({"a": rdm}, vmin=10, vmax=90)
    assert _image(fig).get_clim() == (10.0, 90.0)


def test_unrated_pairs_stay_blank(rdm):
    mat = rdm.values.copy()
    mat[0, 1] = mat[1, 0] = np.nan
    for fig in (viz.plot_rdm(mat), viz.plot_rdms({"x": mat})):
        shown = _image(fig).get_array()
        assert shown.mask[0, 1] and shown.mask[1, 0] and shown.mask.sum() == 2
        np.testing.assert_allclose(np.ma.filled(shown, np.nan), _percentiles(mat), atol=1e-12)
