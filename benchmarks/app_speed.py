"""Speed of the emotion recognizer on 640x480 video, and a comparison with `fer` (PyPI).

    nice -n 10 python benchmarks/app_speed.py                       # ours only
    nice -n 10 python benchmarks/app_speed.py --fer-python .fer-venv/bin/python --out benchmarks/results

Measures, on the same frames:
  1. frames/s on a 640x480 video (mp4v, written and decoded with OpenCV) with one and
     with four real FER-2013 faces (PublicTest, 160 px / 150 px, drifting a few pixels per
     frame), split into detection (grey + Haar cascade) and classification (crops +
     one forward pass for all faces of the frame);
  2. accuracy on the same FER-2013 PublicTest faces (default 500, seeded):
     "crops": the 48x48 faces themselves (fer: its own crop of the face blown up to 160 px);
     "pictures": each face blown up to 160 px and pasted alone on a 320x240 background,
     found by the detector and classified (a face not found counts as wrong).
The `fer` half runs in fer's own virtual environment (TensorFlow, PyTorch, opencv 5.x)
through benchmarks/app_speed_fer.py; create it with
    python -m venv .fer-venv && .fer-venv/bin/pip install fer "setuptools<81"
Prints the results as Markdown; with ``--out DIR`` also writes DIR/app_speed.json and
app_speed.md (the README's figures are benchmarks/results/).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app's CLIs do (fer_app/video.py)

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time

import cv2
import numpy
from tqdm import tqdm

import tinycnn
from fer_app.data import find_data
from fer_app.faces import FaceDetector, crop_faces, to_grey
from fer_app.recognizer import EmotionRecognizer
from fer_app.scenes import iou, paste_faces, read_fer_faces

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = (480, 640)                                    # (H, W) of the video frames
FOUR_PLACES = [(70, 50), (390, 50), (70, 270), (390, 270)]  # top-left corners, 150 px faces
WARMUP = 3                                           # frames not timed (first calls compile)


def drifting_video(faces: numpy.ndarray, places, side: int, frames: int, folder: str,
                   name: str) -> numpy.ndarray:
    """Write an mp4v 640x480 video of ``faces`` drifting +-8 px around ``places`` and
    read it back: (T, 480, 640, 3) BGR uint8 frames as OpenCV decodes them."""
    path = os.path.join(folder, f"{name}.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE[::-1])
    for index in range(frames):
        shift = round(8 * numpy.sin(index / 5))
        moved = [(x + shift, y - shift) for x, y in places]
        scene, _ = paste_faces(faces, size=SIZE, side=side, places=moved, seed=index)
        writer.write(cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR))
    writer.release()
    capture, decoded = cv2.VideoCapture(path), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    return numpy.stack(decoded)


def time_ours(recognizer: EmotionRecognizer, detector: FaceDetector,
              frames: numpy.ndarray) -> dict:
    """Per-frame seconds of detection and classification, and faces found."""
    detect_s, classify_s, faces = [], [], []
    for index, frame in enumerate(frames):  # frame (H, W, 3) BGR
        start = time.perf_counter()
        grey = to_grey(frame, "bgr")
        boxes = detector.find(grey)  # (F, 4)
        middle = time.perf_counter()
        recognizer.classify_crops(crop_faces(grey, boxes, recognizer.margin))
        end = time.perf_counter()
        if index >= WARMUP:
            detect_s.append(middle - start)
            classify_s.append(end - middle)
            faces.append(len(boxes))
    return {"detect_s": detect_s, "classify_s": classify_s, "faces": faces}


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


def run_fer(python: str, videos: dict, faces, scenes, folder: str) -> dict:
    """Run app_speed_fer.py with fer's Python on the same frames and faces."""
    source, target = os.path.join(folder, "fer_input.npz"), os.path.join(folder, "fer.json")
    numpy.savez(source, faces=faces, scenes=scenes, **videos)
    print(f"running fer with {python} ...", flush=True)
    completed = subprocess.run([python, os.path.join(HERE, "app_speed_fer.py"), source, target],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"fer run failed:\n{completed.stderr[-3000:]}")
    with open(target) as file:
        return json.load(file)


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


def markdown(results: dict) -> str:
    """The two README tables: speed, and accuracy, ours beside fer's."""
    lines = ["# Emotion recognizer speed and accuracy (benchmarks/app_speed.py)", "",
             f"Machine: {results['machine']}; main row (\"ours\"): backend and smallest face "
             f"`{results['main_row']}`; model "
             f"`{results['model']}`; {results['frames']} frames per video (640x480, mp4v); "
             f"threads: {results['threads']}; 1-minute load average when it started: "
             f"{results['load_average_1min']} (other jobs share the cores).", "",
             "| recognizer | faces in frame | detection ms | classification ms | total ms | "
             "frames/s | faces found/frame |", "|---|---|---|---|---|---|---|"]
    for who in ("ours", "fer"):
        for key, speed in results.get(who, {}).items():
            if not key.startswith("speed"):
                continue
            name = who if key == "speed" else f"{who} ({key[len('speed_'):]})"
            for row in speed.values():
                lines.append(f"| {name} | {row['faces_in_frame']} | {row['detect_ms']} | "
                             f"{row['classify_ms']} | {row['total_ms']} | **{row['fps']}** | "
                             f"{row['faces_found_per_frame']} |")
    lines += ["", f"Accuracy on the same {results['accuracy_faces']} FER-2013 PublicTest faces:", "",
              "| recognizer | 48x48 crops | faces in pictures (found and right) | faces found |",
              "|---|---|---|---|"]
    for who in ("ours", "fer"):
        if "accuracy" in results.get(who, {}):
            row = results[who]["accuracy"]
            lines.append(f"| {who} | {row['crops']:.3f} | {row['pictures']:.3f} | "
                         f"{row['pictures_found']:.3f} |")
    lines += ["", *[f"- {note}" for note in results["notes"]], ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="model file (default: the shipped one)")
    parser.add_argument("--data", default=None, help="FER-2013 CSV (default: found like training)")
    parser.add_argument("--variants", default="numpy:40,numba:40,numpy:80",
                        help="speed runs as BACKEND:MIN_FACE_SIZE, comma-separated; the first "
                             "is the main row (80 px: a face in front of a webcam)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--accuracy-faces", type=int, default=500, help="PublicTest faces to score")
    parser.add_argument("--fer-python", default=None,
                        help="Python of a virtual environment with `fer` installed")
    parser.add_argument("--note", action="append", default=[],
                        help="a line to add to the results' notes (repeatable)")
    parser.add_argument("--out", help="write app_speed.json and app_speed.md into this folder "
                        "(default: print only; the README's results are in benchmarks/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [(backend, int(size)) for backend, size in
                (variant.split(":") for variant in args.variants.split(","))]
    recognizer = EmotionRecognizer(model=args.model, backend=variants[0][0],
                                   min_face_size=variants[0][1])
    faces, labels = read_fer_faces(find_data(args.data), "PublicTest", args.accuracy_faces, seed=0)
    scenes, boxes = pictures_of(faces, seed=1)
    shown = [index for index, scene in enumerate(scenes)  # faces the cascade finds, for the videos
             if len(recognizer.detector.find(scene)) == 1][:4]
    with tempfile.TemporaryDirectory() as folder:
        videos = {"one_face": drifting_video(faces[shown[:1]], [(240, 160)], 160, args.frames,
                                             folder, "one_face"),
                  "four_faces": drifting_video(faces[shown], FOUR_PLACES, 150, args.frames,
                                               folder, "four_faces")}
        results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
                              f"cores, Python {platform.python_version()}",
                   "model": args.model, "main_row": args.variants.split(",")[0],
                   "load_average_1min": round(os.getloadavg()[0], 2),
                   "threads": {name: os.environ.get(name, "default") for name in
                               ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
                   "frames": args.frames, "accuracy_faces": len(faces), "notes": list(args.note),
                   "ours": {}}
        expected = {"one_face": 1, "four_faces": 4}
        for number, (backend, min_face_size) in enumerate(variants):
            tinycnn.backend.use(backend)  # host arrays run on the active CPU backend
            detector = FaceDetector(min_face_size=min_face_size)
            key = "speed" if number == 0 else f"speed_{backend}, faces >= {min_face_size} px"
            results["ours"][key] = {name: summarize(time_ours(recognizer, detector, frames),
                                                    expected[name])
                                    for name, frames in videos.items()}
        tinycnn.backend.use(variants[0][0])
        results["ours"]["accuracy"] = accuracy_ours(recognizer, faces, labels, scenes, boxes)
        if args.fer_python:
            fer = run_fer(args.fer_python, videos, faces, scenes, folder)
            results["fer"] = {
                "version": fer["version"], "opencv": fer["opencv"],
                "speed": {name: summarize(fer["videos"][name], expected[name]) for name in videos},
                "accuracy": accuracy_fer(fer, recognizer.class_names, labels, boxes),
                "network_attempts": fer["network_attempts"]}
            results["notes"] += [
                f"fer {fer['version']} (opencv {fer['opencv']}, TensorFlow Lite model): "
                f"{fer['note']}",
                "fer network connections attempted during the run: "
                f"{len(fer['network_attempts'])} {fer['network_attempts'] or ''}".rstrip(),
                "fer's classifier (oarriaga's mini-Xception) was trained on a random split of all "
                "FER-2013 images, so PublicTest faces may be in its training set."]
        else:
            results["notes"].append("fer not run (no --fer-python given)")
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
