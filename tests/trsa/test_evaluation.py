"""Nearest-centroid identification (the paper's evaluation) against scikit-learn."""

import numpy as np
import pytest
import xarray as xr
from sklearn.neighbors import NearestCentroid

from brainalign import trsa
from brainalign.data._schema import RDM_DIMS


def _design(rng, n_groups=5, n_classes=4, n=9, noise=0.6):
    base = rng.normal(size=(n_classes, n, 3))
    pts = base[None] + noise * rng.normal(size=(n_groups, n_classes, n, 3))
    mats = np.linalg.norm(pts[..., :, None, :] - pts[..., None, :, :], axis=-1)
    ids = [f"s{i}" for i in range(n)]
    return xr.DataArray(
        mats,
        dims=("seed", "layer", *RDM_DIMS),
        coords={
            "seed": np.arange(n_groups),
            "layer": [f"L{c}" for c in range(n_classes)],
            RDM_DIMS[0]: ids,
            RDM_DIMS[1]: ids,
        },
    )


def _sklearn_loo(vecs, groups, classes):
    """doerlbh/TopologicalRSA utils_stats.loo_eval, ported (sklearn NearestCentroid)."""
    labels, preds = [], []
    for g in np.unique(groups):
        test, train = groups == g, groups != g
        clf = NearestCentroid().fit(vecs[train], classes[train])
        labels += list(classes[test])
        preds += list(clf.predict(vecs[test]))
    return np.mean(np.array(labels) == np.array(preds))


def _flat(da, pairs=None):
    i, j = np.triu_indices(da.sizes[RDM_DIMS[0]], k=1)
    v = np.asarray(da.transpose("seed", "layer", *RDM_DIMS).values)[..., i, j]
    return v if pairs is None else v[..., pairs]


# float32: an accuracy k / n returned in float32 is rounded once: eps32 / 2 (x 2)
ACC32 = float(np.finfo(np.float32).eps)


def test_identification_equals_sklearn_loo(rng, tol):
    da = _design(rng)
    vecs = _flat(da)
    g, c = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    ref = _sklearn_loo(vecs.reshape(20, -1), g.ravel(), c.ravel())
    assert 0.2 < ref < 1  # an informative case
    atol = tol(float64=1e-12, float32=ACC32)
    assert trsa.identification_accuracy(da, "layer", "seed") == pytest.approx(ref, abs=atol)
    # dim order does not matter
    swapped = da.transpose(RDM_DIMS[1], "layer", RDM_DIMS[0], "seed")
    assert trsa.identification_accuracy(swapped, "layer", "seed") == pytest.approx(ref)


@pytest.mark.filterwarnings("ignore:self.within_class_std_dev_")  # sklearn, duplicated draws
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_bootstrap_equals_explicit_resampling(rng, tol):
    da = _design(rng)
    boots = trsa.identification_accuracy(da, "layer", "seed", n_bootstrap=3, seed=7)
    assert boots.dims == ("bootstrap",)
    draw = np.random.default_rng(7)
    n = da.sizes[RDM_DIMS[0]]
    index = np.zeros((n, n), int)
    i, j = np.triu_indices(n, k=1)
    index[i, j] = index[j, i] = np.arange(len(i))
    vecs = _flat(da)
    for b in range(3):
        groups = draw.integers(0, 5, 5)
        while len(set(groups)) < 2:  # documented: redrawn
            groups = draw.integers(0, 5, 5)
        stims = draw.integers(0, n, n)
        pairs = [
            index[stims[p], stims[q]] for p, q in zip(i, j, strict=True) if stims[p] != stims[q]
        ]
        x = vecs[groups][..., pairs]  # (draws, classes, pairs)
        labels, preds = [], []
        for d in range(5):  # leave draw d out; its copies stay out of training
            train = groups != groups[d]
            if not train.any():
                continue
            xt = x[train].reshape(-1, len(pairs))
            ct = np.tile(np.arange(4), train.sum())
            clf = NearestCentroid().fit(xt, ct)
            labels += list(range(4))
            preds += list(clf.predict(x[d]))
        ref = np.mean(np.array(labels) == np.array(preds))
        assert boots.values[b] == pytest.approx(ref, abs=tol(float64=1e-12, float32=ACC32))
    same = trsa.identification_accuracy(
        da, "layer", "seed", n_bootstrap=2, groups=False, stimuli=False
    )
    np.testing.assert_allclose(same.values, trsa.identification_accuracy(da, "layer", "seed"))


def test_grid_identification_equals_per_cell(rng):
    da = _design(rng, noise=0.4)
    cells = [[0.2, 0.8], [0.4, 0.6], [0.0, 1.0]]
    got = trsa.grid_identification(da, "layer", "seed", grid=cells)
    for c, (lo, up) in enumerate(cells):
        ref = trsa.identification_accuracy(trsa.rgtm(da, lo, up), "layer", "seed")
        assert got.values[c] == pytest.approx(ref, abs=1e-12)
    geo = trsa.grid_identification(da, "layer", "seed", transform="rgdm", grid=[[0.0, 0.3]])
    ref = trsa.identification_accuracy(trsa.rgdm(da, 0.0, 0.3), "layer", "seed")
    assert geo.values[0] == pytest.approx(ref, abs=1e-12)
    boots = trsa.grid_identification(da, "layer", "seed", grid=cells, n_bootstrap=2, seed=3)
    assert boots.dims == ("threshold", "bootstrap")
    for c, (lo, up) in enumerate(cells):
        ref = trsa.identification_accuracy(
            trsa.rgtm(da, lo, up), "layer", "seed", n_bootstrap=2, seed=3
        )
        np.testing.assert_allclose(boots.values[c], ref.values, atol=1e-12)


def test_identification_errors(rng):
    da = _design(rng)
    with pytest.raises(ValueError, match=r"'class_dim' parameter.*got 'layr'.*'layer'"):
        trsa.identification_accuracy(da, "layr", "seed")
    with pytest.raises(ValueError, match=r"two different leading dims.*class_dim='layer'"):
        trsa.identification_accuracy(da, "layer", "layer")
    with pytest.raises(ValueError, match=r"at least 2 groups \('seed'\).*has 1 and 4"):
        trsa.identification_accuracy(da.isel(seed=[0]), "layer", "seed")
    with pytest.raises(ValueError, match=r"n_bootstrap must be in the range \[0, inf\), got -1"):
        trsa.identification_accuracy(da, "layer", "seed", n_bootstrap=-1)
    with pytest.raises(ValueError, match=r"got dims \('extra', 'seed'"):
        trsa.identification_accuracy(da.expand_dims(extra=2), "layer", "seed")
