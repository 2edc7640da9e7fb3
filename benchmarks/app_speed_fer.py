"""The `fer` (PyPI) half of benchmarks/app_speed.py, run in fer's own environment.

fer pulls in TensorFlow, PyTorch and opencv-contrib-python, which must not
mix with this project's environment, so app_speed.py runs this file with the
Python of a separate virtual environment:

    python -m venv /work/.fer-venv && /work/.fer-venv/bin/pip install fer "setuptools<81"
    /work/.fer-venv/bin/python benchmarks/app_speed_fer.py INPUT.npz

INPUT.npz holds the benchmark's videos (one_face, four_faces: (T, H, W, 3) BGR), faces
and scenes (see app_speed.py). Once fer is loaded it prints one JSON line (its version,
OpenCV's, how the detector was made), then answers each request on standard input
with one JSON line, so that app_speed.py can time fer frame by frame in turn with its
own rows:
    frame NAME INDEX   -> {"detect_s", "classify_s", "faces"} for that frame of that video
    accuracy           -> fer's predictions on the faces and scenes (see accuracy())
Every network connection is refused and recorded: fer must not download anything.
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


def time_frame(detector, frame) -> dict:
    """Detection (find_faces) and classification (detect_emotions on those boxes) of one
    (H, W, 3) BGR frame, in seconds, and the faces found."""
    start = time.perf_counter()
    boxes = detector.find_faces(frame)
    middle = time.perf_counter()
    found = detector.detect_emotions(frame, face_rectangles=boxes) if len(boxes) else []
    end = time.perf_counter()
    return {"detect_s": middle - start, "classify_s": end - middle, "faces": len(found)}


def accuracy(detector, data) -> dict:
    """fer's top emotion for each 48x48 face (blown up to 160 px) and for each face it
    finds in each scene, with the boxes it found."""
    import cv2

    crops, scenes, boxes = [], [], []
    for face, scene in zip(data["faces"], data["scenes"]):  # (48, 48), (H, W) grey
        big = cv2.cvtColor(cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC),
                           cv2.COLOR_GRAY2BGR)
        whole = detector.detect_emotions(big, face_rectangles=[(0, 0, 160, 160)])
        crops.append(top(whole[0]["emotions"]) if whole else None)
        found = detector.detect_emotions(cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR))
        scenes.append([top(face["emotions"]) for face in found])
        boxes.append([[int(v) for v in face["box"]] for face in found])
    return {"crop_labels": crops, "scene_labels": scenes, "scene_boxes": boxes,
            "network_attempts": CONNECTIONS}


def main() -> int:
    """Answer app_speed.py's requests, one line each, on the original standard output;
    anything the libraries print goes to standard error instead."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    refuse_network()
    import cv2
    import numpy
    import fer

    data = numpy.load(sys.argv[1])
    detector, note = make_detector()
    for frame in data["one_face"][:3]:  # TensorFlow Lite's first calls are slow
        time_frame(detector, frame)
    answer(channel, {"version": fer.__version__, "opencv": cv2.__version__, "note": note})
    for line in sys.stdin:
        command, *arguments = line.split()
        if command == "frame":
            answer(channel, time_frame(detector, data[arguments[0]][int(arguments[1])]))
        elif command == "accuracy":
            answer(channel, accuracy(detector, data))
        else:
            raise ValueError(f"unknown request {line!r}")
    return 0


def answer(channel, message: dict) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


if __name__ == "__main__":
    sys.exit(main())
