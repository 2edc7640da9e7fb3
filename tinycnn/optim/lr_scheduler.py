"""Learning-rate schedules. Call ``scheduler.step()`` once per epoch (OneCycleLR: per batch)."""
from __future__ import annotations

import math

from .optimizer import Optimizer


class StepLR:
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class CosineAnnealingLR:
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    As PyTorch, the cosine goes on past T_max (back up towards base_lr at 2 * T_max).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, eta_min
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        cosine = (1 + math.cos(math.pi * self.epoch / self.T_max)) / 2
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * cosine


class OneCycleLR:
    """PyTorch's one-cycle schedule (two phases); call ``step()`` once per batch.

    initial_lr = max_lr / div_factor, min_lr = initial_lr / final_div_factor.
    Phase 1, steps 0 .. pct_start * total_steps - 1: initial_lr -> max_lr.
    Phase 2, up to step total_steps - 1: max_lr -> min_lr.
    Within a phase at fraction f: cos: end + (start - end) * (1 + cos(pi * f)) / 2,
    linear: start + (end - start) * f.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, anneal_strategy: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4):
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be 'cos' or 'linear'")
        self.optimizer, self.total_steps = optimizer, total_steps
        self.anneal_strategy = anneal_strategy
        self.initial_lr = max_lr / div_factor
        self.max_lr = max_lr
        self.min_lr = self.initial_lr / final_div_factor
        self.warmup_end = float(pct_start * total_steps) - 1   # last step of phase 1
        self.step_num = 0
        optimizer.lr = self.initial_lr

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "linear":
            return start + (end - start) * fraction
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2

    def lr_at(self, step: int) -> float:
        if step <= self.warmup_end:
            return self._anneal(self.initial_lr, self.max_lr, step / self.warmup_end)
        fraction = (step - self.warmup_end) / (self.total_steps - 1 - self.warmup_end)
        return self._anneal(self.max_lr, self.min_lr, fraction)

    def step(self) -> None:
        self.step_num += 1
        if self.step_num > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {self.step_num} times, more than "
                             f"total_steps={self.total_steps}")
        self.optimizer.lr = self.lr_at(self.step_num)


class ReduceLROnPlateau:
    """Multiply lr by ``factor`` when the watched value (e.g. validation loss) has not
    improved by more than ``threshold`` (relative) for ``patience`` epochs."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, min_lr: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.threshold, self.min_lr = patience, threshold, min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best * (1 - self.threshold)
        return value > self.best * (1 + self.threshold)

    def step(self, value: float) -> None:
        if self._improved(value):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.bad_epochs = 0
