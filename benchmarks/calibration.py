"""Calibration of every test and interval brainalign reports, at full size.

python benchmarks/calibration.py [--reps N] [--only SUBSTRING] [--jobs 2] [--no-docs]

Runs each case registered in ``tests/stats/cases_*.py`` (the same simulations the test suite
runs with a few hundred repetitions) with ``n_reps_full`` repetitions (at least 500), prints
the table and writes it into ``docs/statistics.md`` between its table markers. Columns: the
claim, the simulated truth, the nominal level, the measured rejection rate (size) or coverage
with its exact (Clopper–Pearson) 95 % interval, and the verdict against what the docs claim:
``valid`` (size <= nominal or coverage >= nominal, within binomial error), ``liberal``
(rejects too often: the docs say what to use instead) or ``conservative``.

Not a timing: the harness's reference/brainalign ratio does not apply here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
STATS = ROOT / "tests" / "stats"
DOCS = ROOT / "docs" / "statistics.md"
START, END = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"


def _init_worker() -> None:
    """One torch thread per worker: the trials are tiny, and the workers share the cores."""
    import torch

    torch.set_num_threads(1)
    _cases()


def _cases() -> dict:
    if str(STATS) not in sys.path:
        sys.path.insert(0, str(STATS))
    import _calib

    for path in sorted(STATS.glob("cases_*.py")):
        importlib.import_module(path.stem)
    return _calib.CASES


def _run_one(args: tuple[str, int, int]) -> tuple[str, int, int, float, float]:
    name, reps, seed = args
    import _calib

    case = _cases()[name]
    t0 = time.perf_counter()
    k, n, n_eff = _calib.run(case, reps, seed)
    return name, k, n, n_eff, time.perf_counter() - t0


def _interval(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return ci.low, ci.high


def table(results: list[tuple], cases: dict) -> str:
    """The markdown table of measured rates."""
    import _calib

    lines = [
        "| claim | simulated truth | nominal | measured (95 % CI) | outcomes (effective) "
        "| verdict | use instead |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, k, n, n_eff, _ in results:
        case = cases[name]
        m = max(1, round(n_eff))
        lo, hi = _interval(round(k / n * m), m)
        ok, _ = _calib.verdict(case, k, n, n_eff)
        what = "size" if case.kind == "size" else "coverage"
        verdict = case.expect if ok else f"**not {case.expect}**"
        lines.append(
            f"| {name} ({what}) | {case.null} | {case.nominal:g} | {k / n:.3f} "
            f"[{lo:.3f}, {hi:.3f}] | {n} ({m}) | {verdict} | {case.instead or ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions (default: each case's n_reps_full)"
    )
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave the docs")
    args = parser.parse_args()
    cases = _cases()
    names = [n for n in cases if args.only is None or args.only in n]
    work = [(n, args.reps or max(cases[n].n_reps_full, 500), args.seed) for n in names]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker) as pool:
        results = []
        for out in pool.map(_run_one, work):
            name, k, n, n_eff, secs = out
            print(
                f"{name}: {k}/{n} = {k / n:.3f}, effective n {n_eff:.0f} ({secs:.0f} s)",
                flush=True,
            )
            results.append(out)
    text = table(results, cases)
    print()
    print(text)
    print(f"\n{len(results)} cases in {time.perf_counter() - t0:.0f} s")
    if not args.no_docs and args.only is None and args.reps is None:
        doc = DOCS.read_text()
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        stamp = (
            f"\nMeasured with `python benchmarks/calibration.py` (seed {args.seed}; "
            f"{time.strftime('%Y-%m-%d')}).\n\n"
        )
        DOCS.write_text(head + START + stamp + text + "\n\n" + END + tail)
        print(f"table written into {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
