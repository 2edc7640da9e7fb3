"""The ``cupy`` backend on a strict stand-in for CuPy (tests/fake_cupy.py): runs without a GPU.

The stand-in's arrays raise TypeError on every implicit conversion to a host
array, on every NumPy function and ufunc and on mixing with host arrays, and
Numba cannot type them. So a training step that passes here ran every array
operation through the backend's array module, and the results are compared
with the ``numpy`` backend. The stand-in's call log shows which device
operations ran.
"""
from __future__ import annotations

import inspect

import numpy
import pytest

from tests import cupy_checks
from tests.fake_cupy import make_fake_cupy
import tinycnn
from tinycnn import Tensor, backend
from tinycnn import functional as F
from tinycnn.backend import Backend
from tinycnn.kernels import cupy_gpu, reference

KERNELS = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "batch_norm_forward", "batch_norm_backward", "relu_forward", "relu_backward",
           "adam_step"]


@pytest.fixture
def fake():
    return make_fake_cupy()


@pytest.fixture
def registry(monkeypatch):
    """Copies of the backend registry, the loaded backends and the active backend for
    the test, so everything is as before once it ends."""
    monkeypatch.setattr(backend, "_LOADERS", dict(backend._LOADERS))
    monkeypatch.setattr(backend, "_LOADED", dict(backend._LOADED))
    monkeypatch.setattr(backend, "_current", backend._current)


@pytest.fixture
def device(fake, registry):
    """The stand-in registered (and loaded) as backend "cupy", with the GPU kernel set."""
    backend.register("cupy", lambda: Backend("cupy", fake, cupy_gpu))
    return backend.get("cupy")


# --- the stand-in is as strict as it claims ---------------------------------------
def test_standin_refuses_every_implicit_host_conversion(fake):
    device_array = fake.asarray(numpy.ones((2, 3), dtype=numpy.float32))
    host_array = numpy.ones((2, 3), dtype=numpy.float32)
    attempts = {
        "numpy.asarray": lambda: numpy.asarray(device_array),
        "numpy.array of a list": lambda: numpy.array([device_array]),
        "numpy ufunc": lambda: numpy.exp(device_array),
        "numpy function": lambda: numpy.sum(device_array),
        "numpy.pad": lambda: numpy.pad(device_array, 1),
        "host + device": lambda: host_array + device_array,
        "device * host": lambda: device_array * host_array,
        "device function on a host array": lambda: fake.maximum(device_array, host_array),
        "host array as index": lambda: device_array[numpy.array([0])],
        "host array assigned": lambda: device_array.__setitem__(0, host_array[0]),
    }
    for what, attempt in attempts.items():
        with pytest.raises(TypeError):
            attempt()
            pytest.fail(f"{what} did not raise")


def test_numba_cannot_run_on_standin_arrays(fake):
    numba = pytest.importorskip("numba", reason="numba is not installed")
    total = numba.njit(lambda a: a.sum())
    assert total(numpy.ones(3)) == 3.0
    with pytest.raises(numba.core.errors.TypingError):
        total(fake.asarray(numpy.ones(3)))


def test_standin_logs_device_calls_and_copies_explicitly(fake):
    host = numpy.arange(4.0)
    device_array = fake.asarray(host)
    host[0] = 99.0                                   # the device copy does not change
    back = fake.asnumpy(fake.exp(device_array) + 1)
    numpy.testing.assert_allclose(back, numpy.exp(numpy.arange(4.0)) + 1)
    assert fake.calls == ["asarray", "exp", "ndarray.__add__", "asnumpy"]


# --- the GPU kernel set ------------------------------------------------------------
def test_gpu_kernel_set_has_the_reference_interface():
    for name in KERNELS:
        assert inspect.signature(getattr(cupy_gpu, name)) == inspect.signature(getattr(reference, name)), name


@pytest.mark.parametrize("check", [cupy_checks.check_conv2d, cupy_checks.check_max_pool2d,
                                   cupy_checks.check_batch_norm, cupy_checks.check_relu,
                                   cupy_checks.check_adam_step], ids=lambda check: check.__name__)
def test_gpu_kernels_on_standin_equal_reference(device, check):
    check(device)


def test_pooling_fast_path_reads_windows_without_im2col(device, fake):
    x = fake.asarray(numpy.ones((1, 2, 4, 4), dtype=numpy.float32))
    cupy_gpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert "pad" not in fake.calls                   # tiling windows: a reshape, no padded copy
    cupy_gpu.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1))
    assert "pad" in fake.calls                       # overlapping windows: reference im2col


@pytest.mark.parametrize("fused", [True, False], ids=["elementwise-kernels", "array-code"])
def test_adam_and_relu_backward_fused_or_not_equal_reference(device, fake, monkeypatch, fused):
    monkeypatch.setattr(cupy_gpu, "FUSED_ELEMENTWISE", fused)
    cupy_checks.check_adam_step(device)
    cupy_checks.check_relu(device)
    fused_kernels = {"ElementwiseKernel.tinycnn_adam_update", "ElementwiseKernel.tinycnn_relu_backward"}
    assert fused_kernels & set(fake.calls) == (fused_kernels if fused else set())


def test_standin_elementwise_kernel_rejects_a_body_it_cannot_evaluate(fake):
    with pytest.raises(SyntaxError):
        fake.ElementwiseKernel("T x", "T y", "y = x > 0 ? x : 0", "ternary")


# --- the whole training path on the device --------------------------------------------
def test_training_step_on_standin_equals_numpy_backend(device, fake, monkeypatch):
    cupy_checks.check_training_step(device, monkeypatch)
    expected = {"asarray", "asnumpy", "pad", "empty", "zeros", "take_along_axis",
                "tensordot", "maximum", "sqrt", "exp", "log", "arange", "ones_like",
                "ndarray.__matmul__", "ndarray.argmax", "ndarray.var", "ndarray.__iadd__",
                "ElementwiseKernel.tinycnn_adam_update", "ElementwiseKernel.tinycnn_relu_backward"}
    assert expected <= set(fake.calls), f"device ops that did not run: {expected - set(fake.calls)}"


def test_sgd_and_loss_options_on_standin_equal_numpy_backend(device):
    cupy_checks.check_sgd_and_loss_options(device)


def test_dropout_masks_come_from_device_rng(device, fake):
    cupy_checks.check_dropout_uses_device_rng(device)
    assert "random.seed" in fake.calls and "random.random_sample" in fake.calls


def test_manual_seed_before_the_device_backend_loads_still_seeds_it(registry):
    masks = []
    for _ in range(2):
        backend.register("cupy", lambda: Backend("cupy", make_fake_cupy(), cupy_gpu))  # not loaded
        tinycnn.manual_seed(5)
        backend.use("cupy")
        masks.append(F.dropout(Tensor(numpy.ones(100, dtype=numpy.float32)), 0.5).to_numpy())
    numpy.testing.assert_array_equal(masks[0], masks[1])


def test_save_and_load_from_standin(device, tmp_path):
    cupy_checks.check_save_and_load(device, tmp_path)


def test_to_numpy_is_an_explicit_copy(device, fake):
    cupy_checks.check_to_numpy(device)
    assert "asnumpy" in fake.calls


def test_mixing_host_and_standin_arrays_is_a_backend_error(device):
    cupy_checks.check_mixing_is_an_error(device)


def test_registry_is_restored_after_the_standin_tests():
    # runs after the tests above (file order): the stand-in must be gone again
    assert backend._LOADERS["cupy"] is backend._load_cupy
    loaded = backend._LOADED.get("cupy")
    assert loaded is None or loaded.xp.__name__ == "cupy"
