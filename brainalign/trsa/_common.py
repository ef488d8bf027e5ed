"""Labeled edge of topological RSA: RDM DataArrays to upper-triangle tensors and back."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_finite
from brainalign._device import as_tensor, resolve_device, resolve_dtype, to_numpy
from brainalign._version import __version__
from brainalign.data._schema import RDM_DIMS
from brainalign.rsa._compare import single_rdm
from brainalign.trsa._kernels import square_numpy


class RDMBatch:
    """An RDM DataArray flattened to ``(B, n_pairs)`` upper triangles on a device."""

    def __init__(
        self,
        rdm: Any,
        name: str,
        device: str | torch.device | None,
        dtype: str | None,
    ) -> None:
        self.da = single_rdm(rdm, name)
        self.name = name
        self.dev = resolve_device(device)
        self.dt = resolve_dtype(dtype, self.dev)
        self.bdims = [d for d in self.da.dims if d not in RDM_DIMS]
        order = (*self.bdims, *RDM_DIMS)
        self.lab = self.da if self.da.dims == order else self.da.transpose(*order)
        self.n = self.da.sizes[RDM_DIMS[0]]
        if self.n < 3:
            raise ValueError(
                f"{name} needs at least 3 stimuli (3 pairs) for topological RSA; it has {self.n}."
            )
        square = np.asarray(self.lab.values, dtype=np.float64)
        self.batch_shape = square.shape[:-2]
        i, j = np.triu_indices(self.n, k=1)
        flat = square.reshape(-1, self.n * self.n)[:, i * self.n + j]
        if not np.isfinite(flat).all():
            check_finite(flat, name)
        self.numpy = flat
        self.v = as_tensor(flat, self.dev, self.dt)

    def check_not_constant(self, v: torch.Tensor | None = None, what: str = "") -> None:
        """Raise when an RDM is constant over its pairs (its ranks are undefined)."""
        v = self.v if v is None else v
        const = to_numpy(v.amax(dim=1) == v.amin(dim=1))
        if const.any():
            where = np.argwhere(const.reshape(self.batch_shape)) if self.bdims else [[]]
            labels = [
                ", ".join(
                    f"{d}={_fmt(self.lab[d].values[k]) if d in self.lab.coords else k}"
                    for d, k in zip(self.bdims, idx, strict=True)
                )
                or "the RDM"
                for idx in where
            ]
            raise ValueError(
                f"{self.name} has {int(const.sum())} constant RDM(s){what} "
                f"({'; '.join(labels[:10])}): all its dissimilarities are equal, so its ranks and "
                "quantile thresholds are undefined."
            )

    def wrap(self, v: torch.Tensor, attrs: dict[str, Any], name: str) -> xr.DataArray:
        """Square ``(B, m)`` vectors back into the input's labels (same dim order)."""
        square = square_numpy(to_numpy(v), self.n).reshape(*self.batch_shape, self.n, self.n)
        out = self.lab.copy(deep=False, data=square)
        keep = {k: self.da.attrs[k] for k in self.da.attrs if k != "kind"}
        out.attrs = {**keep, **attrs, "brainalign_version": __version__}
        out.name = name
        return out if out.dims == self.da.dims else out.transpose(*self.da.dims)


def _fmt(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)
