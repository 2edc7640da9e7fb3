"""Numba CPU kernel set: the interface of ``reference.py``, with compiled kernels.

Which fast path each op takes (each is tested against ``reference.py``):

    conv2d       Winograd F(m x m, 3x3) / F(m x m, 5x5), m = 2, 3 or 4, for stride-1 3x3
                 and 5x5 kernels on batches of 4 or more (``winograd.py``); direct
                 convolution for stride-1 layers with at most 27 weights per output channel
                 (a first layer on grey images: ``numba_direct.py``); else
                 chunked im2col + BLAS (``numba_im2col.py``)
    max_pool2d   one pass with stored arg-max, 2x2/2 written out (``numba_pool.py``)
    batch_norm   per-channel one-pass statistics, xhat recomputed in backward (``numba_batchnorm.py``)
    relu, adam   flat parallel loops; Adam fused into one pass (``numba_elementwise.py``)
    inference    conv + bias + ReLU + 2x2 max-pool with prepared weights and kept buffers
                 (``numba_inference.py``, what ``tinycnn.fuse`` runs)

Matrix products go to NumPy's BLAS; the stacked products of the Winograd path are
shared among the free cores by Python threads, each on a one-thread BLAS
(``parallel_matmul.py``). Arrays are made contiguous on the way in,
so each kernel compiles once per dtype (float32, float64); Numba's cache keeps
the machine code between runs (``numba_cache.py``: a private temp folder, or no
cache, where the install folder and home cannot be written). Outputs are allocated here with NumPy (huge
pages for large arrays) and filled in place by the kernels.

Three process-wide settings, each only if the user has not set it:

* Numba's OpenMP threads sleep, not spin, between kernels (``OMP_WAIT_POLICY=passive``):
  on a machine shared with other jobs a spinning thread cost every small kernel
  a whole scheduler time slice (about 20 ms measured here).
* NumPy's OpenBLAS runs one thread (unless ``OPENBLAS_NUM_THREADS`` is set):
  its two threads ran the medium-sized products of the Winograd convolution and
  the dense layers at 5 instead of 100 GFLOP/s on the 2-core machine this was
  measured on; the seed-004 training step went from 80 to 115 images/s
  (``blas_threads.py``). The Numba kernels still use every core, and so do the
  Winograd products (``parallel_matmul.py``), without OpenBLAS's spinning threads.
* glibc's malloc keeps freed memory for the next large array instead of handing it back
  to the kernel (unless ``MALLOC_MMAP_MAX_`` is set): a training step makes the same
  arrays every time, and faulting fresh pages in again cost the seed-004 step 15-25%
  (``heap.py``).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy  # noqa: E402

from . import (numba_batchnorm, numba_direct, numba_elementwise, numba_im2col, numba_pool,
               winograd)  # noqa: E402
from .blas_threads import set_blas_threads  # noqa: E402
from .heap import keep_freed_memory  # noqa: E402
from .numba_inference import conv2d_inference, prepare_conv2d  # noqa: E402,F401
from .reference import output_size  # noqa: E402

if "OPENBLAS_NUM_THREADS" not in os.environ:
    set_blas_threads(1)
if "MALLOC_MMAP_MAX_" not in os.environ:
    keep_freed_memory()


def _contiguous(*arrays):
    return [None if a is None else numpy.ascontiguousarray(a) for a in arrays]


# --- convolution ------------------------------------------------------------
def conv2d_forward(x, w, b, stride, pad):
    """x (N, C, H, W), w (O, C, KH, KW), b (O,) or None -> (y (N, O, OH, OW), saved).

    ``saved`` is ("winograd", transformed weights and input tiles), ("direct", None) or
    ("im2col", None).
    """
    x, w, b = _contiguous(x, w, b)
    if winograd.applies(x.shape, w.shape, stride, pad):
        y, tiles = winograd.conv2d_forward(x, w, b, pad)
        return y, ("winograd", tiles)
    if numba_direct.applies(w.shape, stride):
        return numba_direct.conv2d_forward(x, w, b, pad), ("direct", None)
    return numba_im2col.conv2d_forward(x, w, b, stride, pad), ("im2col", None)


def conv2d_backward(dy, x, w, saved, stride, pad, need_dx: bool = True):
    """dy (N, O, OH, OW) -> dx (N, C, H, W) (None unless ``need_dx``), dw (O, C, KH, KW), db (O,)."""
    dy, x, w = _contiguous(dy, x, w)
    path, tiles = saved
    if path == "winograd":
        return winograd.conv2d_backward(dy, x, w, tiles, pad, need_dx)
    if path == "direct":
        return numba_direct.conv2d_backward(dy, x, w, pad, need_dx)
    return numba_im2col.conv2d_backward(dy, x, w, stride, pad, need_dx)


# --- max pooling ------------------------------------------------------------
def max_pool2d_forward(x, kernel, stride, pad):
    """x (N, C, H, W) -> (y (N, C, OH, OW), saved = arg-max flat positions (N, C, OH, OW))."""
    (x,) = _contiguous(x)
    n, c, h, w = x.shape
    shape = (n, c, output_size(h, kernel[0], stride[0], pad[0]),
             output_size(w, kernel[1], stride[1], pad[1]))
    y, argmax = numpy.empty(shape, dtype=x.dtype), numpy.empty(shape, dtype=numpy.int32)
    planes, y_planes, argmax_planes = (a.reshape(n * c, *a.shape[2:]) for a in (x, y, argmax))
    if kernel == stride == (2, 2) and pad == (0, 0):
        numba_pool.max_pool2d_forward_2x2(planes, y_planes, argmax_planes)
    else:
        numba_pool.max_pool2d_forward(planes, *kernel, *stride, *pad, y_planes, argmax_planes)
    return y, argmax


def max_pool2d_backward(dy, x_shape, saved, kernel, stride, pad):
    """dy (N, C, OH, OW) -> dx (N, C, H, W)."""
    (dy,) = _contiguous(dy)
    n, c, h, w = x_shape
    dx = numpy.empty((n * c, h * w), dtype=dy.dtype)
    numba_pool.max_pool2d_backward(dy.reshape(n * c, *dy.shape[2:]),
                                   saved.reshape(n * c, *dy.shape[2:]), dx)
    return dx.reshape(x_shape)


# --- batch normalization ------------------------------------------------------
def batch_norm_forward(x, gamma, beta, eps):
    """x (N, C, L) -> (y (N, C, L), mean (C,), var (C,), saved = (x, mean, inv_std))."""
    x, gamma, beta = _contiguous(x, gamma, beta)
    y = numpy.empty_like(x)
    mean, var, inv_std = (numpy.empty(x.shape[1], dtype=x.dtype) for _ in range(3))
    numba_batchnorm.batch_norm_forward(x, gamma, beta, eps, y, mean, var, inv_std)
    return y, mean, var, (x, mean, inv_std)


def batch_norm_backward(dy, gamma, saved):
    """dy (N, C, L) -> dx (N, C, L), dgamma (C,), dbeta (C,)."""
    x, mean, inv_std = saved
    dy, gamma = _contiguous(dy, gamma)
    dx = numpy.empty_like(x)
    dgamma, dbeta = numpy.empty_like(mean), numpy.empty_like(mean)
    numba_batchnorm.batch_norm_backward(dy, x, gamma, mean, inv_std, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


# --- ReLU ----------------------------------------------------------------------
def relu_forward(x):
    """y = max(x, 0)"""
    (x,) = _contiguous(x)
    y = numpy.empty_like(x)
    numba_elementwise.relu_forward(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    """dx = dy where y > 0, else 0."""
    dy, y = _contiguous(dy, y)
    dx = numpy.empty_like(dy)
    numba_elementwise.relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


# --- Adam ---------------------------------------------------------------------
def adam_step(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """One Adam/AdamW update, in place on p, m and v (see ``reference.adam_step``)."""
    if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("adam_step updates in place and needs contiguous p, m and v")
    (g,) = _contiguous(g)
    numba_elementwise.adam_step(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                                float(lr), float(beta1), float(beta2), float(eps), int(step),
                                float(weight_decay), bool(decoupled))
