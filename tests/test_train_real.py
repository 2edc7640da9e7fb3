"""The default architecture learns real faces: trained for about a minute on 2,000
FER-2013 Training images, it beats the majority-class baseline on 600 held-out
PublicTest images."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fer_app.data.load import load_dataset, select_split
from fer_app.models import DEFAULT_ARCH

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_DATA = os.path.join(REPO, "..", "shared", "data", "fer2013", "fer2013.csv.gz")


def write_rows(path, parts: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """A FER-2013 CSV holding the given (usage, images (N, 48, 48), labels (N,)) parts."""
    lines = ["emotion,pixels,Usage"]
    for usage, images, labels in parts:
        lines += [f"{label},{' '.join(map(str, image.ravel()))},{usage}"
                  for image, label in zip(images, labels)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.skipif(not os.path.exists(REAL_DATA),
                    reason=f"real FER-2013 file absent: {os.path.normpath(REAL_DATA)}")
def test_default_architecture_beats_the_majority_baseline_on_real_faces(tmp_path):
    ds = load_dataset(REAL_DATA)
    rng = np.random.default_rng(0)
    train = select_split(ds, "Training")
    held_out = select_split(ds, "PublicTest")
    train_rows = rng.choice(len(train), 2000, replace=False)
    held_rows = rng.choice(len(held_out), 600, replace=False)
    data = tmp_path / "fer_subset.csv"
    write_rows(data, [("Training", train.images[train_rows], train.labels[train_rows]),
                      ("PublicTest", held_out.images[held_rows], held_out.labels[held_rows])])

    # 4 epochs: after 3 the held-out accuracy was 0.28-0.32 across seeds and float32
    # rounding orders (0.287 needed), after 4 it was 0.34-0.37.
    out = tmp_path / "run"
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # no BLAS thread contention
    result = subprocess.run(
        [sys.executable, "-m", "fer_app.train", "--data", str(data), "--arch", DEFAULT_ARCH,
         "--epochs", "4", "--batch-size", "32", "--lr", "2e-3", "--schedule", "onecycle",
         "--augment", "light", "--seed", "0", "--out", str(out)],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]

    metrics = json.loads((out / "metrics.json").read_text())
    held_labels = held_out.labels[held_rows]
    majority = np.bincount(held_labels).max() / len(held_labels)  # "happy", about 25%
    assert metrics["n"] == 600
    assert metrics["accuracy"] > majority + 0.05, (metrics["accuracy"], majority)
