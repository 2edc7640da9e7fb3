"""What a teacher forward pass per batch would cost, next to a student's training step.

    python -m benchmarks.distill_cost --teacher default --student vgg_fer --batch-size 64
    python -m benchmarks.distill_cost --teacher default --data ../shared/data/fer2013/fer2013.csv.gz

fer_app/training/distill.py caches the teacher's outputs once per training image instead of running
the teacher on every augmented batch; this measures why. It alternates, --repeats times,
one teacher forward pass (eval mode, no graph) and one student training step (forward,
backward, Adam step) on the same random batch, and prints the medians, their ratio, and the
BLAS and Numba thread counts that ran.

With ``--data`` it also measures what the cache gives up, on --faces Training images (seeded
sample): the cached target (the teacher on the face and its mirror, averaged) against the
teacher's output on one augmented view of the face (train's "standard" augmentation, as a
student sees it), as the mean KL(view || cached) of the distributions softened by
--temperature and by 1, and how often the two agree on the top class; and the time to
build the cache for the whole Training split, scaled from the time on the sample.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as fer_app.train runs

import argparse
import time

import numpy as np

import tinycnn
from fer_app.cli import UserError
from fer_app.data.augment import augment_batch
from fer_app.data.load import load_dataset, select_split
from fer_app.models import ARCHITECTURES, build_model
from fer_app.recognition.inference import Classifier, default_backend_name, load_classifier, softmax
from fer_app.training.settings import AUGMENT_PRESETS
from fer_app.training.distill import two_view_log_probs
from tinycnn import backend as backends
from tinycnn import functional as F
from tinycnn import optim


def thread_counts() -> str:
    import numba
    from threadpoolctl import threadpool_info
    blas = [f"{pool['internal_api']} {pool['num_threads']}" for pool in threadpool_info()
            if pool["user_api"] == "blas"]
    return f"BLAS threads: {', '.join(blas) or 'unknown'}; Numba threads: {numba.get_num_threads()}"


def softened(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log_probs / T) along the classes: (N, K) -> (N, K) float64."""
    return softmax(log_probs.astype(np.float64) / temperature)


def mean_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over rows of KL(p || q) = sum_k p log(p / q); p, q (N, K) probabilities."""
    return float((p * (np.log(np.maximum(p, 1e-300)) - np.log(np.maximum(q, 1e-300)))).sum(axis=1).mean())


def view_consistency(teacher: Classifier, data: str, faces: int, temperature: float) -> str:
    """How far the cached two-view targets are from the teacher on an augmented view (see the
    module docstring), and the cache's build time for the whole Training split."""
    train = select_split(load_dataset(data), "Training")
    rng = np.random.default_rng(0)
    images = train.images[rng.choice(len(train.images), min(faces, len(train.images)), replace=False)]
    start = time.perf_counter()
    cached = two_view_log_probs(teacher, images)                                   # (N, K)
    cache_seconds = (time.perf_counter() - start) * len(train.images) / len(images)
    view = augment_batch(images, AUGMENT_PRESETS["standard"], rng)                  # (N, 48, 48)
    view_log_probs = np.log(np.maximum(teacher.predict_proba(view), 1e-12))
    kl_t = mean_kl(softened(view_log_probs, temperature), softened(cached, temperature))
    kl_1 = mean_kl(softened(view_log_probs, 1.0), softened(cached, 1.0))
    agree = float((view_log_probs.argmax(axis=1) == cached.argmax(axis=1)).mean())
    return (f"cached target vs the teacher on one augmented view ({len(images)} Training faces): "
            f"mean KL {kl_t:.4f} at T {temperature:g}, {kl_1:.4f} at T 1; same top class {agree:.3f}\n"
            f"building the cache (face + mirror) for the {len(train.images)} Training faces: "
            f"about {cache_seconds / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distill_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="default", help="model file or shipped name (default: default)")
    parser.add_argument("--student", default="vgg_fer", choices=list(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default=None, choices=backends.names())
    parser.add_argument("--data", help="FER-2013 CSV: also measure what the cache gives up (see above)")
    parser.add_argument("--faces", type=int, default=2000, help="Training faces for --data (default 2000)")
    parser.add_argument("--temperature", type=float, default=4.0, help="softening T for --data (default 4)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.repeats < 1 or args.faces < 1 or args.temperature <= 0:
        parser.error("--batch-size, --repeats and --faces must be at least 1, --temperature above 0")
    backend = args.backend or default_backend_name()
    try:
        teacher = load_classifier(args.teacher, backend)
    except UserError as error:                      # a missing or damaged teacher file
        parser.error(str(error))
    student = build_model(args.student, len(teacher.class_names))
    optimizer = optim.Adam(student.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (args.batch_size, 48, 48)).astype(np.uint8)
    x = teacher.normalizer.apply(faces)                                    # (B, 1, 48, 48)
    labels = rng.integers(0, len(teacher.class_names), args.batch_size)

    def teacher_pass() -> None:
        teacher.predict_logits(faces)

    def student_step() -> None:
        loss = F.softmax_cross_entropy(student(tinycnn.Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    timings = {"teacher forward": [], "student step": []}
    for repeat in range(args.repeats + 1):                                 # the first round warms up
        for name, work in (("teacher forward", teacher_pass), ("student step", student_step)):
            start = time.perf_counter()
            work()
            if repeat:
                timings[name].append(time.perf_counter() - start)
    teacher_s, student_s = (float(np.median(timings[name])) for name in timings)
    print(f"backend {backend}, batch {args.batch_size}; {thread_counts()}")
    print(f"teacher ({args.teacher}) forward: {teacher_s * 1000:.0f} ms per batch")
    print(f"student ({args.student}) training step: {student_s * 1000:.0f} ms per batch")
    print(f"a teacher pass per batch would make each step {1 + teacher_s / student_s:.1f} times as long")
    if args.data:
        try:
            print(view_consistency(teacher, args.data, args.faces, args.temperature))
        except UserError as error:                  # a missing or unreadable --data
            parser.error(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
