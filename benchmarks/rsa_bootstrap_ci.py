"""Stimulus-bootstrap CIs: ``brainalign.rsa.bootstrap_ci`` versus rsatoolbox 0.3.2.

python benchmarks/rsa_bootstrap_ci.py                 # both cases, 1000 samples
python benchmarks/rsa_bootstrap_ci.py --method pearson

Case (a) is real and incomplete: the SimLex-999 judgments (shipped, ~1000 words, only the
999 rated pairs known) against the RDMs of the layers of an untrained random network over
the same words. Case (b) is a complete RDM of 92 stimuli (the size of the classic 92-image
set) against 7 noisier copies of its geometry.

The reference is rsatoolbox's stimulus bootstrap as ``eval_bootstrap_pattern`` runs it: per
sample, ``bootstrap_sample_pattern`` draws the stimuli, ``subsample_pattern`` resamples the
model RDMs and ``compare`` evaluates them. That loop is linear in the number of samples, so
it runs ``--reference-samples`` samples (default 10) and its time is scaled to the full
number. Each case also checks that both agree on rsatoolbox's own draws (1e-8).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import _print, _time

RS_NAME = {"pearson": "corr", "cosine": "cosine", "spearman": "spearman"}


def _simlex():
    """The SimLex-999 RDM and 7 random-network layer RDMs over its words (labeled)."""
    import brainalign as ba
    from brainalign import rsa
    from brainalign.datasets import get_manifest
    from brainalign.loaders.judgments import load_pairwise

    path = get_manifest("word_similarity")["path"] / "simlex999.txt"
    data = load_pairwise(path, kind="similarity", scale=(0, 10))
    ids = [str(s) for s in data["stimulus_a"].values]
    net = ba.data.random_network(ids, n_layers=7, seed=0)
    layers = sorted(net.children)
    rdms = {name: rsa.rdm(net[name]["activations"], "correlation") for name in layers}
    return data, rdms


def _complete(n: int = 92, n_models: int = 7, seed: int = 0):
    import brainalign as ba
    from brainalign import rsa

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 50))
    ids = [f"s{k}" for k in range(n)]
    data = rsa.rdm(ba.responses(x + rng.normal(size=x.shape), ids), "correlation")
    rdms = {
        f"m{k}": rsa.rdm(ba.responses(x + 0.5 * (k + 1) * rng.normal(size=x.shape), ids))
        for k in range(n_models)
    }
    return data, rdms


def _reference(data, rdms, method: str, n_samples: int):
    """rsatoolbox's per-sample loop (``eval_bootstrap_pattern``'s body); draws and values."""
    from rsatoolbox.inference import bootstrap_sample_pattern
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as rs_compare

    ids = [str(s) for s in data["stimulus_a"].values]
    n = len(ids)
    i, j = np.triu_indices(n, 1)
    rs_data = RDMs(data.values[None, i, j], pattern_descriptors={"index": np.arange(n)})
    models = np.stack([r.sel(stimulus_a=ids, stimulus_b=ids).values[i, j] for r in rdms.values()])
    models[:, np.isnan(rs_data.dissimilarities[0])] = np.nan  # rsatoolbox: same NaN pairs
    rs_models = RDMs(models, pattern_descriptors={"index": np.arange(n)})
    draws, values = [], []
    for _ in range(n_samples):
        sample, idx = bootstrap_sample_pattern(rs_data)
        pred = rs_models.subsample_pattern("index", idx)
        values.append(rs_compare(pred, sample, method=RS_NAME[method])[:, 0])
        draws.append(idx)
    return np.array(draws), np.array(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the sizes above (always)")
    parser.add_argument("--method", default="spearman", choices=sorted(RS_NAME))
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of brainalign")
    parser.add_argument("--reference-samples", type=int, default=10)
    parser.add_argument("--device", default=None, help="brainalign device (default: config)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    from brainalign import rsa

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    rows = []
    for label, (data, rdms) in (
        ("(a) SimLex-999 (incomplete), 7 layers", _simlex()),
        ("(b) complete n=92, 7 models", _complete()),
    ):

        def ours(data=data, rdms=rdms):
            return rsa.bootstrap_ci(
                data, rdms, args.method, n_bootstrap=args.n_bootstrap, seed=0, device=args.device
            )

        times, res = _time(ours, args.repeat, sync)
        t_ours = statistics.median(times)
        assert res.attrs["n_bootstrap"] == args.n_bootstrap
        np.random.seed(0)  # noqa: NPY002 - rsatoolbox draws from numpy's global generator
        t0 = time.perf_counter()
        draws, ref = _reference(data, rdms, args.method, args.reference_samples)
        t_ref = (time.perf_counter() - t0) * args.n_bootstrap / args.reference_samples
        same = rsa.bootstrap_ci(data, rdms, args.method, indices=draws, device=args.device)
        valid = same.valid.values
        got = same.bootstrap_evaluations.values[valid]
        np.testing.assert_allclose(got, ref[valid], rtol=0, atol=1e-8)
        rows.append(
            {
                "benchmark": f"{label} {args.method} {args.n_bootstrap}x",
                "reference": "rsatoolbox*",
                "brainalign_s": t_ours,
                "reference_s": t_ref,
                "ratio": t_ref / t_ours,
                "target": None,
                "met": None,
            }
        )
    _print(rows)
    print(
        f"* rsatoolbox ran {args.reference_samples} of the {args.n_bootstrap} samples (one "
        "timed run), its time scaled linearly; brainalign: median of "
        f"{args.repeat} runs of all samples. Both agree on rsatoolbox's draws to 1e-8."
    )


if __name__ == "__main__":
    main()
