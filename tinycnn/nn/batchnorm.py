from __future__ import annotations

import numpy

from .. import backend
from .. import functional as F
from ..tensor import Tensor, get_default_dtype
from .module import Module, Parameter


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: weight (gamma) = 1, bias (beta) = 0,
    running_mean = 0, running_var = 1, as PyTorch initializes them."""

    expected_ndim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        dtype = get_default_dtype()
        self.weight = Parameter(numpy.ones(num_features, dtype))
        self.bias = Parameter(numpy.zeros(num_features, dtype))
        xp = backend.current().xp
        self.register_buffer("running_mean", xp.zeros(num_features, dtype))
        self.register_buffer("running_var", xp.ones(num_features, dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self.expected_ndim:
            raise ValueError(f"{type(self).__name__} expects a {self.expected_ndim}-D input, got shape {x.shape}")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm2d(_BatchNorm):
    """Per-channel batch norm of images (N, C, H, W); statistics over N, H and W."""
    expected_ndim = 4


class BatchNorm1d(_BatchNorm):
    """Per-feature batch norm of vectors (N, C); statistics over N."""
    expected_ndim = 2
