"""Reference kernels: plain array code, the path to read first.

Written against the NumPy API only, so the same code runs on any NumPy-like
array module (``xp`` is ``numpy`` for host arrays, ``cupy`` for device arrays).
Faster kernel sets (``numba_cpu``) are tested against these.

Layouts: images are NCHW, convolution weights (O, C, KH, KW), strides and
paddings are ``(height, width)`` pairs, batch-norm inputs are viewed as
(N, C, L) with L = H*W for images and L = 1 for features.
"""
from __future__ import annotations

from ..backend import of


def _xp(array):
    return of(array).xp


def output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Number of window positions along one axis: floor((size + 2*pad - kernel) / stride) + 1."""
    return (size + 2 * pad - kernel) // stride + 1


# --- im2col / col2im --------------------------------------------------------
def im2col(x, kernel, stride, pad, fill=0.0):
    """Gather every kernel window into columns.

    x (N, C, H, W) -> col (N, C, KH, KW, OH, OW), where
    col[n, c, i, j, oh, ow] = x_padded[n, c, i + oh*SH, j + ow*SW].
    One strided-slice copy per kernel offset (i, j), as in DeZero.
    """
    xp = _xp(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    col = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, i, j] = padded[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    return col


def col2im(col, x_shape, kernel, stride, pad):
    """The adjoint of :func:`im2col`: add every column entry back where it came from.

    col (N, C, KH, KW, OH, OW) -> dx (N, C, H, W). The same loop as im2col, with
    ``+=`` because overlapping windows share pixels.
    """
    xp = _xp(col)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = col.shape[4], col.shape[5]
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += col[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


# --- convolution ------------------------------------------------------------
def conv2d_forward(x, w, b, stride, pad):
    """y = w * x + b as one matrix product.

    x (N, C, H, W), w (O, C, KH, KW), b (O,) or None -> y (N, O, OH, OW).
    cols (N*OH*OW, C*KH*KW) @ w.reshape(O, -1).T -> (N*OH*OW, O).
    Returns ``(y, saved)``; ``saved`` (the column matrix) goes to backward.
    """
    n = x.shape[0]
    o, c, kh, kw = w.shape
    col = im2col(x, (kh, kw), stride, pad)
    oh, ow = col.shape[4], col.shape[5]
    cols = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
    y = cols @ w.reshape(o, -1).T
    if b is not None:
        y += b
    y = y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
    return _xp(x).ascontiguousarray(y), cols


def conv2d_backward(dy, x, w, saved, stride, pad, need_dx: bool = True):
    """Gradients of :func:`conv2d_forward`.

    dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C, KH, KW), db (O,).
    With dys = dy as (N*OH*OW, O):  dw = dys.T @ cols,  db = sum of dys over rows,
    dcols = dys @ w  (then col2im puts each column entry back on its pixel).
    ``need_dx=False`` (the input needs no gradient, e.g. the images): dx is None, not computed.
    """
    cols = saved
    n, o, oh, ow = dy.shape
    _, c, kh, kw = w.shape
    dys = dy.transpose(0, 2, 3, 1).reshape(n * oh * ow, o)
    dw = (dys.T @ cols).reshape(w.shape)
    db = dys.sum(axis=0)
    if not need_dx:
        return None, dw, db
    dcols = dys @ w.reshape(o, -1)
    dcol = dcols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    dx = col2im(dcol, x.shape, (kh, kw), stride, pad)
    return dx, dw, db


# --- max pooling ------------------------------------------------------------
def max_pool2d_forward(x, kernel, stride, pad):
    """y[n, c, oh, ow] = max of the window; padding never wins (it is -inf).

    x (N, C, H, W) -> y (N, C, OH, OW). Returns ``(y, saved)`` with the arg-max
    position inside each window (0 .. KH*KW-1) for backward.
    """
    xp = _xp(x)
    n, c = x.shape[:2]
    col = im2col(x, kernel, stride, pad, fill=-xp.inf)
    oh, ow = col.shape[4], col.shape[5]
    col = col.reshape(n, c, kernel[0] * kernel[1], oh, ow)
    argmax = col.argmax(axis=2)                                   # (N, C, OH, OW)
    y = xp.take_along_axis(col, argmax[:, :, None], axis=2)[:, :, 0]
    return y, argmax


def max_pool2d_backward(dy, x_shape, saved, kernel, stride, pad):
    """Each window's gradient goes to its arg-max pixel (summed where windows overlap).

    dy (N, C, OH, OW) -> dx (N, C, H, W).
    """
    xp = _xp(dy)
    argmax = saved
    n, c, oh, ow = dy.shape
    kh, kw = kernel
    offsets = xp.arange(kh * kw).reshape(1, 1, kh * kw, 1, 1)
    dcol = (offsets == argmax[:, :, None]) * dy[:, :, None]       # (N, C, KH*KW, OH, OW)
    dcol = dcol.astype(dy.dtype).reshape(n, c, kh, kw, oh, ow)
    return col2im(dcol, x_shape, kernel, stride, pad)


# --- batch normalization (training mode) -------------------------------------
def batch_norm_forward(x, gamma, beta, eps):
    """Normalize each channel by its batch statistics.

    x (N, C, L), gamma and beta (C,) -> y (N, C, L), mean (C,), var (C,) (biased).
    xhat = (x - mean) / sqrt(var + eps),  y = gamma * xhat + beta.
    Returns ``(y, mean, var, saved)``; ``saved`` = (xhat, inv_std) for backward.
    """
    xp = _xp(x)
    mean = x.mean(axis=(0, 2))
    var = x.var(axis=(0, 2))
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat = (x - mean[:, None]) * inv_std[:, None]
    y = gamma[:, None] * xhat + beta[:, None]
    return y, mean, var, (xhat, inv_std)


def batch_norm_backward(dy, gamma, saved):
    """Gradients of :func:`batch_norm_forward` (M = N*L values per channel).

    dbeta = sum(dy),  dgamma = sum(dy * xhat),
    dx = gamma * inv_std / M * (M*dy - dbeta - xhat * dgamma).
    """
    xhat, inv_std = saved
    m = dy.shape[0] * dy.shape[2]
    dbeta = dy.sum(axis=(0, 2))
    dgamma = (dy * xhat).sum(axis=(0, 2))
    scale = (gamma * inv_std / m)[:, None]
    dx = scale * (m * dy - dbeta[:, None] - xhat * dgamma[:, None])
    return dx, dgamma, dbeta


# --- ReLU ----------------------------------------------------------------------
def relu_forward(x):
    """y = max(x, 0)"""
    return _xp(x).maximum(x, 0)


def relu_backward(dy, y):
    """dx = dy where the output was positive, else 0."""
    return dy * (y > 0)


# --- Adam ---------------------------------------------------------------------
def adam_step(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay, decoupled):
    """One Adam/AdamW update, in place on p, m and v (PyTorch's formulas).

    Adam:  g += wd * p.   AdamW: p *= 1 - lr * wd.
    m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """
    xp = _xp(p)
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * p
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    p -= lr * m_hat / (xp.sqrt(v_hat) + eps)


# --- inference: convolution + bias + ReLU + 2x2 max-pool (tinycnn/fuse.py) ----------
def prepare_conv2d(w, b, stride, pad):
    """What :func:`conv2d_inference` needs of one layer, computed once when a model is fused.

    Here that is the weights and geometry as they are; the faster kernel sets keep
    transformed weights and reusable buffers in it.
    """
    return (w, b, stride, pad)


def conv2d_inference(x, prepared, relu: bool, pool: bool):
    """y = maxpool_2x2(relu(conv(x, w) + b)), the ReLU and the pooling each optional.

    x (N, C, H, W) -> y (N, O, OH, OW), or (N, O, OH // 2, OW // 2) with ``pool``.
    (ReLU and max-pooling commute: both are monotonic.)
    """
    w, b, stride, pad = prepared
    y, _ = conv2d_forward(x, w, b, stride, pad)
    if relu:
        y = relu_forward(y)
    if pool:
        y, _ = max_pool2d_forward(y, (2, 2), (2, 2), (0, 0))
    return y
