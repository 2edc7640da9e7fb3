"""One face after a pause: how much slower a fused model is when the process was idle.

    python -m benchmarks.idle_gap                          # vgg_fer, pauses 0, 2 and 17 ms
    python -m benchmarks.idle_gap --archs vgg_fer vgg_fer_small --pauses 0 17 --reps 60

A live video gives the recognizer a frame every 33 ms, and `benchmarks/app_speed.py` leaves
our process idle while `fer` takes its turn; a tight loop of calls does neither. For each
architecture and pause this times one fused forward pass of one face (numba backend, random
weights) right after sleeping that long, and prints the median milliseconds. The header
says which BLAS ran (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset unless ``--keep-blas-env``:
``benchmarks/blas_env.py``) and how many threads `tinycnn.threads` gave. Writes nothing.
"""
from __future__ import annotations

import os
import sys

from benchmarks import blas_env

UNSET_BLAS = blas_env.unset_overrides(sys.argv) if __name__ == "__main__" else {}  # before NumPy loads

import argparse
import statistics
import time

import numpy

import tinycnn
from fer_app.models import ARCHITECTURES, build_model
from tinycnn import backend, threads


def ms_after_pause(fused, x: numpy.ndarray, pause_s: float, reps: int) -> float:
    """Median milliseconds of ``fused(x)``, each call right after ``pause_s`` seconds of sleep."""
    for _ in range(5):
        fused(x)
    samples = []
    for _ in range(reps):
        if pause_s:
            time.sleep(pause_s)
        start = time.perf_counter()
        fused(x)
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_gap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", choices=sorted(ARCHITECTURES), default=["vgg_fer"])
    parser.add_argument("--pauses", nargs="+", type=float, default=[0, 2, 17],
                        help="milliseconds of sleep before each timed call (default: 0 2 17)")
    parser.add_argument("--reps", type=int, default=60, help="timed calls per pause (median)")
    parser.add_argument(blas_env.KEEP_OPTION, action="store_true", help=blas_env.KEEP_HELP)
    args = parser.parse_args(argv)
    if args.reps < 1 or min(args.pauses) < 0:
        parser.error("--reps must be at least 1 and --pauses at least 0")
    backend.use("numba")
    load = os.getloadavg()[0]
    print(f"1-minute load {load:.2f}; tinycnn.threads gives {threads.threads()}; "
          f"BLAS: {blas_env.blas_description()} ({blas_env.unset_description(UNSET_BLAS)})")
    print("| model | pause ms | ms per face (median) |\n|---|---:|---:|")
    x = numpy.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(numpy.float32)
    for arch in args.archs:
        tinycnn.manual_seed(0)
        fused = tinycnn.fuse(build_model(arch).eval())
        for pause in args.pauses:
            print(f"| {arch} | {pause:g} | {ms_after_pause(fused, x, pause / 1000, args.reps):.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
