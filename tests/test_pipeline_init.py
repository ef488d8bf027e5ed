"""``brainalign init``: from a folder of a lab's files to a spec that runs unchanged."""

import numpy as np
import pytest

import brainalign as ba
from brainalign.cli import main

pytest.importorskip("brainalign.pipeline.sources.arrays")
pytest.importorskip("brainalign.pipeline.models.files")


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory):
    """Three subjects' stimulus-mean patterns (Haxby runs 0-3, 4-7, 8-11) and a model's
    saved activations, as a lab would have them."""
    folder = tmp_path_factory.mktemp("lab") / "my_study"
    folder.mkdir()
    trials = ba.datasets.load_haxby()
    runs = trials["run"].values
    for k, first in enumerate((0, 4, 8), start=1):
        part = trials.isel(trial=np.flatnonzero((runs >= first) & (runs < first + 4)))
        ba.save(ba.average_trials(part), folder / f"sub-0{k}_patterns.nc")
    ids = [str(s) for s in ba.average_trials(trials).stimulus.values]
    ba.save(ba.data.random_network(ids, n_layers=2, seed=3), folder / "mynet_activations.nc")
    (folder / "notes.txt").write_text("not data")
    return folder


def test_init_writes_a_spec_that_runs_unchanged_with_group_level_rsa(lab_folder, tmp_path, capsys):
    spec = tmp_path / "study.yaml"
    assert main(["init", str(lab_folder), "-o", str(spec)]) == 0
    said = capsys.readouterr().out
    assert "3 pattern file(s), 1 activation file(s), 8 stimuli" in said
    text = spec.read_text()
    assert "sub-*_patterns.nc" in text and "kind: activations" in text
    assert "# subjects: sub-01, sub-02, sub-03" in text
    res = ba.run(spec, out=tmp_path / "out")
    ds = res.tree["rsa/my_study"].to_dataset()
    assert ds.attrs["n_subjects"] == 3
    assert {"group_mean", "group_p"} <= set(ds.data_vars)
    assert ds.attrs["noise_ceiling_lower"] < ds.attrs["noise_ceiling_upper"]
    assert any(str(m).startswith("mynet_activations:") for m in ds.model.values)
    html = res.report.read_text()
    assert "Group level: models against 3 subjects (my_study)" in html


def test_init_prints_to_stdout_and_names_what_it_cannot_use(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "table.csv").write_text("a,b\n1,2\n")
    assert main(["init", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "holds no pattern files" in err and "table.csv" in err
    assert main(["init", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_subject_folders_and_a_numeric_folder_name(lab_folder, tmp_path):
    # review findings: sub-XX in a folder name (sub-01/patterns.nc), and a folder named like
    # a number (its spec name must stay a string)
    import shutil

    from brainalign.pipeline import load_spec
    from brainalign.pipeline._init import init_spec

    folder = tmp_path / "2024"
    for k in (1, 2, 3):
        (folder / f"sub-0{k}").mkdir(parents=True)
        shutil.copy(lab_folder / f"sub-0{k}_patterns.nc", folder / f"sub-0{k}" / "patterns.nc")
    text, found = init_spec(folder)
    assert len(found.patterns) == 3 and "subject_names: bids" in text
    spec = load_spec(__import__("yaml").safe_load(text))
    assert spec["name"] == "2024"
    res = ba.run(spec, out=tmp_path / "out")
    assert res.tree["rsa/2024"].attrs["n_subjects"] == 3
