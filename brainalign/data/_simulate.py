"""Ground-truth simulators: a random network's layers as "model", a noisy mixture as "brain"."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import check_number
from brainalign._config import get_config
from brainalign._docdict import fill_doc
from brainalign._version import __version__
from brainalign.data._schema import as_ids


@dataclass(frozen=True)
class Simulation:
    """Simulated model layers and brain responses with a known answer.

    Parameters
    ----------
    model : xarray.DataTree
        One child per layer (``"layer1"`` ...), each holding an ``activations`` variable
        with dims ``("stimulus", "unit")``.
    brain : xarray.DataArray
        Responses with dims ``("stimulus", "voxel")``, or ``("trial", "voxel")`` with
        ``stimulus`` and ``run`` coordinates when ``n_repeats > 1``.
    generating_layer : str
        The layer whose units were mixed into the brain responses.
    mixing : numpy.ndarray, shape (n_units, n_voxels)
        The mixing weights from the generating layer to the voxels.
    params : dict
        The simulation's parameters.
    """

    model: xr.DataTree
    brain: xr.DataArray
    generating_layer: str
    mixing: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # allows ``model, brain = simulate(...)``
        return iter((self.model, self.brain))


def _relu_layers(
    inputs: np.ndarray, n_layers: int, n_units: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Pass inputs through He-initialised random ReLU layers, all stimuli at once."""
    h = inputs
    layers = {}
    for l_idx in range(1, n_layers + 1):  # loop over layers; each is one batched GEMM
        w = rng.standard_normal((h.shape[1], n_units)) * np.sqrt(2.0 / h.shape[1])
        h = np.maximum(h @ w, 0.0)
        layers[f"layer{l_idx}"] = h
    return layers


def _id_words(stimulus_id: str) -> list[int]:
    """Four 32-bit words of the id's sha256: a stable per-stimulus seed component."""
    digest = hashlib.sha256(stimulus_id.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def _layers_tree(
    layers: dict[str, np.ndarray], ids: np.ndarray, attrs: dict[str, Any]
) -> xr.DataTree:
    children = {}
    for name, act in layers.items():
        da = xr.DataArray(
            act,
            dims=("stimulus", "unit"),
            coords={"stimulus": ids},
            attrs={**attrs, "modality": "model", "model": "random_relu_network", "layer": name},
            name="activations",
        )
        children[name] = xr.DataTree(dataset=da.to_dataset())
    tree = xr.DataTree(children=children)
    tree.attrs.update({**attrs, "modality": "model"})
    return tree


@fill_doc
def random_network(
    stimulus: Any,
    *,
    n_layers: int = 4,
    n_units: int = 64,
    n_inputs: int = 32,
    seed: int | None = None,
) -> xr.DataTree:
    """Activations of an untrained, seeded random ReLU network: a null model.

    Each stimulus gets a Gaussian input vector; layer ``l`` is ``relu(h_{l-1} W_l)`` with
    He-scaled Gaussian weights. A stimulus's input is drawn from ``(seed, sha256(id))``,
    so its activations do not depend on the other stimuli or their order. Its RDMs carry
    no information about real stimuli, which makes it the baseline that a trained model must beat.

    Parameters
    ----------
    stimulus : sequence of str, or int
        Stimulus ids, or a number of stimuli (ids ``"0"...``).
    n_layers : int
        Number of layers (``"layer1"``...).
    n_units : int
        Units per layer.
    n_inputs : int
        Input dimension.
    %(seed)s

    Returns
    -------
    model : xarray.DataTree
        One child per layer holding ``activations`` with dims ``("stimulus", "unit")``.

    Examples
    --------
    >>> from brainalign.data import random_network
    >>> tree = random_network(["a", "b", "c"], n_layers=2, n_units=5, seed=0)
    >>> tree["layer2"]["activations"].shape
    (3, 5)
    """
    if isinstance(stimulus, (int, np.integer)) and not isinstance(stimulus, bool):
        check_number("stimulus", stimulus, low=1, integer=True)
        ids = as_ids(None, int(stimulus))
    else:
        ids = as_ids(stimulus, len(stimulus))
    check_number("n_layers", n_layers, low=1, integer=True)
    check_number("n_units", n_units, low=1, integer=True)
    check_number("n_inputs", n_inputs, low=1, integer=True)
    if seed is None:
        seed = get_config()["seed"]
    # Each stimulus's input depends on (seed, id) only, so its activations do not change
    # with the order or the set of the other stimuli.
    inputs = np.stack(
        [
            np.random.default_rng([0 if seed is None else seed, *_id_words(s)]).standard_normal(
                n_inputs
            )
            for s in ids.tolist()
        ]
    )
    layers = _relu_layers(inputs, n_layers, n_units, np.random.default_rng(seed))
    attrs = {
        "brainalign_version": __version__,
        "source": "brainalign.data.random_network",
        "seed": -1 if seed is None else int(seed),
    }
    return _layers_tree(layers, ids, attrs)


@fill_doc
def simulate(
    n_stimuli: int = 60,
    *,
    n_layers: int = 4,
    n_units: int = 64,
    n_inputs: int = 32,
    n_voxels: int = 100,
    generating_layer: int = 2,
    noise: float = 1.0,
    n_repeats: int = 1,
    seed: int | None = None,
) -> Simulation:
    """Simulate a random ReLU network's layers and brain data generated from one layer.

    The stimuli are Gaussian input vectors through :func:`random_network`'s architecture.
    Brain responses are ``z(h_g) M + noise * e`` with ``z`` a per-unit z-score, ``M``
    Gaussian mixing weights, the signal scaled to unit variance per voxel, and ``e``
    standard Gaussian noise drawn independently per repeat. So the generating layer ``g``
    is, by construction, the best-matching layer.

    Parameters
    ----------
    n_stimuli : int
        Number of stimuli (ids ``"s000"``...).
    n_layers : int
        Number of layers (``"layer1"``...).
    n_units : int
        Units per layer.
    n_inputs : int
        Input dimension.
    n_voxels : int
        Number of voxels.
    generating_layer : int
        1-based index of the layer that generates the brain data.
    noise : float
        Standard deviation of the noise relative to the signal (SNR = 1 / noise**2).
    n_repeats : int
        Repeats (runs) per stimulus; above 1 the brain array has a ``trial`` dim.
    %(seed)s

    Returns
    -------
    sim : Simulation
        Model layers, brain responses and the ground truth.

    Examples
    --------
    >>> import brainalign as ba
    >>> sim = ba.data.simulate(20, n_voxels=10, seed=0)
    >>> sim.generating_layer, sim.brain.dims
    ('layer2', ('stimulus', 'voxel'))
    """
    check_number("n_stimuli", n_stimuli, low=3, integer=True)
    check_number("n_layers", n_layers, low=1, integer=True)
    check_number("n_units", n_units, low=1, integer=True)
    check_number("n_inputs", n_inputs, low=1, integer=True)
    check_number("n_voxels", n_voxels, low=1, integer=True)
    check_number("generating_layer", generating_layer, low=1, high=n_layers, integer=True)
    check_number("noise", noise, low=0)
    check_number("n_repeats", n_repeats, low=1, integer=True)
    if seed is None:
        seed = get_config()["seed"]
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n_stimuli)])
    layers = _relu_layers(rng.standard_normal((n_stimuli, n_inputs)), n_layers, n_units, rng)
    gen_name = f"layer{generating_layer}"
    g = layers[gen_name]
    sd = g.std(axis=0)
    z = (g - g.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    mixing = rng.standard_normal((n_units, n_voxels)) / np.sqrt(n_units)
    signal = z @ mixing
    signal /= signal.std(axis=0, keepdims=True) + 1e-12
    params = {
        "n_stimuli": n_stimuli,
        "n_layers": n_layers,
        "n_units": n_units,
        "n_inputs": n_inputs,
        "n_voxels": n_voxels,
        "generating_layer": generating_layer,
        "noise": float(noise),
        "n_repeats": n_repeats,
        "seed": seed,
    }
    common = {"brainalign_version": __version__, "source": "brainalign.data.simulate"}
    model = _layers_tree(layers, ids, common)
    battrs = {**common, "modality": "simulation", "generating_layer": gen_name, "noise": noise}
    if n_repeats == 1:
        values = signal + noise * rng.standard_normal(signal.shape)
        brain = xr.DataArray(
            values,
            dims=("stimulus", "voxel"),
            coords={"stimulus": ids},
            attrs=battrs,
            name="brain",
        )
    else:
        reps = signal[None] + noise * rng.standard_normal((n_repeats, *signal.shape))
        values = reps.reshape(n_repeats * n_stimuli, n_voxels)
        brain = xr.DataArray(
            values,
            dims=("trial", "voxel"),
            coords={
                "trial": np.arange(values.shape[0]),
                "stimulus": ("trial", np.tile(ids, n_repeats)),
                "run": ("trial", np.repeat(np.arange(1, n_repeats + 1), n_stimuli)),
            },
            attrs=battrs,
            name="brain",
        )
    return Simulation(
        model=model, brain=brain, generating_layer=gen_name, mixing=mixing, params=params
    )
