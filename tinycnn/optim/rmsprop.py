from __future__ import annotations

from .. import backend
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) with Keras's update rule and defaults, so that a
    Keras recipe that names no optimizer (``model.compile`` defaults to RMSprop) can be
    reproduced:

    v = rho * v + (1 - rho) * g**2        (v starts at 0)
    p = p - lr * g / sqrt(v + eps)

    ``weight_decay`` adds ``wd * p`` to g first (L2). PyTorch differs only in where eps
    goes (``sqrt(v) + eps``) and in its defaults (rho 0.99, eps 1e-8).
    """

    def __init__(self, params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        self.rho, self.eps, self.weight_decay = rho, eps, weight_decay
        self.v = [backend.of(p.data).xp.zeros_like(p.data) for p in self.params]

    def update(self, index, p):
        xp = backend.of(p.data).xp
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        v = self.v[index]
        v *= self.rho
        v += (1 - self.rho) * g * g
        p.data -= self.lr * g / xp.sqrt(v + self.eps)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step_count": self.step_count,
                "v": [backend.to_numpy(v).copy() for v in self.v]}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.step_count = state["lr"], state["step_count"]
        self.v = [backend.of(p.data).xp.array(v) for v, p in zip(state["v"], self.params)]  # copies
