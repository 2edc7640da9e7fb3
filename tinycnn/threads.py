"""How many threads tinycnn's inference runs on, the same whatever the entry point.

(Training's Winograd products ask ``threads()`` too: ``kernels/parallel_matmul.py``.)

Inside ``with inference_threads():`` (every call of a fused model, ``tinycnn.fuse``)
NumPy's BLAS (through threadpoolctl, so any BLAS: OpenBLAS, MKL, BLIS) and Numba's
parallel kernels both use ``threads()`` threads; the settings the caller had are put back
afterwards, so the user's own NumPy code is not changed. It does not matter whether
``OPENBLAS_NUM_THREADS`` was set before NumPy loaded, or which script imported what.

``threads()`` is, in this order:
  1. the count given to :func:`set_threads`, or the ``TINYCNN_THREADS`` environment variable;
  2. the cores no other process is using (at least 1): the cores minus the 1-minute load
     average, less this process's own share of that load (its CPU seconds per second since
     the last decision). Decided again at most once a second.

Why not always every core: a parallel region (a BLAS product split in two, a Numba
``prange``) ends when its slowest thread ends, and a thread that shares its core with
another busy process waits a scheduler time slice (milliseconds) for its turn. On this
project's 2-core machine, with one other busy process, two threads made vgg_fer's batch-1
inference 20-30x slower than one; on a free machine two are faster. Linux's CPU pressure
(``/proc/pressure/cpu``) does not see this case (one other process on one core makes
no task wait), the load average does. ``python -m benchmarks.fused_inference`` shows both.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

from .backend import BackendError

_explicit: int | None = None
_decided = (-1.0, 1)      # (time.monotonic() when decided, count)
_own = (time.monotonic(), time.process_time())   # when and at what CPU time we last looked
_depth = 0                # nesting of inference_threads blocks (only the outer one sets threads)


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
        return threads_from_environment(os.environ["TINYCNN_THREADS"])
    now = time.monotonic()
    if now - _decided[0] > 1.0:
        _decided = (now, free_cores())
    return _decided[1]


def threads_from_environment(value: str) -> int:
    """TINYCNN_THREADS as a thread count; a BackendError (one clear line in the CLIs) if it
    is not a whole number of at least 1."""
    if not value.strip().isdigit() or int(value) < 1:
        raise BackendError(f"TINYCNN_THREADS must be a whole number of threads, at least 1, "
                           f"got {value!r}")
    return int(value)


def free_cores() -> int:
    """round(cores - (load average - own busy threads)), between 1 and the cores; the cores
    where there is no load average (Windows)."""
    global _own
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores()
    now, cpu = time.monotonic(), time.process_time()
    own = (cpu - _own[1]) / max(now - _own[0], 1e-3)   # this process's busy threads, on average
    _own = (now, cpu)
    return max(1, min(cores(), round(cores() - max(0.0, load - own))))


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
