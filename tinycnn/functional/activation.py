"""ReLU, softmax and log-softmax."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor


class ReLU(Function):
    """y = max(x, 0);  dx = dy * (y > 0)."""

    def forward(self, x):
        self.y = of(x).kernels.relu_forward(x)
        return self.y

    def backward(self, dy):
        return of(dy).kernels.relu_backward(dy, self.y)


class LogSoftmax(Function):
    """y = x - max(x) - log(sum(exp(x - max(x)))) along ``axis`` (stable);
    dx = dy - softmax(x) * sum(dy)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = of(x).xp
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, dy):
        xp = of(dy).xp
        return dy - xp.exp(self.y) * dy.sum(axis=self.axis, keepdims=True)


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max));  dx = y * (dy - sum(dy * y))."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = of(x).xp
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, dy):
        return self.y * (dy - (dy * self.y).sum(axis=self.axis, keepdims=True))


def relu(x: Tensor) -> Tensor:
    return ReLU()(x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax(axis)(x)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax(axis)(x)
