"""Max pooling with Numba: one pass that keeps the arg-max, one scatter back.

Windows start at (oh*sh - ph, ow*sw - pw); positions outside the image never win.
The arg-max is stored as the flat position h*W + w inside the image plane (int32),
so backward is a single add per output.
"""
from __future__ import annotations

import numpy
from numba import njit, prange


@njit(parallel=True, cache=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """x (N, C, H, W) -> y (N, C, OH, OW), argmax (N, C, OH, OW) int32 flat positions, in place.

    Ties go to the first maximum in row-major window order (as ``argmax``).
    """
    n_images, channels, height, width = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
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
                        value = x[n, c, h, col]
                        if value > best or where < 0:
                            best, where = value, h * width + col
                y[n, c, a, b] = best
                argmax[n, c, a, b] = where


@njit(parallel=True, cache=True)
def max_pool2d_backward(dy, argmax, dx):
    """dx[n, c].flat[argmax[n, c, a, b]] += dy[n, c, a, b]; dy (N, C, OH, OW) -> dx (N, C, H*W),
    overwritten."""
    n_images, channels, oh, ow = dy.shape
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
        dx[n, c] = 0.0
        for a in range(oh):
            for b in range(ow):
                dx[n, c, argmax[n, c, a, b]] += dy[n, c, a, b]
