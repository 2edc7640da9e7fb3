from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x)
