"""Interrupt a pipeline run with SIGKILL and re-run it: identical results, nothing redone."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import xarray as xr
import yaml

import brainalign as ba

SPEC = {
    "name": "resume",
    "seed": 0,
    "brain": {"haxby_vt": {"dataset": "haxby2001"}},
    "models": {  # a fast unit first, then a slow one (loading a language model)
        "category_structure": {
            "kind": "categorical",
            "groups": {
                "animate": ["face", "cat"],
                "place": ["house"],
                "object": ["chair", "shoe", "bottle", "scissors"],
                "scrambled": ["scrambledpix"],
            },
        },
        "minilm": {"kind": "text_model", "layers": ["hidden_states.0", "hidden_states.6"]},
        "random_network": {"kind": "random_network", "n_layers": 2},
    },
    "analyses": {"rsa": {"metric": "correlation", "method": "spearman"}},
}


def _rsa(tree):
    return tree["rsa/haxby_vt"].to_dataset()


def test_kill_then_resume(tmp_path):
    spec_path = tmp_path / "resume.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "interrupted"
    cache = out / ".cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "brainalign.cli", "run", str(spec_path), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not list(cache.glob("unit-*.nc")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no unit finished within 120 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # hard interruption, no clean-up
    proc.wait()
    proc.stderr.close()
    assert not (out / "results.nc").exists()  # the run did not get to the end
    finished = {p: p.stat().st_mtime_ns for p in cache.glob("unit-*.nc")}
    assert 1 <= len(finished) < 3
    for path in cache.glob("*.nc"):  # every entry written so far is complete
        ba.load(path)

    resumed = ba.run(spec_path, out=out)
    assert resumed.cache_hits.get("unit", 0) == len(finished)
    assert resumed.cache_misses.get("unit", 0) == 3 - len(finished)
    for path, mtime in finished.items():  # finished units were not rewritten
        assert path.stat().st_mtime_ns == mtime
    assert not list(cache.glob(".*.tmp"))

    clean = ba.run(spec_path, out=tmp_path / "clean")
    assert clean.cache_hits == {}
    xr.testing.assert_identical(_rsa(resumed.tree), _rsa(clean.tree))
    xr.testing.assert_identical(_rsa(ba.load(out / "results.nc")), _rsa(clean.tree))
    np.testing.assert_array_equal(
        resumed.tree["models/haxby_vt"]["rdm"].values, clean.tree["models/haxby_vt"]["rdm"].values
    )


def test_dry_run_reports_cached_units(tmp_path):
    spec = {**SPEC, "models": {"category_structure": SPEC["models"]["category_structure"]}}
    assert ba.run(spec, out=tmp_path, dry_run=True).status == {
        "rsa/haxby_vt/category_structure": "to run"
    }
    ba.run(spec, out=tmp_path)
    assert ba.run(spec, out=tmp_path, dry_run=True).status == {
        "rsa/haxby_vt/category_structure": "cached"
    }
    changed = {**spec, "analyses": {"rsa": {"metric": "euclidean"}}}
    assert ba.run(changed, out=tmp_path, dry_run=True).status == {
        "rsa/haxby_vt/category_structure": "to run"
    }  # new parameters, new keys
