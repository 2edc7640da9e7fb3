"""Numerical gradient checks by central differences, in float64.

    from tests.gradcheck import check_gradients
    errors = check_gradients(lambda x, w: F.conv2d(x, w, stride=2), [x, w])
    assert max(errors) < 1e-6

The function's output y (any shape) is reduced to one number with a fixed
random projection R of y's shape, L = sum(y * R), so every output element
counts. For each input a, the analytic gradient dL/da comes from
``y.backward(R)``; the numerical one from

    dL/da[i] ~ (L(a[i] + eps) - L(a[i] - eps)) / (2 eps).

The error reported per input is relative to the gradient's size:

    max_i |analytic[i] - numeric[i]| / max(max_i |analytic[i]|, max_i |numeric[i]|)

which stays meaningful where single gradient entries are exactly zero (ReLU,
max pooling, dropout). A gradient below the rounding noise of the differences,
100 * machine epsilon * max(|L|, 1) / eps, cannot be measured: if both are
that small (a bias just before batch norm, whose true gradient is 0), the
error is 0.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy

import tinycnn
from tinycnn import Tensor


def check_gradients(function: Callable[..., Tensor], inputs: Sequence, eps: float = 1e-6,
                    seed: int = 20261121) -> list[float]:
    """Max relative error between backward's and central differences' gradients, per input.

    ``function(*tensors) -> Tensor``. ``inputs`` are float64 arrays (wrapped in new
    tensors that require grad) or float64 Tensors (used as they are, e.g. a
    layer's Parameters that ``function`` reads through its closure; their
    ``.grad`` is reset). Their values are nudged in place and restored.
    ``seed`` makes the projection; keep it different from the seed that drew the
    inputs, or the projection may be the inputs themselves (a stationary point).
    """
    tensors = [_as_tensor(value) for value in inputs]
    for tensor in tensors:
        tensor.grad = None
    output = function(*tensors)
    xp = tinycnn.backend.of(output.data).xp
    projection = xp.asarray(numpy.random.default_rng(seed).standard_normal(output.shape))
    output.backward(projection)
    loss = float((output.data * projection).sum())
    noise = 100 * numpy.finfo(numpy.float64).eps * max(abs(loss), 1.0) / eps

    def projected_output() -> float:
        with tinycnn.no_grad():
            return float((function(*tensors).data * projection).sum())

    errors = []
    for tensor in tensors:
        if tensor.grad is None:       # backward never reached it: d/da counts as 0
            analytic = numpy.zeros(tensor.shape)
        else:
            analytic = tinycnn.backend.to_numpy(tensor.grad)
        numeric = _numeric_gradient(projected_output, tensor, eps)
        errors.append(_relative_error(analytic, numeric, noise))
    return errors


def _as_tensor(value) -> Tensor:
    tensor = value if isinstance(value, Tensor) else Tensor(value, requires_grad=True,
                                                            dtype=numpy.float64)
    if tensor.dtype != numpy.float64:
        raise TypeError(f"gradient checks need float64 inputs, got {tensor.dtype}")
    tensor.requires_grad = True
    # contiguous, so that _numeric_gradient's flat view writes through to tensor.data
    tensor.data = tinycnn.backend.of(tensor.data).xp.ascontiguousarray(tensor.data)
    return tensor


def _numeric_gradient(projected_output: Callable[[], float], tensor: Tensor, eps: float):
    """dL/da by central differences, one element of ``tensor.data`` at a time."""
    flat = tensor.data.reshape(-1)          # a view (data is contiguous): writes change tensor.data
    gradient = numpy.zeros(flat.shape[0])
    for i in range(flat.shape[0]):
        original = float(flat[i])
        flat[i] = original + eps
        above = projected_output()
        flat[i] = original - eps
        below = projected_output()
        flat[i] = original
        gradient[i] = (above - below) / (2 * eps)
    return gradient.reshape(tensor.shape)


def _relative_error(analytic, numeric, noise: float) -> float:
    """max |analytic - numeric| / max(|analytic|, |numeric|); 0 when both are below ``noise``."""
    scale = max(numpy.abs(analytic).max(initial=0.0), numpy.abs(numeric).max(initial=0.0))
    if scale < noise:
        return 0.0
    return float(numpy.abs(analytic - numeric).max() / scale)
