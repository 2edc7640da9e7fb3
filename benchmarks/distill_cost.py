"""What a teacher forward pass per batch would cost, next to a student's training step.

    python -m benchmarks.distill_cost --teacher default --student vgg_fer --batch-size 64

fer_app/training/distill.py caches the teacher's outputs once per training image instead of running
the teacher on every augmented batch; this measures why. It alternates, --repeats times,
one teacher forward pass (eval mode, no graph) and one student training step (forward,
backward, Adam step) on the same random batch, and prints the medians, their ratio, and the
BLAS and Numba thread counts that ran.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as fer_app.train runs

import argparse
import time

import numpy as np

import tinycnn
from fer_app.models import ARCHITECTURES, build_model
from fer_app.recognition.inference import default_backend_name, load_classifier
from tinycnn import backend as backends
from tinycnn import functional as F
from tinycnn import optim


def thread_counts() -> str:
    import numba
    from threadpoolctl import threadpool_info
    blas = [f"{pool['internal_api']} {pool['num_threads']}" for pool in threadpool_info()
            if pool["user_api"] == "blas"]
    return f"BLAS threads: {', '.join(blas) or 'unknown'}; Numba threads: {numba.get_num_threads()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distill_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="default", help="model file or shipped name (default: default)")
    parser.add_argument("--student", default="vgg_fer", choices=list(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default=None, choices=backends.names())
    args = parser.parse_args(argv)
    backend = args.backend or default_backend_name()
    teacher = load_classifier(args.teacher, backend)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
