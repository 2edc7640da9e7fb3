"""Max pooling with Numba: one pass that keeps the arg-max, one scatter back.

Windows start at (oh*sh - ph, ow*sw - pw); positions outside the image never win.
The arg-max is stored as the flat position h*W + w inside the image plane (int32),
so backward is a single add per output.
"""
from __future__ import annotations

import numpy
from numba import prange

from .numba_cache import cached_njit


@cached_njit(parallel=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """x (P, H, W) -> y (P, OH, OW), argmax (P, OH, OW) int32 flat positions, in place
    (P = N*C image planes).

    Ties go to the first maximum in row-major window order (as ``argmax``).
    """
    planes, height, width = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for p in prange(planes):
        for a in range(oh):
            for b in range(ow):
                best = -numpy.inf
                where = -1
                for i in range(kh):
                    h = a * sh + i - ph
                    if h < 0 or h >= height:
                        continue
                    for j in range(kw):
                        col = b * sw + j - pw
                        if col < 0 or col >= width:
                            continue
                        value = x[p, h, col]
                        if value > best or where < 0:
                            best, where = value, h * width + col
                y[p, a, b] = best
                argmax[p, a, b] = where


@cached_njit(parallel=True)
def max_pool2d_backward(dy, argmax, dx):
    """dx[p].flat[argmax[p, a, b]] += dy[p, a, b]; dy (P, OH, OW) -> dx (P, H*W), overwritten."""
    planes, oh, ow = dy.shape
    for p in prange(planes):
        dx[p] = 0.0
        for a in range(oh):
            for b in range(ow):
                dx[p, argmax[p, a, b]] += dy[p, a, b]


@cached_njit(parallel=True)
def max_pool2d_forward_2x2(x, y, argmax):
    """The common case (kernel 2, stride 2, no padding) of :func:`max_pool2d_forward`,
    with the four comparisons written out (no bounds checks): x (P, H, W) -> y, argmax (P, OH, OW)."""
    planes, height, width = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for p in prange(planes):
        for a in range(oh):
            upper, lower = x[p, 2 * a], x[p, 2 * a + 1]       # the two input rows of output row a
            for b in range(ow):
                left = 2 * b
                best, where = upper[left], left
                if upper[left + 1] > best:
                    best, where = upper[left + 1], left + 1
                if lower[left] > best:
                    best, where = lower[left], width + left
                if lower[left + 1] > best:
                    best, where = lower[left + 1], width + left + 1
                y[p, a, b] = best
                argmax[p, a, b] = 2 * a * width + where
