"""GPU kernels for the ``cupy`` backend: the reference kernels, in the layouts a GPU likes.

Same functions and signatures as ``reference.py``. No ``import cupy`` here: the
array module ``xp`` comes from the arrays themselves (``backend.of(x).xp``), so
the same code runs on CuPy and on the test suite's strict stand-in
(``tests/fake_cupy.py``). Only documented CuPy API is used: array functions
(``cupy.pad``, ``empty``, ``zeros``, ``arange``, ``matmul``/``@``, ``tensordot``,
``take_along_axis``, ``maximum``, ``sqrt``, ``ndarray`` methods) and
``cupy.ElementwiseKernel`` for two fused updates.

What differs from the reference, and why:

- conv2d keeps the column matrix as im2col writes it, (N, C*KH*KW, OH*OW).
  The forward is then one batched product  w (O, K) @ cols (N, K, P) -> (N, O, P),
  which already is the NCHW output: neither the big column matrix nor the output
  is transposed (each transpose is one more full pass over GPU memory).
  dw is one ``tensordot`` over the (N, P) axes; dcols one batched product.
- max_pool2d, when the windows tile the image (stride == kernel, no padding:
  the usual 2x2 pool), reads the windows with a reshape of x instead of
  im2col's padded copy and KH*KW slice copies, and backward writes them back
  with one broadcast compare; other pools use the reference kernels.
- the Adam update and ReLU backward are one fused elementwise CUDA kernel each
  (the reference Adam is about a dozen whole-array passes with temporaries per
  parameter). ``FUSED_ELEMENTWISE = False`` runs the reference array code
  instead. The CUDA bodies are plain arithmetic statements that read the same
  in Python, so the test stand-in evaluates the very text the GPU compiles.
- batch norm and ReLU forward: the reference code is a few whole-array
  passes, which is what CuPy runs well. Reused as is.
"""
from __future__ import annotations

import functools
import math

from ..backend import of
from . import reference
from .reference import (batch_norm_backward, batch_norm_forward, col2im, im2col, prepare_conv2d,
                        relu_forward)

__all__ = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "batch_norm_forward", "batch_norm_backward", "relu_forward", "relu_backward",
           "adam_step", "prepare_conv2d", "conv2d_inference"]


# --- convolution ------------------------------------------------------------
def conv2d_forward(x, w, b, stride, pad):
    """y = w * x + b as one batched matrix product, straight into NCHW.

    x (N, C, H, W), w (O, C, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    y[n] = w.reshape(O, K) @ cols[n] with cols (N, K, P), K = C*KH*KW, P = OH*OW.
    Returns ``(y, saved)``; ``saved`` is ``cols``.
    """
    n = x.shape[0]
    o, c, kh, kw = w.shape
    col = im2col(x, (kh, kw), stride, pad)                   # (N, C, KH, KW, OH, OW)
    oh, ow = col.shape[4], col.shape[5]
    cols = col.reshape(n, c * kh * kw, oh * ow)              # (N, K, P), no copy
    y = w.reshape(o, -1) @ cols                              # (N, O, P)
    if b is not None:
        y += b[:, None]
    return y.reshape(n, o, oh, ow), cols


def conv2d_backward(dy, x, w, saved, stride, pad, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`, with dys = dy as (N, O, P):

    dw[o, k] = sum over n, p of dys[n, o, p] * cols[n, k, p]   (one tensordot),
    db = sum of dys over n and p,
    dcols[n] = w.reshape(O, K).T @ dys[n], then col2im puts each entry back on its pixel
    (skipped when ``need_dx`` is False: dx is None).
    """
    xp = of(dy).xp
    cols = saved                                             # (N, K, P)
    n, o, oh, ow = dy.shape
    _, c, kh, kw = w.shape
    dys = dy.reshape(n, o, oh * ow)                          # (N, O, P)
    dw = xp.tensordot(dys, cols, axes=([0, 2], [0, 2])).reshape(w.shape)
    db = dys.sum(axis=(0, 2))
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(o, -1).T @ dys                         # (N, K, P)
    dx = col2im(dcols.reshape(n, c, kh, kw, oh, ow), x.shape, (kh, kw), stride, pad)
    return dx, dw, db


# --- max pooling ------------------------------------------------------------
def _windows_tile(kernel, stride, pad) -> bool:
    """True when the windows do not overlap and need no padding."""
    return tuple(stride) == tuple(kernel) and tuple(pad) == (0, 0)


def max_pool2d_forward(x, kernel, stride, pad):
    """y[n, c, oh, ow] = max of the window; ``saved`` = its arg-max (0 .. KH*KW-1).

    x (N, C, H, W) -> y (N, C, OH, OW). For tiling windows, x (cropped to
    OH*KH rows and OW*KW columns) is viewed as (N, C, OH, KH, OW, KW) and
    reordered once to windows (N, C, OH, OW, KH*KW).
    """
    if not _windows_tile(kernel, stride, pad):
        return reference.max_pool2d_forward(x, kernel, stride, pad)
    xp = of(x).xp
    n, c, h, w = x.shape
    (kh, kw) = kernel
    oh, ow = h // kh, w // kw
    tiles = x[:, :, :oh * kh, :ow * kw].reshape(n, c, oh, kh, ow, kw)
    windows = tiles.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, kh * kw)
    argmax = windows.argmax(axis=4)                                   # (N, C, OH, OW)
    y = xp.take_along_axis(windows, argmax[..., None], axis=4)[..., 0]
    return y, argmax


def max_pool2d_backward(dy, x_shape, saved, kernel, stride, pad):
    """Each window's gradient goes to its arg-max pixel. dy (N, C, OH, OW) -> dx (N, C, H, W).

    For tiling windows no pixel is in two windows, so dx is the window
    gradients (N, C, OH, OW, KH, KW) put back in image order (and zeros in
    rows/columns the pooling cropped).
    """
    if not _windows_tile(kernel, stride, pad):
        return reference.max_pool2d_backward(dy, x_shape, saved, kernel, stride, pad)
    xp = of(dy).xp
    argmax = saved
    n, c, oh, ow = dy.shape
    kh, kw = kernel
    offsets = xp.arange(kh * kw)                                      # (KH*KW,)
    dwindows = (offsets == argmax[..., None]) * dy[..., None]         # (N, C, OH, OW, KH*KW)
    dtiles = dwindows.reshape(n, c, oh, ow, kh, kw).transpose(0, 1, 2, 4, 3, 5)
    dtiles = dtiles.reshape(n, c, oh * kh, ow * kw)
    if dtiles.shape == tuple(x_shape):
        return dtiles
    dx = xp.zeros(x_shape, dtype=dy.dtype)
    dx[:, :, :oh * kh, :ow * kw] = dtiles
    return dx


def conv2d_inference(x, prepared, relu: bool, pool: bool):
    """maxpool_2x2(relu(conv(x, w) + b)) as ``reference.conv2d_inference``, with this
    module's batched-product convolution and window-reshape pooling."""
    w, b, stride, pad = prepared
    y, _ = conv2d_forward(x, w, b, stride, pad)
    if relu:
        y = relu_forward(y)
    if pool:
        y, _ = max_pool2d_forward(y, (2, 2), (2, 2), (0, 0))
    return y


# --- fused elementwise updates ----------------------------------------------------
FUSED_ELEMENTWISE = True   # False: the reference's array code (same results, more passes)

# name -> (inputs, outputs (written in place when passed), CUDA body); T = the arrays' dtype
_ELEMENTWISE = {
    "adam_update": (
        "T g, T one_minus_beta1, T one_minus_beta2, T step_size, T inv_sqrt_bc2, T eps",
        "T p, T m, T v",
        "m += one_minus_beta1 * (g - m); "
        "v += one_minus_beta2 * (g * g - v); "
        "p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)"),
    "relu_backward": ("T dy, T y", "T dx", "dx = dy * (y > 0)"),
}


@functools.cache
def _elementwise_kernel(xp, name: str):
    """``xp.ElementwiseKernel`` for ``name``, made on first use (CuPy compiles it on first call)."""
    inputs, outputs, body = _ELEMENTWISE[name]
    return xp.ElementwiseKernel(inputs, outputs, body, f"tinycnn_{name}")


def relu_backward(dy, y):
    """dx = dy where the output was positive, else 0 (one pass over dy and y)."""
    if not FUSED_ELEMENTWISE:
        return reference.relu_backward(dy, y)
    return _elementwise_kernel(of(dy).xp, "relu_backward")(dy, y)


def adam_step(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """One Adam/AdamW update in place on p, m, v: reference.adam_step's formulas, with the
    bias corrections folded into two numbers so that the update is one pass:

    m += (1-b1) (g - m),  v += (1-b2) (g^2 - v),
    p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """
    if not FUSED_ELEMENTWISE:
        return reference.adam_step(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay, decoupled)
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * p
    step_size = lr / (1 - beta1 ** step)
    inv_sqrt_bc2 = 1 / math.sqrt(1 - beta2 ** step)
    _elementwise_kernel(of(p).xp, "adam_update")(
        g, 1 - beta1, 1 - beta2, step_size, inv_sqrt_bc2, eps, p, m, v)
