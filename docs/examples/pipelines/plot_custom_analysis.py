"""
Write your own pipeline analysis
================================

A lab adds an analysis to the pipeline runner without editing brainalign: one class that
owns its spec keys, its units' cache keys, the computation of a unit, the assembly of the
results and its report section. Here: linear CKA (centered kernel alignment, Kornblith et
al. 2019) between the Haxby 2001 ventral-temporal stimulus-mean patterns and each model's
features. The runner caches each unit under its key, shows it in ``--dry-run``, runs it on
Dask workers and writes it into ``results.nc`` and the report.

From another package, register it with an entry point instead of the decorator::

    [project.entry-points."brainalign.analyses"]
    linear_cka = "mylab.cka:LinearCKA"
"""

# %%
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

import brainalign as ba
from brainalign.pipeline import Analysis, content_key, register_analysis


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (stimulus × feature) matrices (Kornblith et al. 2019, eq. 5)."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x, "fro") ** 2
    return float(cross / (np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")))


@register_analysis
class LinearCKA(Analysis):
    """Linear CKA of a pattern source's stimulus means and each model entry's features."""

    name = "linear_cka"
    section = "Linear CKA"
    progress = "CKA units"
    schema = {"min_stimuli": (int, False, 3)}  # key: (type, required, default)
    limits = {"min_stimuli": (2, 100_000, "stimuli a CKA needs at least")}

    def validate(self, c, params, spec):
        for bname, src in spec["brain"].items():
            if src["dataset"] != "haxby2001":
                c.fail(("brain", bname, "dataset"), "linear_cka needs a pattern source.")

    def key(self, ctx, unit):
        # exactly what the unit reads: the source's data (file hashes and options), the
        # model's settings and weights, and this analysis's settings
        return content_key(
            {
                "data": ctx.data_key(unit.brain),
                "model": ctx.model_content(unit.model),
                "linear_cka": ctx.params(self.name),
            }
        )

    def compute(self, ctx, unit):
        means = ctx.data(unit.brain).means  # (stimulus, voxel), the dataset's order
        ids = [str(s) for s in means.stimulus.values]
        if len(ids) < ctx.params(self.name)["min_stimuli"]:
            raise ValueError(f"brain.{unit.brain} has only {len(ids)} stimuli")
        scores = {
            entry: linear_cka(means.values, feats.sel(stimulus=ids).values)
            for entry, feats in ctx.features(unit.model, ids).items()
        }
        return xr.Dataset(
            {"cka": ("model", list(scores.values()))}, coords={"model": list(scores)}
        )

    def assemble(self, ctx, results):
        per_brain = {}
        for unit, ds in results.items():
            per_brain.setdefault(unit.brain, []).append(ds[["cka"]])
        nodes = {f"linear_cka/{b}": xr.concat(parts, "model") for b, parts in per_brain.items()}
        return nodes, None

    def report(self, report, ctx, nodes, state):
        rows = [
            {"brain": path.split("/")[1], "model": str(m), "linear CKA": float(v)}
            for path, ds in nodes.items()
            for m, v in zip(ds.model.values, ds.cka.values, strict=True)
        ]
        report.add_table(rows, "Linear CKA", section=self.section)


# %%
# A spec that uses it beside RSA. ``dry_run`` plans and says what a run would load.
spec = {
    "name": "cka_demo",
    "brain": {"vt": {"dataset": "haxby2001"}},
    "models": {
        "cats": {
            "kind": "categorical",
            "groups": {
                "animate": ["face", "cat"],
                "place": ["house"],
                "object": ["chair", "shoe", "bottle", "scissors"],
                "scrambled": ["scrambledpix"],
            },
        },
        "net": {"kind": "random_network", "n_layers": 2},
    },
    "analyses": {"rsa": {"n_permutations": 100, "n_bootstrap": 0}, "linear_cka": {}},
}
out = Path(tempfile.mkdtemp()) / "cka"
print(ba.run(spec, out=out, dry_run=True).status)
res = ba.run(spec, out=out)
cka = res.tree["linear_cka/vt"].to_dataset()
print(cka.cka.to_series())

# %%
# The stored numbers are the ones computed by hand; a second run loads every unit.
means = ba.average_trials(ba.datasets.load_haxby())
net = ba.data.random_network(means.stimulus.values, n_layers=2, seed=0)  # the spec default
by_hand = linear_cka(means.values, net["layer2"]["activations"].values)
print(f"net: pipeline {float(cka.cka.sel(model='net')):.6f}, by hand {by_hand:.6f}")
assert np.isclose(float(cka.cka.sel(model="net")), by_hand)
print(ba.run(spec, out=out).status)
