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

``vgg_fer_wide`` is the same network with every layer 1.5 times as wide
(48, 96x2, 192x2, 384x2, Dense 384): about 3.9M parameters and 0.44 GFLOPs.
``vgg_fer_small`` is half as wide (16, 32x2, 64x2, 128x2, Dense 128): about 0.44M
parameters and 0.05 GFLOPs, a student for distillation (fer_app/training/distill.py).
"""
from __future__ import annotations

from tinycnn import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 'same' convolution without bias, then BatchNorm and ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding="same", bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


def vgg_fer(num_classes: int = 7, width: int = 32) -> nn.Sequential:
    """The default architecture: (N, 1, 48, 48) -> logits (N, num_classes).

    ``width`` is the first block's channel count; the blocks have width, 2*width,
    4*width and 8*width channels, the hidden dense layer 8*width units.
    """
    c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
    return nn.Sequential(
        *conv_bn_relu(1, c1), nn.MaxPool2d(2),
        *conv_bn_relu(c1, c2), *conv_bn_relu(c2, c2), nn.MaxPool2d(2),
        *conv_bn_relu(c2, c3), *conv_bn_relu(c3, c3), nn.MaxPool2d(2),
        *conv_bn_relu(c3, c4), *conv_bn_relu(c4, c4), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.4),
        nn.Linear(c4 * 3 * 3, c4, bias=False), nn.BatchNorm1d(c4), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(c4, num_classes),
    )


def vgg_fer_wide(num_classes: int = 7) -> nn.Sequential:
    """vgg_fer 1.5 times as wide: (N, 1, 48, 48) -> logits (N, num_classes)."""
    return vgg_fer(num_classes, width=48)


def vgg_fer_small(num_classes: int = 7) -> nn.Sequential:
    """vgg_fer half as wide: (N, 1, 48, 48) -> logits (N, num_classes)."""
    return vgg_fer(num_classes, width=16)
