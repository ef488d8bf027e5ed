"""Model RDMs built from stimulus annotations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainalign._checks import _fmt_list
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS, as_ids


def categorical_rdm(
    categories: Sequence[Any] | Mapping[str, Sequence[str]],
    stimulus: Sequence[Any] | None = None,
) -> xr.DataArray:
    """Build a categorical model RDM: 0 within a category, 1 between categories.

    Parameters
    ----------
    categories : sequence or mapping
        Either one category label per stimulus, or a mapping ``{category: [stimulus ids]}``
        (then ``stimulus`` gives the order, default the mapping's order).
    stimulus : sequence of str, optional
        Stimulus ids (default ``"0"...`` for a label sequence).

    Returns
    -------
    rdm : xarray.DataArray, dims ("stimulus_a", "stimulus_b")
        The model RDM with a ``category_a``/``category_b`` coordinate.

    Raises
    ------
    ValueError
        When a stimulus is in two categories, or ``stimulus`` lists an id that no category
        holds.

    Examples
    --------
    >>> from brainalign import rsa
    >>> r = rsa.categorical_rdm({"animal": ["cat", "dog"], "tool": ["saw"]})
    >>> r.values.tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    if isinstance(categories, Mapping):
        owner: dict[str, str] = {}
        for cat, members in categories.items():
            for m in members:
                m = str(m)
                if m in owner:
                    raise ValueError(
                        f"stimulus {m!r} is in two categories: {owner[m]!r} and {cat!r}."
                    )
                owner[m] = str(cat)
        ids = as_ids(
            list(owner) if stimulus is None else stimulus,
            len(owner) if stimulus is None else len(stimulus),
        )
        missing = [s for s in ids.tolist() if s not in owner]
        if missing:
            raise ValueError(f"No category holds the stimulus id(s) {_fmt_list(missing)}.")
        labels = np.array([owner[s] for s in ids.tolist()])
    else:
        labels = np.array([str(c) for c in categories])
        ids = as_ids(stimulus, len(labels))
    mat = (labels[:, None] != labels[None, :]).astype(np.float64)
    return xr.DataArray(
        mat,
        dims=RDM_DIMS,
        coords={
            RDM_DIMS[0]: ids,
            RDM_DIMS[1]: ids,
            "category_a": (RDM_DIMS[0], labels),
            "category_b": (RDM_DIMS[1], labels),
        },
        attrs={
            "kind": "rdm",
            "metric": "categorical",
            "modality": "model",
            "brainalign_version": __version__,
        },
        name="rdm",
    )
