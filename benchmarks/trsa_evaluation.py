"""The tRSA paper's model-selection evaluation, reproduced in shape on networks and fMRI here.

python benchmarks/trsa_evaluation.py [--setting mlp|cnn|haxby|sensitivity] [--out DIR]
    [--seeds 10] [--epochs N] [--n-boot 100] [--noise-levels 0,0.1,...] [--quick]

Lin & Kriegeskorte (arXiv 2309.11028) identify the layer of a held-out network instance (or
the region of a held-out subject) from its RDM: leave one instance out, assign each of its
RDMs to the nearest class centroid of the other instances, bootstrap over instances and
stimuli. Rows: the RDM, the RDM's ranks (the RGTM cell lower 0, upper 1: the RDM without
its scale), the five RGTM threshold families (accuracy averaged over the family's cells of
the 229-cell grid; the bootstrap SD from 10 cells per family, as the authors sample 10
cells per family), and the two-step RGDM (lower 0, upper 0.075, the authors' defaults), once
with zero-length edges kept (brainalign) and once dropped (the authors' networkx code and
rsatoolbox). Columns: Gaussian noise added to the RDMs, with standard deviation
``level * std(all RDMs)`` and negative values clipped to 0 (the authors' ``cnn62_g_0p*``
datasets).

Settings (the authors' data, 10 seeds x 10 layers of a recurrent CNN on 62 images and
human fMRI, are not public):

``mlp`` (default)
    10 seeds of a 6-layer MLP (64-128-128-96-64-32-10) trained on scikit-learn's digits,
    60 held-out images; noise levels 0 ... 0.4. Output ``benchmarks/out/trsa_evaluation``.
``cnn``
    10 seeds of a 10-layer convolutional network (8 conv layers, a hidden and an output
    layer; ``_trsa_cnn.py``) trained on the digits, 62 held-out images; noise levels 0 ...
    0.4, then doubled until the RDM's accuracy is within two binomial standard errors of
    chance. Weights cached under ``<out>/cache``. Output ``.../trsa_evaluation/cnn``.
``haxby``
    Region identification on the shipped Haxby 2001 subject (``_trsa_haxby.py``): regions
    are spatial parcels of the whole-brain 25 mm data (and of the ventral-temporal slice);
    groups are independent splits of the 12 runs; columns are runs per split (fewer runs:
    more measurement noise). Output ``.../trsa_evaluation/haxby``.
``sensitivity``
    A short grid on the cached CNN (``_trsa_sensitivity.py``): noise model and scale, number
    of stimuli, similarity between layers, instance idiosyncrasy, per-instance gain.

Writes ``table.csv`` (long), ``table.md`` (mean accuracy, bootstrap SD in brackets),
``accuracy_vs_noise.png`` and ``grid_maps.png`` (per-cell accuracy at the first, middle
and last column) into ``--out``. The guide, with the paper's numbers beside these:
``docs/trsa.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))

WIDTHS = (64, 128, 128, 96, 64, 32, 10)
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)
BOOT_CELLS = 3  # cells per family in the bootstrap SD of the family means
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
    from _trsa_cnn import train_classifier

    return train_classifier(torch.nn.Sequential(*layers), x, y, epochs, seed, lr=1e-3)


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


def evaluate(
    rdms: xr.DataArray,
    n_boot: int,
    seed: int,
    class_dim: str = "layer",
    group_dim: str = "seed",
) -> tuple[dict, xr.DataArray]:
    """Accuracy and bootstrap SD of every row for one column, and the grid map."""
    from brainalign import trsa

    kw = {"class_dim": class_dim, "group_dim": group_dim}
    rows = {}

    def one(name, da):
        acc = trsa.identification_accuracy(da, **kw)
        sd = np.nan
        if n_boot:
            boot = trsa.identification_accuracy(da, **kw, n_bootstrap=n_boot, seed=seed)
            sd = float(np.nanstd(boot.values))
        rows[name] = (acc, sd)

    one("RDM", rdms)
    one("RDM / its mean (scale removed)", rdms / rdms.mean(("stimulus_a", "stimulus_b")))
    grid = trsa.grid_identification(rdms, **kw)
    rows["RDM ranks (RGTM 0-1)"] = (rank_cell(grid), np.nan)
    # bootstrap SD: on BOOT_CELLS cells per family, spread over the family (the authors
    # sample 10 cells per family; fewer here, as the bootstrap dominates the run time)
    cells = trsa.threshold_grid()
    fam = trsa.family_mean(grid)
    fam_sd = dict.fromkeys(trsa.FAMILIES, np.nan)
    if n_boot:
        sub = np.concatenate(
            [
                np.flatnonzero(cells.values == f)[
                    np.linspace(0, int((cells.values == f).sum()) - 1, BOOT_CELLS).astype(int)
                ]
                for f in trsa.FAMILIES
            ]
        )
        pairs = np.c_[cells["lower"].values[sub], cells["upper"].values[sub]]
        boots = trsa.grid_identification(rdms, **kw, grid=pairs, n_bootstrap=n_boot, seed=seed)
        fam_boot = trsa.family_mean(boots)
        fam_sd = {f: float(fam_boot.sel(family=f).std()) for f in trsa.FAMILIES}
    for f in trsa.FAMILIES:
        rows[f"RGTM ({f})"] = (float(fam.sel(family=f)), fam_sd[f])
    one("RGDM (two-step, 0-0.075)", trsa.rgdm(rdms))
    one("RGDM (zero-length edges dropped)", trsa.rgdm(rdms, drop_zero_edges=True))
    return rows, grid


def rank_cell(grid: xr.DataArray) -> float:
    """The grid's accuracy at lower 0, upper 1: the RDM's ranks scaled to [0, 1]."""
    lower, upper = grid["lower"].values, grid["upper"].values
    return float(grid.values[np.flatnonzero(np.isclose(lower, 0) & np.isclose(upper, 1))[0]])


def chance_band(n_classes: int, n_groups: int) -> float:
    """Chance plus two binomial standard errors over the ``n_groups * n_classes`` RDMs."""
    p = 1 / n_classes
    return p + 2 * np.sqrt(p * (1 - p) / (n_groups * n_classes))


def noise_table(rdms, levels, n_boot, extend: bool, log=print, **dims):
    """Evaluate every noise level; with ``extend``, double the last level until chance."""
    class_dim, group_dim = dims.get("class_dim", "layer"), dims.get("group_dim", "seed")
    band = chance_band(rdms.sizes[class_dim], rdms.sizes[group_dim])
    results, maps, levels = {}, {}, list(levels)
    t0 = time.perf_counter()
    k = 0
    while k < len(levels):
        level = levels[k]
        noisy = add_noise(rdms, level, seed=round(level * 100))
        results[level], maps[level] = evaluate(noisy, n_boot, 1, class_dim, group_dim)
        log(
            f"noise {level:g}: RDM {results[level]['RDM'][0]:.3f} "
            f"({time.perf_counter() - t0:.0f}s)"
        )
        k += 1
        if extend and k == len(levels) and results[level]["RDM"][0] > band and k < 16:
            levels.append(2 * level if level > 0 else 0.1)
    return results, maps, levels


def write_outputs(
    results,
    maps,
    columns,
    out: Path,
    chance: float,
    caption: str,
    xlabel: str,
    colname=lambda c: f"noise {c:g}",
    log=print,
) -> None:
    """Write table.csv, table.md, accuracy_vs_noise.png and grid_maps.png."""
    names = list(results[columns[0]])
    lines = ["row,column,accuracy,bootstrap_sd"]
    for name in names:
        for c in columns:
            acc, sd = results[c][name]
            lines.append(f'"{name}",{c},{acc:.4f},{sd:.4f}')
    (out / "table.csv").write_text("\n".join(lines) + "\n")
    head = "| statistic | " + " | ".join(colname(c) for c in columns) + " |"
    md = [head, "|" + "---|" * (len(columns) + 1)]
    for name in names:
        cells = []
        for c in columns:
            acc, sd = results[c][name]
            cells.append(f"{acc:.3f}" + ("" if np.isnan(sd) else f" ({sd:.3f})"))
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    md += ["", caption]
    (out / "table.md").write_text("\n".join(md) + "\n")
    log("\n".join(md))
    _figures(results, maps, names, out, chance, columns, xlabel)
    log(f"wrote {out}/table.csv, table.md, accuracy_vs_noise.png, grid_maps.png")


def _figures(results, maps, names, out: Path, chance: float, columns, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainalign import trsa

    fig, ax = plt.subplots(figsize=(7, 4.2))
    pos = np.arange(len(columns))
    for name in names:
        acc = [results[c][name][0] for c in columns]
        sd = [results[c][name][1] for c in columns]
        ax.errorbar(pos, acc, yerr=sd, marker="o", capsize=2, label=name)
    ax.axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xticks(pos, [f"{c:g}" for c in columns])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("identification accuracy")
    ax.legend(fontsize=6.5, loc="best")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_noise.png", dpi=120)
    plt.close(fig)
    shown = sorted({columns[0], columns[len(columns) // 2], columns[-1]})
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4.2), squeeze=False)
    for ax, c in zip(axes[0], shown, strict=True):
        trsa.plot_grid(maps[c], ax=ax, vmin=chance, vmax=1, title=f"{xlabel.split(' (')[0]} {c:g}")
    fig.tight_layout()
    fig.savefig(out / "grid_maps.png", dpi=120)
    plt.close(fig)


def run_mlp(args, out: Path) -> None:
    """The shipped setting: 6-layer MLPs on digits, noise 0 ... 0.4."""
    t0 = time.perf_counter()
    rdms, test_acc = network_rdms(args.seeds, args.epochs)
    print(
        f"trained {args.seeds} MLPs in {time.perf_counter() - t0:.1f}s; digit accuracy on "
        f"the 60 stimuli {np.mean(test_acc):.3f} (min {np.min(test_acc):.3f})"
    )
    levels = _levels(args.noise_levels, NOISE_LEVELS)
    results, maps, levels = noise_table(rdms, levels, args.n_boot, extend=args.extend)
    chance = 1 / rdms.sizes["layer"]
    caption = (
        f"Layer identification accuracy (leave one of {args.seeds} seeds out, nearest "
        f"centroid; bootstrap SD over seeds and stimuli, {args.n_boot} samples, in "
        f"brackets). Chance {chance:.3f}."
    )
    write_outputs(
        results, maps, levels, out, chance, caption, "noise level (SD / SD of the RDM entries)"
    )


def run_cnn(args, out: Path) -> None:
    """10-layer CNNs on digits, 62 held-out images, noise extended until chance."""
    from _trsa_cnn import cnn_activations, rdms_from_activations

    t0 = time.perf_counter()
    acts, test_acc, ids, _ = cnn_activations(args.seeds, args.epochs, out / "cache")
    rdms = rdms_from_activations(acts, ids)
    print(
        f"{args.seeds} CNNs ready in {time.perf_counter() - t0:.1f}s; digit accuracy on "
        f"the {len(ids)} stimuli {np.mean(test_acc):.3f} (min {np.min(test_acc):.3f})"
    )
    levels = _levels(args.noise_levels, NOISE_LEVELS)
    results, maps, levels = noise_table(rdms, levels, args.n_boot, extend=args.extend)
    chance = 1 / rdms.sizes["layer"]
    band = chance_band(rdms.sizes["layer"], rdms.sizes["seed"])
    caption = (
        f"Layer identification accuracy, {rdms.sizes['layer']} layers of a CNN (8 conv, 1 "
        f"hidden, logits) trained on digits, {args.epochs} epochs, {len(ids)} held-out "
        f"stimuli (leave one of {args.seeds} seeds out, nearest centroid; bootstrap SD over "
        f"seeds and stimuli, {args.n_boot} samples, in brackets). Chance {chance:.3f}; "
        f"noise extended until the RDM is within {band:.3f} (chance + 2 binomial SE)."
    )
    write_outputs(
        results, maps, levels, out, chance, caption, "noise level (SD / SD of the RDM entries)"
    )


def run_haxby(args, out: Path) -> None:
    """Region identification across independent run splits of the shipped Haxby subject."""
    from _trsa_haxby import REGION_SETS, split_rdms

    for name in REGION_SETS:
        sub = out / name
        sub.mkdir(parents=True, exist_ok=True)
        results, maps, cols = {}, {}, list(args.runs_per_split)
        for r in cols:
            rdms = split_rdms(name, r)
            results[r], maps[r] = evaluate(rdms, args.n_boot, 1, "region", "split")
            print(f"{name}: {r} run(s) per split, RDM {results[r]['RDM'][0]:.3f}")
        chance = 1 / rdms.sizes["region"]
        caption = (
            f"Region identification accuracy, Haxby 2001 subject 1, {REGION_SETS[name]}; "
            f"{rdms.sizes['stimulus_a']} stimuli (category means), correlation-distance RDMs; "
            "groups are disjoint splits of the 12 runs (12 / runs-per-split of them), leave "
            f"one split out, nearest centroid; bootstrap SD ({args.n_boot} samples over splits "
            f"and stimuli) in brackets. Chance {chance:.3f}."
        )
        write_outputs(
            results,
            maps,
            cols,
            sub,
            chance,
            caption,
            "runs per split (fewer: noisier)",
            colname=lambda c: f"{c:g} run(s)/split",
        )


def run_sensitivity(args, out: Path) -> None:
    """The factor grid on the cached CNN (see _trsa_sensitivity.py)."""
    from _trsa_sensitivity import sensitivity

    sensitivity(args, out)


def _levels(text: str | None, default) -> list[float]:
    return list(default) if text is None else [float(v) for v in text.split(",")]


SETTINGS = {"mlp": run_mlp, "cnn": run_cnn, "haxby": run_haxby, "sensitivity": run_sensitivity}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setting", choices=tuple(SETTINGS), default="mlp")
    parser.add_argument(
        "--out", default=None, help="default benchmarks/out/trsa_evaluation[/SETTING]"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=None, help="default 15 (mlp, cnn)")
    parser.add_argument("--n-boot", type=int, default=None, help="default 100 (30 for cnn)")
    parser.add_argument("--quick", action="store_true", help="4 seeds, 3 epochs, 10 boots")
    parser.add_argument("--full", action="store_true", help="the default sizes (for run.py)")
    parser.add_argument(
        "--noise-levels",
        default=None,
        help="comma-separated noise levels (default the paper's 0,0.1,0.2,0.3,0.4)",
    )
    parser.add_argument(
        "--extend",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="double the noise level until the RDM is at chance (default: on for cnn)",
    )
    parser.add_argument(
        "--runs-per-split",
        default="1,2,3,4,6",
        help="haxby: comma-separated runs per split (12 must be divisible by each)",
    )
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 15
    if args.n_boot is None:
        args.n_boot = 30 if args.setting == "cnn" else 100
    if args.quick:
        args.seeds, args.epochs, args.n_boot = 4, 3, 10
    if args.extend is None:
        args.extend = args.setting == "cnn"
    args.runs_per_split = [int(v) for v in str(args.runs_per_split).split(",")]
    bad = [r for r in args.runs_per_split if r < 1 or 12 % r or r == 12]
    if bad:
        parser.error(f"--runs-per-split: each value must divide 12 and be < 12; got {bad}")
    if args.out is None:
        base = Path("benchmarks/out/trsa_evaluation")
        args.out = str(base if args.setting == "mlp" else base / args.setting)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # small networks: threads only add overhead
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    SETTINGS[args.setting](args, out)
    print(f"setting {args.setting} took {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
