"""A lab's own model outputs as pipeline models: ``kind`` activations, features and rdm."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from numpy.testing import assert_allclose

import brainalign as ba
from brainalign._checks import StimulusAlignmentError
from brainalign.data import random_network
from brainalign.datasets import HAXBY_CATEGORIES, file_sha256
from brainalign.loaders.activations import extract_activations
from brainalign.pipeline import SpecError, list_model_kinds

IDS = list(HAXBY_CATEGORIES)
RSA = {"rsa": {"n_permutations": 50, "n_bootstrap": 0}}


def _spec(models: dict, analyses: dict | None = None) -> dict:
    return {
        "name": "files",
        "brain": {"vt": {"dataset": "haxby2001"}},
        "models": models,
        "analyses": analyses or RSA,
    }


def _rdm(values: np.ndarray, ids: list[str]) -> np.ndarray:
    """The oracle: brainalign.rsa.rdm (correlation distance) of rows labelled ``ids``."""
    return ba.rsa.rdm(ba.responses(np.asarray(values), ids), "correlation").values


@pytest.fixture(scope="module")
def files(tmp_path_factory, _haxby_session):
    """Model outputs written as a lab would: every format each kind reads."""
    d = tmp_path_factory.mktemp("model_files")
    out: dict = {"dir": d}
    # (a) activations saved by brainalign: a random network's layers (a DataTree) ...
    tree = random_network(IDS, n_layers=2, seed=0)
    ba.save(tree, d / "net.nc")
    out["net"] = {k: tree[k]["activations"] for k in tree.children}
    # ... one array (stimulus, unit): one entry ...
    ba.save(tree["layer2"]["activations"], d / "one.nc")
    # ... and extract_activations(out=...) of a small torch network on real Haxby patterns
    # (the stimulus means of 16 VT voxels), in reversed order: the file's order is its own.
    means = ba.average_trials(_haxby_session).sel(stimulus=IDS[::-1])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = torch.as_tensor(means.values[:, :16], dtype=torch.float32)
    hooked = extract_activations(
        net, x, ["0", "2"], stimulus=IDS[::-1], out=d / "hook.nc", device="cpu"
    )
    out["hook"] = {k: hooked[k]["activations"].load().copy() for k in hooked.children}
    hooked.close()
    # (b) per-layer .npy files whose rows are more stimuli than the brain's, in another order
    npy_ids = [*IDS[::-1], "extra_1"]
    rng = np.random.default_rng(0)
    out["npy"] = {}
    for layer in ("layer2", "layer10"):  # natural order: layer2 before layer10
        values = rng.standard_normal((len(npy_ids), 5)).astype(np.float32)
        np.save(d / f"{layer}.npy", values)
        out["npy"][layer] = ba.responses(values, npy_ids)
    out["npy_ids"] = npy_ids
    # (c) a feature table: real Haxby stimulus means of 6 voxels, plus a text column
    table = pd.DataFrame(means.values[:, 100:106], columns=[f"v{i}" for i in range(6)])
    table.insert(0, "stimulus", IDS[::-1])
    table["category"] = ["animate" if s in ("face", "cat") else "other" for s in IDS[::-1]]
    table.to_csv(d / "table.csv", index=False)
    out["table"] = ba.responses(table[[f"v{i}" for i in range(6)]].to_numpy(), IDS[::-1])
    # (d) model RDMs from real data: the RDM of the odd runs' means, reversed order (.nc) ...
    odd = _haxby_session.isel(trial=np.flatnonzero(_haxby_session.run.values % 2 == 1))
    rdm = ba.rsa.rdm(ba.average_trials(odd), "correlation").sel(
        stimulus_a=IDS[::-1], stimulus_b=IDS[::-1]
    )
    ba.save(rdm, d / "rdm.nc")
    out["rdm"] = rdm
    # ... and a plain .csv matrix with the ids in the spec
    np.savetxt(d / "rdm.csv", rdm.values, delimiter=",")
    return out


def _models(files: dict) -> dict:
    d = files["dir"]
    return {
        "net": {"kind": "activations", "path": str(d / "net.nc")},
        "one": {"kind": "activations", "path": str(d / "one.nc")},
        "hook": {"kind": "activations", "path": str(d / "hook.nc")},
        "npy": {"kind": "activations", "path": str(d / "layer*.npy"), "stimuli": files["npy_ids"]},
        "table": {"kind": "features", "path": str(d / "table.csv")},
        "rdmnc": {"kind": "rdm", "path": str(d / "rdm.nc")},
        "rdmcsv": {"kind": "rdm", "path": str(d / "rdm.csv"), "stimuli": IDS[::-1]},
    }


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    """One run with every kind and format; its out folder (brain RDM cached) is reused."""
    out = tmp_path_factory.mktemp("out")
    return ba.run(_spec(_models(files)), out=out), out


def test_each_kind_and_format_runs_end_to_end(files, run):
    res, _ = run
    stack = res.tree["models/vt"]["rdm"]
    ids = [str(s) for s in res.tree["brain/vt"]["rdm"].stimulus_a.values]
    assert sorted(ids) == sorted(IDS)
    assert [str(m) for m in stack.model.values] == [
        "net:layer1",
        "net:layer2",
        "one",
        "hook:0",
        "hook:2",
        "npy:layer2",
        "npy:layer10",
        "table",
        "rdmnc",
        "rdmcsv",
    ]
    expected = {f"net:{k}": _rdm(v.sel(stimulus=ids).values, ids) for k, v in files["net"].items()}
    expected["one"] = expected["net:layer2"]
    for k, v in files["hook"].items():
        expected[f"hook:{k}"] = _rdm(v.sel(stimulus=ids).values, ids)
    for k, v in files["npy"].items():
        expected[f"npy:{k}"] = _rdm(v.sel(stimulus=ids).values, ids)
    expected["table"] = _rdm(files["table"].sel(stimulus=ids).values, ids)
    expected["rdmnc"] = files["rdm"].sel(stimulus_a=ids, stimulus_b=ids).values
    expected["rdmcsv"] = expected["rdmnc"]
    for entry, values in expected.items():
        got = stack.sel(model=entry)
        assert got.dtype == np.float32
        assert_allclose(got.values, values, rtol=1e-5, atol=1e-7, err_msg=entry)
    # every entry is compared with the brain, and the report names each file's sha256
    assert list(res.tree["rsa/vt"]["similarity"].model.values) == list(stack.model.values)
    html = res.report.read_text()
    for name in ("net.nc", "table.csv", "rdm.csv", "layer10.npy"):
        assert file_sha256(files["dir"] / name) in html


def test_features_feed_an_encoding_model(files, run, _haxby_session):
    _, out = run
    d = files["dir"]
    models = {
        "table": {"kind": "features", "path": str(d / "table.csv"), "columns": ["v0", "v3"]},
        "npy": {
            "kind": "activations",
            "path": str(d / "layer*.npy"),
            "stimuli": files["npy_ids"],
            "layers": "layer10",
        },
    }
    res = ba.run(_spec(models, {"encoding": {"alphas": [1, 10], "cv": 2}}), out=out)
    ds = res.tree["encoding/vt"].dataset
    assert list(ds.model.values) == ["table", "npy:layer10"]
    trials = _haxby_session
    stim = trials.stimulus.values
    for entry, feats in (
        ("table", files["table"].isel(unit=[0, 3])),
        ("npy:layer10", files["npy"]["layer10"]),
    ):
        x = feats.sel(stimulus=stim).values.astype(np.float64)
        ref = ba.encoding.ridge_cv(x, trials, [1, 10], cv=2, groups=trials.run.values)
        assert_allclose(ds.cv_score.sel(model=entry).values, ref.cv_score.values, rtol=1e-6)


def test_an_rdm_file_cannot_be_an_encoding_model(files, tmp_path):
    models = {"rdmnc": {"kind": "rdm", "path": str(files["dir"] / "rdm.nc")}}
    with pytest.raises(SpecError, match=r"models\.rdmnc\.kind: 'rdm' gives an RDM, not features"):
        ba.run(_spec(models, {"encoding": {"alphas": [1, 10], "cv": 2}}), out=tmp_path / "out")
    kind = list_model_kinds()["rdm"]()
    assert kind.has_features is False
    with pytest.raises(
        TypeError, match=r"models\.rdmnc \(kind rdm\) is an RDM read from .*rdm\.nc"
    ):
        kind.features("rdmnc", models["rdmnc"], IDS)


# -- errors found when the spec is read --------------------------------------------------


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            {"kind": "activations", "path": "nope.nc"},
            r"models\.m\.path: file not found: 'nope\.nc'",
        ),
        (
            {"kind": "features", "path": "nope.csv"},
            r"models\.m\.path: file not found: 'nope\.csv'",
        ),
        ({"kind": "rdm", "path": "nope.nc"}, r"models\.m\.path: file not found: 'nope\.nc'"),
        (
            {"kind": "activations", "path": "nowhere/*.npy", "stimuli": ["a"]},
            r"models\.m\.path: no \.npy file matches 'nowhere/\*\.npy'",
        ),
        ({"kind": "features", "path": "x.xlsx"}, r"'x\.xlsx' is not a file type .* \.csv, \.tsv"),
    ],
)
def test_a_missing_file_is_named(model, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=match):
        ba.run(_spec({"m": model}), out=tmp_path / "out")


def test_spec_errors_name_the_key_and_value(files, tmp_path):
    d = files["dir"]
    cases = [
        (
            {"kind": "activations", "path": str(d / "layer*.npy")},
            r"models\.m\.stimuli: is required for \.npy activations",
        ),
        (
            {"kind": "rdm", "path": str(d / "rdm.csv")},
            r"models\.m\.stimuli: is required for a \.csv RDM",
        ),
        (
            {"kind": "activations", "path": str(d / "net.nc"), "stimuli": IDS},
            r"models\.m\.stimuli: is only for \.npy/\.csv files; 'net\.nc' holds its own",
        ),
        (
            {"kind": "activations", "path": str(d / "net.nc"), "layers": ["layr1"]},
            r"models\.m\.layers: 'layr1' not in .*'layer1', 'layer2'\. Did you mean 'layer1'\?",
        ),
        (
            {"kind": "activations", "path": str(d / "net.nc"), "layers": ["layer1", "layer1"]},
            r"models\.m\.layers: must name each layer once, got \['layer1', 'layer1'\]",
        ),
        (
            {"kind": "activations", "path": str(d / "one.nc"), "layers": "layer2"},
            r"models\.m\.layers: .*one\.nc' holds one array, not layers",
        ),
        (
            {"kind": "activations", "path": str(d / "layer*.npy"), "stimuli": ["a", "b", "a"]},
            r"models\.m\.stimuli: must list each stimulus once; repeated: 'a'",
        ),
        (
            {"kind": "features", "path": str(d / "table.csv"), "columns": ["stimulus", "v1"]},
            r"models\.m\.columns: holds the stimulus id column 'stimulus'",
        ),
    ]
    for model, match in cases:
        with pytest.raises(SpecError, match=match):
            ba.run(_spec({"m": model}), out=tmp_path / "out")


def test_an_unreadable_file_is_named_with_the_reason(tmp_path):
    (tmp_path / "bad.nc").write_bytes(b"not a netcdf file at all")
    with pytest.raises(SpecError, match=r"models\.m\.path: cannot read '.*bad\.nc' as a NetCDF"):
        ba.run(
            _spec({"m": {"kind": "activations", "path": str(tmp_path / "bad.nc")}}),
            out=tmp_path / "out",
        )


# -- errors found when the model's RDMs are computed (the brain RDM is cached) -------------


def _fails(out, model: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ba.run(_spec({"m": model}), out=out)


def test_stimuli_missing_from_a_file_are_named(files, run, tmp_path):
    _, out = run
    partial = random_network(IDS[:6], n_layers=1, seed=0)
    ba.save(partial, tmp_path / "partial.nc")
    _fails(
        out,
        {"kind": "activations", "path": str(tmp_path / "partial.nc")},
        StimulusAlignmentError,
        r"layer 'layer1' of '.*partial\.nc' lacks 2 of the brain's 8 stimuli: 'scissors', "
        r"'scrambledpix'",
    )
    np.save(tmp_path / "l1.npy", np.ones((3, 2)))
    _fails(
        out,
        {"kind": "activations", "path": str(tmp_path / "l1.npy"), "stimuli": ["face", "cat", "x"]},
        StimulusAlignmentError,
        r"'.*l1\.npy' lacks 6 of the brain's 8 stimuli: 'house', 'chair'",
    )
    pd.DataFrame({"stimulus": ["face", "cat"], "a": [1.0, 2.0]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    _fails(
        out,
        {"kind": "features", "path": str(tmp_path / "t.csv")},
        StimulusAlignmentError,
        r"models\.m: '.*t\.csv' lacks 6 of the brain's 8 stimuli: 'house'",
    )
    sub = files["rdm"].isel(stimulus_a=slice(1, None), stimulus_b=slice(1, None))
    ba.save(sub, tmp_path / "sub.nc")
    _fails(
        out,
        {"kind": "rdm", "path": str(tmp_path / "sub.nc")},
        StimulusAlignmentError,
        r"the RDM in '.*sub\.nc' lacks 1 of the brain's 8 stimuli: 'scrambledpix'",
    )


def test_bad_tables_are_refused(files, run, tmp_path):
    _, out = run
    table = str(files["dir"] / "table.csv")
    _fails(
        out,
        {"kind": "features", "path": table, "columns": ["v0", "category"]},
        ValueError,
        r"models\.m\.columns: columns 'category' of '.*table\.csv' are not numeric: 'category' "
        r"\(e\.g\. 'other'\)",
    )
    _fails(
        out,
        {"kind": "features", "path": table, "columns": ["v0", "v9"]},
        ValueError,
        r"models\.m\.columns: 'v9' not in '.*table\.csv'; its columns are 'stimulus', 'v0'",
    )
    _fails(
        out,
        {"kind": "features", "path": table, "stimulus_column": "stim"},
        ValueError,
        r"models\.m\.stimulus_column: '.*table\.csv' has no column 'stim'.*Did you mean",
    )
    df = pd.read_csv(table)
    pd.concat([df, df.iloc[[2]]]).to_csv(tmp_path / "dup.csv", index=False)
    _fails(
        out,
        {"kind": "features", "path": str(tmp_path / "dup.csv")},
        ValueError,
        rf"'.*dup\.csv' repeats stimulus ids: '{df.stimulus[2]}'",
    )
    df.loc[3, "v2"] = np.nan
    df.to_csv(tmp_path / "nan.csv", index=False)
    _fails(
        out,
        {"kind": "features", "path": str(tmp_path / "nan.csv")},
        ValueError,
        rf"'.*nan\.csv' holds NaN or inf values in the rows of 1 stimuli: '{df.stimulus[3]}'",
    )


def test_bad_rdms_are_refused(files, run, tmp_path):
    _, out = run
    ids = IDS[::-1]
    good = files["rdm"].values

    def rdm_csv(values, name):
        np.savetxt(tmp_path / name, values, delimiter=",")
        return {"kind": "rdm", "path": str(tmp_path / name), "stimuli": ids}

    asym = good.copy()
    asym[1, 4] += 0.5  # the worst pair: (ids[1], ids[4])
    asym[2, 3] += 0.01
    _fails(
        out,
        rdm_csv(asym, "asym.csv"),
        ValueError,
        rf"the RDM in '.*asym\.csv' is not symmetric: \('{ids[1]}', '{ids[4]}'\) = "
        rf"{asym[1, 4]} but \('{ids[4]}', '{ids[1]}'\) = {asym[4, 1]}",
    )
    diag = good.copy()
    np.fill_diagonal(diag, 1.0)
    _fails(
        out,
        rdm_csv(diag, "diag.csv"),
        ValueError,
        rf"non-zero diagonal: \('{ids[0]}', '{ids[0]}'\)",
    )
    nan = good.copy()
    nan[0, 2] = nan[2, 0] = np.nan
    _fails(
        out,
        rdm_csv(nan, "nan.csv"),
        ValueError,
        rf"holds 2 NaN or inf values off the diagonal; the first: \('{ids[0]}', '{ids[2]}'\)",
    )
    _fails(
        out,
        {"kind": "rdm", "path": str(tmp_path / "asym.csv"), "stimuli": ids[:5]},
        ValueError,
        r"models\.m\.stimuli: lists 5 ids but '.*asym\.csv' is 8 × 8",
    )
    np.save(tmp_path / "rect.npy", np.zeros((8, 3)))
    _fails(
        out,
        {"kind": "rdm", "path": str(tmp_path / "rect.npy"), "stimuli": ids},
        ValueError,
        r"'.*rect\.npy' must be a square matrix, got shape \(8, 3\)",
    )
    # NaN on the diagonal (some tools write it) is a zero diagonal
    nandiag = good.copy()
    np.fill_diagonal(nandiag, np.nan)
    res = ba.run(_spec({"m": rdm_csv(nandiag, "nandiag.csv")}), out=out)
    brain_ids = [str(s) for s in res.tree["brain/vt"]["rdm"].stimulus_a.values]
    want = files["rdm"].sel(stimulus_a=brain_ids, stimulus_b=brain_ids).values
    assert_allclose(res.tree["models/vt"]["rdm"].sel(model="m").values, want, rtol=1e-5)


def test_more_activation_errors(run, tmp_path, _haxby_session):
    _, out = run
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        np.save(tmp_path / sub / "x.npy", np.ones((8, 2)))
    with pytest.raises(SpecError, match=r"models\.m\.path: '.*a/x\.npy' and '.*b/x\.npy' give "):
        ba.run(_spec({"m": {"kind": "activations", "path": str(tmp_path / "*/x.npy"),
                            "stimuli": IDS}}), out=out)  # fmt: skip
    ba.save(_haxby_session.isel(trial=slice(0, 20)), tmp_path / "trials.nc")
    with pytest.raises(
        SpecError,
        match=r"must be 2-D with dims \('stimulus', <feature>\), got dims \('trial', 'voxel'\) "
        r"and shape \(20, 530\)\. Average the trials per stimulus first",
    ):
        ba.run(_spec({"m": {"kind": "activations", "path": str(tmp_path / "trials.nc")}}), out=out)
    values = np.ones((8, 3))
    values[5, 1] = np.nan
    np.save(tmp_path / "nan.npy", values)
    _fails(
        out,
        {"kind": "activations", "path": str(tmp_path / "nan.npy"), "stimuli": IDS},
        ValueError,
        rf"'.*nan\.npy' holds NaN or inf values in the rows of 1 stimuli: '{IDS[5]}'",
    )
    (tmp_path / "junk.npy").write_bytes(b"junk")
    _fails(
        out,
        {"kind": "activations", "path": str(tmp_path / "junk.npy"), "stimuli": IDS},
        ValueError,
        r"models\.m\.path: cannot read '.*junk\.npy'",
    )


def test_more_table_and_rdm_errors(files, run, tmp_path):
    _, out = run
    pd.DataFrame({"stimulus": IDS, "word": ["w"] * 8}).to_csv(tmp_path / "t.csv", index=False)
    _fails(
        out,
        {"kind": "features", "path": str(tmp_path / "t.csv")},
        ValueError,
        r"'.*t\.csv' has no numeric column besides 'stimulus' \(columns: 'stimulus', 'word'\)",
    )
    pd.DataFrame({"stimulus": [*IDS[:3], None], "a": [1.0, 2, 3, 4]}).to_csv(
        tmp_path / "e.csv", index=False
    )
    _fails(
        out,
        {"kind": "features", "path": str(tmp_path / "e.csv")},
        ValueError,
        r"'.*e\.csv' has empty stimulus ids \(column 'stimulus'\) in data rows 5",
    )
    with pytest.raises(SpecError, match=r"models\.m\.columns: must be a non-empty list"):
        ba.run(_spec({"m": {"kind": "features", "path": str(tmp_path / "t.csv"), "columns": []}}),
               out=out)  # fmt: skip
    stack = xr.concat([files["rdm"], files["rdm"]], dim="model").assign_coords(model=["a", "b"])
    ba.save(stack, tmp_path / "stack.nc")
    _fails(
        out,
        {"kind": "rdm", "path": str(tmp_path / "stack.nc")},
        ValueError,
        r"'.*stack\.nc' must be an RDM with dims \('stimulus_a', 'stimulus_b'\), got dims "
        r"\('model', 'stimulus_a', 'stimulus_b'\); select one RDM first",
    )
    frame = pd.DataFrame(files["rdm"].values, index=IDS[::-1], columns=IDS[::-1])
    frame.to_csv(tmp_path / "labelled.csv")
    _fails(
        out,
        {"kind": "rdm", "path": str(tmp_path / "labelled.csv"), "stimuli": IDS[::-1]},
        ValueError,
        r"cannot read '.*labelled\.csv' .*A \.csv RDM is a plain numeric matrix: no header row",
    )
    with pytest.raises(SpecError, match=r"'.*rdm\.txt' is not a file type this kind reads; "):
        ba.run(_spec({"m": {"kind": "rdm", "path": str(tmp_path / "rdm.txt")}}), out=out)
    with pytest.raises(SpecError, match=r"models\.m\.stimuli: .*\(not an id: 3\)\. Quote ids"):
        ba.run(_spec({"m": {"kind": "rdm", "path": str(files["dir"] / "rdm.csv"),
                            "stimuli": [*IDS[:7], 3]}}), out=out)  # fmt: skip


def test_npy_rows_must_match_the_stimuli(run, tmp_path):
    _, out = run
    np.save(tmp_path / "l.npy", np.ones((5, 2)))
    _fails(
        out,
        {"kind": "activations", "path": str(tmp_path / "l.npy"), "stimuli": IDS},
        ValueError,
        r"'.*l\.npy' has shape \(5, 2\); expected \(n_stimuli, n_units\) with one row per id "
        r"of models\.m\.stimuli \(8 ids\)",
    )


def test_parquet_tables(files, run, tmp_path, monkeypatch):
    _, out = run
    df = pd.read_csv(files["dir"] / "table.csv")
    with monkeypatch.context() as m:  # as if no parquet engine were installed
        m.setitem(sys.modules, "pyarrow", None)
        m.setitem(sys.modules, "fastparquet", None)
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        _fails(
            out,
            {"kind": "features", "path": str(tmp_path / "t.parquet")},
            ImportError,
            r"reading '.*t\.parquet' needs a parquet engine.*pip install pyarrow",
        )
    df.to_parquet(tmp_path / "t.parquet")
    res = ba.run(_spec({"m": {"kind": "features", "path": str(tmp_path / "t.parquet")}}), out=out)
    ids = [str(s) for s in res.tree["brain/vt"]["rdm"].stimulus_a.values]
    want = _rdm(files["table"].sel(stimulus=ids).values, ids)
    assert_allclose(res.tree["models/vt"]["rdm"].sel(model="m").values, want, rtol=1e-5)


# -- the cache: keyed by the files' content ------------------------------------------------


def test_a_changed_file_reruns_its_models_units(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # paths in specs are relative to the working directory
    (tmp_path / "acts").mkdir()
    for layer in ("layer2", "layer10"):
        np.save(f"acts/{layer}.npy", files["npy"][layer].values)
    np.savetxt("rdm.csv", files["rdm"].values, delimiter=",")
    npy = {"kind": "activations", "path": "acts/*.npy", "stimuli": files["npy_ids"]}
    spec = _spec(
        {
            "npy": {**npy, "layers": ["layer2"]},
            "rdmcsv": {"kind": "rdm", "path": "rdm.csv", "stimuli": IDS[::-1]},
        }
    )
    ba.run(spec, out="out")

    def status():
        return ba.run(spec, out="out", dry_run=True).status

    assert status() == {"rsa/vt/npy": "cached", "rsa/vt/rdmcsv": "cached"}
    # a layer that is not selected is not read: changing it changes nothing
    np.save("acts/layer10.npy", np.zeros((9, 5), dtype=np.float32))
    assert status() == {"rsa/vt/npy": "cached", "rsa/vt/rdmcsv": "cached"}
    # the same path with new values: that model's units run again, the others are loaded
    np.save("acts/layer2.npy", files["npy"]["layer2"].values[::-1].copy())
    assert status() == {"rsa/vt/npy": "to run", "rsa/vt/rdmcsv": "cached"}
    np.savetxt("rdm.csv", files["rdm"].values * 2, delimiter=",")
    assert status() == {"rsa/vt/npy": "to run", "rsa/vt/rdmcsv": "to run"}
    res = ba.run(spec, out="out")
    assert res.status == {"rsa/vt/npy": "computed", "rsa/vt/rdmcsv": "computed"}
    ids = [str(s) for s in res.tree["brain/vt"]["rdm"].stimulus_a.values]
    got = res.tree["models/vt"]["rdm"]
    want = files["rdm"].sel(stimulus_a=ids, stimulus_b=ids).values * 2
    assert_allclose(got.sel(model="rdmcsv").values, want, rtol=1e-5)
    rows = ba.responses(files["npy"]["layer2"].values[::-1], files["npy_ids"])  # as read
    assert_allclose(
        got.sel(model="npy:layer2").values, _rdm(rows.sel(stimulus=ids).values, ids), rtol=1e-5
    )
