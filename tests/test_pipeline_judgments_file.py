"""``dataset: judgments_file``: a lab's own pairwise ratings or triplet choices in a pipeline."""

import itertools

import numpy as np
import pandas as pd
import pytest

import brainalign as ba
from brainalign.loaders.judgments import load_pairwise, load_triplets
from brainalign.pipeline import SpecError, load_spec

SIMLEX = ba.datasets.get_manifest("word_similarity")["path"] / "simlex999.txt"


@pytest.fixture(scope="module")
def ratings():
    """The SimLex-999 pairs among its 40 most rated words, as a lab's csv would hold them."""
    rows = pd.read_csv(SIMLEX, sep="\t", comment="#", header=None, names=["w1", "w2", "r"])
    counts = pd.concat([rows.w1, rows.w2]).value_counts()
    words = set(counts.index[:40])
    return rows[rows.w1.isin(words) & rows.w2.isin(words)].reset_index(drop=True)


def _spec(brain):
    return {
        "name": "judgments",
        "brain": {"ratings": brain},
        "models": {"net": {"kind": "random_network", "n_layers": 2}},
        "analyses": {"rsa": {"n_permutations": 50, "n_bootstrap": 0}},
    }


def test_pairwise_csv_with_its_own_column_names(ratings, tmp_path):
    path = tmp_path / "ratings.csv"
    ratings.rename(columns={"w1": "word_1", "w2": "word_2", "r": "mean_rating"}).to_csv(
        path, index=False
    )
    brain = {
        "dataset": "judgments_file",
        "path": str(path),
        "columns": {"a": "word_1", "b": "word_2", "score": "mean_rating"},
        "scale": [0, 10],
    }
    res = ba.run(_spec(brain), out=tmp_path / "out")
    got = res.tree["brain/ratings"].to_dataset()["rdm"]
    ref = load_pairwise(list(ratings.itertuples(index=False, name=None)), scale=(0, 10))
    ids = [str(s) for s in got.stimulus_a.values]
    np.testing.assert_allclose(
        got.values, ref.sel(stimulus_a=ids, stimulus_b=ids).values, rtol=0, atol=1e-12
    )
    assert np.isnan(got.values).any()  # unrated pairs stay unrated
    assert "pairwise ratings from" in res.report.read_text()


def test_triplets_with_a_header(tmp_path):
    # odd-one-out choices over the 8 Haxby categories, each the category farthest from the
    # other two in the ventral-temporal RDM (real data, an ideal observer)
    rdm = ba.rsa.rdm(ba.average_trials(ba.datasets.load_haxby()), "correlation")
    words = [str(s) for s in rdm.stimulus_a.values]
    d = rdm.values
    rows = []
    for trio in itertools.combinations(range(len(words)), 3):
        odd = max(trio, key=lambda i: sum(d[i, j] for j in trio))
        rows.append((*(words[i] for i in trio), words[odd]))
    path = tmp_path / "triplets.tsv"
    pd.DataFrame(rows, columns=["i1", "i2", "i3", "odd_one"]).to_csv(path, sep="\t", index=False)
    brain = {
        "dataset": "judgments_file",
        "path": str(path),
        "format": "triplets",
        "columns": {"a": "i1", "b": "i2", "c": "i3", "odd": "odd_one"},
    }
    spec = load_spec(_spec(brain))
    res = ba.run(spec, out=tmp_path / "out")
    got = res.tree["brain/ratings"].to_dataset()["rdm"]
    ref = load_triplets(rows)
    ids = [str(s) for s in got.stimulus_a.values]
    np.testing.assert_allclose(
        got.values, ref.sel(stimulus_a=ids, stimulus_b=ids).values, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(
    ("brain", "match"),
    [
        ({}, r"brain\.ratings\.path: is required for dataset judgments_file"),
        ({"path": "nowhere.csv"}, r"brain\.ratings\.path: file not found: 'nowhere\.csv'"),
        ({"format": "quads"}, r"brain\.ratings\.format: invalid value 'quads'"),
        (
            {"columns": {"a": "x", "b": "y", "scor": "z"}},
            r"columns: maps the pairwise fields a, b, score .*\(unknown: scor\) "
            r"\(missing: score\)",
        ),
        ({"scale": [0]}, r"brain\.ratings\.scale: is a pair \[low, high\]"),
        ({"volume": "whole_brain_25mm"}, r"brain\.ratings\.volume: is a haxby2001 option"),
    ],
)
def test_bad_judgment_specs_fail_before_computing(tmp_path, brain, match):
    path = tmp_path / "r.tsv"
    path.write_text("cat\tdog\t8\n")
    full = {"dataset": "judgments_file", "path": str(path), **brain}
    if brain == {}:
        full.pop("path")
    with pytest.raises(SpecError, match=match):
        load_spec(_spec(full))


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("w1,w2,rating\ncat,dog,8\n")
    brain = {
        "dataset": "judgments_file",
        "path": str(path),
        "columns": {"a": "w1", "b": "w2", "score": "score"},
    }
    with pytest.raises(ValueError, match=r"has no column\(s\) 'score'; its columns: 'w1', 'w2'"):
        ba.run(_spec(brain), out=tmp_path / "out")
