import numpy as np
import pytest

import brainalign as ba
from brainalign import rsa


def test_generating_layer_is_recovered_by_rsa():
    sim = ba.data.simulate(60, n_layers=4, generating_layer=3, noise=0.5, n_voxels=200, seed=1)
    brain = rsa.rdm(sim.brain)
    scores = {
        name: rsa.compare(brain, rsa.rdm(sim.model[name]["activations"]))
        for name in sim.model.children
    }
    assert max(scores, key=scores.get) == sim.generating_layer == "layer3"


def test_generating_layer_is_recovered_by_linear_regression():
    # Independent check of the ground truth with scikit-learn: held-out R^2 is highest for
    # the generating layer.
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_score

    sim = ba.data.simulate(120, n_layers=3, generating_layer=1, noise=0.5, n_voxels=20, seed=2)
    scores = {}
    for name in sim.model.children:
        X = sim.model[name]["activations"].values
        scores[name] = cross_val_score(
            RidgeCV(alphas=np.logspace(-2, 4, 13)), X, sim.brain.values, cv=5
        ).mean()
    assert max(scores, key=scores.get) == "layer1"


def test_seeded_and_repeats():
    a = ba.data.simulate(10, seed=3, n_repeats=3, n_voxels=4)
    b = ba.data.simulate(10, seed=3, n_repeats=3, n_voxels=4)
    np.testing.assert_array_equal(a.brain.values, b.brain.values)
    assert a.brain.dims == ("trial", "voxel") and a.brain.sizes["trial"] == 30
    assert list(np.unique(a.brain.run.values)) == [1, 2, 3]
    ba.validate(a.brain)
    avg = ba.average_trials(a.brain)
    assert avg.sizes["stimulus"] == 10
    model, brain = a  # tuple-unpacking convenience
    assert brain is a.brain
    assert set(model.children) == {"layer1", "layer2", "layer3", "layer4"}
    with ba.config_context(seed=5):
        c, d = ba.data.simulate(10, n_voxels=4), ba.data.simulate(10, n_voxels=4)
    np.testing.assert_array_equal(c.brain.values, d.brain.values)


def test_random_network():
    tree = ba.data.random_network(["a", "b", "c"], n_layers=2, n_units=5, seed=0)
    act = tree["layer2"]["activations"]
    assert act.dims == ("stimulus", "unit") and act.shape == (3, 5)
    assert (act.values >= 0).all()
    assert ba.data.random_network(4, seed=0)["layer1"]["activations"].sizes["stimulus"] == 4


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_stimuli": 2}, ValueError, r"n_stimuli must be in the range \[3, inf\), got 2"),
        (
            {"generating_layer": 5},
            ValueError,
            r"generating_layer must be in the range \[1, 4\], got 5",
        ),
        ({"noise": -1.0}, ValueError, r"noise must be in the range \[0, inf\), got -1.0"),
        ({"n_units": 2.5}, TypeError, r"n_units must be an integer, got float 2.5"),
    ],
)
def test_simulate_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ba.data.simulate(**kwargs)


def test_random_network_depends_on_ids_not_order():
    a = ba.data.random_network(["x", "y", "z"], n_layers=2, seed=3)["layer2"]["activations"]
    b = ba.data.random_network(["z", "x"], n_layers=2, seed=3)["layer2"]["activations"]
    np.testing.assert_allclose(
        b.sel(stimulus=["x", "z"]).values, a.sel(stimulus=["x", "z"]).values
    )
    c = ba.data.random_network(["x", "y", "z"], n_layers=2, seed=4)["layer2"]["activations"]
    assert not np.allclose(a.values, c.values)
