"""EmotionRecognizer (fer_app/recognition/recognizer.py): every input kind, JSON output, batching, labels."""
from __future__ import annotations

import json

import numpy
import pytest
from PIL import Image

from fer_app import EmotionRecognizer
from fer_app.data.load import EMOTIONS
from fer_app.recognition.faces import crop_faces
from fer_app.recognition.scenes import background, iou
from tests.app_support import (findable_faces, matched_boxes, probabilities_of, public_test_faces,
                               random_model_file, scene_with_faces, shipped_model_or_skip)


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    """A recognizer around a random model: enough for boxes, shapes and plumbing."""
    return EmotionRecognizer(model=random_model_file(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def colour_scene():
    """Two real faces on a background, tinted so that R, G and B differ -> (H, W, 3) RGB."""
    faces, _ = findable_faces(2)
    grey, boxes = scene_with_faces(faces)
    rgb = numpy.stack([grey, (grey * 0.8).astype(numpy.uint8), (grey * 0.6).astype(numpy.uint8)],
                      axis=-1)
    return rgb, boxes


def test_detect_returns_plain_json_ready_faces(recognizer, colour_scene):
    rgb, boxes = colour_scene
    faces = recognizer.detect(rgb)
    assert json.loads(json.dumps(faces)) == faces
    assert matched_boxes([face["box"] for face in faces], boxes) == 2
    for face in faces:
        assert set(face) == {"box", "emotion", "score", "probabilities"}
        assert all(type(value) is int for value in face["box"])
        assert list(face["probabilities"]) == EMOTIONS
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert face["score"] == max(face["probabilities"].values())
        assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)


def test_every_input_kind_gives_the_same_answer(recognizer, colour_scene, tmp_path):
    rgb, _ = colour_scene
    path = tmp_path / "scene.png"
    Image.fromarray(rgb).save(path)
    grey = numpy.asarray(Image.fromarray(rgb).convert("L"))
    expected = recognizer.detect(rgb)
    assert expected
    assert recognizer.detect(str(path)) == expected
    assert recognizer.detect(path) == expected
    assert recognizer.detect(Image.fromarray(rgb)) == expected
    assert recognizer.detect(rgb[:, :, ::-1].copy(), color="bgr") == expected
    assert recognizer.detect(grey) == expected
    assert recognizer.detect(Image.fromarray(grey)) == expected


def test_bgr_read_as_rgb_changes_the_picture(recognizer, colour_scene):
    """The colour argument matters: the same array read in the wrong order is another grey."""
    rgb, _ = colour_scene
    right = recognizer.detect(rgb)
    wrong = recognizer.detect(rgb, color="bgr")
    assert [face["probabilities"] for face in right] != [face["probabilities"] for face in wrong]


def test_no_face_gives_an_empty_list(recognizer):
    assert recognizer.detect(background((480, 640), seed=5)) == []


def test_all_faces_of_a_picture_go_through_one_forward_pass(recognizer, monkeypatch):
    faces, _ = findable_faces(4)
    scene, boxes = scene_with_faces(faces)
    batches = []
    original = recognizer.classifier.predict_proba

    def counting(batch, tta=False):
        batches.append(len(batch))
        return original(batch, tta=tta)

    monkeypatch.setattr(recognizer.classifier, "predict_proba", counting)
    found = recognizer.detect(scene)
    assert len(found) >= 3 and batches == [len(found)]


def test_classify_one_face_and_a_batch_agree_with_detect(recognizer):
    faces, _ = findable_faces(2)
    scene, _ = scene_with_faces(faces)
    detected = recognizer.detect(scene)
    crops = crop_faces(scene, numpy.array([face["box"] for face in detected]), recognizer.margin)
    batch = recognizer.classify(crops)
    assert isinstance(batch, list) and len(batch) == len(detected)
    for one, face, crop in zip(batch, detected, crops):
        assert one["probabilities"] == pytest.approx(face["probabilities"], abs=1e-5)
        single = recognizer.classify(crop)
        assert isinstance(single, dict) and single["emotion"] == one["emotion"]
    with pytest.raises(ValueError, match="48, 48"):
        recognizer.classify(numpy.zeros((2, 64, 64), numpy.uint8))


def test_shipped_model_labels_real_faces_found_in_pictures():
    """With the trained model, faces found in pictures are labelled far above chance, and
    nearly as well as the original 48x48 crops are."""
    recognizer = EmotionRecognizer(model=shipped_model_or_skip())
    faces, labels = findable_faces(60)
    correct, direct = 0, 0
    for start in range(0, len(faces), 4):
        group, group_labels = faces[start:start + 4], labels[start:start + 4]
        scene, boxes = scene_with_faces(group, seed=start)
        found = recognizer.detect(scene)
        for box, label in zip(boxes, group_labels):
            best = max(found, key=lambda face: iou(face["box"], box), default=None)
            if best is not None and iou(best["box"], box) > 0.5:
                correct += best["emotion"] == EMOTIONS[label]
    direct = sum(face["emotion"] == EMOTIONS[label]
                 for face, label in zip(recognizer.classify(faces), labels))
    majority = numpy.bincount(public_test_faces()[1], minlength=7).max() / len(public_test_faces()[1])
    assert correct / len(faces) > majority + 0.15
    assert correct >= direct - 0.15 * len(faces)


def test_tta_option_reaches_the_classifier(recognizer, tmp_path):
    faces, _ = findable_faces(2)
    with_tta = EmotionRecognizer(model=random_model_file(tmp_path), tta=True)
    expected = with_tta.classifier.predict_proba(faces, tta=True)  # (2, 7)
    got = probabilities_of(with_tta.classify(faces))
    numpy.testing.assert_allclose(got, expected, atol=1e-6)
    plain = probabilities_of(recognizer.classify(faces))
    assert numpy.abs(plain - got).max() > 1e-4
