"""vgg_fer: the project's default network, a compact VGG-style CNN for 48x48 grey faces.

Chosen for accuracy per CPU-second (see ``python -m fer_app.models``):

    input (N, 1, 48, 48)
    block 1: Conv 32 3x3                -> BN -> ReLU -> MaxPool 2   (N, 32, 24, 24)
    block 2: Conv 64 3x3, Conv 64 3x3   (each BN, ReLU) -> MaxPool 2 (N, 64, 12, 12)
    block 3: Conv 128 3x3, Conv 128 3x3 (each BN, ReLU) -> MaxPool 2 (N, 128, 6, 6)
    block 4: Conv 256 3x3, Conv 256 3x3 (each BN, ReLU) -> MaxPool 2 (N, 256, 3, 3)
    Flatten (N, 2304) -> Dropout 0.4 -> Dense 256 -> BN -> ReLU -> Dropout 0.4 -> Dense K

All convolutions use "same" padding and no bias (the BatchNorm that follows
has its own shift). The first block has one convolution only: at 48x48 a second
one would cost as much as a whole later block for little gain. The spatial 3x3
map is kept (flattened, not averaged) because where a feature sits on a face
(eyes vs mouth) matters for expressions. About 1.75M parameters and 0.19 GFLOPs
(multiply-adds x 2) per image.
"""
from __future__ import annotations

from tinycnn import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 'same' convolution without bias, then BatchNorm and ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding="same", bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


def vgg_fer(num_classes: int = 7) -> nn.Sequential:
    """The default architecture: (N, 1, 48, 48) -> logits (N, num_classes)."""
    return nn.Sequential(
        *conv_bn_relu(1, 32), nn.MaxPool2d(2),
        *conv_bn_relu(32, 64), *conv_bn_relu(64, 64), nn.MaxPool2d(2),
        *conv_bn_relu(64, 128), *conv_bn_relu(128, 128), nn.MaxPool2d(2),
        *conv_bn_relu(128, 256), *conv_bn_relu(256, 256), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.4),
        nn.Linear(256 * 3 * 3, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(256, num_classes),
    )
