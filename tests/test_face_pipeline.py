"""The fast face pipeline: the shrunk whole-frame search against the full-resolution one,
local searches (FaceDetector.find_in), the video tracker (fer_app/recognition/tracking.py) against a
whole-frame search on every frame, and the speed benchmark's plumbing."""
from __future__ import annotations

import json
import os

import numpy
import pytest

from fer_app import video
from fer_app.recognition.faces import CASCADE_WINDOW, FaceDetector
from fer_app.recognition.recognizer import EmotionRecognizer
from fer_app.recognition.scenes import background, drifting_scenes, iou, paste_faces
from fer_app.recognition.tracking import FaceTracker
from tests.app_support import fer_csv_path, findable_faces, random_model_file, scene_with_faces

FOUR_PLACES = [(70, 50), (390, 50), (70, 270), (390, 270)]  # as benchmarks/app_speed.py


def pairs(found: numpy.ndarray, reference: numpy.ndarray) -> list[tuple]:
    """Each reference box with the found box that overlaps it most (sort orders may differ)."""
    return [(max(found, key=lambda box: iou(box, other)), other) for other in reference]


def test_search_scale_makes_the_smallest_face_the_cascade_window():
    assert FaceDetector(min_face_size=40).search_scale == pytest.approx(CASCADE_WINDOW / 40)
    assert FaceDetector(min_face_size=96).search_scale == pytest.approx(0.25)
    assert FaceDetector(min_face_size=20).search_scale == 1.0  # never enlarged
    assert FaceDetector(min_face_size=40, downscale=False).search_scale == 1.0


def test_shrunk_search_finds_the_faces_the_full_resolution_search_finds():
    faces, _ = findable_faces(4)
    scenes = [scene_with_faces(faces, seed=0)[0],
              *drifting_scenes(faces, FOUR_PLACES, 150, 3)[0]]  # the benchmark's frames
    shrunk, full = FaceDetector(min_face_size=40), FaceDetector(min_face_size=40, downscale=False)
    for scene in scenes:
        found, reference = shrunk.find(scene), full.find(scene)
        assert len(reference) >= 3 and len(found) == len(reference)
        for box, other in pairs(found, reference):
            assert iou(box, other) > 0.7


def test_find_in_searches_only_the_region_and_the_sizes_asked_for():
    faces, _ = findable_faces(4)
    scene, _ = scene_with_faces(faces)
    detector = FaceDetector(min_face_size=40)
    whole = detector.find(scene)
    x, y, w, h = whole[0]
    near = detector.find_in(scene, (x - w // 4, y - w // 4, x + w + w // 4, y + h + w // 4),
                            w / 1.25, w * 1.25)
    assert len(near) == 1 and iou(near[0], whole[0]) > 0.8
    assert numpy.abs(near[0] - whole[0]).max() <= 0.1 * w
    assert len(detector.find_in(scene, (x, y, x + w, y + h), 2 * w, 3 * w)) == 0  # too big
    assert len(detector.find_in(scene, (-50, -50, 10, 10), 40)) == 0  # (almost) off the picture


def test_tracker_gives_the_boxes_of_a_whole_frame_search_on_the_benchmark_scenes():
    faces, _ = findable_faces(4)
    scenes, _ = drifting_scenes(faces, FOUR_PLACES, 150, 16)
    detector, tracker = FaceDetector(min_face_size=40), FaceTracker(FaceDetector(40), 5)
    for scene in scenes:
        found, reference = tracker.find(scene), detector.find(scene)
        assert len(found) >= len(reference)  # recall does not drop
        for box, other in pairs(found, reference):
            assert iou(box, other) > 0.8 and numpy.abs(box - other).max() <= 15  # side 150
    assert tracker.whole_searches == 4  # frames 0, 5, 10, 15: the others were followed


def test_tracker_keeps_a_moving_face_without_searching_the_whole_frame_again():
    faces, _ = findable_faces(1)
    tracker = FaceTracker(FaceDetector(min_face_size=40), detect_every=1000)
    for index in range(20):  # 12 px right and 4 px down per frame
        scene, pasted = paste_faces(faces, side=150, places=[(40 + 12 * index, 60 + 4 * index)],
                                    seed=index)
        found = tracker.find(scene)
        assert len(found) == 1 and iou(found[0], pasted[0]) > 0.6, index
    assert tracker.whole_searches == 1


def test_a_face_lost_nearby_makes_the_tracker_search_the_whole_frame_at_once():
    faces, _ = findable_faces(1)
    tracker = FaceTracker(FaceDetector(min_face_size=40), detect_every=1000)
    first, _ = paste_faces(faces, side=150, places=[(40, 40)])
    jumped, pasted = paste_faces(faces, side=150, places=[(420, 300)])
    assert len(tracker.find(first)) == 1
    found = tracker.find(jumped)  # nothing near the last box: the same frame is searched whole
    assert len(found) == 1 and iou(found[0], pasted[0]) > 0.6
    assert tracker.whole_searches == 2
    assert len(tracker.find(background((480, 640), seed=5))) == 0  # the face left


def test_a_new_face_appears_at_the_next_whole_frame_search():
    faces, _ = findable_faces(2)
    one, _ = paste_faces(faces[:1], side=150, places=[(40, 40)])
    two, _ = paste_faces(faces, side=150, places=[(40, 40), (420, 300)])
    tracker = FaceTracker(FaceDetector(min_face_size=40), detect_every=3)
    counts = [len(tracker.find(scene)) for scene in (one, two, two, two)]
    assert counts == [1, 1, 1, 2]  # frame 3 is searched whole


class RecordingDetector(FaceDetector):
    """A FaceDetector that keeps every picture its whole-frame search was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.searched = []

    def find(self, grey):
        self.searched.append(grey)
        return super().find(grey)


def test_the_periodic_whole_search_paints_out_the_followed_faces():
    faces, _ = findable_faces(1)
    scenes, _ = drifting_scenes(faces, [(240, 160)], 160, 4)
    detector = RecordingDetector(min_face_size=40)
    tracker = FaceTracker(detector, detect_every=3, paint_margin=0.1)
    found = [tracker.find(scene) for scene in scenes]
    assert [len(boxes) for boxes in found] == [1, 1, 1, 1]
    assert tracker.whole_searches == 2 and len(detector.searched) == 2   # frames 0 and 3
    assert numpy.array_equal(detector.searched[0], scenes[0])          # nothing followed yet
    x, y, w, h = found[3][0]
    grow = round(0.1 * w)
    painted = detector.searched[1][y - grow:y + h + grow, x - grow:x + w + grow]
    assert painted.min() == painted.max()                     # the face is one flat grey
    assert abs(int(painted[0, 0]) - scenes[3][y:y + h, x:x + w].mean()) <= 0.5
    assert numpy.array_equal(detector.searched[1][:, :x - grow], scenes[3][:, :x - grow])
    assert len(FaceDetector(min_face_size=40).find(scenes[3])) == 1     # found unpainted


def test_detect_every_1_searches_every_frame_whole_with_nothing_painted_out():
    faces, _ = findable_faces(1)
    scenes, _ = drifting_scenes(faces, [(240, 160)], 160, 3)
    detector = RecordingDetector(min_face_size=40)
    tracker = FaceTracker(detector, detect_every=1)
    assert [len(tracker.find(scene)) for scene in scenes] == [1, 1, 1]
    assert tracker.whole_searches == 3
    assert all(numpy.array_equal(searched, scene) for searched, scene in zip(detector.searched, scenes))


def test_a_new_face_beside_a_followed_one_appears_at_the_next_whole_frame_search():
    faces, _ = findable_faces(2)
    one, _ = paste_faces(faces[:1], side=150, places=[(40, 40)])
    two, pasted = paste_faces(faces, side=150, places=[(40, 40), (230, 60)])
    tracker = FaceTracker(FaceDetector(min_face_size=40), detect_every=3)
    found = [tracker.find(scene) for scene in (one, two, two, two)]
    assert [len(boxes) for boxes in found] == [1, 1, 1, 2]  # frame 3 is searched whole
    for box, other in pairs(found[3], pasted):
        assert iou(box, other) > 0.6


def test_a_box_centred_in_a_painted_area_is_not_a_new_face():
    tracker = FaceTracker(FaceDetector(), paint_margin=0.1)
    followed = numpy.array([[100, 100, 100, 100]])        # painted: x and y from 90 to 210
    others = numpy.array([[120, 110, 100, 100],           # centre (170, 160): the same face
                          [150, 150, 110, 110],           # centre (205, 205): inside, at the edge
                          [200, 100, 100, 100],           # centre (250, 150): a neighbour
                          [400, 300, 80, 80]])            # far away
    assert tracker.outside(others, followed).tolist() == [[200, 100, 100, 100],
                                                          [400, 300, 80, 80]]
    assert tracker.outside(others[:0], followed).shape == (0, 4)


def test_tracker_rejects_bad_settings():
    detector = FaceDetector()
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="detect_every must be a whole number >= 1"):
            FaceTracker(detector, detect_every=bad)
    with pytest.raises(ValueError, match="pad must be > 0"):
        FaceTracker(detector, pad=0)
    with pytest.raises(ValueError, match="size_range must be > 1"):
        FaceTracker(detector, size_range=1.0)
    with pytest.raises(ValueError, match="paint_margin must be >= 0"):
        FaceTracker(detector, paint_margin=-0.1)


def test_recognizer_with_a_tracker_classifies_all_faces_of_a_frame_in_one_batch(tmp_path,
                                                                                 monkeypatch):
    faces, _ = findable_faces(4)
    scenes, _ = drifting_scenes(faces, FOUR_PLACES, 150, 4)
    recognizer = EmotionRecognizer(model=random_model_file(tmp_path), backend="numpy")
    batches = []
    classify = recognizer.classify_crops
    monkeypatch.setattr(recognizer, "classify_crops",
                        lambda crops: batches.append(len(crops)) or classify(crops))
    tracker = recognizer.tracker(detect_every=2)
    expected = []
    for scene in scenes:
        tracked = recognizer.detect(scene, tracker=tracker)
        plain = recognizer.detect(scene)
        expected += [len(tracked), len(plain)]
        assert len(tracked) == len(plain) >= 3
        for face in tracked:
            best = max(plain, key=lambda other: iou(other["box"], face["box"]))
            assert iou(best["box"], face["box"]) > 0.8
    assert batches == expected  # one forward pass per frame, with every face in it


def test_video_cli_rejects_a_bad_detect_every(tmp_path, capsys):
    with pytest.raises(SystemExit):
        video.main(["--input", str(tmp_path / "clip.mp4"), "--detect-every", "0"])
    assert "--detect-every must be >= 1" in capsys.readouterr().err


def test_benchmark_module_leaves_the_blas_variables_alone_when_imported(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    import benchmarks.app_speed as app_speed

    assert app_speed.UNSET_BLAS == {} and os.environ["OPENBLAS_CORETYPE"] == "Haswell"


def test_benchmark_rejects_bad_options(capsys):
    from benchmarks import app_speed

    for argv, message in ((["--variants", "numpy:40"], "BACKEND:MIN_FACE_SIZE:SEARCH"),
                          (["--variants", "numpy:40:fast"], "SEARCH one of full, scaled, track"),
                          (["--variants", "numpy:0:track"], "MIN_FACE_SIZE a whole number"),
                          (["--variants", "torch:40:track"], "backend 'torch'"),
                          (["--detect-every", "0"], "--detect-every must be >= 1"),
                          (["--model", "missing.npz"], "no such file: missing.npz")):
        with pytest.raises(SystemExit):
            app_speed.main(argv)
        assert message in capsys.readouterr().err


def test_benchmark_says_so_when_too_few_faces_are_found_alone(tmp_path, capsys, monkeypatch):
    """The videos show four faces the detector finds alone; fewer is one clear line, exit 2."""
    from benchmarks import app_speed

    findable_faces(1)  # skips without the FER-2013 data
    monkeypatch.setattr(app_speed, "found_alone", lambda detector, scenes: [0, 1])
    with pytest.raises(SystemExit) as stopped:
        app_speed.main(["--model", random_model_file(tmp_path), "--variants", "numpy:40:track",
                        "--frames", "6", "--accuracy-faces", "24", "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert "only 2 of the 24 faces are found alone; raise --accuracy-faces" in capsys.readouterr().err


def test_benchmark_writes_results_only_where_asked(tmp_path, capsys):
    """A tiny run: rows for every model and variant, thread report, nothing written to the
    repository's tracked results."""
    from benchmarks import app_speed

    findable_faces(1)  # skips without the FER-2013 data
    tracked = os.path.join(os.path.dirname(app_speed.__file__), "results", "app_speed.md")
    before = open(tracked).read() if os.path.exists(tracked) else None
    model = random_model_file(tmp_path)
    out = tmp_path / "out"
    assert app_speed.main(["--model", model, "--variants", "numpy:40:scaled,numpy:40:track",
                           "--frames", "6", "--accuracy-faces", "24", "--out", str(out)]) == 0
    assert (open(tracked).read() if os.path.exists(tracked) else None) == before
    results = json.loads((out / "app_speed.json").read_text())
    assert [row["search"].split(" (")[0] for row in results["speed"]] == [
        "whole frame, shrunk", "shrunk, whole every 5th frame, tracked between"]
    for row in results["speed"]:
        assert row["videos"]["four_faces"]["frames"] == 6 - app_speed.WARMUP
    assert results["threads"]["pools"] and "architecture" in results["threads"]["pools"][0]
    assert "kernel" in (out / "app_speed.md").read_text()
    assert "| ours | random_model.npz |" in capsys.readouterr().out


def test_painted_search_benchmark_prints_a_row_per_scene(capsys):
    """benchmarks.painted_search: both scenes timed; every face found whole, none new once
    painted out (no time asserted)."""
    from benchmarks import painted_search
    assert painted_search.main(["--data", fer_csv_path(), "--frames", "2"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| one face") or line.startswith("| four faces")]
    assert [(float(row[5]), float(row[6])) for row in rows] == [(1.0, 0.0), (4.0, 0.0)]


def test_a_bad_data_file_is_one_clear_line_in_the_face_benchmarks(tmp_path, capsys):
    """read_fer_faces raises DataError for a file it cannot use; the benchmarks print it as one line."""
    from benchmarks import app_speed, face_recall, painted_search
    from fer_app.data.dataset import DataError
    from fer_app.recognition.scenes import read_fer_faces
    empty, training_only, short = tmp_path / "empty.csv", tmp_path / "training.csv", tmp_path / "short.csv"
    empty.write_text("")
    training_only.write_text("emotion,pixels,Usage\n0," + " ".join(["7"] * 2304) + ",Training\n")
    short.write_text("emotion,pixels,Usage\n0,1 2 3,PublicTest\n")
    for path, message in [(empty, "not a readable FER-2013 CSV"), (training_only, "no PublicTest rows"),
                          (short, "pixels are not 48x48"), (tmp_path / "missing.csv", "not a readable")]:
        with pytest.raises(DataError, match=message):
            read_fer_faces(str(path))
    for main in (app_speed.main, face_recall.main, painted_search.main):
        assert main(["--data", str(training_only)]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and "no PublicTest rows" in error and "Traceback" not in error
