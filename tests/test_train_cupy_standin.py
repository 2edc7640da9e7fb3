"""`fer_app.train --backend cupy` and the classifier on the strict CuPy stand-in
(tests/fake_cupy.py): every array operation of training, validation, checkpointing,
resuming and prediction must go through the backend's array module."""
from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from fer_app import train
from fer_app.recognition.inference import load_classifier
from tests.fake_cupy import make_fake_cupy
from tests.train_samples import make_faces, write_fer_csv
from tinycnn import backend
from tinycnn.backend import Backend
from tinycnn.kernels import cupy_gpu


@pytest.fixture
def fake_gpu(monkeypatch):
    """The stand-in registered as backend "cupy" for this test only."""
    monkeypatch.setattr(backend, "_LOADERS", dict(backend._LOADERS))
    monkeypatch.setattr(backend, "_LOADED", dict(backend._LOADED))
    monkeypatch.setattr(backend, "_current", backend._current)
    fake = make_fake_cupy()
    backend.register("cupy", lambda: Backend("cupy", fake, cupy_gpu))
    return fake


def test_training_resuming_and_predicting_on_the_cupy_path(fake_gpu, tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 14, "PublicTest": 7})
    out = str(tmp_path / "run")
    # vgg_fer: batch norm on images and on features, dropout, pooling, dense layers
    args = ["--data", data, "--arch", "vgg_fer", "--backend", "cupy", "--batch-size", "7",
            "--augment", "light", "--mixup", "0.2", "--class-weight", "balanced", "--out", out]
    assert train.main([*args, "--epochs", "1"]) == 0
    assert train.main(["--resume", "--epochs", "2", "--out", out]) == 0
    assert tinycnn.load(f"{out}/last.npz")[1]["epoch"] == 2
    for operation in ("asnumpy", "random.random_sample", "ndarray.argmax"):
        assert operation in fake_gpu.calls, operation

    classifier = load_classifier(f"{out}/model.npz", "cupy")
    probabilities = classifier.predict_proba(make_faces(np.arange(7), seed=2), tta=True)
    assert isinstance(probabilities, np.ndarray) and probabilities.shape == (7, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd", "adamw"])
def test_each_optimizer_trains_and_resumes_on_the_cupy_path(fake_gpu, tmp_path, optimizer):
    """The optimizers other than Adam (above) keep their state on the device and checkpoint it."""
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 14, "PublicTest": 7})
    out = str(tmp_path / "run")
    args = ["--data", data, "--arch", "seed002", "--classes", "7", "--backend", "cupy",
            "--batch-size", "7", "--optimizer", optimizer, "--weight-decay", "0.01", "--out", out]
    assert train.main([*args, "--epochs", "1"]) == 0
    assert train.main(["--resume", "--epochs", "2", "--out", out]) == 0
    assert tinycnn.load(f"{out}/last.npz")[1]["epoch"] == 2
