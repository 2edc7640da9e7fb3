"""seed002: the second seed project's 6-class network (no "disgust").

Published description: Conv 15 5x5, MaxPool, Conv 15 5x5, Dropout, Conv 10 5x5,
Conv 5 3x3, Dense 1000, softmax over 6 classes, ReLU everywhere before the softmax.

Choices where the description is silent: "valid" convolutions (no padding, the
Keras default), MaxPool 2x2, Dropout 0.3, and ReLU after every convolution and
after Dense 1000. Shapes: (N, 1, 48, 48) -> conv 44 -> pool 22 -> conv 18 ->
conv 14 -> conv (N, 5, 12, 12) -> Flatten (N, 720) -> (N, 1000) -> (N, K).
Built for ``num_classes=6`` (train it with ``--classes 6``); other class counts
only change the last layer. The model returns logits (softmax is in the loss).
737k parameters, 8 MFLOPs per image.
"""
from __future__ import annotations

from tinycnn import nn


def seed002(num_classes: int = 6) -> nn.Sequential:
    """(N, 1, 48, 48) -> logits (N, num_classes)."""
    return nn.Sequential(
        nn.Conv2d(1, 15, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(15, 15, 5), nn.ReLU(), nn.Dropout(0.3),
        nn.Conv2d(15, 10, 5), nn.ReLU(),
        nn.Conv2d(10, 5, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 12 * 12, 1000), nn.ReLU(),
        nn.Linear(1000, num_classes),
    )
