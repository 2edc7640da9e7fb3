"""Normalizer: per-image and dataset standardization, and its round trip through to_dict."""
import json

import numpy as np
import pytest

from fer_app.data.normalize import Normalizer


def faces(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.uint8)


def test_per_image_gives_zero_mean_unit_std_per_face():
    images = faces()
    images[0] = 200  # a flat face: centred, not divided by zero
    x = Normalizer("per_image").apply(images)
    assert x.shape == (6, 1, 48, 48) and x.dtype == np.float32
    np.testing.assert_allclose(x[1:].mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x[1:].std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(x[0], 0)


def test_dataset_mode_uses_training_mean_and_std():
    train = faces(10)
    normalizer = Normalizer("dataset").fit(train)
    assert normalizer.mean == pytest.approx(train.mean())
    assert normalizer.std == pytest.approx(train.std())
    x = normalizer.apply(faces(4, seed=1))
    np.testing.assert_allclose(x[:, 0], (faces(4, seed=1) - train.mean()) / train.std(), rtol=1e-5, atol=1e-5)
    assert normalizer.apply(train).mean() == pytest.approx(0, abs=1e-4)


def test_uint8_and_float_inputs_agree():
    images = faces(3)
    normalizer = Normalizer("dataset", mean=120.0, std=60.0)
    np.testing.assert_array_equal(normalizer.apply(images), normalizer.apply(images.astype(np.float32)))


@pytest.mark.parametrize("mode", ["per_image", "dataset"])
def test_round_trip_through_json(mode):
    normalizer = Normalizer(mode).fit(faces(5))
    restored = Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    assert restored.to_dict() == normalizer.to_dict()
    np.testing.assert_array_equal(restored.apply(faces(2, seed=3)), normalizer.apply(faces(2, seed=3)))


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        Normalizer("minmax")
    with pytest.raises(ValueError, match="before fit"):
        Normalizer("dataset").apply(faces(1))
    with pytest.raises(ValueError, match="shape"):
        Normalizer().apply(faces(1)[0])
