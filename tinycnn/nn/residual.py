"""Residual: the block of residual networks (He et al., "Deep Residual Learning", 2016).

    y = relu(body(x) + shortcut(x))        shortcut(x) = x when no shortcut is given

x (N, C, H, W) -> y (N, O, H', W'): the body (e.g. conv-BN-ReLU-conv-BN) and the shortcut
must give the same shape; with the identity shortcut the body keeps x's shape, otherwise
the shortcut is usually a 1x1 convolution and batch norm that makes C into O channels.

Backward needs no code of its own. With g = dL/dy * [body(x) + shortcut(x) > 0]
(ReLU's backward), the sum hands g unchanged to both branches, and x collects

    dL/dx = body'(x)^T g + shortcut'(x)^T g       (identity shortcut: body'(x)^T g + g)

The autograd adds the two because x feeds two functions (``Tensor.backward`` sums the
gradients that reach a tensor before passing them on). The identity path is why deep
residual networks train: g reaches early layers without passing through every weight.
"""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module, Sequential


class Residual(Module):
    """relu(body(x) + shortcut(x)); ``shortcut`` None is the identity (see the module docstring)."""

    def __init__(self, body: Sequential, shortcut: Sequential | None = None):
        super().__init__()
        if not isinstance(body, Sequential) or not isinstance(shortcut, (Sequential, type(None))):
            raise TypeError("Residual takes an nn.Sequential body and an nn.Sequential or None "
                            "shortcut")
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + skip)
