"""2-D convolution (cross-correlation, as in PyTorch and Keras)."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor
from ._pairs import pair


class Conv2d(Function):
    """y[n, o] = b[o] + sum over c, i, j of w[o, c, i, j] * x_padded[n, c, oh*s + i, ow*s + j].

    x (N, C, H, W), w (O, C, KH, KW), b (O,) -> y (N, O, OH, OW) with
    OH = (H + 2*ph - KH) // sh + 1. The backend kernel computes it by im2col and
    one matrix product (see ``tinycnn/kernels/reference.py``).
    """

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, w, b=None):
        self.x, self.w, self.has_bias = x, w, b is not None
        y, self.saved = of(x, w, b).kernels.conv2d_forward(x, w, b, self.stride, self.padding)
        return y

    def backward(self, dy):
        kernels = of(dy).kernels
        need_dx = self.inputs[0].requires_grad       # False for a network's input images
        dx, dw, db = kernels.conv2d_backward(dy, self.x, self.w, self.saved,
                                             self.stride, self.padding, need_dx)
        return (dx, dw, db) if self.has_bias else (dx, dw)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride=1, padding=0) -> Tensor:
    """Convolve ``x`` (N, C, H, W) with ``weight`` (O, C, KH, KW).

    ``padding`` is a number, a (ph, pw) pair, or ``"same"`` (stride 1 and odd
    kernels: output size = input size).
    """
    stride = pair(stride)
    padding = conv_padding(padding, weight.shape[2:], stride)
    if x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d expects x of shape (N, {weight.shape[1]}, H, W), got {x.shape}")
    function = Conv2d(stride, padding)
    return function(x, weight) if bias is None else function(x, weight, bias)


def conv_padding(padding, kernel, stride: tuple[int, int]) -> tuple[int, int]:
    """(ph, pw) for a number, a pair, or ``"same"`` (stride 1, odd kernel (KH, KW): pad KH//2, KW//2)."""
    kh, kw = kernel
    if padding == "same":
        if stride != (1, 1) or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError("padding='same' needs stride 1 and an odd kernel size")
        return (kh // 2, kw // 2)
    return pair(padding)
