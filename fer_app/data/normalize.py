"""Turn grey faces into network input, the same way in training and prediction.

mode="per_image":  x' = (x - mean(x)) / max(std(x), 1)   per face (no fitting; robust to lighting)
mode="dataset":    x' = (x - mean) / std                  with mean, std of the training pixels

The result is float32 (N, 1, 48, 48). ``to_dict()`` gives a JSON-ready dict that is
stored in the model file, and ``Normalizer.from_dict`` rebuilds the same normalizer.
"""
from __future__ import annotations

import numpy as np

MODES = ("per_image", "dataset")
MIN_STD = 1.0  # in grey levels: a flat face is centred, not blown up


class Normalizer:
    """Per-image standardization, or one mean/std fitted on the training images."""

    def __init__(self, mode: str = "per_image", mean: float | None = None, std: float | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.mean = None if mean is None else float(mean)
        self.std = None if std is None else float(std)

    def fit(self, images: np.ndarray) -> Normalizer:
        """Learn mean and std of all pixels of ``images`` (N, 48, 48) (dataset mode); returns self."""
        if self.mode == "dataset":
            pixels = np.asarray(images, dtype=np.float64)
            self.mean = float(pixels.mean())
            self.std = max(float(pixels.std()), MIN_STD)
        return self

    def apply(self, images: np.ndarray) -> np.ndarray:
        """images (N, 48, 48) uint8 or float grey levels -> float32 (N, 1, 48, 48)."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"expected images of shape (N, H, W), got {x.shape}")
        if self.mode == "per_image":
            mean = x.mean(axis=(1, 2), keepdims=True)  # (N, 1, 1)
            std = np.maximum(x.std(axis=(1, 2), keepdims=True), MIN_STD)
        else:
            if self.mean is None or self.std is None:
                raise ValueError("dataset normalizer used before fit()")
            mean, std = self.mean, self.std
        return ((x - mean) / std)[:, None].astype(np.float32)

    def to_dict(self) -> dict:
        """{"mode", "mean", "std"}: plain JSON values."""
        return {"mode": self.mode, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        """The normalizer ``to_dict`` described; a ValueError for anything else (a model
        file's metadata may have been edited by hand)."""
        if not isinstance(d, dict) or d.get("mode") not in MODES:
            raise ValueError(f"expected {{'mode': one of {MODES}, 'mean', 'std'}}, got {d!r}")
        mean, std = d.get("mean"), d.get("std")
        if d["mode"] == "dataset":
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mean, std))
            if not numbers or not np.isfinite([mean, std]).all() or std <= 0:
                raise ValueError(f"dataset normalization needs a finite mean and a positive std, "
                                 f"got mean={mean!r}, std={std!r}")
        return cls(d["mode"], mean, std)

    def __repr__(self) -> str:
        return f"Normalizer(mode={self.mode!r}, mean={self.mean}, std={self.std})"
