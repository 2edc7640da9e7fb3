"""Elementwise, reduction, shape and matmul operations.

Each operation is a small :class:`~tinycnn.tensor.Function` with its backward
right beside its forward, and a lower-case function that applies it. Binary
operations broadcast like NumPy; their backward sums the gradient back to each
input's shape (:func:`sum_to`).
"""
from __future__ import annotations

import numbers

from .tensor import Function, Tensor
from . import backend


def sum_to(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get ``shape``."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Add(Function):
    """y = a + b"""
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, dy):
        return sum_to(dy, self.a_shape), sum_to(dy, self.b_shape)


class Sub(Function):
    """y = a - b"""
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, dy):
        return sum_to(dy, self.a_shape), sum_to(-dy, self.b_shape)


class Mul(Function):
    """y = a * b;  da = dy * b,  db = dy * a"""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, dy):
        return sum_to(dy * self.b, self.a.shape), sum_to(dy * self.a, self.b.shape)


class Div(Function):
    """y = a / b;  da = dy / b,  db = -dy * a / b^2"""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, dy):
        da = dy / self.b
        db = -dy * self.a / (self.b * self.b)
        return sum_to(da, self.a.shape), sum_to(db, self.b.shape)


class Neg(Function):
    """y = -x"""
    def forward(self, x):
        return -x

    def backward(self, dy):
        return -dy


class Power(Function):
    """y = x ** p for a constant number p;  dx = dy * p * x^(p-1)"""
    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, dy):
        return dy * self.exponent * self.x ** (self.exponent - 1)


class Exp(Function):
    """y = exp(x);  dx = dy * y"""
    def forward(self, x):
        self.y = backend.of(x).xp.exp(x)
        return self.y

    def backward(self, dy):
        return dy * self.y


class Log(Function):
    """y = log(x);  dx = dy / x"""
    def forward(self, x):
        self.x = x
        return backend.of(x).xp.log(x)

    def backward(self, dy):
        return dy / self.x


class MatMul(Function):
    """y = a @ b for 2-D a (m, k) and b (k, n);  da = dy @ b.T,  db = a.T @ dy"""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, dy):
        return dy @ self.b.T, self.a.T @ dy


class Sum(Function):
    """y = x.sum(axis);  dx = dy broadcast back to x's shape"""
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return backend.of(x).xp.asarray(x.sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, dy):
        xp = backend.of(dy).xp
        if not self.keepdims and self.axis is not None:
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            dy = xp.expand_dims(dy, tuple(a % len(self.x_shape) for a in axes))
        return xp.broadcast_to(dy, self.x_shape).copy()


class Reshape(Function):
    """y = x.reshape(shape);  dx = dy.reshape(x.shape)"""
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class Transpose(Function):
    """y = x.transpose(axes);  dx = dy.transpose(inverse of axes)"""
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        if not self.axes:
            return x.T
        self.axes = tuple(axis % x.ndim for axis in self.axes)   # -1 -> ndim - 1
        return x.transpose(self.axes)

    def backward(self, dy):
        if not self.axes:
            return dy.T
        inverse = sorted(range(len(self.axes)), key=lambda i: self.axes[i])
        return dy.transpose(inverse)


def add(a, b) -> Tensor: return Add()(a, b)
def sub(a, b) -> Tensor: return Sub()(a, b)
def mul(a, b) -> Tensor: return Mul()(a, b)
def div(a, b) -> Tensor: return Div()(a, b)
def neg(x) -> Tensor: return Neg()(x)
def exp(x) -> Tensor: return Exp()(x)
def log(x) -> Tensor: return Log()(x)


def power(x, exponent: float) -> Tensor:
    if not isinstance(exponent, numbers.Real):
        raise TypeError(f"x ** p needs a constant number p, got {type(exponent).__name__}")
    return Power(exponent)(x)


def matmul(a, b) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul multiplies 2-D tensors, got shapes {a.shape} and {b.shape}")
    return MatMul()(a, b)
def sum(x, axis=None, keepdims=False) -> Tensor: return Sum(axis, keepdims)(x)  # noqa: A001


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Sum divided by the number of summed elements."""
    shape = x.shape
    axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    count = 1
    for a in axes:
        count *= shape[a]
    return Sum(axis, keepdims)(x) * (1.0 / count)


def reshape(x, *shape) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape(tuple(shape))(x)


def transpose(x, *axes) -> Tensor:
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return Transpose(tuple(axes) if axes else None)(x)
