from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
