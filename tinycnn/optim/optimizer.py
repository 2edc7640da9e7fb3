from __future__ import annotations

from ..nn.module import Parameter


class Optimizer:
    """Holds a list of parameters and a learning rate ``lr`` that schedules may change."""

    def __init__(self, params, lr: float):
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.step_count += 1
        for index, p in enumerate(self.params):
            if p.grad is not None:
                self.update(index, p)

    def update(self, index: int, p: Parameter) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Step count, learning rate and per-parameter buffers (host arrays), for checkpoints."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError
