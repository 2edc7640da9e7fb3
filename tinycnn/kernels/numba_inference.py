"""Inference-only convolution for the numba kernel set (what ``tinycnn.fuse`` runs).

One call computes  y = maxpool_2x2(relu(conv(x, w) + b))  (ReLU and pooling optional),
as ``reference.conv2d_inference`` does, with three savings for a layer called again and again:

- the weights are prepared once: the (O, C*KH*KW) matrix that im2col multiplies, and the
  Winograd-domain U = G w G^T (alpha^2, C, O) for each tile size in use (made on first use),
  with subnormal values set to 0 (:func:`without_subnormals`);
- the scratch arrays (im2col columns, Winograd tiles, the matrix product) are kept per
  input shape and reused, so a call allocates only its output;
- bias, ReLU and the 2x2 max-pool are one pass that reads the product once and writes the
  (pooled) output in NCHW order: :func:`finish` after im2col, the Winograd output transform
  itself otherwise (``winograd_channels_last.from_tiles``).

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
Other layers (the first, with one input channel) take im2col and one BLAS product, whose
(O, N*OH*OW) result needs no reordering beyond the one :func:`finish` does anyway.
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
    """out[n, o] = maxpool_2x2(relu(y[o, n] + bias[o])), ReLU and pooling each optional, in place.

    y (O, N, H, W) (any strides) -> out (N, O, H // 2, W // 2) with ``pool``, else (N, O, H, W).
    """
    channels, n_images = y.shape[0], y.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    for task in prange(n_images * channels):
        n, o = task // channels, task % channels
        for a in range(oh):
            for b in range(ow):
                if pool:
                    value = max(max(y[o, n, 2 * a, 2 * b], y[o, n, 2 * a, 2 * b + 1]),
                                max(y[o, n, 2 * a + 1, 2 * b], y[o, n, 2 * a + 1, 2 * b + 1]))
                else:
                    value = y[o, n, a, b]
                value += bias[o]
                if relu and value < 0.0:
                    value = 0.0
                out[n, o, a, b] = value


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
        self.scratch = {}      # (path, chunk shape) -> tuple of arrays

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


def conv2d_inference(x, prepared: PreparedConv, relu: bool, pool: bool):
    """x (N, C, H, W) -> maxpool_2x2(relu(conv(x, w) + b)): (N, O, OH, OW), halved with ``pool``.

    A layer with fewer than PARALLEL_OUTPUTS output values runs its kernels on the calling
    thread alone: waking Numba's sleeping OpenMP threads for a parallel loop cost 60-90 us
    here (they sleep between kernels: see ``numba_cpu.py``), more than splitting such a
    layer saves. Larger layers use every Numba thread the caller allows.
    """
    x = numpy.ascontiguousarray(x)
    p = prepared
    threads = numba.get_num_threads()
    oh = output_size(x.shape[2], p.w.shape[2], p.stride[0], p.pad[0])
    ow = output_size(x.shape[3], p.w.shape[3], p.stride[1], p.pad[1])
    if x.shape[0] * p.w.shape[0] * oh * ow < PARALLEL_OUTPUTS:
        numba.set_num_threads(1)
    try:
        if winograd.fits(p.w.shape, p.stride, p.pad):
            return _winograd_conv(x, p, relu, pool)
        return _im2col_conv(x, p, relu, pool)
    finally:
        numba.set_num_threads(threads)


def _output(n, o, oh, ow, pool, dtype):
    return numpy.empty((n, o, oh // 2, ow // 2) if pool else (n, o, oh, ow), dtype)


def _im2col_conv(x, p: PreparedConv, relu, pool):
    """Per chunk of images: cols (K, n*P) by im2col, product = w_rows @ cols (O, n*P), finish."""
    n, _, h, w = x.shape
    o, k = p.w_rows.shape
    kh, kw = p.w.shape[2:]
    oh = output_size(h, kh, p.stride[0], p.pad[0])
    ow = output_size(w, kw, p.stride[1], p.pad[1])
    out = _output(n, o, oh, ow, pool, x.dtype)
    chunk = max(1, CHUNK_BYTES // ((k + o) * oh * ow * x.itemsize))
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        positions = part.shape[0] * oh * ow
        cols, product = p.buffers(("im2col", part.shape), (k, positions), (o, positions))
        numba_im2col.im2col(part, kh, kw, *p.stride, *p.pad, oh, ow, cols)
        numpy.matmul(p.w_rows, cols, out=product)
        finish(product.reshape(o, part.shape[0], oh, ow), p.bias, relu, pool,
               out[start:start + chunk])
    return out


def _winograd_conv(x, p: PreparedConv, relu, pool):
    """Per chunk of images: V = BT d BT^T per tile (channels last), M = V @ U, then
    AT M AT^T + b per tile with ReLU and pooling; a pooled layer with odd tiles (m = 3)
    goes through y and finish instead, as a 2x2 window there can cross two tiles."""
    n, c = x.shape[:2]
    o = p.w.shape[0]
    m, oh, ow, th, tw, chunk = winograd.plan(x.shape, p.w.shape, p.pad, WEIGHT_READ)
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
            shapes.append((part.shape[0], o, oh, ow))                   # y, before finish pools it
        v, products, *y = p.buffers(("winograd", part.shape), *shapes)   # y: [] or [y]
        winograd_channels_last.to_tiles(part, bt, m, p.pad[0], p.pad[1], th, tw, tasks, v)
        numpy.matmul(v, u, out=products)
        if not through_finish:           # bias, ReLU and pooling in the transform's output pass
            winograd_channels_last.from_tiles(products, at, m, th, tw, p.bias, relu, pool, tasks,
                                              out[start:start + chunk])
            continue
        winograd_channels_last.from_tiles(products, at, m, th, tw, p.no_bias, False, False, tasks, y[0])
        finish(y[0].transpose(1, 0, 2, 3), p.bias, relu, pool, out[start:start + chunk])
    return out
