"""The ``cupy`` backend on real CuPy and a CUDA device.

The device checks (the same as on the stand-in, see tests/cupy_checks.py) skip
with the concrete reason when CuPy or a device is missing. Asking for "cupy"
where it cannot run must be a one-line BackendError: checked here for real,
and for simulated failures of the CuPy import and of the device query.
"""
from __future__ import annotations

import sys
import types

import numpy
import pytest

from tests import cupy_checks
from tinycnn import backend


def _why_no_gpu() -> str | None:
    """None when CuPy imports and sees a CUDA device, else what is missing."""
    try:
        import cupy
    except ImportError as error:
        return f"cannot import cupy ({error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError, missing driver...
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None if count > 0 else "no CUDA device found"


WHY_NO_GPU = _why_no_gpu()


@pytest.fixture
def registry(monkeypatch):
    """Copies of the backend registry and the active backend, restored after the test."""
    monkeypatch.setattr(backend, "_LOADERS", dict(backend._LOADERS))
    monkeypatch.setattr(backend, "_LOADED", dict(backend._LOADED))
    monkeypatch.setattr(backend, "_current", backend._current)


@pytest.fixture
def device(registry):
    if WHY_NO_GPU is not None:
        pytest.skip(f"CuPy with a CUDA device is not available: {WHY_NO_GPU}")
    return backend.get("cupy")


# --- always: "cupy" where it cannot run --------------------------------------------
def test_use_cupy_without_a_gpu_is_a_one_line_error(registry):
    if WHY_NO_GPU is None:
        pytest.skip("a CUDA device is present here, so backend 'cupy' loads")
    previous = backend.current().name
    with pytest.raises(backend.BackendError) as error:
        backend.use("cupy")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("backend 'cupy' needs CuPy and a CUDA GPU (pip install 'tinycnn[gpu]')")
    assert backend.current().name == previous


def _cupy_whose_device_query(query) -> types.ModuleType:
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=query))
    return module


def _raise_driver_error():
    raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient\n"
                       "  (second line of a long driver message)")


@pytest.mark.parametrize("cupy_module, expected", [
    (None, "ModuleNotFoundError"),                                     # not installed
    (_cupy_whose_device_query(_raise_driver_error), "cudaErrorInsufficientDriver"),
    (_cupy_whose_device_query(lambda: 0), "no CUDA device found"),
], ids=["not-installed", "driver-error", "zero-devices"])
def test_cupy_loader_failures_are_one_line_errors(registry, monkeypatch, cupy_module, expected):
    monkeypatch.setitem(sys.modules, "cupy", cupy_module)   # None makes `import cupy` fail
    backend._LOADED.pop("cupy", None)
    with pytest.raises(backend.BackendError) as error:
        backend.use("cupy")
    message = str(error.value)
    assert "\n" not in message and expected in message, message


# --- on a real GPU -----------------------------------------------------------------
def test_cupy_arrays_refuse_implicit_host_conversion(device):
    array = device.xp.ones(3, dtype=numpy.float32)
    with pytest.raises(TypeError):
        numpy.asarray(array)


@pytest.mark.parametrize("check", [cupy_checks.check_conv2d, cupy_checks.check_max_pool2d,
                                   cupy_checks.check_batch_norm, cupy_checks.check_relu,
                                   cupy_checks.check_adam_step], ids=lambda check: check.__name__)
def test_gpu_kernels_equal_reference(device, check):
    check(device)


def test_training_step_on_gpu_equals_numpy_backend(device, monkeypatch):
    cupy_checks.check_training_step(device, monkeypatch)


def test_sgd_and_loss_options_on_gpu_equal_numpy_backend(device):
    cupy_checks.check_sgd_and_loss_options(device)


def test_dropout_masks_come_from_gpu_rng(device):
    cupy_checks.check_dropout_uses_device_rng(device)


def test_save_and_load_from_gpu(device, tmp_path):
    cupy_checks.check_save_and_load(device, tmp_path)


def test_to_numpy_copies_from_gpu(device):
    cupy_checks.check_to_numpy(device)


def test_mixing_host_and_gpu_arrays_is_a_backend_error(device):
    cupy_checks.check_mixing_is_an_error(device)
