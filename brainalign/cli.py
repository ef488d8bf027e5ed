"""The ``brainalign`` command line: ``demo``, ``run``, ``figures``, ``init``, ``info``.

Exit status: 0 on success; 1 on an error met while running (a bad spec or data, a full disk,
an HDF5 error, running out of memory: one line on stderr, no traceback); 2 on bad usage,
including an ``--out`` folder that cannot be written (checked before any work; not for
``--dry-run``, which writes nothing); 130 when interrupted (Ctrl-C), after saying how many
cache entries the next run of the same command will load.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from brainalign._version import __version__

PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"

#: Exit status of bad usage (as argparse's), of an error met while running, of Ctrl-C.
EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130


def _demo_spec() -> Path:
    path = PIPELINES_DIR / "demo.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"The demo pipeline was not found at {str(path)!r}; install brainalign from its "
            "repository (pip install -e .)."
        )
    return path


def _out_problem(out: Path) -> str | None:
    """Return why the output folder ``out`` cannot be written, or None when it can.

    Nothing is created: the nearest existing folder on the way to ``out`` is probed with a
    temporary file that is removed at once.
    """
    probe = out
    while True:
        try:
            probe.stat()
            break
        except FileNotFoundError:
            if probe.parent == probe:  # pragma: no cover - the root always exists
                return "no folder of its path exists"
            probe = probe.parent
        except NotADirectoryError:  # a file on the way: keep walking up to find it
            probe = probe.parent
        except OSError as err:
            return f"{str(probe)!r} cannot be read ({err.strerror or err})"
    if not probe.is_dir():
        if probe == out:
            return "it is a file, not a folder"
        return f"{str(probe)!r} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        return reason if probe == out else f"{str(probe)!r} cannot be written ({reason})"
    return None


def _resolve_out(args: argparse.Namespace, spec_path: Path) -> Path:
    """Return the output folder: ``--out``, else ``run``'s default for the spec."""
    if args.out is not None:
        return Path(args.out)
    from brainalign.pipeline import default_out, load_spec

    return default_out(load_spec(spec_path)["name"])


def _n_cached(out: Path) -> int:
    """Count the complete cache entries in ``out/.cache`` (temporaries are not entries).

    Every entry (brain and model RDMs, analysis units) is work a re-run loads instead of
    computing; the interruption message calls them units.
    """
    folder = out / ".cache"
    if not folder.is_dir():
        return 0
    return sum(1 for f in folder.glob("*.nc") if not f.name.startswith("."))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _size_error_message(err: BaseException, out: Path | None) -> str:
    """One line for an OSError, a RuntimeError (HDF5, netCDF, CUDA) or a MemoryError.

    It names the path (the error's own, else the output folder for OSErrors and HDF5 errors)
    or the size that was asked for (numpy's and CUDA's out-of-memory messages carry it).
    """
    where = f" (output folder {str(out)!r})" if out is not None else ""
    if isinstance(err, MemoryError):
        what = _one_line(str(err)) or "no size reported"
        return f"out of memory: {what}; use a machine with more memory or smaller data"
    if isinstance(err, OSError):
        reason = _one_line(err.strerror or str(err)) or type(err).__name__
        if err.filename is not None:
            text = f"{str(err.filename)!r}: {reason}"
        else:
            text = f"{reason}{where}"
        if err.errno == errno.ENOSPC:
            text += "; free some space or choose another --out"
        return text
    text = _one_line(str(err)) or type(err).__name__
    hdf5 = type(err).__module__.startswith(("h5py", "netCDF4", "h5netcdf"))
    if hdf5 or "HDF" in text or "NetCDF" in text:  # they rarely name the file
        text += where
    return text


def _print_run(result, console) -> None:
    console.print(f"[bold green]Report:[/] {result.report}")
    console.print(f"[bold green]Results:[/] {result.results}")
    if result.tree is not None and "rsa" in result.tree.children:  # RSA is optional
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
    # the folder is known (and checked) before any work; main() names it in messages
    args.out = _resolve_out(args, spec_path)
    if not args.dry_run:
        problem = _out_problem(args.out)
        if problem is not None:
            print(
                f"brainalign {args.command}: error: cannot write to --out "
                f"{str(args.out)!r}: {problem}.",
                file=sys.stderr,
            )
            return EXIT_USAGE
    cluster, scheduler = getattr(args, "cluster", None), getattr(args, "scheduler", None)
    client, close = None, None
    if (cluster or scheduler) and not args.dry_run:
        from brainalign.pipeline import connect

        client, close = connect(cluster=cluster, scheduler=scheduler)
        console.print(f"Running units on Dask: {client}")
    figures = getattr(args, "figures", None)
    if figures is not None and not args.dry_run:
        problem = _out_problem(figures)
        if problem is not None:
            print(
                f"brainalign {args.command}: error: cannot write to --figures "
                f"{str(figures)!r}: {problem}.",
                file=sys.stderr,
            )
            return EXIT_USAGE
    try:
        result = run(
            spec_path,
            out=args.out,
            dry_run=args.dry_run,
            device=args.device,
            client=client,
            figures=figures,
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
    if result.figures:
        console.print(f"[bold green]Figures:[/] {len(result.figures)} files in {figures}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from brainalign.pipeline._run import redraw_figures

    problem = _out_problem(args.out)
    if problem is not None:
        print(
            f"brainalign figures: error: cannot write to --out {str(args.out)!r}: {problem}.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    paths = redraw_figures(
        args.results, args.out, formats=tuple(args.format), dpi=args.dpi, device=args.device
    )
    n_figs = len({p.stem for p in paths})
    print(f"Redrew {n_figs} figures ({len(paths)} files) in {args.out}.")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from brainalign.pipeline._init import describe, init_spec

    text, found = init_spec(args.folder, tmin=args.tmin, tmax=args.tmax)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"Wrote {args.output} ({describe(found)}).")
        print(f"Run it with: brainalign run {args.output}")
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
    # -v/-q are accepted before and after the command (``brainalign -q run x.yaml`` and
    # ``brainalign run x.yaml -q``); SUPPRESS keeps a sub-command from resetting them.
    loudness = argparse.ArgumentParser(add_help=False)
    group = loudness.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log each step at INFO level",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars and no log messages: stderr gets only errors (and Python "
        "warnings). Without -q, progress bars are shown when stderr is a terminal, or "
        "always with BRAINALIGN_PROGRESS=1",
    )
    parser = argparse.ArgumentParser(
        prog="brainalign",
        parents=[loudness],
        description="How alike are a brain's representations and a model's? "
        "Run analyses from pipeline specs and write reports.",
    )
    parser.add_argument("--version", action="version", version=f"brainalign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_demo = sub.add_parser(
        "demo",
        parents=[loudness],
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
        parents=[loudness],
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
    p_run.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        default=None,
        help="also write each report figure into DIR as SVG, PDF and 300-dpi PNG, named "
        "<section>_<title>",
    )
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

    p_fig = sub.add_parser(
        "figures",
        parents=[loudness],
        help="redraw a saved run's figures as files, computing nothing",
        description="Redraw the report figures of a saved run (OUT/results.nc and the cache "
        "beside it) as SVG, PDF and 300-dpi PNG files, named as by run --figures; nothing "
        "is computed again.",
    )
    p_fig.add_argument("results", type=Path, help="a run's results.nc, e.g. OUT/results.nc")
    p_fig.add_argument("--out", type=Path, required=True, help="the folder of the figure files")
    p_fig.add_argument(
        "--format",
        nargs="+",
        choices=("svg", "pdf", "png"),
        default=["svg", "pdf", "png"],
        help="the formats (default: svg pdf png)",
    )
    p_fig.add_argument("--dpi", type=int, default=300, help="PNG resolution (default 300)")
    p_fig.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")

    p_init = sub.add_parser(
        "init",
        parents=[loudness],
        help="write a commented pipeline spec for a folder of data",
        description="Look at a folder (per-subject pattern files such as sub-01_patterns.nc, "
        "a model's saved activations, a BIDS dataset) and write a pipeline spec that runs "
        "unchanged, with the choices left as comments.",
    )
    p_init.add_argument("folder", type=Path, help="the data folder")
    p_init.add_argument(
        "-o", "--output", type=Path, default=None, help="the spec file to write (default: stdout)"
    )
    p_init.add_argument(
        "--tmin", type=float, default=None, help="M/EEG (BIDS): epoch start (s) for the spec"
    )
    p_init.add_argument(
        "--tmax", type=float, default=None, help="M/EEG (BIDS): epoch end (s) for the spec"
    )

    sub.add_parser(
        "info",
        help="show versions, devices and configuration",
        description="Show versions, devices and the configuration.",
    )
    return parser


@contextlib.contextmanager
def _loudness(verbose: bool, quiet: bool) -> Iterator[None]:
    """Set the log level (and, for ``quiet``, hide progress bars) for one command."""
    if not (verbose or quiet):
        yield
        return
    from brainalign._config import config_context

    old = os.environ.get("BRAINALIGN_PROGRESS")
    if quiet:  # -q wins over BRAINALIGN_PROGRESS=1
        os.environ["BRAINALIGN_PROGRESS"] = "0"
    try:
        with config_context(verbose="error" if quiet else "info"):
            yield
    finally:
        if quiet:
            if old is None:
                os.environ.pop("BRAINALIGN_PROGRESS", None)
            else:
                os.environ["BRAINALIGN_PROGRESS"] = old


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``brainalign`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        The exit status: 0 on success; 1 on an error met while running (a bad spec or data,
        a full disk, an HDF5 error, running out of memory), told in one line on stderr
        without a traceback; 2 on bad usage, including an ``--out`` that cannot be written
        (checked before any work, except for ``--dry-run``); 130 when interrupted (Ctrl-C),
        after saying how many entries are cached in ``OUT/.cache`` for the next run to load.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from brainalign._checks import SchemaError, StimulusAlignmentError
    from brainalign.pipeline import SpecError

    def error(message: str) -> int:
        print(f"brainalign {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR

    try:
        with _loudness(getattr(args, "verbose", False), getattr(args, "quiet", False)):
            if args.command == "info":
                return _cmd_info(args)
            if args.command == "init":
                return _cmd_init(args)
            if args.command == "figures":
                return _cmd_figures(args)
            if args.command == "demo":
                args.dry_run = False
                return _cmd_run(args, _demo_spec())
            return _cmd_run(args, args.spec)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        if out is None:
            note = "nothing is cached"
        else:
            n = _n_cached(Path(out))
            note = f"{n} unit{'' if n == 1 else 's'} cached in {str(Path(out) / '.cache')!r}"
        print(
            f"brainalign {args.command}: interrupted; {note}; run the same command to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (SpecError, SchemaError, StimulusAlignmentError, ValueError) as err:
        return error(str(err))
    except FileNotFoundError as err:
        # the package's own messages (a missing spec or dataset) say what is missing
        return error(str(err) if err.errno is None else _size_error_message(err, None))
    except (OSError, MemoryError, RuntimeError) as err:
        # disk full, unwritable paths, h5py/netCDF (HDF5) errors, out of memory (CUDA's
        # OutOfMemoryError is a RuntimeError): one line naming the path or the size
        return error(_size_error_message(err, getattr(args, "out", None)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
