"""EmotionRecognizer: pictures in, faces with their emotions out (plain, JSON-ready data).

    from fer_app import EmotionRecognizer
    rec = EmotionRecognizer()                     # the shipped model
    rec.detect("photo.jpg")
    # [{"box": [x, y, w, h], "emotion": "happy", "score": 0.91,
    #   "probabilities": {"angry": 0.01, ..., "neutral": 0.03}}, ...]
    rec.classify(face48)                          # one (48, 48) crop -> one dict without "box"

A picture goes: grey (faces.to_grey) -> Haar boxes (faces.FaceDetector) ->
48x48 crops with a margin (faces.crop_faces) -> one forward pass for all faces of
the picture (inference.Classifier.predict_proba) -> one dict per face. Frames of a
video can be searched with a tracker instead (tracking.FaceTracker: whole frames
every k-th frame, around the last boxes in between):

    tracker = rec.tracker(detect_every=5)
    for frame in frames:
        rec.detect(frame, color="bgr", tracker=tracker)
"""
from __future__ import annotations

import os

import numpy
from PIL import Image

from .faces import FACE_SIZE, FaceDetector, crop_faces, to_grey
from .inference import NAMED_MODELS, load_classifier
from .pictures import check_size, pil_to_array, read_image
from .tracking import FaceTracker


class EmotionRecognizer:
    """Find faces and tell their emotions.

    model: "default" (the most accurate shipped model, fer_app/weights/default.npz), "fast"
        (one small network, fer_app/weights/fast.npz, what video and the web page use) or a
        path to a model file.
    backend: tinycnn backend for the network: None (default: numba when its kernels load
        here, else numpy), "numpy", "numba" or "cupy". With the fused inference path, whose
        thread count follows the cores left free (tinycnn/threads.py), numba classified one
        face faster than numpy even on the shared 2-core machine (5.2 vs 7.0 ms with the
        fast model, 21 vs 27 ms with the three-network default: benchmarks/results/app_speed.md).
    min_face_size: smallest face side in pixels that is reported.
    margin: each face box grows by this fraction of its side on every side before
        it is cut out. 0.0 by default: on real FER-2013 faces pasted into larger
        pictures, the Haar box has the size of the FER crop (median ratio 1.03), so
        the bare box is what the network saw in training (see fer_app/recognition/faces.py).
    tta: average the network's output over test-time augmentation (10 passes:
        better for photos, too slow for live video).
    fused: run the network's fused inference form (``tinycnn.fuse``, the default);
        False runs the layers themselves (same predictions up to float32 rounding).
    """

    def __init__(self, model: str = "default", backend: str | None = None,
                 min_face_size: int = 40, margin: float = 0.0, tta: bool = False,
                 fused: bool = True):
        self.classifier = load_classifier(model, backend, fused)
        self.class_names: list[str] = list(self.classifier.class_names)
        self.detector = FaceDetector(min_face_size=min_face_size)
        self.margin = float(margin)
        self.tta = bool(tta)
        self.model_name = model if model in NAMED_MODELS else os.path.basename(str(model))

    def detect(self, image, color: str = "rgb", tracker: FaceTracker | None = None) -> list[dict]:
        """Every face in ``image`` with its box and emotion probabilities.

        image: a file path, a PIL image, or an array (H, W) grey / (H, W, 3|4) in
            ``color`` order - "rgb" (PIL, matplotlib, imageio) by default, "bgr" for
            arrays from cv2.imread / cv2.VideoCapture.
        tracker: for the frames of one video, in order: finds the faces instead of a
            whole-picture search (see :meth:`tracker`).
        Returns one dict per face, left to right:
        {"box": [x, y, w, h], "emotion": name, "score": p, "probabilities": {name: p}}.
        """
        grey = load_grey(image, color)  # (H, W) uint8
        boxes, probabilities = self.analyze(grey, tracker)
        return [dict(box=[int(v) for v in box], **self._describe(row))
                for box, row in zip(boxes, probabilities)]

    def analyze(self, grey: numpy.ndarray,
                tracker: FaceTracker | None = None) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Arrays instead of dicts: grey (H, W) uint8 -> boxes (F, 4) int64 and
        probabilities (F, K) float32, all faces in one forward pass."""
        finder = self.detector if tracker is None else tracker
        boxes = finder.find(grey)  # (F, 4)
        return boxes, self.classify_crops(crop_faces(grey, boxes, self.margin))

    def tracker(self, detect_every: int = 5) -> FaceTracker:
        """A FaceTracker with this recognizer's detector, for one video's frames in order:
        a whole-frame search every ``detect_every``-th frame, local ones in between."""
        return FaceTracker(self.detector, detect_every)

    def classify_crops(self, faces: numpy.ndarray) -> numpy.ndarray:
        """faces (F, 48, 48) uint8 -> probabilities (F, K) float32 (F may be 0)."""
        if len(faces) == 0:
            return numpy.zeros((0, len(self.class_names)), dtype=numpy.float32)
        return numpy.asarray(self.classifier.predict_proba(faces, tta=self.tta), dtype=numpy.float32)

    def classify(self, faces) -> dict | list[dict]:
        """Emotions of faces that are already cropped to 48x48 like FER-2013.

        faces: one face (48, 48) -> one dict; a batch (N, 48, 48) -> a list of N dicts.
        uint8 0..255 grey (or (48, 48, 3) in RGB). Each dict is {"emotion", "score",
        "probabilities"}.
        """
        faces = numpy.asarray(faces)
        single = faces.ndim == 2 or (faces.ndim == 3 and faces.shape[-1] in (3, 4)
                                     and faces.shape[:2] == (FACE_SIZE, FACE_SIZE))
        batch = faces[None] if single else faces
        batch = numpy.stack([to_grey(face) for face in batch]) if len(batch) else batch
        if batch.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"classify expects (48, 48) or (N, 48, 48) faces, got {faces.shape}; "
                             f"use detect() for whole pictures")
        described = [self._describe(row) for row in self.classify_crops(batch)]
        return described[0] if single else described

    def _describe(self, probabilities: numpy.ndarray) -> dict:
        """(K,) probabilities -> {"emotion", "score", "probabilities"} with Python floats."""
        best = int(numpy.argmax(probabilities))
        return {"emotion": self.class_names[best], "score": float(probabilities[best]),
                "probabilities": {name: float(p) for name, p in zip(self.class_names, probabilities)}}


def load_grey(image, color: str = "rgb") -> numpy.ndarray:
    """A path, PIL image or array -> (H, W) uint8 grey (see EmotionRecognizer.detect)."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
        color = "rgb"
    elif isinstance(image, Image.Image):
        check_size(image)  # before pil_to_array decodes it
        image = pil_to_array(image)
        color = "rgb"
    return to_grey(image, color)
