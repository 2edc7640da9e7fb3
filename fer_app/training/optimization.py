"""The optimizer and learning-rate schedule a training run's settings name, and how they
step (per batch for onecycle, per epoch for the others) and resume."""
from __future__ import annotations

import math

from tinycnn import nn, optim


def build_optimizer(model: nn.Module, settings: dict) -> optim.Optimizer:
    name, lr, decay = settings["optimizer"], settings["lr"], settings["weight_decay"]
    if name == "sgd":
        return optim.SGD(model.parameters(), lr, momentum=settings["momentum"],
                         weight_decay=decay, nesterov=settings["momentum"] > 0)
    if name == "adamw":
        return optim.AdamW(model.parameters(), lr, weight_decay=decay)
    if name == "rmsprop":
        return optim.RMSprop(model.parameters(), lr, weight_decay=decay)
    return optim.Adam(model.parameters(), lr, weight_decay=decay)


def build_scheduler(optimizer: optim.Optimizer, settings: dict, steps_per_epoch: int):
    """The learning-rate schedule (None for "none"). onecycle steps per batch, the others
    per epoch; step: x0.1 at 1/3 and 2/3 of the run; plateau: x0.5 after 3 epochs
    without a lower validation loss."""
    name, epochs = settings["schedule"], settings["epochs"]
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        return optim.OneCycleLR(optimizer, settings["lr"], total_steps=epochs * steps_per_epoch)
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    if name == "plateau":
        return optim.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    return None


def resync_learning_rate(scheduler) -> None:
    """Set the optimizer's lr from the schedule's position, recomputed with the current
    settings: the same lr when --epochs is unchanged, the stretched schedule's lr when a
    resumed run was given more epochs. (Each schedule's step() advances its counter, then
    sets the lr for the new position, so step back one and step again.)"""
    if isinstance(scheduler, optim.OneCycleLR):
        scheduler.step_num -= 1
        scheduler.step()
    elif isinstance(scheduler, (optim.CosineAnnealingLR, optim.StepLR)):
        scheduler.epoch -= 1
        scheduler.step()


def step_scheduler(scheduler, val_loss: float) -> None:
    """Per-epoch schedules step here (onecycle steps per batch in train_epoch)."""
    if isinstance(scheduler, optim.ReduceLROnPlateau):
        scheduler.step(val_loss)
    elif scheduler is not None and not isinstance(scheduler, optim.OneCycleLR):
        scheduler.step()
