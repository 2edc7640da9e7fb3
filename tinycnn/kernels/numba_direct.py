"""Direct convolution for layers with few input taps (the first layer: one grey channel).

    y[n, o, a, b] = bias[o] + sum_{c,i,j} w[o, c, i, j] x[n, c, a + i - ph, b + j - pw]   (stride 1)

With C*KH*KW small (a 3x3 kernel on one channel has 9 taps), im2col's column matrix has
9 rows: its matrix product moves far more memory than it multiplies, and the product
comes out channels first, (O, N*OH*OW), to be reordered in one more pass over what is
the network's largest array. Here each output plane y[n, o] is made in place as the sum
of C*KH*KW shifted, scaled input rows: the inner loop runs along a row (a vector
operation) and the plane stays in the L1 cache.

Backward is the adjoint, along the same shifted rows:

    dw[o, c, i, j] = sum_{n,a,b} dy[n, o, a, b] x[n, c, a + i - ph, b + j - pw]
    db[o]          = sum_{n,a,b} dy[n, o, a, b]
    dx[n, c, h, w] = sum_{o,i,j} dy[n, o, h - i + ph, w - j + pw] w[o, c, i, j]

The input is zero-padded once, so every tap reads a whole row slice and no pixel is
tested for the border; dx clips each tap's rows and columns to where dy exists instead
(padding dy, the larger array, cost more than the kernel).
Indices in the innermost loops are unsigned: Numba then drops its check for negative
indices (Python's wrap-around), and the row loop vectorizes (2x faster measured here).
"""
from __future__ import annotations

import numpy
from numba import prange, uint64

from .numba_cache import cached_njit
from .reference import output_size

MAX_TAPS = 27          # C*KH*KW up to this (3 channels of 3x3) take the direct path


def applies(w_shape, stride) -> bool:
    """Stride 1 and at most MAX_TAPS weights per output channel."""
    o, c, kh, kw = w_shape
    return stride == (1, 1) and c * kh * kw <= MAX_TAPS


@cached_njit(parallel=True)
def forward(xp, w, bias, y):
    """xp (N, C, H + 2ph, W + 2pw) padded input, w (O, C, KH, KW), bias (O,) -> y (N, O, OH, OW)."""
    n_images, channels = xp.shape[:2]
    out_channels, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    for task in prange(n_images * out_channels):
        n, o = task // out_channels, task % out_channels
        y[n, o] = bias[o]
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    coef = w[o, c, i, j]
                    for a in range(oh):
                        row, source = y[n, o, a], xp[n, c, a + i, j:j + ow]
                        for b in range(ow):
                            row[uint64(b)] += coef * source[uint64(b)]


@cached_njit(parallel=True)
def weight_gradients(dy, xp, dw, db):
    """dy (N, O, OH, OW), xp (N, C, H + 2ph, W + 2pw) padded input -> dw (O, C, KH, KW), db (O,).

    Each weight's (and the bias's) sum is gathered position by position along a row, sums
    (C, KH, KW, OW), and added up across the row only at the end: no horizontal sum per
    row, and in float32 each position's partial sum holds only N*OH terms.
    """
    n_images, channels = xp.shape[:2]
    out_channels, _, kh, kw = dw.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for o in prange(out_channels):
        sums = numpy.zeros((channels, kh, kw, ow), dtype=dy.dtype)
        bias_sums = numpy.zeros(ow, dtype=dy.dtype)
        for n in range(n_images):
            for a in range(oh):
                row = dy[n, o, a]
                for b in range(ow):
                    bias_sums[uint64(b)] += row[uint64(b)]
                for c in range(channels):
                    for i in range(kh):
                        for j in range(kw):
                            total, source = sums[c, i, j], xp[n, c, a + i, j:j + ow]
                            for b in range(ow):
                                total[uint64(b)] += row[uint64(b)] * source[uint64(b)]
        for c in range(channels):
            for i in range(kh):
                for j in range(kw):
                    dw[o, c, i, j] = sums[c, i, j].sum()
        db[o] = bias_sums.sum()


@cached_njit(parallel=True)
def input_gradient(dy, w, ph, pw, dx):
    """dy (N, O, OH, OW), w (O, C, KH, KW) -> dx (N, C, H, W), overwritten.

    Tap (i, j) adds w[o, c, i, j] dy[n, o, h - i + ph, lo - j + pw : hi - j + pw] to the
    row slice dx[n, c, h, lo:hi], for the rows h and columns [lo, hi) where dy exists.
    """
    n_images, channels, height, width = dx.shape
    out_channels, _, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
        dx[n, c] = 0.0
        for o in range(out_channels):
            for i in range(kh):
                for j in range(kw):
                    coef = w[o, c, i, j]
                    lo, hi = max(0, j - pw), min(width, ow + j - pw)
                    for h in range(max(0, i - ph), min(height, oh + i - ph)):
                        target = dx[n, c, h, lo:hi]
                        source = dy[n, o, h - i + ph, lo - j + pw:hi - j + pw]
                        for b in range(hi - lo):
                            target[uint64(b)] += coef * source[uint64(b)]


def _padded(a, pad_h, pad_w):
    """a (N, C, H, W) with pad_h zero rows above and below, pad_w zero columns left and right."""
    return numpy.pad(a, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))


def conv2d_forward(x, w, b, pad):
    """x (N, C, H, W), w (O, C, KH, KW), b (O,) or None -> y (N, O, OH, OW)."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    y = numpy.empty((n, o, output_size(h, kh, 1, pad[0]), output_size(wd, kw, 1, pad[1])),
                    dtype=x.dtype)
    forward(_padded(x, *pad), w, numpy.zeros(o, x.dtype) if b is None else b, y)
    return y


def conv2d_backward(dy, x, w, pad, need_dx: bool = True):
    """dy (N, O, OH, OW) -> dx (N, C, H, W) (None unless ``need_dx``), dw (O, C, KH, KW), db (O,)."""
    dw, db = numpy.empty_like(w), numpy.empty(w.shape[0], dtype=w.dtype)
    weight_gradients(dy, _padded(x, *pad), dw, db)
    dx = None
    if need_dx:
        dx = numpy.empty_like(x)
        input_gradient(dy, w, pad[0], pad[1], dx)
    return dx, dw, db
