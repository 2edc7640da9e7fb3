"""Optimizers and learning-rate schedules, with PyTorch's update formulas."""
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Optimizer", "StepLR", "CosineAnnealingLR", "OneCycleLR",
           "ReduceLROnPlateau"]
