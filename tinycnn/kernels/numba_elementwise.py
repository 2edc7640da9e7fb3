"""Elementwise kernels with Numba: ReLU forward/backward and the fused Adam update.

All work on flat contiguous arrays (the callers pass ``reshape(-1)`` views) and
write into arrays the caller allocated with NumPy (whose large allocations use huge
pages: half the page-fault time of Numba's own allocations).
"""
from __future__ import annotations

import math

from numba import prange

from .numba_cache import cached_njit


@cached_njit(parallel=True)
def relu_forward(x, y):
    """y = max(x, 0), in place (NaN stays NaN, as numpy.maximum)."""
    for i in prange(x.size):
        y[i] = 0.0 if x[i] < 0.0 else x[i]


@cached_njit(parallel=True)
def relu_backward(dy, y, dx):
    """dx = dy where y > 0, else 0, in place."""
    for i in prange(dy.size):
        dx[i] = dy[i] if y[i] > 0.0 else 0.0


@cached_njit(parallel=True)
def adam_step(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """One Adam/AdamW update of flat p, m, v in place, in a single pass (PyTorch's formulas).

    Adam: g += wd * p.  AdamW: p *= 1 - lr * wd.
    m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """
    shrink = 1.0 - lr * weight_decay if decoupled else 1.0
    coupled_decay = 0.0 if decoupled else weight_decay
    correction1 = 1.0 - beta1 ** step
    correction2 = 1.0 - beta2 ** step
    for i in prange(p.size):
        grad = g[i] + coupled_decay * p[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * grad
        v[i] = beta2 * v[i] + (1.0 - beta2) * grad * grad
        p[i] = p[i] * shrink - lr * (m[i] / correction1) / (math.sqrt(v[i] / correction2) + eps)
