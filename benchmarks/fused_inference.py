"""Inference speed of the fused models (``tinycnn.fuse``) against the plain layers.

    python -m benchmarks.fused_inference                       # vgg_fer and seed004, batches 1 8 64
    python -m benchmarks.fused_inference --archs vgg_fer --batches 1 --reps 40

For each architecture and batch size it times, in turns (``benchmarks/timing.py``), the
eval-mode model without a graph ("layers") and the fused model, each with 1 thread and
with every core for BLAS and Numba (``tinycnn.threads``), and prints the median and the
fastest milliseconds per batch. The header says which BLAS library and kernel ran
(threadpoolctl; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for this process unless
``--keep-blas-env``: ``benchmarks/blas_env.py``), the thread settings, and the machine's
load, since on a shared machine the thread counts decide more than the kernels. Random
weights: speed does not depend on them. Writes nothing unless given ``--out`` (a markdown
file).

``--steps`` adds where the fused model's time goes: each step (a fused conv block, a
dense layer, ...) timed in a pass over the model, as it runs, and timed alone (called again
and again, its weights cached), inside one thread setting (every core): the median
milliseconds, the share of the pass, and the difference, per architecture and batch size.
For a few faces the difference is mostly the step waiting for weights that the other
steps pushed out of the caches; the header's memory copy rate says how fast that memory is.
"""
from __future__ import annotations

import os
import sys

from benchmarks import blas_env

UNSET_BLAS = blas_env.unset_overrides(sys.argv) if __name__ == "__main__" else {}  # before NumPy loads

import argparse
import platform
import time

import numpy

import tinycnn
from benchmarks.timing import interleaved_samples, seconds_per_call
from fer_app.models import ARCHITECTURES, build_model
from tinycnn import backend, threads


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_and_faces(arch: str, batch: int) -> tuple:
    """The same eval-mode model of random weights and random faces (batch, 1, 48, 48) every time."""
    tinycnn.manual_seed(0)
    faces = numpy.random.default_rng(0).normal(size=(batch, 1, 48, 48)).astype(numpy.float32)
    return build_model(arch).eval(), faces


def time_model(arch: str, batch: int, thread_counts: list[int], reps: int) -> dict[str, list[float]]:
    """Seconds per batch: {"layers": [...], "fused, N thread(s)": [...], ...} for one model."""
    model, x = model_and_faces(arch, batch)
    fused = tinycnn.fuse(model)

    def layers():
        with tinycnn.no_grad(), threads.inference_threads():
            return model(tinycnn.Tensor(x))

    def with_threads(count, run):
        def timed():
            threads.set_threads(count)
            return run()
        return timed

    sides = {}
    for count in thread_counts:
        sides[f"layers, {count} thread(s)"] = with_threads(count, layers)
        sides[f"fused, {count} thread(s)"] = with_threads(count, lambda: fused(x))
    try:
        return interleaved_samples(sides, reps, warmup=3, min_sample_seconds=0.02)
    finally:
        threads.set_threads(None)


def step_milliseconds(arch: str, batch: int, reps: int) -> list[tuple[str, float, float]]:
    """[(step, median ms in a pass, median ms alone)] of the fused model's steps.

    "In a pass" times each step where the model runs it, between the others, so its weights
    have usually left the caches since its last call; "alone" runs the step ``reps`` times in
    a row on the same input, its weights cached after the first call. The difference is about
    the time a step waits for its weights to come from memory.
    """
    model, x = model_and_faces(arch, batch)
    fused = tinycnn.fuse(model)
    for _ in range(3):
        fused(x)                                             # warm-up: compile, buffers
    in_pass = [[] for _ in fused.steps]
    threads.set_threads(threads.cores())
    try:
        with threads.inference_threads():
            for _ in range(reps):
                inputs = [x]
                for index, step in enumerate(fused.steps):
                    start = time.perf_counter()
                    inputs.append(step(inputs[-1]))
                    in_pass[index].append(time.perf_counter() - start)
            alone = [alone_seconds(step, step_input, reps) for step, step_input in zip(fused.steps, inputs)]
    finally:
        threads.set_threads(None)
    return [(repr(step), float(numpy.median(s)) * 1e3, a * 1e3)
            for step, s, a in zip(fused.steps, in_pass, alone)]


def alone_seconds(step, x, reps: int) -> float:
    """Median seconds of ``step(x)`` called ``reps`` times in a row (after one untimed call)."""
    step(x)
    return float(numpy.median([seconds_per_call(lambda: step(x), 1) for _ in range(reps)]))


def steps_report(arch: str, batch: int, steps: list[tuple[str, float, float]]) -> str:
    total = sum(ms for _, ms, _ in steps)
    total_alone = sum(ms for _, _, ms in steps)
    lines = [f"Steps of fused {arch}, batch {batch} (sum {total:.2f} ms in a pass, "
             f"{total_alone:.2f} ms alone):", "",
             "| step | median ms in a pass | share | median ms alone | difference |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {ms:.3f} | {ms / total:.0%} | {ms_alone:.3f} | {ms - ms_alone:+.3f} |"
              for name, ms, ms_alone in steps]
    return "\n".join(lines)


def copy_bandwidth(megabytes: int = 64, reps: int = 5) -> float:
    """GB/s of one thread copying a ``megabytes`` float32 array (bytes read + bytes written,
    best of ``reps``): how fast weights that are not in a cache can come from memory."""
    source = numpy.ones(megabytes * 2 ** 18, numpy.float32)
    target = numpy.empty_like(source)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        numpy.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def report(rows: list[tuple], header: list[str]) -> str:
    lines = header + ["", "| model | batch | path | median ms | fastest ms | fastest ms per image |",
                      "|---|---:|---|---:|---:|---:|"]
    for arch, batch, side, samples in rows:
        median, fastest = numpy.median(samples) * 1e3, min(samples) * 1e3
        lines.append(f"| {arch} | {batch} | {side} | {median:.2f} | {fastest:.2f} | {fastest / batch:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fused_inference",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=["vgg_fer", "seed004"], choices=list(ARCHITECTURES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--backend", default="numba", choices=["numpy", "numba"])
    parser.add_argument("--threads", nargs="+", type=int, default=None,
                        help="thread counts for the fused runs (default: 1 and every core)")
    parser.add_argument("--reps", type=int, default=15, help="samples per side (default 15)")
    parser.add_argument("--steps", action="store_true",
                        help="also time each fused step, in a pass and alone (where the time goes)")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    parser.add_argument(blas_env.KEEP_OPTION, action="store_true", help=blas_env.KEEP_HELP)
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.reps < 1 or min(args.threads or [1]) < 1:
        parser.error("--batches, --reps and --threads must be at least 1")
    backend.use(args.backend)
    thread_counts = args.threads or sorted({1, threads.cores()})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = [f"# Fused inference (`python -m benchmarks.fused_inference {' '.join(argv or sys.argv[1:])}`)",
              "",
              f"Machine: {cpu_name()} ({platform.machine()}), {threads.cores()} cores, 1-minute load {load:.2f}, "
              f"cores free for tinycnn.threads: {threads.free_cores()}; backend {args.backend}; "
              f"memory copy on one thread {copy_bandwidth():.1f} GB/s (read + write).",
              f"BLAS: {blas_env.blas_description()} outside the timed calls "
              f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
              f"{blas_env.unset_description(UNSET_BLAS)}); every row runs with BLAS and Numba "
              f"threads set to its count."]
    rows = []
    for arch in args.archs:
        for batch in args.batches:
            for side, samples in time_model(arch, batch, thread_counts, args.reps).items():
                rows.append((arch, batch, side, samples))
                print(f"{arch} batch {batch:>3} {side:<22} median {numpy.median(samples) * 1e3:8.2f} ms"
                      f"  fastest {min(samples) * 1e3:8.2f} ms", flush=True)
    text = report(rows, header)
    if args.steps:
        text += "".join(f"\n\n{steps_report(arch, batch, step_milliseconds(arch, batch, args.reps))}"
                        for arch in args.archs for batch in args.batches)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
