"""The settings of a training run: every option's default, the augmentation presets, the
checks that turn a bad value into one clear error, and what ``--resume`` may not change.

``fer_app.train`` parses the command line; ``choose_settings`` merges it over the defaults
(and, on ``--resume``, over the settings saved in last.npz).
"""
from __future__ import annotations

import argparse
import math

from ..cli import UsageError, UserError
from ..data.augment import AugmentConfig
from ..models import ARCHITECTURES, DEFAULT_ARCH
from ..recognition.inference import default_backend_name
from .checkpoint import CheckpointError

# Every setting with its default. Command-line options default to None so that on
# --resume only the options given again replace the saved ones.
DEFAULTS = {
    "data": None, "arch": DEFAULT_ARCH, "backend": None, "epochs": 30, "batch_size": 64,
    "lr": 1e-3, "classes": None, "merge_disgust": False, "skip_bad": False, "val_fraction": 0.2,
    "val_split": "PublicTest", "divergence_factor": 10.0,
    "optimizer": "adam", "weight_decay": 0.0, "momentum": 0.9, "schedule": "cosine",
    "label_smoothing": 0.0, "mixup": 0.0, "class_weight": "none", "normalize": "per_image",
    "augment": "standard", "flip": None, "shift": None, "rotation": None, "zoom": None,
    "shear": None, "erase": None, "patience": 0, "seed": 0, "limit": None,
    "init": None, "teacher": None, "teacher_cache": None, "snapshots": False, "distill_alpha": 0.7,
    "distill_temperature": 4.0,
}

AUGMENT_PRESETS = {
    "none": AugmentConfig.none(),
    "light": AugmentConfig(flip=0.5, shift=2, rotation=0.0, zoom=0.0, shear=0.0),
    "standard": AugmentConfig(),
    "strong": AugmentConfig(flip=0.5, shift=6, rotation=15.0, zoom=0.15, shear=8.0, erase=0.25),
}


class TrainError(UserError):
    """A problem the user can fix (bad option, unusable --out folder) or a diverged run."""


class OptionError(TrainError, UsageError):
    """A bad option value (--epochs 0): exit code 2, as argparse gives for the options it checks."""


def choose_settings(args: argparse.Namespace, saved: dict | None) -> dict:
    """DEFAULTS, then the saved settings (on --resume), then the options given now."""
    given = {key: value for key, value in vars(args).items()
             if key in DEFAULTS and value is not None}
    settings = {**DEFAULTS, **(saved or {}), **given}
    if settings["classes"] is None:
        settings["classes"] = 6 if settings["arch"] == "seed002" else 7
    if settings["backend"] is None:
        settings["backend"] = default_backend_name()
    try:
        check_settings(settings)
        augment_config(settings)
    except TrainError as error:
        raise OptionError(str(error)) from None
    return settings


def check_settings(settings: dict) -> None:
    numbers = ["lr", "weight_decay", "momentum", "mixup", "label_smoothing", "val_fraction",
               "distill_alpha", "distill_temperature"] + [
        key for key in ("flip", "rotation", "zoom", "shear", "erase") if settings[key] is not None]
    for key in numbers:
        if not math.isfinite(settings[key]):
            raise TrainError(f"--{key.replace('_', '-')} must be a finite number, got {settings[key]}")
    positive = ["epochs", "batch_size", "lr"] + (["limit"] if settings["limit"] is not None else [])
    for key in positive:
        if not settings[key] > 0:
            raise TrainError(f"--{key.replace('_', '-')} must be positive, got {settings[key]}")
    if settings["batch_size"] < 2:
        raise TrainError("--batch-size must be at least 2: batch norm needs more than one image per batch")
    if settings["mixup"] < 0:
        raise TrainError(f"--mixup must be >= 0, got {settings['mixup']}")
    if not 0.0 <= settings["label_smoothing"] < 1.0:
        raise TrainError(f"--label-smoothing must be in [0, 1), got {settings['label_smoothing']}")
    for key in ("weight_decay", "patience", "seed"):
        if settings[key] < 0:
            raise TrainError(f"--{key.replace('_', '-')} must be >= 0, got {settings[key]}")
    if not 0.0 <= settings["momentum"] < 1.0:
        raise TrainError(f"--momentum must be in [0, 1), got {settings['momentum']}")
    if not 0.0 < settings["val_fraction"] < 1.0:
        raise TrainError(f"--val-fraction must be between 0 and 1, got {settings['val_fraction']}")
    if not settings["divergence_factor"] > 1.0:
        raise TrainError(f"--divergence-factor must be above 1, got {settings['divergence_factor']}")
    if not 0.0 <= settings["distill_alpha"] <= 1.0:
        raise TrainError(f"--distill-alpha must be in [0, 1], got {settings['distill_alpha']}")
    if not settings["distill_temperature"] > 0:
        raise TrainError(f"--distill-temperature must be positive, got {settings['distill_temperature']}")


def augment_config(settings: dict) -> AugmentConfig:
    """The preset named by settings["augment"], with any strength flags applied."""
    preset = AUGMENT_PRESETS[settings["augment"]]
    strengths = {key: settings[key] for key in ("flip", "shift", "rotation", "zoom", "shear", "erase")
                 if settings[key] is not None}
    try:
        return AugmentConfig(**{**vars(preset), **strengths})
    except ValueError as error:
        raise TrainError(f"augmentation: {error}") from None


# What a resumed run cannot change: the model's shape, the optimizer's state, the input,
# the faces that choose the best epoch.
FIXED_ON_RESUME = ("arch", "classes", "merge_disgust", "optimizer", "normalize", "val_split")


def check_resume_options(args: argparse.Namespace, saved: dict, last_path: str) -> None:
    """An OptionError if an option given with --resume changes what last.npz was made with;
    a CheckpointError if its saved architecture is unknown here."""
    for key in FIXED_ON_RESUME:
        given = getattr(args, key, None)
        if given is not None and key in saved and given != saved[key]:
            raise OptionError(f"--{key.replace('_', '-')} {given}: the run in {args.out} was "
                              f"trained with {saved[key]}; --resume keeps it (drop the option, or "
                              f"choose another --out)")
    if saved.get("arch") not in ARCHITECTURES:
        raise CheckpointError(f"{last_path}: unknown architecture {saved.get('arch')!r}; it "
                              f"cannot be resumed")
