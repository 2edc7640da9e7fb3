"""2-D max pooling."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor
from ._pairs import pair


class MaxPool2d(Function):
    """y[n, c, oh, ow] = max over the window at (oh*sh - ph, ow*sw - pw) of size (KH, KW).

    x (N, C, H, W) -> y (N, C, OH, OW). Backward sends each output's gradient to
    the input pixel that was the maximum (the first one on ties).
    """

    def __init__(self, kernel, stride, padding):
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        self.x_shape = x.shape
        y, self.saved = of(x).kernels.max_pool2d_forward(x, self.kernel, self.stride, self.padding)
        return y

    def backward(self, dy):
        return of(dy).kernels.max_pool2d_backward(dy, self.x_shape, self.saved,
                                                  self.kernel, self.stride, self.padding)


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Max pooling; ``stride`` defaults to ``kernel_size`` (as in PyTorch)."""
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    padding = pair(padding)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError("max_pool2d padding must be at most half the kernel size")
    return MaxPool2d(kernel, stride, padding)(x)
