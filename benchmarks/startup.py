"""Start-up time: ``import brainalign`` and ``brainalign --help`` in fresh processes.

Each command runs ``--repeat`` times (default 7) in a new Python process after one warm-up
run (which fills the OS file cache); the table shows the median and the fastest run against
the goals of issue 21 (``import brainalign`` < 1.5 s, ``brainalign --help`` < 1 s), and the
heavy packages that ``import brainalign`` loaded (it should load none)::

    .venv/bin/python benchmarks/startup.py [--repeat N] [--check]

With ``--check`` the exit status is 1 when a median misses its goal. ``--full`` (as
``benchmarks/run.py --full`` passes) times 15 runs per command.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "xarray", "sklearn", "scipy", "matplotlib", "nilearn", "mne", "transformers")

#: The installed console script beside this Python, else ``python -m brainalign``.
_SCRIPT = Path(sys.executable).with_name("brainalign")
_CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "brainalign"]

#: (label, argv, goal in seconds)
COMMANDS = (
    ("import brainalign", [sys.executable, "-c", "import brainalign"], 1.5),
    ("brainalign --help", [*_CLI, "--help"], 1.0),
    ("python -m brainalign --help", [sys.executable, "-m", "brainalign", "--help"], 1.0),
)


def _time(argv: list[str], repeat: int) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def _heavy_loaded() -> list[str]:
    code = f"import sys, brainalign; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per command")
    parser.add_argument("--full", action="store_true", help="15 timed runs per command")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 15 if args.full else 7
    baseline = _time([sys.executable, "-c", "pass"], args.repeat)
    print(
        f"python {sys.version.split()[0]}; bare interpreter start: "
        f"{statistics.median(baseline):.3f} s (median of {args.repeat})"
    )
    print(f"{'command':<28} {'median (s)':>10} {'min (s)':>8} {'goal (s)':>8}  ok")
    failed = False
    for label, cmd, goal in COMMANDS:
        times = _time(cmd, args.repeat)
        med = statistics.median(times)
        ok = med < goal
        failed |= not ok
        print(f"{label:<28} {med:>10.3f} {min(times):>8.3f} {goal:>8.1f}  {'yes' if ok else 'NO'}")
    heavy = _heavy_loaded()
    print(f"heavy packages loaded by 'import brainalign': {', '.join(heavy) or 'none'}")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    code = main()
    if code:  # benchmarks/run.py runs this file in-process (runpy): exit only on a failure
        sys.exit(code)
