"""How often the Haar search finds a face, by face size: shrunk frame against full resolution.

    python benchmarks/face_recall.py                       # 200 faces, faces >= 40 px
    python benchmarks/face_recall.py --faces 400 --min-face-size 40 --sizes 40,48,64,80,100,160

Each of ``--faces`` FER-2013 PublicTest faces is pasted at each size at a random place
of a 640x480 background (fer_app/recognition/scenes.py) and searched for with FaceDetector
(fer_app/recognition/faces.py) twice: on the frame shrunk by 24 / min_face_size (the default) and on
the full-resolution frame (``downscale=False``). A face counts as found when a box
overlaps it with IoU > 0.5; other boxes count as false. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy
from tqdm import tqdm

from fer_app.cli import error_boundary
from fer_app.data.load import find_data
from fer_app.recognition.faces import FaceDetector
from fer_app.recognition.scenes import iou, paste_faces, read_fer_faces

SIZE = (480, 640)  # (H, W) of the pictures


def score(detector: FaceDetector, scenes: list, boxes: list) -> dict:
    """Faces found, false boxes and median milliseconds per picture."""
    found, false, seconds = 0, 0, []
    for scene, box in zip(scenes, boxes):
        start = time.perf_counter()
        result = detector.find(scene)
        seconds.append(time.perf_counter() - start)
        hits = sum(iou(other, box) > 0.5 for other in result)
        found += hits > 0
        false += len(result) - hits
    return {"found": found, "false": false, "ms": 1000 * float(numpy.median(seconds))}


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=200, help="PublicTest faces (default 200)")
    parser.add_argument("--min-face-size", type=int, default=40, help="default 40")
    parser.add_argument("--sizes", default="40,48,56,64,80,100,160",
                        help="face sides in pixels, comma-separated (default %(default)s)")
    parser.add_argument("--data", default=None, help="FER-2013 CSV (default: found like training)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")
    if args.faces < 1 or args.min_face_size < 1 or not all(0 < s <= min(SIZE) for s in sizes):
        parser.error(f"--faces and --min-face-size must be >= 1 and --sizes in 1..{min(SIZE)}")

    faces, _ = read_fer_faces(find_data(args.data), "PublicTest", args.faces, seed=0)
    detectors = {"shrunk": FaceDetector(args.min_face_size),
                 "full resolution": FaceDetector(args.min_face_size, downscale=False)}
    rng = numpy.random.default_rng(0)
    lines = [f"Faces found of {len(faces)} FER-2013 PublicTest faces pasted in 640x480 pictures, "
             f"faces >= {args.min_face_size} px (shrunk: searched at scale "
             f"{detectors['shrunk'].search_scale:.3g}):", "",
             "| face side px | " + " | ".join(f"{name}: found | false | ms" for name in detectors)
             + " |", "|---" * (1 + 3 * len(detectors)) + "|"]
    for side in tqdm(sizes, desc="sizes"):
        scenes, boxes = [], []
        for index, face in enumerate(faces):
            place = (int(rng.integers(0, SIZE[1] - side + 1)),
                     int(rng.integers(0, SIZE[0] - side + 1)))
            scene, box = paste_faces(face[None], size=SIZE, side=side, places=[place], seed=index)
            scenes.append(scene)
            boxes.append(box[0])
        row = [score(detector, scenes, boxes) for detector in detectors.values()]
        lines.append(f"| {side} | " + " | ".join(f"{r['found']} | {r['false']} | {r['ms']:.1f}"
                                                 for r in row) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
