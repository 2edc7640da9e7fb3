"""How many threads tinycnn's inference runs on, the same whatever the entry point.

Inside ``with inference_threads():`` (every call of a fused model, ``tinycnn.fuse``)
NumPy's BLAS (through threadpoolctl, so any BLAS: OpenBLAS, MKL, BLIS) and Numba's
parallel kernels both use ``threads()`` threads; the settings the caller had are put back
afterwards, so the user's own NumPy code is not changed. It does not matter whether
``OPENBLAS_NUM_THREADS`` was set before NumPy loaded, or which script imported what.

``threads()`` is, in this order:
  1. the count given to :func:`set_threads`, or the ``TINYCNN_THREADS`` environment variable;
  2. every core of the process when the CPU is free, else 1. "Free" is read from Linux's
     CPU pressure (``/proc/pressure/cpu``: the share of the last 10 s in which some task
     waited for a core, below 10%), or where that file is missing from the 1-minute load
     average (below half the cores). Read again at most once a second.

Why not always every core: on a 2-core machine shared with other jobs, two BLAS threads
made the products of small-batch inference 5-20x slower (each product waits for its
slowest thread, and that one is often not running); on a free machine they are twice as
fast. ``python -m benchmarks.fused_inference`` shows both.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

_explicit: int | None = None
_decided = (-1.0, 1)      # (time.monotonic() when decided, count)
_depth = 0                # nesting of inference_threads blocks (only the outer one sets threads)
PRESSURE_FILE = "/proc/pressure/cpu"
BUSY_PRESSURE = 10.0      # percent of the last 10 s in which some task waited for a core


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                       # not Linux
        return os.cpu_count() or 1


def set_threads(count: int | None) -> None:
    """Use ``count`` threads for inference from now on (None: decide automatically again)."""
    global _explicit
    if count is not None and count < 1:
        raise ValueError(f"inference needs at least one thread, got {count}")
    _explicit = count


def threads() -> int:
    """The thread count inference uses now (see the module docstring)."""
    global _decided
    if _explicit is not None:
        return _explicit
    if os.environ.get("TINYCNN_THREADS"):
        return max(1, int(os.environ["TINYCNN_THREADS"]))
    now = time.monotonic()
    if now - _decided[0] > 1.0:
        _decided = (now, cores() if cpu_is_free() else 1)
    return _decided[1]


def cpu_is_free() -> bool:
    """True when no other work waits for this machine's cores (see the module docstring)."""
    try:
        with open(PRESSURE_FILE) as pressure:
            fields = dict(field.split("=") for field in pressure.readline().split()[1:])
        return float(fields["avg10"]) < BUSY_PRESSURE
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.getloadavg()[0] < cores() / 2
    except (AttributeError, OSError):            # no load average (Windows): assume free
        return True


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


@contextlib.contextmanager
def inference_threads():
    """BLAS and Numba run on ``threads()`` threads inside the block; restored after it."""
    global _depth
    if _depth:
        yield
        return
    count = threads()
    numba = sys.modules.get("numba")             # only touched if something loaded it
    previous = numba.get_num_threads() if numba else None
    _depth += 1
    try:
        with _controller().limit(limits=count, user_api="blas"):
            if numba:
                numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
            yield
    finally:
        _depth -= 1
        if numba:
            numba.set_num_threads(previous)
