"""Human similarity judgments on the shipped SimLex-999 / WordSim-353 files."""

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

import brainalign as ba
from brainalign.datasets import data_dir
from brainalign.loaders.judgments import load_pairwise, load_triplets

WS = data_dir() / "word_similarity"


@pytest.fixture(scope="module")
def simlex():
    return load_pairwise(WS / "simlex999.txt", scale=(0, 10))


def test_simlex_is_an_incomplete_rdm(simlex):
    ba.validate(simlex)
    raw = pd.read_csv(
        WS / "simlex999.txt", sep="\t", comment="#", header=None, names=["a", "b", "s"]
    )
    assert simlex.sizes["stimulus_a"] == len(set(raw.a) | set(raw.b)) == 1028
    # every rated pair holds (10 - mean rating) / 10, read independently with pandas
    for _, row in raw.sample(25, random_state=0).iterrows():
        both = raw[((raw.a == row.a) & (raw.b == row.b)) | ((raw.a == row.b) & (raw.b == row.a))]
        expected = (10 - both.s.mean()) / 10
        assert simlex.sel(stimulus_a=row.a, stimulus_b=row.b).item() == pytest.approx(expected)
        assert simlex.sel(stimulus_a=row.b, stimulus_b=row.a).item() == pytest.approx(expected)
        assert int(simlex.n_ratings.sel(stimulus_a=row.a, stimulus_b=row.b)) == len(both)
    off = ~np.eye(1028, dtype=bool)
    rated = np.isfinite(simlex.values[off])
    assert rated.sum() // 2 == simlex.attrs["n_pairs_rated"] == 998  # one pair appears twice
    assert (simlex.n_ratings.values[off][~rated] == 0).all()  # unrated pairs stay NaN


def test_comparisons_mask_unrated_pairs(simlex, tmp_path):
    ws = load_pairwise(WS / "wordsim353.tsv", scale=(0, 10))
    a, b = ba.align_stimuli(simlex, ws, join="inner")
    va, vb = (
        squareform(np.nan_to_num(a.values, nan=-1), checks=False),
        squareform(np.nan_to_num(b.values, nan=-1), checks=False),
    )
    ok = (va >= 0) & (vb >= 0)
    assert 5 <= ok.sum() < len(va)  # 9 word pairs are rated in both collections
    r = ba.rsa.compare(a, b)
    assert r == pytest.approx(spearmanr(va[ok], vb[ok])[0], abs=1e-12)
    xr.testing.assert_identical(ba.load(ba.save(ws, tmp_path / "ws.nc")), ws)


def test_pairwise_repeated_raters_and_dissimilarity_scale():
    rows = [("a", "b", 2.0), ("b", "a", 4.0), ("a", "c", 1.0), ("b", "c", 7.0)]
    r = load_pairwise(rows, kind="dissimilarity", scale=(0, 10), stimulus=["a", "b", "c", "d"])
    assert r.sel(stimulus_a="a", stimulus_b="b").item() == pytest.approx(0.3)  # mean 3 / 10
    assert int(r.n_ratings.sel(stimulus_a="a", stimulus_b="b")) == 2
    assert np.isnan(r.sel(stimulus_a="a", stimulus_b="d").item())
    assert list(r.stimulus_a.values) == ["a", "b", "c", "d"]
    default = load_pairwise(rows)  # scale from the data: (1, 7)
    assert default.sel(stimulus_a="b", stimulus_b="c").item() == pytest.approx(0.0)


def test_triplets_counts_by_hand():
    rows = [("x", "y", "z", "z"), ("x", "y", "z", "z"), ("x", "y", "z", "x"), ("x", "y", "w", "w")]
    r = load_triplets(rows)
    # (x, y) shown together 4 times, kept together 3 times
    assert r.sel(stimulus_a="x", stimulus_b="y").item() == pytest.approx(1 - 3 / 4)
    assert int(r.n_ratings.sel(stimulus_a="x", stimulus_b="y")) == 4
    # (y, z) shown 3 times, kept together once (when x was odd)
    assert r.sel(stimulus_a="y", stimulus_b="z").item() == pytest.approx(1 - 1 / 3)
    assert np.isnan(r.sel(stimulus_a="z", stimulus_b="w").item())


def test_triplets_recover_a_known_embedding():
    rng = np.random.default_rng(0)
    n = 12
    emb = rng.normal(size=(n, 2))
    true = squareform(pdist(emb))
    trip = rng.choice(n, size=(6000, 3), replace=True)
    trip = trip[
        (trip[:, 0] != trip[:, 1]) & (trip[:, 0] != trip[:, 2]) & (trip[:, 1] != trip[:, 2])
    ]
    # the odd one out is the item far from the closest pair (noise-free choice model)
    d01, d02, d12 = (
        true[trip[:, 0], trip[:, 1]],
        true[trip[:, 0], trip[:, 2]],
        true[trip[:, 1], trip[:, 2]],
    )
    odd = trip[
        np.arange(len(trip)), np.argmin(np.stack([d01, d02, d12], 1), axis=1).choose([2, 1, 0])
    ]
    ids = [f"s{i}" for i in range(n)]
    df = pd.DataFrame(
        {
            "a": np.take(ids, trip[:, 0]),
            "b": np.take(ids, trip[:, 1]),
            "c": np.take(ids, trip[:, 2]),
            "odd": np.take(ids, odd),
        }
    )
    r = load_triplets(df, stimulus=ids)
    got = squareform(r.values, checks=False)
    assert spearmanr(got, squareform(true))[0] > 0.8


def test_bad_input(tmp_path):
    with pytest.raises(
        ValueError, match=r"'kind' parameter.*got 'similar'.*Did you mean 'similarity'"
    ):
        load_pairwise([("a", "b", 1.0)], kind="similar")
    with pytest.raises(
        ValueError,
        match=r"ratings: column 'score' holds 1 value\(s\) that are not numbers: "
        r"row 0: 'high'",
    ):
        load_pairwise([("a", "b", "high"), ("a", "c", 1)])
    with pytest.raises(ValueError, match=r"1 score\(s\) fall outside scale \(0.0, 10.0\): 11.0"):
        load_pairwise([("a", "b", 11.0), ("a", "c", 1.0)], scale=(0, 10))
    with pytest.raises(ValueError, match=r"mentions 1 id\(s\) that stimulus does not list: 'c'"):
        load_pairwise([("a", "b", 1.0), ("a", "c", 2.0)], stimulus=["a", "b"])
    with pytest.raises(ValueError, match=r"stimulus lists duplicated ids: 'a'"):
        load_pairwise([("a", "b", 1.0), ("a", "b", 2.0)], stimulus=["a", "a", "b"])
    with pytest.raises(
        ValueError,
        match=r"odd one out that is not one of their items, e\.g\. row 0: "
        r"items \['a', 'b', 'c'\], odd 'd'",
    ):
        load_triplets([("a", "b", "c", "d")])
    with pytest.raises(ValueError, match=r"1 triplet\(s\) repeat an item"):
        load_triplets([("a", "a", "c", "c")])
    with pytest.raises(ValueError, match=r"ratings lacks the column\(s\) \['score'\]"):
        load_pairwise(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(FileNotFoundError, match=r"ratings: no such file"):
        load_pairwise(tmp_path / "none.tsv")
    one_col = tmp_path / "bad.tsv"
    one_col.write_text("a\nb\n")
    with pytest.raises(
        ValueError, match=r"bad\.tsv', line 1 has 1 tab-separated column\(s\) \('a'\); expected 3"
    ):
        load_pairwise(one_col)


def test_words_that_pandas_reads_as_missing_are_stimulus_ids(tmp_path):
    # NA, null, nan and None are words (e.g. the name "Na", a "null" condition); they were
    # read as missing values and failed with KeyError: nan
    f = tmp_path / "words.tsv"
    f.write_text("# a comment\nNA\tnull\t2\nnan\tNone\t8\nNA\tnan\t5\n")
    r = load_pairwise(f, scale=(0, 10))
    assert sorted(r.stimulus_a.values.tolist()) == ["NA", "None", "nan", "null"]
    assert r.sel(stimulus_a="NA", stimulus_b="null").item() == pytest.approx(0.8)  # (10-2)/10
    assert r.sel(stimulus_a="nan", stimulus_b="None").item() == pytest.approx(0.2)
    assert int(r.n_ratings.sel(stimulus_a="NA", stimulus_b="nan")) == 1
    t = tmp_path / "triplets.tsv"
    t.write_text("NA\tnull\tNone\tNone\nNA\tnull\tnan\tNA\n")
    tr = load_triplets(t)
    assert sorted(tr.stimulus_a.values.tolist()) == ["NA", "None", "nan", "null"]
    assert tr.sel(stimulus_a="NA", stimulus_b="null").item() == pytest.approx(0.5)  # 1 of 2 kept


@pytest.mark.parametrize("word", ["inf", "-inf", "nan", "NaN"])
def test_non_finite_scores_are_refused_with_file_line_and_value(tmp_path, word):
    # a score of inf without a scale made every pair NaN while n_ratings said 1
    f = tmp_path / "ratings.tsv"
    f.write_text(f"# header\nx\ty\t3\na\tb\t{word}\n")
    with pytest.raises(
        ValueError,
        match=rf"ratings file '.*ratings\.tsv': column 'score' holds 1 value\(s\) that are not "
        rf"finite numbers: line 3: '{re.escape(word)}'",
    ):
        load_pairwise(f)
    with pytest.raises(ValueError, match=r"row 1: 'inf'"):
        load_pairwise([("x", "y", 3.0), ("a", "b", float("inf"))])


def test_bad_judgment_files_name_the_file_line_column_and_value(tmp_path):
    # real data: SimLex-999 with one score written as a word
    lines = (WS / "simlex999.txt").read_text().splitlines()
    assert lines[9].split("\t")[:2] == ["short", "long"]
    lines[9] = "short\tlong\tfour"
    f = tmp_path / "simlex_word.txt"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError,
        match=r"ratings file '.*simlex_word\.txt': column 'score' holds 1 value\(s\) that are "
        r"not numbers: line 10: 'four'",
    ):
        load_pairwise(f, scale=(0, 10))
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"ratings file '.*empty\.tsv' is empty \(0 bytes"):
        load_pairwise(empty)
    comments = tmp_path / "comments.tsv"
    comments.write_text("# Word 1\tWord 2\tscore\n\n")
    with pytest.raises(ValueError, match=r"triplets file '.*comments\.tsv' holds no row"):
        load_triplets(comments)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("café\tthé\t3\n".encode() + "crème\tbrûlée\t4\n".encode("latin-1"))
    with pytest.raises(
        ValueError,
        match=r"ratings file '.*latin1\.tsv' is not UTF-8 text: line 2 holds the "
        r"byte 0xe8",
    ):
        load_pairwise(latin1)
    short = tmp_path / "short.tsv"
    short.write_text("a\tb\t1\nc\td\n")
    with pytest.raises(
        ValueError, match=r"short\.tsv', line 2 has 2 tab-separated column\(s\) \('c\\td'\)"
    ):
        load_pairwise(short)
    with pytest.raises(ValueError, match=r"ratings, row 1: column 'b' is missing \(None\)"):
        load_pairwise([("a", "b", 1.0), ("a", None, 2.0)])
    with pytest.raises(ValueError, match=r"ratings: column 'score' is missing a value on 1 "
                       r"row\(s\): row 0"):  # fmt: skip
        load_pairwise(pd.DataFrame({"a": ["x"], "b": ["y"], "score": [np.nan]}))
