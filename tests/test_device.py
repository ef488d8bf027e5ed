import numpy as np
import pytest
import torch
import xarray as xr

import brainalign as ba
from brainalign._device import resolve_device, resolve_dtype, to_dataarray, to_numpy, to_tensor


def test_auto_resolves_to_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected  # config default is "auto"


def test_config_device_is_used():
    with ba.config_context(device="cpu"):
        assert resolve_device(None) == torch.device("cpu")


def test_torch_device_accepted():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_requested_without_cuda():
    with pytest.raises(
        RuntimeError, match=r"device='cuda:0' was requested but CUDA is not available"
    ):
        resolve_device("cuda:0")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CPU", 3])
def test_bad_device_spec(bad):
    with pytest.raises(ValueError, match=r"Allowed values are 'auto', 'cpu', 'cuda', 'cuda:N'"):
        resolve_device(bad)


def test_dtype_policy():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float64
    assert resolve_dtype("float32", cpu) == torch.float32
    assert resolve_dtype(torch.float64, cpu) == torch.float64
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float32
    with pytest.raises(ValueError, match=r"'dtype' parameter.*got 'int8'"):
        resolve_dtype("int8", cpu)


def test_roundtrip_keeps_labels(device):
    da = ba.responses(
        np.arange(6.0).reshape(3, 2), ["a", "b", "c"], category=["x", "y", "x"], modality="model"
    )
    t = to_tensor(da, device=device)
    assert t.device.type == device and t.dtype in (torch.float32, torch.float64)
    back = to_dataarray(t * 2, like=da)
    assert back.dims == da.dims
    assert list(back.stimulus.values) == ["a", "b", "c"]
    assert list(back.category.values) == ["x", "y", "x"]
    assert back.attrs["modality"] == "model"
    np.testing.assert_allclose(back.values, da.values * 2)


def test_to_dataarray_shape_mismatch():
    da = xr.DataArray(np.zeros((2, 3)), dims=("stimulus", "unit"))
    with pytest.raises(ValueError, match=r"values of shape \(3, 2\) cannot take the labels"):
        to_dataarray(torch.zeros(3, 2), like=da)


def test_to_tensor_rejects_strings():
    with pytest.raises(TypeError, match="Cannot convert an array of dtype <U1"):
        to_tensor(np.array(["a", "b"]))


def test_to_numpy_passthrough():
    arr = np.ones(3)
    assert to_numpy(arr) is not None and np.array_equal(to_numpy(torch.ones(3)), arr)


def test_as_tensor_copies_reversed_and_read_only_views():
    from brainalign._device import as_tensor

    x = np.arange(12.0).reshape(3, 4)
    for view in (x[::-1], np.flip(x, axis=1), np.broadcast_to(x[0], (3, 4))):
        t = as_tensor(view, torch.device("cpu"), torch.float64)
        np.testing.assert_array_equal(t.numpy(), view)


def test_warn_unresolved_names_the_parameter_and_threshold():
    import torch

    from brainalign._device import warn_unresolved

    # threshold = factor * eps * scale: float32 eps = 2**-23, float64 eps = 2**-52
    assert not warn_unresolved("alpha", 1e-3, 100.0, torch.float32)
    assert not warn_unresolved("alpha", 1e-9, 100.0, torch.float64)
    with pytest.warns(
        UserWarning,
        match=r"alpha \(1e-06\) is below 10·eps·λ_max \(0\.000119\) for float32 data: results "
        r"at that value are dominated by rounding\. Raise it or use dtype='float64'\.",
    ):
        assert warn_unresolved("alpha", 1e-6, 100.0, torch.float32)
