"""Model-evaluation bootstraps: brainalign versus rsatoolbox 0.3.2 ``eval_bootstrap_*``.

python benchmarks/rsa_inference.py                # quick sizes (seconds)
python benchmarks/rsa_inference.py --full         # the RSA issue's sizes (minutes)
python benchmarks/rsa_inference.py --method cosine
python benchmarks/rsa_inference.py --full --threads 1   # on a busy (oversubscribed) CPU

brainalign evaluates all bootstrap samples in one batched computation. rsatoolbox loops over
the samples in Python, one at a time, so its time is linear in the number of samples: it runs
``--reference-samples`` samples (default 20) and its time is scaled to the full number of
samples (``time * n_bootstrap / reference_samples``), as the table's footnote states. Each
case also checks that both packages agree on the reference's own draws (same resampling
indices, evaluations and noise ceilings equal to 1e-8).
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
from _harness import _print

RS_NAME = {"pearson": "corr", "cosine": "cosine", "spearman": "spearman"}
_SAMPLERS = ("bootstrap_sample", "bootstrap_sample_rdm", "bootstrap_sample_pattern")


def _data(n: int, n_subjects: int, n_models: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 100))
    data = np.stack([1 - np.corrcoef(x + rng.normal(size=x.shape)) for _ in range(n_subjects)])
    models = np.stack(
        [1 - np.corrcoef(x + 0.5 * i * rng.normal(size=x.shape)) for i in range(n_models)]
    )
    return data, models


def _record(rs_eval):
    """Wrap rsatoolbox's samplers so that their draws can be replayed in brainalign.

    Returns ``take`` (the draws so far, then cleared) and ``restore`` (undoes the patches).
    """
    draws: dict[str, list] = {"subject": [], "stimulus": []}
    saved = {name: getattr(rs_eval, name) for name in _SAMPLERS}
    saved_trange = rs_eval.tqdm.trange

    def wrap(name):
        original = getattr(rs_eval, name)

        def recorded(*args, **kwargs):
            out = original(*args, **kwargs)
            if name == "bootstrap_sample":
                draws["subject"].append(out[1])
                draws["stimulus"].append(out[2])
            elif name == "bootstrap_sample_rdm":
                draws["subject"].append(out[1])
            else:
                draws["stimulus"].append(out[1])
            return out

        setattr(rs_eval, name, recorded)

    for name in _SAMPLERS:
        wrap(name)
    rs_eval.tqdm.trange = range  # no progress bars in the timings

    def take():
        out = {k: np.array(v, dtype=np.int64) for k, v in draws.items() if v}
        for v in draws.values():
            v.clear()
        return out

    def restore():
        for name, fn in saved.items():
            setattr(rs_eval, name, fn)
        rs_eval.tqdm.trange = saved_trange

    return take, restore


def _median_time(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--method", default="pearson", choices=sorted(RS_NAME))
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of brainalign")
    parser.add_argument("--reference-samples", type=int, default=20)
    parser.add_argument("--device", default=None, help="brainalign device (default: config)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from rsatoolbox.inference import evaluate as rs_eval
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    from brainalign.rsa._evaluate import evaluate

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    n, n_subj, n_mod, n_boot = (200, 20, 5, 1000) if args.full else (60, 10, 3, 200)
    data, models = _data(n, n_subj, n_mod)
    i, j = np.triu_indices(n, k=1)
    rd = RDMs(data[:, i, j])
    mods = [ModelFixed(f"m{k}", models[k][i, j]) for k in range(n_mod)]
    take, restore = _record(rs_eval)
    n_ref = min(args.reference_samples, n_boot)
    cases = [
        ("subject", "eval_bootstrap_rdm", rs_eval.eval_bootstrap_rdm, 1000.0),
        ("stimulus", "eval_bootstrap_pattern", rs_eval.eval_bootstrap_pattern, 300.0),
        ("both", "eval_dual_bootstrap", rs_eval.eval_dual_bootstrap, None),
    ]
    rows = []
    for boot, ref_name, ref_fn, target in cases:

        def ours(boot=boot):
            out = evaluate(
                data, models, args.method, resample=boot, n_bootstrap=n_boot, seed=0,
                device=args.device,
            )  # fmt: skip
            sync()
            return out

        t_ours, res = _median_time(ours, args.repeat)
        assert res.attrs["n_bootstrap"] == n_boot
        np.random.seed(0)  # noqa: NPY002 - rsatoolbox draws from numpy's global generator
        take()
        t0 = time.perf_counter()
        ref = ref_fn(mods, rd, method=RS_NAME[args.method], N=n_ref)
        t_ref = (time.perf_counter() - t0) * n_boot / n_ref
        # agreement on the reference's own draws
        same = evaluate(data, models, args.method, resample=boot, indices=take())
        ref_ev = ref.evaluations if boot != "both" else ref.evaluations[:, :, 0, 0, 0]
        ours_ev = same.bootstrap_evaluations.values
        ours_ev = ours_ev if boot != "both" else ours_ev[0]
        np.testing.assert_allclose(ours_ev, ref_ev, rtol=0, atol=1e-8)
        rows.append(
            {
                "benchmark": f"{ref_name} {args.method} {n_boot}x ({n}, {n_subj}s, {n_mod}m)",
                "reference": "rsatoolbox*",
                "brainalign_s": t_ours,
                "reference_s": t_ref,
                "ratio": t_ref / t_ours,
                "target": target if args.full else None,
                "met": None if not (args.full and target) else t_ref / t_ours >= target,
            }
        )
    restore()
    _print(rows)
    print(
        f"* rsatoolbox ran {n_ref} of the {n_boot} bootstrap samples (one timed run); its time "
        f"is scaled linearly by {n_boot}/{n_ref} (its per-sample loop is linear in N). "
        f"brainalign: median of {args.repeat} runs of all {n_boot} samples. Both agree on "
        "rsatoolbox's draws to 1e-8. Targets apply to --full."
    )


if __name__ == "__main__":
    main()
