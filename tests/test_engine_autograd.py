"""The autograd engine itself: DAGs, accumulation, errors, no_grad, dtypes, backends."""
from __future__ import annotations

import types

import numpy
import pytest

import tinycnn
from tinycnn import Tensor, backend
from tinycnn.kernels import reference
from tests.conftest import using_backend


def leaf(values):
    return Tensor(numpy.array(values, dtype=numpy.float64), requires_grad=True)


def test_tensor_used_twice_gets_the_summed_gradient(float64):
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_shared_subexpressions_in_a_dag(float64):
    x = leaf([0.5, -1.5])
    a = x * 2.0                  # used three times below
    b = a * a + a * x            # 4x^2 + 2x^2 = 6x^2
    c = (b + a).sum()            # 6x^2 + 2x  ->  d/dx = 12x + 2
    c.backward()
    numpy.testing.assert_allclose(x.grad, 12 * numpy.array([0.5, -1.5]) + 2, rtol=1e-15)


def test_diamond_through_exp_and_log(float64):
    x = leaf([0.3, 1.2])
    e = x.exp()
    y = (e * e.log() + e).sum()  # x e^x + e^x  ->  d/dx = (x + 2) e^x
    y.backward()
    values = numpy.array([0.3, 1.2])
    numpy.testing.assert_allclose(x.grad, (values + 2) * numpy.exp(values), rtol=1e-14)


def test_gradients_accumulate_across_backward_calls(float64):
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [3.0 + 2.0, 3.0 + 4.0])
    loss = (x * x).sum()
    loss.backward()
    loss.backward()              # the same graph twice: twice the gradient again
    numpy.testing.assert_array_equal(x.grad, [5.0 + 4.0, 7.0 + 8.0])


def test_two_leaves_never_share_a_gradient_array(float64):
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad *= 10.0
    numpy.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_backward_on_a_non_scalar_needs_a_gradient(float64):
    x = leaf([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2,\) needs a gradient"):
        y.backward()
    with pytest.raises(ValueError, match="gradient shape"):
        y.backward(numpy.ones(3))
    y.backward(numpy.array([1.0, 10.0]))
    numpy.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_no_grad_records_no_graph(float64):
    x = leaf([1.0, 2.0])
    with tinycnn.no_grad():
        assert not tinycnn.is_grad_enabled()
        y = (x * x).sum()
    assert tinycnn.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert x.grad is None


def test_no_grad_is_restored_after_an_error():
    with pytest.raises(ZeroDivisionError):
        with tinycnn.no_grad():
            1 / 0
    assert tinycnn.is_grad_enabled()


def test_constants_and_detach_get_no_gradient(float64):
    x = leaf([2.0])
    c = Tensor([5.0])
    y = x * c + x.detach() * x
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad, [5.0 + 2.0])  # detach() is a constant
    assert c.grad is None


def test_default_dtype_is_float32_and_float64_on_request():
    assert Tensor([1, 2]).dtype == numpy.float32
    assert tinycnn.nn.Linear(2, 3).weight.dtype == numpy.float32
    tinycnn.set_default_dtype(numpy.float64)
    try:
        assert Tensor([1, 2]).dtype == numpy.float64
        assert tinycnn.nn.Linear(2, 3).weight.dtype == numpy.float64
    finally:
        tinycnn.set_default_dtype(numpy.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        tinycnn.set_default_dtype(numpy.int32)


def test_python_numbers_take_the_tensor_dtype(float64):
    x = Tensor(numpy.ones(2), dtype=numpy.float32)   # default is float64 here
    assert (x * 2.5).dtype == numpy.float32
    assert (1.0 - x).dtype == numpy.float32


class FakeArray:
    """Stands in for a device array (e.g. CuPy's) of a backend that is not NumPy."""
    dtype = numpy.dtype(numpy.float32)

    def __init__(self, shape):
        self.shape, self.ndim, self.size = shape, len(shape), int(numpy.prod(shape))


def test_mixing_backends_is_a_clear_error(monkeypatch):
    fake = backend.Backend("fake", types.SimpleNamespace(ndarray=FakeArray), reference)
    monkeypatch.setitem(backend._LOADERS, "fake", lambda: fake)   # undone after the test
    monkeypatch.setitem(backend._LOADED, "fake", fake)
    with using_backend("numpy"):
        host, device = Tensor([1.0, 2.0]), Tensor._wrap(FakeArray((2,)))
        assert backend.of(device.data) is fake
        with pytest.raises(backend.BackendError, match="different backends.*numpy and fake"):
            host + device
        with pytest.raises(backend.BackendError, match="different backends"):
            tinycnn.functional.linear(Tensor(numpy.ones((1, 2))), Tensor._wrap(FakeArray((3, 2))))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(backend.BackendError, match="unknown backend 'tpu'"):
        backend.use("tpu")


def test_matmul_and_power_reject_what_they_cannot_differentiate(float64):
    with pytest.raises(ValueError, match="2-D"):
        leaf([[1.0, 2.0]]) @ leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="constant number"):
        leaf([1.0]) ** leaf([2.0])
    assert (leaf([3.0]) ** numpy.int64(2)).item() == 9.0
