"""Fully connected (dense) layer."""
from __future__ import annotations

from ..tensor import Function, Tensor


class Linear(Function):
    """y = x @ w.T + b.

    x (N, in), w (out, in), b (out,) -> y (N, out);
    dx = dy @ w,  dw = dy.T @ x,  db = sum of dy over N.
    """

    def forward(self, x, w, b=None):
        self.x, self.w, self.has_bias = x, w, b is not None
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, dy):
        dx = dy @ self.w
        dw = dy.T @ self.x
        return (dx, dw, dy.sum(axis=0)) if self.has_bias else (dx, dw)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"linear expects x of shape (N, {weight.shape[1]}), got {x.shape}")
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)
