"""Face finding and cropping (fer_app/recognition/faces.py) on real FER-2013 faces pasted into pictures."""
from __future__ import annotations

import cv2
import numpy
import pytest

from fer_app.recognition.faces import (FaceDetector, cascade_path, crop_face, crop_faces, grown_box,
                                       to_grey)
from fer_app.recognition.scenes import background, iou, paste_faces
from tests.app_support import SIDE, findable_faces, matched_boxes, scene_with_faces


def test_cascade_file_ships_with_opencv():
    assert cascade_path().endswith("haarcascade_frontalface_default.xml")
    assert not cv2.CascadeClassifier(cascade_path()).empty()


def test_to_grey_agrees_for_every_channel_layout():
    rng = numpy.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=numpy.uint8)
    grey = to_grey(rgb, "rgb")  # (30, 40)
    expected = numpy.rint(rgb @ numpy.array([0.299, 0.587, 0.114]))
    assert grey.shape == (30, 40) and grey.dtype == numpy.uint8
    assert numpy.abs(grey.astype(float) - expected).max() <= 1
    assert numpy.array_equal(to_grey(rgb[:, :, ::-1], "bgr"), grey)
    assert not numpy.array_equal(to_grey(rgb[:, :, ::-1], "rgb"), grey)
    rgba = numpy.dstack([rgb, numpy.full((30, 40), 7, numpy.uint8)])
    assert numpy.array_equal(to_grey(rgba), grey)
    assert numpy.array_equal(to_grey(grey), grey)
    assert numpy.array_equal(to_grey(grey[:, :, None]), grey)
    assert numpy.array_equal(to_grey(grey / 255.0), grey)


def test_to_grey_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        to_grey(numpy.zeros((4, 4, 2), numpy.uint8))
    with pytest.raises(ValueError, match="color"):
        to_grey(numpy.zeros((4, 4, 3), numpy.uint8), color="hsv")
    for empty in (numpy.zeros((0, 0, 3), numpy.uint8), numpy.zeros((0, 5)), numpy.zeros((5, 0, 4))):
        with pytest.raises(ValueError, match="the image is empty"):   # not OpenCV's assertion
            to_grey(empty)


def test_grown_box_is_a_square_around_the_same_centre():
    assert grown_box([10, 20, 100, 100], 0.0) == (10, 20, 110, 120)
    assert grown_box([10, 20, 100, 100], 0.25) == (-15, -5, 135, 145)
    x0, y0, x1, y1 = grown_box([0, 0, 60, 80], 0.1)
    assert x1 - x0 == y1 - y0 == 96 and (x0 + x1) / 2 == 30 and (y0 + y1) / 2 == 40


def test_crop_of_a_pasted_face_gives_back_the_fer_face():
    """Cutting the pasted box and shrinking it to 48x48 undoes the paste: the network sees
    what it saw in training."""
    faces, _ = findable_faces(2)
    scene, boxes = scene_with_faces(faces)
    crops = crop_faces(scene, boxes, margin=0.0)  # (2, 48, 48)
    assert crops.shape == (2, 48, 48) and crops.dtype == numpy.uint8
    for crop, face in zip(crops, faces):
        assert numpy.abs(crop.astype(int) - face.astype(int)).mean() < 6.0  # resampling only
        assert numpy.corrcoef(crop.ravel(), face.ravel())[0, 1] > 0.97


def test_crop_at_the_picture_edge_repeats_border_pixels():
    grey = numpy.arange(100 * 100, dtype=numpy.int64).reshape(100, 100) % 251
    grey = grey.astype(numpy.uint8)
    crop = crop_face(grey, [-20, -20, 60, 60], margin=0.0)
    assert crop.shape == (48, 48)
    assert crop[0, 0] == grey[0, 0]  # the outside part is the corner pixel, repeated


def test_detector_finds_pasted_faces_where_they_are():
    faces, _ = findable_faces(4)
    scene, boxes = scene_with_faces(faces)
    found = FaceDetector(min_face_size=40).find(scene)
    assert found.shape[1] == 4 and found.dtype == numpy.int64
    assert matched_boxes(list(found), boxes, threshold=0.5) >= 3
    for box in found:  # every box found sits on a pasted face, none on the background
        assert max(iou(box, pasted) for pasted in boxes) >= 0.5


def test_detector_reports_no_face_on_a_plain_background():
    assert FaceDetector().find(background((480, 640), seed=3)).shape == (0, 4)


def test_min_face_size_skips_smaller_faces():
    faces, _ = findable_faces(1)
    scene, boxes = paste_faces(faces, side=SIDE, places=[(200, 150)])
    assert len(FaceDetector(min_face_size=SIDE // 2).find(scene)) == 1
    assert len(FaceDetector(min_face_size=SIDE * 2).find(scene)) == 0


def test_boxes_are_in_pixels_of_the_full_picture():
    faces, _ = findable_faces(1)
    scene, boxes = paste_faces(faces, size=(480, 640), side=SIDE, places=[(200, 150)])
    big = cv2.resize(scene, (1920, 1440), interpolation=cv2.INTER_CUBIC)  # 3x
    found = FaceDetector(min_face_size=40).find(big)  # searched at 0.6x, boxes in full pixels
    assert len(found) == 1
    assert iou(found[0], boxes[0] * 3) > 0.6
