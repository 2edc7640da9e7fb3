"""Inference mode: a trained Sequential turned into a few array steps, batch norm folded
into the weights and bias + ReLU + max-pool done in the convolution's output pass.

    fused = tinycnn.fuse(model)       # model: a trained nn.Sequential (left as it is)
    logits = fused(x)                 # x (N, C, H, W): an array (or Tensor) -> an array

What changes, and why the numbers stay the same (up to float32 rounding):

- Batch norm in eval mode is an affine map of each channel:
      bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta = s * z + (beta - s * mean),
      s = gamma / sqrt(var + eps).
  Right after a convolution or dense layer  z = w x + b  it folds into the weights:
      w'[o] = w[o] * s[o],   b' = (b - mean) * s + beta      (b = 0 for a layer without bias).
  A batch norm anywhere else (after pooling, say) stays as the step  s * z + (beta - s * mean).
- Conv2d [BatchNorm2d] [ReLU] [MaxPool2d 2x2] become one call of the kernel set's
  ``conv2d_inference``: the numba kernels keep pre-transformed weights (the im2col weight
  matrix, the Winograd-domain filters) and scratch arrays, and add the bias, apply the
  ReLU and pool in the one pass that writes the output. Their outputs keep the
  (N, C, H, W) shape but are channels last in memory, which the next convolution reads
  fastest (``kernels/numba_inference.py``); every other step takes any memory layout.
- Linear [BatchNorm1d] [ReLU] become  x @ w'^T + b'  and a ReLU.
- A Residual block's body and shortcut are fused the same way (the body's last batch norm
  folds into its last convolution); the step adds the two and applies the ReLU.
- Dropout is the identity in eval mode and is left out.
- No Tensor, Function or graph: arrays in, arrays out, on the backend of the model's weights.
- BLAS and Numba threads are set for the call by ``tinycnn.threads`` (not by the entry point).

The fused model is a snapshot: later changes to the model's weights do not reach it (fuse
again). It reuses scratch arrays between calls, so call one fused model from one thread
at a time.
"""
from __future__ import annotations

import math

from . import backend
from .functional._pairs import pair
from .functional.conv import conv_padding
from .nn import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU,
                 Residual, Sequential)
from .nn.module import Module
from .tensor import Tensor
from .threads import inference_threads


def fuse(model: Sequential) -> "FusedSequential":
    """The inference-only form of a trained ``model`` (see the module docstring).

    Nested Sequentials are flattened; any layer other than Conv2d, Linear, BatchNorm1d/2d,
    ReLU, MaxPool2d, Flatten, Dropout and Residual is a TypeError.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"fuse takes an nn.Sequential, not {type(model).__name__}")
    weights = model.parameters()[0].data
    owner = backend.of(weights)
    return FusedSequential(_steps(owner, model), owner, weights.dtype)


def _steps(owner: backend.Backend, model: Sequential) -> list:
    """The fused steps of ``model``'s layers, in order."""
    layers = [layer for layer in _layers(model) if not isinstance(layer, Dropout)]
    steps, i = [], 0
    while i < len(layers):
        if isinstance(layers[i], (Conv2d, Linear)):
            step, i = _weighted_step(owner, layers, i)
        else:
            step, i = _single_step(owner, layers[i]), i + 1
        steps.append(step)
    return steps


class FusedSequential:
    """An inference-only model: ``fused(x)`` runs its steps on arrays (no graph)."""

    def __init__(self, steps: list, owner: backend.Backend, dtype):
        self.steps, self.backend, self.dtype = steps, owner, dtype

    def __call__(self, x):
        """x (N, ...) array or Tensor (host arrays are copied to the model's device) -> array."""
        x = self.backend.xp.asarray(x.data if isinstance(x, Tensor) else x, dtype=self.dtype)
        with inference_threads():
            for step in self.steps:
                x = step(x)
        return x

    def __repr__(self) -> str:
        lines = "\n".join(f"  ({i}): {step!r}" for i, step in enumerate(self.steps))
        return f"FusedSequential[{self.backend.name}](\n{lines}\n)"


def batch_norm_affine(bn: BatchNorm1d | BatchNorm2d, xp):
    """(s, t) float64 with bn(z) = s * z + t in eval mode:
    s = gamma / sqrt(var + eps),  t = beta - s * mean."""
    mean, var = bn.running_mean.astype(xp.float64), bn.running_var.astype(xp.float64)
    s = bn.weight.data.astype(xp.float64) / xp.sqrt(var + bn.eps)
    return s, bn.bias.data.astype(xp.float64) - s * mean


def fold_batch_norm(w, b, bn: BatchNorm1d | BatchNorm2d):
    """(w', b') of ``bn(w x + b)``: w'[o] = w[o] * s[o], b' = b * s + t (b = 0 if None), w's dtype.

    w (O, ...) of a convolution (O, C, KH, KW) or dense layer (O, in); b (O,) or None.
    """
    xp = backend.of(w).xp
    s, t = batch_norm_affine(bn, xp)
    w_folded = w.astype(xp.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))
    b_folded = t if b is None else b.astype(xp.float64) * s + t
    return w_folded.astype(w.dtype), b_folded.astype(w.dtype)


# --- the steps -------------------------------------------------------------------------
class ConvStep:
    """maxpool_2x2(relu(conv(x, w) + b)) in one kernel call, the weights prepared once."""

    def __init__(self, owner, w, b, stride, pad, relu: bool, pool: bool):
        self.kernels, self.relu, self.pool = owner.kernels, relu, pool
        self.prepared = owner.kernels.prepare_conv2d(w, b, stride, pad)
        extras = [" + bias"] * (b is not None) + [" + ReLU"] * relu + [" + MaxPool 2x2"] * pool
        o, c, kh, kw = w.shape
        self.description = (f"Conv2d({c}, {o}, kernel_size=({kh}, {kw}), stride={stride}, "
                            f"padding={pad})" + "".join(extras))

    def __call__(self, x):
        return self.kernels.conv2d_inference(x, self.prepared, self.relu, self.pool)

    def __repr__(self) -> str:
        return self.description


class LinearStep:
    """relu(x @ w^T + b): x (N, in) -> (N, out), w^T kept contiguous (in, out)."""

    def __init__(self, owner, w, b, relu: bool):
        self.xp, self.relu = owner.xp, relu
        self.w_t, self.b = owner.xp.ascontiguousarray(w.T), b

    def __call__(self, x):
        y = x @ self.w_t
        if self.b is not None:
            y += self.b
        return self.xp.maximum(y, 0) if self.relu else y

    def __repr__(self) -> str:
        extras = [" + bias"] * (self.b is not None) + [" + ReLU"] * self.relu
        return f"Linear{tuple(self.w_t.shape)}" + "".join(extras)


class AffineStep:
    """A batch norm that could not be folded: y = s * x + t per channel (axis 1)."""

    def __init__(self, owner, bn: BatchNorm1d | BatchNorm2d):
        s, t = batch_norm_affine(bn, owner.xp)
        shape = (1, -1) + (1,) * (bn.expected_ndim - 2)         # (1, C) or (1, C, 1, 1)
        dtype = bn.weight.data.dtype
        self.s, self.t = s.astype(dtype).reshape(shape), t.astype(dtype).reshape(shape)

    def __call__(self, x):
        return x * self.s + self.t

    def __repr__(self) -> str:
        return f"ChannelAffine({self.s.size})"


class KernelStep:
    """A layer that stays one kernel call: ReLU or a max-pool that is not fused into a conv."""

    def __init__(self, owner, layer: ReLU | MaxPool2d):
        self.kernels, self.layer = owner.kernels, layer
        if isinstance(layer, MaxPool2d):
            kernel = pair(layer.kernel_size)
            self.pool = (kernel, kernel if layer.stride is None else pair(layer.stride),
                         pair(layer.padding))

    def __call__(self, x):
        if isinstance(self.layer, ReLU):
            return self.kernels.relu_forward(x)
        return self.kernels.max_pool2d_forward(x, *self.pool)[0]

    def __repr__(self) -> str:
        return repr(self.layer)


class ResidualStep:
    """relu(body(x) + shortcut(x)), each branch a list of fused steps (none: the identity)."""

    def __init__(self, owner, block: Residual):
        self.xp = owner.xp
        self.body = _steps(owner, block.body)
        self.shortcut = [] if block.shortcut is None else _steps(owner, block.shortcut)

    def __call__(self, x):
        y, skip = x, x
        for step in self.body:
            y = step(y)
        for step in self.shortcut:
            skip = step(skip)
        return self.xp.maximum(y + skip, 0)

    def __repr__(self) -> str:
        body = ", ".join(map(repr, self.body))
        shortcut = ", ".join(map(repr, self.shortcut)) or "identity"
        return f"Residual(body=[{body}], shortcut=[{shortcut}])"


class FlattenStep:
    """(N, C, H, W) -> (N, C*H*W), a view."""

    def __call__(self, x):
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))   # -1 fails for N = 0

    def __repr__(self) -> str:
        return "Flatten()"


def _weighted_step(owner, layers: list[Module], i: int):
    """(step, index after it) for the Conv2d or Linear at ``layers[i]`` together with the
    BatchNorm, the ReLU and (after a Conv2d) the 2x2 MaxPool2d that directly follow it."""
    layer = layers[i]
    w, b = layer.weight.data, None if layer.bias is None else layer.bias.data
    i += 1
    if _next_is(layers, i, (BatchNorm1d, BatchNorm2d)):
        w, b = fold_batch_norm(w, b, layers[i])
        i += 1
    relu = _next_is(layers, i, ReLU)
    i += relu
    if isinstance(layer, Linear):
        return LinearStep(owner, w, b, relu), i
    pool = _next_is(layers, i, MaxPool2d) and _is_2x2_pool(layers[i])
    i += pool
    stride = pair(layer.stride)
    pad = conv_padding(layer.padding, w.shape[2:], stride)
    return ConvStep(owner, w, b, stride, pad, relu, pool), i


def _next_is(layers: list[Module], i: int, kind) -> bool:
    return i < len(layers) and isinstance(layers[i], kind)


def _single_step(owner, layer: Module):
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        return AffineStep(owner, layer)
    if isinstance(layer, (ReLU, MaxPool2d)):
        return KernelStep(owner, layer)
    if isinstance(layer, Flatten):
        return FlattenStep()
    if isinstance(layer, Residual):
        return ResidualStep(owner, layer)
    raise TypeError(f"fuse does not know the layer {type(layer).__name__}")


def _is_2x2_pool(pool: MaxPool2d) -> bool:
    stride = pool.kernel_size if pool.stride is None else pool.stride
    return pair(pool.kernel_size) == (2, 2) and pair(stride) == (2, 2) and pair(pool.padding) == (0, 0)


def _layers(model: Sequential) -> list[Module]:
    """The layers of ``model`` in order, nested Sequentials opened."""
    layers = []
    for layer in model:
        layers.extend(_layers(layer) if isinstance(layer, Sequential) else [layer])
    return layers
