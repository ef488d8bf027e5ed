"""Benchmark harness: time brainalign and a reference package on the same data, in one process.

Each case is a pair of zero-argument callables (brainalign, reference) built on shared data.
Both are warmed up once, then timed ``repeat`` times; the table shows medians and the ratio
reference / brainalign (above 1: brainalign is faster).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    """One benchmark: the same work done by brainalign and by a reference package."""

    name: str
    brainalign: Callable[[], object]
    reference: Callable[[], object]
    reference_name: str
    target: float | None = None  # required speed-up, if the issue sets one
    check: Callable[[object, object], None] | None = None  # asserts both results agree
    times: dict[str, list[float]] = field(default_factory=dict)


def _time(
    fn: Callable[[], object], repeat: int, sync: Callable[[], None]
) -> tuple[list[float], object]:
    out = fn()  # warm-up (JIT, caches, CUDA context)
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, out


def run_cases(
    cases: list[Case], *, repeat: int = 5, reference_repeat: int | None = None
) -> list[dict]:
    """Time every case and print a table; returns the rows.

    Parameters
    ----------
    cases : list of Case
        The benchmarks.
    repeat : int
        Timed runs of brainalign per case.
    reference_repeat : int, optional
        Timed runs of the reference (default ``repeat``; lower it for slow references).

    Returns
    -------
    rows : list of dict
        name, medians, ratio, target and whether it is met.
    """
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    rows = []
    for case in cases:
        t_ba, out_ba = _time(case.brainalign, repeat, sync)
        t_ref, out_ref = _time(case.reference, reference_repeat or repeat, sync)
        if case.check is not None:
            case.check(out_ba, out_ref)
        med_ba, med_ref = statistics.median(t_ba), statistics.median(t_ref)
        ratio = med_ref / med_ba
        rows.append(
            {
                "benchmark": case.name,
                "reference": case.reference_name,
                "brainalign_s": med_ba,
                "reference_s": med_ref,
                "ratio": ratio,
                "target": case.target,
                "met": None if case.target is None else ratio >= case.target,
            }
        )
    _print(rows)
    return rows


def _print(rows: list[dict]) -> None:
    import platform

    import torch

    dev = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else platform.processor() or "cpu"
    )
    print(f"device: {dev}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    head = (
        f"{'benchmark':<44} {'reference':<14} {'brainalign':>11} {'reference':>11} "
        f"{'ratio':>9} {'target':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:g}x {'ok' if r['met'] else 'MISS'}"
        print(
            f"{r['benchmark']:<44} {r['reference']:<14} {r['brainalign_s']:>10.4f}s "
            f"{r['reference_s']:>10.4f}s {r['ratio']:>8.1f}x {target:>7}"
        )


#: brainalign's device and dtype for the benchmarked calls (CPU float64 unless a script's
#: ``--device``/``--dtype`` say otherwise; see :func:`use_device`).
TARGET = {"device": "cpu", "dtype": "float64"}


def add_device_args(parser) -> None:
    """Add ``--device`` and ``--dtype`` to a benchmark's argument parser."""
    parser.add_argument(
        "--device", default="cpu", help="brainalign's device: cpu (default), cuda, cuda:1, auto"
    )
    parser.add_argument(
        "--dtype",
        default=None,
        choices=("float32", "float64"),
        help="brainalign's precision (default: float64 on the CPU, float32 on a GPU)",
    )


def use_device(args) -> dict[str, str]:
    """Set :data:`TARGET` and brainalign's configuration from ``--device``/``--dtype``.

    Returns the resolved ``{"device": ..., "dtype": ...}``; calls that do not pin a device
    (through the configuration) and those that pass ``**TARGET`` both run there.
    """
    import brainalign as ba
    from brainalign._device import resolve_device

    dev = resolve_device(args.device)
    dtype = args.dtype or ("float64" if dev.type == "cpu" else "float32")
    TARGET.update(device=str(dev), dtype=dtype)
    ba.set_config(device=str(dev), dtype=dtype)
    print(f"brainalign device {dev}, dtype {dtype}")
    return dict(TARGET)


def rtol() -> float:
    """Agreement required of brainalign with the float64 reference at :data:`TARGET`'s dtype.

    float64: 1e-8. float32: 1e-4, a few thousand float32 roundings (eps 1.2e-7) of the
    products and sums these measures make, accumulated in float64 where they are reductions.
    """
    return 1e-8 if TARGET["dtype"] == "float64" else 1e-4


def atol(float64: float) -> float:
    """Absolute agreement: ``float64`` at float64; at float32, 1e-4 (as :func:`rtol`) times
    the scale the float64 value was set for (``float64 / 1e-10``, i.e. unit-scale values)."""
    return float64 if TARGET["dtype"] == "float64" else 1e-4 * max(1.0, float64 / 1e-10)
