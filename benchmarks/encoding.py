"""Encoding benchmarks: brainalign.encoding versus himalaya 0.4.11 on the same data.

python benchmarks/encoding.py                  # quick sizes (seconds)
python benchmarks/encoding.py --full           # the encoding issue's sizes (minutes)
python benchmarks/encoding.py --full --threads 1 2 --memory

Cases (the issue's sizes with --full; himalaya's numpy backend, medians, same process):

* RidgeCV, float32: n=3000 samples, p=1000 features, t=20000 targets, 9 alphas
  logspace(-2, 6), 5-fold KFold, no intercept (himalaya's default), target ≥ 2.5x;
* the same in float64 with t=5000, target ≥ 3x;
* KernelRidgeCV (linear kernel), float32: n=1000, p=20000, t=10000, target ≥ 1.8x
  (brainalign's RidgeCV takes its dual path there by FLOP count);
* KernelRidgeCV with an rbf kernel, float64: n=2000, p=1000, t=5000 (quick: n=400,
  p=100, t=500), kernels computed from the features by each package; target ≥ 1x;
* MultipleKernelRidgeCV, random search, float64: two feature bands (rbf and degree-2
  polynomial kernels), n=1000, bands of 500 and 1000 features, t=2000, 20 candidates,
  5-fold (quick: n=200, bands 50 and 100, t=300, 8 candidates); himalaya runs its
  ``ColumnKernelizer`` + ``MultipleKernelRidgeCV(kernels="precomputed")`` pipeline on
  the same candidates (same seed); target ≥ 1x;
* with --memory, the peak extra resident memory of each fit, measured in a fresh process
  that loads the data from .npy files (so nothing but the fit adds to the peak), as a
  multiple of the data size (X + Y); target ≤ 3x.

On a CUDA machine the float32 primal case also runs against himalaya's ``torch_cuda``
backend on the same GPU (target ≥ 3x) and prints brainalign's end-to-end time.

Both packages report the same scores: brainalign is asked for neg-MSE (``scoring``),
which is also its default selection criterion and himalaya's. Each case checks that the
selected alphas agree (float32: the float64 score lost by brainalign's choice is tiny).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Case, run_cases

ALPHAS = np.logspace(-2, 6, 9)


def _data(n: int, p: int, t: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32).astype(dtype)
    W = rng.standard_normal((p, t), dtype=np.float32).astype(dtype) / np.asarray(p**0.5, dtype)
    Y = X @ (W * rng.uniform(0, 1, t).astype(dtype)) + rng.standard_normal(
        (n, t), dtype=np.float32
    ).astype(dtype)
    assert X.dtype == Y.dtype == np.dtype(dtype)
    return X, Y


def _ours(kind: str, X: np.ndarray, Y: np.ndarray, device: str = "cpu"):
    from brainalign.encoding import RidgeCV

    solver = "dual" if kind == "kernel" else "primal"
    with warnings.catch_warnings():  # alpha=0.01 is below the float32 rounding level there
        warnings.simplefilter("ignore")
        return RidgeCV(
            ALPHAS.astype(X.dtype),
            cv=5,
            fit_intercept=False,
            scoring="neg_mse",
            solver=solver,
            device=device,
            dtype=str(X.dtype),
        ).fit(X, Y)


def _himalaya(kind: str, X, Y):
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "kernel":
            return KernelRidgeCV(alphas=ALPHAS.astype(X.dtype), kernel="linear", cv=5).fit(X, Y)
        return RidgeCV(alphas=ALPHAS.astype(X.dtype), cv=5).fit(X, Y)


KERNEL_ALPHAS = np.logspace(-3, 3, 7)


def _ours_kernel(X: np.ndarray, Y: np.ndarray):
    from brainalign.encoding import KernelRidgeCV

    return KernelRidgeCV(
        KERNEL_ALPHAS, kernel="rbf", cv=5, fit_intercept=False, scoring="neg_mse", device="cpu"
    ).fit(X, Y)


def _himalaya_kernel(X: np.ndarray, Y: np.ndarray):
    from himalaya.kernel_ridge import KernelRidgeCV

    return KernelRidgeCV(alphas=KERNEL_ALPHAS, kernel="rbf", cv=5).fit(X, Y)


def _bands(p1: int) -> tuple[slice, slice]:
    return slice(0, p1), slice(p1, None)


MKR_KERNELS = (("rbf", None), ("poly", {"degree": 2}))


def _ours_mkr(X: np.ndarray, Y: np.ndarray, p1: int, n_iter: int):
    from brainalign.encoding import MultipleKernelRidgeCV

    a, b = _bands(p1)
    return MultipleKernelRidgeCV(
        [k for k, _ in MKR_KERNELS],
        [prm for _, prm in MKR_KERNELS],
        alphas=KERNEL_ALPHAS,
        n_iter=n_iter,
        random_state=0,
        cv=5,
        fit_intercept=False,
        scoring="neg_mse",
        device="cpu",
    ).fit({"a": X[:, a], "b": X[:, b]}, Y)


def _himalaya_mkr(X: np.ndarray, Y: np.ndarray, p1: int, n_iter: int):
    from himalaya.kernel_ridge import ColumnKernelizer, Kernelizer, MultipleKernelRidgeCV
    from sklearn.pipeline import make_pipeline

    a, b = _bands(p1)
    ck = ColumnKernelizer(
        [
            (name, Kernelizer(kernel=k, kernel_params=prm), sl)
            for name, (k, prm), sl in zip("ab", MKR_KERNELS, (a, b), strict=True)
        ]
    )
    model = MultipleKernelRidgeCV(
        kernels="precomputed",
        solver_params=dict(n_iter=n_iter, alphas=KERNEL_ALPHAS, progress_bar=False),
        random_state=0,
        cv=5,
    )
    return make_pipeline(ck, model).fit(X, Y)


def _agree_kernel(ours, ref) -> None:
    from himalaya.backend import get_backend

    ref = ref[-1] if hasattr(ref, "steps") else ref
    ref_alphas = np.asarray(get_backend().to_numpy(ref.best_alphas_))
    same = np.isclose(ours.best_alphas_, ref_alphas, rtol=1e-6).mean()
    line = f"  selected alphas equal for {100 * same:.2f}% of targets"
    if hasattr(ours, "deltas_"):
        gap = np.abs(ours.deltas_ - np.asarray(get_backend().to_numpy(ref.deltas_))).max()
        line += f"; max |deltas difference| {gap:.1e}"
    dual_ref = np.asarray(get_backend().to_numpy(ref.dual_coef_))
    rel = np.abs(ours.dual_coef_ - dual_ref).max() / np.abs(dual_ref).max()
    print(line + f"; dual coefficients relative difference {rel:.1e}")


def _agree(ours, ref) -> None:
    from himalaya.backend import get_backend

    ref_alphas = np.asarray(get_backend().to_numpy(ref.best_alphas_))
    same = np.isclose(ours.best_alphas_, ref_alphas, rtol=1e-4).mean()
    scores_ref = np.asarray(get_backend().to_numpy(ref.cv_scores_))
    gap = np.abs(ours.cv_scores_ - scores_ref) / np.maximum(np.abs(scores_ref), 1e-12)
    print(
        f"  selected alphas equal for {100 * same:.2f}% of targets; "
        f"CV neg-MSE relative difference: median {np.median(gap):.1e}, max {gap.max():.1e}"
    )


def _memory_child(kind: str, path_x: str, path_y: str, which: str, queue) -> None:
    import torch

    torch.set_num_threads(2)
    X = np.load(path_x)
    Y = np.load(path_y)
    if which == "brainalign":
        import brainalign.encoding  # noqa: F401  (imports before the baseline)
    else:
        import himalaya.kernel_ridge  # noqa: F401
        import himalaya.ridge  # noqa: F401

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        return 0

    # Reset the kernel's peak-RSS counter (VmHWM): a spawned child starts as a fork of the
    # parent, whose peak getrusage would otherwise report.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS:")
    (_ours if which == "brainalign" else _himalaya)(kind, X, Y)
    queue.put((status("VmHWM:") - before, X.nbytes + Y.nbytes))


def _memory(kind: str, X: np.ndarray, Y: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        px, py = os.path.join(tmp, "X.npy"), os.path.join(tmp, "Y.npy")
        np.save(px, X)
        np.save(py, Y)
        ctx = mp.get_context("spawn")
        out = {}
        for which in ("brainalign", "himalaya"):
            q = ctx.Queue()
            proc = ctx.Process(target=_memory_child, args=(kind, px, py, which, q))
            proc.start()
            extra, data = q.get()
            proc.join()
            out[which] = extra / data
        print(
            f"  peak extra memory / data size ({data / 2**20:.0f} MiB): brainalign "
            f"{out['brainalign']:.2f}x, himalaya {out['himalaya']:.2f}x (target <= 3x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--threads", type=int, nargs="*", default=[2])
    parser.add_argument("--memory", action="store_true", help="measure peak memory too")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", choices=("ridge", "kernel"), help="run only the ridge or the kernel cases"
    )
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    if args.full:
        sizes = {
            "primal32": (3000, 1000, 20000, "float32"),
            "primal64": (3000, 1000, 5000, "float64"),
            "kernel32": (1000, 20000, 10000, "float32"),
        }
    else:
        sizes = {
            "primal32": (1000, 300, 3000, "float32"),
            "primal64": (1000, 300, 1000, "float64"),
            "kernel32": (300, 5000, 2000, "float32"),
        }
    targets = {"primal32": 2.5, "primal64": 3.0, "kernel32": 1.8}
    if args.only == "kernel":
        sizes = {}
    data = {k: _data(*v) for k, v in sizes.items()}
    if args.full:
        rbf_size, mkr_size = (2000, 1000, 5000), (1000, 500, 1000, 2000, 20)
    else:
        rbf_size, mkr_size = (400, 100, 500), (200, 50, 100, 300, 8)
    X_rbf, Y_rbf = _data(*rbf_size, "float64", seed=1)
    n_m, p1, p2, t_m, n_iter = mkr_size
    X_mkr, Y_mkr = _data(n_m, p1 + p2, t_m, "float64", seed=2)
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            cases = []
            for key, (n, p, t, dt) in sizes.items():
                kind = "kernel" if key.startswith("kernel") else "primal"
                X, Y = data[key]
                name = ("KernelRidgeCV" if kind == "kernel" else "RidgeCV") + (
                    f" {dt} n={n} p={p} t={t}"
                )
                cases.append(
                    Case(
                        name,
                        lambda kind=kind, X=X, Y=Y: _ours(kind, X, Y),
                        lambda kind=kind, X=X, Y=Y: _himalaya(kind, X, Y),
                        "himalaya",
                        target=targets[key],
                        check=_agree,
                    )
                )
            if args.only == "ridge":
                print(f"\n-- {threads} thread(s)")
                run_cases(cases, repeat=args.repeat)
                continue
            cases.append(
                Case(
                    "KernelRidgeCV rbf float64 n={} p={} t={}".format(*rbf_size),
                    lambda: _ours_kernel(X_rbf, Y_rbf),
                    lambda: _himalaya_kernel(X_rbf, Y_rbf),
                    "himalaya",
                    target=1.0,
                    check=_agree_kernel,
                )
            )
            cases.append(
                Case(
                    f"MultipleKernelRidgeCV n={n_m} p={p1}+{p2} t={t_m} it={n_iter}",
                    lambda: _ours_mkr(X_mkr, Y_mkr, p1, n_iter),
                    lambda: _himalaya_mkr(X_mkr, Y_mkr, p1, n_iter),
                    "himalaya",
                    target=1.0,
                    check=_agree_kernel,
                )
            )
            print(f"\n-- {threads} thread(s)")
            run_cases(cases, repeat=args.repeat)
    if args.memory:
        for key in sizes:
            kind = "kernel" if key.startswith("kernel") else "primal"
            print(f"memory, {key} {sizes[key]}")
            _memory(kind, *data[key])
    if torch.cuda.is_available() and "primal32" in data:
        from himalaya.backend import set_backend

        X, Y = data["primal32"]
        set_backend("torch_cuda")
        try:
            run_cases(
                [
                    Case(
                        "RidgeCV float32 primal on CUDA",
                        lambda: _ours("primal", X, Y, device="cuda"),
                        lambda: _himalaya("primal", X, Y),
                        "himalaya cuda",
                        target=3.0,
                    )
                ],
                repeat=args.repeat,
            )
        finally:
            set_backend("numpy")


if __name__ == "__main__":
    main()
