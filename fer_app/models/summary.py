"""Layer-by-layer table of a Sequential model: output shape, parameters, FLOPs.

FLOPs are counted for one image as 2 x the multiply-adds of convolutions and
dense layers (batch norm, ReLU, pooling, dropout and residual sums add well under 1%):
    Conv2d: 2 * OH * OW * O * C * KH * KW      Linear: 2 * in * out
A Residual block's row holds the FLOPs of the layers in its body and shortcut.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinycnn
from tinycnn import nn


@dataclass
class LayerRow:
    name: str             # e.g. "Conv2d(1, 32, kernel_size=(3, 3), ...)"
    output_shape: tuple   # (C, H, W) or (features,) for one image
    parameters: int
    flops: int


def layer_flops(layer: nn.Module, output_shape: tuple) -> int:
    """FLOPs of one layer for one image, given its output shape (without the batch axis)."""
    if isinstance(layer, nn.Conv2d):
        out_channels, in_channels, kh, kw = layer.weight.shape
        _, oh, ow = output_shape
        return 2 * oh * ow * out_channels * in_channels * kh * kw
    if isinstance(layer, nn.Linear):
        out_features, in_features = layer.weight.shape
        return 2 * in_features * out_features
    return 0


def counted_forward(layer: nn.Module, x: tinycnn.Tensor) -> tuple[tinycnn.Tensor, int]:
    """(layer(x), the FLOPs of one image through it); x (1, C, H, W). A Residual block counts
    the layers of its body and shortcut (blocks inside them included)."""
    flops = 0
    if isinstance(layer, nn.Residual):
        for branch in (layer.body, layer.shortcut or []):
            y = x
            for inner in branch:
                y, inner_flops = counted_forward(inner, y)
                flops += inner_flops
    y = layer(x)
    return y, flops + layer_flops(layer, y.shape[1:])


def layer_name(layer: nn.Module) -> str:
    """repr(layer) on one line: a Residual block is named by its convolutions' channels."""
    if not isinstance(layer, nn.Residual):
        return repr(layer)
    convs = [inner for inner in layer.body if isinstance(inner, nn.Conv2d)]
    channels = " -> ".join([str(convs[0].weight.shape[1])] + [str(c.weight.shape[0]) for c in convs]) \
        if convs else "no convolution"
    shortcut = "identity" if layer.shortcut is None else f"{len(layer.shortcut)} layers"
    return f"Residual(convs {channels}, shortcut {shortcut})"


def summarize(model: nn.Sequential, input_shape: tuple = (1, 48, 48)) -> list[LayerRow]:
    """Run one zero image through ``model`` (eval mode, no graph) and describe every layer."""
    was_training = model.training
    model.eval()
    x = tinycnn.Tensor(np.zeros((1,) + tuple(input_shape), np.float32))  # (1, C, H, W)
    rows = []
    with tinycnn.no_grad():
        for layer in model:
            x, flops = counted_forward(layer, x)
            rows.append(LayerRow(layer_name(layer), x.shape[1:], layer.num_parameters(), flops))
    model.train(was_training)
    return rows


def format_table(rows: list[LayerRow]) -> str:
    """The rows as aligned text, with a total line."""
    lines = [f"{'layer':<62} {'output shape':>16} {'params':>11} {'MFLOPs':>9}"]
    for row in rows:
        lines.append(f"{row.name[:62]:<62} {str(row.output_shape):>16} "
                     f"{row.parameters:>11,} {row.flops / 1e6:>9.2f}")
    total_params = sum(row.parameters for row in rows)
    total_flops = sum(row.flops for row in rows)
    lines.append(f"{'total':<62} {'':>16} {total_params:>11,} {total_flops / 1e6:>9.2f}")
    return "\n".join(lines)
