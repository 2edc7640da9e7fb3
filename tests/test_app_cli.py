"""The predict and video command lines (fer_app/predict.py, fer_app/video.py)."""
from __future__ import annotations

import csv
import json

import cv2
import numpy
import pytest
from PIL import Image

from fer_app import predict, video
from fer_app.data.load import EMOTIONS
from fer_app.recognition.recognizer import EmotionRecognizer
from fer_app.recognition.scenes import background
from tests.app_support import (findable_faces, matched_boxes, probabilities_of, random_model_file,
                               scene_with_faces)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return random_model_file(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Two pictures: one with two real faces (and their boxes), one with none."""
    folder = tmp_path_factory.mktemp("pictures")
    faces, _ = findable_faces(2)
    scene, boxes = scene_with_faces(faces)
    with_faces, empty = folder / "two_faces.png", folder / "empty.jpg"
    Image.fromarray(scene).convert("RGB").save(with_faces)
    Image.fromarray(background((240, 320), seed=1)).save(empty)
    return str(with_faces), str(empty), boxes


def test_predict_json_maps_each_path_to_its_faces(model_path, pictures, capsys):
    with_faces, empty, boxes = pictures
    assert predict.main([with_faces, empty, "--json", "--model", model_path]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == [with_faces, empty]
    assert result[empty] == []
    assert matched_boxes([face["box"] for face in result[with_faces]], boxes) == 2
    assert all(face["emotion"] in EMOTIONS for face in result[with_faces])


def test_predict_uses_tta_unless_told_not_to(model_path, pictures, capsys):
    with_faces, _, _ = pictures
    expected = {tta: probabilities_of(EmotionRecognizer(model_path, tta=tta).detect(with_faces))
                for tta in (True, False)}
    assert not numpy.allclose(expected[True], expected[False], atol=1e-4)
    for options, tta in (([], True), (["--no-tta"], False)):
        assert predict.main([with_faces, "--json", "--model", model_path, *options]) == 0
        got = probabilities_of(json.loads(capsys.readouterr().out)[with_faces])
        numpy.testing.assert_allclose(got, expected[tta], atol=1e-6)


def test_predict_table_lists_every_face(model_path, pictures, capsys):
    with_faces, empty, _ = pictures
    assert predict.main([with_faces, empty, "--model", model_path]) == 0
    out = capsys.readouterr().out
    assert f"{with_faces}: 2 face(s)" in out and f"{empty}: no face found" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and all(any(name in row for name in EMOTIONS) for row in rows)


def test_predict_annotate_draws_boxes(model_path, pictures, tmp_path, capsys):
    with_faces, _, boxes = pictures
    assert predict.main([with_faces, "--annotate", str(tmp_path), "--model", model_path]) == 0
    original = numpy.asarray(Image.open(with_faces).convert("RGB")).astype(int)
    drawn = numpy.asarray(Image.open(tmp_path / "two_faces.annotated.png")).astype(int)
    assert drawn.shape == original.shape
    colour = numpy.abs(drawn[:, :, 0] - drawn[:, :, 2]) > 40  # boxes/bars are coloured; the scene is grey
    x, y, w, h = boxes[0]
    assert colour[y + h // 4:y + 3 * h // 4, max(0, x - 6):x + 6].any()  # left edge of a box
    assert not colour[y + h // 3:y + 2 * h // 3, x + w // 3:x + 2 * w // 3].any()  # face untouched


def test_predict_reports_unreadable_files(model_path, tmp_path, capsys):
    bad = tmp_path / "not_a_picture.jpg"
    bad.write_text("hello")
    assert predict.main([str(bad), "--model", model_path]) == 1
    assert "cannot read picture" in capsys.readouterr().err


def write_video(path, faces, frames: int = 12, fps: float = 10.0) -> list:
    """A 320x240 mp4v video: a background, with the faces pasted from the 5th frame on."""
    scene, boxes = scene_with_faces(faces, size=(240, 320))
    empty = background((240, 320))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    for index in range(frames):
        grey = scene if index >= 4 else empty
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    writer.release()
    return boxes


def test_video_cli_writes_csv_plot_and_annotated_video(model_path, tmp_path, capsys):
    faces, _ = findable_faces(1)
    source = tmp_path / "clip.mp4"
    boxes = write_video(source, faces)
    output, table = tmp_path / "annotated.mp4", tmp_path / "emotions.csv"
    assert video.main(["--input", str(source), "--output", str(output), "--csv", str(table),
                       "--every", "2", "--model", model_path]) == 0
    assert "12 frames" in capsys.readouterr().out

    rows = list(csv.DictReader(open(table)))
    assert list(rows[0]) == ["time_s", "frame", "face", "x", "y", "w", "h", "emotion", *EMOTIONS]
    frames = [int(row["frame"]) for row in rows]
    assert frames == [4, 6, 8, 10]            # every 2nd frame, faces from frame 4 on
    assert [float(row["time_s"]) for row in rows] == pytest.approx([0.4, 0.6, 0.8, 1.0])
    for row in rows:
        box = [int(row[key]) for key in "xywh"]
        assert matched_boxes([box], boxes) == 1
        assert sum(float(row[name]) for name in EMOTIONS) == pytest.approx(1.0, abs=1e-3)

    plot = Image.open(tmp_path / "emotions.png")
    assert plot.format == "PNG" and plot.size == (900, 400)

    capture = cv2.VideoCapture(str(output))
    count, first = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        first = frame if first is None else first
        count += 1
    assert count == 12 and first.shape == (240, 320, 3)


def test_video_runs_a_face_through_the_network_before_the_first_frame(model_path, tmp_path,
                                                                      monkeypatch, capsys):
    faces, _ = findable_faces(1)
    source = tmp_path / "clip.mp4"
    write_video(source, faces)
    batches = []
    original = EmotionRecognizer.classify_crops

    def recording_classify(self, crops):
        batches.append(crops.shape)
        return original(self, crops)

    monkeypatch.setattr(EmotionRecognizer, "classify_crops", recording_classify)
    assert video.main(["--input", str(source), "--model", model_path, "--max-frames", "6"]) == 0
    out = capsys.readouterr().out
    assert batches[0] == (1, 48, 48) and len(batches) >= 2   # the blank face, then the frames'
    assert out.index("preparing the model") < out.index("6 frames")


def test_video_camera_without_display_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(video.sys, "platform", "linux")
    args = video.argparse.Namespace(input=None, camera=0, no_window=False)
    assert video.open_window(args) is None
    assert "No display found" in capsys.readouterr().err


def test_video_camera_with_a_display_but_no_window_support_says_so(monkeypatch, capsys):
    """opencv-python-headless cannot open windows, and matplotlib on Agg cannot either:
    the camera then runs without a window and the user is told why."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(video.sys, "platform", "linux")
    args = video.argparse.Namespace(input=None, camera=0, no_window=False)
    assert video.open_window(args) is None
    assert "No live window: neither OpenCV" in capsys.readouterr().err


def test_video_cli_rejects_a_missing_file(model_path, tmp_path, capsys):
    assert video.main(["--input", str(tmp_path / "missing.mp4"), "--model", model_path]) == 1
    assert "missing.mp4: no such video file" in capsys.readouterr().err


def test_video_cli_says_so_when_no_frame_can_be_read(model_path, tmp_path, capsys):
    """OpenCV opens some files it cannot decode (a text file named .jpg) and reads nothing."""
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    table = tmp_path / "emotions.csv"
    assert video.main(["--input", str(text), "--model", model_path, "--csv", str(table)]) == 1
    assert "notes.jpg: no frame could be read" in capsys.readouterr().err
    assert not table.exists()
