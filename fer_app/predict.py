"""Emotions of the faces in photos, from the command line.

    python -m fer_app.predict photo.jpg group.png            # a table per image and face
    python -m fer_app.predict photo.jpg --json               # {"photo.jpg": [{"box": ...}, ...]}
    python -m fer_app.predict *.jpg --annotate annotated/    # also write pictures with boxes
"""
from __future__ import annotations

import os

# One BLAS thread, set before NumPy loads OpenBLAS: a frame's 1-4 faces make small
# matrix products, and OpenBLAS's threads cost more than they give (a video ran at 8.6
# instead of 2.3 frames/s on the shared 2-core machine). Set the variable to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys

import numpy
from PIL import Image

from tinycnn import backend as backends

from .cli import UsageError, error_boundary, writable_folder
from .recognition.draw import annotate
from .recognition.faces import FACE_SIZE
from .recognition.recognizer import EmotionRecognizer, read_image

MAX_MARGIN = 1.0  # a face box may grow to 3 times its side, no more (the crop is padded in memory)


def add_recognizer_arguments(parser: argparse.ArgumentParser, live: bool) -> None:
    """The options every app CLI shares: which model, backend and face settings.

    ``live`` (video, camera, the web page): the shipped "fast" model (one small network)
    in one pass per face, for the frame rate. Otherwise (still pictures): the most accurate
    "default" model with test-time augmentation (10 passes per face).
    """
    model = "fast" if live else "default"
    parser.add_argument("--model", default=model,
                        help="'default' (the most accurate shipped model), 'fast' (one small "
                             f"network, for live video) or a model .npz file (default {model})")
    parser.add_argument("--backend", choices=backends.names(),
                        help="tinycnn backend: numpy, numba, cupy (default: numba when it runs "
                             "here, else numpy)")
    parser.add_argument("--min-face-size", type=int, default=40,
                        help="smallest face side in pixels (default 40)")
    parser.add_argument("--margin", type=float, default=0.0,
                        help=f"grow each face box by this fraction of its side, 0 to {MAX_MARGIN} "
                             f"(default 0.0)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=not live,
                        help="test-time augmentation: 10 passes per face, slower and usually more "
                             f"accurate (default {'off' if live else 'on'})")


def check_recognizer_options(args: argparse.Namespace) -> None:
    """A UsageError for a face setting out of range."""
    if args.min_face_size < 1:
        raise UsageError(f"--min-face-size must be at least 1 pixel, got {args.min_face_size}")
    if not 0.0 <= args.margin <= MAX_MARGIN:
        raise UsageError(f"--margin must be between 0 and {MAX_MARGIN} (a fraction of the face's "
                         f"side), got {args.margin}")


def build_recognizer(args: argparse.Namespace) -> EmotionRecognizer:
    return EmotionRecognizer(model=args.model, backend=args.backend,
                             min_face_size=args.min_face_size, margin=args.margin, tta=args.tta)


def warm_up(recognizer: EmotionRecognizer) -> None:
    """One blank face through the network before the live work starts (video, camera, web
    page), so that the first frame or upload does not wait for Numba to compile the kernels
    (the first start after an install: about 10-20 s) or to load them from its cache."""
    print(f"fer_app: preparing the model {recognizer.model_name} (the first start after an "
          f"install compiles its kernels, about 10-20 s)", flush=True)
    recognizer.classify(numpy.zeros((FACE_SIZE, FACE_SIZE), numpy.uint8))


def format_table(path: str, faces: list[dict]) -> str:
    """One picture's faces as a text table: box, top emotion, every probability."""
    if not faces:
        return f"{path}: no face found"
    names = list(faces[0]["probabilities"])
    header = f"{'face':>4}  {'box (x, y, w, h)':<22} {'emotion':<9}" + "".join(
        f"{name[:7]:>8}" for name in names)
    lines = [f"{path}: {len(faces)} face(s)", header]
    for index, face in enumerate(faces):
        box = ", ".join(str(v) for v in face["box"])
        probabilities = "".join(f"{face['probabilities'][name]:8.3f}" for name in names)
        lines.append(f"{index:>4}  {box:<22} {face['emotion']:<9}{probabilities}")
    return "\n".join(lines)


def annotated_path(out_dir: str, path: str) -> str:
    """Where the annotated copy of ``path`` goes: OUT_DIR/<name>.annotated.png."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(out_dir, f"{stem}.annotated.png")


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fer_app.predict", description="Find faces in photos and tell their emotions.")
    parser.add_argument("images", nargs="+", help="picture files (JPEG, PNG, ...)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object mapping each path to its list of faces")
    parser.add_argument("--annotate", metavar="OUT_DIR",
                        help="write each picture with boxes, labels and probability bars here")
    add_recognizer_arguments(parser, live=False)
    args = parser.parse_args(argv)
    check_recognizer_options(args)

    recognizer = build_recognizer(args)
    if args.annotate:
        writable_folder(args.annotate, "--annotate")
    results, failed = {}, 0
    for path in args.images:
        try:
            rgb = read_image(path)  # (H, W, 3)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            print(f"error: {path}: cannot read picture: {reason}", file=sys.stderr)
            failed += 1
            continue
        faces = recognizer.detect(rgb, color="rgb")
        results[path] = faces
        if args.annotate:
            Image.fromarray(annotate(rgb, faces)).save(annotated_path(args.annotate, path))
        if not args.json:
            print(format_table(path, faces))
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
