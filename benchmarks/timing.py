"""Interleaved timing: competing functions take turns, so machine noise hits them alike.

On a shared machine a single timing can be twice as slow as the next one. Two
things make the comparison fair anyway: every side is sampled in turn (A B C,
then C B A, ...), so a busy spell slows all of them, and each side's result is
the *median* of its samples, which ignores the odd outlier.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    """Wall-clock seconds of one call of ``fn``, averaged over ``calls`` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_per_sample(seconds_of_one_call: float, min_seconds: float) -> int:
    """How many calls one sample needs to last at least ``min_seconds`` (so that
    very fast calls are not measured at the timer's resolution)."""
    return max(1, math.ceil(min_seconds / max(seconds_of_one_call, 1e-9)))


def interleaved_samples(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 2,
                        min_sample_seconds: float = 0.05) -> dict[str, list[float]]:
    """``reps`` samples (seconds per call) of every function, taken in turn.

    First each function is called ``warmup`` times (at least once: compilation,
    tracing, caches), and the last warm-up call fixes its calls per sample; then,
    per repetition, every function gives one sample, in an order that reverses
    every other repetition (A B C, C B A, ...).
    """
    calls = {}
    for name, fn in fns.items():
        for _ in range(max(warmup, 1)):
            last = seconds_per_call(fn, 1)
        calls[name] = calls_per_sample(last, min_sample_seconds)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for rep in range(reps):
        for name in order if rep % 2 == 0 else reversed(order):
            samples[name].append(seconds_per_call(fns[name], calls[name]))
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)
