"""seed004: the fourth seed project's network (trained there with Adam lr 1e-3 and
categorical cross-entropy).

Published description: 4 conv blocks Conv(64, 3x3), Conv(128, 5x5), Conv(512, 3x3),
Conv(512, 3x3), each BatchNorm, ReLU, MaxPool 2x2, Dropout; Dense 256 and Dense 512
each with BatchNorm, ReLU, Dropout; Dense 7 softmax.

Choices where the description is silent: "same" padding, Dropout 0.25 everywhere
(the common Keras value in FER tutorials). Shapes: (N, 1, 48, 48) -> 24 -> 12 -> 6
-> (N, 512, 3, 3) -> Flatten (N, 4608) -> (N, 256) -> (N, 512) -> (N, K).
The model returns logits (softmax is in the loss). 4.47M parameters, 0.58 GFLOPs
per image.
"""
from __future__ import annotations

from tinycnn import nn

DROPOUT = 0.25


def conv_block(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    """Conv 'same' -> BatchNorm -> ReLU -> MaxPool 2 -> Dropout."""
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding="same"),
            nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(DROPOUT)]


def dense_block(in_features: int, out_features: int) -> list[nn.Module]:
    """Dense -> BatchNorm -> ReLU -> Dropout."""
    return [nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU(),
            nn.Dropout(DROPOUT)]


def seed004(num_classes: int = 7) -> nn.Sequential:
    """(N, 1, 48, 48) -> logits (N, num_classes)."""
    return nn.Sequential(
        *conv_block(1, 64, 3), *conv_block(64, 128, 5), *conv_block(128, 512, 3),
        *conv_block(512, 512, 3),
        nn.Flatten(),
        *dense_block(512 * 3 * 3, 256), *dense_block(256, 512),
        nn.Linear(512, num_classes),
    )
