"""The architectures fer_app can train, by name.

    model = build_model("vgg_fer", num_classes=7)    # (N, 1, 48, 48) -> logits (N, 7)

Every architecture is a function ``num_classes -> tinycnn.nn.Sequential`` taking
48x48 grey faces and returning logits (the softmax lives in the loss).
"""
from __future__ import annotations

from typing import Callable

from tinycnn import nn

from .resnet_fer import resnet_fer
from .seed001 import seed001
from .seed002 import seed002
from .seed004 import seed004
from .vgg_fer import vgg_fer, vgg_fer_small, vgg_fer_wide

ARCHITECTURES: dict[str, Callable[[int], nn.Sequential]] = {
    "seed001": seed001,
    "seed002": seed002,
    "seed004": seed004,
    "vgg_fer": vgg_fer,
    "vgg_fer_wide": vgg_fer_wide,
    "vgg_fer_small": vgg_fer_small,
    "resnet_fer": resnet_fer,
}
DEFAULT_ARCH = "vgg_fer"
INPUT_SHAPE = (1, 48, 48)  # (C, H, W) of one face


def build_model(name: str, num_classes: int = 7) -> nn.Sequential:
    """A freshly initialized model of architecture ``name`` with ``num_classes`` outputs."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](num_classes)


__all__ = ["ARCHITECTURES", "DEFAULT_ARCH", "INPUT_SHAPE", "build_model"]
