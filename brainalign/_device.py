"""Device and dtype resolution, and conversions between labeled arrays and torch tensors.

xarray cannot hold torch tensors, so conversion happens explicitly, once, at the edge of each
public function: :func:`to_tensor` in, :func:`to_dataarray` out.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign._checks import check_option
from brainalign._config import get_config
from brainalign._logging import warn

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_warned_float64_gpu = False


def _check_device_spec(device: Any) -> Any:
    """Validate a device specification without resolving it (used by the config)."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(
            "Invalid value for the 'device' parameter. Allowed values are 'auto', 'cpu', "
            f"'cuda', 'cuda:N', 'mps' or a torch.device; got {device!r}."
        )
    return device


def cuda_available() -> bool:
    """Return whether a CUDA device can be used.

    Returns
    -------
    available : bool
        ``torch.cuda.is_available()``.
    """
    return torch.cuda.is_available()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn a device specification into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device or None
        ``None`` uses the configured device (see :func:`brainalign.set_config`); ``"auto"``
        picks ``cuda`` when available, else ``cpu``.

    Returns
    -------
    device : torch.device
        The device to compute on.

    Raises
    ------
    ValueError
        For an unknown specification.
    RuntimeError
        When CUDA (or MPS) is asked for but not available, or the index is out of range.

    Examples
    --------
    >>> from brainalign._device import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        device = get_config()["device"]
    device = _check_device_spec(device)
    if isinstance(device, torch.device):
        spec = str(device)
    else:
        spec = device
    if spec == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if spec.startswith("cuda"):
        if not cuda_available():
            raise RuntimeError(
                f"device={spec!r} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
                "Use device='auto' or device='cpu'."
            )
        index = int(spec.split(":")[1]) if ":" in spec else None
        n = torch.cuda.device_count()
        if index is not None and index >= n:
            raise RuntimeError(
                f"device={spec!r} was requested but only {n} CUDA device(s) exist "
                f"(valid: {', '.join(f'cuda:{i}' for i in range(n))})."
            )
        return torch.device(spec)
    if spec == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise RuntimeError(
                f"device='mps' was requested but MPS is not available (torch {torch.__version__})."
            )
    return torch.device(spec)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Turn a dtype specification into a torch floating dtype.

    Parameters
    ----------
    dtype : str or torch.dtype or None
        ``None`` uses the configured dtype; ``"auto"`` is float64 on CPU and float32 on
        GPU; ``"float32"``/``"float64"`` force one.
    device : torch.device
        The device the computation runs on.

    Returns
    -------
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.
    """
    global _warned_float64_gpu
    if dtype is None:
        dtype = get_config()["dtype"]
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    elif not isinstance(dtype, str):
        dtype = np.dtype(dtype).name
    check_option("dtype", dtype, ("auto", "float32", "float64"))
    if dtype == "auto":
        return torch.float64 if device.type == "cpu" else torch.float32
    out = getattr(torch, dtype)
    if out == torch.float64 and device.type == "cuda" and not _warned_float64_gpu:
        _warned_float64_gpu = True
        warn(
            "float64 on a GPU is many times slower than float32; brainalign accumulates in "
            "float64 where it matters, so dtype='float32' (or 'auto') is usually enough."
        )
    return out


def warn_unresolved(
    name: str,
    value: float,
    scale: float,
    dtype: torch.dtype,
    *,
    symbol: str = "λ_max",
    factor: float = 10.0,
    consequence: str = "results at that value are dominated by rounding.",
) -> bool:
    """Warn when a parameter is too small for ``dtype`` to resolve beside ``scale``.

    A penalty added to a matrix whose largest eigenvalue is ``scale`` (a ridge ``alpha``, a
    shrinkage, a regulariser) changes the computed result only where it exceeds the
    rounding of ``scale``: below ``factor * eps * scale`` (float32: ``eps`` = 1.2e-7) the
    result at that value reflects rounding, not the parameter. The one check behind every
    such warning, so they read alike.

    Parameters
    ----------
    name : str
        What the parameter is, as the message should name it (``"The smallest alpha"``).
    value : float
        Its value.
    scale : float
        The magnitude it is added to (e.g. the largest eigenvalue, or a bound on it).
    dtype : torch.dtype
        The precision of the computation.
    symbol : str
        How the message names ``scale``.
    factor : float
        Multiple of ``eps * scale`` below which to warn.
    consequence : str
        What goes wrong, for the message.

    Returns
    -------
    warned : bool
        Whether the warning was issued.

    Examples
    --------
    >>> import torch
    >>> warn_unresolved("alpha", 1.0, 1e3, torch.float32)
    False
    """
    eps = float(torch.finfo(dtype).eps)
    threshold = factor * eps * float(scale)
    if not value < threshold:
        return False
    warn(
        f"{name} ({value:.3g}) is below {factor:g}·eps·{symbol} ({threshold:.3g}) for "
        f"{str(dtype).replace('torch.', '')} data: {consequence} Raise it or use "
        "dtype='float64'."
    )
    return True


def to_tensor(
    x: Any,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> torch.Tensor:
    """Convert a DataArray, numpy array or tensor to a floating torch tensor on a device.

    Parameters
    ----------
    x : xarray.DataArray or array_like or torch.Tensor
        The values; labels are dropped (keep the DataArray to relabel the result).
    device : str or torch.device, optional
        Target device (see :func:`resolve_device`).
    dtype : str or torch.dtype, optional
        Target dtype (see :func:`resolve_dtype`).

    Returns
    -------
    tensor : torch.Tensor
        A tensor on ``device`` with ``dtype``; it shares memory with ``x`` only when no
        copy was needed.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if isinstance(x, xr.DataArray):
        x = x.values
    if isinstance(x, torch.Tensor):
        return x.to(device=dev, dtype=dt)
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"Cannot convert an array of dtype {arr.dtype} to a numeric tensor.")
    return as_tensor(arr, dev, dt)


def as_tensor(arr: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Move a numpy array (read-only views included) to ``device`` as ``dtype``.

    Parameters
    ----------
    arr : array_like
        Numeric values.
    device : torch.device
        A resolved device.
    dtype : torch.dtype
        A resolved dtype.

    Returns
    -------
    tensor : torch.Tensor
        The values on the device.
    """
    arr = np.asarray(arr)
    # read-only (broadcast views, memory maps) or reversed (negative strides): torch needs
    # a copy
    if not arr.flags.writeable or any(st < 0 for st in arr.strides):
        arr = arr.copy()
    return torch.as_tensor(arr).to(device=device, dtype=dtype)


def to_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """Return a tensor's values as a numpy array on the CPU.

    Parameters
    ----------
    t : torch.Tensor or ndarray
        The values.

    Returns
    -------
    array : ndarray
        The values, detached and copied to host memory.
    """
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def to_dataarray(
    t: torch.Tensor | np.ndarray,
    like: xr.DataArray | None = None,
    *,
    dims: tuple[str, ...] | None = None,
    coords: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
    name: str | None = None,
) -> xr.DataArray:
    """Wrap tensor values back into a labeled DataArray.

    Parameters
    ----------
    t : torch.Tensor or ndarray
        The values.
    like : xarray.DataArray, optional
        Take dims, coords, attrs and name from this array (its shape must match).
    dims, coords, attrs, name : optional
        Override or supply the labels.

    Returns
    -------
    da : xarray.DataArray
        The labeled values.
    """
    values = to_numpy(t)
    if like is not None:
        if like.shape != values.shape and dims is None:
            raise ValueError(
                f"values of shape {values.shape} cannot take the labels of an array of "
                f"shape {like.shape} with dims {like.dims}."
            )
        out = like.copy(data=values) if dims is None else xr.DataArray(values, dims=dims)
        if coords:
            out = out.assign_coords(coords)
        if attrs:
            out.attrs.update(attrs)
        if name is not None:
            out.name = name
        return out
    return xr.DataArray(values, dims=dims, coords=coords, attrs=attrs or {}, name=name)
