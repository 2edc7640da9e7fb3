from __future__ import annotations

from .. import functional as F
from .. import init
from ..tensor import Tensor, get_default_dtype
from .module import Module, Parameter


class Linear(Module):
    """Dense layer: (N, in_features) -> (N, out_features), y = x @ weight.T + bias.

    ``weight`` (out_features, in_features), He-uniform initialized.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        dtype = get_default_dtype()
        self.weight = Parameter(init.he_uniform((out_features, in_features), dtype))
        self.bias = Parameter(init.uniform_bias(in_features, out_features, dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"
