"""The `fer` (PyPI) half of benchmarks/app_speed.py, run in fer's own environment.

fer pulls in TensorFlow, PyTorch and opencv-contrib-python 5.x, which must not
mix with this project's environment, so app_speed.py runs this file with the
Python of a separate virtual environment:

    python -m venv .fer-venv && .fer-venv/bin/pip install fer "setuptools<81"
    .fer-venv/bin/python benchmarks/app_speed_fer.py INPUT.npz OUTPUT.json

INPUT.npz holds the benchmark's frames and faces (see app_speed.py); OUTPUT.json
gets fer's timings and predictions. Every network connection is refused and
recorded: fer must not download anything while it runs.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

CONNECTIONS: list[str] = []


def refuse_network() -> None:
    """Make every socket connection fail, and remember where it tried to go."""
    def refuse(self, address):
        CONNECTIONS.append(str(address))
        raise OSError(f"network use refused by the benchmark: {address}")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse


def make_detector():
    """FER() as its README shows; if its default cascade path is empty (the
    opencv 5.x wheels ship no Haar cascades), FER(cascade_file=<the copy fer ships>)."""
    import cv2
    import numpy
    from fer.fer import FER

    detector, note = FER(), "FER() defaults"
    try:
        detector.find_faces(numpy.zeros((64, 64, 3), numpy.uint8))
    except cv2.error:
        import fer

        shipped = os.path.join(os.path.dirname(fer.__file__), "data",
                               "haarcascade_frontalface_default.xml")
        detector = FER(cascade_file=shipped)
        note = (f"FER() fails with opencv {cv2.__version__} (no cv2.data.haarcascades file: "
                f"'detectMultiScale: !empty()'); used FER(cascade_file=fer/data/"
                f"haarcascade_frontalface_default.xml), the copy fer ships")
    return detector, note


def top(emotions: dict) -> str:
    return max(emotions, key=emotions.get)


def time_video(detector, frames) -> dict:
    """Per-frame detection (find_faces) and classification (detect_emotions on those boxes)."""
    detect_s, classify_s, faces = [], [], []
    for index, frame in enumerate(frames):  # frame (H, W, 3) BGR
        start = time.perf_counter()
        boxes = detector.find_faces(frame)
        middle = time.perf_counter()
        found = detector.detect_emotions(frame, face_rectangles=boxes) if len(boxes) else []
        end = time.perf_counter()
        if index >= 3:  # the first frames warm up TensorFlow Lite
            detect_s.append(middle - start)
            classify_s.append(end - middle)
            faces.append(len(found))
    return {"detect_s": detect_s, "classify_s": classify_s, "faces": faces}


def main() -> int:
    refuse_network()
    import cv2
    import numpy

    source, target = sys.argv[1], sys.argv[2]
    data = numpy.load(source)
    detector, note = make_detector()
    result = {"note": note, "videos": {}}
    for name in ("one_face", "four_faces"):
        result["videos"][name] = time_video(detector, data[name])

    crops, scenes, boxes = [], [], []
    for face, scene in zip(data["faces"], data["scenes"]):  # (48, 48), (H, W) grey
        big = cv2.cvtColor(cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC),
                           cv2.COLOR_GRAY2BGR)
        whole = detector.detect_emotions(big, face_rectangles=[(0, 0, 160, 160)])
        crops.append(top(whole[0]["emotions"]) if whole else None)
        found = detector.detect_emotions(cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR))
        scenes.append([top(face["emotions"]) for face in found])
        boxes.append([[int(v) for v in face["box"]] for face in found])
    import fer

    result.update(version=fer.__version__, opencv=cv2.__version__, crop_labels=crops,
                  scene_labels=scenes, scene_boxes=boxes, network_attempts=CONNECTIONS)
    with open(target, "w") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
