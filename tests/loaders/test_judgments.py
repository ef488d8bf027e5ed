"""Human similarity judgments on the shipped SimLex-999 / WordSim-353 files."""

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
    with pytest.raises(ValueError, match=r"1 score\(s\) that are missing or not numbers: 'high'"):
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
    with pytest.raises(ValueError, match=r"has 1 tab-separated column\(s\); expected 3"):
        load_pairwise(one_col)
