"""Flatten: (N, ...) -> (N, features)."""
from __future__ import annotations

import math

from ..ops import reshape
from ..tensor import Tensor


def flatten(x: Tensor) -> Tensor:
    """Keep the batch axis, join all others: (N, C, H, W) -> (N, C*H*W) (N = 0 too)."""
    return reshape(x, x.shape[0], math.prod(x.shape[1:]))
