"""Which factor moves the RDM-versus-RGTM ordering? A short grid on the cached CNN.

Starting from the ``cnn`` setting (10 seeds × 10 layers, 62 stimuli, Gaussian noise on the
RDM entries: the authors' model), one factor is changed at a time:

* noise model: Gaussian noise on the activations (SD ``level × SD`` of the layer's
  activations) before the RDM is computed, instead of on the RDM entries;
* number of stimuli: 20 (2 per digit) instead of 62;
* similarity between layers: every other layer (5 classes, less similar neighbours);
* instance idiosyncrasy: each instance's RDM from a random 10 % of its units;
* per-RDM gain: each RDM multiplied by ``exp(N(0, 0.5²))``, a scale that differs between
  instances (as signal-to-noise ratio differs between subjects and regions in fMRI).

Rows are evaluated without the bootstrap (point accuracies): the RDM, the RDM divided by
its mean (scale removed), its ranks (RGTM 0-1), the five RGTM family means (over the cells
of a grid of step 0.1) and the two-step RGDM. Writes ``sensitivity.csv``,
``sensitivity.md`` and ``sensitivity.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import xarray as xr

LEVELS = (0.0, 0.4, 1.6, 6.4)
GRID_STEP = 0.1  # a coarser grid than the paper's 0.05 (64 cells, not 229): ~4x faster
COLUMNS = (
    "RDM",
    "RDM / its mean (scale removed)",
    "RDM ranks (RGTM 0-1)",
    "RGTM (geometry-sensitive)",
    "RGTM (topology-sensitive)",
    "RGTM (intermediate)",
    "RGTM (local)",
    "RGTM (global)",
    "RGDM (two-step, 0-0.075)",
)


def _point_rows(rdms: xr.DataArray) -> dict[str, float]:
    from trsa_evaluation import rank_cell

    from brainalign import trsa

    kw = {"class_dim": "layer", "group_dim": "seed"}
    grid = trsa.grid_identification(rdms, **kw, grid=trsa.threshold_grid(step=GRID_STEP))
    fam = trsa.family_mean(grid)
    rows = {"RDM": trsa.identification_accuracy(rdms, **kw)}
    scaled = rdms / rdms.mean(("stimulus_a", "stimulus_b"))
    rows["RDM / its mean (scale removed)"] = trsa.identification_accuracy(scaled, **kw)
    rows["RDM ranks (RGTM 0-1)"] = rank_cell(grid)
    for f in trsa.FAMILIES:
        rows[f"RGTM ({f})"] = float(fam.sel(family=f))
    rows["RGDM (two-step, 0-0.075)"] = trsa.identification_accuracy(trsa.rgdm(rdms), **kw)
    return rows


def _gain(rdms: xr.DataArray, sd: float = 0.5, seed: int = 7) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    g = np.exp(rng.normal(scale=sd, size=rdms.shape[:2]))
    return rdms.copy(data=rdms.values * g[..., None, None])


def sensitivity(args, out: Path) -> None:
    """Run the grid; ``args`` as parsed by ``trsa_evaluation.py`` (seeds, epochs, levels)."""
    from _trsa_cnn import cnn_activations, pattern_noise_rdms, rdms_from_activations
    from trsa_evaluation import add_noise

    t0 = time.perf_counter()
    cache = out.parent / "cnn" / "cache"  # the cnn setting's weights, when it ran first
    if not cache.exists():
        cache = out / "cache"
    acts, _, ids, ys = cnn_activations(args.seeds, args.epochs, cache)
    base = rdms_from_activations(acts, ids)
    levels = (
        LEVELS if args.noise_levels is None else [float(v) for v in args.noise_levels.split(",")]
    )
    stim20 = np.concatenate([np.flatnonzero(ys == d)[:2] for d in range(10)])
    ids20 = [ids[i] for i in stim20]
    conditions = {
        "base: RDM-entry noise, 62 stimuli, 10 layers": lambda lv: add_noise(base, lv, 1),
        "pattern noise (on activations)": lambda lv: pattern_noise_rdms(acts, ids, lv, 1),
        "20 stimuli": lambda lv: add_noise(base.sel(stimulus_a=ids20, stimulus_b=ids20), lv, 1),
        "5 layers (every other: less similar)": lambda lv: add_noise(
            base.isel(layer=slice(0, None, 2)), lv, 1
        ),
        "10% of units per instance": lambda lv: add_noise(units10, lv, 1),
        "per-RDM gain exp(N(0, 0.5^2))": lambda lv: add_noise(gained, lv, 1),
    }
    units10 = rdms_from_activations(acts, ids, units=0.1, seed=3)
    gained = _gain(base)
    table: dict[tuple[str, float], dict[str, float]] = {}
    for cname, make in conditions.items():
        for lv in levels:
            table[cname, lv] = _point_rows(make(lv))
            print(
                f"{cname} | noise {lv:g}: RDM {table[cname, lv]['RDM']:.3f}, topology "
                f"{table[cname, lv]['RGTM (topology-sensitive)']:.3f} "
                f"({time.perf_counter() - t0:.0f}s)"
            )
    lines = ["condition,noise," + ",".join(f'"{c}"' for c in COLUMNS)]
    md = [
        "| condition | noise | " + " | ".join(COLUMNS) + " | best RGTM family - RDM |",
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    for (cname, lv), row in table.items():
        lines.append(f'"{cname}",{lv},' + ",".join(f"{row[c]:.4f}" for c in COLUMNS))
        best = max(row[c] for c in COLUMNS if c.startswith("RGTM ("))
        md.append(
            f"| {cname} | {lv:g} | "
            + " | ".join(f"{row[c]:.3f}" for c in COLUMNS)
            + f" | {best - row['RDM']:+.3f} |"
        )
    md += [
        "",
        "Layer identification accuracy (point estimates, leave one of "
        f"{args.seeds} seeds out), one factor changed at a time from the cnn setting. "
        "Chance 0.1 (0.2 for 5 layers).",
    ]
    (out / "sensitivity.csv").write_text("\n".join(lines) + "\n")
    (out / "sensitivity.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    _plot(table, list(conditions), levels, out)
    print(f"wrote {out}/sensitivity.csv, sensitivity.md, sensitivity.png")


def _plot(table, conditions, levels, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = ("RDM", "RDM ranks (RGTM 0-1)", "RGTM (topology-sensitive)", "RGDM (two-step, 0-0.075)")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharey=True)
    pos = np.arange(len(levels))
    for ax, cname in zip(axes.ravel(), conditions, strict=False):
        for col in show:
            ax.plot(pos, [table[cname, lv][col] for lv in levels], marker="o", label=col)
        ax.set_xticks(pos, [f"{lv:g}" for lv in levels])
        ax.set_title(cname, fontsize=8)
        ax.set_xlabel("noise level")
    axes[0, 0].set_ylabel("layer identification accuracy")
    axes[0, 0].legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(out / "sensitivity.png", dpi=110)
    plt.close(fig)
