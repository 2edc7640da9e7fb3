"""Winograd convolution F(m x m, r x r) for stride-1 square kernels, forward and backward.

The output is cut into m x m tiles; tile t reads an alpha x alpha input patch
(alpha = m + r - 1). With the Toom-Cook matrices AT, G, BT (``toom_cook.py``):

    U[xi, nu, o, c] = (G w[o, c] G^T)[xi, nu]               weights in the Winograd domain
    V[xi, nu, c, t] = (BT d[c, t] BT^T)[xi, nu]             input patches in the Winograd domain
    M[xi, nu]       = U[xi, nu] @ V[xi, nu]                 alpha^2 matrix products (O, C) @ (C, T)
    y[o, t]         = AT M[:, :, o, t] AT^T                 m x m output tile

so the matrix products (shared among the free cores: ``parallel_matmul.py``) do
alpha^2 / (m^2 r^2) of im2col's multiplications
(F(2x2, 3x3): 1/2.25, F(4x4, 3x3): 1/4, F(2x2, 5x5): 1/2.8, F(4x4, 5x5): 1/6.25).
The tile size m (2, 3 or 4) is chosen per layer: the one with the fewest
multiplications alpha^2 * tiles, ties to the smaller tile (cheaper transforms).
A 6x6 output is 9 tiles of 2x2 (144), 4 of 3x3 (100) or 4 padded ones of 4x4 (144).

Backward is the exact adjoint of every step: dM = A dy A^T per tile,
dU = dM @ V^T, dV = U^T @ dM, dx = scatter-add of B dV B^T over the
overlapping patches, dw = G^T dU G.

Two tile kernels do all transforms:
  ``to_tiles``   planes (N, C, H, W) -> (alpha^2, C, TH*TW*N): out = L p L^T per tile p (k x k, stride m)
  ``from_tiles`` (alpha^2, C, TH*TW*N) -> planes: adds R q R^T (k x k) at stride m, then crops.
The tile axis T is ordered (ty, tx, n), images innermost, so the transforms are
vector operations over images. Images are processed in batch chunks so that the
Winograd-domain arrays stay small. The weight transforms are one matrix product
with kron(G, G) (alpha^2, r^2): U = kron(G, G) @ w as (r^2, O*C).
"""
from __future__ import annotations

import numpy
from numba import prange

from .numba_cache import cached_njit
from .parallel_matmul import stacked_matmul
from .toom_cook import POINTS, winograd_matrices

TILE_SIZES = (2, 3, 4)              # output tile sizes m to choose from
MIN_IMAGES = 4                      # smaller batches go to im2col
CHUNK_BYTES = 96 * 2 ** 20          # budget for one chunk's M (alpha^2, O, T) array


def applies(x_shape, w_shape, stride, pad) -> bool:
    """Winograd path: a layer that :func:`fits` and at least 4 images (the transforms are
    vector operations over images: with fewer, im2col is as fast; measured on seed-004)."""
    return fits(w_shape, stride, pad) and x_shape[0] >= MIN_IMAGES


def fits(w_shape, stride, pad) -> bool:
    """Stride 1, a square 3x3 or 5x5 kernel, padding below the kernel size, at least 4
    input channels."""
    o, c, kh, kw = w_shape
    return stride == (1, 1) and kh == kw and kh in (3, 5) and max(pad) < kh and c >= 4


def tile_size(r: int, oh: int, ow: int, images: int = 1, weight_reads: float = 0) -> int:
    """The m in TILE_SIZES with the lowest cost (m + r - 1)^2 * (images * tiles + weight_reads)
    per pair of input and output channels; ties to the smaller.

    With ``weight_reads`` 0 (training) that is the fewest multiplications. Inference of a few
    faces gives the time to read one Winograd-domain weight, in multiplications: there the
    alpha^2 weights per channel pair, read once per call, cost more than the few tiles.
    """
    def cost(m):
        return (m + r - 1) ** 2 * (images * -(-oh // m) * -(-ow // m) + weight_reads)
    return min(TILE_SIZES, key=lambda m: (cost(m), m))


def matrices(m, r, dtype):
    """[AT, G, BT] of F(m, r) in ``dtype``."""
    return [a.astype(dtype) for a in winograd_matrices(m, r, POINTS[(m, r)])]


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def to_tiles(planes, left, m, pad_h, pad_w, th, tw, out):
    """out[xi*alpha + nu, c, (ty*tw + tx)*N + n] = sum_ij L[xi, i] p[i, j] L[nu, j],
    p = the k x k patch at (ty*m - pad_h, tx*m - pad_w) of planes[n, c] (zero outside).

    planes (N, C, H, W), left L (alpha, k) -> out (alpha^2, C, th*tw*N), written in place.
    Images are the innermost axis, so every step is a vector operation over N.
    """
    n_images, channels, height, width = planes.shape
    alpha, k = left.shape
    buf_w = (tw - 1) * m + k
    for task in prange(channels * th):
        c, ty = task // th, task % th
        patch = numpy.zeros((k, buf_w, n_images), dtype=planes.dtype)   # k rows, images last
        for i in range(k):
            h = ty * m + i - pad_h
            if 0 <= h < height:
                for n in range(n_images):
                    for x in range(min(width, buf_w - pad_w)):
                        patch[i, pad_w + x, n] = planes[n, c, h, x]
        rows = numpy.zeros((alpha, buf_w, n_images), dtype=planes.dtype)  # L @ patch
        for xi in range(alpha):
            for i in range(k):
                coef = left[xi, i]
                if coef != 0.0:
                    for x in range(buf_w):
                        for n in range(n_images):
                            rows[xi, x, n] += coef * patch[i, x, n]
        for tx in range(tw):
            base = (ty * tw + tx) * n_images
            for xi in range(alpha):
                for nu in range(alpha):
                    target = out[xi * alpha + nu, c, base:base + n_images]
                    target[:] = 0.0
                    for j in range(k):
                        coef = left[nu, j]
                        if coef != 0.0:
                            for n in range(n_images):
                                target[n] += coef * rows[xi, tx * m + j, n]


@cached_njit(parallel=True, fastmath={"reassoc", "contract"})
def from_tiles(tiles, right, m, th, tw, crop_h, crop_w, bias, out):
    """out[n, c] = crop of a buffer where every tile adds R q R^T at (ty*m, tx*m), + bias[c].

    tiles (alpha^2, C, th*tw*N), right R (k, alpha), bias (C,) -> out (N, C, H, W), in place;
    the crop starts at (crop_h, crop_w) of the ((th-1)*m + k, (tw-1)*m + k) buffer.
    """
    n_images, channels, out_h, out_w = out.shape
    k, alpha = right.shape
    buf_h, buf_w = (th - 1) * m + k, (tw - 1) * m + k
    for c in prange(channels):
        buf = numpy.zeros((buf_h, buf_w, n_images), dtype=tiles.dtype)   # images last
        half = numpy.empty((k, alpha, n_images), dtype=tiles.dtype)      # R @ q
        for ty in range(th):
            for tx in range(tw):
                base = (ty * tw + tx) * n_images
                half[:] = 0.0
                for i in range(k):
                    for xi in range(alpha):
                        coef = right[i, xi]
                        if coef != 0.0:
                            for nu in range(alpha):
                                for n in range(n_images):
                                    half[i, nu, n] += coef * tiles[xi * alpha + nu, c, base + n]
                for i in range(k):
                    for j in range(k):
                        for nu in range(alpha):
                            coef = right[j, nu]
                            if coef != 0.0:
                                for n in range(n_images):
                                    buf[ty * m + i, tx * m + j, n] += coef * half[i, nu, n]
        for n in range(n_images):
            for h in range(out_h):
                for x in range(out_w):
                    out[n, c, h, x] = buf[crop_h + h, crop_w + x, n] + bias[c]


def plan(x_shape, w_shape, pad, weight_reads: float = 0):
    """Tile size m (:func:`tile_size`), output size, tile grid, and images per chunk (equal
    chunks under the budget)."""
    n, c, h, w = x_shape
    o, _, r, _ = w_shape
    oh, ow = h + 2 * pad[0] - r + 1, w + 2 * pad[1] - r + 1
    m = tile_size(r, oh, ow, max(n, 1), weight_reads)
    th, tw = -(-oh // m), -(-ow // m)
    per_image = (m + r - 1) ** 2 * max(o, c) * th * tw * 4
    n_chunks = max(1, -(-n // max(1, CHUNK_BYTES // per_image)))
    return m, oh, ow, th, tw, max(1, -(-n // n_chunks))        # >= 1 even for an empty batch


def transformed_weights(w, m: int):
    """U = G w G^T for every (o, c): w (O, C, r, r) -> U (alpha^2, O, C), as one product with kron(G, G)."""
    o, c, r, _ = w.shape
    _, g, _ = matrices(m, r, w.dtype)
    return (numpy.kron(g, g) @ w.reshape(o * c, r * r).T).reshape((m + r - 1) ** 2, o, c)


def conv2d_forward(x, w, b, pad):
    """x (N, C, H, W), w (O, C, r, r), b (O,) or None -> (y (N, O, OH, OW), saved).

    ``saved`` holds U and the transformed input chunks V (alpha^2, C, T) for backward.
    """
    n = x.shape[0]
    o, c, r, _ = w.shape
    m, oh, ow, th, tw, chunk = plan(x.shape, w.shape, pad)
    at, g, bt = matrices(m, r, x.dtype)
    alpha2 = (m + r - 1) ** 2
    u = transformed_weights(w, m)
    bias = numpy.zeros(o, x.dtype) if b is None else b
    y = numpy.empty((n, o, oh, ow), dtype=x.dtype)
    scratch = numpy.empty(alpha2 * o * th * tw * chunk, dtype=x.dtype)   # one chunk's M
    inputs = []
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        tiles = th * tw * part.shape[0]
        v = numpy.empty((alpha2, c, tiles), dtype=x.dtype)                  # BT d BT^T per tile
        to_tiles(part, bt, m, pad[0], pad[1], th, tw, v)
        products = stacked_matmul(u, v, out=scratch[:alpha2 * o * tiles].reshape(alpha2, o, tiles))
        from_tiles(products, at, m, th, tw, 0, 0, bias, y[start:start + chunk])
        inputs.append(v)
    return y, (u, inputs)


def conv2d_backward(dy, x, w, saved, pad, need_dx: bool = True):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, r, r), db (O,): the adjoint of forward.
    Without ``need_dx``, dx is None and dV = U^T dM is not computed."""
    u, inputs = saved
    n, c = x.shape[:2]
    o, _, r, _ = w.shape
    m, oh, ow, th, tw, chunk = plan(x.shape, w.shape, pad)
    at, g, bt = matrices(m, r, x.dtype)
    alpha2 = (m + r - 1) ** 2
    out_adjoint, in_adjoint = numpy.ascontiguousarray(at.T), numpy.ascontiguousarray(bt.T)
    no_bias = numpy.zeros(c, x.dtype)
    dx = numpy.empty_like(x) if need_dx else None
    du = numpy.zeros_like(u)                                          # (alpha^2, O, C)
    u_t = u.transpose(0, 2, 1)                  # (alpha^2, C, O) view: BLAS reads it transposed
    scratch = numpy.empty(alpha2 * max(o, c) * th * tw * chunk, dtype=x.dtype)
    for index, start in enumerate(range(0, n, chunk)):
        part = dy[start:start + chunk]
        tiles = th * tw * part.shape[0]
        dm = numpy.empty((alpha2, o, tiles), dtype=x.dtype)                 # A dy A^T per tile
        to_tiles(part, out_adjoint, m, 0, 0, th, tw, dm)
        du += stacked_matmul(dm, inputs[index].transpose(0, 2, 1))      # dM @ V^T
        if need_dx:
            dv = stacked_matmul(u_t, dm, out=scratch[:alpha2 * c * tiles].reshape(alpha2, c, tiles))
            from_tiles(dv, in_adjoint, m, th, tw, pad[0], pad[1], no_bias, dx[start:start + chunk])
    dw = (du.reshape(alpha2, o * c).T @ numpy.kron(g, g)).reshape(w.shape)   # G^T dU G
    return dx, dw, dy.sum(axis=(0, 2, 3))
