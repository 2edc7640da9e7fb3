"""Find faces in a picture and cut them out as 48x48 grey crops, like FER-2013's.

Faces are found with OpenCV's Haar cascade ``haarcascade_frontalface_default.xml``
(shipped inside ``opencv-python-headless`` 4.x under ``cv2.data.haarcascades``).
Each box can grow by ``margin`` (a fraction of its side) on every side; it is then
cut out of the grey picture and resized to 48x48 with area averaging - uint8
(48, 48) faces like the ones the model was trained on. FER-2013's crops turn out
to match this cascade's boxes: on 300 PublicTest faces pasted at 160 px the box
found has a median side of 1.03x the pasted face and the same centre (within
0.3%), so the default margin is 0.

    grey = to_grey(rgb_image)                  # (H, W) uint8
    boxes = FaceDetector(min_face_size=40).find(grey)   # (F, 4) int: x, y, w, h
    faces = crop_faces(grey, boxes, margin=0.0)         # (F, 48, 48) uint8
"""
from __future__ import annotations

import os

import cv2
import numpy

from .pictures import as_uint8

FACE_SIZE = 48
CASCADE_FILE = "haarcascade_frontalface_default.xml"
CASCADE_WINDOW = 24  # pixels: the smallest face the cascade itself can find


def cascade_path() -> str:
    """Path of the frontal-face Haar cascade shipped with opencv-python(-headless) 4.x."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = os.path.join(folder, CASCADE_FILE) if folder else ""
    if not os.path.isfile(path):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} ships no {CASCADE_FILE} (cv2.data.haarcascades is "
            f"{folder!r}); install opencv-python-headless>=4.8,<5 (the 5.x wheels have no cascades)")
    return path


def to_grey(image: numpy.ndarray, color: str = "rgb") -> numpy.ndarray:
    """Any picture array -> (H, W) uint8 grey.

    image: (H, W) grey, (H, W, 1), (H, W, 3) or (H, W, 4) with channels in
    ``color`` order ("rgb" or "bgr"; a 4th alpha channel is dropped). Grey is
    0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's "L" and OpenCV). Arrays
    that are not uint8 are scaled by pictures.as_uint8: uint16 by 65535, floats as
    0..1 when their maximum is <= 1, else as 0..255 (or 0..65535 above 255).
    """
    if color not in ("rgb", "bgr"):
        raise ValueError(f"color must be 'rgb' or 'bgr', not {color!r}")
    image = numpy.asarray(image)
    if image.ndim >= 2 and 0 in image.shape[:2]:
        raise ValueError(f"the image is empty: shape {image.shape}")
    image = as_uint8(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return numpy.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), "
                         f"got {image.shape}")
    code = cv2.COLOR_RGB2GRAY if color == "rgb" else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(numpy.ascontiguousarray(image[:, :, :3]), code)


class FaceDetector:
    """OpenCV's Haar frontal-face cascade with settings chosen for photos and webcams.

    min_face_size: smallest face side in pixels that is reported (smaller faces
        are skipped; they also classify badly once blown up to 48x48).
    scale_factor, min_neighbors: cv2.CascadeClassifier.detectMultiScale's knobs
        (image pyramid step; how many overlapping hits make a face).
    downscale: search a shrunk copy of the picture (default), or the picture itself.

    The search scale. The cascade slides a 24x24 window (CASCADE_WINDOW) over the
    picture and over copies shrunk by scale_factor, 1.1 ** 2, ...; searching a copy
    shrunk by s, a face of side f is seen at side s * f, and the smallest face the
    cascade can see is 24 / s. Faces below min_face_size are not wanted, so the
    picture is searched at

        s = min(1, 24 / min_face_size)            (the floor: min_face_size -> 24 px)

    e.g. 0.6 for faces >= 40 px: a 640x480 frame is searched at 384x288, 36% of the
    pixels, and no pyramid level is spent on faces too small to report. A box
    [x, y, w, h] found there is [x, y, w, h] / s in the full picture (rounded; the
    shrunk copy's size is rounded too, so boxes may be off by < 1 / s px); faces are
    cut from the full picture. ``downscale=False`` searches at s = 1 with
    ``minSize = min_face_size``: the plain path, kept to test the shrunk one against.
    Which one finds more depends on the face size: of 200 FER faces pasted at random
    places (``python benchmarks/face_recall.py``, faces >= 40 px) the shrunk search
    found as many as the full-resolution one from 100 px up (133 vs 142 at 100 px,
    139 vs 136 at 160), but fewer near min_face_size, where shrinking loses detail (a
    48 px face is searched at 29 px): 87 vs 115 at 48 px, 96 vs 139 at 64, 119 vs 141
    at 80. Lower min_face_size when faces of less than 2.5x it matter.
    """

    def __init__(self, min_face_size: int = 40, scale_factor: float = 1.1,
                 min_neighbors: int = 5, downscale: bool = True):
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1 pixel, got {min_face_size}")
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.search_scale = min(1.0, CASCADE_WINDOW / self.min_face_size) if downscale else 1.0
        self.cascade = cv2.CascadeClassifier(cascade_path())

    def find(self, grey: numpy.ndarray) -> numpy.ndarray:
        """Faces in ``grey`` (H, W) uint8 -> boxes (F, 4) int64 [x, y, w, h], left to right."""
        height, width = grey.shape
        return self.find_in(grey, (0, 0, width, height), self.min_face_size)

    def find_in(self, grey: numpy.ndarray, region, min_side: float,
                max_side: float | None = None) -> numpy.ndarray:
        """Faces inside one part of ``grey`` (H, W) uint8, searched at the same scale as
        :meth:`find` (so with the same pyramid levels, hence box sizes).

        region: (x0, y0, x1, y1) in pixels of ``grey``, clipped to the picture.
        min_side, max_side: only faces with sides in this range are looked for (pixels of
            ``grey``; max_side None: no upper bound); never below min_face_size.
        Returns boxes (F, 4) int64 [x, y, w, h] in pixels of ``grey``, left to right.
        """
        height, width = grey.shape
        x0, y0 = max(0, int(region[0])), max(0, int(region[1]))
        x1, y1 = min(width, int(region[2])), min(height, int(region[3]))
        scale = self.search_scale
        small_size = (round((x1 - x0) * scale), round((y1 - y0) * scale))  # (w, h) searched
        if min(small_size) < CASCADE_WINDOW:
            return numpy.zeros((0, 4), dtype=numpy.int64)
        part = grey[y0:y1, x0:x1]
        small = part if scale == 1.0 else cv2.resize(part, small_size, interpolation=cv2.INTER_AREA)
        low = max(1, round(max(min_side, self.min_face_size) * scale))
        high = 0 if max_side is None else max(low, round(max_side * scale))  # 0: no bound
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(low, low), maxSize=(high, high))
        boxes = numpy.asarray(found, dtype=numpy.float64).reshape(-1, 4) / scale  # (F, 4)
        boxes = numpy.rint(boxes).astype(numpy.int64) + numpy.array([x0, y0, 0, 0])
        return left_to_right(boxes[boxes[:, 2] >= self.min_face_size])


def left_to_right(boxes: numpy.ndarray) -> numpy.ndarray:
    """boxes (F, 4) [x, y, w, h] sorted by x, then y."""
    return boxes[numpy.lexsort((boxes[:, 1], boxes[:, 0]))]


def crop_faces(grey: numpy.ndarray, boxes: numpy.ndarray, margin: float = 0.0) -> numpy.ndarray:
    """Cut each box out of ``grey`` (H, W) uint8 as a (48, 48) uint8 face.

    Each box [x, y, w, h] grows by ``margin * side`` on every side; parts that
    fall outside the picture are filled by repeating the border pixels (so a
    face at the edge keeps its place in the crop). Returns (F, 48, 48) uint8.
    """
    faces = numpy.empty((len(boxes), FACE_SIZE, FACE_SIZE), dtype=numpy.uint8)  # (F, 48, 48)
    for index, box in enumerate(boxes):
        faces[index] = crop_face(grey, box, margin)
    return faces


def crop_face(grey: numpy.ndarray, box, margin: float = 0.0) -> numpy.ndarray:
    """One box of ``grey`` (H, W) uint8 -> (48, 48) uint8; see :func:`crop_faces`."""
    x0, y0, x1, y1 = grown_box(box, margin)
    height, width = grey.shape
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    square = grey[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    interpolation = cv2.INTER_AREA if square.shape[0] >= FACE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(square, (FACE_SIZE, FACE_SIZE), interpolation=interpolation)


def grown_box(box, margin: float) -> tuple[int, int, int, int]:
    """[x, y, w, h] -> square (x0, y0, x1, y1) around the same centre, side
    ``max(w, h) * (1 + 2 * margin)``; may reach outside the picture."""
    x, y, w, h = (int(v) for v in box)
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    x0 = round(x + w / 2 - side / 2)
    y0 = round(y + h / 2 - side / 2)
    return x0, y0, x0 + side, y0 + side
