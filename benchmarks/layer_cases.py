"""The layers of the seed-004 network as stand-alone benchmark cases (tinycnn side).

A :class:`LayerCase` is one tinycnn layer with the input shape it sees inside
seed-004 at batch 64, and the floating-point work of one forward call. The
functions below turn a case into zero-argument callables to time; the Keras
twin of each callable lives in ``benchmarks/keras_twin.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy

from tinycnn import Tensor, nn, no_grad


@dataclass
class LayerCase:
    name: str                       # e.g. "conv2_5x5_64to128_24x24"
    make_layer: Callable[[], nn.Module]
    input_shape: tuple              # (N, C, H, W) for images, (N, F) for features
    forward_flops: int | None       # multiply-adds * 2 of one forward call; None if not matmul-like

    @property
    def backward_flops(self) -> int | None:
        """Forward + backward: dx and dw each cost one forward's matmul work."""
        return None if self.forward_flops is None else 3 * self.forward_flops


def conv_flops(n: int, c: int, o: int, k: int, oh: int, ow: int) -> int:
    """2 * N * OH * OW * O * C * K * K."""
    return 2 * n * oh * ow * o * c * k * k


def seed004_layer_cases(batch: int = 64, size: int = 48, widths=(64, 128, 512, 512),
                        dense=(256, 512), classes: int = 7) -> list[LayerCase]:
    """The conv layers of the four blocks, the first block's batch norm and max-pool
    (the largest), and the three dense layers. ``size`` is the image side; each
    block halves it, so after four blocks it is size // 16."""
    kernels = (3, 5, 3, 3)
    cases = []
    channels, side = 1, size
    for index, (width, k) in enumerate(zip(widths, kernels), start=1):
        cases.append(LayerCase(
            f"conv{index}_{k}x{k}_{channels}to{width}_{side}x{side}",
            lambda c=channels, o=width, k=k: nn.Conv2d(c, o, k, padding="same"),
            (batch, channels, side, side),
            conv_flops(batch, channels, width, k, side, side)))
        channels, side = width, side // 2
    first = (batch, widths[0], size, size)
    cases.append(LayerCase(f"batchnorm2d_{widths[0]}_{size}x{size}",
                           lambda: nn.BatchNorm2d(widths[0]), first, None))
    cases.append(LayerCase(f"maxpool_2x2_{widths[0]}_{size}x{size}",
                           lambda: nn.MaxPool2d(2), first, None))
    features = [channels * side * side, *dense, classes]
    for f_in, f_out in zip(features[:-1], features[1:]):
        cases.append(LayerCase(f"dense_{f_in}to{f_out}",
                               lambda i=f_in, o=f_out: nn.Linear(i, o),
                               (batch, f_in), 2 * batch * f_in * f_out))
    return cases


def case_input(case: LayerCase, seed: int = 0) -> numpy.ndarray:
    """A standard-normal float32 input of the case's shape."""
    return numpy.random.default_rng(seed).standard_normal(case.input_shape, dtype=numpy.float32)


def output_gradient(layer: nn.Module, x: numpy.ndarray, seed: int = 1) -> numpy.ndarray:
    """A standard-normal gradient of the layer's output shape (for backward)."""
    with no_grad():
        shape = layer(Tensor(x)).shape
    return numpy.random.default_rng(seed).standard_normal(shape, dtype=numpy.float32)


def tinycnn_forward(layer: nn.Module, x: numpy.ndarray) -> Callable[[], numpy.ndarray]:
    """A callable: one forward call without recording the graph; returns y."""
    def forward():
        with no_grad():
            return layer(Tensor(x)).data
    return forward


def tinycnn_forward_backward(layer: nn.Module, x: numpy.ndarray,
                             dy: numpy.ndarray) -> Callable[[], list[numpy.ndarray]]:
    """A callable: forward, then backward of ``dy``; returns [y, dx, d(param) ...]
    with the parameter gradients in ``layer.parameters()`` order."""
    def forward_backward():
        inputs = Tensor(x, requires_grad=True)
        layer.zero_grad()
        y = layer(inputs)
        y.backward(dy)
        return [y.data, inputs.grad] + [p.grad for p in layer.parameters()]
    return forward_backward
