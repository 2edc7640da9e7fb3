"""Shared helpers for the fer_app recognizer/CLI/web tests (tests/test_app_*.py).

- real FER-2013 faces (skip with a reason when the data file is absent);
- faces that the Haar cascade finds when pasted alone (so box tests test boxes);
- a small randomly initialized model file, for plumbing tests that need *a* model;
- the shipped model, for the tests that check labels on real faces.
"""
from __future__ import annotations

import functools
import os

import numpy
import pytest

import tinycnn
from fer_app.data.load import EMOTIONS, DataError, find_data
from fer_app.data.normalize import Normalizer
from fer_app.models import DEFAULT_ARCH, build_model
from fer_app.recognition.faces import FaceDetector
from fer_app.recognition.inference import DEFAULT_MODEL
from fer_app.recognition.scenes import iou, paste_faces, read_fer_faces

SIDE = 160  # pixels: FER faces are blown up to this size in test pictures


def fer_csv_path() -> str:
    """The FER-2013 CSV, or skip the calling test with the reason."""
    try:
        path = find_data()
    except DataError:
        pytest.skip("FER-2013 data not found (../shared/data/fer2013/fer2013.csv.gz); "
                    "these tests paste real faces from it")
    if os.path.isdir(path):
        pytest.skip(f"{path} is an image folder; these tests read the CSV layout")
    return path


@functools.lru_cache(maxsize=None)
def _public_test_faces(path: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    return read_fer_faces(path, usage="PublicTest", count=400, seed=0)


def public_test_faces() -> tuple[numpy.ndarray, numpy.ndarray]:
    """400 PublicTest faces (N, 48, 48) uint8 and labels (N,), the same on every run."""
    return _public_test_faces(fer_csv_path())


@functools.lru_cache(maxsize=None)
def _findable(path: str, count: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    faces, labels = _public_test_faces(path)
    detector = FaceDetector(min_face_size=40)
    keep = []
    for index, face in enumerate(faces):
        scene, boxes = paste_faces(face[None], side=SIDE, places=[(240, 160)], seed=index)
        found = detector.find(scene)
        if len(found) == 1 and iou(found[0], boxes[0]) > 0.6:
            keep.append(index)
        if len(keep) == count:
            break
    return faces[keep], labels[keep]


def findable_faces(count: int = 8) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The first ``count`` PublicTest faces that the Haar cascade finds when pasted alone
    at SIDE px (about 3 in 4 are; profile and cut-off faces are not)."""
    return _findable(fer_csv_path(), count)


def scene_with_faces(faces: numpy.ndarray, size=(480, 640), seed: int = 0):
    """faces (F, 48, 48) pasted at SIDE px on a grid -> (scene (H, W) uint8, boxes (F, 4))."""
    return paste_faces(faces, size=size, side=SIDE, seed=seed)


def probabilities_of(faces: list[dict]) -> numpy.ndarray:
    """The "probabilities" of recognizer results (one dict per face) as an array (faces, K)."""
    return numpy.array([list(face["probabilities"].values()) for face in faces])


def random_model_file(folder) -> str:
    """A randomly initialized DEFAULT_ARCH model saved like a trained one (for plumbing tests)."""
    path = os.path.join(str(folder), "random_model.npz")
    tinycnn.manual_seed(0)
    model = build_model(DEFAULT_ARCH, len(EMOTIONS))
    tinycnn.save(model.state_dict(), path, {
        "arch": DEFAULT_ARCH, "num_classes": len(EMOTIONS), "class_names": EMOTIONS,
        "normalization": Normalizer("per_image").to_dict(), "epoch": 0})
    return path


def shipped_model_or_skip() -> str:
    """Path of fer_app/weights/default.npz, or skip: label tests need a trained model."""
    if not os.path.isfile(DEFAULT_MODEL):
        pytest.skip(f"the shipped model {DEFAULT_MODEL} is not there yet; label checks on "
                    "real faces need a trained model")
    return DEFAULT_MODEL


def matched_boxes(found: list, expected: numpy.ndarray, threshold: float = 0.5) -> int:
    """How many expected boxes (F, 4) have a found box with IoU >= threshold."""
    return sum(1 for box in expected if any(iou(box, other) >= threshold for other in found))
