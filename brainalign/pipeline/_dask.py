"""Run a pipeline's units on a dask.distributed cluster (local, an address, or SLURM).

Tasks compute cache entries (brain RDMs, model RDMs, every analysis's units, through the
same ``run_unit`` as an in-process run) and return their keys, never arrays: big data travels
as NetCDF files in ``OUT/.cache``, which every worker reads. The client then assembles
``results.nc`` and the report from the cache with the same code as an in-process run, so
both give identical results. A task whose worker dies is retried elsewhere; an entry that the
dead worker finished is found and not recomputed, and atomic writes mean no entry is ever
half-written.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from brainalign._checks import check_option
from brainalign._imports import soft_import
from brainalign._logging import logger, progress
from brainalign.pipeline._spec import EXECUTOR_KINDS

_CLUSTER_RE = re.compile(r"^local(?::(\d+))?$")


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Use the client's torch thread count in a task: same kernels, bit-identical results."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _task_context(spec: dict[str, Any], device: str | None, threads: int) -> Any:
    from brainalign._config import config_context

    stack = contextlib.ExitStack()
    stack.enter_context(_torch_threads(threads))
    stack.enter_context(
        config_context(seed=spec["seed"], **({"device": device} if device else {}))
    )
    return stack


def _brain_task(
    spec: dict, bname: str, out: str, device: str | None, threads: int, plugins: dict
) -> str:
    from brainalign.pipeline._analysis import register_plugins
    from brainalign.pipeline._cache import Cache
    from brainalign.pipeline._context import Context

    register_plugins(plugins)
    with _task_context(spec, device, threads):
        ctx = Context(spec, Cache(Path(out) / ".cache"))
        ctx.brain(bname)
    return ctx.brain_key(bname)


def _unit_task(
    spec: dict,
    unit: tuple[str, str, str],
    out: str,
    brain_key: str | None,
    device: str | None,
    threads: int,
    plugins: dict,
) -> tuple[str, bool]:
    from brainalign.pipeline._analysis import Unit, register_plugins
    from brainalign.pipeline._cache import Cache
    from brainalign.pipeline._context import Context
    from brainalign.pipeline._executor import run_unit

    register_plugins(plugins)
    with _task_context(spec, device, threads):
        u = Unit(*unit)
        ctx = Context(spec, Cache(Path(out) / ".cache"))
        if brain_key is not None and ctx.brain_key(u.brain) != brain_key:
            raise RuntimeError(  # the brain task and this one must agree on the inputs
                f"brain entry {ctx.brain_key(u.brain)} differs from the submitted {brain_key}; "
                "was the spec or the data changed during the run?"
            )
        _, _, loaded = run_unit(ctx, u)
    return u.key, loaded


def run_units(
    client: Any, spec: dict[str, Any], units: list[Any], out: Path, device: str | None = None
) -> dict[str, str]:
    """Compute every unit's cache entries as Dask tasks and wait for them.

    The classes of the spec's analyses, sources and model kinds travel with the tasks, so
    a plug-in registered in the client's session (a notebook, a script) runs on workers
    that never imported it.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    spec : dict
        The validated spec (small; sent with each task).
    units : list of Unit
        The plan.
    out : pathlib.Path
        The output folder; it must be on storage that every worker reads and writes.
    device : str, optional
        Device for the tasks; ``"cuda..."`` asks each task for one ``GPU`` resource.

    Returns
    -------
    status : dict
        Unit key → ``"cached"`` (a worker loaded it) or ``"computed"``.
    """
    import torch

    from brainalign.pipeline._analysis import spec_plugins

    distributed = soft_import("distributed", "dask", "brainalign.run(..., client=...)")
    threads = torch.get_num_threads()
    run_id = uuid.uuid4().hex[:8]
    resources = {"GPU": 1} if (device or "").startswith("cuda") else None
    plugins = spec_plugins(spec)
    # Phase 1: brain entries. Their keys come back to the client, so no unit task depends on
    # data held by a worker (a killed worker then costs only its own tasks).
    brain_futures = {
        b: client.submit(
            _brain_task,
            spec,
            b,
            str(out),
            device,
            threads,
            plugins,
            retries=3,
            pure=False,
            key=f"brainalign-brain-{b}-{run_id}",
            resources=resources,
        )
        for b in spec["brain"]
    }
    brain_keys = dict(zip(brain_futures, client.gather(list(brain_futures.values())), strict=True))
    # Phase 2: units, each independent, writing its own entries. Names hold no "/", so
    # the task keys of two units never collide.
    futures = [
        client.submit(
            _unit_task,
            spec,
            (u.analysis, u.brain, u.model),
            str(out),
            brain_keys.get(u.brain),
            device,
            threads,
            plugins,
            retries=3,
            pure=False,
            resources=resources,
            key=f"brainalign-unit-{u.analysis}-{u.brain}/{u.model}-{run_id}",
        )
        for u in units
    ]
    status = {}
    for fut in progress(distributed.as_completed(futures), "Dask units", total=len(futures)):
        key, loaded = fut.result()  # re-raises task errors
        status[key] = "cached" if loaded else "computed"
        logger.info("unit %s done on the cluster", key)
    return status


def _parse_cluster(cluster: str) -> int | None:
    m = _CLUSTER_RE.match(cluster)
    if m is None:
        raise ValueError(
            f"Invalid value for the 'cluster' parameter. Allowed forms are 'local' and "
            f"'local:N' (N workers); got {cluster!r}."
        )
    return int(m.group(1)) if m.group(1) else None


def slurm_cluster(executor: dict[str, Any]) -> Any:
    """Build a ``dask_jobqueue.SLURMCluster`` from a spec's ``executor`` section.

    Nothing is submitted until the cluster is scaled.

    Parameters
    ----------
    executor : dict
        Keys: ``queue`` (partition), ``cores``, ``memory`` (e.g. ``"16GB"``), ``walltime``,
        ``gpus_per_worker``, ``account``, ``job_extra`` (more ``#SBATCH`` lines),
        ``scheduler_host``, ``dashboard`` (False: the dashboard on an ephemeral port).

    Returns
    -------
    cluster : dask_jobqueue.SLURMCluster
        Its ``job_script()`` shows the batch script each worker job runs.
    """
    jobqueue = soft_import("dask_jobqueue", "dask", "executor kind 'slurm'")
    gpus = int(executor.get("gpus_per_worker") or 0)
    job_extra = list(executor.get("job_extra") or [])
    worker_extra: list[str] = []
    if gpus:
        job_extra.append(f"--gres=gpu:{gpus}")
        worker_extra += ["--resources", f"GPU={gpus}"]
    options: dict[str, Any] = {}
    if executor.get("scheduler_host"):
        options["host"] = executor["scheduler_host"]
    if executor.get("dashboard") is False:
        options["dashboard_address"] = ":0"  # an ephemeral port, never a clash
    return jobqueue.SLURMCluster(
        queue=executor.get("queue"),
        account=executor.get("account"),
        cores=int(executor.get("cores") or 1),
        processes=1,
        memory=str(executor.get("memory") or "4GB"),
        walltime=str(executor.get("walltime") or "01:00:00"),
        job_extra_directives=job_extra,
        worker_extra_args=worker_extra,
        scheduler_options=options,
    )


def connect(
    *,
    cluster: str | None = None,
    scheduler: str | None = None,
    executor: dict[str, Any] | None = None,
) -> tuple[Any, Callable[[], None]]:
    """Open a Dask client for a run, and a function that closes what was opened.

    Parameters
    ----------
    cluster : str, optional
        ``"local"`` or ``"local:N"``: a ``LocalCluster`` of N worker processes (one thread
        each) on this machine.
    scheduler : str, optional
        The address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    executor : dict, optional
        A spec's ``executor`` section (``kind``: local, scheduler or slurm, plus its options;
        for slurm also ``n_workers``: the number of jobs).

    Returns
    -------
    client : distributed.Client or None
        None when everything says in-process.
    close : callable
        Closes the client and any cluster started here.
    """
    distributed = soft_import("distributed", "dask", "running a pipeline on Dask")
    executor = dict(executor or {})
    kind = executor.get("kind", "inprocess")
    check_option("executor.kind", kind, EXECUTOR_KINDS)
    if scheduler is None and cluster is None:
        if kind == "scheduler":
            scheduler = executor.get("address")
            if not scheduler:
                raise ValueError(
                    "executor.kind 'scheduler' needs executor.address, e.g. "
                    "'tcp://10.0.0.5:8786'; got none."
                )
        elif kind == "local":
            cluster = f"local:{executor['n_workers']}" if executor.get("n_workers") else "local"
        elif kind == "slurm":
            jobs = slurm_cluster(executor)
            jobs.scale(jobs=int(executor.get("n_workers") or 1))
            client = distributed.Client(jobs)
            return client, lambda: (client.close(), jobs.close())
        else:
            return None, lambda: None
    if scheduler is not None:
        client = distributed.Client(scheduler)
        return client, client.close
    n = _parse_cluster(cluster)
    local = distributed.LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # an ephemeral port: None means the default 8787, which a second cluster on the same
        # machine (another run, another test worker) finds taken
        dashboard_address=":0",
    )
    client = distributed.Client(local)
    return client, lambda: (client.close(), local.close())
