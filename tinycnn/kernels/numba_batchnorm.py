"""Batch normalization (training mode) with Numba, one channel per task.

Forward reads x twice (statistics, then y); the statistics are accumulated in
float64 around a shift (the channel's first value), so the one-pass variance
E[(x-s)^2] - E[x-s]^2 does not cancel catastrophically. Backward recomputes
xhat = (x - mean) * inv_std from the saved input instead of storing it.
Sums may be reordered (fastmath "reassoc") so that they vectorize.
"""
from __future__ import annotations

import math

import numpy
from numba import prange

from .numba_cache import cached_njit


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def batch_norm_forward(x, gamma, beta, eps, y, mean, var, inv_std):
    """x (N, C, L), gamma and beta (C,) -> y (N, C, L), mean (C,), var (C,) biased, inv_std (C,),
    written in place.

    y = gamma * (x - mean) * inv_std + beta,  inv_std = 1 / sqrt(var + eps).
    """
    n_images, channels, length = x.shape
    count = n_images * length
    for c in prange(channels):
        shift = numpy.float64(x[0, c, 0])
        total, squares = 0.0, 0.0
        for n in range(n_images):
            for i in range(length):
                centred = x[n, c, i] - shift
                total += centred
                squares += centred * centred
        mean_c = shift + total / count
        var_c = max(squares / count - (total / count) ** 2, 0.0)
        inv_c = 1.0 / math.sqrt(var_c + eps)
        mean[c], var[c], inv_std[c] = mean_c, var_c, inv_c
        scale = gamma[c] * inv_c
        offset = beta[c] - mean_c * scale
        for n in range(n_images):
            for i in range(length):
                y[n, c, i] = x[n, c, i] * scale + offset


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def batch_norm_backward(dy, x, gamma, mean, inv_std, dx, dgamma, dbeta):
    """dy, x (N, C, L) -> dx (N, C, L), dgamma (C,), dbeta (C,) in place  (M = N*L per channel).

    dbeta = sum(dy),  dgamma = sum(dy * xhat),
    dx = gamma * inv_std / M * (M*dy - dbeta - xhat * dgamma).
    """
    n_images, channels, length = x.shape
    count = n_images * length
    for c in prange(channels):
        sum_dy, sum_dy_xhat = 0.0, 0.0
        for n in range(n_images):
            for i in range(length):
                sum_dy += dy[n, c, i]
                sum_dy_xhat += dy[n, c, i] * (x[n, c, i] - mean[c])
        sum_dy_xhat *= inv_std[c]
        dgamma[c], dbeta[c] = sum_dy_xhat, sum_dy
        scale = gamma[c] * inv_std[c]
        mean_dy = sum_dy / count
        slope = sum_dy_xhat / count * inv_std[c]
        for n in range(n_images):
            for i in range(length):
                dx[n, c, i] = scale * (dy[n, c, i] - mean_dy - (x[n, c, i] - mean[c]) * slope)
