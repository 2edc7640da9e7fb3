"""seed001: the first seed project's network.

Published description: 4 conv blocks with 64, 128, 128, 512 filters, each ReLU,
MaxPool (stride 2), BatchNorm; Flatten; Dense 4096 ReLU; Dropout 0.3; Dense 7 softmax.

Choices where the description is silent: 3x3 kernels with "same" padding,
MaxPool 2x2, and the block order exactly as written (Conv -> ReLU -> MaxPool ->
BatchNorm). Shapes: (N, 1, 48, 48) -> 24 -> 12 -> 6 -> (N, 512, 3, 3) ->
Flatten (N, 4608) -> (N, 4096) -> (N, K). The softmax is part of the loss
(``softmax_cross_entropy``), so the model returns logits. 19.7M parameters (almost
all in the 4608x4096 dense layer), 0.21 GFLOPs per image.
"""
from __future__ import annotations

from tinycnn import nn


def conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    """Conv 3x3 'same' -> ReLU -> MaxPool 2 -> BatchNorm."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding="same"), nn.ReLU(),
            nn.MaxPool2d(2), nn.BatchNorm2d(out_channels)]


def seed001(num_classes: int = 7) -> nn.Sequential:
    """(N, 1, 48, 48) -> logits (N, num_classes)."""
    return nn.Sequential(
        *conv_block(1, 64), *conv_block(64, 128), *conv_block(128, 128), *conv_block(128, 512),
        nn.Flatten(),
        nn.Linear(512 * 3 * 3, 4096), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(4096, num_classes),
    )
