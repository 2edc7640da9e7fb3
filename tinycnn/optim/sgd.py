from __future__ import annotations

from .. import backend
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's update rule.

    g = grad + weight_decay * p
    momentum: buf = g on the first step, then buf = momentum * buf + (1 - dampening) * g;
              g = g + momentum * buf (Nesterov) or g = buf
    p = p - lr * g
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buffers = [None] * len(self.params)

    def update(self, index, p):
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            buf = self.buffers[index]
            if buf is None:
                buf = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            self.buffers[index] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step_count": self.step_count,
                "buffers": [None if b is None else backend.to_numpy(b).copy() for b in self.buffers]}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.step_count = state["lr"], state["step_count"]
        self.buffers = [None if b is None else backend.of(p.data).xp.array(b)  # copies
                        for b, p in zip(state["buffers"], self.params)]
