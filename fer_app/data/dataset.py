"""The in-memory data set every loader returns, and the error every loader raises.

A ``Dataset`` holds grey 48x48 faces, their integer labels, the class names those
labels index, and (when the source has one) the split name of every row
("Training", "PublicTest", "PrivateTest"). Class names travel with the data, so no
other file needs to know which index means which emotion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cli import UserError

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
IMAGE_SIZE = 48
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE


class DataError(UserError):
    """Bad or missing data. The message names the file, the line or image, and what is wrong."""


@dataclass
class Dataset:
    """Faces, labels and class names (plus the split of each row, if known).

    ``skipped`` counts the bad rows/images left out when loading with ``skip_bad=True``.
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, indexes class_names
    class_names: list[str]
    usage: np.ndarray | None = None  # (N,) str split name per row, or None
    skipped: int = 0

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.images.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 ({n}, 48, 48), got "
                             f"{self.images.dtype} {self.images.shape}")
        if self.usage is not None and len(self.usage) != n:
            raise ValueError(f"usage has {len(self.usage)} entries for {n} rows")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> Dataset:
        """The rows ``rows`` (an index array or boolean mask) as a new Dataset."""
        usage = None if self.usage is None else self.usage[rows]
        return Dataset(self.images[rows], self.labels[rows], list(self.class_names), usage)

    def class_counts(self) -> np.ndarray:
        """Number of rows per class: (K,) int64, in class_names order."""
        return np.bincount(self.labels, minlength=len(self.class_names))
