"""Layer RDMs of a small convolutional network trained here, for the tRSA evaluation.

A 10-layer network (8 convolutional layers, one hidden fully connected layer, the logits),
the depth of the paper's BLT network (10 layers), trained on scikit-learn's handwritten
digits (8 × 8 images that ship inside scikit-learn: real scans, no download), one instance
per seed. The 62 held-out stimuli (6 or 7 per digit) never enter training. Trained weights
and the stimuli's activations are cached under ``<out>/cache`` (never in the repository).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

CHANNELS = (16, 16, 24, 24, 32, 32, 48, 48)  # 8 conv layers; stride 2 at layers 3 and 6
STRIDE2 = (2, 5)  # zero-based indices of the strided conv layers: 8x8 -> 4x4 -> 2x2
HIDDEN = 64
N_STIMULI = 62
ARCH = "cnn8-v1"  # part of the cache key: change it when the architecture changes


def digit_split(n_stimuli: int = N_STIMULI, seed: int = 0):
    """Held-out stimuli (balanced over digits) and the training images of the digits set."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(seed)
    per = np.full(10, n_stimuli // 10)
    per[: n_stimuli % 10] += 1
    stim = np.concatenate(
        [rng.choice(np.flatnonzero(y == d), per[d], replace=False) for d in range(10)]
    )
    train = np.setdiff1d(np.arange(len(y)), stim)
    ids = [f"d{y[i]}_{i}" for i in stim]
    return x[train], y[train], x[stim], y[stim], ids


class SmallCNN(torch.nn.Module):
    """Eight 3 × 3 conv layers (ReLU), global average pool, a hidden layer, the logits."""

    def __init__(self) -> None:
        super().__init__()
        convs, c_in = [], 1
        for k, c in enumerate(CHANNELS):
            convs.append(torch.nn.Conv2d(c_in, c, 3, stride=2 if k in STRIDE2 else 1, padding=1))
            c_in = c
        self.convs = torch.nn.ModuleList(convs)
        self.fc = torch.nn.Linear(c_in, HIDDEN)
        self.out = torch.nn.Linear(HIDDEN, 10)

    def forward(self, x: torch.Tensor, keep: bool = False):
        """Logits, and (``keep=True``) every layer's activation flattened per image."""
        acts = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            acts.append(x.flatten(1))
        h = torch.relu(self.fc(x.mean(dim=(2, 3))))
        acts.append(h)
        logits = self.out(h)
        acts.append(logits)
        return (logits, acts) if keep else logits


def train_classifier(net: torch.nn.Module, x, y, epochs: int, seed: int, lr: float):
    """Train ``net`` in place: Adam, batch 64, cross-entropy; ``seed`` sets the batch order.

    Shared by the MLPs of ``trsa_evaluation.py`` and the CNNs here (the caller seeds torch
    before building ``net``, which sets the initialisation).
    """
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = perm[start : start + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net


def train_cnn(seed: int, x, y, epochs: int) -> SmallCNN:
    """Adam, batch 64, cross-entropy; the seed sets the initialisation and the batch order."""
    torch.manual_seed(seed)
    return train_classifier(SmallCNN(), x, y, epochs, seed, lr=2e-3)


def cnn_activations(n_seeds: int, epochs: int, cache: Path, log=print):
    """Per seed: the 10 layers' activations to the 62 stimuli, test accuracy; cached."""
    xtr, ytr, xs, ys, ids = digit_split()
    cache.mkdir(parents=True, exist_ok=True)
    acts, accs = [], []
    t0 = time.perf_counter()
    for seed in range(n_seeds):
        wfile = cache / f"{ARCH}_e{epochs}_seed{seed}.pt"
        net = SmallCNN()
        if wfile.exists():
            net.load_state_dict(torch.load(wfile, weights_only=True))
        else:
            net = train_cnn(seed, xtr, ytr, epochs)
            torch.save(net.state_dict(), wfile)
            log(f"  trained seed {seed} in {time.perf_counter() - t0:.1f}s (cumulative)")
        net.eval()
        with torch.no_grad():
            logits, layer_acts = net(torch.from_numpy(xs), keep=True)
        accs.append(float((logits.argmax(1).numpy() == ys).mean()))
        acts.append([a.numpy().astype(np.float64) for a in layer_acts])
    return acts, accs, ids, ys


def rdms_from_activations(acts, ids, *, units=None, seed: int = 0) -> xr.DataArray:
    """Correlation-distance RDMs, dims (seed, layer, stimulus_a, stimulus_b).

    ``units`` (a fraction in (0, 1]) keeps a random subset of each instance's units per
    layer (a different subset per seed), mimicking the voxels sampled from individual brains.
    """
    import brainalign as ba
    from brainalign import rsa

    rng = np.random.default_rng(seed)
    per_seed = []
    for s, layers in enumerate(acts):
        mats = []
        for a in layers:
            if units is not None and units < 1:
                k = max(2, round(units * a.shape[1]))
                a = a[:, rng.choice(a.shape[1], k, replace=False)]
            # dead units and all-zero rows give undefined correlations: a tiny jitter
            a = a + 1e-6 * np.random.default_rng(s).normal(size=a.shape)
            mats.append(np.asarray(rsa.rdm(ba.responses(a, ids), "correlation")))
        per_seed.append(mats)
    mats = np.array(per_seed)
    return xr.DataArray(
        mats,
        dims=("seed", "layer", "stimulus_a", "stimulus_b"),
        coords={
            "seed": np.arange(mats.shape[0]),
            "layer": [f"L{k + 1}" for k in range(mats.shape[1])],
            "stimulus_a": ids,
            "stimulus_b": ids,
        },
    )


def pattern_noise_rdms(acts, ids, level: float, seed: int) -> xr.DataArray:
    """RDMs of activations plus Gaussian noise of SD ``level * SD(layer's activations)``."""
    rng = np.random.default_rng(seed)
    noisy = [
        [a + rng.normal(scale=level * a.std(), size=a.shape) for a in layers] for layers in acts
    ]
    return rdms_from_activations(noisy, ids)
