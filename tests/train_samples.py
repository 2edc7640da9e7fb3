"""Small generated FER-2013-style CSV files for the training and evaluation tests.

Each class k gets a bright horizontal band at rows 6k..6k+5 over a noisy grey face,
so even a few steps of training can tell the classes apart.
"""
from __future__ import annotations

import numpy as np

from fer_app.data.load import EMOTIONS


def make_faces(labels: np.ndarray, seed: int) -> np.ndarray:
    """(N, 48, 48) uint8 faces, one band per label."""
    rng = np.random.default_rng(seed)
    faces = rng.normal(100, 20, (len(labels), 48, 48))
    for face, label in zip(faces, labels):
        face[6 * label:6 * label + 6, :] += 80
    return np.clip(faces, 0, 255).astype(np.uint8)


def write_fer_csv(path, rows_per_split: dict[str, int], seed: int = 0) -> str:
    """Write ``emotion,pixels,Usage`` rows (labels cycling through all 7 classes)."""
    lines = ["emotion,pixels,Usage"]
    for index, (usage, count) in enumerate(rows_per_split.items()):
        labels = np.arange(count) % len(EMOTIONS)
        for label, face in zip(labels, make_faces(labels, seed + index)):
            lines.append(f"{label},{' '.join(map(str, face.ravel()))},{usage}")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    return str(path)


def train_tiny_run(folder, data: str, *options: str, epochs: int = 1) -> str:
    """Train the small seed002 network (7 classes, numpy backend) on ``data`` into
    ``folder`` for ``epochs`` epochs; return the run folder."""
    from fer_app import train
    assert train.main(["--data", str(data), "--arch", "seed002", "--classes", "7",
                       "--epochs", str(epochs), "--batch-size", "16", "--backend", "numpy",
                       "--out", str(folder), *options]) == 0
    return str(folder)
