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
from numba import njit, prange

from .reference import output_size

CHUNK_BYTES = 32 * 2 ** 20


@njit(parallel=True, cache=True)
def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """cols[(c*KH + i)*KW + j, n*OH*OW + a*OW + b] = x[n, c, a*sh + i - ph, b*sw + j - pw] (0 outside).

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW).
    """
    n_images, channels, height, width = x.shape
    positions = oh * ow
    cols = numpy.empty((channels * kh * kw, n_images * positions), dtype=x.dtype)
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
    return cols


@njit(parallel=True, cache=True)
def col2im(cols, n_images, channels, height, width, kh, kw, sh, sw, ph, pw, oh, ow):
    """The adjoint of :func:`im2col`: dx[n, c, h, w] = sum of the column entries taken from it.

    cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W). One task per (n, c) plane, so no races.
    """
    positions = oh * ow
    dx = numpy.zeros((n_images, channels, height, width), dtype=cols.dtype)
    for task in prange(n_images * channels):
        n, c = task // channels, task % channels
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
    return dx


@njit(parallel=True, cache=True)
def images_first(y_t, n_images, bias):
    """(O, n*P) -> (n, O, P), adding bias[o]."""
    channels = y_t.shape[0]
    positions = y_t.shape[1] // n_images
    y = numpy.empty((n_images, channels, positions), dtype=y_t.dtype)
    for task in prange(n_images * channels):
        n, o = task // channels, task % channels
        for p in range(positions):
            y[n, o, p] = y_t[o, n * positions + p] + bias[o]
    return y


@njit(parallel=True, cache=True)
def channels_first(y):
    """(n, O, P) -> (O, n*P)."""
    n_images, channels, positions = y.shape
    y_t = numpy.empty((channels, n_images * positions), dtype=y.dtype)
    for task in prange(n_images * channels):
        n, o = task // channels, task % channels
        for p in range(positions):
            y_t[o, n * positions + p] = y[n, o, p]
    return y_t


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
        cols = im2col(part, kh, kw, *stride, *pad, oh, ow)             # (C*KH*KW, n*P)
        y[start:start + chunk] = images_first(w_rows @ cols, part.shape[0], bias)
    return y.reshape(n, o, oh, ow)


def conv2d_backward(dy, x, w, stride, pad):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, KH, KW), db (O,)."""
    n, c, h, width = x.shape
    o = w.shape[0]
    kh, kw, oh, ow, chunk = _geometry(x.shape, w.shape, stride, pad)
    w_rows = w.reshape(o, -1)
    dx = numpy.empty_like(x)
    dw = numpy.zeros_like(w_rows)                                      # (O, C*KH*KW)
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        cols = im2col(part, kh, kw, *stride, *pad, oh, ow)
        dy_t = channels_first(dy[start:start + chunk].reshape(part.shape[0], o, oh * ow))
        dw += dy_t @ cols.T
        dcols = w_rows.T @ dy_t                                        # (C*KH*KW, n*P)
        dx[start:start + chunk] = col2im(dcols, part.shape[0], c, h, width, kh, kw,
                                         *stride, *pad, oh, ow)
    return dx, dw.reshape(w.shape), dy.sum(axis=(0, 2, 3))
