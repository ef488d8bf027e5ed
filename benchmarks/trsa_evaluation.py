"""The tRSA paper's model-selection evaluation, reproduced in shape on networks trained here.

python benchmarks/trsa_evaluation.py [--out DIR] [--seeds 10] [--n-boot 100] [--quick]

Lin & Kriegeskorte (arXiv 2309.11028) identify the layer of a held-out network instance (or
the region of a held-out subject) from its RDM: leave one instance out, assign each of its
RDMs to the nearest class centroid of the other instances, bootstrap over instances and
stimuli. Rows: the RDM, the five RGTM threshold families (accuracy averaged over the family's
cells of the 229-cell grid; the bootstrap SD from 10 cells per family, as the authors sample
10 cells per family), and the two-step RGDM (lower 0, upper 0.075, the authors'
defaults), once with zero-length edges kept (brainalign) and once dropped (the authors'
networkx code and rsatoolbox). Columns: Gaussian noise added to the RDMs, with standard deviation
``level * std(all RDMs)`` and negative values clipped to 0 (the authors' ``cnn62_g_0p*``
datasets), for levels 0 ... 0.4.

The authors' data (10 seeds x 10 layers of a recurrent CNN on 62 images; human fMRI) are not
public. Here: 10 seeds of a 6-layer MLP (64-128-128-96-64-32-10, ReLU) trained for a few
seconds each on scikit-learn's digits (1,737 training images), RDMs (correlation distance)
of every layer for 60 held-out images (6 per digit). Chance is 1/6.

Writes ``table.csv`` (long), ``table.md`` (mean accuracy, bootstrap SD in brackets),
``accuracy_vs_noise.png`` and ``grid_maps.png`` (per-cell accuracy at the lowest and
highest noise level) into ``--out`` (default ``benchmarks/out/trsa_evaluation``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

WIDTHS = (64, 128, 128, 96, 64, 32, 10)
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)
N_PER_DIGIT = 6


def _data(seed: int = 0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    stim = np.concatenate(
        [rng.choice(np.flatnonzero(y == d), N_PER_DIGIT, replace=False) for d in range(10)]
    )
    train = np.setdiff1d(np.arange(len(y)), stim)
    return x[train], y[train], x[stim], y[stim]


def _train(seed: int, x, y, epochs: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for k in range(len(WIDTHS) - 1):
        layers.append(torch.nn.Linear(WIDTHS[k], WIDTHS[k + 1]))
        if k < len(WIDTHS) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = perm[start : start + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net


def _activations(net: torch.nn.Sequential, x) -> list[np.ndarray]:
    out, h = [], torch.from_numpy(x)
    with torch.no_grad():
        for module in net:
            h = module(h)
            if not isinstance(module, torch.nn.ReLU) and module is not net[-1]:
                continue
            if isinstance(module, torch.nn.Linear) and module is not net[-1]:
                continue
            out.append(h.numpy().copy())
    return out  # after each ReLU, and the logits


def network_rdms(n_seeds: int, epochs: int) -> tuple[xr.DataArray, list[float]]:
    """RDMs of every layer of ``n_seeds`` trained MLPs, dims (seed, layer, a, b)."""
    import brainalign as ba
    from brainalign import rsa

    xtr, ytr, xs, ys = _data()
    ids = [f"d{d}_{k}" for d in range(10) for k in range(N_PER_DIGIT)]
    per_seed, accs = [], []
    for seed in range(n_seeds):
        net = _train(seed, xtr, ytr, epochs)
        with torch.no_grad():
            accs.append(float((net(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean()))
        layer_rdms = []
        for act in _activations(net, xs):
            act = act + 1e-6 * np.random.default_rng(seed).normal(size=act.shape)  # dead units
            layer_rdms.append(np.asarray(rsa.rdm(ba.responses(act, ids), "correlation")))
        per_seed.append(layer_rdms)
    mats = np.array(per_seed)
    da = xr.DataArray(
        mats,
        dims=("seed", "layer", "stimulus_a", "stimulus_b"),
        coords={
            "seed": np.arange(n_seeds),
            "layer": [f"L{k + 1}" for k in range(mats.shape[1])],
            "stimulus_a": ids,
            "stimulus_b": ids,
        },
    )
    return da, accs


def add_noise(rdms: xr.DataArray, level: float, seed: int) -> xr.DataArray:
    """The authors' noise: N(0, level * std(all RDM entries)) per pair, clipped at 0."""
    vals = np.asarray(rdms.values)
    n = vals.shape[-1]
    i, j = np.triu_indices(n, k=1)
    vec = vals[..., i, j]
    rng = np.random.default_rng(seed)
    vec = np.maximum(vec + rng.normal(scale=np.std(vec) * level, size=vec.shape), 0)
    out = np.zeros_like(vals)
    out[..., i, j] = vec
    out[..., j, i] = vec
    return rdms.copy(data=out)


def evaluate(rdms: xr.DataArray, n_boot: int, seed: int) -> tuple[dict, xr.DataArray]:
    """Accuracy and bootstrap SD of every row for one noise level, and the grid map."""
    from brainalign import trsa

    kw = {"class_dim": "layer", "group_dim": "seed"}
    rows = {}

    def one(name, da):
        acc = trsa.identification_accuracy(da, **kw)
        boot = trsa.identification_accuracy(da, **kw, n_bootstrap=n_boot, seed=seed)
        rows[name] = (acc, float(np.nanstd(boot.values)))

    one("RDM", rdms)
    grid = trsa.grid_identification(rdms, **kw)
    # bootstrap SD: on up to 10 cells per family (the authors sample 10 cells per family)
    cells = trsa.threshold_grid()
    sub = np.concatenate(
        [
            np.flatnonzero(cells.values == f)[:: max(1, int((cells.values == f).sum()) // 10)][:10]
            for f in trsa.FAMILIES
        ]
    )
    pairs = np.c_[cells["lower"].values[sub], cells["upper"].values[sub]]
    boots = trsa.grid_identification(rdms, **kw, grid=pairs, n_bootstrap=n_boot, seed=seed)
    fam = trsa.family_mean(grid)
    fam_boot = trsa.family_mean(boots)
    for f in trsa.FAMILIES:
        rows[f"RGTM ({f})"] = (float(fam.sel(family=f)), float(fam_boot.sel(family=f).std()))
    one("RGDM (two-step, 0-0.075)", trsa.rgdm(rdms))
    one("RGDM (zero-length edges dropped)", trsa.rgdm(rdms, drop_zero_edges=True))
    return rows, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/out/trsa_evaluation")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="4 seeds, 3 epochs, 10 boots")
    parser.add_argument("--full", action="store_true", help="the default sizes (for run.py)")
    parser.add_argument(
        "--noise-levels",
        default=",".join(str(lv) for lv in NOISE_LEVELS),
        help="comma-separated noise levels (default the paper's 0,0.1,0.2,0.3,0.4)",
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.n_boot = 4, 3, 10
    levels = tuple(float(lv) for lv in args.noise_levels.split(","))
    torch.set_num_threads(1)  # small networks: threads only add overhead
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rdms, test_acc = network_rdms(args.seeds, args.epochs)
    print(
        f"trained {args.seeds} MLPs in {time.perf_counter() - t0:.1f}s; digit accuracy on "
        f"the 60 stimuli {np.mean(test_acc):.3f} (min {np.min(test_acc):.3f})"
    )
    results, maps = {}, {}
    for level in levels:
        noisy = add_noise(rdms, level, seed=int(level * 100))
        results[level], maps[level] = evaluate(noisy, args.n_boot, seed=1)
        print(f"noise {level:g} done at {time.perf_counter() - t0:.1f}s")
    names = list(results[levels[0]])
    lines = ["row,noise,accuracy,bootstrap_sd"]
    for name in names:
        for level in levels:
            acc, sd = results[level][name]
            lines.append(f'"{name}",{level},{acc:.4f},{sd:.4f}')
    (out / "table.csv").write_text("\n".join(lines) + "\n")
    head = "| statistic | " + " | ".join(f"noise {lv:g}" for lv in levels) + " |"
    md = [head, "|" + "---|" * (len(levels) + 1)]
    for name in names:
        cells = [f"{results[lv][name][0]:.3f} ({results[lv][name][1]:.3f})" for lv in levels]
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    chance = 1 / rdms.sizes["layer"]
    md.append("")
    md.append(
        f"Layer identification accuracy (leave one of {args.seeds} seeds out, nearest "
        f"centroid; bootstrap SD over seeds and stimuli, {args.n_boot} samples, in "
        f"brackets). Chance {chance:.3f}."
    )
    (out / "table.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    _figures(results, maps, names, out, chance, levels)
    print(f"wrote {out}/table.csv, table.md, accuracy_vs_noise.png, grid_maps.png")


def _figures(results, maps, names, out: Path, chance: float, levels) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainalign import trsa

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in names:
        acc = [results[lv][name][0] for lv in levels]
        sd = [results[lv][name][1] for lv in levels]
        ax.errorbar(levels, acc, yerr=sd, marker="o", capsize=2, label=name)
    ax.axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("noise level (SD / SD of the RDM entries)")
    ax.set_ylabel("layer identification accuracy")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_noise.png", dpi=120)
    plt.close(fig)
    lo, hi = levels[0], levels[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, level in zip(axes, (lo, hi), strict=True):
        trsa.plot_grid(maps[level], ax=ax, vmin=chance, vmax=1, title=f"noise {level:g}")
    fig.tight_layout()
    fig.savefig(out / "grid_maps.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
