from __future__ import annotations

from .. import functional as F
from .. import init
from ..functional._pairs import pair
from ..tensor import Tensor, get_default_dtype
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution layer: (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    ``weight`` (out_channels, in_channels, KH, KW) is He-uniform initialized
    (the right scale for ReLU networks); ``bias`` (out_channels,) as PyTorch.
    ``padding`` may be ``"same"`` for odd kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1,
                 padding=0, bias: bool = True):
        super().__init__()
        kh, kw = pair(kernel_size)
        self.stride, self.padding = stride, padding
        dtype = get_default_dtype()
        self.weight = Parameter(init.he_uniform((out_channels, in_channels, kh, kw), dtype))
        self.bias = Parameter(init.uniform_bias(in_channels * kh * kw, out_channels, dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        o, c, kh, kw = self.weight.shape
        return f"{c}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding!r}"
