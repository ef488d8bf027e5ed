"""Searchlight RSA against mne-rsa 1.0 (same patches, same numbers) and on real Haxby data."""

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist

import brainalign as ba
from brainalign import rsa
from brainalign._checks import SchemaError, StimulusAlignmentError
from brainalign.rsa._noise import noise_precision
from brainalign.rsa._searchlight import mesh_adjacency, searchlight

mne_rsa = pytest.importorskip("mne_rsa")

TOL = {"rtol": 1e-10, "atol": 1e-10}


def _map_tol(tol):
    """Tolerance of a searchlight map (Spearman / Pearson / cosine values in [-1, 1]).

    float32: the data rounded to float32 and patch RDMs from float32 sums of F <= 50
    features (~sqrt(F) eps32 <= 8.5e-7 relative per entry); a correlation with the model
    scales relative entry errors by |mean|/std of the patch's RDM vector (<= 13 on these
    draws) and averages them over its >= 28 pairs: ~2e-6 worst, 4e-6 allowed (observed
    <= 1.5e-7). Spearman needs no near-tied distances that float32 could swap (none in these
    draws: a swap would move it by ~6 / n_pairs**2 >= 3e-3). Also for two float32 maps of the
    same data in other chunks or stimulus orders (fewer error sources, same bound).
    """
    return {"rtol": tol(float64=1e-10, float32=0.0), "atol": tol(float64=1e-10, float32=4e-6)}


def _crossnobis_tol(tol):
    """Tolerance of crossnobis patch RDM entries (the float32 reference against float64).

    float32: sum_{k != l} d_k P d_l = (sum d) P (sum d) - sum_k d_k P d_k cancels; its
    uncancelled terms per voxel reach 12 (4 runs) and 28 (2 runs) on these draws, so entries
    err by ~28 eps32 = 3.3e-6 absolute (observed <= 6.3e-7); the shrinkage precisions
    (cond <= 152) enter through Cholesky solves, backward stable in the quadratic forms.
    """
    return {"rtol": tol(float64=1e-10, float32=0.0), "atol": tol(float64=1e-10, float32=7e-6)}


def _ids(n):
    return [f"s{i}" for i in range(n)]


def _volume(rng, n=10, shape=(5, 4, 3), zooms=(3.0, 3.5, 4.0)):
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk * np.asarray(zooms)
    values = rng.normal(size=(n, len(ijk)))
    da = xr.DataArray(
        values,
        dims=("stimulus", "voxel"),
        coords={
            "stimulus": _ids(n),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
            **{c: ("voxel", ijk[:, k]) for k, c in enumerate("ijk")},
        },
    )
    return da, xyz


def _models(rng, n, k=2):
    out = {}
    for m in range(k):
        r = rsa.rdm(rng.normal(size=(n, 4)))
        out[f"m{m}"] = r.assign_coords(stimulus_a=_ids(n), stimulus_b=_ids(n))
    return out


def _mne(values, models, patches, metric="correlation", method="spearman"):
    ref = mne_rsa.rsa_array(
        values,
        [np.asarray(m) for m in models.values()],
        patches,
        data_rdm_metric=metric,
        rsa_metric=method,
    )
    if len(models) == 1:
        ref = ref[None]
    return np.moveaxis(ref, 0, -1)  # models last


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_volume_matches_mne_rsa(metric, method, rng, tol):
    data, xyz = _volume(rng)
    models = _models(rng, 10)
    got = searchlight(data, models, radius=7.6, metric=metric, method=method)
    patches = mne_rsa.searchlight(data.shape, dist=cdist(xyz, xyz), spatial_radius=7.6)
    ref = _mne(data.values, models, patches, metric, method)
    assert got.dims == ("voxel", "model")
    np.testing.assert_allclose(got.values, ref, **_map_tol(tol))
    np.testing.assert_array_equal(got.model.values, ["m0", "m1"])
    np.testing.assert_array_equal(got.x.values, xyz[:, 0])


def test_volume_radius_is_strict_as_in_mne_rsa(rng, tol):
    # radius 7.0 equals the distance to the voxel two steps along x (3.5 * 2): excluded
    data, xyz = _volume(rng, zooms=(3.5, 3.5, 3.5))
    models = _models(rng, 10, k=1)
    got = searchlight(data, models["m0"], radius=7.0)
    patches = mne_rsa.searchlight(data.shape, dist=cdist(xyz, xyz), spatial_radius=7.0)
    np.testing.assert_allclose(
        got.values, _mne(data.values, models, patches)[:, 0], **_map_tol(tol)
    )
    centre = int(np.flatnonzero((data.i == 2) & (data.j == 2) & (data.k == 1))[0])
    assert int(got.patch_size[centre]) == 27  # the 3x3x3 cube (corners at 6.06 mm)
    wider = searchlight(data, models["m0"], radius=7.01)  # + the 3 voxels at 7 mm in the grid
    assert int(wider.patch_size[centre]) == 30


def test_centers_and_mask_match_mne_rsa(rng, tol):
    data, xyz = _volume(rng)
    models = _models(rng, 10)
    mask = rng.random(data.sizes["voxel"]) < 0.7
    inside = np.flatnonzero(mask)
    centers = inside[::3]
    got = searchlight(data, models, radius=8.0, mask=mask, centers=centers)
    # mne-rsa's rsa_nifti applies a brain mask by dropping the voxels outside it
    sub = xyz[mask]
    sel = np.searchsorted(inside, centers)
    patches = mne_rsa.searchlight(
        (10, len(inside)), dist=cdist(sub, sub), spatial_radius=8.0, sel_series=sel
    )
    ref = _mne(data.values[:, mask], models, patches)
    np.testing.assert_allclose(got.values, ref, **_map_tol(tol))
    np.testing.assert_array_equal(got.i.values, data.i.values[centers])


def test_matches_mne_rsa_nifti(rng, tol):
    nib = pytest.importorskip("nibabel")
    n, shape = 8, (5, 5, 4)
    affine = np.diag([3.0, 3.0, 3.5, 1.0])
    img = nib.Nifti1Image(rng.normal(size=(*shape, n)), affine)
    brain = np.zeros(shape, bool)
    brain[1:, :4, 1:] = True
    models = _models(rng, n, k=1)
    ref = mne_rsa.rsa_nifti(
        img,
        np.asarray(models["m0"]),
        spatial_radius=0.0066,  # metres
        brain_mask=nib.Nifti1Image(brain.astype(np.int8), affine),
    )
    ijk = np.argwhere(brain)
    xyz = nib.affines.apply_affine(affine, ijk)
    data = xr.DataArray(
        img.get_fdata()[brain],
        dims=("voxel", "stimulus"),
        coords={
            "stimulus": _ids(n),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
            **{c: ("voxel", ijk[:, k]) for k, c in enumerate("ijk")},
        },
    )
    got = searchlight(data, models["m0"], radius=6.6)  # millimetres
    np.testing.assert_allclose(got.values, ref.get_fdata()[brain], **_map_tol(tol))
    # the labeled map goes back to an image on the same grid
    from brainalign.loaders.fmri import to_image

    back = to_image(got, img.slicer[..., 0])
    np.testing.assert_allclose(back.get_fdata()[brain], got.values, rtol=1e-6)


def _sensors(rng, n=9, n_channels=10, n_times=14):
    pos = rng.normal(size=(n_channels, 3))
    da = xr.DataArray(
        rng.normal(size=(n, n_channels, n_times)),
        dims=("stimulus", "channel", "time"),
        coords={
            "stimulus": _ids(n),
            "channel": [f"EEG{i:03d}" for i in range(n_channels)],
            "time": np.arange(n_times) / 100.0,
            "ch_x": ("channel", pos[:, 0]),
            "ch_y": ("channel", pos[:, 1]),
            "ch_z": ("channel", pos[:, 2]),
        },
        attrs={"sfreq": 100.0},
    )
    return da, pos


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_sensor_time_matches_mne_rsa(metric, rng, tol):
    data, pos = _sensors(rng)
    models = _models(rng, 9)
    got = searchlight(data, models, radius=1.6, temporal_radius=2, metric=metric)
    patches = mne_rsa.searchlight(
        data.shape, dist=cdist(pos, pos), spatial_radius=1.6, temporal_radius=2
    )
    ref = _mne(data.values, models, patches, metric)
    assert got.dims == ("channel", "time", "model")
    np.testing.assert_allclose(got.values, ref, **_map_tol(tol))
    # edge samples without a full window are left out, as in mne-rsa
    np.testing.assert_allclose(got.time.values, data.time.values[2:-2])
    assert got.attrs["sfreq"] == 100.0


def test_temporal_only_and_spatial_only_match_mne_rsa(rng, tol):
    data, pos = _sensors(rng)
    models = _models(rng, 9, k=1)
    got_t = searchlight(data, models["m0"], radius=None, temporal_radius=1, method="pearson")
    ref_t = _mne(
        data.values,
        models,
        mne_rsa.searchlight(data.shape, temporal_radius=1),
        "correlation",
        "pearson",
    )
    assert got_t.dims == ("time",)
    np.testing.assert_allclose(got_t.values, ref_t[:, 0], **_map_tol(tol))
    got_s = searchlight(data, models["m0"], radius=1.6)  # all samples of a patch as features
    ref_s = _mne(
        data.values,
        models,
        mne_rsa.searchlight(data.shape, dist=cdist(pos, pos), spatial_radius=1.6),
    )
    assert got_s.dims == ("channel",)
    np.testing.assert_allclose(got_s.values, ref_s[:, 0], **_map_tol(tol))


def test_mne_channel_adjacency(rng, tol):
    mne = pytest.importorskip("mne")
    # MNE 1.13 renamed "standard_1020" to "colin27_1020" (the old name warns)
    name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else None
    montage = mne.channels.make_standard_montage(name or "standard_1020")
    names = ["Fz", "Cz", "Pz", "Oz", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]
    info = mne.create_info(names, 100.0, "eeg")
    info.set_montage(montage)
    adjacency = mne.channels.find_ch_adjacency(info, "eeg")
    data, _ = _sensors(rng, n_channels=len(names), n_times=8)
    data = data.assign_coords(channel=names[::-1])  # another order: matched by name
    models = _models(rng, 9, k=1)
    got = searchlight(data, models, radius=1.5, temporal_radius=1, adjacency=adjacency)
    adj = adjacency[0].toarray()
    order = [names.index(c) for c in names[::-1]]
    adj = adj[np.ix_(order, order)]
    patches = [sorted(set(np.flatnonzero(adj[c]).tolist()) | {c}) for c in range(len(names))]
    ref = _mne(
        data.values,
        models,
        mne_rsa.searchlight(data.shape, spatial_radius=patches, temporal_radius=1),
    )
    np.testing.assert_allclose(got.values, ref, **_map_tol(tol))
    np.testing.assert_array_equal(got.patch_size.values, [len(p) for p in patches])


def test_surface_geodesic_discs(rng, tol):
    from scipy.sparse.csgraph import dijkstra

    # a 6 x 5 grid of vertices (2 mm apart) split into triangles
    gx, gy = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
    verts = np.c_[gx.ravel() * 2.0, gy.ravel() * 2.0, np.zeros(gx.size)]
    idx = np.arange(gx.size).reshape(gx.shape)
    quads = np.c_[
        idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    ]
    faces = np.r_[quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    graph = mesh_adjacency(verts, faces)
    data = xr.DataArray(
        rng.normal(size=(8, len(verts))),
        dims=("stimulus", "vertex"),
        coords={"stimulus": _ids(8)},
    )
    models = _models(rng, 8, k=1)
    got = searchlight(data, models["m0"], radius=4.5, adjacency=graph)
    geo = dijkstra(graph, directed=False)
    ref = _mne(data.values, models, mne_rsa.searchlight(data.shape, dist=geo, spatial_radius=4.5))
    np.testing.assert_allclose(got.values, ref[:, 0], **_map_tol(tol))


def test_ties_use_average_ranks(rng, tol):
    data, xyz = _volume(rng, n=8)
    data[1] = data[0].values  # two identical stimuli: many tied distances in every patch
    models = _models(rng, 8)
    got = searchlight(data, models, radius=7.6)
    patches = mne_rsa.searchlight(data.shape, dist=cdist(xyz, xyz), spatial_radius=7.6)
    # float32 too: the tied distances come from identical rows through identical float32
    # operations, so they stay exactly tied (a broken tie would move a value by ~3e-3)
    np.testing.assert_allclose(got.values, _mne(data.values, models, patches), **_map_tol(tol))


def test_nan_model_pairs_equal_compare(rng):
    data, xyz = _volume(rng, n=8, shape=(3, 3, 2))
    models = _models(rng, 8, k=1)
    m = models["m0"].copy()
    m[0, 3] = m[3, 0] = np.nan
    got = searchlight(data, m, radius=5.0, method="spearman")
    dist = cdist(xyz, xyz)
    for c in range(data.sizes["voxel"]):
        patch = data.isel(voxel=np.flatnonzero(dist[c] < 5.0))
        assert got.values[c] == pytest.approx(rsa.compare(rsa.rdm(patch), m), abs=1e-12)


def test_batch_size_float32_and_stimulus_order(rng, tol):
    data, _ = _volume(rng)
    models = _models(rng, 10)
    ref = searchlight(data, models, radius=7.6)
    np.testing.assert_allclose(
        searchlight(data, models, radius=7.6, batch_size=7), ref, **_map_tol(tol)
    )
    shuffled = data.isel(stimulus=rng.permutation(10))  # models are aligned by id
    np.testing.assert_allclose(searchlight(shuffled, models, radius=7.6), ref, **_map_tol(tol))
    f32 = searchlight(data, models, radius=7.6, dtype="float32")
    np.testing.assert_allclose(f32, ref, atol=1e-4)
    stacked = xr.concat(list(models.values()), dim="layer").assign_coords(layer=["a", "b"])
    assert searchlight(data, stacked, radius=7.6).dims == ("voxel", "layer")


def test_constant_patch_gives_nan(rng):
    data, _ = _volume(rng, shape=(3, 3, 2))
    data[:, 0] = 1.0
    data[:, 6] = 1.0
    got = searchlight(data, _models(rng, 10, k=1)["m0"], radius=3.1, centers=[0, 5])
    # voxel 0's patch (itself and voxel 6 at 3 mm; the next voxel is 3.5 mm away) is
    # constant: its correlation RDM is undefined
    assert np.isnan(got.values[0]) and np.isfinite(got.values[1])


def _haxby_slice_with_null_voxels(bold):
    """The shipped VT voxels, plus every other voxel of the slice filled with null data."""
    import nibabel as nib

    from brainalign.datasets._registry import get_manifest

    mask_img = nib.load(get_manifest("haxby2001")["path"] / "mask.nii.gz")
    inside = np.asarray(mask_img.dataobj)[..., 0] > 0
    rng = np.random.default_rng(0)
    ijk_out = np.c_[np.argwhere(~inside), np.zeros(int((~inside).sum()), int)]
    # a null voxel: a random VT voxel's real series with its trials shuffled (no category)
    src = rng.integers(0, bold.sizes["voxel"], len(ijk_out))
    order = np.argsort(rng.random((bold.sizes["trial"], len(ijk_out))), axis=0)
    null = bold.values[order, src]
    ijk = np.r_[np.c_[bold.i.values, bold.j.values, bold.k.values], ijk_out]
    xyz = nib.affines.apply_affine(mask_img.affine, ijk)
    da = xr.DataArray(
        np.c_[bold.values, null],
        dims=("trial", "voxel"),
        coords={
            "stimulus": ("trial", bold.stimulus.values),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
            **{c: ("voxel", ijk[:, k]) for k, c in enumerate("ijk")},
        },
    )
    in_vt = np.r_[np.ones(bold.sizes["voxel"], bool), np.zeros(len(ijk_out), bool)]
    return da, in_vt


def test_haxby_searchlight_peaks_in_ventral_temporal_cortex(haxby):
    """Real data: the 530 ventral-temporal voxels of the shipped slice, embedded in the full
    40 x 20 slice whose other 270 voxels hold null data (real VT series with shuffled trial
    labels). Trials are averaged per category (8 stimuli) and an 8 mm searchlight (about 16
    voxels) is compared with a categorical model (animate / place / object / scrambled).

    Asserted: the 20 best centres all lie inside the ventral-temporal mask; the best value
    exceeds 0.6 and the 99th percentile of the values outside the mask; the median inside
    the mask exceeds the median outside.
    """
    da, in_vt = _haxby_slice_with_null_voxels(haxby)
    patterns = ba.average_trials(da)
    model = rsa.categorical_rdm(
        {
            "animate": ["face", "cat"],
            "place": ["house"],
            "object": ["chair", "shoe", "bottle", "scissors"],
            "scrambled": ["scrambledpix"],
        }
    )
    sl = searchlight(patterns, model, radius=8.0)
    assert sl.sizes["voxel"] == 800 and np.isfinite(sl.values).all()
    best = np.argsort(-sl.values)[:20]
    assert in_vt[best].all()
    assert sl.values[best[0]] > 0.6
    assert sl.values[best[0]] > np.quantile(sl.values[~in_vt], 0.99)
    assert np.median(sl.values[in_vt]) > np.median(sl.values[~in_vt])


def test_bad_input(rng):
    data, _ = _volume(rng, n=6, shape=(3, 2, 2))
    model = _models(rng, 6, k=1)["m0"]
    with pytest.raises(ValueError, match=r"radius must be in the range \(0, inf\), got 0"):
        searchlight(data, model, radius=0)
    with pytest.raises(ValueError, match=r"radius must be in the range \(0, inf\), got -2.0"):
        searchlight(data, model, radius=-2.0)
    with pytest.raises(SchemaError, match=r"x/y/z coordinates .*missing \['x', 'y', 'z'\]"):
        searchlight(data.drop_vars(["x", "y", "z"]), model, radius=4.0)
    other = model.assign_coords(
        stimulus_a=["s0", "s1", "s2", "s3", "s4", "q9"],
        stimulus_b=["s0", "s1", "s2", "s3", "s4", "q9"],
    )
    with pytest.raises(StimulusAlignmentError, match=r"'s5'.*'q9'"):
        searchlight(data, other, radius=4.0)
    with pytest.raises(
        ValueError, match=r"'metric'.*got 'corelation'. Did you mean 'correlation'"
    ):
        searchlight(data, model, radius=4.0, metric="corelation")
    with pytest.raises(ValueError, match=r"'method'.*got 'spearmann'. Did you mean 'spearman'"):
        searchlight(data, model, radius=4.0, method="spearmann")
    with pytest.raises(TypeError, match=r"data must be an xarray.DataArray.*got ndarray"):
        searchlight(data.values, model, radius=4.0)
    trials = data.rename(stimulus="trial").assign_coords(
        trial=np.arange(6), stimulus=("trial", data.stimulus.values)
    )
    with pytest.raises(SchemaError, match=r"average the trials first"):
        searchlight(trials, model, radius=4.0)
    with pytest.raises(SchemaError, match=r"temporal_radius=1 needs a 'time' dim"):
        searchlight(data, model, radius=4.0, temporal_radius=1)
    sensors, _ = _sensors(rng, n=6, n_times=4)
    sensors = sensors.assign_coords(stimulus=_ids(6))
    with pytest.raises(
        ValueError, match=r"temporal_radius=2 needs at least 5 time samples; data has 4"
    ):
        searchlight(sensors, model, radius=1.0, temporal_radius=2)
    with pytest.raises(ValueError, match=r"centers holds 1 voxel"):
        searchlight(data, model, radius=4.0, mask=np.arange(12) < 6, centers=[0, 7])
    flat = model.copy(data=np.ones((6, 6)) - np.eye(6))
    with pytest.raises(ValueError, match=r"constant over their finite pairs"):
        searchlight(data, flat, radius=4.0)
    with pytest.raises(ValueError, match=r"adjacency must be an \(12, 12\) matrix"):
        searchlight(data, model, radius=4.0, adjacency=np.eye(3))


def test_cluster_permutation_test_finds_planted_region(rng, tol):
    from brainalign.rsa._cluster import cluster_permutation_test

    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), [0], indexing="ij"), -1)
    ijk = grid.reshape(-1, 3)
    xyz = ijk * 3.0
    n = 12
    truth = rng.normal(size=(n, 5))
    values = rng.normal(size=(n, len(xyz)))
    block = (ijk[:, 0] < 3) & (ijk[:, 1] < 3)  # a 3 x 3 region carries the model geometry
    values[:, block] += 3 * truth @ rng.normal(size=(5, int(block.sum())))
    data = xr.DataArray(
        values,
        dims=("stimulus", "voxel"),
        coords={"stimulus": _ids(n), **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")}},
    )
    model = rsa.rdm(ba.responses(truth, _ids(n)))
    res = cluster_permutation_test(data, model, radius=4.0, n_permutations=99, seed=1)
    np.testing.assert_allclose(
        res.similarity, searchlight(data, model, radius=4.0), **_map_tol(tol)
    )
    significant = np.asarray(res.cluster_p < 0.05)
    assert significant[block].all()
    assert significant.sum() <= block.sum() + 12  # the region and at most its rim
    assert res.null_max_mass.shape == (99,) and res.attrs["threshold"] > 0
    assert float(res.cluster_p_value.min()) == pytest.approx(0.01)


def test_cluster_masses_of_model_keeping_permutations_tie_in_float32():
    # Swapping stimuli within a category keeps a categorical model: such a permutation's
    # largest cluster equals an observed one up to rounding and counts as >= (with a 1e-12
    # margin, float32 rounding dropped some of these ties and changed p). Reference: float64.
    from brainalign.rsa._cluster import cluster_permutation_test

    data, _ = _volume(np.random.default_rng(3), n=9)
    ids = _ids(9)
    model = rsa.categorical_rdm({"a": ids[:3], "b": ids[3:6], "c": ids[6:]})
    kw = {"radius": 7.6, "n_permutations": 300, "seed": 0, "threshold": 0.0, "device": "cpu"}
    ref = cluster_permutation_test(data, model, dtype="float64", **kw)
    got = cluster_permutation_test(data, model, dtype="float32", **kw)
    np.testing.assert_array_equal(got.cluster.values, ref.cluster.values)
    np.testing.assert_array_equal(got.cluster_p_value.values, ref.cluster_p_value.values)


def test_empty_selections_and_unsupported_options(rng):
    data, _ = _volume(rng)
    models = _models(rng, data.sizes["stimulus"])
    with pytest.raises(ValueError, match=r"mask selects no voxel \(of 60\)"):
        searchlight(data, models, radius=5.0, mask=np.zeros(60, bool))
    with pytest.raises(
        ValueError,
        match=r"does not take adjacency= yet.*got adjacency of type "
        r"ndarray",
    ):
        rsa.cluster_permutation_test(data, models["m0"], radius=5.0, adjacency=np.eye(60))


# ------------------------------------------------------------------------ crossnobis
def _trial_volume(rng, n_runs=4, n_stim=5, reps=2, shape=(5, 4, 3), shuffle=True):
    """Trial data on a small grid (signal + noise correlated across neighbouring voxels)."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    xyz = ijk * np.array([3.0, 3.5, 4.0])
    n_vox, n_trials = len(ijk), n_runs * n_stim * reps
    stim = np.tile(np.repeat(_ids(n_stim), reps), n_runs)
    run = np.repeat([f"r{k}" for k in range(n_runs)], n_stim * reps)
    signal = rng.normal(size=(n_stim, n_vox))
    noise = rng.normal(size=(n_trials, n_vox)) * rng.uniform(0.5, 2.0, n_vox)
    noise += 0.7 * np.roll(noise, 1, axis=1)  # correlated noise
    x = signal[np.searchsorted(_ids(n_stim), stim)] + noise
    if shuffle:
        perm = rng.permutation(n_trials)
        x, stim, run = x[perm], stim[perm], run[perm]
    da = xr.DataArray(
        x,
        dims=("trial", "voxel"),
        coords={
            "trial": np.arange(n_trials),
            "stimulus": ("trial", stim),
            "run": ("trial", run),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
        },
    )
    return da, xyz


def _patch_residuals(patch):
    """Each trial minus its run x stimulus mean."""
    keys = np.char.add(np.char.add(patch.run.values.astype(str), "|"), patch.stimulus.values)
    res = patch.values.copy()
    for key in np.unique(keys):
        rows = keys == key
        res[rows] -= res[rows].mean(0)
    return res


def _patch_crossnobis(da, patch_voxels, noise):
    """Loop reference: rdm(patch, "crossnobis", noise=noise_precision(residuals))."""
    patch = da.isel(voxel=patch_voxels)
    prec = None if noise is None else noise_precision(_patch_residuals(patch), noise)
    return rsa.rdm(patch, "crossnobis", noise=None if prec is None else prec.values)


def _sl_rdm_vectors(da, radius, noise, centres):
    """The searchlight's own crossnobis vectors for some centres (and their patches)."""
    import torch

    from brainalign.rsa._searchlight import (
        _ball_neighbours,
        _crossnobis_inputs,
        patch_crossnobis_vectors,
    )

    xyz = np.c_[da.x.values, da.y.values, da.z.values]
    idx, valid = _ball_neighbours(xyz, np.arange(len(xyz)), np.asarray(centres), radius)
    ids, pats, res, n_runs = _crossnobis_inputs(da, None, "voxel", torch.device("cpu"))
    n = len(ids)
    vec, bad = patch_crossnobis_vectors(
        torch.as_tensor(pats),
        torch.as_tensor(res),
        torch.as_tensor(idx),
        torch.as_tensor(valid),
        n_runs,
        noise,
        tuple(torch.triu_indices(n, n, offset=1)),
    )
    assert not bool(bad.any())
    return ids, vec.numpy(), idx, valid


@pytest.mark.parametrize("noise", [None, "diag", "shrinkage_diag", "shrinkage_eye"])
@pytest.mark.parametrize(("n_runs", "n_stim"), [(4, 5), (2, 3)])
def test_crossnobis_patch_rdms_equal_rdm_with_noise_precision(noise, n_runs, n_stim, rng, tol):
    # 40 residual observations for patches of 10 to 33 voxels; or 12 (fewer than most
    # patches' voxels: the low-rank route of noise_precision).
    da, _ = _trial_volume(rng, n_runs=n_runs, n_stim=n_stim)
    centres = [0, 7, 25, 31, 59]
    ids, vec, idx, valid = _sl_rdm_vectors(da, 7.6, noise, centres)
    iu = np.triu_indices(len(ids), k=1)
    for c in range(len(centres)):
        ref = _patch_crossnobis(da, idx[c][valid[c]], noise)
        ref = ref.sel(stimulus_a=ids, stimulus_b=ids).values[iu]
        np.testing.assert_allclose(vec[c], ref, **_crossnobis_tol(tol))


@pytest.mark.parametrize("noise", [None, "shrinkage_diag", "shrinkage_eye", "diag"])
@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_crossnobis_searchlight_equals_compare_per_patch(noise, method, rng, tol):
    da, xyz = _trial_volume(rng, n_stim=6)
    models = _models(rng, 6)
    got = searchlight(
        da, models, radius=7.6, metric="crossnobis", method=method, noise=noise, batch_size=7
    )
    assert got.dims == ("voxel", "model")
    assert got.attrs["metric"] == "crossnobis"
    assert got.attrs["noise"] == ("identity" if noise is None else noise)
    np.testing.assert_array_equal(got.x.values, xyz[:, 0])
    idx = np.flatnonzero(cdist(xyz, xyz)[0] < 7.6)
    assert int(got.patch_size[0]) == len(idx)
    for c in [0, 13, 40, 59]:
        patch = np.flatnonzero(cdist(xyz[c : c + 1], xyz)[0] < 7.6)
        ref_rdm = _patch_crossnobis(da, patch, noise)
        for m, model in models.items():
            want = float(rsa.compare(ref_rdm, model, method=method))
            # float32: crossnobis entries err by <= 12 eps32 = 1.5e-6 absolute (4 runs, see
            # _crossnobis_tol), the 15-pair comparison by that over the entries' std (>= 0.59
            # here): ~2.5e-6 worst (observed <= 1.2e-7)
            atol = tol(float64=1e-10, float32=5e-6)
            np.testing.assert_allclose(
                float(got.sel(model=m)[c]), want, rtol=TOL["rtol"], atol=atol
            )


def test_crossnobis_searchlight_matches_rsatoolbox_on_one_patch(rng):
    pytest.importorskip("rsatoolbox")
    from rsatoolbox.data import Dataset
    from rsatoolbox.data.noise import prec_from_residuals
    from rsatoolbox.rdm import calc_rdm

    da, _ = _trial_volume(rng, reps=2)
    ids, vec, idx, valid = _sl_rdm_vectors(da, 7.6, "shrinkage_diag", [26])
    patch = da.isel(voxel=idx[0][valid[0]])
    ds = Dataset(
        patch.values,
        obs_descriptors={"stimulus": patch.stimulus.values, "run": patch.run.values},
    )
    prec = prec_from_residuals(_patch_residuals(patch), method="shrinkage_diag")
    ref = calc_rdm(ds, "crossnobis", descriptor="stimulus", noise=prec, cv_descriptor="run")
    order = [list(ref.pattern_descriptors["stimulus"]).index(s) for s in ids]
    mat = ref.get_matrices()[0][np.ix_(order, order)]
    np.testing.assert_allclose(vec[0], mat[np.triu_indices(len(ids), k=1)], **TOL)


def test_crossnobis_runs_argument_mask_and_float32(rng):
    da, _ = _trial_volume(rng, n_stim=5)
    model = _models(rng, 5, k=1)["m0"]
    ref = searchlight(da, model, radius=7.6, metric="crossnobis", noise="shrinkage_diag")
    labels = da.run.values
    plain = da.drop_vars("run")
    got = searchlight(
        plain, model, radius=7.6, metric="crossnobis", noise="shrinkage_diag", runs=labels
    )
    np.testing.assert_allclose(got.values, ref.values, **TOL)
    renamed = da.rename(run="block")
    got = searchlight(renamed, model, radius=7.6, metric="crossnobis", runs="block")
    np.testing.assert_allclose(
        got.values, searchlight(da, model, radius=7.6, metric="crossnobis").values, **TOL
    )
    f32 = searchlight(
        da, model, radius=7.6, metric="crossnobis", noise="shrinkage_diag", dtype="float32"
    )
    np.testing.assert_allclose(f32.values, ref.values, atol=1e-4)
    # a mask: voxels outside it enter no patch
    mask = np.arange(da.sizes["voxel"]) < 30
    got = searchlight(da, model, radius=7.6, metric="crossnobis", mask=mask, noise="diag")
    sub = searchlight(
        da.isel(voxel=slice(0, 30)), model, radius=7.6, metric="crossnobis", noise="diag"
    )
    np.testing.assert_allclose(got.values, sub.values, **TOL)


def test_crossnobis_bad_input(rng):
    da, _ = _trial_volume(rng, n_stim=5)
    model = _models(rng, 5, k=1)["m0"]
    with pytest.raises(ValueError, match=r"needs the run of each trial: pass runs="):
        searchlight(da.drop_vars("run"), model, radius=7.6, metric="crossnobis")
    one_run = da.assign_coords(run=("trial", np.full(da.sizes["trial"], "r0")))
    with pytest.raises(ValueError, match=r"needs at least 2 runs to cross-validate"):
        searchlight(one_run, model, radius=7.6, metric="crossnobis")
    missing = da.isel(trial=~((da.run == "r1") & (da.stimulus == "s2")).values)
    with pytest.raises(ValueError, match=r"every stimulus in every run: run 'r1' lacks"):
        searchlight(missing, model, radius=7.6, metric="crossnobis")
    with pytest.raises(ValueError, match=r"noise='shrinkage_diag'.*only by metric='crossnobis'"):
        searchlight(da.mean("trial"), model, radius=7.6, noise="shrinkage_diag")
    with pytest.raises(ValueError, match=r"'noise'.*got 'shrinkage'"):
        searchlight(da, model, radius=7.6, metric="crossnobis", noise="shrinkage")
    with pytest.raises(ValueError, match=r"runs= is used only by metric='crossnobis'"):
        data, _ = _volume(rng, n=5)
        searchlight(data, model, radius=7.6, runs=[1, 2])
    with pytest.raises(SchemaError, match=r"needs trial data with dims \('trial'"):
        data, _ = _volume(rng, n=5)
        searchlight(data, model, radius=7.6, metric="crossnobis")
    with pytest.raises(ValueError, match=r"no temporal searchlight"):
        searchlight(da, model, radius=7.6, metric="crossnobis", temporal_radius=1)
    dead = da.copy(data=da.values.copy())
    dead[:, 3] = 1.0
    with pytest.raises(ValueError, match=r"1 voxel\(s\) have zero residual variance"):
        searchlight(dead, model, radius=7.6, metric="crossnobis", noise="diag")
    keep = np.arange(da.sizes["voxel"]) != 3
    out = searchlight(dead, model, radius=7.6, metric="crossnobis", noise="diag", mask=keep)
    assert np.isfinite(out.values).all() and out.sizes["voxel"] == keep.sum()
    single = _trial_volume(rng, n_stim=5, reps=1)[0]
    with pytest.raises(ValueError, match=r"60 voxel\(s\) have zero residual variance"):
        searchlight(single, model, radius=7.6, metric="crossnobis", noise="shrinkage_diag")
    nan = da.copy(data=da.values.copy())
    nan[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN"):
        searchlight(nan, model, radius=7.6, metric="crossnobis")


def test_crossnobis_cluster_permutation_test_observed_map(rng, tol):
    from brainalign.rsa._cluster import cluster_permutation_test

    da, _ = _trial_volume(rng, n_stim=5)
    model = _models(rng, 5, k=1)["m0"]
    kw = {"metric": "crossnobis", "noise": "shrinkage_diag", "method": "pearson"}
    res = cluster_permutation_test(da, model, radius=7.6, n_permutations=5, seed=0, **kw)
    want = searchlight(da, model, radius=7.6, **kw)
    np.testing.assert_allclose(res.similarity.values, want.values, **_map_tol(tol))
    assert res.null_max_mass.shape == (5,)


# ------------------------------------------- patches: "strictly closer than radius", exactly
def _exact_inside(xyz, centre, radius):
    """Oracle: |x - c|**2 < radius**2 in rational arithmetic on the float coordinates."""
    from fractions import Fraction

    r2 = Fraction(float(radius)) ** 2
    c = [Fraction(float(v)) for v in xyz[centre]]
    return np.array(
        [
            sum((Fraction(float(v)) - ci) ** 2 for v, ci in zip(row, c, strict=True)) < r2
            for row in xyz
        ]
    )


def _grid_volume(n_stim, shape, zoom):
    ijk = np.array(list(np.ndindex(*shape)))
    xyz = ijk * zoom
    values = np.random.default_rng(0).normal(size=(n_stim, len(ijk)))
    da = xr.DataArray(
        values,
        dims=("stimulus", "voxel"),
        coords={
            "stimulus": _ids(n_stim),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
        },
    )
    return da, xyz


def test_ball_patch_just_above_a_shell_keeps_the_shell_as_mne_rsa():
    # Issue 17 item 7: radius = the float just above sqrt(18) on a 3 mm grid. The 12 voxels
    # at (3, 3, 0) mm offsets lie at fl(sqrt(18)) < radius: mne-rsa's patch holds 19 voxels,
    # the tree's rounding used to drop the shell (7).
    from brainalign.rsa._searchlight import _ball_neighbours

    da, xyz = _grid_volume(4, (5, 5, 5), 3.0)
    centre = 62  # the middle of the 5 x 5 x 5 grid
    radius = float(np.nextafter(np.sqrt(18.0), np.inf))
    idx, valid = _ball_neighbours(xyz, np.arange(len(xyz)), np.array([centre]), radius)
    ours = idx[0][valid[0]]
    dist = cdist(xyz, xyz)
    patches = mne_rsa.searchlight(da.values.shape, dist=dist, spatial_radius=radius)
    ref = [np.asarray(p[1]) for p in patches]  # one (items, series) index per centre
    assert len(ours) == 19
    np.testing.assert_array_equal(ours, np.sort(ref[centre]))
    np.testing.assert_array_equal(ours, np.flatnonzero(dist[centre] < radius))
    np.testing.assert_array_equal(ours, np.flatnonzero(_exact_inside(xyz, centre, radius)))


def test_ball_patch_on_a_rounded_up_shell_is_exact_not_mne_rsa():
    # fl(sqrt(27)) > sqrt(27): the 8 corners at (±3, ±3, ±3) mm on a 3 mm grid are strictly
    # closer than that radius. Exact arithmetic keeps them (27 voxels, the full 3x3x3 cube);
    # mne-rsa compares the rounded distance fl(sqrt(27)) < fl(sqrt(27)) and drops them (19).
    # The documented difference (module docstring), checked against the exact oracle.
    from fractions import Fraction

    from brainalign.rsa._searchlight import _ball_neighbours

    radius = float(np.sqrt(27.0))
    assert Fraction(radius) ** 2 > 27  # the rounding this case is about
    _, xyz = _grid_volume(4, (5, 5, 5), 3.0)
    centre = 62
    idx, valid = _ball_neighbours(xyz, np.arange(len(xyz)), np.array([centre]), radius)
    ours = idx[0][valid[0]]
    assert len(ours) == 27
    np.testing.assert_array_equal(ours, np.flatnonzero(_exact_inside(xyz, centre, radius)))
    dist = cdist(xyz, xyz)
    assert np.count_nonzero(dist[centre] < radius) == 19  # mne-rsa's rounded comparison


@pytest.mark.parametrize("zoom", [3.0, 1.7, (2.0, 2.5, 3.3)])
@pytest.mark.parametrize(
    "radius",
    [3.0, np.nextafter(3.0, 0), np.sqrt(18.0), np.nextafter(np.sqrt(18.0), np.inf), 5.1, 6.0],
)
def test_ball_patches_equal_exact_rational_oracle(zoom, radius):
    # Every patch equals the set {u : |x_u - x_c| < radius} decided in exact rational
    # arithmetic, also when radius sits on (or one float step off) a shell of the grid;
    # away from the shells it equals scipy's cdist.
    from brainalign.rsa._searchlight import _ball_neighbours

    _, xyz = _grid_volume(3, (4, 5, 4), np.asarray(zoom, dtype=float))
    xyz = xyz - 7.3  # a non-round origin: coordinate differences carry rounding errors
    radius = float(radius * (np.max(zoom) / 3.0))
    centres = np.arange(0, len(xyz), 7)
    idx, valid = _ball_neighbours(xyz, np.arange(len(xyz)), centres, radius)
    dist = cdist(xyz, xyz)
    for row, c in enumerate(centres):
        exact = np.flatnonzero(_exact_inside(xyz, c, radius))
        np.testing.assert_array_equal(idx[row][valid[row]], exact)
        clear = np.abs(dist[c] - radius) > 1e-9
        np.testing.assert_array_equal(
            np.isin(np.arange(len(xyz)), exact)[clear], (dist[c] < radius)[clear]
        )


def test_ball_patches_keep_the_full_shell_inside_a_mask():
    _, xyz = _grid_volume(6, (5, 5, 5), 3.0)
    radius = float(np.nextafter(np.sqrt(18.0), np.inf))
    mask = np.ones(len(xyz), bool)
    mask[[61, 63]] = False  # two face neighbours of the centre 62
    from brainalign.rsa._searchlight import _ball_neighbours

    allowed = np.flatnonzero(mask)
    idx, valid = _ball_neighbours(xyz, allowed, np.array([62]), radius)
    expect = np.flatnonzero(_exact_inside(xyz, 62, radius) & mask)
    np.testing.assert_array_equal(idx[0][valid[0]], expect)
    assert len(expect) == 17


@pytest.mark.parametrize("length", [1.5, float(np.nextafter(1.5, 0))])
def test_graph_patches_are_strict_at_the_radius(length):
    # A sensor/surface graph: an edge exactly as long as the radius is left out, one a
    # float step shorter is kept (scipy's dijkstra keeps d == limit; we keep d < radius).
    import scipy.sparse as sp

    from brainalign.rsa._searchlight import _graph_neighbours

    g = sp.csr_matrix(np.array([[0, length, 0], [length, 0, 0.75], [0, 0.75, 0]]))
    idx, valid = _graph_neighbours(g, np.arange(3), np.array([0, 2]), 1.5)
    got0 = idx[0][valid[0]].tolist()
    assert got0 == ([0] if length == 1.5 else [0, 1])
    assert idx[1][valid[1]].tolist() == [1, 2]  # 0.75 < 1.5; 0.75 + length >= 1.5


def test_mesh_patches_keep_an_edge_one_float_below_the_radius():
    # Surface searchlight: edge lengths from mesh_adjacency; a radius one float above an
    # edge's length keeps that neighbour (as mne-rsa's dist < radius does).
    from brainalign.rsa._searchlight import _graph_neighbours

    verts = np.array([[0.0, 0, 0], [3, 3, 0], [6, 0, 0]])
    g = mesh_adjacency(verts, np.array([[0, 1, 2]]))
    edge = float(g[0, 1])
    assert edge == float(np.sqrt(18.0))
    for radius, expect in ((np.nextafter(edge, np.inf), [0, 1]), (edge, [0])):
        idx, valid = _graph_neighbours(g, np.arange(3), np.array([0]), float(radius))
        assert idx[0][valid[0]].tolist() == expect


# ------------------------------------------------------- extreme magnitudes (issue 17 item 9)
@pytest.mark.parametrize(
    ("scale", "dtype"), [(1e20, "float32"), (1e-25, "float32"), (1e200, "float64")]
)
@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_searchlight_maps_are_scale_free_at_extreme_magnitudes(metric, scale, dtype, rng):
    # float32 data x 1e20 (or x 1e-25) gave all-NaN maps without an error (sums of squares
    # overflowed or underflowed); the maps are invariant to the data's scale, so they must
    # equal the float64 maps of the unscaled data. Model RDMs x 1e30 as well.
    da, _ = _volume(rng, n=6)
    models = _models(rng, 6)
    ref = searchlight(da, models, radius=5.0, metric=metric, dtype="float64")
    big_models = {k: v * 1e30 for k, v in models.items()}
    got = searchlight(da * scale, big_models, radius=5.0, metric=metric, dtype=dtype, device="cpu")
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else TOL
    assert np.isfinite(got.values).all()
    np.testing.assert_allclose(got.values, ref.values, **tol)


@pytest.mark.parametrize("noise", [None, "shrinkage_diag"])
def test_crossnobis_searchlight_scale_free_in_float32(noise, rng):
    da, _ = _trial_volume(rng, n_stim=4)
    models = _models(rng, 4)
    ref = searchlight(da, models, radius=5.0, metric="crossnobis", noise=noise, dtype="float64")
    got = searchlight(
        da * 1e20,
        models,
        radius=5.0,
        metric="crossnobis",
        noise=noise,
        dtype="float32",
        device="cpu",
    )
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-4, atol=1e-4)
