"""Emotions over time in a video file or a live camera.

    python -m fer_app.video --input clip.mp4 --output annotated.mp4 --csv emotions.csv
    python -m fer_app.video --camera 0 --every 2          # live window when there is a display

Every K-th frame (``--every``) goes through the recognizer (faces found and
classified in one pass); frames in between reuse the last faces, which keeps the
output smooth on a slow CPU. Of the frames that go through it, every N-th
(``--detect-every``, default 5) is searched whole for new faces (the faces already
followed painted out) and the others only around the last faces
(fer_app/recognition/tracking.py; a face lost there makes that frame be searched whole at
once); ``--detect-every 1`` searches every frame whole.
Writes, when asked:
  --output  the video with boxes, labels, probability bars and frames/s drawn on it (mp4v)
  --csv     one row per processed frame and face: time_s, frame, face, box, emotion,
            each emotion's probability
  --plot    a PNG of each emotion's probability over time (mean over the faces of a
            frame); defaults to the CSV's name with .png
"""
from __future__ import annotations

import os

# One BLAS thread, set before NumPy loads OpenBLAS: a frame's 1-4 faces make small
# matrix products, and OpenBLAS's threads cost more than they give (a video ran at 8.6
# instead of 2.3 frames/s on the shared 2-core machine). Set the variable to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import sys
import time

import cv2
import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from .cli import UserError, error_boundary, writable_file
from .predict import add_recognizer_arguments, build_recognizer, check_recognizer_options, warm_up
from .recognition.draw import annotate, emotion_color
from .recognition.recognizer import EmotionRecognizer


class Timeline:
    """What the recognizer said at each processed frame: times and faces."""

    def __init__(self, class_names: list[str]):
        self.class_names = class_names
        self.times: list[float] = []
        self.frames: list[int] = []
        self.faces: list[list[dict]] = []

    def add(self, time_s: float, frame: int, faces: list[dict]) -> None:
        self.times.append(time_s)
        self.frames.append(frame)
        self.faces.append(faces)

    def mean_probabilities(self) -> numpy.ndarray:
        """(T, K) mean probability over each processed frame's faces; NaN where no face."""
        means = numpy.full((len(self.times), len(self.class_names)), numpy.nan)  # (T, K)
        for row, faces in enumerate(self.faces):
            if faces:
                means[row] = [numpy.mean([face["probabilities"][name] for face in faces])
                              for name in self.class_names]
        return means

    def write_csv(self, path: str) -> None:
        """time_s, frame, face, x, y, w, h, emotion, then one probability column per class."""
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["time_s", "frame", "face", "x", "y", "w", "h", "emotion",
                             *self.class_names])
            for time_s, frame, faces in zip(self.times, self.frames, self.faces):
                for index, face in enumerate(faces):
                    writer.writerow([f"{time_s:.3f}", frame, index, *face["box"], face["emotion"],
                                     *(f"{face['probabilities'][name]:.4f}"
                                       for name in self.class_names)])

    def plot(self, path: str) -> None:
        """PNG: each emotion's probability (mean over faces) against time in seconds."""
        figure = Figure(figsize=(9, 4), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        means = self.mean_probabilities()  # (T, K)
        for column, name in enumerate(self.class_names):
            color = numpy.array(emotion_color(name)) / 255.0
            axes.plot(self.times, means[:, column], label=name, color=color, linewidth=1.5)
        with_face = int(sum(1 for faces in self.faces if faces))
        axes.set(xlabel="time (s)", ylabel="probability (mean over faces)", ylim=(0, 1),
                 title=f"Emotions over time ({with_face} of {len(self.times)} processed frames "
                       f"with a face)")
        axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
        axes.grid(alpha=0.3)
        figure.savefig(path)


class LiveWindow:
    """Show annotated frames in a window: OpenCV's if it has GUI support, else matplotlib's."""

    def __init__(self, title: str):
        self.title = title
        self.closed = False
        try:
            cv2.namedWindow(title)
            self.kind, self.image = "cv2", None
        except cv2.error:
            import matplotlib.pyplot as pyplot  # an interactive backend, picked by matplotlib

            if pyplot.get_backend().lower() == "agg":
                raise RuntimeError("neither OpenCV (opencv-python-headless) nor matplotlib "
                                   "(backend Agg) can open a window here")
            pyplot.ion()
            self.kind, self.pyplot = "matplotlib", pyplot
            self.figure, axes = pyplot.subplots(num=title)
            axes.axis("off")
            self.image = None
            self.axes = axes

    def show(self, frame_bgr: numpy.ndarray) -> None:
        """Display one (H, W, 3) BGR frame; sets ``closed`` when the user quits (q / Esc / close)."""
        if self.kind == "cv2":
            cv2.imshow(self.title, frame_bgr)
            self.closed = (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
            return
        rgb = frame_bgr[:, :, ::-1]
        if self.image is None:
            self.image = self.axes.imshow(rgb)
        else:
            self.image.set_data(rgb)
        self.pyplot.pause(0.001)
        self.closed = not self.pyplot.fignum_exists(self.figure.number)

    def close(self) -> None:
        if self.kind == "cv2":
            cv2.destroyWindow(self.title)
        else:
            self.pyplot.close(self.figure)


def has_display() -> bool:
    """True when a window could be shown (always on Windows/macOS; X11/Wayland on Linux)."""
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_capture(args: argparse.Namespace) -> tuple[cv2.VideoCapture, float, str]:
    """The video source, its frames/s (camera: its own claim or 30) and a name for messages."""
    if args.input is not None:
        if not os.path.isfile(args.input):
            raise UserError(f"{args.input}: no such video file")
        capture, name = cv2.VideoCapture(args.input), args.input
    else:
        capture, name = cv2.VideoCapture(args.camera), f"camera {args.camera}"
    if not capture.isOpened():
        raise UserError(f"{name}: OpenCV cannot open it (not a video, or no such camera)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, fps if fps and fps > 0 else 30.0, name


def draw_speed(frame: numpy.ndarray, fps: float) -> None:
    """Write "12.3 fps" in the top-left corner of ``frame`` (H, W, 3), in place."""
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3,
                cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255),
                1, cv2.LINE_AA)


def process(capture: cv2.VideoCapture, recognizer: EmotionRecognizer, source_fps: float,
            every: int, live: bool, writer_path: str | None, window: LiveWindow | None,
            max_frames: int | None, detect_every: int = 5) -> tuple[Timeline, int, float]:
    """Run the recognizer over the frames; returns the timeline, the number of frames
    read and the measured frames/s (everything included: decode, recognize, draw, write).
    Faces are found with a FaceTracker searching whole frames every ``detect_every``-th
    recognized frame."""
    timeline = Timeline(recognizer.class_names)
    tracker = recognizer.tracker(detect_every)
    writer, faces, fps = None, [], 0.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
    progress = tqdm(total=(min(total, max_frames) if max_frames else total) or None,
                    unit="frame", desc="video")
    start = time.perf_counter()
    frame_index = 0
    try:
        while max_frames is None or frame_index < max_frames:
            ok, frame = capture.read()  # frame (H, W, 3) BGR
            if not ok:
                break
            now = time.perf_counter() - start
            if frame_index % every == 0:
                faces = recognizer.detect(frame, color="bgr", tracker=tracker)
                timeline.add(now if live else frame_index / source_fps, frame_index, faces)
            fps = (frame_index + 1) / max(time.perf_counter() - start, 1e-9)
            shown = annotate(frame, faces, color="bgr")
            draw_speed(shown, fps)
            if writer_path is not None:
                if writer is None:
                    writer = open_writer(writer_path, source_fps, shown.shape)
                writer.write(shown)
            if window is not None:
                window.show(shown)
                if window.closed:
                    break
            frame_index += 1
            progress.update(1)
            progress.set_postfix(fps=f"{fps:.1f}", faces=len(faces))
    except KeyboardInterrupt:
        print("\nstopped (Ctrl+C)", file=sys.stderr)
    finally:
        progress.close()
        if writer is not None:
            writer.release()
    return timeline, frame_index, fps


def open_writer(path: str, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    """An mp4v VideoWriter for frames of ``shape`` (H, W, 3)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise UserError(f"--output {path}: OpenCV cannot write this video (use a .mp4 name)")
    return writer


def open_window(args: argparse.Namespace) -> LiveWindow | None:
    """A live window for --camera when possible; otherwise say why there is none."""
    if args.input is not None or args.no_window:
        return None
    if not has_display():
        print("No display found (DISPLAY/WAYLAND_DISPLAY not set): no live window. Processing the "
              "camera anyway; use --output/--csv to keep the results, Ctrl+C to stop.",
              file=sys.stderr)
        return None
    try:
        return LiveWindow("fer_app camera (q to quit)")
    except Exception as error:  # no GUI toolkit, or a display that does not answer
        print(f"No live window: {error}. Processing the camera anyway; Ctrl+C to stop.",
              file=sys.stderr)
        return None


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fer_app.video",
        description="Recognize emotions in a video file or a live camera, frame by frame.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="FILE", help="a video file (anything OpenCV reads)")
    source.add_argument("--camera", type=int, metavar="N", help="camera index (0 = first camera)")
    parser.add_argument("--output", metavar="VIDEO", help="write the annotated video here (.mp4)")
    parser.add_argument("--csv", metavar="CSV", help="write per-frame emotions here")
    parser.add_argument("--plot", metavar="PNG",
                        help="write the emotions-over-time plot here (default: CSV name + .png)")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="run the recognizer on every K-th frame only (default 1)")
    parser.add_argument("--detect-every", type=int, default=5, metavar="N",
                        help="search the whole frame for new faces on every N-th recognized "
                             "frame, and only around the last faces in between (default 5; 1: "
                             "every frame whole)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--no-window", action="store_true", help="never open a live window")
    add_recognizer_arguments(parser, live=True)
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    if args.detect_every < 1:
        parser.error("--detect-every must be >= 1")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be >= 1")
    check_recognizer_options(args)

    recognizer = build_recognizer(args)
    plot_path = args.plot or (os.path.splitext(args.csv)[0] + ".png" if args.csv else None)
    for option, path in (("--output", args.output), ("--csv", args.csv), ("--plot", plot_path)):
        if path:
            writable_file(path, option)
    capture, source_fps, name = open_capture(args)
    warm_up(recognizer)      # so that the first frame, and the frames/s reported, do not wait for it
    window = open_window(args)
    try:
        timeline, frames, fps = process(capture, recognizer, source_fps, args.every,
                                live=args.camera is not None, writer_path=args.output,
                                window=window, max_frames=args.max_frames,
                                detect_every=args.detect_every)
    finally:
        capture.release()
        if window is not None:
            window.close()
    if frames == 0:
        raise UserError(f"{name}: no frame could be read (not a video OpenCV can decode, an "
                        f"empty one, or a camera that sends nothing)")
    print(f"{name}: {frames} frames at {fps:.1f} frames/s, recognizer on {len(timeline.times)} "
          f"frames, {sum(len(faces) for faces in timeline.faces)} faces in total")
    if args.output:
        print(f"annotated video: {args.output}")
    if args.csv:
        timeline.write_csv(args.csv)
        print(f"emotions CSV: {args.csv}")
    if plot_path:
        timeline.plot(plot_path)
        print(f"emotions plot: {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
