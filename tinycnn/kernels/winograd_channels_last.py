"""Winograd convolution for inference (``tinycnn.fuse``): channels innermost everywhere.

The same F(m x m, r x r) formulas as ``winograd.py`` (read that first):

    V[xi, nu, t, c] = (BT d[t, c] BT^T)[xi, nu]      d[t, c]: tile t's alpha x alpha patch of channel c
    M[xi, nu]       = V[xi, nu] @ U[xi, nu]           alpha^2 products (T, C) @ (C, O)
    y[t, o]         = AT M[:, :, t, o] AT^T + b[o]    m x m output tile (then ReLU, 2x2 max-pool)

What differs is the memory layout. ``winograd.py`` keeps images innermost, so its
transforms are vector operations over the batch: long vectors at training's 64 images,
but one to eight lanes for the one to eight faces of a video frame. Here channels (or
output channels) are innermost in every array: the input image (N, H, W, C), the tiles
(alpha^2, T, C) and (alpha^2, T, O), the output (N, OH, OW, O). Every transform step is
then a vector operation over 32-512 contiguous channels whatever the batch, gathering a
patch copies alpha^2 contiguous pixels, and each tile is an independent task.

Tiles t run over (n, ty, tx), tx fastest. U is kept as (alpha^2, C, O): see
:func:`transformed_weights`.
"""
from __future__ import annotations

import numpy
from numba import prange

from . import winograd
from .numba_cache import cached_njit

TASKS_PER_THREAD = 4       # tiles are split into this many tasks per thread (load balance)


def transformed_weights(w, m: int):
    """U = G w G^T for every (o, c), laid out (alpha^2, C, O): w (O, C, r, r) -> U."""
    return numpy.ascontiguousarray(winograd.transformed_weights(w, m).transpose(0, 2, 1))


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def to_tiles(planes, bt, m, pad_h, pad_w, th, tw, tasks, out):
    """out[xi*alpha + nu, t, c] = (BT d BT^T)[xi, nu], d = the alpha x alpha patch at
    (ty*m - pad_h, tx*m - pad_w) of channel c of image n (zero outside), t = (n*th + ty)*tw + tx.

    planes (N, H, W, C), bt BT (alpha, alpha) -> out (alpha^2, N*th*tw, C), in place.
    """
    n_images, height, width, channels = planes.shape
    alpha = bt.shape[0]
    tiles = n_images * th * tw
    for task in prange(tasks):
        patch = numpy.empty((alpha, alpha, channels), dtype=planes.dtype)   # d[i, j, c]
        rows = numpy.empty((alpha, alpha, channels), dtype=planes.dtype)    # (BT d)[xi, j, c]
        for t in range(task * tiles // tasks, (task + 1) * tiles // tasks):
            n, ty, tx = t // (th * tw), (t // tw) % th, t % tw
            for i in range(alpha):
                h = ty * m + i - pad_h
                for j in range(alpha):
                    x = tx * m + j - pad_w
                    if 0 <= h < height and 0 <= x < width:
                        patch[i, j, :] = planes[n, h, x, :]
                    else:
                        patch[i, j, :] = 0.0
            rows[:] = 0.0
            for xi in range(alpha):
                for i in range(alpha):
                    coef = bt[xi, i]
                    if coef != 0.0:
                        for j in range(alpha):
                            for c in range(channels):
                                rows[xi, j, c] += coef * patch[i, j, c]
            for xi in range(alpha):
                for nu in range(alpha):
                    target = out[xi * alpha + nu, t]
                    target[:] = 0.0
                    for j in range(alpha):
                        coef = bt[nu, j]
                        if coef != 0.0:
                            for c in range(channels):
                                target[c] += coef * rows[xi, j, c]


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def from_tiles(products, at, m, th, tw, bias, relu, pool, tasks, out):
    """y[n, ty*m + i, tx*m + j, o] = (AT M[:, :, t, o] AT^T)[i, j] + bias[o], then ReLU and the
    2x2 max-pool (each optional; pooling needs an even m, so that no window crosses a tile).

    products M (alpha^2, N*th*tw, O), at AT (m, alpha), bias (O,) -> out (N, OH, OW, O), or
    (N, OH // 2, OW // 2, O) with ``pool``, in place; edge tiles are cropped.
    """
    n_images, out_h, out_w, channels = out.shape
    alpha = at.shape[1]
    tiles = n_images * th * tw
    step = 2 if pool else 1                                    # tile pixels per output pixel
    for task in prange(tasks):
        half = numpy.empty((m, alpha, channels), dtype=products.dtype)   # (AT M)[i, nu, o]
        tile = numpy.empty((m, m, channels), dtype=products.dtype)      # the m x m output tile
        for t in range(task * tiles // tasks, (task + 1) * tiles // tasks):
            n, ty, tx = t // (th * tw), (t // tw) % th, t % tw
            half[:] = 0.0
            for i in range(m):
                for xi in range(alpha):
                    coef = at[i, xi]
                    if coef != 0.0:
                        for nu in range(alpha):
                            source = products[xi * alpha + nu, t]
                            for o in range(channels):
                                half[i, nu, o] += coef * source[o]
            for i in range(m):
                for j in range(m):
                    tile[i, j, :] = bias
                    for nu in range(alpha):
                        coef = at[j, nu]
                        if coef != 0.0:
                            for o in range(channels):
                                tile[i, j, o] += coef * half[i, nu, o]
            for a in range(m // step):
                h = ty * (m // step) + a
                for b in range(m // step):
                    x = tx * (m // step) + b
                    if h < out_h and x < out_w:
                        target = out[n, h, x]
                        for o in range(channels):
                            value = tile[step * a, step * b, o]
                            if pool:
                                value = max(max(value, tile[2 * a, 2 * b + 1, o]),
                                            max(tile[2 * a + 1, 2 * b, o], tile[2 * a + 1, 2 * b + 1, o]))
                            if relu and value < 0.0:
                                value = 0.0
                            target[o] = value


def tasks(tiles: int, threads: int) -> int:
    """How many parallel tasks to split ``tiles`` tiles into (at least 1, at most one a tile)."""
    return max(1, min(tiles, threads * TASKS_PER_THREAD))
