"""Draw detections onto a picture: a box per face, its top emotion and a small bar chart.

    annotated = annotate(rgb, rec.detect(rgb))   # (H, W, 3) uint8 copy, same colour order

Used by ``fer_app.predict --annotate`` and ``fer_app.video``. Colours are given
in RGB; pass ``color="bgr"`` when drawing on OpenCV (BGR) frames.
"""
from __future__ import annotations

import cv2
import numpy

FONT = cv2.FONT_HERSHEY_SIMPLEX
EMOTION_COLORS = {  # RGB
    "angry": (230, 60, 50), "disgust": (120, 170, 40), "fear": (150, 90, 200),
    "happy": (250, 200, 30), "sad": (60, 120, 230), "surprise": (250, 130, 40),
    "neutral": (170, 170, 170),
}
OTHER_COLOR = (0, 200, 200)
BAR_ROW = 11        # pixels per emotion row in the bar chart
BAR_WIDTH = 70      # pixels of a bar at probability 1


def emotion_color(name: str, color: str = "rgb") -> tuple[int, int, int]:
    """The drawing colour of an emotion in ``color`` channel order."""
    rgb = EMOTION_COLORS.get(name, OTHER_COLOR)
    return rgb if color == "rgb" else rgb[::-1]


def annotate(image: numpy.ndarray, faces: list[dict], color: str = "rgb") -> numpy.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with every face of ``faces`` (dicts from
    EmotionRecognizer.detect) drawn: box, "emotion score" label, probability bars."""
    canvas = numpy.ascontiguousarray(image).copy()
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
    for face in faces:
        draw_face(canvas, face, color)
    return canvas


def draw_face(canvas: numpy.ndarray, face: dict, color: str = "rgb") -> None:
    """Draw one face's box, label and bars onto ``canvas`` (H, W, 3) in place."""
    x, y, w, h = face["box"]
    line = emotion_color(face["emotion"], color)
    thickness = max(2, round(w / 80))
    cv2.rectangle(canvas, (x, y), (x + w, y + h), line, thickness)
    label = f"{face['emotion']} {face['score']:.2f}"
    scale = 0.5
    (text_w, text_h), baseline = cv2.getTextSize(label, FONT, scale, 1)
    top = max(0, y - text_h - baseline - 4)
    cv2.rectangle(canvas, (x, top), (x + text_w + 6, top + text_h + baseline + 4), line, -1)
    cv2.putText(canvas, label, (x + 3, top + text_h + 2), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    draw_bars(canvas, face["probabilities"], (x, y + h + 4), color)


def draw_bars(canvas: numpy.ndarray, probabilities: dict, corner: tuple[int, int],
              color: str = "rgb") -> None:
    """A small bar chart of ``probabilities`` (name -> p) with its top-left at ``corner``;
    moved up inside the picture if it would fall off the bottom."""
    x, y = corner
    height = BAR_ROW * len(probabilities) + 4
    y = min(y, canvas.shape[0] - height)
    x = min(max(0, x), max(0, canvas.shape[1] - 60 - BAR_WIDTH))
    panel = canvas[max(0, y):y + height, x:x + 60 + BAR_WIDTH]
    panel[:] = (panel * 0.35).astype(canvas.dtype)          # darken behind the chart
    for row, (name, p) in enumerate(probabilities.items()):
        top = y + 2 + row * BAR_ROW
        cv2.putText(canvas, name[:8], (x + 2, top + BAR_ROW - 2), FONT, 0.33, (255, 255, 255), 1,
                    cv2.LINE_AA)
        length = max(1, round(p * BAR_WIDTH))
        cv2.rectangle(canvas, (x + 56, top + 2), (x + 56 + length, top + BAR_ROW - 2),
                      emotion_color(name, color), -1)
