"""inference.py: TTA views, batching, and clear errors for files that are not models."""
from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from fer_app.data.normalize import Normalizer
from fer_app.models import build_model
from fer_app.recognition.inference import (TTA_SHIFT, Classifier, ModelFileError, load_classifier,
                                           tta_views)


def test_tta_views_are_the_faces_their_mirrors_and_shifts():
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48)).astype(np.uint8)
    views = tta_views(faces)
    assert len(views) == 10 and all(view.shape == faces.shape for view in views)
    np.testing.assert_array_equal(views[0], faces)
    np.testing.assert_array_equal(views[5], faces[:, :, ::-1])
    s = TTA_SHIFT
    # view 1 looks s pixels up: its row r is the face's row r - s (edge rows repeated)
    np.testing.assert_array_equal(views[1][:, s:], faces[:, :-s])
    np.testing.assert_array_equal(views[1][:, 0], faces[:, 0])
    # view 4 looks s pixels right: its column c is the face's column c + s
    np.testing.assert_array_equal(views[4][:, :, :-s], faces[:, :, s:])


def make_classifier() -> Classifier:
    tinycnn.manual_seed(0)
    model = build_model("seed002", 7)
    return Classifier(model, [f"c{k}" for k in range(7)], Normalizer("per_image"))


def test_batched_prediction_equals_one_pass_and_leaves_training_mode_alone():
    classifier = make_classifier()
    classifier.model.train()
    faces = np.random.default_rng(1).integers(0, 256, (7, 48, 48)).astype(np.uint8)
    whole = classifier.predict_logits(faces, batch_size=64)
    pieces = classifier.predict_logits(faces, batch_size=3)
    # batches of 3 and of 7 may take different float32 convolution paths (im2col, Winograd
    # F(4x4, 5x5), whose float32 results differ by up to about 1.4e-5 of logits near 1 here)
    np.testing.assert_allclose(pieces, whole, rtol=1e-4, atol=3e-5)
    assert classifier.model.training
    probabilities = classifier.predict_proba(faces, tta=True)
    assert probabilities.shape == (7, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_view_probabilities_hold_the_plain_pass_and_average_to_tta():
    classifier = make_classifier()
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    views = classifier.predict_proba_views(faces)  # (10, 5, 7)
    assert views.shape == (10, 5, 7)
    np.testing.assert_allclose(views[0], classifier.predict_proba(faces), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(views[5], classifier.predict_proba(faces[:, :, ::-1]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(views.mean(axis=0), classifier.predict_proba(faces, tta=True),
                               rtol=1e-5, atol=1e-7)


def test_wrong_face_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(N, 48, 48\)"):
        make_classifier().predict_logits(np.zeros((2, 32, 32), np.uint8))


def test_files_that_are_not_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        load_classifier(str(tmp_path / "absent.npz"))
    tinycnn.save({"w": np.zeros(3)}, str(tmp_path / "plain.npz"), {"something": 1})
    with pytest.raises(ModelFileError, match="not a fer_app model file"):
        load_classifier(str(tmp_path / "plain.npz"))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="not a tinycnn .npz file"):
        load_classifier(str(tmp_path / "text.npz"))
