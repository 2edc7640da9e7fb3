"""Inverted dropout."""
from __future__ import annotations

from .. import random
from ..backend import of
from ..tensor import Function, Tensor


class Dropout(Function):
    """y = x * mask / (1 - p), mask[i] = 1 with probability 1 - p;  dx = dy * mask / (1 - p).

    Scaling at training time keeps the expected activation unchanged, so
    evaluation is the identity.
    """

    def __init__(self, mask):
        self.mask = mask            # same shape as x, already divided by (1 - p)

    def forward(self, x):
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True, mask=None) -> Tensor:
    """Zero each element with probability ``p`` while training; identity otherwise.

    ``mask`` (0/1 array of x's shape) fixes the random choice, for tests.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if mask is None:
        mask = random.uniform(x.shape, like=x.data) >= p
    scaled = of(x.data).xp.asarray(mask, dtype=x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout(scaled)(x)
