"""Pipelines on a real dask.distributed cluster: same results as in process, survives a
killed worker, and SLURM job scripts built without submitting anything."""

import os
import threading
import time

import numpy as np
import pytest
import xarray as xr

import brainalign as ba

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

GROUPS = {
    "animate": ["face", "cat"],
    "place": ["house"],
    "object": ["chair", "shoe", "bottle", "scissors"],
    "scrambled": ["scrambledpix"],
}


def _spec(n_random=3, n_permutations=None):
    models = {"category_structure": {"kind": "categorical", "groups": GROUPS}}
    for k in range(n_random):
        models[f"random{k}"] = {"kind": "random_network", "n_layers": 2, "seed": k}
    rsa = {"metric": "correlation", "method": "spearman"}
    if n_permutations:
        rsa["n_permutations"] = n_permutations
    return {
        "name": "dask",
        "seed": 0,
        "brain": {"haxby_vt": {"dataset": "haxby2001"}},
        "models": models,
        "analyses": {"rsa": rsa},
    }


def _same(a, b):
    for node in ("rsa/haxby_vt", "models/haxby_vt", "brain/haxby_vt"):
        xr.testing.assert_identical(a[node].to_dataset(), b[node].to_dataset())


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def test_local_cluster_equals_in_process(cluster, tmp_path):
    _, client = cluster
    spec = _spec()
    on_dask = ba.run(spec, out=tmp_path / "dask", client=client)
    in_process = ba.run(spec, out=tmp_path / "local")
    _same(on_dask.tree, in_process.tree)
    _same(ba.load(tmp_path / "dask" / "results.nc"), in_process.tree)
    # the client assembled everything from entries the workers wrote
    assert on_dask.cache_misses == {} and on_dask.cache_hits["unit"] == 4
    assert in_process.cache_misses["unit"] == 4


def test_killed_worker_is_retried_and_nothing_is_lost(cluster, tmp_path):
    _, client = cluster
    spec = _spec(n_random=3, n_permutations=60_000)  # a few tenths of a second per unit
    box = {}
    runner = threading.Thread(
        target=lambda: box.setdefault("res", ba.run(spec, out=tmp_path / "dask", client=client))
    )
    runner.start()
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        for addr, keys in client.processing().items():
            if any("brainalign-unit" in str(k) for k in keys):
                victim = addr
                break
        time.sleep(0.05)
    assert victim is not None, "no unit was ever running on a worker"
    with pytest.raises(distributed.comm.CommClosedError):  # the worker dies mid-task
        client.run(os._exit, 1, workers=[victim])
    runner.join(timeout=300)
    assert not runner.is_alive() and "res" in box
    entries = sorted((tmp_path / "dask" / ".cache").glob("unit-*.nc"))
    assert len(entries) == 4
    for path in entries:
        ba.load(path)  # complete, readable
    reference = ba.run(spec, out=tmp_path / "local")
    _same(box["res"].tree, reference.tree)
    assert np.isfinite(box["res"].tree["rsa/haxby_vt"]["p_value"].values).all()


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_slurm_job_script_without_submitting():
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed")
    from brainalign.pipeline import slurm_cluster

    cluster = slurm_cluster(
        {
            "queue": "gpu",
            "cores": 8,
            "memory": "32GB",
            "walltime": "02:00:00",
            "gpus_per_worker": 1,
            "account": "lab",
            "scheduler_host": "127.0.0.1",
        }
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH --mem=30G" in script  # dask-jobqueue writes memory in GiB
    assert "#SBATCH -t 02:00:00" in script
    assert "#SBATCH -A lab" in script
    assert "#SBATCH --gres=gpu:1" in script
    assert "--resources GPU=1" in script  # units that want a GPU land on these workers


def test_executor_errors(tmp_path):
    from brainalign.cli import main
    from brainalign.pipeline import SpecError, connect

    bad = {**_spec(1), "executor": {"kind": "slurmm"}}
    with pytest.raises(
        SpecError,
        match=r"executor\.kind: invalid value 'slurmm'.*Did you mean "
        r"'slurm'\?",
    ):
        ba.run(bad, out=tmp_path)
    with pytest.raises(
        SpecError,
        match=r"executor\.nworkers: unknown key.*Did you mean "
        r"'n_workers'\?",
    ):
        ba.run({**_spec(1), "executor": {"kind": "local", "nworkers": 2}}, out=tmp_path)
    with pytest.raises(
        ValueError,
        match=r"'cluster' parameter\. Allowed forms are 'local' and "
        r"'local:N' \(N workers\); got 'lokal:2'",
    ):
        connect(cluster="lokal:2")
    with pytest.raises(ValueError, match=r"executor.kind 'scheduler' needs executor.address"):
        connect(executor={"kind": "scheduler"})
    assert connect(executor={"kind": "inprocess"})[0] is None
    assert main(["run", "pipelines/demo.yaml", "--cluster", "nope"]) == 1


def test_every_unit_kind_runs_on_the_workers(cluster, tmp_path):
    # Issue 18: tRSA and Ricci ran on the client (their tasks only re-ran the RSA unit).
    # Every analysis's units are now tasks that compute and cache their own entries; the
    # client then loads every unit and only assembles.
    _, client = cluster
    analyses = {
        **_spec()["analyses"],
        "trsa": {"step": 0.25},
        "ricci": {"k": 3, "n_permutations": 10, "n_bootstrap": 0, "flow_iterations": 2},
    }
    spec = {**_spec(n_random=1), "analyses": analyses}
    with distributed.get_task_stream(client) as stream:
        res = ba.run(spec, out=tmp_path / "dask", client=client)
    keys = [str(t["key"]) for t in stream.data]
    for analysis in ("rsa", "trsa", "ricci"):
        assert any(f"brainalign-unit-{analysis}-" in k for k in keys), (analysis, keys)
    assert set(res.status.values()) == {"computed"} and res.cache_misses == {}  # by workers
    local = ba.run(spec, out=tmp_path / "local")
    for node in ("trsa/haxby_vt", "ricci"):
        xr.testing.assert_identical(res.tree[node].to_dataset(), local.tree[node].to_dataset())


def test_a_plugin_registered_in_the_session_runs_on_the_workers(cluster, tmp_path):
    # A lab's analysis registered with the decorator in its script or notebook is unknown to
    # the workers' registries; its class travels with the tasks.
    from brainalign.pipeline import Analysis, _analysis, content_key, register_analysis

    class NStimuli(Analysis):
        name = "n_stimuli_dask_test"

        def key(self, ctx, unit):
            return content_key({"brain": ctx.brain_key(unit.brain), "model": unit.model})

        def compute(self, ctx, unit):
            return xr.Dataset({"n": len(ctx.brain(unit.brain)["rdm"].stimulus_a)})

        def assemble(self, ctx, results):
            return {f"n_stimuli/{u.brain}/{u.model}": ds[["n"]] for u, ds in results.items()}, None

    register_analysis(NStimuli)
    try:
        _, client = cluster
        spec = {**_spec(n_random=1), "analyses": {"n_stimuli_dask_test": {}}}
        res = ba.run(spec, out=tmp_path / "dask", client=client)
    finally:
        _analysis._ANALYSES.pop("n_stimuli_dask_test")
    assert set(res.status.values()) == {"computed"}  # on the workers
    assert int(res.tree["n_stimuli/haxby_vt/random0"]["n"]) == 8
