"""Follow faces through a video: a whole-frame search every k-th frame, local ones in between.

Searching a whole 640x480 frame with the Haar cascade costs most where faces are:
every window inside a face, at every pyramid level smaller than the face, runs
deep into the cascade (four 150 px faces make the search about three times as
slow as one). Between two frames a face moves little and keeps its size, so
after a whole-frame search (FaceDetector.find) the next frames are searched only
around the last boxes:

    region = the last box [x, y, w, h] grown by ``pad * w`` on every side
    sizes  = w / size_range ... w * size_range

at the detector's own search scale (so the pyramid levels, hence the box sizes, are
the ones a whole-frame search would give; on the benchmark's drifting 150-160 px
faces boxes differ from whole-frame ones by a median 4 px, at most 15). With the
defaults (pad 0.25, size_range 1.15) a local search covers a 1.5w x 1.5w square at
3 pyramid levels instead of the whole frame at 27 (640x480 shrunk to 384x288, windows
of 24 to 288 px): on the benchmark's frames, one thread, 1.8 ms of CPU against 20 ms
for one face, 9 against 55 ms for four.
A whole frame is searched again

- every ``detect_every``-th frame, for new faces: the faces being followed are found
  by their local searches as on any frame, and painted out (each box, grown by
  ``paint_margin * w``, filled with its mean grey) in the copy that is searched whole,
  so that the cascade rejects their windows at its first stages. On the frames of
  ``benchmarks/app_speed.py`` (``python -m benchmarks.painted_search``) a whole search
  took 12-15 ms with one face and 27-28 ms with four, 4.0-4.4 and 5.2-5.4 ms with them
  painted out, and 3.2-4.0 ms on a flat frame (two runs).
  A new face is found there unless it overlaps a painted box (then it is found once
  the two part);
- at once, in the same frame, when a local search loses a face (it moved too
  far, turned away or left): so a face is never dropped on a local miss alone.
  This search paints nothing out, and
- on every frame while no face is being followed (a frame without faces is
  cheap to search: the cost is in the faces).

    tracker = FaceTracker(FaceDetector(min_face_size=40), detect_every=5)
    for grey in frames:                  # (H, W) uint8
        boxes = tracker.find(grey)       # (F, 4) int64 [x, y, w, h], left to right

``detect_every=1`` searches every frame whole, nothing painted out: the plain path.
"""
from __future__ import annotations

import numpy

from .faces import FaceDetector, left_to_right
from .scenes import iou


class FaceTracker:
    """Face boxes of consecutive video frames, searching whole frames only every k-th frame.

    detector: the FaceDetector that searches (its min_face_size, scale and cascade).
    detect_every: search the whole frame every this many frames (1: every frame).
    pad: a local search covers the last box grown by this fraction of its side on
        every side (0.25: a 1.5w x 1.5w square; a face may move w/4 between two
        frames, 1200 px/s for a 160 px face at 30 frames/s, before it is searched whole).
    size_range: a local search looks for faces between w / size_range and
        w * size_range wide (a face grows or shrinks by less than 15% between frames).
    paint_margin: the periodic whole-frame search paints out each followed box grown by
        this fraction of its side on every side (0.1 also hides the hair and chin around
        the box, where windows that hold part of a face run deep into the cascade).
    """

    def __init__(self, detector: FaceDetector, detect_every: int = 5, pad: float = 0.25,
                 size_range: float = 1.15, paint_margin: float = 0.1):
        if int(detect_every) != detect_every or detect_every < 1:
            raise ValueError(f"detect_every must be a whole number >= 1, got {detect_every!r}")
        if not pad > 0:
            raise ValueError(f"pad must be > 0 (a fraction of the face side), got {pad!r}")
        if not size_range > 1:
            raise ValueError(f"size_range must be > 1, got {size_range!r}")
        if not paint_margin >= 0:
            raise ValueError(f"paint_margin must be >= 0 (a fraction of the face side), "
                             f"got {paint_margin!r}")
        self.detector = detector
        self.detect_every = int(detect_every)
        self.pad = float(pad)
        self.size_range = float(size_range)
        self.paint_margin = float(paint_margin)
        self.boxes = numpy.zeros((0, 4), dtype=numpy.int64)  # (F, 4) of the last frame
        self.since_search = None  # frames since the last whole-frame search (None: never)
        self.whole_searches = 0   # how many frames were searched whole (for benchmarks)

    def find(self, grey: numpy.ndarray) -> numpy.ndarray:
        """Faces in the next frame ``grey`` (H, W) uint8 -> boxes (F, 4) int64, left to right."""
        plain = self.since_search is None or self.detect_every == 1
        followed = None if plain else self.follow(grey)
        if followed is None or len(followed) == 0:    # plain, nothing followed, or a face lost
            found = self.detector.find(grey)
        elif self.since_search + 1 >= self.detect_every:   # new faces, beside the followed ones
            others = self.detector.find(self.painted_out(grey, followed))
            found = left_to_right(numpy.concatenate([followed, self.outside(others, followed)]))
        else:
            self.since_search += 1
            self.boxes = followed
            return followed
        self.since_search = 0
        self.whole_searches += 1
        self.boxes = found
        return found

    def follow(self, grey: numpy.ndarray) -> numpy.ndarray | None:
        """Each last box searched for near where it was -> boxes (F, 4); None when one is
        lost."""
        kept = []
        for box in self.boxes:
            near = self.detector.find_in(grey, grown(box, self.pad), box[2] / self.size_range,
                                         box[2] * self.size_range)
            if len(near) == 0:
                return None
            best = max(near, key=lambda other: iou(other, box))  # the same face, not a neighbour
            if all(iou(best, other) < 0.5 for other in kept):   # two faces may meet one box
                kept.append(best)
        return left_to_right(numpy.array(kept, dtype=numpy.int64).reshape(-1, 4))

    def painted_out(self, grey: numpy.ndarray, boxes: numpy.ndarray) -> numpy.ndarray:
        """A copy of ``grey`` (H, W) uint8 with each box, grown by paint_margin * side on
        every side, filled with the mean grey of the box."""
        painted = grey.copy()
        for box in boxes:
            x, y, w, h = (int(v) for v in box)
            x0, y0, x1, y1 = grown(box, self.paint_margin)
            painted[max(0, y0):y1, max(0, x0):x1] = round(float(grey[y:y + h, x:x + w].mean()))
        return painted

    def outside(self, boxes: numpy.ndarray, followed: numpy.ndarray) -> numpy.ndarray:
        """The boxes (F, 4) whose centre lies in no painted area of ``followed`` (a window
        across a painted edge is not a new face)."""
        def centre_in(box, area):
            cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
            return area[0] <= cx < area[2] and area[1] <= cy < area[3]
        areas = [grown(box, self.paint_margin) for box in followed]
        kept = [box for box in boxes if not any(centre_in(box, area) for area in areas)]
        return numpy.array(kept, dtype=numpy.int64).reshape(-1, 4)

    def reset(self) -> None:
        """Forget the last boxes: the next frame is searched whole (a cut, a new video)."""
        self.boxes = numpy.zeros((0, 4), dtype=numpy.int64)
        self.since_search = None


def grown(box, fraction: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): ``box`` [x, y, w, h] grown by ``fraction`` of its side on every side."""
    x, y, w, h = (int(v) for v in box)
    grow = round(fraction * max(w, h))
    return x - grow, y - grow, x + w + grow, y + h + grow
