from __future__ import annotations

from .. import backend
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as PyTorch computes it.

    ``weight_decay`` adds ``wd * p`` to the gradient (L2, PyTorch's Adam);
    with ``decoupled=True`` it shrinks the weights instead, ``p *= 1 - lr * wd``
    (AdamW, Loshchilov & Hutter). The update itself is a backend kernel
    (``adam_step``), fused on the Numba backend.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(params, lr)
        self.betas, self.eps = tuple(betas), eps
        self.weight_decay, self.decoupled = weight_decay, decoupled
        self.m = [backend.of(p.data).xp.zeros_like(p.data) for p in self.params]
        self.v = [backend.of(p.data).xp.zeros_like(p.data) for p in self.params]

    def update(self, index, p):
        beta1, beta2 = self.betas
        backend.of(p.data).kernels.adam_step(
            p.data, p.grad, self.m[index], self.v[index], self.lr, beta1, beta2, self.eps,
            self.step_count, self.weight_decay, self.decoupled)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step_count": self.step_count,
                "m": [backend.to_numpy(m).copy() for m in self.m],
                "v": [backend.to_numpy(v).copy() for v in self.v]}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.step_count = state["lr"], state["step_count"]
        self.m = [backend.of(p.data).xp.array(m) for m, p in zip(state["m"], self.params)]  # copies
        self.v = [backend.of(p.data).xp.array(v) for v, p in zip(state["v"], self.params)]


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01, as in PyTorch)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)
