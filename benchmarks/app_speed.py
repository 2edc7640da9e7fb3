"""Speed of the emotion recognizer on 640x480 video, and a comparison with `fer` (PyPI).

    nice -n 10 python benchmarks/app_speed.py                       # ours only, prints tables
    nice -n 10 python benchmarks/app_speed.py --fer-python /work/.fer-venv/bin/python \\
        --model default --model runs/vgg_fer/model.npz --out benchmarks/results

Measures, on the same frames:
  1. frames/s on a 640x480 video (mp4v, written and decoded with OpenCV) with one and
     with four real FER-2013 faces (PublicTest, 160 px / 150 px, drifting a few pixels per
     frame), split into detection (grey + face search) and classification (crops +
     one forward pass for all faces of the frame), for every model (``--model``,
     repeatable) and every variant (``--variants``) BACKEND:MIN_FACE_SIZE:SEARCH, where
     SEARCH is how faces are found (fer_app/recognition/faces.py, fer_app/recognition/tracking.py):
       full   the Haar cascade on the whole frame at full resolution, every frame
       scaled the whole frame shrunk by 24 / MIN_FACE_SIZE, every frame (photos)
       track  scaled, whole frames every ``--detect-every``-th frame and only around
              the last faces in between (video's default)
     All rows, fer's too, take turns frame by frame, so a busy spell of the machine slows
     them alike;
  2. accuracy on the same FER-2013 PublicTest faces (default 500, seeded), per model:
     "crops": the 48x48 faces themselves (fer: its own crop of the face blown up to 160 px);
     "pictures": each face blown up to 160 px and pasted alone on a 320x240 background,
     found by the detector and classified (a face not found counts as wrong).
The `fer` half runs in fer's own virtual environment (TensorFlow, PyTorch, OpenCV),
in a process (benchmarks/app_speed_fer.py) that times each frame when asked; create
the environment outside the repository with
    python -m venv /work/.fer-venv && /work/.fer-venv/bin/pip install fer "setuptools<81"
It reports the BLAS library, its kernel (threadpoolctl's "architecture") and thread
counts. If OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set, both are unset for this
process only (and the fer process it starts), so OpenBLAS picks its kernel for the
CPU; the results say what was unset (``--keep-blas-env`` keeps them; ``blas_env.py``).
Results are printed; with ``--out DIR`` also written to DIR/app_speed.json and .md.
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":   # run as a script: the repo root holds the benchmarks package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import blas_env

UNSET_BLAS = blas_env.unset_overrides(sys.argv) if __name__ == "__main__" else {}  # before NumPy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app's CLIs do (fer_app/video.py)

import argparse
import json
import platform
import subprocess
import tempfile
import time

import cv2
import numba
import numpy
from threadpoolctl import threadpool_info
from tqdm import tqdm

import tinycnn
from fer_app.cli import error_boundary
from fer_app.data.load import find_data
from fer_app.recognition.faces import FaceDetector, crop_faces, to_grey
from fer_app.recognition.inference import NAMED_MODELS
from fer_app.recognition.recognizer import EmotionRecognizer
from fer_app.recognition.scenes import drifting_scenes, iou, paste_faces, read_fer_faces
from fer_app.recognition.tracking import FaceTracker

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = (480, 640)                                    # (H, W) of the video frames
FOUR_PLACES = [(70, 50), (390, 50), (70, 270), (390, 270)]  # top-left corners, 150 px faces
WARMUP = 3                                           # frames not timed (first calls compile)
SEARCHES = ("full", "scaled", "track")


def parse_variants(text: str) -> list[tuple[str, int, str]]:
    """"numpy:40:track,numba:80:scaled" -> [("numpy", 40, "track"), ("numba", 80, "scaled")]."""
    variants = []
    for item in text.split(","):
        parts = item.strip().split(":")
        well_formed = len(parts) == 3 and parts[1].isdigit() and int(parts[1]) >= 1
        if not well_formed or parts[2] not in SEARCHES:
            raise ValueError(f"bad variant {item!r}: expected BACKEND:MIN_FACE_SIZE:SEARCH with "
                             f"MIN_FACE_SIZE a whole number >= 1 and SEARCH one of "
                             f"{', '.join(SEARCHES)} (e.g. numpy:40:track)")
        variants.append((parts[0], int(parts[1]), parts[2]))
    return variants


def face_finder(min_face_size: int, search: str, detect_every: int):
    """Something with .find(grey) for one way of finding faces (see the module docstring)."""
    if search == "full":
        return FaceDetector(min_face_size=min_face_size, downscale=False)
    detector = FaceDetector(min_face_size=min_face_size)
    return detector if search == "scaled" else FaceTracker(detector, detect_every)


def drifting_video(faces: numpy.ndarray, places, side: int, frames: int, folder: str,
                   name: str) -> numpy.ndarray:
    """Write an mp4v 640x480 video of ``faces`` drifting +-8 px around ``places``
    (fer_app.recognition.scenes.drifting_scenes) and read it back: (T, 480, 640, 3) BGR uint8
    frames as OpenCV decodes them."""
    path = os.path.join(folder, f"{name}.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE[::-1])
    scenes, _ = drifting_scenes(faces, places, side, frames, size=SIZE)
    for scene in scenes:
        writer.write(cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR))
    writer.release()
    capture, decoded = cv2.VideoCapture(path), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    return numpy.stack(decoded)


class Row:
    """One recognizer with one way of finding faces, and its per-frame timings."""

    def __init__(self, recognizer: EmotionRecognizer, backend: str, finder, name: str):
        self.recognizer, self.backend, self.finder, self.name = recognizer, backend, finder, name
        self.timing = {"detect_s": [], "classify_s": [], "faces": []}

    def step(self, video: str, index: int, frame: numpy.ndarray, timed: bool) -> None:
        """Find and classify the faces of one (H, W, 3) BGR frame."""
        tinycnn.backend.use(self.backend)  # host arrays run on the active CPU backend
        start = time.perf_counter()
        grey = to_grey(frame, "bgr")
        boxes = self.finder.find(grey)  # (F, 4)
        middle = time.perf_counter()
        self.recognizer.classify_crops(crop_faces(grey, boxes, self.recognizer.margin))
        end = time.perf_counter()
        if timed:
            self.timing["detect_s"].append(middle - start)
            self.timing["classify_s"].append(end - middle)
            self.timing["faces"].append(len(boxes))


class FerProcess:
    """benchmarks/app_speed_fer.py running in fer's environment, answering one request at a
    time (its stderr, TensorFlow's chatter, goes to a file shown if it fails)."""

    def __init__(self, python: str, source: str, folder: str):
        self.log = open(os.path.join(folder, "fer_stderr.txt"), "w+")
        self.process = subprocess.Popen([python, os.path.join(HERE, "app_speed_fer.py"), source],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        self.info = self.read()  # {"version", "opencv", "note"} once fer is loaded

    def ask(self, request: str) -> dict:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"the fer process stopped:\n{self.log.read()[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.log.close()


class FerRow:
    """fer's turn on one frame: the fer process times it (the same frames, in fer's format)."""

    def __init__(self, fer: FerProcess):
        self.fer = fer
        self.timing = {"detect_s": [], "classify_s": [], "faces": []}

    def step(self, video: str, index: int, frame: numpy.ndarray, timed: bool) -> None:
        result = self.fer.ask(f"frame {video} {index}")
        if timed:
            for key in self.timing:
                self.timing[key].append(result[key])


def time_rows(rows: list, video: str, frames: numpy.ndarray) -> None:
    """Every row on every frame, in turns (frame 1: A B C, frame 2: C B A, ...)."""
    for index, frame in enumerate(tqdm(frames, desc=video)):
        for row in rows if index % 2 == 0 else reversed(rows):
            row.step(video, index, frame, timed=index >= WARMUP)


def summarize(timing: dict, expected_faces: int) -> dict:
    """Mean milliseconds and frames/s of a timing dict (lists of seconds per frame)."""
    detect = 1000 * float(numpy.mean(timing["detect_s"]))
    classify = 1000 * float(numpy.mean(timing["classify_s"]))
    return {"frames": len(timing["detect_s"]), "detect_ms": round(detect, 2),
            "classify_ms": round(classify, 2), "total_ms": round(detect + classify, 2),
            "fps": round(1000 / (detect + classify), 1),
            "faces_found_per_frame": round(float(numpy.mean(timing["faces"])), 2),
            "faces_in_frame": expected_faces}


def accuracy_ours(recognizer: EmotionRecognizer, faces, labels, scenes, boxes) -> dict:
    """Accuracy on the 48x48 crops and on the faces found in the pasted pictures."""
    crop_predictions = recognizer.classifier.predict_proba(faces).argmax(axis=1)  # (N,)
    scene_correct, found = 0, 0
    for scene, box, label in tqdm(list(zip(scenes, boxes, labels)), desc="ours: pictures"):
        detected = recognizer.detect(scene)
        hit = [face for face in detected if iou(face["box"], box) > 0.5]
        if hit:
            found += 1
            scene_correct += recognizer.class_names.index(hit[0]["emotion"]) == label
    return {"crops": round(float(numpy.mean(crop_predictions == labels)), 4),
            "pictures": round(scene_correct / len(labels), 4),
            "pictures_found": round(found / len(labels), 4)}


def accuracy_fer(result: dict, class_names: list[str], labels, boxes) -> dict:
    """The same accuracies from fer's predicted names (app_speed_fer.py's output)."""
    crops = [name == class_names[label] for name, label in zip(result["crop_labels"], labels)]
    scene_correct, found = 0, 0
    for names, found_boxes, box, label in zip(result["scene_labels"], result["scene_boxes"],
                                              boxes, labels):
        hit = [name for name, other in zip(names, found_boxes) if iou(other, box) > 0.5]
        if hit:
            found += 1
            scene_correct += hit[0] == class_names[label]
    return {"crops": round(float(numpy.mean(crops)), 4),
            "pictures": round(scene_correct / len(labels), 4),
            "pictures_found": round(found / len(labels), 4)}


def pictures_of(faces: numpy.ndarray, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Each face at 160 px, alone, at a random place on a 320x240 background."""
    rng = numpy.random.default_rng(seed)
    scenes, boxes = [], []
    for index, face in enumerate(faces):
        place = (int(rng.integers(0, 160)), int(rng.integers(0, 80)))
        scene, box = paste_faces(face[None], size=(240, 320), side=160, places=[place],
                                 seed=index)
        scenes.append(scene)
        boxes.append(box[0])
    return numpy.stack(scenes), numpy.stack(boxes)


def found_alone(detector: FaceDetector, scenes: numpy.ndarray) -> list[int]:
    """Indices of the scenes (each one pasted face) where the detector finds that face alone."""
    return [index for index, scene in enumerate(scenes) if len(detector.find(scene)) == 1]


def thread_report() -> dict:
    """What runs the numbers: each BLAS/OpenMP library threadpoolctl sees (its kernel and
    threads), Numba's and OpenCV's thread counts, the thread variables, and what was unset."""
    pools = [{key: pool.get(key) for key in ("user_api", "internal_api", "version",
                                               "architecture", "num_threads")}
             for pool in threadpool_info()]
    return {"pools": pools, "numba_threads": numba.get_num_threads(),
            "opencv_threads": cv2.getNumThreads(),
            "environment": {name: os.environ.get(name, "unset") for name in
                            ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                             *blas_env.BLAS_OVERRIDES)},
            "unset_for_this_run": UNSET_BLAS}


def describe_threads(threads: dict) -> str:
    """One line of thread_report() for the Markdown."""
    pools = "; ".join(f"{pool['internal_api']} {pool['version']} (kernel {pool['architecture']}): "
                      f"{pool['num_threads']} thread(s)" for pool in threads["pools"])
    unset = ", ".join(f"{name}={value}" for name, value in threads["unset_for_this_run"].items())
    return (f"{pools or 'no BLAS found by threadpoolctl'}; Numba {threads['numba_threads']} "
            f"thread(s); OpenCV {threads['opencv_threads']} thread(s); "
            f"OPENBLAS_NUM_THREADS={threads['environment']['OPENBLAS_NUM_THREADS']}"
            + (f"; unset for this run: {unset}" if unset else ""))


def markdown(results: dict) -> str:
    """The two README tables: speed, and accuracy, ours beside fer's."""
    lines = ["# Emotion recognizer speed and accuracy (benchmarks/app_speed.py)", "",
             f"Machine: {results['machine']}; {results['frames']} frames per video (640x480, "
             f"mp4v); 1-minute load average {results['load_average_1min']['start']} at the "
             f"start, {results['load_average_1min']['end']} at the end (other jobs share the "
             f"cores).", "", f"Threads: {describe_threads(results['threads'])}.", "",
             "| recognizer | model | backend | face search | faces in frame | detection ms | "
             "classification ms | total ms | frames/s | faces found/frame |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["speed"]:
        for video in row["videos"].values():
            lines.append(f"| {row['recognizer']} | {row['model']} | {row['backend']} | "
                         f"{row['search']} | {video['faces_in_frame']} | {video['detect_ms']} | "
                         f"{video['classify_ms']} | {video['total_ms']} | **{video['fps']}** | "
                         f"{video['faces_found_per_frame']} |")
    lines += ["", f"Accuracy on the same {results['accuracy_faces']} FER-2013 PublicTest faces:",
              "",
              "| recognizer | model | 48x48 crops | faces in pictures (found and right) | "
              "faces found |", "|---|---|---|---|---|"]
    for row in results["accuracy"]:
        lines.append(f"| {row['recognizer']} | {row['model']} | {row['crops']:.3f} | "
                     f"{row['pictures']:.3f} | {row['pictures_found']:.3f} |")
    lines += ["", *[f"- {note}" for note in results["notes"]], ""]
    return "\n".join(lines)


def search_name(min_face_size: int, search: str, detect_every: int) -> str:
    """How a row finds faces, in words."""
    what = {"full": "whole frame, full size", "scaled": "whole frame, shrunk",
            "track": f"shrunk, whole every {detect_every}th frame, tracked between"}[search]
    return f"{what} (faces >= {min_face_size} px)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=None,
                        help="model file, or a shipped model by name (default, fast); repeat "
                             "for more rows (default: default)")
    parser.add_argument("--data", default=None, help="FER-2013 CSV (default: found like training)")
    parser.add_argument("--variants", default="numpy:40:full,numpy:40:scaled,numpy:40:track",
                        help="speed rows as BACKEND:MIN_FACE_SIZE:SEARCH with SEARCH full, scaled "
                             "or track, comma-separated (default: %(default)s); the first "
                             "variant's backend and face size also score accuracy")
    parser.add_argument("--detect-every", type=int, default=5,
                        help="track rows: search whole frames every this many frames (default 5)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (default 60)")
    parser.add_argument("--accuracy-faces", type=int, default=500,
                        help="PublicTest faces to score (default 500)")
    parser.add_argument("--fer-python", default=None,
                        help="Python of a virtual environment with `fer` installed")
    parser.add_argument(blas_env.KEEP_OPTION, action="store_true", help=blas_env.KEEP_HELP)
    parser.add_argument("--note", action="append", default=[],
                        help="a line to add to the results' notes (repeatable)")
    parser.add_argument("--out", default=None,
                        help="write app_speed.json and app_speed.md into this folder "
                             "(default: print only; the README's results are in "
                             "benchmarks/results)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked (a bad one ends the run with one line); ``variant_list`` holds
    the parsed --variants."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.variant_list = checked_variants(parser, args)
    return args


def checked_variants(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list:
    """The parsed variants; any bad option ends the run with one line (parser.error)."""
    try:
        variants = parse_variants(args.variants)
    except ValueError as error:
        parser.error(f"--variants: {error}")
    for backend in dict.fromkeys(variant[0] for variant in variants):
        try:
            tinycnn.backend.get(backend)
        except tinycnn.backend.BackendError as error:
            parser.error(f"--variants: backend {backend!r}: {error}")
    if args.detect_every < 1:
        parser.error("--detect-every must be >= 1")
    if args.frames <= WARMUP:
        parser.error(f"--frames must be > {WARMUP} (the first {WARMUP} frames are not timed)")
    if args.accuracy_faces < 4:
        parser.error("--accuracy-faces must be >= 4 (the videos show 4 of these faces)")
    for model in args.model or []:
        if model not in NAMED_MODELS and not os.path.isfile(model):
            parser.error(f"--model: no such file: {model}")
    if args.fer_python and not os.path.isfile(args.fer_python):
        parser.error(f"--fer-python: no such file: {args.fer_python} (see the docstring to "
                     f"create fer's environment)")
    return variants


@error_boundary
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = args.variant_list
    models = args.model or ["default"]
    load_start = round(os.getloadavg()[0], 2)

    first_backend, first_size, _ = variants[0]
    recognizers = {(model, backend): EmotionRecognizer(model=model, backend=backend,
                                                      min_face_size=first_size)
                   for model in models for backend in dict.fromkeys(v[0] for v in variants)}
    scoring = [recognizers[model, first_backend] for model in models]
    faces, labels = read_fer_faces(find_data(args.data), "PublicTest", args.accuracy_faces, seed=0)
    scenes, boxes = pictures_of(faces, seed=1)
    shown = found_alone(scoring[0].detector, scenes)[:4]  # the faces of the videos
    if len(shown) < 4:
        build_parser().error(f"only {len(shown)} of the {len(faces)} faces are found alone; "
                             f"raise --accuracy-faces")
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
                          f"cores, Python {platform.python_version()}",
               "models": models, "variants": args.variants, "detect_every": args.detect_every,
               "frames": args.frames, "accuracy_faces": len(faces), "notes": list(args.note),
               "speed": [], "accuracy": []}
    with tempfile.TemporaryDirectory() as folder:
        videos = {"one_face": drifting_video(faces[shown[:1]], [(240, 160)], 160, args.frames,
                                             folder, "one_face"),
                  "four_faces": drifting_video(faces[shown], FOUR_PLACES, 150, args.frames,
                                               folder, "four_faces")}
        expected = {"one_face": 1, "four_faces": 4}
        fer = None
        if args.fer_python:
            source = os.path.join(folder, "fer_input.npz")
            numpy.savez(source, faces=faces, scenes=scenes, **videos)
            print(f"starting fer with {args.fer_python} ...", flush=True)
            fer = FerProcess(args.fer_python, source, folder)
        combos = [(model, variant) for model in models for variant in variants]
        timed = {}
        for name, frames in videos.items():
            timed[name] = [Row(recognizers[model, backend], backend,
                               face_finder(size, search, args.detect_every), model)
                           for model, (backend, size, search) in combos]
            timed[name] += [FerRow(fer)] if fer else []
            time_rows(timed[name], name, frames)
        results["threads"] = thread_report()  # after the runs: libraries loaded, threads set
        for index, (model, (backend, size, search)) in enumerate(combos):
            results["speed"].append({
                "recognizer": "ours", "model": os.path.basename(model), "backend": backend,
                "search": search_name(size, search, args.detect_every),
                "videos": {name: summarize(timed[name][index].timing, expected[name])
                           for name in videos}})
        tinycnn.backend.use(first_backend)
        for model, recognizer in zip(models, scoring):
            results["accuracy"].append({"recognizer": "ours", "model": os.path.basename(model),
                                        **accuracy_ours(recognizer, faces, labels, scenes, boxes)})
        if fer:
            results["speed"].append({
                "recognizer": "fer", "model": "mini-Xception (TF Lite)", "backend": "TF Lite",
                "search": "whole frame, full size (faces >= 50 px, fer's default)",
                "videos": {name: summarize(timed[name][-1].timing, expected[name])
                           for name in videos}})
            print("fer: accuracy ...", flush=True)
            predictions = fer.ask("accuracy")
            fer.close()
            results["accuracy"].append({"recognizer": "fer", "model": "mini-Xception (TF Lite)",
                                        **accuracy_fer(predictions, scoring[0].class_names,
                                                       labels, boxes)})
            attempts = predictions["network_attempts"]
            results["notes"] += [
                f"fer {fer.info['version']} (opencv {fer.info['opencv']}, TensorFlow Lite "
                f"model): {fer.info['note']}; timed frame by frame in turn with ours",
                f"fer network connections attempted during the run: {len(attempts)} "
                f"{attempts or ''}".rstrip(),
                "fer's classifier (oarriaga's mini-Xception) was trained on a random split of all "
                "FER-2013 images, so PublicTest faces may be in its training set."]
        else:
            results["notes"].append("fer not run (no --fer-python given)")
    results["load_average_1min"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    print(markdown(results))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "app_speed.json"), "w") as file:
            json.dump(results, file, indent=2)
        with open(os.path.join(args.out, "app_speed.md"), "w") as file:
            file.write(markdown(results))
        print(f"wrote {os.path.join(args.out, 'app_speed.json')} and app_speed.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
