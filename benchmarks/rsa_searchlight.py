"""Searchlight benchmarks: brainalign versus mne-rsa 1.0 on the same mask, centres and models.

python benchmarks/rsa_searchlight.py            # quick sizes (seconds)
python benchmarks/rsa_searchlight.py --full     # the RSA issue's sizes (minutes, mostly mne-rsa)
python benchmarks/rsa_searchlight.py --crossnobis [--full] [--fraction 0.1]
                                                # crossnobis + per-patch noise normalisation

Volumetric data: 100 stimuli on an ellipsoid mask of 3 mm voxels, correlation RDMs, Spearman,
a sphere of radius ``--radius`` mm (default 6: up to 27 voxels strictly inside). Quick sizes:
1,500 centres against mne-rsa, and a 5,000-centre searchlight with 10 models. Full sizes:
6,872 centres against mne-rsa (the issue's mne-rsa reference: 7.7 s on this machine), and a
50,000-centre searchlight with 10 model RDMs (target: under 15 s), reported in centres/s.

``--crossnobis``: a crossnobis searchlight with per-patch ``shrinkage_diag`` noise
normalisation over 64 trials (8 runs x 4 conditions x 2 trials), sphere of 7 mm (57 voxels
of 3 mm strictly inside): 5,000 voxels by default, 250,000 with ``--full`` (target: under
300 s). ``--fraction f`` times an evenly spread share ``f`` of the centres and extrapolates.
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


def ellipsoid_grid(n_voxels: int) -> np.ndarray:
    """Integer grid positions of exactly ``n_voxels`` voxels in a compact ellipsoid blob."""
    s = (n_voxels / (4 / 3 * np.pi * 1.2 * 0.9)) ** (1 / 3)
    radii = np.array([1.0, 1.2, 0.9]) * s
    axes = [np.arange(-np.ceil(r), np.ceil(r) + 1) for r in radii]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[((grid / radii) ** 2).sum(1) <= 1]
    order = np.argsort(np.abs(((grid / radii) ** 2).sum(1) - 0.5), kind="stable")
    return grid[np.sort(order[:n_voxels])]  # exactly n_voxels, a compact blob


def ellipsoid_volume(n_voxels: int, n_stimuli: int = 100, seed: int = 0):
    """Random patterns on an ellipsoid of about ``n_voxels`` 3 mm voxels, as a DataArray."""
    import xarray as xr

    grid = ellipsoid_grid(n_voxels)
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


def trial_volume(n_voxels: int, n_runs: int = 8, n_conditions: int = 4, reps: int = 2):
    """Trial data (``reps`` trials per run x condition, random signal + noise) on an ellipsoid."""
    import xarray as xr

    xyz = ellipsoid_grid(n_voxels) * 3.0
    rng = np.random.default_rng(0)
    stim = np.tile(np.repeat([f"c{i}" for i in range(n_conditions)], reps), n_runs)
    run = np.repeat(np.arange(n_runs), n_conditions * reps)
    signal = rng.normal(size=(n_conditions, len(xyz)))
    x = signal[np.searchsorted([f"c{i}" for i in range(n_conditions)], stim)]
    x += rng.normal(size=(len(stim), len(xyz)))
    return xr.DataArray(
        x,
        dims=("trial", "voxel"),
        coords={
            "stimulus": ("trial", stim),
            "run": ("trial", run),
            **{c: ("voxel", xyz[:, k]) for k, c in enumerate("xyz")},
        },
    )


def crossnobis_searchlight(full: bool, radius: float, repeat: int, fraction: float) -> None:
    """Time a crossnobis searchlight with per-patch shrinkage noise normalisation.

    Full size (the RSA issue): 250,000 voxels x 8 runs x 4 conditions x 2 trials per run x
    condition (64 trials), sphere of ``radius`` mm (default 7: 57 voxels strictly inside;
    fewer at the edge), ``noise="shrinkage_diag"``, Pearson against 2 models. Target:
    under 300 s. With ``fraction < 1`` only that share of the centres (evenly spread) is
    computed and the time is extrapolated linearly.
    """
    from brainalign import rsa
    from brainalign.rsa._searchlight import searchlight

    n_vox = 250_000 if full else 5_000
    data = trial_volume(n_vox)
    n_vox = data.sizes["voxel"]
    ids = [f"c{i}" for i in range(4)]
    rng = np.random.default_rng(1)
    models = {
        f"model{k}": rsa.rdm(rng.normal(size=(4, 3))).assign_coords(stimulus_a=ids, stimulus_b=ids)
        for k in range(2)
    }
    n_centres = max(1, round(fraction * n_vox))
    centres = np.unique(np.linspace(0, n_vox - 1, n_centres).astype(np.int64))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = searchlight(
            data,
            models,
            radius=radius,
            metric="crossnobis",
            method="pearson",
            noise="shrinkage_diag",
            centers=None if fraction >= 1 else centres,
        )
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    n_done = out.sizes["voxel"]
    whole = med * n_vox / n_done
    note = "" if n_done == n_vox else f" (measured on {n_done:,} centres, extrapolated)"
    print(
        f"crossnobis searchlight, noise=shrinkage_diag: {n_vox:,} voxels x 8 runs x 4 "
        f"conditions x 2 trials, r={radius:g}mm (mean patch {float(out.patch_size.mean()):.1f} "
        f"voxels, max {int(out.patch_size.max())}): median {med:.2f}s for {n_done:,} centres "
        f"-> {whole:.1f}s for all {n_vox:,}{note}"
        + ("  (target < 300 s: " + ("ok" if whole < 300 else "MISS") + ")" if full else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--radius", type=float, default=6.0, help="sphere radius in mm")
    parser.add_argument(
        "--crossnobis", action="store_true", help="only the crossnobis + noise case"
    )
    parser.add_argument(
        "--crossnobis-radius", type=float, default=7.0, help="crossnobis sphere radius in mm"
    )
    parser.add_argument(
        "--fraction", type=float, default=1.0, help="crossnobis: share of centres to time"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.crossnobis:
        crossnobis_searchlight(args.full, args.crossnobis_radius, args.repeat, args.fraction)
        print(f"load average: {os.getloadavg()[0]:.1f} (the machine has {os.cpu_count()} cores)")
        return
    import mne

    mne.set_log_level("warning")
    run_cases(cases(args.full, args.radius), repeat=args.repeat, reference_repeat=1)
    big_searchlight(args.full, args.radius, args.repeat)
    print(f"load average: {os.getloadavg()[0]:.1f} (the machine has {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
