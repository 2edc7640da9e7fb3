"""Layers with PyTorch's names, arguments and defaults."""
from .activation import Flatten, ReLU
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .linear import Linear
from .module import Module, Parameter, Sequential
from .pool import MaxPool2d
from .residual import Residual

__all__ = ["BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Linear",
           "MaxPool2d", "Module", "Parameter", "ReLU", "Residual", "Sequential"]
