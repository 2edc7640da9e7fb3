"""Inference-only convolution for the numba kernel set (what ``tinycnn.fuse`` runs).

One call computes  y = maxpool_2x2(relu(conv(x, w) + b))  (ReLU and pooling optional),
as ``reference.conv2d_inference`` does, with four savings for a layer called again and again:

- the weights are prepared once: the (O, C*KH*KW) matrix that im2col multiplies, and the
  Winograd-domain U = G w G^T (alpha^2, C, O) for each tile size in use (made on first use),
  with subnormal values set to 0 (:func:`without_subnormals`);
- the scratch arrays (im2col columns, Winograd tiles, the matrix product) are kept per
  input shape and reused, so a call allocates only its output;
- bias, ReLU and the 2x2 max-pool are one pass that reads the product once and writes the
  (pooled) output: :func:`finish` after im2col, the Winograd output transform itself
  otherwise (``winograd_channels_last.from_tiles``);
- the output is "channels last" in memory, as PyTorch's ``memory_format=channels_last``: its
  shape is (N, O, OH, OW) like any other kernel set's, but it is a transposed view of an
  (N, OH, OW, O) array. Fed to the next layer, every Winograd patch is then a run of
  contiguous channels, read and written as vectors, where a (N, C, H, W) array needs a
  gather of C values H*W apart, and the output transform's stores are contiguous too.
  ``python -m benchmarks.fused_inference --archs vgg_fer --batches 1 8``, run on this
  commit and on the one before it in turn, twice (quiet 2-core machine): one face 1.51-1.53
  -> 1.47-1.48 ms (median; fastest 1.45-1.47 -> 1.38-1.39), 8 faces 8.0-8.3 -> 7.6-7.7 ms.
  Any other input (NCHW contiguous, say) is copied to channels last first.

Layers that Winograd fits (``winograd.fits``: stride 1, 3x3 or 5x5, 4 channels or more) take
it at every batch size, with the transforms running over channels
(``winograd_channels_last.py``). With images innermost, as training's ``winograd.py`` has
them, one to eight faces make one to eight vector lanes, and im2col was faster below 4
images. Timed layer by layer on one thread (vgg_fer's and seed004's convolutions): for
one face 1.4-2.8x faster than im2col, except seed004's 512-to-512 layer on a 6x6 map
(0.87-0.94x: four tiles, and its Winograd weights are 2.8x the kernel's to read); for 8
faces 1.4-2.1x faster than images-innermost Winograd.
For a few faces the tile size also counts reading the alpha^2 Winograd-domain weights of each
channel pair (``winograd.tile_size`` with WEIGHT_READ, about 10 multiplications a weight: the
weights come from beyond the L2 cache). For one face vgg_fer's 12x12 and 6x6 layers then take
3x3 and 2x2 tiles instead of 4x4 and 3x3: 1.68 -> 1.52 ms per face in a loop of calls on the
quiet 2-core machine (measured when the rule was made; now ``python -m benchmarks.idle_gap``).
A 1x1 convolution (stride 1, no padding: a residual block's shortcut) needs no im2col at
all: with channels last its input is already the (N*H*W, C) matrix, and the layer is one
BLAS product with w^T. Other layers (the first, with one input channel) take im2col and one
BLAS product, cols^T @ w^T, whose (N*OH*OW, O) result is already channels last for
:func:`finish`.
"""
from __future__ import annotations

import numba
import numpy
from numba import prange

from . import numba_im2col, winograd, winograd_channels_last
from .numba_cache import cached_njit
from .reference import output_size

CHUNK_BYTES = 32 * 2 ** 20   # im2col path: columns + product of one chunk of images
KEPT_SHAPES = 4              # scratch arrays are kept for this many input shapes per layer
PARALLEL_OUTPUTS = 2 ** 17    # smaller layers run on one thread (conv2d_inference)
WEIGHT_READ = 10             # one Winograd-domain weight read costs ~10 multiplications (tile size)


@cached_njit(parallel=True)
def finish(y, bias, relu, pool, out):
    """out[n, a, b] = maxpool_2x2(relu(y[n, ., .] + bias))[a, b], ReLU and pooling each optional,
    in place, channels innermost.

    y (N, H, W, O) -> out (N, H // 2, W // 2, O) with ``pool``, else (N, H, W, O).
    """
    n_images, oh, ow, channels = out.shape
    for task in prange(n_images * oh):
        n, a = task // oh, task % oh
        for b in range(ow):
            target = out[n, a, b]
            for o in range(channels):
                if pool:
                    value = max(max(y[n, 2 * a, 2 * b, o], y[n, 2 * a, 2 * b + 1, o]),
                                max(y[n, 2 * a + 1, 2 * b, o], y[n, 2 * a + 1, 2 * b + 1, o]))
                else:
                    value = y[n, a, b, o]
                value += bias[o]
                if relu and value < 0.0:
                    value = 0.0
                target[o] = value


def without_subnormals(a):
    """``a`` with its subnormal values (not 0, but below the dtype's smallest normal number)
    set to 0. Each product with one costs the CPU a microcode assist (about 100 cycles): a
    trained vgg_fer with 106 such weights (3,226 once Winograd-transformed, the run fast_init)
    took 2.43 ms a face in ``python -m fer_app.distill_report`` before this and 1.60 after,
    like the same network without them. The outputs change by far less than float32
    rounding elsewhere."""
    return numpy.where(numpy.abs(a) < numpy.finfo(a.dtype).tiny, 0, a).astype(a.dtype)


class PreparedConv:
    """One convolution layer's weights in the forms the kernels read, and its scratch arrays."""

    def __init__(self, w, b, stride, pad):
        self.w = numpy.ascontiguousarray(without_subnormals(w))  # (O, C, KH, KW)
        o = w.shape[0]
        self.w_rows = self.w.reshape(o, -1)                      # (O, C*KH*KW)
        self.bias = numpy.zeros(o, w.dtype) if b is None else numpy.ascontiguousarray(b)
        self.no_bias = numpy.zeros(o, w.dtype)
        self.stride, self.pad = tuple(stride), tuple(pad)
        self.winograd = {}     # tile size m -> (U (alpha^2, C, O), AT, BT)
        self.scratch = {}      # (path, [tile size,] chunk shape) -> tuple of arrays

    def winograd_weights(self, m: int):
        """(U, AT, BT) for output tiles of m x m, transformed on first use."""
        if m not in self.winograd:
            at, _, bt = winograd.matrices(m, self.w.shape[2], self.w.dtype)
            u = without_subnormals(winograd_channels_last.transformed_weights(self.w, m))
            self.winograd[m] = (u, at, bt)
        return self.winograd[m]

    def buffers(self, key, *shapes):
        """Arrays of ``shapes`` kept under ``key`` (made once; forgotten beyond KEPT_SHAPES keys)."""
        if key not in self.scratch:
            if len(self.scratch) >= KEPT_SHAPES:
                self.scratch.clear()
            self.scratch[key] = tuple(numpy.empty(shape, self.w.dtype) for shape in shapes)
        return self.scratch[key]


def prepare_conv2d(w, b, stride, pad) -> PreparedConv:
    """The layer's weights made ready for :func:`conv2d_inference` (see the module docstring)."""
    return PreparedConv(w, b, stride, pad)


def channels_last(x):
    """x (N, C, H, W) -> its values as a contiguous (N, H, W, C) array (no copy if x is a
    transposed view of one, as this module's outputs are)."""
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 1))


def conv2d_inference(x, prepared: PreparedConv, relu: bool, pool: bool):
    """x (N, C, H, W) -> maxpool_2x2(relu(conv(x, w) + b)): (N, O, OH, OW), halved with ``pool``,
    channels last in memory (see the module docstring).

    A layer with fewer than PARALLEL_OUTPUTS output values runs its kernels on the calling
    thread alone: splitting such a layer saves less than the parallel loop costs. Waking
    Numba's sleeping OpenMP threads (see ``numba_cpu.py``) took 60-90 us when other jobs
    held the cores and 4-6 us on the quiet machine, and even there vgg_fer's one face took
    1.55 ms with every layer parallel against 1.46 with this rule. Larger layers use every
    Numba thread the caller allows.
    """
    p = prepared
    x = channels_last(x)                                        # (N, H, W, C)
    threads = numba.get_num_threads()
    oh = output_size(x.shape[1], p.w.shape[2], p.stride[0], p.pad[0])
    ow = output_size(x.shape[2], p.w.shape[3], p.stride[1], p.pad[1])
    if x.shape[0] * p.w.shape[0] * oh * ow < PARALLEL_OUTPUTS:
        numba.set_num_threads(1)
    try:
        if winograd.fits(p.w.shape, p.stride, p.pad):
            out = _winograd_conv(x, p, relu, pool)
        elif p.w.shape[2:] == (1, 1) and p.stride == (1, 1) and p.pad == (0, 0):
            out = _pointwise_conv(x, p, relu, pool)
        else:
            out = _im2col_conv(x, p, relu, pool)
    finally:
        numba.set_num_threads(threads)
    return out.transpose(0, 3, 1, 2)                            # (N, O, OH', OW') view


def _output(n, o, oh, ow, pool, dtype):
    return numpy.empty((n, oh // 2, ow // 2, o) if pool else (n, oh, ow, o), dtype)


def _pointwise_conv(x, p: PreparedConv, relu, pool):
    """x (N, H, W, C) -> out (N, OH', OW', O) for a 1x1 kernel, stride 1, no padding. Per
    chunk of images: product = the chunk as (n*H*W, C) @ w_rows^T (C, O), then finish."""
    n, h, w, c = x.shape
    o = p.w_rows.shape[0]
    out = _output(n, o, h, w, pool, x.dtype)
    chunk = max(1, CHUNK_BYTES // (o * h * w * x.itemsize))
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        positions = part.shape[0] * h * w
        (product,) = p.buffers(("pointwise", part.shape), (positions, o))
        numpy.matmul(part.reshape(positions, c), p.w_rows.T, out=product)
        finish(product.reshape(part.shape[0], h, w, o), p.bias, relu, pool, out[start:start + chunk])
    return out


def _im2col_conv(x, p: PreparedConv, relu, pool):
    """x (N, H, W, C) -> out (N, OH', OW', O). Per chunk of images: cols (K, n*P) by im2col,
    product = cols^T @ w_rows^T (n*P, O), one pixel's channels in a row; then finish."""
    n, h, w, _ = x.shape
    o, k = p.w_rows.shape
    kh, kw = p.w.shape[2:]
    oh = output_size(h, kh, p.stride[0], p.pad[0])
    ow = output_size(w, kw, p.stride[1], p.pad[1])
    out = _output(n, o, oh, ow, pool, x.dtype)
    chunk = max(1, CHUNK_BYTES // ((k + o) * oh * ow * x.itemsize))
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        positions = part.shape[0] * oh * ow
        cols, product = p.buffers(("im2col", part.shape), (k, positions), (positions, o))
        numba_im2col.im2col(part.transpose(0, 3, 1, 2), kh, kw, *p.stride, *p.pad, oh, ow, cols)
        numpy.matmul(cols.T, p.w_rows.T, out=product)
        finish(product.reshape(part.shape[0], oh, ow, o), p.bias, relu, pool,
               out[start:start + chunk])
    return out


def _winograd_conv(x, p: PreparedConv, relu, pool):
    """x (N, H, W, C) -> out (N, OH', OW', O). Per chunk of images: V = BT d BT^T per tile,
    M = V @ U, then AT M AT^T + b per tile with ReLU and pooling; a pooled layer with odd
    tiles (m = 3) goes through y and finish instead, as a 2x2 window there can cross two tiles."""
    n, h, w, c = x.shape
    o = p.w.shape[0]
    m, oh, ow, th, tw, chunk = winograd.plan((n, c, h, w), p.w.shape, p.pad, WEIGHT_READ)
    u, at, bt = p.winograd_weights(m)
    alpha2 = u.shape[0]
    out = _output(n, o, oh, ow, pool, x.dtype)
    through_finish = pool and m % 2 == 1       # a 2x2 window may cross two odd tiles
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        tiles = part.shape[0] * th * tw
        tasks = winograd_channels_last.tasks(tiles, numba.get_num_threads())
        shapes = [(alpha2, tiles, c), (alpha2, tiles, o)]              # V, M
        if through_finish:
            shapes.append((part.shape[0], oh, ow, o))                   # y, before finish pools it
        v, products, *y = p.buffers(("winograd", m, part.shape), *shapes)   # y: [] or [y]
        winograd_channels_last.to_tiles(part, bt, m, p.pad[0], p.pad[1], th, tw, tasks, v)
        numpy.matmul(v, u, out=products)
        if not through_finish:           # bias, ReLU and pooling in the transform's output pass
            winograd_channels_last.from_tiles(products, at, m, th, tw, p.bias, relu, pool, tasks,
                                              out[start:start + chunk])
            continue
        winograd_channels_last.from_tiles(products, at, m, th, tw, p.no_bias, False, False, tasks, y[0])
        finish(y[0], p.bias, relu, pool, out[start:start + chunk])
    return out
