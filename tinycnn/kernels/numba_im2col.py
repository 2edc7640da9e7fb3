"""Convolution by im2col and one BLAS matrix product per batch chunk (any stride, padding, kernel).

The column matrix of a chunk of images is built "channels first",
cols (C*KH*KW, n*OH*OW), so that

    y^T (O, n*OH*OW) = w (O, C*KH*KW) @ cols
    dw += dy^T @ cols^T,   dcols = w^T @ dy^T   (then col2im adds them back onto the pixels)

and the only reorderings are the cheap (O, n, P) <-> (n, O, P) swaps of y and dy.
Chunks keep the column matrix under ``CHUNK_BYTES`` (nothing big is kept for backward:
the columns are rebuilt there, chunk by chunk).
"""
from __future__ import annotations

import numpy
from numba import prange

from .numba_cache import cached_njit

from .reference import output_size

CHUNK_BYTES = 32 * 2 ** 20


@cached_njit(parallel=True)
def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols):
    """cols[(c*KH + i)*KW + j, n*OH*OW + a*OW + b] = x[n, c, a*sh + i - ph, b*sw + j - pw] (0 outside).

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW), written in place.
    """
    n_images, channels, height, width = x.shape
    positions = oh * ow
    for row in prange(channels * kh * kw):
        c, i, j = row // (kh * kw), (row // kw) % kh, row % kw
        for n in range(n_images):
            for a in range(oh):
                h = a * sh + i - ph
                start = n * positions + a * ow
                if h < 0 or h >= height:
                    cols[row, start:start + ow] = 0.0
                    continue
                for b in range(ow):
                    col = b * sw + j - pw
                    inside = 0 <= col < width
                    cols[row, start + b] = x[n, c, h, col] if inside else 0.0


@cached_njit(parallel=True)
def col2im(cols, kh, kw, sh, sw, ph, pw, oh, ow, dx):
    """The adjoint of :func:`im2col`: dx[n, c, h, w] = sum of the column entries taken from it.

    cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W), overwritten. One task per (n, c) plane, so no races.
    """
    n_images, channels, height, width = dx.shape
    positions = oh * ow
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
        dx[n, c] = 0.0
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for a in range(oh):
                    h = a * sh + i - ph
                    if h < 0 or h >= height:
                        continue
                    start = n * positions + a * ow
                    for b in range(ow):
                        col = b * sw + j - pw
                        if 0 <= col < width:
                            dx[n, c, h, col] += cols[row, start + b]


@cached_njit(parallel=True)
def images_first(y_t, bias, y):
    """y (n, O, P) = y_t (O, n*P) reordered, + bias[o]."""
    n_images, channels, positions = y.shape
    for task in prange(n_images * channels):
        n, o = task // channels, task % channels
        for p in range(positions):
            y[n, o, p] = y_t[o, n * positions + p] + bias[o]


@cached_njit(parallel=True)
def channels_first(y, y_t):
    """y_t (O, n*P) = y (n, O, P) reordered."""
    n_images, channels, positions = y.shape
    for task in prange(n_images * channels):
        n, o = task // channels, task % channels
        for p in range(positions):
            y_t[o, n * positions + p] = y[n, o, p]


def _geometry(x_shape, w_shape, stride, pad):
    n, c, h, w = x_shape
    o, _, kh, kw = w_shape
    oh, ow = output_size(h, kh, stride[0], pad[0]), output_size(w, kw, stride[1], pad[1])
    per_image = c * kh * kw * oh * ow * 8
    chunk = max(1, min(n, CHUNK_BYTES // per_image))
    return kh, kw, oh, ow, chunk


def conv2d_forward(x, w, b, stride, pad):
    """x (N, C, H, W), w (O, C, KH, KW), b (O,) or None -> y (N, O, OH, OW)."""
    n = x.shape[0]
    o = w.shape[0]
    kh, kw, oh, ow, chunk = _geometry(x.shape, w.shape, stride, pad)
    w_rows = w.reshape(o, -1)                                          # (O, C*KH*KW)
    bias = numpy.zeros(o, x.dtype) if b is None else b
    y = numpy.empty((n, o, oh * ow), dtype=x.dtype)
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        cols = numpy.empty((w_rows.shape[1], part.shape[0] * oh * ow), dtype=x.dtype)
        im2col(part, kh, kw, *stride, *pad, oh, ow, cols)              # (C*KH*KW, n*P)
        images_first(w_rows @ cols, bias, y[start:start + chunk])
    return y.reshape(n, o, oh, ow)


def conv2d_backward(dy, x, w, stride, pad):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, KH, KW), db (O,)."""
    n = x.shape[0]
    o = w.shape[0]
    kh, kw, oh, ow, chunk = _geometry(x.shape, w.shape, stride, pad)
    w_rows = w.reshape(o, -1)
    dx = numpy.empty_like(x)
    dw = numpy.zeros_like(w_rows)                                      # (O, C*KH*KW)
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        cols = numpy.empty((w_rows.shape[1], part.shape[0] * oh * ow), dtype=x.dtype)
        im2col(part, kh, kw, *stride, *pad, oh, ow, cols)
        dy_t = numpy.empty((o, part.shape[0] * oh * ow), dtype=x.dtype)
        channels_first(dy[start:start + chunk].reshape(part.shape[0], o, oh * ow), dy_t)
        dw += dy_t @ cols.T
        dcols = w_rows.T @ dy_t                                        # (C*KH*KW, n*P)
        col2im(dcols, kh, kw, *stride, *pad, oh, ow, dx[start:start + chunk])
    return dx, dw.reshape(w.shape), dy.sum(axis=(0, 2, 3))
