"""Kernel functions for kernel ridge regression, in torch (vectorised, any device).

The names, parameters and defaults are himalaya's (``kernel_ridge/_kernels.py``), which
are scikit-learn's (``sklearn.metrics.pairwise``):

- ``"linear"``: ``<x, y>``;
- ``"polynomial"`` (alias ``"poly"``): ``(gamma <x, y> + coef0) ** degree``, with
  ``degree=3, gamma=None, coef0=1``;
- ``"rbf"``: ``exp(-gamma ||x - y||²)``, with ``gamma=None``;
- ``"sigmoid"``: ``tanh(gamma <x, y> + coef0)``, with ``gamma=None, coef0=1``;
- ``"cosine"``: ``<x, y> / (||x|| ||y||)`` (a zero row counts as norm 1).

``gamma=None`` means ``1 / n_features``.

A callable kernel takes two tensors ``(n_a, p)`` and ``(n_b, p)`` plus the keyword
parameters and returns the ``(n_a, n_b)`` matrix (one call for all pairs, unlike
himalaya's per-pair callables).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from brainalign._checks import _fmt, _fmt_list, check_number, check_option, did_you_mean

#: Kernel names and their parameters with defaults (``None`` gamma: 1 / n_features).
KERNEL_PARAMS: dict[str, dict[str, Any]] = {
    "linear": {},
    "polynomial": {"degree": 3, "gamma": None, "coef0": 1.0},
    "poly": {"degree": 3, "gamma": None, "coef0": 1.0},
    "rbf": {"gamma": None},
    "sigmoid": {"gamma": None, "coef0": 1.0},
    "cosine": {},
}
#: The kernel names accepted by :func:`pairwise_kernels` (and ``"precomputed"`` by the
#: estimators).
KERNELS = tuple(KERNEL_PARAMS)


def check_kernel(
    kernel: Any, params: Mapping[str, Any] | None, name: str = "kernel"
) -> tuple[str | Callable, dict[str, Any]]:
    """Validate a kernel name (or callable) and its parameters.

    Parameters
    ----------
    kernel : str or callable
        One of :data:`KERNELS`, or a callable ``f(X, Y, **params) -> K``.
    params : mapping or None
        The kernel's parameters (see :data:`KERNEL_PARAMS`); for a callable, passed on.
    name : str
        The parameter's name in messages (``"kernel"``, ``"kernels[1]"``).

    Returns
    -------
    kernel : str or callable
    params : dict
        The parameters with the defaults filled in (``gamma`` may stay None).

    Raises
    ------
    ValueError
        For an unknown kernel or parameter name, naming the allowed ones.
    TypeError
        For parameters that are not a mapping, or values that are not numbers.
    """
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(
            f"The parameters of {name} must be a dict of keyword arguments or None; "
            f"got {type(params).__name__} {_fmt(params)}."
        )
    given = dict(params or {})
    if callable(kernel) and not isinstance(kernel, str):
        return kernel, given
    if not isinstance(kernel, str):
        raise TypeError(
            f"{name} must be a kernel name ({_fmt_list(KERNELS)}) or a callable; "
            f"got {type(kernel).__name__} {_fmt(kernel)}."
        )
    check_option(name, kernel, KERNELS)
    allowed = KERNEL_PARAMS[kernel]
    for key in given:
        if key not in allowed:
            options = _fmt_list(allowed) if allowed else "none"
            raise ValueError(
                f"Unknown parameter {key!r} for {name}={kernel!r}; its parameters are "
                f"{options}.{did_you_mean(key, allowed)}"
            )
    out = {**allowed, **given}
    if "gamma" in out and out["gamma"] is not None:
        check_number(f"{name} parameter 'gamma'", out["gamma"], low=0, closed="neither")
    if "coef0" in out:
        check_number(f"{name} parameter 'coef0'", out["coef0"])
    if "degree" in out:
        check_number(f"{name} parameter 'degree'", out["degree"], low=0, closed="neither")
    return kernel, out


def _normalise_rows(x: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x / torch.where(norm == 0, torch.ones_like(norm), norm)


def _squared_distances(x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
    """Squared Euclidean distances, accumulated in float64, clipped at zero."""
    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    d = (
        x64.square().sum(1)[:, None] + y64.square().sum(1)[None, :] - 2.0 * (x64 @ y64.T)
    ).clamp_min_(0.0)
    if same:
        d.fill_diagonal_(0.0)
    return d


def kernel_matrix(
    x: torch.Tensor,
    y: torch.Tensor | None,
    kernel: str | Callable,
    params: Mapping[str, Any],
) -> torch.Tensor:
    """Compute the kernel between the rows of ``x`` and ``y`` (pure torch, checked arguments).

    Parameters
    ----------
    x : torch.Tensor, shape (n_a, p)
    y : torch.Tensor, shape (n_b, p), or None for ``x`` itself
    kernel : str or callable
        Checked by :func:`check_kernel`.
    params : mapping
        From :func:`check_kernel`.

    Returns
    -------
    K : torch.Tensor, shape (n_a, n_b)
        In the dtype of ``x`` (distances accumulate in float64).
    """
    same = y is None
    y = x if y is None else y
    if callable(kernel):
        return torch.as_tensor(kernel(x, y, **params), dtype=x.dtype, device=x.device)
    gamma = params.get("gamma")
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    if kernel == "linear":
        return x @ y.T
    if kernel in ("polynomial", "poly"):
        return (gamma * (x @ y.T) + params["coef0"]).pow(params["degree"])
    if kernel == "sigmoid":
        return torch.tanh(gamma * (x @ y.T) + params["coef0"])
    if kernel == "rbf":
        return torch.exp(-gamma * _squared_distances(x, y, same)).to(x.dtype)
    if kernel == "cosine":
        xn = _normalise_rows(x)
        return xn @ (xn if same else _normalise_rows(y)).T
    raise AssertionError(kernel)  # pragma: no cover - check_kernel rejects the rest


def pairwise_kernels(
    X: Any,
    Y: Any = None,
    kernel: str | Callable = "linear",
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    **params: Any,
) -> Any:
    """Kernel matrix between the samples of ``X`` and ``Y``, computed with torch.

    Parameters
    ----------
    X : array_like or xarray.DataArray, shape (n_samples_X, n_features)
        Samples (first dim) by features.
    Y : array_like or xarray.DataArray, shape (n_samples_Y, n_features), optional
        Second set of samples; ``None`` uses ``X``.
    kernel : str or callable
        ``"linear"``, ``"polynomial"`` (``"poly"``), ``"rbf"``, ``"sigmoid"``,
        ``"cosine"`` (himalaya's and scikit-learn's definitions and defaults), or a
        callable ``f(X, Y, **params)`` returning the matrix for tensors.
    device, dtype : optional
        Compute device and dtype.
    **params
        Kernel parameters: ``gamma`` (default ``1 / n_features``), ``degree`` (3),
        ``coef0`` (1), as the kernel takes them.

    Returns
    -------
    K : ndarray or xarray.DataArray, shape (n_samples_X, n_samples_Y)
        A DataArray with dims ``(<X's sample dim>_a, <Y's sample dim>_b)`` (and their
        coordinates) when X is a DataArray, else an ndarray.

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign.encoding import pairwise_kernels
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> pairwise_kernels(X, kernel="rbf", gamma=0.5).round(4).tolist()
    [[1.0, 0.3679], [0.3679, 1.0]]
    """
    import numpy as np
    import xarray as xr

    from brainalign._device import resolve_device, resolve_dtype, to_numpy, to_tensor

    kern, prm = check_kernel(kernel, params)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    x = to_tensor(X, device=dev, dtype=dt)
    y = None if Y is None else to_tensor(Y, device=dev, dtype=dt)
    for nm, t in (("X", x), ("Y", y)):
        if t is not None and t.ndim != 2:
            raise ValueError(f"{nm} must be 2-D (samples, features); got shape {tuple(t.shape)}.")
    if y is not None and y.shape[1] != x.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of features; got {x.shape[1]} and {y.shape[1]}."
        )
    k = to_numpy(kernel_matrix(x, y, kern, prm))
    if not isinstance(X, xr.DataArray):
        return k
    other = X if Y is None else Y
    da, db = f"{X.dims[0]}_a", f"{getattr(other, 'dims', ('sample',))[0]}_b"
    coords = {}
    if X.dims[0] in X.coords:
        coords[da] = np.asarray(X[X.dims[0]].values)
    if isinstance(other, xr.DataArray) and other.dims[0] in other.coords:
        coords[db] = np.asarray(other[other.dims[0]].values)
    return xr.DataArray(k, dims=(da, db), coords=coords, attrs={"kernel": str(kernel)})


__all__ = ["KERNELS", "KERNEL_PARAMS", "check_kernel", "kernel_matrix", "pairwise_kernels"]
