"""Test pictures with known answers: real FER-2013 faces pasted onto larger backgrounds.

The tests and the speed benchmark need photos where the face boxes and the
emotions are known. Each face is a real 48x48 FER-2013 image blown up (e.g. to
180x180) and pasted at a chosen place on a smooth, slightly noisy background.

    faces, labels = read_fer_faces("fer2013.csv.gz", usage="PublicTest", count=20)
    scene, boxes = paste_faces(faces[:2], size=(480, 640), side=180, seed=0)
    # scene (480, 640) uint8 grey, boxes (2, 4) int [x, y, w, h] where the faces are
"""
from __future__ import annotations

import math

import cv2
import numpy
import pandas

from ..cli import one_line
from ..data.dataset import DataError


def read_fer_faces(path: str, usage: str = "PublicTest", count: int | None = None,
                   seed: int | None = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Rows of a FER-2013 CSV (.csv or .csv.gz) with Usage == ``usage``.

    Returns faces (N, 48, 48) uint8 and labels (N,) int64; with ``count``, N of
    them drawn at random (``seed``) without replacement. A DataError (one clear line in
    the CLIs) if the file cannot be read as such a CSV or has no ``usage`` rows.
    """
    try:
        table = pandas.read_csv(path, usecols=["emotion", "pixels", "Usage"])
    except (OSError, EOFError, ValueError) as error:  # missing, damaged, empty, other columns
        raise DataError(f"{path}: not a readable FER-2013 CSV with emotion, pixels and Usage "
                        f"columns ({one_line(error)})") from None
    table = table[table["Usage"] == usage]
    if table.empty:
        raise DataError(f"{path}: no {usage} rows")
    if count is not None and count < len(table):
        table = table.sample(n=count, random_state=seed)
    try:
        pixels = [numpy.array(row.split(), dtype=numpy.uint8) for row in table["pixels"]]
        faces = numpy.stack(pixels).reshape(-1, 48, 48)  # (N, 48, 48)
    except (AttributeError, ValueError, OverflowError) as error:
        raise DataError(f"{path}: a {usage} row's pixels are not 48x48 grey values 0..255 "
                        f"({one_line(error)})") from None
    return faces, table["emotion"].to_numpy(dtype=numpy.int64)


def background(size: tuple[int, int], seed: int = 0) -> numpy.ndarray:
    """A smooth grey (H, W) uint8 background: a soft diagonal gradient plus blurred noise."""
    height, width = size
    rng = numpy.random.default_rng(seed)
    rows, cols = numpy.mgrid[0:height, 0:width]
    gradient = 90 + 60 * (rows / height + cols / width) / 2  # (H, W)
    noise = cv2.GaussianBlur(rng.normal(0, 25, size=(height, width)), (0, 0), 6)
    return numpy.clip(gradient + noise, 0, 255).astype(numpy.uint8)


def grid_places(count: int, size: tuple[int, int], side: int) -> list[tuple[int, int]]:
    """Top-left corners for ``count`` squares of ``side`` pixels spread evenly over
    ``size`` (H, W) without overlap, on a grid of ceil(sqrt(count)) columns."""
    height, width = size
    columns = math.ceil(math.sqrt(count))
    rows = -(-count // columns)
    if columns * side > width or rows * side > height:
        raise ValueError(f"{count} faces of {side} px do not fit in {width}x{height}")
    gap_x = (width - columns * side) // (columns + 1)
    gap_y = (height - rows * side) // (rows + 1)
    return [(gap_x + (index % columns) * (side + gap_x), gap_y + (index // columns) * (side + gap_y))
            for index in range(count)]


def paste_faces(faces: numpy.ndarray, size: tuple[int, int] = (480, 640), side: int = 180,
                places: list[tuple[int, int]] | None = None,
                seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Paste ``faces`` (F, 48, 48) uint8, each resized to ``side`` x ``side``, onto a
    background of ``size`` (H, W) at ``places`` (top-left x, y; default a grid).

    Returns the scene (H, W) uint8 and the pasted boxes (F, 4) int64 [x, y, w, h].
    """
    scene = background(size, seed)
    places = places if places is not None else grid_places(len(faces), size, side)
    boxes = numpy.zeros((len(faces), 4), dtype=numpy.int64)  # (F, 4)
    for index, (face, (x, y)) in enumerate(zip(faces, places)):
        scene[y:y + side, x:x + side] = cv2.resize(face, (side, side),
                                                   interpolation=cv2.INTER_CUBIC)
        boxes[index] = (x, y, side, side)
    return scene, boxes


def drifting_scenes(faces: numpy.ndarray, places, side: int, frames: int,
                    size: tuple[int, int] = (480, 640), drift: int = 8,
                    period: float = 5.0) -> tuple[numpy.ndarray, numpy.ndarray]:
    """A video's worth of scenes: ``faces`` (F, 48, 48) at ``side`` px drifting
    around ``places`` (top-left x, y), frame t shifted by (+d, -d) with
    d = round(drift * sin(t / period)) (8 px and 5 frames: up to 1.6 px per frame);
    the background's noise changes every frame.

    Returns scenes (T, H, W) uint8 and the pasted boxes (T, F, 4) int64.
    """
    scenes, boxes = [], []
    for index in range(frames):
        shift = round(drift * math.sin(index / period))
        moved = [(x + shift, y - shift) for x, y in places]
        scene, pasted = paste_faces(faces, size=size, side=side, places=moved, seed=index)
        scenes.append(scene)
        boxes.append(pasted)
    return numpy.stack(scenes), numpy.stack(boxes)


def iou(box_a, box_b) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ax, ay, aw, ah = box_a
    bx, by, bw, bh = box_b
    overlap_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    overlap_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    overlap = overlap_w * overlap_h
    return overlap / float(aw * ah + bw * bh - overlap)
