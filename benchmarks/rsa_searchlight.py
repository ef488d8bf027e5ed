"""Searchlight benchmarks: brainalign versus mne-rsa 1.0 on the same mask, centres and models.

python benchmarks/rsa_searchlight.py            # quick sizes (seconds)
python benchmarks/rsa_searchlight.py --full     # the RSA issue's sizes (minutes, mostly mne-rsa)

Volumetric data: 100 stimuli on an ellipsoid mask of 3 mm voxels, correlation RDMs, Spearman,
a sphere of radius ``--radius`` mm (default 6: up to 27 voxels strictly inside). Quick sizes:
1,500 centres against mne-rsa, and a 5,000-centre searchlight with 10 models. Full sizes:
6,872 centres against mne-rsa (the issue's mne-rsa reference: 7.7 s on this machine), and a
50,000-centre searchlight with 10 model RDMs (target: under 15 s), reported in centres/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, run_cases


def ellipsoid_volume(n_voxels: int, n_stimuli: int = 100, seed: int = 0):
    """Random patterns on an ellipsoid of about ``n_voxels`` 3 mm voxels, as a DataArray."""
    import xarray as xr

    s = (n_voxels / (4 / 3 * np.pi * 1.2 * 0.9)) ** (1 / 3)
    radii = np.array([1.0, 1.2, 0.9]) * s
    axes = [np.arange(-np.ceil(r), np.ceil(r) + 1) for r in radii]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[((grid / radii) ** 2).sum(1) <= 1]
    order = np.argsort(np.abs(((grid / radii) ** 2).sum(1) - 0.5), kind="stable")
    grid = grid[np.sort(order[:n_voxels])]  # exactly n_voxels, a compact blob
    xyz = grid * 3.0
    ijk = (grid - grid.min(0)).astype(int)
    rng = np.random.default_rng(seed)
    return xr.DataArray(
        rng.normal(size=(n_stimuli, len(xyz))),
        dims=("stimulus", "voxel"),
        coords={
            "stimulus": [f"s{i:03d}" for i in range(n_stimuli)],
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
            **{c: ("voxel", ijk[:, k]) for k, c in enumerate("ijk")},
        },
    )


def model_rdms(data, n_models: int, seed: int = 1) -> dict:
    from brainalign import rsa

    rng = np.random.default_rng(seed)
    ids = data.stimulus.values
    return {
        f"model{k}": rsa.rdm(rng.normal(size=(len(ids), 8))).assign_coords(
            stimulus_a=ids, stimulus_b=ids
        )
        for k in range(n_models)
    }


def cases(full: bool, radius: float) -> list[Case]:
    import mne_rsa
    from scipy.spatial import cKDTree

    from brainalign.rsa._searchlight import searchlight

    n_vox = 6_872 if full else 1_500
    data = ellipsoid_volume(n_vox)
    models = model_rdms(data, 1)
    model = models["model0"]
    xyz = np.c_[data.x.values, data.y.values, data.z.values]
    values = data.values
    # mne-rsa takes a (sparse) distance matrix; zero entries are "far", the seed is added
    dist = cKDTree(xyz).sparse_distance_matrix(cKDTree(xyz), radius, output_type="coo_matrix")
    dist = dist.tocsr()
    dist.eliminate_zeros()

    def ours():
        return searchlight(data, model, radius=radius)

    def reference():
        patches = mne_rsa.searchlight(values.shape, dist=dist, spatial_radius=radius)
        return mne_rsa.rsa_array(values, np.asarray(model), patches)

    def check(a, b):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-10)

    return [
        Case(
            f"searchlight {n_vox} centres, 100 stim, r={radius:g}mm",
            ours,
            reference,
            "mne-rsa 1.0",
            target=5.0,
            check=check,
        )
    ]


def big_searchlight(full: bool, radius: float, repeat: int) -> None:
    """Time a large searchlight with 10 models (no reference: mne-rsa would take minutes)."""
    from brainalign.rsa._searchlight import searchlight

    n_vox = 50_000 if full else 5_000
    data = ellipsoid_volume(n_vox)
    models = model_rdms(data, 10)
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = searchlight(data, models, radius=radius)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, med = min(times), float(np.median(times))
    print(
        f"searchlight {out.sizes['voxel']} centres x {out.sizes['model']} models, 100 stim, "
        f"r={radius:g}mm (mean patch {float(out.patch_size.mean()):.1f} voxels): median "
        f"{med:.2f}s, best {best:.2f}s -> {out.sizes['voxel'] / med:,.0f} centres/s; CPU time "
        f"{float(np.median(cpu)):.2f}s (all threads)"
        + ("  (target < 15 s: " + ("ok" if med < 15 else "MISS") + ")" if full else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--radius", type=float, default=6.0, help="sphere radius in mm")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import mne

    mne.set_log_level("warning")
    run_cases(cases(args.full, args.radius), repeat=args.repeat, reference_repeat=1)
    big_searchlight(args.full, args.radius, args.repeat)
    print(f"load average: {os.getloadavg()[0]:.1f} (the machine has {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
