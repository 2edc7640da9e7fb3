"""Weight initialization as Keras and PyTorch do it.

fan_in = in_channels * KH * KW (or in_features), fan_out = out_channels * KH * KW.
- He (Kaiming) uniform: U(-b, b), b = sqrt(6 / fan_in)      (for ReLU networks)
- He normal:            N(0, 2 / fan_in)
- Glorot (Xavier) uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out))   (Keras' default)
Values are drawn on the host from the seeded generator (``tinycnn.random``).
"""
from __future__ import annotations

import math

import numpy

from . import random


def fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in) or (out, in, KH, KW)."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def he_uniform(shape, dtype=numpy.float32) -> numpy.ndarray:
    bound = math.sqrt(6.0 / fans(shape)[0])
    return random.rng().uniform(-bound, bound, size=shape).astype(dtype)


def he_normal(shape, dtype=numpy.float32) -> numpy.ndarray:
    std = math.sqrt(2.0 / fans(shape)[0])
    return (random.rng().standard_normal(size=shape) * std).astype(dtype)


def glorot_uniform(shape, dtype=numpy.float32) -> numpy.ndarray:
    fan_in, fan_out = fans(shape)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return random.rng().uniform(-bound, bound, size=shape).astype(dtype)


def uniform_bias(fan_in: int, size: int, dtype=numpy.float32) -> numpy.ndarray:
    """PyTorch's bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return random.rng().uniform(-bound, bound, size=size).astype(dtype)


INITIALIZERS = {"he_uniform": he_uniform, "he_normal": he_normal,
                "glorot_uniform": glorot_uniform}
