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
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, eta_min
        self.base_lr, self.epoch = optimizer.lr, 0

    def step(self) -> None:
        self.epoch += 1
        progress = min(self.epoch, self.T_max) / self.T_max
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


class OneCycleLR:
    """Warm up linearly from max_lr/div_factor to max_lr over ``pct_start`` of the steps,
    then anneal with a cosine to max_lr/(div_factor*final_div_factor). Step per batch."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4):
        self.optimizer, self.max_lr, self.total_steps = optimizer, max_lr, total_steps
        self.start_lr = max_lr / div_factor
        self.end_lr = self.start_lr / final_div_factor
        self.warmup_steps = max(1, int(pct_start * total_steps))
        self.step_num = 0
        optimizer.lr = self.start_lr

    def lr_at(self, step: int) -> float:
        if step <= self.warmup_steps:
            return self.start_lr + (self.max_lr - self.start_lr) * step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.end_lr + (self.max_lr - self.end_lr) * (1 + math.cos(math.pi * progress)) / 2

    def step(self) -> None:
        self.step_num += 1
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
