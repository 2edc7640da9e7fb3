"""What a whole-frame face search costs with the followed faces painted out (FaceTracker).

    python -m benchmarks.painted_search                    # 20 frames of each scene
    python -m benchmarks.painted_search --frames 60 --min-face-size 40

The scenes of ``benchmarks/app_speed.py``, with the same faces (its default 500 PublicTest
faces, the first four the cascade finds alone): one face at 160 px and four at 150 px,
drifting on a 640x480 background (grey frames, not a decoded video). On each
frame FaceDetector (shrunk search, fer_app/recognition/faces.py) searches

  whole    the frame as it is,
  painted  the frame with the faces found by ``whole`` painted out, as FaceTracker's
           periodic search sees it (``FaceTracker.painted_out``, default paint_margin),
  flat     a frame of one grey (what any search costs: pyramid and first stages),

each right after a 10 ms pause (as between video frames). Prints the median milliseconds
and the faces each search found (painted: new faces, which should be none). Writes nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy

from benchmarks.app_speed import FOUR_PLACES, found_alone, pictures_of
from fer_app.cli import error_boundary
from fer_app.data.load import find_data
from fer_app.recognition.faces import FaceDetector
from fer_app.recognition.scenes import drifting_scenes, read_fer_faces
from fer_app.recognition.tracking import FaceTracker

PAUSE_S = 0.010


def timed_search(detector: FaceDetector, grey: numpy.ndarray) -> tuple[float, numpy.ndarray]:
    """(milliseconds, boxes) of one whole-frame search after a PAUSE_S sleep."""
    time.sleep(PAUSE_S)
    start = time.perf_counter()
    boxes = detector.find(grey)
    return 1000 * (time.perf_counter() - start), boxes


def scene_row(name: str, scenes: numpy.ndarray, tracker: FaceTracker) -> str:
    """One Markdown row: medians of whole, painted and flat searches over ``scenes``."""
    detector = tracker.detector
    flat = numpy.full_like(scenes[0], 128)
    whole, painted, empty, found, new = [], [], [], [], []
    for scene in scenes:
        ms, boxes = timed_search(detector, scene)
        whole.append(ms)
        found.append(len(boxes))
        ms, others = timed_search(detector, tracker.painted_out(scene, boxes))
        painted.append(ms)
        new.append(len(tracker.outside(others, boxes)))
        empty.append(timed_search(detector, flat)[0])
    return (f"| {name} | {statistics.median(whole):.2f} | {statistics.median(painted):.2f} | "
            f"{statistics.median(empty):.2f} | {numpy.mean(found):.2f} | {numpy.mean(new):.2f} |")


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.painted_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="fer2013.csv(.gz) (default: found as train does)")
    parser.add_argument("--frames", type=int, default=20, help="frames of each scene")
    parser.add_argument("--min-face-size", type=int, default=40)
    parser.add_argument("--faces", type=int, default=500,
                        help="PublicTest faces to choose 4 from (app_speed's --accuracy-faces)")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.min_face_size < 1 or args.faces < 4:
        parser.error("--frames and --min-face-size must be at least 1, --faces at least 4")
    detector = FaceDetector(min_face_size=args.min_face_size)
    tracker = FaceTracker(detector)
    faces, _ = read_fer_faces(find_data(args.data), "PublicTest", args.faces, seed=0)
    shown = faces[found_alone(detector, pictures_of(faces, seed=1)[0])[:4]]
    if len(shown) < 4:
        parser.error(f"only {len(shown)} of the {len(faces)} faces are found alone; raise --faces")
    print(f"1-minute load {os.getloadavg()[0]:.2f}; {args.frames} frames per scene, "
          f"faces >= {args.min_face_size} px, paint_margin {tracker.paint_margin}")
    print("| scene | whole ms | painted ms | flat frame ms | faces found (whole) | new faces (painted) |\n"
          "|---|---:|---:|---:|---:|---:|")
    scenes = {"one face, 160 px": drifting_scenes(shown[:1], [(240, 160)], 160, args.frames)[0],
              "four faces, 150 px": drifting_scenes(shown, FOUR_PLACES, 150, args.frames)[0]}
    for name, frames in scenes.items():
        print(scene_row(name, frames, tracker), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
