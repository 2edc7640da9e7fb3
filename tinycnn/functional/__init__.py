"""Functional operations: ``tinycnn.functional.conv2d(x, w, b)`` and friends.

One file per concept; each holds a :class:`~tinycnn.tensor.Function` with its
forward and backward, and the function users call.
"""
from .activation import log_softmax, relu, softmax
from .batchnorm import batch_norm
from .conv import conv2d
from .distillation import soft_target_kl
from .dropout import dropout
from .linear import linear
from .loss import softmax_cross_entropy
from .pool import max_pool2d
from .shape import flatten

__all__ = ["batch_norm", "conv2d", "dropout", "flatten", "linear", "log_softmax",
           "max_pool2d", "relu", "soft_target_kl", "softmax", "softmax_cross_entropy"]
