"""The ``brainalign`` command line: ``demo``, ``run``, ``info``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from brainalign._version import __version__

PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"


def _demo_spec() -> Path:
    path = PIPELINES_DIR / "demo.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"The demo pipeline was not found at {str(path)!r}; install brainalign from its "
            "repository (pip install -e .)."
        )
    return path


def _print_run(result, console) -> None:
    console.print(f"[bold green]Report:[/] {result.report}")
    console.print(f"[bold green]Results:[/] {result.results}")
    if result.tree is not None:
        from rich.table import Table

        for node in result.tree["rsa"].children.values():
            ds = node.to_dataset()
            table = Table(title=f"{node.name}: brain–model RDM similarity ({ds.attrs['method']})")
            table.add_column("model")
            table.add_column("similarity", justify="right")
            table.add_column("p (permutation)", justify="right")
            for m in ds.model.values:
                table.add_row(
                    str(m),
                    f"{float(ds.similarity.sel(model=m)):.3f}",
                    f"{float(ds.p_value.sel(model=m)):.4g}",
                )
            console.print(table)
    loaded = sum(result.cache_hits.values())
    note = f" ({loaded} intermediate(s) loaded from the cache)" if loaded else ""
    console.print(f"Done in {result.timings.get('total', 0.0):.1f} s{note}.")


def _cmd_run(args: argparse.Namespace, spec_path: Path) -> int:
    from rich.console import Console

    from brainalign.pipeline import run

    console = Console(stderr=False)
    cluster, scheduler = getattr(args, "cluster", None), getattr(args, "scheduler", None)
    client, close = None, None
    if (cluster or scheduler) and not args.dry_run:
        from brainalign.pipeline import connect

        client, close = connect(cluster=cluster, scheduler=scheduler)
        console.print(f"Running units on Dask: {client}")
    try:
        result = run(
            spec_path, out=args.out, dry_run=args.dry_run, device=args.device, client=client
        )
    finally:
        if close is not None:
            close()
    if args.dry_run:
        console.print(f"[bold]Plan for {spec_path}[/] ({len(result.units)} units) → {result.out}")
        for i, unit in enumerate(result.units, 1):
            state = result.status.get(unit.key, "to run")
            console.print(f"  {i:3d}. {unit.key}  ({state})", markup=False)
        console.print("Spec is valid; nothing was computed (--dry-run).")
        return 0
    _print_run(result, console)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import platform

    import numpy as np
    import torch
    import xarray as xr

    from brainalign._config import get_config
    from brainalign._device import resolve_device

    lines = [
        f"brainalign {__version__}",
        f"python {platform.python_version()} on {platform.platform()}",
        f"numpy {np.__version__}, xarray {xr.__version__}, torch {torch.__version__}",
    ]
    for mod in (
        "scipy",
        "sklearn",
        "nibabel",
        "nilearn",
        "mne",
        "matplotlib",
        "h5netcdf",
        "transformers",
        "dask",
        "distributed",
    ):
        try:
            m = __import__(mod)
            lines.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            lines.append(f"{mod} (not installed)")
    n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    lines.append(f"CUDA available: {torch.cuda.is_available()} ({n_cuda} device(s))")
    for i in range(n_cuda):
        lines.append(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
    lines.append(f"device='auto' resolves to: {resolve_device('auto')}")
    lines.append(f"config: {get_config()}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for documentation and tests).

    Returns
    -------
    parser : argparse.ArgumentParser
        The ``brainalign`` parser with its sub-commands.
    """
    parser = argparse.ArgumentParser(
        prog="brainalign",
        description="How alike are a brain's representations and a model's? "
        "Run analyses from pipeline specs and write reports.",
    )
    parser.add_argument("--version", action="version", version=f"brainalign {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_demo = sub.add_parser(
        "demo",
        help="run the demo on shipped data and write a report",
        description="Run pipelines/demo.yaml: Haxby 2001 ventral-temporal "
        "cortex versus model RDMs. Writes report.html and "
        "results.nc.",
    )
    p_demo.add_argument(
        "--out",
        type=Path,
        default=Path("brainalign-out") / "demo",
        help="output folder (default: ./brainalign-out/demo)",
    )
    p_demo.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")

    p_run = sub.add_parser(
        "run",
        help="run a pipeline spec (YAML)",
        description="Validate a pipeline spec, plan its units and run them.",
    )
    p_run.add_argument("spec", type=Path, help="the pipeline spec, e.g. pipelines/demo.yaml")
    p_run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: ./brainalign-out/<spec name>)",
    )
    p_run.add_argument(
        "--dry-run", action="store_true", help="validate and show the plan without computing"
    )
    p_run.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    where = p_run.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        metavar="local[:N]",
        default=None,
        help="run units on a local Dask cluster of N worker processes",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run units on the Dask scheduler at ADDRESS (e.g. tcp://host:8786)",
    )

    sub.add_parser(
        "info",
        help="show versions, devices and configuration",
        description="Show versions, devices and the configuration.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``brainalign`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        The exit status: 0 on success, 1 on a user error (message on stderr), 2 on bad usage.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.verbose:
        from brainalign._config import set_config

        set_config(verbose="info")
    from brainalign._checks import SchemaError, StimulusAlignmentError
    from brainalign.pipeline import SpecError

    try:
        if args.command == "info":
            return _cmd_info(args)
        if args.command == "demo":
            args.dry_run = False
            return _cmd_run(args, _demo_spec())
        return _cmd_run(args, args.spec)
    except (
        SpecError,
        SchemaError,
        StimulusAlignmentError,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    ) as err:
        print(f"brainalign {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
