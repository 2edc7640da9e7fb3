"""resnet_fer: a residual network for 48x48 grey faces, a teacher member unlike vgg_fer.

    input (N, 1, 48, 48)
    stem:    Conv 32 3x3 -> BN -> ReLU -> MaxPool 2                      (N, 32, 24, 24)
    stage 1: Block(32 -> 64, 1x1 shortcut), Block(64) -> MaxPool 2       (N, 64, 12, 12)
    stage 2: Block(64 -> 128, 1x1 shortcut), Block(128) -> MaxPool 2     (N, 128, 6, 6)
    stage 3: Block(128 -> 256, 1x1 shortcut), Block(256) -> MaxPool 2    (N, 256, 3, 3)
    Flatten (N, 2304) -> Dropout 0.4 -> Dense 256 -> BN -> ReLU -> Dropout 0.4 -> Dense K

A Block (``tinycnn.nn.Residual``) is relu(body(x) + shortcut(x)) with the body
Conv 3x3 -> BN -> ReLU -> Conv 3x3 -> BN and the shortcut the identity, or, where the
channel count grows, a 1x1 convolution and BN. Every stage is twice as deep as vgg_fer's
(four 3x3 convolutions instead of two), which the identity paths keep trainable: 13
convolutions in all, as in ResNet-18 but with max-pooling between the stages (stride 1
everywhere, so every 3x3 layer can take the Winograd kernels). The head is vgg_fer's:
where a feature sits on the face matters. About 3.4M parameters and 0.46 GFLOPs per image.
"""
from __future__ import annotations

from tinycnn import nn

from .vgg_fer import conv_bn_relu


def block(in_channels: int, out_channels: int) -> nn.Residual:
    """relu(conv-BN-ReLU-conv-BN(x) + shortcut(x)), 3x3 'same' convolutions without bias;
    the shortcut is a 1x1 conv + BN when the channel count changes, else the identity."""
    body = nn.Sequential(*conv_bn_relu(in_channels, out_channels),
                         nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=False),
                         nn.BatchNorm2d(out_channels))
    shortcut = None
    if in_channels != out_channels:
        shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                 nn.BatchNorm2d(out_channels))
    return nn.Residual(body, shortcut)


def resnet_fer(num_classes: int = 7, width: int = 32) -> nn.Sequential:
    """(N, 1, 48, 48) -> logits (N, num_classes); stages of 2, 4 and 8 times ``width`` channels."""
    c1, c2, c3, c4 = width, 2 * width, 4 * width, 8 * width
    return nn.Sequential(
        *conv_bn_relu(1, c1), nn.MaxPool2d(2),
        block(c1, c2), block(c2, c2), nn.MaxPool2d(2),
        block(c2, c3), block(c3, c3), nn.MaxPool2d(2),
        block(c3, c4), block(c4, c4), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.4),
        nn.Linear(c4 * 3 * 3, c4, bias=False), nn.BatchNorm1d(c4), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(c4, num_classes),
    )
